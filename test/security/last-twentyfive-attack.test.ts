/**
 * Outside-in attack on the newest fixes (27ec6b2, 9de723f): the Worker health endpoint's token from its
 * env var, a user's store whose `record` (or `publish`, `releaseProbe`, `peek`) throws, listeners
 * dispatched by registration, `health()` when a store's `peek` throws. Docs: docs/cloudflare.md (the
 * health endpoint's token "text, a number …, or a Secrets Store binding … any other value, or a `get()`
 * that fails, keeps the endpoint closed"), SECURITY.md ("The Worker health endpoint reveals nothing
 * without its token", "The library's stores cannot break or stall a request"), docs/breakers.md (a store
 * of your own; a probe aborted by its caller), docs/retry.md and docs/fallback.md (an answer nobody
 * reads is released), docs/health-and-events.md (EventTarget dispatch; a `peek` that throws in
 * `health()`), the JSDoc of `BreakerStore` and `ResilientProxyOptions.healthTokenVar`.
 * How: `createResilience` (root), `fallback` (./fallback), `resilientProxy` (./cloudflare, run in Node),
 * `TestClock` (./testing); scripted transports whose answers carry streamed bodies, so that whether the
 * layer released an answer (drained or cancelled it) reads as `bodyUsed` / `body.locked`.
 * Paths: plain call, fallback chain, a redirect's hop to a half-open host, a half-open probe aborted by
 * its caller with a coordinating store, a `Request` input under a bulkhead, the proxy's health endpoint
 * and upstream route.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: every answer a store's throw leaves unreturned is released, an aborted probe's slot freed whatever releaseProbe does):
 * 1. docs/retry.md "The body of a response nobody will read (one the layer retries past, a redirect it
 *    follows, a fallback answer it rejects, a hedge that lost) is drained in the background when it is
 *    small (up to 64 KiB, within 1 s), so the connection goes back to the keep-alive pool, and cancelled
 *    otherwise." Observed (plain call): a 503 that trips the breaker, whose store's `publish` throws,
 *    fails the call with the store's error ("publish down"), and the 503's body is never touched
 *    (`bodyUsed` false, `body.locked` false): `breaker.failure` throws out of `sendAttempt` before the
 *    `discardBody` the `record` fix added. Only a `record` throw releases the answer.
 * 2. docs/fallback.md "that answer, like every answer not returned (a losing hedge, a body that failed
 *    `validate`), is released: its body drained or cancelled." Observed (chain a → b): a's 503 trips a's
 *    breaker, the store's `publish` throws, the chain moves on and returns b's 200; a's 503 body is
 *    never released. (Since the twenty-seventh session the chain no longer moves on: what a store throws
 *    fails the call, as docs/breakers.md says; a's 503 is still released, and b is sent nothing.)
 * 3. docs/retry.md (the same sentence: "a redirect it follows"). Observed (a 302 from a.example to
 *    b.example, whose breaker is half-open): the hop's 200 answer from b, whose store's `record` throws,
 *    fails the call with "record down" and its body is never released (`follow-redirects` calls the
 *    hop's outcome before anything discards it; the `record` fix covered `sendAttempt` only).
 * 4. docs/breakers.md "A probe aborted by its caller, `timeout.total` or a hedge that won frees its slot
 *    at once, and gives back a coordinating store's lease (`releaseProbe`)." (the `BreakerStore` JSDoc
 *    asks only `publish`, `peek` and `record` never to throw). Observed: a store whose `acquireProbe`
 *    grants "lease-1" and whose `releaseProbe` throws: the caller aborts the half-open probe; the next
 *    call (`halfOpenMaxCalls: 1`) is refused with `CircuitOpenError` "open until …00:00:31.000Z" (the
 *    probe's 30 s `probeTimeout` lease) without being sent, the breaker still `half_open`: `releaseProbe`
 *    is called before `breaker.reportError`, which never runs (the bug the `record` fix closed, left
 *    on the abort branch, in `sendAttempt` and in a hop's outcome alike).
 *
 * Held (plain `it`):
 * - Health token from its env var: a number (`0` too) is the token (a bigint was too, until the sixtieth session
 *   closed the endpoint to it, as "any other value" says); a Secrets Store-like
 *   `get()` answering text is the token; a `get()` that rejects, throws, answers a number or "", an
 *   object with only `toString`, a `String` object, `true`/`false`, a symbol, a function: 401 with or
 *   without a guess (closed). A binding whose `get` getter throws is closed as well: 401 (when this run
 *   was written it rejected the proxy's `fetch` instead; made a 401 since). (A `get()` that never
 *   settles holds the health request as long; no timer is involved, and the docs promise no bound, so
 *   it is not pinned.)
 * - A `record` that throws on a `Request` input under a bulkhead: the call fails with the store's error,
 *   the answer is released, no slot stays held (`active: 0`), the host's breaker heard a success,
 *   `debugInfo()` counts one failed call, and the next call goes.
 * - `health()` with a `peek` that throws: the host's local state, a `store` event (`read`, `failed`)
 *   whose detail has the URL's userinfo and query cut; the proxy's health endpoint still answers 200.
 * - Listeners: one subscribed twice is called once per event; an unsubscribe called twice, or late, is
 *   harmless to other listeners; a `request` listener that unsubscribes a `retry` listener leaves the
 *   `request` dispatch whole.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerStore, createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

/** A response with a streamed body, so that whether the layer released it can be read. */
const streamed = (status: number): Response =>
  new Response(
    new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new TextEncoder().encode("body"));
        controller.close();
      },
    }),
    { status },
  );
