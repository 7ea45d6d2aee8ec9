import { describe, expect, it } from "vitest";
import { failureResponse } from "../../src/cloudflare/index.ts";
import { CircuitOpenError, FallbackExhaustedError, RetryExhaustedError, TimeoutError } from "../../src/index.ts";

describe("failureResponse: what a Worker's client hears when the layer had no response", () => {
  const now = 1_000_000;

  it("an open circuit is a 503 with Retry-After in whole seconds, between 1 s and a day", async () => {
    const soon = failureResponse(new CircuitOpenError("api.example", now + 2_500), now);
    expect([soon.status, soon.headers.get("retry-after")]).toEqual([503, "3"]);
    expect(await soon.json()).toEqual({ error: "upstream circuit open" });
    expect(failureResponse(new CircuitOpenError("a", now - 5_000), now).headers.get("retry-after")).toBe("1");
    expect(failureResponse(new CircuitOpenError("a", now + 9e9), now).headers.get("retry-after")).toBe("86400");
  });

  it("counts whole ms on a clock with fractions: a 30 s spell is 30 s, not 31", () => {
    // 13889.79320946417 + 30000 reads back 30000.000000000004 ms later (as a `performance.now()` clock gives).
    const at = 13_889.79320946417;
    expect(at + 30_000 - at).toBeGreaterThan(30_000);
    expect(failureResponse(new CircuitOpenError("a", at + 30_000), at).headers.get("retry-after")).toBe("30");
    expect(failureResponse(new CircuitOpenError("a", at + 30_000.6), at).headers.get("retry-after")).toBe("31");
  });

  it("a chain error that lists no endpoint is a 502, neither open nor timed out", () => {
    expect(failureResponse(new FallbackExhaustedError("gen", {}), now).status).toBe(502);
  });

  it("a timeout is a 504, any other failure a 502", () => {
    expect(failureResponse(new TimeoutError("total", 5_000), now).status).toBe(504);
    expect(failureResponse(new RetryExhaustedError(3, new TypeError("fetch failed")), now).status).toBe(502);
    expect(failureResponse(new Error("anything"), now).status).toBe(502);
  });

  it("judges a chain by its endpoints: all open 503 (first to reopen), all timed out or open 504, else 502", () => {
    const chain = (errors: Record<string, unknown>) => new FallbackExhaustedError("gen", errors);
    const open = failureResponse(
      chain({ a: new CircuitOpenError("a", now + 9_000), b: new CircuitOpenError("b", now + 4_000) }),
      now,
    );
    expect([open.status, open.headers.get("retry-after")]).toEqual([503, "4"]);
    const timedOut = chain({ a: new TimeoutError("attempt", 30_000), b: new CircuitOpenError("b", now + 1) });
    expect(failureResponse(timedOut, now).status).toBe(504);
    const mixed = chain({ a: new TimeoutError("attempt", 30_000), b: new TypeError("fetch failed") });
    expect(failureResponse(mixed, now).status).toBe(502);
  });
});
