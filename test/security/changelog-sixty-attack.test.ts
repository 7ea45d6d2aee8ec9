/**
 * Outside-in attack on CHANGELOG.md's "## Unreleased" entries, newest first, on paths the entries do not name.
 *
 * Docs:
 * - CHANGELOG.md Added: "`CircuitOpenError#afterRedirect`: `true` when the breaker refused a redirect's later hop the
 *   library follows … A call refused before anything was sent has no such field."
 * - CHANGELOG.md Added: "`resilience.execute(fn)` emits a `retry` event before each wait, as a call does (`key` its
 *   `breaker`'s name, else `"execute"`; `url` empty; `reason` the thrown error's name; `retryAfter` false)".
 * - CHANGELOG.md Added: "A `default` export condition beside `import`, so CommonJS code can `require()` the package on
 *   Node ≥ 22.12".
 * - CHANGELOG.md Changed: "`resilience.execute(fn, options)` rejects with a bad option's `ConfigError` (or the
 *   `TypeError` for an `fn` that is no function) instead of throwing it at once … Nothing runs either way."
 * - CHANGELOG.md Fixed: "`resilientProxy`'s health token is taken without the spaces or newline around it … and a
 *   token of spaces alone, `NaN` or `Infinity` keeps the endpoint closed"; docs/cloudflare.md "spaces, tabs or a
 *   newline around the token are not part of it … a number that is not finite, text of spaces alone … keeps the
 *   endpoint closed".
 * - CHANGELOG.md Fixed (newest): "Fallback chains: a call whose every endpoint is passed over for its open breaker,
 *   aborted by its caller right after `fetch()`, is no longer counted in `statistics()` as a failed run"; with
 *   docs/fallback.md "`statistics()` … a run its caller aborted, or that `timeout.total` ended, is not counted".
 *
 * How: root `createResilience`, `memoryStore`, errors; ./fallback `fallback`; ./ky `createClient`; ./cloudflare
 * `resilientProxy`; ./testing `TestClock`, `recordEvents`; three node:http servers on 127.0.0.1 (each port its own
 * origin); the built package (`npm run build`) loaded by a child `node -e` through `require()` and `import()`.
 *
 * Paths: plain call, `Request` input, fallback chain (keyless POST and GET), hedged chain, library redirect across
 * two ports (307, 308, 302), a retry's hop, a `memoryStore` shared by two layers, ky `createClient`,
 * `resilientProxy` (chain route, health endpoint with a custom `healthTokenVar`), `resilience.execute`, named
 * breakers `resilience.breaker(name)`, `require()` of every entry.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; answered in the sixtieth session by the docs:
 * docs/fallback.md and the CHANGELOG entry now say a run that ended before the abort is counted, and the test asserts
 * that, so plain `it`):
 * 1. "aborted by its caller right after `fetch()`, is no longer counted in `statistics()`" / fallback.md "a run its
 *    caller aborted … is not counted". Observed: with both endpoints' breakers open, an abort made one microtask
 *    after `fetch()` (`await null; ac.abort(reason)`) still rejects the call with `reason` (its `request` event
 *    `aborted`), yet the chain counts a failed run: `overallSuccessRate` 0.5 → 0.333. Same for a `Request` input.
 *    The fix (`await null` before `#failed`) buys exactly one turn; a hedged chain counts it for aborts made up to
 *    four microtasks after the call, while the call still rejects with the abort's reason.
 *
 * Held (plain `it`):
 * - afterRedirect: a keyless POST down a chain whose first endpoint 307s to an open host stops there (spare never
 *   sent, `errors.a.afterRedirect` true); a GET moves on to the spare; the proxy's chain route answers 502, spare
 *   untouched; a hop refused by a breaker a shared `memoryStore` holds open carries it; refusals before anything was
 *   sent (direct call after a flagged refusal, ky, `execute` on a named breaker, `breaker(name).execute`) have no
 *   own `afterRedirect` field.
 * - execute's `retry` events: key the breaker's name or "execute", url "", reason "TypeError" / "string" (a thrown
 *   string) / a name quoting a URL with userinfo and key cut, retryAfter false, `delay` exactly the wait the clock
 *   shows before the next attempt; none for `retry: false`; `expectRetries(n, key)` counts them.
 * - execute rejects (never throws) for a non-function, `null` options, a nested bad type, an unknown key; nothing
 *   runs and no named breaker is made.
 * - Health token: `" tok-9\r\n"` and `"\ttok-9\t"` under a custom `healthTokenVar`, a Secrets Store `get()` answering
 *   `" tok-9\n"`, match `Bearer tok-9` (GET and HEAD) and nothing else; `-Infinity`, `Infinity`, `NaN`, `" \t\r\n "`
 *   and a `get()` answering spaces keep it closed (401 even for `Bearer <that text>`).
 * - `require()` of all eight entries of the built package in a child Node works, gives the same classes as
 *   `import()` (no dual-package hazard), and a required layer makes a real call.
 * - A chain whose every breaker is open, aborted synchronously after `fetch()`: not counted (plain, `Request`, hedged).
 *
 * Docs-silent (not pinned; the BigInt now keeps the endpoint closed, as "any other value" says, sixtieth session,
 * asserted in test/cloudflare/resilient-proxy.test.ts):
 * - A health token of a no-break space alone (`"\u00a0"`) opens the endpoint to `Bearer \u00a0` (only HTTP's spaces are
 *   trimmed, by design per the source); a BigInt `42n` opens it to `Bearer 42` (SECURITY.md lists "text, a number, or
 *   a Secrets Store binding; any other value keeps it closed"); an empty string leaves it open, as unset.
 * - A GET chain whose first endpoint's hop was refused reports the `fallback` event's reason as the whole error text
 *   (`CircuitOpenError: circuit for "…" is open until …`), not `"circuit open"`.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  CircuitOpenError,
  ConfigError,
  createResilience,
  FallbackExhaustedError,
  getResilienceInfo,
  memoryStore,
  type Resilience,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
const C = httpUpstream();
serveDuringFile(A, B, C);
const pending: Promise<unknown>[] = [];
afterEach(async () => {
  await Promise.allSettled(pending.splice(0));
});

const status =
  (code: number, headers: Record<string, string> = {}) =>
  (hit: Hit): void =>
    void hit.res.writeHead(code, headers).end(`s${code}`);
const redirectTo = (code: number, target: string) => (hit: Hit) =>
  void hit.res.writeHead(code, { location: target }).end();
const ownFlag = (error: unknown) => Object.hasOwn(error as object, "afterRedirect");
const chainAB = (extra: Record<string, unknown> = {}) =>
  fallback([
    {
      name: "gen",
      ...extra,
      endpoints: [
        { name: "a", url: `${A.base}/g` },
        { name: "b", url: `${B.base}/g` },
      ],
    },
  ]);

/** Opens C's per-host breaker in `layer` (threshold 1) with one 503. */
async function openC(layer: Resilience): Promise<void> {
  C.on(status(503));
  await (await layer.fetch(`${C.base}/open`)).text();
  expect(layer.health().breakers[C.host]?.state).toBe("open");
}

