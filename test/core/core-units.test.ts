import { getEventListeners } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type Clock, ownClock, systemClock, unrefTimer } from "../../src/core/clock.ts";
import {
  BulkheadRejectedError,
  CircuitOpenError,
  ConfigError,
  FallbackExhaustedError,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isConfigError,
  isFallbackExhaustedError,
  isResilienceError,
  isRetryExhaustedError,
  isTimeoutError,
  ResilienceError,
  RetryExhaustedError,
  TimeoutError,
} from "../../src/core/errors.ts";
import { Emitter } from "../../src/core/events.ts";
import { defaultLevels, LEVEL_NAMES } from "../../src/core/levels.ts";
import { LruMap } from "../../src/core/lru-map.ts";
import { checkOptions, type Refine, type Table } from "../../src/core/options/check-options.ts";
import { seededRandom, systemRandom } from "../../src/core/random.ts";
import { resilienceEventNames } from "../../src/core/resilience-events.ts";
import { sleep } from "../../src/core/sleep.ts";
import { TestClock } from "../../src/testing/index.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

/** The small building blocks of src/core, each through its own API. */

describe("LruMap", () => {
  it("evicts the least recently used entry, a read counting as use and a peek not", () => {
    const map = new LruMap<string, number>(2);
    map.set("a", 1);
    map.set("b", 2);
    expect(map.get("a")).toBe(1); // a is now the most recent
    map.set("c", 3);
    expect(map.peek("b")).toBeUndefined();
    expect(map.peek("a")).toBe(1); // a stays the oldest
    map.set("d", 4);
    expect(map.peek("a")).toBeUndefined();
    expect([...map.entries()]).toEqual([
      ["c", 3],
      ["d", 4],
    ]);
    expect(map.size).toBe(2);
  });

  it("an entry freed past its size goes at once; within its size it stays", () => {
    const busy = new Set<number>([1, 2, 3]);
    const map = new LruMap<string, number>(2, (v) => busy.has(v));
    map.set("a", 1);
    map.set("b", 2);
    map.set("c", 3); // all in use: three kept
    busy.delete(2);
    map.freed("b");
    expect([...map.entries()].map(([k]) => k)).toEqual(["a", "c"]);
    busy.delete(1);
    map.freed("a"); // back within its size: kept for reuse
    expect([...map.entries()].map(([k]) => k)).toEqual(["a", "c"]);
  });

  it("a set of a present key refreshes it without evicting; delete and clear", () => {
    const map = new LruMap<string, number>(2);
    map.set("a", 1);
    map.set("b", 2);
    map.set("a", 10);
    map.set("c", 3);
    expect([...map.entries()]).toEqual([
      ["a", 10],
      ["c", 3],
    ]);
    expect(map.get("missing")).toBeUndefined();
    expect(map.delete("a")).toBe(true);
    expect(map.delete("a")).toBe(false);
    expect(map.size).toBe(1);
    map.clear();
    expect(map.size).toBe(0);
    expect(map.peek("c")).toBeUndefined();
  });

  it("never evicts an entry in use: the oldest one free goes, and with none free it grows until one is", () => {
    const busy = new Set<number>();
    const map = new LruMap<string, number>(2, (v) => busy.has(v));
    map.set("a", 1);
    map.set("b", 2);
    busy.add(1);
    map.set("c", 3); // a is the oldest but in use: b goes
    expect([...map.entries()].map(([k]) => k)).toEqual(["a", "c"]);
    busy.add(3);
    map.set("d", 4); // every other entry in use: three kept
    expect([...map.entries()].map(([k]) => k)).toEqual(["a", "c", "d"]);
    busy.clear();
    map.set("e", 5); // all free again: the oldest go until the map is back to its size
    expect([...map.entries()].map(([k]) => k)).toEqual(["d", "e"]);
  });

  it("never grows past its cap: there the oldest go even in use", () => {
    const map = new LruMap<string, number>(2, () => true, 4);
    for (const [i, key] of ["a", "b", "c", "d"].entries()) map.set(key, i);
    expect([...map.entries()].map(([k]) => k)).toEqual(["a", "b", "c", "d"]);
    map.set("e", 4);
    expect([...map.entries()].map(([k]) => k)).toEqual(["b", "c", "d", "e"]);
    map.set("f", 5);
    expect([...map.entries()].map(([k]) => k)).toEqual(["c", "d", "e", "f"]);
  });

  it("an undefined value is not moved by a read", () => {
    const map = new LruMap<string, number | undefined>(2);
    map.set("u", undefined);
    map.set("b", 2);
    map.get("u");
    expect([...map.entries()].map(([k]) => k)).toEqual(["u", "b"]);
  });
});

