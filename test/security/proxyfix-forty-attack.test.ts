/**
 * Outside-in attack on today's two proxy fixes: a redirect's later hop refused by its open circuit, and a
 * redirect target's own 429/503, as `resilientProxy` and `failureResponse` answer them.
 * Docs: CHANGELOG.md (Unreleased, Fixed) "`resilientProxy` answers a redirect target's own `429` or `503` with
 * `502` when the client's request is one the layer would not send again (a POST or PATCH without an
 * `Idempotency-Key`)" and "`resilientProxy` and `failureResponse` answer a redirect's later hop that its open
 * circuit refused with `502`, not `503` with `Retry-After`"; docs/cloudflare.md "answers `503` with `Retry-After`
 * when the circuit is open, `504` on a timeout and `502` when no endpoint answered otherwise (a redirect's later
 * hop its open circuit refused included … and a redirect's target's own `429` or `503` to a request the layer
 * would not send again, a POST or PATCH without an `Idempotency-Key` …)", "adds `x-resilience-endpoint`,
 * `x-resilience-attempts` and `x-degradation-level` to the responses the upstreams gave (its own 502, 503 and 504
 * carry none of the three)", "`failureResponse(error)`, exported beside it, gives your own routes the same
 * answers"; JSDoc of `failureResponse` (src/cloudflare/failure-response.ts) "anything else: `502`, a redirect's
 * later hop refused by its open circuit included"; src/core/options/retry-options.ts JSDoc of `retryOn.methods`
 * "Methods retried on any retryable outcome. Other methods (POST, PATCH) are …".
 * How: `resilientProxy`, `failureResponse` (./cloudflare), `createResilience`, `isResilienceError`,
 * `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation); node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts): `a` the first upstream, `b` a redirect's target, `c` a chain's spare.
 * Paths: proxy upstream route, proxy chain route (redirect on the first endpoint, on the second), hedged chain,
 * degradation stage on the proxy's layer, redirects 301/302/303/307/308, methods in other cases and custom ones,
 * `retryOn.methods` with POST, `retry: false`, `Idempotency-Key` forms, a client layer of this library in front of
 * the proxy (its transport the proxy's handler), and `failureResponse` in a plain route over `resilience.fetch`.
 *
 * Defects pinned (first `it.fails`, then changed as below, so plain `it`): 2, the proxy's half fixed, the
 * client's half a documented limit.
 * 1. docs/cloudflare.md said `502` for "a redirect's target's own `429` or `503` to a request the layer would not
 *    send again, a POST or PATCH without an `Idempotency-Key`"; docs/fallback.md judges that "as each endpoint is
 *    sent them"; SECURITY.md "A paid request is never processed twice … never after … a redirect". Observed: a
 *    chain route whose endpoint's `transform` turns the client's PUT into a keyless POST, redirected to a 503:
 *    the proxy passed the 503 on (it judged the client's method), and a client layer in front sent the PUT again.
 *    Fixed since: the proxy answers any redirected 429/503 with its own 502, whatever the client's method. Left,
 *    documented in docs/cloudflare.md: a client whose request it may send again (a PUT) retries a 502 too, and no
 *    HTTP status tells it not to; the first upstream gets the transform's POST once per client attempt.
 * 2. The key variant (a `transform` dropping the client's `Idempotency-Key`): the same, fixed and left alike.
 *
 * Held (plain `it`):
 * - POST / PATCH (also written `post`, `patch`) and a custom method (`PURGE`) without a key, redirected by 301,
 *   302, 303, 307 or 308 to a target answering 503 (or 429): the proxy answers its own 502 without
 *   `retry-after` and without `x-resilience-*` / `x-degradation-level`; the first upstream got the request once.
 * - GET, HEAD, PUT, DELETE, and a POST with a real `Idempotency-Key` (also one of two values): the proxy's own
 *   502 too (they passed the target's 503 on when this run was written).
 * - An `Idempotency-Key` that is empty, spaces, or a tab counts as none: 502.
 * - `retryOn.methods` that lists POST (any case): the POST's redirected 503 goes through; with `retry: false` the
 *   POST still gets 502 and the GET the 503.
 * - A POST's non-redirected 503 goes through with its `Retry-After`.
 * - Chain route: a redirect on the first endpoint to a 503 gives 502 and the spare never gets the POST; the first
 *   endpoint's own 503 moves to the spare, whose redirect to a 503 gives 502. Hedged chain and a degradation stage
 *   on the proxy's layer: same 502.
 * - The target's discarded 503 body (never ended) does not hold the answer; its connection is closed.
 * - A client layer (`maxAttempts: 3`) in front of the proxy sends the POST once: the first upstream counts 1
 *   (control: a plain 503 from the first upstream is retried, 3 POSTs).
 * - A redirect's later hop refused by its open circuit: the proxy answers 502 without `retry-after` (POST and
 *   GET), while the first upstream's own open circuit is 503 with `Retry-After`; `failureResponse` called in a
 *   plain route on the error the layer threw says the same (502 vs 503), and on a chain's `FallbackExhaustedError`.
 *
 * - Control for 1–2: a `transform` that keeps method and key: the client's keyless POST gets 502, sent once.
 *
 * Docs-silent (not pinned):
 * - A plain Worker/Hono route that passes `resilience.fetch`'s answer on gets no help for a redirect target's
 *   503 to a keyless POST: `failureResponse` only covers thrown errors, and the route passes the 503 (and its
 *   `Retry-After`) on unless it checks `response.redirected` itself.
 */
