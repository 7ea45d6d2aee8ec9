/**
 * Outside-in attack on README.md, read top to bottom, its promises tried on the paths a user takes and
 * earlier runs did not combine: a plain call, a `Request` input with a body (with and without an `init`
 * over it), a fallback chain, a hedged chain, a redirect the library follows (Node's default), a degradation
 * rewrite (the default rule, level `low`), the ky client from `./ky`. Public entries only; stub transports
 * (test/helpers/host-fetch.ts) with time on a TestClock or zero delays, and real servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) for streamed bodies. Not repeated: readme-paths-attack (open breakers and
 * Retry-After across redirects, timeout.total on every path, a POST without a key after a reset, the proxy),
 * fixes-nineteen-attack (listeners and hooks that ignore the signal).
 *
 * Sentences tried:
 * - "This library retries what is safe to retry, only as often as a retry budget allows, honours the
 *   server's `Retry-After`, … and never buffers your streamed responses." (README.md, Why)
 * - "`resilience.fetch` is a bound `(input, init) => Promise<Response>`, so it drops into anything that
 *   takes a custom fetch (ky, SDKs, Hono)." and "… rejects when it has none, or when the call is aborted"
 *   (README.md, Quick start), with docs/retry.md#timeouts, which it links: the body read "is yours, under
 *   your own signal".
 * - the test snippet's `expect(new Set(api.header("idempotency-key")).size).toBe(1)` after retries, on ky
 *   and on a hedge; "graceful degradation of the parameters you send" (README.md, intro) on every path.
 *
 * Defects pinned: none. Every promise tried below held.
 *
 * Held (plain `it`):
 * - ky (`createClient({ resilience })`, `post(…, { json })`): a 503 with `Retry-After: 7` is retried after
 *   exactly 7 s on the TestClock (not jittered), both attempts carry the same body and the same automatic
 *   `Idempotency-Key`; `getResilienceInfo` reads attempts 2;
 * - a hedged chain and a POST given a key by `retry.idempotencyKey`: the hedge to the backup carries the same
 *   key and body as the primary's request; the info says `b`, `fromFallback`, attempts 2;
 * - a retry budget of nothing (`ratio: 0, minPerSecond: 0`): no retry on a plain call, down a chain (each
 *   endpoint once, the last answer given), through ky;
 * - the default degradation rule at `low` rewrites `steps` 50 → 20 and `resolution` 1080p → 720p, every
 *   other byte as sent, on a plain call (and its retry), a `Request` with a body, a `Request` with
 *   `init.headers` over it, a chain, a followed 307 (both hops), ky's `json`, a `Blob` and bytes; the key
 *   stays the same across the retry and the hop;
 * - a streamed (SSE) answer's first event arrives before the server ends it, and the caller's abort after
 *   the response errors the body read with its reason, as Node's fetch does: plain, under `timeout.attempt`,
 *   under `timeout.total`, a followed redirect (a `Request` POST with a body, 307), a chain (with and
 *   without `timeout.total`), a hedged chain, a degradation stage, ky.
 *
 * Suspicious, not pinned (no sentence promises it):
 * - `resilience.fetch` refuses any input that is neither a string, a `URL` of this realm nor a `Request` of
 *   this realm ("expected a URL string, URL or Request"), where fetch stringifies an object (a `URL` or
 *   URL-like from another realm or library); "drops into anything that takes a custom fetch" holds for
 *   the callers named (ky, SDKs passing strings), and a plain `{ url }` object is refused on purpose.
 * - a response retried past whose body is over 64 KiB is not kept: when the bulkhead or breaker then
 *   refuses the retry, the call rejects with the refusal though it had a response (docs/retry.md#bodies
 *   says so; README's "whenever it has one to give" reads wider).
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { header, hostFetch, status } from "../helpers/host-fetch.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { FAST, outcome } from "../helpers/platform-layer.ts";

const A = "a.test";
const B = "b.test";

const S = httpUpstream();
const T = httpUpstream();
serveDuringFile(S, T);

describe("README: retries what is safe, under the budget, honouring Retry-After, one key per call", () => {
  it("ky: a 503's Retry-After (7 s) is the wait; both attempts carry the same body and Idempotency-Key", async () => {
    const clock = new TestClock();
    const up = hostFetch({
      [A]: (_r, n) =>
        n === 1 ? new Response("busy", { status: 503, headers: { "retry-after": "7" } }) : new Response("ok"),
    });
    const layer = createResilience({ clock, fetch: up.fetch, retry: { idempotencyKey: true } });
    const res = await clock.run(createClient({ resilience: layer }).post(`http://${A}/v1/x`, { json: { a: 1 } }));
    expect([await res.text(), clock.now(), getResilienceInfo(res)?.attempts]).toEqual(["ok", 7000, 2]);
    expect(up.log.map((r) => r.text)).toEqual(['{"a":1}', '{"a":1}']);
    const keys = up.log.map((r) => header(r, "idempotency-key"));
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
  });

  it("hedged chain: the hedge of a keyed POST carries the primary's key and body", async () => {
    const clock = new TestClock();
    const up = hostFetch({ [A]: () => new Promise<Response>(() => {}), [B]: () => new Response("b ok") });
    const layer = createResilience({
      clock,
      fetch: up.fetch,
      retry: { ...FAST, idempotencyKey: true },
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 100 },
          endpoints: [
            { name: "a", url: `http://${A}/v1` },
            { name: "b", url: `http://${B}/v1` },
          ],
        },
      ]),
    });
    const res = await clock.run(layer.fetch(`http://${A}/v1/x`, { method: "POST", body: '{"p":1}' }));
    expect(await res.text()).toBe("b ok");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 2 });
    expect(up.log.map((r) => [r.url, r.text])).toEqual([
      [`http://${A}/v1/x`, '{"p":1}'],
      [`http://${B}/v1/x`, '{"p":1}'],
    ]);
    expect(new Set(up.log.map((r) => header(r, "idempotency-key"))).size).toBe(1);
  });

  it("a budget of nothing: no retry on a plain call, down a chain, or through ky", async () => {
    const up = hostFetch({ [A]: status(503), [B]: status(503) });
    const layer = createResilience({
      fetch: up.fetch,
      retry: FAST,
      breaker: false,
      budget: { ratio: 0, minPerSecond: 0 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `http://${A}/c` },
            { name: "b", url: `http://${B}/c` },
          ],
        },
      ]),
    });
    const sent: Array<[string, number]> = [];
    for (const call of [
      () => layer.fetch(`http://${A}/x`),
      () => layer.fetch(`http://${A}/c/x`),
      () => createClient({ resilience: layer, throwHttpErrors: false }).get(`http://${A}/x`),
    ]) {
      const before = up.log.length;
      sent.push([await outcome(call()), up.log.length - before]);
    }
    expect(sent).toEqual([
      ["503 answer 1", 1],
      ["503 answer 1", 2],
      ["503 answer 3", 1],
    ]);
  });
});

describe("README: graceful degradation of the parameters you send, on every path", () => {
  it("the default rule at low rewrites steps and resolution alone: plain, Request, chain, 307, ky, Blob, bytes", async () => {
    const answer = (r: Request, n: number) =>
      r.url.endsWith("/go")
        ? new Response(null, { status: 307, headers: { location: `http://${B}/r` } })
        : status(503, 200)(r, n);
    const up = hostFetch({ [A]: answer, [B]: status(200) });
    const layer = createResilience({
      fetch: up.fetch,
      retry: { ...FAST, idempotencyKey: true },
      degradation: degradation({}),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `http://${A}/c` },
            { name: "b", url: `http://${B}/c` },
          ],
        },
      ]),
    });
    layer.degradation.setLevel("low");
    const body = JSON.stringify({ prompt: "x", steps: 50, resolution: "1080p" });
    const degraded = '{"prompt":"x","steps":20,"resolution":"720p"}';
    const json = { "content-type": "application/json" };
    const runs: Array<[string, () => Promise<Response>, number]> = [
      ["plain (503, then retried)", () => layer.fetch(`http://${A}/x`, { method: "POST", body, headers: json }), 2],
      ["Request", () => layer.fetch(new Request(`http://${A}/x`, { method: "POST", body, headers: json })), 1],
      [
        "Request + init.headers",
        () => layer.fetch(new Request(`http://${A}/x`, { method: "POST", body }), { headers: json }),
        1,
      ],
      ["chain", () => layer.fetch(`http://${A}/c/x`, { method: "POST", body, headers: json }), 1],
      ["307", () => layer.fetch(`http://${A}/go`, { method: "POST", body, headers: json }), 2],
      ["ky json", () => createClient({ resilience: layer }).post(`http://${A}/x`, { json: JSON.parse(body) }), 1],
      [
        "Blob",
        () => layer.fetch(`http://${A}/x`, { method: "POST", body: new Blob([body], { type: json["content-type"] }) }),
        1,
      ],
      [
        "bytes",
        () => layer.fetch(`http://${A}/x`, { method: "POST", body: new TextEncoder().encode(body), headers: json }),
        1,
      ],
    ];
    for (const [name, run, requests] of runs) {
      const before = up.log.length;
      const res = await run();
      const sent = up.log.slice(before);
      expect([name, res.status, getResilienceInfo(res)?.degradationLevel, sent.length]).toEqual([
        name,
        200,
        "low",
        requests,
      ]);
      for (const r of sent) expect([name, r.text]).toEqual([name, degraded]);
      expect([name, new Set(sent.map((r) => header(r, "idempotency-key"))).size]).toEqual([name, 1]);
    }
  });
});

/** SSE: one event, then the server holds the stream open; `/go` is a 307 to T. */
const streamer = (hit: Hit) => {
  if (hit.path.startsWith("/go")) {
    hit.res.writeHead(307, { location: `${T.base}/v1/stream` });
    hit.res.end();
    return;
  }
  hit.res.writeHead(200, { "content-type": "text/event-stream" });
  hit.res.write("data: first\n\n");
};

