/**
 * Outside-in attack on the fixes made on main in the last hour (696447b: a chain stops where the send meets a
 * store's failure; a store's TypeError is not the caller's; each endpoint's TimeoutError counts its attempts;
 * an open breaker past maxHosts stays until a new host needs the room; the probe's lease asked with a signal).
 * Docs: docs/breakers.md ("what they throw fails the call, which `health()` counts as a failed call (whatever
 * the error's class): it rejects with `RetryExhaustedError`, the store's error as its `cause` (`attempts` 0 when
 * it threw before anything was sent), and a chain stops at the endpoint that met it (`FallbackExhaustedError`,
 * "stopped after …: the breaker store threw")"; "the last call out of each host past the bound evicts it unless
 * its breaker is open or half-open (that one goes when a new host needs the room): each call holds its host's
 * breaker and bulkhead, so a host never has two"), docs/fallback.md ("or a breaker store of your own threw,
 * which fails the call even when an earlier endpoint answered; an endpoint's `TimeoutError` there counts that
 * endpoint's `attempts`"), docs/retry.md (the error table: `RetryExhaustedError` "or a breaker store of your
 * own threw"; `TimeoutError` `attempts` "the call's; in a chain's `errors`, that endpoint's"),
 * docs/cloudflare.md ("`502` when no endpoint answered otherwise, or a breaker store of your own threw, which
 * fails the call whatever the upstream answered"), SECURITY.md (Memory stays bounded: "unless its breaker is
 * open, which goes when a new host needs the room"), CHANGELOG (the fixes' entries).
 * How: `createResilience`, `memoryStore` and the error classes (root), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky), `resilientProxy` and `failureResponse` (./cloudflare), `FallbackChain`
 * (./policies), `TestClock` (./testing); scripted transports; breaker stores of one's own that throw from
 * `peek`, `publish` or `record` (always, for one host, once, a `TypeError`, an error of the library's classes).
 * Paths: plain call, fixed and hedged chains (the store throwing for the hedge's host while the first runs, or
 * after the first's 503), `validate` turning an answer down, a `respond` answer, a `transform` sending the call
 * to another host (and away from the failing one), a degradation rewrite, a `Request` input with a body, ky,
 * the Worker proxy (plain and chain routes), redirects inside attempts, `timeout.total` in a (hedged) chain,
 * bursts of hosts past `maxHosts` with a bulkhead, half-open probes past the bound.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a store's failure is the call's RetryExhaustedError whatever class it threw, and the proxy's 502):
 * 1. docs/breakers.md "what they throw fails the call, …: it rejects with `RetryExhaustedError`, the store's
 *    error as its `cause`" (docs/retry.md's table likewise). Observed: a store that throws one of the library's
 *    own errors (one guarding its backend with the library's policies: a `CircuitOpenError` from a named
 *    breaker, a `TimeoutError`, a `FallbackChain`'s `FallbackExhaustedError`) makes the plain call reject with
 *    that error itself, as if the call's host were open / had timed out / were a chain (and the store's
 *    `TimeoutError` gets its `attempts` overwritten). Cause: `settleError` (src/http/resilient-fetch.ts) returns
 *    a `CircuitOpenError`, `BulkheadRejectedError`, `TimeoutError` or a `FallbackExhaustedError` cause as it is
 *    before the `isStoreFailure` check, which only guards the `TypeError` branch.
 * 2. Same sentence, for a store's `FallbackChain` (the chain over two replicas failed): the call rejects with
 *    the store's own `FallbackExhaustedError` ("redis-replicas"), not a `RetryExhaustedError`. Same cause.
 * 3. docs/cloudflare.md "`502` when no endpoint answered otherwise, or a breaker store of your own threw,
 *    which fails the call whatever the upstream answered". Observed: a store whose `record` throws a
 *    `CircuitOpenError` is answered 503 with `Retry-After`, one that throws a `TimeoutError` 504, on a plain
 *    route and a chain route alike ([503, 503, 504, 504]). Cause: 1 for the plain route; for a chain, the
 *    store's error is the stopping endpoint's entry in `errors`, which `failureResponse`
 *    (src/cloudflare/failure-response.ts) judges by class (every error open → 503, timed out → 504).
 *
 * Held (plain `it`):
 * - Hedged chain, the hedge's host's `peek` throwing while the first runs: "stopped after "s": the breaker
 *   store threw", `errors` only s, the first aborted; the hedge answering while its `record` throws, with the
 *   first still running or after the first's 503 (released).
 * - `validate` turning p's 200 down, then s's store throwing; a `respond` 503 then s's `record` throwing (the
 *   503 cancelled); a flaky `peek` throwing while the chain looked (no stop, p answered) or at the send (stopped
 *   after p, nothing sent); a `transform` to a host whose store throws (stopped there) and away from the failing
 *   host (answered); a degradation rewrite (rewritten body sent), a keyed `Request` POST and ky: the same
 *   `FallbackExhaustedError`; p skipped for its open breaker then s's store throwing: `failureResponse` 502.
 * - A store's `TypeError`: `RetryExhaustedError`, `attempts` 0, the store's error its cause, counted by
 *   `debugInfo().totals` and the error rate, a `request` event with `RetryExhaustedError`; through ky too; a
 *   `record` `TypeError` after an answer: `attempts` 1, the answer cancelled. The caller's own `TypeError`s (a
 *   header with a newline, GET/HEAD with a body, `user:pass@`) rejected at once, the store untouched, nothing
 *   counted. A store's `CircuitOpenError` or `TimeoutError` is counted as a failed call.
 * - Per-endpoint `TimeoutError`s: an endpoint whose retry was refused by its breaker that opened counts 1;
 *   a redirect followed inside each attempt counts attempts, not hops; `timeout.total` firing in s (fixed and
 *   hedged) rejects with the call's `TimeoutError` counting every attempt (4).
 * - Eviction: bursts of hosts past `maxHosts: 1` with `maxConcurrent: 1` never had two attempts out to one
 *   host; an open host past the bound stays open (refusing) until its probe, and its probe's outcome is heard
 *   (closed → evicted by its last call and sent again; failed → open and refusing); an open host past the bound
 *   survives `health()`, refused calls and time, and goes when a new host comes.
 * - The probe's lease: a `Request` input's own signal and ky's reach `acquireProbe`, aborted with the caller.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { failureResponse, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerStore,
  CircuitOpenError,
  createResilience,
  type FallbackExhaustedError,
  isCircuitOpenError,
  isFallbackExhaustedError,
  isRetryExhaustedError,
  isTimeoutError,
  memoryStore,
  type RetryExhaustedError,
  TimeoutError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

afterEach(() => {
  vi.restoreAllMocks();
});

/** The rejection of `p` (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

/** A breaker store of one's own: `memoryStore`'s contract, with what a test replaces. */
function ownStore(over: Partial<BreakerStore>): BreakerStore {
  return { name: "own", publish() {}, peek: () => undefined, ...over } as BreakerStore;
}

