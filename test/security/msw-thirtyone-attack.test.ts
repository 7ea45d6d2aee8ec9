/**
 * Outside-in attack on a user's test suite that mocks generation APIs with MSW 3 (`setupServer` from `msw/node`,
 * which in Node lets undici's own fetch run and answers at the socket, so every answer is a real undici
 * `Response`) and runs the layer, its fallback chains and the `./testing` kit against those mocks.
 * Docs: docs/fallback.md ("`validate` reads at most `maxReplayBytes` of the body, within `timeout.attempt` (else
 * what is left of `timeout.total`, else 30 s): a body that stalls or never ends fails validation"; "When every
 * endpoint failed, the call resolves with the last response any endpoint gave (an endpoint's answer is what its
 * last attempt got: one whose retries ended on a network error gave none …)"; "or rejects with
 * `FallbackExhaustedError` … if an endpoint tried after it may have processed a request that is not safe to send
 * twice (a keyless POST whose connection dropped once it went out …)"; "So does a 2xx that fails `validate`: the
 * endpoint took the job, and the call resolves with that answer as it is"; "An abort, or `timeout.total`
 * passing, rejects the call with the caller's reason or the `TimeoutError` even when an earlier endpoint's
 * answer was turned down"; "that answer, like every answer not returned (…, a body that failed `validate`), is
 * released: its body drained or cancelled"; "`res.url` says where they ended"; `statistics()`: "a run its
 * caller aborted, or that `timeout.total` ended, is not counted, nor the endpoint it was waiting on");
 * docs/retry.md ("The result has `redirected: true` and the last hop's `url`", `integrity` "checked on the final
 * answer as fetch checks it"); docs/testing.md (the README/testing.md component test verbatim; "`TestClock` …
 * `run(promise)` which fires timers until the promise settles, so backoffs take no real time"; "Use a stub or
 * MSW with a `TestClock`"; `hang()` "closes when the client aborts"; `latency(ms, then, { clock? })`; "a
 * streamed body its reader cancels stops waiting for its next chunk, on any clock"; `stream(…, { breakAfter })`
 * "the client sees `TypeError: terminated`"; "requests it re-sends (fallbacks, redirects, rewrites) keep every
 * header under MSW too"; `recordEvents` and its `expect…` helpers); docs/options.md (`store` "none
 * (instance-local)"); docs/breakers.md ("`store: memoryStore()` shares transitions between `Resilience`
 * instances … a host one opened is open for all"); the README's two test examples.
 * How: `createResilience`, `getResilienceInfo`, `memoryStore` (root), `fallback` (./fallback), `TestClock`,
 * `upstream`, `recordEvents`, `status`, `json`, `stream`, `hang`, `latency`, `networkError`, `sequence`
 * (./testing); MSW 3 `http`/`HttpResponse` handlers of my own (a `ReadableStream` body that stalls and records
 * its cancel, redirects, a handler that throws); test/helpers/msw.ts (`useMswServer` with
 * `onUnhandledFrame: "error"`, `route`), test/helpers/unhandled.ts (`watchUnhandled`).
 * Paths: plain call, retry, library redirect (302, 307), `integrity`, chain with `validate` (body too large,
 * stalled, broken mid-body, after a redirect), keyless POST chain, hedge, `Request` input, `transform`.
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - Chain, `validate` turning p down: a body past `maxReplayBytes`, q a network error (GET): the call resolves
 *   with p's answer given piped on: status, headers, `url`, `redirected` false, `getResilienceInfo` endpoint "p",
 *   the whole body on it and on its `clone()`, the clone (and the clone's clone) keeping `url`. After an MSW 302
 *   at p, the piped answer says the target's `url`, `redirected` true, on its clones too.
 * - p's MSW `ReadableStream` body stalls: `validate` gives up within `timeout.attempt`; q hangs: the caller's
 *   abort rejects with the caller's own reason; `timeout.total` (real clock, and on a `TestClock`) rejects with a
 *   `TimeoutError` of phase "total"; nothing unhandled; the stalled p body's source is cancelled (as is q's hung
 *   request: its handler hears the abort). With no timeouts, on a `TestClock` the 30 s bound passes on the clock
 *   (no real wait) and q serves. The piped stalled answer read after q failed: the first chunk, then the
 *   caller's later abort rejects the read with its reason, nothing unhandled; a cancel of the piped body
 *   reaches p's source. A body that breaks mid-way: the read rejects `TypeError: terminated`, nothing unhandled.
 * - Statistics after an abort or `timeout.total` while q was waited on: p 1 call 0 successes, q not counted;
 *   no breaker counted a failure; the `request` event's outcome "aborted" / "error".
 * - Keyless POST: p 503, q `HttpResponse.error()`: `FallbackExhaustedError` "stopped after "q", which may have
 *   processed the request" (MSW 3's mocked network error reaches undici as a dropped socket whose cause is the
 *   error Response, so the layer cannot call it refused); q hit once. p's own `HttpResponse.error()`: stops
 *   after "p", q never hit. A q handler that throws: MSW answers 500, the call resolves with q's 500
 *   (`fromFallback`). A keyless POST whose stalled 2xx `validate` turned down: that answer, piped, q never hit.
 * - Library redirects under MSW: `url`, `redirected` on the answer and its `clone()`; a 307 replays body and
 *   every header. `integrity`: the right digest passes (after a redirect too, `url`/`redirected` kept on the
 *   clone), a wrong one rejects.
 * - Headers of a `Request` input built with a body and no content-type of its own (MSW's `Headers` quirk) reach
 *   a same-origin fallback endpoint, a `transform`ed one, a retry and a hedge whole.
 * - The README's two component tests, verbatim, under MSW 3 with `onUnhandledFrame: "error"`: backoffs and the
 *   breaker's timeout on the `TestClock`, no real sleep (one key for three requests, `expectRetries(2)`).
 *   `latency` on the clock past `timeout.attempt`: three attempts, two retries, nothing pending. `clock.run`
 *   with a pending attempt timeout never jumped ahead of an MSW answer (30 calls: plain, a 200 kB POST, a
 *   redirect). A `stream` reader's cancel removes its interval timer from the clock.
 * - `recordEvents`: retry events keyed by host, the fallback event p → q, `expectFallback`, `expectRetries(n,
 *   key)`.
 * - Between tests: `server.resetHandlers()` leaves an open breaker open in the layer that opened it; a new layer
 *   starts closed (the store is instance-local); a shared `memoryStore()` carries the open host to a new layer.
 *   A request no handler matches under `onUnhandledFrame: "error"` rejects the call as a network error.
 */
