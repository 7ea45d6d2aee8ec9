import type { BrowserBuild } from "./browser-build.ts";
import { shownValue } from "./shown-name.ts";
/**
 * Time as the library sees it. Every delay, timeout and breaker deadline a
 * call waits for goes through a `Clock`, so tests advance time instead of
 * sleeping. The one real timer is housekeeping no call waits for: the 1 s a
 * dropped body is drained for (unref'd, it keeps no process alive).
 */
export interface Clock {
  /**
   * Milliseconds since the epoch (or any origin the clock picks). Deadlines
   * and windows are instants on it: one set back is noticed where it matters
   * (see docs/breakers.md, "A clock set back").
   */
  now(): number;
  /** Runs `callback` once after `ms`; the returned function cancels it. */
  setTimer(callback: () => void, ms: number): () => void;
}

/**
 * The longest delay `setTimeout` keeps (2^31 - 1 ms, about 24.8 days):
 * browsers and Node overflow above it and fire at once, so timers clamp.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * `clock.setTimer` for a wait of any length: one past {@link MAX_TIMER_MS}
 * (a `Retry-After` of days, a long `timeout.total`) is set in steps, since a
 * timer holds no more. The returned function cancels the step under way.
 */
export function setLongTimer(clock: Pick<Clock, "setTimer">, callback: () => void, ms: number): () => void {
  // Set by the first step, at once.
  let cancel!: () => void;
  const step = (left: number): void => {
    const span = Math.min(left, MAX_TIMER_MS);
    cancel = clock.setTimer(() => (left > span ? step(left - span) : callback()), span);
  };
  step(ms);
  return () => cancel();
}

/**
 * The real clock: `Date.now` and `setTimeout`. Timers are not `unref`'d on
 * purpose: a caller awaiting a backoff must keep its process alive, and every
 * timer is cleared when its call settles, so none outlives its work.
 */
export const systemClock: Clock = /* @__PURE__ */ Object.freeze({ now: () => Date.now(), setTimer: realTimer });

/**
 * A clock of yours as the layer uses it: its timers as {@link ownTimer}
 * sets them, and each reading checked. One that is no finite number (NaN,
 * text, a `Date`) is thrown as a `TypeError` naming it as the layer's
 * refusals show a value (`got "2"`, `got an object`), as a throw of yours
 * would be: taken as it is, NaN would hold an opened breaker open for good.
 * Your methods are called on your clock: a class keeps its `this`.
 */
export function ownClock(clock: Clock): Clock {
  return {
    now() {
      const time: unknown = clock.now();
      if (Number.isFinite(time)) return time as number;
      throw new TypeError(`clock.now() must answer a finite number, got ${shownValue(time)}`);
    },
    setTimer: ownTimer(clock),
  };
}

/**
 * Your clock's `setTimer` as the layer uses it: a timer the layer cancels
 * never runs its callback, even when your `setTimer` returns no function
 * that cancels, or one that throws (the timer then runs out and does
 * nothing). So a missing cancel cannot fail a call that was served, count it
 * against its host, or leave a caller's abort unheard. `retry(fn)`, which
 * reads no time, takes only this.
 */
export function ownTimer(clock: Pick<Clock, "setTimer">): Clock["setTimer"] {
  return (callback, ms) => {
    let live = true;
    const cancel = clock.setTimer(() => live && callback(), ms);
    return () => {
      live = false;
      try {
        (cancel as unknown as () => void)();
      } catch {}
    };
  };
}

/** `setTimeout`, clamped to what it keeps: the real clock's timers, on their own for work that reads no time. */
export function realTimer(callback: () => void, ms: number): () => void {
  const handle = setTimeout(callback, Math.min(Math.max(ms, 0), MAX_TIMER_MS));
  return () => clearTimeout(handle);
}

/**
 * A real-time timer that does not keep a process alive, for housekeeping
 * that is no caller's work (a dropped body's drain, a store's background
 * write): it must never delay an exit. Node and Bun return a handle with
 * `unref`; Deno has `Deno.unrefTimer`; browsers and workerd have no process
 * to keep alive (the browser build keeps the plain timer).
 */
export function unrefTimer(callback: () => void, ms: number): () => void {
  if ((globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__) return realTimer(callback, ms);
  const handle: unknown = setTimeout(callback, Math.min(Math.max(ms, 0), MAX_TIMER_MS));
  if (typeof handle === "object" && handle !== null && "unref" in handle && typeof handle.unref === "function") {
    handle.unref();
  } else if (typeof handle === "number") {
    const deno = (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno;
    deno?.unrefTimer?.(handle);
  }
  return () => clearTimeout(handle as number);
}
