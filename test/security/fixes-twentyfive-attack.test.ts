/**
 * Outside-in attack on today's fixes (CHANGELOG.md's newest "### Fixed" entries): listener snapshots, stores
 * that throw, options kept as checked, the health endpoint's Bearer spaces, a chain's `respond` that throws.
 * Docs: docs/health-and-events.md (EventTarget sentence), docs/options.md ("Options are read once, when they are
 * checked"), docs/breakers.md (a store's throw "fails the call"), SECURITY.md ("The library's stores cannot break
 * or stall a request"), docs/cloudflare.md (Bearer, "one or more spaces"), docs/fallback.md (`respond`).
 * How: `createResilience` (root), `fallback` (./fallback), `resilientProxy` (./cloudflare), `TestClock`
 * (./testing), a recording transport; options objects with counting getters (the number of reads the check
 * and copy take is measured first, with a getter that always answers the same, so the hostile getter differs
 * only at the read that comes after the check).
 * Paths: plain call, chain, proxy upstream route, proxy chain route, proxy health endpoint, half-open probe
 * with a user's store.
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour):
 * 1. docs/health-and-events.md "As with the DOM's `EventTarget`, an event goes to the listeners subscribed
 *    when it fired, less any unsubscribed meanwhile". Observed: a listener A that unsubscribes B and
 *    subscribes B again while the event is dispatched makes B run for that event (calls ["a", "b"]; DOM
 *    skips the removed entry and the new one is not in the snapshot). `emit` checks `set.has(listener)`,
 *    which is true again after the re-subscribe.
 * 2. docs/options.md "Options are read once, when they are checked: `createResilience`, `fallback([…])`,
 *    `degradation({…})`, the ky client and `resilientProxy` keep what they checked". Observed (fallback):
 *    `plainCopy` reads the options again after `checkOptions` (4 reads of an endpoint's `url`: 3 by the check,
 *    1 by the copy); a getter answering https://a.example/ to the check and https://b.example/ to the copy
 *    makes the chain start at b.example: a call to https://a.example/job no longer goes down chain "c"
 *    (`getResilienceInfo(res).endpoint` is "a.example", not "a").
 * 3. Same sentence (createResilience). Observed: `resolveOptions` checks, then reads `retry.maxAttempts` again
 *    to resolve it; a getter answering 1 to the check and 2.5 (refused: "int>=1") after makes a call against a
 *    503 upstream send 3 attempts, not 1.
 * 4. Same sentence (resilientProxy). Observed: the route's `upstream` is read again by `plainCopy` after every
 *    check; a getter answering https://a.example to the checks and https://b.example to the copy makes
 *    /v1/jobs go to https://b.example/jobs.
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
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerStore, createResilience, getResilienceInfo } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

afterEach(() => {
  vi.useRealTimers();
});

/** An object whose `key` getter counts its reads and answers `pick(n)` at the n-th (1-based). */
function counted<T>(key: string, pick: (n: number) => T, rest: Record<string, unknown> = {}) {
  const state = { reads: 0 };
  const obj = { ...rest };
  Object.defineProperty(obj, key, {
    enumerable: true,
    configurable: true,
    get: () => pick(++state.reads),
  });
  return { obj, state };
}

describe("events: a snapshot of listeners, as DOM's EventTarget", () => {
  it.fails("a listener unsubscribed and subscribed again during dispatch is not called for that event", async () => {
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

describe("options read once, when checked", () => {
  // docs/options.md: "Options are read once, when they are checked: `createResilience`,
  // `fallback([…])`, `degradation({…})`, the ky client and `resilientProxy` keep what they
  // checked, so an edit to your objects afterwards changes nothing". A getter is counted
  // first (the check's reads, and any after them); then one answers the same at every read
  // but the last, which only a reading after the check meets.

  it.fails("fallback([…]): the endpoint URL a chain routes by is the one checked, not one read after", async () => {
    const probe = counted("url", () => "https://a.example/", { name: "a" });
    fallback([{ name: "c", endpoints: [probe.obj as { name: string; url: string }] }]);
    const total = probe.state.reads;
    const hostile = counted("url", (n) => (n < total ? "https://a.example/" : "https://b.example/"), { name: "a" });
    const stage = fallback([{ name: "c", endpoints: [hostile.obj as { name: string; url: string }] }]);
    const { fetch, sent } = recordingFetch();
    const r = createResilience({ fetch, fallback: stage, breaker: false });
    const res = await r.fetch("https://a.example/job");
    // Checked: chain "c" starts at https://a.example/, so this call goes down it and "a" serves.
    expect({ endpoint: getResilienceInfo(res)?.endpoint, sent: sent.map((s) => s.url) }).toEqual({
      endpoint: "a",
      sent: ["https://a.example/job"],
    });
  });

  it.fails("createResilience: retry.maxAttempts is the value checked, not a refused one read after", async () => {
    const probe = counted("maxAttempts", () => 1);
    createResilience({ fetch: async () => new Response("ok"), retry: probe.obj as { maxAttempts: number } });
    const total = probe.state.reads;
    // 2.5 is refused by the check ("int>=1"); only a read after the check meets it.
    const hostile = counted("maxAttempts", (n) => (n < total ? 1 : 2.5));
    const clock = new TestClock();
    const { fetch, sent } = recordingFetch(() => new Response("busy", { status: 503 }));
    const r = createResilience({ fetch, clock, breaker: false, retry: hostile.obj as { maxAttempts: number } });
    const res = await clock.run(r.fetch("https://api.example/x"));
    expect({ status: res.status, sent: sent.length }).toEqual({ status: 503, sent: 1 });
  });

  it.fails("resilientProxy: a route's upstream is the one checked, not one read after", async () => {
    const route = (upstream: { obj: Record<string, unknown> }) => upstream.obj as { path: string; upstream: string };
    const { fetch, sent } = recordingFetch();
    const probe = counted("upstream", () => "https://a.example", { path: "/v1" });
    resilientProxy({ routes: [route(probe)], resilience: { fetch, breaker: false } });
    const total = probe.state.reads;
    const hostile = counted("upstream", (n) => (n < total ? "https://a.example" : "https://b.example"), {
      path: "/v1",
    });
    const proxy = resilientProxy({ routes: [route(hostile)], resilience: { fetch, breaker: false } });
    const res = await proxy.fetch(new Request("https://worker.example/v1/jobs"), {}, { waitUntil: () => {} });
    expect({ status: res.status, sent: sent.map((s) => s.url) }).toEqual({
      status: 200,
      sent: ["https://a.example/jobs"],
    });
  });
});

describe("a store of one's own that throws", () => {
  // docs/breakers.md: "Its `publish`, `peek` and `record` run on the request's path: what they throw fails
  // the call"; SECURITY.md: "The library's stores cannot break or stall a request". The call, not the next ones.
  it.fails("a record that throws once on a half-open probe fails that call only: the next call may probe", async () => {
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
