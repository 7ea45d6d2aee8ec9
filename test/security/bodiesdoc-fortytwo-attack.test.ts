/**
 * Outside-in attack on every sentence of the "## Bodies" section of docs/retry.md, checked on the paths where it
 * applies: what each attempt's server received (bytes, `content-length`, `transfer-encoding`, headers), whether a
 * body's source was cancelled, and what the layer counted.
 * Docs: docs/retry.md "## Bodies": "bytes, a form and search params are copied at the call …, even when larger
 * than `maxReplayBytes` and so sent only once, and so are the headers (`init.headers`, else a `Request` input's own),
 * whether a `Headers`, a record or pairs. A caller that edits its buffer, form or `Headers` for its next call while
 * this one still retries changes nothing in this one (its retries, next endpoints and hedges keep its own
 * `Idempotency-Key`); a `Request` input's body is read into bytes once and replayed (a `keepalive` `Request`'s
 * whole, under the same signal and `timeout.total` …; replayed only within `maxReplayBytes`; read into bytes, it
 * goes with a `content-length` …)", "past the limit, what was read and the rest of the stream are sent once, as one
 * stream", "a call that ends without sending it (an open breaker, a full bulkhead, an abort before the send, a
 * `transform` that sent a body of its own) cancels it, so the stream's source closes then …, and so it does a
 * `Request` body whose `content-length` announced more than `maxReplayBytes` (sent once, unread), and any `Request`
 * body given with a signal already aborted", "A body stream that fails during that read fails the call with a
 * `TypeError` ("the request body could not be read"), its `cause` the stream's error: nothing was sent, retried or
 * counted", "One read that far, past `maxReplayBytes`, that fails later, while it is sent, fails the call with
 * fetch's `TypeError` (its `cause` the stream's error), through a chain too, counted as no attempt and by nothing
 * (the host's breaker, the error rate, the retry budget, a chain's statistics)", "A `ReadableStream` given in
 * `init`, and a `Request` body announced larger than `maxReplayBytes` by its `content-length` (a client upload the
 * Worker proxy forwards), go to fetch as they are (so the length goes with the body …): one that fails while it is
 * sent is a network error of that attempt, the host's", "A `ReadableStream` given in `init` stays yours until it is
 * sent: a call that ends before sending it (an open breaker, a full bulkhead) leaves it unread, unlocked and not
 * cancelled", "Given to the ky client, it becomes the body of the `Request` ky makes, read ahead as such",
 * "`duplex: "half"` is added for stream bodies where the caller left it out, with a URL or a `Request` input. A
 * `Request` whose body was already read is refused at once with a `TypeError`, as fetch refuses it."
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `resilientProxy` (./cloudflare, its `fetch` called in Node as a plain handler), `createClient` (./ky); node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts) record each attempt's bytes and headers; body sources count
 * their pulls and their `cancel` calls.
 * Paths: plain call (retry after 503), `Request` input (string, one-chunk and multi-chunk streams, `keepalive`,
 * declared `content-length`, used, aborted), fallback chain (next endpoint, `transform` with a body of its own,
 * statistics), hedge, 307 redirect followed by the library, degradation stage, `resilientProxy`, ky client, bulkhead
 * queue and an open breaker.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the read-ahead wraps every failure of the source in the documented TypeError, and
 * even one chunk is copied):
 * 1. "A body stream that fails during that read fails the call with a `TypeError` ("the request body could not be
 *    read"), its `cause` the stream's error". Observed: when the stream's error is itself a `TypeError` (a source
 *    that errors its controller with one, as a failed decode or a platform stream does), the call rejects with that
 *    very error (its own message, no `cause`), on the plain call, through a chain and through the ky client; only
 *    an error of another class is wrapped. Mechanism: src/http/resilient-fetch.ts `settleError`, which returns any
 *    `TypeError` cause of a call with no attempt as it is (`if (isTypeError) return redactErrorChain(cause)`) before
 *    its `request === undefined` branch wraps a body that could not be read.
 * 2. "A caller that edits its buffer … for its next call while this one still retries changes nothing in this one
 *    …; a `Request` input's body is read into bytes once and replayed" (and "Given to the ky client, it becomes the
 *    body of the `Request` ky makes, read ahead as such"). Observed: a `Request` whose body stream yields the
 *    caller's `Uint8Array` in one chunk is "read into bytes" as that very array: the caller that reuses its buffer
 *    after the first attempt went has the retry (after a 503, same `Idempotency-Key`) send the edited bytes
 *    (`aaaa` then `bbbb`); so does the next endpoint of a chain, and the ky client's retry of a stream given as
 *    `body`. A stream of two chunks is copied and replays what was read. Mechanism:
 *    src/http/request/replay-body.ts `readForReplay` keeps each chunk as given and `concat` returns a lone chunk
 *    itself (`if (chunks.length === 1) return chunks[0]`), so the replayed bytes alias the source's buffer.
 *
 * Held (plain `it`):
 * - An `Error` that fails the stream during the read-ahead: `TypeError` "the request body could not be read" with
 *   that `cause`, nothing reaching the server, the `request` event at 0 attempts, the host's breaker and the error
 *   rate untouched, on the plain call, a chain and ky.
 * - Edits during retries to an `init` buffer, a `Headers` (with its `Idempotency-Key`), a form, a record, pairs,
 *   search params, and a `Request` input's own headers change nothing in the retry nor in a chain's next endpoint;
 *   a buffer larger than `maxReplayBytes` waiting in a bulkhead queue goes as it was at the call; a `Request` body
 *   of two chunks replays what was read.
 * - A `keepalive` `Request`: at exactly `maxReplayBytes` replayed after a 503 with its `content-length`; one byte
 *   over sent once, with its `content-length`; one built over a stream `Request` that stalls is cut by
 *   `timeout.total` (`TimeoutError` of phase `total`), its source cancelled, nothing sent.
 * - Past `maxReplayBytes`, a `Request` stream that fails while sent: fetch's `TypeError` whose `cause` is the
 *   stream's error, the `request` event at 0 attempts, the breaker (threshold 1) closed, the error rate 0, the
 *   chain's statistics without a call, on the plain call, a chain, a hedge, a 307, with `timeout.attempt` and with a
 *   degradation stage.
 * - An `init` stream that fails while sent is the host's network error (`RetryExhaustedError`, breaker opened).
 * - Unsent bodies: a `Request` stream read past the limit is cancelled on an open breaker, on an abort while queued
 *   in a bulkhead, and when a `transform` sent its own body; one announced larger by `content-length` is cancelled on
 *   an open breaker; any `Request` body given with a signal already aborted is cancelled (rejecting with the
 *   reason). An `init` stream on an open breaker, a full bulkhead or an abort while queued is left unlocked and not
 *   cancelled.
 * - `content-length` vs chunked: a client upload announced larger than the limit goes through the proxy with its
 *   `content-length` (not chunked); a `Request` stream within the limit goes with a `content-length` on both hops of
 * a
 *   307; a `Request` input with an `init` stream and no `duplex` is sent (chunked).
 * - A `Request` whose body was read is refused with a `TypeError`, nothing sent, nothing counted.
 *
 * Docs-silent (not pinned):
 * - A `Request` whose body is locked by a reader but unread is refused with the platform's "ReadableStream is
 *   locked" `TypeError` (fetch names a used `Request`), after `timeout.total` started; counted by nothing.
 * - The read-ahead stops after the chunk that passes the limit: a source's one large chunk is held whole ("at most
 *   `maxReplayBytes` are read ahead" is per chunk).
 * - A `keepalive` `Request` built over a stream `Request` (fetch sends it chunked) whose source answers every pull
 *   at once is read "whole" in microtasks: no timer, `timeout.total` included, can run until it ends (an endless one
 *   hangs the process and grows without bound).
 * - A late failure through the ky client reaches its caller as ky's `NetworkError` wrapping fetch's `TypeError`; the
 *   Worker proxy answers a client body that fails during the read with a 502.
 * - A stream chunk that is no `Uint8Array` fails with "a request body stream must yield bytes", not "the request body
 *   could not be read".
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type RequestEvent, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Handler, type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream(); // the origin the caller addresses
const B = httpUpstream(); // a spare, another origin
serveDuringFile(A, B);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
/** A backoff long enough for the test to edit its buffer between two attempts. */
const slowBackoff = { initialDelay: 20, maxDelay: 20, jitter: "none" as const };
const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
const enc = (text: string) => new TextEncoder().encode(text);
const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

