import ky, { type KyInstance, type Options } from "ky";
import { ConfigError } from "../core/errors.ts";
import { createResilience, type Resilience } from "../http/create-resilience.ts";
import type { ResilienceOptions } from "../http/resilience-options.ts";

/** ky's options, plus the resilience layer to run them on. */
export interface ClientOptions extends Omit<Options, "fetch" | "retry"> {
  /**
   * The resilience layer, or options to create one.
   * @default a layer with default options
   */
  resilience?: Resilience | ResilienceOptions;
}

/**
 * A ky instance whose transport is `resilience.fetch`, with ky's own retry
 * off so retries happen once, in one place, under the retry budget. ky's
 * 10 s `timeout` is off too unless given: generation calls take longer, and
 * `resilience` has its own `timeout.attempt` / `timeout.total`.
 * `.json(schema)` validates with any Standard Schema (zod, valibot, …).
 *
 * @example
 * const api = createClient({ prefix: "https://api.example/v1", resilience: { retry: { maxAttempts: 4 } } });
 * const job = await api.post("jobs", { json: { prompt } }).json(JobSchema);
 */
export function createClient(options: ClientOptions = {}): KyInstance {
  const { resilience: layer, ...kyOptions } = options;
  if ("retry" in kyOptions || "fetch" in kyOptions) {
    const key = "retry" in kyOptions ? "retry" : "fetch";
    throw new ConfigError(
      key,
      `set retries and the transport on the resilience layer (\`resilience.${key === "retry" ? "retry" : "fetch"}\`), not on ky`,
    );
  }
  const resilience = isResilience(layer) ? layer : createResilience(layer);
  return ky.create({ timeout: false, ...kyOptions, retry: 0, fetch: resilience.fetch });
}

function isResilience(value: unknown): value is Resilience {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Resilience).fetch === "function" &&
    typeof (value as Resilience).health === "function"
  );
}
