/**
 * Outside-in attack on the latest fixes of the session (fixes of fixes): a `transform`'s cross-origin headers held
 * back by "any part" of the caller's value, a redirect hop's probe told its own attempt's timeout by that attempt's
 * signal, the browser build's keepalive quota checked again on a rewritten or transformed body.
 * Docs: docs/fallback.md ("Credentials never cross origins … An endpoint's own `headers`, and headers a `transform`
 * sets itself (`headers.set`, or in a `Headers` of its own, to a value that holds no part of the caller's), are the
 * endpoint's and are sent; a caller's header the transform keeps or extends …, or that holds any part of the
 * caller's value (one value of a header given twice, one cookie of several), stays home, whole"; "a `transform` that
 * fails sends nothing, so the chain may move on"); CHANGELOG ("one the transform `set`s is its own and sent, even
 * when its value is the caller's"); docs/retry.md#redirects ("its own answer settles the slot (a 5xx or 429, or an
 * error, an attempt timeout among them, re-opens the host …; the caller's abort, or `timeout.total`, frees the slot
 * at once"); docs/breakers.md ("A probe aborted by its caller, `timeout.total` or a hedge that won frees its slot at
 * once"); src/http/send/send-attempt.ts `admitHop` JSDoc ("an abort, neither, unless it is the layer's own attempt
 * timeout: a hop that hangs fails its host, whatever an outer layer aborts its call with");
 * docs/browsers-and-cors.md ("The page's build measures the body first (and again a body a degradation rewrite or a
 * fallback `transform` made) and refuses one that alone passes 64 KiB at once with a `TypeError` that says so …, not
 * retried nor counted against the host (from a `transform`, it fails that endpoint as a `transform` that throws
 * does, and the chain moves on)").
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation); node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts); a real Chromium (test/runtimes/chromium.ts) on a page served from
 * 127.0.0.1 loading dist/browser (run `npm run build` first), with a second origin answering CORS.
 * Paths: chain with a transform (plain call, hedge, redirect after the transform, endpoint's own `headers`), a
 * redirect hop as a half-open host's probe under three nested layers and in a hedge's loser, a caller's AbortController reused across
 * calls, `timeout.total` equal to `timeout.attempt`; in Chromium keepalive bodies from a transform (exactly 64 KiB,
 * multi-byte past it), a degradation rewrite on a `Request` input, a chain whose second endpoint's transform grows
 * the body (a third endpoint after it; a keyless POST whose first endpoint's transform grows it).
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - (a) A header the transform `set`s (odd-case name) is sent, also to a value built on the caller's token
 *   (`Bearer ${token}-scoped`) or a cookie extended with `set` (as the CHANGELOG says: "one the transform `set`s is
 *   its own and sent, even when its value is the caller's"); a `Headers` of its own whose value holds a piece of a
 *   caller's value split at commas (a date's "Wed", one element of a quoted list) or the whole of a short one
 *   ("eu" in "europe-west") stays home, as "holds any part" reads; one sharing nothing goes; an endpoint's own
 *   `headers` of the same name goes whatever the caller sent; a transform that returns a plain object of headers
 *   is refused (the types ask for `Headers`) with nothing sent and the chain moves on; a hedged start and a redirect
 *   after the transform to a third origin hold back the same.
 * - (b) Three nested layers: the outermost's or the middle's attempt timeout aborting the innermost's redirect hop
 *   (a half-open host's probe) frees the slot; a caller reusing one AbortController, aborting a second call's hop
 *   probe with the TimeoutError the first call rejected with on that same signal, frees it; a hedge loser whose
 *   hop is the probe frees it when the other endpoint wins; `timeout.total` equal
 *   to `timeout.attempt` ends the hop as the total (slot freed); the layer's own attempt timeout re-opens the host.
 * - (c) In Chromium: a transform's body of exactly 65,536 bytes goes; one of 21,846 "€" (65,538 UTF-8 bytes,
 *   a length far under) is refused; a keepalive `Request` input whose JSON a `medium` level grows past 64 KiB is
 *   refused at once, no host counted; a chain `[503, transform grows, plain]` with a key moves on to the third
 *   endpoint, the grown one sent nothing and counted nothing; a keyless POST whose first endpoint's transform grows
 *   the body moves on to the second endpoint.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EndpointRequest, fallback, type TransformedRequest } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  createResilience,
  isTimeoutError,
  type Resilience,
  type TimeoutError,
} from "../../src/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { type LibraryPage, openLibraryPage, type PageLib } from "../helpers/library-page.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

function status503(hit: Hit): void {
  hit.res.statusCode = 503;
  hit.res.end("busy");
}

/** A chain whose first endpoint (on `a`, the caller's origin) declines, so the call goes on to `b`, another origin. */
function chainTo(
  transform: (req: EndpointRequest) => TransformedRequest | Promise<TransformedRequest>,
  options: { hedge?: boolean; headers?: Record<string, string> } = {},
): Resilience {
  a.on(status503);
  return createResilience({
    retry: false,
    fallback: fallback([
      {
        name: "jobs",
        ...(options.hedge ? { hedge: { delay: 5 } } : {}),
        endpoints: [
          { name: "home", url: `${a.base}/v1` },
          { name: "away", url: `${b.base}/v2`, transform, ...(options.headers ? { headers: options.headers } : {}) },
        ],
      },
    ]),
  });
}

