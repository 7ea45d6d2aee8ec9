/**
 * Outside-in attack on docs/options.md, row by row, by behaviour. Docs: every row of the options table
 * (`retry.*`, `budget`, `timeout.attempt`, `breaker.*`, `bulkhead`, `maxReplayBytes`, `fallback[]…`,
 * `degradation.…`), its first paragraph ("throws `ConfigError` naming the path and the expected value", "The ky
 * client's `createClient({ resilience })` and `resilientProxy({ resilience })` name these options as their callers
 * wrote them: `resilience.retry.maxAttempts`"), docs/retry.md "Retry" (the delay formula, `Retry-After`,
 * `maxRetryAfter`), docs/cloudflare.md "`resilientProxy` checks its options when it is made, not on each request".
 * How: `createResilience`, ky's `createClient` (./ky), `resilientProxy` (./cloudflare, fake ctx), `fallback()` and
 * `degradation()`; scripted fetches counting attempts; time only on the `./testing` TestClock; `retry` events.
 * Paths: plain call, the ky client, the Worker proxy (a `Request` input rebuilt by the proxy), the chain stage;
 * option objects edited by the caller after the layer (or proxy) was made.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: long waits in steps, the options checked are the options kept):
 * 1. docs/options.md "`retry.maxRetryAfter` | `60000` ms | longest `Retry-After` slept through"; docs/retry.md
 *    "A `Retry-After` header on 429/503 … replaces the computed delay". Observed: with `maxRetryAfter` of 40 days, a
 *    503 with `Retry-After: 2592000` (30 days) gives a `retry` event saying `delay: 2592000000, retryAfter: true`,
 *    yet the retry is sent after 2,147,483,647 ms (24.86 days), 5.1 days before the server said to come back: the
 *    wait goes to `clock.setTimer` once and the real clock (like the TestClock, which copies it) clamps a timer to
 *    2^31 - 1 ms. The same for a computed delay (`initialDelay`/`maxDelay` 3e9, `jitter: "none"`: the retry leaves
 *    at 2,147,483,647 ms, checked with vitest's fake timers and the system clock). `timeout.total` goes on in steps
 *    past that limit (docs/verification.md lists its early firing as fixed), and `timeout.attempt` refuses values
 *    above it, but `maxRetryAfter`, `initialDelay` and `maxDelay` take any finite number and are cut short.
 * 2. docs/cloudflare.md "`resilientProxy` checks its options when it is made, not on each request" and
 *    docs/options.md "`resilientProxy({ resilience })` name[s] these options as their callers wrote them:
 *    `resilience.retry.maxAttempts`". Observed: the proxy keeps the caller's `resilience` object and reads it only
 *    when its first request makes the layer; a caller (a config loader, a test's shared fixture) that edits it after
 *    `resilientProxy(…)` returned, `retry.maxAttempts = 0`, makes every request's `proxy.fetch` reject with
 *    `ConfigError` "retry.maxAttempts: expected a value >= 1, received 0" (path `retry.maxAttempts`, without
 *    `resilience.`), the layer never made; a valid edit (`maxAttempts: 5`, `retryOn.statuses` given 500) is
 *    applied (5 attempts on a 500), where `createResilience` and `createClient({ resilience })` copy their options
 *    when made and the same edit changes nothing (2 attempts).
 *
 * Held (plain `it`):
 * - backoff: the default (`full`, random 0.5) sends retries at +500 and +1000 ms; `none` doubles from 1000 and
 *   stops at `maxDelay` 60000; `equal` is half plus a random half; `decorrelated` stays in
 *   [initialDelay, 3 × previous] under `maxDelay`.
 * - the same defaults on root, ky and proxy: retried statuses exactly 408, 425, 429, 500, 502, 503, 504 (400, 404,
 *   409, 501, 505, 507, 599 sent once); GET/HEAD/OPTIONS/PUT/DELETE retried on 500, POST/PATCH/`patch`/PURGE only
 *   on 503; `Retry-After: 60` slept, `61` returned at once; `maxReplayBytes` 8 MiB exactly replayed, one byte more
 *   sent once, and a limit counted in UTF-8 bytes (`"ééééé"` is 10).
 * - breaker defaults on root, ky and proxy: open for 30000 ms, then 3 probes in flight (`halfOpenMaxCalls`), the
 *   rest refused.
 * - refusals at once, naming the path and expected value: `createResilience`, ky's `resilience.…`, the proxy's
 *   `resilience.…` and `routes.0.chain.…`, `fallback([…])` and `degradation({…})`, a 0.1-style plain `degradation`.
 * - `createResilience` and ky copy their options: an edit after creation changes nothing.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

afterEach(() => {
  vi.useRealTimers();
});

const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
const UP = "https://up.example";

/** A call through one entry, settled as a status or an error's name. */
type Call = (path: string, init?: RequestInit) => Promise<number | string>;
const settle = (p: Promise<Response>): Promise<number | string> =>
  p.then(
    (r) => r.status,
    (e: unknown) => String((e as Error)?.name),
  );
