/**
 * Outside-in attack on one long-lived `AbortSignal` (a page's, a Worker request's, an app's shutdown signal) shared by
 * many calls, on every path: what stays on it, whether Node warns, and what its final abort does to calls pending and
 * to bodies still being read.
 * Docs: docs/retry.md ("an `init.signal` … the layer also stops listening when a call settles, but for one listener
 * it keeps on a signal it links a timeout or a hedge to, however many calls that signal serves, gone with the
 * signal; the signal such a call hands its transport follows yours after the call settled, as fetch's own does, so
 * aborting then still cancels a body being read, and it costs no memory per call on a signal that lives long";
 * "A caller's abort is never a failure: it stops the wait or the attempt at once and rejects with `signal.reason`";
 * "Neither bounds reading the body of the response you get: that read is yours, under your own signal");
 * docs/fallback.md ("An abort, or `timeout.total` passing, rejects the call with the caller's reason … even when …
 * a `respond` or `transform` ignores the signal"; a body `validate` stopped reading comes "as a new `Response` that
 * pipes on the rest of its body under your signal"); SECURITY.md "Nothing outlives its call" ("every timer is
 * cleared when its call settles, but housekeeping, under `unref`'d timers that never hold a process"; "a call
 * settles at its abort or timeout").
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `resilientProxy` (./cloudflare, run in Node as a plain handler); two node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) answering by path: 200 with 20 kB, 503, 503 with `Retry-After: 30`, a reset
 * connection, nothing (stall / hang), headers and one chunk then nothing (trickle), a 302 to the other origin;
 * `getEventListeners(signal, "abort")`, `process.on("warning")`, `gc` (through `v8.setFlagsFromString
 * ("--expose-gc")`), `process.getActiveResourcesInfo()` for ref'd `Timeout`s, and a child `node`
 * (`--experimental-strip-types`) that must exit on its own. Breakers and the retry budget are off, so every call
 * reaches its upstream.
 * Paths: plain call (no timeout, `timeout.attempt`, `timeout.total`, both), chain of two endpoints, hedged chain,
 * chain `validate` with `timeout.attempt`, chain with an async `transform`, followed redirect to another origin
 * (plain, `timeout.total`), degradation rewrite of a `Request` body, `Request` input carrying the signal,
 * `init.signal` overriding a `Request`'s, ky client (plain, `timeout.attempt`), `resilientProxy` (upstream route;
 * hedged chain route with `timeout.attempt`), the client request's signal being the shared one.
 * Outcomes: success with the body read, not read, cancelled; 503 retried; network error; attempt/total timeout;
 * pending in the headers wait, in a `Retry-After` backoff, in a hedge, in `validate`, mid-body.
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - 500 calls per path (25 at a time, every outcome, each the documented one: 200, the last 503, the
 *   `RetryExhaustedError` / `FallbackExhaustedError` / `TimeoutError`, the proxy's 502 / 504) leave, once
 *   collected, no abort listener on the shared signal on paths without a timeout or hedge and at most one on paths
 *   with one; no `MaxListenersExceededWarning` on any path (Node 22 sets no limit on an `AbortSignal`, and neither
 *   the layer nor Node's fetch raises one); no ref'd `Timeout` left.
 * - 500 calls pending on one signal per path (hanging headers, a `Retry-After: 30` backoff, bodies trickling):
 *   its abort settles every call with that very reason (within 10 s, room for a loaded machine), every body being read fails with it (a body
 *   `validate` is still reading: the call fails with it), no listener is left on the signal, no ref'd `Timeout`, and
 *   the servers see every exchange closed.
 * - 100 settled calls per path whose bodies are still being read, then `gc`, then the abort: every read fails with
 *   the reason (the links the layer made are kept while their response lives, a `validate`-rebuilt response and the
 *   proxy's copy included).
 * - A signal aborted before the call: every path rejects with its reason, sends nothing, adds no listener.
 * - `init.signal` overrides a `Request`'s own (plain, `timeout.attempt`, `timeout.total`): the `Request`'s abort
 *   changes nothing, `init.signal`'s rejects the call with its reason, as fetch.
 * - A child `node` with 180 calls pending on one signal (plain, both timeouts, hedged chain, redirect, ky client,
 *   proxy): the abort settles all with the reason, no ref'd `Timeout` remains, the process exits with code 0 within
 *   5 s (its timers are 30 s and longer).
 *
 * Docs-silent (not pinned):
 * - Node's `Request` follows the signal it was made with through a weak link dropped once the `Request` is
 *   collected. A `Request` input made by the caller (or by ky, which wraps every call in one, or the client request
 *   a proxy serves) and then dropped leaves its body, after `gc`, deaf to the shared signal's abort: the read
 *   hangs. Raw `fetch(new Request(url, { signal }))` and raw ky do the same (a pending raw fetch even hangs where the
 *   layer settles), so the tests above keep those `Request`s alive; the docs promise the layer's link ("as fetch's
 *   own does"), not the platform's.
 * - ky combines the caller's signal with its own through `AbortSignal.any` on every call, the per-call memory on a
 *   long-lived signal that docs/retry.md says the layer avoids; the ky client inherits it (no listener is seen).
 * - Before `gc`, the shared signal carries hundreds of listeners after 500 plain calls: Node's fetch's own, dropped
 *   by a finalizer, as with raw fetch; the layer's own are gone at settle.
 */
