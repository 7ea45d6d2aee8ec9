import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import type { BreakerStore } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/**
 * resilientProxy in Node: the handler is a plain `{ fetch(request, env, ctx) }`
 * object, driven here with a fake upstream through the `resilience.fetch`
 * option (the workerd tests in test/workers cover it in the real runtime).
 */

interface Seen {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

function upstream(answer: (seen: Seen) => Response | Promise<Response> = () => new Response("ok")) {
  const seen: Seen[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const entry = {
      url: request.url,
      method: request.method,
      headers: Object.fromEntries(request.headers),
      body: await request.text(),
    };
    seen.push(entry);
    return answer(entry);
  };
  return { seen, fetch };
}

const ctx = { waitUntil: () => {} };
const call = (proxy: ReturnType<typeof resilientProxy>, path: string, init?: RequestInit, env: object = {}) =>
  proxy.fetch(new Request(`https://proxy.example${path}`, init), env, ctx);

describe("resilientProxy options", () => {
  it("refuses missing routes, a path without a leading slash and a route with nowhere to go", () => {
    expect(() => resilientProxy(undefined as never)).toThrow(
      new TypeError("resilientProxy({ routes }): expected at least one route"),
    );
    expect(() => resilientProxy({ routes: [] })).toThrow("resilientProxy({ routes }): expected at least one route");
    expect(() => resilientProxy({ routes: [{ path: "v1", upstream: "https://a.example" }] })).toThrow(
      new TypeError('resilientProxy: route path must start with "/", got "v1"'),
    );
    expect(() => resilientProxy({ routes: [{ path: 1 as never, upstream: "https://a.example" }] })).toThrow(
      'resilientProxy: route path must start with "/", got 1',
    );
    expect(() => resilientProxy({ routes: [{ path: "/v1" } as never] })).toThrow(
      new TypeError('resilientProxy: route "/v1" needs an upstream or a chain'),
    );
    expect(() => resilientProxy({ routes: [null as never] })).toThrow(
      new TypeError("resilientProxy: each route must be { path, upstream } or { path, chain }, got null"),
    );
    const both = { path: "/v1", upstream: "https://a.example", chain: { name: "c", endpoints: [] } };
    expect(() => resilientProxy({ routes: [both as never] })).toThrow(
      new TypeError('resilientProxy: route "/v1" has both an upstream and a chain: give it one'),
    );
  });

  it("names a misspelt route key before it judges the path or the upstream it left out", () => {
    const refusal = (route: object) => {
      try {
        resilientProxy({ routes: [route as never] });
      } catch (error) {
        return [(error as Error).name, (error as Error).message];
      }
      return undefined;
    };
    expect(refusal({ pth: "/v1", upstream: "https://a.example" })).toEqual([
      "ConfigError",
      'routes.0: unknown option "pth"',
    ]);
    expect(refusal({ path: "/v1", upstrem: "https://a.example" })).toEqual([
      "ConfigError",
      'routes.0: unknown option "upstrem"',
    ]);
    expect(refusal({ path: "v1", upstream: "https://a.example", headers: {} })).toEqual([
      "ConfigError",
      'routes.0: unknown option "headers"',
    ]);
  });

  it("names what is wrong with an upstream URL, never quoting it", () => {
    const refusal = (upstream: string) => {
      try {
        resilientProxy({ routes: [{ path: "/v1", upstream }] });
      } catch (error) {
        return [(error as Error).constructor.name, (error as Error).message];
      }
      return undefined;
    };
    expect(refusal("https://user:s3cret@a.example/v1")).toEqual([
      "TypeError",
      'resilientProxy: route "/v1" needs an upstream URL without credentials (a user or password goes in a header)',
    ]);
    expect(refusal("https://a.example/v1#top")).toEqual([
      "TypeError",
      'resilientProxy: route "/v1" needs an upstream URL without a #fragment, spaces around it or control characters',
    ]);
    expect(refusal("https://a.example/v1")).toBeUndefined();
  });
});

describe("resilientProxy forwarding", () => {
  it("forwards method, path, query, headers and body, without the client's hop headers", async () => {
    const up = upstream(() => Response.json({ done: true }, { status: 201, headers: { "x-upstream": "1" } }));
    const proxy = resilientProxy({
      routes: [{ path: "/v1/text", upstream: "https://api.example/base/" }],
      resilience: { retry: false, fetch: up.fetch },
    });
    const hop = ["connection", "keep-alive", "upgrade", "proxy-connection", "te", "trailer"];
    const headers = new Headers({ authorization: "Bearer caller", "content-type": "application/json" });
    for (const name of hop) headers.set(name, "x");
    const res = await call(proxy, "/v1/text/complete?x=1&y=2", { method: "POST", headers, body: '{"prompt":"hi"}' });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ done: true });
    expect(res.headers.get("x-upstream")).toBe("1");
    expect(res.headers.get("x-resilience-endpoint")).toBe("api.example");
    expect(res.headers.get("x-resilience-attempts")).toBe("1");
    expect(res.headers.get("x-degradation-level")).toBe("full");
    expect(up.seen).toHaveLength(1);
    const [sent] = up.seen as [Seen];
    expect(sent.url).toBe("https://api.example/base/complete?x=1&y=2");
    expect(sent.method).toBe("POST");
    expect(sent.body).toBe('{"prompt":"hi"}');
    expect(sent.headers.authorization).toBe("Bearer caller");
    expect(sent.headers["content-type"]).toBe("application/json");
    for (const name of hop) expect(sent.headers).not.toHaveProperty(name);
  });

