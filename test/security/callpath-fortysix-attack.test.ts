/**
 * Outside-in attack on the call path docs/architecture.md describes: the order of its steps (input checks, breaker
 * key, `timeout.total`, request model, degradation rewrite, chain, retry loop, breaker, bulkhead, redirects), what
 * each step refuses first, the events it emits and in what order, what a host's breaker counts for a redirect hop
 * and for a hedge, where the deadline starts; and its "Package layout" sentences, checked on the source entries
 * bundled by esbuild. docs/runtimes.md's table checked against the binaries installed.
 *
 * Docs:
 * - docs/architecture.md "## A call, from `resilience.fetch` to the transport": "1. `http/resilient-fetch.ts`: finds
 *   the breaker key (refusing a bad URL at once), starts `timeout.total`, then `request/normalize-request.ts` builds
 *   the `CallRequest` (`check-request.ts` refuses a bad method or header; `replay-body.ts` reads a `Request`'s body,
 *   bounded). 2. `degradation/rewrite-request.ts` … 3. `fallback/try-endpoints.ts` when the fallback stage joined and
 *   the URL selects a chain … else straight to 4. `send/send-with-retries.ts` … 5. `send-attempt.ts`: the breaker and
 *   bulkhead admit the attempt, the transport gets `fetchArguments(request)` (through `follow-redirects.ts` where the
 *   library follows redirects)."
 * - docs/architecture.md "## Package layout": "Imports point down only: the entry folders (`fallback`,
 *   `degradation`, `ky`, `cloudflare`, `testing`) → `http` (its root → `send` → `request`) → `policies` → `stores` →
 *   `core`, with no cycles among value imports. One entry builds on another: `cloudflare`'s proxy … (so
 *   `./cloudflare` carries that code, and a Worker that imports both carries it once). The one exception is
 *   type-only: `send/` names the layer's `PipelineParts` and `FetchLike`"; "a bundle that never imports `./fallback`
 *   or `./degradation` carries none of their code"; "Nothing in `src/` imports a runtime built-in (`node:*`)";
 *   "Nothing at module scope creates a timer, an `AbortController` or a promise"; "`retry()` alone keeps a small one
 *   of its own in policies/retry.ts, so that `retry` imported alone stays small in a bundle"; "test clock
 *   (@storycore/resilient-fetch/testing, and /testing/clock without MSW)"; the dependency table ("zod … in the
 *   `./cloudflare` entry only", ky "optional peer | the `./ky` adapter", msw "the `./testing` fault kit").
 * - docs/retry.md "## Bodies": "The caller's own mistakes reject at once with a `TypeError`, before any timer starts,
 *   and are never retried nor counted against the host's breaker: an invalid URL or port, … a method that is not an
 *   HTTP token, a header name or value that is not valid …, a method fetch forbids (`CONNECT`, `TRACE`, `TRACK`), a
 *   GET or HEAD with a body"; "## Fetch semantics are kept"; "## Retry budget" ("Every call earns its deposit once it
 *   is read, calls later refused by a breaker or a bulkhead … included"; "A retry is paid for when it is allowed,
 *   before its wait"); "## Timeouts" ("`timeout.total` bounds the whole call … waits included"); "## Redirects"
 *   ("The hops are one attempt: … the final status counts against the first host's breaker", "A hop to another host
 *   whose breaker refuses calls … is refused … with a `CircuitOpenError` naming that host …, its `afterRedirect`
 *   `true` (… the first host's redirect counts as its success)", "a hop to a half-open host with a free slot takes
 *   it, as that host's probe … the caller's abort, or `timeout.total`, frees the slot at once").
 * - docs/breakers.md "## Bulkheads": "A full queue rejects at once with `BulkheadRejectedError`"; "A call to a host
 *   whose breaker is open is refused with `CircuitOpenError` before it would queue"; "a redirect's hop to another
 *   host runs inside the attempt that holds the first host's slot, not in a slot of the host it goes to"; "A probe
 *   aborted by its caller, `timeout.total` or a hedge that won frees its slot at once".
 * - docs/health-and-events.md "## Events": "`retry` fires before each wait"; "`request` fires once per call the layer
 *   started, when it settles …, and not for one refused before it started (the caller's mistake, a `TypeError`, or a
 *   signal already aborted …)"; "`breaker` fires on every state change"; "`fallback` fires when a chain passes over
 *   an endpoint (… `next`: … the endpoint next in line, which, when its breaker is open, is passed over in turn with
 *   an event of its own, `reason` "circuit open")"; "`redirect` for each redirect the library follows, told as it
 *   turns to the next hop, before that hop's host is asked (a hop whose breaker refuses it has its event too, and the
 *   call's `CircuitOpenError` then names that host)".
 * - docs/fallback.md: "A hedge that lost counts there as a call that did not serve … (its host's breaker does not
 *   count it)"; "the first acceptable answer wins and the others are aborted (their upstreams see the connection
 *   closed)".
 * - docs/cloudflare.md: the proxy "answers `503` with `Retry-After` when the circuit is open, `504` on a timeout and
 *   `502` when no endpoint answered otherwise".
 * - docs/runtimes.md: the table's "last checked with" versions (Node 22.23.3, Deno 2.9.6, Bun 1.4.5, Chromium
 *   156.0.8078.114, happy-dom 21.0.4, workerd ≥ 2025-09-01).
 *
 * How: `createResilience`, `memoryStore`, `isCircuitOpenError`, `isBulkheadRejectedError`, `isTimeoutError` (root),
 * `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare),
 * `TestClock` and `recordEvents` (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts)
 * counting every request; Node's own `fetch` as the reference for fetch's order; esbuild (metafiles of the source
 * entries, a split build as tsup makes it, CommonJS bundles evaluated under `async_hooks`).
 *
 * Paths: plain call, fallback chain (pass-over events, every endpoint open, an endpoint whose `transform` sends it to
 * another host), hedge (a half-open primary losing),
 * redirect (to an open, a closed, a half-open and a busy host), degradation rewrite (a layer with the stage),
 * `Request` input (a stalled body; a `Request` with a bad `init`), `resilientProxy` (open circuit, full bulkhead,
 * `timeout.total` over a stalled client body), ky client (full bulkhead, fetch's order of refusals).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; both fixed since, so plain `it`):
 * 1. docs/retry.md "The caller's own mistakes reject at once with a `TypeError` …: an invalid URL or port, … a method
 *    fetch forbids (`CONNECT`, `TRACE`, `TRACK`), a GET or HEAD with a body", "a header name or value that is not
 *    valid"; "## Fetch semantics are kept"; docs/architecture.md step 1 (the bad URL refused first, then the method
 *    and headers). Observed: the same mistakes made with a signal that is already aborted reject with the signal's
 *    reason (`Error: gone`), not the `TypeError`, on every path of `resilience.fetch` (plain, chain, degradation
 *    layer, a `Request` input with a bad `init`). Node's fetch (and ky, which builds its `Request` first) rejects each
 *    with its `TypeError`: fetch builds the request, which refuses the mistake, before it looks at the signal. A
 *    caller that tells its own bugs from cancellations (`error.name === "AbortError"`, `signal.reason`) reads a bug as
 *    a cancellation whenever it aborts early (a component unmounted, a timeout of 0). Source:
 *    src/http/resilient-fetch.ts `startCall` throws `callerSignal.reason` before `parts.keyOf(url)` and
 *    `normalizeRequest` run (it applies fetch's order to a used `Request` body alone: "fetch builds its Request
 *    before it looks at the signal").
 * 2. docs/fallback.md statistics: "one its full bulkhead refused (it did not serve, though nothing was sent …), while
 *    one passed over for its open breaker is not counted"; docs/health-and-events.md "`fallback` … the endpoint next
 *    in line, which, when its breaker is open, is passed over in turn with an event of its own, `reason` "circuit
 *    open""; docs/architecture.md step 3 then 5 (each endpoint shaped, `transform` included, then "the breaker and
 *    bulkhead admit the attempt"). Observed: an endpoint whose `transform` sends its request to a host whose breaker
 *    is open is refused by that breaker (nothing sent), yet the chain counts it as a failed call (`statistics()`:
 *    `calls` 1, `successes` 0, so `order: "adaptive"` moves it down) and its `fallback` event's reason is the error's
 *    text ("CircuitOpenError: circuit for … is open until …"), where the same endpoint declared at that host is passed
 *    over with "circuit open" and not counted. Source: src/fallback/try-endpoints.ts `skipReason` judges an endpoint
 *    by the breaker of its declared `url` (before the `transform`) and marks only those refusals `passedOver`;
 *    `sendToEndpoint` keys the send by the URL the `transform` returned, so that breaker's refusal reaches the chain
 *    as an ordinary failure.
 *
 * Held (plain `it`):
 * - Layout: every value import among the source files points down (`core` ← `stores` ← `policies` ← `http/request`
 *   ← `http/send` ← `http` ← entries), no cycle; the only upward imports are type-only ones from `send/` to
 *   `PipelineParts` and `FetchLike`, and `cloudflare` → `fallback`; the root bundle carries no file of `fallback`,
 *   `degradation`, `ky`, `cloudflare` or `testing` and imports no `ky`, `msw` or `zod`, `zod` reaches the `./cloudflare`
 *   bundle only, `msw` the `./testing` one only (not `/testing/clock`), `ky` the `./ky` one only; no bundle imports
 *   `node:*`; a Worker that imports `./cloudflare` and `./fallback` of a split build carries the chain router once;
 *   `retry` alone bundles no option checker; evaluating each entry creates no timer, `AbortController` or promise.
 * - Step 1 order: a bad URL with a bad header is refused for its URL; a bad header to a host whose breaker is open,
 *   and through a chain whose every endpoint is open, is the `TypeError` (nothing sent, no event, no deposit, no
 *   timer left with `timeout.total` and `timeout.attempt` set); `timeout.total` starts before a `Request`'s body is
 *   read (a stalled body: `TimeoutError` of phase `total` at the deadline, nothing sent, the request event with 0
 *   attempts).
 * - Step 5 order: a host open in a shared store with its bulkhead full is refused with `CircuitOpenError`, not
 *   `BulkheadRejectedError`; a full bulkhead refuses the first attempt with `BulkheadRejectedError`, nothing sent,
 *   the call's deposit earned, no retry paid; a call queued for a slot has its `timeout.total` counted from its start,
 *   the wait in the queue included (sent when the slot frees, cut at its own deadline).
 * - Events: 503, 503, 200 → `retry`, `retry`, `request` (3 attempts); an attempt that opens the breaker → `breaker`
 *   then `request`, no `retry`; a chain → `fallback` (p → s), `fallback` (s, "circuit open" → t), `request` keyed by
 *   the chain.
 * - Timers: a first attempt that waited for a bulkhead slot has an attempt timer of its own, started when it is sent
 *   (queued at 500, sent at 1 000, cut at 2 000).
 * - Redirects: a hop to an open host → `redirect`, `request`; `CircuitOpenError` naming that host, `afterRedirect`,
 *   the first host's redirect counted as a success; a hop to a closed host answering 503 → counted against the first
 *   host only; a hop to a host whose bulkhead is full goes (inside the first host's slot); a hop to a half-open host
 *   cut by `timeout.total` or the caller's abort frees its probe slot and counts nothing.
 * - Hedge: a half-open primary that loses to its hedge is counted by nobody, its probe slot freed (the next call to
 *   it is its probe and closes it), its connection closed.
 * - `resilientProxy`: an open upstream → 503 with `Retry-After`, nothing sent; a full bulkhead → 502; a stalled
 *   client body under `timeout.total` → 504, nothing sent.
 * - ky client: a full bulkhead reaches the caller as `BulkheadRejectedError`; a bad header, a forbidden method, a bad
 *   URL or a GET body with an aborted signal are `TypeError`s, as fetch orders them.
 * - docs/runtimes.md: the versions installed are the table's.
 *
 * Docs-silent (not pinned):
 * - The other half of defect 2: an endpoint whose `transform` sends its request to a healthy host is skipped
 *   ("circuit open", nothing sent anywhere) when the host of its declared `url` is open: the host its requests go
 *   to is never asked. The docs say "one whose breaker is open is skipped", without saying which host's.
 * - A `Request` whose body a reader holds (locked, not read): with a live signal the layer starts the call and
 *   rejects with the stream's raw `TypeError` ("Invalid state: ReadableStream is locked", not "the request body
 *   could not be read"), firing a `request` event (0 attempts); with an aborted signal it refuses it at once as
 *   "already read (bodyUsed)"; fetch refuses it at once as used (seen while probing, not kept as a test).
 * - A `breaker.key` that returns `""` for a chain's second endpoint: a plain call to that URL is refused at once
 *   with the `TypeError`, but the chain call, whose first endpoint answered 503, rejects with
 *   `RetryExhaustedError` ("gave up after 1 attempt to <chain>: breaker.key(url) must return …"), counted as a
 *   failed call, the 503 dropped: the endpoint's key is found inside the chain (`skipReason`), not at step 1.
 * - A hop whose attempt timeout fires at a half-open host counts twice: the hop's host re-opens (documented) and
 *   the first host counts the attempt timeout as its own failure as well (the docs speak of the final status only;
 *   seen while probing, not kept as a test).
 * - The proxy answers a full bulkhead with `502` ("upstream unavailable"), the status of an upstream that failed,
 *   where nothing was sent and the client could be told to come back (`503`).
 */

