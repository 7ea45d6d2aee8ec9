/**
 * Outside-in attack on this session's fixes: a host's breaker opening ends its calls' retry waits, a store's equal
 * copy of a merged snapshot is no news, `degradation({ rules })` refusing duplicate rules, the 0.1 migration note.
 * Docs: docs/breakers.md ("A retry is never parked behind an open breaker …", "Shared breaker state"), docs/retry.md
 * (the error table, redirects: "A `Retry-After` hold on the final answer holds the host that sent it"),
 * docs/degradation.md (one rule per `match`), CHANGELOG.md "### Changed (breaking: migrating from 0.1)" and
 * "### Fixed", README "Upgrading from 0.1".
 * How: root entry (`createResilience`, `memoryStore`, the error guards), `./fallback`, `./degradation`,
 * `./testing`'s TestClock; scripted transports (503 with `Retry-After`, network errors, 302 to another host) that
 * log each request with the clock's time; a store of one's own that returns JSON copies; nothing sleeps.
 * Paths: plain calls (network error and 503 waits), a fallback chain's endpoint, a redirect to another host,
 * `breaker.key` pooling hosts, two layers on one `memoryStore()`, a caller's abort during a wait, degradation rules
 * with equivalent and distinct `match`es.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * 1 is fixed, so plain `it`: a retry the layer refuses after a network error settles as the last attempt failing,
 * `RetryExhaustedError` with its cause; 2 and 3 are fixed in docs/breakers.md, which now says a host opened by
 * another layer through a store, or a redirect's target, is read when the retry (or its hop) leaves, and the tests
 * assert that sentence and that behaviour):
 * 1. docs/retry.md (error table) "`CircuitOpenError` | the host's breaker is open: nothing was sent"; "It rejects
 *    only when there is no Response to give, with a `ResilienceError` subclass whose `cause` is the underlying
 *    error", row "`RetryExhaustedError` | the last attempt failed without a response (a network error)". Observed:
 *    a call whose attempt failed with a network error and that waits to retry when other calls open the host's
 *    breaker is woken and rejects with `CircuitOpenError` (cause `undefined`: the network error is lost) though
 *    one attempt was sent; the same call whose breaker opened before its wait rejects with `RetryExhaustedError`
 *    (`attempts: 1`, cause the `TypeError`).
 * 2. docs/breakers.md "A retry is never parked behind an open breaker: when the breaker opens during a call, the
 *    call settles with the response it has, so recovery brings no burst of stored-up retries." with "Shared breaker
 *    state": "a host one opened is open for all, for a retry waiting out its backoff too". Observed: layers A and B
 *    on one `memoryStore()`; B's call got 503 `Retry-After: 45` at t=0 and waits; A opens the host at t=1,000
 *    (B's `health()` would read it open); B's wait is not ended: the host recovers, A closes it at t=31,000, and at
 *    t=45,000 B's stored-up retry reaches the host (B's call settles then with 200, not at 1,000 with its 503).
 * 3. The same docs/breakers.md sentence, on a redirect (docs/retry.md: "A `Retry-After` hold on the final answer
 *    holds the host that sent it, not the first one"; "A hop to another host whose breaker refuses calls … is
 *    refused as a call to it would be"). Observed: `a.example` redirects to `b.example`, which answers 503
 *    `Retry-After: 45`; the call waits its 45 s in `a.example`'s wait list; direct calls open `b.example` at
 *    t=1,000 and the wait goes on; `b.example` recovers and closes at t=31,000, and at t=45,000 the stored-up retry
 *    goes `a.example` → `b.example` (the call settles at 45,000 with 200 instead of at 1,000 with its 503).
 *
 * Held (plain `it`):
 * - The wait ends when the host opens, on a chain's endpoint (the chain moves on to the next endpoint at once,
 *   `fallback` event then, no request to the open host after) and with a `breaker.key` pooling two hosts (a call to
 *   one woken when calls to the other open the pooled breaker); no timer left (`clock.pending()` 0).
 * - A caller's abort during a retry wait rejects at once with its reason, no timer left; a later opening of the
 *   host does not touch the settled call.
 * - A store returning equal JSON copies: a breaker closed since is not pushed back; a later opening elsewhere (a new
 *   snapshot) is still news and opens the breaker.
 * - `degradation({ rules })`: two `match`es the URL parser reads alike (`HTTPS://G.example:443/v1` and
 *   `https://g.example/v1`; `https://g.example` and `https://g.example/`) are a `ConfigError` naming
 *   `degradation.rules`; `…/v1` and `…/v1/` are accepted and each applies where it is the longest prefix.
 * - CHANGELOG/README: a 0.1 `breaker: { failureThreshold: 5 }` opens after 5 failures in a row, not on 5 failures
 *   among successes; the default opens after 12 in a row; the 0.1 `fallback` array is a `ConfigError` that says
 *   to use `fallback([…])`.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerStore,
  ConfigError,
  createResilience,
  isCircuitOpenError,
  isConfigError,
  isRetryExhaustedError,
  memoryStore,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { settledAt } from "../helpers/settled.ts";

/** docs/breakers.md with its lines joined, as a reader reads its sentences. */
const breakersDoc = readFileSync(new URL("../../docs/breakers.md", import.meta.url), "utf8").replace(/\n/g, " ");

