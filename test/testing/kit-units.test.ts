import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Emitter } from "../../src/core/events.ts";
import { type BreakerEvent, type ResilienceEvents, resilienceEventNames } from "../../src/core/resilience-events.ts";
import type { Resilience } from "../../src/http/create-resilience.ts";
import { createResilience } from "../../src/index.ts";
import {
  type CorsPreflight,
  corsPreflight,
  type Fault,
  flaky,
  hang,
  json,
  latency,
  malformedJson,
  networkError,
  outage,
  recordEvents,
  seededRandom,
  sequence,
  status,
  stream,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";

/**
 * The fault builders, the recorder and the test clock called directly, with
 * no MSW server: a fault is a function of a request, so its answer can be
 * read as it is (kit-cases.ts drives the same builders through MSW).
 */

const request = (init?: RequestInit) => new Request("https://kit.example/v1", init);
const answer = (fault: Fault, attempt = 1, init?: RequestInit) => fault(request(init), { attempt });

describe("fault builders", () => {
  it("status: the code, a default or given body, extra headers, and Retry-After in seconds or as a date", async () => {
    const plain = await answer(status(503));
    expect(plain.status).toBe(503);
    expect(await plain.text()).toBe("status 503");
    expect(plain.headers.has("retry-after")).toBe(false);
    const seconds = await answer(status(429, { retryAfter: 0, body: "slow down", headers: { "x-a": "1" } }));
    expect(seconds.headers.get("retry-after")).toBe("0");
    expect(seconds.headers.get("x-a")).toBe("1");
    expect(await seconds.text()).toBe("slow down");
    const date = new Date(Date.UTC(2026, 10, 28, 12, 0, 0));
    expect((await answer(status(503, { retryAfter: date }))).headers.get("retry-after")).toBe(
      "Sat, 28 Nov 2026 12:00:00 GMT",
    );
    for (const code of [204, 304]) {
      const empty = await answer(status(code));
      expect(empty.status).toBe(code);
      expect(empty.body).toBeNull();
      // A body it would drop is refused: the test would check a body never sent.
      expect(() => status(code, { body: "dropped" })).toThrow(TypeError);
    }
  });

  it("json, malformedJson and networkError", async () => {
    const ok = await answer(json({ id: 1 }));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ id: 1 });
    expect((await answer(json({}, { status: 202 }))).status).toBe(202);
    const broken = await answer(malformedJson());
    expect(broken.status).toBe(200);
    expect(broken.headers.get("content-type")).toBe("application/json");
    expect(await broken.text()).toBe('{"id": "job_1", "status": ');
    expect((await answer(networkError())).type).toBe("error");
  });

  it("latency answers after its delay on the clock; an abort ends the wait as a network error", async () => {
    const clock = new TestClock(0);
    let settled: Response | undefined;
    void Promise.resolve(answer(latency(500, status(201), { clock }))).then((r) => {
      settled = r;
    });
    await clock.advance(499);
    expect(settled).toBeUndefined();
    await clock.advance(1);
    expect(settled?.status).toBe(201);

    const controller = new AbortController();
    const waiting = answer(latency(500, status(201), { clock }), 1, { signal: controller.signal });
    await clock.advance(100);
    expect(clock.pending()).toBe(1);
    controller.abort();
    expect((await waiting).type).toBe("error");
    expect(clock.pending()).toBe(0); // its timer is cancelled

    // Without a clock it waits on real timers (0 ms here).
    expect((await answer(latency(0, status(202)))).status).toBe(202);
  });

  it("hang answers only a network error, once the client aborts (or at once if it already has)", async () => {
    const aborted = new AbortController();
    aborted.abort();
    expect((await answer(hang(), 1, { signal: aborted.signal })).type).toBe("error");
    const controller = new AbortController();
    let settled: Response | undefined;
    void Promise.resolve(answer(hang(), 1, { signal: controller.signal })).then((r) => {
      settled = r;
    });
    await new Promise((r) => setTimeout(r, 0));
    expect(settled).toBeUndefined();
    controller.abort();
    await new Promise((r) => setTimeout(r, 0));
    expect(settled?.type).toBe("error");
  });

  it("stream: chunks on the clock's interval, its content type, and a broken stream's announced length", async () => {
    const clock = new TestClock(0);
    const res = await answer(stream(["a", "b"], { clock, interval: 100 }));
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    expect(res.headers.has("content-length")).toBe(false);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decode = (v: Uint8Array | undefined) => new TextDecoder().decode(v);
    expect(decode((await reader.read()).value)).toBe("a");
    let second: string | undefined;
    void reader.read().then((r) => {
      second = decode(r.value);
    });
    await clock.advance(99);
    expect(second).toBeUndefined();
    await clock.advance(1);
    expect(second).toBe("b");
    expect((await reader.read()).done).toBe(true);

    const typed = await answer(stream(["x"], { contentType: "application/x-ndjson" }));
    expect(typed.headers.get("content-type")).toBe("application/x-ndjson");
    expect(await typed.text()).toBe("x");

    const broken = await answer(stream(["é", "ab"], { breakAfter: 1, clock, interval: 50 }));
    expect(broken.headers.get("content-length")).toBe("4"); // bytes, not characters
    const brokenReader = (broken.body as ReadableStream<Uint8Array>).getReader();
    expect(decode((await brokenReader.read()).value)).toBe("é");
    let failure: unknown;
    void brokenReader.read().catch((e: unknown) => {
      failure = e;
    });
    await clock.advance(49);
    expect(failure).toBeUndefined();
    await clock.advance(1);
    expect(failure).toEqual(new TypeError("upstream connection broke mid-body"));

    // Without an interval it breaks 10 ms later on the clock.
    const soon = await answer(stream(["x"], { breakAfter: 0, clock }));
    let soonFailure: unknown;
    void soon.text().catch((e: unknown) => {
      soonFailure = e;
    });
    await clock.advance(9);
    expect(soonFailure).toBeUndefined();
    await clock.advance(1);
    expect(soonFailure).toBeInstanceOf(TypeError);
  });

  it("sequence repeats its last fault, or cycles", async () => {
    const faults = [status(500), status(502), status(200)];
    const codes = async (fault: Fault) =>
      Promise.all([1, 2, 3, 4, 5].map(async (n) => (await answer(fault, n)).status));
    expect(await codes(sequence(faults))).toEqual([500, 502, 200, 200, 200]);
    // biome-ignore lint/suspicious/noThenProperty: the option's name
    const repeatLast = { then: "repeat-last" } as const;
    // biome-ignore lint/suspicious/noThenProperty: the option's name
    const cycle = { then: "cycle" } as const;
    expect(await codes(sequence(faults, repeatLast))).toEqual([500, 502, 200, 200, 200]);
    expect(await codes(sequence(faults, cycle))).toEqual([500, 502, 200, 500, 502]);
    expect(() => sequence([])).toThrow(new TypeError("sequence(faults): expected at least one fault"));
  });

  it("each builder names what it refuses, when built", () => {
    const clock = new TestClock(0);
    const refusals: Array<[() => unknown, string]> = [
      [
        () => status(503, { retryAfter: -1 }),
        "status(code, { retryAfter }): expected whole seconds >= 0 (below 2^53) or a valid Date (years 0-9999), got -1",
      ],
      [() => json({}, { status: 99 }), "json(body, { status }): expected a status from 200 to 599, got 99"],
      [
        () => latency(1, status(200), { clock: {} as TestClock }),
        "latency(ms, then, { clock }): expected a clock (a TestClock, or { now(), setTimer() })",
      ],
      [
        () => stream(["a"], { stallAfter: 2 }),
        "stream(chunks, { stallAfter }): expected 0..1 (chunks sent first), got 2",
      ],
      [() => flaky(0.5, { seed: 1, fail: 1 as never }), "flaky(rate, { fail }): expected a fault (a function), got 1"],
      [() => flaky(0.5, { seed: 1, ok: 1 as never }), "flaky(rate, { ok }): expected a fault (a function), got 1"],
      [
        () => outage({ from: 0, until: 1, clock }, 1 as never, status(200)),
        "outage(window, during): expected a fault (a function), got 1",
      ],
      [
        () => outage({ from: 0, until: 1, clock }, status(503), 1 as never),
        "outage(window, during, otherwise): expected a fault (a function), got 1",
      ],
    ];
    for (const [build, message] of refusals) expect(build).toThrow(new TypeError(message));
    // The last chunk is a place to stall too.
    expect(() => stream(["a"], { stallAfter: 1 })).not.toThrow();
  });

  it("json refuses a status that carries no body when built; status(204|205|304) answers with none", async () => {
    for (const code of [204, 205, 304]) {
      expect(() => json({ a: 1 }, { status: code })).toThrow(
        new TypeError(`json(body, { status }): a ${code} carries no body; use status(${code})`),
      );
      const response = await answer(status(code), 1);
      expect(response.status).toBe(code);
      expect(await response.text()).toBe("");
    }
  });

  it("flaky fails exactly when its seeded draw is below the rate", async () => {
    const draws = seededRandom(3);
    const expected = Array.from({ length: 50 }, () => (draws() < 0.4 ? 503 : 200));
    const fault = flaky(0.4, { seed: 3 });
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) seen.push((await answer(fault, i + 1)).status);
    expect(seen).toEqual(expected);
    const never = flaky(0, { seed: 1 });
    const always = flaky(1, { seed: 1, fail: status(500), ok: status(204) });
    for (let i = 0; i < 20; i++) {
      expect((await answer(never)).status).toBe(200);
      expect((await answer(always)).status).toBe(500);
    }
    expect(await (await answer(never)).json()).toEqual({ ok: true });
    expect((await answer(flaky(0, { seed: 1, ok: status(204) }))).status).toBe(204);
    for (const rate of [-0.01, 1.01, Number.NaN]) {
      expect(() => flaky(rate, { seed: 1 })).toThrow(new TypeError(`flaky(rate): expected 0..1, got ${rate}`));
    }
  });

  it("outage answers `during` from `from` until just before `until`", async () => {
    const clock = new TestClock(999);
    const fault = outage({ from: 1_000, until: 2_000, clock }, status(503), status(200));
    const at = async (t: number) => {
      await clock.advance(t - clock.now());
      return (await answer(fault)).status;
    };
    expect(await at(999)).toBe(200);
    expect(await at(1_000)).toBe(503);
    expect(await at(1_999)).toBe(503);
    expect(await at(2_000)).toBe(200);
  });
});

