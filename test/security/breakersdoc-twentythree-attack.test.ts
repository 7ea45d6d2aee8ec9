/**
 * Outside-in attack on docs/breakers.md, sentence by sentence. Docs: docs/breakers.md (the state machine, "A retry
 * is never parked behind an open breaker" with its store and redirect exceptions, the `Retry-After` hold,
 * "Bulkheads", "Shared breaker state"); docs/cloudflare.md "The local breaker stays authoritative" read beside it.
 * How: root entry (`createResilience`, `memoryStore`, `isCircuitOpenError`, the `BreakerStore` contract for a store
 * whose reads lag, as KV's do), `./testing`'s TestClock; scripted transports.
 * Paths: plain calls; two layers sharing `memoryStore()`; a hand store serving an earlier trip late; a redirect
 * whose target asks a long `Retry-After`; a bulkhead with a call queued behind a hung one.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * fixed in the docs since, so plain `it`: docs/breakers.md now says, as docs/cloudflare.md does, that a remote open
 * pushes a half-open breaker open while it runs, whenever it began; the test asserts that sentence and behaviour):
 * 1. docs/breakers.md "A remote snapshot may push a breaker toward open (a half-open one only by a trip after it
 *    went half-open)". Observed: a breaker half-open since t=1000 (its probe in flight, `halfOpenMaxCalls: 2`) reads
 *    from its store a trip made elsewhere at t=500 (open until 9000): it is pushed open at once (`health()` state
 *    `open`, `openUntil` 9000) and the next call is refused with `CircuitOpenError` (retryAt 9000), nothing sent,
 *    where the sentence says only a trip after t=1000 may do that. (docs/cloudflare.md and CHANGELOG.md say the
 *    opposite, "a half-open one too", as the code does since 769c250: the breakers.md parenthesis was left behind.)
 *
 * Held (plain `it`):
 * - Shared breaker state through `memoryStore()`: a host half-open in one layer makes the other's closed breaker
 *   half-open, its call goes as a probe; that probe's failure (a trip after the first layer went half-open) pushes
 *   the first layer's half-open breaker open: its next call refused, nothing sent.
 * - A 503 whose `Retry-After` (3600 s) exceeds `maxRetryAfter`, on the final hop of a followed redirect, holds the
 *   host that sent it open until then (not the first host), and a call to it is refused until then, nothing sent.
 * - Bulkheads: a call to a host whose breaker is open is refused with `CircuitOpenError` at once, though the
 *   bulkhead's one slot is held by a hung call (it does not queue behind it; the queue stays free for no one).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  type BreakerSnapshot,
  type BreakerStore,
  createResilience,
  isCircuitOpenError,
  memoryStore,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { rejection } from "../helpers/settled.ts";

const urlOf = (input: RequestInfo | URL): string => String(input instanceof Request ? input.url : input);

describe("docs/breakers.md: shared breaker state", () => {
  it('"A remote snapshot may push a breaker toward open while that open runs (a half-open one too, whenever the open began …)": a trip made elsewhere before this breaker went half-open, read late, pushes it open (the sentence said it would not)', async () => {
    expect(readFileSync(new URL("../../docs/breakers.md", import.meta.url), "utf8").replace(/\n/g, " ")).toContain(
      "A remote snapshot may push a breaker toward open while that open runs (a half-open one too, whenever the open began: another layer holds the host open longer)",
    );
    const clock = new TestClock();
    let remote: BreakerSnapshot | undefined;
    const published: BreakerSnapshot[] = [];
    // A store whose reads lag (as a KV namespace's do): it serves what another isolate published, when it has it.
    const store: BreakerStore = {
      name: "lagging",
      publish: (_key, snapshot) => published.push(snapshot),
      peek: () => remote,
    };
    let sent = 0;
    const hung: Array<(r: Response) => void> = [];
    const r = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 2 },
      fetch: () => {
        sent++;
        if (sent === 1) return Promise.resolve(new Response("down", { status: 503 }));
        return new Promise<Response>((resolve) => hung.push(resolve));
      },
    });
    await (await clock.run(r.fetch("https://h.example/"))).body?.cancel();
    expect(r.health().breakers["h.example"]).toMatchObject({ state: "open", openUntil: 1_000 });
    await clock.advance(1_000);
    // The first probe leaves at t=1000: this breaker is half-open from then on.
    const probe = r.fetch("https://h.example/");
    await flush();
    expect(sent).toBe(2);
    expect(r.health().breakers["h.example"]?.state).toBe("half_open");
    await clock.advance(10);
    // Now the store has another isolate's trip of t=500 (before this breaker went half-open), open until 9000.
    const trip = published[0] as BreakerSnapshot;
    remote = { ...trip, state: "open", changedAt: 500, openUntil: 9_000, gen: 4, reason: "3 failures in a row" };
    // That open still runs (until 9000): it pushes this half-open breaker open, though it began before the half-open.
    expect(r.health().breakers["h.example"]).toMatchObject({ state: "open", openUntil: 9_000 });
    const second = await clock.run(r.fetch("https://h.example/").catch((error: unknown) => error));
    expect(second).toMatchObject({ name: "CircuitOpenError", retryAt: 9_000 });
    expect(sent).toBe(2);
    for (const resolve of hung) resolve(new Response("ok"));
    await clock.run(probe);
  });

  it("held, memoryStore(): a host half-open in one layer makes the other's calls probes; a probe failing there after the half-open pushes the first layer open", async () => {
    const clock = new TestClock();
    const store = memoryStore();
    const sentBy = { a: 0, b: 0 };
    const hungA: Array<(r: Response) => void> = [];
    const a = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 2 },
      fetch: () => {
        sentBy.a++;
        if (sentBy.a === 1) return Promise.resolve(new Response("down", { status: 503 }));
        return new Promise<Response>((resolve) => hungA.push(resolve));
      },
    });
    const b = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 5, timeout: 5_000, halfOpenMaxCalls: 1 },
      fetch: () => {
        sentBy.b++;
        return Promise.resolve(new Response("still down", { status: 503 }));
      },
    });
    await (await clock.run(a.fetch("https://h.example/"))).body?.cancel();
    await clock.advance(1_000);
    const probe = a.fetch("https://h.example/");
    await flush();
    expect(a.health().breakers["h.example"]?.state).toBe("half_open");
    await clock.advance(100);
    // b: half-open there, so its call goes as a probe; it fails at t=1100, after a went half-open.
    const fromB = await clock.run(b.fetch("https://h.example/"));
    expect(fromB.status).toBe(503);
    await fromB.body?.cancel();
    expect(sentBy.b).toBe(1);
    expect(b.health().breakers["h.example"]).toMatchObject({ state: "open", openUntil: 6_100 });
    // a is pushed open by that later trip: its next call is refused, nothing sent.
    const refused = await clock.run(rejection(a.fetch("https://h.example/")));
    expect(isCircuitOpenError(refused)).toBe(true);
    expect((refused as { retryAt: number }).retryAt).toBe(6_100);
    expect(sentBy.a).toBe(2);
    for (const resolve of hungA) resolve(new Response("ok"));
    await (await clock.run(probe)).body?.cancel();
  });
});

describe("docs/breakers.md: Retry-After hold and bulkheads", () => {
  it('held: "A 429/503 whose `Retry-After` exceeds `maxRetryAfter` holds the host open until then", on a redirect\'s final hop: the host that sent it', async () => {
    const clock = new TestClock();
    const sent: string[] = [];
    const r = createResilience({
      clock,
      redirects: "library",
      retry: { maxAttempts: 2, maxRetryAfter: 60_000 },
      fetch: (input) => {
        const url = urlOf(input);
        sent.push(url);
        if (url.startsWith("https://first.example/"))
          return Promise.resolve(new Response(null, { status: 302, headers: { location: "https://busy.example/x" } }));
        return Promise.resolve(new Response("busy", { status: 503, headers: { "retry-after": "3600" } }));
      },
    });
    const response = await clock.run(r.fetch("https://first.example/a"));
    expect(response.status).toBe(503);
    await response.body?.cancel();
    // Not retried (3600 s is past maxRetryAfter): the call settled with the 503, the hold on busy.example.
    expect(sent).toEqual(["https://first.example/a", "https://busy.example/x"]);
    expect(r.health().breakers["busy.example"]).toMatchObject({ state: "open", openUntil: 3_600_000 });
    expect(r.health().breakers["first.example"]?.state).toBe("closed");
    await clock.advance(3_599_000);
    const refused = await clock.run(rejection(r.fetch("https://busy.example/y")));
    expect(isCircuitOpenError(refused)).toBe(true);
    expect((refused as { retryAt: number }).retryAt).toBe(3_600_000);
    expect(sent).toHaveLength(2);
  });

  it('held: "A call to a host whose breaker is open is refused with `CircuitOpenError` before it would queue": opened by another layer (memoryStore), its one slot held by a hung call', async () => {
    const clock = new TestClock();
    const store = memoryStore();
    let sent = 0;
    const hung: Array<(r: Response) => void> = [];
    const r = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      bulkhead: { maxConcurrent: 1, maxQueue: 5 },
      fetch: () => {
        sent++;
        return new Promise<Response>((resolve) => hung.push(resolve));
      },
    });
    const other = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 30_000 },
      fetch: () => Promise.resolve(new Response("down", { status: 503 })),
    });
    // The one slot, held by a call that hangs.
    const holding = r.fetch("https://h.example/slow");
    await flush();
    expect(sent).toBe(1);
    await (await clock.run(other.fetch("https://h.example/down"))).body?.cancel();
    // Refused at once, not queued behind the hung call, nothing sent.
    const events: string[] = [];
    r.on("request", (e) => events.push(`${e.outcome} ${e.error}`));
    const refused = await rejection(r.fetch("https://h.example/next"));
    expect(isCircuitOpenError(refused)).toBe(true);
    expect((refused as { retryAt: number }).retryAt).toBe(30_000);
    expect(sent).toBe(1);
    expect(events).toEqual(["error CircuitOpenError"]);
    expect(r.health().breakers["h.example"]).toMatchObject({ state: "open", active: 1, queued: 0 });
    for (const resolve of hung) resolve(new Response("ok"));
    await (await clock.run(holding)).body?.cancel();
  });
});
