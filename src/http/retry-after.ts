/**
 * Milliseconds to wait from a `Retry-After` header, given as delay-seconds or
 * an HTTP date (RFC 9110 §10.2.3), relative to `now`. `undefined` when the
 * header is absent or malformed: a bad header must not turn retries off, the
 * computed backoff applies instead. Never negative.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
