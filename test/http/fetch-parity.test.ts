/**
 * Where `resilience.fetch` does what fetch does with what fetch was given:
 * a request the platform refuses before sending (the caller's mistake, on
 * every path), an input fetch turns into its URL text, and the answer fetch
 * gives (its immutable headers) when the layer reads the body itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type FetchLike, type RequestEvent } from "../../src/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream } from "../helpers/http-upstream.ts";

/** What Node's fetch rejects with when undici refuses a header before sending anything. */
function refusal(code = "UND_ERR_INVALID_ARG"): TypeError {
  const cause = Object.assign(new Error("invalid keep-alive header"), { name: "InvalidArgumentError", code });
  return new TypeError("fetch failed", { cause });
}

/** A transport that refuses every request with `refusal()` and counts them. */
function refusing(code?: string) {
  const calls: string[] = [];
  const transport: FetchLike = async (input) => {
    calls.push(input instanceof Request ? input.url : String(input));
    throw refusal(code);
  };
  return { calls, transport };
}

describe("a request the platform refuses before sending is the caller's mistake", () => {
  it("rejects with the platform's TypeError at once: not retried, not counted, no attempt", async () => {
    for (const code of ["UND_ERR_INVALID_ARG", "UND_ERR_NOT_SUPPORTED"]) {
      const { calls, transport } = refusing(code);
      const clock = new TestClock(0);
      // A retry predicate that retries everything does not retry it either.
      const resilience = createResilience({ fetch: transport, clock, retry: { retryOn: { error: () => true } } });
      const events: RequestEvent[] = [];
      resilience.on("request", (event) => events.push(event));
      for (let i = 0; i < 6; i++) {
        const error = await clock.run(resilience.fetch("https://gen.example/v1/jobs")).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TypeError);
        expect(((error as TypeError).cause as { code?: string }).code).toBe(code);
      }
      expect(calls).toHaveLength(6);
      const health = resilience.health();
      expect([health.status, health.errorRate]).toEqual(["healthy", 0]);
      expect(health.breakers["gen.example"]?.failureCount ?? 0).toBe(0);
      expect(events.map((e) => [e.attempts, e.outcome, e.error])).toEqual(Array(6).fill([0, "error", "TypeError"]));
    }
  });

  it("a TypeError without a refusal code stays a network failure (retried, counted)", async () => {
    let n = 0;
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      fetch: async () => {
        n++;
        throw new TypeError("fetch failed", { cause: Object.assign(new Error("reset"), { code: "ECONNRESET" }) });
      },
    });
    const error = await clock.run(resilience.fetch("https://gen.example/v1")).catch((e: unknown) => e);
    expect([(error as Error).name, n]).toEqual(["RetryExhaustedError", 3]);
    expect(resilience.health().breakers["gen.example"]?.failureCount).toBe(3);
  });

  it("through a chain (hedged too), every endpoint refused: the TypeError, no breaker told", async () => {
    for (const hedge of [undefined, { delay: 10 }]) {
      const { calls, transport } = refusing();
      const clock = new TestClock(0);
      const resilience = createResilience({
        fetch: transport,
        clock,
        fallback: fallback([
          {
            name: "gen",
            ...(hedge ? { hedge } : {}),
            endpoints: [
              { name: "a", url: "https://a.example/v1" },
              { name: "b", url: "https://b.example/v1" },
            ],
          },
        ]),
      });
      const error = await clock.run(resilience.fetch("https://a.example/v1/jobs")).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect(calls.sort()).toEqual(["https://a.example/v1/jobs", "https://b.example/v1/jobs"]);
      const { breakers, errorRate } = resilience.health();
      expect([breakers["a.example"]?.failureCount ?? 0, breakers["b.example"]?.failureCount ?? 0, errorRate]).toEqual([
        0, 0, 0,
      ]);
    }
  });

  it("through a chain whose first endpoint answered, the answer stands when the next one is refused", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: async (input) => {
        if (String(input).startsWith("https://a.example")) return new Response("busy", { status: 503 });
        throw refusal();
      },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const res = await clock.run(resilience.fetch("https://a.example/v1/jobs"));
    expect([res.status, await res.text()]).toEqual([503, "busy"]);
  });

  it("through a chain, one endpoint refused and the other passed over (its breaker open): the TypeError", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: async (input) => {
        if (String(input).startsWith("https://b.example")) return new Response("down", { status: 503 });
        throw refusal();
      },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    // Opens b's breaker (a plain call, outside the chain).
    expect((await clock.run(resilience.fetch("https://b.example/v2"))).status).toBe(503);
    const before = resilience.fallback.chain("gen").statistics();
    const error = await clock.run(resilience.fetch("https://a.example/v1/jobs")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(resilience.fallback.chain("gen").statistics()).toEqual(before);
  });

  it("a chain's statistics do not count a refused endpoint, nor a run refused everywhere", async () => {
    let refuse = true;
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      fetch: async () => {
        if (refuse) throw refusal();
        return new Response("ok");
      },
      fallback: fallback([{ name: "gen", endpoints: [{ name: "a", url: "https://a.example/v1" }] }]),
    });
    refuse = false;
    await clock.run(resilience.fetch("https://a.example/v1/x"));
    refuse = true;
    await clock.run(resilience.fetch("https://a.example/v1/x")).catch(() => undefined);
    const { overallSuccessRate, fallbacks } = resilience.fallback.chain("gen").statistics();
    expect([overallSuccessRate, fallbacks.a?.calls, fallbacks.a?.successes]).toEqual([1, 1, 1]);
  });

  it("FallbackChain.run: an `uncounted` failure moves on, counted by neither the entry nor the runs", async () => {
    const chain = new FallbackChain<null, string>("work", { clock: new TestClock(0) });
    const mistake = new Error("the caller's");
    chain.add(() => Promise.reject(mistake), { name: "first" });
    chain.add(() => "served", { name: "second" });
    const uncounted = (error: unknown) => error === mistake;
    const served = await chain.run(null, { uncounted });
    expect(served).toMatchObject({ ok: true, value: "served", name: "second" });
    // One entry only, refused: the run is not counted either; counted, it would be.
    const alone = new FallbackChain<null, string>("alone", { clock: new TestClock(0) });
    alone.add(() => Promise.reject(mistake), { name: "only" });
    expect((await alone.run(null, { uncounted })).ok).toBe(false);
    expect(alone.statistics()).toMatchObject({ overallSuccessRate: 0, fallbacks: { only: { calls: 0 } } });
    await alone.run(null);
    expect(alone.statistics()).toMatchObject({ fallbacks: { only: { calls: 1, successes: 0 } } });
    expect(chain.statistics().fallbacks.first?.calls).toBe(0);
  });

  describe("with Node's own fetch and a real server (127.0.0.1)", () => {
    const api = httpUpstream();
    beforeAll(() => api.start());
    afterAll(() => api.stop());

    it("a hop-by-hop header a proxy forwards never opens a healthy host's breaker, plain or through a chain", async () => {
      const resilience = createResilience({
        retry: { initialDelay: 1, maxDelay: 1 },
        fallback: fallback([{ name: "spare", endpoints: [{ name: "one", url: `${api.base}/chain` }] }]),
      });
      for (let i = 0; i < 5; i++) {
        for (const url of [`${api.base}/p`, `${api.base}/chain/x`]) {
          const error = await resilience.fetch(url, { headers: { "keep-alive": "timeout=5" } }).catch((e) => e);
          expect(error).toBeInstanceOf(TypeError);
        }
      }
      expect(api.hits).toHaveLength(0);
      const ok = await resilience.fetch(`${api.base}/p`);
      expect([ok.status, await ok.text(), api.hits.length]).toEqual([200, "ok", 1]);
    });
  });
});

