/**
 * Outside-in attack on the three newest commits: `durableObjectStore` sending every local open to the
 * `BreakerStateObject` as a hold with the isolate's reason (ac7a4e8), and union option messages naming what each
 * alternative takes (71350e9). Docs: docs/cloudflare.md (the paragraph "`durableObjectStore` sends outcomes in
 * batches", the stores table row), docs/health-and-events.md (shared reasons), docs/options.md (first paragraph).
 * How: real layers (`createResilience`) over real `BreakerStateObject`s on the fake namespace
 * (test/cloudflare/do-isolate.ts, fake-durable-object.ts) on one TestClock; `degradation(…)`, `fallback(…)`,
 * `createClient` (./ky), `resilientProxy` and `createResilience` given values no alternative of an option takes.
 * Paths: plain calls in two isolates (a trip after a healthy spell, a stale isolate's trip while the object is
 * half-open with a probe out, a failed probe, an error name longer than 200 characters); option errors on the
 * root, `execute`, `degradation` locations and `maxSteps`, fallback endpoints, the ky client and the proxy.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: an isolate's trip holds the object open only while the object is closed (a
 * Retry-After hold always), a union's object alternatives refused for a key are named by their keys, and the
 * ky client and the proxy name the layer's options under `resilience`):
 * 1. docs/cloudflare.md, stores table, durableObjectStore: "exactly `halfOpenMaxCalls` across isolates while the
 *    object answers within `timeout` (250 ms)"; and "`BreakerStateObject` … grants at most `halfOpenMaxCalls`
 *    probe leases that expire". Observed: with `halfOpenMaxCalls: 1`, isolate A holds the half-open object's only
 *    lease (a slow probe, lease 30 s); isolate B, still on its cached closed verdict, trips locally and its trip
 *    now goes to the object as a hold, which re-opens it and drops A's lease unexpired; when that 1 s spell ends
 *    the object grants B a lease and 2 probes are in flight to the upstream at once (before ac7a4e8: 1, B refused).
 * 2. docs/options.md "throws `ConfigError` naming the path and the expected value"; CHANGELOG "it names what each
 *    alternative takes now". Observed: `degradation({ rules: [{ params: { quality: { body: "a", query: "b",
 *    header: "c" } } }] })` says `degradation.rules.0.params.quality: expected string or , received an object`
 *    (an object alternative's first problem is an unknown key, which has no `expected`: joined as "").
 * 3. docs/options.md "throws `ConfigError` naming the path" (docs/cloudflare.md: the proxy names `routes.1.chain…`,
 *    and refuses `resilience.fallback` by that path). Observed: `resilientProxy({ routes, resilience: { retry:
 *    true } })` and `createClient({ resilience: { retry: true } })` (./ky) both say `retry: expected false or
 *    object, received true`: a path the caller's options do not have (theirs is `resilience.retry`).
 *
 * Held (plain `it`):
 * - a trip after a healthy spell opens the object with the isolate's reason, and another isolate's `health()`
 *   reads `shared: 2 failures in a row (last: status 503)` as docs/health-and-events.md says, without a call;
 * - a failed probe in one isolate re-opens the object for the other isolate (it fails fast, nothing sent);
 * - an error name of 300 characters: the reason sent is cut to 200, the object takes it (no 400), others open;
 * - union messages on the root, `execute`, ky and the proxy name both alternatives, and a URL given where an
 *   option is expected is quoted without its credentials and query.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { ConfigError, createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { doIsolate } from "../cloudflare/do-isolate.ts";
import { FakeNamespace } from "../cloudflare/fake-durable-object.ts";

const T0 = Date.parse("2026-12-02T00:00:00Z");
const HOST = "gen.example";
const URL_ = `https://${HOST}/v1/x`;
const down = () => new Response("down", { status: 503 });

function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("no error");
}

/** Two isolates on one namespace; both have read a closed verdict after a healthy call. */
async function twoIsolates(breaker: Record<string, number>) {
  const clock = new TestClock(T0);
  const namespace = new FakeNamespace(clock);
  const a = doIsolate(clock, namespace, breaker, URL_);
  const b = doIsolate(clock, namespace, breaker, URL_);
  expect(await a.call()).toBe(200);
  expect(await b.call()).toBe(200);
  await a.settle();
  await b.settle();
  return { clock, namespace, a, b };
}

const reports = (namespace: FakeNamespace) => namespace.requests.filter((r) => r.path === "/report");

