/**
 * Outside-in attack on graceful degradation (docs/degradation.md) on the paths earlier runs drove least: a hedged
 * chain, the library's redirects across hosts (and back), `Request` inputs with a stale `content-length` or a stream,
 * `resilientProxy` chain and upstream routes with a degradation stage, the ky client, `execute`, manual control.
 *
 * Docs:
 * - docs/degradation.md: "A call that goes down a fallback chain is rewritten once, by the rule its own URL selects,
 *   before the chain: every endpoint gets that request (a rewritten parameter that the first endpoint's own `url`
 *   names, `…/v1?model=premium`, goes to that endpoint once, with the rewritten value in its place, and to no other
 *   endpoint …), and an endpoint's `transform` reshapes it for its provider (… never twice to one request)"; "a
 *   `content-length` that came with the old body, as the Worker proxy forwards the client's, is dropped for fetch to
 *   count the new one"; "a leading byte-order mark included"; "bytes or a Blob labelled with a charset other than
 *   UTF-8 … (… a `charset=` inside another parameter's quoted value, or a `charset =` with a space before its `=`,
 *   names none), or whose bytes are no valid UTF-8 whatever the label … are sent as you wrote them, unrewritten";
 *   "So is a body sent as a stream (an `init.body` stream with `duplex: "half"` …): it goes once, as it is, unread";
 *   "a keepalive one is read whole … and each is rewritten as any body in memory is"; "`levelHeader:
 *   "Idempotency-Key"` would replace every request's key with the level's name"; "to another origin (a fallback
 *   endpoint, a redirect) it goes, like the caller's own headers, only when named in `crossOriginHeaders`"; "a
 *   redirect hop the library follows goes as its `Location` names it, no rule applied again …, while
 *   `degradationLevel` still names the call's level"; "Manual control always works: `degrade(reason)` (one step
 *   down), `restore()` (one step up), `setLevel(name)` (pins the level: triggers leave it alone until `restore()`)";
 *   "Automatic triggers are fed by every call that settles without the caller aborting it".
 * - docs/retry.md: "With `retry.idempotencyKey: true`, POST and PATCH requests without a key get one …, the same on
 *   every retry of that call"; "nothing dropped is put back, even if a later hop returns to the first origin".
 * - docs/health-and-events.md: `execute` counts in "the degradation triggers, by the outcome of the work itself (a
 *   `fallback` answering for it leaves it failed); a run its caller aborted is left out".
 * - docs/cloudflare.md: the proxy "adds … `x-degradation-level` to the responses the upstreams gave"; "the layer
 *   follows an upstream's redirects itself"; "A request for a route whose client went away … gets no answer".
 * - SECURITY.md: "URLs lose their userinfo …, query string and fragment … (… a reason your code gives `degrade`…)".
 *
 * How: `createResilience`, `getResilienceInfo` (root), `degradation`, `fallback`, `createClient` (ky),
 * `resilientProxy` (cloudflare, stub `ctx`), `TestClock`, `recordEvents` (testing); two recording node:http servers
 * on 127.0.0.1 (the second also as `localhost`, a third origin), one refused origin; levels by `setLevel` or by
 * triggers (`minSamples: 1`, `stepInterval: 0`) fed by failing calls. Every assertion reads what the servers received:
 * method, path and query, body bytes, `content-length`, `idempotency-key`, rule and level headers.
 *
 * Paths: hedged chain (POST keyed by the layer, body + query + header rule, spare `transform`); library 307/308 to
 * another host and a hop back; `Request` JSON body with its own `content-length` and key retried; `Request` stream
 * with `content-length` retried; `init` stream; keepalive `Request` past the limit; `levelHeader: "Idempotency-Key"`;
 * proxy chain route (first endpoint's own query), upstream route, upstream 307 to another host, client bodies
 * by label, client gone; ky `json` + repeated `searchParams` + header rule retried; `execute` feeding the triggers;
 * pinning; secrets through a refused origin and a redirect echoing a key.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none found on these paths.
 *
 * Held (plain `it`):
 * - Hedged chain: both legs get one rewrite (body 0.8, `steps=30`, `x-model: standard`), the spare's `transform` sees
 *   the rewritten object and its own rule is not applied on top; one layer-made key on both legs; lengths counted.
 * - Library 307/308 across hosts: the hop replays the rewritten body (not rewritten again by the new host's rule),
 *   its query as `Location` names it, `x-model`/level header only when allowed; a hop back to the first origin gets
 *   neither back; one key throughout; `degradationLevel` the call's.
 * - `Request` JSON body with a stale `content-length`, and a `Request` stream announcing its length: rewritten,
 *   `content-length` recounted, the same bytes and key on the retry; an `init` stream goes once, unread, with its
 *   query rewritten; a keepalive `Request` past `maxReplayBytes` is rewritten; `levelHeader: "Idempotency-Key"`
 *   replaces the layer's key on every attempt.
 * - Proxy: chain route (first endpoint's own `model=premium` rewritten in place, to it alone; spare rewritten once),
 *   upstream route (client `content-length` replaced), upstream 307 to another host, BOM kept, latin-1 label and bad
 *   UTF-8 unread, `charset =x` / quoted `charset=` rewritten; a client gone mid-call is no trigger sample.
 * - ky `json` + repeated `searchParams` + header rule: each place adjusted, retried the same; `execute` failures
 *   (with a `fallback`) step the level, an aborted run does not; `setLevel` pins, `degrade` works while pinned,
 *   `restore` unpins; no secret in errors, events, `currentLevel()` or `debugInfo()`.
 *
 * Docs-silent when found, now in docs/retry.md (fifty-ninth session) and asserted (the tests above, and the
 * sentence by the last test):
 * - A POST's layer-made key goes unchanged to a hedge leg on another origin and to a 307 hop on another host
 *   (`idempotency-key` is on the cross-origin allowlist): one key for the whole call (asserted, as retry.md implies).
 */
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const up = httpUpstream();
const other = httpUpstream();
serveDuringFile(up, other);

