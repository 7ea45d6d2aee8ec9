import { redactEach } from "../core/redact-url.ts";
import { type ChainResult, type ChainRunOptions, FallbackChain } from "../policies/fallback-chain.ts";

/**
 * A chain `resilience.fallback.chain(name)` creates for any async work. Its
 * entries' errors may name a URL (an SDK's "GET https://…?api_key=… returned
 * 503"): a run's `errors`, and with them the `FallbackExhaustedError` built
 * from them (message, `errors`, cause), have the URLs cut, as a chain of
 * `resilience.fetch` and `execute` cut them. The generic `FallbackChain` of
 * `./policies` knows no URLs and stays small: it keeps its work's errors as
 * they are.
 */
export class LayerChain<I, O> extends FallbackChain<I, O> {
  override async run(input: I, options?: ChainRunOptions<O, I>): Promise<ChainResult<O>> {
    const result = await super.run(input, options);
    if (!result.ok) redactEach(result.errors);
    return result;
  }
}
