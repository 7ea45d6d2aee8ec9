/**
 * Outside-in attack on the newest fixes (CHANGELOG.md's first "### Fixed" entries under Unreleased), on the
 * paths each fix was not tested on, with hostile inputs.
 * Docs: docs/fallback.md ("`hedge: { delay }` … when the running endpoint has given no acceptable answer after
 * `delay` … the next endpoint starts too"; "`validate` reads at most `maxReplayBytes` of the body, within
 * `timeout.attempt` (else what is left of `timeout.total`, else 30 s)"), docs/health-and-events.md ("A listener
 * that throws, or an async one whose promise rejects, is reported (`reportError` or `console.error`) and never
 * breaks the request"), docs/retry.md ("With `retry.idempotencyKey: true`, POST and PATCH requests without a key
 * get one"), SECURITY.md ("A paid request is never processed twice"), docs/health-and-events.md (a `peek` that
 * throws fails the calls, not `health()`), docs/cloudflare.md (health endpoint Bearer).
 * How: `createResilience` (root), `fallback` (./fallback), `resilientProxy` (./cloudflare), `TestClock`
 * (./testing), a recording transport and a transport whose body arrives on the TestClock.
 * Paths: plain call, chain, hedged chain, chain with `validate`, proxy health endpoint, a `Request` input.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: long waits in steps or refused, reports that throw swallowed, a header named twice read whole; 1 by the docs too):
 * 1. docs/fallback.md "`hedge: { delay }` … when the running endpoint has given no acceptable answer after
 *    `delay` … the next endpoint starts too". Observed: a `delay` past 2^31 - 1 ms (3e9) starts the hedge at
 *    2,147,483,647 ms, days early. The fix that waits long waits in steps (core/sleep.ts) did not reach the
 *    hedge timer: `FallbackChain#timer` (src/policies/fallback-chain.ts) calls `clock.setTimer(…, ms)` once,
 *    which clamps at that limit (the rule `hedge.delay: "num>=0"` takes any size). Made exact as
 *    `timeout.attempt` is: docs/options.md and docs/fallback.md bound `delay` at 2,147,483,647 ms, and a longer
 *    one is a `ConfigError` (the test asserts that, and a hedge at the limit starting then).
 * 2. docs/fallback.md "`validate` reads at most `maxReplayBytes` of the body, within `timeout.attempt` (else
 *    what is left of `timeout.total`, else 30 s)". Observed: with `timeout.total` 3e9 and no attempt timeout, a
 *    body arriving at 2,147,484,647 ms (well within the total) fails validation at 2,147,483,647 ms and the chain
 *    moves on. `readBounded` (src/fallback/validate-response.ts) sets one `clock.setTimer(stop, bounds.timeout)`,
 *    clamped at 2^31 - 1 ms.
 * 3. docs/health-and-events.md "A listener that throws … is reported (`reportError` or `console.error`) and
 *    never breaks the request". Observed (Node, which has no `reportError`): a listener throwing a value that
 *    `console.error` cannot format (its `util.inspect.custom` throws) rejects the call with that formatting
 *    error. `reportFailure` (src/core/events.ts) calls `console.error` outside any `try`, inside `emit`'s catch.
 * 4. Same sentence ("or an async one whose promise rejects … never breaks the request"). Observed: an async
 *    listener rejecting with such a value leaves an unhandled rejection (which ends a Node process):
 *    `reportRejection` hands the rejection to `reportFailure`, whose throw rejects the promise `then` returned.
 * 5. docs/retry.md "With `retry.idempotencyKey: true`, POST and PATCH requests without a key get one" and
 *    SECURITY.md "A paid request is never processed twice". Observed: headers given as pairs (or a record) that
 *    name `Idempotency-Key` twice, the first empty (`[["idempotency-key", " "], ["Idempotency-Key", "k"]]`),
 *    carry the key `, k` on the wire (fetch joins them), yet the layer reads the first pair only
 *    (`headerOf` in src/http/request/headers.ts), takes the call as keyless, and `keyedHeaders` `set`s a random
 *    key over the caller's: the server sees a key the caller never chose, so the caller's own retry of the call
 *    (with its key) is not deduplicated.
 *
 * Held (plain `it`):
 * - A store whose `peek` answers a snapshot whose getters throw: `health()` answers (the host's local state), a
 *   `store` event (`read`, `failed`) says why, and the call fails.
 * - `retry.idempotencyKey: true` keeps a key of no-break spaces on a `Request` input, on a plain call and through
 *   a chain (both endpoints get the caller's key).
 * - `initialDelay: 0` with a huge `exponentialBase`: every `retry` event's `delay` is 0 (no NaN), on a plain call.
 * - Health endpoint with a Secrets Store binding: `Bearer` with several spaces passes, a tab is refused, and a
 *   binding whose `get` rejects keeps it closed (401).
 */
