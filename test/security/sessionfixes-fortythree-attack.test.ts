/**
 * Outside-in attack on today's fixes (2a0e0c6..ca5c9e7): bodies classified by their built-in tag
 * (`kindOf`), `AbortSignal`s read by their shape on every entry, a layer's 429/503 after more than one
 * attempt no longer declined to an outer layer (and answered 502 by `resilientProxy` for a client's keyless
 * POST), and `execute`'s `RetryExhaustedError` cut whole by `redactErrorChain`.
 * Docs: docs/retry.md "Bodies" ("Strings, bytes, `Blob`, `FormData` and `URLSearchParams` bodies (of any
 * realm: … known by their built-in kind, as fetch knows them) are taken as they are when the call is made, as
 * fetch takes them, and re-sent so on each retry", "an object of a kind fetch does not name (a polyfill's `Blob`
 * for a transport of your own, unless it carries the built-in's `Symbol.toStringTag`, as fetch-blob's does: it
 * is then taken for one) is passed on as given and sent once"); docs/retry.md ("an `init.signal` that is no
 * `AbortSignal` (one with `aborted`, `addEventListener` and `removeEventListener` …, the layer also stops
 * listening when a call settles, but for one listener it keeps on a signal it links a timeout or a hedge to,
 * however many calls that signal serves"; "takes the request as not sent only when nothing the inner layer
 * tried may have had it …; so is an answer it resolved with: a `429` or `503` is taken as declined only when
 * the inner layer made one attempt (`getResilienceInfo(response).attempts`)"); docs/breakers.md ("a signal is
 * read by its shape, `aborted`, `addEventListener` and `removeEventListener`, on every entry that takes one");
 * docs/cloudflare.md (502 for "a `429` or `503` that came after more than one attempt at a client's POST or
 * PATCH without a key, when `retry.idempotencyKey` is on"); SECURITY.md "A paid request is never processed
 * twice" ("a POST or PATCH is sent again (a retry, or the next endpoint of a chain: one rule) only when it
 * surely was not processed") and "The caller's mistakes never trip a breaker"; CHANGELOG "execute's
 * `RetryExhaustedError` … its stack is cut now, as its message and causes were".
 * How: `createResilience`, `getResilienceInfo`, `RetryExhaustedError` (root), `fallback` (./fallback),
 * `retry`, `FallbackChain` (./policies), `resilientProxy` (./cloudflare); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts), native `fetch` on the same values for comparison.
 * Paths: plain call with odd bodies (tag look-alikes, Blob subclass, File, DataView, typed arrays,
 * SharedArrayBuffer, `String` object) through a 503 retry; signal look-alikes on `resilience.fetch`, `execute`,
 * a named breaker's `execute`, `retry(fn)`, `FallbackChain#execute`; layers nested two and three deep; a chain
 * with a `respond` endpoint under an outer layer and under the proxy; proxy chain routes and upstream routes for
 * GET, PUT, keyed and keyless POST; `execute` with a URL in its work's error (plain, frozen, `fallback`).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a body's tag is believed from the class that names it or a readable Blob-like
 * (bodyKind), and an answer after another request of its call is marked for every layer in front (followsOthers)):
 * 1. docs/retry.md: "an object of a kind fetch does not name … is passed on as given and sent once". Observed:
 *    an object whose class says `Symbol.toStringTag` "FormData" or "ArrayBuffer" (fetch names neither: it
 *    sends `"[object FormData]"` as text, as native fetch does here) makes the call reject at once with
 *    `TypeError: body is not iterable`, nothing sent. `kindOf` (src/core/kind-of.ts) takes the tag for the
 *    built-in, `isReplayable` (src/http/request/replay-body.ts) then calls it replayable, and `byteSize` finds no
 *    `byteLength`/`size` and iterates it as a FormData (called from src/http/request/normalize-request.ts).
 *    Before the fix (instanceof) such an object was passed on as given.
 * 2. Same sentence. Observed: an object whose class says "URLSearchParams" is sent as an EMPTY form
 *    (`content-type: application/x-www-form-urlencoded`, body `""`), and replayed on a 503, where fetch sends
 *    `"[object URLSearchParams]"` as `text/plain`: a wrong body, silently. `snapshotBody` copies it as
 *    `new URLSearchParams(body)`, which reads the object's own enumerable keys (none).
 * 3. SECURITY.md "A paid request is never processed twice"; docs/retry.md "takes the request as not sent only
 *    when nothing the inner layer tried may have had it". Observed: three layers (outer → middle → inner with
 *    `retry.idempotencyKey: true`), a keyless POST, an upstream that answers each key's first request 500 and
 *    later ones 503: the upstream gets the job under 3 keys, 500 first each time (it may have run 3 times). The
 *    inner layer's 503 after 2 attempts is no declined answer to the middle (it resolves with it after one
 *    attempt), but the middle attaches its own info (`attempts: 1`) to it, and the outer reads that as declined
 *    (src/http/send/classify.ts `maySendAgain` reads only the nearest layer's
 *    `getResilienceInfo(value).attempts`).
 * 4. Same promise; docs/cloudflare.md 502 rule. Observed: a chain `[p (http), cache (respond → 503
 *    placeholder)]` under `retry: { maxAttempts: 1, idempotencyKey: true }`: p gets the keyless POST under the
 *    layer's key and answers 500 (it may have run it); the chain moves on (keyed) to `cache`, whose 503 is the
 *    answer, `attempts: 1` (a `respond` is no attempt, src/http/resilience-info.ts). An outer layer takes it as
 *    declined and re-sends: p gets the job under 3 keys; `resilientProxy` passes the 503 on (not 502) and its
 *    client layer re-sends the same way. `attempts > 1` (classify.ts, src/cloudflare/resilient-proxy.ts
 *    `retriedUnderOwnKey`) stands for "an earlier request may have been processed", which it is not here.
 *
 * Docs-silent (not pinned):
 * - An object that only says `Symbol.toStringTag` "Blob" or "File" (no `size`, no methods) is "taken for one"
 *   as the docs say, and then rejects with `TypeError: body is not iterable` (nothing sent, nothing counted);
 *   native fetch sends `"[object Blob]"`. The message names no body at all.
 * - A `String` object body was sent once (a 503 not retried under a key), though fetch sends it as its text as
 *   it sends a string; the docs named primitives only. Since the browsercors-fortyfive run it goes as its text,
 *   re-sent whole (held below), and docs/retry.md names it.
 * - A signal look-alike without `reason` makes every entry reject with `undefined` (its `reason`), where native
 *   fetch's abort would make an `AbortError`; the docs say "rejects with its reason".
 *
 * Held (plain `it`):
 * - Blob subclass, File, DataView, Uint16Array, Float64Array, and a fetch-blob-like object (tag "Blob" with
 *   `size`, `type`, `arrayBuffer`, `stream`): the same bytes and `content-type` native fetch sends, re-sent
 *   whole on a 503 under the caller's key; so is a `String` object, as its text.
 * - A "ReadableStream"-tagged look-alike and a `SharedArrayBuffer`: the text native fetch sends, sent once. None of the odd bodies trips or counts against the host when it is refused.
 * - Signal look-alikes (a plain object with the three members, an `EventTarget` subclass) are taken by
 *   `resilience.fetch`, `execute`, a named breaker, `retry(fn)` and `FallbackChain#execute`; an abort during
 *   hung work settles each at once with its reason; after a success or a failure no listener is left on the
 *   look-alike by `execute`, the breaker, `retry(fn)` or the chain, and `resilience.fetch` under `timeout.total`
 *   keeps one listener however many calls the signal serves (without a deadline the signal goes to fetch as
 *   given, and Node's fetch adds one per request until it is collected, as native fetch does on a real signal). A
 * look-alike whose `aborted` getter throws rejects (never throws).
 * - Proxy: a GET, PUT and a POST with the client's own key whose attempts all got 503 are answered 503 (not
 *   502); a keyless POST under `idempotencyKey` is answered 502; so is a chain route `p 500 → q 503`.
 * - Two layers: a GET, a PUT and a POST with the caller's key are re-sent by the outer layer after the inner one
 *   gave up on 503s; a chain whose p is retried before `respond`'s 503 is not re-sent (attempts 2).
 * - `execute`'s `RetryExhaustedError`: message, stack, its cause's message, stack and `url` field are cut; its
 *   name, `attempts`, `endpoint`, own keys and `instanceof` (`RetryExhaustedError`, `ResilienceError`) are
 *   those of `retry(fn)`'s; a frozen cause is replaced by a cut copy of its name; `fallback` gets the cut error.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isRetryExhaustedError,
  ResilienceError,
  RetryExhaustedError,
} from "../../src/index.ts";
import { FallbackChain, retry } from "../../src/policies/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const ctx = { waitUntil() {}, passThroughOnException() {} };
const job = '{"prompt":"cat"}';

function answer(status: number) {
  return (hit: Hit) => {
    hit.res.statusCode = status;
    hit.res.end(String(status));
  };
}

/** 503 to the first request, 200 after: a call with a key is retried once. */
function declinesOnce() {
  let n = 0;
  a.on((hit) => answer(++n === 1 ? 503 : 200)(hit));
}

