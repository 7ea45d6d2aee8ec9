/**
 * Outside-in attack on the CHANGELOG's "Unreleased" fixes: each entry below was checked from outside on the paths
 * it names and on the other paths it should also hold on.
 * Docs (CHANGELOG.md, Unreleased): "To another origin (a fallback endpoint, a hedge, a `transform` pointing
 * elsewhere, a redirect) only `accept`, … `idempotency-key`, `user-agent` and the headers you name in
 * `crossOriginHeaders` go"; "A POST or PATCH without an `Idempotency-Key` that a server answered with a redirect is
 * not sent again, whatever the redirect's target answers: a 303 whose GET met a 503, or whose target refused the
 * connection, had the POST retried or sent to the next endpoint of a chain"; "A 307/308 followed by the library
 * sent a body larger than `maxReplayBytes` a second time; it is now refused with a `TypeError`"; "A body rewritten
 * by a degradation rule or an endpoint's `transform` kept the old `Content-Length` … Another body now drops it";
 * "The Worker proxy drops the headers `connection` names as the hop's, both ways"; "No key reaches an error message
 * through a URL the parser cannot read or a redirect"; "`getResilienceInfo(res).fromFallback` is `false` when a
 * chain ends on the first endpoint's own answer"; "A degradation rule's query edit reaches every endpoint of a
 * chain"; "The first endpoint's own query parameters (`?key=K`) reached the spare … now taken out wherever they
 * stand … and put back for that endpoint only"; "`init.signal: null` with a `Request` input leaves the `Request`'s
 * signal behind, as fetch does, on the redirect follower too"; "A degradation `{ header }` target sent twice
 * (`x-steps: 50, 50`) … each value is now edited"; "a rejected call leaves no timer" (with SECURITY.md: the only
 * timer that may outlive a call is the `unref`'d drain); "A `Retry-After` hold on a redirect's final answer holds
 * the host that sent it"; "`debugInfo()`'s totals leave out aborted calls"; "A retry waiting out its backoff is no
 * longer parked behind a breaker that opens meanwhile: the host's breaker opening ends the wait, and the call
 * settles then with the response it had". docs/retry.md: "nothing dropped is put back, even if a later hop returns
 * to the first origin"; docs/fallback.md: "The origin is judged on the URL actually sent, after `transform`".
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy` (./cloudflare, driven in Node with a real upstream), `TestClock`
 * (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts), each port its own origin;
 * `process.getActiveResourcesInfo()` for ref'd timers.
 * Paths: plain call, fallback chain, hedge, redirect followed by the library (302/303/307/308, to another port,
 * and back), degradation rewrite (body, query, header), `Request` input (with body, headers and signal), a layer
 * used as another layer's `fetch`, the ky client, the proxy (single upstream and chain routes).
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - Credentials (`authorization`, `x-api-key`, `cookie`) stay home across a 307 for a `Request` input (its body
 *   replayed), a ky client's headers across a 302, the proxy's forwarded client credentials across its upstream's
 *   302, a hedge to another origin (the level header too, unnamed in `crossOriginHeaders`), a `transform` sending
 *   the first endpoint elsewhere (a `Request` input; its `idempotency-key` goes), ky down a chain to another
 *   origin; a hop back to the first origin after another gets nothing back (`Request` input, ky, proxy).
 * - A keyless POST answered 303 is sent once: `Request` input (body, signal) down a chain (303 then 503, the
 *   spare never gets it), ky (303 then a reset connection, 3 attempts allowed), the proxy's chain route.
 * - A body past `maxReplayBytes` meeting a 307/308 is sent once, never to the target: `Request` input, ky upload,
 *   proxy upload (answered 502).
 * - A degraded body goes out with its own length although the caller named the old `content-length`: plain
 *   `init`, `Request` input, ky, and a chain's spare whose `transform` changed it again.
 * - The proxy drops a response header the upstream's `connection` names (and `keep-alive`).
 * - A key in a redirect's `Location` is cut from `redirect`/`request`/`retry` events, the error's stack and cause,
 *   and `debugInfo()`.
 * - A hedged chain whose first endpoint answers after the hedge started: `fromFallback: false`, endpoint `p`.
 * - The first endpoint's own `?key=K1` reaches the spare neither after a 503 nor through a hedge (a `Request`
 *   input), while a query rule's edit reaches both; the proxy's chain route alike.
 * - `init.signal: null` leaves a `Request`'s aborted signal behind down a chain and through a redirect.
 * - A `Request`'s `x-steps: 50, 50` is edited to `10, 10` for the first endpoint and the hedge.
 * - No ref'd timer is left after a call settles or rejects: plain, retried 503, hedge (settled, rejected, aborted),
 *   chain, ky (with its own timeout), proxy, a layer under another.
 * - A redirect's target that answers 503 `Retry-After: 3600` (past `maxRetryAfter`) is held: the proxy's route to
 *   it answers 503 without sending; a chain's call to it is refused with `CircuitOpenError`, nothing sent.
 * - ky's own timeout and a proxy client's abort count in neither `health().errorRate` nor the proxy's health.
 * - With `TestClock`: a second call opening the host ends the first call's 45 s `Retry-After` wait at once, on a
 *   chain (the first call moves on to the spare at time 0), through the proxy (503) and the ky client
 *   (`HTTPError`).
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const ctx = { waitUntil() {} };
const busy = (h: Hit) => {
  h.res.statusCode = 503;
  h.res.end("busy");
};
const redirectTo = (status: number, to: () => string) => (h: Hit) => {
  h.res.statusCode = status;
  h.res.setHeader("location", to());
  h.res.end();
};
const secretHeaders = { authorization: "Bearer SECRET-AUTH", "x-api-key": "SECRET-KEY", cookie: "sid=SECRET-COOKIE" };
const leaked = (hit: Hit | undefined) =>
  hit === undefined ? [] : ["authorization", "x-api-key", "cookie"].filter((name) => hit.headers[name] !== undefined);

describe("redirects: credentials stay at the first origin on every path", () => {
  // "To another origin (a fallback endpoint, a hedge, a `transform` pointing elsewhere, a redirect) only `accept`,
  // `accept-language`, `content-language`, `content-type`, `idempotency-key`, `user-agent` and the headers you
  // name in `crossOriginHeaders` go" (Changed, breaking).
  it("a Request input's own headers do not follow a 307 to another origin", async () => {
    a.on(redirectTo(307, () => `${b.base}/there`));
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 } });
    const res = await layer.fetch(
      new Request(`${a.base}/here`, { method: "POST", headers: secretHeaders, body: '{"p":1}' }),
    );
    expect(res.status).toBe(200);
    const hop = await b.nth(1);
    expect(hop.body).toBe('{"p":1}');
    expect(leaked(hop)).toEqual([]);
  });

  it("ky client headers do not follow a redirect to another origin", async () => {
    a.on(redirectTo(302, () => `${b.base}/there`));
    const api = createClient({ headers: secretHeaders, resilience: { retry: { ...fast, maxAttempts: 1 } } });
    expect(await api.get(`${a.base}/here`).text()).toBe("ok");
    expect(leaked(await b.nth(1))).toEqual([]);
  });

  it("the proxy's forwarded client credentials do not follow the upstream's redirect to another origin", async () => {
    a.on(redirectTo(302, () => `${b.base}/there`));
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${a.base}/v1` }] });
    const res = await proxy.fetch(new Request("https://w.example/v1/x", { headers: secretHeaders }), {}, ctx);
    expect(res.status).toBe(200);
    expect(a.hits[0]?.headers.authorization).toBe("Bearer SECRET-AUTH");
    expect(leaked(await b.nth(1))).toEqual([]);
  });

  it("a hedge to another origin carries no credentials, nor the level header", async () => {
    a.on(() => {}); // never answers: the hedge wins, this attempt is aborted
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      degradation: degradation({ levelHeader: "x-degradation-level" }),
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 20 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const res = await layer.fetch(`${a.base}/v1/x`, { headers: secretHeaders });
    expect(await res.text()).toBe("ok");
    const hop = await b.nth(1);
    expect(leaked(hop)).toEqual([]);
    expect(hop.headers["x-degradation-level"]).toBeUndefined();
    expect(a.hits[0]?.headers["x-degradation-level"]).toBe("full");
  });
});

const chainOf = (name: string, ...urls: string[]) =>
  fallback([{ name, endpoints: urls.map((url, i) => ({ name: `e${i}`, url })) }]);
const posts = (s: { hits: Hit[] }) => s.hits.filter((h) => h.method === "POST").length;

describe("CHANGELOG: a keyless POST answered with a redirect is not sent again", () => {
  // "A POST or PATCH without an `Idempotency-Key` that a server answered with a redirect is not sent again,
  // whatever the redirect's target answers: a 303 whose GET met a 503 … had the POST retried or sent to the
  // next endpoint of a chain."
  it("a Request input (body and signal) under a chain: 303 then 503, the POST goes nowhere else", async () => {
    a.on((h) => (h.method === "POST" ? redirectTo(303, () => `${b.base}/status`)(h) : h.res.end("?")));
    b.on(busy);
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 3 },
      fallback: chainOf("jobs", `${a.base}/v1`, `${c.base}/v1`),
    });
    const signal = new AbortController().signal;
    const out = await layer.fetch(new Request(`${a.base}/v1/jobs`, { method: "POST", body: '{"job":1}', signal })).then(
      (r) => r.status,
      (e: unknown) => (e as Error).name,
    );
    expect(out).not.toBe(200);
    expect(posts(a)).toBe(1);
    expect(c.hits).toHaveLength(0);
  });

  it("the ky client: 303 then a refused connection, the POST is sent once", async () => {
    a.on(redirectTo(303, () => `${b.base}/status`));
    b.on((h) => h.res.socket?.destroy());
    const api = createClient({ resilience: { retry: { ...fast, maxAttempts: 3 } } });
    await rejection(api.post(`${a.base}/v1/jobs`, { json: { job: 1 } }));
    expect(posts(a)).toBe(1);
  });

  it("the proxy on a chain route: 303 then 503, the client's POST reaches one endpoint once", async () => {
    a.on((h) => (h.method === "POST" ? redirectTo(303, () => `${b.base}/status`)(h) : h.res.end("?")));
    b.on(busy);
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "jobs",
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              { name: "q", url: `${c.base}/v1` },
            ],
          },
        },
      ],
      resilience: { retry: { ...fast, maxAttempts: 3 } },
    });
    const res = await proxy.fetch(
      new Request("https://w.example/v1/jobs", { method: "POST", body: '{"job":1}' }),
      {},
      ctx,
    );
    await res.body?.cancel();
    expect(posts(a)).toBe(1);
    expect(c.hits).toHaveLength(0);
  });
});

describe("CHANGELOG: a body too large to keep is never sent twice by a 307", () => {
  // "A 307/308 followed by the library sent a body larger than `maxReplayBytes` a second time; it is now
  // refused with a `TypeError`, as a stream body was."
  const big = "x".repeat(200);
  it("a Request input's body past maxReplayBytes", async () => {
    a.on(redirectTo(307, () => `${b.base}/there`));
    const layer = createResilience({ maxReplayBytes: 64, retry: { ...fast, maxAttempts: 3 } });
    await rejection(layer.fetch(new Request(`${a.base}/up`, { method: "PUT", body: big })));
    expect(a.hits.filter((h) => h.body === big)).toHaveLength(1);
    expect(b.hits.filter((h) => h.body === big)).toHaveLength(0);
  });

  it("a ky upload past maxReplayBytes", async () => {
    a.on(redirectTo(308, () => `${b.base}/there`));
    const api = createClient({ resilience: { maxReplayBytes: 64, retry: { ...fast, maxAttempts: 3 } } });
    await rejection(api.put(`${a.base}/up`, { body: big }));
    expect(a.hits.filter((h) => h.body === big)).toHaveLength(1);
    expect(b.hits.filter((h) => h.body === big)).toHaveLength(0);
  });

  it("the proxy: a client upload past maxReplayBytes meets a 307", async () => {
    a.on(redirectTo(307, () => `${b.base}/there`));
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${a.base}/v1` }],
      resilience: { maxReplayBytes: 64, retry: { ...fast, maxAttempts: 3 } },
    });
    const res = await proxy.fetch(new Request("https://w.example/v1/up", { method: "PUT", body: big }), {}, ctx);
    await res.body?.cancel();
    expect(res.status).toBe(502);
    expect(a.hits.filter((h) => h.body === big)).toHaveLength(1);
    expect(b.hits.filter((h) => h.body === big)).toHaveLength(0);
  });
});

describe("CHANGELOG: a rewritten body drops the old Content-Length", () => {
  // "A body rewritten by a degradation rule or an endpoint's `transform` kept the old `Content-Length` (the
  // Worker proxy forwards the client's), and fetch refused to send it … Another body now drops it."
  const body = JSON.stringify({ steps: 50, prompt: "cat" });
  const degraded = () => {
    const stage = degradation({});
    return stage;
  };
  it("a plain call whose init names the old content-length", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 }, degradation: degraded() });
    layer.degradation.setLevel("minimal");
    const res = await layer.fetch(`${a.base}/gen`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(body.length) },
      body,
    });
    expect(res.status).toBe(200);
    expect(JSON.parse((await a.nth(1)).body)).toEqual({ steps: 10, prompt: "cat" });
  });

  it("a Request input carrying the old content-length", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 }, degradation: degraded() });
    layer.degradation.setLevel("minimal");
    const req = new Request(`${a.base}/gen`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(body.length) },
      body,
    });
    const res = await layer.fetch(req);
    expect(res.status).toBe(200);
    expect(JSON.parse((await a.nth(1)).body)).toEqual({ steps: 10, prompt: "cat" });
  });

  it("the ky client with an explicit content-length", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 }, degradation: degraded() });
    layer.degradation.setLevel("minimal");
    const api = createClient({ resilience: layer });
    const text = await api
      .post(`${a.base}/gen`, {
        body,
        headers: { "content-type": "application/json", "content-length": String(body.length) },
      })
      .text();
    expect(text).toBe("ok");
    expect(JSON.parse((await a.nth(1)).body)).toEqual({ steps: 10, prompt: "cat" });
  });

  it("a chain's next endpoint after the first's transform, with the caller's content-length", async () => {
    a.on(busy);
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      degradation: degraded(),
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            {
              name: "q",
              url: `${b.base}/v1`,
              transform: (req) => ({ ...req, body: { ...req.body, provider: "q" } }),
            },
          ],
        },
      ]),
    });
    layer.degradation.setLevel("minimal");
    const res = await layer.fetch(`${a.base}/v1/gen`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(body.length), "idempotency-key": "k1" },
      body,
    });
    expect(res.status).toBe(200);
    expect(JSON.parse((await a.nth(1)).body)).toEqual({ steps: 10, prompt: "cat" });
    expect(JSON.parse((await b.nth(1)).body)).toEqual({ steps: 10, prompt: "cat", provider: "q" });
  });
});

describe("CHANGELOG: the proxy's hop headers, redaction of a redirect's target, fromFallback on a hedge", () => {
  // "The Worker proxy drops the headers `connection` names as the hop's, both ways"; "No key reaches an error
  // message through a URL the parser cannot read or a redirect"; "`getResilienceInfo(res).fromFallback` is `false`
  // when a chain ends on the first endpoint's own answer".
  it("proxy drops response headers the upstream's connection names", async () => {
    a.on((h) => {
      h.res.setHeader("connection", "keep-alive, x-hop-secret");
      h.res.setHeader("x-hop-secret", "S3");
      h.res.setHeader("keep-alive", "timeout=5");
      h.res.end("ok");
    });
    const direct = await fetch(`${a.base}/v1/x`); // the header does reach a client of the upstream
    await direct.body?.cancel();
    expect(direct.headers.get("x-hop-secret")).toBe("S3");
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${a.base}/v1` }] });
    const res = await proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx);
    expect(res.headers.get("x-hop-secret")).toBeNull();
    expect(res.headers.get("keep-alive")).toBeNull();
  });

  it("redirect to a URL with a key: events, error, debugInfo", async () => {
    a.on(redirectTo(302, () => `${b.base}/cb?api_key=SECRET-Q&x=1`));
    b.on((h) => h.res.socket?.destroy());
    const layer = createResilience({ retry: { ...fast, maxAttempts: 2 } });
    const seen: unknown[] = [];
    for (const n of ["redirect", "request", "retry", "fallback"] as const) layer.on(n, (e) => seen.push(e));
    const err = await rejection(layer.fetch(`${a.base}/start`));
    const text =
      JSON.stringify(seen) +
      String((err as Error).stack) +
      String(((err as Error).cause as Error)?.stack) +
      JSON.stringify(layer.debugInfo());
    expect(text).not.toContain("SECRET-Q");
  });

  it("hedge: first endpoint wins after the hedge started: fromFallback false", async () => {
    a.on((h) => setTimeout(() => h.res.end("first"), 60));
    b.on(() => {}); // the hedge, aborted when the first endpoint answers
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(await res.text()).toBe("first");
    expect(getResilienceInfo(res)?.fromFallback).toBe(false);
    await (await b.nth(1)).closed;
  });
});

describe("CHANGELOG: a rule's query edit and the first endpoint's own key, a Request's signal, a header sent twice", () => {
  // "A degradation rule's query edit reaches every endpoint of a chain"; "The first endpoint's own query parameters
  // (`?key=K`) … are now taken out wherever they stand … and put back for that endpoint only"; "`init.signal: null`
  // with a `Request` input leaves the `Request`'s signal behind, as fetch does, on the redirect follower too"; "A
  // degradation `{ header }` target sent twice (`x-steps: 50, 50`) … each value is now edited".
  it("degradation query edit + first endpoint's own key: the spare gets the edit, not the key", async () => {
    a.on(busy);
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      degradation: degradation({ rules: [{ match: `${a.base}/v1`, params: { steps: { query: "steps" } } }] }),
      fallback: fallback([
        {
          name: "q",
          endpoints: [
            { name: "p", url: `${a.base}/v1?key=K1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    layer.degradation.setLevel("minimal");
    const res = await layer.fetch(`${a.base}/v1/jobs?steps=50&key=K1&x=a%2Fb`);
    expect(res.status).toBe(200);
    expect(b.hits[0]?.path).not.toContain("K1");
    expect(b.hits[0]?.path).toContain("steps=10");
    expect(a.hits[0]?.path).toContain("steps=10");
  });

  it("same via hedge", async () => {
    a.on(() => {}); // never answers: the hedge wins, this attempt is aborted
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      degradation: degradation({ rules: [{ match: `${a.base}/v1`, params: { steps: { query: "steps" } } }] }),
      fallback: fallback([
        {
          name: "q",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: `${a.base}/v1?key=K1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    layer.degradation.setLevel("minimal");
    const res = await layer.fetch(new Request(`${a.base}/v1/jobs?key=K1&steps=50`));
    expect(await res.text()).toBe("ok");
    expect(b.hits[0]?.path).not.toContain("K1");
    expect(b.hits[0]?.path).toContain("steps=10");
  });

  it("proxy chain route with a key in its first endpoint and a query rule", async () => {
    a.on(busy);
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "q",
            endpoints: [
              { name: "p", url: `${a.base}/v1?key=K1` },
              { name: "q", url: `${b.base}/v1` },
            ],
          },
        },
      ],
      resilience: {
        retry: { ...fast, maxAttempts: 1 },
        degradation: degradation({
          rules: [{ match: `${a.base}/v1`, params: { steps: { query: "steps" } } }],
          levels: {},
        }),
      },
    });
    const res = await proxy.fetch(new Request("https://w.example/v1/jobs?steps=50"), {}, ctx);
    expect(res.status).toBe(200);
    expect(b.hits[0]?.path).not.toContain("K1");
  });

  it("init.signal null leaves a Request's signal behind, down a chain", async () => {
    a.on(busy);
    b.on((h) => setTimeout(() => h.res.end("late"), 80));
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      fallback: chainOf("s", `${a.base}/v1`, `${b.base}/v1`),
    });
    const ac = new AbortController();
    const call = layer.fetch(new Request(`${a.base}/v1/x`, { signal: ac.signal }), { signal: null });
    setTimeout(() => ac.abort(new Error("request's own")), 20);
    const res = await call;
    expect(await res.text()).toBe("late");
  });

  it("init.signal null leaves a Request's signal behind, through a redirect", async () => {
    a.on(redirectTo(302, () => `${b.base}/there`));
    b.on((h) => setTimeout(() => h.res.end("late"), 80));
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 } });
    const ac = new AbortController();
    const call = layer.fetch(new Request(`${a.base}/v1/x`, { signal: ac.signal }), { signal: null });
    setTimeout(() => ac.abort(new Error("request's own")), 20);
    const res = await call;
    expect(await res.text()).toBe("late");
  });

  it("degradation header target sent twice in a Request input, down a hedge", async () => {
    a.on(() => {}); // never answers: the hedge wins, this attempt is aborted
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      crossOriginHeaders: ["x-steps"],
      degradation: degradation({ rules: [{ params: { steps: { header: "x-steps" } } }] }),
      fallback: fallback([
        {
          name: "h2",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    layer.degradation.setLevel("minimal");
    const headers = new Headers();
    headers.append("x-steps", "50");
    headers.append("x-steps", "50");
    const res = await layer.fetch(new Request(`${a.base}/v1/x`, { headers }));
    expect(await res.text()).toBe("ok");
    expect(a.hits[0]?.headers["x-steps"]).toBe("10, 10");
    expect(b.hits[0]?.headers["x-steps"]).toBe("10, 10");
  });
});

const timeouts = () => process.getActiveResourcesInfo().filter((x) => x === "Timeout").length;
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

describe("CHANGELOG: no timer outlives a settled call; a Retry-After hold lands on the redirect's target", () => {
  // "a rejected call leaves no timer"; SECURITY.md "which timer may outlive a call: the at most 1 s, `unref`'d
  // drain"; "A `Retry-After` hold on a redirect's final answer holds the host that sent it".
  it("timers after settled calls on each path", async () => {
    const opts: ResilienceOptions = { retry: { ...fast, maxAttempts: 2 }, timeout: { attempt: 5_000, total: 20_000 } };
    const left: Record<string, number> = {};
    const measure = async (name: string, run: () => Promise<unknown>) => {
      await settle();
      const before = timeouts();
      await run();
      await settle();
      // None added; one fewer is a timer of the test's own servers (a keep-alive socket's) that ended meanwhile.
      left[name] = Math.max(0, timeouts() - before);
    };
    const layer = createResilience(opts);
    await measure("plain", async () => (await layer.fetch(`${a.base}/x`)).text());
    a.on(busy);
    await measure("retried", async () => (await layer.fetch(`${a.base}/x`)).text());
    a.on(() => {}); // never answers: the hedge wins, this one is aborted
    const hedged = createResilience({
      ...opts,
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    await measure("hedge", async () => (await hedged.fetch(`${a.base}/v1/x`)).text());
    const api = createClient({ timeout: 5_000, resilience: opts });
    await measure("ky", async () => api.get(`${b.base}/x`).text());
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${b.base}/v1` }], resilience: opts });
    await measure("proxy", async () => (await proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx)).text());
    const inner = createResilience(opts);
    const outer = createResilience({ ...opts, fetch: inner.fetch });
    await measure("nested", async () => (await outer.fetch(`${b.base}/x`)).text());
    expect(left).toEqual({ plain: 0, retried: 0, hedge: 0, ky: 0, proxy: 0, nested: 0 });
  });

  it("a Retry-After hold on a redirect's final answer holds the host that sent it, through the proxy", async () => {
    a.on(redirectTo(302, () => `${b.base}/v2/x`));
    b.on((h) => {
      h.res.statusCode = 503;
      h.res.setHeader("retry-after", "3600");
      h.res.end("hold");
    });
    const proxy = resilientProxy({
      routes: [
        { path: "/v1", upstream: `${a.base}/v1` },
        { path: "/v2", upstream: `${b.base}/v2` },
      ],
      resilience: { retry: { ...fast, maxAttempts: 2, maxRetryAfter: 1_000 } },
    });
    const first = await proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx);
    await first.body?.cancel();
    const bHits = b.hits.length;
    const second = await proxy.fetch(new Request("https://w.example/v2/x"), {}, ctx);
    expect(second.status).toBe(503);
    expect(b.hits.length).toBe(bHits);
  });

  it("same through a chain endpoint", async () => {
    a.on(redirectTo(302, () => `${b.base}/v2/x`));
    b.on((h) => {
      h.res.statusCode = 503;
      h.res.setHeader("retry-after", "3600");
      h.res.end("hold");
    });
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 2, maxRetryAfter: 1_000 },
      fallback: chainOf("rh", `${a.base}/v1`, `${c.base}/v1`),
    });
    const first = await layer.fetch(`${a.base}/v1/x`);
    expect(first.status).toBe(200); // the spare, once the held host answered 503
    const bHits = b.hits.length;
    const err = await layer.fetch(`${b.base}/v2/x`).then(
      (r) => r.status,
      (e: unknown) => (e as Error).name,
    );
    expect(err).toBe("CircuitOpenError");
    expect(b.hits.length).toBe(bHits);
  });
});

describe("CHANGELOG: no timer outlives a rejected call; aborted calls are not counted", () => {
  // "a rejected call leaves no timer"; "`debugInfo()`'s totals leave out aborted calls" (docs: "a call its caller
  // aborted is left out").
  it("timers after rejected calls on each path", async () => {
    const opts: ResilienceOptions = { retry: { ...fast, maxAttempts: 2 }, timeout: { attempt: 5_000, total: 20_000 } };
    const left: Record<string, number> = {};
    const measure = async (name: string, run: () => Promise<unknown>) => {
      await settle();
      const before = timeouts();
      await run().catch(() => {});
      await settle();
      left[name] = timeouts() - before;
    };
    a.on((h) => h.res.socket?.destroy());
    b.on((h) => h.res.socket?.destroy());
    const chain = createResilience({ ...opts, fallback: chainOf("r", `${a.base}/v1`, `${b.base}/v1`) });
    await measure("chain", () => chain.fetch(`${a.base}/v1/x`));
    const hedged = createResilience({
      ...opts,
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 5 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    await measure("hedge", () => hedged.fetch(`${a.base}/v1/x`));
    const api = createClient({ timeout: 5_000, resilience: opts });
    await measure("ky", () => api.get(`${b.base}/x`).text());
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${b.base}/v1` }], resilience: opts });
    await measure("proxy", async () => (await proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx)).text());
    a.on(() => {});
    const ac = new AbortController();
    await measure("aborted", () => {
      const p = hedged.fetch(`${a.base}/v1/x`, { signal: ac.signal });
      setTimeout(() => ac.abort(), 20);
      return p;
    });
    // None added: a count can only fall, when a timer of an earlier test (another file's, in one process) ends meanwhile.
    expect(Object.entries(left).filter(([, added]) => added > 0)).toEqual([]);
    expect(Object.keys(left)).toEqual(["chain", "hedge", "ky", "proxy", "aborted"]);
  });

  it("ky's own timeout and the proxy client's abort are left out of the totals", async () => {
    a.on(() => {});
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 } });
    const api = createClient({ timeout: 30, resilience: layer });
    await rejection(api.get(`${a.base}/x`));
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${a.base}/v1` }] });
    const ac = new AbortController();
    const p = proxy.fetch(new Request("https://w.example/v1/x", { signal: ac.signal }), {}, ctx);
    setTimeout(() => ac.abort(), 20);
    await rejection(p);
    const health = await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx);
    const h = (await health.json()) as { errorRate: number };
    expect(layer.health().errorRate).toBe(0);
    expect(h.errorRate).toBe(0);
  });
});

describe("CHANGELOG: nothing dropped is put back; a transform's origin; ky down a chain", () => {
  // docs/retry.md "nothing dropped is put back, even if a later hop returns to the first origin"; "The origin is
  // judged on the URL actually sent, after `transform`".
  it("a hop back to the first origin gets nothing dropped back: Request input, ky, proxy", async () => {
    a.on((h) => (h.path.startsWith("/back") ? h.res.end("back") : redirectTo(302, () => `${b.base}/mid`)(h)));
    b.on(redirectTo(307, () => `${a.base}/back`));
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 } });
    expect(await (await layer.fetch(new Request(`${a.base}/start`, { headers: secretHeaders }))).text()).toBe("back");
    const api = createClient({ headers: secretHeaders, resilience: layer });
    expect(await api.get(`${a.base}/start`).text()).toBe("back");
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: `${a.base}/` }] });
    const res = await proxy.fetch(new Request("https://w.example/start", { headers: secretHeaders }), {}, ctx);
    expect(await res.text()).toBe("back");
    const backs = a.hits.filter((h) => h.path === "/back");
    expect(backs).toHaveLength(3);
    expect(backs.map(leaked)).toEqual([[], [], []]);
    expect(b.hits.map(leaked)).toEqual([[], [], []]);
  });

  it("a transform sending the first endpoint elsewhere keeps a Request input's credentials home", async () => {
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "t",
          endpoints: [
            { name: "p", url: `${a.base}/v1`, transform: (req) => ({ ...req, url: req.url.replace(a.base, b.base) }) },
            { name: "q", url: `${c.base}/v1` },
          ],
        },
      ]),
    });
    const res = await layer.fetch(
      new Request(`${a.base}/v1/x`, {
        method: "POST",
        headers: { ...secretHeaders, "idempotency-key": "k" },
        body: "{}",
      }),
    );
    expect(res.status).toBe(200);
    expect(a.hits).toHaveLength(0);
    const hit = await b.nth(1);
    expect(leaked(hit)).toEqual([]);
    expect(hit.headers["idempotency-key"]).toBe("k");
  });

  it("ky through a chain whose spare is another origin", async () => {
    a.on(busy);
    const api = createClient({
      headers: secretHeaders,
      resilience: { retry: { ...fast, maxAttempts: 1 }, fallback: chainOf("k", `${a.base}/v1`, `${b.base}/v1`) },
    });
    expect(await api.post(`${a.base}/v1/x`, { json: { a: 1 }, headers: { "idempotency-key": "k2" } }).text()).toBe(
      "ok",
    );
    expect(leaked(await b.nth(1))).toEqual([]);
    expect(leaked(a.hits[0])).toEqual(["authorization", "x-api-key", "cookie"]);
  });
});

describe("CHANGELOG: a breaker opening ends a retry's wait (TestClock)", () => {
  // "A retry waiting out its backoff is no longer parked behind a breaker that opens meanwhile: the host's
  // breaker opening ends the wait, and the call settles then with the response it had"
  const holding = (h: Hit) => {
    h.res.statusCode = 503;
    h.res.setHeader("retry-after", "45");
    h.res.end("busy");
  };
  const settledOrPending = (p: Promise<Response>) => {
    let state: string | number = "pending";
    p.then(
      (r) => {
        state = r.status;
      },
      (e: unknown) => {
        state = (e as Error).name;
      },
    );
    return () => state;
  };
  const until = async (check: () => boolean) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  };

  it("down a chain: the first call moves on to the spare when the opening ends its wait", async () => {
    a.on(holding);
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { ...fast, maxAttempts: 3, maxRetryAfter: 60_000 },
      breaker: { failureThreshold: 2 },
      fallback: chainOf("w", `${a.base}/v1`, `${b.base}/v1`),
    });
    const first = layer.fetch(`${a.base}/v1/one`);
    const state1 = settledOrPending(first);
    await until(() => a.hits.length === 1 && clock.pending() > 0);
    const second = await layer.fetch(`${a.base}/v1/two`);
    expect(second.status).toBe(200);
    await until(() => state1() !== "pending");
    expect(state1()).toBe(200);
    expect(clock.now()).toBe(0);
    expect(a.hits).toHaveLength(2);
  });

  it("through the proxy", async () => {
    a.on(holding);
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${a.base}/v1` }],
      resilience: {
        clock,
        retry: { ...fast, maxAttempts: 3, maxRetryAfter: 60_000 },
        breaker: { failureThreshold: 2 },
      },
    });
    const first = proxy.fetch(new Request("https://w.example/v1/one"), {}, ctx);
    const state1 = settledOrPending(first);
    await until(() => a.hits.length === 1 && clock.pending() > 0);
    const second = await proxy.fetch(new Request("https://w.example/v1/two"), {}, ctx);
    await second.body?.cancel();
    expect(second.status).toBe(503);
    await until(() => state1() !== "pending");
    expect(state1()).toBe(503);
    expect(clock.now()).toBe(0);
    expect(a.hits).toHaveLength(2);
  });

  it("through the ky client", async () => {
    a.on(holding);
    const clock = new TestClock();
    const api = createClient({
      timeout: false,
      resilience: {
        clock,
        retry: { ...fast, maxAttempts: 3, maxRetryAfter: 60_000 },
        breaker: { failureThreshold: 2 },
      },
    });
    const first = api.get(`${a.base}/one`);
    const state1 = settledOrPending(first);
    await until(() => a.hits.length === 1 && clock.pending() > 0);
    await rejection(api.get(`${a.base}/two`));
    await until(() => state1() !== "pending");
    expect(state1()).toBe("HTTPError");
    expect(a.hits).toHaveLength(2);
  });
});