const SECRET = "sk-live-degradepaths59-0123456789";
const calm = { triggers: { cpuUsage: 1, memoryUsage: 1 }, browserSignals: false } as const;
const json = { "content-type": "application/json" };
const Q1 = '{"quality":1,"seed":7}';
const Q08 = '{"quality":0.8,"seed":7}';
const len = (text: string): string => String(new TextEncoder().encode(text).length);

const open: Array<Promise<unknown>> = [];
afterEach(async () => {
  await Promise.allSettled(open.splice(0));
});
const track = <T>(promise: Promise<T>): Promise<T> => {
  open.push(promise);
  return promise;
};
const ctx = {
  waitUntil(p: Promise<unknown>) {
    open.push(p);
  },
};
async function drain(response: Response): Promise<Response> {
  await response.text();
  return response;
}
function reply(hit: Hit | undefined, status: number, headers: Record<string, string> = {}): void {
  if (!hit) throw new Error("no such hit");
  hit.res.writeHead(status, headers);
  hit.res.end(status === 200 ? "ok" : "no");
}
/** What a server received, for comparing: method, path, body, and the named headers. */
const seen = (hits: Hit[], ...names: string[]) =>
  hits.map((h) => [h.method, h.path, h.body, ...names.map((n) => h.headers[n])]);

const bodyRule = (match: string) => ({
  match,
  params: { quality: "quality", steps: { query: "steps" }, model: { header: "x-model" } },
});

