/**
 * Outside-in attack on cancellation and timeouts, on every path: the caller's `AbortSignal` (with and without a
 * custom reason, falsy reasons too), `timeout.attempt` and `timeout.total`, and what is left behind.
 * Docs: docs/retry.md ("A caller's abort is never a failure: it stops the wait or the attempt at once and rejects
 * with `signal.reason`"; "`TimeoutError` | `timeout.attempt` or `timeout.total` ran out with no response | `phase`,
 * `timeout`, `attempts` (the call's; in a chain's `errors`, that endpoint's)"; "a wait that would end past it is not
 * started (the call settles with the last response instead). Neither bounds reading the body of the response you
 * get"; "the layer also stops listening when a call settles, but for one listener it keeps on a signal it links a
 * timeout or a hedge to, however many calls that signal serves"; "the signal such a call hands its transport follows
 * yours after the call settled, as fetch's own does, so aborting then still cancels a body being read"; redirects:
 * "a hop to a half-open host with a free slot takes it, as that host's probe ... (a 5xx or 429, or an error, an
 * attempt timeout among them, re-opens the host; ... the caller's abort, or `timeout.total`, frees the slot at once";
 * "A layer used as another's `fetch`"); docs/breakers.md ("a caller's abort is neither" success nor failure; "A probe
 * aborted by its caller, `timeout.total` or a hedge that won frees its slot at once"; "a queued caller that aborts
 * leaves the queue"); docs/fallback.md ("An abort, or `timeout.total` passing, rejects the call with the caller's
 * reason or the `TimeoutError`"; hedges: "the others are aborted (their upstreams see the connection closed)");
 * docs/health-and-events.md (`request` "outcome"; "a call its caller aborted is left out" of totals; `execute`: "a
 * run its caller aborted is left out"); docs/recipes.md ("A client's or SDK's own `timeout` aborts the whole call,
 * retries included: the layer sees the caller's abort and stops"); SECURITY.md "Nothing outlives its call" ("every
 * timer is cleared when its call settles"); JSDoc of `TimeoutOptions` ("A streamed body is not bounded by it once
 * headers have arrived").
 * How: `createResilience`, `TimeoutError`, `isTimeoutError` (root), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) with real
 * short timeouts, `process.getActiveResourcesInfo()` for timers that hold the process, `getEventListeners` for the
 * listeners left on a long-lived signal. No fake timers.
 * Paths: plain call, backoff sleep, `Retry-After` wait, bulkhead queue, hedge in flight, a chain's endpoint in its
 * `Retry-After` wait, redirect hop (and a hop through a layer used as another's `fetch`), `validate` reading, a
 * degradation rewrite reading a `Request` stream body, the caller reading a streamed body after the call settled,
 * `Request` input carrying its own signal (beside `init.signal`, and `init.signal: null`), the ky client, `execute`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a layer's own attempt timeouts told apart from a caller's abort by identity, per layer):
 * 1. docs/retry.md (redirects: "the caller's abort, or `timeout.total`, frees the slot at once", only "an error, an
 *    attempt timeout among them, re-opens the host") and docs/breakers.md ("a caller's abort is neither"; "A probe
 *    aborted by its caller ... frees its slot at once"). Observed: when the caller's abort reason is this library's
 *    `TimeoutError` of phase "attempt" (what a layer's `timeout.attempt` aborts its transport with, so every call of
 *    a layer used as another's `fetch`, the outer one with `redirects: "platform"` so the inner follows), an abort
 *    during a redirect hop that is a half-open host's probe counts as that host's failure: the inner layer's
 *    breaker goes half_open → open ("probe failed: TimeoutError"), where the same abort of a direct probe to that
 *    host frees the slot and leaves it half-open. Cause: src/http/send/follow-redirects.ts:175,
 *    `settle?.(undefined, error, signal?.aborted && !(isTimeoutError(reason) && reason.phase === "attempt"))` tells
 *    the layer's own attempt timeout from a caller's abort by the reason's class and phase, and the hop's signal is
 *    the caller's (or linked to it, carrying its reason); `sendAttempt` (send-attempt.ts:230) asks only whether the
 *    caller's signal aborted.
 *
 * Held (plain `it`):
 * - A caller's abort (custom reason, and the default `AbortError`) during the backoff sleep, a `Retry-After` wait,
 *   the bulkhead queue, a hedge in flight (with and without `timeout`), a chain endpoint's `Retry-After` wait, a
 *   redirect hop to a hanging host, `validate` reading a stalled body, a degradation rewrite reading a `Request`'s
 *   endless stream, `execute`'s backoff, the ky client's backoff, and a `Request`'s own signal during a backoff
 *   (plain and chain): rejects with that very reason within a few ms, nothing more sent, no timer left, no `retry`
 *   event after it, the `request` event says "aborted", `debugInfo()` totals and breakers count nothing.
 * - Falsy reasons (`null`, `0`, `""`) reach the caller as they are, on a plain call, a hedged chain, `execute` and
 *   the ky client.
 * - A long-lived signal keeps at most one listener from the layer over 70 calls on every path (plain, timeouts,
 *   bulkhead, chain, hedge, redirect, ky).
 * - After the call settled, aborting while the caller reads a streamed body errors the read with the reason and the
 *   server sees the connection closed (plain, both timeouts, hedge, redirect, ky, `Request` input); neither timeout
 *   cuts a body that streams past it.
 * - A `Request`'s own signal is replaced by `init.signal`, and dropped by `init.signal: null`, as fetch does (plain,
 *   hedge, redirect).
 * - `TimeoutError` fields: per endpoint in a chain's `errors` (phase, timeout, that endpoint's attempts); the call's
 *   attempts for `timeout.total`; the ky client gets the layer's error unwrapped; `timeout.total` shorter than a
 *   `Retry-After` settles at once with the 503; `timeout.total` while queued frees the queue.
 * - A hedged chain's loser sleeping out its backoff when the other endpoint wins leaves no timer.
 * - The outer layer's attempt timeout aborting a direct probe of the inner layer frees the slot (host stays
 *   half-open).
 */
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  createResilience,
  isTimeoutError,
  type RequestEvent,
  type Resilience,
  type ResilienceOptions,
  type RetryEvent,
  type TimeoutError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Real timers that hold the process (`unref`'d housekeeping is not listed). */
const timers = () => process.getActiveResourcesInfo().filter((name) => name === "Timeout").length;

type Outcome = { value: unknown } | { error: unknown };
const settle = (p: Promise<unknown>): Promise<Outcome> =>
  p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

const chainOf = (extra: { hedge?: { delay: number } } = {}) =>
  fallback([
    {
      name: "c",
      ...extra,
      endpoints: [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v1` },
      ],
    },
  ]);

const fixed = { initialDelay: 5000, maxDelay: 5000, jitter: "none" } as const;
const status503 = (hit: Hit) => {
  hit.res.statusCode = 503;
  hit.res.end("no");
};
const hangs = () => {};
const neverEnds = () =>
  new ReadableStream<Uint8Array>({
    pull: () => new Promise<void>(() => {}),
  });
const acceptAll = {
  "~standard": { version: 1 as const, vendor: "test", validate: (value: unknown) => ({ value }) },
};

interface Phase {
  name: string;
  setup(): { go: (signal: AbortSignal) => Promise<unknown>; r?: Resilience; wait?: number; after?: () => void };
}

const phases: Phase[] = [
  {
    name: "backoff sleep",
    setup() {
      a.on(status503);
      const r = createResilience({ retry: fixed });
      return { r, go: (signal) => r.fetch(`${a.base}/x`, { signal }) };
    },
  },
  {
    name: "Retry-After wait",
    setup() {
      a.on((hit) => {
        hit.res.writeHead(503, { "retry-after": "5" });
        hit.res.end("no");
      });
      const r = createResilience({ timeout: { total: 20_000, attempt: 1000 } });
      return { r, go: (signal) => r.fetch(`${a.base}/x`, { signal }) };
    },
  },
  {
    name: "bulkhead queue",
    setup() {
      a.on(hangs);
      const r = createResilience({ bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
      const first = new AbortController();
      r.fetch(`${a.base}/first`, { signal: first.signal }).catch(() => {});
      return { r, go: (signal) => r.fetch(`${a.base}/queued`, { signal }), after: () => first.abort() };
    },
  },
  {
    name: "hedge in flight",
    setup() {
      a.on(hangs);
      b.on(hangs);
      const r = createResilience({ fallback: chainOf({ hedge: { delay: 10 } }) });
      return { r, go: (signal) => r.fetch(`${a.base}/v1/x`, { signal }), wait: 60 };
    },
  },
  {
    name: "hedge in flight under timeouts",
    setup() {
      a.on(hangs);
      b.on(hangs);
      const r = createResilience({
        timeout: { total: 20_000, attempt: 10_000 },
        fallback: chainOf({ hedge: { delay: 10 } }),
      });
      return { r, go: (signal) => r.fetch(`${a.base}/v1/x`, { signal }), wait: 60 };
    },
  },
  {
    name: "chain endpoint's Retry-After wait",
    setup() {
      a.on((hit) => {
        hit.res.writeHead(503, { "retry-after": "5" });
        hit.res.end("no");
      });
      const r = createResilience({ fallback: chainOf() });
      return { r, go: (signal) => r.fetch(`${a.base}/v1/x`, { signal }) };
    },
  },
  {
    name: "redirect hop",
    setup() {
      a.on((hit) => {
        hit.res.writeHead(302, { location: `${b.base}/hang` });
        hit.res.end();
      });
      b.on(hangs);
      const r = createResilience({ timeout: { attempt: 10_000 } });
      return { r, go: (signal) => r.fetch(`${a.base}/x`, { signal }) };
    },
  },
  {
    name: "validate reading",
    setup() {
      a.on((hit) => {
        hit.res.writeHead(200, { "content-type": "application/json" });
        hit.res.write("{");
      });
      const r = createResilience({
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "a", url: `${a.base}/v1`, validate: acceptAll },
              { name: "b", url: `${b.base}/v1` },
            ],
          },
        ]),
      });
      return { r, go: (signal) => r.fetch(`${a.base}/v1/x`, { signal }) };
    },
  },
  {
    name: "degradation rewrite reading a Request body",
    setup() {
      const r = createResilience({ degradation: degradation({}) });
      return {
        r,
        go: (signal) =>
          r.fetch(
            new Request(`${a.base}/x`, { method: "POST", body: neverEnds(), duplex: "half", signal } as RequestInit),
          ),
      };
    },
  },
  {
    name: "execute backoff",
    setup() {
      const r = createResilience({ retry: fixed });
      return {
        r,
        go: (signal) =>
          r.execute(
            () => {
              throw new Error("work failed");
            },
            { signal },
          ),
      };
    },
  },
  {
    name: "ky client backoff",
    setup() {
      a.on(status503);
      const api = createClient({ resilience: { retry: fixed } });
      return { go: (signal) => api.get(`${a.base}/x`, { signal }) };
    },
  },
  {
    name: "Request's own signal, backoff",
    setup() {
      a.on(status503);
      const r = createResilience({ retry: fixed, timeout: { attempt: 1000 } });
      return { r, go: (signal) => r.fetch(new Request(`${a.base}/x`, { signal })) };
    },
  },
  {
    name: "Request's own signal, chain backoff",
    setup() {
      a.on(status503);
      const r = createResilience({ retry: fixed, fallback: chainOf() });
      return { r, go: (signal) => r.fetch(new Request(`${a.base}/v1/x`, { signal })) };
    },
  },
];

describe("a caller's abort at each phase: its reason, at once, nothing more sent, nothing left", () => {
  for (const phase of phases) {
    for (const custom of [true, false]) {
      it(`${phase.name} (${custom ? "custom reason" : "default AbortError"})`, async () => {
        const base = timers();
        const { go, r, wait = 80, after } = phase.setup();
        const requests: RequestEvent[] = [];
        const retries: RetryEvent[] = [];
        r?.on("request", (e) => requests.push(e));
        r?.on("retry", (e) => retries.push(e));
        const controller = new AbortController();
        const out = settle(go(controller.signal));
        await sleep(wait);
        const sent = a.hits.length + b.hits.length;
        const retriesBefore = retries.length;
        const started = performance.now();
        controller.abort(custom ? new Error("caller left") : undefined);
        const got = await out;
        const took = performance.now() - started;
        after?.();
        await sleep(30);
        expect(got).toEqual({ error: controller.signal.reason });
        if ("error" in got) expect(got.error).toBe(controller.signal.reason);
        expect(took).toBeLessThan(100);
        expect(a.hits.length + b.hits.length).toBe(sent);
        expect(retries.length).toBe(retriesBefore);
        expect(timers()).toBeLessThanOrEqual(base);
        if (r) {
          expect(r.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
          if (phase.name !== "execute backoff") expect(requests.at(-1)?.outcome).toBe("aborted");
          for (const breaker of Object.values(r.health().breakers)) expect(breaker.state).toBe("closed");
        }
      });
    }
  }
});

describe("falsy abort reasons reach the caller as they are", () => {
  const hang = () => new Promise<Response>(() => {});
  const paths: Record<string, (signal: AbortSignal) => Promise<unknown>> = {
    plain: (signal) =>
      createResilience({ fetch: hang, timeout: { attempt: 5000 } }).fetch("https://a.example/x", { signal }),
    hedge: (signal) =>
      createResilience({
        fetch: hang,
        fallback: fallback([
          {
            name: "c",
            hedge: { delay: 5 },
            endpoints: [
              { name: "a", url: "https://a.example/v1" },
              { name: "b", url: "https://b.example/v1" },
            ],
          },
        ]),
      }).fetch("https://a.example/v1/x", { signal }),
    execute: (signal) => createResilience({}).execute(() => hang(), { signal }),
    ky: (signal) => createClient({ resilience: { fetch: hang } }).get("https://a.example/x", { signal }),
  };
  for (const reason of [null, 0, ""]) {
    for (const [name, go] of Object.entries(paths)) {
      it(`${JSON.stringify(reason)} through ${name}`, async () => {
        const controller = new AbortController();
        const out = settle(go(controller.signal));
        await sleep(20);
        controller.abort(reason);
        expect(await out).toEqual({ error: reason });
      });
    }
  }
});

describe("a long-lived signal keeps at most one of the layer's listeners", () => {
  const ok = () => Promise.resolve(new Response("ok"));
  const cases: Record<string, () => ResilienceOptions> = {
    plain: () => ({ fetch: ok }),
    "both timeouts": () => ({ fetch: ok, timeout: { total: 1000, attempt: 500 } }),
    bulkhead: () => ({ fetch: ok, bulkhead: { maxConcurrent: 1, maxQueue: 100 } }),
    chain: () => ({ fetch: ok, fallback: chainOf() }),
    "hedge and timeouts": () => ({
      fetch: ok,
      timeout: { total: 1000, attempt: 500 },
      fallback: chainOf({ hedge: { delay: 1000 } }),
    }),
    redirect: () => ({
      fetch: (input) =>
        Promise.resolve(
          String(input).endsWith("/x")
            ? new Response(null, { status: 302, headers: { location: "/y" } })
            : new Response("y"),
        ),
      timeout: { attempt: 1000 },
    }),
  };
  for (const [name, options] of Object.entries(cases)) {
    it(name, async () => {
      const r = createResilience(options());
      const controller = new AbortController();
      for (let i = 0; i < 50; i++) await (await r.fetch(`${a.base}/v1/x`, { signal: controller.signal })).text();
      await Promise.all(
        Array.from({ length: 20 }, () =>
          r.fetch(`${a.base}/v1/x`, { signal: controller.signal }).then((res) => res.text()),
        ),
      );
      expect(getEventListeners(controller.signal, "abort").length).toBeLessThanOrEqual(1);
    });
  }
  it("ky client", async () => {
    const api = createClient({ resilience: { fetch: ok, timeout: { attempt: 1000 } } });
    const controller = new AbortController();
    for (let i = 0; i < 30; i++) await api.get(`${a.base}/x`, { signal: controller.signal }).text();
    expect(getEventListeners(controller.signal, "abort").length).toBeLessThanOrEqual(1);
  });
});

/** Ten chunks, one every 70 ms; `/redir` answers a 302 to `/final`. */
function streamer(hit: Hit): void {
  if (hit.path.includes("redir")) {
    hit.res.writeHead(302, { location: hit.path.replace("redir", "final") });
    hit.res.end();
    return;
  }
  hit.res.writeHead(200, { "content-type": "text/plain" });
  let i = 0;
  const tick = setInterval(() => {
    if (hit.res.destroyed) {
      clearInterval(tick);
      return;
    }
    hit.res.write(`chunk${i}\n`);
    if (++i === 10) {
      clearInterval(tick);
      hit.res.end();
    }
  }, 70);
}

describe("the body the caller reads after the call settled", () => {
  // Timeouts with room for a loaded machine to answer the headers; the body streams for 700 ms, well past them.
  const both = { timeout: { total: 400, attempt: 300 } };
  const paths: Record<string, { options: () => ResilienceOptions; path?: string; ky?: boolean; request?: boolean }> = {
    plain: { options: () => ({}) },
    "both timeouts": { options: () => both },
    "hedged chain": { options: () => ({ timeout: { total: 400 }, fallback: chainOf({ hedge: { delay: 5 } }) }) },
    redirect: { options: () => both, path: "redir" },
    "ky client": { options: () => both, ky: true },
    "Request input": { options: () => both, request: true },
  };
  const open = (p: (typeof paths)[string], signal: AbortSignal | null = null): Promise<Response> => {
    const url = `${a.base}/v1/${p.path ?? "x"}`;
    if (p.ky) return createClient({ resilience: p.options() }).get(url, { signal });
    const r = createResilience(p.options());
    return p.request ? r.fetch(new Request(url, { signal })) : r.fetch(url, { signal });
  };
  for (const [name, p] of Object.entries(paths)) {
    it(`${name}: an abort while reading errors the read with the reason, the server sees the connection closed`, async () => {
      a.on(streamer);
      b.on(streamer);
      const controller = new AbortController();
      const res = await open(p, controller.signal);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      const reason = new Error("stop reading");
      controller.abort(reason);
      let error: unknown;
      try {
        for (;;) if ((await reader.read()).done) break;
      } catch (e) {
        error = e;
      }
      expect(error).toBe(reason);
      const hit = a.hits.find((h) => !h.res.writableEnded) ?? (a.hits.at(-1) as Hit);
      expect(await Promise.race([hit.closed.then(() => "closed"), sleep(300).then(() => "open")])).toBe("closed");
    });
    it(`${name}: neither timeout cuts a body that streams past it`, async () => {
      a.on(streamer);
      b.on(streamer);
      const text = await (await open(p)).text();
      expect(text.split("\n").length).toBe(11);
    });
  }
});

describe("a Request's own signal beside init.signal, as fetch", () => {
  const paths: Record<string, () => ResilienceOptions> = {
    plain: () => ({ timeout: { attempt: 1000 } }),
    "hedged chain": () => ({ fallback: chainOf({ hedge: { delay: 10 } }) }),
  };
  for (const [name, options] of Object.entries(paths)) {
    for (const redirect of [false, true]) {
      it(`${name}${redirect ? ", through a 307" : ""}`, async () => {
        a.on((hit) => {
          if (hit.path.endsWith("/r")) {
            hit.res.writeHead(307, { location: hit.path.replace(/r$/, "final") });
            hit.res.end();
            return;
          }
          setTimeout(() => hit.res.end("late"), 100);
        });
        b.on((hit) => setTimeout(() => hit.res.end("late"), 100));
        const r = createResilience(options());
        const url = `${a.base}/v1/${redirect ? "r" : "x"}`;
        const put = (signal: AbortSignal) => new Request(url, { method: "PUT", body: "x", signal });
        const live = new AbortController().signal;
        // Its own signal aborted already, `init.signal` live: sent.
        const before = await settle(r.fetch(put(AbortSignal.abort(new Error("own"))), { signal: live }));
        // Its own aborted mid-call, `init.signal` live: goes on.
        const own = new AbortController();
        const during = settle(r.fetch(put(own.signal), { signal: live }));
        await sleep(40);
        own.abort(new Error("own"));
        // `init.signal: null` drops its own: goes on.
        const own3 = new AbortController();
        const dropped = settle(r.fetch(put(own3.signal), { signal: null }));
        await sleep(40);
        own3.abort(new Error("own"));
        for (const out of [before, await during, await dropped]) {
          expect("value" in out).toBe(true);
          if ("value" in out) expect(await (out.value as Response).text()).toBe("late");
        }
      });
    }
  }
});

describe("TimeoutError, as documented", () => {
  it("a chain's errors hold each endpoint's attempt timeout, with that endpoint's attempts", async () => {
    a.on(hangs);
    b.on(hangs);
    const r = createResilience({
      timeout: { attempt: 50 },
      retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1 },
      fallback: chainOf(),
    });
    const out = await settle(r.fetch(`${a.base}/v1/x`));
    const error = (out as { error: { name: string; errors: Record<string, TimeoutError> } }).error;
    expect(error.name).toBe("FallbackExhaustedError");
    for (const name of ["a", "b"]) {
      const each = error.errors[name] as TimeoutError;
      expect(isTimeoutError(each)).toBe(true);
      expect([each.phase, each.timeout, each.attempts]).toEqual(["attempt", 50, 2]);
    }
  });

  it("timeout.total in a chain: the TimeoutError with the call's attempts, at the deadline", async () => {
    a.on(hangs);
    b.on(hangs);
    const r = createResilience({
      timeout: { attempt: 50, total: 130 },
      retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1 },
      fallback: chainOf(),
    });
    const started = performance.now();
    const out = (await settle(r.fetch(`${a.base}/v1/x`))) as { error: TimeoutError };
    expect(performance.now() - started).toBeLessThan(250);
    expect(isTimeoutError(out.error)).toBe(true);
    expect([out.error.phase, out.error.timeout]).toEqual(["total", 130]);
    expect(out.error.attempts).toBe(a.hits.length + b.hits.length);
  });

  it("the ky client gets the layer's TimeoutError unwrapped (total and attempt)", async () => {
    a.on(hangs);
    const total = (await settle(createClient({ resilience: { timeout: { total: 80 } } }).get(`${a.base}/x`))) as {
      error: TimeoutError;
    };
    expect(isTimeoutError(total.error)).toBe(true);
    expect(total.error.phase).toBe("total");
    const attempt = (await settle(
      createClient({
        resilience: { timeout: { attempt: 40 }, retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1 } },
      }).get(`${a.base}/y`),
    )) as { error: TimeoutError };
    expect(isTimeoutError(attempt.error)).toBe(true);
    expect([attempt.error.phase, attempt.error.attempts]).toEqual(["attempt", 2]);
  });

  it("a Retry-After that would end past timeout.total is not waited for: the 503 at once", async () => {
    a.on((hit) => {
      hit.res.writeHead(503, { "retry-after": "1" });
      hit.res.end("no");
    });
    const r = createResilience({ timeout: { total: 300 } });
    const started = performance.now();
    const res = await r.fetch(`${a.base}/x`);
    expect(res.status).toBe(503);
    expect(performance.now() - started).toBeLessThan(150);
    expect(a.hits.length).toBe(1);
  });

  it("timeout.total while queued in the bulkhead: TimeoutError, the queue freed", async () => {
    a.on(hangs);
    const r = createResilience({ timeout: { total: 80 }, bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
    const first = settle(r.fetch(`${a.base}/1`));
    const queued = (await settle(r.fetch(`${a.base}/2`))) as { error: TimeoutError };
    expect(isTimeoutError(queued.error)).toBe(true);
    expect(queued.error.phase).toBe("total");
    await first;
    expect(r.health().breakers[a.host]).toMatchObject({ active: 0, queued: 0 });
  });
});

it("a hedged chain's loser sleeping out its backoff leaves no timer once the other endpoint won", async () => {
  await sleep(20);
  a.on((hit) => {
    hit.res.writeHead(500);
    hit.res.end("no");
  });
  b.on((hit) => setTimeout(() => hit.res.end("b"), 30));
  const base = timers();
  const r = createResilience({
    timeout: { total: 5000 },
    retry: { initialDelay: 3000, maxDelay: 3000, jitter: "none" },
    fallback: chainOf({ hedge: { delay: 10 } }),
  });
  const res = await r.fetch(`${a.base}/v1/x`);
  expect(await res.text()).toBe("b");
  await sleep(50);
  expect(timers()).toBeLessThanOrEqual(base);
  // Counted by path: a request a test before sent as its deadline passed may land here late, under load.
  expect(a.hits.filter((hit) => hit.path === "/v1/x")).toHaveLength(1);
});

describe("a layer used as another's fetch: the outer layer's attempt timeout is the inner layer's caller's abort", () => {
  /** An inner layer whose breaker for `b` is half-open (opened by one 503, `timeout` 50 ms). */
  async function halfOpenInner(): Promise<{ inner: Resilience; changes: BreakerEvent[] }> {
    b.on((hit) => {
      if (hit.n === 1) status503(hit);
    });
    const inner = createResilience({ retry: false, breaker: { failureThreshold: 1, timeout: 50 } });
    const changes: BreakerEvent[] = [];
    inner.on("breaker", (e) => changes.push(e));
    await (await inner.fetch(`${b.base}/fail`)).text();
    await sleep(70);
    expect(inner.health().breakers[b.host]?.state).toBe("half_open");
    return { inner, changes };
  }

  it("aborting a direct probe frees its slot: the host stays half-open", async () => {
    const { inner, changes } = await halfOpenInner();
    const outer = createResilience({ fetch: inner.fetch, retry: false, breaker: false, timeout: { attempt: 80 } });
    const out = (await settle(outer.fetch(`${b.base}/hang`))) as { error: TimeoutError };
    expect(out.error.phase).toBe("attempt");
    expect(b.hits.length).toBe(2);
    expect(inner.health().breakers[b.host]?.state).toBe("half_open");
    expect(changes.map((e) => `${e.from}>${e.to}`)).toEqual(["closed>open", "open>half_open"]);
  });

  it("aborting a redirect hop that is the half-open host's probe frees its slot too, counting nothing", async () => {
    const { inner, changes } = await halfOpenInner();
    a.on((hit) => {
      hit.res.writeHead(302, { location: `${b.base}/hang` });
      hit.res.end();
    });
    // The outer layer leaves the redirect to its transport (the inner layer follows it, hop by hop).
    const outer = createResilience({
      fetch: inner.fetch,
      retry: false,
      breaker: false,
      redirects: "platform",
      timeout: { attempt: 80 },
    });
    const out = (await settle(outer.fetch(`${a.base}/x`))) as { error: TimeoutError };
    expect(out.error.phase).toBe("attempt");
    expect(b.hits.length).toBe(2); // the hop reached b, which hung
    await sleep(10);
    // Documented: the caller's abort frees the hop's slot; neither success nor failure.
    expect(changes.map((e) => `${e.from}>${e.to}`)).toEqual(["closed>open", "open>half_open"]);
    expect(inner.health().breakers[b.host]?.state).toBe("half_open");
  });
});
