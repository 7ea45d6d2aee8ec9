/**
 * Outside-in attack on secret exposure: a matrix of planted secrets × paths × outcomes × output channels.
 * Docs: SECURITY.md "No secret in events, errors, `health()` or `debugInfo()` | URLs lose their userinfo …, query
 * string and fragment (where keys such as `?api_key=` live) before they reach any of them (an error's causes
 * included, … an error's own string and `URL` fields …: a platform error that quotes the URL has it cut, and so
 * does a `fallback` event's reason, and `execute`'s `RetryExhaustedError` when its work's error names a URL), an
 * option's `ConfigError` included … (and a header value it refuses is named, never quoted), and so does the
 * message of ky's own errors through `createClient` (their `request` is ky's, as ky documents it) …; a URL with
 * `user:pass@` is refused at once, in a call or as a fallback endpoint; request headers are never recorded";
 * SECURITY.md Limits "Objects an error holds" (a client's `config` is left as it is) and "Names you choose";
 * docs/health-and-events.md (`debugInfo()` "the last 50 failures (URLs without their query string, which may hold
 * keys)"; `retry` for `execute`: "`reason` the thrown error's name, as `debugInfo()` lists it"); JSDoc of
 * `RequestEvent.error` ("The error's name (URLs in it cut …)") and `RedirectEvent` ("URLs have no query string");
 * docs/retry.md ("Messages never show the URL's userinfo, query or fragment, nor do our errors quoting a platform's
 * message that names the URL"; ky's errors "name the URL in their message without its query, userinfo and
 * fragment"; a header value "is a `TypeError` naming the header, never quoting the value"); docs/fallback.md (an
 * endpoint `url` "without `user:pass@`": "`fallback([…])` refuses any of them with a `ConfigError`");
 * docs/cloudflare.md (the proxy "answers `503` …, `504` on a timeout and `502` when no endpoint answered
 * otherwise"; "its own 502, 503 and 504 carry none of the three" headers; `GET /__resilience/health` returns
 * `health()` as JSON).
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy` (./cloudflare) called in Node as a plain handler, `recordEvents`
 * (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts), a `fetch` option standing for a
 * transport whose errors quote the URL (Deno-style), `console` spied. Each channel is searched through the error's
 * message, `stack`, `cause` chain, every own property (enumerable or not), `JSON.stringify` and `util.inspect`.
 * Secrets planted: `SECRET-Q-…` in `api_key`, `X-Amz-Signature`, `token`, `sig` and a plain `prompt` parameter,
 * `SECRET-F-…` in a fragment, `SECRET-U-…` in userinfo, `SECRET-H-…` in `authorization`/`x-api-key`/`cookie`,
 * `SECRET-B-…` in a JSON body, `SECRET-E-…` in chain endpoints' URLs and `headers`, `SECRET-X-…` in a proxy's
 * upstream URLs and chain, `SECRET-L-…` in a redirect's `Location`, `SECRET-C-…` in bad options, `SECRET-N-…` in
 * the `name` of an error a transport or a work throws. `SECRET-P-…` in path segments is searched too, but the docs
 * promise nothing about paths (they cut userinfo, query and fragment only), so it is noted, never asserted.
 * Paths: plain call, retries, redirect followed (secret in `Location`'s path and query, userinfo in it, invalid
 * Location, loop), chain moving on (network errors, 503, `validate`/`transform`/`respond` errors quoting URLs),
 * hedge, degradation rewrite, `execute` (with and without `breaker`), the ky client, `resilientProxy` (upstream
 * and chain routes, health endpoint, its 502/503/504 answers); outcomes success, HTTP failure, network failure
 * quoting the URL, timeout, abort, open breaker, `ConfigError`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a breaker's reason names the error with the URLs in its name cut, as every
 * other channel does):
 * 1. SECURITY.md "No secret in events, errors, `health()` or `debugInfo()` | URLs lose their userinfo …, query
 *    string and fragment … before they reach any of them (… an error's own string and `URL` fields …)". Observed:
 *    the `name` of an error a transport throws (a `fetch` option, an SDK's client), or a work run through
 *    `execute({ breaker })` or a named breaker's `.execute`, reaches the `breaker` event's `reason` and
 *    `health().breakers[key].lastError` (and `debugInfo()`, which spreads `health()`; and the Worker proxy's
 *    public health endpoint) as it is, `?key=…` and all: "2 failures in a row (last: NetErr
 *    https://x.example/?key=SECRET-N-…)". The same name is cut everywhere else: the thrown error's own `name`
 *    field (the redaction of the error chain), the `request` event's `error` and `debugInfo().recentErrors`
 *    (`errorName`), the `retry` event of `execute`. Mechanism: `CircuitBreaker.reportError`
 *    (src/policies/circuit-breaker.ts:265-268) passes `error.name` raw to `failure(...)` as the breaker's reason,
 *    which becomes the trip's `lastError` (src/policies/breaker-state.ts:220-222); it is not run through
 *    `errorName`/`redactUrlsIn` as src/core/error-detail.ts does for the other channels, and the breaker hears the
 *    error (src/http/send/send-attempt.ts:251) before `settleError` cuts its fields. Pinned four times, one root
 *    cause: through `resilience.fetch` (events, `health()`, `debugInfo()`), `execute({ breaker })` (`health()`),
 *    a named breaker's `.execute` (the `breaker` event) and `resilientProxy`'s health endpoint (served unauthenticated
 *    unless `RESILIENCE_HEALTH_TOKEN` is set).
 *
 * Held (plain `it`):
 * - Plain call, for a success, a 503 retried, a reset, an attempt timeout, a caller's abort and an open breaker:
 *   no query, fragment, header or body secret in the error (message, stack, causes, fields, JSON, inspect), in any
 *   event, `health()`, `debugInfo()`, `getResilienceInfo` or `console`.
 * - A transport whose error (a `TypeError` with a `cause`, an `AggregateError`, a `url` field) quotes the URL with
 *   its key: the `RetryExhaustedError` and its whole chain are cut; `debugInfo()` and events too.
 * - Redirects: a `Location` carrying `?token=…` is cut in `redirect` events and in the error of a 503 after it;
 *   one with `user:pass@`, an invalid one, one to `ftp:` and a loop of 21 are refused without quoting it; the
 *   caller's `authorization`/`x-api-key`/`cookie` never reach an event.
 * - Chains: endpoints with `?key=…` and `headers: { authorization }`, every endpoint failing with an error that
 *   quotes its URL (sequential and hedged): `FallbackExhaustedError` (message, `errors`, `cause`), `fallback`
 *   events' reasons cut; a `validate` whose error, a `transform`'s and a `respond`'s quote URLs: reasons cut.
 * - Degradation rewrite of a query and a JSON body: no secret in events or channels, success and reset.
 * - `execute`: a work's error whose message and `url` field quote a URL with a key: `RetryExhaustedError` cut,
 *   events and `debugInfo()` clean.
 * - ky: `HTTPError`, `TimeoutError` messages, stacks and causes cut (their `request` and `options` are ky's and
 *   hold the URL, headers and body, as documented); a header value with a newline is named, not quoted; a URL with
 *   userinfo is refused without quoting it.
 * - `ConfigError`s and `TypeError`s from bad options holding secrets (an endpoint URL with userinfo, a fragment, no
 *   scheme; a degradation `match` with a fragment; a bad header value in an endpoint's `headers`; an unknown
 *   option named by a URL; the proxy's upstream with credentials or a fragment, a chain endpoint with one,
 *   `healthPath` with a query): no query, userinfo or header secret quoted.
 * - `resilientProxy` in Node: upstream URL and chain endpoints with `?key=…` and an `authorization` header: its
 *   200 pass-through headers, its 502 (refused, transport quoting the URL), 503 (open) and 504 (timeout) answers
 *   (status, headers, body) and its health endpoint hold no secret; console stays silent.
 *
 * Noted, not pinned (the docs promise nothing else, or say so):
 * - Path segments are never cut (the docs cut userinfo, query and fragment only): `SECRET-P-…` shows in `request`,
 *   `retry` and `redirect` events, `debugInfo().recentErrors`, `resilience.fetch: invalid URL "http://[bad/…"`, a
 *   work's error message through `execute`, and ky's "Failed to parse URL from …" (and its `cause.input`).
 * - ky's `HTTPError`/`TimeoutError` keep `request` (URL with its key, `authorization`, `cookie`, `x-api-key`) and
 *   `options.body`: "their `request` is ky's, as ky documents it" (SECURITY.md); `options` is not named there.
 * - A client's `config.url` on a transport's error stays (SECURITY.md Limits, "Objects an error holds").
 * - A `ConfigError` quotes a bad string option that is no URL as it is (only URLs are promised to be cut).
 */