describe("a hedged chain at `medium`", () => {
  it("both legs get the one rewrite (body, query, header), the spare's `transform` reshaping it; one key, counted lengths", async () => {
    const clock = new TestClock();
    const shaped: unknown[] = [];
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1, idempotencyKey: true },
      crossOriginHeaders: ["x-level", "x-model"],
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 1000 },
          endpoints: [
            { name: "a", url: `${up.base}/hold` },
            {
              name: "b",
              url: `${other.base}/v2`,
              transform: (req) => {
                shaped.push(req.body);
                return { ...req, body: { input: req.body } };
              },
            },
          ],
        },
      ]),
      degradation: degradation({
        ...calm,
        levelHeader: "x-level",
        rules: [bodyRule(`${up.base}/hold`), { match: `${other.base}/v2`, params: { quality: "input.quality" } }],
      }),
    });
    layer.degradation.setLevel("medium");
    up.on(() => {});
    const call = track(
      layer.fetch(`${up.base}/hold?steps=50&k=1`, {
        method: "POST",
        body: Q1,
        headers: { ...json, "x-model": "premium" },
      }),
    );
    await up.nth(1);
    await clock.waitForTimers(1);
    await clock.advance(1000);
    const res = await drain(await call);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", degradationLevel: "medium" });
    expect(shaped).toEqual([{ quality: 0.8, seed: 7 }]);
    const [a, b] = [up.hits[0], other.hits[0]];
    expect(seen(up.hits, "x-model", "x-level", "content-length")).toEqual([
      ["POST", "/hold?steps=30&k=1", Q08, "standard", "medium", len(Q08)],
    ]);
    expect(seen(other.hits, "x-model", "x-level")).toEqual([
      ["POST", "/v2?steps=30&k=1", '{"input":{"quality":0.8,"seed":7}}', "standard", "medium"],
    ]);
    expect(b?.headers["content-length"]).toBe(String(b?.bytes.length));
    expect(a?.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(b?.headers["idempotency-key"]).toBe(a?.headers["idempotency-key"]);
  });
});

describe("the library's redirects to another host at `medium`", () => {
  function layerWith(crossOriginHeaders: string[]) {
    const layer = createResilience({
      redirects: "library",
      retry: { maxAttempts: 1, idempotencyKey: true },
      crossOriginHeaders,
      degradation: degradation({
        ...calm,
        levelHeader: "x-level",
        rules: [
          bodyRule(`${up.base}/gen`),
          { match: `http://localhost:${other.port}/gen`, params: { quality: "quality", steps: { query: "steps" } } },
        ],
      }),
    });
    layer.degradation.setLevel("medium");
    return layer;
  }

  it("a 307 replays the rewritten body once rewritten (not 0.64), counted anew; only allowed headers cross", async () => {
    const layer = layerWith(["x-level"]);
    up.on((hit) => reply(hit, 307, { location: `http://localhost:${other.port}/gen/next?steps=50` }));
    const res = await drain(
      await layer.fetch(`${up.base}/gen?steps=50`, {
        method: "POST",
        body: Q1,
        headers: { ...json, "x-model": "premium" },
      }),
    );
    expect([res.status, res.redirected, getResilienceInfo(res)?.degradationLevel]).toEqual([200, true, "medium"]);
    expect(seen(up.hits, "x-model", "x-level")).toEqual([["POST", "/gen?steps=30", Q08, "standard", "medium"]]);
    expect(seen(other.hits, "x-model", "x-level", "content-length", "content-type")).toEqual([
      ["POST", "/gen/next?steps=50", Q08, undefined, "medium", len(Q08), "application/json"],
    ]);
    expect(other.hits[0]?.headers["idempotency-key"]).toBe(up.hits[0]?.headers["idempotency-key"]);
  });

  it("a header a rule rewrote, allowed across, reaches the new host as rewritten (`standard`, not `basic`)", async () => {
    const layer = layerWith(["x-model"]);
    up.on((hit) => reply(hit, 308, { location: `http://localhost:${other.port}/gen` }));
    await drain(await layer.fetch(`${up.base}/gen`, { method: "PUT", body: Q1, headers: { "x-model": "premium" } }));
    expect(seen(other.hits, "x-model", "x-level")).toEqual([["PUT", "/gen", Q08, "standard", undefined]]);
  });

  it("a hop back to the first origin gets no dropped header back, no rule again: `Location`'s `steps=50` as named", async () => {
    const layer = layerWith([]);
    up.on((hit) =>
      hit.path.startsWith("/gen/back")
        ? reply(hit, 200)
        : reply(hit, 307, { location: `http://localhost:${other.port}/hop` }),
    );
    other.on((hit) => reply(hit, 307, { location: `${up.base}/gen/back?steps=50` }));
    const res = await drain(
      await layer.fetch(`${up.base}/gen?steps=50`, {
        method: "POST",
        body: Q1,
        headers: { ...json, "x-model": "premium" },
      }),
    );
    expect([res.status, getResilienceInfo(res)?.degradationLevel]).toEqual([200, "medium"]);
    expect(seen(up.hits, "x-model", "x-level", "content-length")).toEqual([
      ["POST", "/gen?steps=30", Q08, "standard", "medium", len(Q08)],
      ["POST", "/gen/back?steps=50", Q08, undefined, undefined, len(Q08)],
    ]);
    expect(new Set(up.hits.map((h) => h.headers["idempotency-key"])).size).toBe(1);
  });
});

