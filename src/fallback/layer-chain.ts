import type { Clock } from "../core/clock.ts";
import { FallbackExhaustedError } from "../core/errors.ts";
import { redactEach, redactErrorChain } from "../core/redact-url.ts";
import type { FallbackEvent } from "../core/resilience-events.ts";
import {
  type ChainResult,
  type ChainRunOptions,
  checkRunOptions,
  FallbackChain,
  type FallbackOrder,
} from "../policies/fallback-chain.ts";

/**
 * A chain `resilience.fallback.chain(name)` creates for any async work. Its
 * entries' errors may name a URL (an SDK's "GET https://…?api_key=… returned
 * 503"): a run's `errors`, and with them the `FallbackExhaustedError` built
 * from them (message, `errors`, cause), have the URLs cut, as a chain of
 * `resilience.fetch` and `execute` cut them. The generic `FallbackChain` of
 * `./policies` knows no URLs and stays small: it keeps its work's errors as
 * they are. An entry it passes over is told as the layer's `fallback`
 * event, as a chain of `resilience.fetch` tells it.
 */
export class LayerChain<I, O> extends FallbackChain<I, O> {
  readonly #onFallback: (event: FallbackEvent) => void;

  constructor(
    name: string,
    options: { order?: FallbackOrder | undefined; clock?: Clock | undefined },
    onFallback: (event: FallbackEvent) => void,
  ) {
    super(name, options);
    this.#onFallback = onFallback;
  }

  override async run(input: I, options: ChainRunOptions<O, I> = {}): Promise<ChainResult<O>> {
    // Checked before the copy below, which would drop a misspelt key that is inherited, hidden or a getter.
    checkRunOptions(this, options);
    // The caller's own `onFallback`, when it gives one, instead (a key left `undefined` gives none).
    const result = await super.run(input, { ...options, onFallback: options.onFallback ?? this.#onFallback });
    if (!result.ok) redactEach(result.errors);
    return result;
  }

  override async execute(input: I, options?: { signal?: AbortSignal }): Promise<O> {
    try {
      return await super.execute(input, options);
    } catch (error) {
      // Its message quotes each endpoint's error as text, which a thrown object's `toString` or a Symbol
      // message can make a URL with its key: cut as the layer's own errors are.
      throw error instanceof FallbackExhaustedError ? redactErrorChain(error) : error;
    }
  }
}
