import { kvStore } from "../../src/cloudflare/index.ts";
import { type BreakerOptions, type Clock, createResilience } from "../../src/index.ts";
import type { TestClock } from "../../src/testing/index.ts";
import type { FakeKv } from "./fake-kv.ts";

/**
 * One Worker isolate over a fake KV: its own KV location and `kvStore`
 * (refreshing every second, no jitter), one layer with `breaker`, and an
 * upstream the test switches (`up.ok`). `call(url)` runs one call to its end,
 * then the store's background work: the status, or the error.
 */
export function kvIsolate(
  kv: FakeKv,
  clock: TestClock,
  pending: Promise<unknown>[],
  breaker: BreakerOptions,
  url: string,
) {
  const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
  const store = kvStore(kv.location(), { ctx, clock, random: () => 0, refreshInterval: 1_000 });
  const up = { ok: true, calls: 0 };
  const resilience = createResilience({
    clock,
    retry: false,
    store,
    breaker,
    fetch: async () => {
      up.calls++;
      return new Response(null, { status: up.ok ? 200 : 503 });
    },
  });
  const call = async (): Promise<unknown> => {
    try {
      const res = await clock.run(resilience.fetch(url));
      await res.body?.cancel();
      return res.status;
    } catch (error) {
      return error;
    } finally {
      await clock.run(Promise.all(pending.splice(0)));
    }
  };
  return { resilience, up, call, store };
}

/**
 * One isolate whose layer and `kvStore` read `clock`, which may run ahead of
 * or be stepped against `tc`, the TestClock that runs the timers: no retry,
 * no budget, `failureThreshold: 1`, a 30 s open, the store's defaults (no
 * jitter). `answer()` is its upstream. `call()` runs one call to
 * `https://gen.example/x` to its end, then the store's background work: the
 * status, or the error's name.
 */
export function kvIsolateOn(kv: FakeKv, clock: Clock, tc: TestClock, answer: () => Response) {
  const pending: Promise<unknown>[] = [];
  const store = kvStore(kv.location(), { ctx: { waitUntil: (p) => void pending.push(p) }, clock, random: () => 0 });
  let sent = 0;
  const resilience = createResilience({
    clock,
    retry: false,
    store,
    budget: false,
    breaker: { failureThreshold: 1, timeout: 30_000 },
    fetch: async () => {
      sent++;
      return answer();
    },
  });
  const call = async (): Promise<string> => {
    const out = await tc.run(
      resilience.fetch("https://gen.example/x").then(
        (r) => `${r.status}`,
        (e: unknown) => (e as Error).name,
      ),
    );
    await tc.run(Promise.all(pending.splice(0)));
    return out;
  };
  return { call, sent: () => sent };
}
