/**
 * Outside-in attack on the latest changes (a chain no longer answers an earlier endpoint's 503 after a later one
 * may have processed a keyless POST; a `validate`-turned-down answer given piped on, its clone kept until
 * released; `redactUrl` cutting a URL percent-encoded into a call's URL; `keepWhile`) as they run in workerd.
 * Docs: docs/fallback.md "or rejects with `FallbackExhaustedError` (`errors` per endpoint) if none gave one, or if
 * an endpoint tried after it may have processed a request that is not safe to send twice (a keyless POST whose
 * connection dropped once it went out: the earlier answer, a 503 say, would tell you or a layer around this one to
 * send it again)"; "`validate` reads at most `maxReplayBytes` of the body, within `timeout.attempt` (else what is
 * left of `timeout.total`, else 30 s): a body that stalls or never ends fails validation"; "An abort, or
 * `timeout.total` passing, rejects the call with the caller's reason or the `TimeoutError` even when an earlier
 * endpoint's answer was turned down …; that answer, like every answer not returned (…, a body that failed
 * `validate`), is released"; "When every endpoint failed, the call resolves with the last response any endpoint
 * gave". docs/cloudflare.md (`resilientProxy`) "answers … `502` when no endpoint answered otherwise … (its own
 * 502, 503 and 504 carry none of the three)". docs/retry.md "the signal such a call hands its transport follows
 * yours after the call settled, as fetch's own does, so aborting then still cancels a body being read … a page's
 * build uses the browser's own `AbortSignal.any`, and workerd's too"; "the layer also stops listening when a call
 * settles, but for one listener it keeps on a signal it links a timeout or a hedge to, however many calls that
 * signal serves"; docs/options.md `timeout.total` "for the whole call up to its response headers". SECURITY.md
 * "No secret in events, errors, `health()` or `debugInfo()`" ("a URL percent-encoded into text, `https%3A%2F%2F…`,
 * is cut as a plain one, up to three times encoded"; "a platform error that quotes the URL has it cut").
 * How: inside workerd (`@cloudflare/vitest-plugin`, project `workers`): `createResilience`, `getResilienceInfo`
 * (root), `fallback` (./fallback), `resilientProxy` (./cloudflare) driven with `createExecutionContext`; upstreams
 * scripted through the layer's `fetch` option (hand-fed bodies that follow the attempt's signal as workerd's own
 * do; workerd's own error wording "Network connection lost.", "Invalid URL: …"), and workerd's real fetch through
 * Miniflare's outbound service (the conformance upstream's `stream` route, whose second chunk waits for `__heal`).
 * Unhandled rejections are counted from workerd's `process` events: reported and not followed by
 * `rejectionHandled` (workerd reports a rejection at once, even of a promise adopted a turn later, then says it
 * was handled; Vitest's listeners are set aside while each test runs).
 * Paths: chain (keyless POST: plain init, `Request` input, three endpoints, an endpoint's own retry ending in a
 * reset, an attempt timeout; keyed POST as control), `resilientProxy` chain route, `validate` (too slow, too
 * large; next endpoint hanging under abort / `timeout.total`; given as the last answer; abort before and mid-read),
 * plain call with `timeout.total` / `timeout.attempt`, hedged chain, a library-followed redirect.
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - keyless POST, a 503 then b "Network connection lost." (or b's retry after a 429 reset, or b's attempt
 *   timeout): rejects with `FallbackExhaustedError` "stopped after \"b\", which may have processed the request (the
 *   answer \"a\" gave before it is not returned …)", `errors` a and b, b sent once, c never; keyed, a's 503 is
 *   given (endpoint a); through `resilientProxy` (retry 3) the client gets the proxy's own 502
 *   `{"error":"upstream unavailable"}` without `x-resilience-*` / `x-degradation-level`, b sent once.
 * - `validate` turning a body down: an abort while b hangs rejects with the caller's reason (same object), a
 *   `timeout.total` there with `TimeoutError`, a's body released either way, nothing unhandled; given as the last
 *   answer (too slow, too large): status, `statusText`, headers, `url`, `redirected`, `getResilienceInfo` endpoint
 *   and every byte; an abort mid-read rejects the read with the caller's reason and errors the source; an abort
 *   before reading leaves nothing unhandled; over workerd's real fetch the piped answer keeps the real `url` and
 *   headers, reads whole after the stall, and an abort mid-read rejects at once; through the proxy the client reads
 *   it whole with `x-resilience-endpoint`, and a client cancelling mid-read cancels the upstream's body.
 *   (workerd itself reports "Stream was cancelled." twice, handled or not, whenever a native body's pending read
 *   is cancelled: a plain `fetch` with `clone()` does the same; over the real fetch those are the only reports.)
 * - redaction: a callback URL percent-encoded (once, twice) into the call's path is cut from `retry`, `fallback`
 *   and `request` events, `debugInfo()` and `health()`; a `RetryExhaustedError` over "Network connection lost."
 *   carries no password or key; invalid URLs (port 99999, `http://[::1/…`, userinfo with a bad host) are a
 *   `TypeError` at once, nothing sent, no breaker, no secret; workerd's "Invalid URL: v1/cb/…?key=…" from its own
 *   `Request` constructor is cut; an aborted call rejects with the caller's reason, workerd's own `AbortError`
 *   ("The operation was aborted") when none was given; a library-followed redirect to such a path is cut in the
 *   `redirect` event.
 * - linked signal (workerd's `AbortSignal.any`): one caller's signal over 400 calls with `timeout.total` and
 *   `timeout.attempt`, half through a hedged chain, holds at most one `abort` listener, and still aborts the next
 *   call; an abort after the response cancels the body being read with the caller's reason (plain, total, chain),
 *   also on workerd's real fetch; `timeout.total` and `timeout.attempt` passing after the headers cut nothing.
 */