import { inspect } from "node:util";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type Resilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

/** Everything written to the console during a test. */
const printed: string[] = [];
beforeEach(() => {
  printed.length = 0;
  for (const method of ["log", "error", "warn", "info", "debug"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      printed.push(args.map((x) => inspect(x, { depth: 20 })).join(" "));
    });
  }
});
afterEach(() => {
  vi.restoreAllMocks();
});

const PARAMS =
  "api_key=SECRET-Q-APIKEY&X-Amz-Signature=SECRET-Q-SIG&token=SECRET-Q-TOKEN&sig=SECRET-Q-S&prompt=SECRET-Q-PLAIN";
const FRAGMENT = "#access_token=SECRET-F-FRAG";
const QUERY = `?${PARAMS}${FRAGMENT}`;
const HEADERS = {
  authorization: "Bearer SECRET-H-AUTH",
  "x-api-key": "SECRET-H-XAPI",
  cookie: "sid=SECRET-H-COOKIE",
};
const BODY = JSON.stringify({ prompt: "SECRET-B-BODY", steps: 50, model: "premium" });
const fast = { maxAttempts: 2, initialDelay: 1, maxDelay: 2 };

/** Every text a value shows: strings reached through own properties (enumerable or not), error parts, JSON, inspect. */
function everyText(value: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown, depth: number): void => {
    if (depth > 12 || v === null || v === undefined) return;
    if (typeof v === "string") {
      parts.push(v);
      return;
    }
    if (typeof v !== "object" && typeof v !== "function") {
      parts.push(String(v));
      return;
    }
    if (seen.has(v)) return;
    seen.add(v);
    try {
      parts.push(String(v));
    } catch {}
    if (v instanceof Request) parts.push(v.url, [...v.headers].join(";"));
    for (const key of Reflect.ownKeys(v as object)) {
      try {
        walk((v as Record<PropertyKey, unknown>)[key], depth + 1);
      } catch {}
    }
    if (v instanceof Error) {
      walk(v.name, depth + 1);
      walk(v.message, depth + 1);
      walk(v.stack, depth + 1);
      walk(v.cause, depth + 1);
    }
  };
  walk(value, 0);
  try {
    parts.push(JSON.stringify(value) ?? "");
  } catch {}
  parts.push(inspect(value, { depth: 20, showHidden: true }));
  return parts.join("\n");
}