import { describe, expect, it } from "vitest";
import { failureResponse, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { type FallbackEndpointCommon, fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isResilienceError } from "../../src/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };

const declined =
  (status = 503) =>
  (h: Hit) => {
    h.res.writeHead(status, { "retry-after": "7", "content-type": "text/plain" });
    h.res.end("busy");
  };
const redirectTo =
  (target: () => string, status = 307) =>
  (h: Hit) => {
    h.res.writeHead(status, { location: target() });
    h.res.end();
  };

/** A transport sending the method in upper case: node:http answers 400 to `patch` or `purge` on the wire. */
const upperCased = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  const request = new Request(input, init);
  return fetch(new Request(request, { method: request.method.toUpperCase(), duplex: "half" } as RequestInit));
};

type ProxyOptions = Parameters<typeof resilientProxy<object>>[0];

function proxyOf(resilience: ProxyOptions["resilience"] = {}, routes?: ProxyOptions["routes"]) {
  return resilientProxy<object>({
    routes: routes ?? [{ path: "/a", upstream: `${a.base}/up` }],
    resilience: { retry: { ...fast, maxAttempts: 2 }, ...resilience },
  });
}

function call(
  proxy: ReturnType<typeof proxyOf>,
  method: string,
  headers: Record<string, string> = {},
  path = "/a/jobs",
): Promise<Response> {
  const body = method === "GET" || method === "HEAD" ? null : '{"prompt":"cat"}';
  return proxy.fetch(new Request(`http://worker.test${path}`, { method, headers, body }), {}, ctx);
}

function expectOwn502(res: Response) {
  expect(res.status).toBe(502);
  expect(res.headers.get("retry-after")).toBeNull();
  expect(res.headers.get("x-resilience-endpoint")).toBeNull();
  expect(res.headers.get("x-resilience-attempts")).toBeNull();
  expect(res.headers.get("x-degradation-level")).toBeNull();
}

function expectPassed(res: Response, status = 503) {
  expect(res.status).toBe(status);
  expect(res.headers.get("retry-after")).toBe("7");
  expect(res.headers.get("x-resilience-attempts")).not.toBeNull();
  expect(res.headers.get("x-degradation-level")).toBe("full");
}