async function sendVia(r: Resilience, headers: HeadersInit): Promise<Hit> {
  const res = await r.fetch(`${a.base}/v1/jobs`, { headers });
  await res.text();
  return b.hits[b.hits.length - 1] as Hit;
}

describe("(a) a transform's headers to another origin", () => {
  it("held: what the transform `set`s is sent (odd-case names, a value built on the caller's token, a cookie extended by `set`)", async () => {
    const r = chainTo((req) => {
      const token = (req.headers.get("authorization") as string).slice("Bearer ".length);
      req.headers.set("AuThOrIzAtIoN", `Bearer ${token}-scoped`);
      req.headers.set("COOKIE", `${req.headers.get("cookie")}; provider=1`);
      req.headers.set("X-Endpoint", "mine");
      return req;
    });
    const hit = await sendVia(r, { authorization: "Bearer caller-token", cookie: "sid=caller-session" });
    // The CHANGELOG's rule: a header the transform sets is its own, whatever its value holds.
    expect(hit.headers.authorization).toBe("Bearer caller-token-scoped");
    expect(hit.headers.cookie).toBe("sid=caller-session; provider=1");
    expect(hit.headers["x-endpoint"]).toBe("mine");
  });

  it("held: a Headers of its own holding a comma- or semicolon-piece of the caller's value, or a short value whole, stays home", async () => {
    const caller = {
      "x-since": "Wed, 21 Oct 2015 07:28:00 GMT",
      "x-list": '"alpha,beta", gamma',
      "x-region": "eu",
      "x-tenant": "caller-tenant",
      "x-fresh": "caller-fresh",
    };
    const r = chainTo((req) => ({
      ...req,
      headers: new Headers({
        "x-since": "Wed, 04 Dec 2026 00:00:00 GMT", // shares the piece "Wed"
        "x-list": "gamma", // one element of the caller's list
        "x-region": "europe-west", // holds the caller's whole short value
        "x-tenant": "caller-tenant-2", // extends it
        "x-fresh": "endpoint-value", // holds no part of it
      }),
    }));
    const hit = await sendVia(r, caller);
    expect(hit.headers["x-since"]).toBeUndefined();
    expect(hit.headers["x-list"]).toBeUndefined();
    expect(hit.headers["x-region"]).toBeUndefined();
    expect(hit.headers["x-tenant"]).toBeUndefined();
    expect(hit.headers["x-fresh"]).toBe("endpoint-value");
  });

  it("held: an endpoint's own `headers` of a caller's name goes, whatever short value the caller sent", async () => {
    const r = chainTo((req) => req, { headers: { "x-region": "europe-west", "x-api-key": "provider-key" } });
    const hit = await sendVia(r, { "x-region": "eu", "x-api-key": "k", cookie: "sid=1" });
    expect(hit.headers["x-region"]).toBe("europe-west");
    expect(hit.headers["x-api-key"]).toBe("provider-key");
    expect(hit.headers.cookie).toBeUndefined();
  });

  it("held: a transform returning a plain object of headers is refused, nothing sent there, and the chain moves on", async () => {
    a.on(status503);
    const r = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "home", url: `${a.base}/v1` },
            {
              name: "away",
              url: `${b.base}/v2`,
              transform: (req) =>
                ({ ...req, headers: { cookie: req.headers.get("cookie") } }) as unknown as TransformedRequest,
            },
            { name: "third", url: `${c.base}/v3` },
          ],
        },
      ]),
    });
    const res = await r.fetch(`${a.base}/v1/jobs`, { headers: { cookie: "sid=caller-session" } });
    expect(await res.text()).toBe("ok");
    expect(b.hits).toHaveLength(0);
    expect((c.hits[0] as Hit).headers.cookie).toBeUndefined();
  });

  it("held: a hedged start and a redirect after the transform to a third origin hold back a kept piece too", async () => {
    const keepOne = (req: EndpointRequest): TransformedRequest => ({
      ...req,
      headers: new Headers({ cookie: "sid=caller-session", "x-own": "1x" }),
    });
    const hedged = chainTo(keepOne, { hedge: true });
    a.on(() => {}); // home hangs: the hedge starts `away`
    const viaHedge = await sendVia(hedged, { cookie: "theme=dark; sid=caller-session" });
    expect(viaHedge.headers.cookie).toBeUndefined();
    expect(viaHedge.headers["x-own"]).toBe("1x");
    b.reset();
    b.on((hit) => {
      hit.res.writeHead(307, { location: `${c.base}/elsewhere` });
      hit.res.end();
    });
    const redirected = chainTo((req) => {
      req.headers.set("x-provider-key", "pk");
      return { ...req, headers: new Headers([...req.headers, ["cookie", "sid=caller-session"]]) };
    });
    const res = await redirected.fetch(`${a.base}/v1/jobs`, { headers: { cookie: "theme=dark; sid=caller-session" } });
    await res.text();
    expect((b.hits[0] as Hit).headers.cookie).toBeUndefined();
    expect((b.hits[0] as Hit).headers["x-provider-key"]).toBe("pk");
    const third = c.hits[0] as Hit;
    expect(third.path).toBe("/elsewhere");
    expect(third.headers.cookie).toBeUndefined();
    expect(third.headers["x-provider-key"]).toBeUndefined();
  });
});

