import { BreakerStateObject, durableObjectStore, kvStore } from "../src/cloudflare/index.ts";
import { createResilience } from "../src/index.ts";
import { seededRandom, TestClock } from "../src/testing/index.ts";
import { FakeKv } from "../test/cloudflare/fake-kv.ts";

export interface EdgeRow {
  store: string;
  scenario: string;
  calls: number;
  readsPer10k: number;
  writesPer10k: number;
  objectCallsPer10k: number;
}

/** A Durable Object namespace in memory, counting the calls that reach it. */
function fakeObjects(clock: TestClock) {
  const objects = new Map<string, BreakerStateObject>();
  let calls = 0;
  const storage = () => {
    const data = new Map<string, unknown>();
    return {
      get: async <T>(k: string) => data.get(k) as T | undefined,
      put: async (k: string, v: unknown) => void data.set(k, structuredClone(v)),
      setAlarm: async () => {},
    };
  };
  return {
    count: () => calls,
    namespace: {
      idFromName: (name: string) => name,
      get: (id: never) => ({
        fetch: async (input: string, init?: RequestInit) => {
          calls++;
          let object = objects.get(id);
          if (!object) {
            object = new BreakerStateObject(
              { storage: storage(), blockConcurrencyWhile: async (f) => f() },
              undefined,
              clock,
            );
            objects.set(id, object);
          }
          return object.fetch(new Request(input, init));
        },
      }),
    },
  };
}

/** 20 isolates, `calls` calls over `seconds`, healthy or failing, for each store. */
export async function measureEdge(calls: number): Promise<EdgeRow[]> {
  const rows: EdgeRow[] = [];
  for (const store of ["kv", "durable-object"] as const) {
    for (const scenario of ["healthy 60 s", "outage 120 s"] as const) {
      const seconds = scenario === "healthy 60 s" ? 60 : 120;
      const up = scenario === "healthy 60 s";
      const clock = new TestClock(Date.now());
      const kv = new FakeKv(clock, { propagation: 60_000 });
      const objects = fakeObjects(clock);
      const pending: Promise<unknown>[] = [];
      const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
      const isolates = Array.from({ length: 20 }, (_, i) =>
        createResilience({
          clock,
          random: seededRandom(i),
          retry: { maxAttempts: 2, initialDelay: 50, maxDelay: 50 },
          store:
            store === "kv"
              ? kvStore(kv.location(), { ctx, clock, random: seededRandom(50 + i) })
              : durableObjectStore(objects.namespace, { ctx, clock }),
          fetch: async () => new Response(null, { status: up ? 200 : 503 }),
        }),
      );
      const ticks = 250;
      const perTick = Math.max(1, Math.round(calls / (ticks * 20)));
      for (let t = 0; t < ticks; t++) {
        const batch = isolates.flatMap((r) =>
          Array.from({ length: perTick }, () =>
            r.fetch("https://gen.example/v1").then(
              (x) => x.body?.cancel(),
              () => {},
            ),
          ),
        );
        await clock.run(Promise.all(batch));
        await clock.run(Promise.all(pending.splice(0)));
        await clock.advance((seconds * 1000) / ticks);
      }
      const made = ticks * 20 * perTick;
      rows.push({
        store,
        scenario,
        calls: made,
        readsPer10k: (kv.stats.reads * 10_000) / made,
        writesPer10k: (kv.stats.writes * 10_000) / made,
        objectCallsPer10k: (objects.count() * 10_000) / made,
      });
    }
  }
  return rows;
}