import { createHook } from "node:async_hooks";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isTimeoutError,
  memoryStore,
  type Resilience,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection, settledAt } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
const C = httpUpstream();
serveDuringFile(A, B, C);

const ROOT = resolve(import.meta.dirname, "../..");
const ENTRIES = {
  root: "src/index.ts",
  fallback: "src/fallback/index.ts",
  degradation: "src/degradation/index.ts",
  ky: "src/ky/index.ts",
  cloudflare: "src/cloudflare/index.ts",
  testing: "src/testing/index.ts",
  clock: "src/testing/clock.ts",
  policies: "src/policies/index.ts",
} as const;
const ctx = { waitUntil() {}, passThroughOnException() {} };

/** Answers every request with `status` and `body`. */
const answer =
  (status: number, body = "x", headers: Record<string, string> = {}) =>
  (hit: Hit) => {
    hit.res.writeHead(status, headers);
    hit.res.end(body);
  };
const redirectTo = (url: string) => answer(302, "", { location: url });
/** Holds every request open until the returned function is called. */
function holding(server: typeof A): () => void {
  const held: Hit[] = [];
  server.on((hit) => held.push(hit));
  return () => {
    for (const hit of held.splice(0)) hit.res.end("late");
  };
}
const breakerOf = (r: Resilience, base: string) => r.health().breakers[new URL(base).host];
const types = (recorder: ReturnType<typeof recordEvents>) => recorder.events.map((e) => e.type);

