/**
 * Outside-in attack on what the layer promises when the `fetch` it is given (the transport) behaves badly.
 * Docs: docs/retry.md ("When the last attempt produced a Response, the call resolves with it, even a 503,
 * exactly as `fetch` would. It rejects only when there is no Response to give, with a `ResilienceError`
 * subclass"; "Retried by default: network errors"; a caller's abort and the timeouts settle a call "even when
 * the transport ignores its signal (an answer it gives later is dropped, its body cancelled, …)"; "The body of a
 * response nobody will read … is drained … and cancelled otherwise"), docs/breakers.md ("Network errors,
 * attempt timeouts, 5xx and 429 are failures"; "Any probe failure re-opens"), docs/fallback.md ("An endpoint is
 * left for the next one on a network error"; `validate` reads "within `timeout.attempt`": "a body that stalls or
 * never ends fails validation"; every answer not returned "is released: its body drained or cancelled"),
 * docs/options.md (`fetch` row), docs/health-and-events.md (`request`/`retry` events), SECURITY.md ("Nothing
 * outlives its call": "a call settles at its abort or timeout even when the transport … ignores the signal").
 * How: `createResilience` (root) with a hand-written transport, `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky), `TestClock` (./testing, `pending()` checked), body streams whose
 * `cancel` and pulls are tracked, `watchUnhandled` (test/helpers/unhandled.ts).
 * Paths: plain call, retry, half-open probe, `redirects: "library"` and `"platform"` with a redirect hop, fallback
 * chain with `validate`, hedge, degradation rewrite, ky client, `timeout.attempt` and `timeout.total`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a transport's answer that is no Response, Response.error() or unreadable headers is a network error, late bodies dropped quietly; 8 by the docs):
 * 1. docs/retry.md "It rejects only when there is no Response to give, with a `ResilienceError` subclass".
 *    Observed: a transport that resolves with a plain object (`{ status: 200, ok: true }`) makes
 *    `resilience.fetch` resolve with that object (the layer stamps its info on it and fires `request` with
 *    status 200); nothing checks that the transport's answer is a `Response` (send-attempt.ts takes
 *    `response.status` as is).
 * 2. docs/breakers.md "Any probe failure re-opens". Observed: with `redirects: "platform"`, a half-open probe
 *    whose transport resolves with `undefined` fails its call (RetryExhaustedError, cause the layer's own
 *    "Cannot read properties of undefined (reading 'status')") but the breaker hears nothing: it stays
 *    `half_open` with the probe's slot taken, and the next call (the host healthy again) is refused with
 *    `CircuitOpenError` until `probeTimeout` (30 s), not `timeout`. In sendAttempt the `response.status` read
 *    throws after the transport's try/catch and before `breaker.failure/success`. With `redirects: "library"`
 *    the read happens inside the follower, the error counts as a transport failure and the probe re-opens.
 * 3. docs/breakers.md "Network errors, attempt timeouts, 5xx and 429 are failures". Observed: a 503 whose
 *    `headers` getter throws is not counted (failureCount 0): `retryAfterHold` reads `response.headers` inside
 *    the try that guards a store's `publish`, so the getter's error is taken for a store failure and
 *    `breaker.failure` never runs; the call rejects with the getter's error.
 * 4. docs/retry.md "The body of a response nobody will read … is drained in the background when it is small
 *    …, and cancelled otherwise". Observed: that same 503's body is never read nor cancelled (its source's
 *    `cancel` never runs): `discardBody` → `readSmall` reads `response.headers` again before touching the
 *    body, throws, and the rejection is swallowed.
 * 5. docs/retry.md "an answer it gives later is dropped, its body cancelled" (and SECURITY.md "Nothing outlives
 *    its call"). Observed: a late answer whose `body` getter throws, after `timeout.attempt` settled the call,
 *    becomes an unhandled rejection (which ends a Node process by default): `dropLate` (send-attempt.ts) runs
 *    inside `untilAborted`'s `.then` callback (until-aborted.ts), whose promise nobody handles.
 * 6. docs/retry.md "Retried by default: network errors" / "exactly as `fetch` would" and docs/breakers.md
 *    "Network errors … are failures". Observed: a transport answering `Response.error()` (the Fetch standard's
 *    network error, which fetch itself turns into a `TypeError`) is taken as an answer of status 0: the call
 *    resolves with it at once, not retried, and the breaker counts a success (`isServiceFailureStatus(0)` is
 *    false, 0 is not in `retryOn.statuses`).
 * 7. docs/fallback.md "An endpoint is left for the next one on a network error". Observed: in a chain, the
 *    same `Response.error()` from the first endpoint ends the chain with status 0; the next endpoint is never
 *    sent (the judge sees neither a 5xx nor a 2xx).
 * 8. docs/retry.md "When the last attempt produced a Response, the call resolves with it … exactly as `fetch`
 *    would" (and "Response bodies are never buffered or cloned"). Observed: a transport that hands back the same
 *    503 `Response` object on both attempts (a memoising mock, a cache) gets it back with its body already
 *    read by the layer (`keepBody` read it when retrying past attempt 1): the caller's `text()` throws "Body is
 *    unusable". The same happens to a hedge whose two endpoints answer the same object: discarding the loser
 *    drains the winner's body. Made exact in docs/retry.md instead (a transport answers each attempt with a
 *    Response of its own, as fetch does; one handed back twice has been read by the layer), and the test
 *    asserts that.
 *
 * Held (plain `it`):
 * - A transport that throws synchronously (a TypeError): settles with RetryExhaustedError, retried and counted
 *   on the breaker, on a plain call, a redirect hop, the ky client; a chain moves on to the next endpoint.
 * - A thenable whose `then` throws: the same; a thenable that settles twice: the first answer, one request.
 * - A thenable that never settles, with `timeout.attempt`: TimeoutError on plain, hop, ky; a chain moves on;
 *   no timer left on the TestClock.
 * - `undefined` on a half-open probe with `redirects: "library"`: the probe counts as failed and re-opens.
 * - `undefined` or a plain object from a chain endpoint with `validate`: the chain moves on to the next one.
 * - Late answers (the transport ignores its signal) after `timeout.attempt` or `timeout.total`: their bodies
 *   are cancelled, on a plain call, a redirect hop, a chain, a hedge, a degradation rewrite and the ky client;
 *   no timer left; a losing hedge that answers after the winner has its body cancelled.
 * - A 503 retried past whose body is already used, locked, errors mid-way or whose `body` getter throws, or a
 *   Response subclass: the retry goes on and the caller gets the next answer (a subclass kept as given).
 * - `validate` on a body that errors mid-way, ends early (invalid JSON), or never ends (cancelled within the
 *   drain's 1 s): the chain moves on to the next endpoint.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isRetryExhaustedError, isTimeoutError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { turns, watchUnhandled } from "../helpers/unhandled.ts";

/** A body stream whose pulls and `cancel` are counted; it ends as `end` says once its chunks are out. */
function trackedBody(end: "close" | "error" | "hang" = "close", chunks: string[] = ["x"]) {
  const state = { cancelled: false, pulls: 0 };
  const left = [...chunks];
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      state.pulls++;
      const next = left.shift();
      if (next !== undefined) return controller.enqueue(new TextEncoder().encode(next));
      if (end === "error") return controller.error(new Error("body failed mid-way"));
      if (end === "hang") return new Promise<void>(() => {});
      controller.close();
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

const urlOf = (input: RequestInfo | URL): string => (input instanceof Request ? input.url : String(input));

/** How a call settled: its status, or its error. */
function settled(call: Promise<unknown>): Promise<{ value?: unknown; error?: unknown }> {
  return call.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

const okSchema = {
  "~standard": {
    version: 1 as const,
    vendor: "test",
    validate: (value: unknown) =>
      value !== null && typeof value === "object" && "ok" in value ? { value } : { issues: [{ message: "no ok" }] },
  },
};

/** A two-endpoint chain on a.example → b.example. */
const chainAB = (extra: { hedge?: { delay: number }; validate?: boolean } = {}) =>
  fallback([
    {
      name: "c",
      ...(extra.hedge ? { hedge: extra.hedge } : {}),
      endpoints: [
        { name: "a", url: "https://a.example/v1", ...(extra.validate ? { validate: okSchema } : {}) },
        { name: "b", url: "https://b.example/v1" },
      ],
    },
  ]);

describe("a transport that answers with no Response", () => {
  it("a plain object is no Response: the call rejects (retry.md)", async () => {
    const clock = new TestClock();
    const r = createResilience({ clock, fetch: (async () => ({ status: 200, ok: true })) as never });
    const out = await clock.run(settled(r.fetch("https://a.example/x")));
    // retry.md: "It rejects only when there is no Response to give, with a `ResilienceError` subclass".
    expect(out.value).toBeUndefined();
    expect(out.error).toBeInstanceOf(Error);
  });

  it("undefined on a half-open probe, redirects platform: the probe failed, so the host re-opens (breakers.md)", async () => {
    const clock = new TestClock();
    let mode: "fail" | "undefined" | "ok" = "fail";
    const r = createResilience({
      clock,
      redirects: "platform",
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
      fetch: (async () =>
        mode === "fail"
          ? new Response("x", { status: 500 })
          : mode === "undefined"
            ? undefined
            : new Response("ok")) as never,
    });
    await clock.run(settled(r.fetch("https://a.example/x")));
    expect(r.health().breakers["a.example"]?.state).toBe("open");
    await clock.advance(1_001);
    mode = "undefined";
    const probe = await clock.run(settled(r.fetch("https://a.example/x")));
    expect(isRetryExhaustedError(probe.error)).toBe(true);
    // breakers.md: "Any probe failure re-opens" (for `timeout`, 1 s here).
    expect(r.health().breakers["a.example"]?.state).toBe("open");
    await clock.advance(1_001);
    mode = "ok";
    const next = await clock.run(settled(r.fetch("https://a.example/x")));
    expect((next.value as Response | undefined)?.status).toBe(200);
  });

  it("undefined on a half-open probe, redirects library: the probe counts as failed and re-opens", async () => {
    const clock = new TestClock();
    let mode: "fail" | "undefined" | "ok" = "fail";
    const r = createResilience({
      clock,
      redirects: "library",
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
      fetch: (async () =>
        mode === "fail"
          ? new Response("x", { status: 500 })
          : mode === "undefined"
            ? undefined
            : new Response("ok")) as never,
    });
    await clock.run(settled(r.fetch("https://a.example/x")));
    await clock.advance(1_001);
    mode = "undefined";
    const probe = await clock.run(settled(r.fetch("https://a.example/x")));
    expect(isRetryExhaustedError(probe.error)).toBe(true);
    expect(r.health().breakers["a.example"]?.state).toBe("open");
    await clock.advance(1_001);
    mode = "ok";
    const next = await clock.run(settled(r.fetch("https://a.example/x")));
    expect((next.value as Response | undefined)?.status).toBe(200);
    expect(clock.pending()).toBe(0);
  });

  for (const kind of ["undefined", "plain object"] as const) {
    it(`a chain endpoint with validate that answers ${kind} is passed over for the next`, async () => {
      const clock = new TestClock();
      const sent: string[] = [];
      const r = createResilience({
        clock,
        retry: false,
        fallback: chainAB({ validate: true }),
        fetch: (async (input: RequestInfo | URL) => {
          const url = urlOf(input);
          sent.push(new URL(url).host);
          if (url.includes("a.example")) return kind === "undefined" ? undefined : { status: 200, ok: true };
          return new Response('{"ok":1}');
        }) as never,
      });
      const out = await clock.run(settled(r.fetch("https://a.example/v1/x")));
      const response = out.value as Response;
      expect(response.status).toBe(200);
      expect(getResilienceInfo(response)?.endpoint).toBe("b");
      expect(sent).toEqual(["a.example", "b.example"]);
      expect(clock.pending()).toBe(0);
    });
  }
});

describe("Response.error(): the Fetch standard's network error", () => {
  it("is a network error: retried and counted against the host's breaker (retry.md, breakers.md)", async () => {
    const clock = new TestClock();
    let n = 0;
    const r = createResilience({
      clock,
      fetch: async () => {
        n++;
        return Response.error();
      },
    });
    const out = await clock.run(settled(r.fetch("https://a.example/x")));
    // retry.md: "Retried by default: network errors"; fetch itself rejects on a network error.
    expect(n).toBe(3);
    expect(isRetryExhaustedError(out.error)).toBe(true);
    // breakers.md: "Network errors … are failures".
    expect(r.health().breakers["a.example"]?.failureCount).toBe(3);
  });

  it("in a chain, the endpoint is left for the next one (fallback.md)", async () => {
    const clock = new TestClock();
    const sent: string[] = [];
    const r = createResilience({
      clock,
      retry: false,
      fallback: chainAB(),
      fetch: async (input: RequestInfo | URL) => {
        const url = urlOf(input);
        sent.push(new URL(url).host);
        return url.includes("a.example") ? Response.error() : new Response("B");
      },
    });
    const out = await clock.run(settled(r.fetch("https://a.example/v1/x")));
    // fallback.md: "An endpoint is left for the next one on a network error".
    expect(sent).toEqual(["a.example", "b.example"]);
    expect((out.value as Response).status).toBe(200);
  });
});

describe("a Response whose getters throw", () => {
  /** A 503 whose `headers` getter throws, and its tracked body. */
  function hostile503() {
    const body = trackedBody("close", ["small"]);
    const response = new Response(body.stream, { status: 503 });
    Object.defineProperty(response, "headers", {
      get() {
        throw new Error("headers getter failed");
      },
    });
    return { response, body };
  }

  it("a 503 whose headers getter throws still counts as a failure (breakers.md)", async () => {
    const clock = new TestClock();
    const { response } = hostile503();
    const r = createResilience({ clock, retry: false, fetch: async () => response });
    const out = await clock.run(settled(r.fetch("https://a.example/x")));
    expect(out.error ?? out.value).toBeDefined();
    // breakers.md: "Network errors, attempt timeouts, 5xx and 429 are failures".
    expect(r.health().breakers["a.example"]?.failureCount).toBe(1);
  });

  it("the body of that 503, which nobody gets, is drained or cancelled (retry.md)", async () => {
    const clock = new TestClock();
    const { response, body } = hostile503();
    const r = createResilience({ clock, retry: false, fetch: async () => response });
    const out = await clock.run(settled(r.fetch("https://a.example/x")));
    // The call did not give the response to the caller: the layer has to release it.
    expect(out.value).toBeUndefined();
    await turns(5);
    // retry.md: "The body of a response nobody will read … is drained … and cancelled otherwise".
    expect(body.state.cancelled || body.state.pulls > 1).toBe(true);
  });

  it("a late answer whose body getter throws is dropped quietly, no unhandled rejection (retry.md)", async () => {
    const clock = new TestClock();
    let answer!: (response: Response) => void;
    const r = createResilience({
      clock,
      retry: false,
      timeout: { attempt: 100 },
      fetch: () =>
        new Promise<Response>((resolve) => {
          answer = resolve;
        }),
    });
    const { value, unhandled } = await watchUnhandled(async () => {
      const out = await clock.run(settled(r.fetch("https://a.example/x")));
      const late = new Response("late");
      Object.defineProperty(late, "body", {
        get() {
          throw new Error("body getter failed");
        },
      });
      answer(late);
      return out;
    });
    expect(isTimeoutError(value.error)).toBe(true);
    // retry.md: "an answer it gives later is dropped"; an unhandled rejection ends a Node process.
    expect(unhandled).toEqual([]);
  });
});

describe("the same Response object handed back twice", () => {
  it("across retries: the call settles with it, its body read by the layer the first time (retry.md, as it says now)", async () => {
    const clock = new TestClock();
    const same = new Response("busy, try later", { status: 503 });
    let n = 0;
    const r = createResilience({
      clock,
      retry: { maxAttempts: 2 },
      fetch: async () => {
        n++;
        return same;
      },
    });
    const out = await clock.run(settled(r.fetch("https://a.example/x")));
    const response = out.value as Response;
    expect(n).toBe(2);
    expect(response.status).toBe(503);
    // retry.md: "A transport answers each attempt with a Response of its own, as fetch does: one handed back
    // twice has been read by the layer the first time."
    expect(response.bodyUsed).toBe(true);
  });
});

describe("transports that throw, or answer with odd thenables, on every path", () => {
  type Kind = "sync throw" | "then throws" | "never settles";
  type Path = "plain" | "hop" | "chain" | "ky";
  const cases: [Kind, Path][] = [];
  for (const kind of ["sync throw", "then throws", "never settles"] as const)
    for (const path of ["plain", "hop", "chain", "ky"] as const) cases.push([kind, path]);

  for (const [kind, path] of cases) {
    it(`${kind}, ${path}: the call settles, attempts counted, no timer left`, async () => {
      const clock = new TestClock();
      let n = 0;
      const fetch = ((input: RequestInfo | URL) => {
        n++;
        const url = urlOf(input);
        if (path === "hop" && !url.includes("/hop"))
          return Promise.resolve(new Response(null, { status: 302, headers: { location: "/hop" } }));
        if (path === "chain" && url.includes("b.example")) return Promise.resolve(new Response("B"));
        if (kind === "sync throw") throw new TypeError("transport threw");
        if (kind === "then throws")
          return {
            // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
            then() {
              throw new TypeError("then threw");
            },
          };
        // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
        return { then() {} };
      }) as never;
      const r = createResilience({
        clock,
        fetch,
        redirects: "library",
        retry: { maxAttempts: 2 },
        timeout: { attempt: 100 },
        ...(path === "chain" ? { fallback: chainAB() } : {}),
      });
      const call =
        path === "ky"
          ? createClient({ resilience: r })
              .get("https://a.example/v1/x")
              .then((x) => x)
          : r.fetch("https://a.example/v1/x");
      const { value: out, unhandled } = await watchUnhandled(() => clock.run(settled(call)));
      expect(unhandled).toEqual([]);
      expect(clock.pending()).toBe(0);
      expect(r.health().breakers["a.example"]?.failureCount).toBe(2);
      if (path === "chain") {
        expect((out.value as Response).status).toBe(200);
        expect(getResilienceInfo(out.value as Response)?.endpoint).toBe("b");
        return;
      }
      expect(n).toBe(path === "hop" ? 4 : 2);
      if (kind === "never settles") expect(isTimeoutError(out.error)).toBe(true);
      else expect(isRetryExhaustedError(out.error)).toBe(true);
    });
  }

  it("a thenable that settles twice: the first answer, one request", async () => {
    const clock = new TestClock();
    let n = 0;
    const r = createResilience({
      clock,
      timeout: { attempt: 100 },
      fetch: (() => {
        n++;
        return {
          // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
          then(ok: (response: Response) => void) {
            ok(new Response("one"));
            ok(new Response("two", { status: 503 }));
          },
        };
      }) as never,
    });
    const out = await clock.run(settled(r.fetch("https://a.example/x")));
    const response = out.value as Response;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("one");
    expect(n).toBe(1);
    expect(clock.pending()).toBe(0);
  });
});

describe("late answers of a transport that ignores its signal are cancelled", () => {
  const paths = ["plain", "hop", "chain", "hedge", "degradation", "ky", "total"] as const;
  for (const path of paths) {
    it(`${path}: the call settles at its timeout, every late body is cancelled, no timer left`, async () => {
      const clock = new TestClock();
      const waiting: ((response: Response) => void)[] = [];
      const fetch = (input: RequestInfo | URL): Promise<Response> => {
        if (path === "hop" && !urlOf(input).includes("/hop"))
          return Promise.resolve(new Response(null, { status: 302, headers: { location: "/hop" } }));
        // Deaf: the signal is never looked at.
        return new Promise<Response>((resolve) => waiting.push(resolve));
      };
      const r = createResilience({
        clock,
        fetch,
        redirects: "library",
        retry: false,
        timeout: path === "total" ? { total: 100 } : { attempt: 100 },
        ...(path === "chain" ? { fallback: chainAB() } : {}),
        ...(path === "hedge" ? { fallback: chainAB({ hedge: { delay: 10 } }) } : {}),
        ...(path === "degradation" ? { degradation: degradation({ browserSignals: false }) } : {}),
      });
      const call =
        path === "ky"
          ? createClient({ resilience: r })
              .get("https://a.example/v1/x")
              .then((x) => x)
          : r.fetch(
              "https://a.example/v1/x",
              path === "degradation"
                ? {
                    method: "POST",
                    headers: { "content-type": "application/json", "idempotency-key": "k1" },
                    body: JSON.stringify({ resolution: "1080p", model: "premium" }),
                  }
                : {},
            );
      const { value: out, unhandled } = await watchUnhandled(async () => {
        const settledCall = await clock.run(settled(call));
        const bodies = waiting.map((resolve) => {
          const body = trackedBody("hang");
          resolve(new Response(body.stream));
          return body;
        });
        await turns(5);
        return { settledCall, bodies };
      });
      expect(isTimeoutError(out.settledCall.error) || out.settledCall.error instanceof Error).toBe(true);
      expect(out.bodies.length).toBe(path === "chain" || path === "hedge" ? 2 : 1);
      for (const body of out.bodies) expect(body.state.cancelled).toBe(true);
      expect(unhandled).toEqual([]);
      expect(clock.pending()).toBe(0);
    });
  }

  it("a losing hedge that answers after the winner has its body cancelled", async () => {
    const clock = new TestClock();
    const loser = trackedBody("hang");
    let answerA!: (response: Response) => void;
    const r = createResilience({
      clock,
      retry: false,
      fallback: chainAB({ hedge: { delay: 10 } }),
      fetch: (input: RequestInfo | URL) =>
        urlOf(input).includes("a.example")
          ? new Promise<Response>((resolve) => {
              answerA = resolve;
            })
          : Promise.resolve(new Response("B")),
    });
    const response = await clock.run(r.fetch("https://a.example/v1/x"));
    expect(getResilienceInfo(response)?.endpoint).toBe("b");
    answerA(new Response(loser.stream));
    await turns(5);
    expect(loser.state.cancelled).toBe(true);
    expect(await response.text()).toBe("B");
    expect(clock.pending()).toBe(0);
  });
});

describe("odd bodies on answers the layer retries past, or validates", () => {
  class MyResponse extends Response {}
  for (const kind of ["subclass", "used", "locked", "errors mid-way", "body getter throws"] as const) {
    it(`a 503 retried past (${kind}): the retry goes on, the caller gets the next answer`, async () => {
      const clock = new TestClock();
      const body = trackedBody(kind === "errors mid-way" ? "error" : "close", ["a", "b"]);
      let n = 0;
      const r = createResilience({
        clock,
        fetch: async () => {
          n++;
          if (n > 1) return kind === "subclass" ? new MyResponse("ok") : new Response("ok");
          const first =
            kind === "subclass"
              ? new MyResponse(body.stream, { status: 503 })
              : new Response(body.stream, { status: 503 });
          if (kind === "used") await first.text();
          if (kind === "locked") first.body?.getReader();
          if (kind === "body getter throws")
            Object.defineProperty(first, "body", {
              get() {
                throw new Error("body getter failed");
              },
            });
          return first;
        },
      });
      const { value: response, unhandled } = await watchUnhandled(() => clock.run(r.fetch("https://a.example/x")));
      expect(n).toBe(2);
      expect(response.status).toBe(200);
      if (kind === "subclass") {
        expect(response).toBeInstanceOf(MyResponse);
        // The 503 retried past was read to its end (drained), as its source shows.
        expect(body.state.pulls).toBe(3);
      }
      expect(getResilienceInfo(response)?.attempts).toBe(2);
      expect(await response.text()).toBe("ok");
      expect(unhandled).toEqual([]);
      expect(clock.pending()).toBe(0);
    });
  }

  for (const kind of ["errors mid-way", "ends early", "never ends"] as const) {
    it(`validate on a body that ${kind}: the chain moves on to the next endpoint`, async () => {
      const clock = new TestClock();
      const body = trackedBody(kind === "errors mid-way" ? "error" : kind === "never ends" ? "hang" : "close", [
        '{"ok"',
      ]);
      const sent: string[] = [];
      const r = createResilience({
        clock,
        retry: false,
        timeout: { attempt: 500 },
        fallback: chainAB({ validate: true }),
        fetch: async (input: RequestInfo | URL) => {
          const url = urlOf(input);
          sent.push(new URL(url).host);
          return url.includes("a.example") ? new Response(body.stream) : new Response('{"ok":1}');
        },
      });
      const response = await clock.run(r.fetch("https://a.example/v1/x"));
      expect(getResilienceInfo(response)?.endpoint).toBe("b");
      expect(sent).toEqual(["a.example", "b.example"]);
      expect(clock.pending()).toBe(0);
      if (kind === "never ends") {
        // The answer turned down is released: drained for at most 1 s (a real, unref'd timer), then cancelled.
        await new Promise((resolve) => setTimeout(resolve, 1_100));
        expect(body.state.cancelled).toBe(true);
      }
    });
  }
});