import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  FallbackExhaustedError,
  getResilienceInfo,
  type ResilienceOptions,
  TimeoutError,
} from "../../src/index.ts";

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

const urlOf = (input: RequestInfo | URL): string => (input instanceof Request ? input.url : String(input));
const signalOf = (input: RequestInfo | URL, init?: RequestInit): AbortSignal | undefined =>
  init?.signal ?? (input instanceof Request ? input.signal : undefined);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** An upstream that never answers, and rejects with the abort reason when its attempt is aborted. */
const hang: Fetch = (input, init) =>
  new Promise<Response>((_, reject) => {
    const signal = signalOf(input, init);
    signal?.addEventListener("abort", () => reject(signal.reason));
  });

/**
 * A body the test feeds by hand that follows the attempt's signal as workerd's own fetch body does
 * (errors with the signal's reason), and says whether it was cancelled.
 */
function handFed(signal?: AbortSignal) {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const state = { cancelled: false as boolean, errored: null as unknown };
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      state.cancelled = true;
    },
  });
  signal?.addEventListener("abort", () => {
    state.errored = signal.reason;
    try {
      controller.error(signal.reason);
    } catch {}
  });
  return {
    stream,
    state,
    push: (text: string | Uint8Array) => controller.enqueue(typeof text === "string" ? encoder.encode(text) : text),
    close: () => controller.close(),
  };
}

/**
 * Unhandled rejections, as workerd reports them. workerd reports a rejection at once, even of a promise that
 * gets its handler a turn later (an `async` function returning another's rejected promise), then says
 * `rejectionHandled`: only promises still unhandled then count. Vitest's own `process` listeners are set aside
 * while a test runs (its report would fail the run) and put back after.
 */
