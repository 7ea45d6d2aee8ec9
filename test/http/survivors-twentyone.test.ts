/**
 * Mutants of the twenty-first session's lines that its tests let live
 * (Stryker over `git diff 63e9886 2252529 -- src`), killed here through the
 * public entries: a store's `releaseProbe` is called for a lease and only
 * for one; the Durable Object store counts an outcome under a lease it does
 * not hold as any other, and a held lease's outcome only once; the proxy
 * percent-encodes an endpoint name for a space at either end, not inside;
 * the testing kit's refusals name the builder and the option.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { type BreakerStore, createResilience } from "../../src/index.ts";
import { json, latency, status, stream, TestClock } from "../../src/testing/index.ts";
import { FakeNamespace, fakeCtx } from "../cloudflare/fake-durable-object.ts";

const T0 = 1_000_000;

/** A layer over a custom store whose leases the test hands out; `b.example` is half-open when it returns. */
async function halfOpenLayer(grant: () => Promise<boolean | string | undefined>) {
  const clock = new TestClock(T0);
  const released: string[] = [];
  const store: BreakerStore = {
    name: "test",
    publish: () => {},
    peek: () => undefined,
    acquireProbe: () => grant(),
    releaseProbe: (_key, probe) => released.push(probe),
  };
  let n = 0;
  const resilience = createResilience({
    clock,
    store,
    retry: false,
    breaker: { failureThreshold: 1, timeout: 1_000 },
    fetch: (_input, init) =>
      n++ === 0
        ? Promise.resolve(new Response(null, { status: 503 }))
        : new Promise<Response>((_resolve, reject) =>
            init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
          ),
  });
  await clock.run(resilience.fetch("https://b.example/"));
  await clock.advance(1_000);
  return { resilience, released, clock };
}

describe("releaseProbe: for a lease, and only for one", () => {
  for (const [granted, expected] of [
    ["L1", ["L1"]],
    [true, []],
    [undefined, []],
  ] as const) {
    it(`an aborted probe whose store answered ${String(granted)} gives back ${JSON.stringify(expected)}`, async () => {
      const { resilience, released } = await halfOpenLayer(async () => granted);
      const controller = new AbortController();
      const probe = resilience.fetch("https://b.example/", { signal: controller.signal });
      await new Promise((resolve) => setTimeout(resolve, 0));
      controller.abort(new Error("gone"));
      await expect(probe).rejects.toThrow("gone");
      expect(released).toEqual(expected);
    });
  }

  it("a lease granted after the abort is given back; `true` granted late gives nothing back", async () => {
    for (const [late, expected] of [
      ["L2", ["L2"]],
      [true, []],
    ] as const) {
      let answer: (value: string | boolean) => void = () => {};
      const { resilience, released } = await halfOpenLayer(
        () =>
          new Promise((resolve) => {
            answer = resolve;
          }),
      );
      const controller = new AbortController();
      const probe = resilience.fetch("https://b.example/", { signal: controller.signal });
      await new Promise((resolve) => setTimeout(resolve, 0));
      controller.abort(new Error("gone"));
      await expect(probe).rejects.toThrow("gone");
      answer(late);
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(released).toEqual(expected);
    }
  });
});

describe("durableObjectStore: outcomes under leases", () => {
  function setup() {
    const clock = new TestClock(T0);
    const namespace = new FakeNamespace(clock);
    const ctx = fakeCtx();
    const policy = {
      failureThreshold: 3,
      successThreshold: 1,
      timeout: 1_000,
      halfOpenMaxCalls: 2,
      timeWindow: 30_000,
      probeTimeout: 5_000,
      minimumCalls: 10,
      failureRate: undefined,
    };
    const store = durableObjectStore(namespace, { ctx, clock, policy, flushThreshold: 1 });
    const reports = () =>
      namespace.requests.filter((r) => r.path === "/report").map((r) => r.body as Record<string, unknown>);
    return { clock, ctx, store, reports };
  }

  it("a failure under a lease this isolate does not hold is counted in the batch, at once at the threshold", async () => {
    const { ctx, store, reports, clock } = setup();
    store.record?.("k", true, clock.now(), "12345");
    await ctx.settle();
    expect(reports().at(-1)).toMatchObject({ fail: 1, ok: 0 });
    expect(reports().at(-1)).not.toHaveProperty("probe");
  });

  it("a held lease's failure goes as the probe's outcome, not counted in the batch too", async () => {
    const { ctx, store, reports, clock } = setup();
    for (let i = 0; i < 3; i++) store.record?.("k", true, clock.now());
    await ctx.settle();
    await clock.advance(1_000);
    const lease = (await store.acquireProbe?.("k", clock.now())) as string;
    const before = reports().length;
    store.record?.("k", true, clock.now(), lease);
    await ctx.settle();
    expect(reports().slice(before)).toEqual([expect.objectContaining({ fail: 0, probe: expect.anything() })]);
  });
});

describe("x-resilience-endpoint", () => {
  it("keeps a name with a space inside as written; encodes one with a space at either end", async () => {
    const named = async (name: string) => {
      const proxy = resilientProxy({
        routes: [{ path: "/", chain: { name: "video", endpoints: [{ name, url: "https://a.example/v1" }] } }],
        resilience: { retry: false, fetch: async () => new Response("ok") },
      });
      const res = await proxy.fetch(new Request("https://proxy.example/x"), {}, { waitUntil: () => {} });
      return res.headers.get("x-resilience-endpoint");
    };
    expect(await named("primary EU")).toBe("primary EU");
    expect(await named("eu\t")).toBe("eu%09");
  });
});

describe("the testing kit's refusals name the builder and the option", () => {
  const message = (build: () => unknown): string => {
    try {
      build();
    } catch (error) {
      return error instanceof TypeError ? error.message : `not a TypeError: ${String(error)}`;
    }
    return "built";
  };
  it.each([
    [() => json(1n), /^json\(body\): expected a value JSON can write \(/],
    [() => json({}, { headers: { "bad name": "x" } }), /^json\(body, \{ headers \}\): /],
    [() => status(503, { headers: { "bad name": "x" } }), /^status\(code, \{ headers \}\): /],
    [() => stream(["a"], { clock: { now: () => 0 } as never }), /^stream\(chunks, \{ clock \}\): expected a clock/],
    [() => latency(1, json({}), { clock: null as never }), /^latency\(ms, then, \{ clock \}\): expected a clock/],
  ])("%#", (build, expected) => {
    expect(message(build)).toMatch(expected);
  });
});
