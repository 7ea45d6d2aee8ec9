/**
 * Outside-in attack on the changes of the last few hours (a653175..HEAD): the layer's own link to a caller's
 * signal, store events on demand, header values trimmed, percent-encoded URLs cut from error text, the breaker's
 * late half-open snapshots and late leases, `durableObjectStore` giving back a lease granted after its timeout.
 * Docs: docs/retry.md ("the signal such a call hands its transport follows yours after the call settled, as
 * fetch's own does, so aborting then still cancels a body being read"; "the spaces, tabs and line breaks around a
 * value are no part of it: fetch trims them, so `Bearer ${key}\n` goes as `Bearer ${key}`"; ky: "A header value no
 * request can carry is a `TypeError` naming the header, never quoting the value"); SECURITY.md ("a URL
 * percent-encoded into text, `https%3A%2F%2F…`, is cut as a plain one, up to three times encoded", "a `message` set
 * to a `URL`", "a header with CR/LF/NUL … reject at once with a `TypeError`"); src/stores/breaker-store.ts (`connect`:
 * "A layer subscribes when it gets its first `store` listener and unsubscribes when its last goes");
 * docs/breakers.md ("a closed one toward half-open … Read again, the same value is no news"); docs/cloudflare.md
 * ("A lease the object grants after the probe's `timeout` has passed … is given back by the store as soon as the
 * answer comes").
 * How: `createResilience` (root), `fallback` (./fallback), `createClient` (./ky), `kvStore`, `durableObjectStore`
 * (./cloudflare), `TestClock` (./testing); in-process transports (the `fetch` option) whose response bodies follow
 * their signal through an abort listener only; `gc` (through `v8.setFlagsFromString("--expose-gc")`); stores of
 * one's own; a fake KV and a fake Durable Object namespace.
 * Paths: plain call, `timeout.total`, `timeout.attempt`, a fallback chain, a hedge, a `Request` input, endpoint
 * `headers`, a `transform`'s headers, the ky client, `debugInfo()`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a linked signal lives as long as the response it answered; header values kept trimmed; encoded URLs after an escape, a digit or with raw slashes cut; SECURITY.md's header row made exact):
 * 1. docs/retry.md "the signal such a call hands its transport follows yours after the call settled, as fetch's own
 *    does, so aborting then still cancels a body being read". Observed: with `timeout.total`, `timeout.attempt` or a
 *    hedge, a transport whose body follows its signal through an abort listener (the way a fetch-like transport
 *    does) has its body read hang for good when the caller aborts after a garbage collection: the signal the layer
 *    made is collected once the call settled (src/core/linked-signal.ts keeps only a `WeakRef` to its abort on the
 *    caller's signal, and a plain `AbortController`'s signal with listeners is not kept alive by anything; Node's
 *    `AbortSignal.any`, which it replaced, keeps a dependent signal with an abort listener alive in
 *    `gcPersistentSignals`). Without a timeout or hedge (the caller's own signal reaches the transport), the same
 *    read is cancelled. (Only the first signal linked to a given caller's signal survives: the caller's listener
 *    closes over the function context of the call that added it.) Real `fetch` held: undici's Request keeps it.
 * 2. SECURITY.md "a URL percent-encoded into text, `https%3A%2F%2F…`, is cut as a plain one". Observed: an encoded
 *    URL that follows another percent-escape (`%20https%3A%2F%2F…`, `%22https…`, `%3Dhttps…`, the way a URL sits in
 *    an encoded sentence, JSON or query) or a digit keeps its userinfo and query in the `RetryExhaustedError`'s message
 *    and its cause's (`debugInfo().recentErrors` names only the class): `ENCODED_URL` (src/core/redact-url.ts) starts a match only where no letter,
 *    digit, `+`, `.` or `-` precedes the scheme, and an escape ends in a hex digit.
 * 3. SECURITY.md "URLs lose their userinfo … a URL percent-encoded into text … is cut as a plain one". Observed: a URL
 *    whose scheme's colon and userinfo are encoded but whose slashes are not (`https%3A//u%3Apw%40h.example/x?key=…`)
 *    loses its query but keeps `u%3Apw%40` (the password): the encoded pass needs `%2F%2F`, the plain one a raw `@`.
 * 4. docs/retry.md "the spaces, tabs and line breaks around a value are no part of it: fetch trims them, so
 *    `Bearer ${key}\n` goes as `Bearer ${key}`". Observed: with a call's headers given as a record or as pairs, the
 *    `fetch` option receives `Bearer k\n` (and ` Bearer k\r\n`) as written: `snapshotHeaders`
 *    (src/http/request/check-request.ts) checks the trimmed value but keeps the untrimmed text. A `Headers`, a
 *    `Request` input, an endpoint's `headers` and ky (all through `Headers`) hand it trimmed. Only the global fetch
 *    trims it on the way; a `fetch` of one's own (a wrapper over `node:http`, a logger, a signer) gets the line break.
 * 5. SECURITY.md "a header with CR/LF/NUL … reject[s] at once with a `TypeError`". Observed: `Bearer k\r\n` is
 *    accepted (now trimmed, as docs/retry.md says): the two documents disagree since 20cade5.
 *
 * Held (plain `it`):
 * - The link's abort reasons and order: the layer's own abort first keeps its reason when the caller aborts later; a
 *   signal already aborted rejects at once with its reason under `timeout.total` and on a hedge; one caller's signal
 *   aborting 20 calls in flight under `timeout.total` (and a hedge sharing it) rejects each with that reason.
 * - Store events through one `kvStore`: delivered while subscribed, none after the last unsubscribe, delivered again
 *   after resubscribing, to two layers on one store each, and to the other layer after one unsubscribes.
 * - A half-open snapshot from a store of one's own dated an hour ahead is adopted once; after the probes close the
 *   host, reading it again does not make it half-open again.
 * - Header values with a control character inside (`x\ny`, `x\n\ty`, a vertical tab) are refused naming the header,
 *   never quoting the value, in a call, as an endpoint's `headers` and in ky's headers.
 * - Encoded URLs at the start of a word, encoded two and three times, in lower case, with a fragment, are cut; a
 *   `message` set to a `URL` loses its userinfo and query.
 * - `durableObjectStore`: a lease the object grants after the store's `timeout` (the probe went on under the local
 *   breaker) is given back with a `/report` naming it.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerSnapshot, type BreakerStore, createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** A full collection, with turns between for finalizers and weak cells to clear. */
