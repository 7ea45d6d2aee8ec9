/**
 * Outside-in attack on retry waits ended by a host's breaker opening, on the paths not yet tried. Docs:
 * docs/breakers.md "A retry is never parked behind an open breaker: when the breaker of the host a call addresses
 * opens during the call, in this layer, the call's retry wait ends and it settles then with the response it has …";
 * docs/retry.md "Generic work" (`execute`'s `breaker`), "Retry" (`Retry-After`), "Bodies" (the kept body), "ky";
 * the `ExecuteOptions.breaker` JSDoc; docs/health-and-events.md (`request` event, totals); docs/degradation.md
 * ("A call takes the level it finds when it starts").
 * How: root entry (`createResilience`, `getResilienceInfo`, `execute`, named breakers), `./fallback`,
 * `./degradation`, `./ky` (`createClient`), `./cloudflare` (`resilientProxy`), `./testing`'s TestClock; a scripted
 * transport (503 `Retry-After: 45`, a slow second endpoint) that logs each request with the clock's time.
 * Paths: a hedged chain (the first endpoint waiting to retry while the hedge runs; the hedge failing too), a chain
 * in `order: "adaptive"`, a `Request` input with a small JSON body under degradation (level moved during the
 * wait), ky's `HTTPError`, `resilientProxy`'s answer to its client, `timeout.total`, 1,000 waiting calls woken
 * at once, a breaker with `timeout: 0` (half-open before the woken retry leaves), concurrent `execute` calls on
 * one named breaker. (Tried, not kept: a `Request` with a streamed body larger than `maxReplayBytes` is sent once
 * and never waits to retry, as docs/retry.md "Bodies" says, so no wait is there to end.)
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * both fixed since, so plain `it`: a named breaker opening ends the `execute` waits behind it, which end then with
 * their last failure; a wait the opening ended settles the call then, sending nothing, whatever the breaker's
 * state when the call resumes):
 * 1. docs/retry.md "With `execute`'s `breaker`, once that breaker opens no retry waits behind it: the call ends
 *    with the failure that opened it." and the `ExecuteOptions.breaker` JSDoc "an open breaker ends the retries at
 *    once". Observed: two `execute` calls on `breaker("gpu", { failureThreshold: 2, timeout: 500 })`, retry
 *    `initialDelay: 1000`; A's first attempt fails at t=0 and A waits; B's failure opens the breaker at t=0; A's
 *    wait is not ended: at t=1,000 (the breaker half-open since 500) A's stored-up retry runs as the probe (`fn`
 *    called 3 times, A settles at 1,000 with "gpu down 3"), the burst the CHANGELOG says was fixed ("one went
 *    through as its half-open probe"), on the concurrent path.
 * 2. docs/breakers.md "A retry is never parked behind an open breaker: when the breaker of the host a call
 *    addresses opens during the call, in this layer, the call's retry wait ends and it settles then with the
 *    response it has (with none, as its last attempt failed: `RetryExhaustedError`), so recovery brings no burst of
 *    stored-up retries." with docs/retry.md "A `Retry-After` header on 429/503 … replaces the computed delay".
 *    Observed with `breaker: { failureThreshold: 2, timeout: 0 }` (accepted: `timeout` is "num>=0"): a call got
 *    503 `Retry-After: 45` at t=0; another call's 503 opens the host at t=1,000; the woken call does not settle
 *    with its 503: its retry leaves at once, at t=1,000, as a half-open probe, 44 s before the server's
 *    `Retry-After` (each failed probe re-opens the host and wakes the other waiting call, whose retry leaves too:
 *    y, x, y, x, y, 5 requests at t=1,000 instead of y's 1; x settles after its 3 attempts).
 *
 * Held (plain `it`):
 * - Hedged chain: the first endpoint's wait ends when its host opens while the hedge runs; the call carries on with
 *   the hedge (200 from it, no request to the open host after); with the hedge failing too, the call answers with
 *   the first endpoint's kept 503, body intact, `attempts` counting every request (1 + 3). No timer left.
 * - `order: "adaptive"`: the woken endpoint is passed over at the opening (`fallback` event at t=1,000), the
 *   next endpoint serves.
 * - A `Request` PUT with a small JSON body under degradation (`medium`, moved to `low` during the wait): settles at
 *   the opening with the 503, body intact; `getResilienceInfo` and the `request` event say `attempts: 1` and
 *   level `medium`; the one request sent carried the `medium` rewrite; `debugInfo().totals` counts the call once.
 * - ky's `createClient`: `HTTPError` with the 503 and its body in `error.data`, at the opening.
 * - `resilientProxy`: the client gets the 503 with its body and `x-resilience-attempts: 1`, at the opening.
 * - `timeout.total`: the woken call settles at the opening; its deadline timer is cleared (`clock.pending()` 0).
 * - 1,000 calls waiting on one host, woken by one opening: all settle then with their 503, no further request,
 *   no timer left.
 */