const down: Handler = (hit) => {
  hit.res.writeHead(503);
  hit.res.end("down");
};
const downOnce: Handler = (hit) => (hit.n === 1 ? down(hit) : hit.res.end("ok"));
const bodies = (server: typeof A) => server.hits.map((h: Hit) => h.body);

/** A stream of `chunks` then the end. */
function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk);
      c.close();
    },
  });
}

/** A stream that sends `text` and then stalls; it counts its `cancel` calls. */
function stalling(text: string) {
  const log = { cancelled: 0 };
  let sent = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent) return new Promise<void>(() => {});
      sent = true;
      c.enqueue(enc(text));
    },
    cancel() {
      log.cancelled++;
    },
  });
  return { stream, log };
}

/** A stream that sends two 6-byte chunks and then fails with `error`. */
function failingLater(error: Error): ReadableStream<Uint8Array> {
  let pulls = 0;
  return new ReadableStream({
    async pull(c) {
      pulls++;
      if (pulls < 3) c.enqueue(enc("abcdef"));
      else {
        await tick(10);
        c.error(error);
      }
    },
  });
}

/** A stream that sends `a` and fails with `error`. */
const failingAtOnce = (error: Error) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(enc("a"));
      c.error(error);
    },
  });

const post = (url: string, body: ReadableStream<Uint8Array>, more: RequestInit = {}) =>
  new Request(url, { method: "POST", duplex: "half", body, ...more } as RequestInit);