/** Opens `base`'s breaker on `r` (failureThreshold 1) with one 500. */
async function openHost(r: Resilience, server: typeof A): Promise<void> {
  server.on(answer(500));
  await (await r.fetch(`${server.base}/open`)).text();
  expect(breakerOf(r, server.base)?.state).toBe("open");
}

describe("docs/architecture.md ## Package layout, checked on the source entries", () => {
  /** The layer of a source file, from the bottom (`core`) up. */
  const layerOf = (file: string): string => {
    const [, top, sub] = /^src\/([^/]+)(?:\/([^/]+)\/)?/.exec(file) ?? [];
    if (top === "http") return sub === "send" || sub === "request" ? `http/${sub}` : "http";
    return top as string;
  };
  const RANK: Record<string, number> = { core: 0, stores: 1, policies: 2, "http/request": 3, "http/send": 4, http: 5 };
  const upward = (from: string, to: string): boolean => {
    const a = layerOf(from);
    const b = layerOf(to);
    if (a === b) return false;
    if (RANK[a] !== undefined) return RANK[b] === undefined || (RANK[b] as number) > (RANK[a] as number);
    return RANK[b] === undefined;
  };

  it("value imports point down with no cycle; the only upward imports are the documented ones", async () => {
    const result = await build({
      entryPoints: Object.values(ENTRIES).map((e) => resolve(ROOT, e)),
      absWorkingDir: ROOT,
      bundle: true,
      format: "esm",
      platform: "neutral",
      write: false,
      outdir: join(tmpdir(), "callpath-unused"),
      metafile: true,
      external: ["ky", "msw", "zod"],
      logLevel: "silent",
    });
    const graph = new Map<string, string[]>();
    const up: string[] = [];
    for (const [file, input] of Object.entries(result.metafile.inputs)) {
      const targets = input.imports.filter((i) => i.path.startsWith("src/")).map((i) => i.path);
      graph.set(file, targets);
      for (const to of targets) if (upward(file, to)) up.push(`${file} -> ${to}`);
    }
    // One entry builds on another: the proxy on the chain router and endpoint checks.
    expect(up.every((edge) => edge.startsWith("src/cloudflare/resilient-proxy.ts -> src/fallback/"))).toBe(true);
    expect(up.length).toBeGreaterThan(0);
    const cycles: string[] = [];
    const state = new Map<string, number>();
    const stack: string[] = [];
    const visit = (node: string): void => {
      state.set(node, 1);
      stack.push(node);
      for (const next of graph.get(node) ?? []) {
        if (state.get(next) === 1) cycles.push([...stack.slice(stack.indexOf(next)), next].join(" -> "));
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(node, 2);
    };
    for (const node of graph.keys()) if (!state.has(node)) visit(node);
    expect(cycles).toEqual([]);
    expect(graph.size).toBeGreaterThan(100);

    // Type-only imports, read from the source: upward ones only from send/ to PipelineParts and FetchLike.
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(resolve(ROOT, dir))) {
        const path = `${dir}/${name}`;
        if (statSync(resolve(ROOT, path)).isDirectory()) walk(path);
        else if (path.endsWith(".ts")) files.push(path);
      }
    };
    walk("src");
    const typeUp: string[] = [];
    for (const file of files) {
      const text = readFileSync(resolve(ROOT, file), "utf8");
      for (const [, , what, from] of text.matchAll(/^(?:import|export)\s+(type\s+)?([\s\S]*?)\s+from\s+"([^"]+)";/gm)) {
        const to = relative(ROOT, resolve(ROOT, dirname(file), from as string));
        if (!to.startsWith("src/") || !upward(file, to)) continue;
        if (file.startsWith("src/cloudflare/") && to.startsWith("src/fallback/")) continue;
        typeUp.push(`${layerOf(file)} -> ${to}: ${(what as string).replace(/\s+/g, " ")}`);
      }
      expect(/from\s+"node:/.test(text), file).toBe(false);
    }
    expect(new Set(typeUp)).toEqual(
      new Set([
        "http/send -> src/http/pipeline-parts.ts: { PipelineParts }",
        "http/send -> src/http/resilience-options.ts: { FetchLike }",
      ]),
    );
  });

  it("each entry carries only its own folders and peers: root neither stage nor peer, zod in ./cloudflare only", async () => {
    const carried: Record<string, { dirs: Set<string>; external: Set<string> }> = {};
    for (const [name, entry] of Object.entries(ENTRIES)) {
      const result = await build({
        stdin: { contents: `export * from "./${entry}";`, resolveDir: ROOT, loader: "ts" },
        bundle: true,
        format: "esm",
        platform: "neutral",
        mainFields: ["module", "main"],
        write: false,
        metafile: true,
        external: ["ky", "msw"],
        logLevel: "silent",
      });
      const output = Object.values(result.metafile.outputs)[0] as (typeof result.metafile.outputs)[string];
      const dirs = new Set(
        Object.keys(output.inputs).map((i) => (i.startsWith("src/") ? (i.split("/")[1] as string) : i)),
      );
      carried[name] = {
        dirs: new Set([...dirs].filter((d) => !d.includes("node_modules/zod") && !d.startsWith("<"))),
        external: new Set(output.imports.map((i) => i.path)),
      };
      const zod = [...dirs].some((d) => d.includes("/zod/"));
      expect([name, zod]).toEqual([name, name === "cloudflare"]);
      expect([...carried[name].external].some((p) => p.startsWith("node:"))).toBe(false);
    }
    const own = (name: keyof typeof ENTRIES) =>
      [...(carried[name]?.dirs ?? [])].filter((d) => d.endsWith(".ts") === false);
    expect(own("root").sort()).toEqual(["core", "http", "policies", "stores"]);
    expect(own("degradation")).not.toContain("fallback");
    expect(own("fallback")).not.toContain("degradation");
    expect(own("cloudflare")).toContain("fallback");
    expect(own("clock").sort()).toEqual(["core", "testing"]);
    expect(own("policies").sort()).toEqual(["core", "policies"]);
    expect([...(carried.root?.external ?? [])]).toEqual([]);
    expect([...(carried.ky?.external ?? [])]).toEqual(["ky"]);
    expect(new Set(carried.testing?.external)).toEqual(new Set(["msw"]));
    expect([...(carried.clock?.external ?? [])]).toEqual([]);
  });

  it("`retry` alone bundles no option checker; a Worker importing ./cloudflare and ./fallback carries the router once", async () => {
    const retryAlone = await build({
      stdin: { contents: 'export { retry } from "./src/policies/index.ts";', resolveDir: ROOT, loader: "ts" },
      bundle: true,
      format: "esm",
      platform: "neutral",
      write: false,
      metafile: true,
      // Minified, as a bundle shipped (and size-limit's) is.
      minify: true,
      logLevel: "silent",
    });
    // What the bundle carries (the output's inputs), not every file esbuild read.
    const inputs = Object.keys(Object.values(retryAlone.metafile.outputs)[0]?.inputs ?? {});
    expect(inputs).toContain("src/policies/retry.ts");
    expect(inputs).not.toContain("src/core/options/check-options.ts");

    // The entries built as tsup builds them (esbuild, `splitting`), then a Worker bundled from that output.
    const dir = mkdtempSync(join(tmpdir(), "callpath-split-"));
    try {
      await build({
        entryPoints: Object.fromEntries(
          Object.entries(ENTRIES).map(([name, entry]) => [name, resolve(ROOT, entry)]),
        ) as Record<string, string>,
        absWorkingDir: ROOT,
        bundle: true,
        splitting: true,
        format: "esm",
        platform: "neutral",
        outdir: dir,
        external: ["ky", "msw", "zod"],
        logLevel: "silent",
      });
      const worker = await build({
        stdin: {
          contents: `export { resilientProxy } from "./cloudflare.js"; export { fallback } from "./fallback.js";`,
          resolveDir: dir,
        },
        bundle: true,
        format: "esm",
        platform: "neutral",
        write: false,
        external: ["zod", "zod/*"],
        logLevel: "silent",
      });
      const text = (worker.outputFiles[0] as { text: string }).text;
      for (const marker of ["function chainPrefix(", "function rebase(", "function tryEndpoints("])
        expect([marker, text.split(marker).length - 1]).toEqual([marker, 1]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("evaluating each entry creates no timer, AbortController or promise (a control module does)", async () => {
    const control = "export const p = Promise.resolve(1); export const t = setTimeout(() => {}, 0); clearTimeout(t);";
    const sources: Record<string, string> = { control };
    for (const [name, entry] of Object.entries(ENTRIES)) sources[name] = `export * from "./${entry}";`;
    const counted: Record<string, { promise: number; timer: number; abort: number; exports: number }> = {};
    for (const [name, contents] of Object.entries(sources)) {
      const bundled = await build({
        stdin: { contents, resolveDir: ROOT, loader: "ts" },
        bundle: true,
        format: "cjs",
        platform: "neutral",
        mainFields: ["module", "main"],
        write: false,
        external: ["ky", "msw"],
        logLevel: "silent",
      });
      const run = new Function("module", "exports", "require", (bundled.outputFiles[0] as { text: string }).text);
      const count = { promise: 0, timer: 0, abort: 0, exports: 0 };
      const saved = { setTimeout, setInterval, AbortController };
      const module = { exports: {} as Record<string, unknown> };
      const hook = createHook({
        init(_id, type) {
          if (type === "PROMISE") count.promise++;
        },
      });
      globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
        count.timer++;
        return saved.setTimeout(...args);
      }) as typeof setTimeout;
      globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
        count.timer++;
        return saved.setInterval(...args);
      }) as typeof setInterval;
      globalThis.AbortController = class extends saved.AbortController {
        constructor() {
          super();
          count.abort++;
        }
      };
      hook.enable();
      try {
        // ky and msw stand in as empty modules: their own module scope is not the library's.
        run(module, module.exports, () => ({}));
      } finally {
        hook.disable();
        Object.assign(globalThis, saved);
      }
      count.exports = Object.keys(module.exports).length;
      counted[name] = count;
    }
    expect(counted.control).toMatchObject({ promise: 1, timer: 1, abort: 0 });
    for (const name of Object.keys(ENTRIES)) {
      expect([name, counted[name]?.promise, counted[name]?.timer, counted[name]?.abort]).toEqual([name, 0, 0, 0]);
      expect(counted[name]?.exports).toBeGreaterThan(0);
    }
  });

  it("docs/runtimes.md: the versions installed are the table's (Node's and Chromium's major: a patch never fails it)", () => {
    const doc = readFileSync(resolve(ROOT, "docs/runtimes.md"), "utf8");
    const bin = resolve(ROOT, "node_modules/.bin");
    // The lockfile pins Deno, Bun and happy-dom; npm's node@22 and Debian's Chromium take their patches as they
    // come (docs/runtimes.md: "A patch or minor release never fails it"), so for those the major is the table's.
    const lastChecked = (runtime: string) => new RegExp(`\\| ${runtime} +\\| [^|(]*\\((\\d+)\\.`).exec(doc)?.[1];
    expect(lastChecked("Node")).toBe(process.versions.node.split(".")[0]);
    expect(doc).toContain(`(${/deno (\S+)/.exec(execFileSync(resolve(bin, "deno"), ["--version"]).toString())?.[1]})`);
    expect(doc).toContain(`(${execFileSync(resolve(bin, "bun"), ["--version"]).toString().trim()})`);
    const happyDom = JSON.parse(readFileSync(resolve(ROOT, "node_modules/happy-dom/package.json"), "utf8")).version;
    expect(doc).toContain(`(${happyDom})`);
    const chromium = /Chromium (\d+)\./.exec(execFileSync("/usr/bin/chromium", ["--version"]).toString())?.[1];
    expect(lastChecked("Chromium")).toBe(chromium);
    const compat = /compatibility_date\s*=\s*"([^"]+)"/.exec(readFileSync(resolve(ROOT, "wrangler.toml"), "utf8"))?.[1];
    expect(doc).toContain(`≥ ${compat}`);
  });
});