/** An upstream that answers a job's first request under each key 500 (it may have run it), any later one 503. */
function firstFailsThenDeclines() {
  const seen = new Map<string, number>();
  a.on((hit) => {
    const key = String(hit.headers["idempotency-key"] ?? "none");
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    answer(n === 1 ? 500 : 503)(hit);
  });
  return seen;
}

/** What native fetch sends for `body` (its text and content-type), read from a real server. */
async function nativeSends(body: unknown): Promise<{ body: string; type: string | undefined }> {
  a.reset();
  const res = await fetch(`${a.base}/native`, { method: "POST", body: body as BodyInit });
  await res.text();
  const hit = a.hits[0] as Hit;
  a.reset();
  return { body: hit.body, type: hit.headers["content-type"] };
}

class TaggedFormData {
  get [Symbol.toStringTag]() {
    return "FormData";
  }
}
class TaggedArrayBuffer {
  get [Symbol.toStringTag]() {
    return "ArrayBuffer";
  }
}
class TaggedSearchParams {
  get [Symbol.toStringTag]() {
    return "URLSearchParams";
  }
}
class TaggedStream {
  get [Symbol.toStringTag]() {
    return "ReadableStream";
  }
}
class SubBlob extends Blob {}

describe("defects", () => {
  for (const [name, make] of [
    ["FormData", () => new TaggedFormData()],
    ["ArrayBuffer", () => new TaggedArrayBuffer()],
  ] as const) {
    it(`1. a class tagged "${name}" is passed on as given and sent once, as fetch sends it`, async () => {
      const native = await nativeSends(make());
      expect(native.body).toBe(`[object ${name}]`);
      a.on(answer(503));
      const r = createResilience({ retry: fast });
      // Observed: rejects at once with "TypeError: body is not iterable", nothing sent.
      const res = await r.fetch(`${a.base}/x`, {
        method: "POST",
        body: make() as unknown as BodyInit,
        headers: { "idempotency-key": "k" },
      });
      await res.text();
      expect(a.hits.map((h) => h.body)).toEqual([native.body]);
    });
  }

  it('2. a class tagged "URLSearchParams" is sent as fetch sends it, not as an empty form', async () => {
    const native = await nativeSends(new TaggedSearchParams());
    expect(native).toEqual({ body: "[object URLSearchParams]", type: "text/plain;charset=UTF-8" });
    a.on(answer(503));
    const r = createResilience({ retry: fast });
    const res = await r.fetch(`${a.base}/x`, {
      method: "POST",
      body: new TaggedSearchParams() as unknown as BodyInit,
      headers: { "idempotency-key": "k" },
    });
    await res.text();
    // Observed: 3 requests, each with body "" and content-type application/x-www-form-urlencoded.
    expect(a.hits.map((h) => [h.body, h.headers["content-type"]])).toEqual([[native.body, native.type]]);
  });

  it("3. three layers: a keyless POST the inner layer retried under its own key is not re-sent", async () => {
    const seen = firstFailsThenDeclines();
    const inner = createResilience({ retry: { ...fast, maxAttempts: 2, idempotencyKey: true }, breaker: false });
    const middle = createResilience({ retry: fast, breaker: false, fetch: inner.fetch });
    const outer = createResilience({ retry: fast, breaker: false, fetch: middle.fetch });
    const res = await outer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: job });
    await res.text();
    expect(res.status).toBe(503);
    // Observed: 3 keys, each answered 500 first (the job may have run three times), 6 requests in all.
    expect(seen.size).toBe(1);
  });

  /** A chain whose HTTP endpoint gets one attempt, then a `respond` placeholder that answers 503. */
  const withPlaceholder = (base: string) => ({
    name: "c",
    endpoints: [
      { name: "p", url: base },
      { name: "cache", respond: () => new Response("busy, later", { status: 503 }) },
    ],
  });
  const oneTryKeyed = { ...fast, maxAttempts: 1, idempotencyKey: true };

  it("4a. an outer layer does not re-send a POST that p had, answered by a respond's 503", async () => {
    a.on(answer(500));
    const inner = createResilience({
      retry: oneTryKeyed,
      breaker: false,
      fallback: fallback([withPlaceholder(`${a.base}/v1`)]),
    });
    const outer = createResilience({ retry: fast, breaker: false, fetch: inner.fetch });
    const res = await outer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: job });
    await res.text();
    expect(res.status).toBe(503);
    // Observed: p got the job 3 times, under 3 keys, and answered 500 each time.
    expect(a.hits).toHaveLength(1);
  });

  it("4b. resilientProxy answers 502, not 503, when p had the client's keyless POST", async () => {
    a.on(answer(500));
    const proxy = resilientProxy({
      routes: [{ path: "/", chain: withPlaceholder(a.base) }],
      resilience: { retry: oneTryKeyed, breaker: false },
    });
    const direct = await proxy.fetch(new Request("http://w.example/v1/jobs", { method: "POST", body: job }), {}, ctx);
    await direct.text();
    // p had it once; the answer (a respond's 503, one counted attempt) is no longer passed on.
    expect(a.hits).toHaveLength(1);
    a.reset();
    a.on(answer(500));
    const client = createResilience({
      retry: fast,
      breaker: false,
      fetch: (input, init) => proxy.fetch(new Request(input as string, init), {}, ctx),
    });
    const res = await client.fetch("http://w.example/v1/jobs", { method: "POST", body: job });
    await res.text();
    // Observed: the proxy passes the placeholder's 503 on; the client re-sends: p gets the job 3 times.
    expect({ direct: direct.status, sentToP: a.hits.length }).toEqual({ direct: 502, sentToP: 1 });
  });
});

