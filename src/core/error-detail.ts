import { redactUrlsIn } from "./redact-url.ts";

/**
 * What a store event's `detail` says of an error: its text, with the URLs
 * in it cut as everywhere else (a client's error may quote the URL it
 * called, token and all). An error that cannot be turned into text (an
 * object without a prototype, a hostile `toString`) is said to be one: the
 * event still fires.
 */
export function errorDetail(error: unknown): string {
  try {
    return redactUrlsIn(String(error));
  } catch {
    return "an error that cannot be shown as text";
  }
}