import { spawn } from "node:child_process";
import { getEventListeners } from "node:events";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const ROOT = resolve(import.meta.dirname, "../..");
const entry = (path: string): string => pathToFileURL(resolve(ROOT, "src", path)).href;

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const BODY = "x".repeat(20_000);

/**
 * Both servers answer by the path's last segment: `busy` 503, `wait` 503 with `Retry-After: 30` (a backoff the
 * call sleeps through), `neterr` a reset connection, `stall` and `hang` nothing, `trickle` headers and a first
 * chunk then nothing, anything else 200 with 20 kB. A path under `/r/` on `a` is redirected to `b` (`/hop/`).
 */
function serve(h: Hit): void {
  if (h.path.includes("/r/")) {
    h.res.writeHead(302, { location: `${b.base}${h.path.replace("/r/", "/hop/")}` }).end();
    return;
  }
  const last = h.path.split("?")[0]?.split("/").pop();
  if (last === "busy") {
    h.res.writeHead(503).end("busy");
  } else if (last === "wait") {
    h.res.writeHead(503, { "retry-after": "30" }).end("later");
  } else if (last === "neterr") {
    h.res.socket?.destroy();
  } else if (last === "stall" || last === "hang") {
    // Never answers.
  } else if (last === "trickle") {
    h.res.writeHead(200, { "content-type": "application/json" });
    h.res.write('{"a":');
  } else {
    h.res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ body: BODY }));
  }
}

const warnings: string[] = [];
const onWarning = (w: Error): void => {
  warnings.push(`${w.name}: ${w.message}`);
};
beforeAll(() => {
  process.on("warning", onWarning);
});
beforeEach(() => {
  kept.length = 0;
  keeping = false;
});
afterAll(() => {
  process.off("warning", onWarning);
});

const listeners = (signal: AbortSignal): number => getEventListeners(signal, "abort").length;
const refTimeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function collect(signal: AbortSignal, floor: number): Promise<void> {
  // Node's fetch drops its own listener on a signal only once its request is collected (a finalizer).
  for (let i = 0; i < 20 && listeners(signal) > floor; i++) {
    gc();
    await tick(10);
  }
}

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const, maxAttempts: 2 };
const off = { breaker: false as const, budget: false as const };
const schema = { "~standard": { version: 1 as const, vendor: "test", validate: (value: unknown) => ({ value }) } };
const chainOf = (extra: object = {}, first: object = {}) =>
  fallback([
    {
      name: "c",
      ...extra,
      endpoints: [
        { name: "p", url: `${a.base}/c`, ...first },
        { name: "q", url: `${b.base}/c` },
      ],
    },
  ]);
