/**
 * Outside-in attack on SECURITY.md and docs/retry.md's idempotency section on COMPOSED paths (…): one call through
 * `resilientProxy` or the ky client, a hedged fallback chain, a degradation rewrite with a level header, a
 * cross-origin redirect, a `Request` or streamed body (some past `maxReplayBytes`), `Retry-After`, timeouts, aborts.
 *
 * Docs:
 * - SECURITY.md: "to an origin other than the caller's (a fallback endpoint, a hedge, a `transform` pointing
 *   elsewhere, a redirect the library follows) only `accept`, `accept-language`, `content-language`, `content-type`,
 *   `idempotency-key`, `user-agent` and the headers named in `crossOriginHeaders` go"; "from the first cross-origin
 *   hop on only the allowlist goes, for good (a later hop back does not restore the rest)".
 * - docs/degradation.md: "to another origin (a fallback endpoint, a redirect) it goes, like the caller's own
 *   headers, only when named in `crossOriginHeaders`".
 * - SECURITY.md: "a POST or PATCH is sent again … only when it surely was not processed …; never after a 500, a
 *   reset, an attempt or total timeout or a redirect (whatever its target answers); hedging needs a key".
 * - docs/retry.md: "With `retry.idempotencyKey: true`, POST and PATCH requests without a key get one
 *   (`crypto.randomUUID()`), the same on every retry of that call".
 * - SECURITY.md: "a larger one (with a `replay` event), or a stream, is sent once on every path (chain, rewrite,
 *   hedge)". docs/retry.md: "307/308 replay method and body (a body sent once, a stream or one larger than
 *   `maxReplayBytes` as the caller gave it, cannot be: a `TypeError`)"; "a 301/302 POST drops it and follows as a
 *   GET; a `Request` built on a stream and past the limit then follows"; "303 turns anything but GET/HEAD into a
 *   GET (body and its headers dropped)"; "the call rejects … with a `RetryExhaustedError` whose `cause` is that
 *   failure (the follower's `TypeError` among them)".
 * - docs/retry.md: "A `Retry-After` longer than `maxRetryAfter` is not slept through: … (in a fallback chain, the
 *   next endpoint is tried instead, as after any 503)"; "`timeout.total` … a wait that would end past it is not
 *   started (the call settles as if that had been its last attempt: with its response …)"; "The hops are one
 *   attempt: the attempt timeout covers them all, and the final status counts against the first host's breaker."
 * - SECURITY.md: "measured as the caller sent it (a degradation rule's edit may lengthen a kept body by what it
 *   writes)"; "a `Request` body (the Worker proxy's client body included) is read at most `maxReplayBytes` ahead,
 *   under the call's signal and `timeout.total`". docs/retry.md: "a call that ends without sending it (an open
 *   breaker, a full bulkhead, an abort before the send, …) cancels it". SECURITY.md: "an endpoint's own `headers`
 *   are its own".
 * - docs/fallback.md: "the first acceptable answer wins and the others are aborted (their upstreams see the
 *   connection closed)". docs/retry.md: "A caller's abort … rejects with `signal.reason`".
 * - docs/cloudflare.md: "`504` on a timeout", "`502` when no endpoint answered otherwise (… a redirect's target's
 *   own `429` or `503`, whatever the method …)". SECURITY.md: "No secret in events, errors, `health()` …".
 *
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation; its stage wrapped to reach
 * the proxy's level, as a `DegradationStage` is joined as given), `createClient` (./ky), `resilientProxy`
 * (./cloudflare), `TestClock` and `recordEvents` (./testing). Three node:http servers on 127.0.0.1 (three origins):
 * A the first endpoint, B the hedge/spare, C where A's redirects lead.
 *
 * Paths: proxy chain route (hedge + rewrite + level header + 307/303 across origins + hop back; keyless POST after a
 * redirect; a client body past `maxReplayBytes` meeting a 307; attempt timeout over a hop; health after leaks), ky
 * on a hedged chain (303 then reset; generated key across hop and hedge; 429 past `maxRetryAfter` on a hop; abort
 * mid-hedge with a hop in flight), ky on a plain layer (308 with a body sent once), `Request` stream past the limit
 * under a 302 at a degraded level, `timeout.total` against a `Retry-After`, breakers across hops with retries.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found.
 *
 * Held (plain `it`), each on the paths its test names: every claim quoted above. In short: credentials and the
 * level header stay home on hops, hedges and hops back (the key and `content-type` cross, the rewritten body too;
 * a 303 drops the body and its headers); a keyless POST is sent once after a redirect whatever follows (503,
 * reset, refused origin, a target held open, an attempt timeout), with 502/504 from the proxy; a generated key is
 * one across hop and hedge; bodies past the limit are sent once (307 → 502, 308 → `RetryExhaustedError` with a
 * `TypeError` cause, 302 → GET), one at the limit lengthened by the rewrite is replayed; waits past
 * `maxRetryAfter` or `timeout.total` move on at once; aborts and deadlines close every leg and leave no timer;
 * breakers count the first host once per attempt, never a hop's or a losing hedge's host; nothing secret in the
 * proxy's 502 or health JSON.
 *
 * Docs-silent (not pinned):
 * - A bulkhead is not asked for a redirect's hop: with C's `maxConcurrent: 1` held by another call, A's 307 hop
 *   to C is sent (the docs name only the breaker as refusing a hop).
 * - In a chain, an endpoint whose hop a stream body cannot follow has a bare `TypeError` in
 *   `FallbackExhaustedError.errors` (a plain call wraps it in `RetryExhaustedError`, as docs/retry.md says).
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isFallbackExhaustedError,
  isRetryExhaustedError,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream(); // the first endpoint
const B = httpUpstream(); // the spare / hedge
const C = httpUpstream(); // where A's redirects lead
serveDuringFile(A, B, C);

const DELAY = 1000;
const LEAK = /SECRET|FRAGX|hunter2/;

type Chain = Parameters<typeof fallback>[0][number];
type Options = Omit<ResilienceOptions, "fallback">;

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  if (!done()) throw new Error("condition never met");
}
async function closed(hit: Hit | undefined): Promise<boolean> {
  if (!hit) return false;
  let done = false;
  void hit.closed.then(() => {
    done = true;
  });
  try {
    await until(() => done);
  } catch {
    return false;
  }
  return true;
}
/** Moves the clock on in 500 ms steps (real turns between) until `promise` settles, at most `ms`. */
async function drive(clock: TestClock, promise: Promise<unknown>, ms = 10_000): Promise<void> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let t = 0; t <= ms && !settled; t += 500) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (!settled) await clock.advance(500);
  }
}

