import { type Clock, ownClock, systemClock } from "../core/clock.ts";
import { ConfigError } from "../core/errors.ts";
import { isHttpToken } from "../core/http-token.ts";
import { keepAsWell } from "../core/linked-signal.ts";
import { checkOptions, quoted, type Rule, type Table } from "../core/options/check-options.ts";
import { optionKeys } from "../core/options/option-keys.ts";
import { resilienceRules } from "../core/options/option-rules.ts";
import { writtenAsParsed } from "../core/options/url-prefix-rules.ts";
import { plainCopy } from "../core/plain-copy.ts";
import { redactUrl } from "../core/redact-url.ts";
import { shownValue } from "../core/shown-name.ts";
import { trimHeaderValue } from "../core/trim.ts";
import { chosenChains } from "../fallback/chain-router.ts";
import { rebase } from "../fallback/endpoint-request.ts";
import type { FallbackChainOptions } from "../fallback/fallback-options.ts";
import { chainRule } from "../fallback/fallback-rules.ts";
import { fallback } from "../fallback/fallback-stage.ts";
import { createResilience, type Resilience } from "../http/create-resilience.ts";
import { isBareHeaderValue } from "../http/request/check-request.ts";
import { copyHeaders, hasIdempotencyKey, sameStatusAndHeaders } from "../http/request/headers.ts";
import type { ResilienceOptions } from "../http/resilience-options.ts";
import { resolveOptions } from "../http/resolve-options.ts";
import { isDeclined } from "../http/send/classify.ts";
import { discardBody } from "../http/send/discard-body.ts";
import { followsOthers, getResilienceInfo } from "../http/send/resilience-info.ts";
import type { BreakerStore } from "../stores/breaker-store.ts";
import { markStoreFailure } from "../stores/unawaited-store.ts";
import type { ExecutionContextLike } from "./bindings.ts";
import { failureResponse } from "./failure-response.ts";

/**
 * What a breaker store's failure outside the layer's call (its context
 * binding) answers: a 502, whatever it threw (a thrown primitive is no
 * circuit or timeout error either).
 */
function storeFailed(error: unknown): Response {
  markStoreFailure(error);
  return failureResponse(error);
}

/** A path served by the proxy: one upstream, or a fallback chain. */
export type ProxyRoute = { path: string; upstream: string } | { path: string; chain: FallbackChainOptions };

/** Options of {@link resilientProxy}. */
export interface ResilientProxyOptions<Env> {
  /** Incoming paths and where they go; the longest matching `path` wins. */
  routes: readonly ProxyRoute[];
  /** Options for the layer (retry, breaker, degradation …); `fallback` comes from `routes`. */
  resilience?: Omit<ResilienceOptions, "fallback" | "store"> | undefined;
  /** The breaker store, made once per isolate from the bindings, e.g. `(env) => kvStore(env.BREAKERS)`. */
  store?: ((env: Env) => BreakerStore | undefined) | undefined;
  /** @default "/__resilience/health" */
  healthPath?: string | undefined;
  /**
   * The env var holding a bearer token for the health endpoint (a string, a
   * number, or a Secrets Store binding); unset or empty means open, any
   * other value that holds no token keeps it closed.
   * @default "RESILIENCE_HEALTH_TOKEN"
   */
  healthTokenVar?: string | undefined;
}

/**
 * Headers that describe one hop, not the request: never forwarded, either
 * way (RFC 9110, section 7.6.1), nor those `connection` names as such; the
 * client's credentials for a proxy (`proxy-authorization`) end here too, and
 * so does its `expect`: the server before the proxy answered the
 * `100-continue` (curl asks it for every large upload), and the body goes on
 * as a stream, which Node's fetch refuses to send under an `expect`.
 */
const HOP_HEADERS = [
  "host",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "expect",
];

/** Removes from `headers` the hop's own: the fixed ones and every name its `connection` lists. */
function dropHopHeaders(headers: Headers): void {
  const named = (headers.get("connection") ?? "").split(",").map((name) => name.trim().toLowerCase());
  for (const name of [...HOP_HEADERS, ...named]) if (isHttpToken(name)) headers.delete(name);
}

/**
 * `path` as the URL parser writes a request's: requests are matched by that
 * form (`/vid%C3%A9o`, no query, no dot segments), so a path written
 * otherwise would never match.
 */
const parsedPath = (path: string): string =>
  URL.canParse(path, "http://h") ? new URL(path, "http://h").pathname : "(no path: it does not parse)";