describe("CircuitOpenError#afterRedirect on paths the entry does not name", () => {
  it("a keyless POST down a chain stops at the endpoint whose hop was refused; a GET moves on", async () => {
    const layer = createResilience({ retry: false, breaker: { failureThreshold: 1 }, fallback: chainAB() });
    await openC(layer);
    A.on(redirectTo(307, `${C.base}/moved`));
    B.on(status(200));
    const post = await layer.fetch(`${A.base}/g`, { method: "POST", body: "{}" }).catch((e: unknown) => e);
    expect(post).toBeInstanceOf(FallbackExhaustedError);
    const refusal = (post as FallbackExhaustedError).errors.a;
    expect(refusal).toBeInstanceOf(CircuitOpenError);
    expect([(refusal as CircuitOpenError).key, (refusal as CircuitOpenError).afterRedirect]).toEqual([C.host, true]);
    expect([A.hits.length, B.hits.length, C.hits.length]).toEqual([1, 0, 1]);
    const get = await layer.fetch(`${A.base}/g`);
    expect([get.status, getResilienceInfo(get)?.endpoint, B.hits.length]).toEqual([200, "b", 1]);
    await get.text();
  });

  it("the proxy's chain route: a client's keyless POST whose first hop is refused is a 502, the spare untouched", async () => {
    const proxy = resilientProxy({
      routes: [
        { path: "/c", upstream: C.base },
        {
          path: "/gen",
          chain: {
            name: "g",
            endpoints: [
              { name: "a", url: `${A.base}/g` },
              { name: "b", url: `${B.base}/g` },
            ],
          },
        },
      ],
      resilience: { retry: false, breaker: { failureThreshold: 1 } },
    });
    const ctx = { waitUntil() {} };
    C.on(status(503));
    B.on(status(200));
    A.on(redirectTo(307, `${C.base}/moved`));
    expect((await proxy.fetch(new Request("https://w.example/c/x"), {}, ctx)).status).toBe(503);
    const res = await proxy.fetch(new Request("https://w.example/gen/x", { method: "POST", body: "{}" }), {}, ctx);
    expect([res.status, res.headers.get("retry-after"), await res.text()]).toEqual([
      502,
      null,
      '{"error":"upstream unavailable"}',
    ]);
    expect([A.hits.length, B.hits.length, C.hits.length]).toEqual([1, 0, 1]);
  });

  it("a hop refused by a breaker a shared memoryStore holds open carries the flag; a direct call after does not", async () => {
    const store = memoryStore();
    const one = createResilience({ retry: false, breaker: { failureThreshold: 1 }, store });
    const two = createResilience({ retry: false, breaker: { failureThreshold: 1 }, store });
    await openC(one);
    A.on(redirectTo(308, `${C.base}/moved`));
    const hop = await two.fetch(`${A.base}/z`).catch((e: unknown) => e);
    expect(hop).toBeInstanceOf(CircuitOpenError);
    expect((hop as CircuitOpenError).afterRedirect).toBe(true);
    const direct = await two.fetch(`${C.base}/z`).catch((e: unknown) => e);
    expect(direct).toBeInstanceOf(CircuitOpenError);
    expect([direct === hop, ownFlag(direct), (direct as CircuitOpenError).afterRedirect]).toEqual([
      false,
      false,
      undefined,
    ]);
    expect(C.hits).toHaveLength(1);
  });

  it("refusals before anything was sent have no such field: direct after a flagged hop, ky, execute, breaker(name)", async () => {
    const layer = createResilience({ retry: false, breaker: { failureThreshold: 1 } });
    await openC(layer);
    A.on(redirectTo(302, `${C.base}/moved`));
    const hop = await layer.fetch(`${A.base}/g`).catch((e: unknown) => e);
    expect([ownFlag(hop), (hop as CircuitOpenError).afterRedirect]).toEqual([true, true]);
    const named = layer.breaker("nb", { failureThreshold: 1 });
    await layer
      .execute(
        () => {
          throw new Error("down");
        },
        { breaker: "nb" },
      )
      .catch(() => undefined);
    const refusals = [
      await layer.fetch(`${C.base}/direct`).catch((e: unknown) => e),
      await layer.fetch(new Request(`${C.base}/direct`)).catch((e: unknown) => e),
      await createClient({ resilience: layer })
        .get(`${C.base}/d`)
        .catch((e: unknown) => e),
      await layer.execute(() => 1, { breaker: "nb" }).catch((e: unknown) => e),
      await named.execute(() => 1).catch((e: unknown) => e),
    ];
    for (const refusal of refusals) {
      expect(refusal).toBeInstanceOf(CircuitOpenError);
      expect([ownFlag(refusal), "afterRedirect" in (refusal as object)]).toEqual([false, false]);
    }
    expect(C.hits).toHaveLength(1);
  });
});