const urlOf = (input: RequestInfo | URL): string => String(input instanceof Request ? input.url : input);

/** A transport: network error for paths with "neterr", 302 for a.example, else 503 `Retry-After` until `up`. */
function upstream(clock: TestClock, retryAfter = "45") {
  const log: Array<{ at: number; url: string }> = [];
  const state = { up: false };
  const fetch = (input: RequestInfo | URL): Promise<Response> => {
    const url = urlOf(input);
    log.push({ at: clock.now(), url });
    if (url.includes("neterr")) return Promise.reject(new TypeError("fetch failed"));
    if (url.startsWith("https://a.example/"))
      return Promise.resolve(new Response(null, { status: 302, headers: { location: "https://b.example/x" } }));
    if (state.up) return Promise.resolve(new Response("ok"));
    return Promise.resolve(new Response("down", { status: 503, headers: { "retry-after": retryAfter } }));
  };
  return { fetch, log, state };
}

describe("a host's breaker opening ends its calls' retry waits", () => {
  it("docs/retry.md: a woken call whose last attempt was a network error rejects as the table says (RetryExhaustedError, its cause kept), not CircuitOpenError", async () => {
    // docs/retry.md: "`CircuitOpenError` | the host's breaker is open: nothing was sent";
    // "`RetryExhaustedError` | the last attempt failed without a response (a network error)".
    const clock = new TestClock(0);
    const up = upstream(clock);
    const resilience = createResilience({ clock, fetch: up.fetch, breaker: { failureThreshold: 3 } });
    const call = settledAt(resilience.fetch("https://h.example/neterr"), clock);
    await flush();
    expect(clock.pending()).toBe(1); // its retry wait
    for (let i = 0; i < 2; i++) {
      void settledAt(resilience.fetch(`https://h.example/d${i}`), clock);
      await flush();
    }
    expect(resilience.health().breakers["h.example"]?.state).toBe("open");
    const outcome = await call;
    expect(clock.pending()).toBe(0);
    expect(up.log.filter((r) => r.url.includes("neterr"))).toHaveLength(1); // one attempt was sent
    expect(isCircuitOpenError(outcome.error)).toBe(false);
    expect(isRetryExhaustedError(outcome.error)).toBe(true);
    expect((outcome.error as Error).cause).toBeInstanceOf(TypeError);
  });

  it("contrast: the same call whose breaker opened before its wait rejects with RetryExhaustedError, cause kept", async () => {
    const clock = new TestClock(0);
    const up = upstream(clock);
    const resilience = createResilience({ clock, fetch: up.fetch, breaker: { failureThreshold: 1 } });
    const outcome = await settledAt(resilience.fetch("https://h.example/neterr"), clock);
    expect(isRetryExhaustedError(outcome.error)).toBe(true);
    expect(outcome.error).toMatchObject({ attempts: 1 });
    expect((outcome.error as Error).cause).toBeInstanceOf(TypeError);
    expect(clock.pending()).toBe(0);
  });

  it("docs/breakers.md: a host another layer opened through memoryStore() is read when the retry leaves: still open then, the retry is refused and the call settles with its 503 (it was parked to then: the sentence said otherwise)", async () => {
    expect(breakersDoc).toContain(
      "A host opened by another layer through a shared store is read when the retry leaves: still open then, the retry is refused and the call settles the same way; closed again by then, it goes.",
    );
    const clock = new TestClock(0);
    const up = upstream(clock);
    const store = memoryStore();
    const a = createResilience({ clock, fetch: up.fetch, store, breaker: { timeout: 120_000 } });
    const b = createResilience({ clock, fetch: up.fetch, store, breaker: { timeout: 120_000 } });
    const waiting = settledAt(b.fetch("https://h.example/b"), clock);
    await flush();
    await clock.advance(1000);
    for (let i = 0; i < 12; i++) {
      void settledAt(a.fetch(`https://h.example/a${i}`), clock);
      await flush();
    }
    expect(a.health().breakers["h.example"]?.state).toBe("open");
    await clock.advance(50_000);
    const outcome = await waiting;
    expect(clock.pending()).toBe(0);
    // B's call waited out its 45 s, then met the host still open: refused, it settled with the 503 it had.
    expect(up.log.filter((r) => r.at > 1000 && r.url === "https://h.example/b")).toEqual([]);
    expect(outcome).toMatchObject({ status: 503, at: 45_000 });
  });

  it("docs/breakers.md: the host a redirect led to is read when the retry's hop leaves: still open then, the retry goes no further than the first host and the call rejects with the hop's refusal (it was parked to then: the sentence said otherwise)", async () => {
    // docs/breakers.md: "A retry is never parked behind an open breaker: when the breaker opens during a call, the
    // call settles with the response it has, so recovery brings no burst of stored-up retries."
    // docs/retry.md: "A `Retry-After` hold on the final answer holds the host that sent it, not the first one".
    expect(breakersDoc).toContain(
      "The host a redirect led to is read when the retry's hop to it leaves: still open then, the hop is refused, and as the retry had reached the first host, the call rejects with that `CircuitOpenError` (`afterRedirect: true`) rather than settle with the answer before it, which would say nothing was processed.",
    );
    const clock = new TestClock(0);
    const up = upstream(clock);
    const resilience = createResilience({ clock, fetch: up.fetch, breaker: { failureThreshold: 3, timeout: 120_000 } });
    const opened: string[] = [];
    resilience.on("breaker", (e) => {
      if (e.to === "open") opened.push(`${clock.now()} ${e.key}`);
    });
    const call = settledAt(resilience.fetch("https://a.example/go"), clock);
    await flush();
    expect(up.log.map((r) => r.url)).toEqual(["https://a.example/go", "https://b.example/x"]);
    await clock.advance(1000);
    for (let i = 0; i < 3; i++) {
      void settledAt(resilience.fetch(`https://b.example/d${i}`), clock);
      await flush();
    }
    expect(opened).toEqual(["1000 b.example"]);
    await clock.advance(50_000);
    const outcome = await call;
    expect(clock.pending()).toBe(0);
    // The retry went to a.example at 45 s; its hop to b.example, still open, was refused. Until the forty-first
    // session the call then settled with the 503 before it, which said nothing was processed; the retry had
    // reached a.example, so the call rejects with the hop's refusal (docs/breakers.md, CHANGELOG).
    expect(up.log.filter((r) => r.at > 1000).map((r) => `${r.at} ${r.url}`)).toEqual(["45000 https://a.example/go"]);
    expect(outcome).toMatchObject({ status: undefined, at: 45_000 });
    expect(isCircuitOpenError(outcome.error) && outcome.error.key).toBe("b.example");
    expect(isCircuitOpenError(outcome.error) && outcome.error.afterRedirect).toBe(true);
  });

  it("held: a chain endpoint's wait ends at the opening and the chain moves on at once; a breaker.key pooling hosts wakes them all", async () => {
    const clock = new TestClock(0);
    const up = upstream(clock);
    const secondary = (input: RequestInfo | URL): Promise<Response> =>
      urlOf(input).startsWith("https://s.example/") ? Promise.resolve(new Response("ok")) : up.fetch(input);
    const resilience = createResilience({
      clock,
      fetch: secondary,
      breaker: { failureThreshold: 3 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://p.example/v1" },
            { name: "s", url: "https://s.example/v1" },
          ],
        },
      ]),
    });
    const moved: string[] = [];
    resilience.on("fallback", (e) => moved.push(`${clock.now()} ${e.from}→${e.next}`));
    const chained = settledAt(resilience.fetch("https://p.example/v1/x"), clock);
    await flush();
    await clock.advance(1000);
    for (let i = 0; i < 2; i++) {
      void settledAt(resilience.fetch(`https://p.example/d${i}`), clock);
      await flush();
    }
    expect(await chained).toMatchObject({ status: 200, at: 1000 });
    expect(moved).toEqual(["1000 p→s"]);
    expect(up.log.filter((r) => r.url === "https://p.example/v1/x").map((r) => r.at)).toEqual([0]);

    // breaker.key pooling two hosts: a call to one is woken when calls to the other open the pooled breaker.
    const pooled = createResilience({
      clock,
      fetch: up.fetch,
      breaker: { failureThreshold: 3, key: () => "pool" },
    });
    const one = settledAt(pooled.fetch("https://one.example/x"), clock);
    await flush();
    for (let i = 0; i < 2; i++) {
      void settledAt(pooled.fetch(`https://two.example/d${i}`), clock);
      await flush();
    }
    expect(await one).toMatchObject({ status: 503, at: 1000 });
    expect(clock.pending()).toBe(0);
  });

  it("held: a caller's abort during a retry wait rejects at once with its reason; a later opening leaves it alone", async () => {
    const clock = new TestClock(0);
    const up = upstream(clock);
    const resilience = createResilience({ clock, fetch: up.fetch, breaker: { failureThreshold: 3 } });
    const controller = new AbortController();
    const call = settledAt(resilience.fetch("https://h.example/x", { signal: controller.signal }), clock);
    await flush();
    const reason = new Error("caller gone");
    controller.abort(reason);
    expect(await call).toMatchObject({ error: reason, at: 0 });
    for (let i = 0; i < 3; i++) {
      void settledAt(resilience.fetch(`https://h.example/d${i}`), clock);
      await flush();
    }
    expect(resilience.health().breakers["h.example"]?.state).toBe("open");
    expect(clock.pending()).toBe(0);
  });
});

