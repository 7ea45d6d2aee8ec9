import { unlessThrows } from "./errors.ts";
import { redactUrlsIn } from "./redact-url.ts";

/**
 * What a store event's `detail` says of an error: its text, with the URLs
 * in it cut as everywhere else (a client's error may quote the URL it
 * called, token and all). An error that cannot be turned into text (an
 * object without a prototype, a hostile `toString`) is said to be one: the
 * event still fires.
 */
export function errorDetail(error: unknown): string {
  return unlessThrows(() => redactUrlsIn(String(error)), "an error that cannot be shown as text");
}

/**
 * An error's name as `debugInfo()`'s records and the `request` and `retry`
 * events show it: an `Error`'s name with its URLs cut, any other thrown
 * value by its kind.
 */
export function errorName(error: unknown): string {
  // A value that throws when looked at (a revoked Proxy, a `name` getter that throws) is named by its kind.
  return unlessThrows(
    () => {
      if (!(error instanceof Error)) return typeof error;
      const { name } = error;
      return typeof name === "string" ? redactUrlsIn(name) : typeof name;
    },
    typeof error,
  );
}
