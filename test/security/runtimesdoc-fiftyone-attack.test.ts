/**
 * Outside-in attack on docs/runtimes.md and docs/storycore-mapping.md (with the README's "Where it runs" table and
 * examples/storycore-parity, which the mapping points to): what works in which runtime, what the library needs of
 * the runtime and what happens without it, whether any path leaves a timer that keeps a process alive, and whether
 * the mapping's equivalences (retry counts, backoff numbers, breaker thresholds, the five levels, fallback order,
 * health and statistics fields) hold through the public API.
 *
 * Docs:
 * - docs/runtimes.md (and README.md "Where it runs"): the conformance list "… abort during a backoff, no timer left
 *   behind"; the rows "Node | 22 | its own process | every check; the process must exit on its own", "Deno | … |
 *   every check; exits on its own", "Bun | … | every check; exits on its own", "Chromium | … | every check";
 *   "Where runtimes differ from one another, not from the library: …" (Referer, a frozen `Response`, a string
 *   body's `content-type`: nothing else is named).
 * - docs/retry.md: "The caller's own mistakes reject at once with a `TypeError`, before any timer starts, and are
 *   never retried nor counted against the host's breaker: … an `init.signal` that is no `AbortSignal` (one with
 *   `aborted`, `addEventListener` and `removeEventListener`: fetch asks for the first two, …)"; "The delay before
 *   retry _n_ is `min(maxDelay, initialDelay × exponentialBase^(n−1))`, then jittered (`full` by default …)";
 *   docs/options.md defaults (`retry.maxAttempts` 3, `initialDelay` 1000, `maxDelay` 60000, `jitter` "full";
 *   `breaker.failureThreshold` 12, `successThreshold` 2, `timeout` 30000); the `fetch` option's JSDoc
 *   ("`globalThis.fetch`, looked up at call time").
 * - docs/storycore-mapping.md: every row of "Names" (`createResilience({ …, fallback: fallback([…]), degradation:
 *   degradation() })`, `system.breaker("x")`/`.execute(fn)`, `system.fallback.chain("x")`, `system.degradation.adjust
 *   (p)`, "`system.execute(fn, { breaker: "x" })`" for `execute_with_resilience(fn, circuit_breaker_name='x',
 *   enable_retry=True)`, "`chain.statistics()`, `system.health()`"); "Numbers kept" ("The five degradation levels
 *   (`full` 100%, `high` 80%, `medium` 60%, `low` 40%, `minimal` 20%) with their quality multipliers, resolution
 *   scales, step caps and feature tiers", "The parameter names the default rewriting rule reads"); "work run through
 *   `system.execute(fn)` counts in `health()`'s `errorRate` …". With them docs/health-and-events.md's list of
 *   `health()` fields and of each breaker's, docs/fallback.md's `statistics()` fields, the JSDoc of
 *   `ChainStatistics.lastSuccessfulFallback` ("The last entry other than the first to serve a run …; it stays when
 *   the first entry serves again") and of `ExecuteOptions.breaker` ("an open breaker ends the retries at once").
 *
 * How: `npm run build` when dist/ is missing; a throw-away project under the OS temp dir whose node_modules links
 * to this worktree, so scripts import the BUILT package by its name, run in Node 22 (process.execPath), Deno and
 * Bun (node_modules/.bin/deno, node_modules/.bin/bun), each its own short process, timed from its report line to
 * its exit. Chromium through test/helpers/library-page.ts (the browser build). In this process: `createResilience`,
 * `getResilienceInfo`, `isCircuitOpenError` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock` (./testing); two node:http origins on
 * 127.0.0.1 (test/helpers/http-upstream.ts), every request tagged `?c=<case>` and counted.
 *
 * Paths: plain call, `Request` input, fallback chain (fixed order, hedge won and unused, `validate` passed and
 * failed, a `respond` endpoint), degradation rewrite (JSON body, each of the five levels), ky client,
 * `resilientProxy` (a route, a chain route, the health endpoint with a Secrets Store token), `execute` with a named
 * breaker, a named breaker's own `.execute`, a bulkhead queue, a `Retry-After` hold, a breaker that opens, a
 * caller's abort, an attempt and a total timeout that fire.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-first session, so plain
 * `it`, now asking that such a signal is taken everywhere, as in Node):
 * 1. docs/retry.md "The caller's own mistakes reject at once with a `TypeError`, before any timer starts, and are
 *    never retried nor counted …: … an `init.signal` that is no `AbortSignal` (one with `aborted`,
 *    `addEventListener` and `removeEventListener`: fetch asks for the first two, …)"; docs/runtimes.md names no such
 *    difference between runtimes. Observed: a signal with all three members that is no native `AbortSignal` (a
 *    polyfill's, an SDK's own) is taken in Node with any timeout setting (one request, 200). In Deno 2.9.6 and
 *    Bun 1.4.5 with no timeout set, and in Chromium (browser build) with no timeout and with `timeout.attempt`, the
 *    platform refuses it ("Failed to construct 'Request': 'signal' of 'RequestInit' … is not of type AbortSignal";
 *    "signal is not of type AbortSignal."; "Failed to execute 'fetch' on 'Window': … Failed to convert value to
 *    'AbortSignal'", "Failed to execute 'any' on 'AbortSignal': …"). The layer takes that `TypeError` for a network
 *    error (`retry` reason "network error"): 2 `retry` events, 3 attempts, `RetryExhaustedError`, a failed call in
 *    `debugInfo().totals` and `errorRate` (1), 3 failures on the host's breaker; nothing is sent. In Chromium with `timeout.attempt` each attempt's timer is also left set
 *    after the call settled (3 of 600 000 ms, seen on an injected clock), and with `timeout.total` the call is a
 *    `TypeError` at once but the deadline's timer is left set. Source: src/core/kind-of.ts `isAbortSignal` takes a
 *    signal by its shape; src/http/send/send-attempt.ts `sendAttempt` hands the caller's signal to the transport as
 *    it is when no `timeout.attempt` is set (Deno's, Bun's and Chromium's fetch check its brand), and
 *    `isPlatformRefusal` (src/http/send/failure-reason.ts) knows only Node's refusal codes and the layer's own
 *    marks, so the refusal counts as a failed attempt (src/http/send/classify.ts `isNetworkError` takes any
 *    `TypeError`); `timedTransportCall` calls `linkedSignal` (src/core/linked-signal.ts: `AbortSignal.any` in the
 *    page build and workerd, a listener of its own elsewhere) after `scope.clock.setTimer` and outside the `try`
 *    that cancels it; src/policies/deadline.ts `CallDeadline` arms its timer before `linkedSignal`. Suggested fix:
 *    follow a shape-only signal with a native one of the layer's own (as the Node path already does) on every path
 *    and runtime, or refuse it at once as the caller's mistake; link signals before any timer is set.
 *
 * Held (plain `it`):
 * - Node 22, Deno 2, Bun 1: 18 paths on the real clock with timeouts, a hedge, a breaker and a hold of 10 minutes
 *   (plain, unread body, `Request` + signal, `Retry-After: 3600` held open, breaker opened, hedge unused and won,
 *   `validate` passed and failed (its 30 s read timer), a `respond` endpoint, a rewrite at `medium`, `execute` with
 *   a named breaker and a named breaker's `.execute`, ky with its own `timeout`, a bulkhead queue, a caller's abort,
 *   a total and an attempt timeout firing, `resilientProxy` with a Secrets Store token) settle as documented and
 *   the process exits 0 on its own at once after its report; in Node no `Timeout` keeps the loop after any path.
 * - On the `TestClock`: no timer pending after a plain call, a `Request`, a hedged chain, a rewrite (`low`: steps
 *   50 → 20), ky, the proxy, `execute`, or a GET retried on 503 (3 requests).
 * - Without a global `fetch`: a plain call, a `Request`, a chain, a rewrite and ky reject at once with
 *   "TypeError: resilience.fetch: no global fetch in this runtime; pass one as the `fetch` option": no timer, no
 *   `retry` event, nothing counted (totals, chain statistics), nothing sent.
 * - Mapping: `execute(fn, { breaker })` retries 3 attempts with delays 500, 1000 (random 0.5, full jitter of 1000 ×
 *   2^(n−1)); `health().retry` is `{ 3, 1000, 60000, "full" }`; the named breaker opens at 12 failed attempts in a
 *   row (4 runs), then refuses at once without running the work or retrying, `fallback` answering with its
 *   `CircuitOpenError`; 5 runs, 5 failures in `errorRate`/totals; `half_open` after 30 s, closed after 2 probes.
 *   A chain goes in its fixed order (the first endpoint's own 3 attempts, then the next), a `fallback` event each
 *   move; `statistics()` (`lastSuccessfulFallback` kept when the first serves again, `overallSuccessRate`,
 *   per-endpoint `calls`/`successes`/`successRate`/`meanLatencyMs`) equals `health().fallback`; `ordered()` as
 *   configured. The five levels' percentages and each row (quality, a `WxH` scaled and floored to 8, step cap,
 *   model rungs, feature tiers) through `adjust` and a ky client's `json` body alike. `resilientProxy`'s health
 *   endpoint carries exactly `health()`'s fields and each breaker's documented fields.
 *
 * Docs-silent (not pinned):
 * - `kvStore` in Node: a trip's write waits on a timer that does not hold the process (its jitter), so awaiting the
 *   promises handed to `ctx.waitUntil` ends a Node script with exit code 13 ("unsettled top-level await") and the
 *   KV write is never made; Deno and Bun finish the write. (docs/cloudflare.md's "a trip reaches KV at most
 *   `minPublishInterval` + `publishJitter` after it" speaks of isolates.)
 * - No required globals are named anywhere. Without a global `fetch`, `resilientProxy` answers a quiet 502
 *   `{"error":"upstream unavailable"}` (docs/cloudflare.md calls a store factory's throw "no quiet 502"). In Node,
 *   without `AbortSignal.any` (Node before 20.3, and the same in pages of browsers without it), a call with a
 *   caller's signal and `timeout.total` fails as a retried network error (3 attempts, about 2.5 s of real backoff)
 *   and its attempt timer, left set, later throws "TypeError: Invalid value used as weak map key" uncaught, which
 *   ends the process; without `Headers`, `Blob` or `crypto` a POST, `Request`, chain or keyed call throws a
 *   `ReferenceError` at once; without `AbortController` or `ReadableStream` calls fail as retried or counted
 *   failures with the `ReferenceError` as cause.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isCircuitOpenError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream } from "../helpers/http-upstream.ts";
import { openLibraryPage, type PageLib } from "../helpers/library-page.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = resolve(ROOT, "node_modules/.bin");
const HAVE = { deno: existsSync(resolve(BIN, "deno")), bun: existsSync(resolve(BIN, "bun")) };
const CHROMIUM = existsSync("/usr/bin/chromium");

// ---------------------------------------------------------------------------
// Two origins on 127.0.0.1; each request tagged `?c=<case>` and counted here
// ---------------------------------------------------------------------------

const api = httpUpstream();
const alt = httpUpstream();
const tagOf = (hit: Hit): string => new URL(hit.path, "http://x").searchParams.get("c") ?? "";
const hitsOf = (tag: string): Hit[] => [...api.hits, ...alt.hits].filter((hit) => tagOf(hit) === tag);
/** Requests that reached `path` on `server` since the file started. */
const at = (server: typeof api, path: string): number =>
  server.hits.filter((hit) => new URL(hit.path, "http://x").pathname === path).length;
