/**
 * Outside-in attack on docs/retry.md, driven where earlier retry runs (retrydoc-fiftyeight, retrydoc-fiftyfour,
 * redirectsweep-fortytwo) went least: a `Request` input (string, bytes and stream bodies, its own signal, one
 * already used or locked), the ky client (`createClient`, a call's options, `extend`), the Cloudflare
 * `resilientProxy` as a plain handler, and chains (plain and hedged).
 *
 * Docs:
 * - docs/retry.md "## Retry": "A `Retry-After` header on 429/503, in one of the forms RFC 9110 allows …, replaces
 *   the computed delay and is never jittered; anything else (… a header sent twice, which fetch joins as `2, 2`)
 *   falls back to the computed delay"; "A `Retry-After` longer than `maxRetryAfter` is not slept through".
 * - "## Idempotency": "With `retry.idempotencyKey: true`, POST and PATCH requests without a key get one
 *   (`crypto.randomUUID()`), the same on every retry of that call and on every endpoint, hedge and redirect hop".
 * - "## Timeouts": "`timeout.total` bounds the whole call up to the response headers"; "Neither bounds reading the
 *   body of the response you get"; "a first one that waited (for a `Request`'s body to be read …) has a timer of
 *   its own".
 * - "## Bodies": "That read is bounded: at most `maxReplayBytes` are read ahead, under the caller's signal and
 *   `timeout.total`"; "a call that ends without sending it (… an abort before the send …) cancels it, … and any
 *   `Request` body given with a signal already aborted"; "A `ReadableStream` body, or one larger than
 *   `maxReplayBytes`, is sent once on every path: no retry, no next endpoint, no hedge, no 307/308"; "A `Request`
 *   whose body was already read is refused at once with a `TypeError`, as fetch refuses it."
 * - "## Redirects": "only the cross-origin allowlist is sent (… `idempotency-key` …)"; "301/302 turn a POST into a
 *   GET and 303 turns anything but GET/HEAD into a GET (body and its headers dropped), 307/308 replay method and
 *   body (a body sent once, a stream or one larger than `maxReplayBytes` as the caller gave it, cannot be: a
 *   `TypeError`)"; "A `Request` input's body is taken as one with a source, whatever its size … so a 301/302 POST
 *   drops it and follows as a GET"; "With `redirects: "platform"` outside a browser …, a body of bytes (a `Request`
 *   input's …) goes to fetch as a `Blob` of those bytes".
 * - docs/cloudflare.md: "`504` on a timeout"; "A request for a route whose client went away (its `signal` aborted)
 *   gets no answer: the proxy's `fetch` rejects with the signal's reason".
 *
 * How: `createResilience`, `isRetryExhaustedError`, `isTimeoutError` (root), `fallback`
 * (./fallback, plain and hedged), `createClient` (./ky, with `extend`), `resilientProxy` (./cloudflare, as a plain
 * handler), `TestClock` (./testing: `run` for backoffs, `advance` once a server has the request); three node:http
 * servers on 127.0.0.1 (A; B behind A's redirects; E a chain's second endpoint); body streams of my own that record
 * whether their source was cancelled.
 *
 * Paths: `Request` input (plain, chain, hedge), ky client (and `extend`), `resilientProxy`, library redirects
 * (301/302/303/307/308, to A or across to B), `redirects: "platform"`.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found. Every sentence driven held on every
 * path tried.
 *
 * Held (plain `it`):
 * - A `Request`'s own signal aborted during a backoff rejects with its reason at once; so do a ky call's `signal`
 *   and the proxy's client signal. Already aborted with a stream body: the reason, nothing sent, source cancelled.
 * - `timeout.total` 1 s over a stalled `Request` stream read-ahead: `TimeoutError` phase `total` at exactly 1,000 ms,
 *   nothing sent, source cancelled; the proxy answers 504, ky rejects with the layer's `TimeoutError`.
 *   `timeout.attempt` of a first attempt that waited 800 ms for its body fires 1,000 ms after it left.
 * - A body that ends after `timeout.total` passed is read whole (ky, proxy, `Request` PUT).
 * - String, bytes and stream `Request` POSTs: 307/308 to B replay method and body with the caller's key,
 *   `content-type` kept, `x-api-key` dropped; 301/302/303 follow as a GET without body, `content-type` or
 *   `content-length`. A PUT keeps method and body on a 302, becomes a GET on a 303. A stream past
 *   `maxReplayBytes`: a 307 rejects `RetryExhaustedError` (`TypeError` cause) after one request, a 302 follows as
 *   GET. `redirects: "platform"` replays a `Request`'s bytes on a 307. ky's 308 to B carries the body and the key,
 *   not `authorization`.
 * - A used `Request` (plain, chain) and a locked one are refused with a `TypeError`, nothing sent.
 * - Generated key: the same on a 303's GET hop; on ky retries after 500 through `extend` (POST and patch, a new key
 *   per call); on the proxy's 3 attempts; on a hedge's A and E, with a `Request` stream's bytes.
 * - Retry-After: ky's `2` goes at exactly 2,000 ms (jitter `full` not applied); an HTTP date 3 s ahead on a
 *   `Request` stream's 429 at 3,000 ms, same bytes, `retryAfter: true`; the proxy's `2, 2` falls back to 100 ms,
 *   `5` over `maxRetryAfter` 1 s passes the 503 at once and the next call is refused with nothing sent.
 * - `maxReplayBytes` 8: a `Request` string, one-chunk and byte-by-byte stream of exactly 8 bytes are retried, of 9
 *   sent once; the proxy's upload announced past the limit is sent once on
 *   a 503, one at exactly the limit retried.
 * - A GET retried after A 307 → B 503 sends its `x-api-key` to A again on the new attempt, never to B.
 *
 * Docs-silent (not pinned; in the sixty-fifth session both were written into docs/retry.md, and the tests under
 * "Held" cover them):
 * - A `Request` whose body stream is locked (`getReader()` taken, nothing read: `bodyUsed` false) is refused with a
 *   `TypeError` as fetch refuses it; the docs name only a body "already read".
 * - Whether a new attempt after a cross-origin hop sends the dropped credentials to the first origin again (it
 *   does: each attempt starts from the caller's headers); "nothing dropped is put back" reads as within one attempt.
 */
