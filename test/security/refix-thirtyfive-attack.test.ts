/**
 * Outside-in attack on the fixes of the fixes (commit "A chain whose endpoints were refused by the platform or passed
 * over rejects with the TypeError ..."): `FallbackChain.run`'s `uncounted`, a chain refused and passed over, inputs
 * that make text of themselves by `valueOf`/`Symbol.toPrimitive`, a `Request` of another realm, the browser build.
 * Docs: docs/retry.md "the call rejects with that `TypeError` (no retry, no attempt counted, the host's breaker and
 * the error rate hear nothing), through a chain too, once every endpoint was refused or passed over (its breaker
 * open), the chain's statistics counting none of it (an endpoint that answered before gives its answer, as in any
 * chain)"; "browsers drop them without a word (a page's build has no such check)"; "The input may be a string, a
 * `URL`, a `Request` (one of another realm, a same-origin iframe's, is copied into one of this realm, as fetch reads
 * it), or anything fetch turns into its URL text: a `String` object, a URL of another realm or library, any object
 * that makes text of itself (its `toString`, `valueOf` or `Symbol.toPrimitive`; one that throws rejects the call with
 * what it threw); a number, a boolean, `null`, or an object whose text would be `[object Object]` (a `{ url }` taken
 * for a `Request`) is refused with a `TypeError` naming what it got"; CHANGELOG.md Fixed ("is sent as fetch sends
 * it, and a `Request` of another realm … is taken as fetch takes it"); JSDoc of `ChainRunOptions.uncounted` ("the
 * run moves on as after any failure, but the entry's statistics do not count it, and a run that ends with no other
 * failure is not counted"); docs/fallback.md (a keyless POST "goes to the next endpoint only when it surely was not
 * processed"; statistics, `ordered()`, `health().fallback`).
 * How: `FallbackChain` (./policies) with `TestClock` (./testing); `createResilience`, `getResilienceInfo`,
 * `FallbackExhaustedError` (root), `fallback` (./fallback) against node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts), Node 22's own fetch refusing the headers and as the reference for inputs; the
 * browser build in Chromium (test/helpers/library-page.ts) with a same-origin iframe's `Request`.
 * Paths: `FallbackChain.run` (unhedged, hedged, `skip`, `moveOn` false, `heldBack`, adaptive, a throwing
 * `uncounted`); HTTP chain: refused + passed over + 503, refused + passed over only, refused + `respond` (answering,
 * throwing), refused + `transform` throwing, refused + `validate` rejecting, keyless POST, hedge refused by its
 * `transform`, adaptive order, refused + a half-open breaker with its probe slot taken; plain call with odd inputs
 * (Proxies, URL and Request subclasses, `Response`, frozen, null-prototype); iframe `Request` in Chromium with
 * bodies, used bodies, `init.body`/`init.signal`/`init.method`, aborted signals, keepalive; the browser build's
 * missing refusal check.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: only endpoints passed over join refused ones (1: the test now asserts the chain's error, the refusal at the send counted), inputs made text once as fetch makes it (URL subclasses too, no look at a Proxy's traps), a TypeError whatever a constructor getter does, a used foreign Request whose body init replaces):
 * 1. docs/retry.md "once every endpoint was refused or passed over (its breaker open), the chain's statistics
 *    counting none of it". Observed: first endpoint refused, the second's breaker half-open with its only probe slot
 *    taken (`halfOpenMaxCalls: 1`, a probe in flight): the call rejects with the platform's `TypeError` (the chain
 *    took the second endpoint as passed over), yet `statistics()`/`health().fallback` count the second endpoint as a
 *    failed call (`calls` 0 → 1, its success rate down, an adaptive order moved) and the run as failed
 *    (`overallSuccessRate` 1 → 0.5). Mechanism: `skipReason` passes over only `breaker.isOpen()`
 *    (src/fallback/try-endpoints.ts:299), so the endpoint is tried and its send rejects with `CircuitOpenError`,
 *    which `uncounted: platformRefused` (line 83) does not cover, so the chain records it; `served` (line 116)
 *    then accepts any `CircuitOpenError` as "passed over" and throws the `TypeError`.
 * 2. docs/retry.md "anything fetch turns into its URL text … any object that makes text of itself"; CHANGELOG "is
 *    sent as fetch sends it". Observed: an object behind a Proxy whose `has` trap throws (its `toString` gives a
 *    URL), which Node's fetch sends, rejects with the trap's error. Mechanism: `ownText` asks `"toString" in input`
 *    (src/http/resilient-fetch.ts:301); fetch only converts the value to a string.
 * 3. Same sentences. Observed: such an object behind a Proxy that throws on reading `Symbol.toStringTag`, which
 *    fetch sends, rejects with that error. Mechanism: `ownRequest` reads `Object.prototype.toString.call(input)` for
 *    every input that is not this realm's `Request` (src/http/resilient-fetch.ts:286), strings' wrappers and
 *    URL-like objects included.
 * 4. Same sentences ("The input may be … a `URL` … or anything fetch turns into its URL text"). Observed: a `URL`
 *    subclass whose `toString` gives another URL is sent to its `href` (fetch sends it to its `toString`; with a
 *    subclass overriding the `href` getter instead, the layer follows the getter and fetch the internal URL).
 *    Mechanism: `input instanceof URL ? input.href` (src/http/resilient-fetch.ts:104).
 * 5. docs/retry.md "an object whose text would be `[object Object]` (a `{ url }` taken for a `Request`) is refused
 *    with a `TypeError` naming what it got". Observed: a `{ url }` whose `constructor` getter throws rejects with
 *    that getter's `Error`, not a `TypeError` (fetch rejects with a `TypeError`). Mechanism: the message's
 *    `typeName` reads `value.constructor?.name` unguarded (src/http/resilient-fetch.ts:307).
 * 6. docs/retry.md "a `Request` (one of another realm, a same-origin iframe's, is copied into one of this realm, as
 *    fetch reads it)"; CHANGELOG "is taken as fetch takes it". Observed in Chromium: an iframe's `Request` whose
 *    body was read, called with `init.body` (which replaces it; fetch sends the new body), rejects with "Cannot
 *    construct a Request with a Request object that has already been used"; with its signal aborted too, fetch
 *    rejects with the abort reason, the layer with that `TypeError`. A used `Request` of this realm with `init.body`
 *    is sent. Mechanism: `ownRequest` copies the input by `new Request(input)` without `init`
 *    (src/http/resilient-fetch.ts:286), which refuses a used body before `init` can replace it.
 *
 * Held (plain `it`):
 * - `FallbackChain.run` with `uncounted`: an uncounted failure then a success leaves the entry's statistics at 0
 *   and the run a success (`onFallback` heard once); runs with only uncounted failures, beside `skip`ped entries or
 *   stopped by `moveOn` false, are not counted; a counted rejection beside one is; an adaptive order keeps an entry
 *   failing uncounted in place; hedged, an uncounted hedge is not counted, the next starts at once and a loser that
 *   ran is counted (`lost`); `heldBack` wins over `uncounted` beside a running entry (run again, then counted once);
 *   an `uncounted` that throws ends the run with its error and aborts the hedge beside it.
 * - HTTP chain: refused + passed over + 503 gives the 503 (refused and passed-over endpoints 0 calls, run counted,
 *   `health().fallback` equal to `statistics()`); refused + passed over only: the `TypeError` (undici's code),
 *   statistics and `debugInfo()` totals unchanged, nothing sent; refused + `respond`: its answer, and a throwing
 *   `respond`: `FallbackExhaustedError` counted for it only; refused + throwing `transform`: `FallbackExhaustedError`
 *   with both errors, counted once; refused + `validate` rejecting a 200: that answer; a keyless POST refused at the
 *   first endpoint moves on to the next; hedged, a hedge refused by its `transform` is uncounted, the slower loser
 *   counted, its host's breaker clean; adaptive order unchanged after six refused calls.
 * - Inputs (against Node's fetch): `Symbol.toPrimitive` giving a number and `valueOf` giving an object reject with
 *   a `TypeError`, a frozen object, `valueOf` alone on a null prototype and a hint-reading `Symbol.toPrimitive` are
 *   sent as fetch sends them; a `Response`, a `{ url }` tagged "Request" and `Object.create(null)` are refused with
 *   a `TypeError` (nothing sent); a Proxy of a `Request` and a `Request` subclass overriding `url` go where fetch
 *   sends them; a used `Request` of this realm with `init.body` is sent with that body.
 * - Chromium, iframe `Request`: a fresh body replaced by `init.body`, a used body refused, an aborted signal (and
 *   `init.signal` overriding it), `init.method`, keepalive, a `Blob` body and an abort after the call started all
 *   match the page's fetch.
 * - Chromium, browser build: a transport's `TypeError` with undici's refusal code is a network failure there
 *   (retried, each endpoint counted, `FallbackExhaustedError`), as "a page's build has no such check" says.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EndpointRequest, fallback, type TransformedRequest } from "../../src/fallback/index.ts";
import { createResilience, FallbackExhaustedError, getResilienceInfo } from "../../src/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { type LibraryPage, openLibraryPage, type PageLib } from "../helpers/library-page.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };

function codeOf(error: unknown): unknown {
  return (error as { cause?: { code?: unknown } }).cause?.code;
}

/** A TypeError as Node's fetch refuses a header with: undici's code in its cause. */
function refusal(): TypeError {
  return new TypeError("fetch failed", {
    cause: Object.assign(new Error("invalid keep-alive header"), { code: "UND_ERR_INVALID_ARG" }),
  });
}