const healed = new Set<string>();

function route(hit: Hit): void {
  const path = new URL(hit.path, "http://x").pathname.replace(/^\/v1/, "");
  const { res } = hit;
  switch (path) {
    case "/hang":
      return; // never answers; the client's abort closes it
    case "/500":
      return void res.writeHead(500).end("error");
    case "/503":
      return void res.writeHead(503).end("busy");
    case "/ra":
      return void res.writeHead(503, { "retry-after": "3600" }).end("wait");
    case "/json":
      return void res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    case "/echo":
      return void res.writeHead(200, { "content-type": "application/json" }).end(hit.body);
    case "/flaky":
      // 503 until the test heals it.
      if (!healed.has(tagOf(hit))) return void res.writeHead(503).end("busy");
      return void res.end("fine");
    default:
      return void res.end("ok");
  }
}

// A throw-away project that imports the BUILT package by its name (node_modules links to this worktree).
let project = "";

beforeAll(async () => {
  await Promise.all([api.start(), alt.start()]);
  api.on(route);
  alt.on(route);
  if (!existsSync(resolve(ROOT, "dist/index.js")) || !existsSync(resolve(ROOT, "dist/browser/index.js")))
    execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: "ignore" });
  project = mkdtempSync(join(tmpdir(), "runtimesdoc-fiftyone-"));
  mkdirSync(join(project, "node_modules/@storycore"), { recursive: true });
  symlinkSync(ROOT, join(project, "node_modules/@storycore/resilient-fetch"), "dir");
  // Deno reads the dependency from package.json and resolves it in node_modules.
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "p", type: "module", dependencies: { "@storycore/resilient-fetch": "*" } }),
  );
}, 120_000);

