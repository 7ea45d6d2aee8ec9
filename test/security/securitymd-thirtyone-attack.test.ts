/**
 * Outside-in attack on SECURITY.md as it stands after today's edits: the rows changed today first (paid requests
 * and a chain's answer after a possibly-processed POST, buffered bodies and `replay` events, the caller's mistakes,
 * no secret with URLs percent-encoded into a URL's path), and the "Names you choose" limit with `breaker.key`.
 * Docs: SECURITY.md "A paid request is never processed twice": "without an `Idempotency-Key` (an empty one is
 * none), a POST or PATCH is sent again (a retry, or the next endpoint of a chain: one rule) only when it surely was
 * not processed: 429, 503, or a failure before it reached the server …; never after a 500, a reset, an attempt or
 * total timeout or a redirect (whatever its target answers); hedging needs a key" (with docs/fallback.md "or
 * rejects with `FallbackExhaustedError` … if an endpoint tried after it may have processed a request that is not
 * safe to send twice"); "Buffered bodies are bounded": "a request body is kept for replay only up to
 * `maxReplayBytes` (8 MiB); a larger one (with a `replay` event), or a stream, is sent once on every path (chain,
 * rewrite, hedge); a `Request` body (the Worker proxy's client body included) is read at most `maxReplayBytes`
 * ahead, under the call's signal and `timeout.total`, and one announcing a larger `Content-Length` is not read at
 * all"; "The caller's mistakes never trip a breaker": "… reject at once with a `TypeError`: never retried, never
 * counted, no timer left"; "No secret in events, errors, `health()` or `debugInfo()`": "a URL percent-encoded into
 * text or into a URL's path, `https%3A%2F%2F…`, is cut as a plain one, up to three times encoded"; Limits, "Names
 * you choose": "So is what your `breaker.key(url)` returns (it is the breaker's identity, not cut)".
 * How: `createResilience` (events, `health()`, `debugInfo()`), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare, in Node over plain fetch), `TestClock`
 * (./testing); real node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts, and one raw server that says
 * when a request's headers arrived), a refused origin, servers that reset the connection once a request arrived.
 * Paths: plain call, chain, hedge, redirect (`redirects: "library"`, Node's default), degradation rewrite,
 * `Request` input, the proxy (upstream and chain routes, its health endpoint), the ky client.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * since, plain `it`: 1 made exact in SECURITY.md and docs/options.md):
 * 1. SECURITY.md "a request body is kept for replay only up to `maxReplayBytes` …; a larger one (with a `replay`
 *    event) … is sent once on every path (chain, rewrite, hedge)". Observed: a body the degradation rewrite makes
 *    larger than `maxReplayBytes` is kept and replayed: a PUT of exactly `maxReplayBytes` (38) bytes whose
 *    `"model":"premium"` the `medium` level turns into `"standard"` goes out at 39 bytes three times after 503s,
 *    with no `replay` event. Mechanism: the body is measured once at the entry (src/http/request/
 *    normalize-request.ts, `oversize`, and the `replay` event in src/http/resilient-fetch.ts `send`, emitted before
 *    `levels?.rewrite`); src/degradation/rewrite-request.ts keeps `replay` as decided at the entry ("Whether the
 *    body may be replayed was decided at the entry and stays so") and `deriveRequest` copies it onto the new body.
 *    The growth is bounded only by the rule's edits: a `models` ladder of your own (`["a", <a long name>]`) grows
 *    a small body by that name's length, all of it kept for replay.
 *
 * Held (plain `it`):
 * - Paid requests: a keyless POST a chain sends on after a 503 and that the next endpoint resets rejects with
 *   `FallbackExhaustedError` and goes no further (the same through a proxy chain route: 502, not the earlier
 *   503's body); a keyless POST redirected (307) to a 503 in a chain goes to no next endpoint; a `Request` POST
 *   redirected (303) to a 503 is not sent again; a keyless POST, and one whose `Idempotency-Key` is empty, start
 *   no hedge however long the first endpoint takes; a keyless POST rewritten at `low` (`steps` 50 → 20) is not
 *   sent again after a 500, nor down a chain; the ky client's PATCH with an empty key is not retried after a 500,
 *   nor its keyless POST after an attempt timeout; the proxy's keyless client POST is not sent again after a 500,
 *   a reset (502) or a redirect to a 503; 429 then 503 move a keyless POST down a chain to the third endpoint.
 * - Buffered bodies: a keyed body over `maxReplayBytes` goes to one chain endpoint only, with one `replay` event
 *   (its URL without the query); a keyed oversize body starts no hedge (one `replay` event); an oversize PUT at
 *   `low` is sent once after a 503 with a `replay` event; a stream body goes to one chain endpoint only and fires
 *   no `replay` event; an oversize `Request` body and an oversize proxy client body are sent once, whole, with a
 *   `replay` event, while a small proxy client body is retried (3 sends); a `Request` or proxy client body that
 *   stalls ends the call at `timeout.total` (a `TimeoutError`; the proxy's 504), nothing reaching the upstream;
 *   a `Request` (and a proxy client) body announcing `Content-Length: 100` over a limit of 32 is not read ahead
 *   (its second chunk comes only once the upstream got the request's headers, and the call succeeds).
 * - The caller's mistakes (a GET or HEAD with a body, a symbol body, a method that is no token, LF, CR or NUL
 *   inside a header value, a signal that is no `AbortSignal`, `redirect: "bogus"`, `duplex: "full"`, a referrer
 *   that is no URL, a `Request` given such an `init`), on a chain's, a hedged chain's and a rewriting layer's
 *   URLs, with `timeout.total` set on a `TestClock`: each a `TypeError`, nothing sent, no `request`, `retry` or
 *   `fallback` event, no breaker failure, `errorRate` 0, `debugInfo().totals` 0, no timer pending; so are `ws:`,
 *   `ftp:` and port 99999 through a rewriting chain layer.
 * - No secret: URLs percent-encoded into a request's path (once, twice, three times; userinfo; lower-case escapes;
 *   a fragment; raw slashes after `%3A`; `http:` with the key after `&`; an upper-case scheme) leave none of
 *   their secrets in `request`, `retry`, `breaker`, `redirect` (`to` and `from` over 20 hops, and the
 *   redirect-limit error) or `fallback` events, `health()`, `debugInfo()`, a `FallbackExhaustedError` and its
 *   endpoint errors, a `TimeoutError`, a `CircuitOpenError`, a refused connection's error, the ky client's
 *   `HTTPError` and `TimeoutError`, or the proxy's health JSON.
 * - Names you choose: a `breaker.key` label, and one written as a URL with a query, are shown whole in `breaker`
 *   and `retry` events, `health().breakers` and the `CircuitOpenError` message.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, FallbackExhaustedError, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type HttpUpstream, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" } as const;
const ctx = { waitUntil: () => {}, passThroughOnContext: () => {} };

/** The server drops the connection once the request arrived: a reset after the request went out. */
const reset = (server: HttpUpstream) => server.on((hit) => hit.req.socket.destroy());