/** A transport that waits for its attempt's signal and rejects with its reason. */
const hangUntilAborted = (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
  new Promise((_, reject) => {
    const signal = init?.signal;
    signal?.addEventListener("abort", () => reject(signal.reason));
  });

/** A body that records whether it was cancelled or read to its end. */
function watchedBody(size = 100_000) {
  const state = { cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array(size));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { state, stream };
}

const chain = (options: { hedge?: number; second?: Record<string, unknown>; first?: Record<string, unknown> } = {}) =>
  fallback([
    {
      name: "c",
      ...(options.hedge === undefined ? {} : { hedge: { delay: options.hedge } }),
      endpoints: [
        { name: "p", url: "https://p.example/v1", ...options.first },
        { name: "s", url: "https://s.example/v1", ...options.second },
      ],
    },
  ]);

const peekThrowsFor = (host: string, thrown: unknown = new Error("store down")) =>
  ownStore({
    peek: (key: string) => {
      if (key === host) throw thrown;
      return undefined;
    },
  });

describe("a store that throws one of the library's own errors", () => {
  // A store of one's own that guards its backend with the library's own policies (a named breaker through
  // `execute`, a `FallbackChain` over two replicas, a `timeout`) throws the library's errors.
  const libraryErrors = () => [new CircuitOpenError("redis", Date.now() + 60_000), new TimeoutError("attempt", 50)];

  it("plain call: RetryExhaustedError, the store's error its cause", async () => {
    for (const thrown of libraryErrors()) {
      let sent = 0;
      const r = createResilience({
        fetch: async () => {
          sent++;
          return new Response("ok");
        },
        store: ownStore({
          peek: () => {
            throw thrown;
          },
        }),
      });
      const error = await rejection(r.fetch("https://a.example/x"));
      expect(sent).toBe(0);
      // docs/breakers.md: "it rejects with `RetryExhaustedError`, the store's error as its `cause`".
      expect(isRetryExhaustedError(error)).toBe(true);
      expect((error as RetryExhaustedError).cause).toBe(thrown);
    }
  });

  it("a store's FallbackChain that failed: RetryExhaustedError, not that chain's error", async () => {
    const replicas = new FallbackChain<string, unknown>("redis-replicas");
    replicas.add(
      () => {
        throw new Error("primary down");
      },
      { name: "primary" },
    );
    let thrown: unknown;
    try {
      await replicas.execute("k");
    } catch (error) {
      thrown = error;
    }
    const r = createResilience({
      fetch: async () => new Response("ok"),
      store: ownStore({
        peek: () => {
          throw thrown;
        },
      }),
    });
    const error = await rejection(r.fetch("https://a.example/x"));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as RetryExhaustedError).cause).toBe(thrown);
  });

  it("the Worker proxy answers 502 when such a store throws, whatever the upstream answered", async () => {
    const statuses: number[] = [];
    for (const thrown of libraryErrors()) {
      const proxy = resilientProxy({
        routes: [
          { path: "/v1", upstream: "https://up.example/v1" },
          {
            path: "/chat",
            chain: {
              name: "chat",
              endpoints: [
                { name: "p", url: "https://p.example/v1" },
                { name: "s", url: "https://s.example/v1" },
              ],
            },
          },
        ],
        resilience: { fetch: async () => new Response("ok"), retry: false },
        store: () =>
          ownStore({
            record: () => {
              throw thrown;
            },
          }),
      });
      for (const path of ["/v1/x", "/chat/x"]) {
        const res = await proxy.fetch(new Request(`https://worker.example${path}`), {}, { waitUntil: () => {} });
        statuses.push(res.status);
      }
    }
    // docs/cloudflare.md: "`502` when no endpoint answered otherwise, or a breaker store of your own threw,
    // which fails the call whatever the upstream answered". Observed: [503, 503, 504, 504].
    expect(statuses).toEqual([502, 502, 502, 502]);
  });
});