afterAll(() => {
  api.stop();
  alt.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Ms from the report line to the exit; `undefined` without a report. */
  afterReport: number | undefined;
  killed: boolean;
}

/** Runs `script` (written into the project) in a runtime; kills it after `ms`. */
function runScript(runtime: "node" | "deno" | "bun", name: string, script: string, ms = 60_000): Promise<Exit> {
  const file = join(project, name);
  writeFileSync(file, script);
  const urls = JSON.stringify([api.base, alt.base]);
  const [command, args] =
    runtime === "node"
      ? [process.execPath, [file, urls]]
      : runtime === "deno"
        ? [resolve(BIN, "deno"), ["run", "-A", file, urls]]
        : [resolve(BIN, "bun"), [file, urls]];
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: project, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
    let stdout = "";
    let stderr = "";
    let reportedAt: number | undefined;
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, ms);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (reportedAt === undefined && stdout.includes("\n")) reportedAt = Date.now();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr, afterReport: reportedAt && Date.now() - reportedAt, killed });
    });
  });
}

const report = (exit: Exit): Record<string, string> => JSON.parse(exit.stdout.split("\n")[0] ?? "{}");

// ---------------------------------------------------------------------------
// 1. "no timer left behind" / "the process must exit on its own": real-clock paths
// ---------------------------------------------------------------------------

/**
 * Every path on the real clock with timers of 10 minutes (a timeout, a hedge, a breaker, a hold): a timer left
 * behind keeps the process 10 minutes. Node also lists, after each path, the timers keeping its loop alive.
 */
