/**
 * Outside-in attack on composition: a layer's `fetch` as the transport of a second layer, the ky client and
 * fallback chains over such a pair, SDK-style `Request` inputs through both, and layers sharing one breaker store.
 * Docs: SECURITY.md "A paid request is never processed twice | without an `Idempotency-Key` … a POST … is sent
 * again (a retry, or the next endpoint of a chain: one rule) only when it surely was not processed: 429, 503 …";
 * docs/retry.md ("A caller's abort is never a failure: it stops the wait or the attempt at once and rejects with
 * `signal.reason`", "`CircuitOpenError` | the host's breaker is open: nothing was sent", "A `ReadableStream` body …
 * is sent once on every path", ky: "`getResilienceInfo` reads … `error.response` of its `HTTPError`", ky's errors
 * "name the URL in their message without its query"); docs/recipes.md ("A client's or SDK's own `timeout` aborts
 * the whole call, retries included: the layer sees the caller's abort and stops", "Otherwise retries multiply");
 * docs/breakers.md ("`store: memoryStore()` shares transitions between `Resilience` instances … a host one opened
 * is open for all, for a retry waiting out its backoff too"); docs/fallback.md ("Credentials never cross
 * origins", hedging: "the others are aborted (their upstreams see the connection closed)"); docs/degradation.md
 * ("each layer it joins gets its own level"); docs/health-and-events.md (a call its caller aborted is left out).
 * How: `createResilience`, `getResilienceInfo`, `memoryStore` (root), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky) and plain `ky.create({ fetch })`; node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts).
 * Paths: plain call through two layers, inner chain under an outer layer, outer chain (and hedge) over an inner
 * layer, redirect followed by the outer layer, `Request` input (streamed body, `duplex: "half"`, own `signal`,
 * clone), ky client, shared store (siblings, and inner/outer on one host).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: an earlier endpoint's declined answer is no longer given after a later endpoint may have processed a keyless POST):
 * 1. SECURITY.md "A paid request is never processed twice" (a POST without a key "is sent again … only when it
 *    surely was not processed: 429, 503 …"). Observed: a layer whose transport is a layer with a chain `[p, q]`
 *    re-sends a keyless POST that q may have processed: p answers 503 (declined), so the inner chain moves on to
 *    q, whose connection resets after it received the whole request (the chain ends there); the inner call then
 *    resolves with p's 503, "the last response any endpoint gave" (docs/fallback.md). The outer layer reads that
 *    503 as "the server declined" (src/http/send/classify.ts `maySendAgain` → `isDeclined`) and retries: q
 *    receives the job once per outer attempt (3 with `maxAttempts: 3`). The same 503 goes to any client of
 *    `resilientProxy` (which passes the last answer through), so a browser layer retrying the Worker's 503 does
 *    the same. The response carries nothing that says a later endpoint may have processed the request.
 *
 * Held (plain `it`):
 * - Two layers, 503 upstream: retries multiply (3 × 2 = 6 requests), as the recipes warn of a client's own
 *   retries; the outer response's `getResilienceInfo` is the outer call's (attempts 2), each inner call's
 *   `request` event says 3.
 * - The inner layer's open breaker reaches the outer caller as that `CircuitOpenError` (nothing sent), not
 *   retried by the outer layer.
 * - The outer `timeout.total` cuts the inner call: `TimeoutError` of phase `total`, the upstream sees the
 *   connection closed, and the inner layer counts no call (an abort is left out).
 * - A `Request`'s own `signal` aborted mid-call reaches the upstream through both layers; the call rejects with
 *   that reason. A `Request` with a streamed body (`duplex: "half"`) and its clone both arrive whole.
 * - A stream body larger than `maxReplayBytes` (a `Request`'s, and one in `init`) is sent once through both
 *   layers on a 503.
 * - A key in the query stays out of the error chain (messages, stacks, fields) through two layers, and out of
 *   both layers' events and `debugInfo()`.
 * - Siblings sharing `memoryStore()`: a host one opened refuses the other's call, nothing sent, `health()` open.
 *   Inner and outer sharing one store on one host: once the inner opens it, the outer's waiting retry is refused
 *   and the call settles with the 503 it had (3 requests, not 6).
 * - ky: `createClient` over a nested pair gives `HTTPError` with `getResilienceInfo(error.response)` and a message
 *   without the query; ky's own `timeout` over a nested pair aborts the upstream and neither layer counts it.
 * - An outer chain over an inner layer keeps `authorization` home when it moves to another origin; a hedge over
 *   an inner layer aborts the loser (its upstream sees the connection closed), the inner layer counts it not.
 * - A redirect followed by the outer layer, through the inner one, drops `authorization` and `x-api-key` at the
 *   other origin.
 * - One `degradation({…})` stage given to two layers: each has its own level.
 */
