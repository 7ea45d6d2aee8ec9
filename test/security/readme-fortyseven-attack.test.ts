/**
 * Outside-in attack on README.md, sentence by sentence (the size and benchmark tables aside), on the combinations
 * earlier README runs (readme-paths, readme-twenty, readme-twentyone, readmesweep-fortytwo, newcomer-thirty) did not
 * drive: the test-suite snippet's breaker story through a redirect, the Worker proxy, the ky client and a degraded
 * `Request`; the exact `Retry-After` waits on eight paths; a response kept while the breaker opens during the wait;
 * the 0.1 shapes through the ky client and the proxy; the default breaker (12 in a row) on chains and a proxy chain.
 *
 * Docs: README.md:
 * - "This library retries what is safe to retry, only as often as a retry budget allows, honours the server's
 *   `Retry-After`, stops calling a host whose breaker is open (…), and never buffers your streamed responses."
 * - "It resolves with a response, even a 503, as `fetch` would, whenever it has one to give (the last attempt's, or
 *   in a chain the last answer any endpoint gave, unless …), and rejects when it has none, or when the call is
 *   aborted or its `timeout.total` passes."
 * - The quick start's `getResilienceInfo(res); // { attempts, endpoint, fromFallback, degradationLevel, … }` and its
 *   catch: "No response at all: every endpoint failed, was skipped by its open breaker, or timed out …" with
 *   `isResilienceError(error)`.
 * - The test-suite snippet: "stops calling a dead API, then probes it after the breaker's timeout" (`retry: false,
 *   breaker: { failureThreshold: 2, timeout: 10_000 }`, two calls, the third `rejects.toThrow(/open/i)` with
 *   `api.count()` 2, `clock.advance(10_000)`, "the breaker half-opens: the next call is a probe", count 3).
 * - "Upgrading from 0.1: wrap the 0.1 `fallback` array and `degradation` object in `fallback([…])` and
 *   `degradation({…})` from their entries (the old shapes are a `ConfigError` that says so) … and note the
 *   breaker's new defaults: `failureThreshold` counts failures in a row (12), beside a 50% failure-rate rule."
 * - The Worker quick start ("a proxy with a fallback chain …"), with docs/cloudflare.md's "answers `503` with
 *   `Retry-After` when the circuit is open (a chain route counts as open when every endpoint's circuit is,
 *   `Retry-After` then naming the first to reopen)" and "adds `x-resilience-endpoint` …, `x-resilience-attempts`".
 *
 * How: `createResilience`, `getResilienceInfo`, `isResilienceError`, `isCircuitOpenError`, `isConfigError` (root),
 * `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare,
 * called in Node with an empty env and a stub `ctx`), `TestClock` (./testing); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) that note the TestClock's time of each request. Only backoff timers are pending
 * while a request is out (no attempt timeout or hedge timer), so `clock.run` never fires a timer before a real
 * answer arrives.
 *
 * Paths: plain call, `Request` input, redirect the library follows (307), fallback chain, hedged chain, degradation
 * rewrite (level `low`), the ky client, `resilientProxy` (upstream route and chain route).
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none. Every sentence driven here held.
 *
 * Held (plain `it`):
 * - The snippet's breaker story: through a 307 (a → b answering 503) the two 503s count against a, the third call
 *   is refused with a `CircuitOpenError` naming a (`/open/i`), nothing sent to either; after 10 s the probe goes
 *   through a to b. Through `resilientProxy`: the two 503s are passed on (`x-resilience-attempts: 1`), then
 *   `503 {"error":"upstream circuit open"}` with `Retry-After: 10`, `6` after 4 s, nothing sent; at 10 s the probe
 *   reaches the upstream. Through the ky client (`throwHttpErrors: false`) the refusal is the layer's own
 *   `CircuitOpenError`, unwrapped. A `Request` with a JSON body at level `low`: the same, every body sent rewritten.
 * - `Retry-After: 3`, then `5`, then 200 (`jitter: "none"`, `initialDelay: 100`): requests at exactly 0, 3000 and
 *   8000 ms on the TestClock on all eight paths (through a 307 the waits are the hop's answers'), the body replayed
 *   each time (rewritten at `low`), `attempts: 3` in the info or `x-resilience-attempts`.
 * - A 503 retried past, the host's breaker opened by another call during the wait: the call settles at once with
 *   that kept 503 (body of the first answer, `attempts: 1`), on a plain call, the ky client and the proxy; in a chain
 *   and a proxy chain it moves on to the next endpoint, which serves (`endpoint: "b"`, `fromFallback`, 2 attempts).
 *   Nothing is left on the clock.
 * - Defaults (jitter off): a chain of two dead endpoints takes 3 + 3 requests per call, four calls, then the fifth
 *   is refused with nothing sent (`FallbackExhaustedError`, `/open/i`, `isResilienceError`); a proxy chain route
 *   answers 503 with `Retry-After: 27`, the first endpoint to reopen (a at 51 s, asked at 24 s). A 404 between
 *   the 503s restarts the count: a does not open after 12 failures in all.
 * - In a chain the last answer any endpoint gave: a 503, b 500, c refused resolves with b's 500 (`endpoint: "b"`,
 *   `fromFallback`, 3 attempts), hedged or not.
 * - 0.1 shapes: `createClient({ resilience: { fallback: [...] } })`, `{ degradation: {...} }` and
 *   `resilientProxy({ resilience: { degradation: {...} } })` throw `ConfigError` at `resilience.fallback` /
 *   `resilience.degradation` with "expected fallback(…) from "@storycore/resilient-fetch/fallback" (after 0.1.0
 *   the options go through it)"; `degradation: true` at the root too.
 *
 * Docs-silent (not pinned):
 * - A `Retry-After` at most `maxRetryAfter` holds nothing once the call is over: with `retry: false` (the
 *   snippet's setting), or on a call's last attempt, a `503 Retry-After: 30` is the call's answer and the next call
 *   goes to the host at once (`retry: false`: two requests at t = 0; defaults: the second call's first request at
 *   60 s, where the server asked for 90 s), while a `Retry-After: 61` holds the host until then and the next call
 *   is refused. The weaker "come back later" is forgotten, the stronger one kept; README's "honours the server's
 *   `Retry-After`" reads wider than the within-call wait docs/retry.md describes.
 * - Installed as the global fetch under a wrapper that calls it back at once with a URL it changed each time (a
 *   request-id or cache-buster appended to the query): the layer, handed a URL other than the one it sends, takes
 *   it for a new call, sends it through the wrapper again, and so on; nothing is ever sent (a guard in the wrapper
 *   stopped it at its 7th entry: six nested `RetryExhaustedError`s, six `request` events, no request). options.md
 *   says "a wrapper's own call for another URL meanwhile is a call like any other", which covers it by the letter;
 *   README's "never through itself" does not warn of it. An idempotent rewrite (`searchParams.set`) settles after
 *   one pass.
 * - `createClient({ resilience: { sensitiveHeaders } })` and the proxy's are refused as an "unknown option", with
 *   no word of `crossOriginHeaders` (the 0.1 `fallback`/`degradation` shapes say how to migrate; this rename does
 *   not).
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isConfigError,
  isResilienceError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const ctx = { waitUntil(_promise: Promise<unknown>) {}, passThroughOnException() {} };

const busy = (h: Hit) => {
  h.res.statusCode = 503;
  h.res.end(`busy-${h.n}`);
};
const retryAfter = (seconds: number) => (h: Hit) => {
  h.res.writeHead(503, { "retry-after": String(seconds) });
  h.res.end("busy");
};
const ok = (h: Hit) => h.res.end(`ok-${h.n}`);

/** A handler that notes the TestClock's time of each request, then plays `steps` (the last one repeats). */
function timed(clock: TestClock, times: number[], steps: Array<(h: Hit) => void>) {
  return (h: Hit) => {
    times.push(clock.now());
    (steps[Math.min(h.n, steps.length) - 1] as (h: Hit) => void)(h);
  };
}

