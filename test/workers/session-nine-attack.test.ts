/**
 * Session nine: an outside-in attack, in real workerd, on today's Workers
 * changes (`git log -p 675268f..HEAD -- src/cloudflare src/stores src/core
 * src/http docs/cloudflare.md`). Only the BUILT package is used (run `npm run
 * build` first). Upstreams are Miniflare's outbound service (vitest.config.ts)
 * or a stub through the layer's `fetch` option. Two stores made fresh stand
 * for two isolates (they share only the KV binding).
 *
 * Attacked: kvStore's held write (real timers inside waitUntil after the
 * response, a trip soon after the last write, read by a second store); the
 * proxy's hop headers both ways, proxy-authorization / forwarded /
 * x-client-ip / cf-* / x-forwarded-*; a degraded POST carrying the client's
 * content-length through workerd's fetch; a data: URL; a Request's cache
 * field and integrity on a redirect the library follows; workerd errors
 * quoting URLs.
 *
 * DEFECT (an `it.fails` on the code it was written against; fixed):
 * 1. kvStore: a transition held while the previous write waits its jitter is
 *    held a second time when the interval ends, and that second wait goes to
 *    the last request bound (a later one, already finished), not to the
 *    waitUntil of the call that made it.
 *
 * Questionable, not pinned (the docs are silent):
 * - workerd refuses `redirect: "error"` outright ("won't be implemented") and
 *   any non-empty `integrity` when the library does not follow (`redirect:
 *   "manual"`; `redirects: "platform"` would send it the same way): the
 *   platform's TypeError was retried as a network error and counted against
 *   a healthy host's breaker, on every such call. Such calls now fail at
 *   once (test/workers/platform-fields.test.ts).
 * - With `redirect: "follow"` the library checks `integrity` itself in
 *   workerd, where workerd's own fetch refuses the field: a call that would
 *   throw with plain fetch succeeds (or fails on a mismatch) through the layer.
 * - `fetch("ftp://h/?key=…")` in workerd is reported by the runtime as an
 *   unhandled rejection quoting the whole URL even when the caller catches it
 *   (plain fetch too): the library's error, cause and events are cut, but
 *   that platform report is not the library's to cut. (Not tested here: the
 *   report fails the vitest run.)
 * - kvStore skips a re-trip as "remote already open" when the remote open's
 *   openUntil is within 1 s of the new one, even if that remote hold has
 *   already ended (only with a breaker timeout under ~1 s).
 *
 * Held: the held write's real timer fires inside waitUntil after the
 * response and lands within minPublishInterval + publishJitter; a second
 * store reads it; hop and client headers stripped both ways; a degraded POST
 * with the client's content-length reaches workerd's fetch without it and the
 * upstream gets the rewritten body whole (workerd's fetch itself accepts a
 * mismatched content-length: it sends the body it has); data: URLs pass untouched; cache:
 * no-store on each hop; authorization dropped across origins; integrity
 * checked on the final answer (unpadded base64 accepted, a mismatch rejects).
 */

