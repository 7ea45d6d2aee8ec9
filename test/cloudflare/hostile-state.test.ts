/**
 * Outside-in attack on shared state and the Worker proxy from hostile
 * peers (SECURITY.md: "Remote state is validated, never trusted", "A store
 * cannot break or stall a request", "The Worker health endpoint reveals
 * nothing without its token"). The KV namespace and Durable Object are
 * hand-made hostile bindings; time moves only on a `TestClock`.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { createResilience, isCircuitOpenError, type StoreEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const HOST = "gen.example";
const URL_ = `https://${HOST}/v1/x`;
const DAY = 86_400_000;
const START = Date.parse("2026-03-01T00:00:00Z");

/** A KV namespace whose every read answers `metadata` (or what `read` does), recording writes. */
function hostileKv(read: () => unknown) {
  const writes: unknown[] = [];
  return {
    writes,
    namespace: {
      getWithMetadata: (() => read()) as never,
      put: async (_key: string, _value: string, options?: { metadata?: unknown }) => {
        writes.push(options?.metadata);
      },
    },
  };
}

/** A layer on a stub upstream answering 200, with `store`, its background work collected. */
function layerWith(makeStore: (ctx: { waitUntil(p: Promise<unknown>): void }, clock: TestClock) => unknown) {
  const clock = new TestClock(START);
  const pending: Promise<unknown>[] = [];
  const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
  const store = makeStore(ctx, clock) as never;
  let sent = 0;
  const resilience = createResilience({
    clock,
    store,
    retry: false,
    fetch: async () => {
      sent++;
      return new Response("ok");
    },
  });
  const storeEvents: StoreEvent[] = [];
  resilience.on("store", (e) => storeEvents.push(e));
  /** One call; its outcome as text ("200" or the error's name). */
  const call = async (): Promise<string> => {
    const outcome = await clock.run(
      resilience.fetch(URL_).then(
        (r) => String(r.status),
        (e: unknown) => (e instanceof Error ? e.name : String(e)),
      ),
    );
    // Background store work, bounded: a read that never settles is not waited for.
    await clock.run(Promise.race([Promise.all(pending.splice(0)), new Promise((r) => setTimeout(r, 20))]));
    return outcome;
  };
  return { clock, resilience, call, storeEvents, sent: () => sent };
}

