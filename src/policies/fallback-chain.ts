import type { Clock } from "../core/clock.ts";
import { FallbackExhaustedError } from "../core/errors.ts";
import type { FallbackEvent } from "../core/resilience-events.ts";
import { adaptiveOrder, type EndpointStatistics, EndpointStats } from "./endpoint-stats.ts";

/** One way of producing the result, tried in order. */
export type FallbackFn<I, O> = (input: I, context: { signal: AbortSignal | undefined; name: string }) => O | Promise<O>;

/** `fixed` keeps the order given; `adaptive` reorders by recent success and latency. */
export type FallbackOrder = "fixed" | "adaptive";

/** StoryCore-Engine's `get_statistics()`. */
export interface ChainStatistics {
  /** The entry that served the last successful run, when it was not the first. */
  lastSuccessfulFallback: string | null;
  /** Successful runs / runs. */
  overallSuccessRate: number;
  fallbacks: Record<string, EndpointStatistics>;
}

/** Emitted when an entry is passed over. */
export type ChainFallback = FallbackEvent;

/** How one run treats values, skips and hedging (the HTTP layer sets these). */
export interface ChainRunOptions<O> {
  signal?: AbortSignal | undefined;
  /** A reason to reject a value and move on, or `undefined` to accept it. */
  accept?: ((value: O, name: string) => string | undefined | Promise<string | undefined>) | undefined;
  /** A reason to pass over an entry without calling it. */
  skip?: ((name: string) => string | undefined) | undefined;
  /** Start the next entry too when the current one has not settled after this many ms. */
  hedgeDelay?: number | undefined;
  /**
   * Whether the run may go on to the next entry after this failure (a
   * rejected value, or an error); `false` ends the run with it. Entries that
   * were passed over (`skip`) are not failures.
   * @default always
   */
  moveOn?: ((failure: { value: O } | { error: unknown }) => boolean) | undefined;
  /** Called with a value that will not be returned (rejected, or a losing hedge). */
  discard?: ((value: O) => void) | undefined;
  onFallback?: ((event: ChainFallback) => void) | undefined;
}

export type ChainResult<O> =
  | { ok: true; value: O; name: string; primary: boolean }
  | { ok: false; errors: Record<string, unknown>; lastRejected: O | undefined };

interface Entry<I, O> {
  name: string;
  expectedQuality: number;
  fn: FallbackFn<I, O>;
  stats: EndpointStats;
}

type Settled<I, O> = { entry: Entry<I, O>; started: number } & (
  | { value: O; reason: string | undefined }
  | { error: unknown }
);

/**
 * An ordered list of ways to get a result (StoryCore-Engine's fallback chain):
 * each is tried until one succeeds. Works for any async work through
 * `add(fn)` and `execute(input)`; `resilience.fetch` drives the same chain
 * with HTTP endpoints.
 *
 * @example
 * const chain = resilience.fallbackChain("thumbnail");
 * chain.add((req) => renderGpu(req), { name: "gpu", expectedQuality: 1 });
 * chain.add((req) => renderCpu(req), { name: "cpu", expectedQuality: 0.6 });
 * const image = await chain.execute(request);
 */
export class FallbackChain<I, O> {
  readonly name: string;
  readonly order: FallbackOrder;
  readonly #clock: Clock;
  readonly #entries: Entry<I, O>[] = [];
  #runs = 0;
  #successes = 0;
  #lastFallback: string | null = null;

  constructor(name: string, options: { order?: FallbackOrder | undefined; clock: Clock }) {
    this.name = name;
    this.order = options.order ?? "fixed";
    this.#clock = options.clock;
  }