interface NodeLikeProcess {
  listeners(name: string): Array<(...args: unknown[]) => void>;
  on(name: string, listener: (...args: unknown[]) => void): void;
  off(name: string, listener: (...args: unknown[]) => void): void;
}
const pending = new Map<unknown, unknown>();
/** The reasons of the rejections still unhandled, after a few turns. */
const unhandled = async (): Promise<string[]> => {
  await sleep(30);
  return [...pending.values()].map(String);
};
let restore: (() => void) | undefined;
beforeEach(() => {
  pending.clear();
  const proc = (globalThis as { process?: NodeLikeProcess }).process;
  const saved = proc?.listeners("unhandledRejection") ?? [];
  const savedHandled = proc?.listeners("rejectionHandled") ?? [];
  const report = (reason: unknown, promise: unknown) => pending.set(promise, reason);
  const handled = (promise: unknown) => pending.delete(promise);
  for (const l of saved) proc?.off("unhandledRejection", l);
  for (const l of savedHandled) proc?.off("rejectionHandled", l);
  proc?.on("unhandledRejection", report);
  proc?.on("rejectionHandled", handled);
  restore = () => {
    proc?.off("unhandledRejection", report);
    proc?.off("rejectionHandled", handled);
    for (const l of saved) proc?.on("unhandledRejection", l);
    for (const l of savedHandled) proc?.on("rejectionHandled", l);
  };
});
afterEach(() => restore?.());

const chainOf = (endpoints: Array<Record<string, unknown>>, name = "gen") =>
  fallback([{ name, endpoints: endpoints as never }]);

/** Every event the layer emits, as JSON text. */
function recordEvents(layer: ReturnType<typeof createResilience>) {
  const seen: string[] = [];
  for (const name of ["retry", "request", "breaker", "fallback", "replay", "redirect"] as const) {
    layer.on(name, (event: unknown) => seen.push(`${name} ${JSON.stringify(event)}`));
  }
  return seen;
}

const schema = {
  "~standard": { version: 1 as const, vendor: "t", validate: (value: unknown) => ({ value }) },
};

const dec = new TextDecoder();
const heal = (host: string, id: string) => fetch(`https://${host}/__heal/${id}?route=stream`).then((r) => r.text());

const keylessChain = (fetch: Fetch, extra: Partial<ResilienceOptions> = {}) =>
  createResilience({
    retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1, jitter: "none" },
    fetch,
    fallback: chainOf([
      { name: "a", url: "https://a.example/v1" },
      { name: "b", url: "https://b.example/v1" },
    ]),
    ...extra,
  });

/** a answers 503, b fails as `bFails` says, after the request went out. */
function aBusyB(bFails: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>) {
  const sent: string[] = [];
  const fetch: Fetch = async (input, init) => {
    const url = urlOf(input);
    sent.push(`${input instanceof Request ? input.method : (init?.method ?? "GET")} ${url}`);
    if (url.startsWith("https://a.example")) return new Response("busy", { status: 503 });
    return bFails(input, init);
  };
  return { sent, fetch };
}

const lost = async (): Promise<Response> => {
  throw new TypeError("Network connection lost.");
};