import { HTTPError } from "ky";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type RequestEvent } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { type SettledAt as Settled, settledAt } from "../helpers/settled.ts";

const urlOf = (input: RequestInfo | URL): string => String(input instanceof Request ? input.url : input);

/**
 * A transport: `s.example` answers 200 after 5 s (a network error for paths with "sfail"), honouring its signal;
 * every other host answers 503 `Retry-After: 45` with the body "down body". Logs each request (time, URL, body).
 */
function upstream(clock: TestClock) {
  const log: Array<{ at: number; url: string; body: string | undefined }> = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = urlOf(input);
    const body =
      init?.body != null
        ? await new Response(init.body).text()
        : input instanceof Request && input.body
          ? await input.text()
          : undefined;
    log.push({ at: clock.now(), url, body });
    if (url.startsWith("https://s.example/")) {
      const signal = init?.signal ?? undefined;
      return new Promise((resolve, reject) => {
        const cancel = clock.setTimer(
          () => (url.includes("sfail") ? reject(new TypeError("fetch failed")) : resolve(new Response("from s"))),
          5000,
        );
        signal?.addEventListener("abort", () => {
          cancel();
          reject(signal.reason);
        });
      });
    }
    return new Response("down body", { status: 503, headers: { "retry-after": "45" } });
  };
  return { fetch, log };
}

/** `n` calls to `host`, one after another, each answered before the next (their 503s open the host). */
async function fail(fetch: (url: string) => Promise<unknown>, host: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    void fetch(`https://${host}/other${i}`).catch(() => {});
    await flush();
  }
}