const chainOf = (extra: ResilienceOptions = {}, hedge?: { delay: number }) =>
  createResilience({
    retry: fast,
    ...extra,
    fallback: fallback([
      {
        name: "c",
        ...(hedge ? { hedge } : {}),
        endpoints: [
          { name: "a", url: `${A.base}/v1` },
          { name: "b", url: `${B.base}/v1` },
        ],
      },
    ]),
  });

describe("a Request body stream that fails during the read-ahead", () => {
  it("with a TypeError: the call still fails with 'the request body could not be read', that error its cause (defect 1)", async () => {
    const boom = new TypeError("source broke");
    const plain = createResilience({ retry: fast });
    const chain = chainOf();
    const api = createClient({ resilience: createResilience({ retry: fast }) });
    const errors = [
      await rejection(plain.fetch(post(A.base, failingAtOnce(boom)))),
      await rejection(chain.fetch(post(`${A.base}/v1/x`, failingAtOnce(boom)))),
      await rejection(api.post(`${A.base}/k`, { body: failingAtOnce(boom) })),
    ];
    expect(A.hits.length + B.hits.length).toBe(0);
    for (const error of errors) {
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/the request body could not be read/);
      expect((error as Error).cause).toBe(boom);
    }
  });

  it("with an Error: that TypeError with its cause, nothing sent or counted (plain, chain, ky)", async () => {
    const boom = new Error("source broke");
    const plain = createResilience({ retry: fast, breaker: { failureThreshold: 1 } });
    const events: RequestEvent[] = [];
    plain.on("request", (e) => events.push(e));
    const chain = chainOf({ breaker: { failureThreshold: 1 } });
    const api = createClient({ resilience: plain });
    const errors = [
      await rejection(plain.fetch(post(A.base, failingAtOnce(boom)))),
      await rejection(chain.fetch(post(`${A.base}/v1/x`, failingAtOnce(boom)))),
      await rejection(api.post(`${A.base}/k`, { body: failingAtOnce(boom) })),
    ];
    for (const error of errors) {
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/the request body could not be read/);
      expect((error as Error).cause).toBe(boom);
    }
    expect(A.hits.length + B.hits.length).toBe(0);
    expect(events.map((e) => [e.outcome, e.attempts])).toEqual([
      ["error", 0],
      ["error", 0],
    ]);
    expect(plain.health().errorRate).toBe(0);
    expect(plain.health().breakers[A.host]?.state ?? "closed").toBe("closed");
    expect(chain.health().breakers[A.host]?.failureCount ?? 0).toBe(0);
    expect(chain.fallback?.chain("c").statistics().fallbacks.a?.calls).toBe(0);
  });
});