import type { ServerResponse } from "node:http";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, isRetryExhaustedError, isTimeoutError, type RetryEvent } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
const E = httpUpstream();
serveDuringFile(A, B, E);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const quick = { initialDelay: 100, jitter: "none" } as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Answers the listed statuses in turn, then the last one for ever. */
const statuses =
  (...codes: Array<number | [number, Record<string, string>]>) =>
  (hit: { n: number; res: ServerResponse }) => {
    const step = codes[Math.min(hit.n, codes.length) - 1] ?? 200;
    const [code, headers] = Array.isArray(step) ? step : [step, {}];
    hit.res.writeHead(code, headers);
    hit.res.end("x");
  };
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await pause(1);
  expect(check()).toBe(true);
}

/** The call's rejection, and whether it came yet. */
function track(call: Promise<unknown>) {
  const state = { done: false, error: rejection(call) as Promise<unknown> };
  void state.error.then(() => {
    state.done = true;
  });
  return state;
}

function retries(layer: ReturnType<typeof createResilience>): RetryEvent[] {
  const events: RetryEvent[] = [];
  layer.on("retry", (e) => events.push(e));
  return events;
}

/** A stream of `parts`, then (when `hang`) no end; records whether its source was cancelled. */
function source(parts: string[], hang = false) {
  const state = { cancelled: false, pulled: 0 };
  const enc = new TextEncoder();
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      state.pulled++;
      if (i < parts.length) c.enqueue(enc.encode(parts[i++]));
      else if (!hang) c.close();
      else return new Promise(() => {});
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

/** A layer whose chain "gen" tries A's `/v1`, then E's. */
const chainOf = (extra: Parameters<typeof createResilience>[0], hedge?: number) =>
  createResilience({
    ...extra,
    fallback: fallback([
      {
        name: "gen",
        ...(hedge === undefined ? {} : { hedge: { delay: hedge } }),
        endpoints: [
          { name: "a", url: `${A.base}/v1` },
          { name: "e", url: `${E.base}/v1` },
        ],
      },
    ]),
  });

const post = (url: string, body: BodyInit, extra: RequestInit = {}) =>
  new Request(url, { method: "POST", body, duplex: "half", ...extra } as RequestInit);

describe("a Request's own signal", () => {
  it("plain: aborting the Request's signal during a backoff rejects with its reason at once", async () => {
    A.on(statuses(503));
    const clock = new TestClock(0);
    const layer = createResilience({ clock, budget: false, retry: { initialDelay: 10_000, jitter: "none" } });
    const ac = new AbortController();
    const call = layer.fetch(new Request(`${A.base}/x`, { signal: ac.signal }));
    await until(() => A.hits.length === 1);
    await clock.waitForTimers(1);
    const reason = new Error("caller left");
    ac.abort(reason);
    expect(await rejection(call)).toBe(reason);
    expect(A.hits.length).toBe(1);
  });

  it("an already-aborted Request signal with a stream body: rejects with the reason, nothing sent, source cancelled", async () => {
    const { stream, state } = source(["a"], true);
    const ac = new AbortController();
    ac.abort("gone");
    const layer = createResilience({ budget: false });
    const req = post(`${A.base}/x`, stream, { signal: ac.signal });
    expect(await rejection(layer.fetch(req))).toBe("gone");
    await pause(5);
    expect(A.hits.length).toBe(0);
    expect(state.cancelled).toBe(true);
  });
});

describe("timeouts with a Request body", () => {
  it("timeout.total bounds the read-ahead of a Request stream that stalls: TimeoutError at 1 s, nothing sent", async () => {
    const { stream, state } = source(["a"], true);
    const clock = new TestClock(0);
    const layer = createResilience({ clock, budget: false, timeout: { total: 1000 } });
    const call = track(layer.fetch(post(`${A.base}/x`, stream)));
    await until(() => state.pulled >= 2);
    await clock.advance(999);
    await pause(4);
    expect(call.done).toBe(false);
    await clock.advance(1);
    const err = await call.error;
    expect(isTimeoutError(err)).toBe(true);
    expect((err as { phase: string }).phase).toBe("total");
    expect(A.hits.length).toBe(0);
    await pause(2);
    expect(state.cancelled).toBe(true);
  });

  it("timeout.attempt of a first attempt that waited for its Request body starts when it leaves", async () => {
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const enc = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      async pull(c) {
        await gate;
        c.enqueue(enc.encode("job"));
        c.close();
      },
    });
    A.on(() => {}); // never answers
    const clock = new TestClock(0);
    const layer = createResilience({ clock, budget: false, retry: false, timeout: { attempt: 1000 } });
    const call = track(
      layer.fetch(new Request(`${A.base}/x`, { method: "PUT", body: stream, duplex: "half" } as RequestInit)),
    );
    await pause(5);
    await clock.advance(800);
    release();
    await until(() => A.hits.length === 1);
    const at = clock.now();
    await clock.advance(999);
    await pause(4);
    expect(call.done).toBe(false);
    await clock.advance(1);
    const err = await call.error;
    expect(isTimeoutError(err)).toBe(true);
    expect(clock.now() - at).toBe(1000);
  });
});

