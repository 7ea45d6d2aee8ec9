/**
 * Outside-in attack on docs/architecture.md's account of a call (the order of its stages, what each entry adds,
 * a layer installed as the global fetch) and its structural claims that show from outside (bundles, module scope).
 *
 * Docs (docs/architecture.md):
 * - "finds the breaker key (refusing a bad URL at once), starts `timeout.total`, then `request/normalize-request.ts`
 *   builds the `CallRequest` (`check-request.ts` refuses a bad method or header; `replay-body.ts` reads a
 *   `Request`'s body, bounded)"; then the degradation rewrite, "`fallback/try-endpoints.ts` when the fallback stage
 *   joined and the URL selects a chain (… a hedged call's `hedge-ledger.ts` keeps a request that may not be sent
 *   twice from going out beside another)", "`send/send-with-retries.ts`: one host's retry loop", "`send-attempt.ts`:
 *   the breaker and bulkhead admit the attempt, the transport gets `fetchArguments(request)` (through
 *   `follow-redirects.ts` where the library follows redirects)".
 * - "A step that changes the request derives a copy (`deriveRequest`); none rebuilds it from a subset of the
 *   caller's `init`"; "`chosenChains` (the `Request` `resilientProxy` passes to `resilience.fetch`: the chain its
 *   route chose)"; "`beneath`: a layer's `fetch` to the fetch beneath it, which `http/global-fetch.ts` reads to pass
 *   an installed layer over".
 * - "a bundle that never imports `./fallback` or `./degradation` carries none of their code"; "a Worker that imports
 *   both carries it once"; "Nothing at module scope creates a timer, an `AbortController` or a promise";
 *   "dist/browser/ … without what only runs outside browsers, folded away by the flag"; zod "in the `./cloudflare`
 *   entry only".
 *
 * How: `createResilience`, `getResilienceInfo`, `fallback`, `degradation`, `createClient` (./ky), `resilientProxy`
 * (./cloudflare, a plain handler), `TestClock`; two node:http servers on 127.0.0.1; a recording transport over the
 * platform fetch; esbuild bundling one-line imports (tsup's browser define; tsup's split build for the Worker case);
 * the bundle of every entry imported by a fresh `node` with timers, `AbortController` and `Promise` wrapped.
 *
 * Paths: plain call, `Request` input (stream body, over `maxReplayBytes`), redirect (same host, cross-host), chain,
 * hedge, degradation rewrite, `resilientProxy` (upstream and chain routes), ky client; each also made after a layer
 * was installed as the global fetch.
 *
 * Defects pinned: none found.
 *
 * Held (plain `it`):
 * - a bad URL, method or header name is refused with nothing sent (plain and chain layer).
 * - `timeout.total` runs while a `Request`'s endless body is read: TimeoutError phase total at 1000 ms, nothing
 *   sent (plain, chain, degradation); `resilientProxy` answers 504 at 1000 ms. A `Request` body past
 *   `maxReplayBytes` goes once, whole.
 * - the rewrite comes once, by the caller's URL, before the chain (both endpoints get `steps` 30; the rule for the
 *   second endpoint's URL does not apply on top); each chain host has its own retry loop (3 on A, then B), each
 *   attempt admitted by the host's breaker (threshold 2: 2 on A; a plain loop stops at 2 of 5).
 * - a same-host 307 under `bulkhead: { maxConcurrent: 1, maxQueue: 0 }` completes: plain, chain, ky, proxy.
 * - the caller's whole init (`cf`, `referrerPolicy`, `credentials`, `cache`) reaches the transport on each retry,
 *   with a `Request` input, each hop of a cross-host redirect, each chain endpoint after a rewrite, and a hedge.
 * - a keyless POST is not hedged while out (B gets nothing, A serves); with a key it is (B at 100 ms, B serves).
 * - two proxy chain routes over one first endpoint: each request's spare is its own route's.
 * - a layer without stages, beside one with both: a chain's URL goes straight, body untouched, level `full`.
 * - a layer made after another was installed as `globalThis.fetch` never reaches it (its transport sees 0 calls):
 *   plain, chain, hedge, ky, `resilientProxy`, with and without a redirect (3 requests, not 9).
 * - bundles: the root alone has no fallback, degradation, cloudflare, ky, testing or zod code (both builds);
 *   root+fallback has chain-router.ts, no degradation; the browser build drops `followingFetch`; ./cloudflare +
 *   ./fallback of the split build carry `chainPrefix` and `fallback` once each.
 * - importing every entry makes no timer, microtask, `AbortController` or promise from the package's own code
 *   (checked able to fail by appending such calls to the bundle).
 *
 * Docs-silent (not pinned):
 * - importing `./ky` constructs an `AbortController` at module scope in ky's own code (its constants.js builds a
 *   `Request`, which undici gives a controller); the sentence speaks of src/ only.
 * - the browser build keeps follow-redirects.ts's mark helpers (`markAfterSent`, `isAfterRedirect`,
 *   `defaultRedirectMode` reduced to `return "platform"`); only the follower itself is folded away.
 */ import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build, type Metafile } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection, settledAt } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const repo = resolve(import.meta.dirname, "../..");