describe("a Request input's body is read into bytes once and replayed", () => {
  it("a one-chunk stream of the caller's buffer: an edit after the first attempt does not reach the retry, a chain's next endpoint or ky's retry (defect 2)", async () => {
    // Plain call: 503, then the retry after a 20 ms backoff.
    A.on(downOnce);
    const layer = createResilience({ retry: slowBackoff });
    const buffer = enc("aaaa");
    const call = layer.fetch(post(A.base, streamOf(buffer), { headers: { "idempotency-key": "k1" } }));
    await A.nth(1);
    buffer.fill(98); // "bbbb", for the caller's next call
    expect((await call).status).toBe(200);
    const plain = bodies(A);

    // A chain: the first endpoint answers 503 after 20 ms, the spare then gets the body.
    A.reset();
    A.on((hit) => setTimeout(() => down(hit), 20));
    const chain = chainOf({ retry: false });
    const spareBuffer = enc("eeee");
    const chained = chain.fetch(
      post(`${A.base}/v1/x`, streamOf(spareBuffer), { headers: { "idempotency-key": "k2" } }),
    );
    await A.nth(1);
    spareBuffer.fill(102);
    expect((await chained).status).toBe(200);
    const first = bodies(A);
    const spare = bodies(B);

    // ky: a stream given as `body` becomes the body of ky's Request.
    A.reset();
    A.on(downOnce);
    const api = createClient({ resilience: layer });
    const kyBuffer = enc("cccc");
    const kyCall = api.post(A.base, { headers: { "idempotency-key": "k3" }, body: streamOf(kyBuffer) }).text();
    await A.nth(1);
    kyBuffer.fill(100);
    await kyCall;
    const viaKy = bodies(A);

    expect({ plain, first, spare, viaKy }).toEqual({
      plain: ["aaaa", "aaaa"],
      first: ["eeee"],
      spare: ["eeee"],
      viaKy: ["cccc", "cccc"],
    });
  });

  it("a stream of two chunks replays what was read, whatever the caller edits after", async () => {
    A.on(downOnce);
    const layer = createResilience({ retry: slowBackoff });
    const head = enc("aa");
    const tail = enc("aa");
    const call = layer.fetch(post(A.base, streamOf(head, tail), { headers: { "idempotency-key": "k" } }));
    await A.nth(1);
    head.fill(98);
    tail.fill(98);
    expect((await call).status).toBe(200);
    expect(A.hits.map((h) => [h.body, h.headers["content-length"], h.headers["idempotency-key"]])).toEqual([
      ["aaaa", "4", "k"],
      ["aaaa", "4", "k"],
    ]);
  });

  it("init bytes, Headers, form, record, pairs, search params and a Request's own headers: edits change nothing", async () => {
    const layer = createResilience({ retry: slowBackoff });
    const run = async (start: () => Promise<Response>, edit: () => void) => {
      A.reset();
      A.on(downOnce);
      const call = start();
      await A.nth(1);
      edit();
      expect((await call).status).toBe(200);
      return A.hits.map((h) => [
        h.body.replace(/-{2,}[\w-]+/g, "B"),
        h.headers["x-t"] ?? null,
        h.headers["x-u"] ?? null,
        h.headers["idempotency-key"] ?? null,
      ]);
    };
    const bytes = enc("aaaa");
    const headers = new Headers({ "x-t": "1", "idempotency-key": "k1" });
    expect(
      await run(
        () => layer.fetch(A.base, { method: "POST", body: bytes, headers }),
        () => {
          bytes.fill(98);
          headers.set("x-t", "2");
          headers.set("x-u", "9");
          headers.set("idempotency-key", "k2");
        },
      ),
    ).toEqual([
      ["aaaa", "1", null, "k1"],
      ["aaaa", "1", null, "k1"],
    ]);
    const form = new FormData();
    form.append("a", "1");
    const record: Record<string, string> = { "x-t": "1" };
    const formSent = await run(
      () => layer.fetch(A.base, { method: "PUT", body: form, headers: record }),
      () => {
        form.set("a", "2");
        form.append("b", "3");
        record["x-t"] = "2";
      },
    );
    expect(formSent).toHaveLength(2);
    for (const [body, xt] of formSent) {
      expect(body).toContain('name="a"\r\n\r\n1\r\n');
      expect(body).not.toContain('name="b"');
      expect(xt).toBe("1");
    }
    const params = new URLSearchParams({ a: "1" });
    const pairs: Array<[string, string]> = [["x-t", "1"]];
    expect(
      await run(
        () => layer.fetch(A.base, { method: "PUT", body: params, headers: pairs }),
        () => {
          params.set("a", "2");
          (pairs[0] as [string, string])[1] = "2";
          pairs.push(["x-u", "9"]);
        },
      ),
    ).toEqual([
      ["a=1", "1", null, null],
      ["a=1", "1", null, null],
    ]);
    const request = new Request(A.base, { method: "PUT", body: "r1", headers: { "x-t": "1" } });
    expect(
      await run(
        () => layer.fetch(request),
        () => request.headers.set("x-t", "2"),
      ),
    ).toEqual([
      ["r1", "1", null, null],
      ["r1", "1", null, null],
    ]);
  });

  it("a chain's next endpoint keeps the caller's Headers and bytes as they were at the call", async () => {
    A.on((hit) => setTimeout(() => down(hit), 20));
    const chain = chainOf({ retry: false });
    const bytes = enc("aaaa");
    const headers = new Headers({ "idempotency-key": "k1" });
    const call = chain.fetch(`${A.base}/v1/x`, { method: "POST", body: bytes, headers });
    await A.nth(1);
    bytes.fill(98);
    headers.set("idempotency-key", "k2");
    expect((await call).status).toBe(200);
    expect(B.hits.map((h) => [h.body, h.headers["idempotency-key"]])).toEqual([["aaaa", "k1"]]);
  });

  it("bytes larger than maxReplayBytes, queued behind a bulkhead, go as they were at the call", async () => {
    A.on((hit) => (hit.path === "/slow" ? setTimeout(() => hit.res.end("s"), 30) : hit.res.end("ok")));
    const layer = createResilience({ retry: false, bulkhead: { maxConcurrent: 1, maxQueue: 1 }, maxReplayBytes: 2 });
    const slow = layer.fetch(`${A.base}/slow`);
    await A.nth(1);
    const bytes = enc("aaaa");
    const call = layer.fetch(`${A.base}/big`, { method: "POST", body: bytes });
    bytes.fill(98);
    await slow;
    await call;
    expect(A.hits.map((h) => [h.path, h.body])).toEqual([
      ["/slow", ""],
      ["/big", "aaaa"],
    ]);
  });
});

