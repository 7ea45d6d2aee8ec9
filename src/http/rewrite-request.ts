import { getPath, setPath, splitPath } from "../core/object-path.ts";
import type {
  DegradationRule,
  LevelSettings,
  ParamLocation,
  ResolvedDegradation,
} from "../core/options/degradation-options.ts";
import {
  adjustFeatures,
  adjustModel,
  adjustQuality,
  adjustResolution,
  adjustSteps,
} from "../policies/adjust-parameters.ts";
import { copyHeaders, headerOf } from "./headers.ts";
import { readJsonBody } from "./json-body.ts";
import { isReplayable, type PreparedCall } from "./prepare-call.ts";

type Param = keyof DegradationRule["params"];

/**
 * Applies the current level to a request before it leaves: the most
 * specific rule whose `match` prefixes the URL (else a global rule) says
 * where each parameter lives; the JSON body is parsed, rewritten and
 * re-serialised, query parameters and headers are rewritten in place.
 * Non-JSON bodies and absent parameters are left alone. At `full` the
 * request is untouched.
 */
export async function rewriteRequest(
  call: PreparedCall,
  levelName: string,
  level: LevelSettings,
  config: ResolvedDegradation,
): Promise<PreparedCall> {
  const header = config.levelHeader;
  const rule = levelName === "full" ? undefined : pickRule(config.rules, call.url);
  if (!rule && !header) return call;
  let url = call.url;
  let headers: Headers | undefined;
  let body = call.body;
  if (rule) {
    const entries = Object.entries(rule.params) as Array<[Param, ParamLocation]>;
    const bodyParams = entries.filter(([, where]) => typeof where === "string" || "body" in where);
    if (bodyParams.length > 0 && call.replayable) {
      const json = await readJsonBody(call.body, headerOf(call.headers, "content-type"));
      if (json !== undefined) {
        let changed = false;
        for (const [param, where] of bodyParams) {
          const segments = splitPath(typeof where === "string" ? where : (where as { body: string }).body);
          const value = getPath(json, segments);
          const next = adjust(param, value, level, config);
          if (next !== value && setPath(json, segments, next)) changed = true;
        }
        if (changed) body = JSON.stringify(json);
      }
    }
    const queryParams = entries.filter(([, where]) => typeof where === "object" && "query" in where);
    if (queryParams.length > 0) {
      const parsed = new URL(url);
      for (const [param, where] of queryParams) {
        const name = (where as { query: string }).query;
        const value = parsed.searchParams.get(name);
        if (value !== null) parsed.searchParams.set(name, String(adjust(param, fromText(param, value), level, config)));
      }
      url = parsed.href;
    }
    for (const [param, where] of entries) {
      if (typeof where !== "object" || !("header" in where)) continue;
      headers ??= copyHeaders(call.headers);
      const value = headers.get(where.header);
      if (value !== null) headers.set(where.header, toText(adjust(param, fromText(param, value), level, config)));
    }
  }
  if (header) {
    headers ??= copyHeaders(call.headers);
    headers.set(header, levelName);
  }
  if (url === call.url && headers === undefined && body === call.body) return call;
  // A Request cannot be pointed at another URL: when the query changed, its
  // method, headers and the rest travel in `init` with the new URL instead.
  const { input } = call;
  const fromRequest = typeof input !== "string" && !(input instanceof URL);
  const replaced = fromRequest && url !== call.url;
  const init: RequestInit = {
    ...(replaced ? carriedOver(input) : {}),
    ...call.init,
    ...(headers ? { headers } : {}),
    ...(body !== call.body ? { body: body ?? null } : {}),
  };
  const nextInput = fromRequest && !replaced ? input : url;
  return {
    ...call,
    input: nextInput,
    init,
    url,
    headers: headers ?? call.headers,
    body,
    replayable: isReplayable(body),
  };
}

/** What a Request carries besides its URL and body. */
function carriedOver(request: Request): RequestInit {
  return {
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    redirect: request.redirect,
    credentials: request.credentials,
    cache: request.cache,
    integrity: request.integrity,
    keepalive: request.keepalive,
    referrerPolicy: request.referrerPolicy,
  };
}

function pickRule(rules: readonly DegradationRule[], url: string): DegradationRule | undefined {
  let best: DegradationRule | undefined;
  for (const rule of rules) {
    if (rule.match === undefined) {
      best ??= rule;
    } else if (url.startsWith(rule.match) && (best?.match === undefined || rule.match.length > best.match.length)) {
      best = rule;
    }
  }
  return best;
}

function adjust(param: Param, value: unknown, level: LevelSettings, config: ResolvedDegradation): unknown {
  switch (param) {
    case "quality":
      return typeof value === "number" ? adjustQuality(value, level) : value;
    case "steps":
      return typeof value === "number" ? adjustSteps(value, level) : value;
    case "resolution":
      return typeof value === "string" ? adjustResolution(value, level, config) : value;
    case "model":
      return typeof value === "string" ? adjustModel(value, level, config) : value;
    case "features":
      return Array.isArray(value) ? adjustFeatures(value, level) : value;
  }
}

/** Query and header values are text: numbers and comma lists are read from it. */
function fromText(param: Param, text: string): unknown {
  if (param === "quality" || param === "steps") {
    const n = Number(text);
    return text.trim() !== "" && Number.isFinite(n) ? n : text;
  }
  if (param === "features")
    return text
      .split(",")
      .map((f) => f.trim())
      .filter(Boolean);
  return text;
}

function toText(value: unknown): string {
  return Array.isArray(value) ? value.join(",") : String(value);
}
