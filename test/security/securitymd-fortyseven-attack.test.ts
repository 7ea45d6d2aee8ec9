/**
 * Outside-in attack on SECURITY.md, sentence by sentence, on combined paths (session fortyseven).
 *
 * Docs: (SECURITY.md)
 * - "Credentials never cross origins | to an origin other than the caller's (a fallback endpoint, a hedge, a
 *   `transform` pointing elsewhere, a redirect the library follows) only `accept`, …, `user-agent` and the headers
 *   named in `crossOriginHeaders` go; the origin is judged on the URL actually sent".
 * - "Credentials never follow a redirect to another origin | … from the first cross-origin hop on only the
 *   allowlist goes, for good (a later hop back does not restore the rest)".
 * - "No secret in events, errors, `health()` or `debugInfo()` | URLs lose their userinfo …, query string and
 *   fragment … before they reach any of them (an error's causes included, an `AggregateError`'s errors, … a URL
 *   percent-encoded into text or into a URL's path, `https%3A%2F%2F…`, is cut as a plain one, up to three times
 *   encoded, and so is one whose colon a path segment's encoder left raw, `https:%2F%2F…`, or a scheme-relative
 *   one, `%2F%2F…`) …, and so do the message and stack of ky's own errors through `createClient`".
 * - "Server-supplied times are bounded | … a host is held open for at most 24 hours whatever a header says".
 * - "The Worker health endpoint reveals nothing without its token | … its JSON holds no headers or keys".
 *
 * How: `createResilience`, `memoryStore`, `getResilienceInfo`, the `BreakerStore` type (root), `fallback`
 * (./fallback), `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock` (./testing); three node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts), each its own origin; a transport of my own that rejects
 * the way Deno's fetch does (quoting the URL) in nested, frozen and aggregate errors; a store of my own whose
 * `peek` answers a fixed snapshot.
 *
 * Paths: plain call, fallback chain, hedge, redirect the library follows (from a chain endpoint and a hedge),
 * `Request` input, `transform` pointing elsewhere, a layer used as another's `fetch`, ky client, `resilientProxy`
 * called directly in Node (chain route and health endpoint), a store of one's own, `memoryStore()`.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found.
 *
 * Held (plain `it`):
 * - A hedge (`Request` input, `crossOriginHeaders: ["X-Trace"]` in mixed case) whose second endpoint redirects
 *   to a third origin and back: the second and third origins (both hops) get only the allowlist and `x-trace`;
 *   `redirect` events, `fallback` events, `health()` and `debugInfo()` hold no query, fragment or encoded URL.
 * - A `transform` pointing at `http://localhost:<port>` while the caller addressed `http://127.0.0.1:<port>` (the
 *   same server, another origin): the caller's `authorization` stays home; pointing at the same origin, it goes.
 * - A layer used as another's `fetch`, the inner one with a chain [A, B] over a transport that rejects quoting the
 *   URL (plain, three times encoded, `https:%2F%2F…`, scheme-relative encoded; frozen error, `AggregateError`
 *   holding a `URL` field): the outer caller's error (message, stack, `errors` record, causes, the aggregate's
 *   errors, their URL fields) holds no secret; neither do both layers' `health()`/`debugInfo()` and events.
 * - `validate` whose Standard Schema issue quotes URLs from the answer (userinfo, query, fragment, `https:%2F%2F…`,
 *   scheme-relative, `%2F%2F…`): each `fallback` event's `reason` ("invalid body: …") is cut, and so is the rest.
 * - ky through `createClient` with a chain to another origin: `authorization` and `x-api-key` stay home; an
 *   `HTTPError` after both endpoints fail (a `searchParams` key) has message and stack without it.
 * - `resilientProxy` in Node with a chain route [A (503), B]: B gets no `authorization`/`x-api-key`/`cookie` of the
 *   client; the health JSON (with its token) holds no key, header value or query after failures whose URLs held
 *   keys.
 * - A store of one's own whose snapshot says open for 10^12 ms with a reason and trip quoting encoded URLs, seen by
 *   an inner layer used as another's `fetch`: held at most 24 h; the outer caller's `CircuitOpenError`, both layers'
 *   `health()`/`debugInfo()` and the `breaker` event hold no secret.
 * - `Retry-After: 99999999999` on a redirect's later hop and on a hedge's answer: the host is held at most 24 h.
 *
 * Docs-silent (not pinned):
 * - A chain rebases the caller's query onto every endpoint (docs/fallback.md says so): a key the caller put in the
 *   query (`?api_key=…`) goes to a fallback endpoint on another origin, while the same key in a header stays home.
 *   "Credentials never cross origins" speaks only of headers; a reader of SECURITY.md alone may expect otherwise.
 */
import { afterAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerSnapshot,
  type BreakerStore,
  createResilience,
  getResilienceInfo,
  type Resilience,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
const C = httpUpstream();
serveDuringFile(A, B, C);

const held: Hit[] = [];
afterAll(() => {
  for (const hit of held.splice(0)) hit.res.destroy();
});

const LEAK = /SECRET|user:pw|FRAGX|hunter|s3cr3t/i;
const ENCODED = [
  "https%3A%2F%2Fuser%3Apw%40h.example%2Fv1%3Fapi_key%3DSECRET2",
  "https%25253A%25252F%25252Fuser%25253Apw%252540h.example%25252F%25253Fkey%25253DSECRET3",
  "https:%2F%2Fuser%3Apw%40h.example%2Fcb%3Fkey%3DSECRET4",
  "%2F%2Fuser%3Apw%40h.example%2Fcb%3Fkey%3DSECRET5",
];

/** Everything a value shows, errors walked (message, stack, cause, errors, own fields), as text. */
function dump(value: unknown, seen = new Set<unknown>()): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value !== "object") return String(value);
  if (seen.has(value)) return "";
  seen.add(value);
  if (value instanceof URL) return value.href;
  const parts: string[] = [];
  if (value instanceof Error) parts.push(value.name, value.message, String(value.stack), dump(value.cause, seen));
  for (const key of Reflect.ownKeys(value)) {
    let field: unknown;
    try {
      field = (value as Record<PropertyKey, unknown>)[key];
    } catch {
      continue;
    }
    if (typeof field === "function") continue;
    parts.push(String(key), dump(field, seen));
  }
  return parts.join(" ");
}

function listen(resilience: Resilience) {
  const events: unknown[] = [];
  for (const name of ["retry", "request", "breaker", "fallback", "redirect", "replay", "store"] as const) {
    resilience.on(name, (event) => {
      events.push({ name, ...event });
    });
  }
  return events;
}

const report = (r: Resilience) => JSON.stringify([r.health(), r.debugInfo()]);
const turns = async (n = 10) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};
const CREDS = ["authorization", "x-api-key", "cookie", "x-other"];
const noCreds = (hit: Hit) => CREDS.filter((name) => hit.headers[name] !== undefined);

describe("credentials: hedge, redirect, Request input, crossOriginHeaders", () => {
  it("a hedge to another origin that redirects to a third and back carries only the allowlist and the named header", async () => {
    const clock = new TestClock();
    A.on((hit) => {
      held.push(hit);
    });
    B.on((hit) => {
      if (hit.path.startsWith("/v2/")) {
        hit.res.writeHead(302, { location: `${C.base}/land?tok=SECRET6#FRAGX` });
        hit.res.end();
      } else hit.res.end("b-back");
    });
    C.on((hit) => {
      hit.res.writeHead(307, { location: `${B.base}/home/${ENCODED[0]}?tok=SECRET7` });
      hit.res.end();
    });
    const layer = createResilience({
      clock,
      crossOriginHeaders: ["X-Trace"],
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 50 },
          endpoints: [
            { name: "p", url: `${A.base}/v1` },
            { name: "q", url: `${B.base}/v2` },
          ],
        },
      ]),
    });
    const events = listen(layer);
    const request = new Request(`${A.base}/v1/jobs`, {
      headers: {
        Authorization: "Bearer SECRET-AUTH",
        "X-Api-Key": "SECRET-KEY",
        Cookie: "s=SECRET-COOKIE",
        "X-Other": "SECRET-OTHER",
        "X-Trace": "t-1",
        Accept: "application/json",
      },
    });
    const call = layer.fetch(request);
    await A.nth(1);
    await clock.waitForTimers(1);
    await clock.advance(50);
    const response = await call;
    expect(await response.text()).toBe("b-back");
    expect(getResilienceInfo(response)?.endpoint).toBe("q");
    expect(A.hits[0]?.headers.authorization).toBe("Bearer SECRET-AUTH");
    expect(B.hits).toHaveLength(2);
    expect(C.hits).toHaveLength(1);
    for (const hit of [...B.hits, ...C.hits]) {
      expect(noCreds(hit)).toEqual([]);
      expect(hit.headers["x-trace"]).toBe("t-1");
      expect(hit.headers.accept).toBe("application/json");
    }
    expect(dump(events)).not.toMatch(LEAK);
    expect(report(layer)).not.toMatch(LEAK);
    expect(events.some((e) => (e as { name: string }).name === "redirect")).toBe(true);
  });

  it("a transform to the same server under another origin (localhost for 127.0.0.1) keeps the caller's credentials home", async () => {
    const layer = createResilience({
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "t",
          endpoints: [
            { name: "first", url: `${A.base}/v1` },
            {
              name: "moved",
              url: `${A.base}/v9`,
              transform: (view) => ({ ...view, url: `http://localhost:${A.port}/moved` }),
            },
            {
              name: "same",
              url: `${A.base}/v8`,
              transform: (view) => ({ ...view, url: `http://127.0.0.1:${A.port}/same` }),
            },
          ],
        },
      ]),
    });
    let n = 0;
    A.on((hit) => {
      n++;
      hit.res.statusCode = n <= 2 ? 503 : 200;
      hit.res.end(String(n));
    });
    const response = await layer.fetch(`${A.base}/v1/x`, {
      headers: { authorization: "Bearer SECRET-AUTH", "x-api-key": "SECRET-KEY" },
    });
    expect(await response.text()).toBe("3");
    const moved = A.hits.find((hit) => hit.path === "/moved");
    const same = A.hits.find((hit) => hit.path === "/same");
    expect(moved?.headers.host).toBe(`localhost:${A.port}`);
    expect(moved && noCreds(moved)).toEqual([]);
    expect(same?.headers.authorization).toBe("Bearer SECRET-AUTH");
  });
});