describe("1. a keyless POST: 503, then a network error after the request went out", () => {
  it("plain init: rejects with FallbackExhaustedError, stopped after b, which may have processed it", async () => {
    const { sent, fetch } = aBusyB(lost);
    const r = keylessChain(fetch);
    const error = (await r.fetch("https://a.example/v1/jobs", { method: "POST", body: "{}" }).catch((e) => e)) as Error;
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(error.message).toMatch(/stopped after "b", which may have processed the request/);
    expect(Object.keys((error as FallbackExhaustedError).errors)).toEqual(["a", "b"]);
    expect(sent.filter((s) => s.includes("b.example"))).toHaveLength(1);
    expect(await unhandled()).toEqual([]);
  });

  it("a Request input, three endpoints (a 503, b 429, c connection lost), b's own retry ending in a reset", async () => {
    const sent: string[] = [];
    let bCalls = 0;
    const r = createResilience({
      retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1, jitter: "none" },
      fetch: async (input) => {
        const url = urlOf(input);
        sent.push(url);
        if (url.startsWith("https://a.example")) return new Response("busy", { status: 503 });
        if (url.startsWith("https://b.example")) {
          bCalls++;
          if (bCalls === 1) return new Response("slow down", { status: 429 });
          throw new TypeError("Network connection lost.");
        }
        throw new TypeError("Network connection lost.");
      },
      fallback: chainOf([
        { name: "a", url: "https://a.example/v1" },
        { name: "b", url: "https://b.example/v1" },
        { name: "c", url: "https://c.example/v1" },
      ]),
    });
    const error = (await r
      .fetch(new Request("https://a.example/v1/jobs", { method: "POST", body: "{}" }))
      .catch((e) => e)) as Error;
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    // b's retry after its 429 was reset: b gave no answer, a's 503 is not returned.
    expect(error.message).toMatch(/stopped after "b", which may have processed the request/);
    expect(sent.some((s) => s.startsWith("https://c.example"))).toBe(false);
  });

  it("b's attempt timeout (the request may have been processed) stops the chain too; a keyed POST gets a's 503", async () => {
    const { fetch } = aBusyB(hang);
    const r = keylessChain(fetch, { timeout: { attempt: 30 } });
    const error = (await r.fetch("https://a.example/v1/jobs", { method: "POST", body: "{}" }).catch((e) => e)) as Error;
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect((error as FallbackExhaustedError).errors.b).toBeInstanceOf(TimeoutError);
    // Keyed: moving on was safe, and a's 503 (declined) is given.
    const keyed = aBusyB(lost);
    const k = keylessChain(keyed.fetch);
    const res = await k.fetch("https://a.example/v1/jobs", {
      method: "POST",
      body: "{}",
      headers: { "idempotency-key": "k1" },
    });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("busy");
    expect(getResilienceInfo(res)?.endpoint).toBe("a");
  });

  it("resilientProxy: the client gets the proxy's own 502 (docs/cloudflare.md), never a's 503, and nothing is sent again", async () => {
    const { sent, fetch } = aBusyB(lost);
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "gen",
            endpoints: [
              { name: "a", url: "https://a.example/v1" },
              { name: "b", url: "https://b.example/v1" },
            ],
          },
        },
      ],
      resilience: { retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 1, jitter: "none" }, fetch },
    });
    const ctx = createExecutionContext();
    const res = await proxy.fetch(
      new Request("https://proxy.example/v1/jobs", { method: "POST", body: '{"prompt":"x"}' }),
      env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ error: "upstream unavailable" });
    for (const h of ["x-resilience-endpoint", "x-resilience-attempts", "x-degradation-level"]) {
      expect(res.headers.get(h)).toBeNull();
    }
    expect(sent.filter((s) => s.includes("b.example"))).toEqual(["POST https://b.example/v1/jobs"]);
  });
});

/** A transport whose answers are hand-fed JSON bodies that follow the attempt's signal. */
function stalling(first = '{"ok":') {
  const bodies: ReturnType<typeof handFed>[] = [];
  const fetch: Fetch = async (input, init) => {
    if (urlOf(input).startsWith("https://b.example")) return hang(input, init);
    const body = handFed(signalOf(input, init));
    bodies.push(body);
    body.push(first);
    const res = new Response(body.stream, {
      status: 200,
      statusText: "Fine",
      headers: { "content-type": "application/json", "x-up": "1" },
    });
    Object.defineProperty(res, "url", { value: urlOf(input) });
    return res;
  };
  return { bodies, fetch };
}

const validating = (fetch: Fetch, two: boolean, extra: Partial<ResilienceOptions> = {}) =>
  createResilience({
    retry: false,
    fetch,
    fallback: chainOf([
      { name: "a", url: "https://a.example/v1", validate: schema },
      ...(two ? [{ name: "b", url: "https://b.example/v1" }] : []),
    ]),
    ...extra,
  });

