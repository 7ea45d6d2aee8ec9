/**
 * Outside-in attack on the first four fixes of the twentieth session (CHANGELOG.md, "### Fixed", entries 1-4):
 * `Retry-After` dates read by hand (docs/retry.md "Retry"), `init` fields and signals fetch refuses (docs/retry.md
 * "The caller's own mistakes"), a redirect's hop to a half-open host taking its probe slot (docs/retry.md
 * "Redirects", docs/breakers.md), and async hooks of a standalone `CircuitBreaker` and `FallbackChain.run`.
 * How: public entries only (root, `./fallback`, `./ky`, `./testing`, `./policies`); `hostFetch` stubs answering a
 * `Retry-After` read under a `TestClock` set to the moment the date matters (a century's end, a year boundary, a
 * second 60); the platform's own fetch against a real `node:http` server on 127.0.0.1 (`onPlatform`: breaker
 * threshold 2, zero delays) for signals fetch refuses; stub hosts whose breakers are half-open, hops that hang
 * until an attempt timeout, a total timeout or the caller's abort, two layers sharing one `memoryStore()`.
 * Nothing sleeps for real: zero delays, `maxAttempts`, the TestClock; a call that never settles is raced with a
 * few turns of the event loop. Not repeated: test/http/redirect-probes.test.ts, test/http/retry-after-cases.test.ts,
 * test/security/retry-twenty-attack.test.ts, test/policies/hook-rejections.test.ts.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`):
 * 1. docs/retry.md "RFC 850's two-digit year in the century that puts it at most 50 years ahead": near a
 *    century's end the next century is never considered. Read in 2090, `06-Nov-10` is 2010 (should be 2110,
 *    20 years ahead); read at 2099-12-31 23:59:00, `01-Jan-00 00:00:00` is 2000 (should be 60 s away): a
 *    delay of 0, retried at once, no hold. Cause: src/http/send/retry-after.ts:48-49, the year is put in the
 *    current century, else the last one (`fullYear -= 100`), never the next.
 * 2. Same sentence, at the year's boundary: the rule compares years, not the date. Read on 2025-06-01,
 *    `01-Dec-75` is 2075-12-01, 50 years and 6 months ahead ("more than 50 years", RFC 9110 §5.6.7), so it is
 *    1975, in the past: the computed delay; the layer takes 2075, settles with the 503 and holds the host 24 h.
 *    Cause: src/http/send/retry-after.ts:49, `fullYear > current + 50` on years.
 * 3. docs/retry.md "a leap second (`23:59:60`) as the second after `:59`" and "anything else (… a date no
 *    calendar holds such as 31 Feb or `24:00:00` …) falls back to the computed delay": second 60 is taken at any
 *    hour and minute (`08:49:60` read as 08:50:00), where UTC inserts a leap second only at 23:59:60. Cause:
 *    src/http/send/retry-after.ts:57, `Number(seconds) < 61` whatever the time.
 * 4. docs/retry.md "an `init.signal` that is no `AbortSignal` (read as fetch reads one …)" rejects at once with
 *    a `TypeError`, "never retried nor counted against the host's breaker": `signal: 0`, `false` or `""`, which
 *    fetch refuses ("member signal is not of type AbortSignal"), go to the transport, are retried as network
 *    errors and open a live host's breaker, nothing having reached it. Cause: src/http/resilient-fetch.ts:78-83,
 *    `callerSignal && …` skips a falsy value (fetch checks `signal != null`, then `!signal`).
 * 5. Same sentence, the other side: a signal "read as fetch reads one" (it has `aborted` and
 *    `addEventListener`) is taken by fetch (it answers 200), and by the layer's check, but the call never
 *    settles and a `TypeError` ("signal.removeEventListener is not a function") is left unhandled (SECURITY.md
 *    "Nothing outlives its call"). Cause: src/core/until-aborted.ts:22, `signal.removeEventListener` inside a
 *    `then` callback whose promise nobody handles, before `resolve`.
 * 6. docs/retry.md "Redirects" "a hop to a half-open host with a free slot takes it, as that host's probe: its
 *    own answer settles the slot (… or an error, re-opens the host …; the caller's abort frees the slot)", and
 *    docs/breakers.md "attempt timeouts … are failures … set `timeout.attempt` so that a host that hangs
 *    counts": a hop to a half-open host that hangs until `timeout.attempt` only frees the slot; the host stays
 *    half-open (its next call is a probe again) while the first host, which answered its redirect, opens.
 *    Cause: src/http/send/follow-redirects.ts:143 passes `signal?.aborted`, and that signal is the attempt's
 *    (src/http/send/send-attempt.ts:211-214, aborted by the attempt timer too), so src/http/send/send-attempt.ts:71
 *    takes the timeout for the caller's abort (`reportError(permit, error, true)`: a release).
 * 7. Same sentence, "the caller's abort frees the slot": with a transport that ignores its signal (SECURITY.md:
 *    "a call settles at its abort … even when the transport … ignores the signal"), the call settles at the
 *    abort but the hop's slot stays taken until the transport answers or the probe's lease runs out: the next
 *    call to that host is refused with `CircuitOpenError`, nothing sent. Cause:
 *    src/http/send/follow-redirects.ts:141, the hop's `transport(...)` is awaited bare (not raced with the signal
 *    as src/http/send/send-attempt.ts:135 and 219 race the first hop), so `settle` runs only when the transport does.
 * 8. Same sentence with docs/breakers.md "`store: memoryStore()` shares transitions between `Resilience`
 *    instances": a host another layer opened, whose open time has passed (half-open for any call made now), is
 *    no probe when a second layer's redirect hops to it: the hop goes without a slot and its 503 re-opens
 *    nothing, here or in the store (a direct call from that layer re-opens it). Cause:
 *    src/policies/breaker-registry.ts:131, `known()` makes an entry only for a host the store holds open with
 *    `openUntil > now`, so src/http/send/send-attempt.ts:61 (`if (!breaker) return undefined`) lets the hop by.
 *
 * Held:
 * - `Retry-After` at the edges: 29 Feb of a leap year, an asctime day with its leading space, a delay equal to
 *   `maxRetryAfter` slept through; lowercase names, a tab or two spaces inside a date, fall back;
 * - valid `init` values are not refused: `redirect: "manual"`, `referrer: ""`, `"about:client"`, a URL,
 *   `window: null`, `AbortSignal.timeout`/`AbortSignal.any`, `duplex: "half"` with a stream, on a plain call, a
 *   followed redirect, a fallback chain, a `Request` with a body and ky;
 * - hops through two half-open hosts and back to the first: each hop is its host's probe (events, `health()`);
 *   a hop cut by `timeout.total` frees its slot (neither, as docs/breakers.md says of a total timeout);
 * - a standalone `CircuitBreaker`'s async `onChange` rejecting on a transition made by `isOpen()`, `hold()` or
 *   `reset()`, and `FallbackChain.run`'s async `onFallback` rejecting for an entry passed over by `skip`: reported.
 *
 * Suspicious, not pinned (no sentence promises otherwise):
 * - a weekday that does not match the date (`Mon, 06 Nov 1994`) is read as the date; RFC 9110 does not say;
 * - `FallbackChain.run`'s `discard` (and `CircuitBreaker`'s `isFailure`) are not guarded like `onFallback`: an
 *   async `discard` that rejects, or a losing hedge's `discard` that throws (src/policies/fallback-chain.ts:459,
 *   `void settled.then(…discard…)`), leaves a rejection unhandled; an async `isFailure` counts every error;
 * - a hop's probe slot is settled when the hop's headers arrive: a final answer that then fails `integrity` or
 *   whose body errors still counts as the hop host's success (the same as a direct call's headers);
 * - a hop's outcome is not `record`ed in the store (`store.record`), only published as a transition; a Durable
 *   Object store that counts failures from `record` hears nothing of a hop.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, isCircuitOpenError, memoryStore, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker, FallbackChain, type ResolvedBreakerPolicy } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { declinedWith } from "../helpers/declined.ts";
import { type Answer, hostFetch } from "../helpers/host-fetch.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { onPlatform, outcome } from "../helpers/platform-layer.ts";
import { turns, watchUnhandled } from "../helpers/unhandled.ts";

const up = httpUpstream();
serveDuringFile(up);

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const DAY = 24 * 3_600_000;

/** What the layer does with a header it must not read: the computed delay (0), one retry, the host closed. */
const FELL_BACK = { sent: 2, delays: [0], state: "closed" };