/** A transport that rejects as Deno's fetch does, quoting the URL, in the shapes a runtime or client may use. */
function quotingTransport(shape: (url: string, i: number) => unknown): typeof fetch {
  let i = 0;
  return (input) => {
    const url = input instanceof Request ? input.url : String(input);
    return Promise.reject(shape(url, i++));
  };
}

describe("no secret in errors, health() or debugInfo(): stacked layers and chains", () => {
  const shapes: Array<[string, (url: string, i: number) => unknown]> = [
    [
      "nested causes quoting the URL and encoded URLs",
      (url, i) =>
        new TypeError(`error sending request for url (${url}): ${ENCODED[i % 4]}`, {
          cause: new Error(`tcp connect ${url}#FRAGX ${ENCODED[(i + 1) % 4]}`, { cause: ENCODED[(i + 2) % 4] }),
        }),
    ],
    [
      "a frozen error with a URL field",
      (url, i) =>
        Object.freeze(Object.assign(new TypeError(`fetch ${url} failed`), { url: new URL(url), path: ENCODED[i % 4] })),
    ],
    [
      "an AggregateError of errors quoting the URL",
      (url, i) =>
        new AggregateError(
          [
            new Error(`mirror 1 ${url}`),
            Object.assign(new Error("mirror 2"), { href: `${url}#FRAGX` }),
            ENCODED[i % 4],
          ],
          `all mirrors failed for ${url}`,
        ),
    ],
  ];
  for (const [label, shape] of shapes) {
    it(`an outer layer over an inner chain layer: ${label}`, async () => {
      const inner = createResilience({
        fetch: quotingTransport(shape),
        retry: { maxAttempts: 1 },
        fallback: fallback([
          {
            name: "inner",
            endpoints: [
              { name: "a", url: `https://a.example/v1` },
              { name: "b", url: `https://b.example/v1?key=SECRET-OWN` },
            ],
          },
        ]),
      });
      const outer = createResilience({ fetch: inner.fetch, retry: { maxAttempts: 1 } });
      const events = [...listen(inner), ...listen(outer)];
      const error = await outer
        .fetch(`https://a.example/v1/jobs/${ENCODED[1]}?api_key=SECRET1#FRAGX`, {
          headers: { authorization: "Bearer SECRET-AUTH" },
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).name).toBe("FallbackExhaustedError");
      expect(dump(error)).not.toMatch(LEAK);
      expect(dump(events)).not.toMatch(LEAK);
      expect(report(inner)).not.toMatch(LEAK);
      expect(report(outer)).not.toMatch(LEAK);
    });
  }
});