const entries: Record<string, (o: ResilienceOptions) => Call> = {
  root: (o) => {
    const r = createResilience(o);
    return (path, init) => settle(r.fetch(UP + path, init));
  },
  ky: (o) => {
    const api = createClient({ resilience: o, throwHttpErrors: false });
    return (path, init) => settle(api(UP + path, init as never) as unknown as Promise<Response>);
  },
  proxy: (o) => {
    const p = resilientProxy({ routes: [{ path: "/", upstream: UP }], resilience: o });
    return (path, init) => settle(p.fetch(new Request(`https://worker.example${path}`, init), {}, ctx));
  },
};

function caught(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("no ConfigError");
}

describe("retry delays by behaviour", () => {
  it("full (default), none, equal and decorrelated jitter follow the documented formula and cap", async () => {
    const times = async (retry: ResilienceOptions["retry"], random: number): Promise<number[]> => {
      const clock = new TestClock();
      const at: number[] = [];
      const r = createResilience({
        clock,
        random: () => random,
        breaker: false,
        budget: false,
        retry,
        fetch: async () => {
          at.push(clock.now());
          return new Response(null, { status: 503 });
        },
      });
      await clock.run(r.fetch("https://a.example/"));
      return at.slice(1).map((t, i) => t - (at[i] as number));
    };
    // "The delay before retry n is min(maxDelay, initialDelay × exponentialBase^(n−1)), then jittered (full by default)".
    expect(await times({}, 0.5)).toEqual([500, 1000]);
    expect(await times({ maxAttempts: 9, jitter: "none" }, 0.5)).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000,
    ]);
    expect(await times({ maxAttempts: 4, jitter: "equal" }, 0)).toEqual([500, 1000, 2000]);
    expect(await times({ maxAttempts: 4, jitter: "equal" }, 0.5)).toEqual([750, 1500, 3000]);
    const decorrelated = await times({ maxAttempts: 7, jitter: "decorrelated" }, 0.999);
    expect(decorrelated.slice(-2)).toEqual([60000, 60000]);
    expect(decorrelated[0]).toBe(2998);
    expect(await times({ maxAttempts: 3, jitter: "decorrelated" }, 0)).toEqual([1000, 1000]);
  });

  it("a Retry-After within maxRetryAfter but past 2^31 - 1 ms is slept through in full", async () => {
    // docs/options.md: "`retry.maxRetryAfter` | `60000` ms | longest `Retry-After` slept through".
    // docs/retry.md: "A `Retry-After` header on 429/503 … replaces the computed delay".
    const clock = new TestClock();
    const sentAt: number[] = [];
    const days = 86_400_000;
    const r = createResilience({
      clock,
      breaker: false,
      retry: { maxRetryAfter: 40 * days },
      fetch: async () => {
        sentAt.push(clock.now());
        return sentAt.length === 1
          ? new Response(null, { status: 503, headers: { "retry-after": String(30 * 86_400) } })
          : new Response("ok");
      },
    });
    const delays: number[] = [];
    r.on("retry", (e) => delays.push(e.delay));
    const call = r.fetch("https://a.example/");
    await clock.advance(2_147_483_647);
    expect(delays).toEqual([30 * days]);
    // Today the retry left here, at 2,147,483,647 ms (24.86 days), 5.1 days early.
    expect(sentAt).toEqual([0]);
    await clock.advance(30 * days - 2_147_483_647);
    expect(sentAt).toEqual([0, 30 * days]);
    expect((await call).status).toBe(200);
  });

  it("(same cause, on the system clock) a computed delay past 2^31 - 1 ms is waited in full", async () => {
    vi.useFakeTimers();
    let sent = 0;
    const r = createResilience({
      breaker: false,
      retry: { initialDelay: 3e9, maxDelay: 3e9, jitter: "none" },
      fetch: async () => (++sent === 1 ? new Response(null, { status: 503 }) : new Response("ok")),
    });
    const call = r.fetch("https://a.example/");
    await vi.advanceTimersByTimeAsync(2_147_483_647);
    // Until the twenty-fifth session's fix (defect 1), the 3e9 ms delay ended here.
    expect(sent).toBe(1);
    await vi.advanceTimersByTimeAsync(3e9 - 2_147_483_647 - 1);
    expect(sent).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toBe(2);
    expect((await call).status).toBe(200);
  });
});