describe("recordEvents", () => {
  const layer = (statuses: number[], options: Parameters<typeof createResilience>[0] = {}) => {
    let n = 0;
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      random: seededRandom(1),
      fetch: async () => new Response(null, { status: statuses[Math.min(n++, statuses.length - 1)] ?? 200 }),
      ...options,
    });
    return { clock, resilience, recorder: recordEvents(resilience) };
  };

  it("says what it expected and what it saw", async () => {
    const empty = layer([200]);
    expect(() => empty.recorder.expectBreakerOpened("a.example")).toThrow(
      new Error('expected the breaker for "a.example" to open (recorded: no events)'),
    );
    expect(() => empty.recorder.expectBreakerClosed("a.example")).toThrow(
      'expected the breaker for "a.example" to open and close again (recorded: no events)',
    );
    expect(() => empty.recorder.expectRetries(1)).toThrow("expected 1 retry, saw 0 (recorded: no events)");
    expect(() => empty.recorder.expectRetries(2, "a.example")).toThrow(
      'expected 2 retries for "a.example", saw 0 (recorded: no events)',
    );
    expect(() => empty.recorder.expectFallback("primary")).toThrow('expected a fallback from "primary" (recorded');
    expect(() => empty.recorder.expectFallback("primary", "spare")).toThrow(
      'expected a fallback from "primary" to "spare" (recorded',
    );
    expect(() => empty.recorder.expectDegradedTo("high")).toThrow(
      'expected the degradation level to become "high" (recorded: no events)',
    );
    empty.recorder.expectRetries(0);

    const { clock, resilience, recorder } = layer([503, 503, 200], { retry: { initialDelay: 10, maxDelay: 10 } });
    await clock.run(resilience.fetch("https://a.example/x"));
    recorder.expectRetries(2);
    recorder.expectRetries(2, "a.example");
    recorder.expectRetries(0, "b.example");
    expect(() => recorder.expectRetries(1)).toThrow(/^expected 1 retry, saw 2 \(recorded: (\w+, )+\w+\)$/);
    expect(recorder.events.map((e) => e.type)).toContain("retry");
    expect(recorder.of("retry").map((e) => e.key)).toEqual(["a.example", "a.example"]);
    expect(recorder.of("retry")[0]).not.toHaveProperty("type");
  });

  it("a breaker that opened and did not close again fails expectBreakerClosed; stop ends the recording", async () => {
    const { clock, resilience, recorder } = layer([503, 503, 200, 200], {
      retry: false,
      breaker: { failureThreshold: 2, timeout: 1_000, successThreshold: 1 },
    });
    await resilience.fetch("https://a.example/x");
    await resilience.fetch("https://a.example/x");
    recorder.expectBreakerOpened("a.example");
    expect(() => recorder.expectBreakerClosed("a.example")).toThrow(/to open and close again/);
    await clock.advance(1_000);
    await resilience.fetch("https://a.example/x");
    recorder.expectBreakerClosed("a.example");
    expect(() => recorder.expectBreakerClosed("b.example")).toThrow(/"b.example"/);
    const count = recorder.events.length;
    recorder.stop();
    await resilience.fetch("https://a.example/x");
    expect(recorder.events).toHaveLength(count);
  });
});

