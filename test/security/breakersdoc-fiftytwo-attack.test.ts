/**
 * Outside-in attack on docs/breakers.md: thresholds and the rate rule's window, what counts as a failure,
 * `breaker.key`, named breakers, `CircuitBreaker` and `transition`.
 *
 * Docs:
 * - docs/breakers.md: "CLOSED → OPEN when `failureThreshold` (12) attempts in a row failed, or when `failureRate`
 *   (0.5) of at least `minimumCalls` (100) attempts inside `timeWindow` (30 s, kept in 10 buckets of 3 s that leave
 *   whole: an attempt counts for 27 to 30 s) failed"; "under the rate rule alone, 50 failures then 50 successes open
 *   it at the next failure, not at the 100th attempt"; "set `failureRate: 1` (the rate rule then trips only when every
 *   attempt in the window failed)"; "Network errors, attempt timeouts, 5xx and 429 are failures; other 4xx are the
 *   caller's fault and count as successes of the service; a caller's abort is neither, and so is an attempt cut by
 *   `timeout.total`"; "OPEN fails fast with `CircuitOpenError` and sends nothing"; "One per host (`url.host`, or
 *   `breaker.key(url)`)"; "the fifth call is refused without being sent ... after 12 requests"; "options are applied on
 *   first use only (passed again, they are checked all the same: a bad value or a typo is a `ConfigError` every
 *   time)"; "`execute` refuses a `fn` that is no function or a `signal` that is no `AbortSignal` at once ... a signal
 *   is read by its shape ... with a signal aborted already it rejects with its reason without running `fn` (the
 *   breaker hears nothing)"; "Where a name is both, the named breaker is the one listed, and an open host breaker
 *   still makes `status` `unhealthy`"; "a URL given as a name keeps its query there"; "its state is plain versioned
 *   JSON (`toJSON()`: `v`, `state`, `gen` …, with `gen` +1 on every transition)"; "The breaker is a pure function
 *   `transition(state, input, now)`".
 *
 * How: `createResilience`, `CircuitOpenError`, `ConfigError` (root), `createClient` (./ky), `CircuitBreaker`,
 * `transition` (./policies), `TestClock` (./testing); node:http servers on 127.0.0.1 answering by path or holding.
 *
 * Paths: plain call, `Request` input (POST), ky client, named breaker `execute`, `CircuitBreaker` on its own.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none found in this run's time box.
 *
 * Held (plain `it`):
 * - Rate rule with defaults: 50 failures + 50 successes closed, the 101st (a failure) opens ("failure rate 0.50 over
 *   101 calls"); a failure 2.999 s into the window's first bucket counts at 29.999 s and is gone at 30.000 s.
 * - `failureRate: 1`: one success among 150 failures keeps it closed; 12 failures in a row still open.
 * - 404 and 408 reset the run (503,404,503,408,503 closed at threshold 2); a caller's abort and a `timeout.total` cut
 *   neither count nor reset; open refuses a POST `Request` unsent.
 * - `breaker.key` returning one key: 503s at A refuse B unsent; health lists only the key.
 * - ky client with defaults: four calls send 12 requests, the fifth is refused unsent.
 * - Named breakers: first-use options, typo/bad value a ConfigError every time; execute's refusals, aborted signal,
 *   shaped signal; host-named breaker listed over the host one with status unhealthy; URL name keeps its query in
 *   events, health and the CircuitOpenError message.
 * - `CircuitBreaker.toJSON()` has `v`, `gen` +1 per transition; `transition` leaves its input untouched, same result
 *   twice.
 *
 * Docs-silent (not pinned):
 * - A named breaker's reason names only the error's class: "12 failures in a row (last: Error)", not its message.
 * - A followed redirect from A to B answering 503: `health().breakers` lists one host only after that attempt (not
 *   confirmed which of A or B it is in the time box; docs say B's breaker is read for the hop).
 * - `transition` takes a fourth argument (the resolved policy), which the doc's signature `transition(state, input,
 *   now)` leaves out.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  type BreakerEvent,
  CircuitOpenError,
  ConfigError,
  createResilience,
  type Resilience,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker, transition } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const START = 1_000_000;
const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const held: Hit[] = [];
afterEach(async () => {
  for (const hit of held.splice(0)) if (!hit.res.writableEnded) hit.res.end("late");
  await new Promise((resolve) => setTimeout(resolve, 5));
});

/** `/503`, `/404`, `/408`, `/ok`, `/r?to=…` (302); anything else is held until the test answers. */
function route(hit: Hit): void {
  const path = hit.path.split("?")[0] ?? "";
  if (path === "/r") {
    hit.res.writeHead(302, { location: new URL(hit.path, "http://x").searchParams.get("to") ?? "/" }).end();
    return;
  }
  const status = { "/503": 503, "/404": 404, "/408": 408, "/ok": 200 }[path];
  if (status !== undefined) {
    hit.res.writeHead(status).end(String(status));
    return;
  }
  held.push(hit);
}