  it("sends no body for GET and HEAD, and the exact route path maps to the upstream itself", async () => {
    const up = upstream();
    const proxy = resilientProxy({
      routes: [{ path: "/v1/text/", upstream: "https://api.example/base" }],
      resilience: { retry: false, fetch: up.fetch },
    });
    expect((await call(proxy, "/v1/text")).status).toBe(200);
    expect((await call(proxy, "/v1/text/", { method: "HEAD" })).status).toBe(200);
    expect((await call(proxy, "/v1/text/a/b")).status).toBe(200);
    expect(up.seen.map((s) => [s.method, s.url, s.body])).toEqual([
      ["GET", "https://api.example/base", ""],
      ["HEAD", "https://api.example/base/", ""],
      ["GET", "https://api.example/base/a/b", ""],
    ]);
  });

  it("a base's closing slash is the first of the path below, the slashes before it its own; a store without bindContext is fine", async () => {
    const up = upstream();
    const proxy = resilientProxy({
      routes: [{ path: "/v1/", upstream: "https://api.example/base//" }],
      resilience: { retry: false, fetch: up.fetch },
      store: () => ({ name: "plain", publish: () => {}, peek: () => undefined }),
    });
    expect((await call(proxy, "/v1/x")).status).toBe(200);
    // Changed in the thirty-sixth session (it collapsed every closing slash: `…/base/x`, not under `/base//`).
    expect(up.seen.map((s) => s.url)).toEqual(["https://api.example/base//x"]);
  });

  it("answers 404 for a path no route serves, and does not take a sibling path for a route's", async () => {
    const up = upstream();
    const proxy = resilientProxy({
      routes: [{ path: "/v1/text", upstream: "https://api.example" }],
      resilience: { retry: false, fetch: up.fetch },
    });
    const res = await call(proxy, "/v1/textual");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "no route for /v1/textual" });
    expect((await call(proxy, "/")).status).toBe(404);
    expect(up.seen).toEqual([]);
  });

  it("a chain route starts at its first endpoint and fails over down the chain", async () => {
    const up = upstream((s) =>
      s.url.startsWith("https://primary.example") ? new Response("down", { status: 503 }) : new Response("spare"),
    );
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1/video",
          chain: {
            name: "video",
            endpoints: [
              { name: "primary", url: "https://primary.example/v1/video" },
              { name: "spare", url: "https://spare.example/v2/video" },
            ],
          },
        },
      ],
      resilience: { retry: false, fetch: up.fetch },
    });
    const res = await call(proxy, "/v1/video/jobs");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("spare");
    expect(res.headers.get("x-resilience-endpoint")).toBe("spare");
    expect(up.seen.map((s) => s.url)).toEqual([
      "https://primary.example/v1/video/jobs",
      "https://spare.example/v2/video/jobs",
    ]);
  });

  it("names the endpoint as written when a header can carry it, spaces and brackets inside included", async () => {
    const up = upstream(() => new Response("made"));
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1/image",
          chain: { name: "image", endpoints: [{ name: "image gen (EU, v2)", url: "https://eu.example/v1/image" }] },
        },
      ],
      resilience: { retry: false, fetch: up.fetch },
    });
    const res = await call(proxy, "/v1/image/jobs");
    expect(res.headers.get("x-resilience-endpoint")).toBe("image gen (EU, v2)");
  });
});