describe("resilience.execute(fn): retry events, and options refused by rejection", () => {
  it("each wait is announced with its key, empty url, the error's name (URLs cut), retryAfter false and its delay", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: { maxAttempts: 4 } });
    const recorder = recordEvents(layer);
    const starts: number[] = [];
    const emittedAt: number[] = [];
    layer.on("retry", () => emittedAt.push(clock.now()));
    const work = () => {
      starts.push(clock.now());
      if (starts.length === 1) throw new TypeError("first");
      if (starts.length === 2) throw "a string";
      if (starts.length === 3) {
        const error = new Error("third");
        error.name = "Bad https://user:pw@h.example/v1?key=SECRETKEY";
        throw error;
      }
      return 7;
    };
    expect(await clock.run(layer.execute(work, { breaker: "nb" }))).toBe(7);
    const retries = recorder.of("retry");
    expect(retries.map((e) => [e.key, e.url, e.attempt, e.reason, e.retryAfter])).toEqual([
      ["nb", "", 1, "TypeError", false],
      ["nb", "", 2, "string", false],
      ["nb", "", 3, "Bad https://h.example/v1", false],
    ]);
    expect(JSON.stringify(recorder.events)).not.toMatch(/SECRETKEY|pw@/);
    // Emitted when the attempt failed, before the wait; the next attempt starts `delay` later.
    for (const [i, e] of retries.entries()) {
      expect(emittedAt[i]).toBe(starts[i]);
      expect((starts[i + 1] as number) - (starts[i] as number)).toBeCloseTo(e.delay, 6);
      expect(e.delay).toBeGreaterThan(0);
    }
    recorder.expectRetries(3, "nb");

    const plain = recordEvents(layer);
    let runs = 0;
    const failing = () => {
      runs++;
      throw new RangeError("x");
    };
    await expect(clock.run(layer.execute(failing, { retry: { maxAttempts: 2 } }))).rejects.toThrow();
    expect(plain.of("retry").map((e) => [e.key, e.url, e.reason])).toEqual([["execute", "", "RangeError"]]);
    await expect(clock.run(layer.execute(failing, { retry: false }))).rejects.toThrow();
    plain.expectRetries(1);
    expect(runs).toBe(3);
    expect(clock.pending()).toBe(0);
  });

  it("a bad fn or option rejects, never throws; nothing runs and no named breaker is made", async () => {
    const layer = createResilience({ retry: false });
    let ran = 0;
    const fn = () => ++ran;
    const cases: Array<[unknown, unknown, string, string | undefined]> = [
      [null, undefined, "TypeError", undefined],
      [fn, null, "ConfigError", "execute"],
      [fn, { retry: { maxAttempts: "x" }, breaker: "made" }, "ConfigError", "execute.retry.maxAttempts"],
      [fn, { breaker: "made", retry: { retryOn: { error: 5 } } }, "ConfigError", "execute.retry.retryOn.error"],
      [fn, { breaker: "made", fallbak: () => 1 }, "ConfigError", "execute"],
      [fn, { breaker: "made", signal: { aborted: false } }, "ConfigError", "execute.signal"],
    ];
    for (const [work, options, name, path] of cases) {
      let call: Promise<unknown> | undefined;
      expect(() => {
        call = layer.execute(work as never, options as never);
      }).not.toThrow();
      const error = await (call as Promise<unknown>).catch((e: unknown) => e);
      expect((error as Error).name).toBe(name);
      if (path) expect([(error as ConfigError).path, error instanceof ConfigError]).toEqual([path, true]);
    }
    expect(ran).toBe(0);
    expect(Object.keys(layer.health().breakers)).toEqual([]);
  });
});

