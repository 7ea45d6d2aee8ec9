import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";

describe("a layer's chain (resilience.fallback.chain(name)) checks run's and execute's options as FallbackChain does", () => {
  const chainOf = () => {
    let calls = 0;
    const chain = createResilience({
      fallback: fallback([{ name: "images", endpoints: [{ name: "a", url: "https://a.example/v1" }] }]),
    })
      .fallback.chain<number, number>("c")
      .add(
        async (n) => {
          calls++;
          return n;
        },
        { name: "only" },
      );
    return { chain, calls: () => calls };
  };

  it.each([
    [null, 'fallbackChain("c").run: expected object, received null'],
    [5, 'fallbackChain("c").run: expected object, received 5'],
    [[], 'fallbackChain("c").run: expected object, received an array'],
    [{ onFallback: null }, 'fallbackChain("c").run.onFallback: expected a function, received null'],
    [Object.create({ hedgDelay: 5 }), 'fallbackChain("c").run: unknown option "hedgDelay"'],
  ])("run refuses %o before anything runs", async (options, message) => {
    const { chain, calls } = chainOf();
    const refused = (await chain.run(1, options as never).catch((error: unknown) => error)) as Error;
    expect([refused.name, refused.message]).toEqual(["ConfigError", message]);
    expect(calls()).toBe(0);
  });

  it.each([
    [null, 'fallbackChain("c").execute: expected object, received null'],
    [{ hedgDelay: 5 }, 'fallbackChain("c").execute: unknown option "hedgDelay"'],
    [{ signal: {} }, 'fallbackChain("c").execute.signal: expected an AbortSignal, received an object'],
  ])("execute refuses %o before anything runs", async (options, message) => {
    const { chain, calls } = chainOf();
    const refused = (await chain.execute(1, options as never).catch((error: unknown) => error)) as Error;
    expect([refused.name, refused.message]).toEqual(["ConfigError", message]);
    expect(calls()).toBe(0);
  });

  it("a run's own onFallback is told of the entries passed over instead of the layer's listeners (docs/fallback.md)", async () => {
    const resilience = createResilience({
      fallback: fallback([{ name: "images", endpoints: [{ name: "a", url: "https://a.example/v1" }] }]),
    });
    const heard: string[] = [];
    resilience.on("fallback", (e) => heard.push(`layer ${e.from}`));
    const chain = resilience.fallback
      .chain<number, number>("c")
      .add(
        async () => {
          throw new Error("down");
        },
        { name: "first" },
      )
      .add(async (n) => n, { name: "second" });
    expect(await chain.execute(1)).toBe(1);
    expect(heard).toEqual(["layer first"]);
    const own: string[] = [];
    expect(await chain.run(2, { onFallback: (e) => own.push(`own ${e.from}`) })).toMatchObject({ ok: true, value: 2 });
    expect([heard, own]).toEqual([["layer first"], ["own first"]]);
    const docs = readFileSync(new URL("../../docs/fallback.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(docs).toContain(
      "unless a `run` is given an `onFallback` of its own: that hook is told instead, and the layer's listeners hear nothing",
    );
  });
});