const slowTransform = async <T>(req: T): Promise<T> => {
  await tick(1);
  return req;
};

type Call = (kind: string, signal: AbortSignal) => Promise<Response>;

/**
 * The `Request`s the test (or ky) made, kept alive for the test: Node's `Request` follows the signal it was
 * given through a weak link, dropped once the `Request` is collected (raw `fetch(new Request(url, { signal }))`
 * too), so a body being read after then is deaf to that signal. That is the platform's, not the layer's.
 */
const kept: Request[] = [];
let keeping = false;
const keep = (request: Request): Request => {
  if (keeping) kept.push(request);
  return request;
};
const keepHook = { beforeRequest: [({ request }: { request: Request }) => void keep(request)] };
interface Path {
  name: string;
  /** The layer links a timeout or a hedge to the caller's signal: one listener may stay on it. */
  linked: boolean;
  /** `timeout.attempt` is set: a stalled upstream is one outcome. */
  timed: boolean;
  make(options?: ResilienceOptions): Call;
}

const layer = (extra: ResilienceOptions, options: ResilienceOptions = {}) =>
  createResilience({ retry: fast, ...off, ...extra, ...options });
const worker = { waitUntil: () => undefined };
const PATHS: Path[] = [
  {
    name: "plain call",
    linked: false,
    timed: false,
    make: (o) => {
      const r = layer({}, o);
      return (k, signal) => r.fetch(`${a.base}/p/${k}`, { signal });
    },
  },
  {
    name: "plain call, timeout.attempt",
    linked: true,
    timed: true,
    make: (o) => {
      const r = layer({ timeout: { attempt: 40 } }, o);
      return (k, signal) => r.fetch(`${a.base}/p/${k}`, { signal });
    },
  },
  {
    name: "plain call, timeout.total",
    linked: true,
    timed: true,
    make: (o) => {
      const r = layer({ timeout: { total: 60 } }, o);
      return (k, signal) => r.fetch(`${a.base}/p/${k}`, { signal });
    },
  },
  {
    name: "plain call, both timeouts",
    linked: true,
    timed: true,
    make: (o) => {
      const r = layer({ timeout: { attempt: 30, total: 100 } }, o);
      return (k, signal) => r.fetch(`${a.base}/p/${k}`, { signal });
    },
  },
  {
    name: "chain of two endpoints",
    linked: false,
    timed: false,
    make: (o) => {
      const r = layer({ fallback: chainOf() }, o);
      return (k, signal) => r.fetch(`${a.base}/c/${k}`, { signal });
    },
  },
  {
    name: "hedged chain",
    linked: true,
    timed: false,
    make: (o) => {
      const r = layer({ fallback: chainOf({ hedge: { delay: 5 } }) }, o);
      return (k, signal) => r.fetch(`${a.base}/c/${k}`, { signal });
    },
  },
  {
    name: "chain with validate and timeout.attempt",
    linked: true,
    timed: true,
    make: (o) => {
      const r = layer({ timeout: { attempt: 40 }, fallback: chainOf({}, { validate: schema }) }, o);
      return (k, signal) => r.fetch(`${a.base}/c/${k}`, { signal });
    },
  },
  {
    name: "chain with an async transform",
    linked: false,
    timed: false,
    make: (o) => {
      const r = layer({ fallback: chainOf({}, { transform: slowTransform }) }, o);
      return (k, signal) => r.fetch(`${a.base}/c/${k}`, { signal });
    },
  },
  {
    name: "followed redirect to another origin",
    linked: false,
    timed: false,
    make: (o) => {
      const r = layer({}, o);
      return (k, signal) => r.fetch(`${a.base}/r/${k}`, { signal });
    },
  },
  {
    name: "followed redirect, timeout.total",
    linked: true,
    timed: true,
    make: (o) => {
      const r = layer({ timeout: { total: 60 } }, o);
      return (k, signal) => r.fetch(`${a.base}/r/${k}`, { signal });
    },
  },
  {
    name: "degradation rewrite of a Request body",
    linked: false,
    timed: false,
    make: (o) => {
      const r = layer({ degradation: degradation({ rules: [{ match: a.base, params: { steps: "steps" } }] }) }, o);
      r.degradation?.degrade("test");
      return (k, signal) =>
        r.fetch(
          keep(
            new Request(`${a.base}/d/${k}`, {
              method: "POST",
              headers: { "content-type": "application/json", "idempotency-key": "k1" },
              body: '{"steps":50}',
              signal,
            }),
          ),
        );
    },
  },
  {
    name: "Request input carrying the signal, timeout.attempt",
    linked: true,
    timed: true,
    make: (o) => {
      const r = layer({ timeout: { attempt: 40 } }, o);
      return (k, signal) => r.fetch(keep(new Request(`${a.base}/q/${k}`, { signal })));
    },
  },
  {
    name: "init.signal overriding a Request's, timeout.attempt",
    linked: true,
    timed: true,
    make: (o) => {
      const r = layer({ timeout: { attempt: 40 } }, o);
      const own = new AbortController();
      return (k, signal) => r.fetch(new Request(`${a.base}/q/${k}`, { signal: own.signal }), { signal });
    },
  },
  {
    name: "ky client",
    linked: false,
    timed: false,
    make: (o) => {
      const api = createClient({ resilience: { retry: fast, ...off, ...o }, throwHttpErrors: false, hooks: keepHook });
      return (k, signal) => api.get(`${a.base}/k/${k}`, { signal });
    },
  },
  {
    name: "ky client, timeout.attempt",
    linked: true,
    timed: true,
    make: (o) => {
      const api = createClient({
        resilience: { retry: fast, ...off, timeout: { attempt: 40 }, ...o },
        throwHttpErrors: false,
        hooks: keepHook,
      });
      return (k, signal) => api.get(`${a.base}/k/${k}`, { signal });
    },
  },
  {
    name: "resilientProxy (the client request's signal)",
    linked: false,
    timed: false,
    make: (o) => {
      const proxy = resilientProxy<Record<string, never>>({
        routes: [{ path: "/v1", upstream: `${a.base}/w` }],
        resilience: { retry: fast, ...off, ...o },
      });
      return (k, signal) => proxy.fetch(keep(new Request(`https://worker.example/v1/${k}`, { signal })), {}, worker);
    },
  },
  {
    name: "resilientProxy, hedged chain route, timeout.attempt",
    linked: true,
    timed: true,
    make: (o) => {
      const proxy = resilientProxy<Record<string, never>>({
        routes: [
          {
            path: "/v1",
            chain: {
              name: "c",
              hedge: { delay: 5 },
              endpoints: [
                { name: "p", url: `${a.base}/c` },
                { name: "q", url: `${b.base}/c` },
              ],
            },
          },
        ],
        resilience: { retry: fast, ...off, timeout: { attempt: 40 }, ...o },
      });
      return (k, signal) => proxy.fetch(keep(new Request(`https://worker.example/v1/${k}`, { signal })), {}, worker);
    },
  },
];

