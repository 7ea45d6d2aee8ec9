/** The five levels of the StoryCore-Engine error-handling guide, best first. */
export type LevelName = "full" | "high" | "medium" | "low" | "minimal";
export const LEVEL_NAMES: readonly LevelName[] = /* @__PURE__ */ Object.freeze([
  "full",
  "high",
  "medium",
  "low",
  "minimal",
]);

/** What one level does to generation parameters (StoryCore-Engine's `DEGRADATION_LEVELS`). */
export interface LevelSettings {
  percentage: number;
  qualityMultiplier: number;
  resolutionScale: number;
  /** Cap on `steps`; `null` keeps the caller's. */
  maxSteps: number | null;
  /** Feature tiers kept; `"all"` keeps every feature. */
  features: readonly string[];
  /** How many rungs down each model ladder this level moves. */
  modelStep: number;
}

/**
 * The guide's table, frozen to the last array: a layer copies what it
 * overrides, so a write here would change every layer made afterwards.
 */
export const defaultLevels: Readonly<Record<LevelName, Readonly<LevelSettings>>> = /* @__PURE__ */ deepFreeze({
  full: {
    percentage: 100,
    qualityMultiplier: 1.0,
    resolutionScale: 1.0,
    maxSteps: null,
    features: ["all"],
    modelStep: 0,
  },
  high: {
    percentage: 80,
    qualityMultiplier: 0.9,
    resolutionScale: 0.95,
    maxSteps: null,
    features: ["core", "enhancements"],
    modelStep: 0,
  },
  medium: {
    percentage: 60,
    qualityMultiplier: 0.8,
    resolutionScale: 0.9,
    maxSteps: 30,
    features: ["core"],
    modelStep: 1,
  },
  low: {
    percentage: 40,
    qualityMultiplier: 0.6,
    resolutionScale: 0.8,
    maxSteps: 20,
    features: ["basic"],
    modelStep: 2,
  },
  minimal: {
    percentage: 20,
    qualityMultiplier: 0.4,
    resolutionScale: 0.7,
    maxSteps: 10,
    features: ["essential"],
    modelStep: 2,
  },
});

/** Freezes every level's settings and their `features`: what `settings()` hands out is read-only. */
export function deepFreeze<T extends Record<LevelName, LevelSettings>>(levels: T): T {
  for (const settings of Object.values(levels)) Object.freeze(Object.freeze(settings).features);
  return Object.freeze(levels);
}

/** Conditions that step the level down (StoryCore-Engine's `configure_triggers`). */
export interface DegradationTriggers {
  /** Failed share of calls in the window above which to degrade. @default 0.1 */
  errorRate?: number | undefined;
  /** p95 latency in ms above which to degrade. @default 30000 */
  responseTime?: number | undefined;
  /** Memory use (0..1) above which to degrade, where the runtime tells. @default 0.9 */
  memoryUsage?: number | undefined;
  /** CPU use (0..1) above which to degrade, where the runtime tells. @default 0.95 */
  cpuUsage?: number | undefined;
}

/** {@link DegradationTriggers} with every default applied. */
export type ResolvedTriggers = { [K in keyof DegradationTriggers]-?: number };