describe("2. validate turns down a slow or large body", () => {
  it("the caller aborts while the chain waits on b: rejects with its reason, a's body released, nothing unhandled", async () => {
    const { bodies, fetch } = stalling();
    const r = validating(fetch, true, { timeout: { attempt: 40 } });
    const controller = new AbortController();
    const reason = new Error("caller gone");
    const call = r.fetch("https://a.example/v1/jobs", { signal: controller.signal });
    await sleep(80); // a turned down at 40 ms, b hanging
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    await sleep(5);
    expect(bodies[0]?.state.cancelled || bodies[0]?.state.errored !== null).toBe(true);
    expect(await unhandled()).toEqual([]);
  });

  it("timeout.total passes while the chain waits on b (a too large): TimeoutError, a's body released, nothing unhandled", async () => {
    // a too large (past maxReplayBytes at once), b hanging until the total passes.
    const { bodies, fetch } = stalling(`[${"1,".repeat(600)}`);
    const r = validating(fetch, true, { timeout: { total: 60 }, maxReplayBytes: 1024 });
    const error = await r.fetch("https://a.example/v1/jobs").catch((e) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    await sleep(5);
    expect(bodies[0]?.state.cancelled || bodies[0]?.state.errored !== null).toBe(true);
    expect(await unhandled()).toEqual([]);
  });

  it("too slow, given as the chain's last answer: status, headers, url, info, the body whole", async () => {
    const { bodies, fetch } = stalling();
    const r = validating(fetch, false, { timeout: { attempt: 40 } });
    const res = await r.fetch("https://a.example/v1/jobs?x=1");
    expect(res.status).toBe(200);
    expect(res.statusText).toBe("Fine");
    expect(res.headers.get("x-up")).toBe("1");
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.url).toBe("https://a.example/v1/jobs?x=1");
    expect(res.redirected).toBe(false);
    expect(getResilienceInfo(res)?.endpoint).toBe("a");
    bodies[0]?.push("1}");
    bodies[0]?.close();
    expect(await res.text()).toBe('{"ok":1}');
    expect(await unhandled()).toEqual([]);
  });

  it("too large (past maxReplayBytes), given as the last answer: every byte arrives", async () => {
    const { bodies, fetch } = stalling("[");
    const r = validating(fetch, false, { maxReplayBytes: 1024 });
    const call = r.fetch("https://a.example/v1/jobs");
    await sleep(5);
    const chunk = `${"1,".repeat(500)}`;
    for (let i = 0; i < 4; i++) bodies[0]?.push(chunk);
    const res = await call;
    bodies[0]?.push("1]");
    bodies[0]?.close();
    const text = await res.text();
    expect(text.length).toBe(1 + 4 * chunk.length + 2);
    expect(JSON.parse(text)).toHaveLength(2001);
    expect(await unhandled()).toEqual([]);
  });

  it("the caller aborts mid-read of the given answer: the read rejects with its reason, the source goes", async () => {
    const { bodies, fetch } = stalling();
    const r = validating(fetch, false, { timeout: { attempt: 40 } });
    const controller = new AbortController();
    const res = await r.fetch("https://a.example/v1/jobs", { signal: controller.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(dec.decode((await reader.read()).value)).toBe('{"ok":');
    const reason = new Error("caller gone");
    controller.abort(reason);
    await expect(reader.read()).rejects.toBe(reason);
    expect(bodies[0]?.state.errored).toBe(reason);
    expect(await unhandled()).toEqual([]);
  });

  it("the caller aborts before reading the given answer: nothing unhandled, the source goes", async () => {
    const { bodies, fetch } = stalling();
    const r = validating(fetch, false, { timeout: { attempt: 40 } });
    const controller = new AbortController();
    const res = await r.fetch("https://a.example/v1/jobs", { signal: controller.signal });
    controller.abort(new Error("caller gone"));
    await sleep(5);
    expect(bodies[0]?.state.errored).toBeInstanceOf(Error);
    await expect(res.text()).rejects.toThrow("caller gone");
    expect(await unhandled()).toEqual([]);
  });

  it("workerd's own fetch (Miniflare upstream): the given answer keeps the real url and headers, the body whole after it stalled", async () => {
    const id = `v${Date.now()}`;
    const r = createResilience({
      retry: false,
      timeout: { attempt: 60 },
      fallback: chainOf([{ name: "a", url: "https://v.conformance/stream", validate: schema }]),
    });
    const res = await r.fetch(`https://v.conformance/stream/${id}?x=1`);
    expect(res.status).toBe(200);
    expect(res.url).toBe(`https://v.conformance/stream/${id}?x=1`);
    expect(res.headers.get("content-type")).toBe("text/plain");
    await heal("v.conformance", id);
    expect(await res.text()).toBe("chunk-1;chunk-2");
    // workerd itself reports "Stream was cancelled." twice when a native body's pending read is cancelled,
    // even when that read is handled (a plain fetch does the same): the clone validate stopped reading.
    expect((await unhandled()).every((t) => t === "Error: Stream was cancelled.")).toBe(true);
  });

  it("workerd's own fetch: aborting mid-read of the given answer rejects the read at once", async () => {
    const id = `w${Date.now()}`;
    const r = createResilience({
      retry: false,
      timeout: { attempt: 60 },
      fallback: chainOf([{ name: "a", url: "https://v.conformance/stream", validate: schema }]),
    });
    const controller = new AbortController();
    const res = await r.fetch(`https://v.conformance/stream/${id}`, { signal: controller.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(dec.decode((await reader.read()).value)).toBe("chunk-1;");
    controller.abort(new Error("caller gone"));
    const t0 = Date.now();
    await expect(reader.read()).rejects.toThrow("caller gone");
    expect(Date.now() - t0).toBeLessThan(500);
    await heal("v.conformance", id);
  });

  it("resilientProxy: a chain route's turned-down answer reaches the client whole, with its headers", async () => {
    const { bodies, fetch } = stalling();
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: { name: "gen", endpoints: [{ name: "a", url: "https://a.example/v1", validate: schema }] },
        },
      ],
      resilience: { retry: false, timeout: { attempt: 40 }, fetch },
    });
    const ctx = createExecutionContext();
    const res = await proxy.fetch(new Request("https://proxy.example/v1/jobs"), env, ctx);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-up")).toBe("1");
    expect(res.headers.get("x-resilience-endpoint")).toBe("a");
    bodies[0]?.push("2}");
    bodies[0]?.close();
    expect(await res.text()).toBe('{"ok":2}');
    await waitOnExecutionContext(ctx);
    expect(await unhandled()).toEqual([]);
  });

  it("resilientProxy: a client that cancels the turned-down answer mid-read cancels the upstream's body", async () => {
    const { bodies, fetch } = stalling();
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: { name: "gen", endpoints: [{ name: "a", url: "https://a.example/v1", validate: schema }] },
        },
      ],
      resilience: { retry: false, timeout: { attempt: 40 }, fetch },
    });
    const ctx = createExecutionContext();
    const res = await proxy.fetch(new Request("https://proxy.example/v1/jobs"), env, ctx);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(dec.decode((await reader.read()).value)).toBe('{"ok":');
    await reader.cancel(new Error("client gone"));
    await sleep(10);
    expect(bodies[0]?.state.cancelled).toBe(true);
    await waitOnExecutionContext(ctx);
    expect(await unhandled()).toEqual([]);
  });
});