/** How a call settled, as one comparable string. */
async function settled(call: Promise<Response>): Promise<string> {
  try {
    const res = await call;
    return `${res.status} ${await res.text()}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

describe("the test-suite snippet's breaker story on further paths", () => {
  const options = (clock: TestClock) => ({
    clock,
    retry: false as const,
    breaker: { failureThreshold: 2, timeout: 10_000 },
  });

  it("through a redirect: the first host's breaker opens, nothing is sent while open, the probe goes through", async () => {
    a.on((h) => {
      h.res.writeHead(307, { location: `${b.base}/v1/images` });
      h.res.end();
    });
    b.on(busy);
    const clock = new TestClock();
    const resilience = createResilience(options(clock));
    const post = () => resilience.fetch(`${a.base}/v1/images`, { method: "POST", body: "{}" });
    expect(await settled(post())).toBe("503 busy-1");
    expect(await settled(post())).toBe("503 busy-2");
    const refusal = await post().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isCircuitOpenError(refusal)).toBe(true);
    expect(isResilienceError(refusal)).toBe(true);
    expect(String(refusal)).toMatch(/open/i);
    expect((refusal as { key: string }).key).toBe(a.host);
    expect([a.hits.length, b.hits.length]).toEqual([2, 2]);

    await clock.advance(10_000);
    const probe = await post();
    expect(probe.status).toBe(503);
    expect(getResilienceInfo(probe)).toMatchObject({ attempts: 1, endpoint: a.host, fromFallback: false });
    await probe.text();
    expect([a.hits.length, b.hits.length]).toEqual([3, 3]);
  });

  it("through resilientProxy: 503s passed on, then `circuit open` with the time left, then the probe", async () => {
    a.on(busy);
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/v1/images", upstream: `${a.base}/v1/images` }],
      resilience: options(clock),
    });
    const post = () =>
      proxy.fetch(new Request("https://worker.example/v1/images", { method: "POST", body: "{}" }), {}, ctx);
    for (const n of [1, 2]) {
      const res = await post();
      expect([res.status, res.headers.get("x-resilience-attempts"), await res.text()]).toEqual([503, "1", `busy-${n}`]);
    }
    const open = await post();
    expect([open.status, open.headers.get("retry-after"), await open.text()]).toEqual([
      503,
      "10",
      '{"error":"upstream circuit open"}',
    ]);
    expect(open.headers.get("x-resilience-endpoint")).toBeNull();
    await clock.advance(4_000);
    const later = await post();
    expect([later.status, later.headers.get("retry-after")]).toEqual([503, "6"]);
    await later.text();
    expect(a.hits).toHaveLength(2);

    await clock.advance(6_000);
    const probe = await post();
    expect([probe.status, probe.headers.get("x-resilience-endpoint"), await probe.text()]).toEqual([
      503,
      a.host,
      "busy-3",
    ]);
    expect(a.hits).toHaveLength(3);
  });

  it("through the ky client: the refusal is the layer's own CircuitOpenError, unwrapped", async () => {
    a.on(busy);
    const clock = new TestClock();
    const api = createClient({ resilience: options(clock), throwHttpErrors: false });
    for (const n of [1, 2]) expect(await settled(api.post(`${a.base}/v1/images`, { json: {} }))).toBe(`503 busy-${n}`);
    const refusal = await api.post(`${a.base}/v1/images`, { json: {} }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isCircuitOpenError(refusal)).toBe(true);
    expect(String(refusal)).toMatch(/open/i);
    expect(a.hits).toHaveLength(2);
    await clock.advance(10_000);
    expect(await settled(api.post(`${a.base}/v1/images`, { json: {} }))).toBe("503 busy-3");
    expect(a.hits).toHaveLength(3);
  });

  it("a `Request` with a JSON body, rewritten at level low: the same story, every body rewritten", async () => {
    a.on(busy);
    const clock = new TestClock();
    const resilience = createResilience({ ...options(clock), degradation: degradation() });
    resilience.degradation.setLevel("low");
    const post = () =>
      resilience.fetch(
        new Request(`${a.base}/v1/images`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ prompt: "a cat", steps: 50, resolution: "1080p" }),
        }),
      );
    expect(await settled(post())).toBe("503 busy-1");
    expect(await settled(post())).toBe("503 busy-2");
    expect(await settled(post())).toMatch(/^CircuitOpenError: .*open/i);
    expect(a.hits).toHaveLength(2);
    await clock.advance(10_000);
    const probe = await post();
    expect(getResilienceInfo(probe)).toMatchObject({ attempts: 1, degradationLevel: "low" });
    await probe.text();
    expect(a.hits.map((h) => JSON.parse(h.body))).toEqual(
      Array.from({ length: 3 }, () => ({ prompt: "a cat", steps: 20, resolution: "720p" })),
    );
  });
});

describe("'honours the server's Retry-After' on every path: the waits are exactly the header's", () => {
  const paths = ["plain", "request", "redirect", "chain", "degradation", "ky", "proxy", "proxy chain"] as const;
  for (const path of paths) {
    it(path, async () => {
      const clock = new TestClock();
      const first: number[] = [];
      const second: number[] = [];
      const script = [retryAfter(3), retryAfter(5), ok];
      if (path === "redirect") {
        a.on(
          timed(clock, first, [
            (h) => {
              h.res.writeHead(307, { location: `${b.base}/t` });
              h.res.end();
            },
          ]),
        );
        b.on(timed(clock, second, script));
      } else {
        a.on(timed(clock, first, script));
        b.on(timed(clock, second, [ok]));
      }
      const options = { clock, retry: { initialDelay: 100, jitter: "none" as const } };
      const chain = {
        name: "c",
        endpoints: [
          { name: "a", url: a.base },
          { name: "b", url: b.base },
        ],
      };
      const body = JSON.stringify({ steps: 50 });
      const put = { method: "PUT", headers: { "content-type": "application/json" }, body };
      let call: Promise<Response>;
      if (path === "plain" || path === "redirect") call = createResilience(options).fetch(`${a.base}/t`, put);
      else if (path === "request") call = createResilience(options).fetch(new Request(`${a.base}/t`, put));
      else if (path === "chain")
        call = createResilience({ ...options, fallback: fallback([chain]) }).fetch(`${a.base}/t`, put);
      else if (path === "degradation") {
        const layer = createResilience({ ...options, degradation: degradation() });
        layer.degradation.setLevel("low");
        call = layer.fetch(new Request(`${a.base}/t`, put));
      } else if (path === "ky")
        call = createClient({ resilience: options }).put(`${a.base}/t`, { json: { steps: 50 } });
      else {
        const routes = path === "proxy" ? [{ path: "/", upstream: a.base }] : [{ path: "/", chain }];
        call = resilientProxy({ routes, resilience: options }).fetch(
          new Request("https://worker.example/t", put),
          {},
          ctx,
        );
      }
      const res = await clock.run(call);
      expect(res.status).toBe(200);
      const attempts = path.startsWith("proxy")
        ? Number(res.headers.get("x-resilience-attempts"))
        : getResilienceInfo(res)?.attempts;
      expect(attempts).toBe(3);
      expect(await res.text()).toBe("ok-3");
      const waited = path === "redirect" ? second : first;
      expect(waited).toEqual([0, 3_000, 8_000]);
      if (path === "redirect") expect(first).toEqual([0, 3_000, 8_000]);
      else expect(second).toEqual([]);
      const sent = (path === "redirect" ? b : a).hits.map((h) => JSON.parse(h.body));
      expect(sent).toEqual(Array.from({ length: 3 }, () => ({ steps: path === "degradation" ? 20 : 50 })));
      expect(clock.pending()).toBe(0);
    });
  }
});

describe("'whenever it has one to give': a response kept while the breaker opens during the wait", () => {
  for (const path of ["plain", "ky", "proxy", "chain", "proxy chain"] as const) {
    it(path, async () => {
      a.on(busy);
      b.on(ok);
      const clock = new TestClock();
      const options = {
        clock,
        retry: { initialDelay: 1_000, jitter: "none" as const },
        breaker: { failureThreshold: 2 },
      };
      const chain = {
        name: "c",
        endpoints: [
          { name: "a", url: a.base },
          { name: "b", url: b.base },
        ],
      };
      let call: Promise<Response>;
      let other: () => Promise<Response>;
      if (path === "plain" || path === "ky") {
        const layer = createResilience(options);
        call =
          path === "plain"
            ? layer.fetch(`${a.base}/x`)
            : createClient({ resilience: layer, throwHttpErrors: false }).get(`${a.base}/x`);
        other = () => layer.fetch(`${a.base}/other`);
      } else if (path === "chain") {
        const layer = createResilience({ ...options, fallback: fallback([chain]) });
        call = layer.fetch(`${a.base}/x`);
        other = () => layer.fetch(`${a.base}/other`);
      } else {
        const proxy = resilientProxy({
          routes:
            path === "proxy"
              ? [{ path: "/", upstream: a.base }]
              : [
                  { path: "/", chain },
                  { path: "/other", upstream: `${a.base}/other` },
                ],
          resilience: options,
        });
        call = proxy.fetch(new Request("https://worker.example/x"), {}, ctx);
        other = () => proxy.fetch(new Request("https://worker.example/other"), {}, ctx);
      }
      // The first answer came, and the call waits to retry: another call's 503 opens the host meanwhile.
      await a.nth(1);
      await clock.waitForTimers(1);
      await (await other()).text();
      const res = await clock.run(call);
      const text = await res.text();
      if (path === "chain" || path === "proxy chain") {
        expect(res.status).toBe(200);
        expect(text).toMatch(/^ok-/);
        if (path === "chain")
          expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "b", fromFallback: true });
        else
          expect([res.headers.get("x-resilience-endpoint"), res.headers.get("x-resilience-attempts")]).toEqual([
            "b",
            "2",
          ]);
        expect(b.hits.map((h) => h.path)).toContain("/x");
      } else {
        expect([res.status, text]).toEqual([503, "busy-1"]);
        if (path === "proxy") expect(res.headers.get("x-resilience-attempts")).toBe("1");
        else expect(getResilienceInfo(res)).toMatchObject({ attempts: 1, endpoint: a.host });
        expect(b.hits).toHaveLength(0);
      }
      // The call's own retry never went: a has the first attempt and the other call's.
      expect(a.hits.map((h) => h.path)).toEqual(["/x", "/other"]);
      expect(clock.pending()).toBe(0);
    });
  }
});

describe("the breaker's defaults: 12 failures in a row, on a chain and a proxy chain route", () => {
  const chain = () => ({
    name: "c",
    endpoints: [
      { name: "a", url: a.base },
      { name: "b", url: b.base },
    ],
  });

  it("a chain of two dead endpoints: four calls of 3 + 3 requests, the fifth refused with nothing sent", async () => {
    a.on(busy);
    b.on(busy);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { jitter: "none" }, fallback: fallback([chain()]) });
    for (let call = 1; call <= 4; call++) {
      expect(await settled(clock.run(resilience.fetch(`${a.base}/x`)))).toBe(`503 busy-${3 * call}`);
      expect([a.hits.length, b.hits.length]).toEqual([3 * call, 3 * call]);
    }
    const refusal = await clock.run(resilience.fetch(`${a.base}/x`)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isResilienceError(refusal)).toBe(true);
    expect((refusal as Error).name).toBe("FallbackExhaustedError");
    expect(String(refusal)).toMatch(/open/i);
    expect([a.hits.length, b.hits.length]).toEqual([12, 12]);
    expect(resilience.health().breakers[a.host]?.state).toBe("open");
  });

  it("a proxy chain route answers 503 with the Retry-After of the first endpoint to reopen", async () => {
    a.on(busy);
    b.on(busy);
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/", chain: chain() }],
      resilience: { clock, retry: { jitter: "none" } },
    });
    for (let call = 1; call <= 4; call++) {
      const res = await clock.run(proxy.fetch(new Request("https://worker.example/x"), {}, ctx));
      expect([res.status, await res.text()]).toEqual([503, `busy-${3 * call}`]);
    }
    // Each call took 6 s (waits 1 s and 2 s at a, then at b): a opened at 21 s, b at 24 s, both for 30 s.
    expect(clock.now()).toBe(24_000);
    const open = await proxy.fetch(new Request("https://worker.example/x"), {}, ctx);
    expect([open.status, open.headers.get("retry-after"), await open.text()]).toEqual([
      503,
      "27",
      '{"error":"upstream circuit open"}',
    ]);
    expect([a.hits.length, b.hits.length]).toEqual([12, 12]);
  });

  it("a 404 among the failures restarts the count: a stays closed after 12 failures in all", async () => {
    a.on((h) => {
      h.res.statusCode = h.n === 7 ? 404 : 503;
      h.res.end(`a-${h.n}`);
    });
    b.on(busy);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { jitter: "none" }, fallback: fallback([chain()]) });
    const outcomes: string[] = [];
    for (let call = 1; call <= 5; call++) outcomes.push(await settled(clock.run(resilience.fetch(`${a.base}/x`))));
    // Call 3 ends at a's 404 (the caller's answer); a then fails 6 times in a row, b 12.
    expect(outcomes).toEqual(["503 busy-3", "503 busy-6", "404 a-7", "503 busy-9", "503 busy-12"]);
    expect(a.hits).toHaveLength(13);
    expect(resilience.health().breakers[a.host]?.state).toBe("closed");
    expect(resilience.health().breakers[b.host]?.state).toBe("open");
  });
});

describe("'in a chain the last answer any endpoint gave'", () => {
  for (const hedged of [false, true]) {
    it(`a 503, b 500, c refused: b's 500 (${hedged ? "hedged" : "in order"})`, async () => {
      a.on(busy);
      b.on((h) => {
        h.res.statusCode = 500;
        h.res.end("five hundred");
      });
      const dead = await refusedOrigin();
      const resilience = createResilience({
        retry: false,
        fallback: fallback([
          {
            name: "x",
            ...(hedged ? { hedge: { delay: 5 } } : {}),
            endpoints: [
              { name: "a", url: a.base },
              { name: "b", url: b.base },
              { name: "c", url: dead },
            ],
          },
        ]),
      });
      const res = await resilience.fetch(`${a.base}/q`);
      expect([res.status, await res.text()]).toEqual([500, "five hundred"]);
      expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: "b", fromFallback: true });
    });
  }
});

