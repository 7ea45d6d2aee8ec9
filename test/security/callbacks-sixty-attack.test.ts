/**
 * Outside-in attack on every place the layer runs the user's own code (callbacks and hooks): a fallback
 * endpoint's `respond`, `transform` and `validate`, `breaker.key`, `breaker.isFailure`, `retry.retryOn.error`,
 * event listeners (on a call and on a layer's own chain for any async work), and a listener or `transform` that
 * calls the same layer again; what each does when it throws, returns a value of the wrong type, or re-enters.
 *
 * Docs:
 * - docs/fallback.md: "**`respond(req)`** answers without the network (a cache, a placeholder) … One that throws or
 *   rejects sent nothing, so the call moves on to the next endpoint whatever its method, as after a `transform`
 *   that fails; so does one that answers with no `Response` fetch would give (`undefined`, the Cache API's miss;
 *   `Response.error()`; any other value), a `TypeError` naming the endpoint."; the example's
 *   `{ name: "cached", respond: (req) => lastGoodAnswer(req), expectedQuality: 0.4 }`; "a `transform` that fails
 *   sends nothing, so the chain may move on"; "A body it changes is serialised as JSON"; "a new chain for any async
 *   work, reported in `health().fallback` beside the others (an entry it passes over is a `fallback` event, as an
 *   endpoint is)"; "A hedge that lost counts there as a call that did not serve, as in `statistics()` (its host's
 *   breaker does not count it)".
 * - docs/breakers.md: "a caller's abort is neither, and so is an attempt cut by `timeout.total` (the call's
 *   deadline, not the host's answer …)"; `BreakerOptions.isFailure` JSDoc "Which thrown errors count as failures".
 * - docs/retry.md: "After a 500, a reset connection or an attempt or total timeout the layer does not send it
 *   again"; "A caller's abort is never a failure: it stops the wait or the attempt at once and rejects with
 *   `signal.reason`"; `RetryOn.error` JSDoc "Which thrown errors are retried".
 * - docs/health-and-events.md: "A listener that throws, or an async one whose promise rejects, is reported
 *   (`reportError` or `console.error`) and never breaks the request"; "`request` fires once per call the layer
 *   started, when it settles"; "`breaker` fires on every state change … when a call makes it"; "`status`
 *   (`unhealthy` when a breaker is open …)".
 * - docs/cloudflare.md (`resilientProxy`): "`502` when no endpoint answered otherwise".
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `createClient` (./ky),
 * `resilientProxy` (./cloudflare), `TestClock` (./testing); two node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts); `console.error` spied on (Node has no `reportError`); every test ends with no
 * unhandled rejection (`process.on("unhandledRejection")`) and, where a `TestClock` runs, no timer pending on it.
 *
 * Paths: plain call, `Request` input, fallback chain, hedged chain, ky client, `resilientProxy` (chain route), a
 * layer's own chain for any async work (`resilience.fallback.chain(name)`), keyless POSTs, a caller's abort,
 * `timeout.total`, `timeout.attempt`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the sixtieth session, so plain `it`):
 * 1. docs/fallback.md "One that throws or rejects sent nothing, so the call moves on to the next endpoint …; so
 *    does one that answers with no `Response` fetch would give (`undefined`, the Cache API's miss;
 *    `Response.error()`; any other value), a `TypeError` naming the endpoint", with the example's
 *    `respond: (req) => lastGoodAnswer(req)`. Observed: a `respond` that answers with a `Response` whose body was
 *    already read (a cache that keeps one `Response` object and hands it out again, or one that read it to log it)
 *    or is locked (a reader taken to peek at it), which fetch never gives, is taken as the chain's answer: the plain
 *    call, a `Request` input and a hedged chain resolve 200 with a body that cannot be read ("Body is unusable"),
 *    the ky client's `.text()` rejects with that `TypeError`, and `resilientProxy` answers `502 upstream
 *    unavailable`; the healthy endpoint after it is never tried (0 requests). The same endpoint with a `validate`
 *    moves on (its read of a clone fails), so only an unvalidated `respond` ends the chain on an unusable answer.
 *    src/http/send/answer-of.ts `answerOf` checks the status, headers and readers but not `bodyUsed`/`body.locked`.
 *
 * Held (plain `it`):
 * - `breaker.key` that throws, or returns no string (42, `undefined`, an object, ""): the call rejects at once
 *   (the key's error, or a `TypeError` naming `breaker.key(url)`), nothing sent, no `request` event, no breaker
 *   listed, no timer; the key is asked once per call, with the caller's URL, retries included.
 * - `retry.retryOn.error` that throws: `RetryExhaustedError` after the one attempt, the predicate's error as
 *   `cause`, no retry, no timer; `breaker.isFailure` that throws: the same, and the breaker counts nothing.
 * - `isFailure: () => true` (every error counts): a caller's abort, an attempt cut by `timeout.total` (not even
 *   asked) and a hedge that lost are still no failure of the host's breaker.
 * - `retryOn.error: () => true`: a keyless POST is not sent again after an attempt timeout or a reset connection,
 *   and a caller's abort is not retried (rejects with its reason, one request).
 * - A `transform` that returns no request (`undefined`, `null`, a string, `{}`, headers as a plain record or
 *   missing, a `URL` as `url`), or a body JSON cannot write (a `BigInt`, a cycle, a `toJSON` that throws): a
 *   `fallback` event names the endpoint's `TypeError`, nothing reaches its host, the next endpoint serves.
 * - Layer listeners on `fallback` that throw or reject while a layer's own chain for async work runs
 *   (`execute`): reported through `console.error`, the run resolves with the next entry.
 * - Re-entry: a `request` listener that calls the same layer (both calls settle, totals 2); a `breaker` listener
 *   that reads `health()` sees the state, `gen` and `status` of the change it hears; a `transform` that fetches a
 *   token through the same layer (both settle, the token reaches the endpoint, one `request` event each).
 *
 * Docs-silent (not pinned; the first and the fourth now written in docs/fallback.md and docs/breakers.md, sixtieth
 * session, asserted in test/fallback/layer-chain-options.test.ts and test/http/health-store-throws.test.ts):
 * - A `run` of a layer's own chain given an `onFallback` of its own fires no layer `fallback` event (CHANGELOG
 *   says so, "unless a `run` is given an `onFallback` of its own"; docs/fallback.md does not).
 * - `retryOn.error` or `isFailure` that throws replaces the network error in the call's `cause`.
 * - A `transform` returning a `Request` object is taken as the request to send.
 * - A store whose `peek` is async, with a `store` listener that reads `health()`: each read fires another `store`
 *   event, recursing to a `RangeError` that is reported once; the call is unaffected.
 * - `random` outside [0, 1) gives `retry` events negative or NaN delays (the option says "in [0, 1)").
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { failOnUnhandledRejections } from "../helpers/unhandled.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

// Every rejection left unhandled fails the test that left it.
failOnUnhandledRejections();
const held: Hit[] = [];
afterEach(async () => {
  for (const hit of held.splice(0)) hit.res.end("late");
});

const ctx = { waitUntil() {}, passThroughOnException() {} };
const fail503 = (hit: Hit): void => {
  hit.res.writeHead(503).end();
};
const hold = (hit: Hit): void => {
  held.push(hit);
};
/** A few real ms, for a socket's news to arrive (never a wait the layer makes). */
const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 3));