describe("durableObjectStore: a local open sent as a hold", () => {
  it("a trip after a healthy spell opens the object; another isolate's health reads the shared reason", async () => {
    const { clock, a, b } = await twoIsolates({ failureThreshold: 2, successThreshold: 1, timeout: 10_000 });
    a.answer = down;
    expect([await a.call(), await a.call()]).toEqual([503, 503]);
    await a.settle();
    await clock.advance(5_000); // B's cached closed verdict runs out
    b.resilience.health();
    await b.settle();
    const breaker = b.resilience.health().breakers[HOST];
    expect(breaker).toMatchObject({ state: "open", lastError: "shared: 2 failures in a row (last: status 503)" });
    const sent = b.sent;
    expect(await b.call()).toBe("CircuitOpenError");
    expect(b.sent).toBe(sent);
  });

  it("a failed probe in one isolate re-opens the object for the other", async () => {
    const { clock, a, b } = await twoIsolates({ failureThreshold: 2, successThreshold: 1, timeout: 10_000 });
    a.answer = down;
    await a.call();
    await a.call();
    await a.settle();
    await clock.advance(10_000); // past B's cached closed verdict too
    expect(await a.call()).toBe(503); // A's probe, granted by the object, fails
    await a.settle();
    await b.call().then(() => b.settle());
    const sent = b.sent;
    expect(await b.call()).toBe("CircuitOpenError");
    expect(b.sent).toBe(sent);
  });

  it("a transport error's 300-character name never reaches the reason sent, and the object takes it", async () => {
    const { clock, namespace, a, b } = await twoIsolates({ failureThreshold: 2, successThreshold: 1, timeout: 10_000 });
    a.answer = () => {
      throw Object.assign(new Error("boom"), { name: "E".repeat(300) });
    };
    await a.call();
    await a.call();
    await a.settle();
    const hold = reports(namespace).find((r) => r.body.holdUntil !== undefined);
    // First: the reason was the error's name, cut to 200 characters before it was sent. Since the
    // forty-eighth session a host's breaker names a failure as the retry event does, so it is short.
    expect(String(hold?.body.reason)).toBe("2 failures in a row (last: network error)");
    await clock.advance(5_000);
    await b.call().then(() => b.settle());
    expect(await b.call()).toBe("CircuitOpenError");
  });

  // docs/cloudflare.md, stores table: "exactly `halfOpenMaxCalls` across isolates while the object answers within
  // `timeout` (250 ms)"; "`BreakerStateObject` … grants at most `halfOpenMaxCalls` probe leases that expire".
  it("1. a stale isolate's trip does not drop a probe's lease: one probe in flight with halfOpenMaxCalls 1", async () => {
    const { clock, namespace, a, b } = await twoIsolates({
      failureThreshold: 2,
      successThreshold: 1,
      timeout: 1_000,
      halfOpenMaxCalls: 1,
    });
    a.answer = down;
    await a.call();
    await a.call(); // A trips: the object opens for 1 s
    await a.settle();
    await clock.advance(1_000);
    let inFlight = 0;
    let peak = 0;
    const slow = () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      return new Promise<Response>(() => {}); // a slow probe: its lease (probeTimeout, 30 s) holds
    };
    a.answer = slow;
    a.start().catch(() => {});
    await clock.advance(0);
    await clock.advance(0);
    expect(namespace.requests.filter((r) => r.path === "/probe")).toHaveLength(1);
    expect(peak).toBe(1);
    // B still trusts its closed verdict (verdictTtl 5 s: documented staleness); its calls fail and it trips.
    b.answer = down;
    expect([await b.call(), await b.call()]).toEqual([503, 503]);
    await b.settle();
    await clock.advance(1_000);
    b.answer = slow;
    b.start().catch(() => {});
    await clock.advance(0);
    await clock.advance(0);
    // A's probe's lease (30 s) has neither expired nor settled: the object's one lease is still A's.
    expect(peak).toBe(1);
  });
});

describe("option errors: a value no alternative of an option takes", () => {
  it("names both alternatives on the root, execute, the ky client and the proxy, and cuts a URL's secrets", async () => {
    expect(messageOf(() => createResilience({ retry: true } as never))).toBe(
      "retry: expected false or object, received true",
    );
    // Changed in the thirty-third session: execute rejects with it (it threw at once).
    await expect(createResilience().execute(async () => 1, { retry: 0 } as never)).rejects.toThrow(
      new ConfigError("execute.retry", "expected false or object, received 0"),
    );
    const leaked = messageOf(() =>
      createClient({ resilience: { breaker: "https://u:hunter2@h.example/x?key=k1" } } as never),
    );
    expect(leaked).toMatch(/expected false or object/);
    expect(leaked).not.toMatch(/hunter2|k1/);
    expect(
      messageOf(() => degradation({ levels: { low: { maxSteps: "https://u:hunter2@h.example/?key=k1" } } } as never)),
    ).toBe(
      'degradation.levels.low.maxSteps: expected null or number, received "https://h.example/" (credentials, query and fragment cut)',
    );
  });

  // docs/options.md: "throws `ConfigError` naming the path and the expected value".
  it("2. a degradation location with three places names what each alternative takes", () => {
    const message = messageOf(() =>
      degradation({ rules: [{ params: { quality: { body: "a", query: "b", header: "c" } } }] } as never),
    );
    expect(message).toMatch(/^degradation\.rules\.0\.params\.quality: /);
    expect(message).not.toMatch(/ or ,| or $|undefined/);
  });

  // docs/options.md: "throws `ConfigError` naming the path"; docs/cloudflare.md: "a `ConfigError` naming the
  // route, `routes.1.chain.endpoints.0.url`" (and `resilience.fallback` is refused by that path).
  it("3. the proxy and the ky client name the layer's options by the path the caller wrote", () => {
    const routes = [{ path: "/a", upstream: "https://a.example" }];
    expect(messageOf(() => resilientProxy({ routes, resilience: { retry: true } } as never))).toBe(
      "resilience.retry: expected false or object, received true",
    );
    expect(messageOf(() => createClient({ resilience: { retry: true } } as never))).toBe(
      "resilience.retry: expected false or object, received true",
    );
  });
});
