import { isBlob } from "../core/kind-of.ts";
import { type CallRequest, deriveRequest } from "../http/request/call-request.ts";
import { copyHeaders, headerOf } from "../http/request/headers.ts";
import { readJsonBody } from "../http/request/json-body.ts";
import { isReplayable } from "../http/request/replay-body.ts";
import {
  adjustFeatures,
  adjustModel,
  adjustQuality,
  adjustResolution,
  adjustSteps,
} from "../policies/adjust-parameters.ts";
import type { DegradationRule, LevelSettings, ParamLocation, ResolvedDegradation } from "./degradation-options.ts";
import { spliceJson } from "./json-splice.ts";
import { getPath, splitPath } from "./object-path.ts";
import { editQuery } from "./query-edit.ts";
import type { RulePicker } from "./rule-picker.ts";

type Param = keyof DegradationRule["params"];

/**
 * Applies the current level to a call before it leaves: the rule `pick`
 * chooses for its URL (see `rulePicker`) says where each parameter lives. In a JSON body only the values a rule changes are
 * rewritten, every other byte stays as sent; query parameters and headers
 * are rewritten in place. Non-JSON bodies and absent parameters are left
 * alone; so is a body that cannot be read twice (a stream). At `full` the
 * request is untouched. Whether the body may be replayed was decided at
 * the entry and stays so.
 */
export async function rewriteRequest(
  request: CallRequest,
  levelName: string,
  level: LevelSettings,
  config: ResolvedDegradation,
  pick: RulePicker,
): Promise<CallRequest> {
  const header = config.levelHeader;
  const rule = levelName === "full" ? undefined : pick(request.url);
  if (!rule && !header) return request;
  let url = request.url;
  let headers: Headers | undefined;
  let body = request.body;
  if (rule) {
    const entries = Object.entries(rule.params) as Array<[Param, ParamLocation]>;
    const bodyParams = entries.filter(([, where]) => typeof where === "string" || "body" in where);
    if (bodyParams.length > 0 && isReplayable(request.body)) {
      const json = await readJsonBody(request.body, headerOf(request.headers, "content-type"));
      if (json !== undefined) {
        const edits: Array<{ path: string[]; value: unknown }> = [];
        for (const [param, where] of bodyParams) {
          const path = splitPath(typeof where === "string" ? where : (where as { body: string }).body);
          const value = getPath(json.value, path);
          const next = adjust(param, value, level, config);
          // Compared as JSON: a features list the level keeps whole is a new array, and its bytes stay as written.
          if (next !== value && JSON.stringify(next) !== JSON.stringify(value)) edits.push({ path, value: next });
        }
        if (edits.length > 0) body = sameKind(request.body, spliceJson(json.text, edits));
      }
    }
    // Only the named parameters' values change: the rest of the URL is kept
    // as the caller wrote it, so a fallback chain still finds its prefix in it.
    for (const [param, where] of entries) {
      if (typeof where !== "object") continue;
      // Compared as text: a value the level keeps is left as written (`20.0`,
      // `a, b`; a features list the level keeps whole is a new array).
      const edit = (text: string): string => {
        const value = fromText(param, text);
        const next = toText(adjust(param, value, level, config));
        return next === toText(value) ? text : next;
      };
      if ("query" in where) {
        url = editQuery(url, where.query, edit);
      } else if ("header" in where) {
        headers ??= copyHeaders(request.headers);
        const text = headers.get(where.header);
        if (text === null) continue;
        // Read whole first (a features list, a model named `large, v2`); a
        // value the level leaves as it is may be a header sent twice, which
        // reads `50, 50`: then each value is edited, as each place of a
        // repeated query parameter is.
        let next = edit(text);
        if (next === text && param !== "features") {
          const values = text.split(",").map((v) => v.trim());
          const edited = values.map(edit);
          if (edited.some((v, i) => v !== values[i])) next = edited.join(", ");
        }
        if (next !== text) headers.set(where.header, next);
      }
    }
  }
  if (header) {
    headers ??= copyHeaders(request.headers);
    headers.set(header, levelName);
  }
  if (url === request.url && headers === undefined && body === request.body) return request;
  return deriveRequest(request, { url, headers: headers ?? request.headers, body });
}

/**
 * The rewritten text in the caller's kind of body, so that fetch gives it the
 * same `content-type`: a string (text/plain unless the caller set one), a
 * Blob of the same type, or bytes (none).
 */
function sameKind(original: BodyInit | null | undefined, text: string): BodyInit {
  if (typeof original === "string") return text;
  if (isBlob(original)) return new Blob([text], { type: original.type });
  return new TextEncoder().encode(text);
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