describe("`Request` inputs: a stale `content-length`, a stream, keys across retries", () => {
  it("a `Request` with a JSON body and its own `content-length` arrives rewritten with the new length; retried the same", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      degradation: degradation({ ...calm, rules: [bodyRule(`${up.base}/r`)] }),
    });
    layer.degradation.setLevel("medium");
    up.on((hit) => reply(hit, hit.n === 1 ? 503 : 200));
    const request = new Request(`${up.base}/r?steps=50`, {
      method: "POST",
      body: Q1,
      headers: { ...json, "content-length": len(Q1), "idempotency-key": "own-key-1", "x-model": "premium" },
    });
    const res = await drain(await clock.run(layer.fetch(request)));
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, degradationLevel: "medium" });
    const row = ["POST", "/r?steps=30", Q08, len(Q08), "own-key-1", "standard"];
    expect(seen(up.hits, "content-length", "idempotency-key", "x-model")).toEqual([row, row]);
  });

  it("a `Request` stream body under `maxReplayBytes`, announcing its length, is read, rewritten, retried the same", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none", idempotencyKey: true },
      degradation: degradation({ ...calm, rules: [bodyRule(`${up.base}/s`)] }),
    });
    layer.degradation.setLevel("medium");
    up.on((hit) => reply(hit, hit.n === 1 ? 503 : 200));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(Q1.slice(0, 5)));
        controller.enqueue(new TextEncoder().encode(Q1.slice(5)));
        controller.close();
      },
    });
    const request = new Request(`${up.base}/s`, {
      method: "POST",
      body,
      duplex: "half",
      headers: { ...json, "content-length": len(Q1) },
    } as RequestInit);
    const res = await drain(await clock.run(layer.fetch(request)));
    expect(getResilienceInfo(res)?.attempts).toBe(2);
    expect(seen(up.hits, "content-length")).toEqual([
      ["POST", "/s", Q08, len(Q08)],
      ["POST", "/s", Q08, len(Q08)],
    ]);
    expect(up.hits[1]?.headers["idempotency-key"]).toBe(up.hits[0]?.headers["idempotency-key"]);
  });

  it("an `init` stream goes once, unread, while its query is rewritten and its header names the level", async () => {
    const layer = createResilience({
      retry: { maxAttempts: 3 },
      degradation: degradation({ ...calm, levelHeader: "x-level", rules: [bodyRule(`${up.base}/u`)] }),
    });
    layer.degradation.setLevel("low");
    up.on((hit) => reply(hit, 503));
    const body = new Blob([Q1]).stream();
    const res = await drain(
      await layer.fetch(`${up.base}/u?steps=50`, { method: "PUT", body, duplex: "half", headers: json } as RequestInit),
    );
    expect([res.status, getResilienceInfo(res)?.degradationLevel]).toEqual([503, "low"]);
    expect(seen(up.hits, "x-level")).toEqual([["PUT", "/u?steps=20", Q1, "low"]]);
  });

  it("`levelHeader: \"Idempotency-Key\"` replaces the layer's own key with the level's name on every attempt", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none", idempotencyKey: true },
      degradation: degradation({ ...calm, levelHeader: "Idempotency-Key" }),
    });
    layer.degradation.setLevel("low");
    up.on((hit) => reply(hit, hit.n === 1 ? 503 : 200));
    await drain(await clock.run(layer.fetch(`${up.base}/k`, { method: "POST", body: "{}" })));
    expect(up.hits.map((h) => h.headers["idempotency-key"])).toEqual(["low", "low"]);
  });
});

