import { describe, expect, it } from "vitest";
import type { BreakerSnapshot } from "../../src/core/breaker-snapshot.ts";
import { fallback } from "../../src/fallback/index.ts";
import type { CallRequest } from "../../src/http/request/call-request.ts";
import { sendAttempt } from "../../src/http/send/send-attempt.ts";
import {
  type BreakerStore,
  CircuitOpenError,
  createResilience,
  type ResilienceOptions,
  RetryExhaustedError,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const URL_ = "https://a.example/v1";

/** A transport that never answers, and rejects the way `reject` says when its signal aborts. */
function hanging(reject: (signal: AbortSignal) => unknown = (signal) => signal.reason) {
  const signals: AbortSignal[] = [];
  const fetch = (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const signal = init?.signal as AbortSignal;
    signals.push(signal);
    return new Promise((_resolve, fail) => signal.addEventListener("abort", () => fail(reject(signal))));
  };
  return { fetch, signals };
}

function recordingStore(probeAnswers: (boolean | string | undefined)[] = [], withRecord = true) {
  const records: [string, boolean, string | undefined][] = [];
  const store: BreakerStore = {
    name: "fake",
    publish: (_key: string, _snapshot: BreakerSnapshot) => {},
    peek: () => undefined,
    acquireProbe: async () => probeAnswers.shift(),
  };
  if (withRecord) store.record = (key, failed, _now, probe) => records.push([key, failed, probe]);
  return { store, records };
}

describe("sendAttempt", () => {
  it("rejects with the reason of a signal that aborted before the attempt, sending nothing", async () => {
    const controller = new AbortController();
    const reason = new Error("caller left");
    controller.abort(reason);
    let sent = 0;
    const counted = { attempts: 0 };
    const request: CallRequest = {
      url: URL_,
      method: "GET",
      headers: undefined,
      body: undefined,
      init: undefined,
      signal: controller.signal,
      replay: { allowed: true, oversize: undefined, sends: 0 },
      idempotent: true,
      callerUrl: URL_,
      original: undefined,
    };
    const attempt = sendAttempt(request, {
      transport: async () => {
        sent++;
        return new Response("ok");
      },
      clock: new TestClock(0),
      attemptTimeout: undefined,
      entry: undefined,
      sent: counted,
      attempts: 0,
      store: undefined,
      deadline: undefined,
      maxRetryAfter: 60_000,
      sync: undefined,
      registry: undefined,
      keyOf: (url: string) => new URL(url).host,
      ownTimeouts: undefined,
    });
    await expect(attempt).rejects.toBe(reason);
    expect([sent, counted.attempts, request.replay.sends]).toEqual([0, 0, 0]);
  });
});

describe("sendAttempt and the request's replay count", () => {
  it("counts each time the body is handed to the transport in replay.sends", async () => {
    const request: CallRequest = {
      url: URL_,
      method: "POST",
      headers: undefined,
      body: "payload",
      init: undefined,
      signal: undefined,
      replay: { allowed: true, oversize: undefined, sends: 0 },
      idempotent: true,
      callerUrl: URL_,
      original: undefined,
    };
    const scope = {
      transport: async () => new Response("ok"),
      clock: new TestClock(0),
      attemptTimeout: undefined,
      entry: undefined,
      sent: { attempts: 0 },
      attempts: 0,
      store: undefined,
      deadline: undefined,
      maxRetryAfter: 60_000,
      sync: undefined,
      registry: undefined,
      keyOf: (url: string) => new URL(url).host,
      ownTimeouts: undefined,
    };
    await sendAttempt(request, scope);
    expect(request.replay.sends).toBe(1);
    await sendAttempt(request, scope);
    expect([request.replay.sends, scope.sent.attempts]).toEqual([2, 2]);
  });
});

describe("an attempt and the bulkhead", () => {
  it("sends in the same turn as the call when a slot is free, as without a bulkhead", async () => {
    let sent = 0;
    const resilience = createResilience({
      clock: new TestClock(0),
      bulkhead: { maxConcurrent: 2 },
      fetch: async () => {
        sent++;
        return new Response("ok");
      },
    });
    const call = resilience.fetch(URL_);
    const sentAtOnce = sent;
    expect(await (await call).text()).toBe("ok");
    expect(sentAtOnce).toBe(1);
  });
});

describe("an attempt and the breaker store", () => {
  async function openThenProbe(probeAnswers: (boolean | string | undefined)[], halfOpenMaxCalls = 1) {
    const clock = new TestClock(0);
    const { store, records } = recordingStore(probeAnswers);
    let sent = 0;
    const resilience = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls, probeTimeout: 5_000 },
      fetch: async () => new Response(null, { status: sent++ === 0 ? 503 : 200 }),
    });
    await clock.run(resilience.fetch(URL_));
    await clock.advance(1_000);
    const call = () => clock.run(resilience.fetch(URL_)).catch((e: unknown) => e);
    return { call, records, sent: () => sent };
  }

  it("gives the half-open probe slot back when the store refuses the lease, so the next call probes", async () => {
    const { call, sent } = await openThenProbe([false, true]);
    expect(await call()).toBeInstanceOf(CircuitOpenError);
    expect(sent()).toBe(1);
    const probe = await call();
    expect((probe as Response).status).toBe(200);
    expect(sent()).toBe(2);
  });

  it.each([1, 2])(
    "a probe the store refuses says to retry when its own lease would have run out (%i local probe slots)",
    async (slots) => {
      const { call } = await openThenProbe([false], slots);
      expect(await call()).toMatchObject({ name: "CircuitOpenError", key: "a.example", retryAt: 6_000 });
    },
  );

  it("records a probe granted with `true` without a lease id", async () => {
    const { call, records } = await openThenProbe([true]);
    expect(((await call()) as Response).status).toBe(200);
    expect(records).toEqual([
      ["a.example", true, undefined],
      ["a.example", false, undefined],
    ]);
  });

  it("records a network error as a failure", async () => {
    const { store, records } = recordingStore();
    const resilience = createResilience({
      clock: new TestClock(0),
      store,
      retry: false,
      fetch: () => Promise.reject(new TypeError("fetch failed")),
    });
    await resilience.fetch(URL_).catch(() => {});
    expect(records).toEqual([["a.example", true, undefined]]);
  });

  it("records nothing for an attempt the caller aborted", async () => {
    const clock = new TestClock(0);
    const { store, records } = recordingStore();
    const { fetch } = hanging();
    const resilience = createResilience({ clock, store, retry: false, fetch });
    const controller = new AbortController();
    const call = resilience.fetch(URL_, { signal: controller.signal });
    clock.setTimer(() => controller.abort(new Error("left")), 10);
    await clock.run(call).catch(() => {});
    expect(records).toEqual([]);
  });

  it("works with a store that does not take records: a network error stays the cause", async () => {
    const { store } = recordingStore([], false);
    await expectNetworkErrorAsCause({ store });
  });
});

