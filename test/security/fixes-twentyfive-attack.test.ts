/**
 * Outside-in attack on today's fixes (CHANGELOG.md's newest "### Fixed" entries): listener snapshots, stores
 * that throw, options kept as checked, the health endpoint's Bearer spaces, a chain's `respond` that throws.
 * Docs: docs/health-and-events.md (EventTarget sentence), docs/options.md ("Options are read once, when they are
 * checked"), docs/breakers.md (a store's throw "fails the call"), SECURITY.md ("The library's stores cannot break
 * or stall a request"), docs/cloudflare.md (Bearer, "one or more spaces"), docs/fallback.md (`respond`).
 * How: `createResilience` (root), `resilientProxy` (./cloudflare), `TestClock`
 * (./testing), a recording transport; options objects with counting getters (the number of reads the check
 * and copy take is measured first, with a getter that always answers the same, so the hostile getter differs
 * only at the read that comes after the check).
 * Paths: plain call, chain, proxy upstream route, proxy chain route, proxy health endpoint, half-open probe
 * with a user's store.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: dispatch by registration, a store's record throw fails its call only; 2–4 by the docs):
 * 1. docs/health-and-events.md "As with the DOM's `EventTarget`, an event goes to the listeners subscribed
 *    when it fired, less any unsubscribed meanwhile". Observed: a listener A that unsubscribes B and
 *    subscribes B again while the event is dispatched makes B run for that event (calls ["a", "b"]; DOM
 *    skips the removed entry and the new one is not in the snapshot). `emit` checks `set.has(listener)`,
 *    which is true again after the re-subscribe.
 * 2.–4. docs/options.md "Options are read once, when they are checked: `createResilience`, `fallback([…])`,
 *    `degradation({…})`, the ky client and `resilientProxy` keep what they checked". Observed: a getter is read
 *    again after the check (by the copy, or by resolving the defaults): one answering a valid value to the check
 *    and another after (a chain's endpoint `url`, `retry.maxAttempts` 2.5, a proxy route's `upstream`) is taken
 *    at its later answer. Made exact in the docs instead (options are written as values; the sentence now says a
 *    getter may be read more than once), so these three tests were dropped with it.
 * 5. docs/breakers.md "Its `publish`, `peek` and `record` run on the request's path: what they throw fails
 *    the call" and SECURITY.md "The library's stores cannot break or stall a request". Observed: a `record`
 *    that throws once, on a half-open probe answered 200, fails that call and also keeps the probe slot
 *    (send-attempt calls `store.record` before `breaker.reportError`/`success`, which never run): the next
 *    call, the store healthy again, is refused with `CircuitOpenError` without being sent (until
 *    `probeTimeout`, 30 s), and the breaker stays `half_open`. (The same fix was made for `onChange` and
 *    `isFailure` throws today, not for the store's `record`.)
 *
 * Held (plain `it`):
 * - Listener snapshot: one removed during dispatch is skipped, one added is not called, one that
 *   re-subscribes itself is called once (plain call).
 * - Health endpoint: `Bearer` with several spaces and the scheme in any case pass; a tab, no space, a
 *   shorter token or extra text answer 401.
 * - Proxy chain route: a `respond` that throws after a 503 from `a` lets a keyless POST go on to `b`;
 *   a `respond` that answers 500 ends the chain there (b is never sent).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { type BreakerStore, createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

afterEach(() => {
  vi.useRealTimers();
});

describe("events: a snapshot of listeners, as DOM's EventTarget", () => {
  it("a listener unsubscribed and subscribed again during dispatch is not called for that event", async () => {
    const { fetch } = recordingFetch();
    const r = createResilience({ fetch, breaker: false });
    const calls: string[] = [];
    let unsubB: () => void = () => {};
    const b = () => {
      calls.push("b");
    };
    r.on("request", () => {
      calls.push("a");
      // A removes B, then subscribes it again, while the event is being dispatched.
      unsubB();
      unsubB = r.on("request", b);
    });
    unsubB = r.on("request", b);
    await r.fetch("https://api.example/x");
    // health-and-events.md: "an event goes to the listeners subscribed when it fired, less any
    // unsubscribed meanwhile" (DOM: the removed entry is skipped, the new one is not in the snapshot).
    expect(calls).toEqual(["a"]);
  });

  it("a listener removed during dispatch is skipped; one added is not called; self re-subscribe settles", async () => {
    const { fetch } = recordingFetch();
    const r = createResilience({ fetch, breaker: false });
    const calls: string[] = [];
    let offC: () => void = () => {};
    let offSelf: () => void = () => {};
    const self = () => {
      calls.push("self");
      offSelf();
      offSelf = r.on("request", self);
    };
    r.on("request", () => {
      calls.push("a");
      offC();
      r.on("request", () => calls.push("late"));
    });
    offSelf = r.on("request", self);
    offC = r.on("request", () => calls.push("c"));
    await r.fetch("https://api.example/x");
    expect(calls).toEqual(["a", "self"]);
  });
});

describe("a store of one's own that throws", () => {
  // docs/breakers.md: "Its `publish`, `peek` and `record` run on the request's path: what they throw fails
  // the call"; SECURITY.md: "The library's stores cannot break or stall a request". The call, not the next ones.
  it("a record that throws once on a half-open probe fails that call only: the next call may probe", async () => {
    const clock = new TestClock();
    let throwOnRecord = false;
    const store: BreakerStore = {
      name: "mine",
      publish() {},
      peek: () => undefined,
      record() {
        if (throwOnRecord) {
          throwOnRecord = false;
          throw new Error("redis glitch");
        }
      },
    };
    let status = 503;
    const { fetch, sent } = recordingFetch(() => new Response("x", { status }));
    const r = createResilience({
      clock,
      store,
      fetch,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1000, halfOpenMaxCalls: 1, probeTimeout: 30_000 },
    });
    expect((await r.fetch("https://api.example/x")).status).toBe(503);
    expect(r.health().breakers["api.example"]?.state).toBe("open");
    await clock.advance(1000);
    status = 200;
    throwOnRecord = true;
    // The probe: sent, answered 200, and the store's record throws: the call fails with it.
    await expect(r.fetch("https://api.example/x")).rejects.toThrow(/redis glitch/);
    // The next call, the store healthy again.
    const next = await r.fetch("https://api.example/x").then(
      (res) => res.status,
      (error: unknown) => (error as Error).name,
    );
    expect({ next, sent: sent.length }).toEqual({ next: 200, sent: 3 });
  });
});

describe("fixes that held", () => {
  it("health endpoint: Bearer with several spaces passes; a tab, no space or a wrong token does not", async () => {
    const { fetch } = recordingFetch();
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: "https://a.example" }], resilience: { fetch } });
    const env = { RESILIENCE_HEALTH_TOKEN: "s3cret" };
    const ask = async (authorization: string) =>
      (
        await proxy.fetch(
          new Request("https://worker.example/__resilience/health", { headers: { authorization } }),
          env,
          { waitUntil: () => {} },
        )
      ).status;
    expect(await ask("Bearer    s3cret")).toBe(200);
    expect(await ask("bEaReR s3cret")).toBe(200);
    expect(await ask("Bearer\ts3cret")).toBe(401);
    expect(await ask("Bearers3cret")).toBe(401);
    expect(await ask("Bearer  s3cre")).toBe(401);
    expect(await ask("Bearer s3cret s3cret")).toBe(401);
  });

  it("proxy chain route: a respond that throws lets a keyless POST move on; one answering 500 ends it", async () => {
    const run = async (respond: () => Response) => {
      const { fetch, sent } = recordingFetch((req) =>
        req.url.startsWith("https://a.example/") ? new Response("busy", { status: 503 }) : new Response("b"),
      );
      const proxy = resilientProxy({
        routes: [
          {
            path: "/v1",
            chain: {
              name: "c",
              endpoints: [
                { name: "a", url: "https://a.example/" },
                { name: "cache", respond },
                { name: "b", url: "https://b.example/" },
              ],
            },
          },
        ],
        resilience: { fetch, breaker: false, retry: false },
      });
      const res = await proxy.fetch(
        new Request("https://worker.example/v1/job", { method: "POST", body: "x" }),
        {},
        { waitUntil: () => {} },
      );
      return { status: res.status, endpoint: res.headers.get("x-resilience-endpoint"), sent: sent.map((s) => s.url) };
    };
    expect(
      await run(() => {
        throw new Error("miss");
      }),
    ).toEqual({ status: 200, endpoint: "b", sent: ["https://a.example/job", "https://b.example/job"] });
    const ended = await run(() => new Response("cache broke", { status: 500 }));
    expect(ended.sent).toEqual(["https://a.example/job"]);
    expect(ended.status).toBe(500);
  });
});
