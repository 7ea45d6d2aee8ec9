import type { Clock } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/**
 * A wall clock that can be set back or ahead: timers run on a `TestClock`
 * (the time that really passes), while `now()` reads that time plus an
 * offset that `step` moves, as an NTP step or a user changing the time does.
 */
export class WallClock implements Clock {
  readonly tc = new TestClock(0);
  offset: number;
  constructor(start: number) {
    this.offset = start;
  }
  now(): number {
    return this.tc.now() + this.offset;
  }
  setTimer(fn: () => void, ms: number): () => void {
    return this.tc.setTimer(fn, ms);
  }
  /** Steps the wall clock (negative: set back). */
  step(ms: number): void {
    this.offset += ms;
  }
  run<T>(p: Promise<T>): Promise<T> {
    return this.tc.run(p);
  }
  advance(ms: number): Promise<void> {
    return this.tc.advance(ms);
  }
}
