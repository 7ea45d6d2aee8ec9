import { afterAll, beforeAll, expect, it } from "vitest";
import { type FakeApi, startFakeApi } from "../../demo/fake-api.ts";
import worker from "../../examples/worker/index.ts";
import { seededRandom } from "../../src/testing/index.ts";

/**
 * examples/worker's handler, called as `npm run dev:worker` and its README's
 * curl commands call it, but in Node (the proxy is runtime-agnostic; the
 * workerd tests in test/workers cover the Worker runtime itself): the same
 * two fake providers, the vars of wrangler.toml, an in-memory KV namespace.
 */
let premium: FakeApi;
let standard: FakeApi;
const pending: Array<Promise<unknown>> = [];
const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
const kv = new Map<string, { value: string; metadata: unknown }>();
let env: Parameters<typeof worker.fetch>[1];

beforeAll(async () => {
  premium = await startFakeApi("premium", seededRandom(1), 0, "premium");
  standard = await startFakeApi("standard", seededRandom(2), 0, "standard");
  env = {
    BREAKERS: {
      getWithMetadata: async <M>(key: string) => {
        const entry = kv.get(key);
        return { value: entry?.value ?? null, metadata: (entry?.metadata ?? null) as M | null };
      },
      put: async (key: string, value: string, options?: { metadata?: unknown }) => {
        kv.set(key, { value, metadata: options?.metadata });
      },
    },
    BREAKER_STATE: {
      idFromName: () => {
        throw new Error("STORE is kv: the Durable Object is not used");
      },
      get: () => {
        throw new Error("STORE is kv: the Durable Object is not used");
      },
    },
    PRIMARY_URL: premium.url,
    STANDARD_URL: standard.url,
    STANDARD_KEY: "standard-dev-key",
    STORE: "kv",
    RESILIENCE_HEALTH_TOKEN: "dev-token",
  };
});

afterAll(async () => {
  await Promise.allSettled(pending);
  await Promise.all([premium?.close(), standard?.close()]);
});

const call = (path: string, init?: RequestInit) =>
  worker.fetch(new Request(`http://localhost:8787${path}`, init), env, ctx);

it("sends a video job to the premium provider, then to the standard one when premium fails (PREMIUM_FAIL_RATE=1)", async () => {
  const first = await call("/v1/video/jobs", { method: "POST", body: '{"prompt":"waves"}' });
  expect(first.status).toBe(200);
  expect(first.headers.get("x-resilience-endpoint")).toBe("premium");
  expect(await first.json()).toMatchObject({ provider: "premium", status: "done" });

  // What `PREMIUM_FAIL_RATE=1 npm run dev:worker` sets: every premium answer is a 503.
  premium.behaviour = { ...premium.behaviour, failRate: 1 };
  const second = await call("/v1/video/jobs", { method: "POST", body: '{"prompt":"waves"}' });
  expect(second.status).toBe(200);
  expect(second.headers.get("x-resilience-endpoint")).toBe("standard");
  expect(await second.json()).toMatchObject({ provider: "standard" });
  expect(standard.stats.requests).toBe(1);
});

it("guards the health endpoint with the token of wrangler.toml", async () => {
  expect((await call("/__resilience/health")).status).toBe(401);
  const health = await call("/__resilience/health", { headers: { authorization: "Bearer dev-token" } });
  expect(health.status).toBe(200);
  expect(await health.json()).toHaveProperty("breakers");
});
