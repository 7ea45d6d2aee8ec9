/**
 * Outside-in attack on docs/testing.md (the ./testing entry: `TestClock`, `recordEvents`, `upstream`, the fault
 * builders) and README's testing part, from a user's own vitest project with MSW 3, aimed at what the earlier
 * testingdoc runs (32, 48, 50, 52, 55, 58) left: builders that take no options, the keyless hedge under `run`,
 * the breaker's cool-down as `health()` and the recorder see it, a redirect MSW returns before a retry, and the
 * messages the kit promises.
 *
 * Docs:
 * - docs/testing.md: "Each builder refuses a bad argument at once with a `TypeError` (… options that are no
 *   object, such as `status(503, null)`, or that name a key the builder does not know, such as
 *   `status(503, { retryAfer: 2 })` …, which would leave the fault on its default and the test proving nothing
 *   …), so a mistake fails the test, not a handler inside MSW."; "A hedged chain starts no hedge for a POST
 *   without an `Idempotency-Key` …, so under `run` such a POST waits out the first endpoint's `latency` where a
 *   keyed one moves on at the hedge's delay: no jump, the hedge was never set."; "`run` given no promise
 *   (`run(undefined)` …) and `waitForTimers(count)` given a count that is no whole number >= 0 (NaN, -1, "2")
 *   reject at once with a `TypeError` naming the argument."; "The kit's messages show a refused value as the
 *   layer's own refusals do: text in quotes (`got "2"`) … (text that is no plain word as `a string`), an object
 *   or a symbol by its kind."; "`recordEvents` given anything but a layer (a ky instance, `undefined`) is a
 *   `TypeError` too."; "`expectRetries` throws a `TypeError` at once for a count no run can reach, such as -1,
 *   1.5 or NaN"; "(they throw plain Errors, so any runner works …)"; "a `TestClock` given to `latency` where
 *   `{ clock }` belongs is refused"; "a `Headers` made before `server.listen()` keeps only what was set on it
 *   after".
 * - README.md (the breaker test): "await clock.advance(10_000); // the breaker half-opens: the next call is a
 *   probe".
 * - docs/health-and-events.md: "`open` → `half_open` when the first call after `timeout` arrives, though
 *   `health()` reads `half_open` as soon as `timeout` has passed"; "`retry` fires before each wait (… after
 *   redirects the layer followed, where the attempt began (its hops are one attempt, each in a `redirect`
 *   event))". docs/breakers.md: "`successThreshold` (2) successes close."
 *
 * How: `createResilience` (root), `fallback` (./fallback, hedged chain), `createClient` (./ky), the ./testing kit;
 * MSW 3 `setupServer` from "msw/node" with the kit's `upstream` handlers (and a fault function of my own); every
 * layer on a `TestClock`; `watchUnhandled` (test/helpers/unhandled.ts) around each call.
 *
 * Paths: plain call, `Request` input, hedged chain (keyless and keyed POST), ky client, a 307 MSW returns.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-sixth session it was fixed,
 * so plain `it`, and the guide now names an argument given to a builder that takes none):
 * 1. docs/testing.md "Each builder refuses a bad argument at once with a `TypeError` (… options … that name a key
 *    the builder does not know …, which would leave the fault on its default and the test proving nothing …)".
 *    Observed: the builders that take no options take any: `hang({ timeout: 100 })`, `networkError({ after: 2 })`
 *    and `malformedJson({ status: 500 })` are accepted without a word, and the fault stays on its default
 *    (`malformedJson({ status: 500 })` answers a 200; `hang({ timeout: 100 })` never answers). Cause:
 *    src/testing/faults.ts, `hang()`, `networkError()` and `malformedJson()` declare no parameter and so check
 *    none, where `status`, `json`, `latency`, `stream`, `sequence`, `flaky` and `outage` run
 *    `checkOptionsObject`. Test "defect 1: …".
 *
 * Held (plain `it`):
 * - A hedged chain (delay 500) whose p waits in a `latency(5 000)` on the clock: a keyless POST waits p out under
 *   `run` (`now()` 5 000, p's answer, q never asked) and a keyed one moves on at 500 (q's answer, p's wait
 *   cancelled), on the plain call, a `Request` input and the ky client; nothing pending, nothing unhandled.
 * - README's breaker test, carried on: after `advance(10_000)` `health()` reads `half_open` with no new `breaker`
 *   event; the first call fires `open` → `half_open` ("timeout elapsed"), a second success closes
 *   (`expectBreakerClosed` passes, not before); the same through the ky client.
 * - A 307 MSW returns to a host that answers 503 `Retry-After: 1`: the retry waits 1 000 on the clock, its `url`
 *   is where the attempt began, each hop has its `redirect` event, `expectRetries(1)` passes.
 * - `latency(1 000)` on the clock against `timeout.attempt: 1 000`: the attempt times out at 1 000 (the layer's
 *   timer was set first), the fault's wait cancelled, the late answer never read.
 * - Messages: `run(undefined)`, `waitForTimers("2" | NaN | -1 | a URL)`, `expectRetries(1.5 | "1" | -1)` and
 *   `recordEvents(ky instance | undefined)` are `TypeError`s showing the value as promised (`got "2"`, `a string`,
 *   `a function`); a miss is a plain `Error` ("expected 1 retry, saw 0 (recorded: no events)"); a `TestClock`
 *   passed as `latency`'s third argument is refused.
 * - The kit's `json` and `status` given a `Headers` made at module scope, before `listen()`, answer with all of
 *   its entries (the guide's quirk does not reach them), and the layer waits that `Retry-After` (2 000).
 *
 * Docs-silent (not pinned):
 * - `status(204, { body: "x" })` (205, 304 too) was taken and the body dropped without a word, where
 *   `json(x, { status: 204 })` is refused ("a 204 carries no body; use status(204)"). In the sixty-sixth session
 *   it is refused and the guide says so (test "status refuses a body its status cannot carry").
 * - After a redirect the layer followed, the `retry` event's `key` is the host the attempt began at
 *   (`a.example`), though the 503 came from the host the redirect led to: `expectRetries(n, key)` must name the
 *   first host. `RetryEvent.key` says "The breaker key (host) of the attempt that failed". In the sixty-sixth
 *   session health-and-events.md says so (test "the retry waits 1 000 on the clock, its url where…").
 * - Equal deadlines on a `TestClock` (a `latency` and an attempt timeout of the same length) fire in the order
 *   set, so the layer's timeout wins: the guide did not say which. In the sixty-sixth session it says so (test
 *   "timers due at the same instant fire in the order they were set").
 */