async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const settle = <T>(p: Promise<T>): Promise<T | unknown> => p.then(undefined, (error: unknown) => error);

/**
 * A transport whose body errors when its signal aborts, holding nothing of the signal but a listener on it (a
 * fetch-like transport); its first answer (`warm`) is a plain body, for a first call on a new caller's signal.
 */
function listeningTransport() {
  let warm = true;
  const fetch = async (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    if (warm) {
      warm = false;
      return new Response("warm");
    }
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
        c.enqueue(new TextEncoder().encode("a"));
      },
    });
    const signal = init?.signal;
    signal?.addEventListener("abort", () => controller.error(signal.reason), { once: true });
    return new Response(body);
  };
  return { fetch };
}

/** Whether `read` settled within a few real turns after the abort, and how. */
async function outcomeOf(read: Promise<unknown>): Promise<string> {
  let outcome = "still pending";
  read.then(
    () => {
      outcome = "done";
    },
    (error: unknown) => {
      outcome = `rejected: ${(error as Error).message}`;
    },
  );
  for (let i = 0; i < 5; i++) await flush();
  return outcome;
}

const endpoints = [
  { name: "a", url: "https://a.example/v1" },
  { name: "b", url: "https://b.example/v1" },
];

/** Reads the second body on one caller's signal, collects, aborts the caller, says what the read did. */
async function abortAfterSettle(path: "plain" | "total" | "attempt" | "chain" | "hedge"): Promise<string> {
  const { fetch } = listeningTransport();
  const layer = createResilience({
    fetch,
    ...(path === "total" ? { timeout: { total: 60_000 } } : {}),
    ...(path === "attempt" ? { timeout: { attempt: 30_000 } } : {}),
    ...(path === "chain" || path === "hedge"
      ? { fallback: fallback([{ name: "c", endpoints, ...(path === "hedge" ? { hedge: { delay: 10 } } : {}) }]) }
      : {}),
  });
  const app = new AbortController();
  const url = "https://a.example/v1/x";
  await (await layer.fetch(url, { signal: app.signal })).text(); // the first link to `app.signal`
  const response = await layer.fetch(url, { signal: app.signal });
  const reader = response.body?.getReader();
  await reader?.read();
  await collect();
  app.abort(new Error("app shutdown"));
  return reader ? outcomeOf(reader.read()) : "no body";
}

