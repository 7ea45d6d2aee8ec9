/**
 * Outside-in attack on docs/testing.md and the JSDoc of `../../src/testing/index.ts` (the MSW fault kit,
 * `upstream`, `recordEvents`, `TestClock`, `seededRandom`, `corsPreflight`), as a user's own vitest
 * suite for an app calling a flaky generation API through the layer. Docs: docs/testing.md sentence by
 * sentence (the builder table, "Each builder refuses a bad argument at once with a `TypeError` (…), so a
 * mistake fails the test, not a handler inside MSW", the `TestClock` paragraph, the component-test
 * snippet), the JSDoc of `json` ("A JSON response"), `TestClock.run`/`advance`/`pending`, `recordEvents`.
 * How: `setupServer` from `msw/node` with the kit's handlers, `TestClock` as the layer's clock, the
 * recorder; the root, `./fallback`, `./degradation`, `./ky` and `./testing` entries only.
 * Paths: plain call with retries and `Retry-After`, `Request` input, fallback chain with `validate` on a
 * stalled stream, hedge racing a primary that answers first, degradation steps, the ky client, a breaker's
 * open spell; plus (probed, not kept: each held) large request and response bodies under
 * `timeout.attempt` on a `TestClock`, vitest fake timers and `vi.setSystemTime` set back with no
 * `clock`, a `DOMException` "NetworkError" from a stub fetch, MSW's Headers quirk on same-origin hedges
 * and ky chains, `run` on a `hang()` (rejected "the promise never settled" after 3.8 s).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * both fixed since, so plain `it`: `json` refuses a body JSON writes nothing for and a `statusText` no Response
 * can carry, when it is built):
 * 1. docs/testing.md "Each builder refuses a bad argument at once with a `TypeError` (…), so a mistake
 *    fails the test, not a handler inside MSW." with the table's "`json(body, init?)` | a JSON answer".
 *    Observed: `json(undefined)` (and `json(() => 1)`, `json(Symbol("x"))`) is taken: `JSON.stringify`
 *    returns `undefined` for it without throwing, and `json` only refuses a body whose stringify throws
 *    (its own message: "expected a value JSON can write"). Each request then gets a 200 labelled
 *    `application/json` with an empty body (`""`), so the app under test sees `malformedJson()`
 *    ("Unexpected end of JSON input") instead of the test failing at the typo.
 * 2. Same sentence. Observed: `json({ ok: 1 }, { statusText: "a\nb" })` (any statusText no `Response`
 *    can carry, e.g. with a NUL) is taken; each request then throws "TypeError: Invalid statusText"
 *    inside MSW's handler and MSW answers a 500 "Unhandled Exception", which the layer treats as the
 *    API's 5xx. `json` checks its init's `status` and `headers` when built, not its `statusText`.
 *
 * Held (plain `it`):
 * - The docs' component-test snippet runs as written (two 503s, one `Idempotency-Key`, 2 retries).
 * - `TestClock` drives a breaker's open spell: refused while open, probed after `advance(timeout)`,
 *   `expectBreakerOpened` / `expectBreakerClosed` see it; no timer left after the calls.
 * - `run` with MSW: a hedge whose primary answers (on the clock) before the hedge delay sends no hedge;
 *   a stalled streamed body under `validate` fails at the 30 s bound on the clock and the chain moves
 *   on, `expectFallback("a", "b")`, no timer left.
 * - `seededRandom` + `flaky`: two identical runs record identical events (delays included).
 * - Degradation steps down one level per `stepInterval` on the `TestClock` as failing calls settle.
 */
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { CircuitOpenError, createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  corsPreflight,
  flaky,
  json,
  latency,
  recordEvents,
  seededRandom,
  sequence,
  status,
  stream,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";

// Your code under test: it takes a fetch (docs/testing.md, verbatim).
async function generateImage(fetchImpl: typeof fetch, prompt: string): Promise<{ url: string }> {
  const res = await fetchImpl("https://gen.example/v1/images", { method: "POST", body: JSON.stringify({ prompt }) });
  return (await res.json()) as { url: string };
}

const server = setupServer(corsPreflight()); // DOM environments preflight cross-origin requests
beforeAll(() => server.listen());
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

it("docs/testing.md snippet: shows the image after two 503s", async () => {
  const api = upstream(
    "POST",
    "https://gen.example/v1/images",
    sequence([status(503, { retryAfter: 1 }), status(503), json({ url: "https://cdn.example/cat.png" })]),
  );
  server.use(api.handler);
  const clock = new TestClock();
  const resilience = createResilience({ clock, retry: { idempotencyKey: true } });
  const recorder = recordEvents(resilience);

  const image = await clock.run(generateImage(resilience.fetch, "a cat"));
  expect(image.url).toBe("https://cdn.example/cat.png");
  expect(api.count()).toBe(3);
  expect(new Set(api.header("idempotency-key")).size).toBe(1);
  recorder.expectRetries(2);
  expect(clock.pending()).toBe(0);
});

it('json(undefined) is refused at once with a TypeError ("Each builder refuses a bad argument at once")', () => {
  // docs/testing.md: "Each builder refuses a bad argument at once with a `TypeError` (…), so a mistake
  // fails the test, not a handler inside MSW." First observed: taken, answering an empty "JSON" 200.
  expect(() => json(undefined)).toThrow(TypeError);
});

it("json(body, { statusText }) that no Response can carry is refused at once with a TypeError", () => {
  // docs/testing.md: "Each builder refuses a bad argument at once with a `TypeError` (…), so a mistake
  // fails the test, not a handler inside MSW." First observed: "Invalid statusText" thrown inside MSW (a 500).
  expect(() => json({ ok: 1 }, { statusText: "a\nb" })).toThrow(TypeError);
});

it("TestClock drives a breaker's open spell; the recorder sees it open and close", async () => {
  const clock = new TestClock();
  let down = true;
  const api = upstream("GET", "https://flaky.example/v1/jobs", (request, info) =>
    down ? status(503)(request, info) : json({ id: 1 })(request, info),
  );
  server.use(api.handler);
  const resilience = createResilience({
    clock,
    retry: { maxAttempts: 1 },
    breaker: { failureThreshold: 2, timeout: 30_000, successThreshold: 1 },
  });
  const recorder = recordEvents(resilience);
  for (let i = 0; i < 2; i++) await clock.run(resilience.fetch("https://flaky.example/v1/jobs"));
  recorder.expectBreakerOpened("flaky.example");
  await expect(clock.run(resilience.fetch("https://flaky.example/v1/jobs"))).rejects.toBeInstanceOf(CircuitOpenError);
  expect(api.count()).toBe(2);
  down = false;
  await clock.advance(30_000);
  const res = await clock.run(resilience.fetch("https://flaky.example/v1/jobs"));
  expect(res.status).toBe(200);
  recorder.expectBreakerClosed("flaky.example");
  expect(clock.pending()).toBe(0);
});

it("run with MSW: a primary answering on the clock before the hedge delay sends no hedge", async () => {
  const clock = new TestClock();
  const a = upstream("POST", "https://a.example/v1/jobs", latency(99, json({ from: "a" }), { clock }));
  const b = upstream("POST", "https://b.example/v1/jobs", json({ from: "b" }));
  server.use(a.handler, b.handler);
  const resilience = createResilience({
    clock,
    fallback: fallback([
      {
        name: "gen",
        hedge: { delay: 100 },
        endpoints: [
          { name: "a", url: "https://a.example/v1" },
          { name: "b", url: "https://b.example/v1" },
        ],
      },
    ]),
  });
  const res = await clock.run(
    resilience.fetch(
      new Request("https://a.example/v1/jobs", { method: "POST", body: "{}", headers: { "idempotency-key": "k" } }),
    ),
  );
  expect(await res.json()).toEqual({ from: "a" });
  expect(b.count()).toBe(0);
  expect(clock.now()).toBe(99);
  expect(clock.pending()).toBe(0);
});

it("run with MSW: a stalled stream under validate fails at the clock's 30 s bound and the chain moves on", async () => {
  const clock = new TestClock();
  const hasId = {
    "~standard": {
      version: 1 as const,
      vendor: "attack",
      validate: (v: unknown) =>
        v !== null && typeof v === "object" && "id" in v ? { value: v } : { issues: [{ message: "no id" }] },
    },
  };
  const a = upstream(
    "GET",
    "https://a.example/v1/jobs",
    stream(['{"id":', "1}"], { stallAfter: 1, contentType: "application/json", clock }),
  );
  const b = upstream("GET", "https://b.example/v1/jobs", json({ id: 2 }));
  server.use(a.handler, b.handler);
  const resilience = createResilience({
    clock,
    fallback: fallback([
      {
        name: "gen",
        endpoints: [
          { name: "a", url: "https://a.example/v1", validate: hasId },
          { name: "b", url: "https://b.example/v1" },
        ],
      },
    ]),
  });
  const recorder = recordEvents(resilience);
  const res = await clock.run(resilience.fetch("https://a.example/v1/jobs"));
  expect(await res.json()).toEqual({ id: 2 });
  expect(clock.now()).toBe(30_000);
  recorder.expectFallback("a", "b");
  expect(clock.pending()).toBe(0);
});

it("seededRandom + flaky: two identical runs (ky client) record identical events", async () => {
  const run = async (): Promise<string> => {
    const clock = new TestClock();
    const api = upstream("GET", "https://seeded.example/v1/jobs", flaky(0.5, { seed: 7 }));
    server.use(api.handler);
    const resilience = createResilience({ clock, random: seededRandom(42), breaker: false });
    const recorder = recordEvents(resilience);
    const client = createClient({ resilience });
    for (let i = 0; i < 6; i++) {
      await clock.run(
        client.get("https://seeded.example/v1/jobs").then(
          (r) => r.status,
          (e: Error) => e.name,
        ),
      );
    }
    server.resetHandlers();
    return JSON.stringify(recorder.events);
  };
  const first = await run();
  expect(first).toContain('"type":"retry"');
  expect(await run()).toBe(first);
});

it("degradation steps down one level per stepInterval on the TestClock", async () => {
  const clock = new TestClock();
  server.use(upstream("GET", "https://deg.example/v1/x", status(500)).handler);
  const resilience = createResilience({
    clock,
    retry: { maxAttempts: 1 },
    breaker: false,
    degradation: degradation({ minSamples: 5 }),
  });
  const recorder = recordEvents(resilience);
  for (let i = 0; i < 16; i++) {
    await clock.run(resilience.fetch("https://deg.example/v1/x"));
    await clock.advance(1_000);
  }
  recorder.expectDegradedTo("high");
  recorder.expectDegradedTo("medium");
  expect(recorder.of("degradation").map((e) => e.to)).toEqual(["high", "medium"]);
});