describe("resilientProxy errors", () => {
  it("answers 503 with Retry-After while the upstream's circuit is open", async () => {
    const up = upstream(() => new Response("down", { status: 503 }));
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: { retry: false, breaker: { failureThreshold: 1, timeout: 30_000 }, fetch: up.fetch },
    });
    expect((await call(proxy, "/x")).status).toBe(503); // the upstream's own 503, which trips it
    const res = await call(proxy, "/x");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: "upstream circuit open" });
    const seconds = Number(res.headers.get("retry-after"));
    expect(seconds).toBeGreaterThanOrEqual(29);
    expect(seconds).toBeLessThanOrEqual(30);
    expect(up.seen).toHaveLength(1);
  });

  it("keeps Retry-After between 1 s and a day", async () => {
    // The layer's clock lags wall time: its retryAt is already past by Date.now().
    const short = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: {
        clock: new TestClock(Date.now() - 10_000),
        retry: false,
        breaker: { failureThreshold: 1, timeout: 1_000 },
        fetch: upstream(() => new Response("down", { status: 503 })).fetch,
      },
    });
    await call(short, "/x");
    const soon = await call(short, "/x");
    expect(await soon.json()).toEqual({ error: "upstream circuit open" });
    expect(soon.headers.get("retry-after")).toBe("1");

    const long = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: {
        retry: false,
        breaker: { failureThreshold: 1, timeout: 3 * 86_400_000 },
        fetch: upstream(() => new Response("down", { status: 503 })).fetch,
      },
    });
    await call(long, "/x");
    const later = await call(long, "/x");
    expect(later.headers.get("retry-after")).toBe("86400");
  });

  it("answers 504 when the upstream times out and 502 when it cannot be reached", async () => {
    const clock = new TestClock(Date.now());
    const hanging = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: {
        clock,
        retry: false,
        timeout: { attempt: 1_000 },
        fetch: (_input, init) =>
          new Promise<Response>((_resolve, reject) => {
            init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
          }),
      },
    });
    const timedOut = await clock.run(call(hanging, "/x"));
    expect(timedOut.status).toBe(504);
    expect(await timedOut.json()).toEqual({ error: "upstream timed out" });

    const unreachable = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: {
        retry: false,
        fetch: async () => {
          throw new TypeError("fetch failed");
        },
      },
    });
    const res = await call(unreachable, "/x");
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ error: "upstream unavailable" });
  });

  it("rethrows when the client went away", async () => {
    const controller = new AbortController();
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: {
        retry: false,
        fetch: async () => {
          controller.abort(new Error("client gone"));
          throw new TypeError("fetch failed");
        },
      },
    });
    await expect(call(proxy, "/x", { signal: controller.signal })).rejects.toThrow();
  });
});