/** Drained (read) or cancelled: either locks the body or uses it. */
const released = (response: Response): boolean => response.bodyUsed || response.body?.locked === true;
const urlOf = (input: RequestInfo | URL): string => (input instanceof Request ? input.url : String(input));
const outcome = (p: Promise<Response>): Promise<string> =>
  p.then(
    (res) => `status ${res.status}`,
    (error: unknown) => `${(error as Error).name}: ${(error as Error).message}`,
  );

describe("an answer nobody reads when the store throws", () => {
  it("plain call: a 503 whose trip meets a publish that throws is released (docs/retry.md)", async () => {
    const store: BreakerStore = {
      name: "mine",
      publish() {
        throw new Error("publish down");
      },
      peek: () => undefined,
    };
    const answers: Response[] = [];
    const fetch = async (): Promise<Response> => {
      const res = streamed(503);
      answers.push(res);
      return res;
    };
    const r = createResilience({
      clock: new TestClock(),
      store,
      fetch,
      retry: false,
      breaker: { failureThreshold: 1 },
    });
    const got = await outcome(r.fetch("https://api.example/x"));
    await flush();
    // The call fails with the store's error (as the docs say): nobody gets the 503.
    expect(got).toMatch(/publish down/);
    // docs/retry.md: "The body of a response nobody will read … is drained … and cancelled otherwise."
    expect(answers.map(released)).toEqual([true]);
  });

  it("chain: the primary's 503, passed over after a publish that throws, is released (docs/fallback.md)", async () => {
    const store: BreakerStore = {
      name: "mine",
      publish(key) {
        if (key === "a.example") throw new Error("publish down");
      },
      peek: () => undefined,
    };
    const answers: Response[] = [];
    const fetch = async (input: RequestInfo | URL): Promise<Response> => {
      const res = urlOf(input).startsWith("https://a.example/") ? streamed(503) : streamed(200);
      answers.push(res);
      return res;
    };
    const r = createResilience({
      clock: new TestClock(),
      store,
      fetch,
      retry: false,
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example" },
            { name: "b", url: "https://b.example" },
          ],
        },
      ]),
    });
    const got = await outcome(r.fetch("https://a.example/x"));
    await flush();
    // docs/breakers.md: what the store throws fails the call (the chain does not move on to b).
    expect(got).toMatch(/publish down/);
    expect(answers.map((res) => res.status)).toEqual([503]);
    // docs/fallback.md: "every answer not returned … is released: its body drained or cancelled."
    expect(released(answers[0] as Response)).toBe(true);
  });

  it("redirect hop: the hop's answer, whose store record throws, is released (docs/retry.md)", async () => {
    const clock = new TestClock();
    let recordThrows = false;
    const store: BreakerStore = {
      name: "mine",
      publish() {},
      peek: () => undefined,
      record(key) {
        if (recordThrows && key === "b.example") throw new Error("record down");
      },
    };
    let bStatus = 503;
    const fromB: Response[] = [];
    const fetch = async (input: RequestInfo | URL): Promise<Response> => {
      if (urlOf(input).startsWith("https://a.example/"))
        return new Response(null, { status: 302, headers: { location: "https://b.example/y" } });
      const res = streamed(bStatus);
      fromB.push(res);
      return res;
    };
    const r = createResilience({
      clock,
      store,
      fetch,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1000, halfOpenMaxCalls: 1 },
    });
    expect(r.debugInfo().options.redirects).toBe("library");
    // b's breaker opens, then reads half-open: a hop to b is its probe.
    expect((await r.fetch("https://b.example/y")).status).toBe(503);
    await clock.advance(1000);
    expect(r.health().breakers["b.example"]?.state).toBe("half_open");
    bStatus = 200;
    recordThrows = true;
    const got = await outcome(r.fetch("https://a.example/x"));
    await flush();
    expect(got).toMatch(/record down/);
    expect(fromB.map((res) => res.status)).toEqual([503, 200]);
    // The hop's 200 went to nobody: docs/retry.md, "a redirect it follows" … "is drained … or cancelled".
    expect(released(fromB[1] as Response)).toBe(true);
  });
});

