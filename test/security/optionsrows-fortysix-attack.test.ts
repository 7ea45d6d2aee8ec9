/**
 * Outside-in attack on docs/options.md, row by row, off the plain path: each row's default observed by behaviour
 * with no option given, and each row's effect (and a bad value's `ConfigError`) on every way into the layer.
 *
 * Docs:
 * - docs/options.md, the rows `retry.maxAttempts` "`3` | attempts in all, the first included", `retry.initialDelay`
 *   "`1000` ms | delay before the first retry", `retry.maxDelay` "`60000` ms | cap on any computed delay",
 *   `retry.exponentialBase` "`2`", `retry.jitter` "`"full"`", `retry.retryOn.statuses` "`[408, 425, 429, 500, 502,
 *   503, 504]`", `retry.retryOn.methods` "`["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]` | methods retried on any
 *   retryable outcome, in any case", `retry.maxRetryAfter` "`60000` ms | longest `Retry-After` slept through",
 *   `retry.idempotencyKey` "`false` | add an `Idempotency-Key` to POST/PATCH", `timeout.attempt` / `timeout.total`
 *   "none", `breaker.failureThreshold` "`12` | failed attempts in a row that open", `breaker.successThreshold` "`2` |
 *   successful probes that close", `breaker.timeout` "`30000` ms | open time before probes",
 *   `breaker.halfOpenMaxCalls` "`3` | probes in flight while half-open", `bulkhead.maxConcurrent` / `maxQueue` "off
 *   / `0`", `maxReplayBytes` "`8388608` (8 MiB) | largest body kept for retries, measured as the caller sent it …;
 *   larger ones go once", `crossOriginHeaders` "`[]` | headers that may go to another origin besides `accept`, … ;
 *   every other caller header stays with the origin addressed", `redirects` "… else `"library"`", `random`
 *   "`Math.random`", `fallback[].hedge.delay` "ms without headers before the next endpoint starts too",
 *   `degradation.browserSignals` "`true`", `degradation.triggers` / `window` / `minSamples` / `stepInterval`; and
 *   the head: "throws `ConfigError` naming the path and the expected value", "The ky client's `createClient({
 *   resilience })` and `resilientProxy({ resilience })` name these options as their callers wrote them",
 *   "`fallback([…])` … and the `degradation.…` rows … each checks them when called, under the paths shown here".
 * - docs/retry.md "## Idempotency": "With `retry.idempotencyKey: true`, POST and PATCH requests without a key get one
 *   (`crypto.randomUUID()`), the same on every retry of that call"; the JSDoc of `RetryOptions.idempotencyKey`: "Add
 *   an `Idempotency-Key` … to POST and PATCH requests that have none: one key per logical call, reused on every
 *   retry and fallback".
 *
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `resilientProxy` (./cloudflare), `TestClock` (./testing); two node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts), each request timed on the TestClock as it arrives.
 *
 * Paths: each behaviour below is driven the same way through nine ways in, fresh each time: a plain call, a
 * `Request` input, a fallback chain, a hedged chain, a call the degradation stage rewrites (level `low`, a level
 * header), a call the library follows through a 307 (`redirects: "library"`, the Node default), the ky client, the
 * Worker proxy to an upstream route and the Worker proxy to a chain route; `execute` for the retry numbers.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed since, so plain `it`):
 * 1. docs/options.md `retry.idempotencyKey` "add an `Idempotency-Key` to POST/PATCH"; docs/retry.md "With
 *    `retry.idempotencyKey: true`, POST and PATCH requests without a key get one …, the same on every retry of that
 *    call"; JSDoc "one key per logical call, reused on every retry and fallback". Observed: with `retryOn.methods`
 *    listing POST (or PATCH), as `retryOn.methods` invites ("methods retried on any retryable outcome"), a keyless
 *    POST answered 500 is sent three times with no `Idempotency-Key` at all, on all nine paths (a keyed POST is what
 *    a user who turned both on asked for: retried, and de-duplicable by the server). Cause:
 *    src/http/request/normalize-request.ts `build`: `idempotent = options.idempotentMethods.has(name)`, and the key
 *    is added only `if (!idempotent)`; src/fallback/try-endpoints.ts `asSent` does the same for a `transform`'s
 *    method.
 *
 * Held (plain `it`), on all nine paths unless said:
 * - defaults: 3 attempts at 0, 500, 1500 ms (`random` 0.5: full jitter of 1000 × 2ⁿ⁻¹); with 9 attempts the gaps
 *   double up to the 60000 ms cap (30000 at 0.5); 425 retried, 404 not; a PUT retried after a 500, a POST not and
 *   sent without a key, a POST retried after a 503 (not after a 307 whose target declined it: the first server may
 *   have processed it); `Retry-After: 60` slept, `61` settles at once with the 503 and
 *   the host refuses until 61 s have passed; 12 failed attempts in a row open, for 30000 ms, then 3 probes in flight
 *   (a 4th refused), one success leaves it half-open, the second closes it; no attempt or total timeout (a hung
 *   server for a day of TestClock, the caller's abort ends it) and no bulkhead (three calls in flight together);
 *   an 8 MiB body replayed, one byte more sent once (plain, `Request`, chain, ky, proxy); `crossOriginHeaders`
 *   empty (an `x-api-key` stays home on the chain's second origin, a hedge, a cross-origin 307, ky and both proxy
 *   routes; `accept` goes) and a named header going; `debugInfo().options.redirects` is `library`.
 * - set values: `maxReplayBytes: 4`, `timeout.attempt` (TimeoutError at 4500 ms; the proxy's 504),
 *   `timeout.total` (at 2500 ms), `idempotencyKey: true` (one key on three attempts), `hedge.delay` (the spare at
 *   exactly 2000 ms, on the plain, `Request`, keyed POST, degraded, ky and proxy paths), `execute` on the layer's
 *   clock, random and maxDelay.
 * - degradation: 20 failed calls step down one level at the next evaluation, the next step 10 s later;
 *   `browserSignals` on by default (a stubbed `navigator.connection` of 2g sets the floor `low` once a call
 *   settled), off with `false`.
 * - a bad value of each row is a `ConfigError` naming its path: on the root, in `fallback([…])` (`fallback.0.…`),
 *   `degradation({…})` (`degradation.…`), ky (`resilience.…`) and the proxy (`resilience.…`, `routes.0.chain.…`).
 *
 * Docs-silent (not pinned):
 * - With a half-open breaker's three probe slots taken, the 4th call is refused with `retryAt` at the first probe's
 *   lease end (30 s later by default): the proxy answers it `503` with `Retry-After: 30`, though the probes may end
 *   in milliseconds.
 * - `degradation({ resolutions: [] })` and `models: [[]]` are refused with "expected a value >= 1, received an
 *   array" (the right path; the words of a number's rule for a list's length).
 * - With `retryOn.methods` listing POST and `idempotencyKey: true` the proxy still answers 502 for a 503 after a
 *   retry of a client's keyless POST, its reason ("retried under a key of its own") being untrue then (no key was
 *   added: the defect above).
 */
import { describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type HealthSnapshot, isConfigError, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const START = 1_000_000;

/** One way into the layer: send `path` (below the chain's `/v1`), and read the layer's health. */
interface Way {
  send(path: string, init?: RequestInit): Promise<Response>;
  health(): Promise<HealthSnapshot>;
}

const PATHS = ["plain", "request", "chain", "hedge", "degraded", "redirect", "ky", "proxy", "proxyChain"] as const;
type PathName = (typeof PATHS)[number];

/** A one-endpoint chain at A's `/v1`. */
const oneEndpoint = (hedge?: { delay: number }) => ({
  name: "c",
  ...(hedge ? { hedge } : {}),
  endpoints: [{ name: "a", url: `${A.base}/v1` }],
});

/** The way `name` in, on a fresh layer made with `options`. */
function way(name: PathName, options: ResilienceOptions): Way {
  const local = (layer: ReturnType<typeof createResilience>, url: (path: string) => string | Request): Way => ({
    send: (path, init) => {
      const target = url(path);
      return typeof target === "string" ? layer.fetch(target, init) : layer.fetch(target);
    },
    health: async () => layer.health(),
  });
  const proxied = (proxy: ReturnType<typeof resilientProxy>): Way => ({
    send: (path, init) => proxy.fetch(new Request(`http://w.example${path}`, init), {}, ctx),
    health: async () =>
      (await (
        await proxy.fetch(new Request("http://w.example/__resilience/health"), {}, ctx)
      ).json()) as HealthSnapshot,
  });
  switch (name) {
    case "plain":
      return local(createResilience(options), (path) => `${A.base}${path}`);
    case "request": {
      const layer = createResilience(options);
      return {
        send: (path, init) => layer.fetch(new Request(`${A.base}${path}`, init)),
        health: async () => layer.health(),
      };
    }
    case "chain":
      return local(createResilience({ ...options, fallback: fallback([oneEndpoint()]) }), (p) => `${A.base}${p}`);
    case "hedge":
      return local(
        createResilience({ ...options, fallback: fallback([oneEndpoint({ delay: 5_000_000 })]) }),
        (p) => `${A.base}${p}`,
      );
    case "degraded": {
      const layer = createResilience({ ...options, degradation: degradation({ levelHeader: "x-level" }) });
      layer.degradation.setLevel("low");
      return local(layer, (p) => `${A.base}${p}`);
    }
    case "redirect":
      return local(createResilience(options), (p) => `${A.base}/r${p}`);
    case "ky": {
      const layer = createResilience(options);
      const api = createClient({ resilience: layer, throwHttpErrors: false });
      return { send: (p, init) => api(`${A.base}${p}`, init as never), health: async () => layer.health() };
    }
    case "proxy":
      return proxied(resilientProxy({ routes: [{ path: "/v1", upstream: `${A.base}/v1` }], resilience: options }));
    case "proxyChain":
      return proxied(resilientProxy({ routes: [{ path: "/v1", chain: oneEndpoint() }], resilience: options }));
  }
}

/** A's handler: `/r/…` answers a 307 to `/…` (the redirect path's first hop); the rest go to `inner`, timed. */
function serveA(clock: TestClock | undefined, inner: (hit: Hit) => void): number[] {
  const times: number[] = [];
  A.on((hit) => {
    if (hit.path.startsWith("/r/")) {
      hit.res.writeHead(307, { location: hit.path.slice(2) });
      hit.res.end();
      return;
    }
    times.push(clock ? clock.now() - START : 0);
    inner(hit);
  });
  return times;
}

/** The requests A received past the redirect's first hop. */
const served = (): Hit[] => A.hits.filter((hit) => !hit.path.startsWith("/r/"));

const answer =
  (status: number, headers: Record<string, string> = {}) =>
  (hit: Hit): void => {
    hit.res.writeHead(status, headers);
    hit.res.end("x");
  };

/** How a call ended: its status (and `Retry-After`), or its error's name. */
function outcome(call: Promise<Response>): Promise<string> {
  return call.then(
    async (response) => {
      await response.arrayBuffer();
      const after = response.headers.get("retry-after");
      return `${response.status}${after ? ` ra=${after}` : ""}`;
    },
    (error: unknown) => (error as Error).name,
  );
}

/** `run` on every path, each on a fresh layer and TestClock; the results by path. */
async function everyPath<T>(
  options: (clock: TestClock) => ResilienceOptions,
  run: (way: Way, clock: TestClock) => Promise<T>,
  only: readonly PathName[] = PATHS,
): Promise<Record<string, T>> {
  const results: Record<string, T> = {};
  for (const name of only) {
    A.reset();
    B.reset();
    const clock = new TestClock(START);
    results[name] = await run(way(name, options(clock)), clock);
  }
  return results;
}

/** `value` for every path in `only`. */
const each = <T>(value: T, only: readonly PathName[] = PATHS): Record<string, T> =>
  Object.fromEntries(only.map((name) => [name, value]));

/** Real turns until `ready()` (requests reaching a server), at most about 2 s. */
async function until(ready: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !ready(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe("defaults, observed with no option, on every path", () => {
  it("3 attempts at 0, 500 and 1500 ms (full jitter of 1000 ms × 2ⁿ⁻¹); 425 is retried, 404 is not", async () => {
    const results = await everyPath(
      (clock) => ({ clock, random: () => 0.5 }),
      async (way, clock) => {
        const times = serveA(clock, answer(503));
        const first = await clock.run(outcome(way.send("/v1/x")));
        A.reset();
        serveA(clock, answer(425));
        const early = await clock.run(outcome(way.send("/v1/x")));
        const n425 = served().length;
        A.reset();
        serveA(clock, answer(404));
        const missing = await clock.run(outcome(way.send("/v1/x")));
        return `${first} at ${times.join(",")}; ${early}×${n425}; ${missing}×${served().length}`;
      },
    );
    expect(results).toEqual(each("503 at 0,500,1500; 425×3; 404×1"));
  }, 20_000);

  it("the gaps double from 1000 ms and stop at maxDelay's 60000 (30000 at random 0.5)", async () => {
    const results = await everyPath(
      (clock) => ({ clock, random: () => 0.5, retry: { maxAttempts: 9 } }),
      async (way, clock) => {
        const times = serveA(clock, answer(503));
        await clock.run(outcome(way.send("/v1/x")));
        return times.slice(1).map((t, i) => t - (times[i] as number));
      },
    );
    expect(results).toEqual(each([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]));
  }, 20_000);

  it("methods and idempotencyKey: a PUT is retried after a 500, a POST is not and goes without a key, a POST is retried after a 503", async () => {
    const results = await everyPath(
      (clock) => ({ clock }),
      async (way, clock) => {
        serveA(clock, answer(500));
        await clock.run(outcome(way.send("/v1/x", { method: "PUT", body: "b" })));
        const puts = served().length;
        A.reset();
        serveA(clock, answer(500));
        await clock.run(outcome(way.send("/v1/x", { method: "POST", body: "b" })));
        const posts = served().map((hit) => hit.headers["idempotency-key"] ?? "none");
        A.reset();
        serveA(clock, answer(503));
        await clock.run(outcome(way.send("/v1/x", { method: "POST", body: "b" })));
        return `PUT×${puts} POST×${posts.length} key:${posts.join(",")} declined POST×${served().length}`;
      },
    );
    // After a redirect a keyless POST is not sent again, even when its target declined (docs/retry.md "Nor after a redirect").
    expect(results).toEqual({
      ...each("PUT×3 POST×1 key:none declined POST×3"),
      redirect: "PUT×3 POST×1 key:none declined POST×1",
    });
  }, 20_000);

  it("maxRetryAfter 60000: a Retry-After of 60 s is slept through; of 61 s settles at once and holds the host that long", async () => {
    const slept = await everyPath(
      (clock) => ({ clock }),
      async (way, clock) => {
        const times = serveA(clock, answer(503, { "retry-after": "60" }));
        return `${await clock.run(outcome(way.send("/v1/x")))} at ${times.join(",")}`;
      },
    );
    expect(slept).toEqual(each("503 ra=60 at 0,60000,120000"));

    const held = await everyPath(
      (clock) => ({ clock }),
      async (way, clock) => {
        const times = serveA(clock, answer(503, { "retry-after": "61" }));
        const first = await clock.run(outcome(way.send("/v1/x")));
        await clock.advance(60_999);
        const during = await clock.run(outcome(way.send("/v1/x")));
        await clock.advance(1);
        const after = await clock.run(outcome(way.send("/v1/x")));
        return `${first} | ${during} | ${after} at ${times.join(",")}`;
      },
    );
    const refused = { CircuitOpenError: "CircuitOpenError", chain: "FallbackExhaustedError", proxy: "503 ra=1" };
    expect(held).toEqual({
      ...each(`503 ra=61 | ${refused.CircuitOpenError} | 503 ra=61 at 0,61000`),
      chain: `503 ra=61 | ${refused.chain} | 503 ra=61 at 0,61000`,
      hedge: `503 ra=61 | ${refused.chain} | 503 ra=61 at 0,61000`,
      proxy: `503 ra=61 | ${refused.proxy} | 503 ra=61 at 0,61000`,
      proxyChain: `503 ra=61 | ${refused.proxy} | 503 ra=61 at 0,61000`,
    });
  }, 20_000);

  it("breaker: 12 failed attempts in a row open it for 30000 ms; then 3 probes in flight, and 2 successes close it", async () => {
    const results = await everyPath(
      (clock) => ({ clock, retry: { initialDelay: 0 } }),
      async (way, clock) => {
        const held: Hit[] = [];
        let mode: "fail" | "hold" | "ok" = "fail";
        serveA(clock, (hit) => {
          if (mode === "fail") answer(500)(hit);
          else if (mode === "hold") held.push(hit);
          else hit.res.end("ok");
        });
        const calls: string[] = [];
        for (let i = 0; i < 5; i++) calls.push(await clock.run(outcome(way.send("/v1/x"))));
        const sent = served().length;
        await clock.advance(29_999);
        calls.push(await clock.run(outcome(way.send("/v1/x"))));
        await clock.advance(1);
        mode = "hold";
        const done: string[] = [];
        const probes = [0, 1, 2, 3].map((i) =>
          outcome(way.send(`/v1/p${i}`)).then((o) => {
            done.push(o);
            return o;
          }),
        );
        const fourth = await probes[3];
        await until(() => held.length >= 3);
        const inFlight = held.length;
        // Each probe's answer, one at a time: its call settles once the breaker heard it.
        (held.shift() as Hit).res.end("ok");
        await until(() => done.length >= 2);
        const afterOne = (await way.health()).breakers[A.host]?.state;
        (held.shift() as Hit).res.end("ok");
        await until(() => done.length >= 3);
        const afterTwo = (await way.health()).breakers[A.host]?.state;
        (held.shift() as Hit).res.end("ok");
        await Promise.all(probes);
        return `${calls.join(",")} sent=${sent} probes=${inFlight} 4th=${fourth} ${afterOne} ${afterTwo}`;
      },
    );
    const calls = (refusal: string, early: string) => `500,500,500,500,${refusal},${early}`;
    const plainLike = `${calls("CircuitOpenError", "CircuitOpenError")} sent=12 probes=3 4th=CircuitOpenError half_open closed`;
    const chainLike = `${calls("FallbackExhaustedError", "FallbackExhaustedError")} sent=12 probes=3 4th=FallbackExhaustedError half_open closed`;
    const proxyLike = `${calls("503 ra=30", "503 ra=1")} sent=12 probes=3 4th=503 ra=30 half_open closed`;
    expect(results).toEqual({
      ...each(plainLike),
      chain: chainLike,
      hedge: chainLike,
      proxy: proxyLike,
      proxyChain: proxyLike,
    });
  }, 30_000);

  it("no attempt or total timeout (a hung server for a day) and no bulkhead (three calls in flight together)", async () => {
    const results = await everyPath(
      (clock) => ({ clock }),
      async (way, clock) => {
        serveA(clock, () => {});
        const controller = new AbortController();
        const settled: string[] = [];
        const calls = [0, 1, 2].map((i) =>
          outcome(way.send(`/v1/x${i}`, { signal: controller.signal })).then((o) => {
            settled.push(o);
            return o;
          }),
        );
        await until(() => served().length >= 3);
        await clock.advance(86_400_000);
        const pending = 3 - settled.length;
        const reason = new Error("caller gave up");
        controller.abort(reason);
        await Promise.all(calls);
        return `in flight ${served().length}, pending after a day ${pending}, then ${[...new Set(settled)].join()}`;
      },
    );
    expect(results).toEqual(each("in flight 3, pending after a day 3, then Error"));
  }, 30_000);

  it("maxReplayBytes 8 MiB: a keyed POST of 8 MiB is retried, one of 8 MiB + 1 byte goes once", async () => {
    const only = ["plain", "request", "chain", "ky", "proxy"] as const;
    const mib8 = 8 * 1024 * 1024;
    const results = await everyPath(
      (clock) => ({ clock }),
      async (way, clock) => {
        const counts: string[] = [];
        for (const size of [mib8, mib8 + 1]) {
          A.reset();
          serveA(clock, answer(503));
          const init = { method: "POST", body: "a".repeat(size), headers: { "idempotency-key": "k1" } };
          await clock.run(outcome(way.send("/v1/x", init)));
          counts.push(`${served().length}×${served().every((hit) => hit.bytes.length === size)}`);
        }
        return counts.join(" ");
      },
      only,
    );
    expect(results).toEqual(each("3×true 1×true", only));
  }, 60_000);

  it("crossOriginHeaders []: only the allowlist goes to another origin, on a chain, a hedge, a 307, ky and the proxy; a named header goes too", async () => {
    const headers = { "x-api-key": "SECRET-KEY-1234", "x-trace": "trace-1", accept: "text/plain" };
    const twoOrigins = (hedge?: { delay: number }) => ({
      name: "c",
      ...(hedge ? { hedge } : {}),
      endpoints: [
        { name: "a", url: `${A.base}/v1` },
        { name: "b", url: `${B.base}/v1` },
      ],
    });
    const sent: Record<string, string[]> = {};
    for (const named of [undefined, ["X-Trace"]]) {
      const options: ResilienceOptions = { retry: false, ...(named ? { crossOriginHeaders: named } : {}) };
      const sends: Record<string, () => Promise<Response>> = {
        chain: () =>
          createResilience({ ...options, fallback: fallback([twoOrigins()]) }).fetch(`${A.base}/v1/x`, { headers }),
        hedge: () =>
          createResilience({ ...options, fallback: fallback([twoOrigins({ delay: 1 })]) }).fetch(`${A.base}/v1/x`, {
            headers,
          }),
        redirect: () => createResilience(options).fetch(`${A.base}/to-b/v1/x`, { headers }),
        request: () => createResilience(options).fetch(new Request(`${A.base}/to-b/v1/x`, { headers })),
        ky: () => createClient({ resilience: options, throwHttpErrors: false }).get(`${A.base}/to-b/v1/x`, { headers }),
        proxy: () =>
          resilientProxy({ routes: [{ path: "/v1", upstream: `${A.base}/to-b/v1` }], resilience: options }).fetch(
            new Request("http://w.example/v1/x", { headers }),
            {},
            ctx,
          ),
        proxyChain: () =>
          resilientProxy({ routes: [{ path: "/v1", chain: twoOrigins() }], resilience: options }).fetch(
            new Request("http://w.example/v1/x", { headers }),
            {},
            ctx,
          ),
      };
      for (const [name, send] of Object.entries(sends)) {
        A.reset();
        B.reset();
        A.on((hit) => {
          if (!hit.path.startsWith("/to-b")) return answer(503)(hit);
          hit.res.writeHead(307, { location: `${B.base}${hit.path.slice(5)}` });
          hit.res.end();
        });
        await outcome(send());
        const at = (hit: Hit | undefined) =>
          hit ? ["x-api-key", "x-trace", "accept"].filter((h) => hit.headers[h] !== undefined).join("+") : "none";
        sent[name] = [...(sent[name] ?? []), `A:${at(A.hits[0])} B:${at(B.hits[0])}`];
      }
    }
    expect(sent).toEqual(
      Object.fromEntries(
        Object.keys(sent).map((name) => [
          name,
          ["A:x-api-key+x-trace+accept B:accept", "A:x-api-key+x-trace+accept B:x-trace+accept"],
        ]),
      ),
    );
    expect(createResilience().debugInfo().options).toMatchObject({ redirects: "library", timeout: {} });
  }, 20_000);
});

describe("set values, on every path", () => {
  it("maxReplayBytes: 4 replays a 4-byte body and sends a 5-byte one once (a 307 cannot replay it)", async () => {
    const results = await everyPath(
      (clock) => ({ clock, maxReplayBytes: 4 }),
      async (way, clock) => {
        const seen: string[] = [];
        for (const body of ["hell", "hello"]) {
          A.reset();
          serveA(clock, answer(503));
          const end = await clock.run(
            outcome(way.send("/v1/x", { method: "POST", body, headers: { "idempotency-key": "k1" } })),
          );
          seen.push(
            `${end} ${served()
              .map((hit) => hit.body)
              .join(",")}`,
          );
        }
        return seen.join(" | ");
      },
    );
    expect(results).toEqual({
      ...each("503 hell,hell,hell | 503 hello"),
      redirect: "503 hell,hell,hell | RetryExhaustedError ",
    });
  }, 20_000);

  it("timeout.attempt and timeout.total end a hung call on the layer's clock", async () => {
    const attempt = await everyPath(
      (clock) => ({ clock, random: () => 0.5, timeout: { attempt: 1000 } }),
      async (way, clock) => {
        const times = serveA(clock, () => {});
        const end = await clock.run(outcome(way.send("/v1/x")));
        return `${end} at ${times.join(",")} settled ${clock.now() - START}`;
      },
    );
    const chained = "FallbackExhaustedError at 0,1500,3500 settled 4500";
    expect(attempt).toEqual({
      ...each("TimeoutError at 0,1500,3500 settled 4500"),
      chain: chained,
      hedge: chained,
      proxy: "504 at 0,1500,3500 settled 4500",
      proxyChain: "504 at 0,1500,3500 settled 4500",
    });
    const total = await everyPath(
      (clock) => ({ clock, timeout: { total: 2500 } }),
      async (way, clock) => {
        serveA(clock, () => {});
        const end = await clock.run(outcome(way.send("/v1/x")));
        return `${end} settled ${clock.now() - START}`;
      },
    );
    expect(total).toEqual({
      ...each("TimeoutError settled 2500"),
      proxy: "504 settled 2500",
      proxyChain: "504 settled 2500",
    });
  }, 20_000);

  it("idempotencyKey: true gives a keyless POST one key, the same on its three attempts", async () => {
    const results = await everyPath(
      (clock) => ({ clock, retry: { idempotencyKey: true } }),
      async (way, clock) => {
        serveA(clock, answer(500));
        await clock.run(outcome(way.send("/v1/x", { method: "POST", body: "b" })));
        const keys = served().map((hit) => hit.headers["idempotency-key"]);
        return `${keys.length} ${new Set(keys).size} ${keys.every((k) => typeof k === "string" && k.length > 0)}`;
      },
    );
    expect(results).toEqual(each("3 1 true"));
  }, 20_000);

  it("hedge.delay: the next endpoint starts exactly that long after the first, on every way into a chain", async () => {
    const chain = {
      name: "c",
      hedge: { delay: 2000 },
      endpoints: [
        { name: "a", url: `${A.base}/v1` },
        { name: "b", url: `${B.base}/v1` },
      ],
    };
    const makers: Record<string, (clock: TestClock) => () => Promise<Response>> = {
      plain: (clock) => {
        const layer = createResilience({ clock, fallback: fallback([chain]) });
        return () => layer.fetch(`${A.base}/v1/x`);
      },
      request: (clock) => {
        const layer = createResilience({ clock, fallback: fallback([chain]) });
        return () => layer.fetch(new Request(`${A.base}/v1/x`, { method: "PUT", body: "b" }));
      },
      keyedPost: (clock) => {
        const layer = createResilience({ clock, retry: { idempotencyKey: true }, fallback: fallback([chain]) });
        return () => layer.fetch(`${A.base}/v1/x`, { method: "POST", body: "b" });
      },
      degraded: (clock) => {
        const layer = createResilience({ clock, fallback: fallback([chain]), degradation: degradation() });
        layer.degradation.setLevel("low");
        return () => layer.fetch(`${A.base}/v1/x`);
      },
      ky: (clock) => {
        const api = createClient({ resilience: { clock, fallback: fallback([chain]) } });
        return () => api.get(`${A.base}/v1/x`);
      },
      proxy: (clock) => {
        const proxy = resilientProxy({ routes: [{ path: "/v1", chain }], resilience: { clock } });
        return () => proxy.fetch(new Request("http://w.example/v1/x"), {}, ctx);
      },
    };
    const results: Record<string, string> = {};
    for (const [name, make] of Object.entries(makers)) {
      A.reset();
      B.reset();
      const clock = new TestClock(START);
      const send = make(clock);
      let spareAt = -1;
      A.on(() => {});
      B.on((hit) => {
        spareAt = clock.now() - START;
        hit.res.end("b");
      });
      results[name] = `${await clock.run(outcome(send()))} spare at ${spareAt}`;
    }
    expect(results).toEqual(Object.fromEntries(Object.keys(makers).map((name) => [name, "200 spare at 2000"])));
  });

  it("execute runs on the layer's clock, random, maxDelay and budget", async () => {
    const clock = new TestClock(START);
    const layer = createResilience({
      clock,
      random: () => 0.5,
      retry: { maxDelay: 700 },
      budget: { ratio: 0, minPerSecond: 1 },
    });
    const at: number[] = [];
    const end = await clock.run(
      layer
        .execute(() => {
          at.push(clock.now() - START);
          throw new Error("work failed");
        })
        .then(
          () => "ok",
          (error: unknown) => (error as Error).name,
        ),
    );
    // 0.5 × min(700, 1000) before the second; the budget's one free retry then spent.
    expect({ end, at, denied: layer.health().budget?.retriesDenied }).toEqual({
      end: "RetryExhaustedError",
      at: [0, 350],
      denied: 1,
    });
  });
});

describe("degradation rows", () => {
  it("20 failed calls step down at the next evaluation; the next step waits stepInterval (10 s)", async () => {
    const clock = new TestClock(START);
    const layer = createResilience({ clock, retry: false, breaker: false, degradation: degradation() });
    A.on(answer(500));
    const levels: string[] = [];
    for (let i = 0; i < 19; i++) await clock.run(outcome(layer.fetch(`${A.base}/x`)));
    levels.push(layer.degradation.levelName());
    await clock.advance(1000);
    await clock.run(outcome(layer.fetch(`${A.base}/x`)));
    levels.push(layer.degradation.levelName());
    // Evaluated at most once a second as calls settle: 8999 ms after the step, then 10000 ms after it.
    await clock.advance(8999);
    await clock.run(outcome(layer.fetch(`${A.base}/x`)));
    levels.push(layer.degradation.levelName());
    await clock.advance(1001);
    await clock.run(outcome(layer.fetch(`${A.base}/x`)));
    levels.push(layer.degradation.levelName());
    expect(levels).toEqual(["full", "high", "high", "medium"]);
  });

  it("browserSignals is on by default (a 2g connection floors the level at low once a call settled), off with false", async () => {
    vi.stubGlobal("navigator", { connection: { effectiveType: "2g" } });
    try {
      const levels: string[] = [];
      for (const options of [{}, { browserSignals: false }]) {
        const layer = createResilience({ degradation: degradation(options) });
        A.on((hit) => hit.res.end("ok"));
        await outcome(layer.fetch(`${A.base}/x`));
        levels.push(layer.degradation.levelName());
      }
      const proxy = resilientProxy({
        routes: [{ path: "/v1", upstream: `${A.base}/v1` }],
        resilience: { degradation: degradation() },
      });
      for (let i = 0; i < 2; i++) {
        const response = await proxy.fetch(new Request("http://w.example/v1/x"), {}, ctx);
        await response.arrayBuffer();
        levels.push(response.headers.get("x-degradation-level") as string);
      }
      expect(levels).toEqual(["low", "full", "full", "low"]);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe("a bad value is a ConfigError naming its path, on every entry", () => {
  it("root, fallback([…]), degradation({…}), ky and the proxy", () => {
    const endpoints = [{ name: "a", url: `${A.base}/v1` }];
    const upstream = [{ path: "/v1", upstream: `${A.base}/v1` }];
    const cases: Array<[string, () => unknown]> = [
      ["retry.retryOn.methods.0", () => createResilience({ retry: { retryOn: { methods: ["POST "] } } })],
      ["retry.retryOn.statuses.0", () => createResilience({ retry: { retryOn: { statuses: [99] } } })],
      ["retry.maxRetryAfter", () => createResilience({ retry: { maxRetryAfter: -1 } })],
      ["retry.idempotencyKey", () => createResilience({ retry: { idempotencyKey: "yes" as never } })],
      ["retry.jitter", () => createResilience({ retry: { jitter: "half" as never } })],
      ["timeout.attempt", () => createResilience({ timeout: { attempt: 2_147_483_648 } })],
      ["timeout.total", () => createResilience({ timeout: { total: 0 } })],
      ["breaker.failureRate", () => createResilience({ breaker: { failureRate: 1.5 } })],
      ["breaker.minimumCalls", () => createResilience({ breaker: { minimumCalls: 0 } })],
      ["breaker.timeWindow", () => createResilience({ breaker: { timeWindow: 0 } })],
      ["breaker.probeTimeout", () => createResilience({ breaker: { probeTimeout: 0 } })],
      ["breaker.halfOpenMaxCalls", () => createResilience({ breaker: { halfOpenMaxCalls: 1.5 } })],
      ["breaker.successThreshold", () => createResilience({ breaker: { successThreshold: 0 } })],
      ["breaker.timeout", () => createResilience({ breaker: { timeout: -1 } })],
      ["breaker.maxHosts", () => createResilience({ breaker: { maxHosts: 0 } })],
      ["breaker.key", () => createResilience({ breaker: { key: "host" as never } })],
      ["bulkhead.maxConcurrent", () => createResilience({ bulkhead: { maxConcurrent: 0 } })],
      ["bulkhead.maxQueue", () => createResilience({ bulkhead: { maxConcurrent: 1, maxQueue: -1 } })],
      ["bulkhead", () => createResilience({ breaker: false, bulkhead: { maxConcurrent: 1 } })],
      ["budget.ratio", () => createResilience({ budget: { ratio: -0.1 } })],
      ["budget.minPerSecond", () => createResilience({ budget: { minPerSecond: Number.NaN } })],
      ["maxReplayBytes", () => createResilience({ maxReplayBytes: 1.5 })],
      ["crossOriginHeaders.0", () => createResilience({ crossOriginHeaders: ["x-api-key: v"] })],
      ["redirects", () => createResilience({ redirects: "browser" as never })],
      ["clock.setTimer", () => createResilience({ clock: { now: () => 0 } as never })],
      ["random", () => createResilience({ random: 0.5 as never })],
      ["fallback.0.order", () => fallback([{ name: "c", order: "random" as never, endpoints }])],
      ["fallback.0.hedge.delay", () => fallback([{ name: "c", hedge: { delay: -1 }, endpoints }])],
      [
        "fallback.0.endpoints.0.expectedQuality",
        () => fallback([{ name: "c", endpoints: [{ name: "a", url: `${A.base}/v1`, expectedQuality: 2 }] }]),
      ],
      ["degradation.triggers.errorRate", () => degradation({ triggers: { errorRate: 2 } })],
      ["degradation.window", () => degradation({ window: 0 })],
      ["degradation.minSamples", () => degradation({ minSamples: 0 })],
      ["degradation.stepInterval", () => degradation({ stepInterval: -1 })],
      ["degradation.levelHeader", () => degradation({ levelHeader: "x level" })],
      ["degradation.browserSignals", () => degradation({ browserSignals: 1 as never })],
      ["degradation.sizeMultiple", () => degradation({ sizeMultiple: 0 })],
      ["degradation.levels.medium.percentage", () => degradation({ levels: { medium: { percentage: 101 } } })],
      ["resilience.retry.maxRetryAfter", () => createClient({ resilience: { retry: { maxRetryAfter: -1 } } })],
      ["resilience.bulkhead", () => createClient({ resilience: { breaker: false, bulkhead: { maxConcurrent: 1 } } })],
      [
        "resilience.retry.maxRetryAfter",
        () => resilientProxy({ routes: upstream, resilience: { retry: { maxRetryAfter: -1 } } }),
      ],
      [
        "resilience.crossOriginHeaders.0",
        () => resilientProxy({ routes: upstream, resilience: { crossOriginHeaders: ["a b"] } }),
      ],
      ["resilience.maxReplayBytes", () => resilientProxy({ routes: upstream, resilience: { maxReplayBytes: -1 } })],
      [
        "resilience.timeout.attempt",
        () => resilientProxy({ routes: upstream, resilience: { timeout: { attempt: 0 } } }),
      ],
      ["resilience.random", () => resilientProxy({ routes: upstream, resilience: { random: 1 as never } })],
      [
        "routes.0.chain.hedge.delay",
        () => resilientProxy({ routes: [{ path: "/v1", chain: { name: "c", hedge: { delay: -1 }, endpoints } }] }),
      ],
    ];
    const paths = cases.map(([, make]) => {
      try {
        make();
        return "accepted";
      } catch (error) {
        return isConfigError(error) ? error.path : `${(error as Error).name}`;
      }
    });
    expect(paths).toEqual(cases.map(([path]) => path));
  });
});

describe("retry.idempotencyKey beside retryOn.methods", () => {
  it("a keyless POST gets one Idempotency-Key on every attempt when retryOn.methods lists POST (every path)", async () => {
    const results = await everyPath(
      (clock) => ({ clock, retry: { idempotencyKey: true, retryOn: { methods: ["GET", "POST"] } } }),
      async (way, clock) => {
        serveA(clock, answer(500));
        await clock.run(outcome(way.send("/v1/x", { method: "POST", body: "b" })));
        const keys = served().map((hit) => hit.headers["idempotency-key"] ?? "none");
        return `${keys.length} ${new Set(keys).size} ${keys.includes("none") ? "unkeyed" : "keyed"}`;
      },
    );
    // Documented: "POST and PATCH requests without a key get one …, the same on every retry of that call".
    // Observed on all nine paths: "3 1 unkeyed" (three POSTs, none with a key).
    expect(results).toEqual(each("3 1 keyed"));
  }, 20_000);

  it("a keyless PATCH gets an Idempotency-Key when retryOn.methods lists PATCH", async () => {
    A.on(answer(500));
    const layer = createResilience({
      retry: { initialDelay: 0, idempotencyKey: true, retryOn: { methods: ["get", "patch"] } },
    });
    await outcome(layer.fetch(`${A.base}/v1/x`, { method: "PATCH", body: "b" }));
    // Observed: three PATCHes, each without the header.
    expect(A.hits.map((hit) => typeof hit.headers["idempotency-key"])).toEqual(["string", "string", "string"]);
  });

  it("control: with the default methods the same POST is keyed, and listing POST alone retries it", async () => {
    A.on(answer(500));
    const keyed = createResilience({ retry: { initialDelay: 0, idempotencyKey: true } });
    await outcome(keyed.fetch(`${A.base}/v1/x`, { method: "POST", body: "b" }));
    expect(A.hits.map((hit) => typeof hit.headers["idempotency-key"])).toEqual(["string", "string", "string"]);
    A.reset();
    A.on(answer(500));
    const listed = createResilience({ retry: { initialDelay: 0, retryOn: { methods: ["POST"] } } });
    await outcome(listed.fetch(`${A.base}/v1/x`, { method: "POST", body: "b" }));
    expect(A.hits.length).toBe(3);
  });
});