describe("seededRandom", () => {
  it("is mulberry32: the same seed gives the same values in [0, 1)", () => {
    const reference = (seed: number) => {
      let a = seed >>> 0;
      return () => {
        a = (a + 0x6d2b79f5) | 0;
        let t = Math.imul(a ^ (a >>> 15), 1 | a);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    };
    for (const seed of [0, 1, 42, 2 ** 32 - 1, -7]) {
      const ours = seededRandom(seed);
      const theirs = reference(seed);
      for (let i = 0; i < 50; i++) expect(ours()).toBe(theirs());
    }
    const values = Array.from({ length: 1000 }, seededRandom(9));
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
    expect(new Set(values).size).toBeGreaterThan(990);
    const r = systemRandom();
    expect(r).toBeGreaterThanOrEqual(0);
    expect(r).toBeLessThan(1);
  });
});

describe("sleep", () => {
  it("waits on the clock, and resolves at once for 0 ms without a signal", async () => {
    const clock = new TestClock(0);
    let done = false;
    void sleep(clock, 100).then(() => {
      done = true;
    });
    await clock.advance(99);
    expect(done).toBe(false);
    await clock.advance(1);
    expect(done).toBe(true);
    await sleep(clock, 0);
    await sleep(clock, -5);
    expect(clock.pending()).toBe(0);
  });

  it("an abort rejects with the signal's reason and clears the timer and the listener", async () => {
    const clock = new TestClock(0);
    const aborted = AbortSignal.abort(new Error("already"));
    await expect(sleep(clock, 100, aborted)).rejects.toThrow("already");
    expect(clock.pending()).toBe(0);

    const controller = new AbortController();
    const remove = vi.spyOn(controller.signal, "removeEventListener");
    const waiting = sleep(clock, 100, controller.signal);
    expect(clock.pending()).toBe(1);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    controller.abort(new Error("stop"));
    await expect(waiting).rejects.toThrow("stop");
    expect(clock.pending()).toBe(0);
    // Nothing outlives the call: the abort listener is gone from the signal too.
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);

    // Completed: the listener is removed, so a later abort does nothing.
    const later = new AbortController();
    const removeLater = vi.spyOn(later.signal, "removeEventListener");
    const zero = sleep(clock, 0, later.signal); // with a signal, even 0 ms goes through the clock
    expect(clock.pending()).toBe(1);
    await clock.advance(0);
    await zero;
    expect(removeLater).toHaveBeenCalledWith("abort", expect.any(Function));
    expect(remove).not.toHaveBeenCalled();
  });
});

describe("systemClock", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reads Date.now, and clamps timers to what setTimeout can hold", () => {
    vi.useFakeTimers({ now: 5_000 });
    expect(systemClock.now()).toBe(5_000);
    const fired: string[] = [];
    systemClock.setTimer(() => fired.push("far"), 10 * 2_147_483_647);
    systemClock.setTimer(() => fired.push("negative"), -10);
    const cancel = systemClock.setTimer(() => fired.push("cancelled"), 5);
    cancel();
    vi.advanceTimersByTime(0);
    expect(fired).toEqual(["negative"]);
    vi.advanceTimersByTime(2_147_483_646);
    expect(fired).toEqual(["negative"]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(["negative", "far"]);
  });

  it("clamps housekeeping timers too: a store's far write does not fire at once", () => {
    vi.useFakeTimers({ now: 5_000 });
    const fired: string[] = [];
    unrefTimer(() => fired.push("far"), 3 * 2_147_483_647);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(2_147_483_646);
    expect(fired).toEqual(["far"]);
  });
});