const ctx = { waitUntil() {}, passThroughOnException() {} };
const platformFetch = globalThis.fetch;
const busy = (hit: Hit): void => {
  hit.res.writeHead(503);
  hit.res.end("busy");
};
const quiet = { budget: false, retry: { maxAttempts: 3, initialDelay: 10, jitter: "none" } } as const;
const chainOf = (name: string, ...urls: string[]) =>
  fallback([{ name, endpoints: urls.map((url, i) => ({ name: `e${i}`, url })) }]);
const hedged = (delay: number) =>
  fallback([
    {
      name: "h",
      hedge: { delay },
      endpoints: [
        { name: "a", url: `${A.base}/v1` },
        { name: "b", url: `${B.base}/v1` },
      ],
    },
  ]);
/** The layer's `fetch` as the ky client and `resilientProxy` (one route to A) call it. */
const viaKy = (resilience: ResilienceOptions) => {
  const client = createClient({ resilience, throwHttpErrors: false });
  return (url: string) => client.get(url) as unknown as Promise<Response>;
};
const viaProxy = (resilience: ResilienceOptions) => {
  const proxy = resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience });
  return (url: string) => proxy.fetch(new Request(`http://worker.example${new URL(url).pathname}`), {}, ctx);
};

/** A transport over the platform's fetch that records what each call handed it. */
function recording() {
  const calls: Array<{ url: string; init: RequestInit & { cf?: unknown }; view: Request }> = [];
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const view = new Request(input, init);
    calls.push({ url: view.url, init: (init ?? {}) as RequestInit, view });
    return platformFetch(input, init);
  };
  return { calls, fetch: fetch as typeof globalThis.fetch };
}

const extras = {
  cf: { cacheTtl: 7 },
  referrerPolicy: "no-referrer",
  credentials: "omit",
  cache: "no-store",
} as const;
const expectWhole = (calls: ReturnType<typeof recording>["calls"], n: number): void => {
  expect(calls).toHaveLength(n);
  for (const { init, view } of calls) {
    expect(init.cf).toEqual({ cacheTtl: 7 });
    expect([view.referrerPolicy, view.credentials, view.cache]).toEqual(["no-referrer", "omit", "no-store"]);
  }
};

/** A stream body that sends `first` and then never ends. */
function endless(first = "{"): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(first));
    },
  });
}

