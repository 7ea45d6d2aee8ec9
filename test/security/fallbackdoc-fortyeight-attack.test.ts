/**
 * Outside-in attack on docs/fallback.md, sentence by sentence, and the JSDoc of `@storycore/resilient-fetch/fallback`
 * (`fallback`, `FallbackChains.chain`, `FallbackEndpointCommon`, `EndpointRequest`, `TransformedRequest`,
 * `FallbackChainOptions`), on the paths a chain can take: plain chain call, hedged chain, an endpoint answering
 * with a redirect the layer follows, a degradation rewrite before a chain, a `Request` input, the ky client and
 * `resilientProxy`'s chain route.
 * Docs: docs/fallback.md: "`resilience.fallback.chain(name)` returns a configured chain (its `statistics()` …;
 * `ordered()`; it runs through `resilience.fetch` only, so its `add` and `execute` throw a `TypeError` that says
 * so)"; src/http/stages.ts `FallbackChains.chain` JSDoc ("A chain configured in `fallback(…)` is returned for its
 * `statistics()` and `ordered()`: it runs through `resilience.fetch` only"); "under `timeout.attempt` an endpoint
 * that hangs counts as failed"; "An endpoint is left for the next one on a network error, a timeout, …, or a 2xx
 * whose JSON fails `validate`"; "When every endpoint failed, the call resolves with the last response any endpoint
 * gave …, or rejects with `FallbackExhaustedError` (`errors` per endpoint; its message lists them in the order they
 * failed, its `cause` is the last one's error) if none gave one"; "an endpoint's `TimeoutError` there counts that
 * endpoint's `attempts`"; "`getResilienceInfo(res)` says which `endpoint` served and whether `fromFallback`";
 * "`validate` reads at most `maxReplayBytes` of the body … (under `timeout.total` alone, the read goes on until the
 * deadline, which then rejects the call with its `TimeoutError`: the chain does not move on at its deadline)"; "An
 * abort, or `timeout.total` passing, rejects the call with the caller's reason or the `TimeoutError` even when an
 * earlier endpoint's answer was turned down, or a `respond` or `transform` ignores the signal and never settles";
 * "The rest of the path and the query are rebased onto each endpoint's `url` (an endpoint's own query, `?key=…`,
 * stays on it …)"; "Credentials never cross origins … An endpoint's own `headers`, and a header the `transform`
 * writes with `headers.set` on the request it is given, are the endpoint's and are sent"; "`transform(req)` …
 * receives `{ method, url, headers, body, endpoint }`"; "`order: \"adaptive\"` ranks endpoints by a decaying recent
 * success rate minus a latency penalty (60 s of latency costs 10 points), scores within 0.05 (0.05 included)
 * counting as a tie broken by `expectedQuality`, then by configured order … A failing endpoint's recent failures fade
 * with a 60 s half-life"; "the retry budget is shared"; "`fallback([…])` checks the chains at once (a bad one throws
 * `ConfigError` naming its path, `fallback.0.endpoints.1.url`)" and "without `user:pass@`"; docs/degradation.md "A
 * call that goes down a fallback chain is rewritten once …, before the chain: every endpoint gets that request …, and
 * an endpoint's `transform` reshapes it"; docs/health-and-events.md (`fallback`: `chain`, `from`, `reason`, `next`);
 * SECURITY.md (no secret in errors or events: "a `fallback` event's reason").
 * How: `createResilience`, `getResilienceInfo`, `FallbackExhaustedError`, `isTimeoutError`, `isConfigError` (.),
 * `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare, run
 * in Node as a plain handler), `TestClock` (./testing) for every timer; three node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) and a refused origin.
 * Paths: plain chain call, hedged chain, redirect followed inside an endpoint, degradation rewrite before a chain
 * with a `transform`, `Request` input (with its own signal), the ky client, `resilientProxy`'s chain route, a
 * configured chain's own methods.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the same session, so plain `it`):
 * 1. docs/fallback.md "`resilience.fallback.chain(name)` returns a configured chain (…; it runs through
 *    `resilience.fetch` only, so its `add` and `execute` throw a `TypeError` that says so)", and the same in the
 *    JSDoc of `FallbackChains.chain`. Observed: the configured chain's public `run(input)` (on the `FallbackChain`
 *    type the entry exports) is not refused: it runs every endpoint's entry with the caller's value, each entry
 *    fails inside the library (`TypeError: Cannot read properties of undefined (reading 'get')`), and the run is
 *    counted: after one served `resilience.fetch`, `statistics()` (and `health().fallback`) go from
 *    `overallSuccessRate` 1 to 0.5 and the first endpoint from 1 call to 2, 1 success; `order: "adaptive"` reads
 *    those counts. Cause: src/policies/fallback-chain.ts `refuseIfConfigured` is called from `add` and `execute`
 *    only; `run` (public, and what `execute` wraps) goes straight to the entries (src/fallback/try-endpoints.ts
 *    `tryEndpoint` reads `call.endpoints` of whatever it is handed).
 * 2. docs/fallback.md "under `timeout.attempt` an endpoint that hangs counts as failed" (with "An endpoint is left
 *    for the next one on … a timeout"). Observed, with `timeout.attempt: 1000` and a spare after it: an endpoint
 *    whose `respond` never settles, one whose `transform` never settles, and one whose async `validate` schema never
 *    settles each hold the call for ever (10 s of the TestClock and more: still pending, the spare never tried,
 *    nothing counted); only the caller's abort or `timeout.total` ends it. A network endpoint that hangs the same
 *    way fails at 1000 ms, is counted, and the chain moves on (held, below). Cause: the attempt timer lives in
 *    src/http/send/send-attempt.ts (`timedTransportCall`) around the transport only; src/fallback/try-endpoints.ts
 *    `tryEndpoint` waits on `respond` and `transform` with `untilAborted(…, signal)` alone, and
 *    src/fallback/validate-response.ts `validateResponse` bounds the body read by `timeout` but awaits the schema
 *    with `untilAborted(schema["~standard"].validate(value), bounds.signal)` alone.
 *
 * Held (plain `it`):
 * - Every endpoint failing `validate` (GET, three endpoints): the call resolves with the last answer, body whole,
 *   `endpoint` "c", `fromFallback`, `attempts` 3; three `fallback` events (`chain`, `from`, `reason` "invalid body:
 *   not ok", `next` "b", "c", then none); each endpoint counted as a call without success. Hedged: the answer
 *   judged last (the primary's, after both hedges failed beside it) is given, `endpoint` "a", not `fromFallback`,
 *   the events' `next` the running primary. Through the ky client and `resilientProxy`: the last answer, the proxy
 *   naming "c" in `x-resilience-endpoint`.
 * - `FallbackExhaustedError`: a hedged chain whose two endpoints time out under `timeout.attempt` with 2 attempts
 *   each has each endpoint's `TimeoutError` (`phase` attempt, `attempts` 2), the message listing "a" then "b", the
 *   `cause` the last one's error; URL secrets (an endpoint's own `?key=`, the caller's query, a `respond` error's
 *   `user:pass@` and `?token=`) are in none of message, stack, `errors`, `cause` and event reasons.
 * - Adaptive order: one refused call puts the endpoint second; 119 s later still second, 120 s later first again
 *   (0.8 faded to 0.95: a tie, 0.05 included, broken by configured order); a success that took 30 s on the TestClock
 *   ties an unused endpoint (60 s costs 10 points) and wins on `expectedQuality`, one of 30.6 s does not.
 * - Timeouts and abort: `timeout.total` during the second endpoint's `validate` read of a stalled body rejects with
 *   the `TimeoutError` (`phase` total, `attempts` 2), the third endpoint is never sent (no move at the deadline), the
 *   first counted, the second and the run not; a `respond` that never settles under `timeout.total` rejects with the
 *   `TimeoutError`; a `Request` input's own signal aborted while the second endpoint hangs rejects with its reason,
 *   that upstream sees the connection closed, the `request` event says `aborted`.
 * - Rebasing and `transform`: the cross-origin endpoint's `transform` receives the URL rebased onto its own
 *   `?key=K2` with the caller's path and query and without the first endpoint's `key=K1`, the caller's headers (a
 *   copy, `authorization` included), its endpoint name and the parsed body; what it sends keeps its `set` header and
 *   its own `headers`, and not the caller's `authorization`. A redirect the second endpoint answers is followed:
 *   `res.url` is where it ended, `endpoint` "b".
 * - Degradation before a chain: at `medium` the `transform` of the second endpoint receives `steps` 30 (the
 *   rewritten body) and sends its own shape; `degradationLevel` "medium".
 * - The retry budget is shared: with one token, the first endpoint's retry spends it and the second is sent once.
 * - `fallback([…])` refuses `user@` and `#` endpoint URLs with a `ConfigError` naming `fallback.0.endpoints.1.url`;
 *   a configured chain's `add` and `execute` throw the `TypeError` that says it runs through `resilience.fetch`.
 *
 * Docs-silent (not pinned):
 * - `validate` on a body-less 2xx: a HEAD (or a 204) never passes a schema ("invalid body: not JSON"), so with
 *   `validate` on every endpoint a HEAD goes to each and resolves with the last one's answer.
 * - The `validate` JSDoc of `FallbackEndpointCommon` ("A 2xx whose JSON fails this schema is a failure, and the
 *   chain moves on") says nothing of a keyless POST, which docs/fallback.md says does not move on (held by earlier
 *   files): the two texts disagree.
 * - `respond` and `transform` receive no signal (`EndpointRequest` has none), so the "ignores the signal" the docs
 *   speak of is all they can do: a token fetch in a `transform` goes on after the call was aborted.
 * - A half-open host with every probe slot taken refuses an endpoint with a `CircuitOpenError` ("circuit … is open
 *   until …") that the chain counts as a failed call with reason "CircuitOpenError: …", not a pass-over "circuit
 *   open" (also seen by abortfirst-fortysix).
 * - A stacked layer: an outer chain whose endpoint's transport is an inner chain layer in which every `transform`
 *   and `respond` threw (nothing sent anywhere) stops a keyless POST there, "which may have processed the request".
 * - The adaptive tie is not transitive (A ties B, B ties C, A beats C): with three endpoints the order the sort
 *   gives may break the documented pairwise rule. The latency penalty fades with the same 60 s half-life as failures.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  FallbackExhaustedError,
  getResilienceInfo,
  isConfigError,
  isTimeoutError,
  type StandardSchemaLike,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

/** A Standard Schema that accepts objects with `ok: true`. */
const schema: StandardSchemaLike = {
  "~standard": {
    version: 1,
    vendor: "attack",
    validate: (value: unknown) =>
      (value as { ok?: unknown } | null)?.ok === true ? { value } : { issues: [{ message: "not ok" }] },
  },
};