describe("bodies by their tag", () => {
  const replayed: Array<[string, () => unknown]> = [
    ["Blob subclass", () => new SubBlob(["hello"], { type: "text/x-sub" })],
    ["File", () => new File(["filedata"], "f.txt", { type: "text/x-file" })],
    ["DataView", () => new DataView(new TextEncoder().encode("dv-bytes").buffer)],
    ["Uint16Array", () => new Uint16Array([0x6968, 0x2121])],
    ["Float64Array", () => new Float64Array([1.5])],
    // Since the browsercors-fortyfive run: a String object is its text, as fetch sends it.
    ["String object", () => new String("strobj")],
    [
      "fetch-blob-like",
      () => ({
        [Symbol.toStringTag]: "Blob",
        size: 3,
        type: "text/x-like",
        arrayBuffer: async () => new TextEncoder().encode("abc").buffer,
        stream: () => new Blob(["abc"]).stream(),
        text: async () => "abc",
      }),
    ],
  ];
  for (const [name, make] of replayed) {
    it(`${name}: what fetch sends, re-sent whole on a 503`, async () => {
      const native = await nativeSends(make());
      declinesOnce();
      const r = createResilience({ retry: fast });
      const res = await r.fetch(`${a.base}/x`, {
        method: "POST",
        body: make() as BodyInit,
        headers: { "idempotency-key": "k" },
      });
      await res.text();
      expect(res.status).toBe(200);
      expect(getResilienceInfo(res)?.attempts).toBe(2);
      const sent = { body: native.body, type: native.type };
      expect(a.hits.map((h) => ({ body: h.body, type: h.headers["content-type"] }))).toEqual([sent, sent]);
    });
  }

  const once: Array<[string, () => unknown]> = [
    ["ReadableStream-tagged look-alike", () => new TaggedStream()],
    ["SharedArrayBuffer", () => new SharedArrayBuffer(4)],
  ];
  for (const [name, make] of once) {
    it(`${name}: the text fetch sends, sent once`, async () => {
      const native = await nativeSends(make());
      declinesOnce();
      const r = createResilience({ retry: fast });
      const res = await r.fetch(`${a.base}/x`, {
        method: "POST",
        body: make() as BodyInit,
        headers: { "idempotency-key": "k" },
      });
      await res.text();
      expect(res.status).toBe(503);
      expect(a.hits.map((h) => ({ body: h.body, type: h.headers["content-type"] }))).toEqual([native]);
    });
  }

  it("a tag look-alike (first refused with 'body is not iterable') is sent as fetch sends it, nothing blamed", async () => {
    const r = createResilience({ retry: fast });
    for (const make of [
      () => new TaggedFormData(),
      () => new TaggedArrayBuffer(),
      () => ({ [Symbol.toStringTag]: "Blob" }),
    ]) {
      const native = await nativeSends(make());
      const res = await r.fetch(`${a.base}/x`, { method: "POST", body: make() as unknown as BodyInit });
      await res.text();
      expect(res.status).toBe(200);
      expect(a.hits.map((h) => ({ body: h.body, type: h.headers["content-type"] }))).toEqual([native]);
    }
    expect(Object.values(r.health().breakers).map((b) => b?.lastFailureTime ?? null)).toEqual([null]);
  });
});

