/**
 * Mutants of the twenty-second session's lines that its tests let live
 * (Stryker over `git diff 8923320 798561f -- src`), killed here through the
 * public entries: a probe that fails after its lease ran out re-opens the
 * circuit for the expiry, not for its own answer; a `WxH` size of exactly
 * 2^53 is scaled (only one past it is left as written); a key of `kvStore`
 * forgets the oldest of its dated-ahead values past the last 8, which is
 * then read anew.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeKv } from "../cloudflare/fake-kv.ts";
import { kvIsolateOn } from "../cloudflare/kv-isolate.ts";
import { flush } from "../helpers/flush.ts";

describe("a half-open probe that fails after its lease ran out", () => {
  it("re-opens the circuit for the expiry (docs/breakers.md: the expiry counts as the failure, the late answer for nothing)", async () => {
    const clock = new TestClock(0);
    let answer: ((response: Response) => void) | undefined;
    let calls = 0;
    const layer = createResilience({
      clock,
      retry: false,
      timeout: { attempt: 60_000 },
      breaker: { failureThreshold: 1, timeout: 1_000, probeTimeout: 5_000, halfOpenMaxCalls: 1 },
      fetch: () => {
        calls++;
        if (calls === 1) return Promise.resolve(new Response(null, { status: 503 }));
        return new Promise<Response>((resolve) => {
          answer = resolve;
        });
      },
    });
    const reasons: string[] = [];
    layer.on("breaker", (change) => reasons.push(`${change.from}>${change.to}: ${change.reason}`));
    expect((await layer.fetch("https://gen.example/a")).status).toBe(503);
    await clock.advance(1_000);
    const probe = layer.fetch("https://gen.example/b");
    await flush();
    await clock.advance(6_000); // the lease ran out at 6 s; nothing looked at the breaker since
    answer?.(new Response(null, { status: 503 }));
    expect((await probe).status).toBe(503);
    expect(reasons.at(-1)).toBe("half_open>open: probe lease expired");
  });
});

describe("a WxH size at 2^53", () => {
  it("is scaled at exactly 2^53 (only a dimension past it is left as written)", () => {
    const layer = createResilience({ degradation: degradation() });
    layer.degradation.setLevel("minimal");
    const exact = `${2 ** 53}x8`;
    const scaled = layer.degradation.adjust({ resolution: exact }).resolution as string;
    expect(scaled).toMatch(/^\d+x8$/);
    expect(scaled).not.toBe(exact);
    expect(layer.degradation.adjust({ resolution: `${2 ** 53 + 2}x8` }).resolution).toBe(`${2 ** 53 + 2}x8`);
  });
});

describe("kvStore's dated-ahead values past the last 8", () => {
  it("forgets the oldest: back after 8 others, a value is dated anew and its 24 h hold starts over", async () => {
    const START = Date.UTC(2026, 0, 1);
    const HOUR = 3_600_000;
    const tc = new TestClock(START);
    const kv = new FakeKv(tc, { propagation: 0 });
    const key = "cb:v1:default:gen.example";
    const reader = kvIsolateOn(kv, tc, tc, () => new Response("ok"));
    const w = START + 10 * 365 * 86_400_000; // ten years ahead
    const long = { v: 1, s: "open", g: 1, u: 1e300, w, r: "long" }; // held 24 h from its first read
    const short = (g: number) => ({ v: 1, s: "open", g, u: w + 1_000, w, r: "short" });
    kv.plant(key, long);
    const seen = [await reader.call(), await reader.call()];
    for (let h = 1; h <= 30; h++) {
      await tc.advance(HOUR);
      if (h <= 8) kv.plant(key, short(100 + h)); // 8 others: `long` is the ninth most recent, forgotten
      if (h === 9) kv.plant(key, long); // back: dated at 9 h, held until 33 h
      seen.push(await reader.call());
    }
    expect(seen.slice(0, 2)).toEqual(["200", "CircuitOpenError"]);
    // Kept (a mutant that never forgets), its hold would end at 24 h and the host be probed by 30 h.
    expect(seen.slice(26).every((x) => x === "CircuitOpenError")).toBe(true);
  });
});