const redirectTo = (code: number, target: string) => (hit: { n: number; res: ServerResponse }) => {
  if (hit.n === 1) {
    hit.res.writeHead(code, { location: target });
    hit.res.end();
  } else {
    hit.res.end("ok");
  }
};

describe("redirects of a Request input's body", () => {
  const bodies: Array<[string, () => BodyInit]> = [
    ["string", () => "job=1"],
    ["bytes", () => new TextEncoder().encode("job=1")],
    ["stream", () => source(["job", "=1"]).stream],
  ];
  for (const [kind, make] of bodies) {
    for (const code of [307, 308]) {
      it(`${kind} POST, ${code} to another origin: replayed, key kept, x-api-key dropped`, async () => {
        A.on(redirectTo(code, `${B.base}/y`));
        const layer = createResilience({ budget: false });
        const req = post(`${A.base}/x`, make(), {
          headers: { "idempotency-key": "k-1", "x-api-key": "secret", "content-type": "text/plain" },
        });
        const res = await layer.fetch(req);
        expect(res.status).toBe(200);
        expect(res.redirected).toBe(true);
        const hop = B.hits[0];
        expect([hop?.method, hop?.body, hop?.headers["idempotency-key"], hop?.headers["x-api-key"]]).toEqual([
          "POST",
          "job=1",
          "k-1",
          undefined,
        ]);
        expect(hop?.headers["content-type"]).toBe("text/plain");
      });
    }
    for (const code of [301, 302, 303]) {
      it(`${kind} POST, ${code}: follows as a bodiless GET without its body headers`, async () => {
        A.on(redirectTo(code, "/y"));
        const layer = createResilience({ budget: false });
        const res = await layer.fetch(post(`${A.base}/x`, make(), { headers: { "content-type": "text/plain" } }));
        expect(res.status).toBe(200);
        const hop = A.hits[1];
        expect([hop?.method, hop?.body, hop?.headers["content-type"], hop?.headers["content-length"]]).toEqual([
          "GET",
          "",
          undefined,
          undefined,
        ]);
      });
    }
  }

  it("a PUT Request on a 302 keeps its method and body (only a POST changes); a 303 makes it a GET", async () => {
    A.on(redirectTo(302, "/y"));
    const layer = createResilience({ budget: false });
    await layer.fetch(new Request(`${A.base}/x`, { method: "PUT", body: "v" }));
    expect([A.hits[1]?.method, A.hits[1]?.body]).toEqual(["PUT", "v"]);
    A.reset();
    A.on(redirectTo(303, "/y"));
    await layer.fetch(new Request(`${A.base}/x`, { method: "PUT", body: "v" }));
    expect([A.hits[1]?.method, A.hits[1]?.body]).toEqual(["GET", ""]);
  });

  it("a Request stream past maxReplayBytes: a 307 cannot replay it (RetryExhaustedError, TypeError cause), a 302 follows as GET", async () => {
    A.on(redirectTo(307, "/y"));
    const layer = createResilience({ budget: false, maxReplayBytes: 4 });
    const err = await rejection(layer.fetch(post(`${A.base}/x`, source(["abc", "def", "ghi"]).stream)));
    expect(isRetryExhaustedError(err)).toBe(true);
    expect((err as { cause: unknown }).cause).toBeInstanceOf(TypeError);
    expect(A.hits.length).toBe(1);
    expect(A.hits[0]?.body).toBe("abcdefghi");
    A.reset();
    A.on(redirectTo(302, "/y"));
    const res = await layer.fetch(post(`${A.base}/x`, source(["abc", "def", "ghi"]).stream));
    expect([res.status, A.hits[1]?.method]).toEqual([200, "GET"]);
  });

  it("redirects: 'platform' replays a Request's bytes on a 307 (sent as a Blob)", async () => {
    A.on(redirectTo(307, "/y"));
    const layer = createResilience({ budget: false, redirects: "platform" });
    const res = await layer.fetch(post(`${A.base}/x`, new TextEncoder().encode("bytes!")));
    expect(res.status).toBe(200);
    expect([A.hits[1]?.method, A.hits[1]?.body]).toEqual(["POST", "bytes!"]);
  });

  it("ky: a POST json through a 308 to B keeps the caller's key and the body; authorization dropped", async () => {
    A.on(redirectTo(308, `${B.base}/y`));
    const api = createClient({ resilience: { budget: false } });
    const res = await api.post(`${A.base}/x`, {
      json: { a: 1 },
      headers: { "Idempotency-Key": "mine", authorization: "Bearer s" },
    });
    expect(res.status).toBe(200);
    const hop = B.hits[0];
    expect([hop?.method, hop?.body, hop?.headers["idempotency-key"], hop?.headers.authorization]).toEqual([
      "POST",
      '{"a":1}',
      "mine",
      undefined,
    ]);
  });
});