import { HttpResponse, http } from "msw";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  FallbackExhaustedError,
  getResilienceInfo,
  isCircuitOpenError,
  isTimeoutError,
  memoryStore,
  type StandardSchemaLike,
} from "../../src/index.ts";
import {
  hang,
  json,
  latency,
  networkError,
  recordEvents,
  sequence,
  status,
  stream,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";
import { route, useMswServer } from "../helpers/msw.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

const server = useMswServer();

const P = "https://p.example/v1";
const Q = "https://q.example/v1";
const JOBS_P = `${P}/jobs`;
const JOBS_Q = `${Q}/jobs`;

/** A Standard Schema: an object with an `id`. */
const Job: StandardSchemaLike = {
  "~standard": {
    version: 1,
    vendor: "attack",
    validate: (value) =>
      typeof value === "object" && value !== null && "id" in value ? { value } : { issues: [{ message: "no id" }] },
  },
};

type Extra = Parameters<typeof createResilience>[0];

/** p (validated) then q; no retries, 1 KiB replay bound unless told. */
function chain(extra: Extra = {}) {
  return createResilience({
    retry: false,
    maxReplayBytes: 1024,
    ...extra,
    fallback: fallback([
      {
        name: "c",
        endpoints: [
          { name: "p", url: P, validate: Job },
          { name: "q", url: Q },
        ],
      },
    ]),
  });
}

/** A stalled JSON body of my own (MSW `ReadableStream`): one chunk, then nothing; records its cancel. */
function stalling(method: "GET" | "POST", url: string, cancels: unknown[]) {
  const handler = method === "GET" ? http.get : http.post;
  return handler(url, () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"id":'));
      },
      cancel(reason) {
        cancels.push(reason);
      },
    });
    return new HttpResponse(body, { headers: { "content-type": "application/json", "x-from": "p" } });
  });
}