describe("'the old shapes are a ConfigError that says so', through the ky client and the proxy", () => {
  const oldChains = [{ name: "x", endpoints: [{ name: "a", url: "https://a.example/v1" }] }];
  const cases: Array<[string, () => unknown, string, RegExp]> = [
    [
      "createClient, 0.1 fallback array",
      () => createClient({ resilience: { fallback: oldChains } as never }),
      "resilience.fallback",
      /expected fallback\(…\) from "@storycore\/resilient-fetch\/fallback" \(after 0\.1\.0 the options go through it\)/,
    ],
    [
      "createClient, 0.1 degradation object",
      () => createClient({ resilience: { degradation: { errorRate: 0.1 } } as never }),
      "resilience.degradation",
      /expected degradation\(…\) from "@storycore\/resilient-fetch\/degradation" \(after 0\.1\.0/,
    ],
    [
      "resilientProxy, 0.1 degradation object",
      () =>
        resilientProxy({
          routes: [{ path: "/", upstream: "https://a.example" }],
          resilience: { degradation: {} } as never,
        }),
      "resilience.degradation",
      /expected degradation\(…\) from "@storycore\/resilient-fetch\/degradation"/,
    ],
    [
      "createResilience, degradation: true",
      () => createResilience({ degradation: true } as never),
      "degradation",
      /expected degradation\(…\) from "@storycore\/resilient-fetch\/degradation"/,
    ],
  ];
  for (const [name, make, path, message] of cases) {
    it(name, () => {
      let error: unknown;
      try {
        make();
      } catch (e) {
        error = e;
      }
      expect(isConfigError(error)).toBe(true);
      expect((error as { path: string }).path).toBe(path);
      expect((error as Error).message).toMatch(message);
    });
  }
});