describe("resilientProxy's health token, trimmed and refused on paths beside the default var", () => {
  it("trimmed text and a Secrets Store answer match; non-finite numbers and blank text keep it closed", async () => {
    const proxy = resilientProxy({ routes: [{ path: "/a", upstream: A.base }], healthTokenVar: "HT" });
    const ctx = { waitUntil() {} };
    const health = async (value: unknown, authorization?: string, method = "GET") => {
      const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
      const request = new Request("https://w.example/__resilience/health", { method, headers });
      const res = await proxy.fetch(request, { HT: value }, ctx);
      await res.text();
      return res.status;
    };
    for (const value of [" tok-9\r\n", "\ttok-9\t", { get: async () => " tok-9\n" }, { get: () => "\r\ntok-9 " }]) {
      for (const method of ["GET", "HEAD"]) {
        expect(await health(value, "Bearer tok-9", method)).toBe(200);
        expect(await health(value, undefined, method)).toBe(401);
        expect(await health(value, "Bearer tok-", method)).toBe(401);
        expect(await health(value, "Bearer tok-9x", method)).toBe(401);
      }
    }
    const closed: Array<[unknown, string]> = [
      [Number.NEGATIVE_INFINITY, "Bearer -Infinity"],
      [Number.POSITIVE_INFINITY, "Bearer Infinity"],
      [Number.NaN, "Bearer NaN"],
      [" \t\r\n ", "Bearer x"],
      [{ get: async () => "  \n" }, "Bearer x"],
    ];
    for (const [value, authorization] of closed) {
      expect(await health(value, authorization)).toBe(401);
      expect(await health(value)).toBe(401);
      expect(await health(value, undefined, "HEAD")).toBe(401);
    }
    expect(A.hits).toHaveLength(0);
  });
});