describe("resilientProxy with a degradation stage", () => {
  /** A proxy whose level steps down one level per failing client call (one second apart). */
  function proxyOf(clock: TestClock) {
    return resilientProxy({
      routes: [
        {
          path: "/gen",
          chain: {
            name: "gen",
            endpoints: [
              { name: "a", url: `${up.base}/v1?model=premium` },
              { name: "b", url: `${other.base}/v2` },
            ],
          },
        },
        { path: "/txt", upstream: `${other.base}/t` },
        { path: "/fail", upstream: `${other.base}/fail` },
      ],
      resilience: {
        clock,
        retry: false,
        crossOriginHeaders: ["x-model", "x-degradation-level"],
        degradation: degradation({
          ...calm,
          minSamples: 1,
          stepInterval: 0,
          levelHeader: "x-degradation-level",
          rules: [
            { ...bodyRule(`${up.base}/v1`), params: { ...bodyRule("").params, model: { query: "model" } } },
            { match: `${other.base}/v2`, params: { quality: "quality" } },
            { match: `${other.base}/t`, params: { steps: "steps" } },
          ],
        }),
      },
    });
  }
  const clientRequest = (path: string, body: string, headers: Record<string, string> = {}) =>
    new Request(`https://p.example${path}`, {
      method: "PUT",
      body,
      headers: { ...json, "content-length": len(body), ...headers },
    });
  async function stepDown(proxy: ReturnType<typeof proxyOf>, clock: TestClock, times: number) {
    other.on((hit) => reply(hit, hit.path.startsWith("/fail") ? 503 : 200));
    for (let i = 0; i < times; i++) {
      await drain(await proxy.fetch(clientRequest("/fail", "{}"), {}, ctx));
      await clock.advance(1000);
    }
  }

  it("a chain route: the first endpoint and the spare get the one rewrite, new lengths, the level's header", async () => {
    const clock = new TestClock();
    const proxy = proxyOf(clock);
    await stepDown(proxy, clock, 2);
    other.reset();
    up.on((hit) => reply(hit, 503));
    const res = await drain(
      await proxy.fetch(
        clientRequest("/gen/x?steps=50", Q1, { "x-model": "premium", "x-degradation-level": "full" }),
        {},
        ctx,
      ),
    );
    expect([res.status, res.headers.get("x-resilience-endpoint"), res.headers.get("x-degradation-level")]).toEqual([
      200,
      "b",
      "medium",
    ]);
    const row = (path: string) => ["PUT", path, Q08, "premium", "medium", len(Q08)];
    // The first endpoint's own `model=premium` rewritten in its place, and sent to it alone.
    expect(seen(up.hits, "x-model", "x-degradation-level", "content-length")).toEqual([
      row("/v1/x?model=standard&steps=30"),
    ]);
    expect(seen(other.hits, "x-model", "x-degradation-level", "content-length")).toEqual([row("/v2/x?steps=30")]);
  });

  it("an upstream route: its own rule, the client's `content-length` replaced by the new body's", async () => {
    const clock = new TestClock();
    const proxy = proxyOf(clock);
    await stepDown(proxy, clock, 2);
    other.reset();
    const body = '{"steps":50,"quality":1}';
    const res = await drain(await proxy.fetch(clientRequest("/txt/a?steps=50", body), {}, ctx));
    expect(res.headers.get("x-degradation-level")).toBe("medium");
    const sent = '{"steps":30,"quality":1}';
    expect(seen(other.hits, "content-length")).toEqual([["PUT", "/t/a?steps=50", sent, len(sent)]]);
  });
});