describe("a Request already used, locked, or with duplex", () => {
  it("a Request whose body was read is refused at once with a TypeError, nothing sent (plain, chain)", async () => {
    for (const layer of [
      createResilience({ budget: false }),
      createResilience({
        budget: false,
        fallback: fallback([{ name: "g", endpoints: [{ name: "a", url: `${A.base}/v1` }] }]),
      }),
    ]) {
      const req = post(`${A.base}/v1/x`, "once");
      await req.text();
      const err = await rejection(layer.fetch(req));
      expect(err).toBeInstanceOf(TypeError);
    }
    await pause(5);
    expect(A.hits.length).toBe(0);
  });

  it("a Request whose body stream is locked is refused with a TypeError, as fetch refuses it", async () => {
    const locked = () => {
      const req = post(`${A.base}/x`, "locked");
      req.body?.getReader();
      return req;
    };
    expect(await rejection(fetch(locked()))).toBeInstanceOf(TypeError);
    expect(await rejection(createResilience({ budget: false }).fetch(locked()))).toBeInstanceOf(TypeError);
    await pause(5);
    expect(A.hits.length).toBe(0);
  });
});

describe("idempotency keys off the plain path", () => {
  it("a generated key goes on a 303's GET hop too, the same as the POST's", async () => {
    A.on(redirectTo(303, `${B.base}/done`));
    const layer = createResilience({ budget: false, retry: { idempotencyKey: true } });
    await layer.fetch(post(`${A.base}/x`, "job"));
    const key = A.hits[0]?.headers["idempotency-key"];
    expect(key).toMatch(UUID);
    expect([B.hits[0]?.method, B.hits[0]?.headers["idempotency-key"]]).toEqual(["GET", key]);
  });

  it("ky createClient + extend: one generated key on every retry after a 500 (POST and patch)", async () => {
    A.on(statuses(500, 500, 200));
    const clock = new TestClock(0);
    const base = createClient({ resilience: { clock, budget: false, retry: { ...quick, idempotencyKey: true } } });
    const api = base.extend({ headers: { "x-t": "1" } });
    await clock.run(api.post(`${A.base}/x`, { body: "j" }).text());
    const keys = A.hits.map((h) => h.headers["idempotency-key"]);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(UUID);
    A.reset();
    A.on(statuses(500, 200));
    await clock.run(api.patch(`${A.base}/x`, { body: "j" }).text());
    expect(A.hits[0]?.headers["idempotency-key"]).toMatch(UUID);
    expect(A.hits[1]?.headers["idempotency-key"]).toBe(A.hits[0]?.headers["idempotency-key"]);
    expect(A.hits[0]?.headers["idempotency-key"]).not.toBe(keys[0]);
  });

  it("proxy: a client's keyless POST gets one key, the same on every retry after a 500", async () => {
    A.on(statuses(500, 500, 200));
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: A.base }],
      resilience: { budget: false, retry: { initialDelay: 1, jitter: "none", idempotencyKey: true } },
    });
    const res = await proxy.fetch(post("http://worker.example/x", "job"), {}, ctx);
    expect(res.status).toBe(200);
    const keys = A.hits.map((h) => h.headers["idempotency-key"]);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(UUID);
    expect(A.hits.map((h) => h.body)).toEqual(["job", "job", "job"]);
  });
});

