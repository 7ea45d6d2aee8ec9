/**
 * Outside-in attack on fallback chains. Docs: docs/fallback.md (move-on rule "Moving on follows the rule of a
 * retry", `FallbackExhaustedError` and its `errors`, "Credentials never cross origins" with redirects, "Each network
 * endpoint runs its own retry loop", an abort / `timeout.total` across hedges, `statistics()`), docs/retry.md
 * (#idempotency: "only when it surely was not processed … or when it never reached the server"), docs/cloudflare.md
 * (a chain route "as timed out when every endpoint it tried timed out"), the ky client's JSDoc.
 * How: public entries only (root, `./fallback`, `./cloudflare`, `./ky`, `./testing`'s TestClock); a scripted
 * transport (the layer's `fetch` option) whose waits run on the TestClock; no sleeps.
 * Paths: plain chain, hedged chain, `respond` and `transform` endpoints, redirects the library follows inside an
 * endpoint, a `Request` input with a replayable body, the ky client, `resilientProxy` chain routes.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a respond that throws sent nothing, so the chain moves on):
 * 1. docs/fallback.md "Moving on follows the rule of a retry (see [idempotency](retry.md#idempotency)): a POST
 *    without an `Idempotency-Key` goes to the next endpoint only when it surely was not processed (429, 503,
 *    connection refused, DNS or TLS failure, an open breaker)", with docs/retry.md "… only when it surely was not
 *    processed: on 429 and 503 (the server declined the work), or when it never reached the server", and
 *    docs/fallback.md "`respond(req)` answers without the network (a cache, a placeholder)". Chain `a` (url) →
 *    `cache` (respond) → `c` (url); a keyless POST: `a` answers 503 (declined, so the chain moves on), `cache`
 *    throws (a cache miss: nothing was sent anywhere). Observed: the chain ends at `cache`; `c`, healthy, is never
 *    sent the job and the call resolves with `a`'s 503 (and with `a` refused instead, it rejects with
 *    `FallbackExhaustedError` "stopped after "cache", which may have processed the request"). A `transform` that
 *    throws at the same place moves on (held, below). Cause: src/fallback/try-endpoints.ts `mayMoveOn` knows only
 *    `neverSent` errors (held back, or a failed `transform`); a `respond` endpoint's error goes to `maySendAgain`,
 *    which reads it as a failure after sending.
 *
 * Held (plain `it`):
 * - a `transform` that throws on a keyless POST moves on (its endpoint "sends nothing");
 * - every endpoint failing with a network error: `FallbackExhaustedError` (`chain`, `errors` per endpoint, `cause`
 *   the last endpoint's error), each endpoint retried `maxAttempts` times, the URLs quoted by the platform's errors
 *   (caller's `?secret=`, the first endpoint's own `?key=`) cut from message, `errors`, causes and stack; the
 *   caller's `authorization` only to the origin it addressed, the spare its own key, the third endpoint neither;
 * - a hedged chain under `timeout.total`: `TimeoutError` (phase total, attempts 3 across endpoints), every
 *   endpoint's request aborted, no TestClock timer left, no unhandled rejection, no endpoint counted;
 * - redirects inside a chain: the primary's own `x-api-key` is not sent to a third origin its 307 names; the
 *   spare's own `authorization` goes on to a hop on its own origin; the caller's never reaches the spare;
 * - a replayable `PUT` body is hedged to the spare, bytes intact, through a `Request` input, the ky client and a
 *   `resilientProxy` chain route (which names the endpoint and the 2 attempts in its headers);
 * - `resilientProxy`: a chain route whose every endpoint timed out (`timeout.attempt`) answers 504.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isFallbackExhaustedError,
  isTimeoutError,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

/** Waits `ms` on the TestClock; rejects with the signal's reason when aborted. */
function wait(clock: TestClock, ms: number, signal?: AbortSignal | null): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const cancel = clock.setTimer(resolve, ms);
    signal?.addEventListener("abort", () => {
      cancel();
      reject(signal.reason);
    });
  });
}

type Script = (request: Request, clock: TestClock) => Promise<Response>;

