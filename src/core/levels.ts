/** The five levels of the StoryCore-Engine error-handling guide, best first. */
export type LevelName = "full" | "high" | "medium" | "low" | "minimal";
export const LEVEL_NAMES: readonly LevelName[] = ["full", "high", "medium", "low", "minimal"];

/** What one level does to generation parameters (StoryCore-Engine's `DEGRADATION_LEVELS`). */
export interface LevelSettings {
  percentage: number;
  qualityMultiplier: number;
  resolutionScale: number;
  /** Cap on `steps`; `null` keeps the caller's. */
  maxSteps: number | null;
  /** Feature tiers kept; `"all"` keeps every feature. */
  features: string[];
  /** How many rungs down each model ladder this level moves. */
  modelStep: number;
}

export const defaultLevels: Readonly<Record<LevelName, LevelSettings>> = {
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
};

/** Conditions that step the level down (StoryCore-Engine's `configure_triggers`). */
export interface DegradationTriggers {
  /** Failed share of calls in the window above which to degrade. @default 0.1 */
  errorRate?: number;
  /** p95 latency in ms above which to degrade. @default 30000 */
  responseTime?: number;
  /** Memory use (0..1) above which to degrade, where the runtime tells. @default 0.9 */
  memoryUsage?: number;
  /** CPU use (0..1) above which to degrade, where the runtime tells. @default 0.95 */
  cpuUsage?: number;
}