import { readFileSync } from "node:fs";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  hang,
  json,
  latency,
  malformedJson,
  networkError,
  recordEvents,
  sequence,
  status,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

/** Made at module scope, before `server.listen()`: the guide's quirk applies to copies of it. */
const early = new Headers({ "retry-after": "2", "x-rate": "0" });

const server = setupServer();
beforeAll(() => server.listen());
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

/** The error `make` throws (sync or async), or `undefined`. */
async function caught(make: () => unknown): Promise<Error | undefined> {
  try {
    await make();
  } catch (error) {
    return error as Error;
  }
  return undefined;
}

// ---------------------------------------------------------------------------

describe("builders that take no options", () => {
  it("defect 1: hang, networkError and malformedJson refuse an options object they do not know", () => {
    // Each leaves the fault on its default: the test that wrote it proves nothing.
    const noOptions = [hang, networkError, malformedJson] as unknown as Array<(options: object) => unknown>;
    const given = [{ timeout: 100 }, { after: 2 }, { status: 500 }];
    noOptions.forEach((builder, i) => {
      expect(() => builder(given[i] as object)).toThrow(TypeError);
      expect(() => builder(given[i] as object)).toThrow(/\(\): takes no arguments, got 1$/);
    });
    const guide = readFileSync(new URL("../../docs/testing.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain(
      "or any argument given to `malformedJson()`, `networkError()` or `hang()`, which take none (`hang({ timeout: 100 })` would never answer)",
    );
  });

  it("status refuses a body its status cannot carry (written in: the guide was silent)", () => {
    for (const code of [204, 205, 304]) {
      expect(() => status(code, { body: "x" })).toThrow(`status(code, { body }): a ${code} carries no body`);
      expect(() => status(code)).not.toThrow();
    }
    const guide = readFileSync(new URL("../../docs/testing.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain("a `body` given to `status` with a 204, 205 or 304, which carries none");
  });

  it("status and json given options they do know, or none, are taken (control)", () => {
    expect(() => status(503, { retryAfter: 1 })).not.toThrow();
    expect(() => json({ a: 1 }, { status: 429 })).not.toThrow();
    expect(() => status(503, { retryAfer: 2 } as never)).toThrow(TypeError);
    expect(() => hang()).not.toThrow();
  });
});

// ---------------------------------------------------------------------------

describe("a hedged chain under run: a keyless POST waits p out, a keyed one moves on at the hedge's delay", () => {
  type Via = "plain" | "request" | "ky";

  async function drive(via: Via, keyed: boolean) {
    const clock = new TestClock();
    const p = upstream("POST", "https://hp.example/v1", latency(5_000, json({ from: "p" }), { clock }));
    const q = upstream("POST", "https://hq.example/v1", json({ from: "q" }));
    server.use(p.handler, q.handler);
    const options: ResilienceOptions = {
      clock,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 500 },
          endpoints: [
            { name: "p", url: "https://hp.example/v1" },
            { name: "q", url: "https://hq.example/v1" },
          ],
        },
      ]),
    };
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (keyed) headers["idempotency-key"] = "job-1";
    const { value, unhandled } = await watchUnhandled(async () => {
      if (via === "ky") {
        const api = createClient({ resilience: options });
        return (await clock.run(api.post("https://hp.example/v1", { body: "{}", headers }).json())) as {
          from: string;
        };
      }
      const layer = createResilience(options);
      const input =
        via === "request"
          ? layer.fetch(new Request("https://hp.example/v1", { method: "POST", body: "{}", headers }))
          : layer.fetch("https://hp.example/v1", { method: "POST", body: "{}", headers });
      const res = await clock.run(input);
      expect(getResilienceInfo(res)?.endpoint).toBe(keyed ? "q" : "p");
      return (await res.json()) as { from: string };
    });
    return { value, unhandled, clock, p, q };
  }

  for (const via of ["plain", "request", "ky"] as const) {
    it(`${via}: keyless waits out p's latency (5 000), keyed moves on to q at 500`, async () => {
      const keyless = await drive(via, false);
      expect(keyless.value.from).toBe("p");
      expect(keyless.clock.now()).toBe(5_000);
      expect(keyless.p.count()).toBe(1);
      expect(keyless.q.count()).toBe(0);
      expect(keyless.clock.pending()).toBe(0);
      expect(keyless.unhandled).toEqual([]);

      const keyedRun = await drive(via, true);
      expect(keyedRun.value.from).toBe("q");
      expect(keyedRun.clock.now()).toBe(500);
      expect(keyedRun.p.count()).toBe(1);
      expect(keyedRun.q.count()).toBe(1);
      expect(keyedRun.q.header("idempotency-key")).toEqual(["job-1"]);
      // p's wait on the clock was cancelled with its request.
      expect(keyedRun.clock.pending()).toBe(0);
      expect(keyedRun.unhandled).toEqual([]);
    });
  }
});