const show = (e: unknown): string => (e instanceof Error ? e.name : `thrown ${String(e)}`);

describe("500 calls sharing one long-lived signal, every outcome, per path", () => {
  const KINDS = ["read", "unread", "cancel", "busy", "neterr", "stall"];
  for (const path of PATHS) {
    it(`${path.name}: at most ${path.linked ? "one listener" : "no listener"} left once collected, no warning`, async () => {
      a.on(serve);
      b.on(serve);
      warnings.length = 0;
      const timersBefore = refTimeouts();
      const call = path.make();
      const app = new AbortController();
      const seen = new Map<string, Set<string>>();
      const one = async (i: number): Promise<void> => {
        let kind = KINDS[i % KINDS.length] as string;
        if (kind === "stall" && !path.timed) kind = "read";
        let outcome: string;
        try {
          const res = await call(kind, app.signal);
          outcome = String(res.status);
          if (kind === "read" || kind === "busy") outcome += ` ${(await res.text()).length}`;
          if (kind === "cancel") await res.body?.cancel();
        } catch (error) {
          outcome = show(error);
        }
        const set = seen.get(kind) ?? new Set();
        set.add(outcome);
        seen.set(kind, set);
      };
      for (let i = 0; i < 500; i += 25) await Promise.all(Array.from({ length: 25 }, (_, j) => one(i + j)));
      await collect(app.signal, path.linked ? 1 : 0);
      // Every kind reached its documented outcome (on a timed path a loaded machine may time any attempt out).
      const chain = path.name.includes("chain") || path.name.includes("validate");
      const proxy = path.name.startsWith("resilientProxy");
      const late = path.timed ? [proxy ? "504" : chain ? "FallbackExhaustedError" : "TimeoutError"] : [];
      const allowed: Record<string, string[]> = {
        read: ["200 20011", ...late],
        unread: ["200", ...late],
        cancel: ["200", ...late],
        busy: ["503 4", ...late],
        neterr: [proxy ? "502" : chain ? "FallbackExhaustedError" : "RetryExhaustedError", ...late],
        ...(path.timed ? { stall: late } : {}),
      };
      expect([...seen.keys()].sort()).toEqual(Object.keys(allowed).sort());
      // A late answer read as a body (the proxy's 504 and its text) counts as that answer.
      const known = (kind: string, outcome: string) =>
        allowed[kind]?.some((a) => outcome === a || (late.includes(a) && outcome.startsWith(`${a} `)));
      for (const [kind, got] of seen)
        for (const outcome of got) expect([kind, outcome, known(kind, outcome)]).toEqual([kind, outcome, true]);
      expect(listeners(app.signal)).toBeLessThanOrEqual(path.linked ? 1 : 0);
      expect(warnings.filter((w) => w.startsWith("MaxListenersExceededWarning"))).toEqual([]);
      await tick(20);
      expect(refTimeouts()).toBeLessThanOrEqual(timersBefore);
    }, 60_000);
  }
});

