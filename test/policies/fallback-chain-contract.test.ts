import { describe, expect, it, vi } from "vitest";
import { type FallbackEvent, FallbackExhaustedError } from "../../src/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** A promise the test settles by hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve: (value: T) => void = () => {};
  let reject: (error: unknown) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Whether `promise` settles within a few real event-loop turns (no time passes on any clock). */
async function settlesSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5 && !settled; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

const noop = () => "x";

describe("FallbackChain.add", () => {
  const chain = () => new FallbackChain<null, string>("checked", { clock: new TestClock(0) });

  it("refuses a name that is empty or not a string, saying why", () => {
    const message = 'fallbackChain("checked").add: options.name must be a non-empty string';
    expect(() => chain().add(noop, { name: "" })).toThrow(new TypeError(message));
    expect(() => chain().add(noop, { name: 42 as unknown as string })).toThrow(new TypeError(message));
    expect(() => chain().add(noop, {} as { name: string })).toThrow(new TypeError(message));
  });

  it("takes an expectedQuality from 0 to 1 inclusive and refuses anything else", () => {
    expect(chain().add(noop, { name: "lowest", expectedQuality: 0 }).ordered()).toEqual(["lowest"]);
    expect(chain().add(noop, { name: "highest", expectedQuality: 1 }).ordered()).toEqual(["highest"]);
    for (const bad of [-0.1, 1.1, Number.NaN, "0.5", null]) {
      expect(() => chain().add(noop, { name: "a", expectedQuality: bad as number })).toThrow(
        // A string quoted, so "0.5" is not taken for the number.
        new TypeError(
          `fallbackChain("checked").add: expectedQuality must be within 0..1, got ${typeof bad === "string" ? JSON.stringify(bad) : String(bad)}`,
        ),
      );
    }
  });
});

describe("a FallbackChain with no entries", () => {
  it("reports its order as fixed unless told otherwise", () => {
    expect(new FallbackChain("plain", { clock: new TestClock(0) }).order).toBe("fixed");
    expect(new FallbackChain("learns", { clock: new TestClock(0), order: "adaptive" }).order).toBe("adaptive");
  });

  it("refuses to run", async () => {
    const empty = new FallbackChain<null, string>("empty", { clock: new TestClock(0) });
    await expect(empty.run(null)).rejects.toThrow(new TypeError('fallbackChain("empty") has no entries'));
  });

  it("reports a success rate of 0 before any run", () => {
    const chain = new FallbackChain<null, string>("fresh", { clock: new TestClock(0) }).add(noop, { name: "a" });
    expect(chain.statistics()).toEqual({
      lastSuccessfulFallback: null,
      overallSuccessRate: 0,
      fallbacks: { a: { calls: 0, successes: 0, successRate: 0, meanLatencyMs: 0 } },
    });
  });
});

describe("FallbackChain.execute", () => {
  it("hands its signal to the entries", async () => {
    const chain = new FallbackChain<null, AbortSignal | undefined>("signalled", { clock: new TestClock(0) });
    chain.add((_input, { signal }) => signal, { name: "a" });
    const controller = new AbortController();
    expect(await chain.execute(null, { signal: controller.signal })).toBe(controller.signal);
  });

  it("rejects with the signal's reason, calling no entry, when the signal was aborted before", async () => {
    const called = vi.fn(() => "a");
    const chain = new FallbackChain<null, string>("aborted", { clock: new TestClock(0) }).add(called, { name: "a" });
    const controller = new AbortController();
    const reason = new Error("caller gave up");
    controller.abort(reason);
    await expect(chain.execute(null, { signal: controller.signal })).rejects.toBe(reason);
    expect(called).not.toHaveBeenCalled();
  });

  it("rejects with FallbackExhaustedError when every entry failed and the signal was not aborted", async () => {
    const chain = new FallbackChain<null, string>("failing", { clock: new TestClock(0) });
    chain.add(() => Promise.reject(new Error("down")), { name: "a" });
    const controller = new AbortController();
    await expect(chain.execute(null, { signal: controller.signal })).rejects.toBeInstanceOf(FallbackExhaustedError);
  });
});