// ---------------------------------------------------------------------------

describe("README's breaker test, carried on: the cool-down on the clock as health() and the recorder see it", () => {
  const URL_ = "https://gen.example/v1/images";

  for (const via of ["plain", "ky"] as const) {
    it(`${via}: half_open in health() at once, the event with the first call, closed after two probes`, async () => {
      let down = true;
      const api = upstream("POST", URL_, (request, info) =>
        down ? status(503)(request, info) : json({ ok: true })(request, info),
      );
      server.use(api.handler);
      const clock = new TestClock();
      const options: ResilienceOptions = { clock, retry: false, breaker: { failureThreshold: 2, timeout: 10_000 } };
      const layer = createResilience(options);
      const recorder = recordEvents(layer);
      const call = async () => {
        if (via === "plain") return (await layer.fetch(URL_, { method: "POST" })).status;
        const client = createClient({ resilience: layer, throwHttpErrors: false });
        return (await client.post(URL_)).status;
      };

      expect(await call()).toBe(503);
      expect(await call()).toBe(503);
      recorder.expectBreakerOpened("gen.example");
      const refused = await caught(call);
      expect(refused?.name).toBe("CircuitOpenError");
      expect(api.count()).toBe(2);

      await clock.advance(9_999);
      expect(layer.health().breakers["gen.example"]?.state).toBe("open");
      await clock.advance(1); // 10 000: the breaker half-opens
      expect(layer.health().breakers["gen.example"]?.state).toBe("half_open");
      expect(recorder.of("breaker").map((e) => e.to)).toEqual(["open"]); // no event until a call arrives

      down = false;
      expect(await call()).toBe(200);
      expect(api.count()).toBe(3);
      const changes = recorder.of("breaker");
      expect(changes.map((e) => `${e.from}>${e.to}`)).toEqual(["closed>open", "open>half_open"]);
      expect(changes[1]?.reason).toBe("timeout elapsed");
      // One success of the default two: not closed yet.
      expect(() => recorder.expectBreakerClosed("gen.example")).toThrow(Error);
      expect(await call()).toBe(200);
      recorder.expectBreakerClosed("gen.example");
      expect(layer.health().breakers["gen.example"]?.state).toBe("closed");
      expect(clock.pending()).toBe(0);
    });
  }
});

