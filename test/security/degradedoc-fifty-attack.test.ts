/**
 * Outside-in attack on graceful degradation as docs/degradation.md (every sentence), the degradation rows of
 * docs/options.md, the degradation parts of README.md and the JSDoc of the `./degradation` exports describe it:
 * request rewriting by level on every path a call can take, what is done to the body (its kind, `content-type`,
 * charset, `content-length`, streams, a used body), idempotency keys across rewritten retries, the level header
 * across origins, how levels move under many calls at once and come back, what events, `health()` and
 * `debugInfo()` report, and bad options.
 *
 * Docs:
 * - docs/degradation.md: "`degradation(options)` checks its options at once (`degradation.levels.medium.maxSteps`
 *   …); each layer it joins gets its own level"; "`resilience.fetch` applies the level to requests before they
 *   leave. The default rule reads the usual parameter names … at the top level of any JSON body; `rules` say where
 *   they live instead (a JSON body path …, `{ query: "q" }` or `{ header: "x-model" }`)"; "The breaker key
 *   (`url.host`, or `breaker.key(url)`) is taken from the URL the caller asked for, before the rewrite: a call keeps
 *   its host's breaker at every level, and a `breaker.key` that reads a query parameter a rule rewrites reads the
 *   caller's value"; "non-JSON bodies are left alone, and so are bytes or a Blob labelled with a charset other than
 *   UTF-8 …"; "(a string body is sent as UTF-8 whatever its label, and is rewritten)"; "So is a body sent as a stream
 *   (… a `Request` body larger than `maxReplayBytes` that is not `keepalive` …: a keepalive one is read whole … and
 *   each is rewritten as any body in memory is): it goes once, as it is, unread, so its level header and
 *   `degradationLevel` name a level its body does not show"; "the other bytes of a JSON body (a leading byte-order
 *   mark included, and its kind: a string, bytes or a Blob of the same type, so the `content-type` fetch derives
 *   from it is the same; a `content-length` that came with the old body, as the Worker proxy forwards the client's,
 *   is dropped for fetch to count the new one), and the other query parameters, stay as you wrote them (each place
 *   of a repeated query parameter is adjusted from its own value; a header's value is read whole first, … and one
 *   the level leaves as it is is read as a header sent twice, `50, 50`, each value adjusted)"; "`levelHeader` … to
 *   another origin (a fallback endpoint, a redirect) it goes, like the caller's own headers, only when named in
 *   `crossOriginHeaders`"; "A call takes the level it finds when it starts: its rewritten body, its level header and
 *   `getResilienceInfo(res).degradationLevel` all name that level"; "Manual control always works …"; "Automatic
 *   triggers are fed by every call that settles …, and evaluated at most once a second as calls settle"; "A breach
 *   steps down one level per `stepInterval` (10 s). Stepping up needs the signals to be clearly healthy … for a
 *   whole `restoreAfter` (60 s), one level at a time".
 * - docs/retry.md (redirects, which the degradation doc points to): "a hop back to the first host is part of the
 *   attempt its breaker admitted"; "A hop to another host whose breaker refuses calls (open …) is refused as a call
 *   to it would be, with a `CircuitOpenError` naming that host and nothing sent there, its `afterRedirect` `true`";
 *   "with a `breaker.key` of your own, a hop goes to another host when its URL's key differs from the first URL's".
 * - docs/options.md: "`createResilience` validates them … and throws `ConfigError` naming the path …"; "A value that
 *   cannot be read (a getter that throws, a revoked `Proxy`) is a `ConfigError` naming its path too"; the
 *   `degradation.…` rows; `maxReplayBytes` "measured as the caller sent it (a degradation rule's edit may lengthen a
 *   kept one); larger ones go once"; `retry.idempotencyKey`.
 * - README.md: `getResilienceInfo(res) // { attempts, endpoint, fromFallback, degradationLevel, … }`; the
 *   `…/degradation` row ("five levels, triggers, request rewriting").
 * - JSDoc: `degradation()` ("Options are checked at once: a bad value throws `ConfigError` naming its path. Each
 *   layer the stage joins gets its own level"); `BreakerOptions.key` ("the URL the caller asked for, before a
 *   degradation rewrite changes its query (a redirect hop is admitted by the key of the hop's own URL)");
 *   `GracefulDegradation` (`degrade`, `restore`, `setLevel`, `currentLevel`); `DegradationOptions` (`minSamples`,
 *   `stepInterval`, `restoreAfter`, `levelHeader`).
 *
 * How: `createResilience`, `getResilienceInfo`, `isConfigError`, `isCircuitOpenError` (root), `degradation`
 * (./degradation), `fallback` (./fallback), `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock`
 * (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) that record every request, one
 * reached as `localhost` for another origin; time on a `TestClock` (retry waits, hedge delay, breaker timeouts,
 * trigger windows), advanced only once the layer has set its timer.
 *
 * Paths: plain call (string URL; string, bytes, Blob, File, form bodies), `Request` input (JSON body, URL query
 * parameters, a used body, keepalive and not past `maxReplayBytes`), query and header rules, followed 307 (same
 * server) and 303, cross-origin 307 (127.0.0.1 → localhost), retries under `retry.idempotencyKey`, fallback chain
 * (to localhost), hedge, ky client, `resilientProxy`, many calls at once, the way back to `full`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fiftieth session, so plain `it`):
 * 1. docs/degradation.md "The breaker key … is taken from the URL the caller asked for, before the rewrite: a call
 *    keeps its host's breaker at every level, and a `breaker.key` that reads a query parameter a rule rewrites reads
 *    the caller's value", with docs/retry.md "a hop back to the first host is part of the attempt its breaker
 *    admitted" and `BreakerOptions.key`'s JSDoc. Observed: `breaker.key: (u) => host + model`, a
 *    `{ model: { query: "model" } }` rule, `halfOpenMaxCalls: 1`; the host "premium" is half-open and a call to
 *    `…/gen?model=premium` is its probe. At `full` the server's 307 to `/done?model=premium` (the caller's own key)
 *    is followed and the call gets 200. At `medium` the same call (sent as `?model=standard`) is refused on that hop
 *    with `CircuitOpenError` for "host premium", `afterRedirect: true`: its own probe slot is taken as another
 *    host's (also through a `Request` input, the ky client, and down a chain, which then moves on to its spare).
 *    Source: src/http/send/follow-redirects.ts `follow` hands `gate` the URL the transport was given (`start`, the
 *    rewritten URL), and src/http/send/send-attempt.ts `admitHop` compares `keyOf(url)` with `keyOf(from)`, the key
 *    of the rewritten URL, where the attempt was admitted under the caller's (`key` in src/http/resilient-fetch.ts,
 *    `request.callerUrl`).
 * 2. Same sentences, with docs/retry.md "A hop to another host whose breaker refuses calls (open …) is refused …
 *    with a `CircuitOpenError` naming that host and nothing sent there". Observed: "host standard" is open (a plain
 *    call to `…?model=standard` is refused); at `medium` a call to `…/gen?model=premium` (key "host premium") is
 *    sent as `?model=standard`, the server answers 307 to `/moved?model=standard`, and the hop is sent to the open
 *    "host standard" and answered 200, never asked: its key equals that of the rewritten URL, so it passes as the
 *    first host's. At `full` the same redirect from `?model=premium` is refused (held). Same source.
 *
 * Held (plain `it`):
 * - Body kinds at `medium`: a string, bytes (`Uint8Array`, `ArrayBuffer`, `DataView`), a Blob and a File are
 *   rewritten in kind (the Blob's `content-type` kept, bytes sent with none, a string as `text/plain`), a byte-order
 *   mark kept; bytes or a Blob labelled `charset=iso-8859-1`/`latin1` and a `URLSearchParams` body are sent as
 *   written; a string labelled `iso-8859-1` is rewritten; a caller's `content-length` is dropped when the rewrite
 *   changes the length, for a plain call and a `Request`; a `Request` whose body was read is refused at once with a
 *   `TypeError`, nothing sent, counted nowhere.
 * - A keepalive `Request` past `maxReplayBytes` is rewritten; a non-keepalive one goes unread, its level header and
 *   `degradationLevel` naming `medium`.
 * - Query and header rules: each place of a repeated parameter adjusted from its own value (`20.0` and `abc` kept,
 *   `st%65ps` edited with its name as written), the other parameters byte for byte; a header sent twice adjusted
 *   value by value; a features header filtered; a `Request` with URL query parameters rewritten.
 * - Redirects: a 307 on the same server re-sends the rewritten body, the level header and the header rule's value; a
 *   303 follows as a GET without the body; a 307 to `localhost` re-sends the rewritten body without the level header
 *   or `x-model`, for a string URL and a `Request`.
 * - Retries under `retry.idempotencyKey`: one key and the one rewritten body on every attempt; a chain's spare on
 *   `localhost` gets the same key and body, without the level header; a hedge sends the rewritten body to both.
 * - ky: `json` rewritten, `getResilienceInfo` names the level; `resilientProxy`: the client's `content-length` is
 *   dropped with the rewritten body, `x-degradation-level` names the level.
 * - Under 30 calls at once per step of 5 s, all failing: each call's `degradationLevel` is the level it started at,
 *   one step down per `stepInterval` (events at 5, 15, 25, 35 s, `health()` and `debugInfo()` agree); the way back is
 *   one level per `restoreAfter` of healthy calls, back to `full`.
 * - One stage in two layers: two levels. Bad options: a `ConfigError` at once naming the path (a getter that throws
 *   and a revoked Proxy too); a plain object where the stage goes, in the root, the ky client and the proxy.
 *
 * Docs-silent (not pinned):
 * - A location with two keys, `{ query: "q", header: "x" }`, is a `ConfigError` that names
 *   `degradation.rules.0.params.steps.body` ("expected string, received undefined"), a key the caller never wrote.
 * - A rule that is no plain object (a class instance) is kept as given (as docs/options.md says of "other objects"),
 *   and read on every call: a `params` getter that throws later fails each call with `RetryExhaustedError: gave up
 *   after 0 attempts …`, counted in `health().errorRate` and in the triggers, so it degrades the layer further.
 * - `resilience.degradation.settings()` returns the layer's own settings object: writing to it (`maxSteps = 5`)
 *   changes every later rewrite and `adjust`. (Since fixed: the settings are frozen.)
 * - A file-backed Blob (`fs.openAsBlob`) larger than `maxReplayBytes` is read whole into memory for the rewrite at any
 *   level below `full`, and sent as a new in-memory Blob (SECURITY.md's "Buffered bodies are bounded" speaks of
 *   replay only).
 * - A string body labelled `charset=iso-8859-1` is rewritten when given in `init`, not when given in a `Request` (or
 *   by the ky client's `json`, which becomes one): the layer sees the `Request`'s bytes.
 */
