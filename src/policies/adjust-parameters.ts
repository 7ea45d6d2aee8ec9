import type { LevelSettings } from "../core/levels.ts";

/** The generation parameters the StoryCore-Engine guide names; any other field passes through. */
export interface GenerationParams {
  quality?: number;
  resolution?: string;
  steps?: number;
  model?: string;
  features?: unknown[];
  [other: string]: unknown;
}

/** The ladders `adjustParameters` reads: resolutions, the size multiple and model ladders. */
export interface ParameterTable {
  /** Resolution ladder, best first. */
  resolutions: readonly string[];
  /** `WxH` sizes are rounded down to a multiple of this. */
  sizeMultiple: number;
  /** Model ladders, best first. */
  models: readonly (readonly string[])[];
}

/**
 * Rewrites parameters for a level (StoryCore-Engine's `adjust_parameters`): quality
 * multiplied; resolution scaled then snapped down the ladder (or a `WxH`
 * size scaled and rounded down to `sizeMultiple`); steps capped; model moved
 * down its ladder; features filtered to the level's tiers. Pure; unknown
 * fields and values it does not understand are left as they are.
 *
 * @example
 * adjustParameters({ quality: 1, resolution: "1080p", steps: 50, model: "premium" }, levels.medium, table);
 * // → { quality: 0.8, resolution: "720p", steps: 30, model: "standard" }
 */
export function adjustParameters(
  params: GenerationParams,
  level: LevelSettings,
  table: ParameterTable,
): GenerationParams {
  // A spread copies own properties only, and defines them (a "__proto__" key
  // stays a plain own property, never a prototype).
  const out: GenerationParams = { ...params };
  if ("quality" in out && typeof out.quality === "number") out.quality = adjustQuality(out.quality, level);
  if ("resolution" in out && typeof out.resolution === "string")
    out.resolution = adjustResolution(out.resolution, level, table);
  if ("steps" in out && typeof out.steps === "number") out.steps = adjustSteps(out.steps, level);
  if ("model" in out && typeof out.model === "string") out.model = adjustModel(out.model, level, table);
  if ("features" in out && Array.isArray(out.features)) out.features = adjustFeatures(out.features, level);
  return out;
}

export function adjustQuality(quality: number, level: LevelSettings): number {
  // A multiplier of 1 changes nothing, not even the rounding.
  if (level.qualityMultiplier === 1) return quality;
  // To 12 significant digits: 0.8 × 0.9 is 0.72, not 0.7200000000000001,
  // and a small or precise quality keeps its digits (3.6e-7 stays 3.6e-7).
  return Number((quality * level.qualityMultiplier).toPrecision(12));
}

export function adjustSteps(steps: number, level: LevelSettings): number {
  return level.maxSteps === null ? steps : Math.min(steps, level.maxSteps);
}

/**
 * `NNNNp` is scaled then snapped down the ladder; `WxH` is scaled and
 * rounded down to the size multiple; a scale of 1 leaves either as it is.
 */
export function adjustResolution(resolution: string, level: LevelSettings, table: ParameterTable): string {
  // Unscaled, a resolution stays as written (off the ladder, or off the size multiple).
  if (level.resolutionScale >= 1) return resolution;
  const size = /^(\d+)\s*[x×]\s*(\d+)$/i.exec(resolution);
  if (size) {
    const m = table.sizeMultiple;
    const w = Number(size[1]);
    const h = Number(size[2]);
    // A dimension no float holds exactly is no size a model takes: left as
    // written. Compared as written (2^53 + 1 reads as 2^53 once a number).
    if (BigInt(size[1] as string) > 2n ** 53n || BigInt(size[2] as string) > 2n ** 53n) return resolution;
    // Never up: a size below the multiple stays as it is. Floating point
    // falls just short of a whole multiple (720 × 0.7 is 503.99999999999994):
    // within a relative 1e-12 it is that multiple.
    const scale = (n: number): number =>
      Math.min(n, Math.max(m, Math.floor(((n * level.resolutionScale) / m) * (1 + 1e-12)) * m));
    // A size the level keeps stays as written (`8 x 8`, `4X4`): only a change is respelt.
    return scale(w) === w && scale(h) === h ? resolution : `${scale(w)}x${scale(h)}`;
  }
  const lines = /^(\d+)p$/i.exec(resolution);
  if (!lines) return resolution;
  const target = Number(lines[1]) * level.resolutionScale;
  const ladder = table.resolutions
    .map((r) => ({ r, h: Number(/^(\d+)p$/i.exec(r)?.[1] ?? Number.NaN) }))
    .filter((x) => !Number.isNaN(x.h))
    .sort((a, b) => b.h - a.h);
  const fit = ladder.find((x) => x.h <= target + 1e-9);
  // Below the whole ladder: the lowest rung, unless that would raise it.
  const lowest = ladder[ladder.length - 1];
  return fit ? fit.r : lowest && lowest.h < Number(lines[1]) ? lowest.r : resolution;
}

export function adjustModel(model: string, level: LevelSettings, table: ParameterTable): string {
  for (const ladder of table.models) {
    const index = ladder.indexOf(model);
    if (index >= 0) return ladder[Math.min(ladder.length - 1, index + level.modelStep)] as string;
  }
  return model;
}

export function adjustFeatures(features: unknown[], level: LevelSettings): unknown[] {
  if (level.features.includes("all")) return features;
  return features.filter((f) => typeof f === "string" && level.features.includes(f));
}
