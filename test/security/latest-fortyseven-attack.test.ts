/**
 * Outside-in attack on the newest entries of CHANGELOG.md's first "### Fixed" list: (1) a layer's kept copy of
 * an answer and a chain's validated copy keep the mark "came after another request"; (2) a retry the layer
 * refuses after an answer too large or slow to keep is not taken for "nothing sent" by a chain or layer in
 * front; (3) a breaker adopting shared state cuts URL secrets from the spell's reason; (4) `kvStore` and
 * `durableObjectStore` refuse a `ctx` whose `waitUntil` cannot be read with their `TypeError`.
 *
 * Docs:
 * - docs/retry.md "## Bodies": "one too large or too slow to keep is not: the call then rejects with the
 *   refusal, which a layer or chain in front does not take for \"nothing sent\": the host had the request, so a
 *   POST without a key goes no further, and the Worker proxy answers it with `502`"; error table:
 *   `CircuitOpenError` "a retry refused after an answer too large to keep … also follows a request",
 *   `BulkheadRejectedError` "nothing was sent (but for a retry refused after an answer too large to keep …)".
 * - docs/fallback.md: "a POST without an `Idempotency-Key` goes to the next endpoint only when it surely was not
 *   processed …; after a 500 … the chain ends there, so a fallback provider never receives a paid job twice".
 * - docs/cloudflare.md: "`502` when no endpoint answered otherwise (…, and a retry it refused after an answer too
 *   large to keep: the first upstream had the request …)"; "Both check their options when they are made, with a
 *   `TypeError` naming the store and the option: … a `ctx` without `waitUntil`, … a value that cannot be read (a
 *   getter that throws, a revoked `Proxy`)".
 * - SECURITY.md: "No secret in events, errors, `health()` or `debugInfo()` | URLs lose their userinfo …, query
 *   string and fragment … before they reach any of them (… a URL percent-encoded into text … is cut as a plain
 *   one …, or a scheme-relative one …)".
 * - docs/health-and-events.md: "Through `memoryStore()` it shows that layer's counts and error"; a store of your
 *   own implements `BreakerStore` (docs/breakers.md).
 *
 * How: `createResilience`, `memoryStore`, the `BreakerStore`/`BreakerSnapshot` types (root), `fallback`
 * (./fallback), `resilientProxy`, `kvStore`, `durableObjectStore` (./cloudflare), `TestClock`, `recordEvents`
 * (./testing); two node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts); a store of my own whose
 * `peek` answers a fixed snapshot. A retry is refused by the inner layer's bulkhead (another call holds its only
 * slot during the 1 s backoff) or its breaker (another call's 500 opens it during the backoff); the first answer
 * is a 500 with a 70,000-byte body (past the 64 KiB keep limit).
 *
 * Paths: plain call, fallback chain (a chain layer inside an outer chain, a layer inside an outer chain), stacked
 * layers (an outer retrying layer), `resilientProxy` (chain route), stores (own, `memoryStore`, KV, DO options).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; both fixed in the same session, so plain `it`):
 * 1. docs/retry.md "## Bodies" ("a layer or chain in front does not take [the refusal] for \"nothing sent\": …
 *    a POST without a key goes no further") and docs/fallback.md ("after a 500 … the chain ends there").
 *    Observed: when the inner layer serves the call through a chain of its own (`fallback` with one endpoint
 *    `p`), the refusal reaches the outer chain `[x, y]` wrapped in a `FallbackExhaustedError` (`errors.p` the
 *    refusal), and the outer chain moves the keyless POST on to `y` (bulkhead and breaker alike: `y` receives the
 *    job the first host answered 500 for). Without the inner chain (a plain layer) the fix holds. Source:
 *    src/http/send/failure-reason.ts `reasonOf` reads a `FallbackExhaustedError` as not sent when
 *    `failureReason(each).notSent` holds for each of its `errors`, and `failureReason` takes any
 *    `CircuitOpenError`/`BulkheadRejectedError` as `notSent: true` without `isAfterRedirect` (that check is made
 *    only on the top-level error, src/http/send/classify.ts `maySendAgain`); the mark from `afterAnswer`
 *    (src/http/send/follow-redirects.ts) is never looked for inside a chain's errors (nor in a
 *    `RetryExhaustedError`'s `cause`). Fix: in `reasonOf`, return `notSent: false` for `isAfterRedirect(error)`
 *    before the `CircuitOpenError`/`BulkheadRejectedError` branches.
 * 2. SECURITY.md "No secret in … `health()` or `debugInfo()`: URLs lose their userinfo …, query string and
 *    fragment". Observed: a shared snapshot from a store of one's own (or one published into `memoryStore()`)
 *    whose `trip.lastError` quotes `https://user:pw@h.example/v1?api_key=SECRET1#FRAGX` (or the same URL
 *    percent-encoded, scheme-relative, or a `wss:` URL with a fragment) is adopted with the trip as it is:
 *    `health().breakers[host].lastError` and `debugInfo()` show it word for word, while `reason` and the
 *    `breaker` event's `reason` are cut. Source: src/policies/breaker-state.ts `adopt` passes `remote.trip ?? null`
 *    to `open` uncut (only the reason goes through `shared` → `redactUrlsIn`); src/http/health.ts `describe`
 *    shows `trip.lastError` as `lastError`. Fix: adopt `{ ...remote.trip, lastError: redactUrlsIn(...) }`.
 *
 * Held (plain `it`):
 * - A plain inner layer (no chain) whose retry after a large 500 is refused (bulkhead, breaker): the outer chain
 *   stops, `y` gets nothing; an outer retrying layer over the inner chain layer does not send again;
 *   `resilientProxy` with a chain route answers `502 {"error":"upstream unavailable"}` without `Retry-After`.
 * - The adopted reason (open, from a store of one's own; half-open, published into `memoryStore()`) loses userinfo,
 *   query and fragment for the four URL forms in `health().reason` and in the `breaker` event; with no `trip`,
 *   `lastError` (the reason) is cut too.
 * - `kvStore`/`durableObjectStore` with a `ctx` whose `waitUntil` getter throws a string, a `Proxy` whose `get`
 *   trap throws, a revoked function `Proxy`, a throwing getter on the prototype: each a `TypeError`
 *   "<store>: ctx must be the request's context, with waitUntil, got an object|a function".
 *
 * Docs-silent (not pinned):
 * - `validate` reads only 2xx answers, so the mark on a chain's validated copy (`answerToGive`) never decides a
 *   429/503 "declined" verdict; it is not observable through the public API.
 * - The refusal after an answer too large to keep carries no public flag (`afterRedirect` stays unset): a caller
 *   reading a `CircuitOpenError`/`BulkheadRejectedError` cannot tell it followed a request, though the error
 *   table now says it does.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerSnapshot,
  type BreakerStore,
  createResilience,
  memoryStore,
  type ResilienceOptions,
} from "../../src/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const E = httpUpstream();
beforeAll(async () => {
  await Promise.all([A.start(), E.start()]);
});
afterAll(() => {
  A.stop();
  E.stop();
});
beforeEach(() => {
  A.reset();
  E.reset();
});

const ctx = { waitUntil() {}, passThroughOnException() {} };
const BIG = "x".repeat(70_000);
const answer =
  (status: number, body = "x", headers: Record<string, string> = {}) =>
  (hit: Hit) => {
    hit.res.writeHead(status, headers);
    hit.res.end(body);
  };
const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};
const outcome = (call: Promise<Response>): Promise<string> =>
  call.then(
    async (response) => `${response.status} ${(await response.text()).slice(0, 12)}`,
    (error: unknown) => (error instanceof Error ? `${error.name}` : String(error)),
  );
const jobsAt = (path: string) => A.hits.filter((hit) => hit.path === path).length;

/** The inner layer's options: it keys a keyless POST, retries once after 1 s; refusal by bulkhead or breaker. */
const innerOptions = (clock: TestClock, refusal: "bulkhead" | "breaker"): Partial<ResilienceOptions> => ({
  clock,
  breaker: { failureThreshold: refusal === "breaker" ? 2 : 10 },
  ...(refusal === "bulkhead" ? { bulkhead: { maxConcurrent: 1, maxQueue: 0 } } : {}),
  retry: { maxAttempts: 2, initialDelay: 1000, jitter: "none", idempotencyKey: true },
});