import ky from "ky";
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type CircuitOpenError,
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isTimeoutError,
  memoryStore,
  type RequestEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const busy = (h: Hit) => {
  h.res.statusCode = 503;
  h.res.end("busy");
};

function stream(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
      c.close();
    },
  });
}

function nested(innerOptions: Parameters<typeof createResilience>[0] = {}, outerOptions = {}) {
  const inner = createResilience(innerOptions);
  const outer = createResilience({ ...outerOptions, fetch: inner.fetch });
  return { inner, outer };
}

describe("a layer whose transport is another layer", () => {
  it("does not re-send a keyless POST that the inner chain's last endpoint may have processed", async () => {
    a.on(busy);
    b.on((h) => h.res.socket?.destroy()); // received in full, then the connection goes: it may have been processed
    const { outer } = nested(
      {
        retry: { ...fast, maxAttempts: 1 },
        fallback: fallback([
          {
            name: "jobs",
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              { name: "q", url: `${b.base}/v1` },
            ],
          },
        ]),
      },
      { retry: { ...fast, maxAttempts: 3 } },
    );
    // Fixed: instead of p's 503, the inner chain now rejects with `FallbackExhaustedError` saying q may
    // have processed the request (docs/fallback.md), and no layer retries that.
    const error = await outer
      .fetch(`${a.base}/v1/jobs`, { method: "POST", body: '{"prompt":"cat"}' })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "FallbackExhaustedError" });
    expect((error as Error).message).toMatch(/stopped after "q", which may have processed the request/);
    expect(b.hits.map((h) => h.body)).toEqual(['{"prompt":"cat"}']); // observed: three times
  });

  it("multiplies retries and reports the outer call in getResilienceInfo", async () => {
    a.on(busy);
    const { inner, outer } = nested({ retry: { ...fast, maxAttempts: 3 } }, { retry: { ...fast, maxAttempts: 2 } });
    const innerEvents: RequestEvent[] = [];
    inner.on("request", (e) => innerEvents.push(e));
    const res = await outer.fetch(`${a.base}/x`);
    expect(res.status).toBe(503);
    expect(a.hits.length).toBe(6);
    expect(getResilienceInfo(res)?.attempts).toBe(2);
    expect(innerEvents.map((e) => e.attempts)).toEqual([3, 3]);
  });

  it("passes the inner layer's open breaker on as CircuitOpenError, not retried", async () => {
    a.on(busy);
    const { outer } = nested(
      { retry: false, breaker: { failureThreshold: 1 } },
      { retry: { ...fast, maxAttempts: 3 } },
    );
    expect((await outer.fetch(`${a.base}/x`)).status).toBe(503); // the outer retry met the open inner breaker
    expect(a.hits.length).toBe(1);
    const error = await rejection(outer.fetch(`${a.base}/x`));
    expect(isCircuitOpenError(error)).toBe(true);
    expect((error as CircuitOpenError).key).toBe(a.host);
    expect(a.hits.length).toBe(1);
  });

  it("lets the outer timeout.total cut the inner call, which counts no call", async () => {
    a.on(() => {});
    const { inner, outer } = nested({ retry: fast }, { timeout: { total: 100 } });
    const error = await rejection(outer.fetch(`${a.base}/x`));
    expect(isTimeoutError(error) && error.phase).toBe("total");
    await (await a.nth(1)).closed;
    expect(inner.debugInfo().totals.calls).toBe(0);
    expect(inner.health().errorRate).toBe(0);
  });

  it("carries a Request's own signal, streamed body and clone through both layers", async () => {
    a.on((h) => h.res.end(`got ${h.body}`));
    const { outer } = nested({ retry: fast }, { retry: fast });
    const request = new Request(`${a.base}/x`, {
      method: "POST",
      body: stream("hello"),
      duplex: "half",
    } as RequestInit);
    const clone = request.clone();
    expect(await (await outer.fetch(request)).text()).toBe("got hello");
    expect(await (await outer.fetch(clone)).text()).toBe("got hello");

    a.on(() => {});
    const controller = new AbortController();
    const pending = outer.fetch(new Request(`${a.base}/hang`, { signal: controller.signal }));
    const hit = await a.nth(3);
    const reason = new Error("caller gave up");
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    await hit.closed;
  });

  it("sends a stream past maxReplayBytes once through both layers", async () => {
    a.on((h) => {
      h.res.statusCode = 503;
      h.res.end(String(h.bytes.length));
    });
    const { outer } = nested({ retry: fast, maxReplayBytes: 4 }, { retry: fast, maxReplayBytes: 4 });
    const request = new Request(`${a.base}/x`, {
      method: "PUT",
      body: stream("hello world"),
      duplex: "half",
    } as RequestInit);
    expect(await (await outer.fetch(request)).text()).toBe("11");
    expect(a.hits.length).toBe(1);
    await outer.fetch(`${a.base}/y`, { method: "PUT", body: stream("hello world"), duplex: "half" } as RequestInit);
    expect(a.hits.length).toBe(2);
  });

  it("keeps a query key out of the error chain, events and debugInfo of both layers", async () => {
    const dead = await refusedOrigin();
    const { inner, outer } = nested({ retry: fast }, { retry: fast });
    const seen: unknown[] = [];
    for (const layer of [inner, outer]) {
      layer.on("retry", (e) => seen.push(e));
      layer.on("request", (e) => seen.push(e));
    }
    const error = await rejection(outer.fetch(`${dead}/x?api_key=SECRET123#frag`));
    let text = "";
    let link: unknown = error;
    for (let depth = 0; link && depth < 10; depth++) {
      const e = link as Error & { cause?: unknown };
      text += `${String(e)} ${e.message} ${e.stack} ${JSON.stringify(e)}\n`;
      link = e.cause;
    }
    text += JSON.stringify(seen) + JSON.stringify(inner.debugInfo()) + JSON.stringify(outer.debugInfo());
    expect(text).toContain("ECONNREFUSED");
    expect(text).not.toContain("SECRET123");
    expect(text).not.toContain("frag");
  });
});