/** A transport on `clock` answering by `script`, logging each request (method, URL, auth headers, body). */
function transport(clock: TestClock, script: Script) {
  const log: string[] = [];
  const signals: AbortSignal[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const body = request.body ? await request.clone().text() : "";
    const auth = request.headers.get("authorization");
    const key = request.headers.get("x-api-key");
    log.push(`${request.method} ${request.url} @${clock.now()} auth=${auth} key=${key}${body ? ` body=${body}` : ""}`);
    signals.push(request.signal);
    return script(request, clock);
  };
  return { fetch, log, signals };
}

const host = (request: Request): string => new URL(request.url).host;

/** A thrown value's every reachable text: message, stack, `errors` and causes, five deep. */
function texts(error: unknown, depth = 0): string {
  if (typeof error !== "object" || error === null || depth > 5) return String(error);
  const e = error as { message?: unknown; stack?: unknown; cause?: unknown; errors?: unknown };
  const inner = e.errors && typeof e.errors === "object" ? Object.values(e.errors as object) : [];
  return [String(e.message), String(e.stack), texts(e.cause, depth + 1), ...inner.map((x) => texts(x, depth + 1))].join(
    "\n",
  );
}

describe("moving on after an endpoint that never reached a server", () => {
  function layer(middle: "respond" | "transform") {
    const clock = new TestClock(0);
    const { fetch, log } = transport(clock, async (request) =>
      host(request) === "a.test" ? new Response("busy", { status: 503 }) : new Response("served by c"),
    );
    const cacheMiss = (): never => {
      throw new Error("cache miss");
    };
    const resilience = createResilience({
      clock,
      retry: false,
      fetch,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.test/v1" },
            middle === "respond"
              ? { name: "cache", respond: cacheMiss }
              : { name: "cache", url: "https://b.test/v2", transform: cacheMiss },
            { name: "c", url: "https://c.test/v3" },
          ],
        },
      ]),
    });
    const call = clock.run(
      resilience.fetch("https://a.test/v1/jobs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"prompt":"x"}',
      }),
    );
    return { call, log };
  }

  // docs/fallback.md: "a `transform` that fails sends nothing, so the chain may move on".
  it("held: a keyless POST moves on past a `transform` that throws (its endpoint was sent nothing)", async () => {
    const { call, log } = layer("transform");
    const res = await call;
    expect(await res.text()).toBe("served by c");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "c", fromFallback: true });
    expect(log.map((line) => line.split(" @")[0])).toEqual([
      "POST https://a.test/v1/jobs",
      "POST https://c.test/v3/jobs",
    ]);
  });

  // docs/fallback.md: "a POST without an `Idempotency-Key` goes to the next endpoint only when it surely was not
  // processed (429, 503, connection refused, DNS or TLS failure, an open breaker)"; docs/retry.md: "only when it
  // surely was not processed: on 429 and 503 (the server declined the work), or when it never reached the server";
  // docs/fallback.md: "`respond(req)` answers without the network (a cache, a placeholder)".
  it('1. docs/fallback.md "goes to the next endpoint only when it surely was not processed" + "`respond(req)` answers without the network": a keyless POST declined by `a` (503) and missed by a `respond` cache goes on to `c`', async () => {
    const { call, log } = layer("respond");
    const res = await call;
    // Observed: the chain ends at "cache"; the call resolves with a's 503 and c is never sent the job.
    expect(log.map((line) => line.split(" @")[0])).toEqual([
      "POST https://a.test/v1/jobs",
      "POST https://c.test/v3/jobs",
    ]);
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "c", fromFallback: true });
  });
});