describe("a store's equal copy of a merged snapshot is no news", () => {
  it("held: a closed breaker is not pushed back by equal JSON copies; a new opening elsewhere is still news", async () => {
    const clock = new TestClock(0);
    const shared = memoryStore();
    // A store of one's own that keeps JSON: every peek is a new, equal object.
    const json: BreakerStore = {
      name: "json",
      publish: (key, snapshot) => shared.publish(key, JSON.parse(JSON.stringify(snapshot))),
      peek: (key, now) => {
        const s = shared.peek(key, now);
        return s === undefined ? undefined : JSON.parse(JSON.stringify(s));
      },
    };
    const up = upstream(clock);
    const options = {
      clock,
      fetch: up.fetch,
      store: json,
      breaker: { failureThreshold: 3 },
      retry: { maxAttempts: 1 },
    };
    const a = createResilience(options);
    const b = createResilience(options);
    const seen: string[] = [];
    b.on("breaker", (e) => seen.push(`${clock.now()} ${e.from}→${e.to}`));
    up.state.up = true;
    expect((await b.fetch("https://h.example/b")).status).toBe(200); // B knows the host
    up.state.up = false;
    for (let i = 0; i < 3; i++) await a.fetch(`https://h.example/a${i}`);
    expect(b.health().breakers["h.example"]?.state).toBe("open");
    up.state.up = true;
    await clock.advance(30_000);
    for (let i = 0; i < 2; i++) expect((await b.fetch("https://h.example/b")).status).toBe(200);
    expect(b.health().breakers["h.example"]?.state).toBe("closed");
    for (let i = 0; i < 3; i++) expect((await b.fetch("https://h.example/b")).status).toBe(200);
    expect(b.health().breakers["h.example"]?.state).toBe("closed");
    // A new opening elsewhere (a later snapshot) is news for B.
    up.state.up = false;
    const c = createResilience(options);
    await clock.advance(1000);
    for (let i = 0; i < 3; i++) await c.fetch(`https://h.example/c${i}`);
    expect(b.health().breakers["h.example"]?.state).toBe("open");
    expect(seen.filter((s) => s.endsWith("→open"))).toHaveLength(2);
    expect(clock.pending()).toBe(0);
  });
});

