/**
 * Outside-in attack on docs/cloudflare.md, sentence by sentence, through the `./cloudflare` entry.
 * Docs: docs/cloudflare.md ("`resilientProxy` checks its options when it is made", "each route's chain
 * (a `ConfigError` naming the route …)", "a misspelt option is a `ConfigError` too", "adds
 * `x-resilience-endpoint` (… so `decodeURIComponent` reads any name back; a name no encoding can carry,
 * with a lone surrogate, is a `ConfigError` when the proxy is made)", "`503` … `504` on a timeout and `502`
 * when no endpoint answered otherwise", "the query after the upstream's own", the headers it forwards
 * and drops, "The client's body goes on as a stream … a small body is retried", `GET /__resilience/health`,
 * `kvStore` "writes … inside `ctx.waitUntil`", "a trip reaches KV at most `minPublishInterval` +
 * `publishJitter` after it"), docs/degradation.md (the proxy's forwarded `content-length` dropped after a
 * rewrite), docs/retry.md#redirects (cross-origin hops).
 * How: `resilientProxy`, `kvStore` (./cloudflare), `degradation` (./degradation), `TestClock` (./testing);
 * the proxy's `fetch(request, env, ctx)` with a `ctx` whose `waitUntil` is recorded; real 127.0.0.1
 * servers (test/helpers/http-upstream.ts) and recording transports; the fake KV (test/cloudflare/fake-kv.ts).
 * Paths: plain upstream route, chain route, POST with a `Request` stream body, a redirect from upstream
 * (upstream and chain route), degradation rewriting a proxied JSON body, an aborted client request,
 * retries that end in timeouts, the health endpoint, a KV-backed proxy tripping.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a breaker key's lone surrogate sent as U+FFFD, chain: undefined and unknown route keys refused):
 * 1. docs/cloudflare.md "adds `x-resilience-endpoint` (the endpoint's name, percent-encoded when it holds
 *    what a header cannot …, so `decodeURIComponent` reads any name back; a name no encoding can carry, with
 *    a lone surrogate, is a `ConfigError` when the proxy is made)" and "`502` when no endpoint answered
 *    otherwise". Observed: with `resilience.breaker.key` returning a name with a lone surrogate (the
 *    endpoint's name on an upstream route is the breaker key), the proxy is made without a word; the upstream
 *    answers 200, and the client gets `502 {"error":"upstream unavailable"}`: `encodeURIComponent` throws a
 *    `URIError` inside `serve`'s `try` (src/cloudflare/resilient-proxy.ts, the `x-resilience-endpoint` set),
 *    and the `catch` hands it to `failureResponse`. The check at creation covers chain endpoint names only.
 * 2. docs/cloudflare.md "`resilientProxy` checks its options when it is made …: … each route's chain (a
 *    `ConfigError` naming the route, `routes.1.chain.endpoints.0.url` …)". Observed: a route
 *    `{ path: "/", chain: undefined }` throws a bare `TypeError: Cannot read properties of undefined
 *    (reading 'endpoints')`, naming no route, while `chain: null` (or `5`) is the `ConfigError`
 *    `routes.0.chain: expected object`. `checkOptions({ chain: chainRule }, …)` takes an `undefined` chain as
 *    absent, then `route.chain.endpoints.forEach` runs on it.
 * 3. docs/cloudflare.md "… and its own `store`, `healthPath` and `healthTokenVar` (a misspelt option is a
 *    `ConfigError` too)". Observed: a route's own keys are not checked: `{ path, upstream, headers }` (headers
 *    as a chain endpoint takes them, say a provider's `authorization`) is accepted, and the headers are
 *    silently never sent. Only the proxy's top-level keys go through `checkOptions`; routes are checked by
 *    hand for `path`/`upstream`/`chain` only.
 *
 * Held (plain `it`):
 * - Upstream route: path below and query after the upstream's own `?key=`; client hop and end-user headers
 *   dropped, hop headers of the answer dropped, `x-resilience-*` set (a real 127.0.0.1 server).
 * - Chain route, POST with a `Request` stream body and no key: each attempt and the spare get the same bytes,
 *   each endpoint its own `?key`, `x-resilience-endpoint` percent-encoded (` standard%` → `%20standard%25`).
 * - A 302 to another origin (upstream route, and a chain endpoint with its own `authorization`): neither the
 *   client's credentials nor the endpoint's key reach the other origin; the endpoint header names the first.
 * - A 307 on a small proxied POST replays the body.
 * - Degradation rewriting a proxied JSON body with the client's `content-length`: the upstream gets the new
 *   body with its own length, `x-degradation-level` names the level.
 * - Attempt timeouts that end the retries (the breaker opening meanwhile): `504`; the next call `503` with
 *   `Retry-After`.
 * - An aborted client: the proxy's fetch rejects with the reason, the upstream connection is closed, the
 *   breaker counts nothing.
 * - Health: no provider key or client query in `health()`, the 502 bodies fixed text.
 * - `kvStore` behind the proxy: a trip's write is handed to the tripping request's `waitUntil` and lands
 *   after the jitter; another call then gets `503` with `Retry-After`.
 */
