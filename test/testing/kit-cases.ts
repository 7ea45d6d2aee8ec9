import { describe, expect, it } from "vitest";
import * as z from "zod";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import {
  corsPreflight,
  flaky,
  hang,
  json,
  latency,
  malformedJson,
  networkError,
  outage,
  recordEvents,
  seededRandom,
  sequence,
  status,
  stream,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";
import { useMswServer } from "../helpers/msw.ts";

/** The kit's suite; run in Node and in happy-dom by the two files beside this one. */
export function defineKitSuite(environment: string): void {
  // DOM environments preflight cross-origin requests; Node does not need it but it does no harm.
  const server = useMswServer(corsPreflight());
  const URL_ = "https://kit.example/v1/gen";
  const setup = (
    options: Omit<ResilienceOptions, "degradation"> & { degradation?: ReturnType<typeof degradation> } = {},
  ) => {
    const clock = new TestClock(10_000);
    const resilience = createResilience({ clock, random: seededRandom(1), ...options });
    return { clock, resilience, recorder: recordEvents(resilience) };
  };

  describe(`fault kit (${environment})`, () => {
    it("status with Retry-After in seconds and as a date", async () => {
      const { clock, resilience, recorder } = setup();
      const api = upstream(
        "GET",
        URL_,
        sequence([
          status(503, { retryAfter: 2 }),
          status(429, { retryAfter: new Date(10_000 + 2_000 + 5_000) }),
          json({ ok: 1 }),
        ]),
      );
      server.use(api.handler);
      const res = await clock.run(resilience.fetch(URL_));
      expect(res.status).toBe(200);
      expect(api.count()).toBe(3);
      expect(recorder.of("retry").map((e) => e.delay)).toEqual([2_000, 5_000]);
      recorder.expectRetries(2, "kit.example");
    });

    it("networkError makes fetch reject with a network error, which is retried", async () => {
      const { clock, resilience } = setup();
      const api = upstream("GET", URL_, networkError());
      server.use(api.handler);
      const error = await clock.run(resilience.fetch(URL_)).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: "RetryExhaustedError", attempts: 3 });
      // Node's fetch says TypeError; happy-dom's says DOMException "NetworkError".
      expect(["TypeError", "NetworkError"]).toContain(((error as Error).cause as Error).name);
      expect(api.count()).toBe(3);
    });

    it("latency delays headers on the injected clock", async () => {
      const { clock, resilience } = setup({ timeout: { attempt: 1_000 }, retry: false });
      server.use(upstream("GET", URL_, latency(5_000, json({}), { clock })).handler);
      await expect(clock.run(resilience.fetch(URL_))).rejects.toMatchObject({ name: "TimeoutError", phase: "attempt" });
      const fast = setup();
      server.use(upstream("GET", `${URL_}/fast`, latency(300, json({ ok: 1 }), { clock: fast.clock })).handler);
      expect((await fast.clock.run(fast.resilience.fetch(`${URL_}/fast`))).status).toBe(200);
      expect(fast.clock.now()).toBe(10_300);
    });

    it("hang never answers until the client gives up", async () => {
      const { clock, resilience } = setup({ timeout: { total: 3_000 } });
      const api = upstream("GET", URL_, hang());
      server.use(api.handler);
      await expect(clock.run(resilience.fetch(URL_))).rejects.toMatchObject({ name: "TimeoutError", phase: "total" });
      expect(api.count()).toBe(1);
    });

    it("stream delivers chunks over time, stalls, or breaks mid-body", async () => {
      const { clock, resilience } = setup();
      server.use(upstream("GET", URL_, stream(["a", "b", "c"], { clock, interval: 1_000 })).handler);
      const res = await resilience.fetch(URL_);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const decode = (v: Uint8Array | undefined) => new TextDecoder().decode(v);
      expect(decode((await reader.read()).value)).toBe("a");
      const second = reader.read();
      await clock.advance(1_000);
      expect(decode((await second).value)).toBe("b");
      await reader.cancel();

      server.use(upstream("GET", `${URL_}/broken`, stream(["x", "y"], { breakAfter: 1 })).handler);
      const broken = await resilience.fetch(`${URL_}/broken`);
      await expect(broken.text()).rejects.toThrow();

      server.use(upstream("GET", `${URL_}/stalled`, stream(["x", "y"], { stallAfter: 1 })).handler);
      const stalled = await resilience.fetch(`${URL_}/stalled`);
      const stalledReader = (stalled.body as ReadableStream<Uint8Array>).getReader();
      expect(decode((await stalledReader.read()).value)).toBe("x");
      const next = await Promise.race([stalledReader.read(), new Promise((r) => setTimeout(() => r("stalled"), 20))]);
      expect(next).toBe("stalled");
      await stalledReader.cancel();
    });

    it("malformedJson fails a validating fallback endpoint", async () => {
      const { clock, resilience, recorder } = setup({
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "primary", url: URL_, validate: z.object({ id: z.string() }) },
              { name: "spare", url: "https://spare.example/v1/gen" },
            ],
          },
        ]),
      });
      server.use(
        upstream("GET", URL_, malformedJson()).handler,
        upstream("GET", "https://spare.example/v1/gen", json({ id: "s" })).handler,
      );
      const res = await clock.run(resilience.fetch(URL_));
      expect(getResilienceInfo(res)?.endpoint).toBe("spare");
      recorder.expectFallback("primary", "spare");
      expect(recorder.of("fallback")[0]?.reason).toBe("invalid body: not JSON");
    });

    it("flaky fails the given share, reproducibly for a seed", async () => {
      const count = async (seed: number) => {
        const api = upstream("GET", `${URL_}/${seed}`, flaky(0.3, { seed }));
        server.use(api.handler);
        const resilience = createResilience({ retry: false, breaker: false });
        let failures = 0;
        for (let i = 0; i < 200; i++) if ((await resilience.fetch(`${URL_}/${seed}`)).status === 503) failures++;
        return failures;
      };
      const first = await count(7);
      expect(first).toBeGreaterThan(40);
      expect(first).toBeLessThan(80);
      expect(await count(7)).toBe(first);
      // 400 requests through happy-dom's fetch: seconds on a loaded machine.
    }, 30_000);

    it("outage follows the clock, and the recorder sees the breaker open and close", async () => {
      const { clock, resilience, recorder } = setup({
        retry: false,
        breaker: { failureThreshold: 2, timeout: 5_000, successThreshold: 1 },
      });
      server.use(
        upstream("GET", URL_, outage({ from: 10_000, until: 12_000, clock }, status(503), json({ ok: 1 }))).handler,
      );
      await resilience.fetch(URL_);
      await resilience.fetch(URL_);
      recorder.expectBreakerOpened("kit.example");
      await clock.advance(5_000);
      expect((await resilience.fetch(URL_)).status).toBe(200);
      recorder.expectBreakerClosed("kit.example");
      expect(() => recorder.expectBreakerOpened("other.example")).toThrow(
        /expected the breaker for "other.example" to open/,
      );
    });

    it("records headers and bodies per handler", async () => {
      const { clock, resilience } = setup({ retry: { idempotencyKey: true } });
      const api = upstream("POST", URL_, sequence([status(500), status(500), json({ id: 1 })]));
      server.use(api.handler);
      await clock.run(
        resilience.fetch(URL_, { method: "POST", body: '{"p":1}', headers: { authorization: "Bearer k" } }),
      );
      expect(api.count()).toBe(3);
      expect(new Set(api.header("idempotency-key")).size).toBe(1);
      expect(api.header("authorization")).toEqual(["Bearer k", "Bearer k", "Bearer k"]);
      expect(api.bodies).toEqual(['{"p":1}', '{"p":1}', '{"p":1}']);
      api.reset();
      expect(api.count()).toBe(0);
    });

    it("records degradation changes", () => {
      const { resilience, recorder } = setup({ degradation: degradation() });
      resilience.degradation.degrade("load");
      recorder.expectDegradedTo("high");
      recorder.stop();
      resilience.degradation.degrade("more");
      expect(recorder.of("degradation")).toHaveLength(1);
    });

    it("rejects bad arguments by name", () => {
      expect(() => flaky(1.5, { seed: 1 })).toThrow(/flaky\(rate\)/);
      expect(() => sequence([])).toThrow(/sequence\(faults\)/);
      expect(() => upstream("GET", URL_, "503" as never)).toThrow(/fault must be a function/);
    });
  });
}
