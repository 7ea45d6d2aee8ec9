/**
 * Outside-in attack on docs/breakers.md (half-open spells and their late answers, `successThreshold`, `Retry-After`
 * past a day and through a shared `memoryStore()`, a named breaker's `hold` over a probe in flight, bulkheads on the
 * hedge, redirect, retry and `timeout.total` paths, stores of one's own whose methods throw or never settle) and the
 * `health()` sentences of docs/health-and-events.md that go with them.
 *
 * Docs:
 * - docs/breakers.md: "Any probe failure re-opens; `successThreshold` (2) successes close"; "if it answers after its
 *   lease ran out, that answer counts for nothing"; "A 429/503 whose `Retry-After` exceeds `maxRetryAfter` holds the
 *   host open until then"; "(a `Retry-After` or a store's state holds a host a day at most)"; "`store: memoryStore()`
 *   shares transitions between `Resilience` instances … a host one opened is open for all"; "Its `hold(until,
 *   reason)` keeps it open until `until`"; "A named breaker is the layer's own: a `store` spreads host breakers
 *   only, so a named one is never published to it nor read from it"; "They are the layer's `breaker` options";
 *   "a redirect's hop to another host runs inside the attempt that holds the first host's slot, not in a slot of the
 *   host it goes to"; "A full queue rejects at once with `BulkheadRejectedError`; a queued caller that aborts leaves
 *   the queue"; "Its `publish`, `peek` and `record` run on the request's path: what they throw fails the call, which
 *   `health()` counts as a failed call … `RetryExhaustedError`, the store's error as its `cause`"; "A promise that
 *   `publish`, `record` or `releaseProbe` returns … is not awaited"; "a promise from it is no snapshot (a `read`
 *   event, outcome `skipped`"; "a `configure` that throws makes `createResilience` throw that error as it is";
 *   "a layer with `breaker: false` asks no store, and calls no `configure`".
 * - docs/retry.md: "when the layer itself refuses the retry (the host's breaker opened during the wait, its bulkhead
 *   is full), the call settles with that response, body intact"; "With `execute`'s `breaker`, once that breaker
 *   opens no retry waits behind it: the call ends with the failure that opened it".
 * - docs/health-and-events.md: "every breaker (`state`, …, bulkhead `active`/`queued`"; "an open or half-open one
 *   shows the counts that opened it and the error that did (for one held open by a `Retry-After`, that reason".
 *
 * How: `createResilience`, `memoryStore`, `BulkheadRejectedError`, `RetryExhaustedError`, `isCircuitOpenError`
 * (root), `fallback` (./fallback), `createClient` (./ky), `TestClock` (./testing); stores of the test's own (one
 * whose `record` throws, one whose `configure` throws, one whose methods return promises that never settle, one that
 * records what it was handed); two node:http servers on 127.0.0.1 (`httpUpstream`) holding, 302-ing, 429/503 with
 * `Retry-After`.
 *
 * Paths: plain call, `Request` input (its own signal), ky client, fallback chain with a hedge, a followed redirect,
 * `resilience.execute(fn, { breaker })`, `resilience.breaker(name).execute`, two layers on one `memoryStore()`.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none: every sentence driven held on every path tried.
 *
 * Held (plain `it`):
 * - Three probes out (`halfOpenMaxCalls` 3): the first one's 503 re-opens ("probe failed: status 503"); the two 200s
 *   after count for nothing (still open, same `gen`, same `openUntil`), and the next half-open spell needs its own
 *   two successes (`successThreshold` 2): one 200 leaves it half-open. `successThreshold: 3`, one slot, through ky:
 *   two successes stay half-open, the third closes ("3 successful probes").
 * - A probe's 429 `Retry-After: 3600` re-opens for 3600 s in one event (reason "Retry-After 3600 s on status 429");
 *   the other probe's 200 after it changes nothing.
 * - `Retry-After: 200000` on a 503 holds the host one day exactly (`openUntil` now + 86,400,000), reason named; a
 *   second layer on the same `memoryStore()` refuses unsent until that day (plain and ky), shows "shared: …".
 * - A named breaker half-open with its probe running, then `hold(now + 60 s)`: the probe's success after it leaves
 *   it open until the hold ends.
 * - `execute(fn, { breaker })` takes the layer's `failureThreshold` (2): two runs open it, the call ends with the
 *   run's error (no third run), the next call is refused unrun with `CircuitOpenError`; the store never hears the
 *   name.
 * - Bulkheads: `active`/`queued` in `health()`; a full queue rejects at once with `BulkheadRejectedError` and the
 *   breaker counts nothing; a queued `Request` whose own signal aborts and a queued ky call whose signal aborts
 *   leave the queue (their reasons), nothing sent; a hedge leg queued behind a held slot leaves the queue when the
 *   primary wins and is never sent; a redirect's hop to a host whose only slot is taken goes (A's slot); a retry that
 *   meets a full bulkhead settles with its 503, body intact (plain) / ky's `HTTPError` 503; `timeout.total` firing
 *   while a retry waits in the queue ends it (`TimeoutError`, phase `total`), the queue empties, the breaker counts
 *   only the first 500. No timer is left pending after any of them.
 * - Stores: `record` throwing on a 200 → `RetryExhaustedError` (its `cause`, `attempts` 1), the breaker heard a
 *   success, `health().errorRate` 1; ky hands it over unwrapped. `configure` throwing → `createResilience` and
 *   `createClient` throw that very error; `breaker: false` calls no `configure` and no `peek`. `publish`/`record`
 *   returning promises that never settle and `peek` returning one: calls settle, a `read`/`skipped` event per read,
 *   nothing pending.
 *
 * Docs-silent (not pinned; in the sixty-sixth session all three were written in, and the tests under "written in"
 * and the `timeout.total` test assert them beside the behaviour):
 * - `timeout.total` firing while a retry waits for a bulkhead slot rejects with `TimeoutError` and drops the 500 the
 *   call already had, where a retry refused by a full bulkhead or an opening breaker "settles with that response";
 *   docs/retry.md's "the call settles as if that had been its last attempt" is said of waits that would end past the
 *   deadline, and a queue wait's end is not known in advance.
 * - A `BulkheadRejectedError` (nothing sent, `attempts` 0) fires a `request` event and counts in `health().errorRate`
 *   and `debugInfo()` failures (status `degraded` on load shedding alone); the list of calls "refused before it
 *   started" that are not counted names the caller's mistakes and an aborted signal only.
 * - A closed breaker with failures counted shows `lastError: null` in `health()` (only an open or half-open one
 *   shows "the error that did"), so the reason for a rising `consecutiveFailures` is not visible until it opens.
 */

import { readFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { HTTPError } from "ky";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  type BreakerStore,
  BulkheadRejectedError,
  createResilience,
  isCircuitOpenError,
  memoryStore,
  RetryExhaustedError,
  type StoreEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const START = 1_000_000;
const DAY = 86_400_000;
const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const down = (hit: { res: ServerResponse }): void => void hit.res.writeHead(503).end("down");
const drain = async (response: Promise<Response>): Promise<number> => {
  const r = await response;
  await r.body?.cancel();
  return r.status;
};
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  if (!done()) throw new Error(`never: ${what}`);
}
const settle = <T>(p: Promise<T>): Promise<T | unknown> =>
  p.then(
    (v) => v,
    (e: unknown) => e,
  );

describe("half-open probes: `successThreshold`, a failure re-opens, late answers count for nothing", () => {
  it("three probes out: the first 503 re-opens, the two 200s after it count nothing, the next spell needs two anew", async () => {
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 3 },
    });
    a.on(down);
    expect(await drain(r.fetch(`${a.base}/o`))).toBe(503);
    await clock.advance(1_000);
    const held: Hit[] = [];
    a.on((hit) => void held.push(hit));
    const calls = [1, 2, 3].map((i) => drain(r.fetch(`${a.base}/p${i}`)));
    await until(() => held.length === 3, "three probes");
    const refused = await rejection(r.fetch(`${a.base}/fourth`));
    expect(isCircuitOpenError(refused)).toBe(true);
    held[0]?.res.writeHead(503).end();
    expect(await calls[0]).toBe(503);
    const reopened = r.health().breakers[a.host];
    expect([reopened?.state, reopened?.reason, reopened?.openUntil]).toEqual([
      "open",
      "probe failed: status 503",
      START + 2_000,
    ]);
    held[1]?.res.end("ok");
    held[2]?.res.end("ok");
    expect(await Promise.all(calls)).toEqual([503, 200, 200]);
    const after = r.health().breakers[a.host];
    expect([after?.state, after?.gen, after?.openUntil]).toEqual(["open", reopened?.gen, START + 2_000]);
    await clock.advance(1_000);
    a.on((hit) => void hit.res.end("ok"));
    expect(await drain(r.fetch(`${a.base}/q1`))).toBe(200);
    expect(r.health().breakers[a.host]?.state).toBe("half_open");
    expect(await drain(r.fetch(`${a.base}/q2`))).toBe(200);
    expect(r.health().breakers[a.host]?.state).toBe("closed");
    expect([a.hits.length, clock.pending()]).toEqual([6, 0]);
  });

  it("ky client, `successThreshold: 3` with one slot: two successes stay half-open, the third closes", async () => {
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1, successThreshold: 3 },
    });
    const changes: BreakerEvent[] = [];
    r.on("breaker", (e) => void changes.push(e));
    const api = createClient({ resilience: r });
    a.on(down);
    await rejection(api.get(`${a.base}/o`));
    await clock.advance(1_000);
    a.on((hit) => void hit.res.end("ok"));
    for (const n of [1, 2]) {
      expect(await api.get(`${a.base}/p${n}`).text()).toBe("ok");
      expect(r.health().breakers[a.host]?.state).toBe("half_open");
    }
    expect(await api.get(`${a.base}/p3`).text()).toBe("ok");
    expect(changes.map((c) => [c.from, c.to])).toEqual([
      ["closed", "open"],
      ["open", "half_open"],
      ["half_open", "closed"],
    ]);
    expect(changes[2]?.reason).toBe("3 successful probes");
  });

  it("a probe's 429 `Retry-After: 3600` re-opens for 3600 s in one event; the other probe's 200 after it changes nothing", async () => {
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 2, successThreshold: 1 },
    });
    const changes: BreakerEvent[] = [];
    r.on("breaker", (e) => void changes.push(e));
    a.on(down);
    expect(await drain(r.fetch(`${a.base}/o`))).toBe(503);
    await clock.advance(1_000);
    const held: Hit[] = [];
    a.on((hit) => void held.push(hit));
    const p1 = drain(r.fetch(`${a.base}/p1`));
    const p2 = drain(r.fetch(new Request(`${a.base}/p2`, { headers: { "x-probe": "2" } })));
    await until(() => held.length === 2, "two probes");
    held[0]?.res.writeHead(429, { "retry-after": "3600" }).end();
    expect(await p1).toBe(429);
    held[1]?.res.end("ok");
    expect(await p2).toBe(200);
    const h = r.health().breakers[a.host];
    expect([h?.state, h?.openUntil, h?.lastError]).toEqual([
      "open",
      START + 1_000 + 3_600_000,
      "Retry-After 3600 s on status 429",
    ]);
    expect(changes.map((c) => [c.from, c.to, c.openUntil])).toEqual([
      ["closed", "open", START + 1_000],
      ["open", "half_open", null],
      ["half_open", "open", START + 1_000 + 3_600_000],
    ]);
  });
});