describe("held: a store's error of the library's classes is counted as a failed call", () => {
  it("health() and debugInfo() count it, whatever its class", async () => {
    for (const thrown of [new CircuitOpenError("redis", Date.now() + 60_000), new TimeoutError("attempt", 50)]) {
      const r = createResilience({
        fetch: async () => new Response("ok"),
        store: ownStore({
          peek: () => {
            throw thrown;
          },
        }),
      });
      await rejection(r.fetch("https://a.example/x"));
      expect(r.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
    }
  });
});

describe("held: a chain stops where the send meets the store's failure", () => {
  it("hedged: the hedge's host's store throws while the first runs: stopped after the hedge, the first aborted", async () => {
    const clock = new TestClock();
    const aborted: string[] = [];
    const r = createResilience({
      clock,
      retry: false,
      fetch: (input, init) =>
        new Promise((_, reject) => {
          init?.signal?.addEventListener("abort", () => {
            aborted.push(String(input));
            reject(init.signal?.reason);
          });
        }),
      store: peekThrowsFor("s.example"),
      fallback: chain({ hedge: 100 }),
    });
    const error = await rejection(clock.run(r.fetch("https://p.example/v1/x")));
    expect(isFallbackExhaustedError(error)).toBe(true);
    expect((error as Error).message).toContain('stopped after "s": the breaker store threw');
    expect(Object.keys((error as FallbackExhaustedError).errors)).toEqual(["s"]);
    expect(aborted).toEqual(["https://p.example/v1/x"]);
  });
});

const rejectAll = {
  "~standard": { version: 1 as const, vendor: "t", validate: () => ({ issues: [{ message: "no" }] }) },
};

describe("held: a store's failure stops the chain on every path", () => {
  it("validate turns p's 200 down, then s's store throws: stopped after s, p's answer released", async () => {
    const sent: string[] = [];
    const r = createResilience({
      retry: false,
      fetch: async (input) => {
        sent.push(String(input));
        return Response.json({ job: 1 });
      },
      store: peekThrowsFor("s.example"),
      fallback: chain({ first: { validate: rejectAll } }),
    });
    const error = await rejection(r.fetch("https://p.example/v1/x"));
    expect(isFallbackExhaustedError(error)).toBe(true);
    expect((error as Error).message).toContain('stopped after "s": the breaker store threw');
    expect(sent).toEqual(["https://p.example/v1/x"]);
  });

  it("a respond that answered 503, then s's store record throws: stopped after s, the 503 released", async () => {
    const cached = watchedBody();
    const r = createResilience({
      retry: false,
      fetch: async (input) => new Response("busy", { status: String(input).includes("s.example") ? 200 : 503 }),
      store: ownStore({
        record: (key: string) => {
          if (key === "s.example") throw new Error("record broke");
        },
      }),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://p.example/v1" },
            { name: "cache", respond: () => new Response(cached.stream, { status: 503 }) },
            { name: "s", url: "https://s.example/v1" },
          ],
        },
      ]),
    });
    const error = await rejection(r.fetch("https://p.example/v1/x"));
    expect(isFallbackExhaustedError(error)).toBe(true);
    expect((error as Error).message).toContain('stopped after "s": the breaker store threw');
    await vi.waitFor(() => expect(cached.state.cancelled).toBe(true), { timeout: 1500, interval: 20 });
  });

  it("hedged: the hedge answers but its record throws while p still runs; and after p's 503", async () => {
    for (const pAnswers503 of [false, true]) {
      const clock = new TestClock();
      const p = watchedBody();
      const r = createResilience({
        clock,
        retry: false,
        fetch: (input, init) => {
          if (String(input).startsWith("https://s.example")) return Promise.resolve(new Response("ok"));
          if (pAnswers503) return Promise.resolve(new Response(p.stream, { status: 503 }));
          return hangUntilAborted(input, init);
        },
        store: ownStore({
          record: (key: string) => {
            if (key === "s.example") throw new Error("record broke");
          },
        }),
        fallback: chain({ hedge: 100 }),
      });
      const error = await rejection(clock.run(r.fetch("https://p.example/v1/x")));
      expect(isFallbackExhaustedError(error)).toBe(true);
      expect((error as Error).message).toContain('stopped after "s": the breaker store threw');
      if (pAnswers503) await vi.waitFor(() => expect(p.state.cancelled).toBe(true), { timeout: 1500, interval: 20 });
    }
  });

  it("a flaky peek: thrown while the chain looked, not at the send, is no stop; thrown at the send, it stops", async () => {
    for (const failAt of [1, 2]) {
      let peeks = 0;
      const sent: string[] = [];
      const r = createResilience({
        retry: false,
        fetch: async (input) => {
          sent.push(String(input));
          return new Response("ok");
        },
        store: ownStore({
          peek: (key: string) => {
            if (key === "p.example" && ++peeks === failAt) throw new Error("blip");
            return undefined;
          },
        }),
        fallback: chain(),
      });
      const call = r.fetch("https://p.example/v1/x");
      if (failAt === 1) {
        expect((await call).status).toBe(200);
        expect(sent).toEqual(["https://p.example/v1/x"]);
      } else {
        const error = await rejection(call);
        expect((error as Error).message).toContain('stopped after "p": the breaker store threw');
        expect(sent).toEqual([]);
      }
    }
  });

  it("a transform sends the call to a host whose store throws: stopped there; away from it: answered", async () => {
    for (const toBad of [true, false]) {
      const sent: string[] = [];
      const r = createResilience({
        retry: false,
        fetch: async (input) => {
          sent.push(String(input));
          return new Response("ok");
        },
        store: peekThrowsFor(toBad ? "t.example" : "p.example"),
        fallback: chain({
          first: { transform: (req: { url: string }) => ({ ...req, url: "https://t.example/v1/x" }) },
        }),
      });
      const call = r.fetch("https://p.example/v1/x");
      if (toBad) {
        const error = await rejection(call);
        expect(isFallbackExhaustedError(error)).toBe(true);
        expect((error as Error).message).toContain('stopped after "p": the breaker store threw');
        expect(sent).toEqual([]);
      } else {
        expect((await call).status).toBe(200);
        expect(sent).toEqual(["https://t.example/v1/x"]);
      }
    }
  });

  it("a degradation rewrite, a Request input with a body, and ky: the same FallbackExhaustedError", async () => {
    const bodies: string[] = [];
    const options = () => ({
      retry: false as const,
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
        bodies.push(input instanceof Request ? await input.text() : String(init?.body ?? ""));
        return new Response("busy", { status: 503 });
      },
      store: peekThrowsFor("s.example"),
      fallback: chain(),
    });
    const rewritten = createResilience({
      ...options(),
      degradation: degradation({}),
    });
    rewritten.degradation.setLevel("medium");
    const errors = [
      await rejection(
        rewritten.fetch("https://p.example/v1/x", {
          method: "PUT",
          body: JSON.stringify({ steps: 50 }),
        }),
      ),
      await rejection(
        createResilience(options()).fetch(
          new Request("https://p.example/v1/x", {
            method: "POST",
            body: '{"a":1}',
            headers: { "idempotency-key": "k1" },
          }),
        ),
      ),
      await rejection(createClient({ resilience: options() }).get("https://p.example/v1/x")),
    ];
    expect(JSON.parse(bodies[0] as string).steps).toBeLessThan(50);
    for (const error of errors) {
      expect(isFallbackExhaustedError(error)).toBe(true);
      expect((error as Error).message).toContain('stopped after "s": the breaker store threw');
    }
  });

  it("p skipped for its open breaker, then s's store throws: failureResponse and the proxy answer 502", async () => {
    const clock = new TestClock();
    const store = ownStore({
      peek: (key: string) => {
        if (key === "s.example") throw new Error("store down");
        if (key === "p.example") return { state: "open", gen: 1, changedAt: 0, openUntil: 60_000 } as never;
        return undefined;
      },
    });
    const r = createResilience({
      clock,
      retry: false,
      fetch: async () => new Response("ok"),
      store,
      fallback: chain(),
    });
    const error = await rejection(r.fetch("https://p.example/v1/x"));
    expect(isFallbackExhaustedError(error)).toBe(true);
    const errors = (error as FallbackExhaustedError).errors;
    expect(isCircuitOpenError(errors.p)).toBe(true);
    expect((error as Error).message).toContain('stopped after "s": the breaker store threw');
    expect(failureResponse(error, clock.now()).status).toBe(502);
  });
});