describe("degradation({ rules }): one rule per match", () => {
  it("held: matches the URL parser reads alike are refused; …/v1 and …/v1/ are distinct and each applies", async () => {
    for (const [first, second] of [
      ["HTTPS://G.example:443/v1", "https://g.example/v1"],
      ["https://g.example", "https://g.example/"],
    ] as const) {
      let thrown: unknown;
      try {
        degradation({
          rules: [
            { match: first, params: { steps: "steps" } },
            { match: second, params: { steps: "n" } },
          ],
        });
      } catch (error) {
        thrown = error;
      }
      expect(isConfigError(thrown)).toBe(true);
      expect(thrown).toBeInstanceOf(ConfigError);
      expect(thrown).toMatchObject({ path: "degradation.rules" });
    }
    const sent: string[] = [];
    const resilience = createResilience({
      fetch: (input) => {
        sent.push(urlOf(input));
        return Promise.resolve(new Response("ok"));
      },
      degradation: degradation({
        rules: [
          { match: "https://g.example/v1", params: { steps: { query: "s1" } } },
          { match: "https://g.example/v1/", params: { steps: { query: "s2" } } },
        ],
      }),
    });
    resilience.degradation?.setLevel("medium");
    await resilience.fetch("https://g.example/v1?s1=50&s2=50");
    await resilience.fetch("https://g.example/v1/x?s1=50&s2=50");
    expect(sent).toEqual(["https://g.example/v1?s1=30&s2=50", "https://g.example/v1/x?s1=50&s2=30"]);
  });
});