describe("a half-open probe aborted by its caller, with a store whose releaseProbe throws", () => {
  it("frees its slot at once: the next call is sent (docs/breakers.md)", async () => {
    const clock = new TestClock();
    const store: BreakerStore = {
      name: "mine",
      publish() {},
      peek: () => undefined,
      acquireProbe: async () => "lease-1",
      releaseProbe() {
        throw new Error("release down");
      },
    };
    let mode: "503" | "hang" | "ok" = "503";
    let sent = 0;
    const fetch = (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      sent++;
      if (mode === "503") return Promise.resolve(new Response("x", { status: 503 }));
      if (mode === "ok") return Promise.resolve(new Response("ok"));
      return new Promise<Response>((_, reject) => {
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
      });
    };
    const r = createResilience({
      clock,
      store,
      fetch,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1000, halfOpenMaxCalls: 1, probeTimeout: 30_000 },
    });
    expect((await r.fetch("https://api.example/x")).status).toBe(503);
    await clock.advance(1000);
    mode = "hang";
    const controller = new AbortController();
    const probe = outcome(r.fetch("https://api.example/x", { signal: controller.signal }));
    await flush();
    expect(sent).toBe(2);
    controller.abort(new Error("user gone"));
    expect(await probe).toMatch(/user gone/);
    await flush();
    mode = "ok";
    // docs/breakers.md: "A probe aborted by its caller … frees its slot at once": the next call may probe.
    const next = await outcome(r.fetch("https://api.example/x"));
    expect({ next, sent }).toEqual({ next: "status 200", sent: 3 });
  });
});