const LONG: ResilienceOptions = { timeout: { attempt: 30_000, total: 60_000 } };

/** Resolves once `a` saw `least` requests and neither server a new one for 100 ms (at most `capMs`). */
async function quiet(least: number, capMs = 8_000): Promise<void> {
  let last = -1;
  for (let waited = 0; waited < capMs; waited += 100) {
    const now = a.hits.length + b.hits.length;
    if (now === last && a.hits.length >= least) return;
    last = now;
    await tick(100);
  }
}

describe("the shared signal aborts with 500 calls pending on it, per path", () => {
  for (const path of PATHS) {
    it(`${path.name}: every call and every body being read ends with its reason, nothing left`, async () => {
      a.on(serve);
      b.on(serve);
      const timersBefore = refTimeouts();
      keeping = true;
      // Timeouts lengthened: only the abort ends these calls.
      const call = path.make(path.timed ? LONG : {});
      const app = new AbortController();
      const reason = new Error("app shutting down");
      const KINDS = ["hang", "trickle", "wait"];
      const outcomes = Array.from({ length: 500 }, (_, i) => {
        const kind = KINDS[i % KINDS.length] as string;
        return call(kind, app.signal).then(
          (res) =>
            res.text().then(
              () => `${kind}: body read whole (${res.status})`,
              (e: unknown) => `${kind}: ${e === reason ? "body reason" : `body ${show(e)}`}`,
            ),
          (e: unknown) => `${kind}: ${e === reason ? "reason" : show(e)}`,
        );
      });
      await quiet(500);
      expect(a.hits.length).toBeGreaterThanOrEqual(500);
      app.abort(reason);
      const guard = tick(10_000).then(() => ["hung"]);
      const settled = await Promise.race([Promise.all(outcomes), guard]);
      const counts: Record<string, number> = {};
      for (const o of settled) counts[o] = (counts[o] ?? 0) + 1;
      // A trickled body: the call resolved and its read fails, or (validate reading it) the call fails.
      const trickled = (counts["trickle: body reason"] ?? 0) + (counts["trickle: reason"] ?? 0);
      expect(counts).toEqual({
        "hang: reason": 167,
        "wait: reason": 166,
        ...(counts["trickle: body reason"] ? { "trickle: body reason": counts["trickle: body reason"] } : {}),
        ...(counts["trickle: reason"] ? { "trickle: reason": counts["trickle: reason"] } : {}),
      });
      expect(trickled).toBe(167);
      expect(listeners(app.signal)).toBe(0);
      await tick(20);
      expect(refTimeouts()).toBeLessThanOrEqual(timersBefore);
      // Every exchange the calls opened is closed (nothing holds a socket).
      const open = await Promise.race([
        Promise.all([...a.hits, ...b.hits].map((h) => h.closed)).then(() => 0),
        tick(1_500).then(() => [...a.hits, ...b.hits].filter((h) => !h.res.writableEnded && !h.res.destroyed).length),
      ]);
      expect(open).toBe(0);
    }, 60_000);
  }
});