describe("defaults alike on createResilience, the ky client and resilientProxy", () => {
  for (const [name, make] of Object.entries(entries)) {
    it(`${name}: statuses, methods, maxRetryAfter and maxReplayBytes`, async () => {
      const attempts = async (
        options: Partial<ResilienceOptions>,
        answer: () => Response,
        init?: RequestInit,
      ): Promise<{ sent: number; took: number }> => {
        const clock = new TestClock();
        let sent = 0;
        const call = make({
          clock,
          breaker: false,
          budget: false,
          ...options,
          fetch: async (input, i) => {
            sent++;
            // The body read in full, as a transport sends it.
            await new Request(input as RequestInfo, i).arrayBuffer();
            return answer();
          },
        });
        await clock.run(call("/a", init));
        return { sent, took: clock.now() };
      };
      const retried: number[] = [];
      for (const status of [400, 404, 408, 409, 425, 429, 500, 501, 502, 503, 504, 505, 507, 599]) {
        if ((await attempts({}, () => new Response(null, { status }))).sent === 3) retried.push(status);
      }
      expect(retried).toEqual([408, 425, 429, 500, 502, 503, 504]);

      const byMethod: Record<string, number[]> = {};
      for (const method of ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH", "PURGE"]) {
        const init: RequestInit = method === "GET" || method === "HEAD" ? { method } : { method, body: "x" };
        byMethod[method] = [
          (await attempts({}, () => new Response(null, { status: 500 }), init)).sent,
          (await attempts({}, () => new Response(null, { status: 503 }), init)).sent,
        ];
      }
      expect(byMethod).toEqual({
        GET: [3, 3],
        HEAD: [3, 3],
        OPTIONS: [3, 3],
        PUT: [3, 3],
        DELETE: [3, 3],
        POST: [1, 3],
        PATCH: [1, 3],
        PURGE: [1, 3],
      });

      const retryAfter = (seconds: string) => () =>
        new Response(null, { status: 503, headers: { "retry-after": seconds } });
      expect(await attempts({}, retryAfter("60"))).toEqual({ sent: 3, took: 120_000 });
      expect(await attempts({}, retryAfter("61"))).toEqual({ sent: 1, took: 0 });

      const put = (body: BodyInit): RequestInit => ({ method: "PUT", body });
      const fail = () => new Response(null, { status: 503 });
      expect((await attempts({}, fail, put(new Uint8Array(8 * 1024 * 1024)))).sent).toBe(3);
      expect((await attempts({}, fail, put(new Uint8Array(8 * 1024 * 1024 + 1)))).sent).toBe(1);
      expect((await attempts({ maxReplayBytes: 10 }, fail, put("ééééé"))).sent).toBe(3);
      expect((await attempts({ maxReplayBytes: 10 }, fail, put("éééééé"))).sent).toBe(1);
    });

    it(`${name}: the breaker opens for 30000 ms, then lets 3 probes through`, async () => {
      const clock = new TestClock();
      const pending: Array<(r: Response) => void> = [];
      let hang = false;
      let sent = 0;
      const call = make({
        clock,
        retry: false,
        breaker: { failureThreshold: 1 },
        fetch: async () => {
          sent++;
          if (!hang) return new Response(null, { status: 503 });
          return new Promise<Response>((resolve) => pending.push(resolve));
        },
      });
      const refused = name === "proxy" ? 503 : "CircuitOpenError";
      expect(await call("/a")).toBe(503);
      await clock.advance(29_999);
      expect(await call("/a")).toBe(refused);
      await clock.advance(1);
      hang = true;
      const probes = Array.from({ length: 5 }, () => call("/a"));
      await flush();
      expect(sent).toBe(4);
      for (const resolve of pending) resolve(new Response("ok"));
      expect(await Promise.all(probes)).toEqual([200, 200, 200, refused, refused]);
    });
  }
});