describe('"a `Retry-After` or a store\'s state holds a host a day at most", shared through `memoryStore()`', () => {
  it("`Retry-After: 200000` holds one day; a second layer on the same store refuses unsent until then (plain, ky)", async () => {
    const clock = new TestClock(START);
    const store = memoryStore();
    const one = createResilience({ clock, store, retry: { maxAttempts: 1 } });
    const two = createResilience({ clock, store, retry: { maxAttempts: 1 } });
    a.on((hit) => void hit.res.writeHead(503, { "retry-after": "200000" }).end());
    expect(await drain(one.fetch(`${a.base}/o`))).toBe(503);
    const h = one.health().breakers[a.host];
    expect([h?.state, h?.openUntil, h?.reason]).toEqual(["open", START + DAY, "Retry-After 200000 s on status 503"]);
    const refused = await rejection(two.fetch(`${a.base}/two`));
    expect([isCircuitOpenError(refused), (refused as { retryAt?: number }).retryAt]).toEqual([true, START + DAY]);
    expect(two.health().breakers[a.host]?.reason).toBe("shared: Retry-After 200000 s on status 503");
    const viaKy = await rejection(createClient({ resilience: two }).get(`${a.base}/ky`));
    expect(isCircuitOpenError(viaKy)).toBe(true);
    await clock.advance(DAY - 1);
    expect(isCircuitOpenError(await rejection(two.fetch(`${a.base}/late`)))).toBe(true);
    expect([a.hits.length, clock.pending()]).toEqual([1, 0]);
  });
});