const never = new Promise<never>(() => {});

/** A schema whose `validate` never settles (a refinement that waits on a service that never answers); `entered` once asked. */
function hangingSchema(entered: () => void): StandardSchemaLike {
  return {
    "~standard": {
      version: 1,
      vendor: "attack",
      validate: () => {
        entered();
        return never;
      },
    },
  };
}

const json =
  (body: unknown, status = 200) =>
  (hit: Hit): void => {
    hit.res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  };
const busy = (hit: Hit): void => {
  hit.res.writeHead(503, { "content-type": "text/plain" }).end("busy");
};
const hang = (_hit: Hit): void => {};

type Chain = Parameters<typeof fallback>[0][number];
type Options = Omit<NonNullable<Parameters<typeof createResilience>[0]>, "fallback">;

function chainLayer(
  endpoints: Chain["endpoints"],
  extra: Omit<Chain, "name" | "endpoints"> = {},
  options: Options = {},
) {
  return createResilience({ retry: false, ...options, fallback: fallback([{ name: "j", endpoints, ...extra }]) });
}

/** Real I/O turns (no clock moves) until `done()`: the servers' answers travel meanwhile. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  if (!done()) throw new Error("condition never met");
}

interface Recorded {
  chain: string;
  from: string;
  reason: string;
  next: string | undefined;
}

function recordFallbacks(layer: ReturnType<typeof createResilience>): Recorded[] {
  const events: Recorded[] = [];
  layer.on("fallback", (event) => {
    events.push({ ...event });
  });
  return events;
}

describe("1. a configured chain runs through resilience.fetch only", () => {
  it("control: add and execute throw the TypeError that says so", async () => {
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "b", url: `${b.base}/v1` },
    ]);
    const chain = layer.fallback.chain("j");
    const added = thrown(() => chain.add(async () => new Response("x"), { name: "z" }));
    expect(added).toBeInstanceOf(TypeError);
    expect(String(added)).toMatch(/runs through resilience\.fetch only/);
    const executed = await rejection(chain.execute(undefined));
    expect(executed).toBeInstanceOf(TypeError);
    expect(String(executed)).toMatch(/runs through resilience\.fetch only/);
  });

  it("its run(input) neither runs its endpoints nor changes its statistics", async () => {
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "b", url: `${b.base}/v1` },
    ]);
    const res = await layer.fetch(`${a.base}/v1/x`);
    await res.text();
    const chain = layer.fallback.chain("j");
    const before = JSON.stringify(chain.statistics());
    // Whatever `run` does with a value of the caller's (settle, reject, throw), the chain is not run by it.
    try {
      await chain.run({} as never);
    } catch {}
    expect(a.hits.length + b.hits.length).toBe(1);
    // Observed: overallSuccessRate 0.5, a: { calls: 2, successes: 1 }, b: { calls: 1, successes: 0 }.
    expect(JSON.stringify(chain.statistics())).toBe(before);
    expect(layer.health().fallback.j?.overallSuccessRate).toBe(1);
  });
});

describe("2. under timeout.attempt an endpoint that hangs counts as failed", () => {
  /**
   * Chain a (503) → the endpoint under test → z (a spare that answers), one attempt each, `timeout.attempt` 1000;
   * the clock moves 10 s once `reached()` says the endpoint under test is running.
   */
  async function hangingMiddle(middle: Chain["endpoints"][number], reached: () => boolean, onB = json({ ok: true })) {
    const clock = new TestClock();
    a.on(busy);
    b.on(onB);
    const layer = chainLayer(
      [{ name: "a", url: `${a.base}/v1` }, middle, { name: "z", respond: () => new Response("spare") }],
      {},
      {
        clock,
        timeout: { attempt: 1000 },
      },
    );
    const controller = new AbortController();
    let outcome: string = "pending";
    const call = layer.fetch(`${a.base}/v1/x`, { signal: controller.signal }).then(
      async (res) => {
        outcome = `${res.status} ${getResilienceInfo(res)?.endpoint} ${await res.text()}`;
      },
      (error: unknown) => {
        outcome = String(error);
      },
    );
    await until(reached);
    for (let i = 0; i < 20; i++) {
      await clock.advance(500);
      await flush();
    }
    return { layer, call, controller, outcome: () => outcome };
  }

  it("control: a network endpoint that hangs fails at 1000 ms, is counted, and the chain moves on", async () => {
    const run = await hangingMiddle({ name: "m", url: `${b.base}/v2` }, () => b.hits.length === 1, hang);
    try {
      expect(run.outcome()).toBe("200 z spare");
      expect(run.layer.fallback.chain("j").statistics().fallbacks.m).toMatchObject({ calls: 1, successes: 0 });
    } finally {
      run.controller.abort();
      await run.call;
    }
  });

  it("a respond that never settles counts as failed and the spare answers", async () => {
    let entered = false;
    const respond = () => {
      entered = true;
      return never;
    };
    const run = await hangingMiddle({ name: "m", respond }, () => entered);
    try {
      // Observed: "pending" after 10 s of the TestClock; nothing counted for "m".
      expect(run.outcome()).toBe("200 z spare");
      expect(run.layer.fallback.chain("j").statistics().fallbacks.m).toMatchObject({ calls: 1, successes: 0 });
    } finally {
      run.controller.abort();
      await run.call;
    }
  });

  it("a transform that never settles counts as failed and the spare answers", async () => {
    let entered = false;
    const transform = () => {
      entered = true;
      return never;
    };
    const run = await hangingMiddle({ name: "m", url: `${b.base}/v2`, transform }, () => entered);
    try {
      // Observed: "pending"; b was never sent anything.
      expect(run.outcome()).toBe("200 z spare");
      expect(run.layer.fallback.chain("j").statistics().fallbacks.m).toMatchObject({ calls: 1, successes: 0 });
    } finally {
      run.controller.abort();
      await run.call;
    }
  });

  it("a validate schema that never settles counts as failed and the spare answers", async () => {
    let entered = false;
    const validate = hangingSchema(() => {
      entered = true;
    });
    const run = await hangingMiddle({ name: "m", url: `${b.base}/v2`, validate }, () => entered);
    try {
      // Observed: "pending"; b's 200 arrived and its body was read, the schema is awaited for ever.
      expect(run.outcome()).toBe("200 z spare");
      expect(run.layer.fallback.chain("j").statistics().fallbacks.m).toMatchObject({ calls: 1, successes: 0 });
    } finally {
      run.controller.abort();
      await run.call;
    }
  });
});