const isRefusal = (error: unknown): boolean => codeOf(error) === "UND_ERR_INVALID_ARG";

/** Adds a header Node's fetch refuses to what an endpoint is sent. */
const refusedHeader = (req: EndpointRequest): TransformedRequest => {
  const headers = new Headers(req.headers);
  headers.set("keep-alive", "timeout=5");
  return { ...req, headers };
};

describe("FallbackChain.run's `uncounted` (./policies)", () => {
  it("an uncounted failure then a success: the entry's statistics untouched, the run a success", async () => {
    const chain = new FallbackChain<number, string>("u1", { clock: new TestClock() });
    chain.add(() => Promise.reject(refusal()), { name: "one" });
    chain.add(() => "two", { name: "two" });
    const fallbacks: unknown[] = [];
    const result = await chain.run(1, { uncounted: isRefusal, onFallback: (e) => fallbacks.push(e) });
    expect(result).toMatchObject({ ok: true, value: "two", name: "two", primary: false });
    expect(fallbacks).toHaveLength(1);
    const stats = chain.statistics();
    expect(stats.fallbacks.one).toMatchObject({ calls: 0, successes: 0 });
    expect(stats.fallbacks.two).toMatchObject({ calls: 1, successes: 1 });
    expect(stats.overallSuccessRate).toBe(1);
  });

  it("runs whose only failures were uncounted (with entries passed over, or stopped by moveOn) are not counted", async () => {
    const chain = new FallbackChain<number, string>("u2", { clock: new TestClock() });
    chain.add((n) => (n === 0 ? "ok" : Promise.reject(refusal())), { name: "one" });
    chain.add(() => "two", { name: "two" });
    expect((await chain.run(0)).ok).toBe(true);
    const only = await chain.run(1, {
      uncounted: isRefusal,
      skip: (name) => (name === "two" ? { reason: "circuit open", error: new Error("open") } : undefined),
    });
    expect(only).toMatchObject({ ok: false, tried: ["one", "two"] });
    const stopped = await chain.run(1, { uncounted: isRefusal, moveOn: () => false });
    expect(stopped).toMatchObject({ ok: false, tried: ["one"] });
    const stats = chain.statistics();
    expect(stats.overallSuccessRate).toBe(1);
    expect(stats.fallbacks.one).toMatchObject({ calls: 1, successes: 1 });
    expect(stats.fallbacks.two).toMatchObject({ calls: 0 });
    // A counted failure beside an uncounted one: the run is counted.
    const mixed = await chain.run(1, {
      uncounted: isRefusal,
      accept: (v) => (v === "two" ? "rejected" : undefined),
    });
    expect(mixed.ok).toBe(false);
    expect(chain.statistics().overallSuccessRate).toBe(0.5);
    expect(chain.statistics().fallbacks.one).toMatchObject({ calls: 1 });
    expect(chain.statistics().fallbacks.two).toMatchObject({ calls: 1, successes: 0 });
  });

  it("adaptive order: an entry that keeps failing uncounted keeps its place", async () => {
    const clock = new TestClock();
    const chain = new FallbackChain<number, string>("u3", { order: "adaptive", clock });
    chain.add(() => Promise.reject(refusal()), { name: "one" });
    chain.add(() => "two", { name: "two" });
    for (let i = 0; i < 10; i++) await chain.run(i, { uncounted: isRefusal });
    expect(chain.ordered()).toEqual(["one", "two"]);
    expect(chain.statistics().fallbacks.one).toMatchObject({ calls: 0 });
  });

  it("hedged: an uncounted hedge that failed beside a running entry is not counted; the next starts at once; a loser that ran is", async () => {
    const clock = new TestClock();
    const chain = new FallbackChain<number, string>("u4", { clock });
    let releaseOne: (v: string) => void = () => {};
    chain.add(
      () =>
        new Promise<string>((resolve) => {
          releaseOne = resolve;
        }),
      { name: "one" },
    );
    chain.add(() => Promise.reject(refusal()), { name: "two" });
    chain.add(
      (_, { signal }) =>
        new Promise<string>((_r, reject) => signal?.addEventListener("abort", () => reject(signal.reason))),
      { name: "three" },
    );
    const running = chain.run(1, { uncounted: isRefusal, hedgeDelay: 10 });
    await clock.advance(10);
    await Promise.resolve();
    await clock.advance(0);
    releaseOne("one");
    const result = await running;
    expect(result).toMatchObject({ ok: true, name: "one" });
    const stats = chain.statistics();
    expect(stats.fallbacks.two).toMatchObject({ calls: 0 });
    expect(stats.fallbacks.three).toMatchObject({ calls: 1, successes: 0 });
    expect(stats.fallbacks.one).toMatchObject({ calls: 1, successes: 1 });
  });

  it("heldBack wins over uncounted beside a running entry: the entry goes back in line and runs again", async () => {
    const chain = new FallbackChain<number, string>("u5");
    let calls = 0;
    const held = new Error("held");
    chain.add(() => new Promise<string>((_r, reject) => setTimeout(() => reject(new Error("slow fail")), 20)), {
      name: "one",
    });
    chain.add(() => (calls++ === 0 ? Promise.reject(held) : "two"), { name: "two" });
    const result = await chain.run(1, { uncounted: () => true, heldBack: (e) => e === held, hedgeDelay: 0 });
    expect(result).toMatchObject({ ok: true, name: "two" });
    expect(calls).toBe(2);
    expect(chain.statistics().fallbacks.two).toMatchObject({ calls: 1, successes: 1 });
  });

  it("an `uncounted` that throws ends the run with its error; a hedge running beside it is aborted", async () => {
    const chain = new FallbackChain<number, string>("u6");
    let aborted = false;
    chain.add(
      (_, { signal }) =>
        new Promise<string>(() =>
          signal?.addEventListener("abort", () => {
            aborted = true;
          }),
        ),
      { name: "one" },
    );
    chain.add(() => Promise.reject(refusal()), { name: "two" });
    const boom = new Error("predicate");
    const error = await rejection(
      chain.run(1, {
        uncounted: () => {
          throw boom;
        },
        hedgeDelay: 0,
      }),
    );
    expect(error).toBe(boom);
    expect(aborted).toBe(true);
  });
});