describe("refusals: a ConfigError at once, naming the path and the expected value", () => {
  it("on every entry", () => {
    const bad = { retry: { maxAttempts: 0 } };
    expect(caught(() => createResilience(bad)).message).toBe("retry.maxAttempts: expected a value >= 1, received 0");
    expect(caught(() => createClient({ resilience: bad })).message).toBe(
      "resilience.retry.maxAttempts: expected a value >= 1, received 0",
    );
    expect(caught(() => resilientProxy({ routes: [{ path: "/", upstream: UP }], resilience: bad })).path).toBe(
      "resilience.retry.maxAttempts",
    );
    const bulk = { breaker: false as const, bulkhead: { maxConcurrent: 1 } };
    expect(caught(() => createResilience(bulk)).path).toBe("bulkhead");
    expect(caught(() => createClient({ resilience: bulk })).path).toBe("resilience.bulkhead");
    expect(caught(() => resilientProxy({ routes: [{ path: "/", upstream: UP }], resilience: bulk })).path).toBe(
      "resilience.bulkhead",
    );
    const chain = { name: "c", endpoints: [{ name: "p", url: "ftp://a.example/v1" }] };
    expect(caught(() => fallback([chain])).path).toBe("fallback.0.endpoints.0.url");
    expect(caught(() => resilientProxy({ routes: [{ path: "/v1", chain }] })).path).toBe(
      "routes.0.chain.endpoints.0.url",
    );
    expect(caught(() => degradation({ levels: { medium: { maxSteps: 0 } } })).path).toBe(
      "degradation.levels.medium.maxSteps",
    );
    expect(caught(() => degradation({ sizeMultiple: 0 })).message).toBe(
      "degradation.sizeMultiple: expected a value >= 1, received 0",
    );
    const plain = { degradation: { levels: {} } } as never;
    expect(caught(() => createResilience(plain)).path).toBe("degradation");
    expect(caught(() => createClient({ resilience: plain })).path).toBe("resilience.degradation");
    expect(caught(() => resilientProxy({ routes: [{ path: "/", upstream: UP }], resilience: plain })).path).toBe(
      "resilience.degradation",
    );
  });
});

describe("an option object edited after the layer was made", () => {
  const edited = (sent: { n: number }) => {
    const clock = new TestClock();
    const options = {
      clock,
      breaker: false as const,
      budget: false as const,
      retry: { maxAttempts: 2, retryOn: { statuses: [503] } },
      fetch: async () => {
        sent.n++;
        return new Response(null, { status: 500 });
      },
    };
    return { clock, options, edit: () => Object.assign(options.retry, { maxAttempts: 5 }) };
  };

  it("createResilience and createClient copy their options: the edit changes nothing", async () => {
    for (const entry of ["root", "ky"] as const) {
      const sent = { n: 0 };
      const { clock, options, edit } = edited(sent);
      const call = (entries[entry] as (o: ResilienceOptions) => Call)(options);
      edit();
      options.retry.retryOn.statuses.push(500);
      expect(await clock.run(call("/a"))).toBe(500);
      expect(sent.n).toBe(1);
    }
  });

  it("resilientProxy: an edit after it was made is neither applied unchecked nor a ConfigError per request", async () => {
    // docs/cloudflare.md: "`resilientProxy` checks its options when it is made, not on each request".
    // docs/options.md: "`resilientProxy({ resilience })` name[s] these options as their callers wrote them".
    const sent = { n: 0 };
    const { clock, options, edit } = edited(sent);
    const call = (entries.proxy as (o: ResilienceOptions) => Call)(options);
    edit();
    options.retry.retryOn.statuses.push(500);
    // As createResilience and createClient: the options checked when made are the ones in force (one attempt on a 500).
    expect(await clock.run(call("/a"))).toBe(500);
    expect(sent.n).toBe(1);

    const invalid = { retry: { maxAttempts: 2 }, fetch: async () => new Response("ok") };
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: UP }], resilience: invalid });
    invalid.retry.maxAttempts = 0;
    const outcomes: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      outcomes.push(await proxy.fetch(new Request("https://worker.example/a"), {}, ctx).then((r) => r.status, String));
    }
    // Today each request rejects: "ConfigError: retry.maxAttempts: expected a value >= 1, received 0".
    expect(outcomes).toEqual([200, 200]);
  });
});