describe("a FallbackChain run that fails over", () => {
  it("keeps the error an entry threw and describes it in the onFallback event", async () => {
    const chain = new FallbackChain<null, string>("errors", { clock: new TestClock(0) });
    const down = new RangeError("no capacity");
    chain.add(() => Promise.reject(down), { name: "a" });
    chain.add(() => Promise.reject("plain string"), { name: "b" });
    const events: FallbackEvent[] = [];
    const result = await chain.run(null, { onFallback: (event) => events.push(event) });
    // Changed in the thirty-first session: a failed run names the entry it tried last (`lastTried`); in the
    // thirty-second, every entry in the order they failed (`tried`).
    expect(result).toEqual({
      ok: false,
      errors: { a: down, b: "plain string" },
      tried: ["a", "b"],
      lastTried: "b",
      lastRejected: undefined,
      lastRejectedBy: undefined,
    });
    expect(events).toEqual([
      { chain: "errors", from: "a", reason: "RangeError: no capacity", next: "b" },
      { chain: "errors", from: "b", reason: "plain string", next: undefined },
    ]);
  });

  it("records failures and reports them under a signal that was never aborted", async () => {
    const chain = new FallbackChain<null, string>("live", { clock: new TestClock(0) });
    chain.add(() => Promise.reject(new Error("down")), { name: "a" });
    chain.add(() => "b", { name: "b" });
    const events: FallbackEvent[] = [];
    const result = await chain.run(null, { signal: new AbortController().signal, onFallback: (e) => events.push(e) });
    expect(result).toMatchObject({ ok: true, value: "b", primary: false });
    expect(events).toEqual([{ chain: "live", from: "a", reason: "Error: down", next: "b" }]);
    expect(chain.statistics().fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
  });

  it("neither records nor reports the failure of an entry stopped by the caller's abort", async () => {
    const chain = new FallbackChain<null, string>("stopped", { clock: new TestClock(0) });
    const controller = new AbortController();
    chain.add(
      () => {
        controller.abort(new Error("caller gave up"));
        return Promise.reject(new Error("aborted"));
      },
      { name: "a" },
    );
    const b = vi.fn(() => "b");
    chain.add(b, { name: "b" });
    const events: FallbackEvent[] = [];
    const result = await chain.run(null, { signal: controller.signal, onFallback: (e) => events.push(e) });
    expect(result).toMatchObject({ ok: false, errors: { a: new Error("aborted") } });
    expect(b).not.toHaveBeenCalled();
    expect(events).toEqual([]);
    expect(chain.statistics().fallbacks.a).toEqual({ calls: 0, successes: 0, successRate: 0, meanLatencyMs: 0 });
  });

  it("hands every value turned down to discard, except the one it answers with", async () => {
    const chain = new FallbackChain<null, string>("turned-down", { clock: new TestClock(0) });
    for (const name of ["a", "b", "c"]) chain.add(() => name, { name });
    const discarded: string[] = [];
    const served = await chain.run(null, {
      accept: (value) => (value === "c" ? undefined : "not good enough"),
      discard: (value) => discarded.push(value),
    });
    expect(served).toMatchObject({ ok: true, value: "c" });
    expect(discarded).toEqual(["a", "b"]);
    discarded.length = 0;
    const refused = await chain.run(null, { accept: () => "no", discard: (value) => discarded.push(value) });
    expect(refused).toMatchObject({ ok: false, lastRejected: "c", lastRejectedBy: "c" });
    expect(discarded).toEqual(["a", "b"]);
  });
});

/** A chain "judged" of two entries, "a" and "b", that answer when the test resolves them. */
function twoAnsweringLater() {
  const clock = new TestClock(0);
  const chain = new FallbackChain<null, string>("judged", { clock });
  const a = deferred<string>();
  const b = deferred<string>();
  chain.add(() => a.promise, { name: "a" });
  chain.add(() => b.promise, { name: "b" });
  return { clock, chain, a, b };
}

describe("a hedged FallbackChain run", () => {
  it("ranks an adaptive chain's entry that lost to its hedge below the winner, as a call that did not serve", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<null, string>("ranked", { clock, order: "adaptive" });
    const hung = deferred<string>();
    chain.add(() => hung.promise, { name: "a" });
    chain.add(() => "b", { name: "b" });
    const running = chain.run(null, { hedgeDelay: 100 });
    await clock.advance(100);
    expect(await running).toMatchObject({ ok: true, value: "b" });
    expect(chain.statistics().fallbacks.a).toEqual({ calls: 1, successes: 0, successRate: 0, meanLatencyMs: 100 });
    expect(chain.ordered()).toEqual(["b", "a"]);
    // Its recent record fades with the 60 s half-life, as a failure's does: then it is first again.
    await clock.advance(300_000);
    expect(chain.ordered()).toEqual(["a", "b"]);
    hung.resolve("late a");
  });

  it("reports every error when every entry fails", async () => {
    const chain = new FallbackChain<null, string>("all-down", { clock: new TestClock(0) });
    chain.add(() => Promise.reject(new Error("a down")), { name: "a" });
    chain.add(() => Promise.reject(new Error("b down")), { name: "b" });
    const running = chain.run(null, { hedgeDelay: 100 });
    expect(await settlesSoon(running)).toBe(true);
    // Changed in the thirty-first session: with `lastTried`; in the thirty-second, `tried`, the order they failed in.
    expect(await running).toEqual({
      ok: false,
      errors: { a: new Error("a down"), b: new Error("b down") },
      tried: ["a", "b"],
      lastTried: "b",
      lastRejected: undefined,
      lastRejectedBy: undefined,
    });
  });

  it("sets no hedge timer once every entry has started", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<null, string>("last", { clock });
    const answer = deferred<string>();
    chain.add(() => answer.promise, { name: "only" });
    const running = chain.run(null, { hedgeDelay: 100 });
    await clock.advance(0);
    expect(clock.pending()).toBe(0);
    answer.resolve("done");
    expect(await running).toMatchObject({ ok: true, value: "done" });
  });

  it("starts the next entry at once when one fails while a hedge still runs, as an unhedged run moves on", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<null, string>("hedges", { clock });
    const a = deferred<string>();
    const b = deferred<string>();
    const started: string[] = [];
    const entry = (name: string, answer: Promise<string> | string) => () => {
      started.push(name);
      return answer;
    };
    chain.add(entry("a", a.promise), { name: "a" });
    chain.add(entry("b", b.promise), { name: "b" });
    chain.add(entry("c", "c"), { name: "c" });
    const running = chain.run(null, { hedgeDelay: 100 });
    await clock.advance(100);
    expect(started).toEqual(["a", "b"]);
    a.reject(new Error("a down"));
    await clock.advance(0);
    expect(started).toEqual(["a", "b", "c"]);
    expect(await running).toMatchObject({ ok: true, value: "c" });
    b.resolve("late b");
  });

  it("of two hedges answering in the same turn, takes the one whose accept answered at once", async () => {
    const { clock, chain, a, b } = twoAnsweringLater();
    const running = chain.run(null, {
      hedgeDelay: 100,
      // "a" is judged by a promise, "b" at once.
      accept: (_value, name) => (name === "a" ? Promise.resolve(undefined) : undefined),
    });
    await clock.advance(100);
    a.resolve("a");
    b.resolve("b");
    expect(await running).toMatchObject({ ok: true, value: "b", name: "b" });
  });

  it("passes over a hedge turned down at once before taking one whose accept answers by promise in the same turn", async () => {
    const { clock, chain, a, b } = twoAnsweringLater();
    const events: FallbackEvent[] = [];
    const discarded: string[] = [];
    const running = chain.run(null, {
      hedgeDelay: 100,
      accept: (_value, name) => (name === "a" ? Promise.resolve(undefined) : "not good enough"),
      onFallback: (event) => events.push(event),
      discard: (value) => discarded.push(value),
    });
    await clock.advance(100);
    a.resolve("a");
    b.resolve("b");
    expect(await running).toMatchObject({ ok: true, value: "a", name: "a" });
    // The run carries on with "a", still running: that is the endpoint tried next.
    expect(events).toEqual([{ chain: "judged", from: "b", reason: "not good enough", next: "a" }]);
    expect(chain.statistics().fallbacks.b).toMatchObject({ calls: 1, successes: 0 });
    expect(discarded).toEqual(["b"]);
  });

  it("lets a stopped hedge answer late when no discard was given, without an unhandled rejection", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<null, string>("no-discard", { clock });
    const a = deferred<string>();
    const b = deferred<string>();
    chain.add(() => a.promise, { name: "a" });
    chain.add(() => b.promise, { name: "b" });
    const unhandled = vi.fn();
    process.on("unhandledRejection", unhandled);
    try {
      const running = chain.run(null, { hedgeDelay: 100 });
      await clock.advance(100);
      a.resolve("a");
      expect(await running).toMatchObject({ ok: true, value: "a" });
      b.resolve("late b");
      // Two macrotask turns: enough for a rejection nobody handles to be reported.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off("unhandledRejection", unhandled);
    }
  });
});