describe('docs/retry.md "Retry": Retry-After dates read as RFC 9110 says', () => {
  it("\"RFC 850's two-digit year in the century that puts it at most 50 years ahead\": near a century's end, the next century", async () => {
    // Read in 2090, `10` is 2110 (20 years ahead), far past maxRetryAfter: settle at once, hold 24 h.
    const in2090 = Date.UTC(2090, 0, 1);
    expect(await declinedWith("Thursday, 06-Nov-10 08:49:37 GMT", in2090)).toMatchObject({
      sent: 1,
      delays: [],
      state: "open",
      until: in2090 + DAY,
    });
    // A minute before 2100, `01-Jan-00` is that midnight: 60 s, past maxRetryAfter (30 s).
    const lastMinute = Date.UTC(2099, 11, 31, 23, 59, 0);
    expect(await declinedWith("Friday, 01-Jan-00 00:00:00 GMT", lastMinute)).toMatchObject({
      sent: 1,
      delays: [],
      state: "open",
      until: Date.UTC(2100, 0, 1),
    });
  });

  it('"… at most 50 years ahead": a date 50 years and 6 months ahead is in the last century (the rule reads years only)', async () => {
    // On 2025-06-01, 2075-12-01 is more than 50 years ahead: `75` is 1975, in the past, so the computed delay.
    expect(await declinedWith("Monday, 01-Dec-75 00:00:00 GMT", Date.UTC(2025, 5, 1))).toMatchObject(FELL_BACK);
  });

  it('"a leap second (`23:59:60`)" only; "a date no calendar holds … falls back to the computed delay": 08:49:60', async () => {
    // Observed: read as 08:50:00, 60 s after `now`, past maxRetryAfter: settled at once and held.
    expect(await declinedWith("Sun, 06 Nov 1994 08:49:60 GMT", Date.UTC(1994, 10, 6, 8, 49, 0))).toMatchObject(
      FELL_BACK,
    );
  });

  it("held: 29 Feb of a leap year, asctime's padded day, a delay equal to maxRetryAfter; malformed forms fall back", async () => {
    const feb29 = Date.UTC(2028, 1, 29);
    expect(await declinedWith("Tue, 29 Feb 2028 00:01:00 GMT", feb29)).toMatchObject({
      sent: 1,
      until: feb29 + 60_000,
    });
    const nov6 = Date.UTC(1994, 10, 6, 8, 48, 37);
    expect(await declinedWith("Sun Nov  6 08:49:37 1994", nov6)).toMatchObject({ sent: 1, until: nov6 + 60_000 });
    // Exactly maxRetryAfter is slept through (the layer resolves with the second 503).
    expect(await declinedWith("30", 0)).toMatchObject({ sent: 2, delays: [30_000], state: "closed" });
    for (const bad of [
      "sun, 06 nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994\t08:49:37 GMT",
      "Sun,  06 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:37 gmt",
    ]) {
      expect(await declinedWith(bad, nov6)).toMatchObject(FELL_BACK);
    }
  });
});