import { openAsBlob, rmSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isCircuitOpenError, isConfigError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const up = httpUpstream();
const other = httpUpstream();
serveDuringFile(up, other);

/** Triggers that read only error rate and latency, whatever machine runs the test. */
const calm = { triggers: { cpuUsage: 1, memoryUsage: 1 }, browserSignals: false } as const;
const json = (body: string): RequestInit => ({
  method: "POST",
  body,
  headers: { "content-type": "application/json" },
});
const localhost = (path: string): string => `http://localhost:${other.port}${path}`;
/** Splits one host's breakers by the `model` query parameter. */
const modelKey = (u: URL): string => `${u.host} ${u.searchParams.get("model") ?? ""}`;

async function drain(response: Response): Promise<Response> {
  await response.text();
  return response;
}

/** Resolves once the layer set a timer on the clock (a retry wait, a hedge delay). */
async function untilTimer(clock: TestClock): Promise<void> {
  while (clock.pending() === 0) await new Promise((resolve) => setTimeout(resolve, 1));
}

function configError(make: () => unknown): { path: string; message: string } | "accepted" | "other" {
  try {
    make();
    return "accepted";
  } catch (error) {
    return isConfigError(error) ? { path: error.path, message: error.message } : "other";
  }
}

const sent = (hit: Hit | undefined) => ({
  method: hit?.method,
  path: hit?.path,
  body: hit?.body,
  level: hit?.headers["x-level"],
  model: hit?.headers["x-model"],
});

describe("defects: a redirect hop is keyed against the rewritten URL, not the caller's", () => {
  const rules = [{ params: { model: { query: "model" } } }];

  /** A layer whose "host premium" breaker is half-open, one probe at a time, at `level`. */
  async function halfOpenPremium(level: "full" | "medium", chained = false) {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, halfOpenMaxCalls: 1, timeout: 1_000, key: modelKey },
      degradation: degradation({ ...calm, rules }),
      ...(chained && {
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "primary", url: up.base },
              { name: "spare", url: localhost("") },
            ],
          },
        ]),
      }),
    });
    up.on((hit) => {
      if (hit.n === 1) {
        hit.res.statusCode = 503;
        hit.res.end("down");
      } else if (hit.path.startsWith("/gen")) {
        hit.res.writeHead(307, { location: "/done?model=premium" });
        hit.res.end();
      } else hit.res.end("ok");
    });
    await drain(await layer.fetch(`${up.base}/gen?model=premium`));
    await clock.advance(1_500);
    expect(layer.health().breakers[`${up.host} premium`]?.state).toBe("half_open");
    layer.degradation.setLevel(level);
    return layer;
  }

  it("held: at `full`, the probe's 307 back to its own key is followed (200)", async () => {
    const layer = await halfOpenPremium("full");
    const outcome = await layer.fetch(`${up.base}/gen?model=premium`).then(
      (r) => r.text(),
      (e: unknown) => e,
    );
    expect(outcome).toBe("ok");
    expect(up.hits.map((h) => h.path)).toEqual(["/gen?model=premium", "/gen?model=premium", "/done?model=premium"]);
  });

  it("at `medium`, the probe's 307 back to its own key (the caller's) is part of its attempt too", async () => {
    const layer = await halfOpenPremium("medium");
    const outcome = await layer.fetch(`${up.base}/gen?model=premium`).then(
      (r) => r.text(),
      (e: unknown) => e,
    );
    // Observed: CircuitOpenError for "<host> premium", afterRedirect true, the hop never sent.
    expect(outcome).toBe("ok");
    expect(up.hits.map((h) => h.path)).toEqual(["/gen?model=premium", "/gen?model=standard", "/done?model=premium"]);
  });

  // Added with the fix: the same probe through a `Request` input, the ky client and a chain's first endpoint.
  for (const via of ["Request", "ky", "chain"] as const) {
    it(`at \`medium\`, the probe's 307 back to its own key is part of its attempt (${via})`, async () => {
      other.on((hit) => hit.res.end("spare"));
      const layer = await halfOpenPremium("medium", via === "chain");
      // The chain's first call (the 503 that opened the primary's key) moved on to the spare.
      other.reset();
      const url = `${up.base}/gen?model=premium`;
      const call =
        via === "Request"
          ? layer.fetch(new Request(url))
          : via === "ky"
            ? createClient({ resilience: layer })(url)
            : layer.fetch(url);
      const outcome = await call.then(
        (r) => r.text(),
        (e: unknown) => e,
      );
      expect(outcome).toBe("ok");
      expect(up.hits.map((h) => h.path)).toEqual(["/gen?model=premium", "/gen?model=standard", "/done?model=premium"]);
      expect(other.hits).toHaveLength(0);
    });
  }

  /** A layer whose "host standard" breaker is open, at `level`; `/gen` answers 307 to `/moved?model=standard`. */
  async function standardOpen(level: "full" | "medium") {
    const layer = createResilience({
      clock: new TestClock(),
      retry: false,
      breaker: { failureThreshold: 1, key: modelKey },
      degradation: degradation({ ...calm, rules }),
    });
    up.on((hit) => {
      if (hit.n === 1) {
        hit.res.statusCode = 503;
        hit.res.end("down");
      } else if (hit.path.startsWith("/gen")) {
        hit.res.writeHead(307, { location: "/moved?model=standard" });
        hit.res.end();
      } else hit.res.end("ok");
    });
    await drain(await layer.fetch(`${up.base}/gen?model=standard`));
    const plain = await layer.fetch(`${up.base}/x?model=standard`).then(drain, (e: unknown) => e);
    expect(isCircuitOpenError(plain)).toBe(true);
    layer.degradation.setLevel(level);
    return layer;
  }

  it("held: at `full`, a hop to the open key is refused, nothing sent there", async () => {
    const layer = await standardOpen("full");
    const outcome = await layer.fetch(`${up.base}/gen?model=premium`).then(drain, (e: unknown) => e);
    expect(isCircuitOpenError(outcome) && outcome.key === `${up.host} standard` && outcome.afterRedirect).toBe(true);
    expect(up.hits.map((h) => h.path)).toEqual(["/gen?model=standard", "/gen?model=premium"]);
  });

  it("at `medium`, a hop to the open key is refused too (the caller's key is premium)", async () => {
    const layer = await standardOpen("medium");
    const outcome = await layer.fetch(`${up.base}/gen?model=premium`).then(drain, (e: unknown) => e);
    // Observed: the hop goes to the open host and the call resolves with its 200.
    expect(isCircuitOpenError(outcome) && outcome.key === `${up.host} standard` && outcome.afterRedirect).toBe(true);
    expect(up.hits.map((h) => h.path)).toEqual(["/gen?model=standard", "/gen?model=standard"]);
  });
});