describe("a fallback event's reason from validate", () => {
  it("a schema's issue quoting the body's URLs is cut in the event, the error and debugInfo()", async () => {
    A.on((hit) => {
      hit.res.setHeader("content-type", "application/json");
      hit.res.end(JSON.stringify({ next: `https://user:pw@h.example/x?key=SECRET1#FRAGX ${ENCODED[2]}` }));
    });
    B.on((hit) => {
      hit.res.setHeader("content-type", "application/json");
      hit.res.end(JSON.stringify({ next: `//user:pw@h.example/y?key=SECRET2 ${ENCODED[3]}` }));
    });
    const schema = {
      "~standard": {
        version: 1 as const,
        vendor: "own",
        validate: (value: unknown) => ({ issues: [{ message: `unexpected ${(value as { next: string }).next}` }] }),
      },
    };
    const layer = createResilience({
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "v",
          endpoints: [
            { name: "a", url: `${A.base}/v1`, validate: schema },
            { name: "b", url: `${B.base}/v1`, validate: schema },
          ],
        },
      ]),
    });
    const events = listen(layer);
    // Every answer failed `validate`: the call settles (here with the last answer), its outcome not the point.
    const error = await layer.fetch(`${A.base}/v1/x`).then(
      async (response) => {
        await response.text();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(events.some((e) => (e as { name: string }).name === "fallback")).toBe(true);
    expect(dump(events)).not.toMatch(LEAK);
    expect(dump(error)).not.toMatch(LEAK);
    expect(report(layer)).not.toMatch(LEAK);
  });
});