const TIMERS_SCRIPT = `
import { createResilience, getResilienceInfo } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { degradation } from "@storycore/resilient-fetch/degradation";
import { createClient } from "@storycore/resilient-fetch/ky";
import { resilientProxy } from "@storycore/resilient-fetch/cloudflare";
const [api, alt] = JSON.parse(process.argv.at(-1));
const LONG = 600000;
const out = {};
const live = () => (globalThis.process?.getActiveResourcesInfo?.() ?? []).filter((x) => x === "Timeout").length;
const run = async (name, fn) => {
  try { out[name] = await fn(); } catch (e) { out[name] = "threw " + e?.name + ": " + e?.message; }
  await new Promise((r) => setTimeout(r, 0));
  if (live() > 0) out[name] += " | timers " + live();
};
const schema = (ok) => ({ "~standard": { version: 1, vendor: "t", validate: (v) => (ok ? { value: v } : { issues: [{ message: "no" }] }) } });
await run("plain", async () => {
  const r = createResilience({ timeout: { attempt: LONG, total: LONG } });
  const res = await r.fetch(api + "/ok?c=t-plain");
  return res.status + " " + (await res.text());
});
await run("unread", async () => {
  const r = createResilience({ timeout: { attempt: LONG, total: LONG } });
  return String((await r.fetch(api + "/ok?c=t-unread")).status);
});
await run("request", async () => {
  const r = createResilience({ timeout: { attempt: LONG, total: LONG } });
  const signal = new AbortController().signal;
  const res = await r.fetch(new Request(api + "/echo?c=t-request", { method: "POST", body: "hi", signal }));
  return res.status + " " + (await res.text());
});
await run("hold", async () => {
  const r = createResilience({ timeout: { total: LONG } });
  const res = await r.fetch(api + "/ra?c=t-hold");
  await res.text();
  return res.status + " then " + (await r.fetch(api + "/ok?c=t-hold").then(() => "sent", (e) => e.name));
});
await run("breaker", async () => {
  const r = createResilience({ retry: false, breaker: { failureThreshold: 1, timeout: LONG } });
  const res = await r.fetch(api + "/500?c=t-breaker");
  await res.text();
  return res.status + " then " + (await r.fetch(api + "/ok?c=t-breaker").then(() => "sent", (e) => e.name));
});
const chain = (name, hedge, first, extra = {}) =>
  fallback([{ name, ...(hedge ? { hedge: { delay: hedge } } : {}), endpoints: [{ name: "p", url: api + first, ...extra }, { name: "s", url: alt + "/json" }] }]);
await run("hedge unused", async () => {
  const r = createResilience({ timeout: { attempt: LONG, total: LONG }, fallback: chain("h1", LONG, "/json") });
  const res = await r.fetch(api + "/json?c=t-hedge1");
  return res.status + " " + getResilienceInfo(res).endpoint + " " + (await res.text());
});
await run("hedge won", async () => {
  const r = createResilience({ timeout: { attempt: LONG, total: LONG }, fallback: chain("h2", 20, "/hang") });
  const res = await r.fetch(api + "/hang?c=t-hedge2");
  return res.status + " " + getResilienceInfo(res).endpoint + " " + (await res.text());
});
await run("validate ok", async () => {
  const r = createResilience({ fallback: chain("v1", 0, "/json", { validate: schema(true) }) });
  const res = await r.fetch(api + "/json?c=t-valid1");
  return res.status + " " + getResilienceInfo(res).endpoint + " " + (await res.text());
});
await run("validate failed", async () => {
  const r = createResilience({ fallback: chain("v2", 0, "/json", { validate: schema(false) }) });
  const res = await r.fetch(api + "/json?c=t-valid2");
  return res.status + " " + getResilienceInfo(res).endpoint + " " + (await res.text());
});
await run("respond", async () => {
  const r = createResilience({
    timeout: { attempt: LONG },
    fallback: fallback([{ name: "r", endpoints: [{ name: "p", url: api + "/503" }, { name: "cache", respond: async () => new Response("cached") }] }]),
  });
  const res = await r.fetch(api + "/503?c=t-respond");
  return res.status + " " + getResilienceInfo(res).endpoint + " " + (await res.text());
});
await run("degradation", async () => {
  const r = createResilience({ timeout: { attempt: LONG, total: LONG }, degradation: degradation() });
  r.degradation.setLevel("medium");
  const res = await r.fetch(api + "/echo?c=t-degradation", { method: "POST", headers: { "content-type": "application/json" }, body: '{"steps":50}' });
  return res.status + " " + (await res.text());
});
await run("execute", async () => {
  const r = createResilience({ retry: { initialDelay: 5 }, timeout: { attempt: LONG, total: LONG } });
  let n = 0;
  const value = await r.execute(async () => { if (++n < 2) throw new Error("busy"); return "done"; }, { breaker: "x" });
  const named = r.breaker("y", { failureThreshold: 1, timeout: LONG });
  await named.execute(async () => { throw new Error("down"); }).catch(() => {});
  return value + " after " + n + "; then " + (await named.execute(async () => "ran").catch((e) => e.name));
});
await run("ky", async () => {
  const client = createClient({ timeout: LONG, resilience: { timeout: { attempt: LONG, total: LONG } } });
  return await client.get(api + "/ok?c=t-ky").text();
});
await run("bulkhead", async () => {
  const r = createResilience({ bulkhead: { maxConcurrent: 1, maxQueue: 2 }, timeout: { attempt: LONG, total: LONG } });
  return (await Promise.all([1, 2, 3].map((i) => r.fetch(api + "/ok?c=t-bulkhead").then((x) => x.text())))).join(",");
});
await run("abort", async () => {
  const r = createResilience({ timeout: { attempt: LONG, total: LONG } });
  const controller = new AbortController();
  const call = r.fetch(api + "/hang?c=t-abort", { signal: controller.signal });
  setTimeout(() => controller.abort(new Error("left")), 30);
  return await call.then(() => "resolved", (e) => e.message);
});
await run("total fired", async () => {
  const r = createResilience({ timeout: { attempt: LONG, total: 60 } });
  return await r.fetch(api + "/hang?c=t-total").then(() => "resolved", (e) => e.name + " " + e.phase);
});
await run("attempt fired", async () => {
  const r = createResilience({ retry: { initialDelay: 5 }, timeout: { attempt: 40, total: LONG } });
  return await r.fetch(api + "/hang?c=t-attempt").then(() => "resolved", (e) => e.name + " " + e.attempts);
});
await run("proxy", async () => {
  const proxy = resilientProxy({
    routes: [{ path: "/v1", upstream: api + "/v1" }],
    resilience: { retry: false, breaker: { failureThreshold: 1, timeout: LONG }, timeout: { attempt: LONG, total: LONG } },
  });
  const env = { RESILIENCE_HEALTH_TOKEN: { get: async () => "tok" } };
  const ctx = { waitUntil() {}, passThroughOnException() {} };
  const a = await proxy.fetch(new Request("http://w/v1/500?c=t-proxy"), env, ctx);
  await a.text();
  const b = await proxy.fetch(new Request("http://w/v1/ok?c=t-proxy"), env, ctx);
  await b.text();
  const h = await proxy.fetch(new Request("http://w/__resilience/health", { headers: { authorization: "Bearer tok" } }), env, ctx);
  return a.status + " " + b.status + " " + h.status + " " + (await h.json()).status;
});
console.log(JSON.stringify(out));
`;

