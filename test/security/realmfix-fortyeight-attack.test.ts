/**
 * Outside-in attack on the three fixes of the retrydoc/degradedoc day: layers of two copies of the package (an
 * app's own and one an SDK bundles) reading each other's marks through one object per realm; a degradation rule's
 * `?query` `match` read as the URL parser writes it, on both sides; `npm run demo`/`npm test` refusing a Node that
 * cannot run their TypeScript files (scripts/check-node.cjs).
 *
 * Docs:
 * - docs/retry.md "## Idempotency": "The marks a layer in front reads for these (an answer that followed another
 *   request, an error after the host had the request) live in one object per realm, so they hold too when the layer
 *   below comes from another copy of the package (an SDK that bundles its own)"; "a `429` or `503` is taken as
 *   declined only when it was the inner call's only request (… and so on down every layer)"; "Nor after a redirect:
 *   the server that answered it may have done the work …, whatever the redirect's target then answers or however
 *   reaching it fails". SECURITY.md: a POST without a key is sent again "only when it surely was not processed …;
 *   never after a 500".
 * - docs/options.md, `fetch` row: "a layer found there, installed with `globalThis.fetch = resilience.fetch` as a
 *   drop-in, is passed for the fetch that was global when that layer was made, so a layer never calls itself, nor
 *   another through the global fetch (one of another copy of the package, an SDK's own, included) …; a request
 *   handed back to a layer while a layer sends it, by a wrapper installed over it that calls it at once (MSW's
 *   patch, a bound copy), goes straight to the fetch beneath it".
 * - docs/architecture.md: "What a layer of another copy of the package (an SDK's own) must read too lives in
 *   `core/realm-shared.ts`, one object per realm under a registered symbol, made at first use …
 *   `getResilienceInfo` reads a registered symbol as well."
 * - docs/cloudflare.md: the proxy answers "`502` when no endpoint answered otherwise (…, and a retry it refused
 *   after an answer too large to keep …, and a redirect's target's own `429` or `503`, whatever the method …)".
 * - docs/degradation.md: "a `match` with a `?query` is read by whole segments up to it and as text from there, the
 *   query too as the parser writes it (`?model=café` is `?model=caf%C3%A9`, however the URL is given)"; "two with
 *   the same `match` are a `ConfigError`: the second would never apply".
 * - README.md "Try it": "Node ≥ 22.18 for development: it runs the demo, benchmarks and examples from their
 *   TypeScript files, which Node 22 does without a flag from 22.18 …; on an older Node these commands stop and say
 *   so"; scripts/check-node.cjs: "Refuses, in one line, to develop on a Node older than the project needs …
 *   without it an old Node fails deep inside a dependency (`Unknown file extension ".ts"` …)"; CHANGELOG "### Fixed":
 *   "`npm test`, `npm run demo` and the examples refuse a Node older than 22.18 in one line, as the README says".
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy`, `failureResponse` (./cloudflare, the proxy as a plain handler),
 * `TestClock` (./testing); a second copy of every entry (`vi.resetModules()` then fresh `import()`s), as an app and
 * an SDK that each bundle a version; node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) counting every
 * request and its `Idempotency-Key`; a refused origin; scripts/check-node.cjs run by this Node pretending another
 * version (as test/tooling/check-node.test.ts does). By hand, outside this file: Node 22.17.0, 22.18.0 and 23.5.0
 * binaries (npm's `node` package) on `node scripts/check-node.cjs` and `node demo/main.ts --seconds 5`.
 *
 * Paths: plain call, `Request`/`URL`/string input, layers installed as the global fetch (both copies, either
 * order), a synchronous MSW-like wrapper over an installed layer, stacked layers (two and three deep, copies
 * alternating), fallback chain over the other copy's layer, followed redirect (307 to a refused origin, 307 to a
 * 503), `resilientProxy`/`failureResponse` over the other copy's layer, ky client over the other copy's layer,
 * degradation rewrite (plain, `Request`, `URL`, ky, chain, proxy).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the same session, so plain `it`):
 * 1. README.md "Node ≥ 22.18 for development: it runs the demo … from their TypeScript files, which Node 22 does
 *    without a flag from 22.18 …; on an older Node these commands stop and say so", with check-node.cjs's own aim
 *    (no failing "deep inside a dependency (`Unknown file extension ".ts"`)"). Observed: Node 23.0.0–23.5.x are
 *    ≥ 22.18 but run no `.ts` file without `--experimental-strip-types` (unflagged in 23.6.0): with a real 23.5.0,
 *    `node scripts/check-node.cjs` exits 0 and `node demo/main.ts` then dies with `ERR_UNKNOWN_FILE_EXTENSION`
 *    (`npm run bench` too) — the very failure the fix was for, on a Node the README says is enough. Source:
 *    scripts/check-node.cjs `checkNode` (`REQUIRED = [22, 18, 0]`: any major above 22 passes). Fix: refuse
 *    23.0.0–23.5.x as well (22.18+ within 22, 23.6+ within 23) and say "Node 22.18+ (23.6+ on 23)" in the README.
 *
 * Held (plain `it`):
 * - Two copies both installed as the global fetch, in either order: a call through `globalThis.fetch` and one
 *   through the layer installed first each reach a 503 server 3 times (one layer's attempts), the other layer
 *   hearing no request. A synchronous wrapper (building a new `Request`, as MSW does) over the app's installed layer
 *   of one copy, the SDK's layer of the other made before or after the wrapper: 3 requests, each through the wrapper
 *   once, the app's layer hearing none.
 * - Keyless POST, server 500 then 503 alternately, inner layer of copy X under an outer of copy Y (all four
 *   pairings), `idempotencyKey` on neither, either or both sides, outer as a plain layer, a chain `[x → A, y → E]`,
 *   `resilientProxy` and the ky client: every request the job reached carries one key (or, keyless, reached once);
 *   three layers deep with copies alternating, 2 requests under one key; an inner refused retry settling with its
 *   kept 503 copy (breaker opened in the wait): the other copy's chain does not move the job on.
 * - A 307 whose later hop is refused, under the other copy's layer: the outer chain stops after x (E gets nothing),
 *   `failureResponse` and `resilientProxy` answer 502; a 307 to a 503 under the other copy's layer: the proxy of
 *   either copy answers 502, GET and POST.
 * - `getResilienceInfo` of one copy reads the info of the other copy's answer.
 * - Importing every entry (fresh copies) writes nothing of the package's to `globalThis`; the first
 *   `createResilience` writes the registered symbol. The symbol holding a number, or a global whose property there
 *   throws on set: each copy keeps its own, and calls work.
 * - Degradation: a rule `match: "<A>/v1?<q>"` (written raw or as the parser writes it) takes the call however it is
 *   given (string raw or encoded, `URL`, `Request`, with a `#fragment`, ky, down a chain, through `resilientProxy`)
 *   for `model=café`, `model=a b`, `model="x"`, `model=it's`, `modèle=x`, `model=a+b`, `model=<x>`, a backtick,
 *   `{x}|^`, several non-ASCII parameters and a stray `%zz`; the two spellings of each are the `ConfigError`.
 * - check-node.cjs: Node 22.17.0 exits 1 with one line on stderr, 22.18.0 exits 0 silently (also seen with the
 *   real 22.17.0 and 22.18.0 binaries: the demo runs on 22.18.0).
 *
 * Docs-silent (not pinned):
 * - Under a global that takes no property there (a throwing setter, `Object.preventExtensions(globalThis)`) or
 *   that holds something else under the symbol, each copy keeps its own object, silently: the cross-copy defects the
 *   fix closed come back (an SDK's layer made after the app's install sends through it: 9 requests for 3). The docs
 *   state the per-realm sharing unconditionally.
 * - An object under the symbol whose property getter throws (or a revoked Proxy there) makes `createResilience`
 *   of every later copy throw that error; a valid-shaped but frozen object there (or the shared object frozen after
 *   first use, as `harden(globalThis)` would) makes every call through the global fetch fail with "Cannot assign to
 *   read only property 'sending'", retried and counted as a network error, nothing ever sent
 *   (src/core/realm-shared.ts reads the found object's fields outside its `try`; src/http/global-fetch.ts writes
 *   `sending` on it).
 * - `getResilienceInfo` of one copy on a frozen `Response` (a transport that freezes its answers, which Node
 *   serves) the other copy's layer gave returns `undefined`: the info of an unextensible `Response` is kept in
 *   each copy's own `WeakMap` (src/http/send/resilience-info.ts `unextensible`).
 * - A rule `match` with `?model=a b` (the parser's `a%20b`) does not take ky's `searchParams: { model: "a b" }`
 *   (`URLSearchParams` writes `a+b`), nor `!'()~` encoded by `URLSearchParams`; nor does `café` take a lowercase
 *   `caf%c3%a9`. Consistent with "as the parser writes it", but a trap.
 * - `npm run bench` and `npm run soak` (README's command table; "Try it" names the benchmarks among what needs
 *   22.18) have no check: on 22.17 they die with `ERR_UNKNOWN_FILE_EXTENSION`. The Node examples run as `node
 *   examples/…/x.ts` cannot be checked at all.
 * - Through `resilientProxy` whose own `retry.idempotencyKey` is off over a layer with it on, a keyless POST's 503
 *   after the inner's 500 is passed on as 503 (the 502 rule names the proxy's own option); the same with one copy.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as cloudflareEntry from "../../src/cloudflare/index.ts";
import * as degradationEntry from "../../src/degradation/index.ts";
import * as fallbackEntry from "../../src/fallback/index.ts";
import * as rootEntry from "../../src/index.ts";
import * as kyEntry from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream();
const E = httpUpstream();
serveDuringFile(A, E);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const KEY = Symbol.for("@storycore/resilient-fetch/realm@1");
const globals = globalThis as unknown as Record<PropertyKey, unknown>;

interface Copy {
  root: typeof rootEntry;
  fallback: typeof fallbackEntry;
  cloudflare: typeof cloudflareEntry;
  ky: typeof kyEntry;
  degradation: typeof degradationEntry;
}

/** A fresh copy of every entry, as a second copy of the package (an SDK's own version) loads them. */
async function freshCopy(): Promise<Copy> {
  vi.resetModules();
  return {
    root: await import("../../src/index.ts"),
    fallback: await import("../../src/fallback/index.ts"),
    cloudflare: await import("../../src/cloudflare/index.ts"),
    ky: await import("../../src/ky/index.ts"),
    degradation: await import("../../src/degradation/index.ts"),
  };
}