describe("every endpoint fails validate", () => {
  const three = (): Chain["endpoints"] => [
    { name: "a", url: `${a.base}/v1`, validate: schema },
    { name: "b", url: `${b.base}/v1`, validate: schema },
    { name: "c", url: `${c.base}/v1`, validate: schema },
  ];

  it("a GET resolves with the last answer, named, after three fallback events", async () => {
    a.on(json({ ok: false, from: "a" }));
    b.on(json({ ok: false, from: "b" }));
    c.on(json({ ok: false, from: "c" }));
    const layer = chainLayer(three());
    const events = recordFallbacks(layer);
    const res = await layer.fetch(`${a.base}/v1/x?q=1`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: false, from: "c" });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "c", fromFallback: true, attempts: 3 });
    expect(c.hits[0]?.path).toBe("/v1/x?q=1");
    expect(events).toEqual([
      { chain: "j", from: "a", reason: "invalid body: not ok", next: "b" },
      { chain: "j", from: "b", reason: "invalid body: not ok", next: "c" },
      { chain: "j", from: "c", reason: "invalid body: not ok", next: undefined },
    ]);
    const stats = layer.fallback.chain("j").statistics();
    expect(stats.overallSuccessRate).toBe(0);
    for (const name of ["a", "b", "c"]) expect(stats.fallbacks[name]).toMatchObject({ calls: 1, successes: 0 });
  });

  it("hedged: the answer judged last is given, the events naming the running primary", async () => {
    const clock = new TestClock();
    let primary: Hit | undefined;
    a.on((hit) => {
      primary = hit;
    });
    b.on(json({ ok: false, from: "b" }));
    c.on(json({ ok: false, from: "c" }));
    const layer = chainLayer(three(), { hedge: { delay: 1000 } }, { clock });
    const events = recordFallbacks(layer);
    const call = layer.fetch(`${a.base}/v1/x`);
    await a.nth(1);
    await clock.advance(1000);
    await until(() => events.length === 2);
    expect(events).toEqual([
      { chain: "j", from: "b", reason: "invalid body: not ok", next: "a" },
      { chain: "j", from: "c", reason: "invalid body: not ok", next: "a" },
    ]);
    json({ ok: false, from: "a" })(primary as Hit);
    const res = await call;
    expect(await res.json()).toEqual({ ok: false, from: "a" });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", fromFallback: false, attempts: 3 });
    expect(events[2]).toEqual({ chain: "j", from: "a", reason: "invalid body: not ok", next: undefined });
  });

  it("through the ky client and resilientProxy: the last answer", async () => {
    a.on(json({ ok: false, from: "a" }));
    b.on(json({ ok: false, from: "b" }));
    c.on(json({ ok: false, from: "c" }));
    const api = createClient({ prefix: `${a.base}/v1`, resilience: chainLayer(three()) });
    const viaKy = await api.get("x");
    expect(await viaKy.json()).toEqual({ ok: false, from: "c" });
    expect(getResilienceInfo(viaKy)).toMatchObject({ endpoint: "c" });

    const proxy = resilientProxy<object>({
      routes: [{ path: "/v1", chain: { name: "j", endpoints: three() } }],
      resilience: { retry: false },
    });
    const viaProxy = await proxy.fetch(new Request("https://worker.example/v1/x"), {}, { waitUntil() {} });
    expect(viaProxy.status).toBe(200);
    expect(viaProxy.headers.get("x-resilience-endpoint")).toBe("c");
    expect(await viaProxy.json()).toEqual({ ok: false, from: "c" });
  });
});

