import { type Clock, systemClock } from "../core/clock.ts";
import { shownValue } from "../core/shown-name.ts";

/**
 * A store's `clock` option: the real clock when none is given. Anything else
 * that is no clock is a `TypeError` naming the store when the store is made:
 * read later, it would fail every call that consults the store.
 */
export function storeClock(store: string, clock: Clock | undefined): Clock {
  if (clock === undefined) return systemClock;
  let ok = false;
  try {
    ok = typeof clock?.now === "function" && typeof clock.setTimer === "function";
  } catch {
    // A revoked Proxy or a getter that throws: no clock either.
  }
  if (!ok) throw new TypeError(`${store}: clock must be { now(), setTimer(fn, ms) }, got ${shownValue(clock)}`);
  return clock;
}