describe("a keepalive Request", () => {
  it("at exactly maxReplayBytes: replayed with its content-length; one over: sent once with it", async () => {
    const layer = createResilience({ retry: fast, maxReplayBytes: 4 });
    A.on(downOnce);
    expect((await layer.fetch(new Request(A.base, { method: "PUT", body: "abcd", keepalive: true }))).status).toBe(200);
    const at = A.hits.map((h) => [h.body, h.headers["content-length"], h.headers["transfer-encoding"] ?? null]);
    A.reset();
    A.on(downOnce);
    expect((await layer.fetch(new Request(A.base, { method: "PUT", body: "abcde", keepalive: true }))).status).toBe(
      503,
    );
    const over = A.hits.map((h) => [h.body, h.headers["content-length"], h.headers["transfer-encoding"] ?? null]);
    expect({ at, over }).toEqual({
      at: [
        ["abcd", "4", null],
        ["abcd", "4", null],
      ],
      over: [["abcde", "5", null]],
    });
  });

  it("one built over a stalling stream Request is cut by timeout.total, its source cancelled, nothing sent", async () => {
    const { stream, log } = stalling("x");
    const keepalive = new Request(post(A.base, stream), { keepalive: true });
    expect(keepalive.keepalive).toBe(true);
    const layer = createResilience({ retry: false, timeout: { total: 30 } });
    const error = (await rejection(layer.fetch(keepalive))) as { name: string; phase: string };
    await tick();
    expect([error.name, error.phase, log.cancelled, A.hits.length]).toEqual(["TimeoutError", "total", 1, 0]);
  });
});