describe("named breakers", () => {
  it("`hold(now + 60 s)` over a probe in flight: the probe's success after it leaves the breaker open until the hold ends", async () => {
    const clock = new TestClock(START);
    const r = createResilience({ clock });
    const br = r.breaker("upscaler", { failureThreshold: 1, timeout: 1_000, successThreshold: 1, halfOpenMaxCalls: 1 });
    await rejection(
      br.execute(async () => {
        throw new Error("x");
      }),
    );
    await clock.advance(1_000);
    let finish: (v: string) => void = () => {};
    const probe = br.execute(
      () =>
        new Promise<string>((resolve) => {
          finish = resolve;
        }),
    );
    expect(br.state).toBe("half_open");
    br.hold(clock.now() + 60_000, "maintenance");
    finish("done");
    expect(await probe).toBe("done");
    const h = r.health().breakers.upscaler;
    expect([br.state, h?.openUntil, h?.reason]).toEqual(["open", START + 61_000, "maintenance"]);
    await clock.advance(59_999);
    expect(br.state).toBe("open");
  });

  it("`execute(fn, { breaker })` takes the layer's thresholds, ends with the run's error, never reaches the store", async () => {
    const clock = new TestClock(START);
    const heard: string[] = [];
    const store: BreakerStore = {
      name: "mine",
      publish: (key) => void heard.push(`publish ${key}`),
      peek: (key) => void heard.push(`peek ${key}`),
    };
    const r = createResilience({
      clock,
      store,
      breaker: { failureThreshold: 2 },
      retry: { maxAttempts: 3, initialDelay: 10, maxDelay: 10, jitter: "none" },
    });
    let runs = 0;
    const boom = new Error("gen fail");
    const failing = async (): Promise<never> => {
      runs++;
      throw boom;
    };
    expect(await rejection(clock.run(r.execute(failing, { breaker: "gen" })))).toBe(boom);
    expect([runs, r.health().breakers.gen?.state, r.health().breakers.gen?.reason]).toEqual([
      2,
      "open",
      "2 failures in a row (last: Error)",
    ]);
    const refused = await rejection(clock.run(r.execute(failing, { breaker: "gen" })));
    expect([isCircuitOpenError(refused), runs]).toEqual([true, 2]);
    expect(heard.filter((h) => h.endsWith(" gen"))).toEqual([]);
  });
});

