import { describe, expect, it } from "vitest";
import { createResilience, type StoreEvent } from "../../src/index.ts";
import type { BreakerSnapshot, BreakerStore } from "../../src/stores/breaker-store.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

/**
 * A store written `async` (a Redis or IndexedDB store) returns promises from
 * the methods the layer never awaits. Their rejections are `store` events,
 * never unhandled rejections (Node ends the process on one), and a class's
 * methods keep their `this`.
 */
class AsyncStore implements BreakerStore {
  readonly name = "redis-like";
  readonly #snapshots = new Map<string, BreakerSnapshot>();
  fail = true;
  readonly calls: string[] = [];

  async publish(key: string, snapshot: BreakerSnapshot): Promise<void> {
    this.calls.push(`publish ${snapshot.state}`);
    if (this.fail) throw new Error("publish: connection lost");
    this.#snapshots.set(key, snapshot);
  }

  peek(key: string): BreakerSnapshot | undefined {
    return this.#snapshots.get(key);
  }

  async record(_key: string, failed: boolean): Promise<void> {
    this.calls.push(`record ${failed}`);
    if (this.fail) throw new Error("record: connection lost");
  }

  async acquireProbe(): Promise<string> {
    return "lease-1";
  }

  async releaseProbe(_key: string, probe: string): Promise<void> {
    this.calls.push(`release ${probe}`);
    if (this.fail) throw new Error("releaseProbe: connection lost");
  }
}

const down = async () => new Response("down", { status: 503 });

describe("a store whose unawaited methods reject", () => {
  it("reports each rejection as a store event and leaves none unhandled", async () => {
    const store = new AsyncStore();
    const clock = new TestClock();
    const layer = createResilience({
      fetch: down,
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      store,
    });
    const events: StoreEvent[] = [];
    layer.on("store", (event) => events.push(event));
    const { value, unhandled } = await watchUnhandled(async () => {
      const response = await layer.fetch("https://api.example/v1/images");
      await flush();
      return response.status;
    });
    expect(value).toBe(503);
    expect(unhandled).toEqual([]);
    expect(store.calls).toEqual(["record true", "publish open"]);
    expect(events).toEqual([
      {
        store: "redis-like",
        key: "api.example",
        operation: "report",
        outcome: "failed",
        detail: "Error: record: connection lost",
      },
      {
        store: "redis-like",
        key: "api.example",
        operation: "write",
        outcome: "failed",
        detail: "Error: publish: connection lost",
      },
    ]);
    expect(layer.health().breakers["api.example"]?.state).toBe("open");
  });

  it("reports a lease given back that rejects (an aborted probe)", async () => {
    const store = new AsyncStore();
    const clock = new TestClock();
    let answer: (() => void) | undefined;
    const layer = createResilience({
      fetch: (_input, init) =>
        new Promise<Response>((_resolve, reject) => {
          answer = () => reject(new Error("never"));
          init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
        }),
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000 },
      store,
    });
    const events: StoreEvent[] = [];
    layer.on("store", (event) => events.push(event));
    store.fail = false;
    // Opens the host with one failed call, then lets the breaker go half-open.
    const first = layer.fetch("https://api.example/a").catch((error: unknown) => error);
    await flush();
    answer?.();
    await first;
    await clock.advance(1_000);
    store.fail = true;
    const controller = new AbortController();
    const { unhandled } = await watchUnhandled(async () => {
      const probe = layer
        .fetch("https://api.example/b", { signal: controller.signal })
        .catch((error: unknown) => error);
      await flush();
      controller.abort(new Error("caller left"));
      await probe;
      await flush();
    });
    expect(unhandled).toEqual([]);
    expect(store.calls).toContain("release lease-1");
    expect(events).toContainEqual({
      store: "redis-like",
      key: "api.example",
      operation: "probe",
      outcome: "failed",
      detail: "Error: releaseProbe: connection lost",
    });
  });

  it("still fails the call with what a store throws synchronously, as the contract says", async () => {
    const store: BreakerStore = {
      name: "sync",
      publish() {
        throw new Error("publish boom");
      },
      peek: () => undefined,
    };
    const layer = createResilience({ fetch: down, retry: { maxAttempts: 1 }, breaker: { failureThreshold: 1 }, store });
    await expect(layer.fetch("https://api.example/x")).rejects.toThrow(/publish boom/);
  });
});

describe("a store shared by layers", () => {
  it("is connected by a layer only while the layer has a store listener", () => {
    const connected = new Set<unknown>();
    const store: BreakerStore = {
      name: "shared",
      peek: () => undefined,
      publish: () => {},
      connect(listener) {
        connected.add(listener);
        return () => connected.delete(listener);
      },
    };
    const layer = createResilience({ store });
    expect(connected.size).toBe(0);
    const offA = layer.on("store", () => {});
    const offB = layer.on("store", () => {});
    expect(connected.size).toBe(1);
    offA();
    expect(connected.size).toBe(1);
    offB();
    offB();
    expect(connected.size).toBe(0);
    const offC = layer.on("store", () => {});
    expect(connected.size).toBe(1);
    layer.on("request", () => {})();
    offC();
    expect(connected.size).toBe(0);
    // Layers made and dropped on one store leave nothing on it.
    for (let i = 0; i < 100; i++) createResilience({ store }).fetch;
    expect(connected.size).toBe(0);
  });
});