describe("held: what a rewrite does to the body", () => {
  const j = '{"steps":50}';
  const bytes = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text);

  it("each kind is rewritten in kind; another charset and a form are sent as written", async () => {
    const layer = createResilience({ retry: false, degradation: degradation({ ...calm }) });
    layer.degradation.setLevel("medium");
    const cases: Array<[string, BodyInit, Record<string, string>, string, string | undefined]> = [
      ["string", j, {}, '{"steps":30}', "text/plain;charset=UTF-8"],
      ["Uint8Array", bytes(j), {}, '{"steps":30}', undefined],
      ["ArrayBuffer", bytes(j).buffer, {}, '{"steps":30}', undefined],
      ["DataView", new DataView(bytes(j).buffer), {}, '{"steps":30}', undefined],
      ["Blob", new Blob([j], { type: "application/json" }), {}, '{"steps":30}', "application/json"],
      ["File", new File([j], "a.json", { type: "application/json" }), {}, '{"steps":30}', "application/json"],
      ["BOM", new Uint8Array([0xef, 0xbb, 0xbf, ...bytes(j)]), {}, '\ufeff{"steps":30}', undefined],
      [
        "latin1 bytes",
        bytes(j),
        { "content-type": "application/json; charset=iso-8859-1" },
        j,
        "application/json; charset=iso-8859-1",
      ],
      [
        "latin1 Blob",
        new Blob([j], { type: "application/json;charset=latin1" }),
        {},
        j,
        "application/json;charset=latin1",
      ],
      [
        "latin1 string",
        j,
        { "content-type": "application/json; charset=iso-8859-1" },
        '{"steps":30}',
        "application/json; charset=iso-8859-1",
      ],
      ["form", new URLSearchParams({ steps: "50" }), {}, "steps=50", "application/x-www-form-urlencoded;charset=UTF-8"],
    ];
    const seen: Record<string, [string, string | undefined]> = {};
    const want: Record<string, [string, string | undefined]> = {};
    for (const [name, body, headers, expected, type] of cases) {
      up.reset();
      await drain(await layer.fetch(`${up.base}/k`, { method: "POST", body, headers }));
      seen[name] = [up.hits[0]?.body ?? "", up.hits[0]?.headers["content-type"]];
      want[name] = [expected, type];
    }
    expect(seen).toEqual(want);
  });

  it("a caller's `content-length` is dropped when the rewrite changes the length (init and Request)", async () => {
    const layer = createResilience({ retry: false, degradation: degradation({ ...calm }) });
    layer.degradation.setLevel("medium");
    const body = '{"steps":100}';
    const headers = { "content-type": "application/json", "content-length": String(body.length) };
    await drain(await layer.fetch(`${up.base}/a`, { method: "POST", body, headers }));
    await drain(await layer.fetch(new Request(`${up.base}/b`, { method: "POST", body, headers })));
    expect(up.hits.map((h) => [h.body, h.headers["content-length"]])).toEqual([
      ['{"steps":30}', "12"],
      ['{"steps":30}', "12"],
    ]);
  });

  it("a `Request` whose body was read is refused at once, nothing sent, counted nowhere", async () => {
    const layer = createResilience({ retry: false, degradation: degradation({ ...calm }) });
    layer.degradation.setLevel("medium");
    const request = new Request(`${up.base}/used`, json(j));
    await request.text();
    const outcome = await layer.fetch(request).then(drain, (e: unknown) => e);
    expect(outcome).toBeInstanceOf(TypeError);
    expect(up.hits).toHaveLength(0);
    expect(layer.debugInfo().degradation?.window.samples).toBe(0);
    expect(layer.health().errorRate).toBe(0);
  });

  it("past `maxReplayBytes`: a keepalive `Request` is rewritten, another goes unread, both named `medium`", async () => {
    const layer = createResilience({
      retry: false,
      maxReplayBytes: 8,
      degradation: degradation({ ...calm, levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("medium");
    const body = '{"steps":50,"pad":"xxxxxxxxxx"}';
    const kept = await drain(await layer.fetch(new Request(`${up.base}/a`, { ...json(body), keepalive: true })));
    const streamed = await drain(await layer.fetch(new Request(`${up.base}/b`, json(body))));
    expect(up.hits.map(sent)).toEqual([
      { method: "POST", path: "/a", body: '{"steps":30,"pad":"xxxxxxxxxx"}', level: "medium", model: undefined },
      { method: "POST", path: "/b", body, level: "medium", model: undefined },
    ]);
    expect([getResilienceInfo(kept)?.degradationLevel, getResilienceInfo(streamed)?.degradationLevel]).toEqual([
      "medium",
      "medium",
    ]);
  });
});

describe("held: query and header rules", () => {
  it("each place of a repeated parameter from its own value; a header sent twice value by value", async () => {
    const rules = [
      {
        params: {
          steps: { query: "steps" },
          features: { header: "x-features" },
          quality: { header: "x-quality" },
          model: "cfg.model",
        },
      },
    ];
    const layer = createResilience({ retry: false, degradation: degradation({ ...calm, rules }) });
    layer.degradation.setLevel("medium");
    const headers = new Headers([
      ["x-features", "core, enhancements, extra"],
      ["x-quality", "1.0"],
      ["x-quality", "0.5"],
    ]);
    await drain(
      await layer.fetch(`${up.base}/q?steps=50&steps=20.0&steps=abc&st%65ps=40&x=a/b&flag`, {
        method: "POST",
        headers,
        body: '{ "cfg": {"model":"premium"}, "model": "premium" }',
      }),
    );
    await drain(await layer.fetch(new Request(`${up.base}/r?seed=7&steps=50`)));
    expect(up.hits.map((h) => [h.path, h.body, h.headers["x-features"], h.headers["x-quality"]])).toEqual([
      [
        "/q?steps=30&steps=20.0&steps=abc&st%65ps=30&x=a/b&flag",
        '{ "cfg": {"model":"standard"}, "model": "premium" }',
        "core",
        "0.8, 0.4",
      ],
      ["/r?seed=7&steps=30", "", undefined, undefined],
    ]);
  });
});

describe("held: redirects carry the rewritten request", () => {
  const rules = [{ params: { steps: "steps", model: { header: "x-model" } } }];
  const init = (): RequestInit => ({
    method: "POST",
    body: '{"steps":50}',
    headers: { "content-type": "application/json", "x-model": "premium" },
  });

  it("307 same server and 303; 307 to localhost without the level header or the rule's header", async () => {
    const layer = createResilience({
      retry: false,
      degradation: degradation({ ...calm, rules, levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("medium");
    up.on((hit) => {
      const to = { "/a": "/b", "/c": localhost("/d"), "/e": "/f" }[hit.path];
      if (to) {
        hit.res.writeHead(hit.path === "/e" ? 303 : 307, { location: to });
        hit.res.end();
      } else hit.res.end("ok");
    });
    const levels: Array<string | undefined> = [];
    for (const path of ["/a", "/c", "/e"]) {
      levels.push(getResilienceInfo(await drain(await layer.fetch(`${up.base}${path}`, init())))?.degradationLevel);
    }
    await drain(await layer.fetch(new Request(`${up.base}/c`, init())));
    const rewritten = { body: '{"steps":30}', level: "medium", model: "standard" };
    expect(levels).toEqual(["medium", "medium", "medium"]);
    expect(up.hits.map(sent)).toEqual([
      { method: "POST", path: "/a", ...rewritten },
      { method: "POST", path: "/b", ...rewritten },
      { method: "POST", path: "/c", ...rewritten },
      { method: "POST", path: "/e", ...rewritten },
      { method: "GET", path: "/f", ...rewritten, body: "" },
      { method: "POST", path: "/c", ...rewritten },
    ]);
    const across = { method: "POST", path: "/d", body: '{"steps":30}', level: undefined, model: undefined };
    expect(other.hits.map(sent)).toEqual([across, across]);
  });
});

describe("held: retries, chains and hedges send one rewritten request", () => {
  it("one key and one rewritten body on every retry", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { idempotencyKey: true, initialDelay: 100, jitter: "none" },
      degradation: degradation({ ...calm, levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("medium");
    up.on((hit) => {
      hit.res.statusCode = hit.n < 3 ? 503 : 200;
      hit.res.end("x");
    });
    const call = layer.fetch(`${up.base}/k`, json('{"steps":50}'));
    for (const wait of [100, 200]) {
      await untilTimer(clock);
      await clock.advance(wait);
    }
    const response = await drain(await call);
    expect(getResilienceInfo(response)?.attempts).toBe(3);
    const keys = new Set(up.hits.map((h) => h.headers["idempotency-key"]));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(up.hits.map((h) => [h.body, h.headers["x-level"]])).toEqual([
      ['{"steps":30}', "medium"],
      ['{"steps":30}', "medium"],
      ['{"steps":30}', "medium"],
    ]);
  });

  it("a chain's spare on localhost: same key, same body, no level header", async () => {
    const layer = createResilience({
      retry: { idempotencyKey: true, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: `${up.base}/v1` },
            { name: "b", url: localhost("/v2") },
          ],
        },
      ]),
      degradation: degradation({ ...calm, levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("low");
    up.on((hit) => {
      hit.res.statusCode = 500;
      hit.res.end("x");
    });
    const response = await drain(await layer.fetch(`${up.base}/v1/gen`, json('{"steps":50,"model":"premium"}')));
    expect(getResilienceInfo(response)).toMatchObject({ endpoint: "b", fromFallback: true, degradationLevel: "low" });
    const body = '{"steps":20,"model":"basic"}';
    expect([...up.hits, ...other.hits].map((h) => [h.path, h.body, h.headers["x-level"]])).toEqual([
      ["/v1/gen", body, "low"],
      ["/v2/gen", body, undefined],
    ]);
    expect(up.hits[0]?.headers["idempotency-key"]).toBe(other.hits[0]?.headers["idempotency-key"]);
  });

  it("a hedge sends the rewritten body to both endpoints", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { idempotencyKey: true, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 500 },
          endpoints: [
            { name: "a", url: `${up.base}/v1` },
            { name: "b", url: `${other.base}/v1` },
          ],
        },
      ]),
      degradation: degradation({ ...calm }),
    });
    layer.degradation.setLevel("medium");
    const held: Hit[] = [];
    up.on((hit) => held.push(hit));
    const call = layer.fetch(`${up.base}/v1/gen`, json('{"steps":50}'));
    await up.nth(1);
    await untilTimer(clock);
    await clock.advance(500);
    const response = await drain(await call);
    for (const hit of held) hit.res.end("late");
    expect(getResilienceInfo(response)?.endpoint).toBe("b");
    expect([up.hits[0]?.body, other.hits[0]?.body]).toEqual(['{"steps":30}', '{"steps":30}']);
  });
});

describe("held: the ky client and resilientProxy", () => {
  it("ky's `json` is rewritten and its response names the level", async () => {
    const layer = createResilience({ retry: false, degradation: degradation({ ...calm }) });
    layer.degradation.setLevel("low");
    const response = await createClient({ resilience: layer }).post(`${up.base}/ky`, {
      json: { steps: 50, model: "premium" },
    });
    await response.text();
    expect(getResilienceInfo(response)?.degradationLevel).toBe("low");
    expect(up.hits[0]?.body).toBe('{"steps":20,"model":"basic"}');
  });

  it("the proxy drops the client's `content-length` with the rewritten body", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/gen", upstream: `${up.base}/v1` }],
      resilience: {
        clock,
        retry: false,
        degradation: degradation({ ...calm, minSamples: 1, stepInterval: 0, levels: { high: { maxSteps: 30 } } }),
      },
    });
    up.on((hit) => {
      hit.res.statusCode = hit.n === 1 ? 503 : 200;
      hit.res.end("x");
    });
    const body = '{"steps":100}';
    const levels: Array<string | null> = [];
    for (let i = 0; i < 2; i++) {
      await clock.advance(1_000);
      const answer = await proxy.fetch(
        new Request("https://p.example/gen/x", {
          method: "POST",
          body,
          headers: { "content-type": "application/json", "content-length": String(body.length) },
        }),
        {},
        { waitUntil() {} },
      );
      levels.push(answer.headers.get("x-degradation-level"));
      await answer.text();
    }
    expect(levels).toEqual(["full", "high"]);
    expect(up.hits.map((h) => [h.body, h.headers["content-length"]])).toEqual([
      [body, "13"],
      ['{"steps":30}', "12"],
    ]);
  });
});