describe("held: a store's TypeError is no caller's mistake", () => {
  it("plain call: RetryExhaustedError (attempts 0, cause the store's), counted, a request event; ky the same", async () => {
    const thrown = new TypeError("store client not ready");
    const seen: { error: string | undefined; attempts: number; outcome: string }[] = [];
    const r = createResilience({
      fetch: async () => new Response("ok"),
      store: ownStore({
        peek: () => {
          throw thrown;
        },
      }),
    });
    r.on("request", (e) => seen.push({ error: e.error, attempts: e.attempts, outcome: e.outcome }));
    const error = await rejection(r.fetch("https://a.example/x"));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as RetryExhaustedError).attempts).toBe(0);
    expect((error as RetryExhaustedError).cause).toBe(thrown);
    expect(r.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
    expect(r.health().errorRate).toBeGreaterThan(0);
    expect(seen).toEqual([{ error: "RetryExhaustedError", attempts: 0, outcome: "error" }]);
    const viaKy = await rejection(createClient({ resilience: r }).get("https://a.example/x"));
    expect(isRetryExhaustedError(viaKy)).toBe(true);
    expect(r.debugInfo().totals).toEqual({ calls: 2, failures: 2 });
  });

  it("a record TypeError after an answer: RetryExhaustedError, attempts 1, the answer released", async () => {
    const body = watchedBody();
    const thrown = new TypeError("record broke");
    const r = createResilience({
      retry: false,
      fetch: async () => new Response(body.stream),
      store: ownStore({
        record: () => {
          throw thrown;
        },
      }),
    });
    const error = await rejection(r.fetch("https://a.example/x"));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as RetryExhaustedError).attempts).toBe(1);
    expect((error as RetryExhaustedError).cause).toBe(thrown);
    await vi.waitFor(() => expect(body.state.cancelled).toBe(true), { timeout: 1500, interval: 20 });
  });

  it("the caller's own TypeErrors are still rejected at once, the store untouched, nothing counted", async () => {
    let peeks = 0;
    let sent = 0;
    const r = createResilience({
      fetch: async () => {
        sent++;
        return new Response("ok");
      },
      store: ownStore({
        peek: () => {
          peeks++;
          throw new TypeError("store");
        },
      }),
    });
    const calls: (() => Promise<Response>)[] = [
      () => r.fetch("https://a.example/x", { headers: { "x-bad": "a\nb" } }),
      () => r.fetch("https://a.example/x", { method: "GET", body: "x" }),
      () => r.fetch(new Request("https://a.example/x"), { method: "HEAD", body: "x" }),
      () => r.fetch("https://u:p@a.example/x"),
    ];
    for (const call of calls) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(TypeError);
      expect(isRetryExhaustedError(error)).toBe(false);
    }
    expect(peeks).toBe(0);
    expect(sent).toBe(0);
    expect(r.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
  });
});