async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  if (!done()) throw new Error(`never: ${what}`);
}

function breakerEvents(layer: Resilience): BreakerEvent[] {
  const seen: BreakerEvent[] = [];
  layer.on("breaker", (event) => void seen.push(event));
  return seen;
}

const fail = (): Promise<never> => Promise.reject(new Error("down"));
const pass = (): Promise<string> => Promise.resolve("ok");

async function run(breaker: ReturnType<Resilience["breaker"]>, failures: number, successes: number): Promise<void> {
  for (let i = 0; i < failures; i++) await rejection(breaker.execute(fail));
  for (let i = 0; i < successes; i++) await breaker.execute(pass);
}

describe("the rate rule's numbers (named breaker, defaults, TestClock)", () => {
  it("50 failures then 50 successes stay closed; the next failure opens it on the rate", async () => {
    const clock = new TestClock(START);
    const layer = createResilience({ clock });
    const breaker = layer.breaker("upscaler", { failureThreshold: 1_000 });
    await run(breaker, 50, 50);
    expect(breaker.state).toBe("closed");
    await rejection(breaker.execute(fail));
    expect(breaker.state).toBe("open");
    expect(breaker.toJSON()).toMatchObject({ state: "open" });
    expect(String(breaker.toJSON().reason)).toMatch(/^failure rate 0\.50 over 101 calls \(last: /);
  });

  it("an attempt counts for 27 to 30 s: a failure 2.999 s into the first bucket still counts at 29.999 s", async () => {
    const clock = new TestClock(START);
    const layer = createResilience({ clock });
    const breaker = layer.breaker("upscaler", { failureThreshold: 1_000 });
    await breaker.execute(pass);
    await clock.advance(2_999);
    await run(breaker, 50, 0);
    await clock.advance(27_000);
    await run(breaker, 0, 49);
    await rejection(breaker.execute(fail));
    expect(breaker.state).toBe("open");
  });

  it("…and is gone at 30 s from the window's start (27.001 s after it): 50 calls, below minimumCalls", async () => {
    const clock = new TestClock(START);
    const layer = createResilience({ clock });
    const breaker = layer.breaker("upscaler", { failureThreshold: 1_000 });
    await breaker.execute(pass);
    await clock.advance(2_999);
    await run(breaker, 50, 0);
    await clock.advance(27_001);
    await run(breaker, 0, 49);
    await rejection(breaker.execute(fail));
    expect(breaker.state).toBe("closed");
  });

  it("failureRate 1: one success among 150 failures keeps it closed; 12 in a row still opens with defaults", async () => {
    const clock = new TestClock(START);
    const layer = createResilience({ clock });
    const rateOnly = layer.breaker("rate-only", { failureRate: 1, failureThreshold: 1_000 });
    await run(rateOnly, 0, 1);
    await run(rateOnly, 150, 0);
    expect(rateOnly.state).toBe("closed");
    const runs = layer.breaker("runs", { failureRate: 1 });
    await run(runs, 11, 0);
    expect(runs.state).toBe("closed");
    await run(runs, 1, 0);
    expect(runs.state).toBe("open");
    expect(runs.toJSON().reason).toBe("12 failures in a row (last: Error)");
  });
});

describe("what counts as a failure (plain call, Request input, real servers)", () => {
  it("other 4xx count as successes: 503, 404, 503 and 503, 408, 503 leave a threshold-2 host closed", async () => {
    a.on(route);
    const layer = createResilience({ clock: new TestClock(START), retry: false, breaker: { failureThreshold: 2 } });
    for (const path of ["/503", "/404", "/503", "/408", "/503"])
      await layer.fetch(new Request(`${a.base}${path}`, { method: "POST", body: "x" }));
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "closed" });
    expect((await layer.fetch(`${a.base}/503`)).status).toBe(503);
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", lastError: "status 503" });
    const refused = await rejection(layer.fetch(new Request(`${a.base}/ok`, { method: "POST", body: "x" })));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(a.hits.length).toBe(6);
  });

  it("a caller's abort and a timeout.total cut are neither: 503, abort, cut, 503 opens a threshold-2 host", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 2 },
      timeout: { total: 1_000 },
    });
    await layer.fetch(`${a.base}/503`);
    const controller = new AbortController();
    const aborted = layer.fetch(`${a.base}/hang1`, { signal: controller.signal });
    await until(() => held.length === 1, "first hang");
    controller.abort(new Error("gone"));
    await rejection(aborted);
    const cut = rejection(layer.fetch(`${a.base}/hang2`));
    await until(() => held.length === 2, "second hang");
    await clock.advance(1_000);
    expect(await cut).toMatchObject({ name: "TimeoutError" });
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "closed" });
    await layer.fetch(`${a.base}/503`);
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", lastError: "status 503" });
  });
});

