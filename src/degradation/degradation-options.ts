import {
  type DegradationTriggers,
  deepFreeze,
  defaultLevels,
  LEVEL_NAMES,
  type LevelName,
  type LevelSettings,
  type ResolvedTriggers,
} from "../core/levels.ts";
import { withDefaults } from "../core/options/with-defaults.ts";

export {
  type DegradationTriggers,
  defaultLevels,
  LEVEL_NAMES,
  type LevelName,
  type LevelSettings,
  type ResolvedTriggers,
};

/** Where a parameter lives in a request. A bare string is a JSON body path. */
export type ParamLocation = string | { body: string } | { query: string } | { header: string };

/** Says where the guide's parameters live in matching requests. */
export interface DegradationRule {
  /**
   * URL prefix the rule applies to. One rule applies to a request: the
   * longest `match` that prefixes its URL, else the rule without `match`
   * (omitted, the rule applies to every request no other rule matches). Two
   * rules without `match`, or with the same one, are a `ConfigError`.
   */
  match?: string | undefined;
  params: Partial<Record<"quality" | "resolution" | "steps" | "model" | "features", ParamLocation>>;
}

export interface DegradationOptions {
  /** Per-level overrides of the guide's table. */
  levels?: Partial<Record<LevelName, Partial<LevelSettings> | undefined>> | undefined;
  triggers?: DegradationTriggers | undefined;
  /** Rules for rewriting requests; `[]` turns rewriting off. @default top-level JSON body fields */
  rules?: readonly DegradationRule[] | undefined;
  /** Resolution ladder, best first. @default ["2160p","1440p","1080p","720p","480p","360p"] */
  resolutions?: readonly string[] | undefined;
  /** `WxH` sizes are rounded down to a multiple of this. @default 8 */
  sizeMultiple?: number | undefined;
  /** Model ladders, best first; each level moves `modelStep` rungs down. @default [["premium","standard","basic"]] */
  models?: readonly (readonly string[])[] | undefined;
  /** Rolling window for error rate and p95, in ms. @default 60000 */
  window?: number | undefined;
  /**
   * Calls needed in the window before the error-rate and p95 triggers act
   * (the memory trigger and the browser floor need none). @default 20
   */
  minSamples?: number | undefined;
  /**
   * At most one step down per this many ms by the error-rate, p95 and
   * memory triggers; the browser floor (a slow connection, little device
   * memory) applies at once, however many levels it skips. @default 10000
   */
  stepInterval?: number | undefined;
  /** Healthy time needed before each automatic step up, in ms. @default 60000 */
  restoreAfter?: number | undefined;
  /** Header that carries the applied level's name, if set. @default none */
  levelHeader?: string | undefined;
  /** Read `navigator.connection` and `navigator.deviceMemory` for a floor. @default true */
  browserSignals?: boolean | undefined;
}

export interface ResolvedDegradation {
  levels: Record<LevelName, LevelSettings>;
  // `ResolvedTriggers` spelt out: this entry's types name nothing the package leaves unexported.
  triggers: { [K in keyof DegradationTriggers]-?: number };
  rules: readonly DegradationRule[];
  resolutions: readonly string[];
  sizeMultiple: number;
  models: readonly (readonly string[])[];
  window: number;
  minSamples: number;
  stepInterval: number;
  restoreAfter: number;
  levelHeader: string | undefined;
  browserSignals: boolean;
}

export const defaultRules: readonly DegradationRule[] = [
  { params: { quality: "quality", resolution: "resolution", steps: "steps", model: "model", features: "features" } },
];

export const defaultTriggers: Readonly<ResolvedTriggers> = {
  errorRate: 0.1,
  responseTime: 30_000,
  memoryUsage: 0.9,
  cpuUsage: 0.95,
};

export function resolveTriggers(triggers: DegradationTriggers | undefined, base: ResolvedTriggers): ResolvedTriggers {
  return withDefaults(base, triggers ?? {});
}

/** The defaults of every option but `levels`, `triggers` and `rules`, which need their own merge or copy. */
const plainDefaults: Readonly<Omit<ResolvedDegradation, "levels" | "triggers" | "rules">> = {
  resolutions: ["2160p", "1440p", "1080p", "720p", "480p", "360p"],
  sizeMultiple: 8,
  models: [["premium", "standard", "basic"]],
  window: 60_000,
  minSamples: 20,
  stepInterval: 10_000,
  restoreAfter: 60_000,
  levelHeader: undefined,
  browserSignals: true,
};

export function resolveDegradation(o: DegradationOptions | undefined): ResolvedDegradation {
  const levels = {} as Record<LevelName, LevelSettings>;
  for (const name of LEVEL_NAMES) levels[name] = withDefaults(defaultLevels[name], o?.levels?.[name] ?? {});
  return {
    ...withDefaults(plainDefaults, o ?? {}),
    // Frozen: `settings()` hands them out, and every layer the stage joins reads them.
    levels: deepFreeze(levels),
    triggers: resolveTriggers(o?.triggers, defaultTriggers),
    rules: o?.rules ?? [...defaultRules],
  };
}
