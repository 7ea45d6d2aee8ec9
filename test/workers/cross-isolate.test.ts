import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { StoreEvent } from "../../src/index.ts";

/**
 * `durableObjectStore` across isolates that really are separate: `isolate-a`
 * and `isolate-b` are two Worker scripts (vitest.config.ts), each with its own
 * global scope, module instances and store, reached through service bindings.
 * They share only the Durable Object namespaces, whose objects run in a third
 * script. What is not simulated here: network latency between colos, and
 * isolates on different machines; the object's single-threaded answers are
 * what "exactly" rests on, and those are real workerd.
 */

const policy = {
  failureThreshold: 2,
  successThreshold: 1,
  timeout: 0, // the object lets probes through as soon as it has opened
  halfOpenMaxCalls: 3,
  timeWindow: 60_000,
  probeTimeout: 60_000,
  failureRate: undefined,
  minimumCalls: 20,
};

type Namespace = "BREAKER_STATE" | "SLOW_STATE" | "BROKEN_STATE";
interface Setup {
  namespace: Namespace;
  scope: string;
  key: string;
  timeout?: number;
  waitBound?: number;
}

async function post<T>(isolate: "a" | "b", path: string, body: Setup & { n?: number }): Promise<T> {
  const service = isolate === "a" ? env.ISOLATE_A : env.ISOLATE_B;
  const res = await service.fetch(`https://isolate${path}`, {
    method: "POST",
    body: JSON.stringify({ policy, ...body }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as T;
}

type Grant = string | boolean;
interface Acquired {
  grants: Grant[];
  events: StoreEvent[];
  released: number | null;
}
interface Layered {
  tripped: string | undefined;
  upstreamCalls: number;
  outcomes: (number | string)[];
  events: StoreEvent[];
}

const leases = (grants: Grant[]) => grants.filter((g) => typeof g === "string");

describe("durableObjectStore across two Worker isolates", () => {
  it("runs the two isolates with separate global scopes", async () => {
    const whoami = async (service: typeof env.ISOLATE_A) => {
      const res = await service.fetch("https://isolate/whoami");
      expect(res.status, await res.clone().text()).toBe(200);
      return (await res.json()) as Record<string, string>;
    };
    const a = await whoami(env.ISOLATE_A);
    const b = await whoami(env.ISOLATE_B);
    // Each wrote its own name into a global on its first request: shared globals would show one name twice.
    expect(a).toEqual({ name: "isolate-a", globalOwner: "isolate-a" });
    expect(b).toEqual({ name: "isolate-b", globalOwner: "isolate-b" });
  });

  it("grants exactly halfOpenMaxCalls probes through acquireProbe to 50 concurrent callers in two isolates", async () => {
    // A generous wait bound: this is about what the object grants, not about a busy machine's latency.
    const setup: Setup = { namespace: "BREAKER_STATE", scope: "exact", key: "gen.example", waitBound: 30_000 };
    const trip = await post<{ events: StoreEvent[]; verdict: { state: string } | null }>("a", "/trip", setup);
    expect(trip.verdict?.state).toBe("open");
    expect(trip.events).toEqual([]);
    const [a, b] = await Promise.all([
      post<Acquired>("a", "/acquire", { ...setup, n: 25 }),
      post<Acquired>("b", "/acquire", { ...setup, n: 25 }),
    ]);
    const all = [...a.grants, ...b.grants];
    expect(leases(all)).toHaveLength(policy.halfOpenMaxCalls);
    // Every other caller is refused by the object: false, never "no answer" (undefined), never true.
    expect(all.filter((g) => g === false)).toHaveLength(50 - policy.halfOpenMaxCalls);
    expect(new Set(leases(all)).size).toBe(policy.halfOpenMaxCalls);
    expect([...a.events, ...b.events]).toEqual([]);
  });

  it("lets exactly halfOpenMaxCalls probes reach the upstream through two whole layers", async () => {
    const setup: Setup = { namespace: "BREAKER_STATE", scope: "layer", key: "video.example", waitBound: 30_000 };
    const [a, b] = await Promise.all([
      post<Layered>("a", "/layer", { ...setup, n: 10 }),
      post<Layered>("b", "/layer", { ...setup, n: 10 }),
    ]);
    // Tripped (timeout 0: health already shows it ready to probe).
    expect(a.tripped).toBe("half_open");
    expect(b.tripped).toBe("half_open");
    // Each local breaker alone would let 3 through (6 in all); the object grants 3 in all.
    expect(a.upstreamCalls + b.upstreamCalls).toBe(policy.halfOpenMaxCalls);
    const outcomes = [...a.outcomes, ...b.outcomes];
    expect(outcomes.filter((o) => o === 200)).toHaveLength(policy.halfOpenMaxCalls);
    expect(outcomes.filter((o) => o === "CircuitOpenError")).toHaveLength(20 - policy.halfOpenMaxCalls);
    expect([...a.events, ...b.events]).toEqual([]);
  });

  it("hands the decision back to each local breaker when the object answers after the wait bound", async () => {
    const setup: Setup = { namespace: "SLOW_STATE", scope: "slow", key: "slow.example", timeout: 250 };
    // One object per isolate here, so neither releases the other's questions early.
    const [a, b] = await Promise.all([
      post<Acquired>("a", "/acquire", { ...setup, key: "slow-a.example", n: 5 }),
      post<Acquired>("b", "/acquire", { ...setup, key: "slow-b.example", n: 5 }),
    ]);
    for (const [side, key] of [
      [a, "slow-a.example"],
      [b, "slow-b.example"],
    ] as const) {
      // The object held all five questions past the bound (its late "closed" would have granted them).
      expect(side.released).toBe(5);
      expect(side.grants).toEqual(Array(5).fill("undefined"));
      expect(side.events).toHaveLength(5);
      for (const e of side.events) {
        expect(e).toMatchObject({ store: "durable-object", key, operation: "probe", outcome: "timeout" });
        expect(e.detail).toBe("no answer within 250 ms");
      }
    }
    // Through whole layers: each isolate's local breaker lets its own halfOpenMaxCalls through,
    // so "exactly halfOpenMaxCalls across isolates" holds only while the object answers in time.
    const [la, lb] = await Promise.all([
      post<Layered>("a", "/layer", { ...setup, key: "slow-layer.example", n: 10 }),
      post<Layered>("b", "/layer", { ...setup, key: "slow-layer.example", n: 10 }),
    ]);
    expect(la.upstreamCalls).toBe(policy.halfOpenMaxCalls);
    expect(lb.upstreamCalls).toBe(policy.halfOpenMaxCalls);
    expect([...la.events, ...lb.events].some((e) => e.operation === "probe" && e.outcome === "timeout")).toBe(true);
  });

  it("hands the decision back to the local breaker when the object throws", async () => {
    const setup: Setup = { namespace: "BROKEN_STATE", scope: "broken", key: "broken.example" };
    const a = await post<Acquired>("a", "/acquire", { ...setup, n: 3 });
    expect(a.grants).toEqual(["undefined", "undefined", "undefined"]);
    expect(a.events).toHaveLength(3);
    for (const e of a.events) {
      expect(e).toMatchObject({
        store: "durable-object",
        key: "broken.example",
        operation: "probe",
        outcome: "failed",
      });
      expect(e.detail).toContain("object crashed");
    }
    const layer = await post<Layered>("b", "/layer", { ...setup, n: 10 });
    expect(layer.upstreamCalls).toBe(policy.halfOpenMaxCalls);
    expect(layer.events.filter((e) => e.outcome === "failed").length).toBeGreaterThan(0);
  });
});