describe("(b) a redirect hop that is a half-open host's probe, aborted", () => {
  /** A layer whose breaker for `b` is half-open (opened by one 503, `timeout` 50 ms); `a` redirects to `b/hang`. */
  async function halfOpen(timeout: { attempt?: number; total?: number }): Promise<{
    r: Resilience;
    changes: BreakerEvent[];
  }> {
    b.on((hit) => {
      if (hit.path === "/fail") status503(hit);
    });
    a.on((hit) => {
      hit.res.writeHead(302, { location: `${b.base}/hang` });
      hit.res.end();
    });
    c.on(() => {}); // hangs
    const r = createResilience({ retry: false, breaker: { failureThreshold: 1, timeout: 50 }, timeout });
    const changes: BreakerEvent[] = [];
    r.on("breaker", (e) => {
      if (e.key === b.host) changes.push(e);
    });
    await (await r.fetch(`${b.base}/fail`)).text();
    await sleep(70);
    expect(r.health().breakers[b.host]?.state).toBe("half_open");
    return { r, changes };
  }

  const moves = (changes: BreakerEvent[]) => changes.map((e) => `${e.from}>${e.to}`);

  it("held: three nested layers, the outermost's and then the middle's attempt timeout free the innermost's hop slot", async () => {
    const { r, changes } = await halfOpen({ attempt: 2_000 });
    const layer = (fetch: typeof r.fetch, attempt: number) =>
      createResilience({ fetch, retry: false, breaker: false, redirects: "platform", timeout: { attempt } });
    // Outermost times out first.
    const middle = layer(r.fetch, 1_000);
    const outer = layer(middle.fetch, 40);
    const first = (await rejection(outer.fetch(`${a.base}/x`))) as TimeoutError;
    expect(isTimeoutError(first) && first.phase).toBe("attempt");
    await sleep(5);
    expect(moves(changes)).toEqual(["closed>open", "open>half_open"]);
    // The middle times out first.
    const middle2 = layer(r.fetch, 40);
    const outer2 = layer(middle2.fetch, 1_000);
    const second = (await rejection(outer2.fetch(`${a.base}/y`))) as TimeoutError;
    expect(isTimeoutError(second)).toBe(true);
    await sleep(5);
    expect(b.hits.map((hit) => hit.path)).toEqual(["/fail", "/hang", "/hang"]);
    expect(moves(changes)).toEqual(["closed>open", "open>half_open"]);
    expect(r.health().breakers[b.host]?.state).toBe("half_open");
  });

  it("held: one AbortController reused: aborting a later call's hop probe with the TimeoutError an earlier call on it got frees the slot", async () => {
    const { r, changes } = await halfOpen({ attempt: 60 });
    const shared = new AbortController();
    // An earlier call on the same signal, to a host that hangs: this layer's own attempt timeout.
    const earlier = (await rejection(r.fetch(`${c.base}/slow`, { signal: shared.signal }))) as TimeoutError;
    expect(isTimeoutError(earlier) && earlier.phase).toBe("attempt");
    const call = rejection(r.fetch(`${a.base}/x`, { signal: shared.signal }));
    await b.nth(2);
    shared.abort(earlier);
    expect(await call).toBe(earlier);
    await sleep(5);
    expect(moves(changes)).toEqual(["closed>open", "open>half_open"]);
    // Its own attempt timeout on the next hop still fails the probe.
    const own = (await rejection(r.fetch(`${a.base}/z`))) as TimeoutError;
    expect(own.phase).toBe("attempt");
    expect(moves(changes)).toEqual(["closed>open", "open>half_open", "half_open>open"]);
  });

  it("held: a hedge loser whose redirect hop is a half-open host's probe frees the slot when the other endpoint wins", async () => {
    b.on((hit) => {
      if (hit.path === "/fail") status503(hit);
    });
    a.on((hit) => {
      hit.res.writeHead(302, { location: `${b.base}/hang` });
      hit.res.end();
    });
    c.on((hit) => void setTimeout(() => hit.res.end("winner"), 20));
    const r = createResilience({
      retry: false,
      breaker: { failureThreshold: 1, timeout: 50 },
      timeout: { attempt: 2_000 },
      fallback: fallback([
        {
          name: "jobs",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${c.base}/v3` },
          ],
        },
      ]),
    });
    const changes: BreakerEvent[] = [];
    r.on("breaker", (e) => {
      if (e.key === b.host) changes.push(e);
    });
    await (await r.fetch(`${b.base}/fail`)).text();
    await sleep(70);
    expect(r.health().breakers[b.host]?.state).toBe("half_open");
    const res = await r.fetch(`${a.base}/v1/job`);
    expect(await res.text()).toBe("winner");
    await sleep(5);
    expect(b.hits.map((hit) => hit.path)).toEqual(["/fail", "/hang"]);
    expect(moves(changes)).toEqual(["closed>open", "open>half_open"]);
    expect(r.health().breakers[b.host]?.state).toBe("half_open");
  });

  it("held: `timeout.total` equal to `timeout.attempt` ends the hop as the total: the slot is freed, the host stays half-open", async () => {
    const { r, changes } = await halfOpen({ attempt: 60, total: 60 });
    const error = (await rejection(r.fetch(`${a.base}/x`))) as TimeoutError;
    expect(isTimeoutError(error) && error.phase).toBe("total");
    await sleep(5);
    expect(moves(changes)).toEqual(["closed>open", "open>half_open"]);
    expect(r.health().breakers[b.host]?.state).toBe("half_open");
  });
});

describe("(c) keepalive bodies in a real Chromium page on the browser build", () => {
  type Lib = PageLib;
  /** What reached the page's origin and the API's (another port: another origin, CORS open). */
  const received: Array<{ path: string; bytes: number }> = [];
  let home: LibraryPage;
  let api: Server;
  let apiOrigin = "";
  let page: Page;

  function serve(cors: boolean) {
    return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const path = (req.url ?? "/").split("?")[0] as string;
      if (cors) {
        res.setHeader("access-control-allow-origin", "*");
        res.setHeader("access-control-allow-headers", "*");
        res.setHeader("access-control-allow-methods", "*");
        if (req.method === "OPTIONS") return void res.writeHead(204).end();
      } else if (path === "/favicon.ico") return void res.writeHead(404).end();
      let bytes = 0;
      for await (const chunk of req) bytes += (chunk as Buffer).byteLength;
      received.push({ path, bytes });
      if (path.startsWith("/503")) return void res.writeHead(503, { "content-type": "text/plain" }).end("busy");
      res.writeHead(200, { "content-type": "text/plain" }).end(String(bytes));
    };
  }

  beforeAll(async () => {
    api = createServer(serve(true));
    await new Promise<void>((done) => api.listen(0, "127.0.0.1", done));
    apiOrigin = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    home = await openLibraryPage(serve(false));
    page = home.page;
  }, 60_000);

  afterAll(async () => {
    await home?.close();
    api?.closeAllConnections();
    await new Promise((done) => api?.close(done));
  });

  const REFUSED = /^TypeError: resilience\.fetch: browsers send a keepalive request body of 64 KiB at most/;

  it("held: a transform's body of exactly 64 KiB goes; one of 3-byte characters past it, short in length, is refused", async () => {
    received.length = 0;
    const result = await page.evaluate(async (apiO) => {
      const lib = (window as unknown as { lib: Lib }).lib;
      const make = (body: string) =>
        lib.createResilience({
          retry: false,
          fallback: lib.fallback([
            {
              name: "c",
              endpoints: [{ name: "away", url: `${apiO}/t`, transform: (req) => ({ ...req, body }) }],
            },
          ]),
        });
      const send = (body: string, path: string) => {
        const r = make(body);
        return r
          .fetch(path, { method: "POST", keepalive: true, body: "small", headers: { "idempotency-key": "k" } })
          .then(
            async (res) => `status ${res.status} ${await res.text()}`,
            (e: Error & { errors?: object }) =>
              `${e.name}: ${e.message} | ${Object.values(e.errors ?? {})
                .map((x: unknown) => (x instanceof Error ? x.message : String((x as { error?: Error }).error?.message)))
                .join(" / ")}`,
          )
          .then((outcome) => ({ outcome, breakers: Object.values(r.health().breakers).map((x) => x.failureCount) }));
      };
      return {
        atCap: await send("a".repeat(65_536), `${apiO}/t/at-cap`),
        euros: await send("€".repeat(21_846), `${apiO}/t/euros`),
      };
    }, apiOrigin);
    expect(result.atCap.outcome).toBe("status 200 65536");
    expect(result.euros.outcome).toContain("got 65538 bytes");
    expect(result.euros.breakers.every((n) => n === 0)).toBe(true);
    expect(received).toEqual([{ path: "/t/at-cap", bytes: 65_536 }]);
  });

  it("held: a keepalive Request input whose JSON a degradation level grows past 64 KiB is refused at once, no host counted", async () => {
    received.length = 0;
    const result = await page.evaluate(async () => {
      const lib = (window as unknown as { lib: Lib }).lib;
      const body = (size: number): string => {
        const base = JSON.stringify({ model: "premium", pad: "" });
        return JSON.stringify({ model: "premium", pad: "x".repeat(size - base.length) });
      };
      const r = lib.createResilience({ retry: false, degradation: lib.degradation({}) });
      r.degradation.setLevel("medium", "test");
      const send = (path: string, size: number) =>
        r
          .fetch(
            new Request(path, {
              method: "POST",
              keepalive: true,
              body: body(size),
              headers: { "content-type": "application/json" },
            }),
          )
          .then(
            async (res) => `status ${res.status} ${await res.text()}`,
            (e: Error) => `${e.name}: ${e.message}`,
          );
      const atCap = await send("/req/at-cap", 65_535);
      const over = await send("/req/over", 65_536);
      return { atCap, over, failures: Object.values(r.health().breakers).map((x) => x.failureCount) };
    });
    expect(result.atCap).toBe("status 200 65536");
    expect(result.over).toMatch(REFUSED);
    expect(result.failures.every((n) => n === 0)).toBe(true);
    expect(received).toEqual([{ path: "/req/at-cap", bytes: 65_536 }]);
  });

  it("held: a chain whose second endpoint's transform grows the body moves on to the third; a keyless POST's first too", async () => {
    received.length = 0;
    const result = await page.evaluate(async (apiO) => {
      const lib = (window as unknown as { lib: Lib }).lib;
      const grow = (req: EndpointRequest) => ({ ...req, body: "y".repeat(70_000) });
      const keyed = lib.createResilience({
        retry: false,
        fallback: lib.fallback([
          {
            name: "c",
            endpoints: [
              { name: "first", url: `${location.origin}/503` },
              { name: "grown", url: `${apiO}/grown`, transform: grow },
              { name: "third", url: `${apiO}/third` },
            ],
          },
        ]),
      });
      const res = await keyed.fetch("/503/job", {
        method: "POST",
        keepalive: true,
        body: "small",
        headers: { "idempotency-key": "k-1" },
      });
      const keyedOutcome = `status ${res.status} ${await res.text()}`;
      const keyless = lib.createResilience({
        retry: false,
        fallback: lib.fallback([
          {
            name: "d",
            endpoints: [
              { name: "grown", url: `${apiO}/grown-first`, transform: grow },
              { name: "next", url: `${apiO}/next` },
            ],
          },
        ]),
      });
      const res2 = await keyless.fetch(`${apiO}/grown-first/job`, { method: "POST", keepalive: true, body: "tiny" });
      const keylessOutcome = `status ${res2.status} ${await res2.text()}`;
      return {
        keyedOutcome,
        keylessOutcome,
        apiFailures: [keyed, keyless].map((r) => r.health().breakers[new URL(apiO).host]?.failureCount ?? 0),
      };
    }, apiOrigin);
    expect(result.keyedOutcome).toBe("status 200 5");
    expect(result.keylessOutcome).toBe("status 200 4");
    expect(result.apiFailures).toEqual([0, 0]);
    expect(received.map((hit) => hit.path)).toEqual(["/503/job", "/third/job", "/next/job"]);
  });
});