describe("ky client through a chain", () => {
  it("keeps credentials home and cuts the key from HTTPError's message and stack", async () => {
    A.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    B.on((hit) => {
      hit.res.statusCode = hit.path.includes("fail") ? 500 : 200;
      hit.res.end(JSON.stringify({ ok: true }));
    });
    const api = createClient({
      prefix: `${A.base}/v1`,
      headers: { authorization: "Bearer SECRET-AUTH", "x-api-key": "SECRET-KEY", "content-type": "application/json" },
      resilience: {
        retry: { maxAttempts: 1 },
        fallback: fallback([
          {
            name: "k",
            endpoints: [
              { name: "a", url: `${A.base}/v1` },
              { name: "b", url: `${B.base}/v1` },
            ],
          },
        ]),
      },
    });
    expect(await api.get("ok", { searchParams: { api_key: "SECRET1" } }).json()).toEqual({ ok: true });
    expect(A.hits[0]?.headers.authorization).toBe("Bearer SECRET-AUTH");
    const hit = B.hits[0] as Hit;
    expect(noCreds(hit)).toEqual([]);
    const error = await api.get("fail", { searchParams: { api_key: "SECRET2" } }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe("HTTPError");
    expect(`${error?.message}\n${error?.stack}`).not.toMatch(LEAK);
    expect(noCreds(B.hits[1] as Hit)).toEqual([]);
  });
});

describe("resilientProxy in Node: chain route and health JSON", () => {
  it("the client's credentials stay with the first upstream; the health JSON holds no key", async () => {
    const clock = new TestClock();
    A.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    B.on((hit) => {
      hit.res.statusCode = hit.path.includes("down") ? 500 : 200;
      hit.res.end("b");
    });
    const proxy = resilientProxy({
      routes: [
        {
          path: "/api",
          chain: {
            name: "pc",
            endpoints: [
              { name: "a", url: `${A.base}/v1` },
              { name: "b", url: `${B.base}/v1` },
            ],
          },
        },
      ],
      resilience: { clock, retry: { maxAttempts: 1 }, breaker: { failureThreshold: 1 } },
    });
    const env = { RESILIENCE_HEALTH_TOKEN: "tok-123" };
    const ctx = { waitUntil() {}, passThroughOnException() {} };
    const headers = {
      authorization: "Bearer SECRET-AUTH",
      "x-api-key": "SECRET-KEY",
      cookie: "s=SECRET-COOKIE",
    };
    const ok = await proxy.fetch(
      new Request("https://worker.example/api/jobs?api_key=SECRET1#FRAGX", { headers }),
      env,
      ctx,
    );
    expect(await ok.text()).toBe("b");
    expect(A.hits[0]?.headers.authorization).toBe("Bearer SECRET-AUTH");
    expect(noCreds(B.hits[0] as Hit)).toEqual([]);
    const down = await proxy.fetch(
      new Request(`https://worker.example/api/down/${ENCODED[2]}?api_key=SECRET2`, { headers }),
      env,
      ctx,
    );
    expect(down.status).toBeGreaterThanOrEqual(500);
    expect(await down.text()).not.toMatch(LEAK);
    const health = await proxy.fetch(
      new Request("https://worker.example/__resilience/health", { headers: { authorization: "Bearer tok-123" } }),
      env,
      ctx,
    );
    expect(health.status).toBe(200);
    const text = await health.text();
    expect(text).toContain("breakers");
    expect(text).not.toMatch(LEAK);
    expect(text).not.toContain("tok-123");
  });
});

describe("bounds: shared state and Retry-After", () => {
  const DAY = 86_400_000;
  const reason = `GET https://user:pw@h.example/v1?api_key=SECRET1#FRAGX failed; ${ENCODED.join(" ")}`;
  function ownStore(clock: TestClock): BreakerStore {
    return {
      name: "own",
      publish() {},
      peek(): BreakerSnapshot {
        const now = clock.now();
        return {
          v: 1,
          state: "open",
          gen: 2,
          failures: [],
          window: null,
          lastFailureTime: now - 1,
          openUntil: now + 1e12,
          leases: [],
          successes: 0,
          reason,
          changedAt: now - 1,
          trip: { consecutive: 4, failures: 4, calls: 4, rate: 1, lastError: reason },
        };
      },
    };
  }

  it("a store of one's own opening a host for 10^12 ms, seen by an inner layer: held a day at most, nothing leaks", async () => {
    const clock = new TestClock();
    const inner = createResilience({ clock, store: ownStore(clock), retry: { maxAttempts: 1 } });
    const outer = createResilience({ clock, fetch: inner.fetch, retry: { maxAttempts: 1 } });
    const events = [...listen(inner), ...listen(outer)];
    const error = await outer.fetch(`${A.base}/v1/x?api_key=SECRET9`).then(
      () => undefined,
      (e: unknown) => e as Error & { retryAt?: number },
    );
    expect(error?.name).toBe("CircuitOpenError");
    expect(A.hits).toHaveLength(0);
    expect((error?.retryAt ?? 0) - clock.now()).toBeLessThanOrEqual(DAY);
    const open = inner.health().breakers[A.host];
    expect(open?.state).toBe("open");
    expect((open?.openUntil ?? 0) - clock.now()).toBeLessThanOrEqual(DAY);
    expect(dump(error)).not.toMatch(LEAK);
    expect(dump(events)).not.toMatch(LEAK);
    expect(report(inner)).not.toMatch(LEAK);
    expect(report(outer)).not.toMatch(LEAK);
  });

  it("Retry-After of 99999999999 s on a redirect's later hop holds the first host a day at most", async () => {
    const clock = new TestClock();
    A.on((hit) => {
      hit.res.writeHead(302, { location: `${B.base}/there` });
      hit.res.end();
    });
    B.on((hit) => {
      hit.res.writeHead(503, { "retry-after": "99999999999" });
      hit.res.end("later");
    });
    const layer = createResilience({ clock, retry: { maxAttempts: 1, maxRetryAfter: 1000 } });
    const response = await layer.fetch(`${A.base}/v1/x`);
    expect(response.status).toBe(503);
    await response.text();
    const breakers = layer.health().breakers;
    const states = Object.values(breakers).filter((b) => b.state === "open");
    expect(states.length).toBeGreaterThan(0);
    for (const b of states) expect((b.openUntil ?? 0) - clock.now()).toBeLessThanOrEqual(DAY);
  });

  it("Retry-After of 99999999999 s on a hedge's answer holds its host a day at most", async () => {
    const clock = new TestClock();
    A.on((hit) => {
      held.push(hit);
    });
    B.on((hit) => {
      hit.res.writeHead(429, { "retry-after": "99999999999" });
      hit.res.end("slow down");
    });
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1, maxRetryAfter: 1000 },
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: `${A.base}/v1` },
            { name: "q", url: `${B.base}/v1` },
          ],
        },
      ]),
    });
    const call = layer.fetch(`${A.base}/v1/x`).then(
      async (r) => r.status,
      (e: unknown) => (e as Error).name,
    );
    await A.nth(1);
    await clock.waitForTimers(1);
    await clock.advance(10);
    await B.nth(1);
    await turns();
    const open = layer.health().breakers[B.host];
    expect(open?.state).toBe("open");
    expect((open?.openUntil ?? 0) - clock.now()).toBeLessThanOrEqual(DAY);
    for (const hit of held.splice(0)) hit.res.end("late");
    await call;
  });
});