describe("the built package under require() (the `default` export condition)", () => {
  const root = new URL("../../", import.meta.url).pathname;
  beforeAll(async () => {
    if (!existsSync(`${root}dist/index.js`)) await promisify(execFile)("npm", ["run", "build"], { cwd: root });
  }, 240_000);

  it("every entry loads through require() in a child Node, the same classes as import(), and a call goes", async () => {
    A.on(status(200));
    const script = `
      const ids = ["", "/fallback", "/degradation", "/policies", "/ky", "/cloudflare", "/testing", "/testing/clock"]
        .map((s) => "@storycore/resilient-fetch" + s);
      const out = {};
      for (const id of ids) out[id] = Object.keys(require(id)).length;
      (async () => {
        const esm = await import("@storycore/resilient-fetch");
        const cjs = require("@storycore/resilient-fetch");
        out.same = esm.ConfigError === cjs.ConfigError && esm.createResilience === cjs.createResilience;
        out.chainSame = (await import("@storycore/resilient-fetch/policies")).FallbackChain === require("@storycore/resilient-fetch/policies").FallbackChain;
        const res = await cjs.createResilience({ retry: false }).fetch(process.argv[1] + "/cjs");
        out.status = res.status;
        out.body = await res.text();
        console.log(JSON.stringify(out));
      })().catch((e) => { console.log("ERR " + e); process.exitCode = 1; });
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ["-e", script, A.base], { cwd: root });
    const out = JSON.parse(stdout.trim()) as Record<string, unknown>;
    for (const [id, count] of Object.entries(out)) if (id.startsWith("@")) expect(count, id).toBeGreaterThan(0);
    expect(Object.keys(out).filter((k) => k.startsWith("@"))).toHaveLength(8);
    expect([out.same, out.chainSame, out.status, out.body]).toEqual([true, true, 200, "s200"]);
    expect(A.hits.map((h) => h.path)).toEqual(["/cjs"]);
  }, 60_000);
});

describe("a chain whose every breaker is open, aborted right after fetch(): not in statistics()", () => {
  async function allOpen(hedge: boolean) {
    A.reset();
    B.reset();
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 30_000 },
      fallback: chainAB(hedge ? { hedge: { delay: 100 } } : {}),
    });
    A.on((hit) => hit.res.writeHead(hit.path.endsWith("c0") ? 200 : 503).end("{}"));
    B.on(status(503));
    for (const id of [0, 1]) await clock.run(layer.fetch(`${A.base}/g/c${id}`)).then((res) => res.text());
    expect(Object.values(layer.health().breakers).filter((b) => b.state === "open")).toHaveLength(2);
    return { clock, layer };
  }
  /** Aborts `turns` microtasks after the call; returns the chain's success rate before and after. */
  async function abortAfter(turns: number, via: "plain" | "request", hedge = false) {
    const { clock, layer } = await allOpen(hedge);
    const chain = layer.fallback.chain("gen");
    const before = chain.statistics().overallSuccessRate;
    const recorder = recordEvents(layer);
    const ac = new AbortController();
    const reason = new Error("the caller left");
    const url = `${A.base}/g/c3`;
    const call =
      via === "request"
        ? layer.fetch(new Request(url, { signal: ac.signal }))
        : layer.fetch(url, { signal: ac.signal });
    for (let i = 0; i < turns; i++) await null;
    ac.abort(reason);
    const got = await clock.run(call as Promise<unknown>).catch((e: unknown) => e);
    expect(got).toBe(reason);
    expect(recorder.of("request").map((e) => e.outcome)).toEqual(["aborted"]);
    expect(A.hits.length + B.hits.length).toBe(3);
    return [before, chain.statistics().overallSuccessRate];
  }

  it("held: aborted synchronously after the call (plain, Request input, hedged chain)", async () => {
    expect(await abortAfter(0, "plain")).toEqual([0.5, 0.5]);
    expect(await abortAfter(0, "request")).toEqual([0.5, 0.5]);
    expect(await abortAfter(0, "plain", true)).toEqual([0.5, 0.5]);
  });

  it("defect 1, answered by the docs: aborted a microtask or more after fetch(), the run had ended: counted (plain, Request input, hedged)", async () => {
    // First pinned as `it.fails` expecting [0.5, 0.5]; docs/fallback.md now says a run that had ended is counted.
    expect(await abortAfter(1, "plain")).toEqual([0.5, 1 / 3]);
    expect(await abortAfter(1, "request")).toEqual([0.5, 1 / 3]);
    expect(await abortAfter(3, "plain", true)).toEqual([0.5, 1 / 3]);
    const docs = readFileSync(new URL("../../docs/fallback.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(docs).toContain(
      "a run whose every endpoint is passed over for its open breaker ends a turn after the call, so an abort made in the same turn as `fetch()` keeps it out; one that had ended is counted, though an abort that reaches the call before its promise settles still rejects the call with the abort's reason",
    );
  });
});
