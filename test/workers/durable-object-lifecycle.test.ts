import {
  createExecutionContext,
  env,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { DurableObjectNamespaceLike } from "../../src/cloudflare/index.ts";
import { durableObjectStore } from "../../src/cloudflare/index.ts";
import type { BreakerSnapshot } from "../../src/core/breaker-snapshot.ts";
import type { StoreEvent } from "../../src/index.ts";
import type { ClockedStateObject } from "./worker.ts";

/** The object's persistence, reload and alarm, driven through `durableObjectStore`. */

const policy = {
  failureThreshold: 2,
  successThreshold: 1,
  timeout: 60_000,
  halfOpenMaxCalls: 1,
  timeWindow: 60_000,
  probeTimeout: 60_000,
  failureRate: undefined,
  minimumCalls: 20,
};

function isolate(ns: DurableObjectNamespaceLike, scope: string) {
  const ctx = createExecutionContext();
  const store = durableObjectStore(ns, { ctx, scope, flushThreshold: policy.failureThreshold });
  store.configure(policy);
  const events: StoreEvent[] = [];
  store.connect?.((e) => events.push(e));
  return { store, ctx, events };
}

/** Trips the object for `key` through a store, and waits until the report is in. */
async function trip(ns: DurableObjectNamespaceLike, scope: string, key: string) {
  const a = isolate(ns, scope);
  for (let i = 0; i < policy.failureThreshold; i++) a.store.record?.(key, true, Date.now());
  await waitOnExecutionContext(a.ctx);
  expect(a.events).toEqual([]);
  return ns.get(ns.idFromName(`cb:${scope}:${key}`) as never);
}

const stored = (stub: Parameters<typeof runInDurableObject>[0]) =>
  runInDurableObject(stub, (_instance, state) => state.storage.get("snapshot") as Promise<BreakerSnapshot | undefined>);

describe("BreakerStateObject lifecycle through durableObjectStore", () => {
  it("persists a trip and answers from storage after the object is evicted", async () => {
    const stub = await trip(env.BREAKER_STATE, "persist", "host.example");
    const saved = await stored(stub);
    expect(saved).toMatchObject({ state: "open", gen: 1, reason: expect.stringContaining("reported failures") });
    await evictDurableObject(stub); // a new instance must start from storage, not from "closed"
    const b = isolate(env.BREAKER_STATE, "persist");
    // Open for 60 s: the reloaded object refuses the probe (a blank one would answer closed: true).
    expect(await b.store.acquireProbe?.("host.example", Date.now())).toBe(false);
    expect(b.store.peek("host.example", Date.now())).toMatchObject({
      state: "open",
      gen: 1,
      openUntil: saved?.openUntil,
    });
    await waitOnExecutionContext(b.ctx);
    expect(b.events).toEqual([]);
  });

  it("moves open to half-open by alarm at openUntil, persisted, with no request in between", async () => {
    const stub = await trip(env.CLOCKED_STATE, "alarm", "host.example");
    const saved = await stored(stub);
    expect(saved?.state).toBe("open");
    const alarmAt = await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
    expect(alarmAt).toBe(saved?.openUntil);
    await runInDurableObject(stub, (instance: ClockedStateObject) => instance.clock.advance(policy.timeout));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stored(stub)).toMatchObject({ state: "half_open", gen: 2, leases: [] });
    // The one probe slot is free: the next isolate gets its lease.
    const b = isolate(env.CLOCKED_STATE, "alarm");
    expect(typeof (await b.store.acquireProbe?.("host.example", Date.now()))).toBe("string");
    expect(await b.store.acquireProbe?.("host.example", Date.now())).toBe(false);
  });
});