describe("TestClock", () => {
  it("fires due timers in time order, then in the order they were set, and moves to the target", async () => {
    const clock = new TestClock(100);
    const fired: string[] = [];
    clock.setTimer(() => fired.push(`b@${clock.now()}`), 20);
    clock.setTimer(() => fired.push(`a@${clock.now()}`), 10);
    clock.setTimer(() => fired.push(`c@${clock.now()}`), 20);
    clock.setTimer(() => fired.push(`now@${clock.now()}`), -5);
    const cancel = clock.setTimer(() => fired.push("cancelled"), 15);
    expect(clock.pending()).toBe(5);
    cancel();
    cancel();
    expect(clock.pending()).toBe(4);
    await clock.advance(15);
    expect(fired).toEqual(["now@100", "a@110"]);
    expect(clock.now()).toBe(115);
    await clock.advance(5);
    expect(fired).toEqual(["now@100", "a@110", "b@120", "c@120"]);
    expect(clock.pending()).toBe(0);
    await clock.advance(30);
    expect(clock.now()).toBe(150);
    expect(new TestClock().now()).toBe(0);
  });

  it("a timer set while advancing fires in the same advance when due", async () => {
    const clock = new TestClock(0);
    const fired: number[] = [];
    clock.setTimer(() => {
      fired.push(clock.now());
      clock.setTimer(() => fired.push(clock.now()), 5);
    }, 5);
    await clock.advance(10);
    expect(fired).toEqual([5, 10]);
  });

  it("run fires timers only while the promise is pending, and passes its value or error through", async () => {
    const clock = new TestClock(0);
    const late: number[] = [];
    clock.setTimer(() => late.push(clock.now()), 1_000);
    const value = await clock.run(
      new Promise<string>((resolve) => {
        clock.setTimer(() => resolve("done"), 200);
      }),
    );
    expect(value).toBe("done");
    expect(clock.now()).toBe(200);
    expect(late).toEqual([]);
    expect(await clock.run(Promise.resolve(7))).toBe(7);
    await expect(clock.run(Promise.reject(new Error("no")))).rejects.toThrow("no");
    expect(clock.pending()).toBe(1);
  });

  it("waitForTimers returns once enough timers are pending", async () => {
    const clock = new TestClock(0);
    setTimeout(() => clock.setTimer(() => {}, 1), 0);
    setTimeout(() => clock.setTimer(() => {}, 1), 0);
    await clock.waitForTimers(2);
    expect(clock.pending()).toBe(2);
    await clock.waitForTimers();
  });

  it("refuses a missing promise and a count no timers can meet, naming the argument (docs/testing.md)", async () => {
    const clock = new TestClock(0);
    for (const bad of [Number.NaN, -1, 1.5]) {
      await expect(clock.waitForTimers(bad as number)).rejects.toThrow(
        new TypeError(`TestClock.waitForTimers(count): expected a whole number >= 0, got ${String(bad)}`),
      );
    }
    // Text is quoted, so "2" is not read as the number 2; a symbol or an object is named by its kind.
    const docs = readFileSync(new URL("../../docs/testing.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(docs).toContain(
      "The kit's messages show a refused value as the layer's own refusals do: text in quotes (`got \"2\"`), so it is not read as the number (text that is no plain word as `a string`), an object or a symbol by its kind.",
    );
    await expect(clock.waitForTimers("2" as never)).rejects.toThrow(
      new TypeError('TestClock.waitForTimers(count): expected a whole number >= 0, got "2"'),
    );
    await expect(clock.waitForTimers(Object.create(null))).rejects.toThrow(
      new TypeError("TestClock.waitForTimers(count): expected a whole number >= 0, got an object"),
    );
    expect(() => status(Symbol("s") as never)).toThrow(
      new TypeError("status(code): expected a status from 200 to 599, got a symbol"),
    );
    // A wait, an interval, a rate or a window given as text or a symbol is refused, not coerced, and named.
    const none = () => new Response("x");
    const refusals: Array<[() => unknown, string]> = [
      [() => latency("5" as never, none), 'latency(ms): expected ms >= 0, got "5"'],
      [() => latency(Symbol("w") as never, none), "latency(ms): expected ms >= 0, got a symbol"],
      [() => stream(["a"], { interval: "1" as never }), 'stream(chunks, { interval }): expected ms >= 0, got "1"'],
      [() => flaky("0.5" as never, { seed: 1 }), 'flaky(rate): expected 0..1, got "0.5"'],
      [() => flaky(Symbol("r") as never, { seed: 1 }), "flaky(rate): expected 0..1, got a symbol"],
      [
        () => outage({ from: "0" as never, until: 5, clock }, none, none),
        'outage({ from, until }): expected from <= until, got "0" and 5',
      ],
    ];
    for (const [build, message] of refusals) expect(build).toThrow(new TypeError(message));
    // A `then` of no kind is named too: a symbol was "got undefined", a BigInt threw JSON's own error.
    for (const [then, shown] of [
      [Symbol("t"), "a symbol"],
      [1n, "a bigint"],
      [Object("cycle"), "an object"],
    ] as const) {
      // biome-ignore lint/suspicious/noThenProperty: sequence's own option is named then
      const options = { then: then as never };
      expect(() => sequence([none], options)).toThrow(
        new TypeError(`sequence(faults, { then }): expected "repeat-last" or "cycle", got ${shown}`),
      );
    }
    await expect(clock.waitForTimers(Object("2"))).rejects.toThrow(
      new TypeError("TestClock.waitForTimers(count): expected a whole number >= 0, got an object"),
    );
    await clock.waitForTimers(0);
    await expect(clock.run(undefined as unknown as Promise<number>)).rejects.toThrow(
      new TypeError("TestClock.run(promise): expected a promise, got undefined"),
    );
    await expect(clock.run(null as unknown as Promise<number>)).rejects.toThrow("got null");
    // A thenable that is no Promise still runs.
    // biome-ignore lint/suspicious/noThenProperty: the point of the test is a thenable
    const thenable = Object.defineProperty({}, "then", { value: (resolve: (v: number) => void) => resolve(3) });
    expect(await clock.run(thenable as Promise<number>)).toBe(3);
    expect(clock.pending()).toBe(0);
  });
});

describe("the builders' options and the recorder's counts (docs/testing.md)", () => {
  it("refuses options that are no object, naming the builder", () => {
    const ok = status(200);
    expect(() => status(503, null as never)).toThrow(
      new TypeError("status(code, options): expected an object, got null"),
    );
    expect(() => json({}, null as never)).toThrow(new TypeError("json(body, init): expected an object, got null"));
    expect(() => stream(["a"], null as never)).toThrow(
      new TypeError("stream(chunks, options): expected an object, got null"),
    );
    expect(() => sequence([ok], 5 as never)).toThrow(
      new TypeError("sequence(faults, options): expected an object, got 5"),
    );
    expect(() => latency(1, ok, null as never)).toThrow(
      new TypeError("latency(ms, then, source): expected an object, got null"),
    );
  });

  it("refuses a key it does not know, which would leave the fault on its default, naming the builder and the key", () => {
    const guide = readFileSync(new URL("../../docs/testing.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain(
      "or that name a key the builder does not know, such as `status(503, { retryAfer: 2 })` or `corsPreflight({ allowHeader: […] })`, which would leave the fault on its default and the test proving nothing",
    );
    const ok = status(200);
    const clock = new TestClock();
    const cases: [() => unknown, string][] = [
      [
        () => status(503, { retryAfer: 2 } as never),
        'status(code, options): unknown option "retryAfer", expected one of retryAfter, body, headers',
      ],
      [
        () => json({}, { stauts: 201 } as never),
        'json(body, init): unknown option "stauts", expected one of status, statusText, headers',
      ],
      [
        () => stream(["a"], { intervall: 5 } as never),
        'stream(chunks, options): unknown option "intervall", expected one of interval, stallAfter, breakAfter, contentType, clock',
      ],
      [
        () => sequence([ok], { than: "cycle" } as never),
        'sequence(faults, options): unknown option "than", expected one of then',
      ],
      [
        () => flaky(0.5, { seed: 1, fial: ok } as never),
        'flaky(rate, options): unknown option "fial", expected one of seed, fail, ok',
      ],
      [
        () => outage({ from: 0, until: 1, clock, util: 2 } as never, ok, ok),
        'outage(window): unknown option "util", expected one of from, until, clock',
      ],
      [
        () => latency(1, ok, { clok: clock } as never),
        'latency(ms, then, source): unknown option "clok", expected one of clock',
      ],
      [
        () => corsPreflight({ allowHeader: ["content-type"] } as never),
        'corsPreflight(policy): unknown option "allowHeader", expected one of allowHeaders, exposeHeaders',
      ],
      // A key that could hold a secret is named by its kind, as every refused value is.
      [
        () => status(503, { "https://a.example/?key=sk_live_1": 1 } as never),
        "status(code, options): unknown option a string, expected one of retryAfter, body, headers",
      ],
    ];
    for (const [build, message] of cases) expect(build).toThrow(new TypeError(message));
    expect(() => stream(["a"], { interval: 1, stallAfter: 1, contentType: "text/plain", clock })).not.toThrow();
    expect(() => corsPreflight({ allowHeaders: ["content-type"], exposeHeaders: "*" })).not.toThrow();
  });

  it("expectRetries refuses a count no run can reach", () => {
    const resilience = createResilience();
    const recorder = recordEvents(resilience);
    for (const bad of [-1, 1.5, Number.NaN]) {
      expect(() => recorder.expectRetries(bad)).toThrow(
        new TypeError(`expectRetries(count): expected a whole number >= 0, got ${String(bad)}`),
      );
    }
    recorder.expectRetries(0);
    expect(() => recorder.expectRetries(1)).toThrow("expected 1 retry, saw 0");
    recorder.stop();
  });
});

describe("TestClock's idle limits, on vitest's fake timers (20 000 idle turns pass without real time)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /**
   * Fires the kit's real-turn timers (faked) one at a time, letting its loop
   * reach its next turn between them, until `done()` or `limit` turns.
   */
  async function turnUntil(done: () => boolean, limit: number): Promise<void> {
    for (let turns = 0; !done() && turns < limit; turns++) {
      vi.advanceTimersToNextTimer();
      await new Promise<void>((resolve) => setImmediate(resolve)); // not faked: drains the microtasks
    }
  }

  /** The outcome of `promise` as it stands: "pending", its value, or its error. */
  function watch(promise: Promise<unknown>): () => unknown {
    let outcome: unknown = "pending";
    promise.then(
      (value) => {
        outcome = value;
      },
      (error: unknown) => {
        outcome = error;
      },
    );
    return () => outcome;
  }

  it("run rejects a promise that never settles and schedules no timer, with the kit's message", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const clock = new TestClock(0);
    const outcome = watch(clock.run(new Promise<never>(() => {})));
    await turnUntil(() => outcome() !== "pending", 100_000);
    expect(outcome()).toEqual(new Error("TestClock.run: the promise never settled and no timer is pending"));
  });

  it("run keeps waiting, without a timer, for a promise settled from outside", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const clock = new TestClock(0);
    let resolve: (value: string) => void = () => {};
    const outcome = watch(clock.run(new Promise<string>((r) => (resolve = r))));
    await turnUntil(() => false, 30); // ten idle rounds of three turns
    expect(outcome()).toBe("pending");
    resolve("late");
    await turnUntil(() => outcome() !== "pending", 10);
    expect(outcome()).toBe("late");
    expect(clock.now()).toBe(0);
  });

  it("run fires no timer once the promise settled during its real turns", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const clock = new TestClock(0);
    const late: number[] = [];
    clock.setTimer(() => late.push(clock.now()), 1_000);
    let resolve: (value: string) => void = () => {};
    const outcome = watch(clock.run(new Promise<string>((r) => (resolve = r))));
    await turnUntil(() => false, 2); // run is now in its real turns, as when it waits on I/O
    resolve("io");
    await turnUntil(() => outcome() !== "pending", 20);
    expect(outcome()).toBe("io");
    expect(late).toEqual([]);
    expect(clock.now()).toBe(0);
    expect(clock.pending()).toBe(1);
  });

  it("run settles work that needs no I/O within microtasks, before taking a real turn", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const clock = new TestClock(0);
    const chained = Promise.resolve(6).then((n) => n + 1);
    const outcome = watch(clock.run(chained));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(outcome()).toBe(7);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("waitForTimers rejects with the kit's message when the count is never reached", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const clock = new TestClock(0);
    clock.setTimer(() => {}, 1);
    const outcome = watch(clock.waitForTimers(2));
    await turnUntil(() => outcome() !== "pending", 50_000);
    expect(outcome()).toEqual(new Error("TestClock: 2 timer(s) never got scheduled"));
  });
});

