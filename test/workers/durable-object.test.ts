import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";

const policy = {
  failureThreshold: 2,
  successThreshold: 1,
  timeout: 0,
  halfOpenMaxCalls: 3,
  timeWindow: 60_000,
  probeTimeout: 60_000,
  failureRate: null,
  minimumCalls: 20,
};

function stub(name: string) {
  return env.BREAKER_STATE.get(env.BREAKER_STATE.idFromName(name) as never);
}

async function post(name: string, path: string, body: unknown) {
  const res = await stub(name).fetch(`https://breaker-state${path}`, { method: "POST", body: JSON.stringify(body) });
  return (await res.json()) as { state: string; gen: number; openUntil: number | null; lease?: number | null };
}

describe("BreakerStateObject in workerd", () => {
  it("opens on reported failures and grants exactly halfOpenMaxCalls probes to many concurrent callers", async () => {
    const verdict = await post("host-a", "/report", { policy, ok: 0, fail: 2 });
    expect(verdict.state).toBe("open");
    // timeout 0: the next request may probe. Fifty isolates ask at once.
    const answers = await Promise.all(Array.from({ length: 50 }, () => post("host-a", "/probe", { policy })));
    const granted = answers.filter((a) => typeof a.lease === "number");
    expect(granted).toHaveLength(3);
    expect(answers.every((a) => a.state === "half_open")).toBe(true);
    // A granted probe's success closes it.
    const first = granted[0] as { lease: number; gen: number };
    const closed = await post("host-a", "/report", {
      policy,
      ok: 0,
      fail: 0,
      probe: { lease: first.lease, gen: first.gen, ok: true },
    });
    expect(closed.state).toBe("closed");
  });

  it("frees the slot of a lease that is never reported once it expires, counting it as a failure", async () => {
    const one = { ...policy, halfOpenMaxCalls: 1 };
    await post("host-b", "/report", { policy: one, ok: 0, fail: 2 });
    // A probe whose isolate dies: its lease lasts 1 ms and is never reported.
    const stuck = await post("host-b", "/probe", { policy: { ...one, probeTimeout: 1 } });
    expect(typeof stuck.lease).toBe("number");
    // The Durable Object reads wall time, so a few ms pass for real here.
    await new Promise((r) => setTimeout(r, 5));
    const next = await post("host-b", "/probe", { policy: one });
    expect(typeof next.lease).toBe("number"); // the slot is free again
    expect(next.gen).toBeGreaterThanOrEqual(stuck.gen + 2); // through "open": the expiry counted as a failure
    const refused = await post("host-b", "/probe", { policy: one });
    expect(refused.lease ?? null).toBeNull(); // one slot, now held by the live probe
  });

  it("holds at most 24 hours on a report's Retry-After hold, however far it asks", async () => {
    const before = Date.now();
    const verdict = await post("host-d", "/report", { policy, ok: 0, fail: 0, holdUntil: 1e300 });
    expect(verdict.state).toBe("open");
    expect(verdict.openUntil).toBeGreaterThanOrEqual(before + 86_400_000);
    expect(verdict.openUntil).toBeLessThanOrEqual(Date.now() + 86_400_000);
  });

  it("spreads a batch's failures among its successes: only a real run of failures opens", async () => {
    const consecutive = { ...policy, failureThreshold: 12 };
    const mixed = await post("host-mixed", "/report", { policy: consecutive, ok: 50, fail: 12 });
    expect(mixed.state).toBe("closed");
    const run = await post("host-run", "/report", { policy: consecutive, ok: 0, fail: 12 });
    expect(run.state).toBe("open");
  });

  it("rejects a malformed report", async () => {
    const res = await stub("host-c").fetch("https://breaker-state/report", {
      method: "POST",
      body: JSON.stringify({ fail: "lots" }),
    });
    expect(res.status).toBe(400);
  });
});