import { describe, expect, it } from "vitest";
import { kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { ConfigError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeKv } from "../cloudflare/fake-kv.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

const up = httpUpstream();
const other = httpUpstream();
serveDuringFile(up, other);

/** A Worker `ExecutionContext` whose `waitUntil` is recorded. */
function ctx() {
  const tasks: Promise<unknown>[] = [];
  return {
    tasks,
    waitUntil(promise: Promise<unknown>) {
      tasks.push(promise);
    },
  };
}

const stream = (...parts: string[]) => {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const part of parts) controller.enqueue(encoder.encode(part));
      controller.close();
    },
  });
};

describe("x-resilience-endpoint: a name no header can carry", () => {
  it("an upstream route whose breaker key holds a lone surrogate: the upstream's 200 reaches the client (or the proxy refuses it when made)", async () => {
    const { fetch, sent } = recordingFetch(() => new Response("generated"));
    let made = true;
    let proxy: ReturnType<typeof resilientProxy> | undefined;
    try {
      proxy = resilientProxy({
        routes: [{ path: "/", upstream: "https://gen.example" }],
        resilience: { breaker: { key: () => "gen \uD800" }, retry: false, fetch },
      });
    } catch (error) {
      made = false;
      expect(error).toBeInstanceOf(ConfigError);
    }
    if (!made || !proxy) return;
    const res = await proxy.fetch(new Request("https://worker.example/jobs"), {}, ctx());
    expect(sent).toHaveLength(1);
    // cloudflare.md: "`502` when no endpoint answered otherwise": the endpoint answered.
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("generated");
    // cloudflare.md (since): the key's lone surrogate goes as U+FFFD.
    expect(decodeURIComponent(res.headers.get("x-resilience-endpoint") ?? "")).toBe("gen \uFFFD");
  });

  it("a chain endpoint's name with a lone surrogate is a ConfigError when the proxy is made", () => {
    expect(() =>
      resilientProxy({
        routes: [
          {
            path: "/",
            chain: { name: "c", endpoints: [{ name: "a\uD800", url: "https://a.example/v1" }] },
          },
        ],
      }),
    ).toThrow(ConfigError);
  });
});

describe("options checked when the proxy is made", () => {
  it("a route whose chain is undefined is a ConfigError naming the route", () => {
    let caught: unknown;
    try {
      resilientProxy({ routes: [{ path: "/", chain: undefined } as never] });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).path).toBe("routes.0.chain");
  });

  it("a route whose chain is null is that ConfigError", () => {
    let caught: unknown;
    try {
      resilientProxy({ routes: [{ path: "/", chain: null } as never] });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).path).toBe("routes.0.chain");
  });

  it("a misspelt (unknown) key of a route is refused, not dropped without a word", () => {
    expect(() =>
      resilientProxy({
        routes: [{ path: "/", upstream: "https://gen.example", headers: { authorization: "Bearer K" } } as never],
      }),
    ).toThrow();
  });

  it("a misspelt option of the proxy's own is a ConfigError", () => {
    expect(() =>
      resilientProxy({ routes: [{ path: "/", upstream: "https://gen.example" }], healthpath: "/h" } as never),
    ).toThrow(ConfigError);
  });
});