describe("1. resilient-fetch.ts: the breaker key, timeout.total, then the CallRequest", () => {
  const shapes: Record<string, () => [string, RequestInit]> = {
    "a bad URL": () => ["http://exa mple.test:99999/", {}],
    "a bad method": () => [`${A.base}/x`, { method: "GE T" }],
    "a bad header name": () => [`${A.base}/x`, { headers: [["bad header", "x"]] }],
  };
  for (const [what, make] of Object.entries(shapes)) {
    it(`${what} is refused before anything goes out (plain layer, chain layer)`, async () => {
      const clock = new TestClock(0);
      const t = recording();
      for (const layer of [
        createResilience({ clock, ...quiet, fetch: t.fetch }),
        createResilience({ clock, ...quiet, fetch: t.fetch, fallback: chainOf("c", `${A.base}/`, `${B.base}/`) }),
      ]) {
        const [url, init] = make();
        const error = await clock.run(rejection(layer.fetch(url, init)));
        expect(error).toBeInstanceOf(Error);
      }
      expect(t.calls).toHaveLength(0);
      expect(A.hits.length + B.hits.length).toBe(0);
    });
  }

  const paths = {
    plain: (clock: TestClock) => createResilience({ clock, ...quiet, timeout: { total: 1000 } }),
    chain: (clock: TestClock) =>
      createResilience({ clock, ...quiet, timeout: { total: 1000 }, fallback: chainOf("c", `${A.base}/v1`, B.base) }),
    "degradation rewrite": (clock: TestClock) => {
      const layer = createResilience({
        clock,
        ...quiet,
        timeout: { total: 1000 },
        degradation: degradation({ rules: [{ match: `${A.base}/v1`, params: { steps: "steps" } }] }),
      });
      layer.degradation?.degrade("x");
      layer.degradation?.degrade("x");
      return layer;
    },
  };
  for (const [path, make] of Object.entries(paths)) {
    it(`timeout.total is running while a Request's body is read (${path})`, async () => {
      const clock = new TestClock(0);
      const layer = make(clock);
      const request = new Request(`${A.base}/v1/jobs`, {
        method: "POST",
        body: endless(),
        duplex: "half",
      } as RequestInit);
      const settled = settledAt(layer.fetch(request), clock);
      await clock.advance(1000);
      const outcome = await settled;
      expect(outcome.at).toBe(1000);
      expect(outcome.error).toMatchObject({ name: "TimeoutError", phase: "total" });
      expect(A.hits.length + B.hits.length).toBe(0);
    });
  }

  it("timeout.total is running while a Request's body is read (resilientProxy)", async () => {
    const clock = new TestClock(0);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: A.base }],
      resilience: { clock, ...quiet, timeout: { total: 1000 } },
    });
    const incoming = new Request("http://worker.example/v1/jobs", {
      method: "POST",
      body: endless(),
      duplex: "half",
    } as RequestInit);
    const settled = settledAt(proxy.fetch(incoming, {}, ctx), clock);
    await clock.advance(1000);
    const outcome = await settled;
    expect(outcome.at).toBe(1000);
    expect(outcome.status).toBe(504);
    expect(A.hits).toHaveLength(0);
  });

  it("replay-body.ts reads a Request's body bounded: past maxReplayBytes it goes once, whole", async () => {
    A.on(busy);
    const clock = new TestClock(0);
    const layer = createResilience({ clock, ...quiet, maxReplayBytes: 16 });
    const bytes = new TextEncoder().encode("y".repeat(64));
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(bytes.slice(0, 10));
        controller.enqueue(bytes.slice(10));
        controller.close();
      },
    });
    const request = new Request(`${A.base}/up`, { method: "PUT", body, duplex: "half" } as RequestInit);
    const response = await clock.run(layer.fetch(request));
    expect(response.status).toBe(503);
    expect(A.hits).toHaveLength(1);
    expect(A.hits[0]?.body).toBe("y".repeat(64));
  });
});