/**
 * Whether a header carries `name` as written: not when it holds what a header
 * cannot (`—`), a space or tab at either end (a header value loses them), or
 * a `%` (an encoded name could not be told from one written so): such a name
 * is percent-encoded, and `decodeURIComponent` reads any name back.
 */
const keptAsWritten = (name: string): boolean => isBareHeaderValue(name) && !/^[ \t]|[ \t]$|%/.test(name);

/** The proxy's own options; `routes` and `resilience` are checked on their own. */
const checkedApart: Rule = { type: () => true, expected: "" };
const proxyRules: Table = {
  routes: checkedApart,
  resilience: checkedApart,
  store: "fn",
  healthPath: {
    is: "str",
    ok: [
      [
        (path: string) => path.startsWith("/") && parsedPath(path) === path,
        'a path as the URL parser writes it ("/…")',
      ],
    ],
  },
  healthTokenVar: "str+",
};

/** `read()`, or a `ConfigError` naming `path` when the caller's value throws as it is read (a getter, a revoked Proxy). */
function readable<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch {
    throw new ConfigError(path, "expected a value that can be read, received a value that cannot be read");
  }
}

/**
 * What Cloudflare's edge says about the end user (`cf-connecting-ip`,
 * `cf-ipcountry`, `cf-ray`, …, `x-forwarded-for`, `x-real-ip`,
 * `true-client-ip`): it stays in
 * the Worker, so a provider never learns the user's address from the proxy.
 */
const isClientHeader = (name: string) =>
  /^(?:cf-|x-forwarded-|x-real-ip$|true-client-ip$|x-client-ip$|forwarded$)/.test(name);

/**
 * A Worker `fetch` handler that forwards requests to generation APIs through
 * `createResilience`. One `Resilience` per isolate, created on the first
 * request (never at module scope, where Workers forbid timers and
 * controllers); each request binds its `ctx` to the store for background
 * work. `GET /__resilience/health` answers the layer's `health()`, guarded by
 * a bearer token when the env var holds one.
 *
 * @example
 * export default resilientProxy<Env>({
 *   routes: [{ path: "/v1/video", chain: { name: "video", endpoints: [...] } }],
 *   store: (env) => kvStore(env.BREAKERS),
 * });
 * export { BreakerStateObject } from "@storycore/resilient-fetch/cloudflare";
 */