describe("corsPreflight, its handler and respond called directly", () => {
  /** What the preflight handler answers for `OPTIONS` asking for `headers` (none: no such header). */
  const preflight = async (cors: CorsPreflight, headers?: string): Promise<Response | undefined> => {
    const asking: Record<string, string> = { "access-control-request-method": "POST" };
    if (headers !== undefined) asking["access-control-request-headers"] = headers;
    const request = new Request("https://strict.example/v1", { method: "OPTIONS", headers: asking });
    return (await cors.run({ request, requestId: "preflight" }))?.response;
  };
  /** What page code would get under `cors` for a request with `headers`, and whether the upstream saw it. */
  const through = async (cors: CorsPreflight, headers: Record<string, string>, fault: Fault = json({ ok: 1 })) => {
    let seen = 0;
    const wrapped = cors.respond((request, info) => {
      seen++;
      return fault(request, info);
    });
    const answer = await wrapped(new Request("https://strict.example/v1", { method: "POST", headers }), {
      attempt: 1,
    });
    return { answer, seen };
  };

  it("checks its policy: an object, with '*' or a list of valid header names", () => {
    expect(() => corsPreflight(null as never)).toThrow(
      new TypeError("corsPreflight(policy): expected an object, got null"),
    );
    expect(() => corsPreflight("strict" as never)).toThrow(
      new TypeError('corsPreflight(policy): expected an object, got "strict"'),
    );
    // A header name it refuses is named by its kind, as the layer names one (the redaction run, sixty-fourth session).
    expect(() => corsPreflight({ allowHeaders: ["x-ok", "bad name"] })).toThrow(
      new TypeError('corsPreflight({ allowHeaders }): expected "*" or an array of header names, got a string at 1'),
    );
    expect(() => corsPreflight({ exposeHeaders: [42 as never] })).toThrow(
      new TypeError('corsPreflight({ exposeHeaders }): expected "*" or an array of header names, got 42 at 0'),
    );
    expect(() => corsPreflight({ allowHeaders: "*", exposeHeaders: "*" })).not.toThrow();
    expect(() => corsPreflight({ allowHeaders: ["X-B3-TraceId", "x_v2.id", "!#$%&'*+^`|~"] })).not.toThrow();
  });

  it("the preflight answers the policy's allowed headers, methods and max-age, or refuses", async () => {
    const strict = corsPreflight({ allowHeaders: ["Authorization", "x-trace"] });
    const ok = await preflight(strict, " Authorization , X-Trace,");
    expect(ok?.status).toBe(204);
    expect(Object.fromEntries(ok?.headers ?? [])).toEqual({
      "access-control-allow-origin": "*",
      "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
      "access-control-allow-headers": "authorization, x-trace",
      "access-control-max-age": "600",
    });
    // No header asked for; content-type asked for (its value is not in a preflight); a safelisted one.
    expect((await preflight(strict))?.status).toBe(204);
    expect((await preflight(strict, "content-type, accept"))?.status).toBe(204);
    expect((await preflight(strict, "authorization, idempotency-key"))?.type).toBe("error");

    for (const permissive of [corsPreflight(), corsPreflight({ allowHeaders: "*" })]) {
      const any = await preflight(permissive, "x-anything, idempotency-key");
      expect(any?.status).toBe(204);
      expect(any?.headers.get("access-control-allow-headers")).toBe("*");
      expect(any?.headers.get("access-control-max-age")).toBe("600");
    }
  });

  it("respond refuses a header the policy does not allow, judging content-type by its value", async () => {
    const strict = corsPreflight({ allowHeaders: [] });
    const passes = [
      { accept: "application/json" },
      { "accept-language": "fr" },
      { "content-language": "de" },
      { "content-type": "text/plain" },
      { "content-type": "Text/Plain ; charset=utf-8" },
      { "content-type": "application/x-www-form-urlencoded" },
      { "content-type": "multipart/form-data; boundary=x" },
    ];
    for (const headers of passes) {
      const { answer, seen } = await through(strict, headers);
      expect([headers, answer.status, seen]).toEqual([headers, 200, 1]);
    }
    for (const headers of [
      { "content-type": "application/json" },
      { authorization: "Bearer t" },
      { "x-sec-id": "1" },
    ]) {
      const { answer, seen } = await through(strict, headers);
      expect([headers, answer.type, seen]).toEqual([headers, "error", 0]);
    }
    const allowing = corsPreflight({ allowHeaders: ["Content-Type", "Authorization"] });
    expect((await through(allowing, { "content-type": "application/json", authorization: "t" })).answer.status).toBe(
      200,
    );
    for (const permissive of [corsPreflight(), corsPreflight({ allowHeaders: "*" })]) {
      expect((await through(permissive, { "x-anything": "1", "content-type": "application/json" })).seen).toBe(1);
    }
  });

  it("respond never asks about headers the runtime sets, nor sec- and proxy- headers", async () => {
    const strict = corsPreflight({ allowHeaders: [] });
    const runtimeSet = [
      "accept-charset",
      "accept-encoding",
      "connection",
      "content-length",
      "cookie",
      "date",
      "dnt",
      "expect",
      "host",
      "keep-alive",
      "origin",
      "referer",
      "te",
      "trailer",
      "transfer-encoding",
      "upgrade",
      "user-agent",
      "via",
      "sec-fetch-mode",
      "proxy-authorization",
    ];
    for (const name of runtimeSet) {
      const { answer, seen } = await through(strict, { [name]: name === "content-length" ? "0" : "x" });
      expect([name, answer.status, seen]).toEqual([name, 200, 1]);
    }
  });

  it("respond hides unexposed headers but the safelisted ones, and lists the exposed ones", async () => {
    const headers = {
      "cache-control": "no-store",
      "content-language": "en",
      "content-length": "2",
      "content-type": "text/plain",
      expires: "0",
      "last-modified": "Sat, 28 Nov 2026 12:00:00 GMT",
      pragma: "no-cache",
      "retry-after": "2",
      "x-a": "1",
      "x-b": "2",
    };
    const answering = (): Fault => () => new Response("ok", { status: 418, statusText: "Teapot", headers });

    const hidden = (await through(corsPreflight({ exposeHeaders: [] }), {}, answering())).answer;
    expect(hidden.status).toBe(418);
    expect(hidden.statusText).toBe("Teapot");
    expect(await hidden.text()).toBe("ok");
    const { "retry-after": _retry, "x-a": _a, "x-b": _b, ...safelisted } = headers;
    expect(Object.fromEntries(hidden.headers)).toEqual({ ...safelisted, "access-control-allow-origin": "*" });

    const two = (await through(corsPreflight({ exposeHeaders: ["X-A", "retry-after"] }), {}, answering())).answer;
    expect(two.headers.get("x-a")).toBe("1");
    expect(two.headers.get("retry-after")).toBe("2");
    expect(two.headers.get("x-b")).toBeNull();
    expect(two.headers.get("access-control-expose-headers")).toBe("x-a, retry-after");

    for (const permissive of [corsPreflight(), corsPreflight({ exposeHeaders: "*" })]) {
      const all = (await through(permissive, {}, answering())).answer;
      expect(Object.fromEntries(all.headers)).toEqual({
        ...headers,
        "access-control-allow-origin": "*",
        "access-control-expose-headers": "*",
      });
    }
  });

  it("respond passes an error answer (a network error) through as it is", async () => {
    for (const cors of [corsPreflight(), corsPreflight({ exposeHeaders: ["x-a"] })]) {
      const { answer, seen } = await through(cors, {}, networkError());
      expect(seen).toBe(1);
      expect(answer.type).toBe("error");
    }
  });
});