function chainOf(...servers: HttpUpstream[]) {
  return fallback([{ name: "gen", endpoints: servers.map((s, i) => ({ name: `e${i}`, url: `${s.base}/v1` })) }]);
}

describe("A paid request is never processed twice (SECURITY.md) on other paths", () => {
  it("chain: a keyless POST that an endpoint may have processed after an earlier 503 rejects, no next endpoint", async () => {
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    reset(b);
    const resilience = createResilience({ retry: { ...fast, maxAttempts: 1 }, fallback: chainOf(a, b, c) });
    const error = await rejection(resilience.fetch(`${a.base}/v1/jobs`, { method: "POST", body: "{}" }));
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect([a.hits.length, b.hits.length, c.hits.length]).toEqual([1, 1, 0]);
  });

  it("chain: a keyless POST redirected (307) to a 503 does not go to the next endpoint", async () => {
    a.on((hit) => {
      if (hit.path === "/v1/jobs") {
        hit.res.writeHead(307, { location: `${a.base}/v1/moved` });
        hit.res.end();
      } else {
        hit.res.statusCode = 503;
        hit.res.end("busy");
      }
    });
    const resilience = createResilience({ retry: fast, fallback: chainOf(a, b) });
    const outcome = await resilience.fetch(`${a.base}/v1/jobs`, { method: "POST", body: "{}" }).then(
      (res) => res.status,
      (error: unknown) => error,
    );
    expect(a.hits.map((h) => h.path)).toEqual(["/v1/jobs", "/v1/moved"]);
    expect(b.hits.length).toBe(0);
    expect(outcome).not.toBe(200);
  });

  it("Request input: a keyless POST redirected (303, then GET) to a 503 is not sent again", async () => {
    a.on((hit) => {
      if (hit.path === "/start") {
        hit.res.writeHead(303, { location: "/next" });
        hit.res.end();
      } else {
        hit.res.statusCode = 503;
        hit.res.end("busy");
      }
    });
    const resilience = createResilience({ retry: fast });
    const res = await resilience.fetch(new Request(`${a.base}/start`, { method: "POST", body: "{}" }));
    expect(res.status).toBe(503);
    expect(a.hits.map((h) => `${h.method} ${h.path}`)).toEqual(["POST /start", "GET /next"]);
  });

  it("hedge: a keyless POST never starts a hedge, however long the first endpoint takes", async () => {
    a.on((hit) => setTimeout(() => hit.res.end("late"), 120));
    const resilience = createResilience({
      retry: fast,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 10 },
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            { name: "b", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const res = await resilience.fetch(`${a.base}/v1/jobs`, { method: "POST", body: "{}" });
    expect(await res.text()).toBe("late");
    expect([a.hits.length, b.hits.length]).toEqual([1, 0]);
  });

  it("hedge: a POST whose Idempotency-Key is empty is keyless: no hedge", async () => {
    a.on((hit) => setTimeout(() => hit.res.end("late"), 120));
    const resilience = createResilience({
      retry: fast,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 10 },
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            { name: "b", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const res = await resilience.fetch(`${a.base}/v1/jobs`, {
      method: "POST",
      headers: { "idempotency-key": "" },
      body: "{}",
    });
    expect(await res.text()).toBe("late");
    expect([a.hits.length, b.hits.length]).toEqual([1, 0]);
  });

  it("rewrite: a keyless POST rewritten at a lower level is not sent again after a 500, nor down a chain", async () => {
    a.on((hit) => {
      hit.res.statusCode = 500;
      hit.res.end("boom");
    });
    const resilience = createResilience({ retry: fast, degradation: degradation({}), fallback: chainOf(a, b) });
    resilience.degradation.setLevel("low");
    const outcome = await resilience
      .fetch(`${a.base}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"steps":50}',
      })
      .then(
        (res) => res.status,
        (error: unknown) => error,
      );
    expect(a.hits.length).toBe(1);
    expect(a.hits[0]?.body).toBe('{"steps":20}');
    expect(b.hits.length).toBe(0);
    expect(outcome === 500 || outcome instanceof FallbackExhaustedError).toBe(true);
  });

  it("ky client: a PATCH with an empty Idempotency-Key is not retried after a 500 or an attempt timeout", async () => {
    a.on((hit) => {
      hit.res.statusCode = 500;
      hit.res.end("boom");
    });
    const client = createClient({ resilience: { retry: fast }, throwHttpErrors: false });
    const res = await client.patch(`${a.base}/x`, { headers: { "idempotency-key": "" }, json: { a: 1 } });
    expect(res.status).toBe(500);
    expect(a.hits.length).toBe(1);
    a.reset();
    a.on((hit) => setTimeout(() => hit.res.end("late"), 150));
    const slow = createClient({ resilience: { retry: fast, timeout: { attempt: 30 } }, throwHttpErrors: false });
    await rejection(slow.post(`${a.base}/x`, { json: { a: 1 } }));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(a.hits.length).toBe(1);
  });

  it("proxy: a client's keyless POST is not sent again after a 500, a reset or a redirect to a 503", async () => {
    const proxy = resilientProxy<Record<string, never>>({
      routes: [{ path: "/api", upstream: `${a.base}/v1` }],
      resilience: { retry: fast },
    });
    const post = () =>
      proxy.fetch(new Request("https://edge.example/api/jobs", { method: "POST", body: "{}" }), {}, ctx);
    a.on((hit) => {
      hit.res.statusCode = 500;
      hit.res.end("boom");
    });
    expect((await post()).status).toBe(500);
    expect(a.hits.length).toBe(1);
    a.reset();
    reset(a);
    expect((await post()).status).toBe(502);
    expect(a.hits.length).toBe(1);
    a.reset();
    a.on((hit) => {
      if (hit.path === "/v1/jobs") {
        hit.res.writeHead(307, { location: "/v1/moved" });
        hit.res.end();
      } else {
        hit.res.statusCode = 503;
        hit.res.end("busy");
      }
    });
    // The target's 503 after a redirect is the proxy's own 502: passed on, it would read as declined.
    expect((await post()).status).toBe(502);
    expect(a.hits.map((h) => h.path)).toEqual(["/v1/jobs", "/v1/moved"]);
  });

  it("proxy chain: after a 503 then a reset, the client gets a failure, not the 503 that invites a resend", async () => {
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy-a");
    });
    reset(b);
    const proxy = resilientProxy<Record<string, never>>({
      routes: [
        {
          path: "/api",
          chain: {
            name: "gen",
            endpoints: [
              { name: "a", url: `${a.base}/v1` },
              { name: "b", url: `${b.base}/v1` },
              { name: "c", url: `${c.base}/v1` },
            ],
          },
        },
      ],
      resilience: { retry: { ...fast, maxAttempts: 1 } },
    });
    const res = await proxy.fetch(
      new Request("https://edge.example/api/jobs", { method: "POST", body: "{}" }),
      {},
      ctx,
    );
    expect(res.status).toBe(502);
    expect(await res.text()).not.toContain("busy-a");
    expect([a.hits.length, b.hits.length, c.hits.length]).toEqual([1, 1, 0]);
  });

  it("chain: a 429 then a 503 move a keyless POST on (surely not processed); the last answer is returned", async () => {
    a.on((hit) => {
      hit.res.statusCode = 429;
      hit.res.end("slow down");
    });
    b.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    const resilience = createResilience({ retry: { ...fast, maxAttempts: 1 }, fallback: chainOf(a, b, c) });
    const res = await resilience.fetch(`${a.base}/v1/jobs`, { method: "POST", body: "{}" });
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)?.endpoint).toBe("e2");
    expect([a.hits.length, b.hits.length, c.hits.length]).toEqual([1, 1, 1]);
  });
});

const busy = (server: HttpUpstream) =>
  server.on((hit) => {
    hit.res.statusCode = 503;
    hit.res.end("busy");
  });

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
      controller.close();
    },
  });
}

describe("Buffered bodies are bounded (SECURITY.md) on other paths", () => {
  const big = JSON.stringify({ prompt: "x".repeat(60) }); // 73 bytes
  const limit = 32;

  it("chain: a keyed body larger than maxReplayBytes goes to one endpoint only, with one replay event", async () => {
    busy(a);
    const resilience = createResilience({ retry: fast, maxReplayBytes: limit, fallback: chainOf(a, b) });
    const replays: unknown[] = [];
    resilience.on("replay", (event) => replays.push(event));
    await resilience
      .fetch(`${a.base}/v1/jobs?key=s3cret`, { method: "POST", headers: { "idempotency-key": "k1" }, body: big })
      .then(
        (res) => res.status,
        (error: unknown) => error,
      );
    expect([a.hits.length, b.hits.length]).toEqual([1, 0]);
    expect(a.hits[0]?.body).toBe(big);
    expect(replays).toEqual([{ url: `${a.base}/v1/jobs`, bytes: big.length, limit }]);
  });

  it("hedge: a keyed body larger than maxReplayBytes starts no hedge", async () => {
    a.on((hit) => setTimeout(() => hit.res.end("late"), 100));
    const resilience = createResilience({
      retry: fast,
      maxReplayBytes: limit,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 10 },
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            { name: "b", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    let replays = 0;
    resilience.on("replay", () => replays++);
    const res = await resilience.fetch(`${a.base}/v1/jobs`, {
      method: "POST",
      headers: { "idempotency-key": "k2" },
      body: big,
    });
    expect(await res.text()).toBe("late");
    expect([a.hits.length, b.hits.length, replays]).toEqual([1, 0, 1]);
  });

  it("rewrite: a PUT body larger than maxReplayBytes is sent once after a 503, with a replay event", async () => {
    busy(a);
    const resilience = createResilience({ retry: fast, maxReplayBytes: limit, degradation: degradation({}) });
    resilience.degradation.setLevel("low");
    let replays = 0;
    resilience.on("replay", () => replays++);
    const body = JSON.stringify({ steps: 50, prompt: "x".repeat(40) });
    const res = await resilience.fetch(`${a.base}/v1`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(503);
    expect(a.hits.length).toBe(1);
    expect(replays).toBe(1);
  });

  // Made exact in SECURITY.md (and docs/options.md) instead: the bound is measured on the body as the caller sent
  // it, and a degradation rule's edit may lengthen a kept body by what it writes. This holds the new sentence.
  it("rewrite: a body the level's rewrite grows past maxReplayBytes stays kept and replayed, as measured when sent", async () => {
    busy(a);
    const body = JSON.stringify({ model: "premium", p: "xxxxxxxxx" }); // 38 bytes; "standard" makes it 39
    const resilience = createResilience({ retry: fast, maxReplayBytes: body.length, degradation: degradation({}) });
    resilience.degradation.setLevel("medium");
    let replays = 0;
    resilience.on("replay", () => replays++);
    const res = await resilience.fetch(`${a.base}/v1`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(503);
    expect(a.hits[0]?.bytes.length).toBe(body.length + 1);
    expect(a.hits.length).toBe(3);
    expect(replays).toBe(0);
  });

  it("chain: a stream body goes to one endpoint only (no replay event: it was never measured)", async () => {
    busy(a);
    const resilience = createResilience({ retry: fast, fallback: chainOf(a, b) });
    let replays = 0;
    resilience.on("replay", () => replays++);
    await resilience
      .fetch(`${a.base}/v1/jobs`, {
        method: "PUT",
        body: streamOf("hello ", "world"),
        duplex: "half",
      } as RequestInit)
      .then(
        (res) => res.status,
        (error: unknown) => error,
      );
    expect([a.hits.length, b.hits.length, replays]).toEqual([1, 0, 0]);
    expect(a.hits[0]?.body).toBe("hello world");
  });

  it("Request input and proxy: a client body larger than maxReplayBytes is sent once, whole, with a replay event", async () => {
    busy(a);
    const resilience = createResilience({ retry: fast, maxReplayBytes: limit });
    let replays = 0;
    resilience.on("replay", () => replays++);
    const res = await resilience.fetch(
      new Request(`${a.base}/r`, {
        method: "PUT",
        body: streamOf(big.slice(0, 20), big.slice(20)),
        duplex: "half",
      } as RequestInit),
    );
    expect(res.status).toBe(503);
    expect([a.hits.length, replays]).toEqual([1, 1]);
    expect(a.hits[0]?.body).toBe(big);
    a.reset();
    busy(a);
    const proxy = resilientProxy<Record<string, never>>({
      routes: [{ path: "/api", upstream: `${a.base}/v1` }],
      resilience: { retry: fast, maxReplayBytes: limit },
    });
    const put = (body: string) =>
      proxy.fetch(
        new Request("https://edge.example/api/x", {
          method: "PUT",
          body: streamOf(body),
          duplex: "half",
        } as RequestInit),
        {},
        ctx,
      );
    expect((await put(big)).status).toBe(503);
    expect(a.hits.length).toBe(1);
    expect(a.hits[0]?.body).toBe(big);
    a.reset();
    busy(a);
    expect((await put("small")).status).toBe(503);
    expect(a.hits.map((h) => h.body)).toEqual(["small", "small", "small"]);
  });

  it("Request input and proxy: a body that stalls is read under timeout.total: the call settles in time", async () => {
    const stalled = () =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("abc"));
        },
      });
    const resilience = createResilience({ retry: fast, timeout: { total: 60 } });
    const started = Date.now();
    const error = await rejection(
      resilience.fetch(new Request(`${a.base}/r`, { method: "PUT", body: stalled(), duplex: "half" } as RequestInit)),
    );
    expect((error as Error).name).toBe("TimeoutError");
    expect(Date.now() - started).toBeLessThan(1000);
    const proxy = resilientProxy<Record<string, never>>({
      routes: [{ path: "/api", upstream: `${a.base}/v1` }],
      resilience: { retry: fast, timeout: { total: 60 } },
    });
    const t0 = Date.now();
    const res = await proxy.fetch(
      new Request("https://edge.example/api/x", { method: "PUT", body: stalled(), duplex: "half" } as RequestInit),
      {},
      ctx,
    );
    expect(res.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(a.hits.length).toBe(0);
  });

  it("Request input and proxy: a body announcing a Content-Length past maxReplayBytes is not read ahead", async () => {
    // A server that says when the request's headers arrived; the body's rest comes only then.
    let headersIn: () => void = () => {};
    const bodies: string[] = [];
    const raw = createServer((req, res) => {
      headersIn();
      let text = "";
      req.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      req.on("end", () => {
        bodies.push(text);
        res.end("ok");
      });
    });
    raw.listen(0, "127.0.0.1");
    await once(raw, "listening");
    const base = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
    const announced = () => {
      const arrived = new Promise<void>((resolve) => {
        headersIn = resolve;
      });
      let step = 0;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          step++;
          if (step === 1) controller.enqueue(new TextEncoder().encode("x".repeat(10)));
          else if (step === 2) {
            await arrived;
            controller.enqueue(new TextEncoder().encode("y".repeat(90)));
          } else controller.close();
        },
      });
    };
    try {
      const resilience = createResilience({ retry: fast, maxReplayBytes: limit, timeout: { total: 1500 } });
      const res = await resilience.fetch(
        new Request(`${base}/r`, {
          method: "PUT",
          headers: { "content-length": "100" },
          body: announced(),
          duplex: "half",
        } as RequestInit),
      );
      expect(res.status).toBe(200);
      const proxy = resilientProxy<Record<string, never>>({
        routes: [{ path: "/api", upstream: `${base}/v1` }],
        resilience: { retry: fast, maxReplayBytes: limit, timeout: { total: 1500 } },
      });
      const answer = await proxy.fetch(
        new Request("https://edge.example/api/x", {
          method: "PUT",
          headers: { "content-length": "100" },
          body: announced(),
          duplex: "half",
        } as RequestInit),
        {},
        ctx,
      );
      expect(answer.status).toBe(200);
      expect(bodies).toEqual(["x".repeat(10) + "y".repeat(90), "x".repeat(10) + "y".repeat(90)]);
    } finally {
      raw.closeAllConnections();
      raw.close();
    }
  });
});

describe("The caller's mistakes never trip a breaker (SECURITY.md) on chain, hedge, rewrite and Request paths", () => {
  type Mistake = [string, (base: string) => [RequestInfo | URL, RequestInit]];
  const mistakes: Mistake[] = [
    ["a GET with a body", (base) => [`${base}/v1/x`, { body: "{}" }]],
    ["a HEAD with a body", (base) => [`${base}/v1/x`, { method: "HEAD", body: "{}" }]],
    ["a symbol as a body", (base) => [`${base}/v1/x`, { method: "POST", body: Symbol("b") as unknown as string }]],
    ["a method that is no token", (base) => [`${base}/v1/x`, { method: "GE T" }]],
    ["a header with LF inside its value", (base) => [`${base}/v1/x`, { headers: { "x-a": "a\nb" } }]],
    ["a header with NUL inside its value", (base) => [`${base}/v1/x`, { headers: { "x-a": "a\u0000b" } }]],
    ["a signal that is no AbortSignal", (base) => [`${base}/v1/x`, { signal: {} as AbortSignal }]],
    ["redirect: bogus", (base) => [`${base}/v1/x`, { redirect: "bogus" as RequestRedirect }]],
    ["duplex: full", (base) => [`${base}/v1/x`, { method: "POST", body: "{}", duplex: "full" } as RequestInit]],
    ["a referrer that is no URL", (base) => [`${base}/v1/x`, { referrer: "http://[" }]],
    ["a GET Request given a body in init", (base) => [new Request(`${base}/v1/x`), { body: "{}" }]],
    ["a Request given a method that is no token", (base) => [new Request(`${base}/v1/x`), { method: "GE T" }]],
    [
      "a Request given a header with CR inside",
      (base) => [new Request(`${base}/v1/x`), { headers: { "x-a": "a\rb" } }],
    ],
  ];
  const layers: Array<[string, (clock: TestClock) => ReturnType<typeof createResilience>]> = [
    [
      "chain",
      (clock) =>
        createResilience({ clock, retry: fast, timeout: { total: 5000, attempt: 1000 }, fallback: chainOf(a, b) }),
    ],
    [
      "hedged chain",
      (clock) =>
        createResilience({
          clock,
          retry: fast,
          timeout: { total: 5000 },
          fallback: fallback([
            {
              name: "h",
              hedge: { delay: 5 },
              endpoints: [
                { name: "a", url: `${a.base}/v1` },
                { name: "b", url: `${b.base}/v1` },
              ],
            },
          ]),
        }),
    ],
    [
      "rewrite",
      (clock) => {
        const layer = createResilience({ clock, retry: fast, timeout: { total: 5000 }, degradation: degradation({}) });
        layer.degradation.setLevel("low");
        return layer;
      },
    ],
  ];
  for (const [path, make] of layers) {
    it(`${path}: each is a TypeError at once, nothing sent, nothing counted, no timer left`, async () => {
      const clock = new TestClock();
      const resilience = make(clock);
      let events = 0;
      resilience.on("request", () => events++);
      resilience.on("retry", () => events++);
      resilience.on("fallback", () => events++);
      const outcomes: string[] = [];
      for (const [name, build] of mistakes) {
        const [input, init] = build(a.base);
        const error = await rejection(resilience.fetch(input, init));
        outcomes.push(`${name}: ${error instanceof TypeError ? "TypeError" : String(error)}`);
      }
      expect(outcomes).toEqual(mistakes.map(([name]) => `${name}: TypeError`));
      expect([a.hits.length, b.hits.length, events, clock.pending()]).toEqual([0, 0, 0, 0]);
      const health = resilience.health();
      expect(Object.values(health.breakers).every((breaker) => breaker.failureCount === 0)).toBe(true);
      expect(health.errorRate).toBe(0);
      expect(resilience.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    });
  }

  it("wss:, ftp: and an invalid port through a rewrite and a chain's layer: TypeError, nothing counted", async () => {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: fast,
      timeout: { total: 5000 },
      degradation: degradation({}),
      fallback: chainOf(a),
    });
    resilience.degradation.setLevel("low");
    for (const url of [`ws://${a.host}/v1/x`, `ftp://${a.host}/v1/x`, "http://127.0.0.1:99999/v1/x"]) {
      expect(await rejection(resilience.fetch(url, { method: "POST", body: '{"steps":50}' }))).toBeInstanceOf(
        TypeError,
      );
      expect(await rejection(resilience.fetch(url))).toBeInstanceOf(TypeError);
    }
    expect(clock.pending()).toBe(0);
    expect(resilience.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    expect(a.hits.length).toBe(0);
  });
});

/** Every text an error shows: its message, stack, string form, own string fields, and its causes' and errors'. */
function errorText(error: unknown, depth = 0): string {
  if (depth > 8 || error === undefined || error === null) return "";
  if (typeof error !== "object") return String(error);
  const e = error as Error & { errors?: unknown; cause?: unknown };
  const parts = [String(e.message), String(e.stack), String(e)];
  for (const key of Object.getOwnPropertyNames(e)) {
    const value = (e as unknown as Record<string, unknown>)[key];
    if (typeof value === "string" || value instanceof URL) parts.push(String(value));
  }
  parts.push(errorText(e.cause, depth + 1));
  const errors = e.errors;
  if (Array.isArray(errors)) for (const inner of errors) parts.push(errorText(inner, depth + 1));
  else if (errors && typeof errors === "object")
    for (const inner of Object.values(errors)) parts.push(errorText(inner, depth + 1));
  return parts.join("\n");
}

/** URLs percent-encoded into a path, each hiding one secret (userinfo, query or fragment). */
const encoded: Array<[string, string]> = [
  ["once", "https%3A%2F%2Fx.example%2Fv1%3Fapi_key%3DSECRETA"],
  ["twice", "https%253A%252F%252Fx.example%252Fv1%253Fapi_key%253DSECRETB"],
  ["three times", "https%25253A%25252F%25252Fx.example%25252Fv1%25253Fapi_key%25253DSECRETC"],
  ["userinfo", "https%3A%2F%2Fadmin%3ASECRETD%40x.example%2Fv1"],
  ["lowercase escapes", "https%3a%2f%2fx.example%2fv1%3fapi_key%3dSECRETE"],
  ["fragment", "https%3A%2F%2Fx.example%2Fv1%23token%3DSECRETF"],
  ["raw slashes", "https%3A//x.example/v1%3Fapi_key%3DSECRETG"],
  ["http, key after &", "http%3A%2F%2Fx.example%2F%3Fa%3D1%26api_key%3DSECRETH"],
  ["upper-case scheme", "HTTPS%3A%2F%2Fx.example%2Fv1%3Fapi_key%3DSECRETI"],
];
const secrets = encoded.map(([, text]) => /SECRET[A-Z]/.exec(text)?.[0] as string);
const leaked = (text: string) => secrets.filter((secret) => text.includes(secret));

describe("No secret in events, errors, health() or debugInfo() (SECURITY.md): URLs percent-encoded into a URL's path", () => {
  it("plain call, retry and request events, health(), debugInfo(): nothing of the encoded URLs' secrets", async () => {
    busy(a);
    const resilience = createResilience({ retry: { ...fast, maxAttempts: 2 }, breaker: { failureThreshold: 2 } });
    const seen: string[] = [];
    for (const name of ["request", "retry", "breaker", "redirect", "replay", "fallback"] as const)
      resilience.on(name, (event) => seen.push(JSON.stringify(event)));
    for (const [, text] of encoded) {
      await resilience.fetch(`${a.base}/p/${text}`).then(
        (res) => res.body?.cancel(),
        (error: unknown) => seen.push(errorText(error)),
      );
    }
    seen.push(JSON.stringify(resilience.health()), JSON.stringify(resilience.debugInfo()));
    expect(leaked(seen.join("\n"))).toEqual([]);
    expect(seen.join("\n")).toContain("/p/https%3A%2F%2Fx.example%2Fv1");
  });

  it("redirect: a Location carrying encoded URLs in its path, to, from and the final error", async () => {
    a.on((hit) => {
      if (hit.path.startsWith("/start/")) {
        hit.res.writeHead(302, { location: `/go/${hit.path.slice("/start/".length)}` });
        hit.res.end();
      } else {
        hit.res.writeHead(302, { location: `/start/${hit.path.slice("/go/".length)}` });
        hit.res.end();
      }
    });
    const resilience = createResilience({ retry: fast });
    const seen: string[] = [];
    resilience.on("redirect", (event) => seen.push(JSON.stringify(event)));
    resilience.on("request", (event) => seen.push(JSON.stringify(event)));
    for (const [, text] of encoded) {
      const error = await rejection(resilience.fetch(`${a.base}/start/${text}`));
      seen.push(errorText(error));
    }
    seen.push(JSON.stringify(resilience.health()), JSON.stringify(resilience.debugInfo()));
    expect(seen.filter((line) => line.includes('"to"')).length).toBeGreaterThan(20);
    expect(leaked(seen.join("\n"))).toEqual([]);
  });

  it("chain: fallback events, FallbackExhaustedError and its endpoint errors", async () => {
    busy(a);
    const dead = await refusedOrigin();
    const resilience = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            { name: "dead", url: `${dead}/v1` },
          ],
        },
      ]),
    });
    const seen: string[] = [];
    resilience.on("fallback", (event) => seen.push(JSON.stringify(event)));
    resilience.on("request", (event) => seen.push(JSON.stringify(event)));
    for (const [, text] of encoded) {
      await resilience.fetch(`${a.base}/v1/p/${text}`).then(
        (res) => res.body?.cancel(),
        (error: unknown) => seen.push(errorText(error)),
      );
    }
    seen.push(JSON.stringify(resilience.health()), JSON.stringify(resilience.debugInfo()));
    expect(seen.some((line) => line.includes("dead"))).toBe(true);
    expect(leaked(seen.join("\n"))).toEqual([]);
  });

  it("timeouts, an open circuit and a refused connection: the errors", async () => {
    a.on((hit) => setTimeout(() => hit.res.end("late"), 60));
    const dead = await refusedOrigin();
    const resilience = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      timeout: { attempt: 10 },
      breaker: { failureThreshold: 1 },
    });
    const seen: string[] = [];
    for (const [, text] of encoded) {
      seen.push(errorText(await rejection(resilience.fetch(`${a.base}/p/${text}`))));
      seen.push(errorText(await rejection(resilience.fetch(`${a.base}/p/${text}`))));
      seen.push(errorText(await rejection(resilience.fetch(`${dead}/p/${text}`))));
    }
    seen.push(JSON.stringify(resilience.health()), JSON.stringify(resilience.debugInfo()));
    expect(seen.join("\n")).toMatch(/TimeoutError|timed out/);
    expect(seen.join("\n")).toMatch(/CircuitOpenError|circuit/i);
    expect(leaked(seen.join("\n"))).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 70));
  });

  it("ky client: HTTPError and TimeoutError messages", async () => {
    a.on((hit) => {
      if (hit.path.includes("slow")) setTimeout(() => hit.res.end("late"), 60);
      else {
        hit.res.statusCode = 404;
        hit.res.end("no");
      }
    });
    const client = createClient({ resilience: { retry: fast }, timeout: 15 });
    const seen: string[] = [];
    for (const [, text] of encoded) {
      seen.push(errorText(await rejection(client.get(`${a.base}/p/${text}`))));
      seen.push(errorText(await rejection(client.get(`${a.base}/slow/${text}`))));
    }
    expect(seen.join("\n")).toMatch(/404/);
    expect(leaked(seen.join("\n"))).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 70));
  });

  it("proxy: the health endpoint after failing client paths carrying encoded URLs", async () => {
    busy(a);
    const proxy = resilientProxy<Record<string, never>>({
      routes: [{ path: "/api", upstream: `${a.base}/v1` }],
      resilience: { retry: { ...fast, maxAttempts: 1 } },
    });
    for (const [, text] of encoded) {
      const res = await proxy.fetch(new Request(`https://edge.example/api/p/${text}`), {}, ctx);
      await res.body?.cancel();
    }
    const health = await (await proxy.fetch(new Request("https://edge.example/__resilience/health"), {}, ctx)).text();
    expect(health).toContain("breakers");
    expect(leaked(health)).toEqual([]);
  });
});

