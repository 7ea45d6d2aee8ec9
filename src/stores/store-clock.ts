import { type Clock, ownClock, systemClock, unrefTimer } from "../core/clock.ts";
import { shownValue } from "../core/shown-name.ts";

/** The clocks a store reads and waits on (see {@link storeClock}). */
export interface StoreClocks {
  /** The store's time, and its timers for a caller's wait (a probe's lease). */
  readonly clock: Clock;
  /** The same time, with timers for background work: on the real clock they keep no process alive. */
  readonly idle: Clock;
  /**
   * Hands the store a layer's clock (the layer calls `configure` with it):
   * a store made without a `clock` of its own runs on the first layer's,
   * so the instants it paces, shares and reads are the layer's. A layer on
   * a `TestClock` would otherwise meet a store on the real clock, whose
   * instants read as a clock set back on every call.
   */
  adopt(layerClock: Clock | undefined): void;
}

/**
 * A store's `clock` option: the real clock when none is given, until a layer
 * hands it its own. Anything else that is no clock is a `TypeError` naming the
 * store when the store is made: read later, it would fail every call that
 * consults the store. One given is read as the layer reads a clock of yours
 * (`ownClock`): a reading that is no finite number is a `TypeError`.
 */
export function storeClock(store: string, given: Clock | undefined): StoreClocks {
  let ok = given === undefined;
  try {
    ok ||= typeof given?.now === "function" && typeof given.setTimer === "function";
  } catch {
    // A revoked Proxy or a getter that throws: no clock either.
  }
  if (!ok) throw new TypeError(`${store}: clock must be { now(), setTimer(fn, ms) }, got ${shownValue(given)}`);
  // A clock of yours as the layer sees one: each reading checked, a cancelled timer that does nothing.
  let current = given ? ownClock(given) : systemClock;
  let settled = given !== undefined;
  const now = (): number => current.now();
  return {
    clock: { now, setTimer: (callback, ms) => current.setTimer(callback, ms) },
    idle: {
      now,
      setTimer: (callback, ms) => (current === systemClock ? unrefTimer(callback, ms) : current.setTimer(callback, ms)),
    },
    adopt(layerClock) {
      if (settled || !layerClock) return;
      current = layerClock;
      settled = true;
    },
  };
}
