import type { DegradationTriggers, LevelName, LevelSettings } from "../core/levels.ts";
import type { GenerationParams } from "../policies/adjust-parameters.ts";
import type { ChainStatistics, FallbackChain } from "../policies/fallback-chain.ts";
import type { PipelineParts } from "./pipeline-parts.ts";
import type { CallRequest } from "./request/call-request.ts";
import type { CallState } from "./send/send-with-retries.ts";

/**
 * The two opt-in stages of `resilience.fetch`: fallback chains and graceful
 * degradation. Each lives in an entry of its own
 * (`@storycore/resilient-fetch/fallback`, `…/degradation`) and joins a layer
 * through the `fallback` or `degradation` option, so a bundle that never
 * imports them carries none of their code. The root only knows these
 * contracts.
 */

/** What served a call. */
export interface Served {
  response: Response;
  /** The endpoint's name in a chain, else the host. */
  endpoint: string;
  fromFallback: boolean;
  /** The answer was made without the network (a chain's `respond`): every request of the call came before it. */
  local?: boolean;
}

/** A chain a URL selected; its name is the call's breaker key. */
export interface ChainMatch {
  readonly name: string;
}

/** The fallback stage as one layer runs it. */
export interface ChainStage {
  /** The chain `url` selects, if any (`request`: the call's `Request` input, which may have one chosen). */
  match(url: string, request?: Request): ChainMatch | undefined;
  /** Runs one call down the chain it matched. */
  send(match: ChainMatch, request: CallRequest, state: CallState): Promise<Served>;
  /** Statistics of each chain, by name (for `health()`). */
  statistics(): Record<string, ChainStatistics>;
}

/** `resilience.fallback`: the layer's chains by name. */
export interface FallbackChains {
  /**
   * A fallback chain by name (StoryCore-Engine's `get_fallback_chain`). A
   * chain configured in `fallback(…)` is returned for its `statistics()` and
   * `ordered()`: it runs through `resilience.fetch` only, and its `add`,
   * `execute` and `run` throw a `TypeError` that says so. Any other name gets a new
   * chain for any async work, filled with `add(fn, { name, expectedQuality })`,
   * and reported in `health().fallback` beside the others.
   */
  chain<I = unknown, O = unknown>(name: string, options?: { order?: "fixed" | "adaptive" }): FallbackChain<I, O>;
}

/** What `fallback(chains)` returns: pass it as the `fallback` option. */
export interface FallbackStage<Handle = FallbackChains> {
  readonly kind: "fallback";
  /** @internal Joins one layer: the stage it runs and the handle `resilience.fallback` exposes. */
  join(parts: PipelineParts): { stage: ChainStage; handle: Handle };
}

/** The degradation level as health reports it (StoryCore-Engine's `get_current_level()`). */
export interface LevelReport {
  name: LevelName;
  percentage: number;
  /** When the level was entered (epoch ms): a `setLevel` to the level it is at keeps it. */
  since: number;
  /** Why it is at this level: the last move's reason, or a `setLevel`'s. */
  reason: string;
  /** True after `setLevel`: triggers leave it alone until `restore()`. */
  pinned: boolean;
}

/** The degradation stage as one layer runs it. */
export interface LevelStage {
  /** The current level's name (read once per call). */
  levelName(): LevelName;
  /** `request` rewritten for `level`, or `undefined` when nothing would change it. */
  rewrite(request: CallRequest, level: LevelName): Promise<CallRequest> | undefined;
  /** Feeds one settled call to the triggers. */
  observe(durationMs: number, failed: boolean): void;
  /** The level and its window, for `debugInfo()`. */
  report(): LevelReport & { window: { samples: number; errorRate: number; p95: number | undefined } };
}

/** `resilience.degradation`: the layer's level, moved by hand or by its triggers. */
export interface DegradationControl {
  /** The current level (StoryCore-Engine's `get_current_level()`). */
  currentLevel(): LevelReport;
  /** The current level's name. */
  levelName(): LevelName;
  /** The settings of the current level, frozen: the layer's own, read by every later rewrite. */
  settings(): LevelSettings;
  /** One step down. */
  degrade(reason?: string): LevelReport;
  /** One step up; also lifts a pin set by `setLevel`. */
  restore(): LevelReport;
  /** Sets a level and pins it: triggers leave it alone until `restore()`. */
  setLevel(name: LevelName, reason?: string): LevelReport;
  /** Rewrites generation parameters for the current level (StoryCore-Engine's `adjust_parameters`). */
  adjust(params: GenerationParams): GenerationParams;
  /** Replaces trigger thresholds (StoryCore-Engine's `configure_triggers`); unnamed ones keep their value. */
  configureTriggers(triggers: DegradationTriggers): void;
  /** Evaluates the triggers now. */
  evaluate(): LevelReport;
  /** Feeds one settled call; evaluates the triggers at most once a second. */
  observe(latencyMs: number, failed: boolean): void;
  /** Window statistics. */
  window(): { samples: number; errorRate: number; p95: number | undefined };
}

/** What `degradation(options)` returns: pass it as the `degradation` option. */
export interface DegradationStage<Handle = DegradationControl> {
  readonly kind: "degradation";
  /** @internal Joins one layer: the stage it runs and the handle `resilience.degradation` exposes. */
  join(parts: PipelineParts): { stage: LevelStage; handle: Handle };
}

/**
 * The handle a stage gives a layer: `undefined` when the option was not set
 * (or was `false`),
 * the handle when it was set to what `fallback(…)` or `degradation(…)`
 * returned, and the handle or `undefined` when all that is known is the
 * option's declared type (options built in a `ResilienceOptions` variable).
 */
export type HandleOf<S, General> = [S] extends [undefined]
  ? undefined
  : S extends { join(parts: never): { handle: infer H } }
    ? [General] extends [S]
      ? H | undefined
      : H
    : undefined;

/**
 * What `createResilience` returns on top of {@link Resilience}: the handles
 * typed from the stages it was given (`resilience.degradation` is a
 * `GracefulDegradation` when `degradation(…)` was passed, `undefined` when
 * nothing was).
 */
export interface StageHandles<F, D> {
  readonly fallback: HandleOf<F, FallbackStage>;
  readonly degradation: HandleOf<D, DegradationStage>;
}