const TIMERS_EXPECTED: Record<string, string> = {
  plain: "200 ok",
  unread: "200",
  request: "200 hi",
  hold: "503 then CircuitOpenError",
  breaker: "500 then CircuitOpenError",
  "hedge unused": '200 p {"ok":true}',
  "hedge won": '200 s {"ok":true}',
  "validate ok": '200 p {"ok":true}',
  "validate failed": '200 s {"ok":true}',
  respond: "200 cache cached",
  degradation: '200 {"steps":30}',
  execute: "done after 2; then CircuitOpenError",
  ky: "ok",
  bulkhead: "ok,ok,ok",
  abort: "left",
  "total fired": "TimeoutError total",
  "attempt fired": "TimeoutError 3",
  proxy: "500 503 200 unhealthy",
};

describe('docs/runtimes.md: "no timer left behind", "the process must exit on its own", on the real clock', () => {
  it("Node 22: every path settles as documented, leaves no timer keeping the loop, and the process exits at once", async () => {
    const exit = await runScript("node", "timers-node.mjs", TIMERS_SCRIPT);
    expect(exit.stderr).toBe("");
    expect(report(exit)).toEqual(TIMERS_EXPECTED);
    expect(exit.killed).toBe(false);
    expect(exit.code).toBe(0);
    // A timer left behind would hold the process 10 minutes.
    expect(exit.afterReport).toBeLessThan(20_000);
  }, 90_000);

  for (const runtime of ["deno", "bun"] as const) {
    it.skipIf(!HAVE[runtime])(
      `${runtime}: the same paths settle alike and the process exits on its own`,
      async () => {
        const exit = await runScript(runtime, `timers-${runtime}.mjs`, TIMERS_SCRIPT);
        expect(report(exit)).toEqual(TIMERS_EXPECTED);
        expect(exit.killed).toBe(false);
        expect(exit.code).toBe(0);
        expect(exit.afterReport).toBeLessThan(20_000);
      },
      90_000,
    );
  }

  it("TestClock: no path leaves a timer pending once its call settled (plain, Request, chain, hedge, degradation, ky, proxy, execute, retries)", async () => {
    // Calls to a real server are awaited as they are (`clock.run` would jump to the next timer, a timeout, while
    // the server answers); the injected clock then shows every timer the call set, and whether one is left.
    const clock = new TestClock();
    const LONG = 600_000;
    const layer = createResilience({
      clock,
      timeout: { attempt: LONG, total: LONG },
      degradation: degradation(),
      fallback: fallback([
        {
          name: "pending",
          hedge: { delay: LONG },
          endpoints: [
            { name: "p", url: `${api.base}/json` },
            { name: "s", url: `${alt.base}/json` },
          ],
        },
      ]),
    });
    layer.degradation?.setLevel("low");
    const left: Record<string, number> = {};
    const settle = async (name: string, work: () => Promise<unknown>) => {
      await work();
      left[name] = clock.pending();
    };
    await settle("plain", async () => (await layer.fetch(`${api.base}/ok?c=p-plain`)).text());
    await settle("request", async () =>
      (await layer.fetch(new Request(`${api.base}/echo?c=p-request`, { method: "POST", body: "x" }))).text(),
    );
    await settle("chain", async () => (await layer.fetch(`${api.base}/json?c=p-chain`)).text());
    await settle("degradation", async () =>
      (
        await layer.fetch(`${api.base}/echo?c=p-deg`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"steps":50}',
        })
      ).text(),
    );
    await settle("ky", () => createClient({ resilience: layer }).get(`${api.base}/ok?c=p-ky`).text());
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${api.base}/v1` }],
      resilience: { clock, timeout: { attempt: LONG, total: LONG } },
    });
    await settle("proxy", async () =>
      (await proxy.fetch(new Request("http://w/v1/ok?c=p-proxy"), {}, { waitUntil() {} })).text(),
    );
    await settle("execute", () => layer.execute(async () => "done", { breaker: "b" }));
    // Retries need their backoffs fired: a layer without timeouts, under `clock.run`.
    const retrying = createResilience({ clock });
    await settle("retried", () =>
      clock.run(
        retrying.fetch(`${api.base}/503?c=p-503`).then(async (res) => {
          await res.text();
          return res.status;
        }),
      ),
    );
    expect(left).toEqual({
      plain: 0,
      request: 0,
      chain: 0,
      degradation: 0,
      ky: 0,
      proxy: 0,
      execute: 0,
      retried: 0,
    });
    expect(hitsOf("p-503")).toHaveLength(3);
    expect(hitsOf("p-deg")[0]?.body).toBe('{"steps":20}');
  }, 30_000);
});

// ---------------------------------------------------------------------------
// 2. Globals: without a global fetch; a signal that is an AbortSignal by the docs' own definition
// ---------------------------------------------------------------------------

describe("what the library needs of the runtime", () => {
  it("without a global fetch every path is refused at once with a TypeError naming the `fetch` option, nothing counted", async () => {
    const clock = new TestClock();
    const plain = createResilience({ clock });
    const chained = createResilience({
      clock,
      fallback: fallback([
        {
          name: "nofetch",
          endpoints: [
            { name: "a", url: `${api.base}/503` },
            { name: "b", url: `${alt.base}/ok` },
          ],
        },
      ]),
      degradation: degradation(),
    });
    chained.degradation?.setLevel("medium");
    const client = createClient({ resilience: plain });
    const retries: unknown[] = [];
    plain.on("retry", (e) => retries.push(e));
    chained.on("retry", (e) => retries.push(e));
    const saved = globalThis.fetch;
    const outcomes: string[] = [];
    // biome-ignore lint/suspicious/noExplicitAny: removing the global on purpose
    delete (globalThis as any).fetch;
    try {
      const calls: Array<() => Promise<unknown>> = [
        () => plain.fetch(`${api.base}/ok?c=g-plain`),
        () => plain.fetch(new Request(`${api.base}/ok?c=g-request`, { method: "POST", body: "x" })),
        () => chained.fetch(`${api.base}/503?c=g-chain`),
        () =>
          chained.fetch(`${alt.base}/echo?c=g-deg`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: '{"steps":50}',
          }),
        () => client.get(`${api.base}/ok?c=g-ky`).text(),
      ];
      for (const call of calls) {
        const settled = await call().then(
          () => "resolved",
          (e: Error) => `${e.name}: ${e.message}`,
        );
        // At once: no timer was ever set, nothing to advance.
        outcomes.push(`${settled} (${clock.pending()} timers)`);
      }
    } finally {
      globalThis.fetch = saved;
    }
    const refused = "TypeError: resilience.fetch: no global fetch in this runtime; pass one as the `fetch` option";
    expect(outcomes).toEqual(Array(5).fill(`${refused} (0 timers)`));
    expect(retries).toEqual([]);
    expect(plain.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    expect(chained.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    expect(chained.health().fallback.nofetch?.fallbacks).toMatchObject({ a: { calls: 0 }, b: { calls: 0 } });
    expect([...api.hits, ...alt.hits].filter((h) => tagOf(h).startsWith("g-"))).toEqual([]);
  });

  /**
   * The docs' own definition: "an `init.signal` that is no `AbortSignal` (one with `aborted`, `addEventListener`
   * and `removeEventListener`: fetch asks for the first two, …)". This one has all three and is no native one.
   */
  const SHAPE_SCRIPT = `
import { createResilience } from "@storycore/resilient-fetch";
const [api] = JSON.parse(process.argv.at(-1));
const runtime = globalThis.Deno ? "deno" : globalThis.Bun ? "bun" : "node";
const out = {};
for (const [name, timeout] of [["none", undefined], ["attempt", { attempt: 600000 }], ["total", { total: 600000 }]]) {
  // Backoffs of at most 1 ms on the real clock: the outcome does not depend on time.
  const r = createResilience({ timeout, retry: { initialDelay: 1 } });
  let retries = 0;
  r.on("retry", () => retries++);
  const signal = { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} };
  const settled = await r.fetch(api + "/ok?c=s-" + runtime + "-" + name, { signal }).then(
    async (res) => "resolved " + res.status + " " + (await res.text()),
    (e) => e.name + ": " + e.message,
  );
  out[name] = { settled, retries, failures: r.debugInfo().totals.failures };
}
console.log(JSON.stringify(out));
`;

  it("Node: a signal with `aborted`, `addEventListener` and `removeEventListener` is taken on every timeout setting", async () => {
    const exit = await runScript("node", "shape-node.mjs", SHAPE_SCRIPT);
    expect(exit.stderr).toBe("");
    const ok = { settled: "resolved 200 ok", retries: 0, failures: 0 };
    expect(report(exit)).toEqual({ none: ok, attempt: ok, total: ok });
    expect(hitsOf("s-node-none")).toHaveLength(1);
  }, 60_000);

  for (const runtime of ["deno", "bun"] as const) {
    // Defect 1 (Deno, Bun): the caller's signal goes to the platform fetch as it is, which refuses it; the
    // refusal is a `TypeError`, so it is retried as a network error and counted.
    (HAVE[runtime] ? it : it.skip)(
      `${runtime}: such a signal, no timeout set, is taken as in Node, never retried nor counted`,
      async () => {
        const exit = await runScript(runtime, `shape-${runtime}.mjs`, SHAPE_SCRIPT);
        const none = (report(exit) as unknown as Record<string, { settled: string; retries: number; failures: number }>)
          .none;
        expect(none?.settled).toBe("resolved 200 ok");
        expect(none?.retries).toBe(0);
        expect(none?.failures).toBe(0);
      },
      60_000,
    );
  }

  // Defect 1 (Chromium, the browser build): the same, with no timeout and with `timeout.attempt` (there the
  // layer's own `AbortSignal.any([signal, …])` throws, the attempt's timer is left set).
  (CHROMIUM ? it : it.skip)(
    "Chromium: such a signal is taken, as in Node, on every timeout setting; never retried nor counted",
    async () => {
      const page = await openLibraryPage((req, res) => {
        res.end(req.url?.startsWith("/ok") ? "ok" : "");
      });
      try {
        const out = await page.page.evaluate(async () => {
          const lib = (window as unknown as { lib: PageLib }).lib;
          const results: Array<{ name: string; settled: string; retries: number; failures: number }> = [];
          for (const [name, timeout] of [
            ["none", undefined],
            ["attempt", { attempt: 600_000 }],
            ["total", { total: 600_000 }],
          ] as const) {
            const r = lib.createResilience({ timeout, retry: { initialDelay: 0 } });
            let retries = 0;
            r.on("retry", () => {
              retries++;
            });
            const signal = { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} };
            const settled = await r.fetch("/ok", { signal: signal as unknown as AbortSignal }).then(
              async (res) => `resolved ${res.status} ${await res.text()}`,
              (e: Error) => `${e.name}: ${e.message}`,
            );
            results.push({ name, settled, retries, failures: r.debugInfo().totals.failures });
          }
          return results;
        });
        for (const result of out) {
          expect(result.settled, result.name).toBe("resolved 200 ok");
          expect(result.retries, result.name).toBe(0);
          expect(result.failures, result.name).toBe(0);
        }
      } finally {
        await page.close();
      }
    },
    60_000,
  );
});

// ---------------------------------------------------------------------------
// 3. docs/storycore-mapping.md: the names and numbers, through the public API, on real servers
// ---------------------------------------------------------------------------

describe("docs/storycore-mapping.md through the public API", () => {
  it("`system.execute(fn, { breaker })` (enable_retry=True): 3 attempts, backoff 1000 × 2^(n−1) jittered, the named breaker opens at 12 failures in a row, then refuses at once", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, random: () => 0.5 });
    const delays: number[] = [];
    system.on("retry", (e) => {
      delays.push(e.delay);
      expect(e.key).toBe("video_generation");
    });
    let ran = 0;
    // The work is an HTTP call of its own (a plain fetch), as an engine client makes.
    const work = async () => {
      ran++;
      const res = await fetch(`${api.base}/503?c=m-exec`);
      await res.text();
      if (!res.ok) throw new Error(`engine answered ${res.status}`);
      return "generated";
    };
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++)
      outcomes.push(
        await clock.run(system.execute(work, { breaker: "video_generation" })).then(
          () => "served",
          (e: Error) => e.name,
        ),
      );
    expect(outcomes).toEqual(Array(4).fill("RetryExhaustedError"));
    expect(hitsOf("m-exec")).toHaveLength(12);
    // full jitter with random 0.5: half of 1000 and of 2000, run after run.
    expect(delays).toEqual([500, 1000, 500, 1000, 500, 1000, 500, 1000]);
    expect(system.health().retry).toEqual({ maxAttempts: 3, initialDelay: 1000, maxDelay: 60_000, jitter: "full" });
    const named = system.health().breakers.video_generation;
    expect(named).toMatchObject({ state: "open", consecutiveFailures: 12, lastError: "Error" });
    // Open: refused before the work runs, not retried; `fallback` answers with the breaker's error.
    const before = ran;
    const answered = await system.execute(work, {
      breaker: "video_generation",
      fallback: (error) => (isCircuitOpenError(error) ? "cached" : "other"),
    });
    expect(answered).toBe("cached");
    expect(ran).toBe(before);
    expect(delays).toHaveLength(8);
    const health = system.health();
    expect(health.status).toBe("unhealthy");
    // Five runs, five failures (a `fallback` answering leaves its run failed).
    expect(health.errorRate).toBe(1);
    expect(system.debugInfo().totals).toEqual({ calls: 5, failures: 5 });
    // After the breaker's 30 s, probes; two that succeed close it (successThreshold 2).
    await clock.advance(30_000);
    expect(system.health().breakers.video_generation?.state).toBe("half_open");
    const probe = async () => "probe ok";
    expect(await system.execute(probe, { breaker: "video_generation" })).toBe("probe ok");
    expect(system.health().breakers.video_generation?.state).toBe("half_open");
    expect(await system.execute(probe, { breaker: "video_generation" })).toBe("probe ok");
    expect(system.health().breakers.video_generation?.state).toBe("closed");
  }, 30_000);

  it("fallback order and `chain.statistics()` over HTTP (plain call and `Request` input): fixed order, the last fallback kept, the same in `health().fallback`", async () => {
    const clock = new TestClock();
    const system = createResilience({
      clock,
      fallback: fallback([
        {
          name: "video",
          endpoints: [
            { name: "hunyuan_premium", url: `${api.base}/flaky` },
            { name: "wan_standard", url: `${alt.base}/json`, expectedQuality: 0.8 },
          ],
        },
      ]),
    });
    const passedOver: string[] = [];
    system.on("fallback", (e) => passedOver.push(`${e.from} -> ${e.next} (${e.reason})`));
    const first = await clock.run(system.fetch(`${api.base}/flaky?c=m-chain1`));
    await first.text();
    expect(getResilienceInfo(first)).toMatchObject({ endpoint: "wan_standard", fromFallback: true, attempts: 4 });
    // The premium endpoint's own retry loop (3 attempts), then the next in order.
    expect(hitsOf("m-chain1").map((h) => `${h.headers.host === api.host ? "api" : "alt"} ${h.method}`)).toEqual([
      "api GET",
      "api GET",
      "api GET",
      "alt GET",
    ]);
    expect(passedOver).toEqual(["hunyuan_premium -> wan_standard (status 503)"]);
    healed.add("m-chain2");
    const second = await clock.run(
      system.fetch(new Request(`${api.base}/flaky?c=m-chain2`, { method: "PUT", body: "job" })),
    );
    expect(await second.text()).toBe("fine");
    expect(getResilienceInfo(second)).toMatchObject({ endpoint: "hunyuan_premium", fromFallback: false });
    const stats = system.fallback?.chain("video").statistics();
    expect(stats).toEqual({
      lastSuccessfulFallback: "wan_standard",
      overallSuccessRate: 1,
      fallbacks: {
        hunyuan_premium: { calls: 2, successes: 1, successRate: 0.5, meanLatencyMs: expect.any(Number) },
        wan_standard: { calls: 1, successes: 1, successRate: 1, meanLatencyMs: expect.any(Number) },
      },
    });
    expect(system.health().fallback.video).toEqual(stats);
    expect(system.fallback?.chain("video").ordered()).toEqual(["hunyuan_premium", "wan_standard"]);
  }, 30_000);

  it("the five levels and their percentages, applied to a ky client's JSON body and to `adjust`, row by row of the table", async () => {
    const system = createResilience({ degradation: degradation() });
    const client = createClient({ resilience: system });
    const table = {
      full: { pct: 100, q: 1, scale: 1, steps: 50, model: "premium", features: ["core", "enhancements", "basic"] },
      high: { pct: 80, q: 0.9, scale: 0.95, steps: 50, model: "premium", features: ["core", "enhancements"] },
      medium: { pct: 60, q: 0.8, scale: 0.9, steps: 30, model: "standard", features: ["core"] },
      low: { pct: 40, q: 0.6, scale: 0.8, steps: 20, model: "basic", features: ["basic"] },
      minimal: { pct: 20, q: 0.4, scale: 0.7, steps: 10, model: "basic", features: [] },
    } as const;
    const params = {
      quality: 1,
      resolution: "1920x1080",
      steps: 50,
      model: "premium",
      features: ["core", "enhancements", "basic"],
      prompt: "a story scene",
    };
    const size = (scale: number) =>
      scale === 1 ? "1920x1080" : `${Math.floor((1920 * scale) / 8) * 8}x${Math.floor((1080 * scale) / 8) * 8}`;
    for (const [level, row] of Object.entries(table)) {
      const report = system.degradation?.setLevel(level as keyof typeof table);
      expect(report?.percentage, level).toBe(row.pct);
      const expected = {
        quality: row.q,
        resolution: size(row.scale),
        steps: row.steps,
        model: row.model,
        features: row.features,
        prompt: "a story scene",
      };
      expect(system.degradation?.adjust(params), level).toEqual(expected);
      const sent = await client.post(`${api.base}/echo?c=m-ky-${level}`, { json: params }).json();
      expect(sent, level).toEqual(expected);
      expect(system.health().degradationLevel).toBe(level);
    }
  }, 30_000);

  it("`health()` has the fields the guide's `get_system_health()` maps to, the same through `resilientProxy`'s health endpoint", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1/video",
          chain: {
            name: "video",
            endpoints: [
              { name: "premium", url: `${api.base}/v1/500` },
              { name: "standard", url: `${alt.base}/v1/json` },
            ],
          },
        },
      ],
      resilience: { clock, retry: false, breaker: { failureThreshold: 1 }, degradation: degradation() },
    });
    const ctx = { waitUntil() {} };
    const served = await clock.run(
      proxy.fetch(
        new Request("http://w/v1/video?c=m-proxy", {
          method: "POST",
          headers: { "idempotency-key": "k1", "content-type": "application/json" },
          body: '{"steps":50}',
        }),
        {},
        ctx,
      ),
    );
    expect(served.status).toBe(200);
    expect(served.headers.get("x-resilience-endpoint")).toBe("standard");
    await served.text();
    const answer = await proxy.fetch(new Request("http://w/__resilience/health"), {}, ctx);
    const health = (await answer.json()) as Record<string, unknown> & {
      breakers: Record<string, Record<string, unknown>>;
      fallback: Record<string, unknown>;
    };
    expect(Object.keys(health).sort()).toEqual(
      ["breakers", "budget", "degradationLevel", "errorRate", "fallback", "retry", "status", "time"].sort(),
    );
    expect(health).toMatchObject({ status: "unhealthy", errorRate: 0, degradationLevel: "full" });
    expect(Object.keys(health.breakers[api.host] ?? {}).sort()).toEqual(
      [
        "consecutiveFailures",
        "failureCount",
        "failureRate",
        "gen",
        "lastError",
        "lastFailureTime",
        "openUntil",
        "reason",
        "state",
      ].sort(),
    );
    expect(health.breakers[api.host]).toMatchObject({ state: "open", consecutiveFailures: 1, lastError: "status 500" });
    expect(health.fallback.video).toMatchObject({
      lastSuccessfulFallback: "standard",
      overallSuccessRate: 1,
      fallbacks: { premium: { calls: 1, successes: 0 }, standard: { calls: 1, successes: 1 } },
    });
    expect(at(api, "/v1/500")).toBeGreaterThanOrEqual(1);
  }, 30_000);
});