/** Reads the first chunk (the server has not ended), aborts the caller's signal, and says what the next read gives. */
async function firstThenAbort(res: Response, caller: AbortController): Promise<[string, string]> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  // A test that fails must not hang: the reads give up after 2 s (the timer is cleared either way).
  const guard = setTimeout(() => reader.cancel(new Error("no chunk")).catch(() => {}), 2000);
  try {
    const first = new TextDecoder().decode((await reader.read()).value);
    caller.abort(new Error("mine"));
    const next = await reader.read().then(
      (r) => (r.done ? "done" : "chunk"),
      (e: Error) => `error: ${e.message}`,
    );
    return [first, next];
  } finally {
    clearTimeout(guard);
  }
}

describe("README: never buffers your streamed responses; the body read stays under the caller's signal", () => {
  const chain = (hedge?: { delay: number }) => ({
    name: "c",
    ...(hedge ? { hedge } : {}),
    endpoints: [
      { name: "s", url: `${S.base}/v1` },
      { name: "t", url: `${T.base}/v1` },
    ],
  });
  const cases: Array<[string, () => ResilienceOptions, () => RequestInfo]> = [
    ["plain", () => ({}), () => `${S.base}/v1/stream`],
    ["timeout.attempt", () => ({ timeout: { attempt: 5000 } }), () => `${S.base}/v1/stream`],
    ["timeout.total", () => ({ timeout: { total: 5000 } }), () => `${S.base}/v1/stream`],
    ["307 of a Request POST", () => ({}), () => new Request(`${S.base}/go`, { method: "POST", body: "x" })],
    ["chain", () => ({ fallback: fallback([chain()]) }), () => `${S.base}/v1/stream`],
    [
      "chain, timeout.total",
      () => ({ fallback: fallback([chain()]), timeout: { total: 5000 } }),
      () => `${S.base}/v1/stream`,
    ],
    ["hedged chain", () => ({ fallback: fallback([chain({ delay: 1000 })]) }), () => `${S.base}/v1/stream`],
    ["degradation", () => ({ degradation: degradation({}) }), () => `${S.base}/v1/stream`],
  ];
  for (const [name, options, input] of cases) {
    it(`${name}: the first event before the end, then the caller's abort errors the read`, async () => {
      S.on(streamer);
      T.on(streamer);
      const caller = new AbortController();
      const res = await createResilience({ retry: FAST, ...options() }).fetch(input(), { signal: caller.signal });
      expect(await firstThenAbort(res, caller)).toEqual(["data: first\n\n", "error: mine"]);
    });
  }

  it("ky: the same", async () => {
    S.on(streamer);
    const caller = new AbortController();
    const res = await createClient({ resilience: { retry: FAST } }).get(`${S.base}/v1/stream`, {
      signal: caller.signal,
    });
    expect(await firstThenAbort(res, caller)).toEqual(["data: first\n\n", "error: mine"]);
  });
});