describe("held: each endpoint's TimeoutError counts its own attempts; the call's error the call's", () => {
  it("p: one attempt timed out, its retry refused by the breaker that opened; s: two attempts timed out", async () => {
    const clock = new TestClock();
    const r = createResilience({
      clock,
      fetch: hangUntilAborted,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      timeout: { attempt: 100 },
      breaker: { failureThreshold: 1 },
      fallback: chain(),
    });
    // s's breaker opens at its first timeout too: its retry is refused, so it made one attempt as well.
    const error = await rejection(clock.run(r.fetch("https://p.example/v1/x")));
    expect(isFallbackExhaustedError(error)).toBe(true);
    const errors = (error as FallbackExhaustedError).errors;
    expect(isTimeoutError(errors.p)).toBe(true);
    expect((errors.p as TimeoutError).attempts).toBe(1);
    expect(isTimeoutError(errors.s)).toBe(true);
    expect((errors.s as TimeoutError).attempts).toBe(1);
  });

  it("timeout.total fires in s after p's two timed-out attempts: the call's TimeoutError counts three", async () => {
    for (const hedge of [undefined, 1_000]) {
      const clock = new TestClock();
      let n = 0;
      const r = createResilience({
        clock,
        fetch: (input, init) => {
          n++;
          return hangUntilAborted(input, init);
        },
        retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
        timeout: { attempt: 100, total: 400 },
        fallback: chain(hedge === undefined ? {} : { hedge }),
      });
      const error = await rejection(clock.run(r.fetch("https://p.example/v1/x")));
      expect(isTimeoutError(error)).toBe(true);
      expect((error as TimeoutError).phase).toBe("total");
      expect((error as TimeoutError).attempts).toBe(n);
      expect(n).toBe(4);
    }
  });

  it("a redirect followed inside each attempt: the endpoint's TimeoutError counts attempts, not hops", async () => {
    const clock = new TestClock();
    const r = createResilience({
      clock,
      fetch: (input, init) =>
        String(input).endsWith("/hop")
          ? hangUntilAborted(input, init)
          : Promise.resolve(new Response(null, { status: 302, headers: { location: "https://h.example/hop" } })),
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      timeout: { attempt: 100 },
      fallback: chain(),
    });
    const error = await rejection(clock.run(r.fetch("https://p.example/v1/x")));
    expect(isFallbackExhaustedError(error)).toBe(true);
    for (const name of ["p", "s"]) {
      const timeout = (error as FallbackExhaustedError).errors[name] as TimeoutError;
      expect(isTimeoutError(timeout)).toBe(true);
      expect(timeout.attempts).toBe(2);
    }
  });
});