const rejectAll = {
  "~standard": { version: 1 as const, vendor: "t", validate: () => ({ issues: [{ message: "not that" }] }) },
};

/** A layer with one chain `c` on `a.base/v1`: `one` on a (same origin as the caller, gets the caller's headers), then `rest`. */
function chainLayer(rest: Parameters<typeof fallback>[0][number]["endpoints"], extra: Record<string, unknown> = {}) {
  return createResilience({
    retry: { ...fast, maxAttempts: 1 },
    breaker: { failureThreshold: 1 },
    fallback: fallback([{ name: "c", endpoints: [{ name: "one", url: `${a.base}/v1` }, ...rest], ...extra }]),
  });
}

describe("HTTP chain: refused endpoints beside others", () => {
  it("refused + passed over + 503: the 503 answer; the refused endpoint uncounted, the run counted", async () => {
    b.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("b down");
    });
    c.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("c down");
    });
    const layer = chainLayer([
      { name: "two", url: `${b.base}/v1` },
      { name: "three", url: `${c.base}/v1` },
    ]);
    // b's breaker opened by a plain call.
    await (await layer.fetch(`${b.base}/open`)).text();
    expect(layer.health().breakers[b.host]?.state).toBe("open");
    b.reset();
    const res = await layer.fetch(`${a.base}/v1/x`, { headers: { "keep-alive": "1" } });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("c down");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "three" });
    expect(a.hits).toHaveLength(0);
    expect(b.hits).toHaveLength(0);
    const stats = layer.fallback?.chain("c").statistics();
    expect(stats?.fallbacks.one).toMatchObject({ calls: 0 });
    expect(stats?.fallbacks.two).toMatchObject({ calls: 0 });
    expect(stats?.fallbacks.three).toMatchObject({ calls: 1, successes: 0 });
    expect(stats?.overallSuccessRate).toBe(0);
    expect(layer.health().fallback.c).toEqual(stats);
  });

  it("refused + passed over only: the TypeError; health().fallback and statistics hear nothing", async () => {
    b.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("b down");
    });
    const layer = chainLayer([{ name: "two", url: `${b.base}/v1` }]);
    await (await layer.fetch(`${b.base}/open`)).text();
    const before = structuredClone(layer.health().fallback.c);
    const totals = layer.debugInfo().totals;
    const error = await rejection(layer.fetch(`${a.base}/v1/x`, { headers: { upgrade: "h2c" } }));
    expect(error).toBeInstanceOf(TypeError);
    expect(codeOf(error)).toBe("UND_ERR_INVALID_ARG");
    expect(layer.health().fallback.c).toEqual(before);
    expect(layer.debugInfo().totals).toEqual(totals);
    expect(a.hits).toHaveLength(0);
  });

  it("refused + a respond endpoint: its answer; refused + respond that throws: FallbackExhaustedError, counted", async () => {
    let fail = false;
    const layer = chainLayer([
      {
        name: "cache",
        respond: () => {
          if (fail) throw new Error("cache miss");
          return new Response("cached");
        },
      },
    ]);
    const served = await layer.fetch(`${a.base}/v1/x`, { headers: { expect: "100-continue" } });
    expect(await served.text()).toBe("cached");
    fail = true;
    const error = await rejection(layer.fetch(`${a.base}/v1/x`, { headers: { expect: "100-continue" } }));
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    const stats = layer.fallback?.chain("c").statistics();
    expect(stats?.fallbacks.one).toMatchObject({ calls: 0 });
    expect(stats?.fallbacks.cache).toMatchObject({ calls: 2, successes: 1 });
    expect(stats?.overallSuccessRate).toBe(0.5);
  });

  it("refused + a transform that throws: FallbackExhaustedError naming both, counted once", async () => {
    const layer = chainLayer([
      {
        name: "two",
        url: `${b.base}/v1`,
        transform: () => {
          throw new Error("transform broke");
        },
      },
    ]);
    const error = await rejection(layer.fetch(`${a.base}/v1/x`, { headers: { "keep-alive": "1" } }));
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    const errors = (error as FallbackExhaustedError).errors as Record<string, unknown>;
    expect(errors.one).toBeInstanceOf(TypeError);
    expect((errors.two as Error).message).toContain("transform broke");
    const stats = layer.fallback?.chain("c").statistics();
    expect(stats?.fallbacks.one).toMatchObject({ calls: 0 });
    expect(stats?.fallbacks.two).toMatchObject({ calls: 1, successes: 0 });
    expect(stats?.overallSuccessRate).toBe(0);
  });

  it("refused + validate rejecting a 200: that answer, as in any chain", async () => {
    b.on((hit) => hit.res.writeHead(200, { "content-type": "application/json" }).end('{"bad":true}'));
    const layer = chainLayer([{ name: "two", url: `${b.base}/v1`, validate: rejectAll }]);
    const res = await layer.fetch(`${a.base}/v1/x`, { headers: { "keep-alive": "1" } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"bad":true}');
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "two" });
    expect(layer.fallback?.chain("c").statistics().fallbacks.one).toMatchObject({ calls: 0 });
  });

  it("a keyless POST refused at the first endpoint (nothing sent) moves on to the next", async () => {
    b.on((hit) => hit.res.end(`b:${hit.method}:${hit.body}`));
    const layer = chainLayer([{ name: "two", url: `${b.base}/v1` }]);
    const res = await layer.fetch(`${a.base}/v1/x`, { method: "POST", body: "job", headers: { "keep-alive": "1" } });
    expect(await res.text()).toBe("b:POST:job");
    expect(a.hits).toHaveLength(0);
  });

  it("hedged: a hedge refused by its transform is not counted; a loser that ran is; the winner served", async () => {
    a.on((hit) => setTimeout(() => hit.res.end("a slow"), 150));
    c.on((hit) => {
      const t = setTimeout(() => hit.res.end("c slower"), 2000);
      void hit.closed.then(() => clearTimeout(t));
    });
    const layer = chainLayer(
      [
        { name: "two", url: `${b.base}/v1`, transform: refusedHeader },
        { name: "three", url: `${c.base}/v1` },
      ],
      { hedge: { delay: 20 } },
    );
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(await res.text()).toBe("a slow");
    expect(b.hits).toHaveLength(0);
    const stats = layer.fallback?.chain("c").statistics();
    expect(stats?.fallbacks.one).toMatchObject({ calls: 1, successes: 1 });
    expect(stats?.fallbacks.two).toMatchObject({ calls: 0 });
    expect(stats?.fallbacks.three).toMatchObject({ calls: 1, successes: 0 });
    expect(layer.health().breakers[b.host]?.failureCount ?? 0).toBe(0);
  });

  it("adaptive order: an endpoint refused call after call keeps its place and its clean record", async () => {
    b.on((hit) => hit.res.end("b"));
    const layer = chainLayer([{ name: "two", url: `${b.base}/v1` }], { order: "adaptive" });
    for (let i = 0; i < 6; i++) {
      const res = await layer.fetch(`${a.base}/v1/x`, { headers: { "keep-alive": "1" } });
      expect(await res.text()).toBe("b");
    }
    expect(layer.fallback?.chain("c").ordered()).toEqual(["one", "two"]);
    expect(layer.fallback?.chain("c").statistics().fallbacks.one).toMatchObject({ calls: 0 });
  });
});