describe("hostile KV metadata", () => {
  const valid = (over: Record<string, unknown>) => ({
    v: 1,
    s: "open",
    g: 3,
    u: START + 60_000,
    w: START,
    r: null,
    ...over,
  });

  it("ignores foreign, corrupt and hostile metadata: every call is sent and answered", async () => {
    const cases: Array<[string, () => unknown]> = [
      [
        "__proto__ key",
        () =>
          Promise.resolve({
            metadata: JSON.parse(
              `{"v":1,"s":"open","g":3,"u":${START + 60_000},"w":${START},"r":null,"__proto__":{"polluted":true}}`,
            ),
          }),
      ],
      [
        "constructor key",
        () => Promise.resolve({ metadata: { ...valid({}), constructor: { prototype: { polluted: true } } } }),
      ],
      ["gen MAX_SAFE_INTEGER", () => Promise.resolve({ metadata: valid({ g: Number.MAX_SAFE_INTEGER }) })],
      ["gen NaN", () => Promise.resolve({ metadata: valid({ g: Number.NaN }) })],
      ["gen -1", () => Promise.resolve({ metadata: valid({ g: -1 }) })],
      ["gen 1.5", () => Promise.resolve({ metadata: valid({ g: 1.5 }) })],
      ["u Infinity", () => Promise.resolve({ metadata: valid({ u: Number.POSITIVE_INFINITY }) })],
      ["w NaN", () => Promise.resolve({ metadata: valid({ w: Number.NaN }) })],
      ["reason 10 KB", () => Promise.resolve({ metadata: valid({ r: "x".repeat(10_240) }) })],
      ["state as object", () => Promise.resolve({ metadata: valid({ s: { toString: () => "open" } }) })],
      ["a string", () => Promise.resolve({ metadata: "open" })],
      ["an array", () => Promise.resolve({ metadata: [valid({})] })],
      ["a 1 MB array", () => Promise.resolve({ metadata: new Array(1_000_000).fill(0) })],
      [
        "a throwing getter",
        () =>
          Promise.resolve({
            metadata: Object.defineProperty({ ...valid({}) }, "s", {
              get() {
                throw new Error("boom");
              },
              enumerable: true,
            }),
          }),
      ],
      ["no result at all", () => Promise.resolve(undefined)],
      [
        "a sync throw",
        () => {
          throw new Error("kv down");
        },
      ],
      ["a rejection", () => Promise.reject(new Error("kv down"))],
      ["never settles", () => new Promise(() => {})],
    ];
    for (const [name, read] of cases) {
      const kv = hostileKv(read);
      const { call, sent } = layerWith((ctx, clock) => kvStore(kv.namespace, { ctx, clock, random: () => 0 }));
      const outcomes = [await call(), await call(), await call()];
      expect([name, outcomes, sent()]).toEqual([name, ["200", "200", "200"], 3]);
      expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    }
  });

  it("holds a host open for at most 24 h on an openUntil centuries ahead, then probes it", async () => {
    const kv = hostileKv(() => Promise.resolve({ metadata: { v: 1, s: "open", g: 7, u: 1e300, w: START, r: "held" } }));
    const { clock, resilience, call, sent } = layerWith((ctx, clock) =>
      kvStore(kv.namespace, { ctx, clock, random: () => 0 }),
    );
    expect(await call()).toBe("200"); // the read starts in the background
    expect(await call()).toBe("CircuitOpenError");
    const openUntil = resilience.health().breakers[HOST]?.openUntil as number;
    expect(openUntil - clock.now()).toBeLessThanOrEqual(DAY);
    // A day on, reads every 30 s in between, the host is tried again.
    for (let t = 0; t < 49; t++) {
      await clock.advance(30 * 60_000);
      await call();
    }
    const before = sent();
    expect(await call()).toBe("200");
    expect(sent()).toBe(before + 1);
  });
});

describe("hostile Durable Object answers", () => {
  /** A namespace whose object answers every call with `answer()`. */
  const hostileDo = (answer: () => Response | Promise<Response>) => ({
    idFromName: (name: string) => name,
    get: () => ({ fetch: async () => answer() }),
  });

  it("ignores corrupt, foreign and huge verdicts and a throwing binding: every call is sent and answered", async () => {
    const verdict = (over: Record<string, unknown>) =>
      Response.json({ state: "open", gen: 1, openUntil: START + 60_000, reason: null, ...over });
    const cases: Array<[string, () => unknown]> = [
      [
        "__proto__",
        () =>
          hostileDo(
            () =>
              new Response(
                `{"state":"open","gen":1,"openUntil":${START + 60_000},"reason":null,"__proto__":{"polluted":true}}`,
              ),
          ),
      ],
      ["gen 2^53", () => hostileDo(() => verdict({ gen: 2 ** 53 }))],
      ["reason 10 KB", () => hostileDo(() => verdict({ reason: "x".repeat(10_240) }))],
      ["not JSON", () => hostileDo(() => new Response("<html>"))],
      ["5 MB of JSON", () => hostileDo(() => new Response(`[${"0,".repeat(2_500_000)}0]`))],
      ["a 500", () => hostileDo(() => new Response("{}", { status: 500 }))],
      [
        "a stalled body",
        () => hostileDo(() => new Response(new ReadableStream({ pull: () => new Promise(() => {}) }))),
      ],
      [
        "fetch throws",
        () => ({
          idFromName: (n: string) => n,
          get: () => ({
            fetch: () => {
              throw new Error("stub");
            },
          }),
        }),
      ],
      [
        "idFromName throws",
        () => ({
          idFromName: () => {
            throw new Error("id");
          },
          get: () => ({}),
        }),
      ],
    ];
    for (const [name, namespace] of cases) {
      const { call, sent } = layerWith((ctx, clock) =>
        durableObjectStore(namespace() as never, { ctx, clock, flushInterval: 1 }),
      );
      const outcomes = [await call(), await call(), await call()];
      expect([name, outcomes, sent()]).toEqual([name, ["200", "200", "200"], 3]);
      expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    }
  });

  it("cuts an openUntil of 1e300 from the object to 24 h", async () => {
    const ns = hostileDo(() => Response.json({ state: "open", gen: 2, openUntil: 1e300, reason: "held" }));
    const { clock, resilience, call } = layerWith((ctx, clock) => durableObjectStore(ns as never, { ctx, clock }));
    await call();
    const second = await call();
    expect(second).toBe("CircuitOpenError");
    const openUntil = resilience.health().breakers[HOST]?.openUntil as number;
    expect(openUntil - clock.now()).toBeLessThanOrEqual(DAY);
    const error = await clock.run(resilience.fetch(URL_).catch((e: unknown) => e));
    expect(isCircuitOpenError(error) && (error as { retryAt: number }).retryAt - clock.now() <= DAY).toBe(true);
  });
});