describe("2-5. the stages in order: rewrite, chain, one host's retry loop, the attempt behind breaker and bulkhead", () => {
  it("degradation rewrites once, by the caller's URL, before the chain: every endpoint gets the rewritten body", async () => {
    A.on(busy);
    B.on((hit) => hit.res.end("ok"));
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      budget: false,
      retry: false,
      fallback: chainOf("c", `${A.base}/v1`, `${B.base}/v2`),
      degradation: degradation({
        rules: [
          { match: `${A.base}/v1`, params: { steps: "parameters.steps" } },
          { match: `${B.base}/v2`, params: { steps: "other.steps" } },
        ],
      }),
    });
    layer.degradation?.degrade("x");
    layer.degradation?.degrade("x");
    const response = await clock.run(
      layer.fetch(`${A.base}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": "k" },
        body: JSON.stringify({ parameters: { steps: 50 }, other: { steps: 50 } }),
      }),
    );
    expect(response.status).toBe(200);
    expect(A.hits.map((h) => JSON.parse(h.body))).toEqual([{ parameters: { steps: 30 }, other: { steps: 50 } }]);
    expect(B.hits.map((h) => JSON.parse(h.body))).toEqual([{ parameters: { steps: 30 }, other: { steps: 50 } }]);
  });

  for (const threshold of [undefined, 2]) {
    it(`a chain gives each host its own retry loop, each attempt admitted by that host's breaker (threshold ${threshold ?? "default"})`, async () => {
      A.on(busy);
      B.on((hit) => hit.res.end("ok"));
      const clock = new TestClock(0);
      const layer = createResilience({
        clock,
        ...quiet,
        ...(threshold ? { breaker: { failureThreshold: threshold } } : {}),
        fallback: chainOf("c", `${A.base}/v1`, `${B.base}/v1`),
      });
      const response = await clock.run(layer.fetch(`${A.base}/v1/jobs`));
      expect(response.status).toBe(200);
      expect(A.hits).toHaveLength(threshold ?? 3);
      expect(B.hits).toHaveLength(1);
      expect(getResilienceInfo(response)).toMatchObject({ endpoint: "e1", fromFallback: true });
    });
  }

  it("the breaker admits each attempt of a plain call: an open breaker stops the retry loop", async () => {
    A.on(busy);
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      budget: false,
      retry: { maxAttempts: 5, initialDelay: 10, jitter: "none" },
      breaker: { failureThreshold: 2 },
    });
    await clock.run(layer.fetch(`${A.base}/x`).then((r) => r.text(), String));
    expect(A.hits).toHaveLength(2);
  });

  const redirectPaths = {
    plain: (opts: ResilienceOptions) => createResilience(opts).fetch,
    chain: (opts: ResilienceOptions) =>
      createResilience({ ...opts, fallback: chainOf("c", `${A.base}/start`, `${B.base}/start`) }).fetch,
    ky: viaKy,
    resilientProxy: viaProxy,
  };
  for (const [path, make] of Object.entries(redirectPaths)) {
    it(`a redirect's hops go inside the one attempt the bulkhead admitted (maxConcurrent 1, maxQueue 0; ${path})`, async () => {
      A.on((hit) => {
        if (hit.path.startsWith("/start")) {
          hit.res.writeHead(307, { location: "/end" });
          hit.res.end();
        } else hit.res.end("arrived");
      });
      const clock = new TestClock(0);
      const call = make({ clock, ...quiet, redirects: "library", bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
      const response = await clock.run(call(`${A.base}/start`));
      expect(response.status).toBe(200);
      expect(await response.text()).toBe("arrived");
      expect(A.hits.map((h) => h.path)).toEqual(["/start", "/end"]);
    });
  }
});

describe("A step that changes the request derives a copy; none rebuilds it from a subset of the caller's init", () => {
  for (const input of ["plain call", "Request input with an init beside it"]) {
    it(`${input}, each retry`, async () => {
      A.on((hit) => (hit.n === 1 ? busy(hit) : hit.res.end("ok")));
      const clock = new TestClock(0);
      const t = recording();
      const layer = createResilience({ clock, ...quiet, fetch: t.fetch });
      const { cf, ...own } = extras;
      const call =
        input === "plain call"
          ? layer.fetch(`${A.base}/x`, { ...extras, method: "PUT", body: "b" } as RequestInit)
          : layer.fetch(new Request(`${A.base}/x`, { ...own, method: "PUT", body: "b" }), { cf } as RequestInit);
      expect((await clock.run(call)).status).toBe(200);
      expectWhole(t.calls, 2);
      expect(A.hits.map((h) => h.body)).toEqual(["b", "b"]);
    });
  }

  it("each hop of a redirect the library follows", async () => {
    A.on((hit) => {
      if (hit.path === "/start") {
        hit.res.writeHead(307, { location: `${B.base}/end` });
        hit.res.end();
      } else hit.res.end("?");
    });
    B.on((hit) => hit.res.end("ok"));
    const clock = new TestClock(0);
    const t = recording();
    const layer = createResilience({ clock, ...quiet, redirects: "library", fetch: t.fetch });
    expect((await clock.run(layer.fetch(`${A.base}/start`, extras as RequestInit))).status).toBe(200);
    expectWhole(t.calls, 2);
  });

  it("each endpoint of a chain, and a degradation rewrite before it", async () => {
    A.on(busy);
    B.on((hit) => hit.res.end("ok"));
    const clock = new TestClock(0);
    const t = recording();
    const layer = createResilience({
      clock,
      budget: false,
      retry: false,
      fetch: t.fetch,
      fallback: chainOf("c", `${A.base}/v1`, `${B.base}/v1`),
      degradation: degradation({ rules: [{ match: `${A.base}/v1`, params: { steps: "steps" } }] }),
    });
    layer.degradation?.degrade("x");
    layer.degradation?.degrade("x");
    const response = await clock.run(
      layer.fetch(`${A.base}/v1/j`, {
        ...extras,
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": "k" },
        body: '{"steps":50}',
      } as RequestInit),
    );
    expect(response.status).toBe(200);
    expectWhole(t.calls, 2);
    expect(B.hits[0]?.body).toBe('{"steps":30}');
  });
});