describe("step 1: what is refused first", () => {
  const gone = () => {
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    return controller.signal;
  };
  /** Mistakes docs/retry.md lists, each with its URL and init (the signal added by the test). */
  const mistakes = (base: string): Array<[string, string | Request, RequestInit]> => [
    ["invalid port", "http://127.0.0.1:99999/v1/x", {}],
    ["header value with CR", `${base}/v1/x`, { headers: { "x-a": "a\rb" } }],
    ["TRACE", `${base}/v1/x`, { method: "TRACE" }],
    ["GET with a body", `${base}/v1/x`, { body: "x" }],
    ["Request + init with a bad header", new Request(`${base}/v1/x`), { headers: [["x-a", "a\nb"]] }],
  ];
  const layers = () => ({
    plain: createResilience(),
    chain: createResilience({
      fallback: fallback([
        {
          name: "ch",
          endpoints: [
            { name: "p", url: `${A.base}/v1` },
            { name: "s", url: `${B.base}/v1` },
          ],
        },
      ]),
    }),
    degradation: createResilience({ degradation: degradation({}) }),
  });

  it("fetch itself refuses each mistake with its TypeError even when the signal is already aborted (the reference)", async () => {
    for (const [name, input, init] of mistakes(A.base)) {
      const error = await rejection(fetch(input, { ...init, signal: gone() }));
      expect([name, error instanceof TypeError]).toEqual([name, true]);
    }
    // And the layer refuses each with a TypeError when the signal is live.
    for (const [path, layer] of Object.entries(layers())) {
      for (const [name, input, init] of mistakes(A.base)) {
        const error = await rejection(layer.fetch(input, init));
        expect([path, name, error instanceof TypeError]).toEqual([path, name, true]);
      }
    }
    expect(A.hits.length + B.hits.length).toBe(0);
  });

  it("a caller's mistake rejects with its TypeError whatever the signal says (plain, chain, degradation, Request)", async () => {
    const seen: string[] = [];
    for (const [path, layer] of Object.entries(layers())) {
      for (const [name, input, init] of mistakes(A.base)) {
        const error = await rejection(layer.fetch(input, { ...init, signal: gone() }));
        if (!(error instanceof TypeError)) seen.push(`${path}/${name}: ${String(error)}`);
      }
    }
    // Observed: every one rejects with "Error: gone", the abort's reason.
    expect(seen).toEqual([]);
  });

  it("a bad URL with a bad header is refused for its URL (the breaker key is found first)", async () => {
    const layer = createResilience();
    const error = await rejection(layer.fetch("http://127.0.0.1:99999/x", { headers: { "x-a": "a\rb" } }));
    expect(error).toBeInstanceOf(TypeError);
    expect(String(error)).not.toMatch(/header/i);
    const header = await rejection(layer.fetch(`${A.base}/x`, { headers: { "x-a": "a\rb" } }));
    expect(String(header)).toMatch(/header "x-a"/);
  });

  it("a bad header to an open host, or down a chain of open endpoints, is the TypeError: no event, no deposit, no timer", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      timeout: { total: 5_000, attempt: 1_000 },
      fallback: fallback([
        {
          name: "ch",
          endpoints: [
            { name: "p", url: `${A.base}/v1` },
            { name: "s", url: `${B.base}/v1` },
          ],
        },
      ]),
    });
    await openHost(layer, A);
    await openHost(layer, B);
    A.reset();
    B.reset();
    const tokens = layer.health().budget?.tokens;
    const recorder = recordEvents(layer);
    for (const url of [`${A.base}/x`, `${A.base}/v1/x`]) {
      const error = await rejection(layer.fetch(url, { headers: { "x-a": "a\rb" } }));
      expect(error).toBeInstanceOf(TypeError);
    }
    // Without the mistake, the breaker (plain) and the chain's pass-overs refuse.
    expect(isCircuitOpenError(await rejection(layer.fetch(`${A.base}/x`)))).toBe(true);
    expect(types(recorder)).toEqual(["request"]);
    recorder.events.length = 0;
    await rejection(layer.fetch(`${A.base}/v1/x`));
    expect(types(recorder)).toEqual(["fallback", "fallback", "request"]);
    expect(layer.health().budget?.tokens).toBeCloseTo((tokens as number) + 0.2, 5);
    expect(clock.pending()).toBe(0);
    expect(A.hits.length + B.hits.length).toBe(0);
  });

  it("timeout.total starts before a Request's body is read: a stalled body ends at the deadline, nothing sent", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, timeout: { total: 1_000 } });
    const recorder = recordEvents(layer);
    let cancelled: unknown;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("part"));
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const request = new Request(`${A.base}/upload`, { method: "POST", body, duplex: "half" } as RequestInit);
    const call = settledAt(layer.fetch(request), clock);
    await clock.advance(999);
    expect(recorder.events).toEqual([]);
    await clock.advance(1);
    const out = await call;
    expect(isTimeoutError(out.error) && out.error.phase).toBe("total");
    expect(out.at).toBe(1_000);
    expect(isTimeoutError(cancelled)).toBe(true);
    expect(recorder.of("request")).toMatchObject([{ attempts: 0, error: "TimeoutError", outcome: "error" }]);
    expect(A.hits).toEqual([]);
  });
});