describe("a host's breaker opening ends its calls' retry waits: paths not tried before", () => {
  it("hedged chain: the first endpoint's wait ends while the hedge runs; the call carries on with the hedge, or answers with the kept 503", async () => {
    const hedged = (clock: TestClock, fetch: ReturnType<typeof upstream>["fetch"]) =>
      createResilience({
        clock,
        fetch,
        breaker: { failureThreshold: 3 },
        fallback: fallback([
          {
            name: "c",
            hedge: { delay: 100 },
            endpoints: [
              { name: "p", url: "https://p.example/v1" },
              { name: "s", url: "https://s.example/v1" },
            ],
          },
        ]),
      });
    // The hedge (s, started at 100) answers 200 at 5,100.
    const clock = new TestClock(0);
    const up = upstream(clock);
    const resilience = hedged(clock, up.fetch);
    const call = settledAt(resilience.fetch("https://p.example/v1/x"), clock);
    await flush();
    await clock.advance(1000);
    await fail(resilience.fetch, "p.example", 2);
    expect(resilience.health().breakers["p.example"]?.state).toBe("open");
    await clock.advance(10_000);
    expect(await call).toMatchObject({ status: 200, at: 5100 });
    expect(up.log.filter((r) => r.url === "https://p.example/v1/x").map((r) => r.at)).toEqual([0]);
    expect(clock.pending()).toBe(0);

    // The hedge fails every attempt: the answer is p's 503, kept with its body.
    const clock2 = new TestClock(0);
    const up2 = upstream(clock2);
    const layer2 = hedged(clock2, up2.fetch);
    const both = settledAt(layer2.fetch("https://p.example/v1/sfail"), clock2);
    await flush();
    await clock2.advance(1000);
    await fail(layer2.fetch, "p.example", 2);
    await clock2.advance(60_000);
    const answer = await both;
    expect(answer.status).toBe(503);
    expect(await answer.response?.text()).toBe("down body");
    expect(getResilienceInfo(answer.response as Response)).toMatchObject({ attempts: 4, endpoint: "p" });
    expect(up2.log.filter((r) => r.url === "https://p.example/v1/sfail").map((r) => r.at)).toEqual([0]);
    expect(clock2.pending()).toBe(0);
  });

  it('order: "adaptive": the woken endpoint is passed over at the opening and the next one serves', async () => {
    const clock = new TestClock(0);
    const up = upstream(clock);
    const resilience = createResilience({
      clock,
      fetch: up.fetch,
      breaker: { failureThreshold: 3 },
      fallback: fallback([
        {
          name: "c",
          order: "adaptive",
          endpoints: [
            { name: "p", url: "https://p.example/v1" },
            { name: "s", url: "https://s.example/v1" },
          ],
        },
      ]),
    });
    const events: string[] = [];
    resilience.on("fallback", (e) => events.push(`${clock.now()} ${e.from} ${e.reason} ${e.next}`));
    const call = settledAt(resilience.fetch("https://p.example/v1/x"), clock);
    await flush();
    await clock.advance(1000);
    await fail(resilience.fetch, "p.example", 2);
    await clock.advance(10_000);
    expect(await call).toMatchObject({ status: 200, at: 6000 });
    expect(events).toEqual(["1000 p status 503 s"]);
    expect(up.log.filter((r) => r.url.endsWith("/v1/x")).map((r) => `${r.at} ${r.url}`)).toEqual([
      "0 https://p.example/v1/x",
      "1000 https://s.example/v1/x",
    ]);
    expect(clock.pending()).toBe(0);
  });

  it("a Request PUT with a small JSON body, under degradation moved during the wait: settles at the opening with its 503, body intact, attempts 1, level as it started", async () => {
    const clock = new TestClock(0);
    const up = upstream(clock);
    const resilience = createResilience({
      clock,
      fetch: up.fetch,
      breaker: { failureThreshold: 3 },
      degradation: degradation(),
    });
    resilience.degradation.setLevel("medium");
    const requests: RequestEvent[] = [];
    resilience.on("request", (e) => requests.push(e));
    const request = new Request("https://h.example/job", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ steps: 50 }),
    });
    const call = settledAt(resilience.fetch(request), clock);
    await flush();
    await clock.advance(500);
    resilience.degradation.setLevel("low");
    await clock.advance(500);
    await fail(resilience.fetch, "h.example", 2);
    const out = await call;
    expect(out).toMatchObject({ status: 503, at: 1000 });
    expect(await out.response?.text()).toBe("down body");
    expect(getResilienceInfo(out.response as Response)).toMatchObject({ attempts: 1, degradationLevel: "medium" });
    expect(requests.find((e) => e.url === "https://h.example/job")).toMatchObject({ attempts: 1, status: 503 });
    expect(up.log.filter((r) => r.url === "https://h.example/job")).toEqual([
      { at: 0, url: "https://h.example/job", body: JSON.stringify({ steps: 30 }) },
    ]);
    expect(resilience.debugInfo().totals).toEqual({ calls: 3, failures: 3 });
    expect(clock.pending()).toBe(0);
  });

  it("ky's createClient: the woken call rejects with ky's HTTPError carrying the 503 and its body, at the opening", async () => {
    const clock = new TestClock(0);
    const up = upstream(clock);
    const resilience = createResilience({ clock, fetch: up.fetch, breaker: { failureThreshold: 3 } });
    const api = createClient({ resilience });
    const call = api.get("https://h.example/x").then(
      () => ({ error: undefined as unknown, at: clock.now() }),
      (error: unknown) => ({ error, at: clock.now() }),
    );
    await flush();
    await clock.advance(1000);
    await fail(resilience.fetch, "h.example", 2);
    const { error, at } = await call;
    expect(at).toBe(1000);
    expect(error).toBeInstanceOf(HTTPError);
    const httpError = error as HTTPError;
    expect(httpError.response.status).toBe(503);
    expect(httpError.data).toBe("down body");
    expect(getResilienceInfo(httpError.response)).toMatchObject({ attempts: 1 });
    expect(clock.pending()).toBe(0);
  });

  it("resilientProxy: the client of the proxy gets the 503 with its body and x-resilience-attempts 1, at the opening", async () => {
    const clock = new TestClock(0);
    const up = upstream(clock);
    const proxy = resilientProxy<Record<string, never>>({
      routes: [{ path: "/v1", upstream: "https://h.example/v1" }],
      resilience: { clock, fetch: up.fetch, breaker: { failureThreshold: 3 } },
    });
    const ctx = { waitUntil() {}, passThroughOnException() {} };
    const call = proxy.fetch(new Request("https://worker.example/v1/a", { method: "PUT", body: "hi" }), {}, ctx);
    await flush();
    await clock.advance(1000);
    await fail(
      (url) => proxy.fetch(new Request(url.replace("h.example", "worker.example/v1")), {}, ctx),
      "h.example",
      2,
    );
    const answer = await call;
    expect(clock.now()).toBe(1000);
    expect(answer.status).toBe(503);
    expect(await answer.text()).toBe("down body");
    expect(answer.headers.get("x-resilience-attempts")).toBe("1");
    expect(up.log.filter((r) => r.url === "https://h.example/v1/a")).toEqual([
      { at: 0, url: "https://h.example/v1/a", body: "hi" },
    ]);
    expect(clock.pending()).toBe(0);
  });

  it("timeout.total: the woken call settles at the opening and its deadline timer is cleared", async () => {
    const clock = new TestClock(0);
    const up = upstream(clock);
    const resilience = createResilience({
      clock,
      fetch: up.fetch,
      breaker: { failureThreshold: 3 },
      timeout: { total: 60_000 },
    });
    const call = settledAt(resilience.fetch("https://h.example/x"), clock);
    await flush();
    expect(clock.pending()).toBe(2); // the wait and the deadline
    await clock.advance(1000);
    await fail(resilience.fetch, "h.example", 2);
    expect(await call).toMatchObject({ status: 503, at: 1000 });
    expect(clock.pending()).toBe(0);
  });

  it("1,000 calls waiting on one host, woken by one opening: all settle then with their 503, nothing more sent, no timer left", async () => {
    const clock = new TestClock(0);
    const up = upstream(clock);
    const resilience = createResilience({
      clock,
      fetch: up.fetch,
      budget: false,
      breaker: { failureThreshold: 1001, minimumCalls: 100_000 },
    });
    const calls: Promise<Settled>[] = [];
    for (let i = 0; i < 1000; i++) calls.push(settledAt(resilience.fetch(`https://h.example/w${i}`), clock));
    await flush();
    expect(clock.pending()).toBe(1000);
    await clock.advance(1000);
    await fail(resilience.fetch, "h.example", 1);
    const outcomes = await Promise.all(calls);
    expect(outcomes.filter((o) => o.status === 503 && o.at === 1000)).toHaveLength(1000);
    expect(up.log).toHaveLength(1001);
    expect(clock.pending()).toBe(0);
  });
});