describe("a redirect target's own 429/503 through resilientProxy", () => {
  for (const redirect of [301, 302, 303, 307, 308]) {
    for (const status of [429, 503]) {
      it(`keyless POST, ${redirect} to a ${status}: own 502, first upstream got it once`, async () => {
        a.on(redirectTo(() => `${b.base}/there`, redirect));
        b.on(declined(status));
        const res = await call(proxyOf(), "POST");
        expectOwn502(res);
        expect(await res.json()).toEqual({ error: "upstream unavailable" });
        expect(a.hits.map((h) => h.method)).toEqual(["POST"]);
        expect(b.hits.length).toBe(1);
      });
    }
  }

  for (const method of ["PATCH", "post", "patch", "PURGE", "purge"]) {
    it(`keyless ${method} redirected to a 503: own 502`, async () => {
      a.on(redirectTo(() => `${b.base}/there`));
      b.on(declined());
      // Node's server refuses a method in lower case (400): the wire gets it in upper case, the proxy reads the client's.
      const res = await call(proxyOf({ fetch: upperCased }), method);
      expectOwn502(res);
      expect(a.hits.length).toBe(1);
    });
  }

  // Whatever the method (a transform may have made a keyless POST of it): own 502.
  for (const method of ["GET", "HEAD", "PUT", "DELETE"]) {
    it(`${method} redirected to a 503: own 502`, async () => {
      a.on(redirectTo(() => `${b.base}/there`));
      b.on(declined());
      const res = await call(proxyOf({ retry: { ...fast, maxAttempts: 1 } }), method);
      expectOwn502(res);
      expect(a.hits.length).toBe(1);
    });
  }

  for (const [label, key] of [
    ["a key", "k-1"],
    ["two values", "k-1, k-2"],
    ["an empty key", ""],
    ["spaces", "   "],
    ["a tab", "\t"],
  ] as const) {
    it(`POST with ${label} as Idempotency-Key, redirected to a 503: 502`, async () => {
      a.on(redirectTo(() => `${b.base}/there`));
      b.on(declined());
      const res = await call(proxyOf({ retry: { ...fast, maxAttempts: 1 } }), "POST", { "idempotency-key": key });
      expectOwn502(res);
      expect(a.hits.length).toBe(1);
    });
  }

  it("retryOn.methods listing POST (either case): the POST's redirected 503 is 502 too", async () => {
    a.on(redirectTo(() => `${b.base}/there`));
    b.on(declined());
    for (const methods of [["GET", "POST"], ["post"]]) {
      const res = await call(proxyOf({ retry: { ...fast, maxAttempts: 1, retryOn: { methods } } }), "POST");
      expectOwn502(res);
    }
  });

  it('a same-origin redirect, a two-hop redirect and redirects: "platform" give 502 too', async () => {
    a.on((h) =>
      h.path.startsWith("/up") ? redirectTo(() => `${a.base}/moved`)(h) : redirectTo(() => `${b.base}/there`, 302)(h),
    );
    b.on(declined());
    expectOwn502(await call(proxyOf(), "POST"));
    expect(a.hits.map((h) => `${h.method} ${h.path}`)).toEqual(["POST /up/jobs", "POST /moved"]);
    a.reset();
    a.on(redirectTo(() => `${b.base}/there`));
    expectOwn502(await call(proxyOf({ redirects: "platform" }), "POST"));
    expect(a.hits.length).toBe(1);
  });

  it("retry: false: the keyless POST and the GET get 502", async () => {
    a.on(redirectTo(() => `${b.base}/there`));
    b.on(declined());
    const proxy = proxyOf({ retry: false });
    expectOwn502(await call(proxy, "POST"));
    expectOwn502(await call(proxy, "GET"));
  });

  it("a POST's own, non-redirected 503 goes through with its Retry-After", async () => {
    a.on(declined());
    const res = await call(proxyOf({ retry: { ...fast, maxAttempts: 1 } }), "POST");
    expectPassed(res);
    expect(await res.text()).toBe("busy");
  });

  it("discards the target's unfinished body: answered at once, the target's connection closed", async () => {
    a.on(redirectTo(() => `${b.base}/there`));
    b.on((h) => {
      h.res.writeHead(503, { "retry-after": "7" });
      h.res.write("x".repeat(1024)); // never ended
    });
    const started = Date.now();
    const res = await call(proxyOf(), "POST");
    expectOwn502(res);
    expect(Date.now() - started).toBeLessThan(2_000);
    const hit = await b.nth(1);
    const closed = await Promise.race([
      hit.closed.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 2_000)),
    ]);
    expect(closed).toBe(true);
  });

  it("chain route, redirect on the first endpoint: 502, the spare never gets the POST", async () => {
    a.on(redirectTo(() => `${b.base}/there`));
    b.on(declined());
    const proxy = proxyOf({}, [
      {
        path: "/a",
        chain: {
          name: "jobs",
          endpoints: [
            { name: "p", url: `${a.base}/up` },
            { name: "q", url: `${c.base}/up` },
          ],
        },
      },
    ]);
    expectOwn502(await call(proxy, "POST"));
    expect(a.hits.length).toBe(1);
    expect(c.hits.length).toBe(0);
  });

  it("chain route, redirect on the second endpoint: 502 after the first declined", async () => {
    a.on(declined());
    c.on(redirectTo(() => `${b.base}/there`, 308));
    b.on(declined(429));
    const proxy = proxyOf({ retry: { ...fast, maxAttempts: 1 } }, [
      {
        path: "/a",
        chain: {
          name: "jobs2",
          endpoints: [
            { name: "p", url: `${a.base}/up` },
            { name: "q", url: `${c.base}/up` },
          ],
        },
      },
    ]);
    expectOwn502(await call(proxy, "POST"));
    expect(a.hits.length).toBe(1);
    expect(c.hits.length).toBe(1);
    // A GET through the same chain ends on the same redirected 429: the proxy's own 502 too.
    expectOwn502(await call(proxy, "GET"));
  });

  it("hedged chain: the keyless POST's redirected 503 is 502, the spare not asked", async () => {
    a.on((h) => setTimeout(() => redirectTo(() => `${b.base}/there`)(h), 30));
    b.on(declined());
    const proxy = proxyOf({}, [
      {
        path: "/a",
        chain: {
          name: "hedged",
          hedge: { delay: 5 },
          endpoints: [
            { name: "p", url: `${a.base}/up` },
            { name: "q", url: `${c.base}/up` },
          ],
        },
      },
    ]);
    expectOwn502(await call(proxy, "POST"));
    expect(a.hits.length).toBe(1);
    expect(c.hits.length).toBe(0);
  });

  it("a degradation stage on the proxy's layer changes nothing: 502", async () => {
    a.on(redirectTo(() => `${b.base}/there`));
    b.on(declined());
    const proxy = proxyOf({
      degradation: degradation({ rules: [{ match: `${a.base}/up`, params: { steps: "parameters.steps" } }] }),
    });
    const res = await proxy.fetch(
      new Request("http://worker.test/a/jobs", { method: "POST", body: '{"parameters":{"steps":50}}' }),
      {},
      ctx,
    );
    expectOwn502(res);
    expect(a.hits.length).toBe(1);
  });

  it("a client layer in front of the proxy sends the keyless POST once (control: a plain 503 is retried)", async () => {
    a.on(redirectTo(() => `${b.base}/there`));
    b.on(declined());
    const proxy = proxyOf({ retry: { ...fast, maxAttempts: 1 } });
    const client = createResilience({
      retry: { ...fast, maxAttempts: 3, maxRetryAfter: 1 },
      fetch: (input, init) => proxy.fetch(new Request(input, init), {}, ctx),
    });
    const res = await client.fetch("http://worker.test/a/jobs", { method: "POST", body: '{"prompt":"cat"}' });
    expect(res.status).toBe(502);
    expect(a.hits.filter((h) => h.method === "POST").length).toBe(1);
    a.reset();
    a.on((h) => {
      h.res.statusCode = 503;
      h.res.end("busy");
    });
    const again = await client.fetch("http://worker.test/a/jobs", { method: "POST", body: '{"prompt":"cat"}' });
    expect(again.status).toBe(503);
    expect(a.hits.filter((h) => h.method === "POST").length).toBe(3);
  });
});