const settle = <T>(promise: Promise<T>): Promise<T | unknown> =>
  promise.then(
    (value) => value,
    (error: unknown) => error,
  );
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a chain's turned-down answer given as its last answer (MSW bodies)", () => {
  it("too large for validate, q a network error: piped on with status, headers, url, clone", async () => {
    route(server, "GET", JOBS_P, json({ pad: "y".repeat(5000) }, { headers: { "x-from": "p" } }));
    route(server, "GET", JOBS_Q, networkError());
    const res = await chain().fetch(JOBS_P);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-from")).toBe("p");
    expect(res.url).toBe(JOBS_P);
    expect(res.redirected).toBe(false);
    expect(getResilienceInfo(res)?.endpoint).toBe("p");
    const copy = res.clone();
    expect(copy.url).toBe(JOBS_P);
    expect(copy.clone().url).toBe(JOBS_P);
    expect((await res.text()).length).toBeGreaterThan(5000);
    expect(JSON.parse(await copy.text()).pad).toHaveLength(5000);
  });

  it("after an MSW 302 at p: the target's url and redirected true, on every clone", async () => {
    server.use(http.get(JOBS_P, () => HttpResponse.redirect("https://p2.example/out", 302)));
    route(server, "GET", "https://p2.example/out", json({ pad: "y".repeat(5000) }));
    route(server, "GET", JOBS_Q, networkError());
    const res = await chain().fetch(JOBS_P);
    const copy = res.clone();
    expect([res.url, res.redirected, copy.url, copy.redirected, copy.clone().redirected]).toEqual([
      "https://p2.example/out",
      true,
      "https://p2.example/out",
      true,
      true,
    ]);
    expect(getResilienceInfo(res)?.endpoint).toBe("p");
    expect((await copy.text()).length).toBeGreaterThan(5000);
    await res.body?.cancel();
  });

  it("stalled: the caller's abort while q hangs rejects with its reason, nothing unhandled, both released", async () => {
    const cancels: unknown[] = [];
    server.use(stalling("GET", JOBS_P, cancels));
    const heard: string[] = [];
    server.use(
      http.get(
        JOBS_Q,
        ({ request }) =>
          new Promise<Response>((resolve) =>
            request.signal.addEventListener("abort", () => {
              heard.push("q aborted");
              resolve(HttpResponse.error());
            }),
          ),
      ),
    );
    const resilience = chain({ timeout: { attempt: 50 } });
    const controller = new AbortController();
    const reason = new Error("the user left");
    const { value, unhandled } = await watchUnhandled(async () => {
      const call = settle(resilience.fetch(JOBS_P, { signal: controller.signal }));
      await sleep(90);
      controller.abort(reason);
      return call;
    });
    await sleep(20);
    expect(value).toBe(reason);
    expect(unhandled).toEqual([]);
    expect(cancels.length).toBeGreaterThan(0);
    expect(heard).toEqual(["q aborted"]);
  });

  it("stalled: timeout.total while q hangs rejects with the TimeoutError (real clock and TestClock)", async () => {
    route(server, "GET", JOBS_P, stream(['{"id":'], { stallAfter: 1, contentType: "application/json" }));
    route(server, "GET", JOBS_Q, hang());
    const real = await watchUnhandled(() => settle(chain({ timeout: { attempt: 100, total: 150 } }).fetch(JOBS_P)));
    expect(isTimeoutError(real.value) && real.value.phase).toBe("total");
    expect(real.unhandled).toEqual([]);

    const clock = new TestClock();
    const started = Date.now();
    const onClock = await watchUnhandled(() =>
      settle(clock.run(chain({ clock, timeout: { attempt: 1000, total: 1500 } }).fetch(JOBS_P))),
    );
    expect(isTimeoutError(onClock.value) && onClock.value.phase).toBe("total");
    expect(onClock.unhandled).toEqual([]);
    expect(clock.now()).toBe(1500);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(clock.pending()).toBe(0);
  });

  it("stalled, no timeouts, on a TestClock: the 30 s bound passes on the clock and q serves", async () => {
    route(server, "GET", JOBS_P, stream(['{"id":'], { stallAfter: 1, contentType: "application/json" }));
    route(server, "GET", JOBS_Q, json({ id: "q" }));
    const clock = new TestClock();
    const started = Date.now();
    const res = await clock.run(chain({ clock }).fetch(JOBS_P));
    expect(getResilienceInfo(res)?.endpoint).toBe("q");
    expect(clock.now()).toBe(30_000);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("stalled then q failed: the piped answer reads its first chunk; a later abort rejects the read", async () => {
    route(server, "GET", JOBS_P, stream(['{"id":'], { stallAfter: 1, contentType: "application/json" }));
    route(server, "GET", JOBS_Q, networkError());
    const controller = new AbortController();
    const late = new Error("late");
    const { value, unhandled } = await watchUnhandled(async () => {
      const res = await chain({ timeout: { attempt: 50 } }).fetch(JOBS_P, { signal: controller.signal });
      expect(res.clone().url).toBe(JOBS_P);
      const reader = res.body?.getReader();
      const first = await reader?.read();
      expect(new TextDecoder().decode(first?.value)).toBe('{"id":');
      const pending = settle<unknown>(reader ? reader.read() : Promise.resolve(undefined));
      controller.abort(late);
      return pending;
    });
    expect(value).toBe(late);
    expect(unhandled).toEqual([]);
  });

  it("the piped answer's cancel reaches p's source; a turned-down p is released when q serves", async () => {
    const cancels: unknown[] = [];
    server.use(stalling("GET", JOBS_P, cancels));
    route(server, "GET", JOBS_Q, networkError());
    const res = await chain({ timeout: { attempt: 50 } }).fetch(JOBS_P);
    await res.body?.cancel(new Error("done"));
    await sleep(30);
    expect(cancels.length).toBeGreaterThan(0);

    server.resetHandlers();
    const released: unknown[] = [];
    server.use(stalling("GET", JOBS_P, released));
    route(server, "GET", JOBS_Q, json({ id: "q" }));
    const served = await chain({ timeout: { attempt: 50 } }).fetch(JOBS_P);
    expect(await served.json()).toEqual({ id: "q" });
    await sleep(30);
    expect(released.length).toBeGreaterThan(0);
  });

  it("a body that breaks mid-way: the piped answer's read rejects TypeError terminated, nothing unhandled", async () => {
    route(server, "GET", JOBS_P, stream(['{"id":', '"x"}'], { breakAfter: 1, contentType: "application/json" }));
    route(server, "GET", JOBS_Q, networkError());
    const { value, unhandled } = await watchUnhandled(async () => {
      const res = await chain().fetch(JOBS_P);
      expect(getResilienceInfo(res)?.endpoint).toBe("p");
      return settle(res.text());
    });
    expect(value).toBeInstanceOf(TypeError);
    expect((value as Error).message).toBe("terminated");
    expect(unhandled).toEqual([]);
  });

  for (const how of ["abort", "total"] as const) {
    it(`statistics and breakers after ${how === "abort" ? "an abort" : "timeout.total"} while q was waited on`, async () => {
      route(server, "GET", JOBS_P, json({ pad: "y".repeat(5000) }));
      route(server, "GET", JOBS_Q, hang());
      const clock = new TestClock();
      const resilience = chain({ clock, timeout: how === "total" ? { total: 1000 } : {} });
      const recorder = recordEvents(resilience);
      const controller = new AbortController();
      const call = resilience.fetch(JOBS_P, { signal: controller.signal });
      if (how === "abort") {
        await sleep(50);
        controller.abort(new Error("mine"));
      }
      await settle(clock.run(call));
      const stats = resilience.fallback.chain("c").statistics();
      expect(stats.fallbacks.p).toMatchObject({ calls: 1, successes: 0 });
      expect(stats.fallbacks.q).toMatchObject({ calls: 0 });
      const breakers = resilience.health().breakers;
      expect(breakers["p.example"]?.failureCount).toBe(0);
      expect(breakers["q.example"]?.failureCount).toBe(0);
      recorder.expectFallback("p", "q");
      expect(recorder.of("request").at(-1)?.outcome).toBe(how === "abort" ? "aborted" : "error");
    });
  }
});