// ---------------------------------------------------------------------------

describe("a redirect MSW returns, then a 503 with Retry-After, on the clock", () => {
  it("the retry waits 1 000 on the clock, its url where the attempt began, each hop its redirect event", async () => {
    const clock = new TestClock();
    const a = upstream("GET", "https://ra.example/x", status(307, { headers: { location: "https://rb.example/y" } }));
    const b = upstream("GET", "https://rb.example/y", sequence([status(503, { retryAfter: 1 }), json({ ok: 1 })]));
    server.use(a.handler, b.handler);
    const layer = createResilience({ clock });
    const recorder = recordEvents(layer);
    const { value: res, unhandled } = await watchUnhandled(() => clock.run(layer.fetch("https://ra.example/x")));
    expect(res.status).toBe(200);
    expect(res.redirected).toBe(true);
    expect(clock.now()).toBe(1_000);
    expect([a.count(), b.count()]).toEqual([2, 2]);
    expect(recorder.events.map((e) => e.type)).toEqual(["redirect", "retry", "redirect", "request"]);
    const [retry] = recorder.of("retry");
    expect(retry).toMatchObject({ url: "https://ra.example/x", delay: 1_000, retryAfter: true, reason: "status 503" });
    recorder.expectRetries(1);
    // The key is the host the attempt began at, not the one that answered the 503 (written in, sixty-sixth session).
    const events = readFileSync(new URL("../../docs/health-and-events.md", import.meta.url), "utf8").replace(
      /\s+/g,
      " ",
    );
    expect(events).toContain(
      "`key` is the breaker's that counted the attempt, so after redirects the layer followed, the host the attempt began at",
    );
    recorder.expectRetries(1, "ra.example");
    expect(() => recorder.expectRetries(1, "rb.example")).toThrow(/expected 1 retry for "rb.example", saw 0/);
    expect(clock.pending()).toBe(0);
    expect(unhandled).toEqual([]);
  });
});

// ---------------------------------------------------------------------------

