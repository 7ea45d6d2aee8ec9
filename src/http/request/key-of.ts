import { redactUrl } from "../../core/redact-url.ts";
import { hostOf, parseRequestUrl } from "./host-key.ts";

/**
 * The breaker key of a request URL: its host, or what `breaker.key(url)`
 * returns (only then is a `URL` parsed per call).
 */
export function createKeyOf(custom: ((url: URL) => string) | undefined): (url: string) => string {
  if (!custom) return hostOf;
  return (url) => {
    const key = custom(parseRequestUrl(url));
    if (typeof key !== "string" || key.length === 0) {
      throw new TypeError(
        `breaker.key(url) must return a non-empty string, got ${typeof key === "string" ? '""' : key === null ? "null" : typeof key} for ${redactUrl(url)}`,
      );
    }
    return key;
  };
}