describe("held: levels under many calls at once, and the way back", () => {
  it("each call names the level it started at; one step per `stepInterval`; back one per `restoreAfter`", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: false, breaker: false, degradation: degradation({ ...calm }) });
    const moves: Array<[number, string, string]> = [];
    layer.on("degradation", (e) => moves.push([clock.now(), e.from, e.to]));
    let failing = true;
    up.on((hit) => {
      hit.res.statusCode = failing ? 503 : 200;
      hit.res.end("x");
    });
    for (let step = 0; step < 9; step++) {
      const before = layer.degradation.currentLevel().name;
      const responses = await Promise.all(Array.from({ length: 30 }, () => layer.fetch(`${up.base}/c`)));
      await Promise.all(responses.map(drain));
      expect(new Set(responses.map((r) => getResilienceInfo(r)?.degradationLevel))).toEqual(new Set([before]));
      expect(layer.health().degradationLevel).toBe(layer.degradation.currentLevel().name);
      await clock.advance(5_000);
    }
    expect(moves).toEqual([
      [5_000, "full", "high"],
      [15_000, "high", "medium"],
      [25_000, "medium", "low"],
      [35_000, "low", "minimal"],
    ]);
    expect(layer.debugInfo().degradation).toMatchObject({ name: "minimal", window: { samples: 256, errorRate: 1 } });
    failing = false;
    moves.length = 0;
    // Good calls only: the failures leave the window, then one level per 60 s of health.
    while (layer.degradation.currentLevel().name !== "full" && clock.now() < 600_000) {
      await Promise.all(Array.from({ length: 3 }, () => layer.fetch(`${up.base}/c`).then(drain)));
      await clock.advance(5_000);
    }
    expect(moves.map(([, from, to]) => `${from}>${to}`)).toEqual([
      "minimal>low",
      "low>medium",
      "medium>high",
      "high>full",
    ]);
    const gaps = moves.slice(1).map(([at], i) => at - (moves[i] as [number, string, string])[0]);
    expect(gaps).toEqual([60_000, 60_000, 60_000]);
    expect(layer.degradation.currentLevel()).toMatchObject({ name: "full", reason: "healthy", pinned: false });
  });
});