describe("forwarding over real 127.0.0.1 servers", () => {
  it("upstream route: path below, query after the upstream's key, headers dropped both ways, x-resilience-* set", async () => {
    up.on((hit) => {
      hit.res.writeHead(200, { connection: "x-up-hop", "x-up-hop": "1", "keep-alive": "timeout=5", "x-up": "1" });
      hit.res.end("ok");
    });
    const proxy = resilientProxy({ routes: [{ path: "/v1/text", upstream: `${up.base}/v1?key=K` }] });
    const res = await proxy.fetch(
      new Request("https://worker.example/v1/text/jobs?q=1", {
        headers: {
          "cf-connecting-ip": "203.0.113.7",
          "x-forwarded-for": "203.0.113.7",
          "x-real-ip": "203.0.113.7",
          forwarded: "for=203.0.113.7",
          "proxy-authorization": "Basic c2VjcmV0",
          connection: "x-client-hop",
          "x-client-hop": "1",
          authorization: "Bearer for-provider",
        },
      }),
      {},
      ctx(),
    );
    const hit = await up.nth(1);
    expect(hit.path).toBe("/v1/jobs?key=K&q=1");
    for (const name of [
      "cf-connecting-ip",
      "x-forwarded-for",
      "x-real-ip",
      "forwarded",
      "proxy-authorization",
      "x-client-hop",
    ])
      expect(hit.headers[name]).toBeUndefined();
    expect(hit.headers.authorization).toBe("Bearer for-provider");
    expect(res.headers.get("x-up-hop")).toBeNull();
    expect(res.headers.get("keep-alive")).toBeNull();
    expect(res.headers.get("x-up")).toBe("1");
    expect(res.headers.get("x-resilience-endpoint")).toBe(up.host);
    expect(res.headers.get("x-resilience-attempts")).toBe("1");
    expect(res.headers.get("x-degradation-level")).toBe("full");
  });

  it("chain route, POST with a stream body: retried and sent to the spare with the same bytes, each with its key", async () => {
    up.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1/video",
          chain: {
            name: "video",
            endpoints: [
              { name: "premium — EU", url: `${up.base}/v1/video?key=K` },
              { name: " standard%", url: `${other.base}/v2/video?k2=Z` },
            ],
          },
        },
      ],
      resilience: { retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" } },
    });
    const res = await proxy.fetch(
      new Request("https://worker.example/v1/video/jobs?x=1", {
        method: "POST",
        body: stream('{"prompt":', '"waves"}'),
        duplex: "half",
      } as RequestInit),
      {},
      ctx(),
    );
    expect(res.status).toBe(200);
    expect(up.hits.map((h) => [h.path, h.body])).toEqual([
      ["/v1/video/jobs?key=K&x=1", '{"prompt":"waves"}'],
      ["/v1/video/jobs?key=K&x=1", '{"prompt":"waves"}'],
    ]);
    expect(other.hits.map((h) => [h.path, h.body])).toEqual([["/v2/video/jobs?k2=Z&x=1", '{"prompt":"waves"}']]);
    expect(res.headers.get("x-resilience-endpoint")).toBe("%20standard%25");
    expect(decodeURIComponent(res.headers.get("x-resilience-endpoint") ?? "")).toBe(" standard%");
    expect(res.headers.get("x-resilience-attempts")).toBe("3");
  });

  it("a 302 to another origin: neither the client's credentials nor a chain endpoint's key go there", async () => {
    up.on((hit) => {
      hit.res.writeHead(302, { location: `${other.base}/landed` });
      hit.res.end();
    });
    const plain = resilientProxy({ routes: [{ path: "/", upstream: up.base }] });
    const res = await plain.fetch(
      new Request("https://worker.example/gen", { headers: { authorization: "Bearer s", "x-api-key": "k" } }),
      {},
      ctx(),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("x-resilience-endpoint")).toBe(up.host);
    const chained = resilientProxy({
      routes: [
        {
          path: "/v1/video",
          chain: {
            name: "video",
            endpoints: [
              {
                name: "premium",
                url: `${up.base}/v1/video`,
                headers: { authorization: "Bearer KEY", "x-api-key": "K2" },
              },
              { name: "standard", url: `${other.base}/v2/video` },
            ],
          },
        },
      ],
    });
    const res2 = await chained.fetch(new Request("https://worker.example/v1/video/jobs"), {}, ctx());
    expect(res2.status).toBe(200);
    expect(res2.headers.get("x-resilience-endpoint")).toBe("premium");
    expect(other.hits.map((h) => h.path)).toEqual(["/landed", "/landed"]);
    for (const hit of other.hits) {
      expect(hit.headers.authorization).toBeUndefined();
      expect(hit.headers["x-api-key"]).toBeUndefined();
    }
  });

  it("a 307 on a small proxied POST replays its body", async () => {
    up.on((hit) => {
      if (hit.path === "/gen") {
        hit.res.writeHead(307, { location: "/gen2" });
        hit.res.end();
      } else hit.res.end(`got ${hit.body}`);
    });
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: up.base }] });
    const res = await proxy.fetch(
      new Request("https://worker.example/gen", {
        method: "POST",
        body: stream("hel", "lo"),
        duplex: "half",
      } as RequestInit),
      {},
      ctx(),
    );
    expect(await res.text()).toBe("got hello");
  });

  it("degradation rewrites a proxied JSON body: the client's content-length is not sent with the new body", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: up.base }],
      resilience: {
        clock,
        retry: false,
        breaker: false,
        degradation: degradation({
          minSamples: 1,
          triggers: { errorRate: 0.01, memoryUsage: 1, cpuUsage: 1 },
          browserSignals: false,
          levelHeader: "x-level",
        }),
      },
    });
    up.on((hit) => {
      hit.res.statusCode = hit.n <= 3 ? 500 : 200;
      hit.res.end("x");
    });
    for (let i = 0; i < 3; i++) {
      await proxy.fetch(new Request("https://worker.example/warm"), {}, ctx());
      await clock.advance(20_000);
    }
    const body = JSON.stringify({ prompt: "waves", steps: 50, quality: 1 });
    const res = await proxy.fetch(
      new Request("https://worker.example/gen", {
        method: "POST",
        body,
        headers: { "content-type": "application/json", "content-length": String(body.length) },
      }),
      {},
      ctx(),
    );
    const hit = await up.nth(4);
    const level = res.headers.get("x-degradation-level");
    expect(level).not.toBe("full");
    expect(hit.headers["x-level"]).toBe(level);
    expect(JSON.parse(hit.body).steps).toBeLessThan(50);
    expect(hit.headers["content-length"]).toBe(String(Buffer.byteLength(hit.body)));
  });

  it("an aborted client: the proxy rejects with its reason, the upstream's connection closes, no failure counted", async () => {
    up.on(() => {});
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: up.base }] });
    const controller = new AbortController();
    const c = ctx();
    const pending = proxy.fetch(new Request("https://worker.example/x", { signal: controller.signal }), {}, c);
    const hit = await up.nth(1);
    const reason = new Error("client gone");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await hit.closed;
    const health = await (await proxy.fetch(new Request("https://worker.example/__resilience/health"), {}, c)).json();
    expect(health.breakers[up.host].failureCount).toBe(0);
  });
});