describe("HTTP chain: refused, then a breaker that refuses at the send", () => {
  it("refused + half-open with its probe slot taken: passed over, so the platform's TypeError, nothing counted", async () => {
    let hold: (() => void) | undefined;
    b.on((hit) => {
      if (hit.n === 1) {
        hit.res.statusCode = 503;
        hit.res.end("b down");
      } else hold = () => hit.res.end("b back");
    });
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 30, halfOpenMaxCalls: 1 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "one", url: `${a.base}/v1` },
            { name: "two", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    expect(await (await layer.fetch(`${a.base}/v1/ok`)).text()).toBe("ok");
    await (await layer.fetch(`${b.base}/open`)).text();
    expect(layer.health().breakers[b.host]?.state).toBe("open");
    await new Promise((done) => setTimeout(done, 40));
    // The probe: holds b's only half-open slot.
    const probe = layer.fetch(`${b.base}/probe`);
    await b.nth(2);
    const before = structuredClone(layer.health().fallback.c);
    const error = await rejection(layer.fetch(`${a.base}/v1/x`, { headers: { "keep-alive": "1" } }));
    hold?.();
    await (await probe).text();
    // Asserted here first as the chain's error with the refusal counted; since the forty-eighth session a
    // half-open breaker with every probe slot taken passes its endpoint over as an open one does
    // (docs/fallback.md), so, the other endpoint refused by the platform, the call rejects as a plain
    // call would, with fetch's TypeError, and nothing is counted.
    expect((error as Error).name).toBe("TypeError");
    const after = layer.health().fallback.c;
    expect([after?.fallbacks.one?.calls, after?.fallbacks.two?.calls]).toEqual([
      before?.fallbacks.one?.calls,
      before?.fallbacks.two?.calls,
    ]);
  });
});