describe("shared breaker store", () => {
  it("refuses a sibling's call to a host the other opened", async () => {
    a.on(busy);
    const store = memoryStore();
    const one = createResilience({ store, retry: false, breaker: { failureThreshold: 2 } });
    const two = createResilience({ store, retry: false, breaker: { failureThreshold: 2 } });
    await one.fetch(`${a.base}/x`);
    await one.fetch(`${a.base}/x`);
    expect(isCircuitOpenError(await rejection(two.fetch(`${a.base}/x`)))).toBe(true);
    expect(a.hits.length).toBe(2);
    expect(two.health().breakers[a.host]?.state).toBe("open");
  });

  it("refuses the outer layer's waiting retry once the inner layer opened the host", async () => {
    a.on(busy);
    const store = memoryStore();
    const { outer } = nested(
      { store, retry: false, breaker: { failureThreshold: 3 } },
      { store, retry: { ...fast, maxAttempts: 6 }, budget: { minPerSecond: 100 } },
    );
    expect((await outer.fetch(`${a.base}/x`)).status).toBe(503);
    expect(a.hits.length).toBe(3);
    expect(outer.health().breakers[a.host]?.state).toBe("open");
  });
});

describe("clients and stages over a nested pair", () => {
  it("ky's createClient: HTTPError with the layer's info and no query in its message", async () => {
    a.on(busy);
    const { outer } = nested({ retry: { ...fast, maxAttempts: 2 } }, { retry: { ...fast, maxAttempts: 2 } });
    const api = createClient({ prefix: a.base, resilience: outer });
    const error = (await rejection(api.get("x?key=SECRET123").text())) as Error & { response: Response };
    expect(error.name).toBe("HTTPError");
    expect(error.message).not.toContain("SECRET123");
    expect(getResilienceInfo(error.response)?.attempts).toBe(2);
    expect(a.hits.length).toBe(4);
  });

  it("ky's own timeout aborts the upstream through both layers, counted by neither", async () => {
    a.on(() => {});
    const { inner, outer } = nested();
    const api = ky.create({ fetch: outer.fetch, retry: 0, timeout: 100 });
    const error = (await rejection(api.get(`${a.base}/x`).text())) as Error;
    expect(error.name).toBe("TimeoutError");
    await (await a.nth(1)).closed;
    expect(inner.debugInfo().totals.calls).toBe(0);
    expect(outer.debugInfo().totals.calls).toBe(0);
  });

  it("an outer chain over an inner layer keeps credentials home", async () => {
    a.on(busy);
    b.on((h) => h.res.end(JSON.stringify(h.headers)));
    const chains = fallback([
      {
        name: "c",
        endpoints: [
          { name: "p", url: `${a.base}/v1` },
          { name: "s", url: `${b.base}/v2` },
        ],
      },
    ]);
    const { outer } = nested(
      { retry: { ...fast, maxAttempts: 2 } },
      { retry: { ...fast, maxAttempts: 2 }, fallback: chains },
    );
    const res = await outer.fetch(`${a.base}/v1/jobs`, { headers: { authorization: "Bearer SECRET123" } });
    expect(getResilienceInfo(res)?.endpoint).toBe("s");
    const headers = JSON.parse(await res.text()) as Record<string, string>;
    expect(headers.authorization).toBeUndefined();
    expect(b.hits[0]?.path).toBe("/v2/jobs");
  });

  it("an outer hedge over an inner layer aborts the loser, which the inner layer does not count as failed", async () => {
    a.on((h) => {
      setTimeout(() => {
        if (!h.res.destroyed) h.res.end("slow");
      }, 300);
    });
    b.on((h) => h.res.end("fast"));
    const chains = fallback([
      {
        name: "c",
        hedge: { delay: 30 },
        endpoints: [
          { name: "p", url: `${a.base}/v1` },
          { name: "s", url: `${b.base}/v1` },
        ],
      },
    ]);
    const { inner, outer } = nested({}, { fallback: chains });
    const res = await outer.fetch(`${a.base}/v1/j`);
    expect(await res.text()).toBe("fast");
    await (await a.nth(1)).closed;
    expect(inner.debugInfo().totals.failures).toBe(0);
    expect(inner.health().breakers[a.host]?.failureCount ?? 0).toBe(0);
  });

  it("a redirect the outer layer follows through the inner one drops credentials at the other origin", async () => {
    a.on((h) => {
      h.res.statusCode = 302;
      h.res.setHeader("location", `${b.base}/land`);
      h.res.end();
    });
    b.on((h) => h.res.end("landed"));
    const { outer } = nested();
    const res = await outer.fetch(`${a.base}/x`, { headers: { "x-api-key": "SECRET123", authorization: "Bearer S" } });
    expect(res.redirected).toBe(true);
    expect(await res.text()).toBe("landed");
    expect(b.hits[0]?.headers["x-api-key"]).toBeUndefined();
    expect(b.hits[0]?.headers.authorization).toBeUndefined();
  });

  it("one degradation stage given to two layers gives each its own level", () => {
    const stage = degradation({});
    const one = createResilience({ degradation: stage });
    const two = createResilience({ degradation: stage });
    one.degradation.setLevel("medium");
    expect(one.degradation.currentLevel().name).toBe("medium");
    expect(two.degradation.currentLevel().name).toBe("full");
  });
});