describe("Retry-After off the plain path", () => {
  it("ky: Retry-After: 2 on a 503 replaces the computed (jittered) delay: the retry goes at 2,000 ms", async () => {
    A.on(statuses([503, { "retry-after": "2" }], 200));
    const clock = new TestClock(0);
    const api = createClient({ resilience: { clock, budget: false, retry: { initialDelay: 100 } } });
    const settled = api.get(`${A.base}/x`).text();
    await until(() => A.hits.length === 1);
    await clock.advance(1999);
    await pause(5);
    expect(A.hits.length).toBe(1);
    await clock.advance(1);
    expect(await settled).toBe("x");
    expect(clock.now()).toBe(2000);
  });

  it("Request stream POST: a 429 with an HTTP date 3 s ahead retries at 3 s, same bytes", async () => {
    const clock = new TestClock(Date.UTC(2026, 0, 1));
    const date = new Date(clock.now() + 3000).toUTCString();
    A.on(statuses([429, { "retry-after": date }], 200));
    const layer = createResilience({ clock, budget: false, retry: quick });
    const events = retries(layer);
    const call = layer.fetch(post(`${A.base}/x`, source(["a", "b"]).stream));
    await until(() => A.hits.length === 1);
    await clock.advance(2999);
    await pause(5);
    expect(A.hits.length).toBe(1);
    await clock.advance(1);
    expect((await call).status).toBe(200);
    expect(A.hits.map((h) => h.body)).toEqual(["ab", "ab"]);
    expect(events[0]?.retryAfter).toBe(true);
  });

  it("proxy: a bad Retry-After ('2, 2') falls back to the computed delay; one past maxRetryAfter passes the 503 at once and holds the host", async () => {
    A.on(statuses([503, { "retry-after": "2, 2" }], 200));
    const clock = new TestClock(0);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: A.base }],
      resilience: { clock, budget: false, retry: { ...quick, maxRetryAfter: 1000 } },
    });
    const res = await clock.run(proxy.fetch(new Request("http://worker.example/x"), {}, ctx));
    expect([res.status, clock.now()]).toEqual([200, 100]);
    A.reset();
    A.on(statuses([503, { "retry-after": "5" }]));
    const held = await clock.run(proxy.fetch(new Request("http://worker.example/x"), {}, ctx));
    expect([held.status, A.hits.length, clock.now()]).toEqual([503, 1, 100]);
    const next = await clock.run(proxy.fetch(new Request("http://worker.example/x"), {}, ctx));
    expect(next.status).toBe(503);
    expect(A.hits.length).toBe(1);
  });
});

