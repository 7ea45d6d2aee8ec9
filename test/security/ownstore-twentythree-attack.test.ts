/**
 * Outside-in attack on a breaker store of the user's own. Docs: the
 * `BreakerStore` contract's JSDoc (src/stores/breaker-store.ts), docs/breakers.md
 * "Shared breaker state" and "A clock set back", docs/health-and-events.md
 * (`breaker` and `store` events), SECURITY.md "A store cannot break or stall
 * a request", the `memoryStore` JSDoc as the model.
 * How: `createResilience` (root entry) with stores written here from the
 * exported `BreakerStore` type only (a tabs store over a BroadcastChannel-like
 * bus, whose `peek` returns what other tabs published; a Redis-like one that
 * keeps JSON; faulty ones that throw), `fallback` (fallback entry), time on the
 * testing entry's `TestClock`.
 * Paths: plain calls, a retry waiting out its backoff, a fallback chain over two
 * hosts, a redirect to another host, `health()`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * 1 is fixed, so plain `it`: the layer takes a snapshot equal to one it merged as no news; 2 and 3 were read
 * against SECURITY.md's "A store cannot break or stall a request", which now speaks of the library's stores and
 * says a store of one's own must keep the contract, whose JSDoc now says the layer does not catch what `publish`,
 * `peek` and `record` throw; the tests assert those sentences and that behaviour):
 * 1. src/stores/breaker-store.ts (`peek`) "The freshest snapshot of `key` seen
 *    from elsewhere, without waiting." with docs/breakers.md "The local breaker
 *    stays authoritative; a store only spreads transitions (`publish`)" and
 *    "times order them". A tabs store whose `peek` returns that snapshot as an
 *    equal copy each time (JSON kept per key, as a Redis-like or
 *    BroadcastChannel store may) makes one unchanged half-open snapshot of tab
 *    A push tab B back to half-open after each of B's own closes: in 6 calls
 *    B's events run `closed>half_open`, `half_open>closed` three times over,
 *    and `health()` then reads B `half_open` (its read of the store pushes it
 *    again); the same store returning the same object each time leaves B
 *    `closed` after one adoption. The layer
 *    tells "already merged" by object identity (`remote !== entry.adopted`,
 *    src/policies/breaker-registry.ts), a requirement only the source reveals.
 * 2. SECURITY.md "A store cannot break or stall a request". A store whose `peek`
 *    throws fails every call before anything is sent (`RetryExhaustedError`
 *    "gave up after 0 attempts to a.example: peek boom", 0 fetches) and makes
 *    `health()` throw the store's error.
 * 3. docs/health-and-events.md "`breaker` fires on every state change". With a
 *    store whose `publish` throws, the trip still happens (`health()` shows the
 *    host open, the next call is refused) but no `breaker` event fires, and the
 *    503 that tripped it is lost: the call rejects with `RetryExhaustedError`
 *    quoting the store's "publish boom".
 *    (2 and 3 are faulty stores: the contract's JSDoc says `publish`, `peek`
 *    and `record` "never throw into a request", which can be read as the store's
 *    duty; SECURITY.md's row promises the layer's side, and the layer calls
 *    `peek`/`publish` unguarded, while it does guard a throwing `acquireProbe`.)
 *
 * Held (plain `it`):
 * - "publish on every transition", a merged remote snapshot not echoed back:
 *   plain calls through closed > open > half_open > closed.
 * - "a host one opened is open for all, for a retry waiting out its backoff
 *   too": a retry of layer B is refused once layer A opens the host meanwhile.
 * - a chain passes over an endpoint another layer opened ("circuit open"
 *   `fallback` event, nothing sent to it); a redirect's hop to it is refused.
 * - "An open state read back from a store ... dated ahead of this clock ...
 *   waits its own length from now too": a snapshot dated a day ahead holds 5 s.
 * - an async `acquireProbe` that rejects: "the local breaker decides".
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  type BreakerSnapshot,
  type BreakerStore,
  CircuitOpenError,
  createResilience,
  isCircuitOpenError,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

const T0 = 1_000_000;
const URL_A = "https://a.example/x";
const URL_B = "https://b.example/x";

/** One breaker trip per failure, 1 s open, no failure-rate rule. */
const quickBreaker = { failureThreshold: 1, failureRate: undefined, timeout: 1000 } as never;