describe("settled calls whose bodies are still being read, after gc, when the shared signal aborts", () => {
  for (const path of PATHS) {
    it(`${path.name}: every body read fails with the reason`, async () => {
      a.on(serve);
      b.on(serve);
      keeping = true;
      // `validate` reads the body within `timeout.attempt`: it gives up on the trickle after 200 ms and the call
      // resolves with a new `Response` piping on the rest "under your signal" (docs/fallback.md).
      const validating = path.name.includes("validate");
      const call = path.make(validating ? { timeout: { attempt: 200, total: 60_000 } } : path.timed ? LONG : {});
      const app = new AbortController();
      const reason = new Error("app shutting down");
      const responses: Response[] = [];
      for (let i = 0; i < 100; i += 25)
        responses.push(...(await Promise.all(Array.from({ length: 25 }, () => call("trickle", app.signal)))));
      expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
      const reads = responses.map((r) =>
        r.text().then(
          () => "read whole",
          (e: unknown) => (e === reason ? "reason" : show(e)),
        ),
      );
      // The links the calls made are weak: collected now unless something keeps them for the body.
      for (let i = 0; i < 6; i++) {
        gc();
        await tick(10);
      }
      app.abort(reason);
      const settled = await Promise.race([Promise.all(reads), tick(2_000).then(() => ["hung"])]);
      expect(settled).toEqual(Array(100).fill("reason"));
    }, 60_000);
  }
});

describe("a shared signal already aborted", () => {
  for (const path of PATHS) {
    it(`${path.name}: rejects with its reason, sends nothing, adds no listener`, async () => {
      a.on(serve);
      b.on(serve);
      const call = path.make();
      const app = new AbortController();
      const reason = new Error("already gone");
      app.abort(reason);
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, () =>
          call("read", app.signal).then(
            (r) => `resolved ${r.status}`,
            (e: unknown) => (e === reason ? "reason" : show(e)),
          ),
        ),
      );
      await tick(20);
      expect(outcomes).toEqual(Array(20).fill("reason"));
      expect(a.hits.length + b.hits.length).toBe(0);
      expect(listeners(app.signal)).toBe(0);
    });
  }
});

describe("init.signal overriding a Request's own", () => {
  for (const timeout of [undefined, { attempt: 5_000 }, { total: 5_000 }]) {
    it(`the Request's own abort changes nothing, init.signal's aborts (timeout ${JSON.stringify(timeout)})`, async () => {
      a.on((h) => {
        setTimeout(() => h.res.end(h.path), 40);
      });
      const r = createResilience({ ...off, ...(timeout ? { timeout } : {}) });
      const own = new AbortController();
      const app = new AbortController();
      const first = r.fetch(new Request(`${a.base}/one`, { signal: own.signal }), { signal: app.signal });
      await a.nth(1);
      own.abort(new Error("request's own"));
      expect(await (await first).text()).toBe("/one");
      const reason = new Error("init's");
      const second = r.fetch(new Request(`${a.base}/two`, { signal: new AbortController().signal }), {
        signal: app.signal,
      });
      await a.nth(2);
      app.abort(reason);
      await expect(second).rejects.toBe(reason);
    });
  }
});