describe("a caller's signal linked by the layer (src/core/linked-signal.ts)", () => {
  it("control: without a timeout or hedge, and with AbortSignal.any, an abort after gc cancels the read", async () => {
    expect(await abortAfterSettle("plain")).toBe("rejected: app shutdown");
    expect(await abortAfterSettle("chain")).toBe("rejected: app shutdown");
    // What the replaced `AbortSignal.any` does with a dependent signal that has a listener.
    const app = new AbortController();
    let errored = "still pending";
    (() => {
      const linked = AbortSignal.any([app.signal, new AbortController().signal]);
      linked.addEventListener("abort", () => {
        errored = `aborted: ${(linked.reason as Error).message}`;
      });
    })();
    await collect();
    app.abort(new Error("app shutdown"));
    expect(errored).toBe("aborted: app shutdown");
  });

  it("after the call settled and a gc, the caller's abort still cancels a body being read (timeouts, hedge)", async () => {
    const outcomes = {
      total: await abortAfterSettle("total"),
      attempt: await abortAfterSettle("attempt"),
      hedge: await abortAfterSettle("hedge"),
    };
    expect(outcomes).toEqual({
      total: "rejected: app shutdown",
      attempt: "rejected: app shutdown",
      hedge: "rejected: app shutdown",
    });
  });

  it("abort reasons and order: the layer's own first, a signal already aborted, many calls on one signal", async () => {
    const clock = new TestClock();
    const deaf = (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
      new Promise<Response>((_, reject) =>
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason), { once: true }),
      );
    // The attempt's own timeout first, the caller's abort afterwards: the call's error is the timeout's.
    const timed = createResilience({ clock, retry: false, timeout: { attempt: 100 }, fetch: deaf });
    const app = new AbortController();
    const first = settle(timed.fetch("https://a.example/x", { signal: app.signal }));
    await clock.advance(100);
    app.abort(new Error("late"));
    expect(((await first) as Error).name).toBe("TimeoutError");
    // Already aborted: its reason, at once, with a timeout and on a hedge.
    const gone = AbortSignal.abort(new Error("before"));
    const total = createResilience({ clock, timeout: { total: 1_000 }, fetch: deaf });
    expect(((await settle(total.fetch("https://a.example/x", { signal: gone }))) as Error).message).toBe("before");
    const hedged = createResilience({
      clock,
      fetch: deaf,
      fallback: fallback([{ name: "c", hedge: { delay: 10 }, endpoints }]),
    });
    expect(((await settle(hedged.fetch("https://a.example/v1/x", { signal: gone }))) as Error).message).toBe("before");
    // Twenty calls in flight under timeout.total and a hedge sharing one signal: each rejects with its reason.
    const shared = new AbortController();
    const calls = [
      ...Array.from({ length: 20 }, (_, i) => settle(total.fetch(`https://a.example/${i}`, { signal: shared.signal }))),
      settle(hedged.fetch("https://a.example/v1/h", { signal: shared.signal })),
    ];
    await clock.advance(20); // the hedge's second endpoint is running too
    shared.abort(new Error("shutdown"));
    const reasons = (await Promise.all(calls)).map((e) => (e as Error).message);
    expect(reasons).toEqual(Array.from({ length: 21 }, () => "shutdown"));
  });
});