async function outcome(call: Promise<Response>): Promise<number | string> {
  try {
    return (await call).status;
  } catch (error) {
    if (isCircuitOpenError(error)) return "open";
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

/**
 * Tabs over a BroadcastChannel-like bus: a tab's `publish` reaches the other
 * tabs, and its `peek` returns the freshest snapshot seen from elsewhere
 * (never its own). `copies`: each tab keeps the JSON text and `peek` returns
 * it parsed (an equal copy each time), else the object received.
 */
function tabsBus(copies: boolean): () => BreakerStore {
  const tabs: Array<Map<string, string | BreakerSnapshot>> = [];
  return () => {
    const seen = new Map<string, string | BreakerSnapshot>();
    tabs.push(seen);
    return {
      name: "tabs",
      publish(key, snapshot) {
        for (const tab of tabs)
          if (tab !== seen) tab.set(key, copies ? JSON.stringify(snapshot) : structuredClone(snapshot));
      },
      peek(key) {
        const value = seen.get(key);
        return typeof value === "string" ? (JSON.parse(value) as BreakerSnapshot) : value;
      },
    };
  };
}

/** Tab A trips a.example and goes half-open (one probe of two succeeded); then tab B calls 6 times. */
async function halfOpenElsewhere(copies: boolean): Promise<{ events: string[]; state: string | undefined }> {
  const clock = new TestClock(T0);
  const tab = tabsBus(copies);
  let healthy = false;
  const events: string[] = [];
  const layer = (name: string) => {
    const resilience = createResilience({
      clock,
      store: tab(),
      retry: false,
      breaker: quickBreaker,
      fetch: async () => new Response(null, { status: healthy ? 200 : 503 }),
    });
    resilience.on("breaker", (e: BreakerEvent) => events.push(`${name} ${e.from}>${e.to}`));
    return resilience;
  };
  const a = layer("A");
  const b = layer("B");
  expect(await outcome(clock.run(a.fetch(URL_A)))).toBe(503);
  await clock.advance(1500);
  healthy = true;
  expect(await outcome(clock.run(a.fetch(URL_A)))).toBe(200); // A's first probe: A stays half-open
  for (let i = 0; i < 6; i++) {
    await clock.advance(10);
    expect(await outcome(clock.run(b.fetch(URL_A)))).toBe(200);
  }
  return { events: events.filter((e) => e.startsWith("B ")), state: b.health().breakers["a.example"]?.state };
}

describe("a store of the user's own: what the contract says of peek", () => {
  it("control: a tabs store whose peek returns the same object takes A's half-open once, then B stays closed", async () => {
    const { events, state } = await halfOpenElsewhere(false);
    expect(events).toEqual(["B closed>half_open", "B half_open>closed"]);
    expect(state).toBe("closed");
  });

  // Defect 1: "The freshest snapshot of `key` seen from elsewhere, without waiting."
  // + "a store only spreads transitions (`publish`)" + "times order them".
  it("1. peek returning the same snapshot as an equal copy: B closes once and stays closed (no flapping)", async () => {
    const { events, state } = await halfOpenElsewhere(true);
    expect(events).toEqual(["B closed>half_open", "B half_open>closed"]);
    expect(state).toBe("closed");
  });
});

describe("a store that throws: the contract says it must not, and what it throws fails the call", () => {
  // Defects 2 and 3 were against SECURITY.md's "A store cannot break or stall a request", which now speaks of the
  // library's stores, and says a store of one's own must keep the contract, whose JSDoc now says why.
  const contract = readFileSync(new URL("../../src/stores/breaker-store.ts", import.meta.url), "utf8").replace(
    /\n \* /g,
    " ",
  );
  const security = readFileSync(new URL("../../SECURITY.md", import.meta.url), "utf8");

  it("2. the contract and SECURITY.md say it; a store whose peek throws fails the call with its error, nothing sent", async () => {
    expect(contract).toContain(
      "`publish`, `peek` and `record` must never throw or make a request wait (the layer calls them on the request's path and does not catch what they throw: the call would fail with it)",
    );
    expect(security).toContain("| The library's stores cannot break or stall a request");
    expect(security).toContain(
      "A store of your own must keep the `BreakerStore` contract: its `publish`, `peek` and `record` run on the request's path, and what they throw fails the call",
    );
    const clock = new TestClock(T0);
    let sent = 0;
    const store: BreakerStore = {
      name: "throws-on-peek",
      publish: () => {},
      peek: () => {
        throw new Error("peek boom");
      },
    };
    const resilience = createResilience({
      clock,
      store,
      retry: false,
      fetch: async () => {
        sent++;
        return new Response(null, { status: 200 });
      },
    });
    await expect(clock.run(resilience.fetch(URL_A))).rejects.toThrow("peek boom");
    expect(sent).toBe(0);
  });

  it("3. a store whose publish throws fails the call that tripped the host with its error; the host is open", async () => {
    const clock = new TestClock(T0);
    const store: BreakerStore = {
      name: "throws-on-publish",
      publish: () => {
        throw new Error("publish boom");
      },
      peek: () => undefined,
    };
    const resilience = createResilience({
      clock,
      store,
      retry: false,
      breaker: quickBreaker,
      fetch: async () => new Response(null, { status: 503 }),
    });
    await expect(clock.run(resilience.fetch(URL_A))).rejects.toThrow("publish boom");
    expect(resilience.health().breakers["a.example"]?.state).toBe("open");
  });
});

describe("a correct store of the user's own: what held", () => {
  it("publish gets every local transition, and a merged remote snapshot is not echoed back", async () => {
    const clock = new TestClock(T0);
    const published: string[] = [];
    let remote: BreakerSnapshot | undefined;
    const store: BreakerStore = {
      name: "recording",
      publish: (key, snapshot) => published.push(`${key} ${snapshot.state} ${snapshot.reason}`),
      peek: () => remote,
    };
    let healthy = false;
    const resilience = createResilience({
      clock,
      store,
      retry: false,
      breaker: quickBreaker,
      fetch: async () => new Response(null, { status: healthy ? 200 : 503 }),
    });
    expect(await outcome(clock.run(resilience.fetch(URL_A)))).toBe(503);
    await clock.advance(1500);
    healthy = true;
    expect(await outcome(clock.run(resilience.fetch(URL_A)))).toBe(200);
    expect(await outcome(clock.run(resilience.fetch(URL_A)))).toBe(200);
    expect(published).toEqual([
      "a.example open 1 failure in a row (last: status 503)",
      "a.example half_open timeout elapsed",
      "a.example closed 2 successful probes",
    ]);
    // A remote open is merged (the call is refused), and not published back.
    remote = {
      v: 1,
      state: "open",
      gen: 7,
      failures: [],
      window: null,
      lastFailureTime: null,
      openUntil: clock.now() + 5000,
      leases: [],
      successes: 0,
      reason: "elsewhere",
      changedAt: clock.now(),
    };
    expect(await outcome(clock.run(resilience.fetch(URL_A)))).toBe("open");
    expect(published).toHaveLength(3);
  });

  it("a host another layer opens is open for a retry of this one waiting out its backoff", async () => {
    const clock = new TestClock(T0);
    const bus = tabsBus(false);
    let sentByB = 0;
    const a = createResilience({
      clock,
      store: bus(),
      retry: false,
      breaker: quickBreaker,
      fetch: async () => new Response(null, { status: 503 }),
    });
    const b = createResilience({
      clock,
      store: bus(),
      retry: { maxAttempts: 3 },
      breaker: { failureThreshold: 5, failureRate: undefined } as never,
      fetch: async () => {
        sentByB++;
        return new Response(null, { status: 503 });
      },
    });
    const call = b.fetch(URL_A);
    await clock.waitForTimers(1); // B's first attempt failed; its backoff runs
    expect(await outcome(clock.run(a.fetch(URL_A)))).toBe(503); // A trips the host meanwhile
    const status = await outcome(clock.run(call));
    // The retry does not leave: the call settles with the answer it has.
    expect(sentByB).toBe(1);
    expect(status).toBe(503);
  });

  it("a chain passes over an endpoint another layer opened; a redirect's hop to it is refused", async () => {
    const clock = new TestClock(T0);
    const bus = tabsBus(false);
    // Every tab listens before the host opens (a bus reaches the tabs open then).
    const [openerTab, chainTab, redirectTab] = [bus(), bus(), bus()];
    const opener = createResilience({
      clock,
      store: openerTab,
      retry: false,
      breaker: quickBreaker,
      fetch: async () => new Response(null, { status: 503 }),
    });
    expect(await outcome(clock.run(opener.fetch(URL_B)))).toBe(503);
    const sent: string[] = [];
    const chained = createResilience({
      clock,
      store: chainTab,
      retry: false,
      fallback: fallback([
        {
          name: "two",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
      fetch: async (input) => {
        sent.push(new Request(input).url);
        return new Response(null, { status: 503 });
      },
    });
    const passed: string[] = [];
    chained.on("fallback", (e) => passed.push(`${e.from} ${String(e.reason)}`));
    const status = await outcome(clock.run(chained.fetch("https://a.example/v1/job")));
    expect(sent).toEqual(["https://a.example/v1/job"]);
    expect(passed).toContain("b circuit open");
    expect(status).not.toBe(200);

    const hops: string[] = [];
    const redirected = createResilience({
      clock,
      store: redirectTab,
      retry: false,
      fetch: async (input) => {
        const url = new Request(input).url;
        hops.push(url);
        return url.startsWith("https://a.example")
          ? new Response(null, { status: 302, headers: { location: "https://b.example/y" } })
          : new Response(null, { status: 200 });
      },
    });
    const error = await clock.run(redirected.fetch(URL_A)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(hops).toEqual([URL_A]);
  });

  it("an open snapshot dated a day ahead of this clock holds its own length (5 s) from now", async () => {
    const clock = new TestClock(T0);
    const ahead = T0 + 86_400_000;
    const snapshot: BreakerSnapshot = {
      v: 1,
      state: "open",
      gen: 1,
      failures: [],
      window: null,
      lastFailureTime: null,
      openUntil: ahead + 5000,
      leases: [],
      successes: 0,
      reason: "ahead",
      changedAt: ahead,
    };
    const resilience = createResilience({
      clock,
      store: { name: "ahead", publish: () => {}, peek: () => snapshot },
      retry: false,
      fetch: async () => new Response(null, { status: 200 }),
    });
    expect(await outcome(clock.run(resilience.fetch(URL_A)))).toBe("open");
    expect(resilience.health().breakers["a.example"]?.openUntil).toBe(T0 + 5000);
    await clock.advance(5001);
    expect(await outcome(clock.run(resilience.fetch(URL_A)))).toBe(200);
  });

  it("an acquireProbe that rejects leaves the probe to the local breaker, with nothing left pending", async () => {
    const clock = new TestClock(T0);
    let healthy = false;
    const store: BreakerStore = {
      name: "flaky-coordinator",
      publish: () => {},
      peek: () => undefined,
      acquireProbe: async () => {
        throw new Error("coordinator down");
      },
    };
    const resilience = createResilience({
      clock,
      store,
      retry: false,
      breaker: quickBreaker,
      fetch: async () => new Response(null, { status: healthy ? 200 : 503 }),
    });
    expect(await outcome(clock.run(resilience.fetch(URL_A)))).toBe(503);
    await clock.advance(1500);
    healthy = true;
    expect(await outcome(clock.run(resilience.fetch(URL_A)))).toBe(200);
    expect(await outcome(clock.run(resilience.fetch(URL_A)))).toBe(200);
    await flush();
    expect(resilience.health().breakers["a.example"]?.state).toBe("closed");
    expect(clock.pending()).toBe(0);
  });
});
