import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { initialLevelState, type LevelState, nextLevel, type Signals } from "../../src/policies/index.ts";

const settings = {
  triggers: { errorRate: 0.1, responseTime: 30_000, memoryUsage: 0.9, cpuUsage: 0.95 },
  minSamples: 20,
  stepInterval: 10_000,
  restoreAfter: 60_000,
};
const calm: Signals = { samples: 100, errorRate: 0, p95: 100, memory: undefined, cpu: undefined, floor: 0 };

describe("the level machine (pure)", () => {
  it("judges health on however few calls the window holds: a high p95 or error rate holds a degraded level", () => {
    const degraded: LevelState = { ...initialLevelState(0), index: 1, lastStep: 0 };
    const levelAfterTwoMinutes = (signals: Partial<Signals>) => {
      let s = degraded;
      for (const t of [70_000, 140_000])
        s = nextLevel(s, { type: "evaluate", signals: { ...calm, samples: 3, ...signals } }, t, settings);
      return s.index;
    };
    // p95 at 80% of its threshold, and an error rate at half of its, are healthy; above either is not.
    expect(levelAfterTwoMinutes({ p95: 24_000, errorRate: 0.05 })).toBe(0);
    expect(levelAfterTwoMinutes({ p95: 24_001 })).toBe(1);
    expect(levelAfterTwoMinutes({ errorRate: 0.051 })).toBe(1);
    // Unknown latency is no reason to hold.
    expect(levelAfterTwoMinutes({ p95: undefined })).toBe(0);
  });

  it("memory and CPU above their thresholds degrade, with the reason; at or below, they are healthy", () => {
    const down = (signals: Partial<Signals>) =>
      nextLevel(initialLevelState(0), { type: "evaluate", signals: { ...calm, ...signals } }, 0, settings);
    expect(down({ memory: 0.95 })).toMatchObject({ index: 1, reason: "memory 0.95 > 0.9" });
    expect(down({ cpu: 0.99 })).toMatchObject({ index: 1, reason: "cpu 0.99 > 0.95" });
    expect(down({ memory: 0.9, cpu: 0.95 }).index).toBe(0);
    // Memory above its threshold also blocks a step back up.
    let s: LevelState = { ...initialLevelState(0), index: 1, lastStep: 0 };
    for (let t = 0; t <= 200_000; t += 5_000)
      s = nextLevel(s, { type: "evaluate", signals: { ...calm, memory: 0.91, errorRate: 0 } }, t, settings);
    expect(s.index).toBeGreaterThanOrEqual(1);
  });

  it("counts exactly minSamples as enough", () => {
    const s = nextLevel(
      initialLevelState(0),
      { type: "evaluate", signals: { ...calm, samples: 20, errorRate: 0.5 } },
      0,
      settings,
    );
    expect(s.index).toBe(1);
  });

  it("restore at full only lifts a pin; the floor says why it applied", () => {
    const pinned = { ...initialLevelState(0), pinned: true };
    expect(nextLevel(pinned, { type: "restore" }, 1, settings)).toMatchObject({ index: 0, pinned: false });
    const free = initialLevelState(0);
    expect(nextLevel(free, { type: "restore" }, 1, settings)).toBe(free);
    expect(nextLevel({ ...free, index: 2 }, { type: "restore" }, 1, settings)).toMatchObject({
      index: 1,
      reason: "restored",
    });
    expect(nextLevel(free, { type: "evaluate", signals: { ...calm, floor: 2 } }, 0, settings)).toMatchObject({
      index: 2,
      reason: "device or network limits",
    });
  });

  it("a breach while already at the bottom or inside stepInterval changes nothing but the health timer", () => {
    const bottom = { ...initialLevelState(0), index: 4, healthySince: null };
    expect(nextLevel(bottom, { type: "evaluate", signals: { ...calm, errorRate: 1 } }, 0, settings)).toBe(bottom);
    const recovering = { ...initialLevelState(0), index: 1, lastStep: 0, healthySince: 5 };
    expect(nextLevel(recovering, { type: "evaluate", signals: { ...calm, errorRate: 1 } }, 1_000, settings)).toEqual({
      ...recovering,
      healthySince: null,
    });
  });

  it("steps down one level per stepInterval while breached", () => {
    let s = initialLevelState(0);
    const levels: number[] = [];
    for (let t = 0; t <= 30_000; t += 1_000) {
      s = nextLevel(s, { type: "evaluate", signals: { ...calm, errorRate: 0.5 } }, t, settings);
      levels.push(s.index);
    }
    expect(levels.slice(0, 12)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2]);
    expect(s.index).toBe(4);
    expect(s.reason).toMatch(/error rate 0.50 > 0.1/);
  });

  it("needs minSamples before the error rate or latency count", () => {
    const s = nextLevel(
      initialLevelState(0),
      { type: "evaluate", signals: { ...calm, samples: 5, errorRate: 1, p95: 99_999 } },
      0,
      settings,
    );
    expect(s.index).toBe(0);
  });

  it("steps up one level after restoreAfter of health, one at a time", () => {
    let s: LevelState = { ...initialLevelState(0), index: 2, lastStep: 0 };
    const up: number[] = [];
    for (let t = 0; t <= 200_000; t += 5_000) {
      s = nextLevel(s, { type: "evaluate", signals: calm }, t, settings);
      if (up[up.length - 1] !== s.index) up.push(s.index);
    }
    expect(up).toEqual([2, 1, 0]);
  });

  it("holds the level in the band between healthy and breached", () => {
    let s: LevelState = { ...initialLevelState(0), index: 1 };
    for (let t = 0; t <= 600_000; t += 1_000)
      s = nextLevel(s, { type: "evaluate", signals: { ...calm, errorRate: 0.08 } }, t, settings);
    expect(s.index).toBe(1);
  });

  it("never flaps under a noisy error rate around the threshold (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.05, max: 0.15, noNaN: true }), { minLength: 50, maxLength: 400 }),
        (rates) => {
          let s = initialLevelState(0);
          let changes = 0;
          let lastDirection = 0;
          let reversals = 0;
          rates.forEach((errorRate, i) => {
            const next = nextLevel(s, { type: "evaluate", signals: { ...calm, errorRate } }, i * 1_000, settings);
            if (next.index !== s.index) {
              const direction = Math.sign(next.index - s.index);
              if (lastDirection !== 0 && direction !== lastDirection) reversals++;
              lastDirection = direction;
              changes++;
            }
            s = next;
          });
          // Going up needs restoreAfter (60 s) of error rates <= 0.05: impossible here, so it only ever goes down.
          return reversals === 0 && changes <= Math.ceil(rates.length / 10);
        },
      ),
    );
  });

  it("manual degrade, restore and setLevel; setLevel pins until restore", () => {
    let s = nextLevel(initialLevelState(0), { type: "degrade", reason: "load" }, 1, settings);
    expect(s).toMatchObject({ index: 1, reason: "load", since: 1 });
    s = nextLevel(s, { type: "set", level: "low", reason: "ops" }, 2, settings);
    expect(s).toMatchObject({ index: 3, pinned: true });
    s = nextLevel(s, { type: "evaluate", signals: calm }, 1_000_000, settings);
    s = nextLevel(s, { type: "evaluate", signals: calm }, 2_000_000, settings);
    expect(s.index).toBe(3);
    s = nextLevel(s, { type: "restore" }, 3, settings);
    expect(s).toMatchObject({ index: 2, pinned: false });
    const floor = nextLevel(initialLevelState(0), { type: "evaluate", signals: { ...calm, floor: 3 } }, 0, settings);
    expect(floor.index).toBe(3);
  });

  it("setLevel to the level it is at pins it with the new reason, and since stays when the level was entered", () => {
    const entered = nextLevel(initialLevelState(0), { type: "degrade", reason: "load" }, 1_000, settings);
    const pinned = nextLevel(entered, { type: "set", level: "high", reason: "ops" }, 50_000, settings);
    expect(pinned).toMatchObject({ index: 1, since: 1_000, reason: "ops", pinned: true, lastStep: 1_000 });
    const moved = nextLevel(pinned, { type: "set", level: "low", reason: "ops" }, 60_000, settings);
    expect(moved).toMatchObject({ index: 3, since: 60_000, lastStep: 60_000 });
  });
});

