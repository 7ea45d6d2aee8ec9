import { describe, expect, it } from "vitest";
import { plainCopy } from "../../src/core/plain-copy.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

describe("plainCopy", () => {
  it("copies plain objects and arrays all the way down, keeps anything else, a `__proto__` key a key", () => {
    const fn = () => 1;
    const headers = new Headers({ a: "1" });
    const shared = { n: 1 };
    const given = JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown>;
    Object.assign(given, { list: [shared, shared], fn, headers, nested: { deep: [1, 2] } });
    const copy = plainCopy(given);
    expect(copy).not.toBe(given);
    expect(copy.list).not.toBe(given.list);
    expect((copy.list as object[])[0]).toBe((copy.list as object[])[1]);
    expect((copy.list as object[])[0]).not.toBe(shared);
    expect(copy.fn).toBe(fn);
    expect(copy.headers).toBe(headers);
    expect(Object.keys(copy)).toContain("__proto__");
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(copy).toEqual(given);
  });

  it("keeps symbol keys (ky's replaceOption marks an object with one), and keys defined not enumerable (read by name, they were checked)", () => {
    const marker = Symbol("replaceOption");
    const hidden = Symbol("hidden");
    const given = { [marker]: true, value: { list: [1] } } as Record<PropertyKey, unknown>;
    Object.defineProperty(given, hidden, { value: 1, enumerable: false });
    const copy = plainCopy(given);
    expect(copy[marker]).toBe(true);
    expect(copy.value).not.toBe(given.value);
    expect(copy.value).toEqual({ list: [1] });
    expect(Object.getOwnPropertySymbols(copy)).toEqual([marker, hidden]);
    expect(copy[hidden]).toBe(1);
  });

  it("keeps a key defined not enumerable not enumerable: JSON and a spread leave it out of the copy too", () => {
    const given = { user: "ann", nested: { a: 1 } } as Record<string, unknown>;
    Object.defineProperty(given, "password", { value: "hunter2", enumerable: false });
    Object.defineProperty(given.nested, "b", { value: 2, enumerable: false });
    const copy = plainCopy(given);
    expect(copy.password).toBe("hunter2");
    expect(JSON.stringify(copy)).toBe('{"user":"ann","nested":{"a":1}}');
    expect(Object.keys({ ...copy })).toEqual(["user", "nested"]);
    expect((copy.nested as Record<string, unknown>).b).toBe(2);
  });

  it("ends a cycle", () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    const copy = plainCopy(a);
    expect(copy.self).toBe(copy);
  });
});

describe("stages keep what was checked when they were made", () => {
  it("fallback(): an endpoint's headers edited afterwards are not sent", async () => {
    const chains = [
      {
        name: "gen",
        endpoints: [{ name: "a", url: "https://a.example/v1", headers: { "x-key": "one" } as Record<string, string> }],
      },
    ];
    const stage = fallback(chains);
    (chains[0]?.endpoints[0]?.headers as Record<string, string>)["x-key"] = "bad\nvalue";
    const seen: string[] = [];
    const resilience = createResilience({
      clock: new TestClock(),
      fallback: stage,
      retry: false,
      fetch: async (input, init) => {
        seen.push(new Request(input, init).headers.get("x-key") ?? "");
        return new Response("ok");
      },
    });
    expect((await resilience.fetch("https://a.example/v1/x")).status).toBe(200);
    expect(seen).toEqual(["one"]);
  });

  it("degradation(): a rule edited afterwards changes nothing", () => {
    const options = { levels: { high: { maxSteps: 40 } } };
    const stage = degradation(options);
    options.levels.high.maxSteps = -5;
    const resilience = createResilience({ clock: new TestClock(), degradation: stage });
    resilience.degradation.setLevel("high");
    expect(resilience.degradation.adjust({ steps: 50 })).toMatchObject({ steps: 40 });
  });
});