describe("bulkheads", () => {
  it("health shows active/queued; a full queue refuses at once, uncounted; queued `Request` and ky calls that abort leave", async () => {
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      bulkhead: { maxConcurrent: 1, maxQueue: 2 },
    });
    const held: Hit[] = [];
    a.on((hit) => void held.push(hit));
    const first = r.fetch(`${a.base}/1`);
    await until(() => held.length === 1, "first");
    const ac = new AbortController();
    const fromRequest = rejection(r.fetch(new Request(`${a.base}/2`, { signal: ac.signal })));
    const ac2 = new AbortController();
    const fromKy = rejection(createClient({ resilience: r }).get(`${a.base}/3`, { signal: ac2.signal }));
    await until(() => r.health().breakers[a.host]?.queued === 2, "two queued");
    expect(r.health().breakers[a.host]?.active).toBe(1);
    const full = await rejection(r.fetch(`${a.base}/4`));
    expect(full).toBeInstanceOf(BulkheadRejectedError);
    const gone = new Error("gone");
    const gone2 = new Error("gone2");
    ac.abort(gone);
    ac2.abort(gone2);
    expect([await fromRequest, await fromKy]).toEqual([gone, gone2]);
    const h = r.health().breakers[a.host];
    expect([h?.state, h?.failureCount, h?.active, h?.queued]).toEqual(["closed", 0, 1, 0]);
    held[0]?.res.end("ok");
    expect(await drain(first)).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect([a.hits.map((x) => x.path), clock.pending()]).toEqual([["/1"], 0]);
  });

  it("hedge: a leg queued behind a held slot leaves the queue when the primary wins, and is never sent", async () => {
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      retry: false,
      bulkhead: { maxConcurrent: 1, maxQueue: 1 },
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 100 },
          endpoints: [
            { name: "pa", url: `${a.base}/v1` },
            { name: "pb", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const heldA: Hit[] = [];
    const heldB: Hit[] = [];
    a.on((hit) => void heldA.push(hit));
    b.on((hit) => void heldB.push(hit));
    const direct = r.fetch(`${b.base}/direct`);
    await until(() => heldB.length === 1, "b's slot taken");
    const call = r.fetch(`${a.base}/v1/x`);
    await until(() => heldA.length === 1, "primary sent");
    await clock.advance(100);
    await until(() => r.health().breakers[b.host]?.queued === 1, "hedge leg queued");
    heldA[0]?.res.end("a-ok");
    const res = await call;
    expect([res.status, await res.text()]).toEqual([200, "a-ok"]);
    await until(() => r.health().breakers[b.host]?.queued === 0, "the leg leaves the queue");
    heldB[0]?.res.end("b");
    expect(await drain(direct)).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect([heldB.map((h) => h.path), r.health().breakers[b.host]?.active, clock.pending()]).toEqual([
      ["/direct"],
      0,
      0,
    ]);
  });

  it("a redirect's hop to a host whose only slot is taken goes, inside the first host's slot", async () => {
    const clock = new TestClock(START);
    const r = createResilience({ clock, retry: { maxAttempts: 1 }, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const held: Hit[] = [];
    b.on((hit) => (hit.path === "/hold" ? void held.push(hit) : void hit.res.end("from b")));
    a.on((hit) => void hit.res.writeHead(302, { location: `${b.base}/go` }).end());
    const direct = r.fetch(`${b.base}/hold`);
    await until(() => held.length === 1, "b's slot taken");
    const res = await r.fetch(`${a.base}/x`);
    expect([res.status, await res.text()]).toEqual([200, "from b"]);
    expect([r.health().breakers[a.host]?.active, r.health().breakers[b.host]?.active]).toEqual([0, 1]);
    held[0]?.res.end("ok");
    expect(await drain(direct)).toBe(200);
  });

  for (const via of ["plain", "ky"] as const) {
    it(`${via}: a retry that meets a full bulkhead settles with the 503 it had, body intact`, async () => {
      const clock = new TestClock(START);
      const r = createResilience({
        clock,
        retry: { maxAttempts: 2, initialDelay: 1_000, maxDelay: 1_000, jitter: "none" },
        bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      });
      const held: Hit[] = [];
      a.on((hit) => (hit.path === "/first" ? void hit.res.writeHead(503).end("busy body") : void held.push(hit)));
      const call =
        via === "plain"
          ? settle(r.fetch(`${a.base}/first`))
          : settle(createClient({ resilience: r }).get(`${a.base}/first`));
      await clock.waitForTimers(1);
      const other = r.fetch(`${a.base}/other`);
      await until(() => held.length === 1, "slot taken");
      await clock.advance(1_000);
      const out = await call;
      const response = via === "plain" ? (out as Response) : (out as HTTPError).response;
      if (via === "ky") expect(out).toBeInstanceOf(HTTPError);
      expect([response.status, via === "plain" ? await response.text() : (out as HTTPError).data]).toEqual([
        503,
        "busy body",
      ]);
      expect(a.hits.map((h) => h.path)).toEqual(["/first", "/other"]);
      held[0]?.res.end("ok");
      expect(await drain(other)).toBe(200);
      expect(clock.pending()).toBe(0);
    });
  }

  it("`timeout.total` firing while a retry waits in the queue ends the call; the breaker counts only the first 500", async () => {
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 3_000, maxDelay: 3_000, jitter: "none" },
      timeout: { total: 5_000 },
      breaker: { failureThreshold: 5 },
      bulkhead: { maxConcurrent: 1, maxQueue: 1 },
    });
    const held: Hit[] = [];
    a.on((hit) => (hit.path === "/x" ? void hit.res.writeHead(500).end("x body") : void held.push(hit)));
    const x = settle(r.fetch(`${a.base}/x`));
    await clock.waitForTimers(2);
    await clock.advance(2_000);
    const y = settle(r.fetch(`${a.base}/y`));
    await until(() => held.length === 1, "y holds the slot");
    await clock.advance(1_000);
    expect([r.health().breakers[a.host]?.active, r.health().breakers[a.host]?.queued]).toEqual([1, 1]);
    await clock.advance(2_000);
    const error = (await x) as { name: string; phase: string };
    expect([error.name, error.phase]).toEqual(["TimeoutError", "total"]);
    expect(guide("breakers.md")).toContain(
      "A retry still waiting in the queue when `timeout.total` passes ends the call with that `TimeoutError`, the response in hand released",
    );
    const h = r.health().breakers[a.host];
    expect([h?.queued, h?.failureCount, h?.consecutiveFailures, h?.state]).toEqual([0, 1, 1, "closed"]);
    held[0]?.res.end("y");
    expect(((await y) as Response).status).toBe(200);
    expect([a.hits.map((hit) => hit.path), clock.pending()]).toEqual([["/x", "/y"], 0]);
  });
});