describe("an attempt without breakers", () => {
  it("rejects with the transport's error as the cause", async () => {
    await expectNetworkErrorAsCause({ breaker: false });
  });
});

/** A call whose one attempt fails with a network error rejects with that error as the cause. */
async function expectNetworkErrorAsCause(options: ResilienceOptions): Promise<void> {
  const failure = new TypeError("fetch failed");
  const resilience = createResilience({
    clock: new TestClock(0),
    retry: false,
    fetch: () => Promise.reject(failure),
    ...options,
  });
  const error = await resilience.fetch(URL_).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(RetryExhaustedError);
  expect((error as Error).cause).toBe(failure);
}

describe("the attempt timeout", () => {
  it("lets a call with the caller's signal and no total timeout through", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      timeout: { attempt: 1_000 },
      fetch: async () => new Response("ok"),
    });
    const response = await clock.run(resilience.fetch(URL_, { signal: new AbortController().signal }));
    expect(await response.text()).toBe("ok");
  });

  it("is the error even when the transport rejects with an AbortError of its own", async () => {
    const clock = new TestClock(0);
    const { fetch } = hanging(() => new DOMException("The operation was aborted.", "AbortError"));
    const resilience = createResilience({ clock, retry: false, timeout: { attempt: 500 }, fetch });
    const error = await clock.run(resilience.fetch(URL_)).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "TimeoutError", phase: "attempt" });
  });

  it("leaves a transport's own error alone when it did not fire", async () => {
    const failure = new TypeError("fetch failed");
    const resilience = createResilience({
      clock: new TestClock(0),
      retry: false,
      timeout: { attempt: 500 },
      fetch: () => Promise.reject(failure),
    });
    const error = await resilience.fetch(URL_).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as Error).cause).toBe(failure);
  });

  it("clears its timer when the transport fails before it fires", async () => {
    const clock = new TestClock(0);
    const failure = new TypeError("fetch failed");
    const resilience = createResilience({
      clock,
      retry: false,
      timeout: { attempt: 1_000 },
      fetch: () => Promise.reject(failure),
    });
    const error = await resilience.fetch(URL_).catch((e: unknown) => e);
    expect((error as Error).cause).toBe(failure);
    expect(clock.pending()).toBe(0);
  });

  it("rejects with a transport's synchronous throw as the cause, and leaves no timer", async () => {
    const clock = new TestClock(0);
    const failure = new TypeError("Illegal invocation");
    const resilience = createResilience({
      clock,
      retry: false,
      timeout: { attempt: 1_000 },
      // The platform follows redirects: the attempt calls this fetch itself, not the library's redirect loop.
      redirects: "platform",
      fetch: () => {
        throw failure;
      },
    });
    const error = await resilience.fetch(URL_).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as Error).cause).toBe(failure);
    expect(clock.pending()).toBe(0);
  });

  it("under a total timeout, passes the caller's abort on to the running attempt", async () => {
    const clock = new TestClock(0);
    const { fetch, signals } = hanging();
    const resilience = createResilience({ clock, retry: false, timeout: { attempt: 1_000, total: 5_000 }, fetch });
    const controller = new AbortController();
    const call = resilience.fetch(URL_, { signal: controller.signal }).catch((e: unknown) => e);
    await clock.advance(0);
    expect(signals).toHaveLength(1);
    const reason = new Error("caller left");
    controller.abort(reason);
    expect(signals[0]?.aborted).toBe(true);
    expect(await call).toBe(reason);
    expect(clock.pending()).toBe(0);
  });

  it("under a total timeout and the caller's signal, aborts the attempt when it times out", async () => {
    const clock = new TestClock(0);
    const { fetch, signals } = hanging();
    const resilience = createResilience({ clock, retry: false, timeout: { attempt: 1_000, total: 5_000 }, fetch });
    const call = resilience.fetch(URL_, { signal: new AbortController().signal }).catch((e: unknown) => e);
    await clock.advance(999);
    expect(signals[0]?.aborted).toBe(false);
    await clock.advance(1);
    expect(signals[0]?.aborted).toBe(true);
    expect(await call).toMatchObject({ name: "TimeoutError", phase: "attempt", timeout: 1_000 });
  });

  it("does not stop a hedged chain from aborting the losing endpoint under a total timeout", async () => {
    const clock = new TestClock(0);
    const slow = hanging();
    const resilience = createResilience({
      clock,
      retry: false,
      timeout: { attempt: 5_000, total: 10_000 },
      fallback: fallback([
        {
          name: "pair",
          endpoints: [
            { name: "slow", url: "https://slow.example" },
            { name: "fast", url: "https://fast.example" },
          ],
          hedge: { delay: 100 },
        },
      ]),
      fetch: (input, init) =>
        String(input).startsWith("https://slow.example")
          ? slow.fetch(input, init)
          : Promise.resolve(new Response("fast")),
    });
    const response = await clock.run(resilience.fetch("https://slow.example/x"));
    expect(await response.text()).toBe("fast");
    expect(clock.now()).toBe(100);
    expect(slow.signals).toHaveLength(1);
    expect(slow.signals[0]?.aborted).toBe(true);
  });
});