describe("the proxy's health endpoint against hostile callers", () => {
  const SECRET = "sk-live-0123456789abcdef";
  const ctx = { waitUntil: () => {} };
  const env = { RESILIENCE_HEALTH_TOKEN: "s3cret-token" };

  function proxy() {
    const seen: string[] = [];
    const handler = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: {
        retry: false,
        fetch: async (input: RequestInfo | URL) => {
          seen.push(String(input instanceof Request ? input.url : input));
          return new Response("upstream", { status: 503 });
        },
      },
    });
    const call = (path: string, init?: RequestInit) =>
      handler.fetch(new Request(`https://proxy.example${path}`, init), env, ctx);
    return { seen, call };
  }

  it("answers health JSON to no wrong token, spelling, method or path, and never shows a caller's key", async () => {
    const { call } = proxy();
    // A caller's key travels through the proxy first (query and header).
    await (await call(`/v1/x?api_key=${SECRET}`, { headers: { authorization: `Bearer ${SECRET}` } })).text();
    const attempts: Array<[string, RequestInit | undefined]> = [
      ["/__resilience/health", undefined],
      ["/__resilience/health", { headers: { authorization: "" } }],
      ["/__resilience/health", { headers: { authorization: "Bearer " } }],
      ["/__resilience/health", { headers: { authorization: "Bearer s3cret-toke" } }],
      ["/__resilience/health", { headers: { authorization: "Bearer s3cret-token2" } }],
      ["/__resilience/health", { headers: { authorization: "Bearer\u00a0s3cret-token" } }],
      ["/__resilience/health", { headers: { authorization: "Basic s3cret-token" } }],
      ["/__resilience/health", { headers: { authorization: "s3cret-token" } }],
      ["/__resilience/health", { headers: { authorization: "Bearer S3CRET-TOKEN" } }],
      ["/__resilience/health?x=1", undefined],
      ["/__resilience/health/", undefined],
      ["/__resilience//health", undefined],
      ["/__resilience/%68ealth", undefined],
      ["//__resilience/health", undefined],
      ["/__resilience/health", { method: "HEAD" }],
      ["/__resilience/health", { method: "POST", body: "x" }],
      ["/__resilience/health", { method: "OPTIONS" }],
    ];
    for (const [path, init] of attempts) {
      const res = await call(path, init);
      const text = res.body ? await res.text() : "";
      expect([path, init, text]).not.toEqual([path, init, expect.stringContaining('"breakers"')]);
    }
    // RFC 9110's credentials: one or more spaces between the scheme and the token.
    for (const authorization of ["Bearer s3cret-token", " Bearer s3cret-token\t", "Bearer  s3cret-token"]) {
      const ok = await call("/__resilience/health?cache=bust", { headers: { authorization } });
      expect(ok.status).toBe(200);
      const text = await ok.text();
      expect(text).toContain('"breakers"');
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain("s3cret-token");
    }
  });
});