describe("resilientProxy: an upstream's redirect to another host", () => {
  it("the hop replays the rewritten body, no rule again; the level header crosses only when allowed", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/r", upstream: `${up.base}/gen` }],
      resilience: {
        clock,
        retry: false,
        degradation: degradation({
          ...calm,
          minSamples: 1,
          stepInterval: 0,
          levelHeader: "x-degradation-level",
          rules: [
            bodyRule(`${up.base}/gen`),
            { match: `http://localhost:${other.port}/`, params: { quality: "quality", steps: { query: "steps" } } },
          ],
        }),
      },
    });
    up.on((hit) =>
      hit.path.startsWith("/gen/fail")
        ? reply(hit, 503)
        : reply(hit, 307, { location: `http://localhost:${other.port}/next?steps=50` }),
    );
    await drain(await proxy.fetch(new Request("https://p.example/r/fail"), {}, ctx));
    await clock.advance(1000);
    const res = await drain(
      await proxy.fetch(
        new Request("https://p.example/r?steps=50", {
          method: "PUT",
          body: Q1,
          headers: { ...json, "content-length": len(Q1), "x-model": "premium" },
        }),
        {},
        ctx,
      ),
    );
    expect([res.status, res.headers.get("x-degradation-level")]).toEqual([200, "high"]);
    const high = '{"quality":0.9,"seed":7}';
    expect(seen(up.hits.slice(1), "x-model", "x-degradation-level")).toEqual([
      ["PUT", "/gen?steps=50", high, "premium", "high"],
    ]);
    expect(seen(other.hits, "x-model", "x-degradation-level", "content-length")).toEqual([
      ["PUT", "/next?steps=50", high, undefined, undefined, len(high)],
    ]);
  });
});

