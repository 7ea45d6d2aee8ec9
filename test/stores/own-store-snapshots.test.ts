import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createResilience, isRetryExhaustedError, type StoreEvent } from "../../src/index.ts";
import type { BreakerSnapshot, BreakerStore } from "../../src/stores/breaker-store.ts";
import { TestClock } from "../../src/testing/index.ts";
import { rejection } from "../helpers/settled.ts";

const T0 = 1_700_000_000_000;
const open: BreakerSnapshot = {
  v: 1,
  state: "open",
  gen: 3,
  failures: [],
  window: null,
  lastFailureTime: T0 - 1_000,
  openUntil: T0 + 60_000,
  leases: [],
  successes: 0,
  reason: "3 failures in a row",
  changedAt: T0 - 1_000,
  trip: null,
};

/** A layer over a store of your own whose `peek` answers `answer` for every host. */
function layerOver(answer: () => unknown) {
  const sent: string[] = [];
  const store: BreakerStore = { name: "own", publish() {}, peek: () => answer() as BreakerSnapshot };
  const layer = createResilience({
    store,
    clock: new TestClock(T0),
    retry: false,
    fetch: async (input) => {
      sent.push(String(input instanceof Request ? input.url : input));
      return new Response("ok");
    },
  });
  const events: StoreEvent[] = [];
  layer.on("store", (e) => events.push(e));
  return { layer, sent, events };
}

const docs = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), "utf8").replace(/\s+/g, " ");