export function resilientProxy<Env extends object>(
  options: ResilientProxyOptions<Env>,
): { fetch(request: Request, env: Env, ctx: ExecutionContextLike): Promise<Response> } {
  // Checked on a copy, which is what runs: a getter read again later cannot hand the layer
  // another value than the one checked. Options that cannot be copied are checked as given,
  // which names what cannot be read. The layer's options are copied apart (see `layerCopy`):
  // the caller's clock or store stays its own.
  let layerGiven: ResilienceOptions | undefined;
  try {
    layerGiven = options.resilience;
    options = plainCopy(options);
  } catch {}
  // Read here as the checks below read them: a value that cannot be read
  // (options that could not be copied) is named by its path.
  const routeList = readable("routes", () => options?.routes as unknown);
  const count = readable("routes", () => (Array.isArray(routeList) ? routeList.length : 0));
  if (count === 0) {
    throw new TypeError("resilientProxy({ routes }): expected at least one route");
  }
  for (let i = 0; i < count; i++) {
    const route = readable(`routes.${i}`, () => (routeList as readonly ProxyRoute[])[i]);
    if (typeof route !== "object" || route === null)
      throw new TypeError(
        `resilientProxy: each route must be { path, upstream } or { path, chain }, got ${shownValue(route)}`,
      );
    readable(`routes.${i}`, () => Reflect.ownKeys(route));
    for (const key of ["path", "upstream", "chain"] as const)
      readable(`routes.${i}.${key}`, () => key in route && route[key as keyof typeof route]);
    // A route is its path and an upstream or a chain: any other key (`headers`, a typo) would do nothing.
    // Checked first: a misspelt `pth` or `upstrem` is named as such, not as a path or upstream left out.
    for (const key of optionKeys(route)) {
      if (key !== "path" && key !== "upstream" && key !== "chain")
        throw new ConfigError(`routes.${i}`, `unknown option ${quoted(key)}`);
    }
    // A path is quoted as URLs are everywhere: a query or userinfo in it may hold a key.
    const path = JSON.stringify(typeof route.path === "string" ? redactUrl(route.path) : route.path);
    if (typeof route.path !== "string" || !route.path.startsWith("/")) {
      throw new TypeError(`resilientProxy: route path must start with "/", got ${path}`);
    }
    if (!("upstream" in route) && !("chain" in route)) {
      throw new TypeError(`resilientProxy: route ${path} needs an upstream or a chain`);
    }
    // The chain would serve it and the upstream be dropped without a word.
    // (`chain: undefined` is refused below, by name: `routes.0.chain`.)
    if ("upstream" in route && "chain" in route && route.chain !== undefined) {
      throw new TypeError(`resilientProxy: route ${path} has both an upstream and a chain: give it one`);
    }
    if (
      "upstream" in route &&
      !(typeof route.upstream === "string" && /^https?:\/\//i.test(route.upstream) && URL.canParse(route.upstream))
    ) {
      throw new TypeError(`resilientProxy: route ${path} needs an absolute http(s) upstream URL`);
    }
    if ("upstream" in route) {
      // The path below and the query go after the upstream: a fragment would swallow them, and what
      // the URL parser drops (spaces, control characters) would stand between.
      if (route.upstream.includes("#") || !writtenAsParsed(route.upstream))
        throw new TypeError(
          `resilientProxy: route ${path} needs an upstream URL without a #fragment, spaces around it or control characters`,
        );
      // fetch refuses a URL with credentials: every request would be answered 502. Never quoted.
      const { username, password } = new URL(route.upstream);
      if (username !== "" || password !== "")
        throw new TypeError(
          `resilientProxy: route ${path} needs an upstream URL without credentials (a user or password goes in a header)`,
        );
    }
    // Checked last: the refusals above name the route by its path as given.
    const parsed = parsedPath(route.path);
    if (parsed !== route.path) {
      throw new TypeError(
        `resilientProxy: route path ${path} would never match: requests are matched by their path as the URL parser writes it, here ${JSON.stringify(redactUrl(parsed))}`,
      );
    }
  }
  // Checked now, when the module is loaded, not on every request: the layer
  // itself is made on the first request (Workers forbid timers at module scope).
  checkOptions(proxyRules, options, "");
  // The layer's options, copied once (see `layerCopy`): what is checked
  // below is what runs on the first request, whatever the caller's objects
  // say by then. Options that cannot be read are named by their check as given.
  let resilienceOptions: ResilienceOptions;
  try {
    resilienceOptions = (layerGiven === undefined ? {} : layerCopy(layerGiven)) as ResilienceOptions;
  } catch {
    resolveOptions(layerGiven, "resilience");
    throw new ConfigError("resilience", "expected options that can be read, received options that cannot be read");
  }
  // Outside the type, and overridden by the routes' chains: said at once, with where chains go.
  // `false` is none, as on `createResilience`; a chain given here would have no route to serve it.
  const chainsGiven = (resilienceOptions as { fallback?: unknown } | null)?.fallback;
  if (chainsGiven !== undefined && chainsGiven !== false)
    throw new ConfigError("resilience.fallback", "a proxy's chains go in its routes ({ path, chain })");
  resolveOptions(resilienceOptions, "resilience");
  // Each route's chain named by its route (`routes.1.chain.endpoints.0.url`).
  const named = new Set<string>();
  options.routes.forEach((route, i) => {
    if (!("chain" in route)) return;
    // `chain: undefined` is no chain: the rule table would take it as left out.
    if (route.chain === undefined) throw new ConfigError(`routes.${i}.chain`, "expected object, received undefined");
    checkOptions({ chain: chainRule }, { chain: route.chain }, `routes.${i}`);
    // An endpoint's name goes back to the client in `x-resilience-endpoint`:
    // a lone surrogate is text no percent-encoding can carry.
    route.chain.endpoints.forEach(({ name }, j) => {
      try {
        encodeURIComponent(name ?? "");
      } catch {
        throw new ConfigError(
          `routes.${i}.chain.endpoints.${j}.name`,
          "expected well-formed text (a name with a lone surrogate cannot be sent in x-resilience-endpoint)",
        );
      }
    });
    // Each route's chain is its own: one name for two would be one chain's statistics and order.
    if (named.has(route.chain.name))
      throw new ConfigError(
        `routes.${i}.chain.name`,
        `expected a name no other route's chain has, received ${JSON.stringify(route.chain.name)}`,
      );
    named.add(route.chain.name);
  });
  const given = plainCopy(options.routes);
  const chains = given.flatMap((r) => ("chain" in r ? [r.chain] : []));
  const chainStage = chains.length > 0 ? fallback(chains) : undefined;
  // The most specific first: a path's length without its trailing slashes (which match as one);
  // of two that match alike, the first listed (the sort is stable).
  const prefixLength = (path: string) => path.replace(/\/+$/, "").length;
  // Each with its path as requests are compared with it, and the URL the path below goes onto (a chain
  // route's first endpoint's as the URL parser writes it), worked out once, not per request.
  const routes = [...given]
    .sort((a, b) => prefixLength(b.path) - prefixLength(a.path))
    .map((route) => ({
      route,
      path: escapesInUpperCase(route.path),
      base: "chain" in route ? parsedFirstUrl(route.chain) : route.upstream,
    }));
  const makeStore = options.store;
  const healthPath = escapesInUpperCase(options.healthPath ?? "/__resilience/health");
  const tokenVar = options.healthTokenVar ?? "RESILIENCE_HEALTH_TOKEN";
  type Layer = { resilience: Resilience; store: BreakerStore | undefined };
  let layer: Layer | undefined;

  const init = (env: Env): Layer => {
    // A `resilience.store` (outside the type, taken in plain JavaScript) is
    // bound to each request's `ctx` as a factory's is.
    const store = makeStore?.(env) ?? resilienceOptions.store;
    const layerOptions: ResilienceOptions = { ...resilienceOptions };
    if (chainStage) layerOptions.fallback = chainStage;
    if (store) layerOptions.store = store;
    const resilience = createResilience(layerOptions);
    return { resilience, store };
  };

  // As the layer sees a clock of yours: the health token's wait, cancelled, does nothing, even without a cancel function.
  const clock = resilienceOptions.clock ? ownClock(resilienceOptions.clock) : systemClock;
  // Read once now, as `createResilience` reads it: a clock whose reading is no
  // finite number is refused when the proxy is made, not on its first request.
  clock.now();

  return {
    async fetch(request, env, ctx) {
      // A `store` factory that throws (a binding missing from this env, a bad
      // store: a ConfigError) rejects, which Workers log: a setup mistake is
      // never a quiet 502. Nothing is kept, so the next request tries again.
      layer ??= init(env);
      // A store of one's own whose `bindContext`, or the release it returns,
      // throws fails the call whatever the upstream answered, as any store's
      // failure does: 502, the client's body or the upstream's answer released.
      let release: (() => void) | void;
      try {
        release = layer.store?.bindContext?.(ctx);
      } catch (error) {
        request.body?.cancel().catch(() => {});
        return storeFailed(error);
      }
      let response: Response;
      try {
        response = await serve(layer, request, env);
      } catch (error) {
        // Failing already: what the release throws too adds nothing.
        try {
          release?.();
        } catch {}
        throw error;
      }
      try {
        release?.();
      } catch (error) {
        discardBody(response);
        return storeFailed(error);
      }
      return response;
    },
  };

  async function serve(layer: Layer, request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const pathname = escapesInUpperCase(url.pathname);
    if (pathname === healthPath) {
      // The proxy's own path: no route gets it, whatever the method.
      if (request.method !== "GET" && request.method !== "HEAD") {
        return Response.json({ error: "method not allowed" }, { status: 405, headers: { allow: "GET, HEAD" } });
      }
      // No env at all (Hono's `app.fetch(request)` given no bindings) sets no token, as an unset var.
      const token = await healthToken((env as Record<string, unknown> | undefined)?.[tokenVar], clock);
      const answer =
        token !== undefined && (token === null || !sameToken(request.headers.get("authorization"), token))
          ? Response.json({ error: "unauthorized" }, { status: 401, headers: { "www-authenticate": "Bearer" } })
          : Response.json(layer.resilience.health(), { headers: { "cache-control": "no-store" } });
      return request.method === "HEAD" ? new Response(null, sameStatusAndHeaders(answer)) : answer;
    }
    const matched = routes.find((r) => routeMatches(r.path, pathname));
    if (!matched) return Response.json({ error: `no route for ${url.pathname}` }, { status: 404 });
    const { route } = matched;
    const rest = url.pathname.slice(route.path.replace(/\/+$/, "").length) + url.search;
    // A chain route's target is the URL its first endpoint and the path
    // below address, own query included, as an upstream route's is (what
    // degradation rules are scoped by); the layer hands each endpoint of
    // the chain the route chose that same path below, the first endpoint's
    // own parameters to it alone.
    const target = rebase(matched.base, rest);
    const headers = copyHeaders(request.headers);
    dropHopHeaders(headers);
    for (const name of [...headers.keys()]) if (isClientHeader(name)) headers.delete(name);
    // The client's body goes on as a Request's stream: the layer reads at most
    // `maxReplayBytes` of it ahead (so a small body is retried) and sends a
    // larger one once, never holding a whole upload in the isolate's memory.
    const body = request.method === "GET" || request.method === "HEAD" ? null : request.body;
    const init = { method: request.method, headers, body, duplex: "half" } as RequestInit;
    try {
      const outgoing = new Request(target, init);
      // The route chose: its own chain, or none for one upstream, whatever
      // chain the target URL would select (two routes' chains may start at
      // one URL, or an upstream lie under a chain's).
      if (chainStage) chosenChains.set(outgoing, "chain" in route ? { name: route.chain.name, rest } : null);
      const response = await layer.resilience.fetch(outgoing, { signal: request.signal });
      // A redirect's target that declined (429, 503) says nothing of the first
      // upstream, which had the request; passed on (`redirected` does not cross
      // the wire), it would tell a client to send a POST without a key again.
      // Whatever the client's method: a chain's `transform` may have sent a
      // keyless POST for it, and `retry.idempotencyKey` a key the client's
      // next request would not carry.
      const info = getResilienceInfo(response);
      // Nor one that came after another request of the call (a retry, an
      // endpoint before) under a key the layer made for the client's keyless
      // POST or PATCH: that request may have been processed, and the client's
      // next request would go under another key.
      const retriedUnderOwnKey =
        (resilienceOptions?.retry || undefined)?.idempotencyKey === true &&
        followsOthers(response) &&
        /^(POST|PATCH)$/i.test(request.method) &&
        !hasIdempotencyKey(request.headers);
      if ((response.redirected || retriedUnderOwnKey) && isDeclined(response.status)) {
        discardBody(response);
        return Response.json({ error: "upstream unavailable" }, { status: 502 });
      }
      let out: Response;
      try {
        out = new Response(response.body, sameStatusAndHeaders(response));
      } catch (error) {
        // A status no `Response` may be made with (outside 200–599, which
        // fetch passes on): the answer goes unread, its connection released.
        discardBody(response);
        throw error;
      }
      // The signal the body is read under lives as long as the answer given.
      keepAsWell(out, response);
      dropHopHeaders(out.headers);
      if (info) {
        // An endpoint's name may hold what no header can (`primary — EU`): percent-encoded then.
        // A host's breaker key comes from `breaker.key`, unchecked: a lone surrogate in it, which no
        // encoding carries, goes as U+FFFD (a chain's endpoint names are refused when made).
        const endpoint = info.endpoint.replace(/[\uD800-\uDFFF]/gu, "\uFFFD");
        out.headers.set("x-resilience-endpoint", keptAsWritten(endpoint) ? endpoint : encodeURIComponent(endpoint));
        out.headers.set("x-resilience-attempts", String(info.attempts));
        out.headers.set("x-degradation-level", info.degradationLevel);
      }
      return out;
    } catch (error) {
      if (request.signal.aborted) throw error;
      // A clock of yours that reads wrong here too (the error may be its own) still lets the answer go:
      // a `Retry-After` then says its least, 1 s.
      let now = Number.NaN;
      try {
        now = clock.now();
      } catch {}
      return failureResponse(error, now);
    }
  }
}

/**
 * `path` with its percent-escapes in upper case: `%c3%a9` and `%C3%A9` are
 * one character (RFC 3986), and the URL parser writes what it encodes in
 * upper case but keeps a client's escapes as sent.
 */
const escapesInUpperCase = (path: string): string => path.replace(/%[\da-f]{2}/gi, (pair) => pair.toUpperCase());

/**
 * Whether a route serves a path (both with escapes in upper case): the path
 * itself or anything below it, so `"/"` (or any path ending in `/`) is a
 * catch-all for what lies under it.
 */
function routeMatches(route: string, pathname: string): boolean {
  const prefix = route.replace(/\/+$/, "");
  return pathname === prefix || pathname.startsWith(`${prefix}/`) || (prefix === "" && pathname === "/");
}

/**
 * The layer's options as `createResilience` reads them, each read once: every
 * option and every field of a group (`retry`, `retry.retryOn`, `breaker`, …)
 * by name, an inherited or hidden one too, into plain objects of its own, and
 * lists copied, so that no getter, class or prototype behind them can change
 * what runs after the check. Keys no rule names are copied as they are, for
 * the check to refuse. The caller's own objects (a clock, a store, `fetch`,
 * `random`, a stage) are kept as given: a clock that keeps its time in
 * `this` is the one the caller moves.
 */
function layerCopy(given: unknown, rule: Rule = { obj: resilienceRules }): unknown {
  if (typeof given !== "object" || given === null) return given;
  if (Array.isArray(given)) return [...given];
  const table = tableOf(rule);
  if (!table) return given;
  const copy: Record<string, unknown> = {};
  // Defined, not assigned: a key such as `__proto__` stays a key, for the check to refuse.
  const put = (key: string, value: unknown) =>
    Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
  for (const key of Object.keys(table)) {
    const value = (given as Record<string, unknown>)[key];
    if (value !== undefined) put(key, layerCopy(value, table[key]));
  }
  for (const key of optionKeys(given))
    if (!Object.hasOwn(table, key)) put(key, (given as Record<string, unknown>)[key]);
  return copy;
}

/** The fields a rule reads as an object of options (a loose one, such as a clock's or a store's, is the caller's own). */
function tableOf(rule: Rule | undefined): Table | undefined {
  if (typeof rule !== "object") return undefined;
  if ("obj" in rule) return rule.loose ? undefined : rule.obj;
  if ("or" in rule) for (const each of rule.or) if (tableOf(each)) return tableOf(each);
  return undefined;
}

/**
 * The health endpoint's token from its env var: `undefined` when the var is
 * unset or empty (the endpoint is open), else the token (a string, a number
 * as wrangler's `[vars]` may give it, or what a Secrets Store binding's
 * `get()` answers), or `null` for a value set that holds no usable token
 * (any other value, a `get()` that fails or answers no text): the endpoint
 * stays closed rather than open. A `get()` that has not answered within
 * {@link SECRET_WAIT_MS} counts as failed: the health request is answered.
 */
async function healthToken(value: unknown, clock: Clock): Promise<string | null | undefined> {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "string") return usableToken(value);
  // NaN or Infinity from `[vars]` is no token anyone was meant to send.
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : null;
  try {
    // Read inside the `try`: a binding whose `get` cannot be read keeps the endpoint closed too.
    const get = (value as { get?: unknown }).get;
    if (typeof get !== "function") return null;
    const answer: unknown = get.call(value);
    const secret = await new Promise<unknown>((resolve) => {
      const cancel = clock.setTimer(() => resolve(null), SECRET_WAIT_MS);
      Promise.resolve(answer)
        .then(resolve, () => resolve(null))
        .finally(cancel);
    });
    return typeof secret === "string" ? usableToken(secret) : null;
  } catch {
    return null;
  }
}