describe("when every endpoint fails", () => {
  it("FallbackExhaustedError: errors per endpoint, cause the last, each endpoint its own retries, URLs cut, credentials per endpoint", async () => {
    const clock = new TestClock(0);
    const { fetch, log } = transport(clock, async (request) => {
      // A platform that quotes the URL, query and all (Deno's does), in the message and in a cause.
      throw new TypeError(`error sending request for url (${request.url}): connection refused`, {
        cause: new Error(`connect ${request.url}`),
      });
    });
    const resilience = createResilience({
      clock,
      fetch,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.test/v1?key=OWN_KEY" },
            { name: "b", url: "https://b.test/v2", headers: { authorization: "Bearer SPARE_KEY" } },
            { name: "c", url: "https://c.test/v3" },
          ],
        },
      ]),
    });
    const { value: error, unhandled } = await watchUnhandled(() =>
      clock
        .run(
          resilience.fetch("https://a.test/v1/x?secret=CALLER_SECRET", { headers: { authorization: "Bearer MINE" } }),
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        ),
    );
    expect(unhandled).toEqual([]);
    expect(isFallbackExhaustedError(error)).toBe(true);
    if (!isFallbackExhaustedError(error)) return;
    expect(error.chain).toBe("gen");
    expect(Object.keys(error.errors)).toEqual(["a", "b", "c"]);
    expect(error.cause).toBe(error.errors.c);
    const all = texts(error);
    expect(all).not.toContain("CALLER_SECRET");
    expect(all).not.toContain("OWN_KEY");
    expect(all).toContain("https://c.test/v3/x");
    // Two attempts per endpoint; the caller's credential only to the origin it addressed.
    expect(log).toEqual([
      "GET https://a.test/v1/x?key=OWN_KEY&secret=CALLER_SECRET @0 auth=Bearer MINE key=null",
      "GET https://a.test/v1/x?key=OWN_KEY&secret=CALLER_SECRET @10 auth=Bearer MINE key=null",
      "GET https://b.test/v2/x?secret=CALLER_SECRET @10 auth=Bearer SPARE_KEY key=null",
      "GET https://b.test/v2/x?secret=CALLER_SECRET @20 auth=Bearer SPARE_KEY key=null",
      "GET https://c.test/v3/x?secret=CALLER_SECRET @20 auth=null key=null",
      "GET https://c.test/v3/x?secret=CALLER_SECRET @30 auth=null key=null",
    ]);
    expect(clock.pending()).toBe(0);
  });

  it("hedged under timeout.total: TimeoutError, every request aborted, no timer left, nothing counted", async () => {
    const clock = new TestClock(0);
    const { fetch, log, signals } = transport(clock, async (request, clock) => {
      await wait(clock, 100_000, request.signal);
      return new Response("late");
    });
    const resilience = createResilience({
      clock,
      fetch,
      retry: false,
      timeout: { total: 500 },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 100 },
          endpoints: [
            { name: "a", url: "https://a.test/v1" },
            { name: "b", url: "https://b.test/v2" },
            { name: "c", url: "https://c.test/v3" },
          ],
        },
      ]),
    });
    const { value: error, unhandled } = await watchUnhandled(() =>
      clock.run(resilience.fetch("https://a.test/v1/x")).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(unhandled).toEqual([]);
    expect(isTimeoutError(error)).toBe(true);
    expect(error).toMatchObject({ phase: "total", timeout: 500, attempts: 3 });
    expect(log.map((line) => line.split(" auth")[0])).toEqual([
      "GET https://a.test/v1/x @0",
      "GET https://b.test/v2/x @100",
      "GET https://c.test/v3/x @200",
    ]);
    expect(signals.map((s) => s.aborted)).toEqual([true, true, true]);
    expect(clock.pending()).toBe(0);
    const stats = resilience.fallback.chain("gen").statistics();
    expect(Object.values(stats.fallbacks).map((s) => s.calls)).toEqual([0, 0, 0]);
  });
});

describe("redirects inside a chain", () => {
  it("the primary's own key stays off a third origin; the spare's own key follows its own origin's hop; the caller's never reaches the spare", async () => {
    const clock = new TestClock(0);
    const { fetch, log } = transport(clock, async (request) => {
      const url = new URL(request.url);
      if (url.host === "a.test") return new Response(null, { status: 307, headers: { location: "https://c.test/x" } });
      if (url.host === "c.test") return new Response("down", { status: 503 });
      if (url.pathname === "/v2/x") return new Response(null, { status: 307, headers: { location: "/v2/y" } });
      return new Response("spare");
    });
    const resilience = createResilience({
      clock,
      retry: false,
      fetch,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.test/v1", headers: { "x-api-key": "PRIMARY_KEY" } },
            { name: "b", url: "https://b.test/v2", headers: { authorization: "Bearer SPARE_KEY" } },
          ],
        },
      ]),
    });
    const res = await clock.run(resilience.fetch("https://a.test/v1/x", { headers: { authorization: "Bearer MINE" } }));
    expect(await res.text()).toBe("spare");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 2 });
    expect(log).toEqual([
      "GET https://a.test/v1/x @0 auth=Bearer MINE key=PRIMARY_KEY",
      "GET https://c.test/x @0 auth=null key=null",
      "GET https://b.test/v2/x @0 auth=Bearer SPARE_KEY key=null",
      "GET https://b.test/v2/y @0 auth=Bearer SPARE_KEY key=null",
    ]);
  });
});