describe("a keyless POST chain under MSW", () => {
  it("p 503, q HttpResponse.error(): FallbackExhaustedError, stopped after q, q hit once", async () => {
    route(server, "POST", JOBS_P, status(503));
    const q = route(server, "POST", JOBS_Q, networkError());
    const error = await settle(chain().fetch(JOBS_P, { method: "POST", body: "{}" }));
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect((error as Error).message).toMatch(/stopped after "q", which may have processed the request/);
    expect(q.count()).toBe(1);
  });

  it("p HttpResponse.error(): stops after p, q never hit", async () => {
    route(server, "POST", JOBS_P, networkError());
    const q = route(server, "POST", JOBS_Q, json({ id: 1 }));
    const error = await settle(chain().fetch(JOBS_P, { method: "POST", body: "{}" }));
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect((error as Error).message).toMatch(/stopped after "p"/);
    expect(q.count()).toBe(0);
  });

  it("p 503, q's handler throws: MSW's 500 is the call's answer, from q", async () => {
    route(server, "POST", JOBS_P, status(503));
    server.use(
      http.post(JOBS_Q, () => {
        throw new TypeError("handler bug");
      }),
    );
    const res = await chain().fetch(JOBS_P, { method: "POST", body: "{}" });
    expect(res.status).toBe(500);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "q", fromFallback: true });
    await res.body?.cancel();
  });

  it("a stalled 2xx validate turned down: that answer, piped, q never hit", async () => {
    route(server, "POST", JOBS_P, stream(['{"id":'], { stallAfter: 1, contentType: "application/json" }));
    const q = route(server, "POST", JOBS_Q, json({ id: 1 }));
    const clock = new TestClock();
    const res = await clock.run(
      chain({ clock, timeout: { attempt: 1000 } }).fetch(JOBS_P, { method: "POST", body: "{}" }),
    );
    expect([res.status, res.url, getResilienceInfo(res)?.endpoint, q.count()]).toEqual([200, JOBS_P, "p", 0]);
    const copy = res.clone();
    expect(copy.url).toBe(JOBS_P);
    // Both tee branches must be cancelled for either cancel to settle (as for any fetched response).
    await Promise.all([res.body?.cancel(), copy.body?.cancel()]);
  });
});