describe("what a store of your own's peek answers", () => {
  it("null is nothing seen, as undefined is: the call goes, no event", async () => {
    for (const answer of [null, undefined]) {
      const { layer, sent, events } = layerOver(() => answer);
      expect((await layer.fetch("https://api.example/x")).status).toBe(200);
      expect(layer.health().breakers).toMatchObject({ "api.example": { state: "closed" } });
      expect([sent.length, events]).toEqual([1, []]);
    }
    expect(docs("docs/breakers.md")).toContain(
      "`null` is nothing seen, as `undefined` is (a missing key read back as JSON).",
    );
  });

  it("a well-formed open snapshot holds the host: an openUntil of Infinity too (a day at most), one without v", async () => {
    const { v: _, ...withoutVersion } = open;
    for (const answer of [open, { ...open, openUntil: Number.POSITIVE_INFINITY }, withoutVersion]) {
      const { layer, sent, events } = layerOver(() => answer);
      expect(((await rejection(layer.fetch("https://api.example/x"))) as Error).name).toBe("CircuitOpenError");
      expect([sent, events]).toEqual([[], []]);
    }
  });

  it("a value the breaker cannot merge is no snapshot: the call goes, with a read event on every read", async () => {
    const unmergeable: Array<[string, unknown]> = [
      ["another version", { ...open, v: 2 }],
      ["an unknown state", { ...open, state: "tripped" }],
      ["an empty object", {}],
      ["a number", 42],
      ["a gen written as text", { ...open, gen: "9" }],
      ["a changedAt that is NaN", { ...open, changedAt: Number.NaN }],
      ["open without openUntil", { ...open, openUntil: null }],
      ["open until a time written as text", { ...open, openUntil: String(T0 + 60_000) }],
      ["a reason code", { ...open, reason: 503 }],
      [
        "a trip whose lastError is no text",
        { ...open, trip: { ...{ consecutive: 3, failures: 3, calls: 3, rate: 1 }, lastError: 503 } },
      ],
      ["a lastFailureTime written as text", { ...open, lastFailureTime: "yesterday" }],
      [
        "a trip's counts as a Redis hash gives them",
        { ...open, trip: { consecutive: "3", failures: "3", calls: "3", rate: "1", lastError: null } },
      ],
      [
        "a trip count holding a URL",
        {
          ...open,
          trip: { consecutive: 3, failures: "https://u:pw@h.example/?key=SECRET", calls: 3, rate: 1, lastError: null },
        },
      ],
      ["a BigInt trip count", { ...open, trip: { consecutive: 1n, failures: 1, calls: 1, rate: 1, lastError: null } }],
      ["a version written as text", { ...open, v: "1" }],
    ];
    for (const [what, answer] of unmergeable) {
      const { layer, sent, events } = layerOver(() => answer);
      expect([what, (await layer.fetch("https://api.example/x")).status]).toEqual([what, 200]);
      layer.health();
      expect([what, sent.length]).toEqual([what, 1]);
      expect(events.map((e) => [e.operation, e.outcome, e.detail])).toEqual(
        Array(2).fill(["read", "skipped", "peek returned no snapshot the breaker can merge"]),
      );
    }
    expect(docs("docs/breakers.md")).toContain(
      'A value the breaker cannot merge is no snapshot either, with a `read` event (outcome `skipped`, "peek returned no snapshot the breaker can merge") on every read',
    );
    expect(docs("SECURITY.md")).toContain(
      "what a store of your own's `peek` answers is checked field by field (version, state, `gen`, times and a trip's counts that are numbers, words that are text), and one the breaker cannot merge is no snapshot, with a `store` event too",
    );
  });

  it("each field is read once: a reason that is text when checked cannot be a number when merged", async () => {
    let reads = 0;
    const flipping = new Proxy(open, {
      get: (target, key) =>
        key === "reason" ? (++reads % 2 === 1 ? "held elsewhere" : 503) : Reflect.get(target, key),
    });
    const { layer, sent, events } = layerOver(() => flipping);
    for (let n = 0; n < 2; n++)
      expect(((await rejection(layer.fetch("https://api.example/x"))) as Error).name).toBe("CircuitOpenError");
    expect(layer.health().breakers["api.example"]).toMatchObject({ state: "open", reason: "shared: held elsewhere" });
    // The reads that gave 503 are no snapshot (an event each); the one that gave text opened the host.
    expect(sent).toEqual([]);
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) expect(e.detail).toBe("peek returned no snapshot the breaker can merge");
    expect(docs("docs/breakers.md")).toContain(
      "The layer reads each field it merges once, into a copy, so a value that changes between the check and the merge (a getter, a Proxy) cannot slip through.",
    );
  });

  it("a snapshot whose field throws when read is the store's failure, as a throw from peek is", async () => {
    const { layer, sent } = layerOver(() => ({
      ...open,
      get state(): never {
        throw new Error("redis: connection lost");
      },
    }));
    const error = await rejection(layer.fetch("https://api.example/x"));
    expect(isRetryExhaustedError(error) && [error.attempts, (error.cause as Error).message]).toEqual([
      0,
      "redis: connection lost",
    ]);
    expect([sent.length, layer.debugInfo().totals.calls]).toEqual([0, 1]);
  });

  it("an event a store hands over through connect reaches listeners with its URLs cut", () => {
    let emit: ((e: StoreEvent) => void) | undefined;
    const store: BreakerStore = {
      name: "own",
      publish() {},
      peek: () => undefined,
      connect(listener) {
        emit = listener;
        return () => {};
      },
    };
    const layer = createResilience({ store });
    const heard: StoreEvent[] = [];
    layer.on("store", (e) => heard.push(e));
    const event: StoreEvent = {
      store: "own",
      key: "api.example",
      operation: "read",
      outcome: "failed",
      detail: "GET https://admin:pw@redis.example/k?token=SECRET failed",
    };
    emit?.(event);
    const { detail: _, ...withoutDetail } = event;
    emit?.(withoutDetail);
    expect(heard).toEqual([{ ...event, detail: "GET https://redis.example/k failed" }, withoutDetail]);
    // The store's own object is left as it gave it.
    expect(event.detail).toContain("SECRET");
    expect(docs("docs/breakers.md")).toContain(
      "A `store` event your store hands the layer through `connect` reaches listeners with the URLs in its `detail` cut, as the layer's own.",
    );
    expect(docs("SECURITY.md")).toContain(
      "the `detail` of a `store` event a store of your own hands the layer through `connect`",
    );
  });
});
