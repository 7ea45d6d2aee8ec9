import type { Clock } from "../core/clock.ts";
import { checkOptions } from "../core/options/check-options.ts";
import { redactUrlsIn } from "../core/redact-url.ts";
import type { ResilienceEvents } from "../core/resilience-events.ts";
import { shownValue } from "../core/shown-name.ts";
import type { DegradationControl, LevelReport } from "../http/stages.ts";
import { adjustParameters, type GenerationParams } from "../policies/adjust-parameters.ts";
import { initialLevelState, type LevelInput, type LevelState, nextLevel } from "../policies/degradation-machine.ts";
import {
  type DegradationTriggers,
  LEVEL_NAMES,
  type LevelName,
  type LevelSettings,
  type ResolvedDegradation,
  type ResolvedTriggers,
  resolveTriggers,
} from "./degradation-options.ts";
import { triggerRules } from "./degradation-rules.ts";
import { LatencyWindow } from "./latency-window.ts";
import { createCpuMeter, readBrowserFloor, readMemoryUsage } from "./runtime-signals.ts";

/** StoryCore-Engine's `get_current_level()`. */
export type CurrentLevel = LevelReport;

/**
 * What the machine uses of the layer's event emitter. Declared here, not as
 * the emitter's own class, so this entry's types name nothing the package
 * leaves unexported (a user's declaration emit would fail on it, TS2742).
 */
interface LevelEvents {
  has(name: "degradation"): boolean;
  emit(name: "degradation", event: ResilienceEvents["degradation"]): void;
}

/** Automatic evaluations happen at most this often, as calls settle (no timers). */
const EVALUATE_EVERY_MS = 1_000;

/**
 * Five levels of graceful degradation (StoryCore-Engine's `graceful_degradation`):
 * manual control, automatic triggers fed by every settled call, and
 * `adjust(params)` for generation parameters. A thin wrapper over the pure
 * {@link nextLevel}; levels move only as calls settle or methods are called.
 */
export class GracefulDegradation implements DegradationControl {
  readonly #config: ResolvedDegradation;
  readonly #clock: Clock;
  readonly #events: LevelEvents;
  readonly #window: LatencyWindow;
  readonly #cpu: () => number | undefined;
  #triggers: ResolvedTriggers;
  #state: LevelState;
  #lastEvaluation = Number.NEGATIVE_INFINITY;

  /** @internal Created by `createResilience`; use `resilience.degradation`. */
  constructor(config: ResolvedDegradation, clock: Clock, events: LevelEvents) {
    this.#config = config;
    this.#clock = clock;
    this.#events = events;
    this.#triggers = config.triggers;
    this.#window = new LatencyWindow(clock, config.window);
    // Over the layer's clock, as every trigger: a test clock that jumps ahead
    // makes a test's CPU time negligible, so fast tests stay deterministic.
    this.#cpu = createCpuMeter(() => clock.now());
    this.#state = initialLevelState(clock.now());
  }

  currentLevel(): CurrentLevel {
    const s = this.#state;
    const name = LEVEL_NAMES[s.index] as LevelName;
    return {
      name,
      percentage: this.#config.levels[name].percentage,
      since: s.since,
      reason: s.reason,
      pinned: s.pinned,
    };
  }

  /** The current level's name (cheap: the hot path reads it per call). */
  levelName(): LevelName {
    return LEVEL_NAMES[this.#state.index] as LevelName;
  }

  /** The settings of the current level, frozen: the layer's own, read by every later rewrite. */
  settings(): LevelSettings {
    return this.#config.levels[this.currentLevel().name];
  }

  /** One step down. A URL in `reason` is cut, as in `setLevel`'s: it reaches events and `debugInfo()`. */
  degrade(reason = "manual"): CurrentLevel {
    return this.#apply({ type: "degrade", reason: redactUrlsIn(String(reason)) });
  }

  /** One step up; also lifts a pin set by `setLevel`. */
  restore(): CurrentLevel {
    return this.#apply({ type: "restore" });
  }

  /** Sets a level and pins it: triggers leave it alone until `restore()`. */
  setLevel(name: LevelName, reason = "set manually"): CurrentLevel {
    if (!LEVEL_NAMES.includes(name)) {
      throw new TypeError(
        `degradation.setLevel(name): expected one of ${LEVEL_NAMES.map((n) => `"${n}"`).join(", ")}, got ${shownValue(name)}`,
      );
    }
    return this.#apply({ type: "set", level: name, reason: redactUrlsIn(String(reason)) });
  }

  /** Rewrites generation parameters for the current level (StoryCore-Engine's `adjust_parameters`). */
  adjust(params: GenerationParams): GenerationParams {
    if (typeof params !== "object" || params === null || Array.isArray(params)) {
      throw new TypeError(
        `degradation.adjust(params): expected an object, got ${params === null ? "null" : typeof params}`,
      );
    }
    return adjustParameters(params, this.settings(), this.#config);
  }

  /** Replaces trigger thresholds (StoryCore-Engine's `configure_triggers`); unnamed ones keep their value. */
  configureTriggers(triggers: DegradationTriggers): void {
    checkOptions(triggerRules, triggers, "degradation.triggers");
    this.#triggers = resolveTriggers(triggers, this.#triggers);
  }

  /** Feeds one settled call; evaluates the triggers at most once a second. */
  observe(latencyMs: number, failed: boolean): void {
    const now = this.#clock.now();
    this.#window.record(latencyMs, failed, now);
    // Below zero: a clock set back, evaluated at once rather than when the clock is back where it was.
    const since = now - this.#lastEvaluation;
    if (since >= EVALUATE_EVERY_MS || since < 0) this.evaluate();
  }

  /** Evaluates the triggers now. */
  evaluate(): CurrentLevel {
    this.#lastEvaluation = this.#clock.now();
    const { samples, errorRate, p95 } = this.#window.summary();
    return this.#apply({
      type: "evaluate",
      signals: {
        samples,
        errorRate,
        p95,
        memory: readMemoryUsage(),
        cpu: this.#cpu(),
        floor: this.#config.browserSignals ? readBrowserFloor() : 0,
      },
    });
  }

  /** Window statistics, for health. */
  window(): { samples: number; errorRate: number; p95: number | undefined } {
    return this.#window.summary();
  }

  #apply(input: LevelInput): CurrentLevel {
    const before = this.#state;
    this.#state = nextLevel(before, input, this.#clock.now(), {
      triggers: this.#triggers,
      minSamples: this.#config.minSamples,
      stepInterval: this.#config.stepInterval,
      restoreAfter: this.#config.restoreAfter,
    });
    const after = this.currentLevel();
    if (this.#state.index !== before.index && this.#events.has("degradation")) {
      this.#events.emit("degradation", {
        from: LEVEL_NAMES[before.index] as LevelName,
        to: after.name,
        percentage: after.percentage,
        reason: after.reason,
      });
    }
    return after;
  }
}