/** How a call settled: its status and body text (or why the body could not be read), or its error. */
async function outcome(call: Promise<Response>): Promise<string> {
  try {
    const res = await call;
    const text = await res.text().catch((error: unknown) => `unreadable (${(error as Error).message})`);
    return `${res.status} ${text}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

// ---------------------------------------------------------------------------
// 1. A `respond` that answers with a body fetch never gives: already read, or locked.

const JSON_TYPE = { "content-type": "application/json" };
async function readAlready(): Promise<Response> {
  const cached = new Response('{"cached":true}', { headers: JSON_TYPE });
  await cached.text(); // a cache that logged it, or handed the same object to an earlier call
  return cached;
}
function lockedAlready(): Response {
  const cached = new Response('{"cached":true}', { headers: JSON_TYPE });
  cached.body?.getReader(); // a peek at the stream that took its reader
  return cached;
}
const spoiled = { "read already": readAlready, locked: lockedAlready } as const;

function cacheChain(respond: () => Response | Promise<Response>, extra: { validate?: unknown } = {}) {
  return {
    name: "video",
    endpoints: [
      { name: "primary", url: `${A.base}/v1` },
      { name: "cached", respond, ...extra },
      { name: "spare", url: `${B.base}/v1` },
    ],
  };
}

describe("respond answering with a Response whose body fetch would never give", () => {
  for (const [label, respond] of Object.entries(spoiled)) {
    it(`plain call, body ${label}: the chain moves on to the spare`, async () => {
      A.on(fail503);
      const layer = createResilience({ retry: false, fallback: fallback([cacheChain(respond) as never]) });
      const res = await layer.fetch(`${A.base}/v1/jobs`);
      expect(getResilienceInfo(res)?.endpoint).toBe("spare");
      expect(await res.text()).toBe("ok");
      expect(B.hits).toHaveLength(1);
    });
  }

  it("`Request` input, body read already: the chain moves on to the spare", async () => {
    A.on(fail503);
    const layer = createResilience({ retry: false, fallback: fallback([cacheChain(readAlready) as never]) });
    expect(await outcome(layer.fetch(new Request(`${A.base}/v1/jobs`)))).toBe("200 ok");
    expect(B.hits).toHaveLength(1);
  });

  it("hedged chain, body read already: the spare serves", async () => {
    A.on(fail503);
    const chain = { ...cacheChain(readAlready), hedge: { delay: 50 } };
    const layer = createResilience({ retry: false, fallback: fallback([chain as never]) });
    expect(await outcome(layer.fetch(`${A.base}/v1/jobs`))).toBe("200 ok");
    expect(B.hits).toHaveLength(1);
  });

  it("ky client, body read already: `.text()` gives the spare's answer", async () => {
    A.on(fail503);
    const layer = createResilience({ retry: false, fallback: fallback([cacheChain(readAlready) as never]) });
    const api = createClient({ resilience: layer });
    expect(await api.get(`${A.base}/v1/jobs`).text()).toBe("ok");
  });

  it("resilientProxy chain route, body read already: the spare's 200, not 502", async () => {
    A.on(fail503);
    const proxy = resilientProxy({
      resilience: { retry: false },
      routes: [{ path: "/v1", chain: cacheChain(readAlready) as never }],
    });
    const res = await proxy.fetch(new Request("http://proxy.example/v1/jobs"), {}, ctx);
    expect([res.status, await res.text(), res.headers.get("x-resilience-endpoint")]).toEqual([200, "ok", "spare"]);
  });

  it("the endpoint passed over is named in a `fallback` event's TypeError; with `validate` it moves on too", async () => {
    A.on(fail503);
    const layer = createResilience({ retry: false, fallback: fallback([cacheChain(lockedAlready) as never]) });
    const passed: string[] = [];
    layer.on("fallback", (e) => passed.push(`${e.from}: ${e.reason}`));
    expect(await outcome(layer.fetch(`${A.base}/v1/jobs`))).toBe("200 ok");
    expect(passed[1]).toBe(
      'cached: TypeError: network error: fallback endpoint "cached": respond answered with no Response fetch would give',
    );
    expect(B.hits).toHaveLength(1);
    // The same endpoint with a schema: the spare serves as well.
    const schema = { "~standard": { version: 1 as const, vendor: "t", validate: (value: unknown) => ({ value }) } };
    const checked = createResilience({
      retry: false,
      fallback: fallback([cacheChain(readAlready, { validate: schema }) as never]),
    });
    expect(await outcome(checked.fetch(`${A.base}/v1/jobs`))).toBe("200 ok");
    expect(B.hits).toHaveLength(2);
  });
});

// ---------------------------------------------------------------------------
// 2. `breaker.key`, `retryOn.error` and `isFailure` that throw or return the wrong type.

describe("held: breaker.key, retryOn.error and isFailure that throw or answer wrongly", () => {
  it("a key that throws, or gives no string: rejected at once, nothing sent, nothing counted, no timer", async () => {
    const answers: Array<[string, () => unknown, RegExp]> = [
      [
        "throws",
        () => {
          throw new Error("key down");
        },
        /key down/,
      ],
      ["42", () => 42, /breaker\.key\(url\) must return a non-empty string, got number/],
      ["undefined", () => undefined, /breaker\.key\(url\) must return a non-empty string, got undefined/],
      ["object", () => ({ host: "x" }), /breaker\.key\(url\) must return a non-empty string, got object/],
      ["empty", () => "", /breaker\.key\(url\) must return a non-empty string, got ""/],
    ];
    for (const [, key, message] of answers) {
      const clock = new TestClock();
      const layer = createResilience({
        clock,
        retry: { maxAttempts: 3 },
        timeout: { attempt: 1000, total: 5000 },
        breaker: { key: key as (url: URL) => string },
      });
      const requests: unknown[] = [];
      layer.on("request", (event) => requests.push(event));
      await expect(layer.fetch(`${A.base}/x`)).rejects.toThrow(message);
      expect([A.hits.length, requests.length, Object.keys(layer.health().breakers).length]).toEqual([0, 0, 0]);
      expect(layer.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
      expect(clock.pending()).toBe(0);
    }
  });

  it("the key is asked once per call, with the caller's URL, its retries included", async () => {
    const clock = new TestClock();
    const asked: string[] = [];
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 3, jitter: "none", initialDelay: 10 },
      breaker: {
        key: (url) => {
          asked.push(url.pathname + url.search);
          return url.host;
        },
      },
    });
    A.on(fail503);
    const call = outcome(layer.fetch(`${A.base}/x?q=1`));
    for (let i = 0; i < 10 && A.hits.length < 3; i++) {
      await tick();
      await clock.advance(20);
    }
    expect(await call).toBe("503 ");
    expect([A.hits.length, asked]).toEqual([3, ["/x?q=1"]]);
  });

  it("retryOn.error that throws: RetryExhaustedError after one attempt, its error the cause; no timer", async () => {
    const clock = new TestClock();
    const predicateError = new Error("predicate down");
    const layer = createResilience({
      clock,
      retry: {
        maxAttempts: 3,
        jitter: "none",
        retryOn: {
          error: () => {
            throw predicateError;
          },
        },
      },
    });
    A.on((hit) => hit.req.socket.destroy());
    const error = await layer.fetch(`${A.base}/x`).catch((e: unknown) => e);
    expect([(error as Error).name, (error as { attempts?: number }).attempts]).toEqual(["RetryExhaustedError", 1]);
    expect((error as Error).cause).toBe(predicateError);
    expect([A.hits.length, clock.pending()]).toEqual([1, 0]);
  });

  it("isFailure that throws: the call settles with it as cause, the breaker counts nothing", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: {
        failureThreshold: 1,
        isFailure: () => {
          throw new Error("judge down");
        },
      },
    });
    A.on((hit) => hit.req.socket.destroy());
    for (let i = 0; i < 2; i++) await expect(layer.fetch(`${A.base}/x`)).rejects.toThrow(/judge down/);
    expect(A.hits).toHaveLength(2); // not opened: the second call went
    expect(layer.health().breakers[A.host]).toMatchObject({ state: "closed", failureCount: 0 });
    expect(clock.pending()).toBe(0);
  });

  it("isFailure: () => true: a caller's abort, timeout.total and a lost hedge still count for nothing", async () => {
    const clock = new TestClock();
    const asked: unknown[] = [];
    const breaker = {
      failureThreshold: 1,
      isFailure: (error: unknown) => {
        asked.push(error);
        return true;
      },
    };
    const aborting = createResilience({ clock, retry: false, breaker });
    A.on(hold);
    const controller = new AbortController();
    const aborted = aborting.fetch(`${A.base}/x`, { signal: controller.signal });
    await A.nth(1);
    const reason = new Error("user left");
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    expect(aborting.health().breakers[A.host]).toMatchObject({ state: "closed", failureCount: 0 });

    const deadline = createResilience({ clock, retry: false, timeout: { total: 100 }, breaker });
    const late = deadline.fetch(`${A.base}/y`).catch((error: unknown) => error);
    await A.nth(2);
    await clock.advance(100);
    expect(await late).toMatchObject({ name: "TimeoutError", phase: "total" });
    expect(deadline.health().breakers[A.host]).toMatchObject({ state: "closed", failureCount: 0 });

    const hedged = createResilience({
      clock,
      retry: false,
      breaker,
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 100 },
          endpoints: [
            { name: "slow", url: `${A.base}/v1` },
            { name: "fast", url: `${B.base}/v1` },
          ],
        },
      ]),
    });
    const won = hedged.fetch(`${A.base}/v1/z`);
    await A.nth(3);
    await clock.advance(100);
    expect(await outcome(won)).toBe("200 ok");
    await tick();
    expect(hedged.health().breakers[A.host]).toMatchObject({ state: "closed", failureCount: 0 });
    expect(asked).toEqual([]);
    expect(clock.pending()).toBe(0);
  });
});

describe("held: retryOn.error: () => true keeps the idempotency rules and the caller's abort", () => {
  const everything = { maxAttempts: 3, jitter: "none" as const, initialDelay: 10, retryOn: { error: () => true } };

  it("a keyless POST is not sent again after an attempt timeout, nor after a reset connection", async () => {
    const clock = new TestClock();
    const timed = createResilience({ clock, retry: everything, timeout: { attempt: 100 } });
    A.on(hold);
    const first = outcome(timed.fetch(`${A.base}/jobs`, { method: "POST", body: "{}" }));
    await A.nth(1);
    for (let i = 0; i < 6; i++) {
      await clock.advance(60);
      await tick();
    }
    expect(await first).toBe("TimeoutError: attempt timeout of 100 ms exceeded");
    expect(A.hits).toHaveLength(1);

    A.reset();
    A.on((hit) => hit.req.socket.destroy());
    const reset = createResilience({ clock, retry: everything });
    const second = outcome(reset.fetch(`${A.base}/jobs`, { method: "POST", body: "{}" }));
    for (let i = 0; i < 6; i++) {
      await tick();
      await clock.advance(20);
    }
    expect(await second).toMatch(/^RetryExhaustedError: gave up after 1 attempt/);
    expect([A.hits.length, clock.pending()]).toEqual([1, 0]);
  });

  it("a caller's abort during the attempt rejects with its reason, one request, no retry", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: everything });
    A.on(hold);
    const controller = new AbortController();
    const call = layer.fetch(`${A.base}/x`, { signal: controller.signal });
    await A.nth(1);
    const reason = new Error("gone");
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    await tick();
    await clock.advance(50);
    await tick();
    expect([A.hits.length, clock.pending()]).toEqual([1, 0]);
  });
});

// ---------------------------------------------------------------------------
// 3. A `transform` that returns no request, or a body JSON cannot write.

describe("held: a transform that returns the wrong thing fails its endpoint, and the chain moves on", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  type View = Record<string, unknown> & { url: string };
  const shapes: Array<[string, (req: View) => unknown, RegExp]> = [
    ["undefined", () => undefined, /must return a request object/],
    ["null", () => null, /must return a request object/],
    ["a string", (req) => req.url, /must return a request object/],
    ["{}", () => ({}), /must return a request object/],
    ["plain headers", (req) => ({ ...req, headers: { "x-a": "1" } }), /must return a request object/],
    ["no headers", (req) => ({ ...req, headers: undefined }), /must return a request object/],
    ["a URL as url", (req) => ({ ...req, url: new URL(req.url) }), /must return a request object/],
    ["a BigInt body", (req) => ({ ...req, body: { n: 10n } }), /BigInt/],
    ["a cyclic body", (req) => ({ ...req, body: cyclic }), /circular/],
    [
      "a toJSON that throws",
      (req) => ({
        ...req,
        body: {
          toJSON() {
            throw new Error("no JSON");
          },
        },
      }),
      /no JSON/,
    ],
  ];
  for (const [label, transform, reason] of shapes) {
    it(`${label}: nothing reaches its host, a fallback event names it, the spare serves`, async () => {
      A.on(fail503);
      const layer = createResilience({
        retry: false,
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "a", url: `${A.base}/v1` },
              { name: "b", url: `${B.base}/v2`, transform: transform as never },
              { name: "spare", respond: () => new Response("spare") },
            ],
          },
        ]),
      });
      const passed: Array<[string, string]> = [];
      layer.on("fallback", (event) => passed.push([event.from, event.reason]));
      const res = await layer.fetch(`${A.base}/v1/x`, { method: "POST", body: '{"a":1}', headers: JSON_TYPE });
      expect([getResilienceInfo(res)?.endpoint, await res.text()]).toEqual(["spare", "spare"]);
      expect(B.hits).toHaveLength(0);
      expect(passed.map(([from]) => from)).toEqual(["a", "b"]);
      expect(passed[1]?.[1]).toMatch(reason);
    });
  }
});

// ---------------------------------------------------------------------------
// 4. Listeners and hooks that throw on a layer's own chain, and code that calls the same layer again.

describe("held: listeners on a layer's own chain for any async work", () => {
  it("fallback listeners that throw or reject are reported; the run resolves with the next entry", async () => {
    const printed = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const layer = createResilience({
        fallback: fallback([{ name: "http", endpoints: [{ name: "a", url: `${A.base}/v1` }] }]),
      });
      layer.on("fallback", () => {
        throw new Error("sync listener down");
      });
      layer.on("fallback", async () => {
        throw new Error("async listener down");
      });
      const chain = layer.fallback?.chain("work");
      chain?.add(
        async () => {
          throw new Error("first down");
        },
        { name: "first" },
      );
      chain?.add(async () => "second", { name: "second" });
      expect(await chain?.execute(1)).toBe("second");
      await tick();
      const said = printed.mock.calls.map((args) => String((args[1] as Error)?.message));
      expect(said).toEqual(expect.arrayContaining(["sync listener down", "async listener down"]));
      expect(layer.health().fallback.work).toMatchObject({ lastSuccessfulFallback: "second", overallSuccessRate: 1 });
    } finally {
      printed.mockRestore();
    }
  });
});

describe("held: code of the caller's that calls the same layer again", () => {
  it("a request listener that makes another call: both settle, one request event each, totals 2", async () => {
    const layer = createResilience({ retry: false });
    const inner: Array<Promise<string>> = [];
    const heard: string[] = [];
    layer.on("request", (event) => {
      heard.push(event.url);
      if (inner.length === 0) inner.push(outcome(layer.fetch(`${B.base}/inner`)));
    });
    expect(await outcome(layer.fetch(`${A.base}/outer`))).toBe("200 ok");
    expect(await inner[0]).toBe("200 ok");
    expect(heard).toEqual([`${A.base}/outer`, `${B.base}/inner`]);
    expect(layer.debugInfo().totals).toEqual({ calls: 2, failures: 0 });
  });

  it("a breaker listener that reads health() sees the change it hears", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 100, successThreshold: 1 },
    });
    const seen: string[] = [];
    layer.on("breaker", (event) => {
      const health = layer.health();
      const mine = health.breakers[A.host];
      seen.push(`${event.from}>${event.to} ${event.gen} | ${mine?.state} ${mine?.gen} ${health.status}`);
    });
    A.on(fail503);
    expect(await outcome(layer.fetch(`${A.base}/x`))).toBe("503 ");
    await clock.advance(100);
    A.reset();
    expect(await outcome(layer.fetch(`${A.base}/x`))).toBe("200 ok");
    expect(seen).toEqual([
      "closed>open 1 | open 1 unhealthy",
      "open>half_open 2 | half_open 2 degraded",
      "half_open>closed 3 | closed 3 degraded",
    ]);
    expect(clock.pending()).toBe(0);
  });

  it("a transform that fetches a token through the same layer: both settle, the token reaches the endpoint", async () => {
    const clock = new TestClock();
    let layer!: ReturnType<typeof createResilience>;
    layer = createResilience({
      clock,
      retry: false,
      timeout: { attempt: 1000 },
      bulkhead: { maxConcurrent: 1, maxQueue: 2 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${A.base}/v1` },
            {
              name: "b",
              url: `${B.base}/v1`,
              transform: async (req) => {
                const token = await (await layer.fetch(`${B.base}/token`)).text();
                req.headers.set("x-token", token);
                return req;
              },
            },
          ],
        },
      ]),
    });
    const requests: string[] = [];
    layer.on("request", (event) => requests.push(new URL(event.url).pathname));
    A.on(fail503);
    B.on((hit) => hit.res.end(hit.path === "/token" ? "T0KEN" : `job ${hit.headers["x-token"]}`));
    expect(await outcome(layer.fetch(`${A.base}/v1/jobs`))).toBe("200 job T0KEN");
    expect(B.hits.map((hit) => hit.path)).toEqual(["/token", "/v1/jobs"]);
    expect(requests).toEqual(["/token", "/v1/jobs"]);
    expect(layer.health().breakers[B.host]).toMatchObject({ active: 0, queued: 0 });
    expect(clock.pending()).toBe(0);
  });
});