/**
 * A signal by its shape only: no `reason` unless given one, listeners counted, each called as an
 * `EventTarget` calls it (`this` the signal: fetch's own listener reads `this.reason`).
 */
function lookAlike(withReason: boolean) {
  const listeners = new Set<(this: unknown, event: Event) => void>();
  const signal = {
    aborted: false,
    reason: undefined as unknown,
    addEventListener(_type: string, listener: (this: unknown, event: Event) => void) {
      listeners.add(listener);
    },
    removeEventListener(_type: string, listener: (this: unknown, event: Event) => void) {
      listeners.delete(listener);
    },
    abort(reason: unknown) {
      signal.aborted = true;
      if (withReason) signal.reason = reason;
      for (const listener of [...listeners]) {
        listeners.delete(listener);
        listener.call(signal, new Event("abort"));
      }
    },
    live: () => listeners.size,
  };
  if (!withReason) delete (signal as { reason?: unknown }).reason;
  return signal;
}

class SignalTarget extends EventTarget {
  aborted = false;
  reason: unknown;
  abort(reason: unknown) {
    this.aborted = true;
    this.reason = reason;
    this.dispatchEvent(new Event("abort"));
  }
}

type Entry = (signal: AbortSignal, work: () => Promise<string>) => Promise<unknown>;
const hang = () => new Promise<string>(() => {});
const entries: Record<string, Entry> = {
  "resilience.fetch": (signal) =>
    createResilience({ breaker: false })
      .fetch(`${a.base}/hang`, { signal })
      .then((res) => res.text()),
  execute: (signal, work) => createResilience({ retry: { ...fast, maxAttempts: 2 } }).execute(work, { signal }),
  "named breaker": (signal, work) => createResilience().breaker("svc").execute(work, signal),
  "retry(fn)": (signal, work) => retry(work, { ...fast, maxAttempts: 2, signal }),
  "FallbackChain#execute": (signal, work) =>
    new FallbackChain<null, string>("c").add(work, { name: "x" }).execute(null, { signal }),
};

