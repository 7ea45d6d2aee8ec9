/**
 * `@storycore/resilient-fetch/degradation`: graceful degradation for
 * `resilience.fetch` (five levels, automatic triggers, rules that rewrite
 * quality, resolution, steps, model and features in requests). Opt in by
 * passing `degradation({…})` as the `degradation` option of
 * `createResilience`.
 */
export { defaultLevels, type LevelName, type LevelSettings } from "../core/levels.ts";
export type { GenerationParams } from "../policies/adjust-parameters.ts";
export type {
  DegradationOptions,
  DegradationRule,
  DegradationTriggers,
  ParamLocation,
} from "./degradation-options.ts";
export { degradation } from "./degradation-stage.ts";
export type { CurrentLevel, GracefulDegradation } from "./graceful-degradation.ts";