describe("held: options", () => {
  it("one stage, two layers, two levels", () => {
    const stage = degradation({ ...calm });
    const a = createResilience({ degradation: stage });
    const b = createResilience({ degradation: stage });
    a.degradation.setLevel("low");
    expect([a.degradation.currentLevel().name, b.degradation.currentLevel().name]).toEqual(["low", "full"]);
  });

  it("a bad option is a ConfigError at once, naming its path", () => {
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const cases: Array<[() => unknown, string]> = [
      [() => degradation({ levels: { medium: { maxSteps: 0 } } }), "degradation.levels.medium.maxSteps"],
      [() => degradation({ rules: [{ params: { steps: { query: "" } } }] }), "degradation.rules.0.params.steps.query"],
      [
        () => degradation({ rules: [{ params: { steps: { header: "x y" } } }] }),
        "degradation.rules.0.params.steps.header",
      ],
      [() => degradation({ rules: [{ params: { steps: "a.__proto__" } }] }), "degradation.rules.0.params.steps"],
      [
        () => degradation({ rules: [{ params: { steps: "v", quality: { body: "v" } } }] }),
        "degradation.rules.0.params",
      ],
      [() => degradation({ rules: [{ match: "http://a/v1#x", params: {} }] }), "degradation.rules.0.match"],
      [
        () =>
          degradation({
            rules: [
              { match: "http://a/v1", params: {} },
              { match: "HTTP://A:80/x/../v1", params: {} },
            ],
          }),
        "degradation.rules",
      ],
      [() => degradation({ window: Number.POSITIVE_INFINITY }), "degradation.window"],
      [() => degradation({ minSamples: 257 }), "degradation.minSamples"],
      [() => degradation({ levelHeader: "" }), "degradation.levelHeader"],
      [() => degradation({ levels: revoked.proxy as never }), "degradation.levels"],
      [
        () =>
          degradation({
            rules: [
              {
                get params(): never {
                  throw new Error("boom");
                },
              },
            ],
          }),
        "degradation.rules.0.params",
      ],
      [
        () => createResilience({ degradation: degradation() }).degradation.configureTriggers({ errorRate: 2 }),
        "degradation.triggers.errorRate",
      ],
      [() => createResilience({ degradation: { rules: [] } as never }), "degradation"],
      [() => createClient({ resilience: { degradation: { rules: [] } as never } }), "resilience.degradation"],
      [
        () =>
          resilientProxy({
            routes: [{ path: "/", upstream: up.base || "http://127.0.0.1:1" }],
            resilience: { degradation: { rules: [] } as never },
          }),
        "resilience.degradation",
      ],
    ];
    expect(cases.map(([make]) => configError(make))).toEqual(
      cases.map(([, path]) => expect.objectContaining({ path })),
    );
  });
});