const app: Copy = {
  root: rootEntry,
  fallback: fallbackEntry,
  cloudflare: cloudflareEntry,
  ky: kyEntry,
  degradation: degradationEntry,
};
let sdk: Copy;
const copies = (): Record<"app" | "sdk", Copy> => ({ app, sdk });
const PAIRS = [
  ["app", "app"],
  ["app", "sdk"],
  ["sdk", "app"],
  ["sdk", "sdk"],
] as const;

beforeAll(async () => {
  sdk = await freshCopy();
});

const answer503 = (hit: Hit) => {
  hit.res.writeHead(503);
  hit.res.end("busy");
};

/** Runs `body` with `globalThis.fetch` restored afterwards. */
async function keepingGlobalFetch<T>(body: () => Promise<T>): Promise<T> {
  const original = globalThis.fetch;
  try {
    return await body();
  } finally {
    globalThis.fetch = original;
  }
}

describe("two copies installed as the global fetch", () => {
  const options = (clock: TestClock) =>
    ({ clock, budget: false, breaker: false, retry: { initialDelay: 10, jitter: "none" } }) as const;

  for (const [first, second] of [
    ["app", "sdk"],
    ["sdk", "app"],
  ] as const) {
    it(`both installed (${first} first): each call reaches the server 3 times, through one layer`, async () => {
      A.on(answer503);
      const clock = new TestClock(0);
      const heard = { first: 0, second: 0 };
      const outcome = await keepingGlobalFetch(async () => {
        const one = copies()[first].root.createResilience(options(clock));
        one.on("request", () => heard.first++);
        globalThis.fetch = one.fetch;
        const two = copies()[second].root.createResilience(options(clock));
        two.on("request", () => heard.second++);
        globalThis.fetch = two.fetch;
        const viaGlobal = await clock.run(globalThis.fetch(`${A.base}/g`));
        await viaGlobal.text();
        const afterGlobal = A.hits.length;
        const viaFirst = await clock.run(one.fetch(`${A.base}/f`));
        await viaFirst.text();
        return { afterGlobal, afterFirst: A.hits.length - afterGlobal, status: viaFirst.status };
      });
      expect(outcome).toEqual({ afterGlobal: 3, afterFirst: 3, status: 503 });
      // One `request` event each: the call made through it, never the other's.
      expect(heard).toEqual({ first: 1, second: 1 });
    });
  }

  for (const [installer, caller] of [
    ["app", "sdk"],
    ["sdk", "app"],
  ] as const) {
    for (const made of ["before", "after"] as const) {
      it(`a synchronous wrapper over the ${installer}'s installed layer, the ${caller}'s layer made ${made} it`, async () => {
        A.on(answer503);
        const clock = new TestClock(0);
        let installedHeard = 0;
        let wrapped = 0;
        const outcome = await keepingGlobalFetch(async () => {
          const installed = copies()[installer].root.createResilience(options(clock));
          installed.on("request", () => installedHeard++);
          globalThis.fetch = installed.fetch;
          let other = made === "before" ? copies()[caller].root.createResilience(options(clock)) : undefined;
          const beneath = globalThis.fetch;
          // As MSW's patch does: a new Request of the one handed in, passed on at once.
          globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
            wrapped++;
            return beneath(input instanceof Request ? new Request(input) : input, init);
          }) as typeof fetch;
          other ??= copies()[caller].root.createResilience(options(clock));
          const response = await clock.run(other.fetch(`${A.base}/w`));
          await response.text();
          return { requests: A.hits.length, status: response.status };
        });
        expect({ ...outcome, wrapped, installedHeard }).toEqual({
          requests: 3,
          status: 503,
          wrapped: 3,
          installedHeard: 0,
        });
      });
    }
  }
});