  /** Appends an entry (StoryCore-Engine's `add_fallback(fn, name, expected_quality)`). */
  add(fn: FallbackFn<I, O>, options: { name: string; expectedQuality?: number }): this {
    if (typeof fn !== "function") throw new TypeError(`fallbackChain("${this.name}").add(fn): fn must be a function`);
    const { name, expectedQuality = 1 } = options ?? {};
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(`fallbackChain("${this.name}").add: options.name must be a non-empty string`);
    }
    if (this.#entries.some((e) => e.name === name)) {
      throw new TypeError(`fallbackChain("${this.name}").add: an entry named "${name}" exists already`);
    }
    if (typeof expectedQuality !== "number" || !(expectedQuality >= 0 && expectedQuality <= 1)) {
      throw new TypeError(
        `fallbackChain("${this.name}").add: expectedQuality must be within 0..1, got ${String(expectedQuality)}`,
      );
    }
    this.#entries.push({ name, expectedQuality, fn, stats: new EndpointStats() });
    return this;
  }

  /** Entry names in the order the next run will try them. */
  ordered(): string[] {
    return this.#ordered().map((e) => e.name);
  }

  /** Runs the chain; rejects with {@link FallbackExhaustedError} when every entry failed. */
  async execute(input: I, options: { signal?: AbortSignal } = {}): Promise<O> {
    const result = await this.run(input, { signal: options.signal });
    if (result.ok) return result.value;
    if (options.signal?.aborted) throw options.signal.reason;
    throw new FallbackExhaustedError(this.name, result.errors);
  }

  /** Runs the chain and reports what happened instead of throwing. */
  async run(input: I, options: ChainRunOptions<O> = {}): Promise<ChainResult<O>> {
    if (this.#entries.length === 0) throw new TypeError(`fallbackChain("${this.name}") has no entries`);
    const order = this.#ordered();
    const primary = this.#entries[0];
    const errors: Record<string, unknown> = {};
    const running = new Map<
      Entry<I, O>,
      { controller: AbortController | undefined; settled: Promise<Settled<I, O>> }
    >();
    // Only a hedged run can have a loser to abort; without hedging, entries
    // run one at a time under the caller's signal and need no controller.
    const hedging = options.hedgeDelay !== undefined;
    let lastRejected: O | undefined;
    let next = 0;
    this.#runs++;

    const passOver = (from: string, reason: string): void => {
      options.onFallback?.({ chain: this.name, from, reason, next: order[next]?.name });
    };
    const launch = (): void => {
      while (next < order.length && !options.signal?.aborted) {
        const entry = order[next++] as Entry<I, O>;
        const skip = options.skip?.(entry.name);
        if (skip !== undefined) {
          errors[entry.name] = new Error(skip);
          passOver(entry.name, skip);
          continue;
        }
        const controller = hedging ? new AbortController() : undefined;
        const signal = !controller
          ? options.signal
          : options.signal
            ? AbortSignal.any([options.signal, controller.signal])
            : controller.signal;
        const started = this.#clock.now();
        const settled = (async (): Promise<Settled<I, O>> => {
          try {
            const value = await entry.fn(input, { signal, name: entry.name });
            return { entry, started, value, reason: await options.accept?.(value, entry.name) };
          } catch (error) {
            return { entry, started, error };
          }
        })();
        running.set(entry, { controller, settled });
        return;
      }
    };

    launch();
    while (running.size > 0) {
      const hedge =
        options.hedgeDelay !== undefined && next < order.length ? this.#timer(options.hedgeDelay) : undefined;
      const first = await Promise.race([
        ...[...running.values()].map((r) => r.settled),
        ...(hedge ? [hedge.fired] : []),
      ]);
      hedge?.cancel();
      if (first === "hedge") {
        launch();
        continue;
      }
      running.delete(first.entry);
      const latency = this.#clock.now() - first.started;
      if ("value" in first && first.reason === undefined) {
        first.entry.stats.record(true, latency, this.#clock.now());
        for (const [loser, { controller, settled }] of running) {
          controller?.abort();
          loser.stats.calls++;
          void settled.then((s) => "value" in s && options.discard?.(s.value));
        }
        if (lastRejected !== undefined) options.discard?.(lastRejected);
        this.#successes++;
        const isPrimary = first.entry === primary;
        if (!isPrimary) this.#lastFallback = first.entry.name;
        return { ok: true, value: first.value, name: first.entry.name, primary: isPrimary };
      }
      const aborted = options.signal?.aborted === true;
      if (!aborted) first.entry.stats.record(false, latency, this.#clock.now());
      if ("value" in first) {
        if (lastRejected !== undefined) options.discard?.(lastRejected);
        lastRejected = first.value;
        errors[first.entry.name] = new Error(first.reason);
      } else {
        errors[first.entry.name] = first.error;
      }
      if (options.moveOn && !options.moveOn(first)) {
        // Nothing else may be tried: stop what runs (a hedge) and report.
        for (const [, { controller, settled }] of running) {
          controller?.abort();
          void settled.then((s) => "value" in s && options.discard?.(s.value));
        }
        next = order.length;
        return { ok: false, errors, lastRejected };
      }
      if (!aborted) passOver(first.entry.name, "value" in first ? (first.reason as string) : describe(first.error));
      if (running.size === 0) launch();
    }
    return { ok: false, errors, lastRejected };
  }

  statistics(): ChainStatistics {
    const fallbacks: Record<string, EndpointStatistics> = {};
    for (const e of this.#entries) fallbacks[e.name] = e.stats.snapshot();
    return {
      lastSuccessfulFallback: this.#lastFallback,
      overallSuccessRate: this.#runs === 0 ? 0 : this.#successes / this.#runs,
      fallbacks,
    };
  }

  #ordered(): Entry<I, O>[] {
    return this.order === "adaptive" ? adaptiveOrder(this.#entries, this.#clock.now()) : [...this.#entries];
  }

  #timer(ms: number): { fired: Promise<"hedge">; cancel: () => void } {
    let cancel: () => void = () => {};
    const fired = new Promise<"hedge">((resolve) => {
      cancel = this.#clock.setTimer(() => resolve("hedge"), ms);
    });
    return { fired, cancel };
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
