/**
 * Runtime side of test/types-twentythree.test-d.ts: every option value the
 * types refuse there (an explicit `undefined`, a readonly list) is taken by
 * the runtime as the default or the list it is, so the CHANGELOG sentence
 * "Option types take an explicit `undefined` (under
 * `exactOptionalPropertyTypes`) and readonly lists (`as const`), as the
 * runtime always did" fails on the type side only. The casts below stand in
 * for what the types refuse.
 */
import { describe, expect, it } from "vitest";
import {
  type DurableObjectNamespaceLike,
  durableObjectStore,
  type KvNamespaceLike,
  kvStore,
  resilientProxy,
} from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { createResilience, memoryStore } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { corsPreflight } from "../../src/testing/index.ts";

// biome-ignore lint/suspicious/noExplicitAny: stands in for what the types refuse
type Loose = any;

const kv: KvNamespaceLike = {
  getWithMetadata: async () => ({ value: null, metadata: null }),
  put: async () => {},
};
const ns: DurableObjectNamespaceLike = {
  idFromName: (name) => name,
  get: () => ({ fetch: async () => new Response("{}") }),
};

describe("the runtime takes what the option types refuse", () => {
  it("an explicit undefined leaves each store's default", () => {
    expect(memoryStore({ maxKeys: undefined } as Loose).name).toBe("memory");
    expect(kvStore(kv, { scope: undefined } as Loose).name).toBe("kv");
    expect(durableObjectStore(ns, { timeout: undefined } as Loose).name).toBe("durable-object");
  });

  it("the proxy takes a frozen routes list and healthPath: undefined", async () => {
    const routes = Object.freeze([Object.freeze({ path: "/v1", upstream: "https://a.example" })]);
    const proxy = resilientProxy({ routes: routes as Loose, healthPath: undefined } as Loose);
    const res = await proxy.fetch(new Request("https://proxy.example/__resilience/health"), {}, { waitUntil() {} });
    expect(res.status).toBe(200);
  });

  it("createClient, degradation, FallbackChain#add and corsPreflight take undefined or a frozen list", async () => {
    expect(typeof createClient({ resilience: undefined } as Loose).get).toBe("function");
    const layer = createResilience({
      degradation: degradation({ levels: { medium: undefined, low: { features: Object.freeze(["core"]) } } as Loose }),
    });
    layer.degradation.setLevel("low");
    expect(layer.degradation.settings().features).toEqual(["core"]);
    layer.degradation.setLevel("medium");
    expect(layer.degradation.settings().maxSteps).toBe(30);
    const chain = new FallbackChain<string, number>("c").add(async () => 1, {
      name: "a",
      expectedQuality: undefined,
    } as Loose);
    await expect(chain.execute("x")).resolves.toBe(1);
    expect(corsPreflight({ allowHeaders: undefined } as Loose)).toBeTruthy();
  });
});