describe("past maxReplayBytes, a Request stream that fails while it is sent", () => {
  const cases: Array<[string, () => ResilienceOptions | "chain" | "hedge", string]> = [
    ["plain call", () => ({}), "/x"],
    ["timeout.attempt", () => ({ timeout: { attempt: 2_000 } }), "/x"],
    ["degradation stage", () => ({ degradation: degradation({}) }), "/x"],
    ["307 followed", () => ({}), "/r"],
    ["chain", () => "chain", "/v1/x"],
    ["hedge", () => "hedge", "/v1/x"],
  ];
  for (const [label, options, path] of cases) {
    it(`${label}: fetch's TypeError with the stream's error as cause, counted by nothing`, async () => {
      A.on((hit) => {
        if (hit.path === "/r") {
          hit.res.writeHead(307, { location: "/done" });
          hit.res.end();
        } else hit.res.end("ok");
      });
      const chosen = options();
      const base = { maxReplayBytes: 4, breaker: { failureThreshold: 1 } };
      const layer =
        chosen === "chain"
          ? chainOf(base)
          : chosen === "hedge"
            ? chainOf(base, { delay: 5 })
            : createResilience({ retry: fast, ...base, ...chosen });
      const events: RequestEvent[] = [];
      layer.on("request", (e) => events.push(e));
      const boom = new Error("failed later");
      const error = (await rejection(
        layer.fetch(post(`${A.base}${path}`, failingLater(boom), { method: "PUT" })),
      )) as Error;
      expect(error).toBeInstanceOf(TypeError);
      expect(error.cause).toBe(boom);
      expect(events.map((e) => e.attempts)).toEqual([0]);
      const health = layer.health();
      expect(health.errorRate).toBe(0);
      expect(health.breakers[A.host]?.state ?? "closed").toBe("closed");
      expect(health.breakers[B.host]?.state ?? "closed").toBe("closed");
      if (chosen === "chain" || chosen === "hedge") {
        const stats = layer.fallback?.chain("c").statistics();
        expect([stats?.fallbacks.a?.calls, stats?.fallbacks.b?.calls]).toEqual([0, 0]);
      }
    });
  }

  it("an init stream that fails while sent is the host's network error", async () => {
    const layer = createResilience({ retry: fast, breaker: { failureThreshold: 1 } });
    const error = (await rejection(
      layer.fetch(A.base, { method: "PUT", body: failingLater(new Error("x")), duplex: "half" } as RequestInit),
    )) as { name: string; attempts: number };
    expect([error.name, error.attempts, layer.health().breakers[A.host]?.state]).toEqual([
      "RetryExhaustedError",
      1,
      "open",
    ]);
  });
});