const json =
  (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  (hit: Hit): void => {
    hit.res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
  };
const redirectTo =
  (location: string, status = 307) =>
  (hit: Hit): void => {
    hit.res.writeHead(status, { location }).end();
  };
const hang = (_hit: Hit): void => {};
const reset = (hit: Hit): void => {
  hit.res.socket?.destroy();
};

const endpoints = (): Chain["endpoints"] => [
  { name: "a", url: `${A.base}/v1` },
  { name: "b", url: `${B.base}/v2` },
];

function hedged(options: Options = {}, chain: Partial<Chain> = {}) {
  const clock = new TestClock(0);
  const layer = createResilience({
    retry: false,
    ...options,
    clock,
    fallback: fallback([{ name: "gen", hedge: { delay: DELAY }, endpoints: endpoints(), ...chain }]),
  });
  return { clock, layer, recorder: recordEvents(layer) };
}

/** A degradation stage whose level the test can set, though the proxy keeps its layer to itself. */
function levelled(levelHeader = "x-degradation-level") {
  const stage = degradation({ levelHeader });
  const held: { setLevel: (name: string) => void } = {
    setLevel: () => {
      throw new Error("stage not joined yet");
    },
  };
  const wrapped = {
    ...stage,
    join(parts: Parameters<typeof stage.join>[0]) {
      const joined = stage.join(parts);
      held.setLevel = (name) => (joined.handle as { setLevel(n: string): void }).setLevel(name);
      return joined;
    },
  };
  return { wrapped, held };
}

function proxyOver(resilience: Options = {}, chain: Partial<Chain> = {}) {
  const clock = new TestClock(0);
  const { wrapped, held } = levelled();
  const proxy = resilientProxy<object>({
    routes: [{ path: "/v1", chain: { name: "gen", hedge: { delay: DELAY }, endpoints: endpoints(), ...chain } }],
    resilience: { retry: false, clock, degradation: wrapped, ...resilience },
  });
  const serve = (request: Request) => proxy.fetch(request, {}, { waitUntil() {} });
  /** The first request makes the layer; the level is set on it before the call under test. */
  const at = async (level: string) => {
    A.on(json({ warm: true }));
    await (await serve(new Request("https://worker.example/v1/warm"))).text();
    A.reset();
    held.setLevel(level);
  };
  return { clock, serve, at };
}

const creds = {
  authorization: "Bearer SECRET-AUTH",
  cookie: "sid=SECRET-SESSION",
  "x-api-key": "SECRET-APIKEY",
};

describe("resilientProxy: a hedged chain, a degraded level, a cross-origin redirect: what crosses", () => {
  it("a PUT's 307 hop and its hedge get the rewritten body, the key and content-type, never credentials or the level header", async () => {
    const { clock, serve, at } = proxyOver();
    await at("medium");
    A.on(redirectTo(`${C.base}/gen`, 307));
    C.on(hang);
    B.on(json({ ok: true, from: "b" }));
    const call = serve(
      new Request("https://worker.example/v1/jobs", {
        method: "PUT",
        headers: {
          ...creds,
          "content-type": "application/json",
          "idempotency-key": "k-put",
          "x-degradation-level": "full",
        },
        body: JSON.stringify({ prompt: "waves", steps: 50 }),
      }),
    );
    const hop = await C.nth(1);
    await clock.advance(DELAY);
    const res = await call;
    const first = A.hits[0];
    expect(first?.headers).toMatchObject({ ...creds, "x-degradation-level": "medium" });
    for (const hit of [hop, B.hits[0]]) {
      expect(hit?.method).toBe("PUT");
      expect(JSON.parse(hit?.body ?? "null")).toEqual({ prompt: "waves", steps: 30 });
      expect(hit?.headers["idempotency-key"]).toBe("k-put");
      expect(hit?.headers["content-type"]).toBe("application/json");
      for (const name of [...Object.keys(creds), "x-degradation-level"]) expect(hit?.headers[name]).toBeUndefined();
    }
    expect(res.status).toBe(200);
    expect(res.headers.get("x-resilience-endpoint")).toBe("b");
    expect(res.headers.get("x-degradation-level")).toBe("medium");
    expect(await closed(hop)).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("crossOriginHeaders names the level header: it crosses; a hop back to A does not restore the credentials", async () => {
    const { clock, serve, at } = proxyOver({ crossOriginHeaders: ["x-degradation-level"] });
    await at("low");
    A.on((hit) => (hit.path.startsWith("/back") ? json({ from: "a-back" })(hit) : redirectTo(`${C.base}/gen`)(hit)));
    C.on(redirectTo(`${A.base}/back`, 308));
    const res = await serve(
      new Request("https://worker.example/v1/jobs", { headers: { ...creds, "idempotency-key": "k-get" } }),
    );
    expect(await res.json()).toEqual({ from: "a-back" });
    const back = A.hits[1];
    expect(back?.path).toBe("/back");
    for (const hit of [C.hits[0], back]) {
      expect(hit?.headers["x-degradation-level"]).toBe("low");
      expect(hit?.headers["idempotency-key"]).toBe("k-get");
      for (const name of Object.keys(creds)) expect(hit?.headers[name]).toBeUndefined();
    }
    expect(res.headers.get("x-resilience-endpoint")).toBe("a");
    expect(clock.pending()).toBe(0);
  });

  it("a keyed POST meeting a 303 to C: C gets a GET with no body, no content-type, the key, no credentials or level", async () => {
    const { clock, serve, at } = proxyOver();
    await at("medium");
    A.on(redirectTo(`${C.base}/status/1`, 303));
    C.on(json({ job: 1 }));
    const res = await serve(
      new Request("https://worker.example/v1/jobs", {
        method: "POST",
        headers: { ...creds, "content-type": "application/json", "idempotency-key": "k-303" },
        body: JSON.stringify({ steps: 50 }),
      }),
    );
    expect(await res.json()).toEqual({ job: 1 });
    expect(JSON.parse(A.hits[0]?.body ?? "null")).toEqual({ steps: 30 });
    const hop = C.hits[0];
    expect(hop?.method).toBe("GET");
    expect(hop?.body).toBe("");
    expect(hop?.headers["content-type"]).toBeUndefined();
    expect(hop?.headers["idempotency-key"]).toBe("k-303");
    for (const name of [...Object.keys(creds), "x-degradation-level"]) expect(hop?.headers[name]).toBeUndefined();
    expect(B.hits).toHaveLength(0);
    expect(clock.pending()).toBe(0);
  });
});

describe("a keyless POST on composed paths is never processed twice", () => {
  it("proxy, hedged chain, retries on, degraded: A's 307 to C answered 503 Retry-After 1: no retry, no B, a 502", async () => {
    const { clock, serve, at } = proxyOver({ retry: { maxAttempts: 3 } });
    await at("medium");
    A.on(redirectTo(`${C.base}/gen`, 307));
    C.on(json({ busy: true }, 503, { "retry-after": "1" }));
    B.on(json({ from: "b" }));
    const call = serve(
      new Request("https://worker.example/v1/jobs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ steps: 50 }),
      }),
    );
    await drive(clock, call);
    const res = await call;
    await clock.advance(5000);
    expect(A.hits).toHaveLength(1);
    expect(C.hits).toHaveLength(1);
    expect(JSON.parse(C.hits[0]?.body ?? "null")).toEqual({ steps: 30 });
    expect(B.hits).toHaveLength(0);
    expect(res.status).toBe(502);
    expect(res.headers.get("x-resilience-endpoint")).toBeNull();
    expect(clock.pending()).toBe(0);
  });

  it("ky on a hedged chain, retries on: a keyless JSON POST 303'd to C, whose connection resets: sent once, nowhere else", async () => {
    const { clock, layer } = hedged({ retry: { maxAttempts: 3 } });
    A.on(redirectTo(`${C.base}/status`, 303));
    C.on(reset);
    B.on(json({ from: "b" }));
    const api = createClient({ prefix: `${A.base}/v1`, resilience: layer });
    const call = api.post("jobs", { json: { prompt: "x" } }).json();
    await drive(clock, call);
    const error = await rejection(call);
    expect(isFallbackExhaustedError(error)).toBe(true);
    expect(A.hits).toHaveLength(1);
    expect(C.hits.map((h) => h.method)).toEqual(["GET"]);
    expect(B.hits).toHaveLength(0);
    expect(clock.pending()).toBe(0);
  });

  it("ky, retry.idempotencyKey: the generated key is the one A, A's 307 hop to C and the hedge B all get", async () => {
    const { clock, layer } = hedged({ retry: { maxAttempts: 1, idempotencyKey: true } });
    A.on(redirectTo(`${C.base}/gen`, 307));
    C.on(hang);
    B.on(json({ from: "b" }, 201));
    const api = createClient({ prefix: `${A.base}/v1`, resilience: layer });
    const call = api.post("jobs", { json: { prompt: "x" }, headers: { cookie: "sid=SECRET-S" } }).json();
    const hop = await C.nth(1);
    await clock.advance(DELAY);
    expect(await call).toEqual({ from: "b" });
    const key = A.hits[0]?.headers["idempotency-key"];
    expect(key).toMatch(/^[0-9a-f-]{36}$/);
    expect(hop.headers["idempotency-key"]).toBe(key);
    expect(B.hits[0]?.headers["idempotency-key"]).toBe(key);
    expect(hop.body).toBe('{"prompt":"x"}');
    expect(hop.headers.cookie).toBeUndefined();
    expect(B.hits[0]?.headers.cookie).toBeUndefined();
    expect(await closed(hop)).toBe(true);
    expect(clock.pending()).toBe(0);
  });
});

describe("a keyless POST whose hop never reached its target: still not sent again", () => {
  it("A's 307 to a refused origin, retries on: FallbackExhaustedError, A once, B never", async () => {
    const dead = await refusedOrigin();
    const { clock, layer } = hedged({ retry: { maxAttempts: 3 } });
    A.on(redirectTo(`${dead}/gen`));
    B.on(json({ from: "b" }));
    const call = layer.fetch(`${A.base}/v1/jobs`, { method: "POST", body: "{}" });
    await drive(clock, call);
    expect(isFallbackExhaustedError(await rejection(call))).toBe(true);
    expect(A.hits).toHaveLength(1);
    expect(B.hits).toHaveLength(0);
    expect(clock.pending()).toBe(0);
  });

  it("proxy: A's 307 to C, held open by its Retry-After: a 502 (not 503), A once, B and C never", async () => {
    const { clock, serve } = proxyOver({ retry: { maxAttempts: 3 } });
    A.on(redirectTo(`${C.base}/gen`));
    C.on(json({ busy: true }, 503, { "retry-after": "3600" }));
    const opened = await serve(new Request("https://worker.example/v1/open"));
    expect(await opened.text()).toBe("ok");
    expect(C.hits).toHaveLength(1);
    A.reset();
    B.reset();
    C.reset();
    A.on(redirectTo(`${C.base}/gen`));
    B.on(json({ from: "b" }));
    const call = serve(new Request("https://worker.example/v1/jobs", { method: "POST", body: "{}" }));
    await drive(clock, call, 3000);
    const res = await call;
    expect(res.status).toBe(502);
    expect(A.hits).toHaveLength(1);
    expect(B.hits).toHaveLength(0);
    expect(C.hits).toHaveLength(0);
  });
});

describe("bodies past maxReplayBytes on composed paths", () => {
  const big = JSON.stringify({ steps: 50, pad: "x".repeat(60) });
  const stream = (text: string) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        const bytes = new TextEncoder().encode(text);
        controller.enqueue(bytes.slice(0, 10));
        controller.enqueue(bytes.slice(10));
        controller.close();
      },
    });

  it("proxy, hedged chain: a keyed client POST past the limit meeting a 307 to C: C and B get nothing, a 502", async () => {
    const { clock, serve } = proxyOver({ maxReplayBytes: 16 });
    A.on(redirectTo(`${C.base}/gen`, 307));
    const res = await serve(
      new Request("https://worker.example/v1/jobs", {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": "k-big" },
        body: big,
      }),
    );
    expect(A.hits.map((h) => h.body)).toEqual([big]);
    expect(C.hits).toHaveLength(0);
    expect(B.hits).toHaveLength(0);
    expect(res.status).toBe(502);
    await clock.advance(DELAY * 3);
    expect(B.hits).toHaveLength(0);
    expect(clock.pending()).toBe(0);
  });

  it("a stream-built keyed POST Request past the limit, degraded, hedged: no hedge, sent unread; a 302 follows as a GET", async () => {
    const { clock, layer, recorder } = hedged({
      maxReplayBytes: 16,
      degradation: degradation({ levelHeader: "x-degradation-level" }),
    });
    layer.degradation?.setLevel("medium");
    A.on(hang);
    C.on(json({ done: true }));
    const call = layer.fetch(
      new Request(`${A.base}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": "k-s" },
        body: stream(big),
        duplex: "half",
      } as RequestInit),
    );
    const first = await A.nth(1);
    await clock.advance(DELAY * 3);
    expect(B.hits).toHaveLength(0);
    expect(first.body).toBe(big);
    expect(first.headers["x-degradation-level"]).toBe("medium");
    redirectTo(`${C.base}/done`, 302)(first);
    const res = await call;
    expect(await res.json()).toEqual({ done: true });
    expect(res.redirected).toBe(true);
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
    const hop = C.hits[0];
    expect(hop?.method).toBe("GET");
    expect(hop?.body).toBe("");
    expect(hop?.headers["content-type"]).toBeUndefined();
    expect(hop?.headers["idempotency-key"]).toBe("k-s");
    expect(recorder.of("replay")).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });

  it("ky on a plain layer, retries on: a keyed POST past the limit meeting a 308 to C: RetryExhaustedError, cause TypeError", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({ clock, maxReplayBytes: 16, retry: { maxAttempts: 3 } });
    A.on(redirectTo(`${C.base}/gen`, 308));
    const api = createClient({ prefix: `${A.base}/v1`, resilience: layer });
    const call = api.post("jobs", { body: big, headers: { "idempotency-key": "k-308" } }).text();
    await drive(clock, call);
    const error = await rejection(call);
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as Error).cause).toBeInstanceOf(TypeError);
    expect(A.hits.map((h) => h.body)).toEqual([big]);
    expect(C.hits).toHaveLength(0);
    expect(clock.pending()).toBe(0);
  });
});

describe("Retry-After, timeouts and aborts on every leg", () => {
  it("ky on a hedged chain: A's 307 to C answered 429 Retry-After 120 (past maxRetryAfter): B is tried at once", async () => {
    const { clock, layer } = hedged({ retry: { maxAttempts: 3, maxRetryAfter: 60_000 } });
    A.on(redirectTo(`${C.base}/gen`));
    C.on(json({ slow: true }, 429, { "retry-after": "120" }));
    B.on(json({ from: "b" }));
    const api = createClient({ prefix: `${A.base}/v1`, resilience: layer });
    const call = api.get("jobs").json();
    await until(() => B.hits.length === 1);
    expect(await call).toEqual({ from: "b" });
    expect(A.hits).toHaveLength(1);
    expect(C.hits).toHaveLength(1);
    expect(clock.now()).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it("a hedged chain under timeout.total 3 s: A's 503 Retry-After 5 is not waited; B is tried at once", async () => {
    const { clock, layer } = hedged({ retry: { maxAttempts: 3 }, timeout: { total: 3000 } });
    A.on(json({ busy: true }, 503, { "retry-after": "5" }));
    B.on(json({ from: "b" }));
    const call = layer.fetch(`${A.base}/v1/jobs`);
    await until(() => B.hits.length === 1);
    const res = await call;
    expect(await res.json()).toEqual({ from: "b" });
    expect(A.hits).toHaveLength(1);
    expect(clock.now()).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it("timeout.attempt covers the hop: A's 307 to C that hangs ends at 500 ms, C closed, B serves before the hedge delay", async () => {
    const { clock, layer } = hedged({ timeout: { attempt: 500 } });
    A.on(redirectTo(`${C.base}/gen`));
    C.on(hang);
    B.on(json({ from: "b" }));
    const call = layer.fetch(`${A.base}/v1/jobs`);
    const hop = await C.nth(1);
    await clock.advance(500);
    const res = await call;
    expect(await res.json()).toEqual({ from: "b" });
    expect(clock.now()).toBe(500);
    expect(await closed(hop)).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("proxy: a keyless POST whose 307 hop hangs past timeout.attempt: C closed, never sent to B, a 504", async () => {
    const { clock, serve } = proxyOver({ timeout: { attempt: 500 }, retry: { maxAttempts: 3 } });
    A.on(redirectTo(`${C.base}/gen`));
    C.on(hang);
    B.on(json({ from: "b" }));
    const call = serve(new Request("https://worker.example/v1/jobs", { method: "POST", body: "{}" }));
    const hop = await C.nth(1);
    await clock.advance(500);
    await drive(clock, call);
    const res = await call;
    expect(res.status).toBe(504);
    expect(await closed(hop)).toBe(true);
    await clock.advance(DELAY * 3);
    expect(A.hits).toHaveLength(1);
    expect(B.hits).toHaveLength(0);
    expect(clock.pending()).toBe(0);
  });

  it("ky: the caller's abort while A's 307 hop to C and the hedge B both hang: rejects with the reason, both closed", async () => {
    const { clock, layer } = hedged();
    A.on(redirectTo(`${C.base}/gen`));
    C.on(hang);
    B.on(hang);
    const api = createClient({ prefix: `${A.base}/v1`, resilience: layer });
    const controller = new AbortController();
    const call = api.get("jobs", { signal: controller.signal }).text();
    const hop = await C.nth(1);
    await clock.advance(DELAY);
    const hedge = await B.nth(1);
    controller.abort(new Error("user left"));
    expect(await rejection(call)).toMatchObject({ message: "user left" });
    expect(await closed(hop)).toBe(true);
    expect(await closed(hedge)).toBe(true);
    expect(clock.pending()).toBe(0);
  });
});

describe("the hedge's own leg: its redirect, its own headers, its loss", () => {
  const own = (): Chain["endpoints"] => [
    { name: "a", url: `${A.base}/v1` },
    { name: "b", url: `${B.base}/v2`, headers: { "x-api-key": "SECRET-OWN", authorization: "Bearer SECRET-OWN2" } },
  ];

  it("B's own headers follow its 307 on its own origin, never its 307 to C (the event names them dropped)", async () => {
    const { layer, recorder } = hedged({}, { hedge: undefined, endpoints: own() });
    A.on(json({ busy: true }, 503));
    B.on((hit) => (hit.path === "/same" ? redirectTo(`${C.base}/gen`)(hit) : redirectTo(`${B.base}/same`)(hit)));
    C.on(json({ from: "c" }));
    expect(await (await layer.fetch(`${A.base}/v1/jobs`)).json()).toEqual({ from: "c" });
    expect(B.hits[1]?.headers).toMatchObject({ "x-api-key": "SECRET-OWN", authorization: "Bearer SECRET-OWN2" });
    expect(C.hits[0]?.headers["x-api-key"]).toBeUndefined();
    expect(C.hits[0]?.headers.authorization).toBeUndefined();
    expect(recorder.of("redirect").map((e) => e.dropped)).toEqual([[], ["authorization", "x-api-key"]]);
  });

  it("the hedge's 307 hop to C that hangs is closed when the first endpoint wins; no breaker counts it", async () => {
    const { clock, layer } = hedged();
    A.on(hang);
    B.on(redirectTo(`${C.base}/gen`));
    C.on(hang);
    const call = layer.fetch(`${A.base}/v1/jobs`);
    const first = await A.nth(1);
    await clock.advance(DELAY);
    const hop = await C.nth(1);
    json({ from: "a" })(first);
    expect(await (await call).json()).toEqual({ from: "a" });
    expect(await closed(hop)).toBe(true);
    for (const host of [B.host, C.host]) expect(layer.health().breakers[host]?.failureCount ?? 0).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it("a body at maxReplayBytes, lengthened by the rewrite, is still replayed: to A's 307 hop and the hedge (proxy)", async () => {
    const { clock, serve, at } = proxyOver({ maxReplayBytes: 13 });
    await at("medium");
    A.on(redirectTo(`${C.base}/gen`));
    C.on(hang);
    B.on(json({ from: "b" }));
    const call = serve(new Request("https://worker.example/v1/jobs", { method: "PUT", body: '{"quality":1}' }));
    const hop = await C.nth(1);
    await clock.advance(DELAY);
    expect((await call).headers.get("x-resilience-endpoint")).toBe("b");
    expect([A.hits[0]?.body, hop.body, B.hits[0]?.body]).toEqual(Array(3).fill('{"quality":0.8}'));
  });

  it("proxy: a client body stalled in the read-ahead under timeout.total: 504 at the deadline, nothing sent, source cancelled", async () => {
    const { clock, serve } = proxyOver({ timeout: { total: 1000 } });
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => controller.enqueue(new TextEncoder().encode('{"a"')),
      cancel: () => {
        cancelled = true;
      },
    });
    const call = serve(
      new Request("https://worker.example/v1/jobs", { method: "PUT", body, duplex: "half" } as RequestInit),
    );
    await drive(clock, call, 1000);
    expect((await call).status).toBe(504);
    expect(clock.now()).toBe(1000);
    expect(A.hits).toHaveLength(0);
    expect(cancelled).toBe(true);
    expect(clock.pending()).toBe(0);
  });
});

describe("breakers across hops, retries and a chain", () => {
  it("A's 307 to C answering 500, twice (a retry): A counts one failure per attempt, C none; A opens, B serves", async () => {
    const { clock, layer, recorder } = hedged(
      { retry: { maxAttempts: 2, jitter: "none" }, breaker: { failureThreshold: 2 } },
      { hedge: undefined },
    );
    A.on(redirectTo(`${C.base}/gen`));
    C.on(json({ err: true }, 500));
    B.on(json({ from: "b" }));
    const call = layer.fetch(`${A.base}/v1/jobs`);
    await drive(clock, call);
    const res = await call;
    expect(await res.json()).toEqual({ from: "b" });
    expect(A.hits).toHaveLength(2);
    expect(C.hits).toHaveLength(2);
    expect(recorder.of("breaker").map((e) => `${e.key}:${e.to}`)).toEqual([`${A.host}:open`]);
    const breakers = layer.health().breakers;
    expect(breakers[C.host]?.failureCount ?? 0).toBe(0);
    C.on(json({ direct: true }));
    expect(await (await layer.fetch(`${C.base}/x`)).json()).toEqual({ direct: true });
    expect(clock.pending()).toBe(0);
  });
});

describe("no secret leaves through the proxy", () => {
  it("endpoint keys, a keyed Location, the client's credentials and query: none in the 502 or in health JSON", async () => {
    const clock = new TestClock(0);
    const proxy = resilientProxy<object>({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "gen",
            hedge: { delay: DELAY },
            endpoints: [
              { name: "a", url: `${A.base}/v1?key=SECRET-EPA` },
              { name: "b", url: `${B.base}/v2?key=SECRET-EPB`, headers: { "x-api-key": "SECRET-OWN" } },
            ],
          },
        },
      ],
      resilience: { clock, retry: false },
    });
    const serve = (request: Request) => proxy.fetch(request, {}, { waitUntil() {} });
    A.on(redirectTo(`${C.base}/gen?token=SECRET-LOC#FRAGX`));
    C.on(reset);
    B.on(reset);
    const res = await serve(new Request("https://worker.example/v1/jobs?api_key=SECRET-Q", { headers: { ...creds } }));
    expect(res.status).toBe(502);
    const body = await res.text();
    expect(body).not.toMatch(LEAK);
    for (const [, value] of res.headers) expect(value).not.toMatch(LEAK);
    expect(C.hits[0]?.headers["x-api-key"]).toBeUndefined();
    expect(B.hits[0]?.headers["x-api-key"]).toBe("SECRET-OWN");
    const health = await (await serve(new Request("https://worker.example/__resilience/health"))).text();
    expect(health).toContain(A.host);
    expect(health).not.toMatch(LEAK);
    expect(clock.pending()).toBe(0);
  });
});