describe("a chain endpoint's transform makes the request one the layer would not send again", () => {
  const plainBusy = (h: Hit) => {
    h.res.statusCode = 503;
    h.res.end("busy");
  };

  function transformed(transform: NonNullable<FallbackEndpointCommon["transform"]>, name: string) {
    const proxy = proxyOf({ retry: { ...fast, maxAttempts: 1 } }, [
      { path: "/a", chain: { name, endpoints: [{ name: "p", url: `${a.base}/up`, transform }] } },
    ]);
    const client = createResilience({
      retry: { ...fast, maxAttempts: 3 },
      fetch: (input, init) => proxy.fetch(new Request(input, init), {}, ctx),
    });
    return { proxy, client };
  }

  it("a PUT the transform turns into a keyless POST, redirected to a 503: 502, sent once per client attempt", async () => {
    a.on(redirectTo(() => `${b.base}/there`));
    b.on(plainBusy);
    const { client } = transformed((req) => ({ ...req, method: "POST" }), "to-post");
    const res = await client.fetch("http://worker.test/a/jobs", { method: "PUT", body: '{"prompt":"cat"}' });
    // The proxy answers 502, but the client may send a PUT again and retries a 502 (docs/cloudflare.md: no
    // status tells it not to): the first upstream gets the transform's POST once per client attempt.
    expect(res.status).toBe(502);
    expect(a.hits.map((h) => h.method)).toEqual(["POST", "POST", "POST"]);
  });

  it("a keyed POST whose key the transform drops, redirected to a 503: 502, sent once per client attempt", async () => {
    a.on(redirectTo(() => `${b.base}/there`));
    b.on(plainBusy);
    const { client } = transformed((req) => {
      const headers = new Headers(req.headers);
      headers.delete("idempotency-key");
      return { ...req, headers };
    }, "no-key");
    const res = await client.fetch("http://worker.test/a/jobs", {
      method: "POST",
      headers: { "idempotency-key": "job-1" },
      body: '{"prompt":"cat"}',
    });
    // The upstream never saw the key: each POST the client sends again is a new job to it.
    expect(a.hits.every((h) => h.headers["idempotency-key"] === undefined)).toBe(true);
    expect(res.status).toBe(502);
    expect(a.hits.length).toBe(3);
  });

  it("control: the transform keeping the method and key, the client's keyless POST gets 502", async () => {
    a.on(redirectTo(() => `${b.base}/there`));
    b.on(plainBusy);
    const { client } = transformed((req) => ({ ...req }), "kept");
    const res = await client.fetch("http://worker.test/a/jobs", { method: "POST", body: '{"prompt":"cat"}' });
    expect(res.status).toBe(502);
    expect(a.hits.length).toBe(1);
  });
});