/** The planted secrets a text shows, path segments (`SECRET-P-…`, which the docs do not promise to cut) left out. */
function secretsIn(text: string): string[] {
  return [...new Set(text.match(/SECRET-[A-Z]+(?:-[A-Z0-9]+)*/g) ?? [])]
    .filter((s) => !s.startsWith("SECRET-P-"))
    .sort();
}

/** What the call settled with: the value, or the error it rejected with. */
async function settle<T>(run: () => Promise<T>): Promise<T | unknown> {
  try {
    return await run();
  } catch (error) {
    return error;
  }
}

/** Secrets in each output channel of a layer after `run`: the error, events, health, debugInfo, info, console. */
async function channels(resilience: Resilience, run: () => Promise<unknown>) {
  const recorder = recordEvents(resilience);
  const outcome = await settle(run);
  // Background work (a drained body, a hedge's loser) settles within a few ms.
  await new Promise((resolve) => setTimeout(resolve, 20));
  recorder.stop();
  if (outcome instanceof Response) await outcome.body?.cancel();
  return {
    outcome,
    events: recorder.events,
    found: {
      error: outcome instanceof Response ? [] : secretsIn(everyText(outcome)),
      info: outcome instanceof Response ? secretsIn(everyText(getResilienceInfo(outcome))) : [],
      events: secretsIn(everyText(recorder.events)),
      health: secretsIn(everyText(resilience.health())),
      debugInfo: secretsIn(everyText(resilience.debugInfo())),
      console: secretsIn(printed.join("\n")),
    },
  };
}

const CLEAN = { error: [], info: [], events: [], health: [], debugInfo: [], console: [] };

/** The upstream's answers by path: ok, fail (503), reset, hang, redir (to `b` with secrets in Location). */
function scripted(hit: Hit): void {
  const { path, res } = hit;
  if (path.includes("/ok")) {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ url: "https://cdn.example/out.mp4?sig=SECRET-R-RESPONSE" }));
  } else if (path.includes("/fail")) {
    res.statusCode = 503;
    res.end("busy");
  } else if (path.includes("/reset")) hit.req.socket.destroy();
  else if (path.includes("/hang")) return;
  else if (path.includes("/redir")) {
    res.statusCode = 302;
    res.setHeader("location", `${b.base}/SECRET-P-LOC/next?token=SECRET-L-LOC#SECRET-F-LOC`);
    res.end();
  } else if (path.includes("/credloc")) {
    res.statusCode = 302;
    res.setHeader("location", `http://user:SECRET-U-LOC@${b.host}/x?token=SECRET-L-CRED`);
    res.end();
  } else if (path.includes("/badloc")) {
    res.statusCode = 302;
    res.setHeader("location", "http://[SECRET-L-BAD/x?token=SECRET-L-BADQ");
    res.end();
  } else if (path.includes("/ftploc")) {
    res.statusCode = 302;
    res.setHeader("location", "ftp://files.example/x?token=SECRET-L-FTP");
    res.end();
  } else if (path.includes("/loop")) {
    res.statusCode = 302;
    res.setHeader("location", "/loop?token=SECRET-L-LOOP");
    res.end();
  } else res.end("?");
}