describe("errors", () => {
  it("carry their fields and say what happened", () => {
    const config = new ConfigError("retry.maxAttempts", "expected an integer");
    expect(config.message).toBe("retry.maxAttempts: expected an integer");
    expect(config.path).toBe("retry.maxAttempts");
    expect(new ConfigError("", "bad").message).toBe("bad");

    const open = new CircuitOpenError("api.example", Date.UTC(2026, 0, 1));
    expect(open.message).toBe('circuit for "api.example" is open until 2026-01-01T00:00:00.000Z');
    expect(open).toMatchObject({ key: "api.example", retryAt: Date.UTC(2026, 0, 1), name: "CircuitOpenError" });
    expect(new CircuitOpenError("k", 1e300).message).toBe(
      'circuit for "k" is open until an unrepresentable time (1e+300)',
    );

    const cause = new Error("503 Service Unavailable");
    const one = new RetryExhaustedError(1, cause);
    expect(one.message).toBe("gave up after 1 attempt: 503 Service Unavailable");
    expect(one.cause).toBe(cause);
    expect(new RetryExhaustedError(3, "boom", "spare").message).toBe("gave up after 3 attempts to spare: boom");
    expect(new RetryExhaustedError(2, new TypeError("")).message).toBe("gave up after 2 attempts: TypeError");
    expect(new RetryExhaustedError(2, cause)).toMatchObject({ attempts: 2, endpoint: undefined });

    const timeout = new TimeoutError("total", 500);
    expect(timeout.message).toBe("total timeout of 500 ms exceeded");
    expect(timeout).toMatchObject({ phase: "total", timeout: 500, attempts: 0 });
    expect(new TimeoutError("attempt", 1, 4).attempts).toBe(4);

    const last = new Error("second failed");
    const chain = new FallbackExhaustedError("video", { primary: new Error("first failed"), spare: last });
    expect(chain.message).toBe(
      'every endpoint of fallback chain "video" failed (primary: first failed; spare: second failed)',
    );
    expect(chain.cause).toBe(last);
    expect(new FallbackExhaustedError("empty", {}).cause).toBeUndefined();
    // Given the order they failed in, the message follows it and the cause is the last one's error.
    const turns = new FallbackExhaustedError("video", { "2": last, primary: new Error("first failed") }, [
      "primary",
      "2",
    ]);
    expect(turns.message).toBe(
      'every endpoint of fallback chain "video" failed (primary: first failed; 2: second failed)',
    );
    expect(turns.cause).toBe(last);

    const full = new BulkheadRejectedError("api.example");
    expect(full.message).toBe('bulkhead for "api.example" is full');
    expect(full.key).toBe("api.example");
    expect(new ResilienceError("x").name).toBe("ResilienceError");
  });

  it("the guards know their own errors, and look-alikes from another copy of the package by name", () => {
    const cases = [
      [isConfigError, new ConfigError("", "x"), "ConfigError"],
      [isCircuitOpenError, new CircuitOpenError("k", 0), "CircuitOpenError"],
      [isRetryExhaustedError, new RetryExhaustedError(1, "x"), "RetryExhaustedError"],
      [isFallbackExhaustedError, new FallbackExhaustedError("c", {}), "FallbackExhaustedError"],
      [isBulkheadRejectedError, new BulkheadRejectedError("k"), "BulkheadRejectedError"],
    ] as const;
    for (const [guard, own, name] of cases) {
      expect(guard(own)).toBe(true);
      expect(isResilienceError(own)).toBe(true);
      // Another realm's is known by its name and the fields its class sets (its own instance's, copied).
      const foreign = Object.assign(new Error("x"), { ...own, name });
      expect(guard(foreign)).toBe(true);
      expect(isResilienceError(foreign)).toBe(true);
      expect(guard(new Error("x"))).toBe(false);
      expect(guard({ name: "Other" })).toBe(false);
      expect(guard(null)).toBe(false);
      expect(guard(name)).toBe(false);
    }
    expect(isTimeoutError(new TimeoutError("total", 1))).toBe(true);
    // A DOMException "TimeoutError" (AbortSignal.timeout) has no phase: not ours.
    expect(isTimeoutError(new DOMException("t", "TimeoutError"))).toBe(false);
    expect(isTimeoutError(Object.assign(new Error("t"), { name: "TimeoutError", phase: "attempt" }))).toBe(true);
    // Until the fifty-first session a bare `TimeoutError` name was enough here; ky's own TimeoutError has that
    // name, so the umbrella guard now asks what `isTimeoutError` asks (a `phase`).
    expect(isResilienceError(Object.assign(new Error("x"), { name: "TimeoutError" }))).toBe(false);
    expect(isResilienceError(Object.assign(new Error("x"), { name: "TimeoutError", phase: "total" }))).toBe(true);
    // A name alone is not enough (an app's own `ConfigError`, `ResilienceError`), nor a field of the wrong type.
    expect(isResilienceError(Object.assign(new Error("x"), { name: "ConfigError" }))).toBe(false);
    expect(isResilienceError(Object.assign(new Error("x"), { name: "ResilienceError" }))).toBe(false);
    expect(
      isFallbackExhaustedError(
        Object.assign(new Error("x"), { name: "FallbackExhaustedError", chain: "c", errors: null }),
      ),
    ).toBe(false);
    // A name alone, on something that is not an Error, is not enough for the umbrella guard.
    expect(isResilienceError({ name: "ConfigError" })).toBe(false);
    expect(isResilienceError(new Error("x"))).toBe(false);
    expect(isResilienceError(undefined)).toBe(false);
  });
});