/**
 * A serves /hold only when released, /v1/x with `first` (status, body), anything else 500. Returns a function
 * that refuses the waiting retry (another call takes the slot, or trips the breaker), then lets the held go.
 */
function serveA(body: string, status = 500) {
  const held: Hit[] = [];
  A.on((hit) => {
    if (hit.path === "/hold") held.push(hit);
    else answer(status, body, { "content-length": String(Buffer.byteLength(body)) })(hit);
  });
  return async (clock: TestClock, other: (path: string) => Promise<string>, refusal: "bulkhead" | "breaker") => {
    await clock.waitForTimers(1);
    const side = other(refusal === "bulkhead" ? "/hold" : "/trip");
    await A.nth(2);
    if (refusal === "bulkhead") await clock.advance(1000);
    await turns();
    for (const hit of held.splice(0)) answer(200, "held")(hit);
    return side;
  };
}

const LEAK = /SECRET|user:pw|FRAGX|u%3Apw|pw%40/;
const REASONS = [
  "GET https://user:pw@h.example/v1?api_key=SECRET1#FRAGX failed",
  "see https%3A%2F%2Fuser%3Apw%40h.example%2Fv1%3Fapi_key%3DSECRET2 now",
  "//user:pw@h.example/x?k=SECRET3",
  "wss://h.example/s#FRAGX=1",
];
function snapshotOf(now: number, reason: string, state: "open" | "half_open" | "closed" = "open"): BreakerSnapshot {
  return {
    v: 1,
    state,
    gen: 3,
    failures: [],
    window: null,
    lastFailureTime: now - 5,
    openUntil: state === "open" ? now + 60_000 : null,
    leases: [],
    successes: 0,
    reason,
    changedAt: now - 1,
    trip: { consecutive: 3, failures: 3, calls: 3, rate: 1, lastError: reason },
  };
}