beforeEach(() => {
  a.on(scripted);
  b.on((hit) => {
    if (hit.path.includes("/SECRET-P-LOC")) {
      hit.res.statusCode = 503;
      hit.res.end();
    } else scripted(hit);
  });
});

/** A transport standing for one whose errors quote the URL it was given (Deno's, an SDK's), key and all. */
function quotingTransport(name?: string) {
  return async (input: RequestInfo | URL): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    if (url.includes("/ok")) return new Response("ok");
    const inner = Object.assign(new Error(`connect ECONNREFUSED ${url}`), { code: "ECONNREFUSED", url });
    const error = new TypeError(`fetch failed for ${url}`, {
      cause: new AggregateError([inner, new URL(url)], `every address of ${url} failed`),
    });
    if (name !== undefined) error.name = name;
    throw error;
  };
}

const layer = (extra: Parameters<typeof createResilience>[0] = {}) =>
  createResilience({ retry: fast, timeout: { attempt: 150 }, breaker: { failureThreshold: 2 }, ...extra });

const post = { method: "POST", headers: { ...HEADERS, "idempotency-key": "SECRET-H-IDEM" }, body: BODY };

describe("plain calls: every outcome, every channel", () => {
  for (const [path, expected] of [
    ["ok", 200],
    ["fail", 503],
    ["reset", "RetryExhaustedError"],
    ["hang", "TimeoutError"],
  ] as const) {
    it(`${path}: no query, fragment, header or body secret in any channel`, async () => {
      const r = layer();
      const seen = await channels(r, () => r.fetch(`${a.base}/v1/SECRET-P-PATH/${path}${QUERY}`, post));
      const { outcome } = seen;
      expect(outcome instanceof Response ? outcome.status : (outcome as Error).name).toBe(expected);
      expect(seen.found).toEqual(CLEAN);
      // The breaker opened after two failures: the next call is refused, nothing leaks either.
      if (path !== "ok") {
        const again = await channels(r, () => r.fetch(`${a.base}/v1/SECRET-P-PATH/${path}${QUERY}`, post));
        expect((again.outcome as Error).name).toBe("CircuitOpenError");
        expect(again.found).toEqual(CLEAN);
      }
    });
  }

  it("a caller's abort: the reason as given, no secret in the channels", async () => {
    const r = layer();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const seen = await channels(r, () => r.fetch(`${a.base}/hang${QUERY}`, { ...post, signal: controller.signal }));
    expect((seen.outcome as Error).name).toBe("AbortError");
    expect(seen.events.map((e) => e.type)).toEqual(["request"]);
    expect(seen.found).toEqual(CLEAN);
  });

  it("a transport whose errors quote the URL: the whole error chain is cut, and so are events and debugInfo()", async () => {
    const r = layer({ fetch: quotingTransport() });
    const seen = await channels(r, () => r.fetch(`${a.base}/v1${QUERY}`, post));
    expect((seen.outcome as Error).name).toBe("RetryExhaustedError");
    expect((seen.outcome as Error).message).toContain(`fetch failed for ${a.base}/v1`);
    expect(seen.found).toEqual(CLEAN);
  });

  it("a URL with userinfo is refused at once without quoting it; a header value with a newline is named only", async () => {
    const r = layer();
    const userinfo = await channels(r, () => r.fetch(`http://user:SECRET-U-CALL@${a.host}/ok${QUERY}`));
    expect((userinfo.outcome as Error).name).toBe("TypeError");
    expect(userinfo.found).toEqual(CLEAN);
    const header = await channels(r, () =>
      r.fetch(`${a.base}/ok${QUERY}`, { headers: { authorization: "Bearer SECRET-H-NEWLINE\nx: y" } }),
    );
    expect((header.outcome as Error).message).toContain('header "authorization"');
    expect(header.found).toEqual(CLEAN);
    expect(a.hits).toHaveLength(0);
  });
});