describe("an input fetch turns into its URL text", () => {
  const seen: string[] = [];
  const resilience = createResilience({
    fetch: async (input) => {
      seen.push(input instanceof Request ? input.url : String(input));
      return new Response("ok");
    },
  });

  it("a String object or an object with its own toString is sent to its URL", async () => {
    seen.length = 0;
    await resilience.fetch(new String("https://gen.example/a?x=1") as unknown as string);
    await resilience.fetch({ toString: () => "https://gen.example/b" } as unknown as string);
    expect(seen).toEqual(["https://gen.example/a?x=1", "https://gen.example/b"]);
  });

  it("an object without a prototype that becomes text by Symbol.toPrimitive or valueOf is sent there", async () => {
    seen.length = 0;
    const primitive = Object.assign(Object.create(null), { [Symbol.toPrimitive]: () => "https://gen.example/c" });
    const valued = Object.assign(Object.create(null), { valueOf: () => "https://gen.example/d" });
    await resilience.fetch(primitive as string);
    await resilience.fetch(valued as string);
    expect(seen).toEqual(["https://gen.example/c", "https://gen.example/d"]);
  });

  it("one whose toString throws rejects with that error; an object with no text of its own is refused, named", async () => {
    const broken = new Error("no text");
    await expect(
      resilience.fetch({
        toString: () => {
          throw broken;
        },
      } as unknown as string),
    ).rejects.toBe(broken);
    await expect(resilience.fetch({ url: "https://gen.example/" } as unknown as string)).rejects.toThrow(
      "resilience.fetch(input): expected a URL string, URL or Request, got Object",
    );
    // One that cannot become text at all: the runtime's TypeError, as fetch's ("Cannot convert object to primitive value").
    const bare = await resilience.fetch(Object.create(null) as string).catch((e: unknown) => e);
    const fetchs = await fetch(Object.create(null) as string).catch((e: unknown) => e);
    expect([(bare as Error).name, (bare as Error).message]).toEqual([
      (fetchs as Error).name,
      (fetchs as Error).message,
    ]);
  });
});

describe("the answer fetch gave, when the layer reads its body itself", () => {
  it("an integrity the layer checks answers with the transport's own response", async () => {
    const given: Response[] = [];
    const resilience = createResilience({
      redirects: "library",
      retry: false,
      fetch: async () => {
        const res = await fetch("data:text/plain,the final answer");
        given.push(res);
        return res;
      },
    });
    const digest = `sha256-${Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("the final answer"))).toString("base64")}`;
    const res = await resilience.fetch("https://gen.example/a", { integrity: digest });
    expect(res).toBe(given[0]);
    expect(() => res.headers.set("x", "1")).toThrow(TypeError);
    expect(await res.text()).toBe("the final answer");
    // A mismatch is still fetch's network error, the answer's body released.
    const mismatch = await resilience
      .fetch("https://gen.example/a", { integrity: "sha256-AAAAeyBcFs4y7UIAlCuLix4mLfxw2byfvHfElpmk8d8=" })
      .catch((e: unknown) => e);
    expect((mismatch as Error).cause).toBeInstanceOf(TypeError);
    expect(given.at(-1)?.bodyUsed || given.at(-1)?.body?.locked).toBe(true);
  });
});