const chainOf = (names: Array<[string, string]>) => names.map(([name, url]) => ({ name, url }));

/** An outer chain [x at A, y at E] over `inner`; a keyless POST whose first answer is a large 500. */
async function outerChainOver(
  make: (clock: TestClock) => ReturnType<typeof createResilience>,
  refusal: "bulkhead" | "breaker",
) {
  const clock = new TestClock();
  const inner = make(clock);
  const outer = createResilience({
    fetch: inner.fetch,
    clock,
    retry: { maxAttempts: 1 },
    fallback: fallback([
      {
        name: "oc",
        endpoints: chainOf([
          ["x", `${A.base}/v1`],
          ["y", `${E.base}/v1`],
        ]),
      },
    ]),
  });
  const refuse = serveA(BIG);
  E.on(answer(200, "y took it"));
  const call = outcome(outer.fetch(`${A.base}/v1/x`, { method: "POST", body: "{}" }));
  await refuse(clock, (path) => outcome(inner.fetch(`${A.base}${path}`)), refusal);
  await clock.run(call);
  return { jobsAtA: jobsAt("/v1/x"), atY: E.hits.length };
}

describe('a retry refused after an answer too large to keep (docs/retry.md "Bodies")', () => {
  it("a plain inner layer: the outer chain does not move the keyless POST on", async () => {
    for (const refusal of ["bulkhead", "breaker"] as const) {
      expect(await outerChainOver((clock) => createResilience(innerOptions(clock, refusal)), refusal)).toEqual({
        jobsAtA: 1,
        atY: 0,
      });
      A.reset();
      E.reset();
    }
  });

  // Defect 1. Observed: { jobsAtA: 1, atY: 1 } for both refusals.
  it("an inner layer serving through its own chain: the outer chain does not move the POST on", async () => {
    const out: Record<string, unknown> = {};
    for (const refusal of ["bulkhead", "breaker"] as const) {
      out[refusal] = await outerChainOver(
        (clock) =>
          createResilience({
            ...innerOptions(clock, refusal),
            fallback: fallback([{ name: "ic", endpoints: chainOf([["p", `${A.base}/v1`]]) }]),
          }),
        refusal,
      );
      A.reset();
      E.reset();
    }
    expect(out).toEqual({ bulkhead: { jobsAtA: 1, atY: 0 }, breaker: { jobsAtA: 1, atY: 0 } });
  });

  it("an outer retrying layer over the inner chain layer does not send again", async () => {
    for (const refusal of ["bulkhead", "breaker"] as const) {
      const clock = new TestClock();
      const inner = createResilience({
        ...innerOptions(clock, refusal),
        fallback: fallback([{ name: "ic", endpoints: chainOf([["p", `${A.base}/v1`]]) }]),
      });
      const outer = createResilience({
        fetch: inner.fetch,
        clock,
        retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" },
      });
      const refuse = serveA(BIG);
      const call = outcome(outer.fetch(`${A.base}/v1/x`, { method: "POST", body: "{}" }));
      await refuse(clock, (path) => outcome(inner.fetch(`${A.base}${path}`)), refusal);
      expect([await clock.run(call), jobsAt("/v1/x")]).toEqual(["FallbackExhaustedError", 1]);
      A.reset();
    }
  });

  it("resilientProxy, a chain route: 502 without Retry-After", async () => {
    for (const refusal of ["bulkhead", "breaker"] as const) {
      const clock = new TestClock();
      const proxy = resilientProxy({
        resilience: innerOptions(clock, refusal),
        routes: [
          { path: "/ch", chain: { name: "pc", endpoints: chainOf([["p", `${A.base}/v1`]]) } },
          { path: "/u", upstream: A.base },
        ],
      });
      const refuse = serveA(BIG);
      const call = proxy.fetch(new Request("http://proxy.test/ch/x", { method: "POST", body: "{}" }), {}, ctx);
      await refuse(clock, (path) => outcome(proxy.fetch(new Request(`http://proxy.test/u${path}`), {}, ctx)), refusal);
      const response = await clock.run(call);
      expect([response.status, await response.text(), response.headers.get("retry-after"), jobsAt("/v1/x")]).toEqual([
        502,
        '{"error":"upstream unavailable"}',
        null,
        1,
      ]);
      A.reset();
    }
  });
});