describe("a value whose accept check fails", () => {
  it.each([
    [
      "throws",
      () => {
        throw new Error("x");
      },
    ],
    ["rejects", () => Promise.reject(new Error("x"))],
  ])("goes to discard when accept %s, and the run reports the error", async (_, accept) => {
    const discarded: string[] = [];
    const chain = new FallbackChain<null, string>("c", { clock: new TestClock(0) });
    chain.add(() => "a", { name: "a" }).add(() => "b", { name: "b" });
    const result = await chain.run(null, {
      accept: (value) => (value === "a" ? accept() : undefined),
      discard: (value) => discarded.push(value),
    });
    expect(result).toMatchObject({ ok: true, value: "b" });
    expect(discarded).toEqual(["a"]);
    const alone = new FallbackChain<null, string>("d", { clock: new TestClock(0) }).add(() => "a", { name: "a" });
    const failed = await alone.run(null, { accept, discard: (value) => discarded.push(value) });
    expect(failed).toMatchObject({ ok: false, errors: { a: new Error("x") }, lastRejected: undefined });
    expect(discarded).toEqual(["a", "a"]);
  });
});

describe("a fallback event's next, in a hedged run", () => {
  it("names the hedge already running when the first entry fails, not the entry after it", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<null, string>("hedged", { clock });
    const a = deferred<string>();
    const b = deferred<string>();
    chain.add(() => a.promise, { name: "a" });
    chain.add(() => b.promise, { name: "b" });
    // c starts when a fails (beside b, still running) and has not answered when b does.
    chain.add(() => new Promise<string>(() => {}), { name: "c" });
    const events: FallbackEvent[] = [];
    const running = chain.run(null, { hedgeDelay: 100, onFallback: (event) => events.push(event) });
    await clock.advance(100); // b starts beside a
    a.reject(new Error("a broke"));
    await clock.advance(0);
    b.resolve("b");
    expect(await running).toMatchObject({ ok: true, value: "b" });
    expect(events).toEqual([{ chain: "hedged", from: "a", reason: "Error: a broke", next: "b" }]);
  });
});