describe("FallbackExhaustedError's contents", () => {
  it("hedged, both timing out: each endpoint's TimeoutError with its attempts, listed in order, cause the last", async () => {
    const clock = new TestClock();
    a.on(hang);
    b.on(hang);
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v1` },
      ],
      { hedge: { delay: 500 } },
      { clock, retry: { maxAttempts: 2, initialDelay: 0, maxDelay: 0, jitter: "none" }, timeout: { attempt: 1000 } },
    );
    const events = recordFallbacks(layer);
    const call = rejection(layer.fetch(`${a.base}/v1/x`));
    await a.nth(1);
    await clock.advance(500);
    await b.nth(1);
    for (let i = 0; i < 10; i++) {
      await clock.advance(250);
      await flush();
    }
    const error = (await call) as FallbackExhaustedError;
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(error.chain).toBe("j");
    for (const name of ["a", "b"]) {
      const each = error.errors[name];
      expect(isTimeoutError(each)).toBe(true);
      expect(each).toMatchObject({ phase: "attempt", attempts: 2 });
    }
    expect(error.message).toBe(
      'every endpoint of fallback chain "j" failed (a: attempt timeout of 1000 ms exceeded; b: attempt timeout of 1000 ms exceeded)',
    );
    expect(error.cause).toBe(error.errors.b);
    expect(a.hits.length).toBe(2);
    expect(b.hits.length).toBe(2);
    expect(events.map((e) => [e.from, e.next])).toEqual([
      ["a", "b"],
      ["b", undefined],
    ]);
  });

  it("URL secrets are cut from message, stack, errors, cause and the fallback events' reasons", async () => {
    const dead = await refusedOrigin();
    const layer = chainLayer([
      { name: "a", url: `${dead}/v1?key=OWNSECRET1` },
      {
        name: "cache",
        respond: () => {
          throw new Error("cache at https://svc:PWSECRET2@cache.example/x?token=TOKSECRET3 failed");
        },
      },
    ]);
    const events = recordFallbacks(layer);
    const error = (await rejection(layer.fetch(`${dead}/v1/x?q=CALLERSECRET4`))) as FallbackExhaustedError;
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    const texts = [
      error.message,
      String(error.stack),
      ...Object.values(error.errors).flatMap((each) => [String(each), String((each as Error).stack)]),
      String(error.cause),
      ...events.map((event) => event.reason),
    ].join("\n");
    for (const secret of ["OWNSECRET1", "PWSECRET2", "TOKSECRET3", "CALLERSECRET4"])
      expect(texts).not.toContain(secret);
    expect(error.cause).toBe(error.errors.cache);
    expect(String(error.cause)).toContain("https://cache.example/x");
    expect(events.map((event) => event.from)).toEqual(["a", "cache"]);
  });
});

describe("adaptive order", () => {
  it("a failure fades with a 60 s half-life: second for 119 s, first again at 120 s (0.05 included)", async () => {
    const clock = new TestClock(1_000_000);
    const dead = await refusedOrigin();
    const layer = chainLayer(
      [
        { name: "a", url: `${dead}/v1` },
        { name: "b", url: `${b.base}/v1` },
      ],
      { order: "adaptive" },
      { clock, breaker: false },
    );
    const res = await layer.fetch(`${dead}/v1/x`);
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    const chain = layer.fallback.chain("j");
    expect(chain.ordered()).toEqual(["b", "a"]);
    await clock.advance(119_000);
    expect(chain.ordered()).toEqual(["b", "a"]);
    await clock.advance(1_000);
    expect(chain.ordered()).toEqual(["a", "b"]);
  });

  for (const [ms, first] of [
    [30_000, "a"],
    [30_600, "b"],
  ] as const) {
    it(`a success that took ${ms} ms ranks ${first} first against an unused endpoint of lower quality`, async () => {
      const clock = new TestClock();
      a.on(hang);
      const layer = chainLayer(
        [
          { name: "a", url: `${a.base}/v1` },
          { name: "b", url: `${b.base}/v1`, expectedQuality: 0.5 },
        ],
        { order: "adaptive" },
        { clock },
      );
      const call = layer.fetch(`${a.base}/v1/x`);
      const hit = await a.nth(1);
      await clock.advance(ms);
      json({ ok: true })(hit);
      const res = await call;
      await res.text();
      expect(getResilienceInfo(res)?.endpoint).toBe("a");
      expect(layer.fallback.chain("j").ordered()[0]).toBe(first);
    });
  }
});

describe("timeouts and abort during a chain", () => {
  it("timeout.total during the second endpoint's validate read: TimeoutError, no move at the deadline", async () => {
    const clock = new TestClock();
    a.on(json({ ok: false }));
    b.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/json" });
      hit.res.write('{"ok":');
    });
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1`, validate: schema },
        { name: "b", url: `${b.base}/v1`, validate: schema },
        { name: "c", url: `${c.base}/v1` },
      ],
      {},
      { clock, timeout: { total: 5000 } },
    );
    const call = rejection(layer.fetch(`${a.base}/v1/x`));
    await b.nth(1);
    await flush();
    await clock.advance(5000);
    const error = await call;
    expect(isTimeoutError(error)).toBe(true);
    expect(error).toMatchObject({ phase: "total", attempts: 2 });
    await flush();
    expect(c.hits.length).toBe(0);
    const stats = layer.fallback.chain("j").statistics();
    expect(stats.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(stats.fallbacks.b).toMatchObject({ calls: 0 });
    expect(stats.overallSuccessRate).toBe(0);
  });

  it("timeout.total ends a respond that never settles with the TimeoutError", async () => {
    const clock = new TestClock();
    a.on(busy);
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "cache", respond: () => never },
      ],
      {},
      { clock, timeout: { total: 2000 } },
    );
    const call = rejection(layer.fetch(`${a.base}/v1/x`));
    await a.nth(1);
    await flush();
    await clock.advance(2000);
    const error = await call;
    expect(isTimeoutError(error)).toBe(true);
    expect(error).toMatchObject({ phase: "total" });
  });

  it("a Request's own signal aborted while the second endpoint hangs: its reason, the upstream closed, outcome aborted", async () => {
    a.on(busy);
    b.on(hang);
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "b", url: `${b.base}/v1` },
    ]);
    const outcomes: string[] = [];
    layer.on("request", (event) => {
      outcomes.push(event.outcome);
    });
    const controller = new AbortController();
    const reason = new Error("caller gave up");
    const call = rejection(layer.fetch(new Request(`${a.base}/v1/x`, { signal: controller.signal })));
    const hit = await b.nth(1);
    controller.abort(reason);
    expect(await call).toBe(reason);
    await hit.closed;
    expect(outcomes).toEqual(["aborted"]);
    expect(layer.fallback.chain("j").statistics().fallbacks.b).toMatchObject({ calls: 0 });
  });
});