/** What a call gives: the path the server saw, or the rejection's class and message. */
async function outcome(call: () => Promise<Response>): Promise<string> {
  try {
    const res = await call();
    return `sent ${await res.text()}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

/** The same input (made afresh for each) through Node's own fetch and through a plain layer. */
async function both(make: () => unknown, init?: () => RequestInit): Promise<{ fetch: string; layer: string }> {
  a.on((hit) => hit.res.end(`${hit.method} ${hit.path} ${hit.body}`));
  const layer = createResilience({ retry: { ...fast, maxAttempts: 1 } });
  return {
    fetch: await outcome(() => fetch(make() as string, init?.())),
    layer: await outcome(() => layer.fetch(make() as string, init?.())),
  };
}

describe("odd inputs, against Node's fetch", () => {
  it("held: Symbol.toPrimitive giving a number, valueOf giving an object, a frozen object, valueOf alone on a null prototype, a hint", async () => {
    const number = await both(() => Object.assign(Object.create(null), { [Symbol.toPrimitive]: () => 42 }));
    expect(number.fetch).toMatch(/^TypeError/);
    expect(number.layer).toMatch(/^TypeError/);
    const object = await both(() => Object.assign(Object.create(null), { valueOf: () => ({}) }));
    expect(object.layer).toBe(object.fetch);
    const frozen = await both(() => Object.freeze({ toString: () => `${a.base}/frozen` }));
    expect(frozen).toEqual({ fetch: "sent GET /frozen ", layer: "sent GET /frozen " });
    const viaValueOf = await both(() => Object.assign(Object.create(null), { valueOf: () => `${a.base}/v` }));
    expect(viaValueOf.layer).toBe("sent GET /v ");
    const hint = await both(() => ({ [Symbol.toPrimitive]: (h: string) => `${a.base}/${h}` }));
    expect(hint).toEqual({ fetch: "sent GET /string ", layer: "sent GET /string " });
  });

  it("held: a Response, a `{ url }` tagged Request, Object.create(null), a Proxy of a Request, a Request subclass", async () => {
    const response = await both(() => new Response("x"));
    expect(response.layer).toMatch(/^TypeError: .*got Response/);
    const tagged = await both(() => ({ [Symbol.toStringTag]: "Request", url: `${a.base}/fake` }));
    expect(tagged.layer).toMatch(/^TypeError/);
    expect(a.hits).toHaveLength(0);
    const bare = await both(() => Object.create(null));
    // Once written against "got object"; since the fixes of this file, fetch's own error for what cannot become text.
    expect(bare.layer).toBe(bare.fetch);
    expect(bare.layer).toMatch(/^TypeError/);
    const proxied = await both(() => new Proxy(new Request(`${a.base}/pr`), {}));
    expect(proxied).toEqual({ fetch: "sent GET /pr ", layer: "sent GET /pr " });
    class Sub extends Request {
      override get url(): string {
        return `${a.base}/sub-url`;
      }
    }
    const sub = await both(() => new Sub(`${a.base}/orig`));
    expect(sub).toEqual({ fetch: "sent GET /orig ", layer: "sent GET /orig " });
  });

  it("held: a used Request of this realm with init.body is sent with that body, as fetch sends it", async () => {
    const make = () => {
      const used = new Request(`${a.base}/used`, { method: "POST", body: "old" });
      void used.text();
      return used;
    };
    const out = await both(make, () => ({ body: "new" }));
    expect(out).toEqual({ fetch: "sent POST /used new", layer: "sent POST /used new" });
  });

  it("an object whose text comes through a Proxy with a throwing `has` trap is sent, as fetch sends it", async () => {
    const out = await both(
      () =>
        new Proxy(
          { toString: () => `${a.base}/proxy` },
          {
            has() {
              throw new Error("has trap");
            },
          },
        ),
    );
    expect(out.fetch).toBe("sent GET /proxy ");
    // Observed: "Error: has trap" (ownText asks `"toString" in input`, which fetch never does).
    expect(out.layer).toBe(out.fetch);
  });

  it("an object whose text comes through a Proxy that throws on reading Symbol.toStringTag is sent, as fetch sends it", async () => {
    const out = await both(
      () =>
        new Proxy(
          { toString: () => `${a.base}/tag` },
          {
            get(target, key) {
              if (key === Symbol.toStringTag) throw new Error("tag trap");
              return Reflect.get(target, key);
            },
          },
        ),
    );
    expect(out.fetch).toBe("sent GET /tag ");
    // Observed: "Error: tag trap" (ownRequest's Object.prototype.toString reads the tag of every input).
    expect(out.layer).toBe(out.fetch);
  });

  it("a URL subclass is sent where fetch sends it (its own toString)", async () => {
    class Moved extends URL {
      override toString(): string {
        return `${a.base}/to-string`;
      }
    }
    const out = await both(() => new Moved(`${a.base}/href`));
    expect(out.fetch).toBe("sent GET /to-string ");
    // Observed: "sent GET /href " (the layer reads `input.href` of anything `instanceof URL`).
    expect(out.layer).toBe(out.fetch);
  });

  it("an object whose text is [object Object] is refused with a TypeError, whatever its constructor getter does", async () => {
    const out = await both(() => ({
      url: `${a.base}/x`,
      get constructor(): never {
        throw new Error("constructor getter");
      },
    }));
    expect(out.fetch).toMatch(/^TypeError/);
    // Observed: "Error: constructor getter" (typeName reads `value.constructor?.name` for the message).
    expect(out.layer).toMatch(/^TypeError/);
  });
});

describe("Chromium (browser build): a Request of a same-origin iframe's realm", () => {
  let lp: LibraryPage;
  beforeAll(async () => {
    lp = await openLibraryPage((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => res.end(`${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`));
    });
  }, 60_000);
  afterAll(async () => {
    await lp?.close();
  });

  /** Each case through the page's fetch and through a plain layer, a fresh iframe Request each time. */
  function run(): Promise<Record<string, { native: string; layer: string }>> {
    return lp.page.evaluate(async () => {
      const { lib } = window as unknown as { lib: PageLib };
      const frame = document.createElement("iframe");
      document.body.append(frame);
      const realm = frame.contentWindow as unknown as typeof globalThis;
      const FrameRequest = realm.Request;
      const layer = lib.createResilience({ retry: { maxAttempts: 1 } });
      const show = async (call: () => Promise<Response>) => {
        try {
          const res = await call();
          return `${res.status} ${await res.text()}`;
        } catch (e) {
          return `${(e as Error).name}: ${(e as Error).message.replace(/^Failed to (execute 'fetch' on 'Window'|construct 'Request'): /, "")}`;
        }
      };
      const u = `${location.origin}/echo`;
      const cases: Record<string, () => Promise<[Request, RequestInit | undefined]>> = {
        usedWithInitBody: async () => {
          const r = new FrameRequest(`${u}/used`, { method: "POST", body: "old" });
          await r.text();
          return [r, { body: "new" }];
        },
        usedAbortedWithInitBody: async () => {
          const c = new realm.AbortController();
          const r = new FrameRequest(`${u}/abu`, { method: "POST", body: "old", signal: c.signal });
          await r.text();
          c.abort(new Error("why"));
          return [r, { body: "new" }];
        },
        used: async () => {
          const r = new FrameRequest(`${u}/used2`, { method: "POST", body: "old" });
          await r.text();
          return [r, undefined];
        },
        freshWithInitBody: async () => [
          new FrameRequest(`${u}/fresh`, { method: "POST", body: "old" }),
          { body: "new" },
        ],
        aborted: async () => {
          const c = new realm.AbortController();
          c.abort(new Error("why"));
          return [new FrameRequest(`${u}/ab`, { signal: c.signal }), undefined];
        },
        abortedInitSignal: async () => {
          const c = new realm.AbortController();
          c.abort(new Error("why"));
          return [new FrameRequest(`${u}/ab2`, { signal: c.signal }), { signal: new AbortController().signal }];
        },
        initMethod: async () => [new FrameRequest(`${u}/m`), { method: "PUT", body: "z" }],
        keepalive: async () => [new FrameRequest(`${u}/ka`, { keepalive: true, method: "POST", body: "k" }), undefined],
        blob: async () => [
          new FrameRequest(`${u}/blob`, { method: "POST", body: new realm.Blob(["blob!"]) }),
          undefined,
        ],
      };
      const out: Record<string, { native: string; layer: string }> = {};
      for (const [name, make] of Object.entries(cases)) {
        const [n, ni] = await make();
        const native = await show(() => fetch(n, ni));
        const [l, li] = await make();
        out[name] = { native, layer: await show(() => layer.fetch(l, li)) };
      }
      // Aborted after the call started: both reject with the reason.
      for (const name of ["native", "layer"] as const) {
        const c = new realm.AbortController();
        const r = new FrameRequest(`${u}/late`, { signal: c.signal });
        const p = show(() => (name === "native" ? fetch(r) : layer.fetch(r)));
        c.abort(new Error("late"));
        out.late = { ...(out.late ?? { native: "", layer: "" }), [name]: await p };
      }
      frame.remove();
      return out;
    });
  }

  let results: Promise<Record<string, { native: string; layer: string }>> | undefined;
  const results$ = () => {
    results ??= run();
    return results;
  };

  it("held: fresh body replaced by init.body, used body refused alike, aborted signals, init.signal, method, keepalive, Blob, a later abort", async () => {
    const out = await results$();
    for (const name of [
      "freshWithInitBody",
      "used",
      "aborted",
      "abortedInitSignal",
      "initMethod",
      "keepalive",
      "blob",
      "late",
    ])
      expect([name, out[name]?.layer]).toEqual([name, out[name]?.native]);
    expect(out.freshWithInitBody?.native).toBe("200 POST /echo/fresh new");
    expect(out.used?.native).toMatch(/^TypeError/);
    expect(out.aborted?.native).toBe("Error: why");
    expect(out.late?.native).toBe("Error: late");
  }, 60_000);

  it("a used iframe Request whose body init.body replaces is sent with that body, as fetch sends it", async () => {
    const out = await results$();
    expect(out.usedWithInitBody?.native).toBe("200 POST /echo/used new");
    expect(out.usedAbortedWithInitBody?.native).toBe("Error: why");
    // Observed: "TypeError: Cannot construct a Request with a Request object that has already been used." for both
    // (ownRequest copies the input with `new Request(input)` before it looks at init).
    expect(out.usedWithInitBody?.layer).toBe(out.usedWithInitBody?.native);
    expect(out.usedAbortedWithInitBody?.layer).toBe(out.usedAbortedWithInitBody?.native);
  }, 60_000);
});

describe("Chromium (browser build): no refusal check", () => {
  let lp: LibraryPage;
  beforeAll(async () => {
    lp = await openLibraryPage((_req, res) => {
      res.end("ok");
    });
  }, 60_000);
  afterAll(async () => {
    await lp?.close();
  });

  it("held: a transport's TypeError with undici's refusal code is a network failure there: retried, counted by the chain", async () => {
    const out = await lp.page.evaluate(async () => {
      const { lib } = window as unknown as { lib: PageLib };
      let calls = 0;
      const refusing = () => {
        calls++;
        return Promise.reject(new TypeError("refused", { cause: { code: "UND_ERR_INVALID_ARG" } }));
      };
      const layer = lib.createResilience({
        fetch: refusing,
        retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1, jitter: "none" },
        fallback: lib.fallback([
          {
            name: "c",
            endpoints: [
              { name: "one", url: `${location.origin}/v1` },
              { name: "two", url: `${location.origin}/v2` },
            ],
          },
        ]),
      });
      let error: unknown;
      try {
        await layer.fetch(`${location.origin}/v1/x`);
      } catch (e) {
        error = e;
      }
      const stats = layer.fallback?.chain("c").statistics();
      return { calls, name: (error as Error).name, one: stats?.fallbacks.one?.calls, rate: stats?.overallSuccessRate };
    });
    expect(out).toEqual({ calls: 4, name: "FallbackExhaustedError", one: 1, rate: 0 });
  }, 60_000);
});