describe("step 5: the breaker before the bulkhead, the bulkhead before the budget", () => {
  it("a host open in the shared store, its bulkhead full: CircuitOpenError, not BulkheadRejectedError", async () => {
    const store = memoryStore();
    const layer = createResilience({ store, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const other = createResilience({ store, breaker: { failureThreshold: 1 }, retry: { maxAttempts: 1 } });
    const release = holding(A);
    const first = layer.fetch(`${A.base}/hang`);
    await A.nth(1);
    A.on(answer(500));
    await (await other.fetch(`${A.base}/fail`)).text();
    const error = await rejection(layer.fetch(`${A.base}/x`));
    expect(isCircuitOpenError(error)).toBe(true);
    expect(A.hits.length).toBe(2);
    release();
    await (await first).text();
  });

  it("a full bulkhead refuses the first attempt: nothing sent, the deposit earned, no retry paid", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, bulkhead: { maxConcurrent: 1, maxQueue: 0 }, retry: { maxAttempts: 3 } });
    const release = holding(A);
    const first = layer.fetch(`${A.base}/hang`);
    await A.nth(1);
    const before = layer.health().budget;
    const recorder = recordEvents(layer);
    const error = await rejection(layer.fetch(`${A.base}/x`));
    expect(isBulkheadRejectedError(error)).toBe(true);
    const after = layer.health().budget;
    expect(after?.tokens).toBeCloseTo((before?.tokens as number) + 0.1, 5);
    expect(after?.retriesAllowed).toBe(0);
    expect(recorder.events).toMatchObject([{ type: "request", attempts: 0, error: "BulkheadRejectedError" }]);
    expect(A.hits.length).toBe(1);
    release();
    await (await first).text();
  });

  it("a call queued for a slot: its timeout.total counts the wait in the queue", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, bulkhead: { maxConcurrent: 1, maxQueue: 1 }, timeout: { total: 1_000 } });
    const release = holding(A);
    const first = settledAt(layer.fetch(`${A.base}/hang`), clock);
    await A.nth(1);
    await clock.advance(500);
    const queued = settledAt(layer.fetch(`${A.base}/queued`), clock);
    expect(breakerOf(layer, A.base)).toMatchObject({ active: 1, queued: 1 });
    await clock.advance(500);
    // The first call's deadline frees the slot at 1 000: the queued call is sent then.
    expect(isTimeoutError((await first).error)).toBe(true);
    await A.nth(2);
    await clock.advance(500);
    // Its deadline is 1 000 ms from its start (500), the 500 ms in the queue included, not from when it was sent.
    const out = await queued;
    expect(isTimeoutError(out.error) && out.error.phase).toBe("total");
    expect(out.at).toBe(1_500);
    expect(breakerOf(layer, A.base)).toMatchObject({ active: 0, queued: 0 });
    expect(A.hits.map((h) => h.path)).toEqual(["/hang", "/queued"]);
    release();
  });
});