describe("failure answers and health", () => {
  it("attempt timeouts that end the retries answer 504; the next call, the circuit open, 503 with Retry-After", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://gen.example" }],
      resilience: {
        clock,
        timeout: { attempt: 100 },
        breaker: { failureThreshold: 2, timeout: 30_000 },
        retry: { maxAttempts: 3, initialDelay: 10, jitter: "none" },
        fetch: (_input, init) =>
          new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason))),
      },
    });
    const pending = proxy.fetch(new Request("https://worker.example/x"), {}, ctx());
    for (let i = 0; i < 20; i++) await clock.advance(50);
    expect((await pending).status).toBe(504);
    const next = await proxy.fetch(new Request("https://worker.example/x"), {}, ctx());
    expect(next.status).toBe(503);
    expect(Number(next.headers.get("retry-after"))).toBeGreaterThanOrEqual(29);
  });

  it("health() shows no provider key or client query; the 502 bodies are fixed text", async () => {
    const proxy = resilientProxy({
      routes: [
        { path: "/", upstream: "https://up.example/v1?key=SECRET1" },
        {
          path: "/c",
          chain: {
            name: "c",
            endpoints: [
              { name: "a", url: "https://a.example/v1?key=SECRET2" },
              { name: "b", url: "https://b.example/v1?key=SECRET3" },
            ],
          },
        },
      ],
      resilience: {
        retry: false,
        fetch: async (input, init) => {
          const url = new Request(input, init).url;
          throw new TypeError(`fetch failed: ${url} (${encodeURIComponent(url)})`);
        },
      },
    });
    for (const path of ["/x?token=T1", "/c/y?token=T2"]) {
      const res = await proxy.fetch(new Request(`https://worker.example${path}`), {}, ctx());
      expect(res.status).toBe(502);
      expect(await res.text()).toBe('{"error":"upstream unavailable"}');
    }
    const text = await (await proxy.fetch(new Request("https://worker.example/__resilience/health"), {}, ctx())).text();
    expect(text).toContain("up.example");
    expect(text).not.toMatch(/SECRET|T1|T2/);
  });

  it("kvStore behind the proxy: a trip's write goes inside the tripping request's waitUntil, after the jitter", async () => {
    const clock = new TestClock();
    const kv = new FakeKv(clock, { propagation: 0 });
    const c = ctx();
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://gen.example" }],
      resilience: {
        clock,
        retry: false,
        breaker: { failureThreshold: 2 },
        fetch: async () => new Response("busy", { status: 503 }),
      },
      store: () => kvStore(kv.location(), { clock, random: () => 0.5 }),
    });
    for (let i = 0; i < 2; i++) await proxy.fetch(new Request("https://worker.example/x"), {}, c);
    expect(kv.attempts).toHaveLength(0);
    expect(c.tasks.length).toBeGreaterThan(0);
    await clock.advance(1_000);
    await Promise.all(c.tasks);
    expect(kv.attempts.map((a) => [a.key, a.state, a.accepted])).toEqual([["cb:v1:default:gen.example", "open", true]]);
    expect(kv.attempts[0]?.at).toBeLessThanOrEqual(1_000);
    const third = await proxy.fetch(new Request("https://worker.example/x"), {}, c);
    expect(third.status).toBe(503);
    expect(third.headers.get("retry-after")).not.toBeNull();
  });
});