describe("timeouts do not bound the body after headers", () => {
  const paths: Array<[string, (clock: TestClock) => Promise<Response>]> = [
    [
      "ky",
      (clock) => createClient({ resilience: { clock, timeout: { total: 1000, attempt: 500 } } }).get(`${A.base}/x`),
    ],
    [
      "proxy",
      (clock) =>
        resilientProxy({
          routes: [{ path: "/", upstream: A.base }],
          resilience: { clock, timeout: { total: 1000, attempt: 500 } },
        }).fetch(new Request("http://worker.example/x"), {}, ctx),
    ],
    [
      "Request PUT",
      (clock) =>
        createResilience({ clock, timeout: { total: 1000 } }).fetch(
          new Request(`${A.base}/x`, { method: "PUT", body: "v" }),
        ),
    ],
  ];
  for (const [path, call] of paths) {
    it(`${path}: timeout.total 1 s, the body ends after the clock passed it: read whole`, async () => {
      A.on((hit) => {
        hit.res.writeHead(200, { "content-type": "text/plain" });
        hit.res.write("head-");
        setTimeout(() => hit.res.end("tail"), 30);
      });
      const clock = new TestClock(0);
      const res = await call(clock);
      await clock.advance(5000);
      expect(await res.text()).toBe("head-tail");
    });
  }
});

describe("maxReplayBytes with Request bodies", () => {
  it("proxy: a client PUT announced past maxReplayBytes is sent once on a 503; one of exactly the limit, retried", async () => {
    A.on(statuses(503));
    const clock = new TestClock(0);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: A.base }],
      resilience: { clock, budget: false, maxReplayBytes: 4, retry: quick },
    });
    const big = new Request("http://worker.example/x", {
      method: "PUT",
      body: "hello world",
      headers: { "content-length": "11" },
    });
    const res = await clock.run(proxy.fetch(big, {}, ctx));
    expect([res.status, A.hits.length, A.hits[0]?.body]).toEqual([503, 1, "hello world"]);
    A.reset();
    A.on(statuses(503));
    const small = await clock.run(
      proxy.fetch(
        new Request("http://worker.example/x", { method: "PUT", body: "four", headers: { "content-length": "4" } }),
        {},
        ctx,
      ),
    );
    expect([small.status, A.hits.length]).toEqual([503, 3]);
  });
});