describe("step 3 then 5: a chain endpoint whose transform sends it to another host", () => {
  const layerWith = (transformTo: string | undefined) =>
    createResilience({
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "ch",
          endpoints: [
            { name: "p", url: `${A.base}/v1` },
            transformTo === undefined
              ? { name: "s", url: `${C.base}/v1` }
              : {
                  name: "s",
                  url: `${B.base}/v1`,
                  transform: (req) => ({ ...req, url: req.url.replace(B.base, transformTo) }),
                },
          ],
        },
      ]),
    });

  it("declared at an open host: passed over, reason circuit open, not counted (the reference)", async () => {
    const layer = layerWith(undefined);
    await openHost(layer, C);
    A.on(answer(503));
    const recorder = recordEvents(layer);
    const response = await layer.fetch(`${A.base}/v1/x`);
    await response.text();
    expect(response.status).toBe(503);
    expect(recorder.of("fallback").map((e) => [e.from, e.reason])).toEqual([
      ["p", "status 503"],
      ["s", "circuit open"],
    ]);
    expect(layer.fallback?.chain("ch").statistics().fallbacks.s?.calls).toBe(0);
  });

  it("sent by its transform to an open host: passed over as circuit open and not counted, as the same endpoint declared there", async () => {
    const layer = layerWith(C.base);
    await openHost(layer, C);
    A.on(answer(503));
    const recorder = recordEvents(layer);
    const response = await layer.fetch(`${A.base}/v1/x`);
    await response.text();
    expect(response.status).toBe(503);
    // Nothing was sent to it: its request was refused by the open breaker of the host it goes to.
    expect(C.hits.map((h) => h.path)).toEqual(["/open"]);
    // Observed: reason "CircuitOpenError: circuit for … is open until …", and s counted as a failed call (calls 1).
    expect(recorder.of("fallback").map((e) => [e.from, e.reason])).toEqual([
      ["p", "status 503"],
      ["s", "circuit open"],
    ]);
    expect(layer.fallback?.chain("ch").statistics().fallbacks.s?.calls).toBe(0);
  });

  it("docs-silent: sent by its transform to a healthy host, it is skipped for the open breaker of the host it declares", async () => {
    const layer = layerWith(C.base);
    await openHost(layer, B);
    A.on(answer(503));
    const recorder = recordEvents(layer);
    const response = await layer.fetch(`${A.base}/v1/x`);
    await response.text();
    expect(response.status).toBe(503);
    expect(recorder.of("fallback").map((e) => [e.from, e.reason])).toEqual([
      ["p", "status 503"],
      ["s", "circuit open"],
    ]);
    // C, where its requests go and whose breaker is closed, is never asked.
    expect(C.hits).toEqual([]);
  });
});