/**
 * A token as a client can send it: a header's value reaches the Worker
 * without the spaces around it, so a token set with them (pasted with a
 * newline) is taken without them; one of spaces alone keeps the endpoint
 * closed.
 */
function usableToken(text: string): string | null {
  // HTTP's spaces (space, tab, CR, LF), as fetch trims a header's value: a no-break space is part of the token.
  const token = trimHeaderValue(text);
  return token === "" ? null : token;
}

/** How long the health endpoint waits for a Secrets Store's `get()`. */
const SECRET_WAIT_MS = 5_000;

/**
 * Whether `given` is `Bearer <token>`, the scheme in any case and one or
 * more spaces after it (RFC 9110 reads credentials so). Compared without an
 * early exit, over the token's length whatever the length given, so timing
 * reveals neither where a guess differs nor how long the token is.
 */
function sameToken(given: string | null, token: string): boolean {
  if (given === null) return false;
  const scheme = /^bearer +/i.exec(given)?.[0];
  const value = given.slice(scheme?.length ?? 0);
  let diff = (value.length ^ token.length) | (scheme ? 0 : 1);
  for (let i = 0; i < token.length; i++) diff |= value.charCodeAt(i) ^ token.charCodeAt(i);
  return diff === 0;
}

/** A chain's first URL as the URL parser writes it (a bare origin `https://h.example` with its `/`). */
function parsedFirstUrl(chain: FallbackChainOptions): string {
  const url = String(chain.endpoints[0]?.url);
  return URL.canParse(url) ? new URL(url).href : url;
}