import { inspect } from "node:util";
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerStore, ConfigError, createResilience, type StandardSchemaLike } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";
import { scriptedFetch } from "../helpers/scripted-fetch.ts";
import { turns } from "../helpers/unhandled.ts";

afterEach(() => {
  vi.useRealTimers();
});

const LIMIT = 2_147_483_647;
const accepting = {
  "~standard": { version: 1, vendor: "attack", validate: (value: unknown) => ({ value }) },
} as unknown as StandardSchemaLike;

/** A value `console.error` cannot format: Node's inspect calls its custom hook, which throws. */
const unprintable = () => ({
  [inspect.custom]() {
    throw new Error("cannot print me");
  },
});

describe("waits past 2^31 - 1 ms on the chain's own timers", () => {
  it("a hedge `delay` past 2^31 - 1 ms is a ConfigError at once; one at that limit starts the next endpoint then", async () => {
    const chain = (delay: number) =>
      fallback([
        {
          name: "c",
          hedge: { delay },
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]);
    // options.md / fallback.md: at most 2,147,483,647 ms, the longest a timer holds; longer is a ConfigError.
    expect(() => chain(3_000_000_000)).toThrow(ConfigError);
    expect(() => chain(3_000_000_000)).toThrow(/^fallback\.0\.hedge\.delay: expected a value <= 2147483647/);
    const clock = new TestClock();
    const log: string[] = [];
    const fetch = scriptedFetch(clock, log, ["hang", "ok"]);
    const r = createResilience({ fetch, clock, retry: false, fallback: chain(LIMIT) });
    r.fetch("https://a.example/v1/x").catch(() => {});
    await clock.advance(LIMIT - 1);
    expect(log).toEqual(["start 0 @0"]);
    await clock.advance(1);
    // b starts at the limit and answers at once: it wins, and a is aborted.
    expect(log).toEqual(["start 0 @0", `start 1 @${LIMIT}`, `abort 0 @${LIMIT} This operation was aborted`]);
  });

  it("`validate` reads the body within what is left of a `timeout.total` past 2^31 - 1 ms", async () => {
    const clock = new TestClock();
    const log: string[] = [];
    const fetch = async (input: RequestInfo | URL): Promise<Response> => {
      const url = input instanceof Request ? input.url : String(input);
      log.push(`start ${new URL(url).host} @${clock.now()}`);
      if (url.startsWith("https://b.")) return new Response("{}");
      // Headers at once; the body 1 s after the timer's limit, far within the 3e9 ms total.
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          clock.setTimer(
            () =>
              clock.setTimer(() => {
                controller.enqueue(new TextEncoder().encode("{}"));
                controller.close();
              }, 1_000),
            LIMIT,
          );
        },
      });
      return new Response(body, { headers: { "content-type": "application/json" } });
    };
    const r = createResilience({
      fetch,
      clock,
      retry: false,
      breaker: false,
      timeout: { total: 3_000_000_000 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example/v1", validate: accepting },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const call = r.fetch("https://a.example/v1/x");
    call.catch(() => {});
    await clock.advance(LIMIT + 5_000);
    // fallback.md: the body is read within what is left of `timeout.total`: `a`'s answer is valid, `b` never starts.
    expect(log).toEqual(["start a.example @0"]);
  });
});

describe("a listener's failure never breaks the request", () => {
  it("a listener throwing a value console.error cannot print does not reject the call", async () => {
    const { fetch } = recordingFetch();
    const r = createResilience({ fetch, breaker: false });
    r.on("request", () => {
      throw unprintable();
    });
    const outcome = await r.fetch("https://api.example/x").then(
      (res) => res.status,
      (error: unknown) => `rejected: ${String(error)}`,
    );
    expect(outcome).toBe(200);
  });

  it("an async listener rejecting with such a value leaves no unhandled rejection", async () => {
    const { fetch } = recordingFetch();
    const r = createResilience({ fetch, breaker: false });
    r.on("request", async () => {
      throw unprintable();
    });
    // Vitest's own handler would fail the whole run: it is set aside while this test listens.
    const saved = process.listeners("unhandledRejection");
    process.removeAllListeners("unhandledRejection");
    const unhandled: unknown[] = [];
    const on = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", on);
    let status: number;
    try {
      status = (await r.fetch("https://api.example/x")).status;
      await turns(3);
    } finally {
      process.off("unhandledRejection", on);
      for (const listener of saved) process.on("unhandledRejection", listener);
    }
    expect({ status, unhandled }).toEqual({ status: 200, unhandled: [] });
  });
});

describe("an Idempotency-Key named twice", () => {
  it("retry.idempotencyKey: true keeps the caller's key when an empty pair comes first", async () => {
    const { fetch, sent } = recordingFetch((_s, n) => new Response("x", { status: n === 1 ? 500 : 200 }));
    const r = createResilience({
      fetch,
      breaker: false,
      retry: { idempotencyKey: true, initialDelay: 0, jitter: "none" },
    });
    const headers: [string, string][] = [
      ["idempotency-key", " "],
      ["Idempotency-Key", "caller-key"],
    ];
    // What fetch itself sends for these headers: the pairs joined, a key that is not empty.
    expect(new Headers(headers).get("idempotency-key")).toBe(", caller-key");
    await r.fetch("https://api.example/jobs", { method: "POST", body: "b", headers });
    // retry.md: only a request without a key gets one; this one has the caller's, which must reach the server.
    expect(sent.map((s) => s.headers.get("idempotency-key"))).toEqual([", caller-key", ", caller-key"]);
  });
});

describe("fixes that held", () => {
  it("a peek answering a snapshot whose getters throw: health() answers, a store event says why", async () => {
    const { fetch } = recordingFetch();
    let hostile = false;
    const snapshot = {
      get state(): never {
        throw new Error("state getter");
      },
      get v(): never {
        throw new Error("v getter");
      },
    };
    const store: BreakerStore = {
      name: "mine",
      publish() {},
      peek: () => (hostile ? (snapshot as never) : undefined),
    };
    const r = createResilience({ fetch, store });
    const events: { operation: string; outcome: string }[] = [];
    r.on("store", (e) => events.push({ operation: e.operation, outcome: e.outcome }));
    await r.fetch("https://api.example/x");
    hostile = true;
    const health = r.health();
    expect(health.breakers["api.example"]?.state).toBe("closed");
    expect(events).toContainEqual({ operation: "read", outcome: "failed" });
    // The store's view reads `v` first since the sixty-first session (it checks the snapshot before the merge).
    await expect(r.fetch("https://api.example/x")).rejects.toThrow("v getter");
  });

  it("retry.idempotencyKey: true keeps a no-break-space key on a Request input, plain and through a chain", async () => {
    const { fetch, sent } = recordingFetch((s) =>
      s.url.startsWith("https://a.example/") ? new Response("busy", { status: 503 }) : new Response("ok"),
    );
    const key = "\u00a0\u00a0";
    const plain = createResilience({ fetch, breaker: false, retry: { idempotencyKey: true, maxAttempts: 1 } });
    await plain.fetch(
      new Request("https://c.example/jobs", { method: "POST", body: "b", headers: { "idempotency-key": key } }),
    );
    const chained = createResilience({
      fetch,
      breaker: false,
      retry: { idempotencyKey: true, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const res = await chained.fetch(
      new Request("https://a.example/v1/jobs", { method: "POST", body: "b", headers: { "idempotency-key": key } }),
    );
    expect(res.status).toBe(200);
    expect(sent.map((s) => [new URL(s.url).host, s.headers.get("idempotency-key")])).toEqual([
      ["c.example", key],
      ["a.example", key],
      ["b.example", key],
    ]);
  });

  it("initialDelay: 0 with a huge exponentialBase waits 0 at every retry (no NaN)", async () => {
    const clock = new TestClock();
    const { fetch } = recordingFetch(() => new Response("x", { status: 503 }));
    const r = createResilience({
      fetch,
      clock,
      breaker: false,
      budget: false,
      retry: { maxAttempts: 8, initialDelay: 0, exponentialBase: 1e300, jitter: "none" },
    });
    const delays: number[] = [];
    r.on("retry", (e) => delays.push(e.delay));
    const res = await clock.run(r.fetch("https://api.example/x"));
    expect(res.status).toBe(503);
    expect(delays).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  it("health endpoint with a Secrets Store binding: several spaces pass, a tab or a failing get() is 401", async () => {
    const { fetch } = recordingFetch();
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: "https://a.example" }], resilience: { fetch } });
    const ask = async (env: Record<string, unknown>, authorization: string) =>
      (
        await proxy.fetch(
          new Request("https://worker.example/__resilience/health", { headers: { authorization } }),
          env,
          { waitUntil: () => {} },
        )
      ).status;
    const binding = { get: async () => "s3cret" };
    expect(await ask({ RESILIENCE_HEALTH_TOKEN: binding }, "Bearer   s3cret")).toBe(200);
    expect(await ask({ RESILIENCE_HEALTH_TOKEN: binding }, "Bearer \ts3cret")).toBe(401);
    const failing = { get: () => Promise.reject(new Error("store down")) };
    expect(await ask({ RESILIENCE_HEALTH_TOKEN: failing }, "Bearer s3cret")).toBe(401);
  });
});