describe('docs/retry.md "The caller\'s own mistakes reject at once with a TypeError … never retried nor counted"', () => {
  it('"an init.signal that is no AbortSignal (read as fetch reads one …)": 0, false and "" go to the host and open its breaker', async () => {
    for (const signal of [0, false, ""]) {
      const { layer, entered } = onPlatform();
      const init = { signal } as unknown as RequestInit;
      const first = await layer.fetch(`${up.base}/jobs`, init).catch((e: unknown) => e);
      await layer.fetch(`${up.base}/jobs`, init).catch(() => undefined);
      // Observed: RetryExhaustedError, the transport entered twice, the live host's breaker open.
      expect(first).toBeInstanceOf(TypeError);
      expect(entered.n).toBe(0);
      expect(layer.health().breakers[up.host]?.state ?? "closed").toBe("closed");
    }
    expect(up.hits).toHaveLength(0);
  });

  it('a signal "read as fetch reads one" (aborted, addEventListener) without removeEventListener: refused at once (it hung)', async () => {
    const t = hostFetch({ "a.test": () => new Response("ok") });
    const layer = createResilience({ clock: new TestClock(0), retry: false, fetch: t.fetch });
    // Node's fetch answers 200 with it (undici asks for exactly these two members); the layer, which must stop
    // listening when a call settles, refuses it since (docs/retry.md names the three members it reads).
    const signal = { aborted: false, addEventListener() {} } as unknown as AbortSignal;
    const { value, unhandled } = await watchUnhandled(() =>
      Promise.race([
        layer.fetch("http://a.test/jobs", { signal }).then(
          () => "resolved",
          (e: unknown) => (e instanceof TypeError ? `TypeError: ${e.message}` : String(e)),
        ),
        turns(10).then(() => "never settled"),
      ]),
    );
    expect(t.log).toHaveLength(0);
    expect(unhandled).toEqual([]);
    expect(value).toBe("TypeError: resilience.fetch: init.signal is no AbortSignal, got Object");
  });

  it("held: valid values are not refused, on a plain call, a followed redirect, a chain, a Request with a body and ky", async () => {
    const t = hostFetch({
      "a.test": (request) =>
        request.url.endsWith("/hop")
          ? new Response(null, { status: 307, headers: { location: "http://b.test/landed" } })
          : new Response("a"),
      "b.test": () => new Response("b"),
      "down.test": () => new Response("down", { status: 503 }),
    });
    const layer = createResilience({
      clock: new TestClock(0),
      retry: false,
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: "http://down.test/v1" },
            { name: "spare", url: "http://b.test/v1" },
          ],
        },
      ]),
    });
    const valid: RequestInit[] = [
      { referrer: "" },
      { referrer: "about:client" },
      { referrer: "http://other.test/page" },
      { window: null },
      { signal: AbortSignal.timeout(60_000) },
      { signal: AbortSignal.any([new AbortController().signal]) },
      { cache: "no-store", credentials: "omit", mode: "cors", referrerPolicy: "no-referrer", priority: "high" },
    ];
    for (const init of valid) {
      expect(await outcome(layer.fetch("http://a.test/plain", init))).toBe("200 a");
      expect(await outcome(layer.fetch("http://a.test/hop", init))).toBe("200 b");
      expect(await outcome(layer.fetch("http://down.test/v1/jobs", init))).toBe("200 b");
    }
    const manual = await layer.fetch("http://a.test/hop", { redirect: "manual" });
    expect(manual.status).toBe(307);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("streamed"));
        controller.close();
      },
    });
    const streamed = new Request("http://a.test/hop", { method: "PUT", body: stream, duplex: "half" } as RequestInit);
    expect(await outcome(layer.fetch(streamed, { referrer: "about:client", window: null }))).toBe("200 b");
    expect(t.log.at(-1)?.text).toBe("streamed");
    const api = createClient({ resilience: layer });
    expect(await api.post("http://a.test/hop", { json: { n: 1 }, referrer: "" }).text()).toBe("b");
  });
});