describe("the 0.1 migration note", () => {
  it("held: failureThreshold counts in a row (5 in a row opens, 5 among successes does not; 12 by default); the 0.1 fallback array is a ConfigError that says so", async () => {
    const clock = new TestClock(0);
    const up = upstream(clock);
    let n = 0;
    // Every other answer a success: 5 failures among successes.
    const mixed = (input: RequestInfo | URL) => (n++ % 2 === 0 ? up.fetch(input) : Promise.resolve(new Response("ok")));
    const five = createResilience({ clock, fetch: mixed, breaker: { failureThreshold: 5 }, retry: { maxAttempts: 1 } });
    for (let i = 0; i < 10; i++) await five.fetch("https://h.example/x");
    expect(five.health().breakers["h.example"]?.state).toBe("closed");
    const inRow = createResilience({
      clock,
      fetch: up.fetch,
      breaker: { failureThreshold: 5 },
      retry: { maxAttempts: 1 },
    });
    for (let i = 0; i < 4; i++) await inRow.fetch("https://h.example/x");
    expect(inRow.health().breakers["h.example"]?.state).toBe("closed");
    await inRow.fetch("https://h.example/x");
    expect(inRow.health().breakers["h.example"]?.state).toBe("open");
    const defaults = createResilience({ clock, fetch: up.fetch, retry: { maxAttempts: 1 } });
    for (let i = 0; i < 11; i++) await defaults.fetch("https://h.example/x");
    expect(defaults.health().breakers["h.example"]?.state).toBe("closed");
    await defaults.fetch("https://h.example/x");
    expect(defaults.health().breakers["h.example"]?.state).toBe("open");
    expect(() =>
      createResilience({ fallback: [{ name: "c", endpoints: [{ name: "p", url: "https://p.example" }] }] as never }),
    ).toThrow(/fallback\(/);
  });
});