describe("stores of one's own", () => {
  it("`record` throwing on a 200: RetryExhaustedError with it as `cause`, the breaker heard a success, a failed call", async () => {
    const clock = new TestClock(START);
    const boom = new Error("record boom");
    const store: BreakerStore = {
      name: "mine",
      publish() {},
      peek: () => undefined,
      record() {
        throw boom;
      },
    };
    const r = createResilience({ clock, store, retry: { maxAttempts: 3 } });
    const error = (await rejection(r.fetch(`${a.base}/x`))) as RetryExhaustedError;
    expect([error instanceof RetryExhaustedError, error.cause, error.attempts, a.hits.length]).toEqual([
      true,
      boom,
      1,
      1,
    ]);
    const h = r.health();
    expect([h.errorRate, h.breakers[a.host]?.state, h.breakers[a.host]?.failureRate]).toEqual([1, "closed", 0]);
    const viaKy = await rejection(createClient({ resilience: r }).get(`${a.base}/y`));
    expect([viaKy instanceof RetryExhaustedError, (viaKy as Error).cause]).toEqual([true, boom]);
  });

  it("`configure` throwing: createResilience and createClient throw that very error; `breaker: false` asks no store", async () => {
    const boom = new Error("configure boom");
    const throwing: BreakerStore = {
      name: "mine",
      publish() {},
      peek: () => undefined,
      configure() {
        throw boom;
      },
    };
    expect(() => createResilience({ store: throwing })).toThrow(boom);
    expect(() => createClient({ resilience: { store: throwing } })).toThrow(boom);
    const asked: string[] = [];
    const quiet: BreakerStore = {
      name: "quiet",
      publish: () => void asked.push("publish"),
      peek: () => void asked.push("peek"),
      configure: () => void asked.push("configure"),
    };
    const r = createResilience({ store: quiet, breaker: false, retry: { maxAttempts: 1 } });
    expect(await drain(r.fetch(`${a.base}/x`))).toBe(200);
    expect(asked).toEqual([]);
  });

  it("`publish`/`record` promises that never settle and a `peek` promise: calls settle, read/skipped, nothing pending", async () => {
    const clock = new TestClock(START);
    const never = <T>(): Promise<T> => new Promise<T>(() => {});
    const store = {
      name: "hanging",
      publish: () => never<void>(),
      record: () => never<void>(),
      peek: () => never<undefined>(),
    } as unknown as BreakerStore;
    const r = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000 },
    });
    const events: StoreEvent[] = [];
    r.on("store", (e) => void events.push(e));
    a.on(down);
    expect(await drain(r.fetch(`${a.base}/1`))).toBe(503);
    expect(isCircuitOpenError(await rejection(r.fetch(`${a.base}/2`)))).toBe(true);
    await clock.advance(1_000);
    a.on((hit) => void hit.res.end("ok"));
    expect(await drain(r.fetch(`${a.base}/3`))).toBe(200);
    expect(events.some((e) => e.operation === "read" && e.outcome === "skipped")).toBe(true);
    expect(events.every((e) => e.outcome === "skipped")).toBe(true);
    expect([a.hits.length, clock.pending()]).toEqual([2, 0]);
  });
});