describe("the level machine after a clock set back (each instant that lies ahead counts from now)", () => {
  const T = 1_900_000_000_000;
  const DAY = 86_400_000;
  const now = T - DAY;
  const breach: Signals = { ...calm, errorRate: 0.5 };
  const at = (s: LevelState, signals: Signals, t: number) => nextLevel(s, { type: "evaluate", signals }, t, settings);

  it("the pace of steps: the next step comes stepInterval after the first look, not a day later", () => {
    const s: LevelState = { ...initialLevelState(0), index: 1, lastStep: T };
    const looked = at(s, breach, now);
    expect([looked.index, looked.lastStep]).toEqual([1, now]);
    expect(at(looked, breach, now + settings.stepInterval).index).toBe(2);
  });

  it("the recovery: restoreAfter counts from the first look, not from a healthy spell dated ahead", () => {
    const s: LevelState = { ...initialLevelState(0), index: 1, healthySince: T };
    const looked = at(s, calm, now);
    expect(looked.healthySince).toBe(now);
    expect(at(looked, calm, now + settings.restoreAfter - 1).index).toBe(1);
    expect(at(looked, calm, now + settings.restoreAfter).index).toBe(0);
  });

  it("no healthy spell yet: the first healthy look starts one, it restores nothing at once", () => {
    const s: LevelState = { ...initialLevelState(0), index: 1, lastStep: T, healthySince: null };
    const looked = at(s, calm, now);
    expect([looked.index, looked.healthySince]).toEqual([1, now]);
  });

  it("the level's since, dated ahead, is now at the first look", () => {
    const s: LevelState = { ...initialLevelState(0), index: 1, since: T };
    expect(at(s, calm, now).since).toBe(now);
  });
});