describe("redirects", () => {
  it("a Location with a token: cut in redirect events and in the 503 after it; caller's headers in no event", async () => {
    const r = layer();
    const seen = await channels(r, () => r.fetch(`${a.base}/redir${QUERY}`, { headers: HEADERS }));
    expect((seen.outcome as Response).status).toBe(503);
    const redirects = seen.events.filter((e) => e.type === "redirect");
    expect(redirects.length).toBeGreaterThan(0);
    expect(redirects[0]).toMatchObject({ crossOrigin: true, to: `${b.base}/SECRET-P-LOC/next` });
    expect(seen.found).toEqual(CLEAN);
    expect(b.hits[0]?.headers.authorization).toBeUndefined();
  });

  for (const path of ["credloc", "badloc", "ftploc", "loop"]) {
    it(`${path}: refused, the Location's secrets quoted nowhere`, async () => {
      const r = layer();
      const seen = await channels(r, () => r.fetch(`${a.base}/${path}${QUERY}`, { headers: HEADERS }));
      expect((seen.outcome as Error).name).toBe("RetryExhaustedError");
      expect(seen.found).toEqual(CLEAN);
    });
  }
});

describe("chains and hedges", () => {
  for (const hedge of [false, true]) {
    it(`every endpoint failing with an error that quotes its URL (hedge: ${hedge}): all cut`, async () => {
      const r = createResilience({
        retry: fast,
        fetch: quotingTransport(),
        fallback: fallback([
          {
            name: "c",
            ...(hedge ? { hedge: { delay: 1 } } : {}),
            endpoints: [
              { name: "p", url: `${a.base}/v1?key=SECRET-E-P`, headers: { authorization: "Bearer SECRET-E-PH" } },
              { name: "q", url: `${b.base}/v2?key=SECRET-E-Q`, headers: { "x-api-key": "SECRET-E-QH" } },
            ],
          },
        ]),
      });
      const seen = await channels(r, () =>
        r.fetch(`${a.base}/v1/jobs${QUERY}`, { headers: { ...HEADERS, "idempotency-key": "k" } }),
      );
      const error = seen.outcome as Error & { errors: Record<string, unknown> };
      expect(error.name).toBe("FallbackExhaustedError");
      expect(Object.keys(error.errors).sort()).toEqual(["p", "q"]);
      expect(seen.events.filter((e) => e.type === "fallback")).toHaveLength(2);
      expect(seen.found).toEqual(CLEAN);
    });
  }

  it("moving on over a 503, a refused endpoint and a hang (attempt timeout): endpoint keys in no channel", async () => {
    const refused = await refusedOrigin();
    const r = layer({
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/fail?key=SECRET-E-P1`, headers: { authorization: "Bearer SECRET-E-H1" } },
            { name: "q", url: `${refused}/v2?key=SECRET-E-Q1` },
            { name: "r", url: `${a.base}/hang?key=SECRET-E-R1` },
          ],
        },
      ]),
    });
    const seen = await channels(r, () => r.fetch(`${a.base}/fail/x${QUERY}`, { headers: HEADERS }));
    expect((seen.outcome as Response).status).toBe(503);
    expect(seen.events.filter((e) => e.type === "fallback").map((e) => (e as { from: string }).from)).toEqual([
      "p",
      "q",
      "r",
    ]);
    expect(seen.found).toEqual(CLEAN);
    // Now every breaker is open: the chain refuses at once.
    const again = await channels(r, () => r.fetch(`${a.base}/fail/x${QUERY}`, { headers: HEADERS }));
    expect(again.found).toEqual(CLEAN);
  });

  it("validate, transform and respond errors quoting URLs and the answer: the fallback reasons are cut", async () => {
    const r = layer({
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            {
              name: "p",
              url: `${a.base}/ok?key=SECRET-E-P2`,
              validate: {
                "~standard": {
                  version: 1,
                  vendor: "probe",
                  validate: (value: unknown) => ({
                    issues: [{ message: `unexpected ${JSON.stringify(value)} from ${a.base}/ok?key=SECRET-V-ISSUE` }],
                  }),
                },
              },
            },
            {
              name: "q",
              url: `${b.base}/v2?key=SECRET-E-Q2`,
              transform: (req) => {
                throw new Error(`cannot shape ${req.url}`);
              },
            },
            {
              name: "s",
              respond: (req) => {
                throw new Error(`no cached answer for ${req.url}`);
              },
            },
          ],
        },
      ]),
    });
    const seen = await channels(r, () => r.fetch(`${a.base}/ok/x${QUERY}`, { headers: HEADERS }));
    expect((seen.outcome as Response).status).toBe(200);
    const reasons = seen.events.filter((e) => e.type === "fallback").map((e) => (e as { reason: string }).reason);
    expect(reasons).toHaveLength(3);
    expect(reasons[0]).toContain("https://cdn.example/out.mp4");
    expect(seen.found).toEqual(CLEAN);
  });
});

describe("degradation rewrite", () => {
  it("a rewritten query and JSON body at minimal, on success and on a reset: no secret in any channel", async () => {
    const r = layer({
      degradation: degradation({
        rules: [{ match: a.base, params: { steps: "steps", model: { query: "model" } } }],
      }),
    });
    r.degradation?.setLevel("minimal");
    const ok = await channels(r, () => r.fetch(`${a.base}/ok?${PARAMS}&model=premium${FRAGMENT}`, post));
    expect(getResilienceInfo(ok.outcome as Response)?.degradationLevel).toBe("minimal");
    expect(a.hits[0]?.path).toContain("model=basic");
    expect(JSON.parse(a.hits[0]?.body ?? "{}")).toMatchObject({ steps: 10 });
    expect(ok.found).toEqual(CLEAN);
    const reset = await channels(r, () => r.fetch(`${a.base}/reset?${PARAMS}&model=premium${FRAGMENT}`, post));
    expect((reset.outcome as Error).name).toBe("RetryExhaustedError");
    expect(reset.found).toEqual(CLEAN);
  });
});

describe("execute", () => {
  it("a work's error quoting a URL in its message and a url field: RetryExhaustedError and channels cut", async () => {
    const r = layer();
    const seen = await channels(r, () =>
      r.execute(
        async () => {
          throw Object.assign(new Error("upstream said no at https://x.example/v1?key=SECRET-Q-WORK"), {
            url: "https://user:SECRET-U-WORK@x.example/v1?key=SECRET-Q-FIELD",
          });
        },
        { retry: fast, breaker: "svc" },
      ),
    );
    expect((seen.outcome as Error).name).toBe("RetryExhaustedError");
    expect(seen.found).toEqual(CLEAN);
  });

  it("the name of a work's error: cut in the retry event, the request record and the error itself", async () => {
    const r = layer();
    const seen = await channels(r, () =>
      r.execute(
        async () => {
          throw Object.assign(new Error("refused"), { name: "JobError https://x.example/?key=SECRET-N-RETRY" });
        },
        { retry: fast },
      ),
    );
    expect((seen.outcome as Error).name).toBe("RetryExhaustedError");
    expect(seen.events.filter((e) => e.type === "retry")).toHaveLength(1);
    expect(seen.found).toEqual(CLEAN);
  });
});

describe("defect 1: an error's name reaches the breaker's reason and health() uncut", () => {
  it("through resilience.fetch: a transport error's name with ?key= is cut in breaker events and health()", async () => {
    const r = layer({ fetch: quotingTransport("NetErr https://x.example/?key=SECRET-N-FETCH") });
    const seen = await channels(r, () => r.fetch(`${a.base}/v1${QUERY}`));
    // Cut where the docs promise it: the error itself, the request event, debugInfo's records...
    expect((seen.outcome as Error).name).toBe("RetryExhaustedError");
    expect(seen.found.error).toEqual([]);
    expect(secretsIn(everyText(r.debugInfo().recentErrors))).toEqual([]);
    expect(r.health().breakers[a.host]?.state).toBe("open");
    // ...and in the breaker's reason, which health() and the breaker event show.
    expect(seen.found).toEqual(CLEAN); // observed: events, health and debugInfo show SECRET-N-FETCH
  });

  it("through execute({ breaker }): a work error's name with ?key= is cut in health()", async () => {
    const r = layer();
    await settle(() =>
      r.execute(
        async () => {
          throw Object.assign(new Error("refused"), { name: "JobError https://x.example/?key=SECRET-N-EXEC" });
        },
        { retry: fast, breaker: "svc" },
      ),
    );
    expect(r.health().breakers.svc?.state).toBe("open");
    // observed: "2 failures in a row (last: JobError https://x.example/?key=SECRET-N-EXEC)"
    expect(r.health().breakers.svc?.lastError).not.toContain("SECRET-N-EXEC");
  });

  it("a named breaker's own execute: the work error's name with ?key= is cut in the breaker event", async () => {
    const r = layer();
    const reasons: (string | null)[] = [];
    r.on("breaker", (e) => reasons.push(e.reason));
    const named = r.breaker("upscaler", { failureThreshold: 1 });
    await settle(() =>
      named.execute(async () => {
        throw Object.assign(new Error("refused"), { name: "JobError https://x.example/?key=SECRET-N-NAMED" });
      }),
    );
    expect(reasons).toHaveLength(1);
    expect(reasons.join(" ")).not.toContain("SECRET-N-NAMED"); // observed: "1 failure in a row (last: JobError …?key=…)"
  });
});

describe("ky client", () => {
  /** A ky error's own text: name, message, stack and cause chain (its `request`, `response` and `options` are ky's). */
  const kyText = (error: unknown) => {
    const e = error as Error;
    return [e.name, e.message, e.stack, everyText(e.cause)].join("\n");
  };

  for (const [label, path, options, expected] of [
    ["HTTPError (503)", "fail", { method: "post", headers: HEADERS, body: BODY }, "HTTPError"],
    ["TimeoutError", "hang", { headers: HEADERS, timeout: 60 }, "TimeoutError"],
    ["reset", "reset", { headers: HEADERS }, "RetryExhaustedError"],
    ["redirect to a 503", "redir", { headers: HEADERS }, "HTTPError"],
  ] as const) {
    it(`${label}: the error's message, stack and causes are cut, and the layer's channels are clean`, async () => {
      const r = layer();
      const api = createClient({ resilience: r });
      const seen = await channels(r, () => api(`${a.base}/${path}${QUERY}`, options));
      expect((seen.outcome as Error).name).toBe(expected);
      expect(secretsIn(kyText(seen.outcome))).toEqual([]);
      expect({ ...seen.found, error: [] }).toEqual(CLEAN);
    });
  }

  it("a header value with a newline is named, not quoted; a URL with userinfo is refused without quoting it", async () => {
    const r = layer();
    const api = createClient({ resilience: r });
    const header = await settle(() => api.get(`${a.base}/ok${QUERY}`, { headers: { "x-api-key": "SECRET-H-KY\nx" } }));
    expect((header as Error).message).toContain('header "x-api-key"');
    expect(secretsIn(everyText(header))).toEqual([]);
    const userinfo = await settle(() => api.get(`http://user:SECRET-U-KY@${a.host}/ok${QUERY}`));
    expect(userinfo).toBeInstanceOf(TypeError);
    expect(secretsIn(everyText(userinfo))).toEqual([]);
    expect(a.hits).toHaveLength(0);
  });
});

describe("ConfigErrors from options holding secrets", () => {
  // Named properties: V8 names each function by its key, so no stack frame is named after a secret.
  const cases: Record<string, () => unknown> = {
    "endpoint with userinfo": () =>
      fallback([{ name: "c", endpoints: [{ name: "p", url: "https://u:SECRET-U-EP@h.example/v1?key=SECRET-C-1" }] }]),
    "endpoint with a fragment": () =>
      fallback([{ name: "c", endpoints: [{ name: "p", url: "https://h.example/v1?key=SECRET-C-2#SECRET-F-C" }] }]),
    "endpoint without a scheme": () =>
      fallback([{ name: "c", endpoints: [{ name: "p", url: "h.example/v1?key=SECRET-C-3" }] }]),
    "endpoint header value": () =>
      fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://h.example/v1", headers: { authorization: "Bearer SECRET-C-4\u20ac" } },
          ],
        },
      ]),
    "degradation match": () =>
      degradation({ rules: [{ match: "https://u:SECRET-U-DM@h.example/v1?key=SECRET-C-5#x", params: {} }] }),
    "unknown option": () => createResilience({ "https://h.example/?key=SECRET-C-6": 1 } as never),
    "a URL for a number": () => createResilience({ timeout: { total: "https://h.example/?key=SECRET-C-7" as never } }),
    "proxy upstream with credentials": () =>
      resilientProxy({ routes: [{ path: "/", upstream: "https://u:SECRET-U-PX@h.example/v1?key=SECRET-C-8" }] }),
    "proxy upstream with a fragment": () =>
      resilientProxy({ routes: [{ path: "/", upstream: "https://h.example/v1?key=SECRET-C-9#f" }] }),
    "proxy chain endpoint": () =>
      resilientProxy({
        routes: [
          {
            path: "/",
            chain: { name: "c", endpoints: [{ name: "p", url: "https://u:SECRET-U-PC@h.example/?key=SECRET-C-10" }] },
          },
        ],
      }),
    "proxy healthPath": () =>
      resilientProxy({ routes: [{ path: "/", upstream: "https://h.example/" }], healthPath: "/h?key=SECRET-C-11" }),
  };
  for (const [label, build] of Object.entries(cases)) {
    it(`${label}: refused, no query, userinfo or header secret quoted`, () => {
      let error: unknown;
      try {
        build();
      } catch (thrown) {
        error = thrown;
      }
      expect(error).toBeInstanceOf(Error);
      expect(secretsIn(everyText(error))).toEqual([]);
    });
  }
});