describe("signals by their shape", () => {
  for (const [name, run] of Object.entries(entries)) {
    for (const kind of ["plain, with reason", "plain, no reason", "EventTarget subclass"] as const) {
      it(`${name}, ${kind}: an abort settles the hung call at once with the reason`, async () => {
        a.on(() => {});
        const signal = kind === "EventTarget subclass" ? new SignalTarget() : lookAlike(kind === "plain, with reason");
        let outcome: { error: unknown } | undefined;
        run(signal as unknown as AbortSignal, hang).then(
          () => {},
          (error: unknown) => {
            outcome = { error };
          },
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(outcome).toBeUndefined();
        const reason = new Error("caller left");
        signal.abort(reason);
        await new Promise((resolve) => setTimeout(resolve, 5));
        expect(outcome).toEqual({ error: kind === "plain, no reason" ? undefined : reason });
      });
    }
  }

  for (const [name, run] of Object.entries(entries)) {
    if (name === "resilience.fetch") continue;
    it(`${name}: no listener is left on the look-alike after a success or a failure`, async () => {
      const signal = lookAlike(true);
      await expect(run(signal as unknown as AbortSignal, async () => "v")).resolves.toBe("v");
      expect(signal.live()).toBe(0);
      await rejection(
        run(signal as unknown as AbortSignal, async () => {
          throw new Error("work failed");
        }),
      );
      expect(signal.live()).toBe(0);
    });
  }

  it("resilience.fetch under timeout.total keeps one listener on a look-alike however many calls it serves", async () => {
    const signal = lookAlike(true);
    // (Without a deadline the caller's signal goes to fetch as it is, and Node's fetch adds one listener per
    // request, released when the request is collected: fetch's own, as native fetch does on a real signal.)
    const r = createResilience({ breaker: false, timeout: { total: 5_000 } });
    for (let i = 0; i < 4; i++)
      await (await r.fetch(`${a.base}/ok`, { signal: signal as unknown as AbortSignal })).text();
    expect(a.hits).toHaveLength(4);
    expect(signal.live()).toBe(1);
  });

  it("a look-alike whose aborted getter throws rejects every entry, none throws, nothing is sent", async () => {
    const signal = {
      get aborted(): boolean {
        throw new Error("getter boom");
      },
      addEventListener() {},
      removeEventListener() {},
    } as unknown as AbortSignal;
    for (const run of Object.values(entries)) {
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = run(signal, async () => "v");
      }).not.toThrow();
      await rejection(promise as Promise<unknown>);
    }
    expect(a.hits).toHaveLength(0);
  });
});