/** A layer over a store of my own whose `peek` answers `snap` for A's host: health, debugInfo, events after a call. */
async function adopted(snap: BreakerSnapshot | ((now: number) => BreakerStore), clock: TestClock) {
  const store: BreakerStore =
    typeof snap === "function"
      ? snap(clock.now())
      : { name: "mine", publish() {}, peek: (key) => (key === A.host ? snap : undefined) };
  const layer = createResilience({ clock, store, retry: false });
  const recorder = recordEvents(layer);
  const result = await outcome(layer.fetch(`${A.base}/x`));
  const health = layer.health().breakers[A.host];
  return { result, health, debug: JSON.stringify(layer.debugInfo()), events: JSON.stringify(recorder.events) };
}

describe("a shared spell's reason (SECURITY.md)", () => {
  it("the adopted reason is cut in health() and the breaker event, for each URL form", async () => {
    for (const reason of REASONS) {
      const clock = new TestClock(1_700_000_000_000);
      const { result, health, events } = await adopted(snapshotOf(clock.now(), reason), clock);
      expect(result).toBe("CircuitOpenError");
      expect(health?.reason).toMatch(/^shared: /);
      expect(health?.reason).not.toMatch(LEAK);
      expect(events).toContain('"type":"breaker"');
      expect(events).not.toMatch(LEAK);
      // Without a trip, lastError is the (cut) reason.
      const bare = await adopted({ ...snapshotOf(clock.now(), reason), trip: null }, new TestClock(clock.now()));
      expect(bare.health?.lastError).toBe(bare.health?.reason);
      expect(bare.health?.lastError).not.toMatch(LEAK);
    }
  });

  // Defect 2. Observed: lastError "GET https://user:pw@h.example/v1?api_key=SECRET1#FRAGX failed" (and the other
  // three forms as written); debugInfo() holds them too.
  it("a shared trip's lastError is cut in health() and debugInfo() (a store of one's own)", async () => {
    for (const reason of REASONS) {
      const clock = new TestClock(1_700_000_000_000);
      const { health, debug } = await adopted(snapshotOf(clock.now(), reason), clock);
      expect(health?.lastError).not.toMatch(LEAK);
      expect(debug).not.toMatch(LEAK);
    }
  });

  it("memoryStore, a half-open spell published into it: the reason is cut", async () => {
    const clock = new TestClock(1_700_000_000_000);
    const { result, health } = await adopted((now) => {
      const store = memoryStore();
      store.publish(A.host, snapshotOf(now, REASONS[0] as string, "half_open"));
      return store;
    }, clock);
    expect([result, health?.state, health?.reason]).toEqual([
      "200 ok",
      "half_open",
      "shared: GET https://h.example/v1 failed",
    ]);
  });

  // Defect 2 (memoryStore). Observed: lastError as published, word for word.
  it("memoryStore, a half-open spell published into it: the trip's lastError is cut", async () => {
    const clock = new TestClock(1_700_000_000_000);
    const { health } = await adopted((now) => {
      const store = memoryStore();
      store.publish(A.host, snapshotOf(now, REASONS[0] as string, "half_open"));
      return store;
    }, clock);
    expect(health?.lastError).not.toMatch(LEAK);
  });
});

describe("kvStore and durableObjectStore refuse an unreadable ctx (docs/cloudflare.md)", () => {
  it("each unreadable ctx is a TypeError naming the store and ctx", () => {
    const tries: Record<string, unknown> = {
      throwsString: {
        get waitUntil(): never {
          throw "boom";
        },
      },
      trapThrows: new Proxy(
        {},
        {
          get() {
            throw new Error("trap");
          },
        },
      ),
      revokedFunction: (() => {
        const { proxy, revoke } = Proxy.revocable(() => {}, {});
        revoke();
        return proxy;
      })(),
      protoGetter: Object.create({
        get waitUntil(): never {
          throw new Error("p");
        },
      }),
    };
    const kv = { getWithMetadata: async () => ({ value: null, metadata: null }), put: async () => {} };
    const ns = { idFromName: (n: string) => n, get: () => ({ fetch: async () => Response.json({}) }) };
    for (const [name, c] of Object.entries(tries)) {
      for (const [store, make] of [
        ["kvStore", () => kvStore(kv, { ctx: c as never })],
        ["durableObjectStore", () => durableObjectStore(ns, { ctx: c as never })],
      ] as const) {
        let thrown: unknown;
        try {
          make();
        } catch (error) {
          thrown = error;
        }
        expect([name, thrown instanceof TypeError, String((thrown as Error)?.message)]).toEqual([
          name,
          true,
          `${store}: ctx must be the request's context, with waitUntil, got ${name === "revokedFunction" ? "a function" : "an object"}`,
        ]);
      }
    }
  });
});