describe("two copies stacked: a keyless POST is never sent again after a 500", () => {
  const retryNumbers = { maxAttempts: 2, initialDelay: 10, jitter: "none" } as const;
  type Path = "stacked" | "chain" | "proxy" | "ky";
  const PATHS: Path[] = ["stacked", "chain", "proxy", "ky"];

  /** The keys of every request the job reached (A and the chain's spare E); "none" for a keyless one. */
  const jobKeys = () => [...A.hits, ...E.hits].map((hit) => String(hit.headers["idempotency-key"] ?? "none"));

  async function keylessPost(inner: Copy, outer: Copy, path: Path, innerKey: boolean, outerKey: boolean) {
    A.reset();
    E.reset();
    A.on((hit) => {
      hit.res.writeHead(hit.n % 2 === 1 ? 500 : 503);
      hit.res.end("x");
    });
    E.on((hit) => hit.res.end("spare ran the job"));
    const clock = new TestClock(0);
    const below = inner.root.createResilience({
      clock,
      budget: false,
      breaker: false,
      retry: { ...retryNumbers, idempotencyKey: innerKey },
    });
    const front = {
      clock,
      budget: false as const,
      breaker: false as const,
      fetch: below.fetch,
      retry: { ...retryNumbers, idempotencyKey: outerKey },
    };
    const url = `${A.base}/v1/jobs`;
    const settle = (call: Promise<Response>) =>
      clock.run(
        call
          .then(async (response) => {
            await response.text();
            return response.status;
          })
          .catch(() => "error"),
      );
    if (path === "stacked")
      await settle(outer.root.createResilience(front).fetch(url, { method: "POST", body: "job" }));
    else if (path === "chain") {
      const chained = outer.root.createResilience({
        ...front,
        fallback: outer.fallback.fallback([
          {
            name: "jobs",
            endpoints: [
              { name: "x", url: `${A.base}/v1` },
              { name: "y", url: `${E.base}/v1` },
            ],
          },
        ]),
      });
      await settle(chained.fetch(url, { method: "POST", body: "job" }));
    } else if (path === "proxy") {
      const proxy = outer.cloudflare.resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: front });
      await settle(proxy.fetch(new Request("http://worker.example/v1/jobs", { method: "POST", body: "job" }), {}, ctx));
    } else {
      const client = outer.ky.createClient({ resilience: front, throwHttpErrors: false });
      await settle(client.post(url, { body: "job" }).then((response) => response as Response));
    }
    return jobKeys();
  }

  for (const [inner, outer] of PAIRS) {
    it(`inner ${inner}, outer ${outer}: one key for every request the job reached, on every path`, async () => {
      for (const path of PATHS)
        for (const innerKey of [false, true])
          for (const outerKey of [false, true]) {
            const keys = await keylessPost(copies()[inner], copies()[outer], path, innerKey, outerKey);
            const once = keys[0] === "none" ? keys.length === 1 : new Set(keys).size === 1;
            expect({ path, innerKey, outerKey, once, keys }).toEqual({
              path,
              innerKey,
              outerKey,
              once: true,
              keys,
            });
          }
    });
  }

  it("three layers deep, copies alternating: the inner 503 after its 500 goes up every layer (2 requests, 1 key)", async () => {
    for (const order of [
      ["app", "sdk", "app"],
      ["sdk", "app", "sdk"],
      ["app", "app", "sdk"],
      ["sdk", "sdk", "app"],
    ] as const) {
      A.reset();
      A.on((hit) => {
        hit.res.writeHead(hit.n % 2 === 1 ? 500 : 503);
        hit.res.end("x");
      });
      const clock = new TestClock(0);
      const base = { clock, budget: false, breaker: false } as const;
      const bottom = copies()[order[2]].root.createResilience({
        ...base,
        retry: { ...retryNumbers, idempotencyKey: true },
      });
      const middle = copies()[order[1]].root.createResilience({ ...base, retry: retryNumbers, fetch: bottom.fetch });
      const top = copies()[order[0]].root.createResilience({ ...base, retry: retryNumbers, fetch: middle.fetch });
      const response = await clock.run(top.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
      await response.text();
      const keys = new Set(A.hits.map((hit) => hit.headers["idempotency-key"]));
      expect({ order, status: response.status, requests: A.hits.length, keys: keys.size }).toEqual({
        order,
        status: 503,
        requests: 2,
        keys: 1,
      });
    }
  });

  for (const [inner, outer] of PAIRS) {
    it(`inner ${inner}'s refused retry settles with its kept 503: the ${outer}'s chain does not move the job on`, async () => {
      A.on((hit) => {
        hit.res.writeHead(hit.path.includes("jobs") && hit.n > 1 ? 503 : 500);
        hit.res.end("x");
      });
      E.on((hit) => hit.res.end("spare ran the job"));
      const clock = new TestClock(0);
      const below = copies()[inner].root.createResilience({
        clock,
        budget: false,
        retry: { maxAttempts: 3, initialDelay: 1000, jitter: "none", idempotencyKey: true },
        breaker: { failureThreshold: 3, timeout: 60_000 },
      });
      const chained = copies()[outer].root.createResilience({
        clock,
        budget: false,
        retry: false,
        fetch: below.fetch,
        fallback: copies()[outer].fallback.fallback([
          {
            name: "jobs",
            endpoints: [
              { name: "x", url: `${A.base}/v1` },
              { name: "y", url: `${E.base}/v1` },
            ],
          },
        ]),
      });
      const waits: Array<() => void> = [];
      const waiting = [0, 1].map((i) => new Promise<void>((resolve) => (waits[i] = resolve)));
      let retries = 0;
      below.on("retry", () => waits[retries++]?.());
      const call = chained
        .fetch(`${A.base}/v1/jobs`, { method: "POST", body: "job" })
        .then(async (response) => `${response.status} ${await response.text()}`);
      await waiting[0];
      await clock.advance(1000);
      await waiting[1];
      // Another call's 500 opens A's breaker during the second wait: the retry is refused.
      await (await below.fetch(`${A.base}/trip`)).text();
      await clock.advance(2000);
      expect(await call).toBe("503 x");
      expect(A.hits.map((hit) => hit.path)).toEqual(["/v1/jobs", "/v1/jobs", "/trip"]);
      expect(E.hits).toHaveLength(0);
    });
  }
});