import { env } from "cloudflare:test";
import { createResilience, type StoreEvent } from "@storycore/resilient-fetch";
import { type KvNamespaceLike, kvStore, resilientProxy } from "@storycore/resilient-fetch/cloudflare";
import { degradation } from "@storycore/resilient-fetch/degradation";
import { describe, expect, it } from "vitest";
import { recordingCtx } from "./recording-ctx.ts";

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
interface ProxyEnv {
  BREAKERS: KvNamespaceLike;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The real KV binding, every put recorded with the time it landed. */
function recordingKv() {
  const puts: Array<{ at: number; key: string; metadata: { s: string; u: number | null; w: number } }> = [];
  const kv: KvNamespaceLike = {
    getWithMetadata: (key, options) => env.BREAKERS.getWithMetadata(key, options),
    async put(key, value, options) {
      await env.BREAKERS.put(key, value, options);
      puts.push({ at: Date.now(), key, metadata: options?.metadata as never });
    },
  };
  return { kv, puts };
}

/** An upstream whose answer the test switches. */
function switchable() {
  const state = { status: 503, headers: {} as Record<string, string>, calls: 0 };
  const fetch: Fetch = async () => {
    state.calls++;
    return new Response(state.status === 200 ? "ok" : "down", { status: state.status, headers: state.headers });
  };
  return { state, fetch };
}

const request = (path: string, init?: RequestInit) => new Request(`https://proxy.example${path}`, init);

describe("kvStore in workerd: a held transition is written when the interval ends", () => {
  const kvProxy = (scope: string, kv: KvNamespaceLike, fetch: Fetch, jitter: number, events: StoreEvent[]) =>
    resilientProxy<ProxyEnv>({
      routes: [{ path: "/v1", upstream: `https://${scope}.example/v1` }],
      resilience: {
        retry: { maxAttempts: 1, maxRetryAfter: 1_000 },
        breaker: { failureThreshold: 1, successThreshold: 1, halfOpenMaxCalls: 1, timeout: 50 },
        fetch,
      },
      store: () => {
        const store = kvStore(kv, {
          scope,
          minPublishInterval: 1_000,
          publishJitter: jitter,
          random: () => 0.999,
          refreshInterval: 1_000,
        });
        store.connect?.((e) => events.push(e));
        return store;
      },
    });

  it("control: a reopen 100 ms after the trip's write lands inside its own call's waitUntil, within minPublishInterval + publishJitter, and another isolate's store reads it", async () => {
    const { kv, puts } = recordingKv();
    const up = switchable();
    const events: StoreEvent[] = [];
    const proxy = kvProxy("held-a", kv, up.fetch, 0, events);
    const p = recordingCtx();
    expect((await proxy.fetch(request("/v1/x"), env, p.ctx)).status).toBe(503); // the trip, written at once
    await p.settle();
    expect(puts.map((w) => w.metadata.s)).toEqual(["open"]);
    await sleep(100); // past the breaker's 50 ms: half-open
    up.state.headers = { "retry-after": "3" }; // the probe fails with a 3 s hold: a trip KV does not know yet
    const a = recordingCtx();
    const tripAt = Date.now();
    expect((await proxy.fetch(request("/v1/x"), env, a.ctx)).status).toBe(503);
    await a.settle();
    expect(puts.map((w) => w.metadata.s)).toEqual(["open", "open"]);
    const held = puts[1];
    expect((held?.at ?? 0) - tripAt).toBeLessThanOrEqual(1_000 + 0 + 150);
    expect(held?.metadata.u ?? 0).toBeGreaterThanOrEqual(tripAt + 2_500);
    // Another isolate's store (its own map, same namespace and scope) reads it at first use.
    const other = recordingCtx();
    const b = kvStore(env.BREAKERS, { scope: "held-a", ctx: other.ctx });
    expect(b.peek("held-a.example", Date.now())).toBeUndefined();
    await other.settle();
    expect(b.peek("held-a.example", Date.now())?.openUntil).toBe(held?.metadata.u);
  });

  /**
   * docs/cloudflare.md: "a transition the interval holds back is written when
   * the interval ends, without a second jitter (the latest one, inside the
   * `waitUntil` of the call that made it), so a trip reaches KV at most
   * `minPublishInterval` + `publishJitter` after it, even if the isolate never
   * calls that host again".
   *
   * Request P trips the host; its write waits its jitter (300 ms). Request A,
   * 100 ms later, re-trips it (a probe answered 503 with Retry-After 3): held,
   * its write scheduled in A's waitUntil for when P's interval ends (T0 +
   * 1000). Request B (the health endpoint) comes and goes. P's write lands at
   * T0 + 300 and moves the interval's start there, so at T0 + 1000 A's task
   * holds the trip again: `admit` starts a fresh `background.run`, which goes
   * to the contexts bound at that moment, none, so to the LAST one bound
   * (src/stores/background.ts `run`: `this.#last`), B's, a request that had
   * answered and been waited on. A's waitUntil ends with the trip unwritten.
   */
  it("a trip held during the previous write's jitter is written inside the waitUntil of the call that made it (not a later, finished request's)", async () => {
    const { kv, puts } = recordingKv();
    const up = switchable();
    const events: StoreEvent[] = [];
    const proxy = kvProxy("held-b", kv, up.fetch, 300, events);
    const p = recordingCtx();
    expect((await proxy.fetch(request("/v1/x"), env, p.ctx)).status).toBe(503); // the trip; its write waits 300 ms
    await sleep(100); // past the breaker's 50 ms: half-open
    up.state.headers = { "retry-after": "3" };
    const a = recordingCtx();
    const tripAt = Date.now();
    expect((await proxy.fetch(request("/v1/x"), env, a.ctx)).status).toBe(503); // A's trip: held
    const b = recordingCtx();
    const health = await proxy.fetch(
      request("/__resilience/health", { headers: { authorization: "Bearer test-token" } }),
      env,
      b.ctx,
    );
    expect(health.status).toBe(200);
    await b.settle();
    expect(b.promises).toHaveLength(0); // B started no background work of its own
    await a.settle();
    const writtenInA = puts.map((w) => w.metadata.w);
    await p.settle();
    await b.settle();
    const late = puts.find((w) => w.metadata.u !== null && w.metadata.u >= tripAt + 2_500);
    expect(late, "A's trip reached KV at last").toBeDefined();
    expect((late?.at ?? 0) - tripAt).toBeLessThanOrEqual(1_000 + 300 + 150); // the documented bound holds
    expect(b.promises, "nothing went to B's waitUntil").toHaveLength(0);
    // What the docs promise: it was written before A's waitUntil ended.
    expect(writtenInA).toContain(late?.metadata.w);
  });
});

describe("resilientProxy in workerd: headers and bodies", () => {
  it("control: the headers connection names, proxy-authorization, forwarded and x-client-ip never reach workerd's fetch; the upstream's connection-named headers never reach the client", async () => {
    const sent: Array<Record<string, string>> = [];
    const proxy = resilientProxy<ProxyEnv>({
      routes: [{ path: "/v1", upstream: "https://hop.conformance/echo/hop" }],
      resilience: {
        retry: false,
        fetch: async (input, init) => {
          const outgoing = new Request(input as RequestInfo, init);
          sent.push(Object.fromEntries(outgoing.headers));
          const answer = await fetch(outgoing); // workerd's own fetch, to Miniflare's outbound service
          return new Response(answer.body, {
            status: answer.status,
            headers: { connection: "X-Up , keep-alive", "x-up": "secret", "keep-alive": "timeout=5", "x-end": "2" },
          });
        },
      },
    });
    const res = await proxy.fetch(
      request("/v1/a", {
        headers: {
          connection: "x-hop,  X-Other",
          "x-hop": "1",
          "x-other": "2",
          "x-kept": "3",
          "proxy-authorization": "Basic c2VjcmV0",
          forwarded: "for=203.0.113.7",
          "x-client-ip": "203.0.113.7",
          "cf-connecting-ip": "203.0.113.7",
          "x-forwarded-for": "203.0.113.7",
        },
      }),
      env,
      recordingCtx().ctx,
    );
    expect(res.status).toBe(200);
    expect(Object.keys(sent[0] ?? {}).sort()).toEqual(["x-kept"]);
    expect(res.headers.get("x-up")).toBeNull();
    expect(res.headers.get("connection")).toBeNull();
    expect(res.headers.get("keep-alive")).toBeNull();
    expect(res.headers.get("x-end")).toBe("2");
    expect(res.headers.get("x-resilience-attempts")).toBe("1");
  });

  it("control: a degraded POST with the client's content-length reaches the upstream rewritten, whole, through workerd's fetch", async () => {
    const seen: Array<{ length: string | null; body: string }> = [];
    let n = 0;
    const proxy = resilientProxy<ProxyEnv>({
      routes: [{ path: "/v1", upstream: "https://degrade.conformance/echo/deg" }],
      resilience: {
        retry: false,
        degradation: degradation({ minSamples: 1, triggers: { errorRate: 0.5 } }),
        fetch: async (input, init) => {
          n++;
          const outgoing = new Request(input as RequestInfo, init);
          seen.push({ length: outgoing.headers.get("content-length"), body: await outgoing.clone().text() });
          if (n === 1) return new Response("busy", { status: 503 });
          return fetch(outgoing);
        },
      },
    });
    const body = JSON.stringify({ prompt: "a cat", resolution: "1080p", steps: 50 });
    const post = () =>
      proxy.fetch(
        request("/v1/gen", {
          method: "POST",
          headers: { "content-type": "application/json", "content-length": String(body.length) },
          body,
        }),
        env,
        recordingCtx().ctx,
      );
    expect((await post()).status).toBe(503); // the level steps down to "high"
    const res = await post();
    expect(res.status).toBe(200);
    expect(res.headers.get("x-degradation-level")).toBe("high");
    const echoed = await res.text();
    expect(echoed).toContain('"720p"');
    expect(echoed).toBe(seen[1]?.body);
    expect(seen[1]?.length).not.toBe(String(body.length));
  });
});

describe("the layer in workerd: data: URLs, a Request's own fields on a followed redirect, integrity, errors", () => {
  it("control: a data: URL goes to workerd's fetch as it is: no breaker, no event", async () => {
    const events: unknown[] = [];
    const resilience = createResilience({ retry: false });
    resilience.on("request", (e) => events.push(e));
    const res = await resilience.fetch("data:text/plain;base64,aGk=");
    expect(await res.text()).toBe("hi");
    expect(resilience.health().breakers).toEqual({});
    expect(events).toEqual([]);
  });

  it("control: a Request with cache: no-store, redirected by the upstream, is followed by the library in workerd (workerd accepts the field on each hop)", async () => {
    const resilience = createResilience({ retry: false });
    const redirects: unknown[] = [];
    resilience.on("redirect", (e) => redirects.push(e));
    const res = await resilience.fetch(
      new Request("https://from.conformance/redirect/s9a?to=https://to.conformance/auth/s9a", {
        cache: "no-store",
        headers: { authorization: "Bearer secret" },
      }),
    );
    expect(res.status).toBe(200);
    expect(res.redirected).toBe(true);
    expect(res.url).toBe("https://to.conformance/auth/s9a");
    expect(((await res.json()) as { authorization: string | null }).authorization).toBeNull();
    expect(redirects).toHaveLength(1);
  });

  it("control: integrity, which workerd's own fetch refuses, is checked by the library on the final answer of a followed redirect", async () => {
    const empty = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array()))));
    // workerd: "Subrequest integrity checking is not implemented."
    expect(() => new Request("https://x.conformance/echo/s9b", { integrity: `sha256-${empty}` })).toThrow(TypeError);
    const resilience = createResilience({ retry: false });
    const url = "https://from.conformance/redirect/s9b?to=https://to.conformance/echo/s9b";
    const ok = await resilience.fetch(url, { integrity: `sha256-${empty.replace(/=+$/, "")}` });
    expect(ok.status).toBe(200);
    expect(ok.redirected).toBe(true);
    await expect(resilience.fetch(url, { integrity: "sha256-AAAA" })).rejects.toMatchObject({
      name: "RetryExhaustedError",
      cause: { name: "TypeError" },
    });
  });
});