describe("declined answers between layers", () => {
  for (const [method, headers] of [
    ["GET", {}],
    ["PUT", {}],
    ["POST", { "idempotency-key": "mine" }],
  ] as const) {
    it(`two layers: a ${method}${method === "POST" ? " with its key" : ""} is re-sent after the inner layer's 503s`, async () => {
      a.on(answer(503));
      const inner = createResilience({ retry: { ...fast, maxAttempts: 2 }, breaker: false });
      const outer = createResilience({ retry: { ...fast, maxAttempts: 2 }, breaker: false, fetch: inner.fetch });
      const res = await outer.fetch(`${a.base}/v1/jobs`, { method, headers, body: method === "GET" ? null : job });
      await res.text();
      expect(res.status).toBe(503);
      expect(a.hits).toHaveLength(4);
    });

    it(`proxy: a ${method}${method === "POST" ? " with the client's key" : ""} whose attempts got 503 is answered 503`, async () => {
      a.on(answer(503));
      const proxy = resilientProxy({
        routes: [{ path: "/", upstream: a.base }],
        resilience: { retry: { ...fast, maxAttempts: 2, idempotencyKey: true }, breaker: false },
      });
      const res = await proxy.fetch(
        new Request("http://w.example/v1/jobs", { method, headers, body: method === "GET" ? null : job }),
        {},
        ctx,
      );
      await res.text();
      expect(res.status).toBe(503);
      expect(res.headers.get("x-resilience-attempts")).toBe("2");
    });
  }

  it("proxy: a keyless POST retried under the layer's key is answered 502, on an upstream and a chain route", async () => {
    a.on(answer(503));
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: a.base }],
      resilience: { retry: { ...fast, maxAttempts: 2, idempotencyKey: true }, breaker: false },
    });
    const res = await proxy.fetch(new Request("http://w.example/j", { method: "POST", body: job }), {}, ctx);
    expect(res.status).toBe(502);
    await res.text();
    a.reset();
    firstFailsThenDeclines();
    b.on(answer(503));
    const chained = resilientProxy({
      routes: [
        {
          path: "/",
          chain: {
            name: "c",
            endpoints: [
              { name: "p", url: a.base },
              { name: "q", url: b.base },
            ],
          },
        },
      ],
      resilience: { retry: { ...fast, maxAttempts: 2, idempotencyKey: true }, breaker: false },
    });
    const out = await chained.fetch(new Request("http://w.example/j", { method: "POST", body: job }), {}, ctx);
    expect(out.status).toBe(502);
    await out.text();
  });

  it("two layers: a chain whose p was retried before respond's 503 is not re-sent", async () => {
    const seen = firstFailsThenDeclines();
    const inner = createResilience({
      retry: { ...fast, maxAttempts: 2, idempotencyKey: true },
      breaker: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "cache", respond: () => new Response("later", { status: 503 }) },
          ],
        },
      ]),
    });
    const outer = createResilience({ retry: fast, breaker: false, fetch: inner.fetch });
    const res = await outer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: job });
    await res.text();
    expect(res.status).toBe(503);
    expect(seen.size).toBe(1);
    expect(a.hits).toHaveLength(2);
  });
});