describe("two copies and redirects", () => {
  let refused: string;
  beforeAll(async () => {
    refused = await refusedOrigin();
  });

  for (const [inner, outer] of PAIRS) {
    it(`a 307 whose later hop is refused, under the ${inner}'s layer: the ${outer}'s chain stops, its proxy says 502`, async () => {
      const redirect = (hit: Hit) => {
        hit.res.writeHead(307, { location: `${refused}/gone` });
        hit.res.end();
      };
      A.on(redirect);
      E.on((hit) => hit.res.end("spare ran the job"));
      const clock = new TestClock(0);
      const below = copies()[inner].root.createResilience({
        clock,
        budget: false,
        breaker: false,
        retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      });
      const front = copies()[outer];
      const chained = front.root.createResilience({
        clock,
        budget: false,
        retry: false,
        fetch: below.fetch,
        fallback: front.fallback.fallback([
          {
            name: "jobs",
            endpoints: [
              { name: "x", url: `${A.base}/v1` },
              { name: "y", url: `${E.base}/v1` },
            ],
          },
        ]),
      });
      const chainError = await clock.run(
        rejection(chained.fetch(`${A.base}/v1/jobs`, { method: "POST", body: "job" })),
      );
      expect(chainError).toMatchObject({ name: "FallbackExhaustedError" });
      expect(E.hits).toHaveLength(0);
      expect(A.hits).toHaveLength(1);
      const direct = await clock.run(rejection(below.fetch(`${A.base}/v1/jobs`, { method: "POST", body: "job" })));
      expect(front.cloudflare.failureResponse(direct, clock.now()).status).toBe(502);
      const proxy = front.cloudflare.resilientProxy({
        routes: [{ path: "/", upstream: A.base }],
        resilience: { clock, budget: false, retry: false, fetch: below.fetch },
      });
      const answered = await clock.run(
        proxy.fetch(new Request("http://worker.example/v1/jobs", { method: "POST", body: "job" }), {}, ctx),
      );
      await answered.text();
      expect(answered.status).toBe(502);
      expect(E.hits).toHaveLength(0);
    });

    it(`a 307 to a 503 under the ${inner}'s layer: the ${outer}'s proxy answers 502, GET and POST`, async () => {
      A.on((hit) => {
        hit.res.writeHead(307, { location: `${E.base}/t` });
        hit.res.end();
      });
      E.on(answer503);
      const clock = new TestClock(0);
      const below = copies()[inner].root.createResilience({ clock, budget: false, breaker: false, retry: false });
      const proxy = copies()[outer].cloudflare.resilientProxy({
        routes: [{ path: "/", upstream: A.base }],
        resilience: { clock, budget: false, retry: false, fetch: below.fetch },
      });
      for (const method of ["GET", "POST"]) {
        const body = method === "POST" ? "job" : null;
        const answered = await clock.run(
          proxy.fetch(new Request("http://worker.example/v1/jobs", { method, body }), {}, ctx),
        );
        await answered.text();
        expect({ method, status: answered.status }).toEqual({ method, status: 502 });
      }
    });
  }
});