describe("defects found, fixed since", () => {
  it('docs/retry.md: "With `execute`\'s `breaker`, once that breaker opens no retry waits behind it" — a call waiting when another call opens the breaker', async () => {
    // docs/retry.md: "With `execute`'s `breaker`, once that breaker opens no retry waits behind it: the call ends
    // with the failure that opened it." ExecuteOptions.breaker JSDoc: "an open breaker ends the retries at once".
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, budget: false });
    resilience.breaker("gpu", { failureThreshold: 2, timeout: 500 });
    let calls = 0;
    const work = (): Promise<never> => {
      calls++;
      return Promise.reject(new Error(`gpu down ${calls}`));
    };
    const options = { breaker: "gpu", retry: { maxAttempts: 3, initialDelay: 1000, jitter: "none" as const } };
    const settled = (p: Promise<unknown>) =>
      p.then(
        () => ({ at: clock.now(), error: undefined as unknown }),
        (error: unknown) => ({ at: clock.now(), error }),
      );
    const a = settled(resilience.execute(work, options));
    await flush();
    const b = settled(resilience.execute(work, options));
    await flush();
    expect(resilience.breaker("gpu").state).toBe("open");
    expect(await b).toMatchObject({ at: 0 }); // the call whose failure opened it ends at once
    await clock.advance(5000);
    const outcome = await a;
    // Promised: A's retry does not wait behind the open breaker; it ends when the breaker opens, fn not run again.
    expect(calls).toBe(2);
    expect(outcome.at).toBe(0);
    // It ends with its own failure, as the call that opened the breaker does.
    expect((outcome.error as Error).message).toBe("gpu down 1");
  });

  it('docs/breakers.md: "the call\'s retry wait ends and it settles then with the response it has" — with breaker.timeout 0 the woken retry leaves at once, before its Retry-After', async () => {
    // docs/breakers.md: "A retry is never parked behind an open breaker: when the breaker of the host a call
    // addresses opens during the call, in this layer, the call's retry wait ends and it settles then with the
    // response it has (with none, as its last attempt failed: `RetryExhaustedError`), so recovery brings no
    // burst of stored-up retries." docs/retry.md: "A `Retry-After` header on 429/503 … replaces the computed delay".
    const clock = new TestClock(0);
    const up = upstream(clock);
    const resilience = createResilience({ clock, fetch: up.fetch, breaker: { failureThreshold: 2, timeout: 0 } });
    const opened: number[] = [];
    resilience.on("breaker", (e) => {
      if (e.to === "open") opened.push(clock.now());
    });
    const call = settledAt(resilience.fetch("https://h.example/x"), clock);
    await flush();
    await clock.advance(1000);
    void settledAt(resilience.fetch("https://h.example/y"), clock);
    await flush();
    expect(opened[0]).toBe(1000);
    const out = await call;
    expect(out).toMatchObject({ status: 503, at: 1000 });
    // Promised: settled with its 503 at the opening; its retry never left before the server's Retry-After (45 s).
    expect(up.log.filter((r) => r.at === 1000).map((r) => r.url)).toEqual(["https://h.example/y"]);
  });
});
