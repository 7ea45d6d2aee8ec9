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
});