/** A guide's text, its line breaks read as spaces. */
function guide(name: string): string {
  return readFileSync(new URL(`../../docs/${name}`, import.meta.url), "utf8").replace(/\s+/g, " ");
}

describe("written in (the docs were silent; sixty-sixth session)", () => {
  it("a call the full queue refused counts as failed in the error rate and debugInfo, not in its breaker", async () => {
    expect(guide("breakers.md")).toContain(
      "A call the full queue refused did not serve: it counts as a failed call in `health()`'s error rate and `debugInfo()` (its host's breaker counts nothing), so shedding load alone can make `health()` read `degraded`",
    );
    const clock = new TestClock(START);
    const answers: Array<(response: Response) => void> = [];
    const r = createResilience({
      clock,
      retry: false,
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      fetch: () => new Promise<Response>((resolve) => answers.push(resolve)),
    });
    const first = r.fetch("https://shed.example/a");
    await until(() => answers.length === 1, "first sent");
    const refused = await rejection(r.fetch("https://shed.example/b"));
    expect(refused).toBeInstanceOf(BulkheadRejectedError);
    answers[0]?.(new Response("ok"));
    expect((await first).status).toBe(200);
    const h = r.health();
    expect([h.errorRate, h.status, h.breakers["shed.example"]?.failureCount]).toEqual([0.5, "degraded", 0]);
    expect(r.debugInfo().totals).toMatchObject({ calls: 2, failures: 1 });
  });

  it("a closed breaker that counted a failure shows lastError null; it is named once it opens", async () => {
    expect(guide("health-and-events.md")).toContain(
      "closed breaker shows its live counts, with `lastError` `null` (the error is named once it opens)",
    );
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 2 },
      fetch: async () => new Response("busy", { status: 503 }),
    });
    await (await r.fetch("https://named.example/x")).text();
    const closed = r.health().breakers["named.example"];
    expect([closed?.state, closed?.consecutiveFailures, closed?.lastError]).toEqual(["closed", 1, null]);
    await (await r.fetch("https://named.example/x")).text();
    const open = r.health().breakers["named.example"];
    expect(open?.state).toBe("open");
    expect(open?.lastError).toContain("503");
  });
});