describe("resilientProxy: the client's body by its label, and a client that left", () => {
  function proxyAt(clock: TestClock) {
    return resilientProxy({
      routes: [{ path: "/", upstream: up.base }],
      resilience: {
        clock,
        retry: false,
        degradation: degradation({
          ...calm,
          // One failing call of one steps to `high`; the good ones after it keep the rate under 0.6.
          triggers: { ...calm.triggers, errorRate: 0.6 },
          minSamples: 1,
          stepInterval: 0,
          rules: [{ params: { quality: "quality" } }],
        }),
      },
    });
  }

  it("BOM kept; a latin-1 label or bad UTF-8 unread; `charset =x` and a quoted `charset=` inside another names none", async () => {
    const clock = new TestClock();
    const proxy = proxyAt(clock);
    up.on((hit) => reply(hit, hit.path === "/fail" ? 503 : 200));
    await drain(await proxy.fetch(new Request("https://p.example/fail"), {}, ctx));
    await clock.advance(1000);
    const enc = (t: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(t);
    const bad = new Uint8Array([...enc('{"quality":1,"s":"'), 0xff, ...enc('"}')]);
    const cases: Array<[string, Uint8Array<ArrayBuffer>]> = [
      ["application/json", new Uint8Array([0xef, 0xbb, 0xbf, ...enc('{"quality":1}')])],
      ["application/json; charset=iso-8859-1", enc('{"quality":1}')],
      ["application/json", bad],
      ["application/json; charset =iso-8859-1", enc('{"quality":1}')],
      ['application/json; profile="x;charset=latin1"', enc('{"quality":1}')],
    ];
    for (const [type, bytes] of cases)
      await drain(
        await proxy.fetch(
          new Request(`https://p.example/b`, { method: "POST", body: bytes, headers: { "content-type": type } }),
          {},
          ctx,
        ),
      );
    const got = up.hits.slice(1).map((h) => h.bytes);
    expect(got.map((b) => b.toString("utf8").replace(/^\uFEFF/, "BOM:"))).toEqual([
      'BOM:{"quality":0.9}',
      '{"quality":1}',
      Buffer.from(bad).toString("utf8"),
      '{"quality":0.9}',
      '{"quality":0.9}',
    ]);
    expect(got[2]?.equals(Buffer.from(bad))).toBe(true);
  });

  it("a client that went away mid-call is no sample: the level holds", async () => {
    const clock = new TestClock();
    const proxy = proxyAt(clock);
    up.on(() => {});
    const client = new AbortController();
    const gone = track(
      proxy.fetch(
        new Request("https://p.example/hold", { method: "POST", body: "{}", signal: client.signal }),
        {},
        ctx,
      ),
    );
    await up.nth(1);
    client.abort(new Error("client left"));
    await expect(gone).rejects.toThrow("client left");
    up.on((hit) => reply(hit, 200));
    await clock.advance(1000);
    const res = await drain(await proxy.fetch(new Request("https://p.example/ok"), {}, ctx));
    expect(res.headers.get("x-degradation-level")).toBe("full");
    const health = await (await proxy.fetch(new Request("https://p.example/__resilience/health"), {}, ctx)).json();
    expect(health.degradationLevel).toBe("full");
  });
});

describe("a keepalive `Request` past `maxReplayBytes`", () => {
  it("is read whole and rewritten as any body in memory is", async () => {
    const layer = createResilience({
      retry: false,
      maxReplayBytes: 64,
      degradation: degradation({ ...calm, rules: [{ params: { quality: "quality" } }] }),
    });
    layer.degradation.setLevel("medium");
    const pad = "x".repeat(200);
    const request = new Request(`${up.base}/k`, {
      method: "POST",
      keepalive: true,
      body: `{"quality":1,"pad":"${pad}"}`,
      headers: json,
    });
    await drain(await layer.fetch(request));
    expect(up.hits[0]?.body).toBe(`{"quality":0.8,"pad":"${pad}"}`);
  });
});

describe("the ky client", () => {
  it("`json`, repeated `searchParams` and a header rule: each place adjusted, one key kept across the layer's retry", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      degradation: degradation({
        ...calm,
        rules: [{ params: { quality: "opts.quality", model: { query: "model" }, steps: { header: "x-steps" } } }],
      }),
    });
    layer.degradation.setLevel("medium");
    const api = createClient({ prefix: up.base, resilience: layer });
    up.on((hit) => reply(hit, hit.n === 1 ? 503 : 200));
    const call = api
      .post("gen", {
        json: { opts: { quality: 1 }, prompt: "wave" },
        searchParams: new URLSearchParams([
          ["model", "premium"],
          ["model", "standard"],
          ["x", "1"],
        ]),
        headers: { "idempotency-key": "ky-key", "x-steps": "50, 10" },
      })
      .text();
    expect(await clock.run(call)).toBe("ok");
    const sent = '{"opts":{"quality":0.8},"prompt":"wave"}';
    const row = [
      "POST",
      "/gen?model=standard&model=basic&x=1",
      sent,
      "application/json",
      "ky-key",
      "30, 10",
      len(sent),
    ];
    expect(seen(up.hits, "content-type", "idempotency-key", "x-steps", "content-length")).toEqual([row, row]);
  });
});