describe("a replayable body is hedged on every path", () => {
  const chain = {
    name: "gen",
    hedge: { delay: 100 },
    endpoints: [
      { name: "a", url: "https://a.test/v1" },
      { name: "b", url: "https://b.test/v2" },
    ],
  };
  const slowPrimary: Script = async (request, clock) => {
    if (host(request) === "a.test") {
      await wait(clock, 10_000, request.signal);
      return new Response("a");
    }
    return new Response("b");
  };
  const expected = ['PUT https://a.test/v1/x @0 body={"p":1}', 'PUT https://b.test/v2/x @100 body={"p":1}'];
  const strip = (log: string[]) => log.map((line) => line.replace(/ auth=\S+ key=\S+/, ""));
  const base = (clock: TestClock, fetch: ResilienceOptions["fetch"]): ResilienceOptions => ({
    clock,
    retry: false,
    fetch,
  });

  it("a `Request` input, the ky client and a resilientProxy chain route", async () => {
    // A Request input.
    {
      const clock = new TestClock(0);
      const { fetch, log } = transport(clock, slowPrimary);
      const resilience = createResilience({ ...base(clock, fetch), fallback: fallback([chain]) });
      const req = new Request("https://a.test/v1/x", { method: "PUT", body: '{"p":1}' });
      const res = await clock.run(resilience.fetch(req));
      expect(await res.text()).toBe("b");
      expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 2 });
      expect(strip(log)).toEqual(expected);
      expect(clock.pending()).toBe(0);
    }
    // The ky client.
    {
      const clock = new TestClock(0);
      const { fetch, log } = transport(clock, slowPrimary);
      const resilience = createResilience({ ...base(clock, fetch), fallback: fallback([chain]) });
      const api = createClient({ resilience, prefix: "https://a.test/v1" });
      expect(await clock.run(api.put("x", { json: { p: 1 } }).text())).toBe("b");
      expect(strip(log)).toEqual(expected);
    }
    // A resilientProxy chain route.
    {
      const clock = new TestClock(0);
      const { fetch, log } = transport(clock, slowPrimary);
      const proxy = resilientProxy({ routes: [{ path: "/v1", chain }], resilience: base(clock, fetch) });
      const incoming = new Request("https://worker.test/v1/x", { method: "PUT", body: '{"p":1}' });
      const res = await clock.run(proxy.fetch(incoming, {}, { waitUntil: () => {} }));
      expect(await res.text()).toBe("b");
      expect(res.headers.get("x-resilience-endpoint")).toBe("b");
      expect(res.headers.get("x-resilience-attempts")).toBe("2");
      expect(strip(log)).toEqual(expected);
    }
  });
});

describe("resilientProxy chain route", () => {
  // docs/cloudflare.md: "… and as timed out when every endpoint it tried timed out and the rest were open".
  it("answers 504 when every endpoint timed out (timeout.attempt, each retried)", async () => {
    const clock = new TestClock(0);
    const { fetch, log } = transport(clock, async (request, clock) => {
      await wait(clock, 100_000, request.signal);
      return new Response("late");
    });
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "gen",
            endpoints: [
              { name: "a", url: "https://a.test/v1" },
              { name: "b", url: "https://b.test/v2" },
            ],
          },
        },
      ],
      resilience: {
        clock,
        fetch,
        retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
        timeout: { attempt: 100 },
      },
    });
    const res = await clock.run(proxy.fetch(new Request("https://worker.test/v1/x"), {}, { waitUntil: () => {} }));
    expect(res.status).toBe(504);
    expect(log).toHaveLength(4);
    expect(clock.pending()).toBe(0);
  });
});
