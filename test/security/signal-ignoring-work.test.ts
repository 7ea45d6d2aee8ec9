/**
 * Outside-in attack on work that ignores its signal: a transport, a `respond`
 * or a `transform` that never settles must not hold a call past the caller's
 * abort, `timeout.attempt` or `timeout.total`. Public entries only. Each test
 * pinned a defect (it failed on the code it was written against); all are
 * fixed. (Split from streams-and-leftovers-attack.test.ts, whose child
 * processes need the built package, so that mutation runs include these.)
 */
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, isTimeoutError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** What a promise has done after a few real turns: `pending`, or how it settled. */
async function outcome(
  promise: Promise<unknown>,
): Promise<{ state: "pending" | "resolved" | "rejected"; value?: unknown }> {
  let seen: { state: "pending" | "resolved" | "rejected"; value?: unknown } = { state: "pending" };
  promise.then(
    (value) => {
      seen = { state: "resolved", value };
    },
    (value: unknown) => {
      seen = { state: "rejected", value };
    },
  );
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 1));
  return seen;
}

/** A transport (or endpoint) that never answers and never looks at its signal. */
const deaf = (): Promise<Response> => new Promise<Response>(() => {});

// ---------------------------------------------------------------------------

describe("calls whose work ignores its signal (docs/retry.md, docs/fallback.md, README)", () => {
  // docs/retry.md: "A caller's abort is never a failure: it stops the wait or the attempt at
  // once and rejects with `signal.reason`." and "`timeout.attempt` bounds one attempt's time
  // to response headers; `timeout.total` bounds the whole call up to the response headers".
  // README: `resilience.fetch` "rejects when it has none, or when the call is aborted or its
  // `timeout.total` passes". The `fetch` option is "the transport" (any fetch-like function,
  // docs/options.md). With a transport that does not honour the AbortSignal (an old polyfill,
  // a hand-written stub, a queue in front of fetch), none of the three ends the call: the
  // layer aborts the attempt's controller and then waits on the transport's promise for ever.
  // (The generic pieces, execute/retry(fn)/chain.execute, were fixed for the same sentence:
  // they settle at the abort through `untilAborted`; resilience.fetch does not.)
  it("the caller's abort, timeout.attempt and timeout.total each end a call whose transport ignores its signal", async () => {
    const reason = new Error("caller left");
    const controller = new AbortController();
    const aborted = createResilience({ fetch: deaf, retry: false }).fetch("http://deaf.example/a", {
      signal: controller.signal,
    });
    controller.abort(reason);
    const afterAbort = await outcome(aborted);

    const clock = new TestClock(0);
    const timedAttempt = createResilience({ clock, fetch: deaf, retry: false, timeout: { attempt: 1_000 } }).fetch(
      "http://deaf.example/b",
    );
    const timedTotal = createResilience({ clock, fetch: deaf, retry: false, timeout: { total: 1_000 } }).fetch(
      "http://deaf.example/c",
    );
    // Both now reject while the clock advances: handled from the start.
    for (const call of [timedAttempt, timedTotal]) call.catch(() => {});
    await clock.advance(1_000);
    const afterAttempt = await outcome(timedAttempt);
    const afterTotal = await outcome(timedTotal);

    expect(afterAbort).toEqual({ state: "rejected", value: reason });
    expect(afterAttempt.state).toBe("rejected");
    expect(isTimeoutError(afterAttempt.value) && afterAttempt.value.phase).toBe("attempt");
    expect(afterTotal.state).toBe("rejected");
    expect(isTimeoutError(afterTotal.value) && afterTotal.value.phase).toBe("total");
  });

  // The other side of the fix: an attempt given up on is retried, and an answer
  // the deaf transport gives after the abort is dropped with its body cancelled.
  it("an attempt timed out under a deaf transport is retried, and its late answer's body is cancelled", async () => {
    const clock = new TestClock(0);
    const late: Array<(response: Response) => void> = [];
    let calls = 0;
    const transport = (): Promise<Response> => {
      calls++;
      return calls === 1 ? new Promise<Response>((resolve) => late.push(resolve)) : Promise.resolve(new Response("ok"));
    };
    const resilience = createResilience({
      clock,
      fetch: transport,
      random: () => 0,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      timeout: { attempt: 1_000 },
    });
    const call = resilience.fetch("http://deaf.example/retried");
    await clock.advance(1_000);
    await clock.advance(10);
    const response = await call;
    expect([response.status, await response.text(), calls]).toEqual([200, "ok", 2]);
    let cancelled = false;
    const body = new ReadableStream({
      cancel: () => {
        cancelled = true;
      },
    });
    late[0]?.(new Response(body));
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(cancelled).toBe(true);
  });

  // docs/fallback.md: "An abort, or `timeout.total` passing, rejects the call with the caller's
  // reason or the `TimeoutError` even when an earlier endpoint's answer was turned down". A
  // `respond` endpoint (a cache lookup, user code) or an async `transform` that never settles
  // holds the call for ever: the chain's run (`FallbackChain.run`, which the layer uses) waits
  // on the entry without racing the signal, unlike `chain.execute`, which was fixed.
  it("an abort or timeout.total ends a chain call whose respond or transform never settles", async () => {
    const chains = fallback([
      {
        name: "cached",
        endpoints: [
          { name: "primary", url: "http://primary.example/v1" },
          { name: "cache", respond: deaf },
        ],
      },
      {
        name: "shaped",
        endpoints: [
          { name: "wan", url: "http://wan.example/v1", transform: () => new Promise(() => {}) },
          { name: "spare", url: "http://spare.example/v1" },
        ],
      },
    ]);
    const busy = async (): Promise<Response> => new Response("busy", { status: 503 });
    const reason = new Error("caller left");
    const controller = new AbortController();
    const plain = createResilience({ fallback: chains, fetch: busy, retry: false });
    const respondAborted = plain.fetch("http://primary.example/v1/job", { signal: controller.signal });
    const transformAborted = plain.fetch("http://wan.example/v1/job", { signal: controller.signal });
    // Each rejects while this test moves on: handled from the start.
    for (const call of [respondAborted, transformAborted]) call.catch(() => {});
    await outcome(respondAborted); // the primary answered 503; the cache is now running
    controller.abort(reason);

    const clock = new TestClock(0);
    const timed = createResilience({ clock, fallback: chains, fetch: busy, retry: false, timeout: { total: 1_000 } });
    const respondTimed = timed.fetch("http://primary.example/v1/job");
    const transformTimed = timed.fetch("http://wan.example/v1/job");
    for (const call of [respondTimed, transformTimed]) call.catch(() => {});
    await outcome(respondTimed);
    await clock.advance(1_000);

    expect(await outcome(respondAborted)).toEqual({ state: "rejected", value: reason });
    expect(await outcome(transformAborted)).toEqual({ state: "rejected", value: reason });
    for (const call of [respondTimed, transformTimed]) {
      const seen = await outcome(call);
      expect(seen.state).toBe("rejected");
      expect(isTimeoutError(seen.value) && seen.value.phase).toBe("total");
    }
  });
});