describe("redirects and integrity against MSW", () => {
  const body = '{"ok":1}';
  const digest = async () =>
    Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body))).toString("base64");

  it("a 302 followed by the library: url and redirected on the answer and its clone", async () => {
    server.use(http.get("https://p.example/a", () => HttpResponse.redirect("https://r.example/b", 302)));
    server.use(http.get("https://r.example/b", () => HttpResponse.json({ ok: 1 })));
    const res = await createResilience({ retry: false, redirects: "library" }).fetch("https://p.example/a");
    const copy = res.clone();
    expect([res.url, res.redirected, copy.url, copy.redirected]).toEqual([
      "https://r.example/b",
      true,
      "https://r.example/b",
      true,
    ]);
    expect(getResilienceInfo(res)?.endpoint).toBe("p.example");
    expect(await copy.json()).toEqual({ ok: 1 });
  });

  it("integrity: the right digest passes after a redirect (clone keeps url), a wrong one rejects", async () => {
    server.use(http.get("https://p.example/a", () => HttpResponse.redirect("https://r.example/b", 302)));
    server.use(
      http.get(
        "https://r.example/b",
        () => new HttpResponse(body, { headers: { "content-type": "application/json" } }),
      ),
    );
    const resilience = createResilience({ retry: false });
    const res = await resilience.fetch("https://p.example/a", { integrity: `sha256-${await digest()}` });
    const copy = res.clone();
    expect([res.url, res.redirected, copy.url, copy.redirected]).toEqual([
      "https://r.example/b",
      true,
      "https://r.example/b",
      true,
    ]);
    expect(await copy.text()).toBe(body);
    const direct = await resilience.fetch("https://r.example/b", { integrity: `sha256-${await digest()}` });
    expect([direct.url, direct.redirected, direct.clone().url]).toEqual([
      "https://r.example/b",
      false,
      "https://r.example/b",
    ]);
    expect(await direct.text()).toBe(body);
    const bad = await settle(resilience.fetch("https://p.example/a", { integrity: "sha256-AAAA" }));
    expect(String((bad as Error).cause)).toMatch(/integrity mismatch/);
  });
});

