/**
 * Outside-in attack on recovery (a host coming back after an outage, under load). Docs: docs/breakers.md (half-open
 * probes, `halfOpenMaxCalls`, `probeTimeout`, "A retry is never parked behind an open breaker …", bulkheads,
 * "Shared breaker state"), docs/cloudflare.md (the stores' table, "half-open probes" column), docs/retry.md
 * (`Retry-After`, the budget, the `CircuitOpenError` row), docs/fallback.md (an open endpoint passed over, then
 * tried again), docs/health-and-events.md (`breaker` events, `health()` in each phase), the JSDoc of
 * `CircuitOpenError.retryAt`.
 * How: root entry (`createResilience`, `memoryStore`), `./fallback`, `./testing`'s TestClock; a transport whose
 * answers change over time (503 with `Retry-After` while down, 200 or a held answer once back) and logs each
 * request with the clock's time; 100–200 concurrent or paced callers; nothing sleeps.
 * Paths: plain calls with default options (retry, budget, breaker), with a bulkhead, two layers on one
 * `memoryStore()`, a fixed-order fallback chain whose primary recovers.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a host's breaker opening ends its calls' retry waits, which settle then with the
 * response they had; docs/cloudflare.md now says `memoryStore()` probes per layer, and the JSDoc of
 * `CircuitOpenError.retryAt` what it is for a half-open breaker whose slots are all taken; the tests assert those):
 * 1. docs/breakers.md "A retry is never parked behind an open breaker: when the breaker opens during a call, the
 *    call settles with the response it has, so recovery brings no burst of stored-up retries." Observed (defaults
 *    but `fetch`/`clock`): 100 callers, one every 100 ms, against a host answering 503 `Retry-After: 45`; callers
 *    0–10 each schedule a 45 s retry, caller 11 opens the breaker at t=1,100 ms. Those 11 calls do not settle
 *    then: they wait out their 45 s while the breaker is open, the host recovers, two new calls close the breaker
 *    at t=31,200, and at t=45,000…46,000 the 11 stored-up retries reach the host (13 requests after the opening
 *    instead of 2; the 11 calls settle at 45–46 s with 200). The check is made only before the wait
 *    (`decideRetry`) and when the retry leaves (refused only if the breaker is still open then).
 * 2. docs/cloudflare.md (stores table, row "none / `memoryStore()`", column "half-open probes"): "`halfOpenMaxCalls`
 *    per isolate". Observed: two layers of one process sharing one `memoryStore()` (the store's purpose: "shares
 *    transitions between `Resilience` instances of one process, tab or isolate"), `halfOpenMaxCalls: 3`: at the
 *    half-open instant 100 callers (50 per layer) send 6 probes to the recovering host, 3 from each layer
 *    (each layer's breaker goes half-open on its own: two `open→half_open` events, two `half_open→closed`).
 * 3. src/core/errors.ts (JSDoc of the public `CircuitOpenError.retryAt`): "Epoch ms after which a probe may be let
 *    through." Observed: half-open with every probe slot taken by probes that hang, the 197 callers refused get
 *    `retryAt` = the earliest lease's expiry (t+5,000 with `probeTimeout` 5 s); a caller that comes back at that
 *    very time is refused again (the expired lease re-opens the circuit, as docs/breakers.md says), now with
 *    `retryAt` 7,000 (t+5,000+`timeout`): no probe may be let through until then, and nothing is sent.
 *
 * Held (plain `it`):
 * - 200 callers at the half-open instant, with `retry` and a bulkhead (5 / 300): exactly `halfOpenMaxCalls` (3)
 *   probes leave, the 197 others are refused with `CircuitOpenError` and send nothing; exactly one
 *   `open→half_open` and one `half_open→closed` event; `health()` reads `open`/`unhealthy` while open (with
 *   `openUntil`), `half_open` with `openUntil: null` once the timeout passed (before any call), `active: 3` while
 *   the probes are out, `closed` after; the refusals spend no retry budget (`retriesAllowed` unchanged).
 * - a fixed-order chain: the open primary is passed over (`fallback` event "circuit open", nothing sent to it,
 *   the secondary serves); after `timeout` the chain probes the primary again and, once it closes, serves from
 *   the primary without touching the secondary.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { CircuitOpenError, createResilience, getResilienceInfo, memoryStore } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { settledAt } from "../helpers/settled.ts";

/** A host that is down (503, optional Retry-After) until `up` is set; once up it answers 200 or holds its answer. */
function host(clock: TestClock, retryAfter?: string) {
  const log: Array<{ at: number; url: string }> = [];
  const held: Array<(response: Response) => void> = [];
  const state = { up: false, hold: false };
  const fetch = (input: RequestInfo | URL): Promise<Response> => {
    log.push({ at: clock.now(), url: String(input instanceof Request ? input.url : input) });
    if (!state.up) {
      const headers: Record<string, string> = retryAfter ? { "retry-after": retryAfter } : {};
      return Promise.resolve(new Response("down", { status: 503, headers }));
    }
    if (state.hold) return new Promise<Response>((resolve) => held.push(resolve));
    return Promise.resolve(new Response("ok"));
  };
  const answerHeld = () => {
    for (const resolve of held.splice(0)) resolve(new Response("ok"));
  };
  return { fetch, log, state, answerHeld };
}