describe("resilientProxy in Node as a plain handler", () => {
  const ctx = { waitUntil: () => {} };
  const call = async (proxy: ReturnType<typeof resilientProxy>, path: string) => {
    const res = await proxy.fetch(new Request(`http://proxy.local${path}?client=1`, { headers: HEADERS }), {}, ctx);
    const body = await res.text();
    const headers = [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
    return { status: res.status, headers: res.headers, body, secrets: secretsIn(`${headers}\n${body}`) };
  };
  const routesOn = (upstream: string) => [
    { path: "/u", upstream: `${upstream}/v1?key=SECRET-X-UP` },
    {
      path: "/c",
      chain: {
        name: "cc",
        endpoints: [
          { name: "p", url: `${upstream}/v1?key=SECRET-X-C1`, headers: { authorization: "Bearer SECRET-X-CH" } },
          { name: "q", url: `${upstream}/v2?key=SECRET-X-C2` },
        ],
      },
    },
  ];
  const resilience = { retry: fast, timeout: { attempt: 100 }, breaker: { failureThreshold: 1 } };

  it("a 200 pass-through: the upstream gets its key, the client's answer carries none", async () => {
    a.on((hit) => hit.res.end("done"));
    const proxy = resilientProxy({ routes: routesOn(a.base), resilience });
    const answer = await call(proxy, "/u/jobs");
    expect(answer).toMatchObject({ status: 200, body: "done", secrets: [] });
    expect(answer.headers.get("x-resilience-endpoint")).toBe(a.host);
    expect(a.hits[0]?.path).toBe("/v1/jobs?key=SECRET-X-UP&client=1");
    const health = await call(proxy, "/__resilience/health");
    expect(health).toMatchObject({ status: 200, secrets: [] });
  });

  it("502 (refused), 503 (open) on both routes: fixed bodies, no secret, none of the x- headers", async () => {
    const refused = await refusedOrigin();
    const proxy = resilientProxy({ routes: routesOn(refused), resilience });
    const answers = [await call(proxy, "/u/jobs"), await call(proxy, "/u/jobs"), await call(proxy, "/c/jobs")];
    expect(answers.map((x) => [x.status, x.body])).toEqual([
      [502, '{"error":"upstream unavailable"}'],
      [503, '{"error":"upstream circuit open"}'],
      [503, '{"error":"upstream circuit open"}'],
    ]);
    for (const x of answers) {
      expect(x.secrets).toEqual([]);
      expect(x.headers.get("x-resilience-endpoint")).toBeNull();
    }
    const health = await call(proxy, "/__resilience/health");
    expect(health.body).toContain('"state":"open"');
    expect(health.secrets).toEqual([]);
    expect(secretsIn(printed.join("\n"))).toEqual([]);
  });

  it("defect 1 through the proxy: a transport error's name with ?key= is cut on the health endpoint", async () => {
    const proxy = resilientProxy({
      routes: routesOn(a.base),
      resilience: { ...resilience, fetch: quotingTransport("NetErr https://x.example/?key=SECRET-N-PROXY") },
    });
    const failed = await call(proxy, "/u/jobs");
    expect([failed.status, failed.secrets]).toEqual([502, []]);
    const health = await call(proxy, "/__resilience/health");
    expect(health.body).toContain('"state":"open"');
    expect(health.secrets).toEqual([]); // observed: lastError and reason hold the name, key and all
  });

  it("504 (timeout) and a 502 from a transport quoting the URL: fixed bodies, health clean", async () => {
    a.on(() => {});
    const slow = resilientProxy({ routes: routesOn(a.base), resilience: { ...resilience, retry: false } });
    const timedOut = await call(slow, "/u/jobs");
    expect([timedOut.status, timedOut.body, timedOut.secrets]).toEqual([504, '{"error":"upstream timed out"}', []]);
    const quoting = resilientProxy({
      routes: routesOn(a.base),
      resilience: { ...resilience, fetch: quotingTransport() },
    });
    const failed = await call(quoting, "/c/jobs");
    expect([failed.status, failed.secrets]).toEqual([502, []]);
    expect((await call(quoting, "/__resilience/health")).secrets).toEqual([]);
    expect(secretsIn(printed.join("\n"))).toEqual([]);
  });
});