describe("headers of a Request input under MSW's Headers wrapper", () => {
  const input = () =>
    new Request(JOBS_P, {
      method: "POST",
      body: '{"a":1}',
      headers: { authorization: "Bearer k", "x-trace": "t1", "idempotency-key": "k1" },
    });

  it("reach a same-origin fallback endpoint, a transformed one, a 307, a retry and a hedge whole", async () => {
    route(server, "POST", JOBS_P, status(503));
    const q = route(server, "POST", "https://p.example/v2/jobs", json({ id: 1 }));
    const same = [
      { name: "p", url: P },
      { name: "q", url: "https://p.example/v2" },
    ];
    await createResilience({ retry: false, fallback: fallback([{ name: "c", endpoints: same }]) }).fetch(input());
    await createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            same[0] as (typeof same)[0],
            { ...(same[1] as (typeof same)[1]), transform: (r) => ({ ...r, body: { b: 2 } }) },
          ],
        },
      ]),
    }).fetch(input());
    expect(q.header("authorization")).toEqual(["Bearer k", "Bearer k"]);
    expect(q.header("x-trace")).toEqual(["t1", "t1"]);
    expect(q.bodies).toEqual(['{"a":1}', '{"b":2}']);

    server.resetHandlers();
    server.use(http.post(JOBS_P, () => new HttpResponse(null, { status: 307, headers: { location: "/v3/jobs" } })));
    const target = route(server, "POST", "https://p.example/v3/jobs", json({ id: 1 }));
    const moved = await createResilience({ retry: false }).fetch(input());
    expect([moved.url, moved.redirected]).toEqual(["https://p.example/v3/jobs", true]);
    expect([target.header("authorization"), target.header("x-trace"), target.bodies]).toEqual([
      ["Bearer k"],
      ["t1"],
      ['{"a":1}'],
    ]);

    server.resetHandlers();
    const again = route(server, "POST", JOBS_P, status(503), json({ id: 1 }));
    const clock = new TestClock();
    await clock.run(createResilience({ clock }).fetch(input()));
    expect(again.header("authorization")).toEqual(["Bearer k", "Bearer k"]);
    expect(again.header("x-trace")).toEqual(["t1", "t1"]);

    server.resetHandlers();
    route(server, "POST", JOBS_P, hang());
    const hedged = route(server, "POST", "https://p.example/v2/jobs", json({ id: 1 }));
    const hedgeClock = new TestClock();
    const res = await hedgeClock.run(
      createResilience({
        clock: hedgeClock,
        retry: false,
        fallback: fallback([{ name: "c", hedge: { delay: 100 }, endpoints: same }]),
      }).fetch(input()),
    );
    expect(getResilienceInfo(res)?.endpoint).toBe("q");
    expect([hedged.header("authorization"), hedged.header("x-trace")]).toEqual([["Bearer k"], ["t1"]]);
  });
});