describe("held", () => {
  it("health token: numbers and Secrets Store text are tokens; any other value keeps the endpoint closed", async () => {
    const fetch = async (): Promise<Response> => new Response("ok");
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: "https://a.example" }], resilience: { fetch } });
    const ask = (token: unknown, authorization?: string): Promise<number | string> =>
      proxy
        .fetch(
          new Request("https://w.example/__resilience/health", {
            headers: authorization ? { authorization } : {},
          }),
          { RESILIENCE_HEALTH_TOKEN: token },
          { waitUntil: () => {} },
        )
        .then(
          (res) => res.status,
          (error: unknown) => `rejected: ${(error as Error).message}`,
        );
    // Tokens, matched and refused.
    expect(await ask(123456, "Bearer 123456")).toBe(200);
    expect(await ask(123456)).toBe(401);
    expect(await ask(0)).toBe(401);
    expect(await ask(0, "Bearer 0")).toBe(200);
    // A BigInt was taken until the sixtieth session; the docs' "any other value" keeps it closed (no `[vars]` give one).
    expect(await ask(12n, "Bearer 12")).toBe(401);
    expect(await ask({ get: async () => "s3cret" }, "Bearer s3cret")).toBe(200);
    expect(await ask({ get: async () => "s3cret" }, "Bearer s3cre")).toBe(401);
    // Set, but holding no token: closed, with or without a guess.
    const closed: unknown[] = [
      { get: async () => 42 },
      { get: async () => "" },
      {
        get: async () => {
          throw new Error("secrets store down");
        },
      },
      {
        get: () => {
          throw new Error("sync throw");
        },
      },
      { toString: () => "t" },
      new String("t"),
      false,
      true,
      Symbol("t"),
      () => "t",
    ];
    for (const value of closed) {
      expect([await ask(value), await ask(value, "Bearer t"), await ask(value, "Bearer ")]).toEqual([401, 401, 401]);
    }
    // A binding whose `get` cannot be read is a value that is not a token: closed, health not revealed.
    const hostile = {
      get get(): never {
        throw new Error("binding gone");
      },
    };
    expect([await ask(hostile), await ask(hostile, "Bearer t")]).toEqual([401, 401]);
  });

  it("a record that throws on a Request input under a bulkhead: fails that call, releases answer and slot", async () => {
    let recordThrows = true;
    const store: BreakerStore = {
      name: "mine",
      publish() {},
      peek: () => undefined,
      record() {
        if (recordThrows) throw new Error("record down");
      },
    };
    const answers: Response[] = [];
    const fetch = async (): Promise<Response> => {
      const res = streamed(200);
      answers.push(res);
      return res;
    };
    const r = createResilience({
      clock: new TestClock(),
      store,
      fetch,
      retry: false,
      bulkhead: { maxConcurrent: 1 },
    });
    const got = await outcome(r.fetch(new Request("https://a.example/x", { method: "PUT", body: "hi" })));
    await flush();
    expect(got).toMatch(/record down/);
    expect(answers.map(released)).toEqual([true]);
    const host = r.health().breakers["a.example"];
    expect({ state: host?.state, failures: host?.consecutiveFailures, active: host?.active }).toEqual({
      state: "closed",
      failures: 0,
      active: 0,
    });
    expect(r.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
    recordThrows = false;
    expect((await r.fetch("https://a.example/x")).status).toBe(200);
  });

  it("health() with a peek that throws: local state, a redacted store event; the proxy's endpoint answers", async () => {
    let peekThrows = false;
    const store: BreakerStore = {
      name: "mine",
      publish() {},
      peek: () => {
        if (peekThrows) throw new Error("peek down https://user:pw@redis.example/db?token=SECRET");
        return undefined;
      },
    };
    const r = createResilience({ store, fetch: async () => new Response("ok") });
    await r.fetch("https://a.example/x");
    peekThrows = true;
    const events: unknown[] = [];
    r.on("store", (event) => {
      events.push(event);
    });
    const health = r.health();
    expect(health.breakers["a.example"]?.state).toBe("closed");
    expect(events).toEqual([
      {
        store: "mine",
        key: "a.example",
        operation: "read",
        outcome: "failed",
        detail: "Error: peek down https://redis.example/db",
      },
    ]);
    expect(JSON.stringify([events, r.debugInfo()])).not.toMatch(/SECRET|pw@|user:/);

    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: "https://a.example" }],
      resilience: { fetch: async () => new Response("ok") },
      store: () => store,
    });
    const ctx = { waitUntil: () => {} };
    peekThrows = false;
    expect((await proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx)).status).toBe(200);
    peekThrows = true;
    const answer = await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx);
    expect(answer.status).toBe(200);
    const text = await answer.text();
    expect(JSON.parse(text).breakers["a.example"].state).toBe("closed");
    expect(text).not.toMatch(/SECRET|pw@/);
  });

  it("listeners: a duplicate is one registration; a late or repeated unsubscribe touches no other event", async () => {
    const r = createResilience({ breaker: false, fetch: async () => new Response("ok") });
    const calls: string[] = [];
    const twice = (): void => {
      calls.push("twice");
    };
    const offA = r.on("request", twice);
    r.on("request", twice);
    const offRetry = r.on("retry", () => {
      calls.push("retry");
    });
    const offOther = r.on("request", () => {
      calls.push("other");
      offRetry();
      offRetry();
    });
    await r.fetch("https://a.example/x");
    expect(calls).toEqual(["twice", "other"]);
    offA();
    offA();
    offOther();
    offOther();
    const after = r.on("request", () => {
      calls.push("after");
    });
    await r.fetch("https://a.example/x");
    expect(calls).toEqual(["twice", "other", "after"]);
    after();
  });
});