describe("a host coming back under load", () => {
  it("docs/breakers.md: a call whose breaker opens during its retry wait settles then; no stored-up retries reach the recovered host", async () => {
    // docs/breakers.md: "A retry is never parked behind an open breaker: when the breaker opens during a call,
    // the call settles with the response it has, so recovery brings no burst of stored-up retries."
    const clock = new TestClock(0);
    const up = host(clock, "45");
    const resilience = createResilience({ clock, fetch: up.fetch });
    const opened: number[] = [];
    resilience.on("breaker", (e) => {
      if (e.to === "open") opened.push(clock.now());
    });
    const calls: Array<ReturnType<typeof settledAt>> = [];
    for (let i = 0; i < 100; i++) {
      calls.push(settledAt(resilience.fetch(`https://api.example/x${i}`), clock));
      await clock.advance(100);
    }
    await flush();
    expect(opened).toEqual([1100]); // the 12th failure in a row, caller 11's
    const openedAt = opened[0] as number;
    // The host recovers; the breaker half-opens after its 30 s and two new calls close it.
    up.state.up = true;
    await clock.advance(openedAt + 30_000 - clock.now());
    for (let i = 0; i < 2; i++) expect((await resilience.fetch("https://api.example/new")).status).toBe(200);
    expect(resilience.health().breakers["api.example"]?.state).toBe("closed");
    await clock.advance(20_000);
    const outcomes = await Promise.all(calls);
    // After the opening only the two new calls reached the host: no retry was stored up behind it.
    expect(up.log.filter((r) => r.at > openedAt).map((r) => r.url)).toEqual([
      "https://api.example/new",
      "https://api.example/new",
    ]);
    // Callers 0–10, whose retry waits the breaker's opening cut short, settled with the 503 they had, then.
    for (const outcome of outcomes.slice(0, 11)) expect(outcome).toMatchObject({ status: 503, at: openedAt });
  });

  it("docs/cloudflare.md: with memoryStore(), `halfOpenMaxCalls` probes per layer (it said per isolate)", async () => {
    // docs/cloudflare.md, stores table, row "none / `memoryStore()`", column "half-open probes":
    // "`halfOpenMaxCalls` per layer (each `Resilience` sharing it probes on its own)".
    expect(readFileSync(new URL("../../docs/cloudflare.md", import.meta.url), "utf8")).toContain(
      "`halfOpenMaxCalls` per layer (each `Resilience` sharing it probes on its own)",
    );
    const clock = new TestClock(0);
    const up = host(clock);
    const store = memoryStore();
    const breaker = { failureThreshold: 3, timeout: 1000, halfOpenMaxCalls: 3, successThreshold: 2 };
    const a = createResilience({ clock, fetch: up.fetch, store, retry: false, breaker });
    const b = createResilience({ clock, fetch: up.fetch, store, retry: false, breaker });
    for (let i = 0; i < 3; i++) await a.fetch("https://api.example/a");
    // The opening is shared: b refuses at once.
    await expect(b.fetch("https://api.example/b")).rejects.toBeInstanceOf(CircuitOpenError);
    expect(up.log).toHaveLength(3);
    up.state.up = true;
    up.state.hold = true;
    await clock.advance(1000);
    const calls: Array<ReturnType<typeof settledAt>> = [];
    for (let i = 0; i < 50; i++) {
      calls.push(settledAt(a.fetch(`https://api.example/a${i}`), clock));
      calls.push(settledAt(b.fetch(`https://api.example/b${i}`), clock));
    }
    await flush();
    const probes = up.log
      .slice(3)
      .map((r) => r.url.slice("https://api.example/".length, "https://api.example/".length + 1));
    up.answerHeld();
    await Promise.all(calls);
    expect(probes.sort()).toEqual(["a", "a", "a", "b", "b", "b"]);
  });

  it("CircuitOpenError.retryAt (JSDoc): half-open with every slot taken, the earliest lease's expiry, when a hung probe re-opens the circuit and a later retryAt is given", async () => {
    // src/core/errors.ts, CircuitOpenError.retryAt: "for a half-open one whose probe slots are all taken, the
    // earliest probe lease's expiry, by which that probe has answered or its expiry re-opens the circuit (a call
    // then is let through, or refused with a later `retryAt`)". It said "Epoch ms after which a probe may be let
    // through", which a caller coming back then, while the probes hang, is not.
    const clock = new TestClock(0);
    const up = host(clock);
    const resilience = createResilience({
      clock,
      fetch: up.fetch,
      retry: false,
      breaker: { failureThreshold: 3, timeout: 1000, probeTimeout: 5000, halfOpenMaxCalls: 3 },
    });
    for (let i = 0; i < 3; i++) await resilience.fetch("https://api.example/a");
    up.state.up = true;
    up.state.hold = true; // the probes hang
    await clock.advance(1000);
    const calls: Array<ReturnType<typeof settledAt>> = [];
    for (let i = 0; i < 200; i++) calls.push(settledAt(resilience.fetch(`https://api.example/${i}`), clock));
    await flush();
    expect(up.log).toHaveLength(6); // 3 probes
    const refused = await Promise.all(calls.slice(3)); // refused at once, while the probes hang
    expect(refused).toHaveLength(197);
    for (const r of refused) expect(r.error).toMatchObject({ name: "CircuitOpenError", retryAt: 6000 });
    const retryAt = 6000; // the earliest probe lease's expiry
    // The caller honours retryAt.
    await clock.advance(retryAt - clock.now());
    const again = await settledAt(resilience.fetch("https://api.example/again"), clock);
    up.answerHeld();
    await Promise.all(calls);
    expect(again.error).toMatchObject({ name: "CircuitOpenError", retryAt: 7000 });
    expect(up.log.map((r) => r.url)).not.toContain("https://api.example/again");
    // At that later retryAt a probe is let through.
    await clock.advance(7000 - clock.now());
    up.state.hold = false;
    expect((await resilience.fetch("https://api.example/later")).status).toBe(200);
  });

  it("200 callers at the half-open instant: 3 probes, one event each way, health() per phase, no budget spent", async () => {
    const clock = new TestClock(0);
    const up = host(clock);
    const resilience = createResilience({
      clock,
      fetch: up.fetch,
      retry: { maxAttempts: 3, initialDelay: 10, jitter: "none" },
      breaker: { failureThreshold: 3, timeout: 1000, probeTimeout: 5000, halfOpenMaxCalls: 3, successThreshold: 2 },
      bulkhead: { maxConcurrent: 5, maxQueue: 300 },
    });
    const events: string[] = [];
    resilience.on("breaker", (e) => events.push(`${e.from}->${e.to}`));
    await clock.run(resilience.fetch("https://api.example/first")); // 3 attempts, 2 retries, opens
    expect(up.log).toHaveLength(3);
    const openHealth = resilience.health();
    expect(openHealth.status).toBe("unhealthy");
    expect(openHealth.breakers["api.example"]).toMatchObject({ state: "open", openUntil: 1030 });
    const budgetBefore = openHealth.budget?.retriesAllowed;
    up.state.up = true;
    up.state.hold = true;
    await clock.advance(1030 - clock.now());
    expect(resilience.health().breakers["api.example"]).toMatchObject({ state: "half_open", openUntil: null });
    expect(events).toEqual(["closed->open"]); // health() emits nothing
    const calls: Array<ReturnType<typeof settledAt>> = [];
    for (let i = 0; i < 200; i++) calls.push(settledAt(resilience.fetch(`https://api.example/${i}`), clock));
    await flush();
    expect(up.log).toHaveLength(6);
    expect(resilience.health().breakers["api.example"]).toMatchObject({ state: "half_open", active: 3, queued: 0 });
    up.answerHeld();
    const outcomes = await Promise.all(calls);
    expect(outcomes.filter((o) => o.status === 200)).toHaveLength(3);
    expect(outcomes.filter((o) => o.error instanceof CircuitOpenError)).toHaveLength(197);
    expect(up.log).toHaveLength(6);
    expect(events).toEqual(["closed->open", "open->half_open", "half_open->closed"]);
    const closed = resilience.health();
    expect(closed.breakers["api.example"]).toMatchObject({ state: "closed", active: 0, queued: 0 });
    expect(closed.budget?.retriesAllowed).toBe(budgetBefore);
    expect(clock.pending()).toBe(0);
  });

  it("a fixed-order chain passes over the open primary, then goes back to it once it recovers", async () => {
    const clock = new TestClock(0);
    const primary = host(clock);
    const secondaryLog: string[] = [];
    const transport = (input: RequestInfo | URL): Promise<Response> => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.startsWith("https://b.example")) {
        secondaryLog.push(url);
        return Promise.resolve(new Response("from b"));
      }
      return primary.fetch(input);
    };
    const resilience = createResilience({
      clock,
      fetch: transport,
      retry: false,
      breaker: { failureThreshold: 3, timeout: 1000, successThreshold: 2 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const passed: string[] = [];
    resilience.on("fallback", (e) => passed.push(`${e.from}:${e.reason}`));
    for (let i = 0; i < 3; i++) await resilience.fetch("https://a.example/v1/jobs");
    expect(primary.log).toHaveLength(3);
    const during = await Promise.all(Array.from({ length: 50 }, () => resilience.fetch("https://a.example/v1/jobs")));
    expect(during.every((r) => getResilienceInfo(r)?.endpoint === "b")).toBe(true);
    expect(primary.log).toHaveLength(3);
    expect(passed.filter((p) => p === "a:circuit open")).toHaveLength(50);
    primary.state.up = true;
    await clock.advance(1000);
    const before = secondaryLog.length;
    for (let i = 0; i < 5; i++) {
      const res = await resilience.fetch("https://a.example/v1/jobs");
      expect(getResilienceInfo(res)?.endpoint).toBe("a");
    }
    expect(secondaryLog.length).toBe(before);
    expect(resilience.health().breakers["a.example"]?.state).toBe("closed");
  });
});