describe("3. a hedged call's hedge-ledger.ts: a request that may not be sent twice goes out beside no other", () => {
  // Each copy of the request carries the caller's whole init too (a hedge derives a copy).
  for (const keyed of [false, true]) {
    it(`a POST ${keyed ? "with" : "without"} an Idempotency-Key: ${keyed ? "hedged" : "no hedge"} while the first is out`, async () => {
      const held: Hit[] = [];
      A.on((hit) => held.push(hit));
      B.on((hit) => hit.res.end("b"));
      const clock = new TestClock(0);
      const t = recording();
      const layer = createResilience({
        clock,
        budget: false,
        retry: false,
        fetch: t.fetch,
        fallback: hedged(100),
      });
      const headers: Record<string, string> = keyed ? { "idempotency-key": "k" } : {};
      const call = layer.fetch(`${A.base}/v1/jobs`, { ...extras, method: "POST", headers, body: "job" } as RequestInit);
      try {
        await A.nth(1);
        await clock.advance(100);
        await clock.advance(1);
        if (keyed) await B.nth(1);
        else for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
        expect(B.hits).toHaveLength(keyed ? 1 : 0);
      } finally {
        for (const hit of held) hit.res.end("a");
      }
      const response = await clock.run(call);
      expect(getResilienceInfo(response)?.endpoint).toBe(keyed ? "b" : "a");
      expect(B.hits).toHaveLength(keyed ? 1 : 0);
      expectWhole(t.calls, keyed ? 2 : 1);
    });
  }
});

