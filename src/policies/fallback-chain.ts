import { type Clock, ownClock, systemClock } from "../core/clock.ts";
import { FallbackExhaustedError, UNREADABLE, unlessThrows } from "../core/errors.ts";
import { reportFailure, reportRejection } from "../core/events.ts";
import { isListenableSignal } from "../core/kind-of.ts";
import { keepWhile, linkedSignal } from "../core/linked-signal.ts";
import { checkOptions, type Table } from "../core/options/check-options.ts";
import { optionKeys } from "../core/options/option-keys.ts";
import { clockRule } from "../core/options/option-rules.ts";
import type { FallbackEvent } from "../core/resilience-events.ts";
import { shownName, shownValue } from "../core/shown-name.ts";
import { untilAborted } from "../core/until-aborted.ts";
import { adaptiveOrder, type EndpointStatistics, EndpointStats } from "./endpoint-stats.ts";

/** One way of producing the result, tried in order. */
export type FallbackFn<I, O> = (input: I, context: { signal: AbortSignal | undefined; name: string }) => O | Promise<O>;

/** `fixed` keeps the order given; `adaptive` reorders by recent success and latency. */
export type FallbackOrder = "fixed" | "adaptive";

/** StoryCore-Engine's `get_statistics()`. */
export interface ChainStatistics {
  /**
   * The last entry other than the first to serve a run (StoryCore-Engine's
   * `last_successful_fallback`): `null` until one has; it stays when the
   * first entry serves again.
   */
  lastSuccessfulFallback: string | null;
  /** Successful runs / runs. */
  overallSuccessRate: number;
  fallbacks: Record<string, EndpointStatistics>;
}

/** Emitted when an entry is passed over. */
export type ChainFallback = FallbackEvent;

/**
 * How one run treats values, skips and hedging (the HTTP layer sets these).
 * Each callback also receives the run's input, so one set of functions can
 * serve every run.
 */
export interface ChainRunOptions<O, I = unknown> {
  signal?: AbortSignal | undefined;
  /**
   * A reason to reject a value and move on, or `undefined` to accept it.
   * `signal` is the entry's own (a hedge's is aborted when another wins): a
   * judgement that reads something should stop with it.
   */
  accept?:
    | ((
        value: O,
        name: string,
        input: I,
        signal: AbortSignal | undefined,
      ) => string | undefined | Promise<string | undefined>)
    | undefined;
  /**
   * Passes over an entry without calling it: `reason` goes to `onFallback`,
   * `error` is the entry's in the run's `errors` (say, the breaker's
   * `CircuitOpenError`, which knows when to come back).
   */
  skip?: ((name: string, input: I) => { reason: string; error: unknown } | undefined) | undefined;
  /**
   * A failure that turns out to be a pass-over (the entry found, once it
   * ran, that it must not do its work: the breaker of where it was sent is
   * open): its reason, which goes to `onFallback`; the entry is not
   * counted, as one `skip` passed over is not.
   * @default none
   */
  passedOver?: ((error: unknown) => string | undefined) | undefined;
  /** Start the next entry too when the current one has not settled after this many ms. */
  hedgeDelay?: number | undefined;
  /**
   * Asked before each hedge starts: `false` starts no more (what runs may
   * not be sent twice, as it turned out once it was sent).
   * @default always
   */
  mayHedge?: ((input: I) => boolean) | undefined;
  /**
   * A failure whose entry never ran its work (held back, in a hedged run,
   * by what runs beside it): not counted, no `onFallback`, and the entry
   * goes back in line, started again once nothing else runs.
   * @default none
   */
  heldBack?: ((error: unknown) => boolean) | undefined;
  /**
   * A failure that is no entry's (the caller's request, refused by the
   * platform before it went anywhere): the run moves on as after any
   * failure, but the entry's statistics do not count it, and a run that
   * ends with no other failure is not counted, as an aborted one is not.
   * @default none
   */
  uncounted?: ((error: unknown) => boolean) | undefined;
  /**
   * Whether an entry stopped unfinished (a losing hedge) got to do its work:
   * one that did not (it was still preparing) is not counted.
   * @default always
   */
  started?: ((name: string, input: I) => boolean) | undefined;
  /**
   * Whether the run may go on to the next entry after this failure (a
   * rejected value, or an error); `false` ends the run with it. Entries that
   * were passed over (`skip`) are not failures. `name` is the entry that failed.
   * @default always
   */
  moveOn?: ((failure: { value: O } | { error: unknown }, input: I, name: string) => boolean) | undefined;
  /**
   * Called with a value that will not be returned (rejected, or a losing
   * hedge). A throw during the run ends the run with it; a losing hedge's
   * value comes after the run, so its throw, like an async hook's rejection,
   * is reported (`reportError`, else `console.error`).
   */
  discard?: ((value: O) => void) | undefined;
  /**
   * Called as the run passes an entry over. It runs inside the run: a throw
   * ends the run with that error; an async hook is not awaited, and its
   * rejection is reported (`reportError`, else `console.error`), never left
   * unhandled.
   */
  onFallback?: ((event: ChainFallback) => void) | undefined;
}