describe("Emitter", () => {
  it("an unsubscribe ends its own subscription only: a stale one leaves a newer one of the same listener", () => {
    const emitter = new Emitter<{ a: number }>(["a"]);
    const seen: number[] = [];
    const listener = (n: number) => seen.push(n);
    const stale = emitter.on("a", listener);
    stale();
    const current = emitter.on("a", listener);
    stale();
    emitter.emit("a", 1);
    expect(seen).toEqual([1]);
    // Subscribed twice, registered once (as with `EventTarget`): either unsubscribe ends it.
    const again = emitter.on("a", listener);
    again();
    emitter.emit("a", 2);
    expect(seen).toEqual([1]);
    current();
    expect(emitter.has("a")).toBe(false);
  });

  it("delivers to each listener of a name, counts them, and unsubscribes", () => {
    const emitter = new Emitter<{ a: number; b: string }>(["a", "b"]);
    expect(emitter.has("a")).toBe(false);
    expect(emitter.listenerCount()).toBe(0);
    const seen: unknown[] = [];
    const off = emitter.on("a", (n) => seen.push(n));
    emitter.on("a", (n) => seen.push(n * 10));
    emitter.on("b", (s) => seen.push(s));
    expect(emitter.has("a")).toBe(true);
    expect(emitter.listenerCount()).toBe(3);
    emitter.emit("a", 1);
    emitter.emit("b", "x");
    expect(seen).toEqual([1, 10, "x"]);
    off();
    expect(emitter.listenerCount()).toBe(2);
    emitter.emit("a", 2);
    expect(seen).toEqual([1, 10, "x", 20]);
    expect(() => emitter.on("a", "nope" as never)).toThrow(
      new TypeError('on("a", listener): listener must be a function, got string'),
    );
  });

  it("refuses a name it was not given (a typo, an inherited key) at once, listing its names", () => {
    const emitter = new Emitter<{ a: number; b: string }>(["a", "b"]);
    expect(() => emitter.on("c" as never, () => {})).toThrow(
      new TypeError('on("c", listener): unknown event, expected one of a, b'),
    );
    expect(() => emitter.on("constructor" as never, () => {})).toThrow(/unknown event/);
    expect(emitter.listenerCount()).toBe(0);
  });

  it("the layer's emitter knows the eight events docs/health-and-events.md lists", () => {
    expect(resilienceEventNames).toEqual([
      "retry",
      "request",
      "breaker",
      "fallback",
      "degradation",
      "replay",
      "redirect",
      "store",
    ]);
  });

  it("has() is false again once the last listener of a name is removed", () => {
    const emitter = new Emitter<{ a: number; b: string }>(["a", "b"]);
    const offA = emitter.on("a", () => {});
    const offB = emitter.on("b", () => {});
    offA();
    expect(emitter.has("a")).toBe(false);
    expect(emitter.has("b")).toBe(true);
    offB();
    expect(emitter.has("b")).toBe(false);
    expect(emitter.listenerCount()).toBe(0);
  });

  it("a listener whose result has a `then` that cannot be read is reported as its failure, and the others still run", () => {
    const reported: unknown[] = [];
    const original = (globalThis as { reportError?: unknown }).reportError;
    (globalThis as { reportError?: unknown }).reportError = (e: unknown) => reported.push(e);
    try {
      const emitter = new Emitter<{ a: number }>(["a"]);
      const seen: number[] = [];
      const broken = new Error("then getter");
      emitter.on("a", () => ({
        // biome-ignore lint/suspicious/noThenProperty: a thenable whose then cannot be read, on purpose
        get then(): never {
          throw broken;
        },
      }));
      emitter.on("a", (n) => seen.push(n));
      expect(() => emitter.emit("a", 1)).not.toThrow();
      expect([seen, reported]).toEqual([[1], [broken]]);
      // A report that throws too has nowhere to go: the dispatch still ends normally.
      (globalThis as { reportError?: unknown }).reportError = () => {
        throw new Error("reporter down");
      };
      expect(() => emitter.emit("a", 2)).not.toThrow();
      expect(seen).toEqual([1, 2]);
    } finally {
      (globalThis as { reportError?: unknown }).reportError = original;
    }
  });

  it("a listener that throws is reported and does not stop the others", () => {
    const reported: unknown[] = [];
    const original = (globalThis as { reportError?: unknown }).reportError;
    (globalThis as { reportError?: unknown }).reportError = (e: unknown) => reported.push(e);
    try {
      const emitter = new Emitter<{ a: number }>(["a"]);
      const seen: number[] = [];
      const boom = new Error("listener bug");
      emitter.on("a", () => {
        throw boom;
      });
      emitter.on("a", (n) => seen.push(n));
      emitter.emit("a", 1);
      expect(seen).toEqual([1]);
      expect(reported).toEqual([boom]);
    } finally {
      (globalThis as { reportError?: unknown }).reportError = original;
    }
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const saved = (globalThis as { reportError?: unknown }).reportError;
    (globalThis as { reportError?: unknown }).reportError = undefined;
    try {
      const emitter = new Emitter<{ a: number }>(["a"]);
      emitter.on("a", () => {
        throw new Error("again");
      });
      emitter.emit("a", 1);
      expect(errors).toHaveBeenCalledWith("[resilient-fetch] a listener or hook failed:", new Error("again"));
    } finally {
      (globalThis as { reportError?: unknown }).reportError = saved;
      errors.mockRestore();
    }
  });

  it("an async listener's rejection is reported too, never left unhandled", async () => {
    const reported: unknown[] = [];
    const original = (globalThis as { reportError?: unknown }).reportError;
    (globalThis as { reportError?: unknown }).reportError = (e: unknown) => reported.push(e);
    try {
      const emitter = new Emitter<{ a: number }>(["a"]);
      const seen: number[] = [];
      const boom = new Error("async listener bug");
      emitter.on("a", async () => {
        throw boom;
      });
      emitter.on("a", (n) => {
        seen.push(n);
      });
      const { unhandled } = await watchUnhandled(async () => emitter.emit("a", 1));
      expect(seen).toEqual([1]);
      expect(reported).toEqual([boom]);
      expect(unhandled).toEqual([]);
    } finally {
      (globalThis as { reportError?: unknown }).reportError = original;
    }
  });
});

