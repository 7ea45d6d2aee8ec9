/**
 * The longest a host is held open on the word of a `Retry-After` header or a
 * shared snapshot: one day. A server (or a corrupted store) asking for more
 * gets this much; every later date is still a valid `Date`.
 */
export const MAX_HOLD_MS: number = 24 * 60 * 60 * 1000;

const MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
/** The three date forms RFC 9110 §5.6.7 accepts: IMF-fixdate, RFC 850, asctime. */
const HTTP_DATES = [
  new RegExp(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \\d{2} ${MONTH} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT$`),
  new RegExp(
    `^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \\d{2}-${MONTH}-\\d{2} \\d{2}:\\d{2}:\\d{2} GMT$`,
  ),
  new RegExp(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} [ \\d]\\d \\d{2}:\\d{2}:\\d{2} \\d{4}$`),
];

/**
 * Milliseconds to wait from a `Retry-After` header, given as delay-seconds or
 * an HTTP date (RFC 9110 §10.2.3), relative to `now`. `undefined` when the
 * header is absent or in any other form (`Date.parse` would read "Mon 2" as
 * a day in 2001): a bad header must not turn retries off, the computed
 * backoff applies instead. Never negative.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!HTTP_DATES.some((form) => form.test(text))) return undefined;
  // asctime carries no zone: it is GMT too.
  const date = Date.parse(text.endsWith("GMT") ? text : `${text} GMT`);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