describe("getResilienceInfo across copies", () => {
  for (const [maker, reader] of [
    ["sdk", "app"],
    ["app", "sdk"],
  ] as const) {
    it(`the ${reader}'s getResilienceInfo reads the ${maker}'s answer`, async () => {
      A.on(answer503);
      const clock = new TestClock(0);
      const layer = copies()[maker].root.createResilience({
        clock,
        budget: false,
        breaker: false,
        retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      });
      const response = await clock.run(layer.fetch(`${A.base}/i`));
      await response.text();
      expect(copies()[reader].root.getResilienceInfo(response)).toMatchObject({
        attempts: 2,
        endpoint: A.host,
        fromFallback: false,
      });
    });
  }
});

describe("the realm's object", () => {
  /** Runs `body` with the symbol's property removed first and put back as it was after. */
  async function withoutShared<T>(body: () => Promise<T>): Promise<T> {
    const saved = Object.getOwnPropertyDescriptor(globalThis, KEY);
    delete globals[KEY];
    try {
      return await body();
    } finally {
      delete globals[KEY];
      if (saved) Object.defineProperty(globalThis, KEY, saved);
    }
  }

  it("importing every entry writes nothing of the package's to globalThis; the first layer writes the symbol", async () => {
    await withoutShared(async () => {
      const before = new Set(Reflect.ownKeys(globalThis));
      const copy = await freshCopy();
      await import("../../src/testing/index.ts");
      await import("../../src/policies/index.ts");
      const added = Reflect.ownKeys(globalThis).filter((key) => !before.has(key));
      expect(added.filter((key) => /storycore|resilien/i.test(String(key)))).toEqual([]);
      expect(Object.getOwnPropertyDescriptor(globalThis, KEY)).toBeUndefined();
      copy.root.createResilience({ budget: false });
      expect(Object.getOwnPropertyDescriptor(globalThis, KEY)?.value).toMatchObject({
        afterOthers: expect.any(WeakSet),
        afterSent: expect.any(WeakSet),
        beneath: expect.any(WeakMap),
      });
    });
  });

  const junk: Array<[string, () => void]> = [
    [
      "holding a number",
      () => Object.defineProperty(globalThis, KEY, { value: 1, configurable: true, writable: true }),
    ],
    [
      "taking no property there (a setter that throws)",
      () =>
        Object.defineProperty(globalThis, KEY, {
          get: () => undefined,
          set: () => {
            throw new TypeError("Cannot add property, object is not extensible");
          },
          configurable: true,
        }),
    ],
  ];
  for (const [name, make] of junk) {
    it(`a global ${name}: each copy keeps its own, and calls through an installed layer work`, async () => {
      await withoutShared(async () => {
        make();
        const one = await freshCopy();
        const two = await freshCopy();
        A.on(answer503);
        const clock = new TestClock(0);
        const options = { clock, budget: false, breaker: false, retry: { initialDelay: 10, jitter: "none" } } as const;
        const status = await keepingGlobalFetch(async () => {
          globalThis.fetch = one.root.createResilience(options).fetch;
          const response = await clock.run(two.root.createResilience(options).fetch(`${A.base}/x`));
          await response.text();
          return response.status;
        });
        expect(status).toBe(503);
      });
    });
  }
});