const BREAKER = { failureThreshold: 1, timeout: 1000, halfOpenMaxCalls: 1, successThreshold: 1 };
const redirectToB: Answer = () => new Response(null, { status: 307, headers: { location: "https://b.example/x" } });
/** An answer that waits for its request's signal, then fails with its reason. */
const hangs: Answer = (request) =>
  new Promise<Response>((_resolve, reject) => {
    request.signal.addEventListener("abort", () => reject(request.signal.reason), { once: true });
  });
const shown = (call: Promise<Response>): Promise<string> =>
  call.then(
    async (r) => `${r.status} ${await r.text()}`,
    (e: unknown) => (isCircuitOpenError(e) ? `CircuitOpenError ${e.key}` : (e as Error).name),
  );

/** a.example redirects to b.example, whose breaker is half-open with one free slot; retries off. */
async function halfOpenB(answer: Answer, extra: ResilienceOptions = {}) {
  const clock = new TestClock(0);
  let down = true;
  const t = hostFetch({
    "a.example": redirectToB,
    "b.example": (request, n) => (down ? new Response("down", { status: 503 }) : answer(request, n)),
  });
  const layer = createResilience({ clock, fetch: t.fetch, retry: false, breaker: BREAKER, ...extra });
  await layer.fetch("https://b.example/open");
  await clock.advance(1000);
  down = false;
  t.log.length = 0;
  return { clock, t, layer, stateOf: (host: string) => layer.health().breakers[host]?.state };
}

