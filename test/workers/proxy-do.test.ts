import { createExecutionContext, env, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BreakerSnapshot } from "../../src/core/breaker-snapshot.ts";
import { makeProxy } from "./worker.ts";

/**
 * `resilientProxy` with `STORE=do` (the branch `examples/worker` takes): two
 * proxies made fresh, as two isolates would make them (in this runner they
 * share an isolate; separate isolates are in cross-isolate.test.ts).
 */
async function call(proxy: ReturnType<typeof makeProxy>, path: string) {
  const ctx = createExecutionContext();
  const response = await proxy.fetch(new Request(`https://proxy.example${path}`), { ...env, STORE: "do" }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("resilientProxy with STORE=do", () => {
  it("shares a trip through the Durable Object: another proxy answers 503 with Retry-After", async () => {
    const a = makeProxy();
    const down = await call(a, "/v1/text/down");
    expect(down.status).toBe(503);
    expect(await down.text()).toBe("down"); // the upstream's own answer, after 2 attempts
    const ns = env.BREAKER_STATE;
    const stub = ns.get(ns.idFromName("cb:default:primary.example") as never);
    const saved = (await runInDurableObject(stub, (_i, state) => state.storage.get("snapshot"))) as BreakerSnapshot;
    expect(saved.state).toBe("open");

    const b = makeProxy();
    // b's first call asks the object in the background and still goes out (no request waits for the store).
    expect((await call(b, "/v1/text/fine")).status).toBe(200);
    const refused = await call(b, "/v1/text/fine");
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({ error: "upstream circuit open" });
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });
});