describe("degradation: a `?query` match read as the URL parser writes it, however the URL is given", () => {
  const QUERIES = [
    "model=café",
    "model=a b",
    'model="x"',
    "model=it's",
    "modèle=x",
    "model=a+b",
    "model=<x>",
    "model=`x`",
    "model={x}|^",
    "model=ü&x=日本",
    "model=%zz é",
  ];
  /** `query` as the URL parser writes it. */
  const parsed = (query: string) => new URL(`http://h.example/?${query}`).search.slice(1);
  const headers = { "x-s1": "50", "x-s2": "50" };
  /** Which rule rewrote the last request A got: the scoped one caps x-s1, the global one x-s2. */
  const lastSent = () => {
    const hit = A.hits.at(-1);
    return hit ? `${hit.headers["x-s1"]}/${hit.headers["x-s2"]}` : "none";
  };
  const rules = (match: string) => [
    { match, params: { steps: { header: "x-s1" } } },
    { params: { steps: { header: "x-s2" } } },
  ];

  for (const query of QUERIES) {
    for (const written of ["as typed", "as parsed"] as const) {
      it(`match "?${query}" ${written}: the scoped rule takes every form of the call`, async () => {
        const match = `${A.base}/v1?${written === "as typed" ? query : parsed(query)}`;
        const url = `${A.base}/v1?${query}`;
        const seen: Record<string, string> = {};
        const layer = createLayer(match);
        for (const [form, input] of [
          ["string", url],
          ["parsed string", `${A.base}/v1?${parsed(query)}`],
          ["URL", new URL(url)],
          ["fragment", `${url}#frag é`],
        ] as const) {
          await (await layer.fetch(input, { headers })).text();
          seen[form] = lastSent();
        }
        await (await layer.fetch(new Request(url, { headers }))).text();
        seen.Request = lastSent();
        const client = kyEntry.createClient({ resilience: layer, throwHttpErrors: false });
        await (await client.get(url, { headers })).text();
        seen.ky = lastSent();
        const chained = rootEntry.createResilience({
          budget: false,
          retry: false,
          breaker: false,
          degradation: degradationEntry.degradation({ rules: rules(match) }),
          fallback: fallbackEntry.fallback([
            {
              name: "gen",
              endpoints: [
                { name: "x", url: `${A.base}/v1` },
                { name: "y", url: `${E.base}/v1` },
              ],
            },
          ]),
        });
        chained.degradation.setLevel("low");
        await (await chained.fetch(url, { headers })).text();
        seen.chain = lastSent();
        // The proxy's layer reaches `high` by its triggers (one 503, `minSamples: 1`); `high` caps steps at 30 here.
        const clock = new TestClock();
        const proxy = cloudflareEntry.resilientProxy({
          routes: [{ path: "/gen", upstream: `${A.base}/v1` }],
          resilience: {
            retry: false,
            clock,
            degradation: degradationEntry.degradation({
              triggers: { cpuUsage: 1, memoryUsage: 1 },
              browserSignals: false,
              minSamples: 1,
              stepInterval: 0,
              levels: { high: { maxSteps: 30 } },
              rules: rules(match),
            }),
          },
        });
        A.reset();
        A.on((hit) => {
          hit.res.statusCode = hit.n === 1 ? 503 : 200;
          hit.res.end("x");
        });
        for (let i = 0; i < 2; i++) {
          await clock.advance(1_000);
          await (await proxy.fetch(new Request(`https://p.example/gen?${query}`, { headers }), {}, ctx)).text();
        }
        seen.proxy = lastSent();
        expect(seen).toEqual({
          string: "20/50",
          "parsed string": "20/50",
          URL: "20/50",
          fragment: "20/50",
          Request: "20/50",
          ky: "20/50",
          chain: "20/50",
          proxy: "30/50",
        });
      });
    }
    it(`"?${query}" and "?${parsed(query)}" as two rules' match are the ConfigError`, () => {
      expect(() =>
        degradationEntry.degradation({
          rules: [
            { match: `${A.base}/v1?${query}`, params: { steps: "s" } },
            { match: `${A.base}/v1?${parsed(query)}`, params: { steps: "t" } },
          ],
        }),
      ).toThrow(expect.objectContaining({ name: "ConfigError" }));
    });
  }

  function createLayer(match: string) {
    const layer = rootEntry.createResilience({
      budget: false,
      retry: false,
      breaker: false,
      degradation: degradationEntry.degradation({ rules: rules(match) }),
    });
    layer.degradation.setLevel("low");
    return layer;
  }
});

