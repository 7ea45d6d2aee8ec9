import { afterEach, describe, expect, it } from "vitest";
import { parseRetryAfter } from "../../src/http/send/retry-after.ts";

const NOV_6_1994 = Date.UTC(1994, 10, 6, 8, 49, 37);

describe("parseRetryAfter's dates", () => {
  const zone = process.env.TZ;
  afterEach(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });

  it("reads an asctime date, which names no zone, as GMT", () => {
    expect(parseRetryAfter("Sun Nov  6 08:49:37 1994", NOV_6_1994 - 5_000)).toBe(5_000);
  });

  it("reads an asctime date as GMT on a machine in another time zone too", () => {
    process.env.TZ = "America/New_York";
    expect(parseRetryAfter("Sun Nov  6 08:49:37 1994", NOV_6_1994 - 5_000)).toBe(5_000);
  });

  it("gives up on a date of the right shape that names no real day or time", () => {
    expect(parseRetryAfter("Mon, 32 Nov 1994 08:49:37 GMT", 0)).toBeUndefined();
    expect(parseRetryAfter("Sun, 06 Nov 1994 25:49:37 GMT", 0)).toBeUndefined();
  });

  it("gives up on a day the month does not have (Date.parse rolled 31 Feb into March), day 00, and 24:00", () => {
    expect(parseRetryAfter("Sat, 31 Feb 2024 00:00:00 GMT", 0)).toBeUndefined();
    expect(parseRetryAfter("Fri, 29 Feb 2023 00:00:00 GMT", 0)).toBeUndefined();
    expect(parseRetryAfter("Sun, 00 Nov 1994 08:49:37 GMT", 0)).toBeUndefined();
    expect(parseRetryAfter("Sun, 06 Nov 1994 24:00:00 GMT", 0)).toBeUndefined();
    expect(parseRetryAfter("Sun, 06 Nov 1994 08:60:00 GMT", 0)).toBeUndefined();
    expect(parseRetryAfter("Sun, 06 Nov 1994 08:49:61 GMT", 0)).toBeUndefined();
    // 29 Feb of a leap year is a day.
    const feb29 = Date.UTC(2024, 1, 29);
    expect(parseRetryAfter("Thu, 29 Feb 2024 00:00:10 GMT", feb29)).toBe(10_000);
  });

  it("reads a leap second as the second after :59, in all three forms", () => {
    const end = Date.UTC(2016, 11, 31, 23, 59, 59);
    expect(parseRetryAfter("Sat, 31 Dec 2016 23:59:60 GMT", end)).toBe(1_000);
    expect(parseRetryAfter("Saturday, 31-Dec-16 23:59:60 GMT", end)).toBe(1_000);
    expect(parseRetryAfter("Sat Dec 31 23:59:60 2016", end)).toBe(1_000);
  });

  it("reads RFC 850's two-digit year in the century that puts it at most 50 years ahead", () => {
    const in2025 = Date.UTC(2025, 0, 1);
    expect(parseRetryAfter("Thursday, 01-Jan-75 00:00:00 GMT", in2025)).toBe(Date.UTC(2075, 0, 1) - in2025);
    // 2076 would be 51 years ahead: 1976, in the past.
    expect(parseRetryAfter("Thursday, 01-Jan-76 00:00:00 GMT", in2025)).toBe(0);
    expect(parseRetryAfter("Sunday, 06-Nov-94 08:49:42 GMT", NOV_6_1994)).toBe(5_000);
    expect(parseRetryAfter("Wednesday, 01-Jan-25 00:00:07 GMT", in2025)).toBe(7_000);
  });

  it("reads years 0000 to 0099 as written (Date.UTC would make them 19xx): in the past", () => {
    expect(parseRetryAfter("Sat, 01 Jan 0000 00:00:00 GMT", 0)).toBe(0);
    expect(parseRetryAfter("Fri, 01 Jan 0099 00:00:00 GMT", Date.UTC(1998, 0, 1))).toBe(0);
  });

  it("trims only HTTP's whitespace (space, tab): a no-break space or other Unicode space makes no delay", () => {
    expect(parseRetryAfter(" \t120\t ", 0)).toBe(120_000);
    expect(parseRetryAfter("\u00a0120", 0)).toBeUndefined();
    expect(parseRetryAfter("120\u2003", 0)).toBeUndefined();
    expect(parseRetryAfter("\ufeffSun, 06 Nov 1994 08:49:37 GMT", 0)).toBeUndefined();
  });
});