describe("equal deadlines: a latency on the clock against the layer's attempt timeout", () => {
  it("the attempt times out at 1 000, the fault's wait is cancelled, nothing is left", async () => {
    const clock = new TestClock();
    const api = upstream("GET", "https://tie.example/x", latency(1_000, json({ ok: 1 }), { clock }));
    server.use(api.handler);
    const layer = createResilience({ clock, retry: false, timeout: { attempt: 1_000 } });
    const { value: error, unhandled } = await watchUnhandled(() =>
      caught(() => clock.run(layer.fetch("https://tie.example/x"))),
    );
    expect(error?.name).toBe("TimeoutError");
    expect(error?.message).toMatch(/attempt timeout of 1000 ms exceeded/);
    expect(clock.now()).toBe(1_000);
    expect(api.count()).toBe(1);
    expect(clock.pending()).toBe(0);
    expect(unhandled).toEqual([]);
  });

  it("timers due at the same instant fire in the order they were set (written in: the guide was silent)", async () => {
    const guide = readFileSync(new URL("../../docs/testing.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain("Timers due at the same instant fire in the order they were set");
    const clock = new TestClock();
    const fired: string[] = [];
    clock.setTimer(() => fired.push("later, set first"), 10);
    clock.setTimer(() => fired.push("b"), 5);
    clock.setTimer(() => fired.push("c"), 5);
    clock.setTimer(() => fired.push("a"), 3);
    clock.setTimer(() => fired.push("d"), 5);
    await clock.advance(10);
    expect(fired).toEqual(["a", "b", "c", "d", "later, set first"]);
  });
});

// ---------------------------------------------------------------------------

describe("the kit's messages, as promised", () => {
  it("run and waitForTimers refuse what is no promise or count with a TypeError naming the argument", async () => {
    const clock = new TestClock();
    const run = await caught(() => clock.run(undefined as never));
    expect(run).toBeInstanceOf(TypeError);
    expect(run?.message).toBe("TestClock.run(promise): expected a promise, got undefined");
    for (const [count, shown] of [
      ["2", '"2"'],
      [Number.NaN, "NaN"],
      [-1, "-1"],
      ["https://x.example/?key=s3cret", "a string"],
    ] as const) {
      const error = await caught(() => clock.waitForTimers(count as never));
      expect(error).toBeInstanceOf(TypeError);
      expect(error?.message).toBe(`TestClock.waitForTimers(count): expected a whole number >= 0, got ${shown}`);
      expect(error?.message).not.toContain("s3cret");
    }
  });

  it("recordEvents and expectRetries: TypeErrors for what no run can reach, plain Errors for a miss", async () => {
    const layer = createResilience({ clock: new TestClock() });
    const recorder = recordEvents(layer);
    for (const [count, shown] of [
      [1.5, "1.5"],
      ["1", '"1"'],
      [-1, "-1"],
    ] as const) {
      const error = await caught(() => recorder.expectRetries(count as never));
      expect(error).toBeInstanceOf(TypeError);
      expect(error?.message).toBe(`expectRetries(count): expected a whole number >= 0, got ${shown}`);
    }
    const miss = await caught(() => recorder.expectRetries(1));
    expect(Object.getPrototypeOf(miss)).toBe(Error.prototype);
    expect(miss?.message).toBe("expected 1 retry, saw 0 (recorded: no events)");
    for (const [given, shown] of [
      [createClient({}), "a function"],
      [undefined, "undefined"],
    ] as const) {
      const error = await caught(() => recordEvents(given as never));
      expect(error).toBeInstanceOf(TypeError);
      expect(error?.message).toBe(`recordEvents(resilience): expected a layer from createResilience, got ${shown}`);
    }
  });

  it("a TestClock given to latency where { clock } belongs is refused", () => {
    const clock = new TestClock();
    expect(() => latency(100, json({}), clock as never)).toThrow(TypeError);
    expect(() => latency(100, json({}), clock as never)).toThrow(/unknown option "now", expected one of clock/);
    expect(() => latency(100, json({}), { clock })).not.toThrow();
  });
});

// ---------------------------------------------------------------------------

describe("the kit's own builders and a Headers made before listen()", () => {
  it("json and status answer with every entry of a module-scope Headers", async () => {
    server.use(
      upstream("GET", "https://eh.example/j", json({ a: 1 }, { status: 429, headers: early })).handler,
      upstream("GET", "https://eh.example/s", status(429, { headers: early as never })).handler,
    );
    for (const path of ["j", "s"]) {
      const res = await fetch(`https://eh.example/${path}`);
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe("2");
      expect(res.headers.get("x-rate")).toBe("0");
      await res.body?.cancel();
    }
    // And the layer on the clock reads that Retry-After: two attempts, 2 000 apart.
    const clock = new TestClock();
    const api = upstream(
      "GET",
      "https://eh.example/r",
      sequence([status(429, { headers: early as never }), json({ ok: 1 })]),
    );
    server.use(api.handler);
    const layer = createResilience({ clock });
    const res = await clock.run(layer.fetch("https://eh.example/r"));
    expect(res.status).toBe(200);
    expect(api.count()).toBe(2);
    expect(clock.now()).toBe(2_000);
  });
});