describe("scripts/check-node.cjs", () => {
  const SCRIPT = resolve(import.meta.dirname, "../../scripts/check-node.cjs");
  const dir = mkdtempSync(join(tmpdir(), "realmfix-check-node-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs the check with this Node pretending to be `version`: its exit status and stderr lines. */
  function checkAs(version: string) {
    const preload = join(dir, `pretend-${version}.cjs`);
    writeFileSync(preload, `Object.defineProperty(process.versions, "node", { value: ${JSON.stringify(version)} });\n`);
    const run = spawnSync(process.execPath, ["--require", preload, SCRIPT], { encoding: "utf8" });
    return { status: run.status, lines: run.stderr.trimEnd().split("\n").filter(Boolean) };
  }

  it("refuses 22.17.0 in one line and lets 22.18.0 through silently", () => {
    const old = checkAs("22.17.0");
    expect(old.status).toBe(1);
    expect(old.lines).toHaveLength(1);
    expect(old.lines[0]).toContain("needs Node >= 22.18.0");
    expect(old.lines[0]).toContain("this is Node 22.17.0");
    expect(checkAs("22.18.0")).toEqual({ status: 0, lines: [] });
  });

  // Node 23.0.0–23.5.x run no TypeScript file without --experimental-strip-types (unflagged in 23.6.0): with a real
  // 23.5.0, the check exits 0 and `node demo/main.ts` then fails with ERR_UNKNOWN_FILE_EXTENSION.
  it("defect 1: a Node ≥ 22.18 that runs no .ts file without a flag (23.5.0) stops in one line", () => {
    const run = checkAs("23.5.0");
    // Observed: { status: 0, lines: [] }.
    expect(run.status).toBe(1);
    expect(run.lines).toHaveLength(1);
  });
});