describe("a redirect's later hop refused by its open circuit", () => {
  const opening = { failureThreshold: 1 };

  it("resilientProxy: 502 without Retry-After (POST and GET); the first hop's own open circuit is 503", async () => {
    const proxy = proxyOf({ retry: { ...fast, maxAttempts: 1 }, breaker: opening }, [
      { path: "/a", upstream: `${a.base}/up` },
      { path: "/b", upstream: `${b.base}/up` },
    ]);
    b.on((h) => {
      h.res.statusCode = 500;
      h.res.end("down");
    });
    expect((await call(proxy, "GET", {}, "/b/x")).status).toBe(500); // opens b's circuit
    a.on(redirectTo(() => `${b.base}/there`));
    for (const method of ["POST", "GET"]) {
      const res = await call(proxy, method);
      expectOwn502(res);
    }
    expect(b.hits.length).toBe(1);
    expect(a.hits.length).toBe(2);
    // Control: b's own route is refused at its first hop: 503 with Retry-After.
    const own = await call(proxy, "POST", {}, "/b/x");
    expect(own.status).toBe(503);
    expect(Number(own.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(own.headers.get("x-resilience-endpoint")).toBeNull();
  });

  it("resilientProxy chain route: the first endpoint's later hop refused gives 502, the spare not asked", async () => {
    const proxy = proxyOf({ retry: { ...fast, maxAttempts: 1 }, breaker: opening }, [
      {
        path: "/a",
        chain: {
          name: "opened",
          endpoints: [
            { name: "p", url: `${a.base}/up` },
            { name: "q", url: `${c.base}/up` },
          ],
        },
      },
      { path: "/b", upstream: `${b.base}/up` },
    ]);
    b.on((h) => {
      h.res.statusCode = 500;
      h.res.end("down");
    });
    expect((await call(proxy, "GET", {}, "/b/x")).status).toBe(500);
    a.on(redirectTo(() => `${b.base}/there`));
    const client = createResilience({
      retry: { ...fast, maxAttempts: 3 },
      fetch: (input, init) => proxy.fetch(new Request(input, init), {}, ctx),
    });
    const res = await client.fetch("http://worker.test/a/jobs", { method: "POST", body: "{}" });
    expectOwn502(res);
    expect(a.hits.length).toBe(1);
    expect(c.hits.length).toBe(0);
  });

  it("failureResponse in a plain route: 502 for the later hop, 503 for the first", async () => {
    const resilience = createResilience({ retry: { ...fast, maxAttempts: 1 }, breaker: opening });
    const route = async (url: string, init?: RequestInit): Promise<Response> => {
      try {
        return await resilience.fetch(url, init);
      } catch (error) {
        if (isResilienceError(error)) return failureResponse(error);
        throw error;
      }
    };
    b.on((h) => {
      h.res.statusCode = 500;
      h.res.end("down");
    });
    expect((await route(`${b.base}/x`)).status).toBe(500);
    a.on(redirectTo(() => `${b.base}/there`, 303));
    const later = await route(`${a.base}/up`, { method: "POST", body: "{}" });
    expect(later.status).toBe(502);
    expect(later.headers.get("retry-after")).toBeNull();
    const first = await route(`${b.base}/x`, { method: "POST", body: "{}" });
    expect(first.status).toBe(503);
    expect(Number(first.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("failureResponse on a chain's FallbackExhaustedError whose endpoint's later hop was refused: 502", async () => {
    const resilience = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      breaker: opening,
      fallback: fallback([
        {
          name: "later",
          endpoints: [
            { name: "p", url: `${a.base}/up` },
            { name: "q", url: `${c.base}/up` },
          ],
        },
      ]),
    });
    b.on((h) => {
      h.res.statusCode = 500;
      h.res.end("down");
    });
    expect((await resilience.fetch(`${b.base}/x`)).status).toBe(500);
    a.on(redirectTo(() => `${b.base}/there`));
    const error = await resilience.fetch(`${a.base}/up/j`, { method: "POST", body: "{}" }).catch((e: unknown) => e);
    expect(isResilienceError(error)).toBe(true);
    const res = failureResponse(error);
    expect(res.status).toBe(502);
    expect(res.headers.get("retry-after")).toBeNull();
    expect(c.hits.length).toBe(0);
    expect(getResilienceInfo(res)).toBeUndefined();
  });
});