describe("the kit's TestClock and EventRecorder against MSW", () => {
  async function generateImage(fetchImpl: typeof fetch, prompt: string): Promise<{ url: string }> {
    const res = await fetchImpl("https://gen.example/v1/images", { method: "POST", body: JSON.stringify({ prompt }) });
    return (await res.json()) as { url: string };
  }

  it("README: shows the image after two 503s (no real backoff)", async () => {
    const api = upstream(
      "POST",
      "https://gen.example/v1/images",
      sequence([status(503, { retryAfter: 1 }), status(503), json({ url: "https://cdn.example/cat.png" })]),
    );
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { idempotencyKey: true } });
    const recorder = recordEvents(resilience);
    const started = Date.now();
    const image = await clock.run(generateImage(resilience.fetch, "a cat"));
    expect(image.url).toBe("https://cdn.example/cat.png");
    expect(api.count()).toBe(3);
    expect(new Set(api.header("idempotency-key")).size).toBe(1);
    recorder.expectRetries(2);
    expect(clock.now()).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("README: stops calling a dead API, then probes it after the breaker's timeout", async () => {
    const api = upstream("POST", "https://gen.example/v1/images", status(503));
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, breaker: { failureThreshold: 2, timeout: 10_000 } });
    for (let i = 0; i < 2; i++) await resilience.fetch("https://gen.example/v1/images", { method: "POST" });
    await expect(resilience.fetch("https://gen.example/v1/images", { method: "POST" })).rejects.toThrow(/open/i);
    expect(api.count()).toBe(2);
    await clock.advance(10_000);
    await resilience.fetch("https://gen.example/v1/images", { method: "POST" });
    expect(api.count()).toBe(3);
  });

  it("latency on the clock past timeout.attempt: three attempts, two retries, nothing left pending", async () => {
    const clock = new TestClock();
    const api = route(server, "GET", "https://l.example/x", latency(2000, json({ ok: 1 }), { clock }));
    const resilience = createResilience({ clock, retry: { maxAttempts: 3 }, timeout: { attempt: 1000 } });
    const recorder = recordEvents(resilience);
    const error = await settle(clock.run(resilience.fetch("https://l.example/x")));
    expect((error as Error).message).toMatch(/attempt timeout of 1000 ms/);
    expect(api.count()).toBe(3);
    recorder.expectRetries(2, "l.example");
    expect(clock.pending()).toBe(0);
  });

  it("clock.run never jumps a pending attempt timeout ahead of an MSW answer", async () => {
    route(server, "GET", "https://t.example/x", json({ id: 1 }));
    route(server, "POST", "https://t.example/y", json({ id: "y".repeat(100_000) }));
    server.use(http.get("https://t.example/r", () => HttpResponse.redirect("https://t2.example/z", 302)));
    route(server, "GET", "https://t2.example/z", json({ id: 1 }));
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, timeout: { attempt: 5000 } });
    const failures: unknown[] = [];
    for (let i = 0; i < 10; i++) {
      for (const [url, init] of [
        ["https://t.example/x", {}],
        ["https://t.example/y", { method: "POST", body: "z".repeat(200_000) }],
        ["https://t.example/r", {}],
      ] as const) {
        await clock.run(resilience.fetch(url, init).then((res) => res.json())).catch((e: unknown) => failures.push(e));
      }
    }
    expect(failures).toEqual([]);
    expect(clock.now()).toBe(0);
  });

  it("a stream reader's cancel takes its interval timer off the clock", async () => {
    const clock = new TestClock();
    route(server, "GET", "https://s.example/x", stream(["a", "b", "c"], { interval: 1000, clock }));
    const res = await clock.run(createResilience({ clock, retry: false }).fetch("https://s.example/x"));
    const reader = res.body?.getReader();
    expect(new TextDecoder().decode((await reader?.read())?.value)).toBe("a");
    await sleep(10);
    expect(clock.pending()).toBe(1);
    await reader?.cancel();
    await sleep(50);
    expect(clock.pending()).toBe(0);
  });

  it("EventRecorder: retries keyed by host, the fallback p → q, the request event last", async () => {
    route(server, "GET", JOBS_P, status(503));
    route(server, "GET", JOBS_Q, sequence([status(503), json({ id: 1 })]));
    const clock = new TestClock();
    const resilience = chain({ clock, retry: { maxAttempts: 2 } });
    const recorder = recordEvents(resilience);
    const res = await clock.run(resilience.fetch(JOBS_P));
    expect(getResilienceInfo(res)?.endpoint).toBe("q");
    recorder.expectRetries(1, "p.example");
    recorder.expectRetries(1, "q.example");
    recorder.expectFallback("p", "q");
    expect(recorder.events.map((e) => e.type)).toEqual(["retry", "fallback", "retry", "request"]);
  });
});

describe("isolating layers between tests (server.resetHandlers)", () => {
  it("an open breaker stays with its layer; a new layer starts closed; a shared memoryStore carries it", async () => {
    const store = memoryStore();
    const opts = { retry: false, breaker: { failureThreshold: 1, timeout: 60_000 } } as const;
    route(server, "GET", "https://b.example/x", status(503));
    const old = createResilience(opts);
    const shared = createResilience({ ...opts, store });
    await (await old.fetch("https://b.example/x")).body?.cancel();
    await (await shared.fetch("https://b.example/x")).body?.cancel();

    server.resetHandlers(); // the "next test": a healthy API
    const api = route(server, "GET", "https://b.example/x", json({ ok: 1 }));
    expect(isCircuitOpenError(await settle(old.fetch("https://b.example/x")))).toBe(true);
    expect(isCircuitOpenError(await settle(createResilience({ ...opts, store }).fetch("https://b.example/x")))).toBe(
      true,
    );
    expect(api.count()).toBe(0);
    const fresh = await createResilience(opts).fetch("https://b.example/x");
    expect(await fresh.json()).toEqual({ ok: 1 });
    expect(api.count()).toBe(1);
  });

  it("a request no handler matches (onUnhandledFrame: error) rejects the call as a network error", async () => {
    const error = await settle(createResilience({ retry: false }).fetch("https://nowhere.example/x"));
    expect((error as Error).name).toBe("RetryExhaustedError");
    expect(String(((error as Error).cause as Error)?.message)).toBe("fetch failed");
  });
});