export type ChainResult<O> =
  | { ok: true; value: O; name: string; primary: boolean }
  | {
      ok: false;
      errors: Record<string, unknown>;
      /**
       * The entries that gave nothing acceptable (tried or passed over), in
       * the order each did: `errors` lists number-like names first, whatever
       * their turn.
       */
      tried: string[];
      /** The entry tried (or passed over) last: `tried`'s last. */
      lastTried: string | undefined;
      /** The last value `accept` turned down, if any, and the entry that gave it. */
      lastRejected: O | undefined;
      lastRejectedBy: string | undefined;
    };

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

/** One run's progress through the order. */
interface Run<I, O> {
  order: Entry<I, O>[];
  /** Index in `order` of the next entry to start. */
  next: number;
  errors: Record<string, unknown>;
  tried: string[];
  /** The last value `accept` turned down, kept to answer with when nothing is accepted. */
  lastRejected: O | undefined;
  lastRejectedBy: string | undefined;
  /** An entry held back waits next in line: no hedge starts until nothing runs. */
  waiting: boolean;
  /** Whether an entry's failure was counted, and one was `uncounted`: a run with only the latter is not. */
  counted: boolean;
  uncounted: boolean;
}

/** A hedged entry still running. */
interface Running<I, O> {
  controller: AbortController;
  settled: Promise<Settled<I, O>>;
  /** When it started: a losing hedge counts the time it ran. */
  started: number;
}