describe("what each entry adds, and what a layer installed as the global fetch does", () => {
  it("resilientProxy's route chooses the chain (chosenChains), not the URL: two routes over one first endpoint", async () => {
    A.on(busy);
    B.on((hit) => hit.res.end(hit.path));
    const clock = new TestClock(0);
    const proxy = resilientProxy({
      routes: [
        {
          path: "/one",
          chain: {
            name: "one",
            endpoints: [
              { name: "a", url: `${A.base}/v1` },
              { name: "b1", url: `${B.base}/one` },
            ],
          },
        },
        {
          path: "/two",
          chain: {
            name: "two",
            endpoints: [
              { name: "a", url: `${A.base}/v1` },
              { name: "b2", url: `${B.base}/two` },
            ],
          },
        },
      ],
      resilience: { clock, budget: false, retry: false },
    });
    for (const route of ["two", "one", "two"]) {
      const response = await clock.run(proxy.fetch(new Request(`http://worker.example/${route}/jobs`), {}, ctx));
      expect(await response.text()).toBe(`/${route}/jobs`);
    }
    expect(B.hits.map((h) => h.path)).toEqual(["/two/jobs", "/one/jobs", "/two/jobs"]);
  });

  it("an entry adds nothing unless passed: a layer without stages sends a chain's URL straight, at full", async () => {
    A.on(busy);
    const clock = new TestClock(0);
    const withStages = createResilience({
      clock,
      ...quiet,
      fallback: chainOf("c", `${A.base}/v1`, `${B.base}/v1`),
      degradation: degradation({ rules: [{ match: `${A.base}/v1`, params: { steps: "steps" } }] }),
    });
    withStages.degradation?.degrade("x");
    withStages.degradation?.degrade("x");
    const bare = createResilience({ clock, ...quiet });
    const response = await clock.run(
      bare.fetch(`${A.base}/v1/j`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: '{"steps":50}',
      }),
    );
    expect(response.status).toBe(503);
    expect(A.hits.map((h) => h.body)).toEqual(['{"steps":50}', '{"steps":50}', '{"steps":50}']);
    expect(B.hits).toHaveLength(0);
    expect(bare.degradation).toBeUndefined();
    expect(bare.health().degradationLevel).toBe("full");
    expect(getResilienceInfo(response)).toMatchObject({ fromFallback: false, degradationLevel: "full" });
  });

  const later = {
    plain: (clock: TestClock) => (url: string) => createResilience({ clock, ...quiet }).fetch(url),
    chain: (clock: TestClock) => (url: string) =>
      createResilience({ clock, ...quiet, fallback: chainOf("c", `${A.base}/v1`, `${B.base}/v1`) }).fetch(url),
    hedge: (clock: TestClock) => (url: string) =>
      createResilience({
        clock,
        ...quiet,
        fallback: hedged(5000),
      }).fetch(url),
    ky: (clock: TestClock) => viaKy({ clock, ...quiet }),
    resilientProxy: (clock: TestClock) => viaProxy({ clock, ...quiet }),
  };
  for (const [path, make] of Object.entries(later)) {
    for (const target of ["/v1/busy", "/v1/moved"]) {
      it(`a layer made after one was installed as the global fetch passes it over (${path}, ${target})`, async () => {
        A.on((hit) => {
          if (hit.path === "/v1/moved") {
            hit.res.writeHead(307, { location: "/v1/busy" });
            hit.res.end();
          } else busy(hit);
        });
        B.on((hit) => hit.res.end("ok"));
        const clock = new TestClock(0);
        // The installed layer's own transport: the later layer must never reach it.
        const below = recording();
        const installed = createResilience({ clock, ...quiet, redirects: "library", fetch: below.fetch });
        globalThis.fetch = installed.fetch;
        try {
          const response = await clock.run(make(clock)(`${A.base}${target}`));
          await response.text();
          expect(below.calls).toHaveLength(0);
          expect(A.hits.length).toBeGreaterThan(0);
          // A hedge may go out (and win) while the first endpoint's retries wait: no count there.
          if (path !== "hedge") {
            expect(A.hits.filter((h) => h.path === "/v1/busy")).toHaveLength(3);
            expect(B.hits).toHaveLength(path === "chain" ? 1 : 0);
          }
        } finally {
          globalThis.fetch = platformFetch;
        }
      });
    }
  }
});