describe("docs-silent, shown", () => {
  it("a location with two keys is refused under a key the caller never wrote", () => {
    const outcome = configError(() =>
      degradation({ rules: [{ params: { steps: { query: "q", header: "x" } as never } }] }),
    );
    expect(outcome).toMatchObject({ path: "degradation.rules.0.params.steps.body" });
  });

  it("a class-instance rule is read per call: a getter that throws later fails calls, counted as failures", async () => {
    let reads = 0;
    class Rule {
      get params() {
        reads++;
        if (reads > 4) throw new Error("rule boom");
        return { steps: "steps" };
      }
    }
    const layer = createResilience({
      retry: false,
      degradation: degradation({ ...calm, rules: [new Rule() as never] }),
    });
    layer.degradation.setLevel("medium");
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        await layer.fetch(`${up.base}/n`, json('{"steps":50}')).then(
          (r) => r.text(),
          (e: Error) => e.name,
        ),
      );
    }
    expect(outcomes).toContain("RetryExhaustedError");
    expect(layer.health().errorRate).toBeGreaterThan(0);
  });

  // Since the fiftieth session the settings are frozen (before, the write went through and the body was
  // `{"steps":5}`, in every layer the stage joined).
  it("`settings()` hands out read-only settings: a write throws and changes no rewrite", async () => {
    const layer = createResilience({ retry: false, degradation: degradation({ ...calm }) });
    layer.degradation.setLevel("medium");
    const settings = layer.degradation.settings() as unknown as { maxSteps: number | null; features: string[] };
    expect(() => {
      settings.maxSteps = 5;
    }).toThrow(TypeError);
    expect(() => settings.features.push("premium")).toThrow(TypeError);
    await drain(await layer.fetch(`${up.base}/s`, json('{"steps":50}')));
    expect(up.hits[0]?.body).toBe('{"steps":30}');
  });

  it("a file-backed Blob past `maxReplayBytes` is read whole and rewritten", async () => {
    const path = `/tmp/degradedoc-fifty-${process.pid}.json`;
    writeFileSync(path, JSON.stringify({ steps: 50, pad: "x".repeat(200) }));
    const layer = createResilience({ retry: false, maxReplayBytes: 64, degradation: degradation({ ...calm }) });
    layer.degradation.setLevel("medium");
    const blob = await openAsBlob(path, { type: "application/json" });
    try {
      await drain(await layer.fetch(`${up.base}/big`, { method: "POST", body: blob }));
    } finally {
      rmSync(path, { force: true });
    }
    expect(up.hits[0]?.body.startsWith('{"steps":30,')).toBe(true);
  });

  it("a latin1-labelled string is rewritten in `init`, not in a `Request`", async () => {
    const layer = createResilience({ retry: false, degradation: degradation({ ...calm }) });
    layer.degradation.setLevel("medium");
    const init: RequestInit = {
      method: "POST",
      body: '{"steps":50}',
      headers: { "content-type": "application/json; charset=iso-8859-1" },
    };
    await drain(await layer.fetch(`${up.base}/a`, init));
    await drain(await layer.fetch(new Request(`${up.base}/b`, init)));
    expect(up.hits.map((h) => h.body)).toEqual(['{"steps":30}', '{"steps":50}']);
  });
});