describe("`execute` and the level", () => {
  it("`execute`'s failures feed the triggers (a `fallback` answering leaves it failed); an aborted run does not", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      degradation: degradation({ ...calm, minSamples: 1, stepInterval: 0 }),
    });
    const events = recordEvents(layer).events;
    const controller = new AbortController();
    const aborted = layer.execute(
      async () => {
        controller.abort(new Error("gone"));
        throw new Error("work failed");
      },
      { signal: controller.signal },
    );
    await expect(aborted).rejects.toThrow();
    expect(layer.degradation.currentLevel().name).toBe("full");
    const answer = await layer.execute(
      async () => {
        throw new Error("GPU down");
      },
      { fallback: () => "stand-in" },
    );
    expect(answer).toBe("stand-in");
    expect(layer.degradation.currentLevel().name).toBe("high");
    expect(events.filter((e) => e.type === "degradation")).toHaveLength(1);
    // The level is the layer's: the next fetch goes at `high`, and `execute`'s work is not rewritten.
    const res = await drain(await layer.fetch(`${up.base}/g`, { method: "POST", body: Q1, headers: json }));
    expect([getResilienceInfo(res)?.degradationLevel, up.hits[0]?.body]).toEqual(["high", '{"quality":0.9,"seed":7}']);
  });
});

describe("manual control beside the triggers", () => {
  it("`setLevel` pins against failing calls, `degrade` still works while pinned, `restore` steps up and unpins", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      degradation: degradation({ ...calm, minSamples: 1, stepInterval: 0 }),
    });
    const recorder = recordEvents(layer);
    const handle = layer.degradation;
    up.on((hit) => reply(hit, 500));
    handle.setLevel("high");
    await drain(await layer.fetch(`${up.base}/a`));
    await clock.advance(1000);
    await drain(await layer.fetch(`${up.base}/b`));
    expect(handle.currentLevel()).toMatchObject({ name: "high", pinned: true });
    handle.degrade("manual");
    expect(handle.currentLevel()).toMatchObject({ name: "medium", percentage: 60, reason: "manual" });
    handle.restore();
    expect(handle.currentLevel()).toMatchObject({ name: "high", pinned: false });
    await clock.advance(1000);
    await drain(await layer.fetch(`${up.base}/c`));
    expect(handle.currentLevel().name).toBe("medium");
    expect(recorder.of("degradation").map((e) => [e.from, e.to])).toEqual([
      ["full", "high"],
      ["high", "medium"],
      ["medium", "high"],
      ["high", "medium"],
    ]);
  });
});

describe("no secret through a rewritten call's errors and events", () => {
  it("a rewritten query holding a key, to a refused origin and across a redirect: none in the error, events, reason", async () => {
    const dead = await refusedOrigin();
    const layer = createResilience({
      redirects: "library",
      retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" },
      degradation: degradation({ ...calm, rules: [{ params: { model: { query: "model" }, quality: "quality" } }] }),
    });
    const events = recordEvents(layer).events;
    layer.degradation.degrade(`queue full at https://user:pw@gpu.example/q?key=${SECRET}`);
    layer.degradation.setLevel("medium");
    const error = await layer.fetch(`${dead}/gen?key=${SECRET}&model=premium`, { method: "PUT", body: Q1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    up.on((hit) => reply(hit, 307, { location: `http://localhost:${other.port}/n?key=${SECRET}&model=premium` }));
    await drain(await layer.fetch(`${up.base}/gen?key=${SECRET}&model=premium`, { method: "PUT", body: Q1 }));
    expect(other.hits.map((h) => h.path)).toEqual([`/n?key=${SECRET}&model=premium`]);
    const text = (v: unknown) =>
      JSON.stringify(v, (_k, x) =>
        x instanceof Error ? { ...x, s: String(x), m: x.message, st: x.stack, c: x.cause } : x,
      );
    for (const where of [text(error), text(events), text(layer.degradation.currentLevel()), text(layer.debugInfo())])
      expect(where.includes(SECRET) || where.includes(":pw@")).toBe(false);
  });
});

describe("docs/retry.md says what the tests above saw of the layer's own key", () => {
  it("one key names the whole call: every retry, endpoint, hedge and redirect hop, another origin's too", () => {
    const guide = readFileSync(new URL("../../docs/retry.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain(
      "the same on every retry of that call and on every endpoint, hedge and redirect hop the call goes to, on another origin too (`idempotency-key` is among the headers that cross origins), so one key names the whole call",
    );
  });
});
