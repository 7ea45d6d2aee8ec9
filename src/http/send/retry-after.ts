import { trimOws } from "../../core/trim.ts";

const MONTHS = "JanFebMarAprMayJunJulAugSepOctNovDec";
const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const TIME = "(\\d\\d):(\\d\\d):(\\d\\d)";
/**
 * The three date forms RFC 9110 §5.6.7 accepts. IMF-fixdate and RFC 850 read
 * into day, month, year, hours, minutes, seconds; asctime into month, day,
 * hours, minutes, seconds, year.
 */
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d\\d) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC_850 = new RegExp(`^(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, (\\d\\d)-${MONTH}-(\\d\\d) ${TIME} GMT$`);
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/**
 * Milliseconds to wait from a `Retry-After` header, given as delay-seconds or
 * an HTTP date (RFC 9110 §10.2.3), relative to `now`. `undefined` when the
 * header is absent or in any other form, a date no calendar holds (31 Feb,
 * 24:00) included: a bad header must not turn retries off, the computed
 * backoff applies instead. Never negative.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  // Only HTTP's own whitespace (space, tab) around the value; a no-break space is a byte of the value.
  const text = trimOws(value);
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = httpDate(text, now);
  return date === undefined ? undefined : Math.max(0, date - now);
}

/** Epoch ms of an HTTP date (all in GMT), read by hand: `Date.parse` drops a leap second and puts `60` in 1960. */
function httpDate(text: string, now: number): number | undefined {
  const asc = ASCTIME.exec(text);
  const [, day, month = "", year = "", hours, minutes, seconds] = asc
    ? ["", asc[2], asc[1], asc[6], asc[3], asc[4], asc[5]]
    : (IMF_FIXDATE.exec(text) ?? RFC_850.exec(text) ?? []);
  const monthIndex = MONTHS.indexOf(month) / 3;
  const [h, m, sec] = [hours, minutes, seconds].map(Number) as [number, number, number];
  const clock = ((h * 60 + m) * 60 + sec) * 1000;
  // setUTCFullYear, not Date.UTC, which reads years 0 to 99 as 1900 to 1999.
  const dayIn = (y: number): Date => {
    const date = new Date(0);
    date.setUTCFullYear(y, monthIndex, Number(day));
    return date;
  };
  let fullYear = Number(year);
  if (year.length === 2) {
    // RFC 850's two digits: the latest year ending in them whose date is at
    // most 50 years ahead (RFC 9110 §5.6.7), tried from the next century down.
    const limit = new Date(now);
    limit.setUTCFullYear(limit.getUTCFullYear() + 50);
    fullYear += limit.getUTCFullYear() - (limit.getUTCFullYear() % 100) + 100;
    while (dayIn(fullYear).getTime() + clock > limit.getTime()) fullYear -= 100;
  }
  const date = dayIn(fullYear);
  // Without a match the day is NaN: no date. A day past the month's end rolls
  // into the next month: no such date. A leap second is only ever 23:59:60.
  return date.getUTCMonth() !== monthIndex || h > 23 || m > 59 || sec > (h === 23 && m === 59 ? 60 : 59)
    ? undefined
    : date.getTime() + clock;
}

/**
 * {@link parseRetryAfter} of a response's `Retry-After`: `undefined` too when
 * the header cannot be read (a transport's `headers.get` that throws), so
 * such a 429 or 503 is a failure and retried as one, holding nothing.
 */
export function retryAfterOf(response: Response, now: number): number | undefined {
  try {
    return parseRetryAfter(response.headers.get("retry-after"), now);
  } catch {
    return undefined;
  }
}