describe("stream bodies a call ends without sending", () => {
  it("a Request stream read past the limit is cancelled: open breaker, abort while queued, a transform's own body", async () => {
    // An open breaker.
    A.on((hit) => {
      hit.res.writeHead(500);
      hit.res.end("x");
    });
    const open = createResilience({ retry: false, breaker: { failureThreshold: 1 }, maxReplayBytes: 4 });
    await open.fetch(A.base);
    const refused = stalling("over-the-limit");
    expect(((await rejection(open.fetch(post(A.base, refused.stream)))) as Error).name).toBe("CircuitOpenError");
    // An abort while it waits in a bulkhead's queue.
    B.on((hit) => (hit.path === "/slow" ? setTimeout(() => hit.res.end("s"), 40) : hit.res.end("ok")));
    const queued = createResilience({ retry: false, bulkhead: { maxConcurrent: 1, maxQueue: 1 }, maxReplayBytes: 4 });
    const slow = queued.fetch(`${B.base}/slow`);
    await B.nth(1);
    const aborted = stalling("over-the-limit");
    const controller = new AbortController();
    const call = queued.fetch(post(B.base, aborted.stream, { signal: controller.signal }));
    await tick();
    const reason = new Error("stop");
    controller.abort(reason);
    expect(await rejection(call)).toBe(reason);
    await slow;
    // A transform that sent a body of its own.
    B.reset();
    const replaced = stalling("over-the-limit");
    const chain = createResilience({
      retry: false,
      maxReplayBytes: 4,
      fallback: fallback([
        { name: "t", endpoints: [{ name: "b", url: `${B.base}/v1`, transform: (req) => ({ ...req, body: "{}" }) }] },
      ]),
    });
    expect((await chain.fetch(post(`${B.base}/v1/x`, replaced.stream))).status).toBe(200);
    await tick();
    expect(bodies(B)).toEqual(["{}"]);
    expect([refused.log.cancelled, aborted.log.cancelled, replaced.log.cancelled]).toEqual([1, 1, 1]);
  });

  it("a body announced larger by content-length (open breaker) and one given with a signal already aborted are cancelled", async () => {
    A.on((hit) => {
      hit.res.writeHead(500);
      hit.res.end("x");
    });
    const layer = createResilience({ retry: false, breaker: { failureThreshold: 1 }, maxReplayBytes: 4 });
    await layer.fetch(A.base);
    const announced = stalling("x");
    const error = await rejection(layer.fetch(post(A.base, announced.stream, { headers: { "content-length": "10" } })));
    expect((error as Error).name).toBe("CircuitOpenError");
    const early = stalling("x");
    const controller = new AbortController();
    const reason = new Error("gone");
    controller.abort(reason);
    expect(await rejection(layer.fetch(post(B.base, early.stream, { signal: controller.signal })))).toBe(reason);
    await tick();
    expect([announced.log.cancelled, early.log.cancelled, B.hits.length]).toEqual([1, 1, 0]);
  });

  it("an init stream stays the caller's: open breaker, full bulkhead, abort while queued leave it unlocked, not cancelled", async () => {
    A.on((hit) => {
      hit.res.writeHead(500);
      hit.res.end("x");
    });
    const open = createResilience({ retry: false, breaker: { failureThreshold: 1 } });
    await open.fetch(A.base);
    const refused = stalling("x");
    const send = (layer: typeof open, url: string, stream: ReadableStream<Uint8Array>, signal?: AbortSignal) =>
      layer.fetch(url, { method: "POST", body: stream, duplex: "half", signal } as RequestInit);
    expect((await rejection(send(open, A.base, refused.stream))) as Error).toHaveProperty("name", "CircuitOpenError");
    B.on((hit) => (hit.path === "/slow" ? setTimeout(() => hit.res.end("s"), 40) : hit.res.end("ok")));
    const queued = createResilience({ retry: false, bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
    const slow = queued.fetch(`${B.base}/slow`);
    await B.nth(1);
    const waiting = stalling("x");
    const controller = new AbortController();
    const call = send(queued, B.base, waiting.stream, controller.signal);
    const full = stalling("x");
    expect((await rejection(send(queued, B.base, full.stream))) as Error).toHaveProperty(
      "name",
      "BulkheadRejectedError",
    );
    controller.abort(new Error("stop"));
    await rejection(call);
    await slow;
    await tick();
    for (const { stream, log } of [refused, waiting, full]) {
      expect(stream.locked).toBe(false);
      expect(log.cancelled).toBe(0);
    }
    expect(B.hits.map((h) => h.path)).toEqual(["/slow"]);
  });
});

describe("content-length, chunked and duplex", () => {
  it("a client upload announced larger than the limit goes through the proxy with its content-length", async () => {
    A.on(down);
    const proxy = resilientProxy({
      routes: [{ path: "/api", upstream: `${A.base}/up` }],
      resilience: { maxReplayBytes: 16, retry: fast },
    });
    const client = post("https://worker.example/api/x", streamOf(enc("a".repeat(17))), {
      headers: { "content-length": "17" },
    });
    expect((await proxy.fetch(client, {}, ctx)).status).toBe(503);
    expect(
      A.hits.map((h) => [h.body.length, h.headers["content-length"], h.headers["transfer-encoding"] ?? null]),
    ).toEqual([[17, "17", null]]);
  });

  it("a Request stream within the limit goes with a content-length on both hops of a 307", async () => {
    A.on((hit) => {
      if (hit.path === "/r") {
        hit.res.writeHead(307, { location: "/done" });
        hit.res.end();
      } else hit.res.end("ok");
    });
    const layer = createResilience({ retry: fast, maxReplayBytes: 4 });
    expect((await layer.fetch(post(`${A.base}/r`, streamOf(enc("ab"), enc("c"))))).status).toBe(200);
    expect(
      A.hits.map((h) => [h.path, h.body, h.headers["content-length"], h.headers["transfer-encoding"] ?? null]),
    ).toEqual([
      ["/r", "abc", "3", null],
      ["/done", "abc", "3", null],
    ]);
  });

  it("a Request input with an init stream and no duplex is sent (duplex added), chunked", async () => {
    const layer = createResilience({ retry: false });
    const response = await layer.fetch(new Request(A.base, { method: "POST", body: "x" }), {
      body: streamOf(enc("streamed")),
    });
    expect(response.status).toBe(200);
    expect(A.hits.map((h) => [h.body, h.headers["transfer-encoding"]])).toEqual([["streamed", "chunked"]]);
  });

  it("a Request whose body was read is refused with a TypeError, nothing sent or counted", async () => {
    const layer = createResilience({ retry: false, breaker: { failureThreshold: 1 } });
    const events: RequestEvent[] = [];
    layer.on("request", (e) => events.push(e));
    const used = new Request(A.base, { method: "POST", body: "abc" });
    await used.text();
    const error = await rejection(layer.fetch(used));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/already read/);
    expect([A.hits.length, events.length, layer.health().errorRate]).toEqual([0, 0, 0]);
  });
});