describe("timers: a first attempt that waited for a slot", () => {
  it("has an attempt timer of its own, started when it is sent", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      bulkhead: { maxConcurrent: 1, maxQueue: 1 },
      timeout: { attempt: 1_000, total: 10_000 },
    });
    A.on(() => {});
    const first = settledAt(layer.fetch(`${A.base}/hang`), clock);
    await A.nth(1);
    await clock.advance(500);
    const queued = settledAt(layer.fetch(`${A.base}/queued`), clock);
    await clock.advance(500);
    expect((await first).at).toBe(1_000);
    await A.nth(2);
    await clock.advance(999);
    await clock.advance(1);
    const out = await queued;
    expect(isTimeoutError(out.error) && [out.error.phase, out.at]).toEqual(["attempt", 2_000]);
  });
});

describe("events, in the order the steps emit them", () => {
  it("plain: 503, 503, 200 → retry, retry, request; an attempt that opens the breaker → breaker, request", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: { initialDelay: 100, jitter: "none" } });
    const recorder = recordEvents(layer);
    A.on((hit) => answer(hit.n < 3 ? 503 : 200)(hit));
    const response = await clock.run(layer.fetch(`${A.base}/x`));
    expect(response.status).toBe(200);
    expect(types(recorder)).toEqual(["retry", "retry", "request"]);
    expect(recorder.of("request")[0]?.attempts).toBe(3);

    const opening = createResilience({ clock, breaker: { failureThreshold: 2 }, retry: { initialDelay: 100 } });
    const seen = recordEvents(opening);
    A.reset();
    A.on(answer(503));
    const last = await clock.run(opening.fetch(`${A.base}/x`));
    await last.text();
    expect(last.status).toBe(503);
    expect(seen.events.map((e) => [e.type, "to" in e ? e.to : undefined])).toEqual([
      ["retry", undefined],
      ["breaker", "open"],
      ["request", undefined],
    ]);
    expect(A.hits.length).toBe(2);
  });

  it("chain: fallback (p → s), fallback (s, circuit open → t), request keyed by the chain", async () => {
    const layer = createResilience({
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "ch",
          endpoints: [
            { name: "p", url: `${A.base}/v1` },
            { name: "s", url: `${B.base}/v1` },
            { name: "t", url: `${C.base}/v1` },
          ],
        },
      ]),
    });
    await openHost(layer, B);
    A.on(answer(503));
    const recorder = recordEvents(layer);
    const response = await layer.fetch(`${A.base}/v1/x`);
    expect(response.status).toBe(200);
    expect(recorder.events.filter((e) => e.type !== "breaker")).toMatchObject([
      { type: "fallback", chain: "ch", from: "p", reason: "status 503", next: "s" },
      { type: "fallback", chain: "ch", from: "s", reason: "circuit open", next: "t" },
      { type: "request", key: "ch", status: 200, attempts: 2 },
    ]);
    expect(B.hits.map((h) => h.path)).toEqual(["/open"]);
  });
});

describe("redirects: the hop's events and what each breaker counts", () => {
  const redirectLayer = (clock: TestClock, extra: Parameters<typeof createResilience>[0] = {}) =>
    createResilience({
      clock,
      breaker: { failureThreshold: 1, halfOpenMaxCalls: 1, successThreshold: 1 },
      retry: { maxAttempts: 1 },
      ...extra,
    });

  it("a hop to an open host: redirect then request; CircuitOpenError naming it; the first host counts a success", async () => {
    const clock = new TestClock();
    const layer = redirectLayer(clock, { breaker: { failureThreshold: 2 } });
    B.on(answer(500));
    for (let i = 0; i < 2; i++) await (await layer.fetch(`${B.base}/open`)).text();
    A.on(answer(500));
    await (await layer.fetch(`${A.base}/once`)).text();
    expect(breakerOf(layer, A.base)?.consecutiveFailures).toBe(1);
    A.on(redirectTo(`${B.base}/t`));
    const recorder = recordEvents(layer);
    const error = await rejection(layer.fetch(`${A.base}/r`));
    expect(isCircuitOpenError(error) && [error.key, error.afterRedirect]).toEqual([B.host, true]);
    expect(types(recorder)).toEqual(["redirect", "request"]);
    expect(breakerOf(layer, A.base)?.consecutiveFailures).toBe(0);
    expect(B.hits.map((h) => h.path)).toEqual(["/open", "/open"]);
  });

  it("a hop to a closed host answering 503 is counted against the first host only", async () => {
    const clock = new TestClock();
    const layer = redirectLayer(clock, { breaker: { failureThreshold: 5 } });
    A.on(redirectTo(`${B.base}/t`));
    B.on(answer(503));
    const recorder = recordEvents(layer);
    const response = await layer.fetch(`${A.base}/r`);
    await response.text();
    expect(response.status).toBe(503);
    expect(types(recorder)).toEqual(["redirect", "request"]);
    expect(breakerOf(layer, A.base)?.consecutiveFailures).toBe(1);
    expect(breakerOf(layer, B.base)?.consecutiveFailures ?? 0).toBe(0);
  });

  it("a hop to a host whose bulkhead is full goes, inside the first host's slot", async () => {
    const clock = new TestClock();
    const layer = redirectLayer(clock, { bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const release = holding(B);
    const busy = layer.fetch(`${B.base}/hang`);
    await B.nth(1);
    B.on(answer(200, "b"));
    A.on(redirectTo(`${B.base}/t`));
    const response = await layer.fetch(`${A.base}/r`);
    expect([response.status, await response.text(), response.redirected]).toEqual([200, "b", true]);
    expect(breakerOf(layer, B.base)).toMatchObject({ active: 1, queued: 0 });
    release();
    await (await busy).text();
  });

  for (const how of ["total", "abort"] as const) {
    it(`a hop to a half-open host cut by ${how === "total" ? "timeout.total" : "the caller's abort"} frees its probe slot, counts nothing`, async () => {
      const clock = new TestClock();
      const layer = redirectLayer(clock, how === "total" ? { timeout: { total: 40_000 } } : {});
      await openHost(layer, B);
      await clock.advance(30_000);
      B.on(() => {});
      A.on(redirectTo(`${B.base}/t`));
      const recorder = recordEvents(layer);
      const controller = new AbortController();
      const call = settledAt(layer.fetch(`${A.base}/r`, { signal: controller.signal }), clock);
      const hop = await B.nth(2);
      if (how === "total") await clock.advance(40_000);
      else controller.abort(new Error("mine"));
      const out = await call;
      expect(how === "total" ? isTimeoutError(out.error) : String(out.error)).toBe(
        how === "total" ? true : "Error: mine",
      );
      await hop.closed;
      expect(recorder.events.map((e) => [e.type, "to" in e ? e.to : undefined])).toEqual([
        ["redirect", `${B.base}/t`],
        ["breaker", "half_open"],
        ["request", undefined],
      ]);
      expect(breakerOf(layer, A.base)?.consecutiveFailures).toBe(0);
      expect(breakerOf(layer, B.base)?.state).toBe("half_open");
      // The slot is free: the next call to the host is its probe, and closes it.
      B.on(answer(200, "ok"));
      const probe = await layer.fetch(`${B.base}/p`);
      expect([probe.status, await probe.text()]).toEqual([200, "ok"]);
      expect(breakerOf(layer, B.base)?.state).toBe("closed");
    });
  }
});

describe("hedge: what the loser's breaker counts", () => {
  it("a half-open primary that loses to its hedge is counted by nobody, its probe slot freed, its connection closed", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      breaker: { failureThreshold: 1, halfOpenMaxCalls: 1, successThreshold: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "ch",
          hedge: { delay: 100 },
          endpoints: [
            { name: "p", url: `${A.base}/v1` },
            { name: "s", url: `${B.base}/v1` },
          ],
        },
      ]),
    });
    await openHost(layer, A);
    await clock.advance(30_000);
    A.on(() => {});
    const recorder = recordEvents(layer);
    const call = layer.fetch(`${A.base}/v1/x`);
    const primary = await A.nth(2);
    await clock.advance(100);
    const response = await call;
    expect([response.status, await response.text()]).toEqual([200, "ok"]);
    await primary.closed;
    expect(
      recorder.events.map((e) => [e.type, "to" in e ? e.to : e.type === "request" ? e.attempts : undefined]),
    ).toEqual([
      ["breaker", "half_open"],
      ["request", 2],
    ]);
    expect(breakerOf(layer, A.base)).toMatchObject({ state: "half_open", consecutiveFailures: 1 });
    A.on(answer(200, "back"));
    const probe = await layer.fetch(`${A.base}/probe`);
    expect([probe.status, await probe.text()]).toEqual([200, "back"]);
    expect(breakerOf(layer, A.base)?.state).toBe("closed");
  });
});