describe("held: eviction past maxHosts around open breakers, bulkheads and probes", () => {
  it("a burst past maxHosts never lets more than maxConcurrent attempts out to one host", async () => {
    const clock = new TestClock();
    const inFlight = new Map<string, number>();
    let most = 0;
    const pending: (() => void)[] = [];
    const r = createResilience({
      clock,
      retry: false,
      breaker: { maxHosts: 1, failureThreshold: 1, timeout: 30_000 },
      bulkhead: { maxConcurrent: 1, maxQueue: 10 },
      fetch: (input) => {
        const host = new URL(String(input)).host;
        inFlight.set(host, (inFlight.get(host) ?? 0) + 1);
        most = Math.max(most, inFlight.get(host) ?? 0);
        return new Promise<Response>((resolve) => {
          pending.push(() => {
            inFlight.set(host, (inFlight.get(host) ?? 1) - 1);
            resolve(new Response("ok", { status: host === "down.example" ? 503 : 200 }));
          });
        });
      },
    });
    const calls: Promise<Response | unknown>[] = [];
    for (let round = 0; round < 3; round++) {
      for (const host of ["a.example", "b.example", "down.example", "a.example", "c.example", "b.example"]) {
        calls.push(r.fetch(`https://${host}/x`).catch((e: unknown) => e));
      }
      await flush();
      // Settle one at a time, letting queued calls in and hosts past the bound go.
      while (pending.length > 0) {
        pending.shift()?.();
        await flush();
      }
    }
    await Promise.all(calls);
    expect(most).toBe(1);
    expect(pending).toEqual([]);
  });

  it("an open host past the bound stays open until its probe: the probe's outcome is heard either way", async () => {
    for (const recovers of [true, false]) {
      const clock = new TestClock();
      let downAnswers = 503;
      const sent: string[] = [];
      const r = createResilience({
        clock,
        retry: false,
        breaker: { maxHosts: 1, failureThreshold: 1, successThreshold: 1, timeout: 30_000 },
        fetch: (input) => {
          const url = String(input);
          sent.push(url);
          if (url.startsWith("https://long.example")) return new Promise<Response>(() => {});
          return Promise.resolve(new Response("x", { status: downAnswers }));
        },
      });
      const controller = new AbortController();
      const long = r.fetch("https://long.example/s", { signal: controller.signal });
      await flush();
      expect((await r.fetch("https://down.example/1")).status).toBe(503);
      expect(await rejection(r.fetch("https://down.example/2"))).toBeInstanceOf(CircuitOpenError);
      await clock.advance(30_000);
      if (recovers) downAnswers = 200;
      expect((await r.fetch("https://down.example/probe")).status).toBe(downAnswers);
      if (recovers) {
        // Closed by its probe, past the bound: its last call out evicted it.
        expect(Object.keys(r.health().breakers)).toEqual(["long.example"]);
        expect((await r.fetch("https://down.example/3")).status).toBe(200);
      } else {
        expect(r.health().breakers["down.example"]?.state).toBe("open");
        expect(await rejection(r.fetch("https://down.example/3"))).toBeInstanceOf(CircuitOpenError);
      }
      controller.abort();
      await rejection(long);
      expect(sent.filter((u) => u.includes("down.example"))).toEqual(
        recovers
          ? ["https://down.example/1", "https://down.example/probe", "https://down.example/3"]
          : ["https://down.example/1", "https://down.example/probe"],
      );
    }
  });

  it("an open host past the bound goes only when a new host needs the room", async () => {
    const clock = new TestClock();
    const r = createResilience({
      clock,
      retry: false,
      breaker: { maxHosts: 1, failureThreshold: 1, timeout: 30_000 },
      fetch: (input) => {
        const url = String(input);
        if (url.startsWith("https://long.example")) return new Promise<Response>(() => {});
        return Promise.resolve(new Response("x", { status: url.startsWith("https://down.example") ? 503 : 200 }));
      },
    });
    const controller = new AbortController();
    const long = r.fetch("https://long.example/s", { signal: controller.signal });
    await flush();
    await r.fetch("https://down.example/1");
    // health(), a refused call and time passing leave it in place.
    r.health();
    await rejection(r.fetch("https://down.example/2"));
    await clock.advance(10_000);
    expect(Object.keys(r.health().breakers).sort()).toEqual(["down.example", "long.example"]);
    await r.fetch("https://new.example/1");
    expect(Object.keys(r.health().breakers)).toEqual(["long.example"]);
    controller.abort();
    await rejection(long);
  });
});