describe("per host, `breaker.key`, a followed redirect, the ky client", () => {
  it("breaker.key puts two hosts under one key: 503s at A open it, B is refused unsent", async () => {
    a.on(route);
    b.on(route);
    const layer = createResilience({
      clock: new TestClock(START),
      retry: false,
      breaker: { failureThreshold: 2, key: () => "shared" },
    });
    await layer.fetch(`${a.base}/503`);
    await layer.fetch(`${a.base}/503`);
    const refused = await rejection(layer.fetch(`${b.base}/ok`));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(b.hits.length).toBe(0);
    expect(Object.keys(layer.health().breakers)).toEqual(["shared"]);
  });

  it("the ky client: a dead host opens within four calls, the fifth is refused after 12 requests", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const layer = createResilience({ clock });
    const api = createClient({ prefix: a.base, resilience: layer, throwHttpErrors: false });
    for (let call = 1; call <= 4; call++) {
      const pending = api.get("503");
      let done = false;
      void pending.then(
        () => (done = true),
        () => (done = true),
      );
      for (let i = 0; i < 200 && !done; i++) await clock.advance(500);
      await pending.catch(() => undefined);
    }
    expect(a.hits.length).toBe(12);
    const fifth = await rejection(api.get("503"));
    expect(fifth).toBeInstanceOf(CircuitOpenError);
    expect(a.hits.length).toBe(12);
  });
});

