import { kvStore } from "../../src/cloudflare/index.ts";
import { type BreakerOptions, createResilience } from "../../src/index.ts";
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
