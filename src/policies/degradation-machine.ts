import { LEVEL_NAMES, type LevelName } from "../core/levels.ts";

/** The level machine's whole state, plain data. */
export interface LevelState {
  /** Index into the five levels: 0 = full … 4 = minimal. */
  index: number;
  /** When the level was entered (epoch ms). */
  since: number;
  reason: string;
  /** Set by `setLevel`: automatic triggers leave the level alone until `restore()`. */
  pinned: boolean;
  /**
   * When the level last moved, automatically or by hand (an automatic step
   * waits `stepInterval` after either), or null before it first did (null,
   * not -Infinity: the state stays plain JSON).
   */
  lastStep: number | null;
  /** Since when the signals have been healthy, or null. */
  healthySince: number | null;
}

/** Signals one evaluation reads; `undefined` where unknown. */
export interface Signals {
  samples: number;
  errorRate: number;
  p95: number | undefined;
  memory: number | undefined;
  cpu: number | undefined;
  /** The best level the environment allows (e.g. a 2g connection). */
  floor: number;
}

export type LevelInput =
  | { type: "degrade"; reason: string }
  | { type: "restore" }
  | { type: "set"; level: LevelName; reason: string }
  | { type: "evaluate"; signals: Signals };

export interface MachineSettings {
  triggers: { errorRate: number; responseTime: number; memoryUsage: number; cpuUsage: number };
  minSamples: number;
  stepInterval: number;
  restoreAfter: number;
}

export function initialLevelState(now: number): LevelState {
  return {
    index: 0,
    since: now,
    reason: "initial",
    pinned: false,
    lastStep: null,
    healthySince: null,
  };
}

/**
 * The degradation level as a pure function. Automatic changes use two
 * thresholds (hysteresis): a breach (any trigger above its threshold) steps
 * down one level per `stepInterval`; stepping back up needs the signals to be
 * clearly healthy (error rate at most half its threshold, p95 at most 80% of
 * its threshold, over however few calls the window holds) for a whole
 * `restoreAfter`, one level at a time. Values in
 * between hold the level, so a noisy error rate near the threshold cannot
 * make it flap.
 */
export function nextLevel(s: LevelState, input: LevelInput, now: number, settings: MachineSettings): LevelState {
  // A clock set back: no instant lies ahead of now, so the pace of steps and
  // the recovery's `restoreAfter` count from now, not from where the clock was.
  if (now < (s.lastStep ?? now) || now < (s.healthySince ?? now) || now < s.since) {
    s = {
      ...s,
      since: Math.min(s.since, now),
      lastStep: s.lastStep === null ? null : Math.min(s.lastStep, now),
      healthySince: s.healthySince === null ? null : Math.min(s.healthySince, now),
    };
  }
  const last = LEVEL_NAMES.length - 1;
  switch (input.type) {
    case "degrade":
      return s.index >= last
        ? s
        : { ...s, index: s.index + 1, since: now, reason: input.reason, lastStep: now, healthySince: null };
    case "restore":
      if (s.index === 0) return s.pinned ? { ...s, pinned: false } : s;
      return {
        ...s,
        index: s.index - 1,
        since: now,
        reason: "restored",
        pinned: false,
        lastStep: now,
        healthySince: null,
      };
    case "set": {
      const index = LEVEL_NAMES.indexOf(input.level);
      if (index < 0) {
        throw new TypeError(
          `nextLevel: unknown level ${JSON.stringify(input.level)}, expected one of ${LEVEL_NAMES.join(", ")}`,
        );
      }
      // Pinned at the level it is at, nothing moved: the pace of automatic steps counts on, and the level
      // was entered when it was (only the pin and its reason are new).
      const same = index === s.index;
      return {
        ...s,
        index,
        since: same ? s.since : now,
        reason: input.reason,
        pinned: true,
        lastStep: same ? s.lastStep : now,
        healthySince: null,
      };
    }
    case "evaluate":
      return s.pinned ? s : evaluate(s, input.signals, now, settings);
  }
}

function evaluate(s: LevelState, signals: Signals, now: number, { triggers: t, ...o }: MachineSettings): LevelState {
  const last = LEVEL_NAMES.length - 1;
  // The environment's floor applies at once, whatever the history.
  if (s.index < signals.floor) {
    return {
      ...s,
      index: signals.floor,
      since: now,
      reason: "device or network limits",
      lastStep: now,
      healthySince: null,
    };
  }
  const enough = signals.samples >= o.minSamples;
  const breach = breachReason(signals, enough, t);
  if (breach) {
    if (s.index >= last || now - (s.lastStep ?? Number.NEGATIVE_INFINITY) < o.stepInterval)
      return s.healthySince === null ? s : { ...s, healthySince: null };
    return { ...s, index: s.index + 1, since: now, reason: breach, lastStep: now, healthySince: null };
  }
  // A breach needs `minSamples` calls; health is judged on whatever the window
  // holds: a trickle of failing calls is too few to step down, not a recovery.
  const healthy =
    signals.errorRate <= t.errorRate / 2 &&
    (signals.p95 === undefined || signals.p95 <= t.responseTime * 0.8) &&
    (signals.memory === undefined || signals.memory <= t.memoryUsage) &&
    (signals.cpu === undefined || signals.cpu <= t.cpuUsage);
  if (!healthy) return s.healthySince === null ? s : { ...s, healthySince: null };
  // Healthy from now on when it was not: with `restoreAfter: 0` this very evaluation steps up.
  if (s.index > signals.floor && now - (s.healthySince ?? now) >= o.restoreAfter) {
    return { ...s, index: s.index - 1, since: now, reason: "healthy", lastStep: now, healthySince: now };
  }
  return s.healthySince === null ? { ...s, healthySince: now } : s;
}

function breachReason(signals: Signals, enough: boolean, t: MachineSettings["triggers"]): string | undefined {
  if (enough && signals.errorRate > t.errorRate) return `error rate ${signals.errorRate.toFixed(2)} > ${t.errorRate}`;
  if (enough && signals.p95 !== undefined && signals.p95 > t.responseTime)
    return `p95 latency ${Math.round(signals.p95)} ms > ${t.responseTime} ms`;
  if (signals.memory !== undefined && signals.memory > t.memoryUsage)
    return `memory ${signals.memory.toFixed(2)} > ${t.memoryUsage}`;
  if (signals.cpu !== undefined && signals.cpu > t.cpuUsage) return `cpu ${signals.cpu.toFixed(2)} > ${t.cpuUsage}`;
  return undefined;
}