describe("named breakers, CircuitBreaker and transition", () => {
  it("options on first use only; a typo is a ConfigError every time", async () => {
    const layer = createResilience({ clock: new TestClock(START) });
    const typo = { failureThreshhold: 1 } as unknown as Parameters<Resilience["breaker"]>[1];
    expect(() => layer.breaker("upscaler", typo)).toThrow(ConfigError);
    const first = layer.breaker("upscaler", { failureThreshold: 1 });
    expect(() => layer.breaker("upscaler", typo)).toThrow(ConfigError);
    expect(() => layer.breaker("upscaler", { failureThreshold: 0 })).toThrow(ConfigError);
    const again = layer.breaker("upscaler", { failureThreshold: 5 });
    await rejection(again.execute(fail));
    expect(first.state).toBe("open");
  });

  it("execute: a non-function and a non-signal are refused; an aborted signal rejects with its reason unrun; a signal-shaped object is taken", async () => {
    const layer = createResilience({ clock: new TestClock(START) });
    const breaker = layer.breaker("upscaler", { failureThreshold: 1 });
    const events = breakerEvents(layer);
    await expect(breaker.execute(42 as unknown as () => Promise<string>)).rejects.toBeInstanceOf(TypeError);
    await expect(breaker.execute(pass, {} as AbortSignal)).rejects.toBeInstanceOf(TypeError);
    const reason = new Error("cancelled");
    let ran = 0;
    const controller = new AbortController();
    controller.abort(reason);
    await expect(
      breaker.execute(() => {
        ran++;
        return fail();
      }, controller.signal),
    ).rejects.toBe(reason);
    expect(ran).toBe(0);
    expect(breaker.state).toBe("closed");
    const shaped = { aborted: false, addEventListener() {}, removeEventListener() {} } as unknown as AbortSignal;
    expect(await breaker.execute(pass, shaped)).toBe("ok");
    expect(events).toEqual([]);
  });

  it("a name that is a host is the one listed; the open host breaker still makes status unhealthy; a URL name keeps its query", async () => {
    a.on(route);
    const layer = createResilience({ clock: new TestClock(START), retry: false, breaker: { failureThreshold: 1 } });
    const named = layer.breaker(a.host);
    await layer.fetch(`${a.base}/503`);
    const health = layer.health();
    expect(named.state).toBe("closed");
    expect(health.breakers[a.host]).toMatchObject({ state: "closed" });
    expect(health.status).toBe("unhealthy");
    const events = breakerEvents(layer);
    const url = "https://api.example/v1?token=abc";
    const byUrl = layer.breaker(url, { failureThreshold: 1 });
    await rejection(byUrl.execute(fail));
    const refused = await rejection(byUrl.execute(pass));
    expect(events.map((e) => e.key)).toEqual([url]);
    expect(Object.keys(layer.health().breakers)).toContain(url);
    expect(String((refused as Error).message)).toContain("?token=abc");
  });

  it("CircuitBreaker: toJSON has v, state, gen; gen +1 on every transition; transition is a pure function", async () => {
    const clock = new TestClock(START);
    const policy = {
      failureThreshold: 1,
      successThreshold: 1,
      timeout: 30_000,
      halfOpenMaxCalls: 1,
      timeWindow: 30_000,
      probeTimeout: 30_000,
      failureRate: 0.5,
      minimumCalls: 100,
    };
    const breaker = new CircuitBreaker("upscaler", policy, clock);
    const gens: number[] = [breaker.toJSON().gen];
    expect(breaker.toJSON()).toMatchObject({ v: expect.any(Number), state: "closed" });
    await rejection(breaker.execute(fail));
    gens.push(breaker.toJSON().gen);
    await clock.advance(30_000);
    await breaker.execute(pass);
    const snap = breaker.toJSON();
    gens.push(snap.gen);
    expect(snap.state).toBe("closed");
    // closed → open → half_open → closed: three transitions.
    expect(gens).toEqual([gens[0], (gens[0] as number) + 1, (gens[0] as number) + 3]);
    const frozen = structuredClone(snap);
    const input = { type: "failure", lease: null, gen: snap.gen, reason: "status 503" } as const;
    const one = transition(snap, input, START + 40_000, policy);
    const two = transition(snap, input, START + 40_000, policy);
    expect(snap).toEqual(frozen);
    expect(one).toEqual(two);
    expect(one.state).toMatchObject({ state: "open", gen: snap.gen + 1 });
  });
});