describe("transform, rebasing and redirects", () => {
  it("the transform sees the rebased URL, the caller's headers and body; what it sends keeps only its own", async () => {
    a.on(busy);
    b.on(json({ ok: true }));
    const seen: Array<{ url: string; auth: string | null; endpoint: string; body: unknown; method: string }> = [];
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1?key=K1` },
      {
        name: "b",
        url: `${b.base}/v2?key=K2`,
        headers: { "x-provider-key": "PROVIDER" },
        transform: (req) => {
          seen.push({
            url: req.url,
            auth: req.headers.get("authorization"),
            endpoint: req.endpoint,
            body: req.body,
            method: req.method,
          });
          req.headers.set("x-shape", "wan");
          return { ...req, body: { input: req.body } };
        },
      },
    ]);
    const res = await layer.fetch(`${a.base}/v1/jobs/7?key=K1&q=1`, {
      method: "PUT",
      headers: { authorization: "Bearer CALLER", "content-type": "application/json" },
      body: JSON.stringify({ prompt: "cat" }),
    });
    expect(res.status).toBe(200);
    expect(a.hits[0]?.path).toBe("/v1/jobs/7?key=K1&q=1");
    expect(seen).toEqual([
      {
        url: `${b.base}/v2/jobs/7?key=K2&q=1`,
        auth: "Bearer CALLER",
        endpoint: "b",
        body: { prompt: "cat" },
        method: "PUT",
      },
    ]);
    const sent = b.hits[0];
    expect(sent?.path).toBe("/v2/jobs/7?key=K2&q=1");
    expect(sent?.headers.authorization).toBeUndefined();
    expect(sent?.headers["x-shape"]).toBe("wan");
    expect(sent?.headers["x-provider-key"]).toBe("PROVIDER");
    expect(sent?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(sent?.body ?? "")).toEqual({ input: { prompt: "cat" } });
  });

  it("a redirect the second endpoint answers is followed: res.url where it ended, endpoint b", async () => {
    a.on(busy);
    b.on((hit) => {
      if (hit.path.startsWith("/v2/x")) hit.res.writeHead(307, { location: "/v2/moved" }).end();
      else json({ ok: true, at: hit.path })(hit);
    });
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1`, validate: schema },
      { name: "b", url: `${b.base}/v2`, validate: schema },
    ]);
    const res = await layer.fetch(new Request(`${a.base}/v1/x`));
    expect(await res.json()).toEqual({ ok: true, at: "/v2/moved" });
    expect(res.url).toBe(`${b.base}/v2/moved`);
    expect(res.redirected).toBe(true);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true });
  });

  it("a degradation rewrite comes before the chain: the transform reshapes the rewritten body", async () => {
    a.on(busy);
    b.on(json({ ok: true }));
    const received: unknown[] = [];
    const layer = createResilience({
      retry: false,
      degradation: degradation({ rules: [{ match: `${a.base}/v1`, params: { steps: "steps" } }] }),
      fallback: fallback([
        {
          name: "j",
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            {
              name: "b",
              url: `${b.base}/v2`,
              transform: (req) => {
                received.push(req.body);
                return { ...req, body: { parameters: { num_steps: req.body?.steps } } };
              },
            },
          ],
        },
      ]),
    });
    layer.degradation?.setLevel("medium");
    const res = await layer.fetch(`${a.base}/v1/gen`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ steps: 50, prompt: "cat" }),
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(a.hits[0]?.body ?? "")).toEqual({ steps: 30, prompt: "cat" });
    expect(received).toEqual([{ steps: 30, prompt: "cat" }]);
    expect(JSON.parse(b.hits[0]?.body ?? "")).toEqual({ parameters: { num_steps: 30 } });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", degradationLevel: "medium" });
  });
});

describe("the rest of the chain's promises", () => {
  it("the retry budget is shared: the first endpoint's retry spends the only token, the second goes once", async () => {
    a.on(busy);
    b.on(busy);
    const layer = createResilience({
      retry: { maxAttempts: 3, initialDelay: 0, maxDelay: 0, jitter: "none" },
      budget: { ratio: 1, minPerSecond: 0 },
      fallback: fallback([
        {
          name: "j",
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            { name: "b", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(503);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 3 });
    expect(a.hits.length).toBe(2);
    expect(b.hits.length).toBe(1);
  });

  for (const url of ["http://user@127.0.0.1:9/v2", "http://127.0.0.1:9/v2#part"]) {
    it(`fallback([…]) refuses ${url} with a ConfigError naming its path`, () => {
      const error = thrown(() =>
        fallback([
          {
            name: "j",
            endpoints: [
              { name: "a", url: "http://127.0.0.1:9/v1" },
              { name: "b", url },
            ],
          },
        ]),
      );
      expect(isConfigError(error)).toBe(true);
      expect((error as { path: string }).path).toBe("fallback.0.endpoints.1.url");
    });
  }
});