describe("levels", () => {
  it("are the five StoryCore levels, best first, with their settings", () => {
    expect(LEVEL_NAMES).toEqual(["full", "high", "medium", "low", "minimal"]);
    expect(LEVEL_NAMES.map((l) => defaultLevels[l].percentage)).toEqual([100, 80, 60, 40, 20]);
    expect(defaultLevels.full).toEqual({
      percentage: 100,
      qualityMultiplier: 1,
      resolutionScale: 1,
      maxSteps: null,
      features: ["all"],
      modelStep: 0,
    });
    expect(LEVEL_NAMES.map((l) => defaultLevels[l].maxSteps)).toEqual([null, null, 30, 20, 10]);
    expect(LEVEL_NAMES.map((l) => defaultLevels[l].features)).toEqual([
      ["all"],
      ["core", "enhancements"],
      ["core"],
      ["basic"],
      ["essential"],
    ]);
  });
});

/** The ConfigError message `checkOptions` throws for `value` under `rules`, or "ok". */
function checked(rules: Table, value: unknown): string {
  try {
    checkOptions(rules, value, "");
    return "ok";
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
}

/** A refinement that always fails, to see whether the problems below a value let it run. */
const refused: Refine = [() => false, "the refinement"];

describe("checkOptions, the walker itself", () => {
  it("a record is an object whose prototype chain ends like Object's (zod's test)", () => {
    const rules: Table = { h: { rec: "str" } };
    expect(checked(rules, { h: { a: "1", b: "2" } })).toBe("ok");
    // No prototype at all, or no `constructor` to ask: still a record.
    expect(checked(rules, { h: Object.assign(Object.create(null), { a: "1" }) })).toBe("ok");
    expect(checked(rules, { h: Object.assign(Object.create(null), { a: 1 }) })).toBe(
      "h.a: expected string, received 1",
    );
    // Refused, each with the record's own message, never a TypeError from the test itself.
    class Headers2 {
      a = "1";
    }
    const arrowCtor = { constructor: () => {} }; // a constructor without a prototype
    const nullProto = function NullProto() {};
    Object.defineProperty(nullProto, "prototype", { value: null });
    for (const [value, received] of [
      [null, "null"],
      [new Map([["a", "1"]]), "an object"],
      [new Headers2(), "an object"],
      [arrowCtor, "an object"],
      [{ constructor: nullProto }, "an object"],
      ["a=1", '"a=1"'],
      [["1"], "an array"],
      [() => {}, "a function"],
    ] as const) {
      expect(checked(rules, { h: value })).toBe(`h: expected record, received ${received}`);
    }
    // An undefined value that must be there: refused too (through a list, where it is walked).
    expect(checked({ l: { list: { rec: "str" } } }, { l: [undefined] })).toBe(
      "l.0: expected record, received undefined",
    );
  });

  it("a record's keys: `__proto__` is checked as any other, non-enumerable keys are skipped, a symbol key is refused", () => {
    const rules: Table = { h: { rec: "str" } };
    // JSON.parse makes `__proto__` an own, enumerable key (an object literal would set the prototype); it is
    // sent as one, so it is checked (until the twentieth session it was skipped, and a bad value went through).
    expect(checked(rules, { h: JSON.parse('{"__proto__": 1, "a": "1"}') })).toBe(
      "h.__proto__: expected string, received 1",
    );
    expect(checked(rules, { h: JSON.parse('{"__proto__": "1", "a": "1"}') })).toBe("ok");
    expect(checked(rules, { h: JSON.parse('{"__proto__": "1", "a": 2}') })).toBe("h.a: expected string, received 2");
    const hidden = Object.defineProperty({ a: "1" }, "b", { value: 2, enumerable: false });
    expect(checked(rules, { h: hidden })).toBe("ok");
    const symbol = Symbol("s");
    expect(checked(rules, { h: { [symbol]: "1" } })).toBe('h.Symbol(s): expected a valid value, received "1"');
    // A symbol key breaks the record's shape: a refinement above it does not run.
    expect(checked({ x: { obj: { h: { rec: "str" } }, ok: [refused] } }, { x: { h: { [symbol]: "1" } } })).toBe(
      'x.h.Symbol(s): expected a valid value, received "1"',
    );
    expect(checked({ x: { obj: { h: { rec: "str" } }, ok: [refused] } }, { x: { h: { a: "1" } } })).toBe(
      "x: expected the refinement, received an object",
    );
  });

  it("leaves: null, a string that may be empty, a number's upper bound included", () => {
    expect(checked({ n: "null" }, { n: null })).toBe("ok");
    expect(checked({ n: "null" }, { n: 0 })).toBe("n: expected null, received 0");
    expect(checked({ s: "str" }, { s: "" })).toBe("ok");
    expect(checked({ s: "str+" }, { s: "" })).toBe('s: expected a value >= 1, received ""');
    expect(checked({ p: "num>0<=1" }, { p: 1 })).toBe("ok");
    expect(checked({ p: "num>0<=1" }, { p: 1.5 })).toBe("p: expected a value <= 1, received 1.5");
    // Out of range keeps the shape: a refinement above still runs.
    expect(checked({ x: { obj: { p: "num>0<=1" }, ok: [refused] } }, { x: { p: 2 } })).toBe(
      "x.p: expected a value <= 1, received 2; x: expected the refinement, received an object",
    );
  });

  it("a length is measured only when it is a number", () => {
    const rules: Table = { l: { list: "str", min: 1 } };
    expect(checked(rules, { l: [] })).toBe("l: expected a value >= 1, received an array");
    expect(checked(rules, { l: { length: "0" } })).toBe("l: expected array, received an object");
    expect(checked(rules, { l: { length: null } })).toBe("l: expected array, received an object");
  });

  it("a refinement looks only at the problems of its own value, not of the keys before it", () => {
    const rules: Table = { a: "str", b: { is: "str", ok: [refused] } };
    expect(checked(rules, { a: 1, b: "x" })).toBe(
      'a: expected string, received 1; b: expected the refinement, received "x"',
    );
  });

  it("a union that no branch fits breaks the shape above it, with its deepest problem or what each branch takes", () => {
    const union: Table = { u: { or: ["null", "str"] } };
    expect(checked({ x: { obj: union, ok: [refused] } }, { x: { u: 1 } })).toBe(
      "x.u: expected null or string, received 1",
    );
    const deep: Table = { u: { or: [{ obj: { a: "str" }, need: ["a"] }, "null"] } };
    expect(checked({ x: { obj: deep, ok: [refused] } }, { x: { u: { a: 1 } } })).toBe(
      "x.u.a: expected string, received 1",
    );
  });

  it("a problem below a value that is null is received as nothing", () => {
    const rules: Table = { x: { obj: { a: "null" }, ok: [[() => false, "a b", ["a", "b"]]] } };
    expect(checked(rules, { x: { a: null } })).toBe("x.a.b: expected a b, received nothing");
  });
});

describe("ownClock: a clock of yours as the layer uses it", () => {
  it("a cancelled timer never runs its callback, whatever setTimer returns; methods keep their this", () => {
    const due: Array<() => void> = [];
    class Broken {
      readonly start = 5;
      now(): number {
        return this.start;
      }
      // Returns no function that cancels, or one that throws.
      setTimer(callback: () => void, _ms: number): unknown {
        due.push(callback);
        return due.length === 1
          ? undefined
          : () => {
              throw new Error("cannot cancel");
            };
      }
    }
    const clock = ownClock(new Broken() as unknown as Clock);
    expect(clock.now()).toBe(5);
    let ran = 0;
    const cancelFirst = clock.setTimer(() => ran++, 10);
    const cancelSecond = clock.setTimer(() => ran++, 10);
    const kept = clock.setTimer(() => ran++, 10);
    expect(() => cancelFirst()).not.toThrow();
    expect(() => cancelSecond()).not.toThrow();
    for (const fire of due) fire();
    expect(ran).toBe(1);
    expect(typeof kept).toBe("function");
  });
});