describe("resilientProxy and the ky client on the same path", () => {
  it("the proxy: an open upstream 503 with Retry-After (nothing sent), a full bulkhead 502, a stalled body 504", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [
        { path: "/a", upstream: `${A.base}/up` },
        { path: "/b", upstream: `${B.base}/up` },
      ],
      resilience: {
        clock,
        breaker: { failureThreshold: 1 },
        retry: { maxAttempts: 1 },
        bulkhead: { maxConcurrent: 1, maxQueue: 0 },
        timeout: { total: 1_000 },
      },
    });
    const serve = (path: string, init?: RequestInit) =>
      proxy.fetch(new Request(`http://w.example${path}`, init), {}, ctx);
    A.on(answer(500));
    expect((await serve("/a/x")).status).toBe(500);
    const open = await serve("/a/x");
    expect([open.status, open.headers.get("retry-after"), open.headers.get("x-resilience-attempts")]).toEqual([
      503,
      "30",
      null,
    ]);
    await open.text();
    expect(A.hits.length).toBe(1);

    const release = holding(B);
    const busy = serve("/b/hang");
    await B.nth(1);
    const full = await serve("/b/x");
    expect([full.status, await full.json()]).toEqual([502, { error: "upstream unavailable" }]);
    release();
    await (await busy).text();

    B.reset();
    const body = new ReadableStream<Uint8Array>({ start() {} });
    const stalled = settledAt(serve("/b/slow", { method: "POST", body, duplex: "half" } as RequestInit), clock);
    await clock.advance(1_000);
    const out = await stalled;
    expect([out.status, await out.response?.json()]).toEqual([504, { error: "upstream timed out" }]);
    expect(B.hits).toEqual([]);
  });

  it("ky: a full bulkhead reaches the caller as BulkheadRejectedError; its mistakes win over an aborted signal, as fetch's do", async () => {
    const layer = createResilience({ bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const api = createClient({ resilience: layer });
    const release = holding(A);
    const busy = api.get(`${A.base}/hang`).text();
    await A.nth(1);
    expect(isBulkheadRejectedError(await rejection(api.get(`${A.base}/x`).text()))).toBe(true);
    release();
    await busy;
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    const signal = controller.signal;
    const refused = async (call: () => Promise<unknown>): Promise<unknown> => {
      try {
        await call();
      } catch (error) {
        return error;
      }
      throw new Error("expected a refusal");
    };
    for (const call of [
      () => api.get(`${A.base}/x`, { headers: { "x-a": "a\rb" }, signal }).text(),
      () => api(`${A.base}/x`, { method: "TRACE", signal }).text(),
      () => api.get("http://127.0.0.1:99999/x", { signal }).text(),
      () => api.get(`${A.base}/x`, { body: "x", signal }).text(),
    ])
      expect(await refused(call)).toBeInstanceOf(TypeError);
    expect(A.hits.length).toBe(1);
  });
});

describe("docs-silent: a chain's endpoint keyed by a breaker.key that fails", () => {
  it("the chain turns it into RetryExhaustedError and drops the first endpoint's 503; a plain call gets the TypeError", async () => {
    const layer = createResilience({
      retry: { maxAttempts: 1 },
      breaker: { key: (url) => (url.pathname.startsWith("/v2") ? "" : url.host) },
      fallback: fallback([
        {
          name: "ch",
          endpoints: [
            { name: "p", url: `${A.base}/v1` },
            { name: "s", url: `${B.base}/v2` },
          ],
        },
      ]),
    });
    A.on(answer(503));
    const error = await rejection(layer.fetch(`${A.base}/v1/x`));
    expect((error as Error).name).toBe("RetryExhaustedError");
    expect(String(error)).toMatch(/breaker\.key\(url\) must return a non-empty string/);
    expect(await rejection(layer.fetch(`${B.base}/v2/x`))).toBeInstanceOf(TypeError);
    expect([A.hits.length, B.hits.length]).toEqual([1, 0]);
  });
});