/**
 * An ordered list of ways to get a result (StoryCore-Engine's fallback chain):
 * each is tried until one succeeds. Works for any async work through
 * `add(fn)` and `execute(input)`; `resilience.fetch` drives the same chain
 * with HTTP endpoints.
 *
 * @example
 * const chain = new FallbackChain<Request, Blob>("thumbnail");
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

  constructor(name: string, options: { order?: FallbackOrder | undefined; clock?: Clock | undefined } = {}) {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(`new FallbackChain(name): expected a non-empty string, got ${shownName(name)}`);
    }
    // Every option, misspelt ones too, as the other policies check theirs.
    checkOptions({ order: { oneOf: ["fixed", "adaptive"] }, clock: clockRule }, options, "FallbackChain");
    this.name = name;
    this.order = options.order ?? "fixed";
    // A clock of yours as the layer sees one: a hedge's timer cancelled does nothing, even without a cancel function.
    // The real clock, which a layer's chains are given when you gave none, needs no view.
    this.#clock = options.clock && options.clock !== systemClock ? ownClock(options.clock) : systemClock;
  }

  /** Appends an entry (StoryCore-Engine's `add_fallback(fn, name, expected_quality)`). */
  add(fn: FallbackFn<I, O>, options: { name: string; expectedQuality?: number | undefined }): this {
    refuseIfConfigured(this, "add");
    if (typeof fn !== "function") throw new TypeError(`fallbackChain("${this.name}").add(fn): fn must be a function`);
    const { name, expectedQuality = 1 } = options ?? {};
    // A misspelt option must fail, not silently do nothing, as the constructor's do (a hidden key or a getter too).
    for (const key of optionKeys(options).filter((key) => key !== "name" && key !== "expectedQuality"))
      throw new TypeError(`fallbackChain("${this.name}").add: unknown option ${shownValue(key)}`);
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(`fallbackChain("${this.name}").add: options.name must be a non-empty string`);
    }
    if (this.#entries.some((e) => e.name === name)) {
      throw new TypeError(`fallbackChain("${this.name}").add: an entry named "${name}" exists already`);
    }
    if (typeof expectedQuality !== "number" || !(expectedQuality >= 0 && expectedQuality <= 1)) {
      throw new TypeError(
        `fallbackChain("${this.name}").add: expectedQuality must be within 0..1, got ${shownValue(expectedQuality)}`,
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
    refuseIfConfigured(this, "execute");
    checkOptions(executeRules, options, `fallbackChain("${this.name}").execute`);
    const { signal } = options;
    // A caller's abort settles the run at once, even while an entry ignores the signal.
    const running = this.run(input, { signal });
    const result = await untilAborted(running, signal);
    if (signal?.aborted) throw signal.reason;
    if (result.ok) return result.value;
    throw new FallbackExhaustedError(this.name, result.errors, result.tried);
  }

  /**
   * Runs the chain and reports what happened instead of throwing. A caller's
   * abort stops it from trying further entries, but an entry that ignores its
   * signal is waited for; {@link FallbackChain.execute} settles at the abort.
   * Its options are checked first: a misspelt one, or one of the wrong type,
   * rejects with a `ConfigError` naming it, and no entry runs.
   */
  async run(input: I, options: ChainRunOptions<O, I> = {}): Promise<ChainResult<O>> {
    // Read and reset at once: user code the run calls may run another chain.
    const byLayer = layerRuns;
    layerRuns = false;
    if (!byLayer) {
      refuseIfConfigured(this, "run");
      checkRunOptions(this, options);
    }
    if (this.#entries.length === 0) throw new TypeError(`fallbackChain("${this.name}") has no entries`);
    const run: Run<I, O> = {
      order: this.#ordered(),
      next: 0,
      errors: {},
      tried: [],
      lastRejected: undefined,
      lastRejectedBy: undefined,
      waiting: false,
      counted: false,
      uncounted: false,
    };
    try {
      // Without hedging, entries run one at a time under the caller's signal:
      // no controllers, no race, nothing kept per running entry.
      if (options.hedgeDelay === undefined) {
        for (let entry = this.#launchable(input, run, options); entry; entry = this.#launchable(input, run, options)) {
          const result = this.#conclude(
            await this.#attempt(entry, input, options.signal, options),
            input,
            run,
            options,
            [],
          );
          if (result) return result;
        }
        await null; // see #failed
        return this.#failed(run, options);
      }
      return await this.#hedged(input, options, options.hedgeDelay, run);
    } catch (error) {
      // A throw ends the run (a hook of the caller's, a clock of yours that
      // reads wrong): the value an entry's refusal kept goes to `discard`.
      if (run.lastRejected !== undefined) reportRejection(options.discard?.(run.lastRejected));
      throw error;
    }
  }

  /**
   * A hedged run: when the running entry has not settled after `hedgeDelay`
   * ms, the next one starts too; the first acceptable value wins and the
   * others are aborted.
   */
  async #hedged(input: I, options: ChainRunOptions<O, I>, hedgeDelay: number, run: Run<I, O>): Promise<ChainResult<O>> {
    const running = new Map<Entry<I, O>, Running<I, O>>();
    const launch = (): void => {
      const entry = this.#launchable(input, run, options, running.keys().next().value?.name);
      if (!entry) return;
      const controller = new AbortController();
      const signal = options.signal ? linkedSignal(options.signal, controller.signal) : controller.signal;
      const started = this.#clock.now();
      // A value (a response, a stream) may go on under its signal after the
      // run settled: the signal lives as long as the value does.
      const settled = this.#attempt(entry, input, signal, options).then((done) => {
        if ("value" in done && Object(done.value) === done.value) keepWhile(done.value as object, signal);
        return done;
      });
      running.set(entry, { controller, settled, started });
    };
    try {
      return await this.#hedging(input, options, hedgeDelay, run, running, launch);
    } catch (error) {
      // A launch that threw (a hook of the caller's, a breaker store's read): nothing left running outlives the run.
      stopHedges(running, options);
      throw error;
    }
  }

  async #hedging(
    input: I,
    options: ChainRunOptions<O, I>,
    hedgeDelay: number,
    run: Run<I, O>,
    running: Map<Entry<I, O>, Running<I, O>>,
    launch: () => void,
  ): Promise<ChainResult<O>> {
    launch();
    while (running.size > 0) {
      // Aborted: no more hedges, and no timer (an entry that ignores its signal may run on; no timer waits on it).
      const hedging =
        run.next < run.order.length && !run.waiting && !options.signal?.aborted && options.mayHedge?.(input) !== false;
      const hedge = hedging ? this.#timer(hedgeDelay) : undefined;
      const first = await Promise.race([
        ...[...running.values()].map((r) => r.settled),
        ...(hedge ? [hedge.fired] : []),
      ]);
      hedge?.cancel();
      if (first === "hedge") {
        if (options.mayHedge?.(input) !== false) launch();
        continue;
      }
      running.delete(first.entry);
      const result = this.#conclude(first, input, run, options, running);
      if (result) return result;
      if (running.size === 0) {
        run.waiting = false;
        launch();
      } else if (!run.waiting && options.mayHedge?.(input) !== false) {
        // A failure beside a running hedge moves on at once, as it does
        // unhedged: the next entry takes its place, and the next `delay` counts from its start.
        launch();
      }
    }
    await null; // see #failed
    return this.#failed(run, options);
  }

  /**
   * The next entry to start, after passing over those `skip` names; none when
   * the order is done or the run aborted. `carrying`: the entry a hedged run
   * has running, which the run carries on with (a pass-over with no entry
   * next in line names it).
   */
  #launchable(input: I, run: Run<I, O>, options: ChainRunOptions<O, I>, carrying?: string): Entry<I, O> | undefined {
    while (run.next < run.order.length && !options.signal?.aborted) {
      const entry = run.order[run.next++] as Entry<I, O>;
      const skip = options.skip?.(entry.name, input);
      if (!skip) return entry;
      failedAt(run, entry.name, skip.error);
      this.#passOver(run, options, entry.name, skip.reason, run.order[run.next]?.name ?? carrying);
    }
    return undefined;
  }

  async #attempt(
    entry: Entry<I, O>,
    input: I,
    signal: AbortSignal | undefined,
    options: ChainRunOptions<O, I>,
  ): Promise<Settled<I, O>> {
    const started = this.#clock.now();
    let answered = false;
    let value: O | undefined;
    try {
      // An entry that ignores its signal is waited for: `execute` settles at
      // the abort all the same, and the HTTP layer races its own user code
      // (`respond`, `transform`) and transport, so a run costs no race of its own.
      value = await entry.fn(input, { signal, name: entry.name });
      answered = true;
      // Most answers are judged at once: only a promised reason is awaited.
      const reason = options.accept?.(value, entry.name, input, signal);
      return {
        entry,
        started,
        value,
        reason: reason === undefined || typeof reason === "string" ? reason : await reason,
      };
    } catch (error) {
      // A value `accept` failed on is never returned: it goes to `discard`.
      if (answered) reportRejection(options.discard?.(value as O));
      return { entry, started, error };
    }
  }

  /**
   * Takes in an entry that settled: the run's result when it ends here (an
   * accepted value, or a failure after which the run may not move on), else
   * `undefined`. Entries still `running` (hedges) are aborted when it ends.
   */
  #conclude(
    first: Settled<I, O>,
    input: I,
    run: Run<I, O>,
    options: ChainRunOptions<O, I>,
    running: Iterable<[Entry<I, O>, Running<I, O>]>,
  ): ChainResult<O> | undefined {
    if (options.signal?.aborted) {
      // The caller has gone: nothing is counted, and a value no one will get goes to `discard`.
      if ("value" in first) reportRejection(options.discard?.(first.value));
      else failedAt(run, first.entry.name, first.error);
      stopHedges(running, options);
      return this.#failed(run, options);
    }
    // Held back by what runs beside it: back in line. With nothing beside it, a failure like any other.
    if ("error" in first && [...running].length > 0 && options.heldBack?.(first.error)) {
      run.order.splice(run.next, 0, first.entry);
      run.waiting = true;
      return undefined;
    }
    let now: number;
    try {
      now = this.#clock.now();
    } catch (error) {
      // A clock of yours that reads wrong ends the run: a value no one will get goes to `discard`.
      if ("value" in first) reportRejection(options.discard?.(first.value));
      throw error;
    }
    const latency = now - first.started;
    if ("value" in first && first.reason === undefined) {
      first.entry.stats.record(true, latency, now);
      countLosers(running, input, options, now);
      stopHedges(running, options);
      if (run.lastRejected !== undefined) reportRejection(options.discard?.(run.lastRejected));
      // A run is counted when it ends: one still waiting on an entry that
      // ignores its caller's abort is not counted meanwhile.
      this.#runs++;
      this.#successes++;
      const isPrimary = first.entry === this.#entries[0];
      if (!isPrimary) this.#lastFallback = first.entry.name;
      return { ok: true, value: first.value, name: first.entry.name, primary: isPrimary };
    }
    const aborted = options.signal?.aborted === true;
    const over = "error" in first ? options.passedOver?.(first.error) : undefined;
    if (!aborted && over === undefined) {
      if ("error" in first && options.uncounted?.(first.error)) run.uncounted = true;
      else {
        first.entry.stats.record(false, latency, now);
        run.counted = true;
      }
    }
    if ("value" in first) {
      if (run.lastRejected !== undefined) reportRejection(options.discard?.(run.lastRejected));
      run.lastRejected = first.value;
      run.lastRejectedBy = first.entry.name;
      failedAt(run, first.entry.name, new Error(first.reason));
    } else {
      failedAt(run, first.entry.name, first.error);
    }
    if (options.moveOn && !options.moveOn(first, input, first.entry.name)) {
      // Nothing else may be tried: stop what runs (a hedge, counted for the time it ran) and report.
      if (!aborted) countLosers(running, input, options, now);
      stopHedges(running, options);
      return this.#failed(run, options);
    }
    if (!aborted) {
      // After a failure the run carries on with a hedge already running, if
      // one is: that is the endpoint tried next. One passed over (its open
      // breaker) names the next in line first, as a declared pass-over does.
      let carrying: string | undefined;
      for (const [entry] of running) {
        carrying = entry.name;
        break;
      }
      if (over !== undefined) carrying = run.order[run.next]?.name ?? carrying;
      this.#passOver(
        run,
        options,
        first.entry.name,
        over ?? ("value" in first ? (first.reason as string) : () => describe(first.error)),
        carrying,
      );
    }
    return undefined;
  }

  /**
   * A run's result when nothing was accepted. A run its caller aborted is not
   * counted (an abort is no failure), nor one whose only failures were
   * `uncounted` (entries passed over aside). A run that ends with every entry
   * passed over (open breakers) awaits nothing: it comes here after a turn,
   * so that an abort made in the same turn as the call finds it unfinished.
   */
  #failed(run: Run<I, O>, options: ChainRunOptions<O, I>): ChainResult<O> {
    if (!options.signal?.aborted && (run.counted || !run.uncounted)) this.#runs++;
    const { errors, tried, lastRejected, lastRejectedBy } = run;
    return { ok: false, errors, tried, lastTried: tried[tried.length - 1], lastRejected, lastRejectedBy };
  }

  #passOver(
    run: Run<I, O>,
    options: ChainRunOptions<O, I>,
    from: string,
    reason: string | (() => string),
    next = run.order[run.next]?.name,
  ): void {
    const { onFallback } = options;
    if (!onFallback) return;
    // A failure's text is read when the event's `reason` is: a layer with no
    // `fallback` listener reads nothing of the error (a `message` getter).
    let text = typeof reason === "string" ? reason : undefined;
    const event: ChainFallback = {
      chain: this.name,
      from,
      get reason() {
        text ??= (reason as () => string)();
        return text;
      },
      next,
    };
    // An async hook's rejection is reported, as a listener's is (see reportRejection).
    reportRejection(onFallback(event));
  }

  statistics(): ChainStatistics {
    const fallbacks: Record<string, EndpointStatistics> = {};
    for (const e of this.#entries) setEntry(fallbacks, e.name, e.stats.snapshot());
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

/** Aborts the hedges still running; a value one of them gives later goes to `discard`. */
/** Counts the entries a run stops unfinished, for the time they ran, when they got to do their work. */
function countLosers<I, O>(
  running: Iterable<[Entry<I, O>, Running<I, O>]>,
  input: I,
  options: ChainRunOptions<O, I>,
  now: number,
): void {
  for (const [loser, { started }] of running)
    if (options.started?.(loser.name, input) !== false) loser.stats.record(false, now - started, now);
}

function stopHedges<I, O>(running: Iterable<[Entry<I, O>, Running<I, O>]>, options: ChainRunOptions<O, I>): void {
  for (const [, { controller, settled }] of running) {
    controller.abort();
    // Later than the run: a throw, or an async hook's rejection, has no caller left but `reportError`.
    void settled
      .then((s) => {
        if ("value" in s) reportRejection(options.discard?.(s.value));
      })
      .then(undefined, reportFailure);
  }
}

/** `record[key] = value` for any key: an entry named `__proto__` is an entry too, not the prototype. */
function setEntry<V>(record: Record<string, V>, key: string, value: V): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Records why `name` gave nothing acceptable, and that it was tried last. */
function failedAt(run: Pick<Run<unknown, unknown>, "errors" | "tried">, name: string, error: unknown): void {
  setEntry(run.errors, name, error);
  run.tried.push(name);
}

function describe(error: unknown): string {
  return unlessThrows(() => (error instanceof Error ? `${error.name}: ${error.message}` : String(error)), UNREADABLE);
}

/** Chains whose entries are a layer's HTTP endpoints (see {@link configured}). */
const configuredChains = new WeakSet<object>();

/**
 * Marks `chain`, filled with a `fallback([…])` chain's endpoints, as run by
 * the layer only: its entries take the layer's own call, not a value of a
 * caller's, so `add`, `execute` and `run` would hand them what they cannot read.
 */
export function configured(chain: object): void {
  configuredChains.add(chain);
}

const signalRule = { type: isListenableSignal, expected: "an AbortSignal" };

/** The options a caller's `execute` takes. */
const executeRules: Table = { signal: signalRule };

/** The options a caller's `run` takes, checked as the constructor's are (the layer's own runs are not). */
const runRules: Table = {
  signal: signalRule,
  hedgeDelay: "num>=0",
  accept: "fn",
  skip: "fn",
  passedOver: "fn",
  mayHedge: "fn",
  heldBack: "fn",
  uncounted: "fn",
  started: "fn",
  moveOn: "fn",
  discard: "fn",
  onFallback: "fn",
};

/**
 * Checks a caller's `run` options, every name they answer to (a misspelt
 * `hedgDelay` would run unhedged without a word) and each value, before
 * anything reads them: a subclass that copies them checks first.
 */
export function checkRunOptions(chain: { readonly name: string }, options: unknown): void {
  checkOptions(runRules, options, `fallbackChain("${chain.name}").run`);
}

/** Set while the layer starts a configured chain's run (see {@link runConfigured}). */
let layerRuns = false;

/** Runs a configured chain: the layer's own call, which its public `run` refuses. */
export function runConfigured<I, O>(
  chain: FallbackChain<I, O>,
  input: I,
  options: ChainRunOptions<O, I>,
): Promise<ChainResult<O>> {
  layerRuns = true;
  try {
    return chain.run(input, options);
  } finally {
    layerRuns = false;
  }
}

function refuseIfConfigured(chain: { readonly name: string }, method: string): void {
  if (configuredChains.has(chain)) {
    throw new TypeError(
      `fallbackChain("${chain.name}").${method}: a chain from fallback([…]) runs through resilience.fetch only`,
    );
  }
}