describe("store events on demand (src/stores/breaker-store.ts `connect`)", () => {
  it("a kvStore's events reach a layer while it listens, again after resubscribing, and each of two layers", async () => {
    const clock = new TestClock(1_000_000);
    const kv = {
      getWithMetadata: async () => {
        throw new Error("kv down");
      },
      put: async () => {},
    };
    const store = kvStore(kv as never, { clock, refreshInterval: 1_000 });
    const a = createResilience({ clock, store, fetch: async () => new Response("ok") });
    const b = createResilience({ clock, store, fetch: async () => new Response("ok") });
    const got: string[] = [];
    const step = async (label: string, layer = a) => {
      got.push(`-- ${label}`);
      await layer.fetch(`https://h.example/${label}`);
      await flush();
      await clock.advance(1_500);
      await flush();
    };
    const offA = a.on("store", (e) => got.push(`A ${e.operation} ${e.outcome}`));
    await step("subscribed");
    offA();
    offA(); // idempotent
    await step("unsubscribed");
    const offA2 = a.on("store", (e) => got.push(`A2 ${e.operation} ${e.outcome}`));
    await step("again");
    b.on("store", (e) => got.push(`B ${e.operation} ${e.outcome}`));
    await step("both", b);
    offA2();
    await step("only b", b);
    expect(got).toEqual([
      "-- subscribed",
      "A read failed",
      "-- unsubscribed",
      "-- again",
      "A2 read failed",
      "-- both",
      "A2 read failed",
      "B read failed",
      "-- only b",
      "B read failed",
    ]);
  });
});

describe("breakers: late snapshots and late leases", () => {
  it("a half-open snapshot dated an hour ahead is adopted once, not again after the probes close the host", async () => {
    const clock = new TestClock(1_000_000);
    const ahead = {
      state: "half_open",
      failures: 0,
      successes: 0,
      consecutiveFailures: 0,
      consecutiveSuccesses: 0,
      changedAt: 1_000_000 + 3_600_000,
      gen: 5,
      openUntil: null,
      reason: "elsewhere",
    } as unknown as BreakerSnapshot;
    let shown = false;
    const store: BreakerStore = {
      name: "mine",
      publish: () => {},
      // A new, equal object each time (a store that keeps JSON).
      peek: () => (shown ? (JSON.parse(JSON.stringify(ahead)) as BreakerSnapshot) : undefined),
    };
    const layer = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, successThreshold: 1, timeout: 1_000 },
      fetch: async () => new Response("ok"),
    });
    const events: string[] = [];
    layer.on("breaker", (e) => events.push(`${e.from}>${e.to}`));
    await layer.fetch("https://h.example/");
    shown = true;
    for (let i = 0; i < 4; i++) {
      await layer.fetch("https://h.example/");
      await clock.advance(10);
    }
    expect(events).toEqual(["closed>half_open", "half_open>closed"]);
  });

  it("durableObjectStore gives back a lease the object grants after the store's timeout", async () => {
    const clock = new TestClock(1_000_000);
    const asked: string[] = [];
    let answerProbe: ((r: Response) => void) | undefined;
    const namespace = {
      idFromName: (name: string) => name,
      get: () => ({
        fetch: async (url: string, init: RequestInit) => {
          const path = new URL(url).pathname;
          const body = JSON.parse(String(init.body)) as { probe?: { lease: number } };
          asked.push(`${path}${body.probe ? ` lease ${body.probe.lease}` : ""}`);
          const verdict = { state: "half_open", gen: 3, openUntil: null, reason: null, lease: null };
          if (path === "/probe") return new Promise<Response>((resolve) => (answerProbe = resolve));
          return Response.json({ ...verdict, state: "closed" });
        },
      }),
    };
    const store = durableObjectStore(namespace as never, { clock, timeout: 250 });
    let status = 503;
    const layer = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000 },
      fetch: async () => new Response("x", { status }),
    });
    await layer.fetch("https://h.example/");
    await clock.advance(1_000);
    status = 200;
    const probe = settle(layer.fetch("https://h.example/"));
    await flush();
    expect(asked).toContain("/probe");
    await clock.advance(250); // the object's answer is late: the local breaker decides
    expect(((await probe) as Response).status).toBe(200);
    answerProbe?.(Response.json({ state: "half_open", gen: 3, openUntil: null, reason: null, lease: 1_030_000 }));
    await flush();
    await flush();
    expect(asked).toContain("/report lease 1030000");
  });
});

