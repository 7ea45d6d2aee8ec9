import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CircuitOpenError, type Clock, createResilience } from "../../src/index.ts";
import { FallbackChain, retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { rejection } from "../helpers/settled.ts";

const T0 = 1_700_000_000_000;

/** A TestClock's timers with readings of your own: `read()` decides what `now()` answers. */
function clockReading(read: (time: number) => unknown): { clock: Clock; time: TestClock } {
  const time = new TestClock(T0);
  return { time, clock: { now: () => read(time.now()) as number, setTimer: (fn, ms) => time.setTimer(fn, ms) } };
}

const broken: [string, unknown, string][] = [
  ["NaN", Number.NaN, "got NaN"],
  ["Infinity", Number.POSITIVE_INFINITY, "got Infinity"],
  ["a numeric string", String(T0), `got "${T0}"`],
  ["a Date", new Date(T0), "got an object"],
  ["nothing", undefined, "got undefined"],
];

describe("a clock of yours whose now() answers no finite number", () => {
  it.each(broken)("%s: createResilience refuses it at once, naming the reading", (_, reading, shown) => {
    const { clock } = clockReading(() => reading);
    expect(() => createResilience({ clock })).toThrow(
      new TypeError(`clock.now() must answer a finite number, ${shown}`),
    );
    expect(() => createResilience({ clock, budget: false, breaker: false })).toThrow(TypeError);
  });

  it("one that turns NaN while a host is open fails the call with that error, and the host probes when it mends", async () => {
    let reading: (t: number) => unknown = (t) => t;
    const { clock, time } = clockReading((t) => reading(t));
    let failing = true;
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 2, successThreshold: 1, timeout: 1_000 },
      fetch: async () => new Response(failing ? "down" : "ok", { status: failing ? 503 : 200 }),
    });
    for (let i = 0; i < 2; i++) await (await layer.fetch("https://api.example/gen")).text();
    expect(await rejection(layer.fetch("https://api.example/gen"))).toBeInstanceOf(CircuitOpenError);

    // Taken as it was, NaN left the host open for good: every `now >= openUntil` is false.
    reading = () => Number.NaN;
    failing = false;
    await time.advance(5_000);
    const error = await rejection(layer.fetch("https://api.example/gen"));
    expect(error).toEqual(new TypeError("clock.now() must answer a finite number, got NaN"));

    reading = (t) => t;
    const mended = await layer.fetch("https://api.example/gen");
    expect(mended.status).toBe(200);
    expect(layer.health().breakers["api.example"]?.state).toBe("closed");
  });

  it("a FallbackChain given such a clock rejects with the error instead of ordering by NaN", async () => {
    const { clock } = clockReading(() => "soon");
    const chain = new FallbackChain<void, string>("c", { order: "adaptive", clock }).add(async () => "a", {
      name: "a",
    });
    expect(await rejection(chain.execute(undefined))).toEqual(
      new TypeError('clock.now() must answer a finite number, got "soon"'),
    );
  });

  it("retry(fn) reads no time: a clock whose now() is broken still times its waits", async () => {
    const { clock, time } = clockReading(() => Number.NaN);
    let calls = 0;
    const done = retry(
      async () => {
        calls++;
        if (calls < 3) throw new Error("flaky");
        return "ok";
      },
      { maxAttempts: 3, initialDelay: 100, clock },
    );
    expect(await time.run(done)).toBe("ok");
    expect(calls).toBe(3);
  });

  it("docs/options.md says so in the clock row", () => {
    const doc = readFileSync(new URL("../../docs/options.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain(
      "`now()` must answer a finite number of milliseconds: a reading that is not one (NaN, text, a `Date`) is refused as a `TypeError` naming it (`clock.now() must answer a finite number, got NaN`), at once by `createResilience` and `resilientProxy`, which read the clock when they are made, and later as a throw of the clock is",
    );
  });
});

describe("the proxy given such a clock", () => {
  it("refuses it when it is made, as it checks its other options, naming the reading", async () => {
    const { resilientProxy } = await import("../../src/cloudflare/index.ts");
    const { clock } = clockReading(() => Number.NaN);
    const made = () =>
      resilientProxy({
        routes: [{ path: "/v1", upstream: "https://a.example" }],
        resilience: { clock, fetch: async () => new Response("ok") },
      });
    expect(made).toThrow(new TypeError("clock.now() must answer a finite number, got NaN"));
  });
});

describe("a store given such a clock of its own", () => {
  it("kvStore refuses it when made, as it reads its clock then; durableObjectStore fails the call that reads it", async () => {
    const { kvStore, durableObjectStore } = await import("../../src/cloudflare/index.ts");
    const { clock } = clockReading(() => Number.NaN);
    const kv = { getWithMetadata: async () => ({ value: null, metadata: null }), put: async () => {} };
    expect(() => kvStore(kv, { clock })).toThrow(new TypeError("clock.now() must answer a finite number, got NaN"));
    const namespace = {
      idFromName: (name: string) => name,
      get: () => ({ fetch: async () => Response.json({ state: "closed", gen: 0 }) }),
    };
    const store = durableObjectStore(namespace, { clock, ctx: { waitUntil() {} } });
    const layer = createResilience({ store, retry: false, fetch: async () => new Response("ok") });
    const error = await rejection(layer.fetch("https://api.example/gen"));
    expect(error).toMatchObject({ cause: new TypeError("clock.now() must answer a finite number, got NaN") });
    const doc = readFileSync(new URL("../../docs/cloudflare.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain(
      "One given a `clock` of its own paces its reads, writes and reports on that clock alone, each reading checked as the layer checks a clock of yours (a `TypeError` for one that is no finite number: `kvStore` reads its clock when it is made, `durableObjectStore` on the first call that asks it, which fails)",
    );
  });
});
