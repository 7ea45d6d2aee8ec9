import { describe, expect, it } from "vitest";
import { parseRetryAfter } from "../../src/http/send/retry-after.ts";
import { createResilience, type RetryEvent } from "../../src/index.ts";
import { json, seededRandom, sequence, status, TestClock } from "../../src/testing/index.ts";
import { route, useMswServer } from "../helpers/msw.ts";

const server = useMswServer();
const URL_ = "https://gen.example/v1/video";

describe("Retry-After", () => {
  it("honours `Retry-After: 1` exactly, without jitter", async () => {
    const clock = new TestClock(5_000);
    const seen: number[] = [];
    const script = sequence([status(429, { retryAfter: 1 }), json({})]);
    route(server, "GET", URL_, (request, info) => {
      seen.push(clock.now());
      return script(request, info);
    });
    const resilience = createResilience({ clock, random: seededRandom(3) });
    const events: RetryEvent[] = [];
    resilience.on("retry", (e) => events.push(e));
    expect((await clock.run(resilience.fetch(URL_))).status).toBe(200);
    expect(seen).toEqual([5_000, 6_000]);
    expect(events[0]).toMatchObject({ delay: 1000, retryAfter: true, reason: "status 429" });
  });

  it("honours an HTTP-date Retry-After on 503", async () => {
    const clock = new TestClock(Date.parse("2026-11-28T12:00:00Z"));
    const seen: number[] = [];
    const script = sequence([status(503, { retryAfter: new Date("2026-11-28T12:00:07Z") }), json({})]);
    route(server, "GET", URL_, (request, info) => {
      seen.push(clock.now());
      return script(request, info);
    });
    const resilience = createResilience({ clock });
    await clock.run(resilience.fetch(URL_));
    expect((seen[1] as number) - (seen[0] as number)).toBe(7_000);
  });

  it("does not sleep through a Retry-After beyond maxRetryAfter: it resolves with that response", async () => {
    const upstream = route(server, "GET", URL_, status(429, { retryAfter: 120 }), json({}));
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { maxRetryAfter: 30_000 } });
    const res = await clock.run(resilience.fetch(URL_));
    expect(res.status).toBe(429);
    expect(upstream.count()).toBe(1);
    expect(clock.now()).toBe(0);
  });

  it("falls back to the computed backoff when the header is malformed", async () => {
    const upstream = route(server, "GET", URL_, status(503, { headers: { "retry-after": "soon-ish" } }), json({}));
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { jitter: "none", initialDelay: 40 } });
    expect((await clock.run(resilience.fetch(URL_))).status).toBe(200);
    expect(upstream.count()).toBe(2);
    expect(clock.now()).toBe(40);
  });

  it("parses seconds and dates, and rejects garbage", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("0", now)).toBe(0);
    expect(parseRetryAfter(" 12 ", now)).toBe(12_000);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("-5", now)).toBeUndefined();
    expect(parseRetryAfter("1.5", now)).toBeUndefined();
    expect(parseRetryAfter("", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter("not a date", now)).toBeUndefined();
  });
});