describe("header values: spaces around trimmed, control characters inside refused", () => {
  const recording = () => {
    const seen: string[] = [];
    const fetch = async (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      const headers = init?.headers;
      const list: Array<[string, string]> =
        headers instanceof Headers
          ? [...headers]
          : Array.isArray(headers)
            ? (headers as Array<[string, string]>)
            : Object.entries(headers ?? {});
      for (const [name, value] of list) if (name.toLowerCase() === "authorization") seen.push(value);
      return new Response("ok");
    };
    return { fetch, seen };
  };

  it("`Bearer <key>\\n` goes as `Bearer <key>` with a call's headers as a record or as pairs", async () => {
    const { fetch, seen } = recording();
    const layer = createResilience({ fetch });
    await layer.fetch("https://a.example/x", { headers: { authorization: "Bearer k\n" } });
    await layer.fetch("https://a.example/x", { headers: [["authorization", " Bearer k\r\n"]] });
    expect(seen).toEqual(["Bearer k", "Bearer k"]);
  });

  it("a Request input, a Headers, an endpoint's headers and ky hand the transport the value trimmed", async () => {
    const { fetch, seen } = recording();
    const layer = createResilience({ fetch });
    await layer.fetch(new Request("https://a.example/x", { headers: { authorization: "Bearer k\n" } }));
    await layer.fetch("https://a.example/x", { headers: new Headers({ authorization: "\tBearer k " }) });
    await createClient({ resilience: layer }).get("https://a.example/x", {
      headers: { authorization: "Bearer k\r\n" },
    });
    const chained = createResilience({
      fetch,
      fallback: fallback([
        {
          name: "c",
          endpoints: [{ name: "a", url: "https://a.example/v1", headers: { authorization: "Bearer k\t" } }],
        },
      ]),
    });
    await chained.fetch("https://a.example/v1/x");
    expect(seen).toEqual(["Bearer k", "Bearer k", "Bearer k", "Bearer k"]);
  });

  // Made exact in SECURITY.md instead: a header with CR/LF/NUL inside its value is refused; around it, trimmed.
  it("SECURITY.md: a header with CR/LF inside its value is refused at once with a TypeError; around it, trimmed", async () => {
    const layer = createResilience({ fetch: async () => new Response("ok") });
    const inside = await settle(layer.fetch("https://a.example/x", { headers: { authorization: "Bearer\r\nk" } }));
    expect(inside).toBeInstanceOf(TypeError);
    const around = await settle(layer.fetch("https://a.example/x", { headers: { authorization: "Bearer k\r\n" } }));
    expect(around).toBeInstanceOf(Response);
  });

  it("a control character inside a value is refused, naming the header, never quoting it, on every path", async () => {
    const layer = createResilience({ fetch: async () => new Response("ok") });
    for (const value of ["sk-SECRET\ny", "sk-SECRET\n\ty", "\vsk-SECRET", "sk-SECRET\v"]) {
      const error = (await settle(layer.fetch("https://a.example/x", { headers: { authorization: value } }))) as Error;
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toContain('"authorization"');
      expect(error.message).not.toContain("SECRET");
    }
    let config: unknown;
    try {
      fallback([
        { name: "c", endpoints: [{ name: "a", url: "https://a.example", headers: { "x-key": "sk-SECRET\ny" } }] },
      ]);
    } catch (error) {
      config = error;
    }
    expect(config).toBeInstanceOf(Error);
    expect(String(config)).not.toContain("SECRET");
    const ky = createClient({ resilience: layer });
    let kyError: unknown;
    try {
      await ky.get("https://a.example/x", { headers: { authorization: "sk-SECRET\ny" } });
    } catch (error) {
      kyError = error;
    }
    expect(kyError).toBeInstanceOf(TypeError);
    expect(String(kyError)).toContain('"authorization"');
    expect(String(kyError)).not.toContain("SECRET");
  });
});