describe('docs/retry.md "Redirects": "a hop to a half-open host with a free slot takes it, as that host\'s probe"', () => {
  it('"… or an error, re-opens the host" (docs/breakers.md: "attempt timeouts … are failures"): a hop cut by timeout.attempt', async () => {
    const { clock, t, layer, stateOf } = await halfOpenB(hangs, { timeout: { attempt: 100 } });
    const call = shown(layer.fetch("https://a.example/x"));
    await clock.advance(0);
    expect(t.log.map((r) => r.url)).toEqual(["https://a.example/x", "https://b.example/x"]);
    await clock.advance(100);
    expect(await call).toBe("TimeoutError");
    // Observed: b.example half-open (its slot freed as for an abort), and the next call to it a probe again.
    expect(stateOf("b.example")).toBe("open");
    expect(await shown(layer.fetch("https://b.example/y"))).toBe("CircuitOpenError b.example");
  });

  it('"the caller\'s abort frees the slot": a transport that ignores its signal keeps the slot taken after the abort', async () => {
    const { clock, t, layer, stateOf } = await halfOpenB((request) =>
      request.url.endsWith("/y") ? new Response("b") : new Promise<Response>(() => {}),
    );
    const controller = new AbortController();
    const call = shown(layer.fetch("https://a.example/x", { signal: controller.signal }));
    await clock.advance(0);
    expect(t.log).toHaveLength(2);
    controller.abort(new Error("user left"));
    // The call settles at the abort (SECURITY.md), as documented.
    expect(await call).toBe("Error");
    expect(stateOf("b.example")).toBe("half_open");
    // Observed: CircuitOpenError b.example, nothing sent: the slot is still the hop's.
    expect(await shown(layer.fetch("https://b.example/y"))).toBe("200 b");
    expect(stateOf("b.example")).toBe("closed");
  });

  it("with a shared memoryStore(): a host another layer opened, now half-open, is no probe for this layer's hop; its 503 re-opens nothing", async () => {
    const clock = new TestClock(0);
    const store = memoryStore();
    const t = hostFetch({ "a.example": redirectToB, "b.example": () => new Response("busy", { status: 503 }) });
    const options = { clock, fetch: t.fetch, retry: false, breaker: BREAKER, store } as const;
    const first = createResilience(options);
    const second = createResilience(options);
    await first.fetch("https://b.example/open");
    expect(first.health().breakers["b.example"]?.state).toBe("open");
    await clock.advance(1000);
    // The second layer's redirect lands on b.example, half-open for any call made now: the hop is its probe.
    expect(await shown(second.fetch("https://a.example/x"))).toBe("503 busy");
    // Observed: half_open in the first layer, no entry in the second: the 503 reached no breaker.
    expect(first.health().breakers["b.example"]?.state).toBe("open");
    expect(await shown(first.fetch("https://b.example/y"))).toBe("CircuitOpenError b.example");
  });

  it("held: a hop cut by timeout.total frees the slot (neither), and the host's next call is its probe", async () => {
    const { clock, layer, stateOf } = await halfOpenB(
      (request, n) => (request.url.endsWith("/y") ? new Response(`b ${n}`) : hangs(request, n)),
      { timeout: { total: 100 } },
    );
    const call = shown(layer.fetch("https://a.example/x"));
    await clock.advance(0);
    await clock.advance(100);
    expect(await call).toBe("TimeoutError");
    expect(stateOf("b.example")).toBe("half_open");
    expect(await shown(layer.fetch("https://b.example/y"))).toMatch(/^200 b/);
    expect(stateOf("b.example")).toBe("closed");
  });

  it("held: hops through two half-open hosts and back to the first: each hop its host's probe, in events and health()", async () => {
    const clock = new TestClock(0);
    let down = true;
    const redirect = (location: string) => new Response(null, { status: 302, headers: { location } });
    const t = hostFetch({
      "a.example": (request) => (request.url.endsWith("/back") ? new Response("a") : redirect("https://b.example/x")),
      "b.example": () => (down ? new Response("down", { status: 503 }) : redirect("https://c.example/y")),
      "c.example": () => (down ? new Response("down", { status: 503 }) : redirect("https://a.example/back")),
    });
    const layer = createResilience({ clock, fetch: t.fetch, retry: false, breaker: BREAKER });
    await layer.fetch("https://b.example/o");
    await layer.fetch("https://c.example/o");
    await clock.advance(1000);
    down = false;
    const changes: string[] = [];
    layer.on("breaker", (e) => changes.push(`${e.key} ${e.from}->${e.to}`));
    expect(await shown(layer.fetch("https://a.example/x"))).toBe("200 a");
    expect(changes).toEqual([
      "b.example open->half_open",
      "b.example half_open->closed",
      "c.example open->half_open",
      "c.example half_open->closed",
    ]);
    const { breakers } = layer.health();
    expect([breakers["a.example"]?.state, breakers["b.example"]?.state, breakers["c.example"]?.state]).toEqual([
      "closed",
      "closed",
      "closed",
    ]);
  });
});