describe("resilientProxy health and store", () => {
  const proxyWith = (extra: object = {}) =>
    resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: { retry: false, fetch: upstream().fetch },
      ...extra,
    });

  it("serves health behind the bearer token the env var holds", async () => {
    const proxy = proxyWith();
    const env = { RESILIENCE_HEALTH_TOKEN: "secret" };
    const denied = await call(proxy, "/__resilience/health", undefined, env);
    expect(denied.status).toBe(401);
    expect(denied.headers.get("www-authenticate")).toBe("Bearer");
    expect(await denied.json()).toEqual({ error: "unauthorized" });
    for (const authorization of ["Bearer secreT", "Bearer secret2", "Bearer", "secret"]) {
      expect((await call(proxy, "/__resilience/health", { headers: { authorization } }, env)).status).toBe(401);
    }
    const ok = await call(proxy, "/__resilience/health", { headers: { authorization: "Bearer secret" } }, env);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("cache-control")).toBe("no-store");
    expect(await ok.json()).toMatchObject({ breakers: {} });
  });

  it("is open without a token or with an empty one; a number is a token, any other value keeps it closed", async () => {
    for (const env of [{}, { RESILIENCE_HEALTH_TOKEN: "" }, { RESILIENCE_HEALTH_TOKEN: null }]) {
      const res = await call(proxyWith(), "/__resilience/health", undefined, env);
      expect(res.status).toBe(200);
    }
    // The empty string is said to be no token, in both documents that promise the endpoint closed.
    const cloudflareDoc = (await readFile(new URL("../../docs/cloudflare.md", import.meta.url), "utf8")).replace(
      /\s+/g,
      " ",
    );
    expect(cloudflareDoc).toContain(
      "Without a token it is open: the env var `RESILIENCE_HEALTH_TOKEN` unset (`undefined` or `null` in an `env` your code builds), or set to the empty string",
    );
    const securityDoc = await readFile(new URL("../../SECURITY.md", import.meta.url), "utf8");
    expect(securityDoc).toContain(
      "any other value keeps it closed; unset, `null` or the empty string, the endpoint is open",
    );
    // Open for a non-string value until the twenty-fifth session (a token in wrangler's [vars] may be a number).
    const numbered = { RESILIENCE_HEALTH_TOKEN: 42 };
    expect((await call(proxyWith(), "/__resilience/health", undefined, numbered)).status).toBe(401);
    const bearer42 = { headers: { authorization: "Bearer 42" } };
    expect((await call(proxyWith(), "/__resilience/health", bearer42, numbered)).status).toBe(200);
    const unreadable = {
      get get(): never {
        throw new Error("binding gone");
      },
    };
    for (const value of [
      true,
      {},
      { get: async () => "" },
      { get: async () => Promise.reject(new Error("gone")) },
      unreadable,
    ]) {
      const res = await call(proxyWith(), "/__resilience/health", bearer42, { RESILIENCE_HEALTH_TOKEN: value });
      expect(res.status).toBe(401);
    }
    const secret = { RESILIENCE_HEALTH_TOKEN: { get: async () => "from-the-store" } };
    const stored = { headers: { authorization: "Bearer from-the-store" } };
    expect((await call(proxyWith(), "/__resilience/health", stored, secret)).status).toBe(200);
  });

  it("takes a token set with spaces or a newline around it without them; spaces alone, NaN or Infinity keep it closed", async () => {
    const guide = (await readFile(new URL("../../docs/cloudflare.md", import.meta.url), "utf8")).replace(/\s+/g, " ");
    expect(guide).toContain(
      "spaces, tabs or a newline around the token are not part of it, as a header's value arrives without them; any other value, a number that is not finite, text of spaces alone,",
    );
    const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
    const health = (init: RequestInit | undefined, value: unknown) =>
      call(proxyWith(), "/__resilience/health", init, { RESILIENCE_HEALTH_TOKEN: value });
    for (const value of [" tok-9 ", "tok-9\n", { get: async () => "\ttok-9\r\n" }]) {
      expect((await health(bearer("tok-9"), value)).status).toBe(200);
      expect((await health(undefined, value)).status).toBe(401);
    }
    // A no-break space is no HTTP space: it is part of the token, as fetch keeps it in a header's value.
    expect((await health(bearer("tok-9"), "\u00a0tok-9")).status).toBe(401);
    for (const value of ["   ", "\n", { get: async () => "  " }]) {
      expect((await health(undefined, value)).status).toBe(401);
      expect((await health(bearer(""), value)).status).toBe(401);
    }
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect((await health(bearer(String(value)), value)).status).toBe(401);
    }
    // A BigInt is none of text, a number or a binding (wrangler's [vars] never give one): "any other value".
    expect((await health(bearer("42"), 42n)).status).toBe(401);
  });

  it("takes another path and env var; GET and HEAD reach health, any other method is 405 there", async () => {
    const up = upstream();
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: { retry: false, fetch: up.fetch },
      healthPath: "/status",
      healthTokenVar: "STATUS_TOKEN",
    });
    const env = { STATUS_TOKEN: "t", RESILIENCE_HEALTH_TOKEN: "other" };
    expect((await call(proxy, "/status", undefined, env)).status).toBe(401);
    expect((await call(proxy, "/status", { headers: { authorization: "Bearer t" } }, env)).status).toBe(200);
    // The default path is an ordinary route now. The health path is the proxy's own: until the twenty-eighth
    // session a POST or HEAD there went on to the upstream the catch-all route names.
    expect((await call(proxy, "/__resilience/health", undefined, env)).status).toBe(200);
    const posted = await call(proxy, "/status", { method: "POST", body: "x" }, env);
    expect([posted.status, posted.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    const head = await call(proxy, "/status", { method: "HEAD", headers: { authorization: "Bearer t" } }, env);
    expect([head.status, head.headers.get("content-type"), await head.text()]).toEqual([200, "application/json", ""]);
    expect((await call(proxy, "/status", { method: "HEAD" }, env)).status).toBe(401);
    expect(up.seen.map((s) => [s.method, s.url])).toEqual([["GET", "https://api.example/__resilience/health"]]);
  });

  it("matches the health path and routes whatever case a client's percent-escapes are in", async () => {
    const up = upstream();
    const proxy = resilientProxy({
      routes: [
        { path: "/vid%c3%a9o", upstream: "https://video.example" },
        { path: "/", upstream: "https://api.example" },
      ],
      resilience: { retry: false, fetch: up.fetch },
      healthPath: "/%c3%a9tat",
    });
    await call(proxy, "/vidéo/jobs");
    await call(proxy, "/vid%C3%A9o/jobs");
    await call(proxy, "/vid%c3%a9o/jobs");
    expect(up.seen.map((s) => s.url)).toEqual([
      "https://video.example/jobs",
      "https://video.example/jobs",
      "https://video.example/jobs",
    ]);
    for (const path of ["/état", "/%C3%A9tat", "/%c3%a9tat"]) {
      const res = await call(proxy, path);
      expect([path, res.headers.get("cache-control")]).toEqual([path, "no-store"]);
    }
    expect(up.seen).toHaveLength(3);
  });

  it("matches its health path exactly: a trailing slash, a doubled slash or an escaped letter is an ordinary path", async () => {
    const up = upstream();
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: { retry: false, fetch: up.fetch },
    });
    for (const path of ["/__resilience/health/", "//__resilience/health", "/__resilience/%68ealth"]) {
      const res = await call(proxy, path, { method: "POST", body: "x" });
      expect([path, res.status]).toEqual([path, 200]);
    }
    expect(up.seen.map((s) => s.method)).toEqual(["POST", "POST", "POST"]);
    expect((await call(proxy, "/__resilience/health", { method: "POST", body: "x" })).status).toBe(405);
  });

  it("rejects with what its store factory throws (Workers log it), and makes the layer on a later request", async () => {
    let fail = true;
    const proxy = proxyWith({
      store: () => {
        if (fail) throw new Error("no binding BREAKERS in this env");
        return undefined;
      },
    });
    await expect(call(proxy, "/x")).rejects.toThrow("no binding BREAKERS");
    fail = false;
    expect((await call(proxy, "/x")).status).toBe(200);
  });

  it("answers a health request whose Secrets Store get() never settles: closed, 401, after five seconds", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: { retry: false, fetch: upstream().fetch, clock },
    });
    const env = { RESILIENCE_HEALTH_TOKEN: { get: () => new Promise<string>(() => {}) } };
    let settled: Response | undefined;
    const pending = call(proxy, "/__resilience/health", { headers: { authorization: "Bearer x" } }, env).then((res) => {
      settled = res;
    });
    await clock.advance(4_999);
    expect(settled).toBeUndefined();
    await clock.advance(1);
    await pending;
    expect(settled?.status).toBe(401);
    expect(clock.pending()).toBe(0);
  });

  it("makes its store once, from the first request's env, and binds every request's ctx to it", async () => {
    const made: object[] = [];
    const bound: object[] = [];
    const peeked: string[] = [];
    const store: BreakerStore = {
      name: "fake",
      publish: () => {},
      peek: (key) => {
        peeked.push(key);
        return undefined;
      },
      bindContext: (c) => {
        bound.push(c);
      },
    };
    const proxy = proxyWith({
      store: (env: object) => {
        made.push(env);
        return store;
      },
    });
    const first = { waitUntil: () => {} };
    const second = { waitUntil: () => {} };
    const envA = { name: "a" };
    await proxy.fetch(new Request("https://proxy.example/x"), envA, first);
    await proxy.fetch(new Request("https://proxy.example/__resilience/health"), { name: "b" }, second);
    expect(made).toEqual([envA]);
    expect(bound).toEqual([first, second]);
    expect(peeked).toContain("api.example"); // the layer uses it
  });
});