describe("a Node process whose one app-wide signal aborts with calls pending on every path", () => {
  it("settles every call with the reason and then exits on its own", async () => {
    a.on(serve);
    b.on(serve);
    const script = `
const { createResilience } = await import(${JSON.stringify(entry("index.ts"))});
const { fallback } = await import(${JSON.stringify(entry("fallback/index.ts"))});
const { createClient } = await import(${JSON.stringify(entry("ky/index.ts"))});
const { resilientProxy } = await import(${JSON.stringify(entry("cloudflare/index.ts"))});
const A = process.env.A, B = process.env.B;
const base = { breaker: false, budget: false, retry: { maxAttempts: 3, initialDelay: 1, jitter: "none" } };
const chain = (extra) => fallback([{ name: "c", ...extra, endpoints: [{ name: "p", url: A + "/c" }, { name: "q", url: B + "/c" }] }]);
const plain = createResilience(base);
const timed = createResilience({ ...base, timeout: { attempt: 30000, total: 60000 } });
const hedged = createResilience({ ...base, fallback: chain({ hedge: { delay: 5 } }) });
const api = createClient({ resilience: base });
const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: A + "/w" }], resilience: { ...base, timeout: { attempt: 30000 } } });
const app = new AbortController();
const reason = new Error("shutdown");
const calls = [];
for (const kind of ["hang", "trickle", "wait"]) for (let i = 0; i < 10; i++) {
  const signal = app.signal;
  calls.push(plain.fetch(A + "/p/" + kind, { signal }));
  calls.push(timed.fetch(A + "/p/" + kind, { signal }));
  calls.push(hedged.fetch(A + "/c/" + kind, { signal }));
  calls.push(plain.fetch(A + "/r/" + kind, { signal }));
  calls.push(api.get(A + "/k/" + kind, { signal }));
  calls.push(proxy.fetch(new Request("https://worker.example/v1/" + kind, { signal }), {}, { waitUntil() {} }));
}
const outcomes = calls.map((p) => p.then((res) => res.text().then(() => "read", (e) => (e === reason ? "reason" : "body " + e)), (e) => (e === reason ? "reason" : "call " + e)));
await new Promise((r) => setTimeout(r, 400));
app.abort(reason);
const counts = {};
for (const o of await Promise.all(outcomes)) counts[o] = (counts[o] ?? 0) + 1;
console.log("REPORT " + JSON.stringify({ counts, timers: process.getActiveResourcesInfo().filter((x) => x === "Timeout").length }));
`;
    const child = spawn(
      process.execPath,
      ["--experimental-strip-types", "--no-warnings", "--input-type=module", "-e", script],
      {
        cwd: ROOT,
        env: { ...process.env, A: a.base, B: b.base },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    let reportedAt = 0;
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (reportedAt === 0 && stdout.includes("REPORT ")) reportedAt = Date.now();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const kill = setTimeout(() => child.kill("SIGKILL"), 15_000);
    const code = await new Promise<number | null>((done) => child.on("exit", done));
    clearTimeout(kill);
    const exitedAfterMs = Date.now() - reportedAt;
    const line = stdout.split("\n").find((l) => l.startsWith("REPORT "));
    expect(line, stderr).toBeDefined();
    const report = JSON.parse((line as string).slice(7)) as { counts: Record<string, number>; timers: number };
    expect(report.counts).toEqual({ reason: 180 });
    expect(report.timers).toBe(0);
    expect(code).toBe(0);
    expect(exitedAfterMs).toBeLessThan(5_000);
  }, 20_000);
});