const policy: ResolvedBreakerPolicy = {
  failureThreshold: 1,
  successThreshold: 1,
  timeout: 1_000,
  halfOpenMaxCalls: 1,
  timeWindow: 10_000,
  probeTimeout: 5_000,
  failureRate: undefined,
  minimumCalls: 10,
};

describe("CHANGELOG.md: an async onChange or onFallback that rejects is reported, never left unhandled", () => {
  it("held: onChange on transitions made by isOpen(), hold() and reset(); onFallback for an entry passed over by skip", async () => {
    const reported: unknown[] = [];
    vi.stubGlobal("reportError", (error: unknown) => reported.push(error));
    const clock = new TestClock(0);
    const breaker = new CircuitBreaker("upscaler", policy, clock, {
      onChange: async (change) => Promise.reject(new Error(`${change.from}->${change.to}`)),
    });
    const { unhandled } = await watchUnhandled(async () => {
      breaker.hold(500, "Retry-After");
      await clock.advance(1_000);
      breaker.isOpen();
      breaker.reset();
      const chain = new FallbackChain<number, string>("images", { clock });
      chain.add(() => "primary", { name: "primary" }).add(() => "spare", { name: "spare" });
      return chain.run(1, {
        skip: (name) => (name === "primary" ? { reason: "held", error: new Error("held") } : undefined),
        onFallback: async () => Promise.reject(new Error("fallback hook")),
      });
    });
    expect(unhandled).toEqual([]);
    expect(reported.map((e) => (e as Error).message)).toEqual([
      "closed->open",
      "open->half_open",
      "half_open->closed",
      "fallback hook",
    ]);
  });
});