describe("upstream", () => {
  it("records a GET's body as empty text, beside the bodies of the other methods", async () => {
    const get = upstream("GET", "https://kit.example/v1", json({}));
    await get.handler.run({ request: new Request("https://kit.example/v1"), requestId: "1" });
    expect(get.bodies).toEqual([""]);
    const post = upstream("POST", "https://kit.example/v1", json({}));
    await post.handler.run({
      request: new Request("https://kit.example/v1", { method: "POST", body: "prompt" }),
      requestId: "2",
    });
    expect(post.bodies).toEqual(["prompt"]);
  });

  it("refuses a method, a URL or a fault it cannot use, at once and naming it (docs/testing.md)", () => {
    const doc = readFileSync(new URL("../../docs/testing.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain("an `upstream` method it does not know, or a URL that is no text)");
    expect(doc).toContain(
      "`recordEvents` given anything but a layer (a ky instance, `undefined`) is a `TypeError` too.",
    );
    expect(() => upstream(Symbol("GET") as never, "https://kit.example/v1", "x" as never)).toThrow(
      new TypeError("upstream(method): expected an HTTP method, got a symbol"),
    );
    expect(() => upstream("GET", new URL("https://kit.example/v1") as never, json({}))).toThrow(
      new TypeError("upstream(method, url): expected a URL as text, got an object"),
    );
    expect(() => upstream("GET", "https://kit.example/v1?key=sk-9", "x" as never)).toThrow(
      new TypeError("upstream(GET, https://kit.example/v1, fault): fault must be a function"),
    );
    expect(() => recordEvents(undefined as never)).toThrow(
      new TypeError("recordEvents(resilience): expected a layer from createResilience, got undefined"),
    );
    expect(() => recordEvents((() => {}) as never)).toThrow(
      new TypeError("recordEvents(resilience): expected a layer from createResilience, got a function"),
    );
  });
});

describe("recordEvents, near misses", () => {
  /** A recorder over a bare emitter: the test emits exactly the events it wants. */
  const recorderOf = (emit: (emitter: Emitter<ResilienceEvents>) => void) => {
    const emitter = new Emitter<ResilienceEvents>(resilienceEventNames);
    const recorder = recordEvents({ on: emitter.on.bind(emitter) } as unknown as Resilience);
    emit(emitter);
    return recorder;
  };
  const breaker = (key: string, from: BreakerEvent["from"], to: BreakerEvent["to"]): BreakerEvent => ({
    key,
    from,
    to,
    reason: null,
    gen: 1,
    openUntil: null,
  });

  it("expectBreakerOpened wants that key, opening", () => {
    const other = recorderOf((e) => e.emit("breaker", breaker("b.example", "closed", "open")));
    expect(() => other.expectBreakerOpened("a.example")).toThrow('expected the breaker for "a.example" to open');
    other.expectBreakerOpened("b.example");
    const halfOpen = recorderOf((e) => e.emit("breaker", breaker("a.example", "open", "half_open")));
    expect(() => halfOpen.expectBreakerOpened("a.example")).toThrow(/to open \(recorded: breaker\)$/);
  });

  it("expectBreakerClosed wants a close of that key after its open", () => {
    const closeFirst = recorderOf((e) => {
      e.emit("breaker", breaker("a.example", "half_open", "closed"));
      e.emit("breaker", breaker("a.example", "closed", "open"));
    });
    expect(() => closeFirst.expectBreakerClosed("a.example")).toThrow(/to open and close again/);
    const closeOnly = recorderOf((e) => e.emit("breaker", breaker("a.example", "half_open", "closed")));
    expect(() => closeOnly.expectBreakerClosed("a.example")).toThrow(/to open and close again/);
    const otherKey = recorderOf((e) => {
      e.emit("breaker", breaker("a.example", "closed", "open"));
      e.emit("breaker", breaker("b.example", "half_open", "closed"));
    });
    expect(() => otherKey.expectBreakerClosed("a.example")).toThrow(/"a.example"/);
    const reopened = recorderOf((e) => {
      e.emit("breaker", breaker("a.example", "half_open", "closed"));
      e.emit("breaker", breaker("a.example", "closed", "open"));
      e.emit("breaker", breaker("a.example", "open", "half_open"));
      e.emit("breaker", breaker("a.example", "half_open", "closed"));
    });
    reopened.expectBreakerClosed("a.example");
  });

  it("expectFallback wants that endpoint left, for that next one when given", () => {
    const recorder = recorderOf((e) =>
      e.emit("fallback", { chain: "gen", from: "primary", reason: "status 503", next: "spare" }),
    );
    recorder.expectFallback("primary");
    recorder.expectFallback("primary", "spare");
    expect(() => recorder.expectFallback("primary", "backup")).toThrow(
      'expected a fallback from "primary" to "backup" (recorded: fallback)',
    );
    expect(() => recorder.expectFallback("spare")).toThrow('expected a fallback from "spare" (recorded: fallback)');
    expect(() => recorder.expectFallback("spare", "spare")).toThrow(/from "spare" to "spare"/);
  });

  it("expectDegradedTo wants that level", () => {
    const recorder = recorderOf((e) =>
      e.emit("degradation", { from: "full", to: "medium", percentage: 60, reason: "error rate" }),
    );
    recorder.expectDegradedTo("medium");
    expect(() => recorder.expectDegradedTo("high")).toThrow(
      'expected the degradation level to become "high" (recorded: degradation)',
    );
  });
});

describe("TestClock's longest delay", () => {
  it("waits 2^31 - 1 ms at most, as setTimeout does: run() never takes time to Infinity", async () => {
    const clock = new TestClock(0);
    let fired = 0;
    clock.setTimer(() => fired++, Number.POSITIVE_INFINITY);
    await clock.run(new Promise<void>((resolve) => clock.setTimer(resolve, 3e9)));
    expect(clock.now()).toBe(2_147_483_647);
    expect(fired).toBe(1);
  });
});

describe("TestClock and a timer that throws", () => {
  it("rejects advance() and run() with its error, time left at that timer's", async () => {
    const boom = new Error("boom");
    const clock = new TestClock(0);
    clock.setTimer(() => {
      throw boom;
    }, 10);
    await expect(clock.advance(20)).rejects.toBe(boom);
    expect(clock.now()).toBe(10);
    clock.setTimer(() => {
      throw boom;
    }, 5);
    await expect(clock.run(new Promise(() => {}))).rejects.toBe(boom);
    expect(clock.now()).toBe(15);
  });
});