describe("held: the probe's lease is asked with the caller's signal", () => {
  it("a Request input's own signal, and ky's, reach acquireProbe and abort with the caller", async () => {
    const clock = new TestClock();
    const signals: (AbortSignal | undefined)[] = [];
    const store = memoryStore();
    const own: BreakerStore = {
      name: "own",
      publish: (k, s) => store.publish(k, s),
      peek: (k, n) => store.peek(k, n),
      acquireProbe: (_key: string, _now: number, signal?: AbortSignal) => {
        signals.push(signal);
        return new Promise<boolean | string | undefined>(() => {});
      },
    };
    let answer = 503;
    const r = createResilience({
      clock,
      retry: false,
      store: own,
      breaker: { failureThreshold: 1, timeout: 1_000 },
      fetch: async () => new Response("x", { status: answer }),
    });
    await r.fetch("https://a.example/x");
    await clock.advance(1_000);
    answer = 200;
    const controller = new AbortController();
    const call = r.fetch(new Request("https://a.example/probe", { signal: controller.signal }));
    await flush();
    expect(signals.length).toBe(1);
    expect(signals[0]?.aborted).toBe(false);
    controller.abort(new Error("gone"));
    expect(((await rejection(call)) as Error).message).toBe("gone");
    expect(signals[0]?.aborted).toBe(true);
    const kyController = new AbortController();
    const viaKy = createClient({ resilience: r }).get("https://a.example/probe", { signal: kyController.signal });
    await flush();
    expect(signals.length).toBe(2);
    kyController.abort(new Error("ky gone"));
    await rejection(viaKy);
    expect(signals[1]?.aborted).toBe(true);
  });
});