describe("execute's RetryExhaustedError, cut whole", () => {
  const secretError = () =>
    Object.assign(new Error("GET https://api.example/v1/x?key=SECRET1 returned 503"), {
      url: "https://api.example/v1?key=SECRET2",
      status: 503,
    });

  it("message, stack and cause are cut; name, attempts, endpoint, keys and instanceof are kept", async () => {
    const r = createResilience({ retry: fast });
    const error = (await rejection(
      r.execute(async () => {
        throw secretError();
      }),
    )) as RetryExhaustedError & { cause: Error & { url: string; status: number } };
    const plain = (await rejection(
      retry(async () => {
        throw secretError();
      }, fast),
    )) as RetryExhaustedError;
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(error).toBeInstanceOf(ResilienceError);
    expect(isRetryExhaustedError(error)).toBe(true);
    expect(error.name).toBe("RetryExhaustedError");
    expect(error.attempts).toBe(3);
    expect(error.endpoint).toBeUndefined();
    expect(Object.getOwnPropertyNames(error).sort()).toEqual(Object.getOwnPropertyNames(plain).sort());
    expect(error.message).toBe("gave up after 3 attempts: GET https://api.example/v1/x returned 503");
    expect(String(error.stack)).toContain("RetryExhaustedError: gave up after 3 attempts");
    expect(error.cause.url).toBe("https://api.example/v1");
    expect(error.cause.status).toBe(503);
    const text = [error.message, error.stack, error.cause.message, error.cause.stack, error.cause.url].join("\n");
    expect(text).not.toMatch(/SECRET/);
  });

  it("a frozen cause is replaced by a cut copy; fallback gets the cut error", async () => {
    const r = createResilience({ retry: fast });
    const frozen = (await rejection(
      r.execute(async () => {
        throw Object.freeze(secretError());
      }),
    )) as RetryExhaustedError & { cause: Error };
    expect(frozen).toBeInstanceOf(RetryExhaustedError);
    expect(frozen.cause.name).toBe("Error");
    expect(`${frozen.message}${frozen.stack}${frozen.cause.message}${frozen.cause.stack}`).not.toMatch(/SECRET/);
    const given = (await r.execute(
      async (): Promise<unknown> => {
        throw secretError();
      },
      { fallback: (error) => error },
    )) as RetryExhaustedError;
    expect(given).toBeInstanceOf(RetryExhaustedError);
    expect(`${given.message}${given.stack}`).not.toMatch(/SECRET/);
  });
});