/** A callback URL percent-encoded into a call's path, as `encodeURIComponent` writes it: password and key. */
const ENCODED = encodeURIComponent("https://u:PASSWD@h.example/x?key=SECRETK");
const leaks = (text: string) => /PASSWD|SECRETK/.test(text);

describe("3. redaction of a URL percent-encoded into the call's URL, and workerd's own wording", () => {
  it("retry events, the fallback event and debugInfo() cut it (once and twice encoded)", async () => {
    for (const path of [`/cb/${ENCODED}`, `/cb/${encodeURIComponent(ENCODED)}`]) {
      const r = createResilience({
        retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1, jitter: "none" },
        fetch: async (input) =>
          urlOf(input).startsWith("https://a.example")
            ? new Response("busy", { status: 503 })
            : new Response("ok", { status: 200 }),
        fallback: chainOf([
          { name: "a", url: "https://a.example/v1" },
          { name: "b", url: "https://b.example/v1" },
        ]),
      });
      const events = recordEvents(r);
      const res = await r.fetch(`https://a.example/v1${path}`);
      expect(res.status).toBe(200);
      expect(events.some((e) => e.startsWith("retry"))).toBe(true);
      expect(events.some((e) => e.startsWith("fallback"))).toBe(true);
      const text = [...events, JSON.stringify(r.debugInfo()), JSON.stringify(r.health())].join("\n");
      expect(leaks(text)).toBe(false);
    }
  });

  it("a network error with workerd's wording: RetryExhaustedError and the events carry no password or key", async () => {
    const r = createResilience({
      retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1, jitter: "none" },
      fetch: async () => {
        throw new TypeError("Network connection lost.");
      },
    });
    const events = recordEvents(r);
    const error = (await r.fetch(`https://api.example/cb/${ENCODED}?key=SECRETK`).catch((e) => e)) as Error;
    expect(error.name).toBe("RetryExhaustedError");
    const text = [error.message, error.stack, String(error.cause), ...events, JSON.stringify(r.debugInfo())].join("\n");
    expect(leaks(text)).toBe(false);
  });

  it("an invalid URL (workerd's parser: 'Invalid URL string.' / fetch: 'Invalid URL: …'): a TypeError at once, nothing sent, no secret", async () => {
    let sent = 0;
    const r = createResilience({
      fetch: async () => {
        sent++;
        return new Response("ok");
      },
    });
    for (const url of [
      `https://api.example:99999/cb/${ENCODED}?key=SECRETK`,
      `http://[::1/cb/${ENCODED}?key=SECRETK`,
      `https://u:PASSWD@[bad/x?key=SECRETK`,
    ]) {
      const error = (await r.fetch(url).catch((e) => e)) as Error;
      expect(error).toBeInstanceOf(TypeError);
      expect(leaks([error.message, error.stack, String(error.cause)].join("\n"))).toBe(false);
    }
    expect(sent).toBe(0);
    expect(r.health().breakers).toEqual({});
  });

  it("a Request workerd's own Request constructor refused, thrown by the transport ('Invalid URL: …'): no secret in the error", async () => {
    const r = createResilience({
      retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1, jitter: "none" },
      // workerd's own words for a URL it cannot parse, quoting it whole, from a transport that rewrites the URL.
      fetch: async () => new Request(`v1/cb/${ENCODED}?key=SECRETK`) as never,
    });
    const events = recordEvents(r);
    const error = (await r.fetch("https://api.example/v1").catch((e) => e)) as Error;
    const text = [error.message, error.stack, String(error.cause), (error.cause as Error)?.stack, ...events].join("\n");
    expect(text).toMatch(/Invalid URL/);
    expect(leaks(text)).toBe(false);
  });

  it("an aborted call rejects with the caller's reason as given (workerd's AbortError when none), the URL nowhere", async () => {
    const r = createResilience({ retry: false, fetch: hang });
    const c1 = new AbortController();
    const p1 = r.fetch(`https://api.example/cb/${ENCODED}`, { signal: c1.signal });
    c1.abort();
    const e1 = (await p1.catch((e) => e)) as Error;
    expect(e1).toBe(c1.signal.reason);
    expect(e1.name).toBe("AbortError");
    expect(e1.message).toBe("The operation was aborted");
    const c2 = new AbortController();
    const p2 = r.fetch(`https://api.example/cb/${ENCODED}`, { signal: c2.signal, method: "POST", body: "x" });
    const reason = new Error("stop");
    c2.abort(reason);
    expect(await p2.catch((e) => e)).toBe(reason);
  });
});