describe("percent-encoded URLs cut from error text", () => {
  /** What a failing transport's error text becomes: the error's message, its cause's, and debugInfo's last. */
  async function shown(text: string): Promise<string> {
    const layer = createResilience({
      breaker: false,
      retry: { maxAttempts: 1 },
      fetch: async () => {
        throw new TypeError(text);
      },
    });
    const error = (await settle(layer.fetch("https://a.example/x"))) as Error & { cause?: Error };
    return [error.message, error.cause?.message, JSON.stringify(layer.debugInfo().recentErrors)].join(" | ");
  }

  it("an encoded URL after another escape or a digit is cut (an encoded sentence, JSON or query)", async () => {
    const texts = [
      "error%20fetching%20https%3A%2F%2Fu%3Apw1%40h.example%2Fx%3Fkey%3DSECRET1",
      "data=%7B%22cb%22%3A%22https%3A%2F%2Fu%3Apw2%40h.example%2Fx%3Fkey%3DSECRET2%22%7D",
      "state=a%3D1%26next%3Dhttps%3A%2F%2Fu%3Apw3%40h.example%2Fx%3Fkey%3DSECRET3",
      "x 1https%3A%2F%2Fu%3Apw4%40h.example%3Fkey%3DSECRET4",
    ];
    const leaks: string[] = [];
    for (const text of texts) {
      const found = /SECRET\d|pw\d/.exec(await shown(text));
      if (found) leaks.push(found[0]);
    }
    expect(leaks).toEqual([]);
  });

  it("a URL with its scheme's colon and userinfo encoded, its slashes not, loses its userinfo", async () => {
    expect(await shown("x https%3A//u%3Apw5%40h.example/x?key=SECRET5")).not.toMatch(/pw5/);
  });

  it("encoded once, twice, three times, in lower case, with a fragment: cut; a message set to a URL too", async () => {
    const texts = [
      "see https%3A%2F%2Fu%3Apw1%40h.example%2Fx%3Fkey%3DSECRET1 ok",
      "x https%253A%252F%252Fu%253Apw2%2540h.example%252Fx%253Fkey%253DSECRET2",
      "x https%25253A%25252F%25252Fu%25253Apw3%252540h.example%25252Fx%25253Fkey%25253DSECRET3",
      "x HTTPS%3a%2f%2fh.example%2fx%3fapi_key%3dSECRET4",
      "x https%3A%2F%2Fh.example%2Fx%23access_token%3DSECRET5",
      "(https%3A%2F%2Fu%3Apw6%40h.example%2Fx%3Fkey%3DSECRET6)",
    ];
    for (const text of texts) expect(await shown(text)).not.toMatch(/SECRET\d|pw\d/);
    const layer = createResilience({
      breaker: false,
      retry: { maxAttempts: 1 },
      fetch: async () => {
        const error = new Error("x");
        (error as unknown as { message: unknown }).message = new URL("https://u:pw7@h.example/x?key=SECRET7");
        throw error;
      },
    });
    const error = (await settle(layer.fetch("https://a.example/x"))) as Error & { cause?: Error };
    const all = [error.message, String(error.cause?.message), JSON.stringify(layer.debugInfo().recentErrors)].join();
    expect(all).toContain("h.example");
    expect(all).not.toMatch(/SECRET7|pw7/);
  });
});