describe("structure seen from a bundle (esbuild, as size-limit bundles a one-line import)", () => {
  const dir = mkdtempSync(join(tmpdir(), "archdoc-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const ENTRIES = ["index", "fallback/index", "degradation/index", "policies/index", "ky/index", "cloudflare/index"];

  /** The src files (and packages) with code in a bundle of `source`, for the browser build or the other. */
  async function bundled(source: string, browser: boolean): Promise<{ files: string[]; text: string }> {
    const result = await build({
      stdin: { contents: source, resolveDir: repo, loader: "ts" },
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      mainFields: ["module", "main"],
      metafile: true,
      define: { "globalThis.__RESILIENT_FETCH_BROWSER__": String(browser) },
      logLevel: "silent",
    });
    const output = Object.values((result.metafile as Metafile).outputs)[0];
    const files = Object.entries(output?.inputs ?? {})
      .filter(([, v]) => v.bytesInOutput > 0)
      .map(([k]) => k);
    return { files, text: result.outputFiles[0]?.text ?? "" };
  }

  for (const browser of [false, true]) {
    it(`importing only the root carries no fallback, degradation or zod code (browser build: ${browser})`, async () => {
      const root = await bundled('export { createResilience } from "./src/index.ts";', browser);
      expect(root.files.filter((f) => /src\/(fallback|degradation|cloudflare|ky|testing)\/|zod/.test(f))).toEqual([]);
      expect(root.files.filter((f) => f.startsWith("src/http/")).length).toBeGreaterThan(5);
      const both = await bundled(
        'export { createResilience } from "./src/index.ts"; export { fallback } from "./src/fallback/index.ts";',
        browser,
      );
      expect(both.files).toContain("src/fallback/chain-router.ts");
      expect(both.files.some((f) => f.startsWith("src/degradation/"))).toBe(false);
      // The follower itself (`followingFetch`); the file's small marks helpers stay in both builds.
      expect(/function followingFetch\d*\(/.test(root.text)).toBe(!browser);
    });
  }

  it("a Worker importing ./cloudflare and ./fallback of the split build carries the chain router once", async () => {
    const out = join(dir, "dist");
    await build({
      entryPoints: Object.fromEntries(ENTRIES.map((e) => [e, join(repo, "src", `${e}.ts`)])),
      outdir: out,
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "neutral",
      external: ["ky", "msw", "zod"],
      logLevel: "silent",
    });
    const worker = await build({
      stdin: {
        contents: `export { resilientProxy } from "${out}/cloudflare/index.js"; export { fallback } from "${out}/fallback/index.js";`,
        resolveDir: out,
      },
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      external: ["ky", "msw", "zod"],
      logLevel: "silent",
    });
    const text = worker.outputFiles[0]?.text ?? "";
    expect(text.match(/function chainPrefix\d*\(/g)).toHaveLength(1);
    expect(text.match(/function fallback\d*\(/g)).toHaveLength(1);
  });

  it("nothing at module scope creates a timer, an AbortController or a promise (every entry, run in a fresh node)", async () => {
    // Inside the repository, so that the bundle's `zod` and `ky` imports resolve as a user's would.
    const local = mkdtempSync(join(repo, ".archdoc-"));
    const file = join(local, "all.mjs");
    const built = await build({
      stdin: {
        contents: [...ENTRIES, "testing/clock"].map((e, i) => `export * as e${i} from "./src/${e}.ts";`).join("\n"),
        resolveDir: repo,
        loader: "ts",
      },
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      mainFields: ["module", "main"],
      external: ["zod", "zod/*", "ky"],
      logLevel: "silent",
    });
    writeFileSync(file, built.outputFiles[0]?.text ?? "");
    // Each creation is kept with whether the bundle's own code made it (ky, external, makes a Request at import).
    const probe = `
      const made = [];
      const note = (name) => { if (/all\\.mjs/.test(new Error().stack.split("\\n").slice(3).join())) made.push(name); };
      const wrap = (name, f) => function (...a) { note(name); return f.apply(this, a); };
      globalThis.setTimeout = wrap("setTimeout", setTimeout);
      globalThis.setInterval = wrap("setInterval", setInterval);
      globalThis.queueMicrotask = wrap("queueMicrotask", queueMicrotask);
      const P = Promise, AC = AbortController;
      globalThis.AbortController = new Proxy(AC, { construct(t, a) { note("AbortController"); return Reflect.construct(t, a); } });
      globalThis.Promise = new Proxy(P, {
        construct(t, a) { note("new Promise"); return Reflect.construct(t, a); },
        get(t, k) { const v = Reflect.get(t, k); return typeof v === "function" && k !== "prototype" ? wrap("Promise." + String(k), v.bind(t)) : v; },
      });
      AbortSignal.timeout = wrap("AbortSignal.timeout", AbortSignal.timeout);
      const load = async () => { const m = await import(${JSON.stringify(file)}); globalThis.Promise = P; return Object.keys(m).length; };
      load().then((n) => { process.stdout.write(JSON.stringify({ n, made })); });
    `;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", probe], { cwd: repo, encoding: "utf8" });
    rmSync(local, { recursive: true, force: true });
    expect(run.stderr).toBe("");
    expect(JSON.parse(run.stdout)).toEqual({ n: ENTRIES.length + 1, made: [] });
  });
});
