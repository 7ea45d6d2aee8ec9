import { checkOptions } from "../core/options/check-options.ts";
import { plainCopy } from "../core/plain-copy.ts";
import type { DegradationStage } from "../http/stages.ts";
import { type DegradationOptions, resolveDegradation } from "./degradation-options.ts";
import { degradationRules, modelHeaderCheck } from "./degradation-rules.ts";
import { GracefulDegradation } from "./graceful-degradation.ts";
import { rewriteRequest } from "./rewrite-request.ts";
import { rulePicker } from "./rule-picker.ts";

/**
 * Graceful degradation for `resilience.fetch` (StoryCore-Engine's
 * `graceful_degradation`): five levels, triggers fed by every settled call,
 * and rules that rewrite generation parameters in requests. Options are
 * checked at once: a bad value throws `ConfigError` naming its path. Each
 * layer the stage joins gets its own level, exposed as
 * `resilience.degradation`.
 *
 * @example
 * const resilience = createResilience({
 *   degradation: degradation({ rules: [{ match: "https://api.example/v1/images", params: { quality: "quality" } }] }),
 * });
 * resilience.degradation.degrade("GPU queue full");
 */
export function degradation(options?: DegradationOptions): DegradationStage<GracefulDegradation> {
  if (options !== undefined)
    checkOptions({ degradation: { obj: degradationRules, ok: [modelHeaderCheck] } }, { degradation: options }, "");
  // Checked, then copied: an edit to the caller's objects changes nothing here.
  const config = resolveDegradation(plainCopy(options));
  const pick = rulePicker(config.rules);
  return {
    kind: "degradation",
    join(parts) {
      const levels = new GracefulDegradation(config, parts.clock, parts.events);
      return {
        handle: levels,
        stage: {
          levelName: () => levels.levelName(),
          // At `full` with no level header there is nothing to rewrite: the call skips an await.
          // The settings are the call's level, read when it started, not the level now: a
          // `Request` body is read first, and the level may move meanwhile.
          rewrite: (request, level) =>
            level === "full" && !config.levelHeader
              ? undefined
              : rewriteRequest(request, level, config.levels[level], config, pick),
          observe: (durationMs, failed) => levels.observe(durationMs, failed),
          report: () => ({ ...levels.currentLevel(), window: levels.window() }),
        },
      };
    },
  };
}