describe("maxReplayBytes boundaries, headers on a retry, ky and proxy aborts", () => {
  const sizes: Array<[string, (n: number) => Request]> = [
    ["string", (n) => new Request(`${A.base}/x`, { method: "PUT", body: "a".repeat(n) })],
    [
      "one-chunk stream",
      (n) =>
        new Request(`${A.base}/x`, {
          method: "PUT",
          body: source(["a".repeat(n)]).stream,
          duplex: "half",
        } as RequestInit),
    ],
    [
      "byte-chunk stream",
      (n) =>
        new Request(`${A.base}/x`, {
          method: "PUT",
          body: source(Array.from({ length: n }, () => "a")).stream,
          duplex: "half",
        } as RequestInit),
    ],
  ];
  for (const [kind, make] of sizes) {
    it(`${kind}: exactly maxReplayBytes is replayed, one byte more is sent once`, async () => {
      const clock = new TestClock(0);
      const layer = createResilience({ clock, budget: false, maxReplayBytes: 8, retry: quick });
      A.on(statuses(503, 200));
      expect((await clock.run(layer.fetch(make(8)))).status).toBe(200);
      expect(A.hits.map((h) => h.body.length)).toEqual([8, 8]);
      A.reset();
      A.on(statuses(503, 200));
      expect((await clock.run(layer.fetch(make(9)))).status).toBe(503);
      expect(A.hits.length).toBe(1);
    });
  }
  it("a GET retried after A 307 -> B 503 sends its x-api-key to A again on the retry", async () => {
    A.on((hit) => {
      hit.res.writeHead(307, { location: `${B.base}/y` });
      hit.res.end();
    });
    B.on(statuses(503, 200));
    const clock = new TestClock(0);
    const layer = createResilience({ clock, budget: false, retry: quick });
    const res = await clock.run(layer.fetch(new Request(`${A.base}/x`, { headers: { "x-api-key": "s" } })));
    expect(res.status).toBe(200);
    expect(A.hits.map((h) => h.headers["x-api-key"])).toEqual(["s", "s"]);
    expect(B.hits.map((h) => h.headers["x-api-key"])).toEqual([undefined, undefined]);
  });
  it("ky: a call's signal aborted during a backoff rejects with its reason at once", async () => {
    A.on(statuses(503));
    const clock = new TestClock(0);
    const api = createClient({ resilience: { clock, budget: false, retry: { initialDelay: 10_000, jitter: "none" } } });
    const ac = new AbortController();
    const call = api.get(`${A.base}/x`, { signal: ac.signal });
    await until(() => A.hits.length === 1);
    await clock.waitForTimers(1);
    const reason = new Error("left");
    ac.abort(reason);
    expect(await rejection(call)).toBe(reason);
  });
  it("proxy: the client's signal aborted during a backoff rejects with its reason at once", async () => {
    A.on(statuses(503));
    const clock = new TestClock(0);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: A.base }],
      resilience: { clock, budget: false, retry: { initialDelay: 10_000, jitter: "none" } },
    });
    const ac = new AbortController();
    const call = proxy.fetch(new Request("http://w.example/x", { signal: ac.signal }), {}, ctx);
    await until(() => A.hits.length === 1);
    await clock.waitForTimers(1);
    ac.abort("left");
    expect(await rejection(call)).toBe("left");
  });
});

describe("a hedge's key, and timeout.total over the read-ahead (proxy, ky)", () => {
  it("hedge: a Request stream POST, generated key: A (silent) and E get the same key and bytes", async () => {
    A.on(() => {});
    const clock = new TestClock(0);
    const layer = chainOf(
      {
        clock,
        budget: false,
        retry: { ...quick, idempotencyKey: true },
      },
      500,
    );
    const call = layer.fetch(post(`${A.base}/v1/x`, source(["he", "dge"]).stream));
    await until(() => A.hits.length === 1);
    await clock.advance(500);
    const res = await call;
    expect(res.status).toBe(200);
    expect([A.hits[0]?.body, E.hits[0]?.body]).toEqual(["hedge", "hedge"]);
    expect(E.hits[0]?.headers["idempotency-key"]).toBe(A.hits[0]?.headers["idempotency-key"]);
    expect(A.hits[0]?.headers["idempotency-key"]).toMatch(UUID);
  });
  it("proxy: a client body that stalls in the read-ahead past timeout.total is a 504, nothing sent", async () => {
    const { stream, state } = source(["a"], true);
    const clock = new TestClock(0);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: A.base }],
      resilience: { clock, timeout: { total: 1000 } },
    });
    const call = proxy.fetch(post("http://w.example/x", stream), {}, ctx);
    await until(() => state.pulled >= 2);
    await clock.advance(1000);
    const res = await call;
    expect(res.status).toBe(504);
    expect(A.hits.length).toBe(0);
  });
  it("ky: a ReadableStream body stalling in the read-ahead past timeout.total rejects with the layer's TimeoutError", async () => {
    const { stream, state } = source(["a"], true);
    const clock = new TestClock(0);
    const api = createClient({ resilience: { clock, timeout: { total: 1000 } } });
    const call = rejection(api.post(`${A.base}/x`, { body: stream }));
    await until(() => state.pulled >= 2);
    await clock.advance(1000);
    const err = await call;
    expect(isTimeoutError(err)).toBe(true);
    expect(A.hits.length).toBe(0);
  });
});