describe("3b. a redirect the library follows to such a path", () => {
  it("the redirect and request events and debugInfo() carry no password or key", async () => {
    const r = createResilience({
      retry: false,
      fetch: async (input) =>
        urlOf(input).includes("/start")
          ? new Response(null, { status: 302, headers: { location: `/cb/${ENCODED}` } })
          : new Response("busy", { status: 503 }),
    });
    const events = recordEvents(r);
    const res = await r.fetch("https://api.example/start");
    expect(res.status).toBe(503);
    expect(events.some((e) => e.startsWith("redirect"))).toBe(true);
    expect(leaks([...events, JSON.stringify(r.debugInfo())].join("\n"))).toBe(false);
  });
});

describe("4. the linked signal in workerd (AbortSignal.any)", () => {
  it("a caller's long-lived signal over 400 calls with timeout.total (and a hedged chain): its listeners do not grow", async () => {
    const controller = new AbortController();
    const signal = controller.signal;
    let live = 0;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    const listeners = new Set<unknown>();
    signal.addEventListener = ((type: string, l: EventListenerOrEventListenerObject, o?: unknown) => {
      if (type === "abort" && !listeners.has(l)) {
        listeners.add(l);
        live++;
      }
      add(type, l, o as AddEventListenerOptions);
    }) as typeof signal.addEventListener;
    signal.removeEventListener = ((type: string, l: EventListenerOrEventListenerObject, o?: unknown) => {
      if (type === "abort" && listeners.delete(l)) live--;
      remove(type, l, o as EventListenerOptions);
    }) as typeof signal.removeEventListener;
    const r = createResilience({
      retry: false,
      timeout: { total: 5_000, attempt: 5_000 },
      fetch: async (input) => new Response(`ok ${urlOf(input)}`),
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "a", url: "https://h.example/v1" },
            { name: "b", url: "https://h2.example/v1" },
          ],
        },
      ]),
    });
    for (let i = 0; i < 200; i++) {
      await (await r.fetch(`https://api.example/x/${i}`, { signal })).text();
      await (await r.fetch(`https://h.example/v1/${i}`, { signal })).text();
    }
    expect(live).toBeLessThanOrEqual(1);
    // Still wired: the next call is aborted by it.
    const last = r.fetch("https://api.example/y", { signal, method: "POST", body: "x" });
    const slow = createResilience({ retry: false, timeout: { total: 5_000 }, fetch: hang });
    const hung = slow.fetch("https://api.example/z", { signal });
    controller.abort(new Error("shutdown"));
    await last.catch(() => {});
    await expect(hung).rejects.toThrow("shutdown");
  });

  it("an abort after the response arrived cancels the body being read (plain, timeout.total, chain), with the caller's reason", async () => {
    for (const options of [
      {},
      { timeout: { total: 2_000 } },
      { timeout: { attempt: 2_000, total: 2_000 }, fallback: chainOf([{ name: "a", url: "https://api.example/v1" }]) },
    ] as Partial<ResilienceOptions>[]) {
      const bodies: ReturnType<typeof handFed>[] = [];
      const r = createResilience({
        retry: false,
        fetch: async (input, init) => {
          const body = handFed(signalOf(input, init));
          bodies.push(body);
          body.push("part-1;");
          return new Response(body.stream);
        },
        ...options,
      });
      const controller = new AbortController();
      const res = await r.fetch("https://api.example/v1/x", { signal: controller.signal });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      expect(dec.decode((await reader.read()).value)).toBe("part-1;");
      const reason = new Error("caller gone");
      controller.abort(reason);
      await expect(reader.read()).rejects.toBe(reason);
      expect(bodies[0]?.state.errored).toBe(reason);
    }
    expect(await unhandled()).toEqual([]);
  });

  it("timeout.total passing after the response does not cut the body; workerd's own fetch body follows a later abort", async () => {
    const bodies: ReturnType<typeof handFed>[] = [];
    const r = createResilience({
      retry: false,
      timeout: { total: 40, attempt: 30 },
      fetch: async (input, init) => {
        const body = handFed(signalOf(input, init));
        bodies.push(body);
        body.push("a;");
        return new Response(body.stream);
      },
    });
    const res = await r.fetch("https://api.example/v1/x");
    await sleep(80); // both deadlines passed
    bodies[0]?.push("b");
    bodies[0]?.close();
    expect(await res.text()).toBe("a;b");
    expect(bodies[0]?.state.errored).toBeNull();

    const id = `x${Date.now()}`;
    const real = createResilience({ retry: false, timeout: { total: 2_000 } });
    const controller = new AbortController();
    const got = await real.fetch(`https://v.conformance/stream/${id}`, { signal: controller.signal });
    const reader = (got.body as ReadableStream<Uint8Array>).getReader();
    expect(dec.decode((await reader.read()).value)).toBe("chunk-1;");
    controller.abort(new Error("caller gone"));
    const t0 = Date.now();
    await expect(reader.read()).rejects.toThrow("caller gone");
    expect(Date.now() - t0).toBeLessThan(500);
    await heal("v.conformance", id);
  });
});