describe("Names you choose (SECURITY.md Limits): what breaker.key returns is shown as given", () => {
  it("a plain label: health(), breaker and retry events, CircuitOpenError", async () => {
    busy(a);
    const label = "upscaler model-x (tenant 7)";
    const resilience = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      breaker: { failureThreshold: 2, key: () => label },
    });
    const keys: string[] = [];
    resilience.on("breaker", (event) => keys.push(event.key));
    resilience.on("retry", (event) => keys.push(event.key));
    await (await resilience.fetch(`${a.base}/x`)).body?.cancel();
    const error = await rejection(resilience.fetch(`${a.base}/x`));
    expect(keys).toEqual([label, label]);
    expect(Object.keys(resilience.health().breakers)).toEqual([label]);
    expect((error as Error).message).toContain(label);
  });

  it("a key written as a URL with a query is the breaker's identity, not cut: events, health() and errors show it whole", async () => {
    busy(a);
    const label = "https://gen.example/v1?tenant=acme";
    const resilience = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      breaker: { failureThreshold: 1, key: () => label },
    });
    const keys: string[] = [];
    resilience.on("breaker", (event) => keys.push(event.key));
    await (await resilience.fetch(`${a.base}/x`)).body?.cancel();
    const error = await rejection(resilience.fetch(`${a.base}/x`));
    const shown = [keys[0], Object.keys(resilience.health().breakers)[0], (error as Error).message];
    expect(shown.map((text) => text?.includes(label))).toEqual([true, true, true]);
  });
});
