import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore } from "../../src/cloudflare/index.ts";
import { memoryStore } from "../../src/index.ts";

/**
 * The stores' options as a whole, message for message: what is no options
 * object at all, options that cannot be read, and `kvStore`'s `random`.
 */
const kv = { getWithMetadata: async () => ({ value: null, metadata: null }), put: async () => {} };
const namespace = { idFromName: () => ({}), get: () => ({ fetch: async () => new Response("{}") }) };

function refusal(make: () => unknown): string | undefined {
  try {
    make();
  } catch (error) {
    return `${(error as Error).constructor.name}: ${(error as Error).message}`;
  }
  return undefined;
}

describe("store options that are no options", () => {
  it("refuses options that are not an object, naming the store and what was given", () => {
    expect(refusal(() => memoryStore(5 as never))).toBe("TypeError: memoryStore: expected options as an object, got 5");
    expect(refusal(() => memoryStore(null as never))).toBe(
      "TypeError: memoryStore: expected options as an object, got null",
    );
    expect(refusal(() => kvStore(kv as never, "x" as never))).toBe(
      'TypeError: kvStore: expected options as an object, got "x"',
    );
    expect(refusal(() => memoryStore({}))).toBeUndefined();
  });

  it("refuses options that cannot be read (a revoked Proxy)", () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(refusal(() => durableObjectStore(namespace as never, proxy as never))).toBe(
      "TypeError: durableObjectStore: expected options that can be read, got a value that cannot be read",
    );
  });

  it("refuses a kvStore random that is no function", () => {
    expect(refusal(() => kvStore(kv as never, { random: 5 as never }))).toBe(
      "TypeError: kvStore: random must be a function, got 5",
    );
    expect(refusal(() => kvStore(kv as never, { random: () => 0.5 }))).toBeUndefined();
  });
});

describe("durableObjectStore's policy", () => {
  it("is checked when the store is made, naming the threshold the object would refuse", () => {
    expect(refusal(() => durableObjectStore(namespace as never, { policy: 5 as never }))).toBe(
      "TypeError: durableObjectStore: policy: expected options as an object, got 5",
    );
    expect(refusal(() => durableObjectStore(namespace as never, { policy: { failureThreshold: 0 } }))).toBe(
      "TypeError: durableObjectStore: policy.failureThreshold is out of range or not a number (see the breaker options)",
    );
    expect(refusal(() => durableObjectStore(namespace as never, { policy: { failureRate: 2 } }))).toBe(
      "TypeError: durableObjectStore: policy.failureRate is out of range or not a number (see the breaker options)",
    );
    expect(refusal(() => durableObjectStore(namespace as never, { policy: { threshold: 3 } as never }))).toBe(
      'TypeError: durableObjectStore: policy: unknown option "threshold", expected one of failureThreshold, successThreshold, timeout, halfOpenMaxCalls, timeWindow, probeTimeout, minimumCalls, failureRate',
    );
    // A partial policy takes the breaker option's defaults for the rest, one given as `undefined` too.
    expect(refusal(() => durableObjectStore(namespace as never, { policy: { failureThreshold: 3 } }))).toBeUndefined();
    expect(refusal(() => durableObjectStore(namespace as never, { policy: { timeout: undefined } }))).toBeUndefined();
  });
});

describe("the Cloudflare stores' scope, ctx and counts", () => {
  it("refuse a scope that is no string, a ctx without waitUntil and a fractional flushThreshold", () => {
    for (const [name, make] of [
      ["kvStore", (o: object) => kvStore(kv as never, o as never)],
      ["durableObjectStore", (o: object) => durableObjectStore(namespace as never, o as never)],
    ] as const) {
      expect(refusal(() => make({ scope: 5 }))).toBe(`TypeError: ${name}: scope must be a string, got 5`);
      expect(refusal(() => make({ scope: null }))).toBe(`TypeError: ${name}: scope must be a string, got null`);
      expect(refusal(() => make({ ctx: {} }))).toBe(
        `TypeError: ${name}: ctx must be the request's context, with waitUntil, got an object`,
      );
      expect(refusal(() => make({ ctx: 5 }))).toBe(
        `TypeError: ${name}: ctx must be the request's context, with waitUntil, got 5`,
      );
      expect(refusal(() => make({ ctx: null }))).toBe(
        `TypeError: ${name}: ctx must be the request's context, with waitUntil, got null`,
      );
      expect(refusal(() => make({ scope: "video", ctx: { waitUntil() {} } }))).toBeUndefined();
    }
    expect(refusal(() => durableObjectStore(namespace as never, { flushThreshold: 2.5 }))).toBe(
      "TypeError: durableObjectStore: flushThreshold must be a whole number, got 2.5",
    );
  });
});
