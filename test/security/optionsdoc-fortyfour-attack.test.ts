/**
 * Outside-in attack on docs/options.md as a whole (its opening paragraphs, the table's defaults and "What validates
 * what"), through every entry that takes the layer's options: the root, the ky client and the Worker proxy, with
 * option values of other kinds than plain literals (an object-literal clock that keeps its time in `this`, a class
 * instance and an object with inherited options, the browser build's refusal of `redirects: "library"`).
 * Docs: docs/options.md "`createResilience`, `fallback([…])`, `degradation({…})`, the ky client and
 * `resilientProxy` check their options when they are made and keep what they read then, so an edit to your objects
 * afterwards changes nothing (plain objects and arrays are copied; functions, clocks, schemas and other objects are
 * kept as given)"; "The ky client's `createClient({ resilience })` and `resilientProxy({ resilience })` name these
 * options as their callers wrote them: `resilience.retry.maxAttempts`"; the rows `clock` "`{ now(), setTimer(fn,
 * ms) → cancel }`, for tests", `redirects` "`"platform"` in browsers (the browser build: only `"platform"`)",
 * `retry.maxAttempts` `3`; "`undefined` never wipes a default"; "What validates what": "**Data read back from
 * stores and other isolates**: zod/mini … Only the Cloudflare entry pays for zod". docs/cloudflare.md
 * "`resilientProxy` checks its options when it is made, not on each request: … the layer's options in
 * `resilience`".
 * How: `createResilience`, `ConfigError` (root), `createClient` (./ky), `resilientProxy` (./cloudflare, a fake
 * `ctx`), `TestClock` (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts); the browser
 * build's switch (`globalThis.__RESILIENT_FETCH_BROWSER__`, which `dist/browser` folds to `true`) stubbed as
 * test/core/browser-global.test.ts does; esbuild's metafile for what each entry bundles.
 * Paths: plain call, ky client, `resilientProxy` (a `Request` input rebuilt by the proxy), `execute`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the proxy reads its layer's options by name and keeps a clock, a store and the
 * stages as given; the browser build's refusal moved into the check that all three entries run):
 * 1. docs/options.md "(plain objects and arrays are copied; functions, clocks, schemas and other objects are kept
 *    as given)" with the `clock` row. Observed: `resilientProxy({ resilience: { clock } })` with a clock written as
 *    an object literal (`{ t, now() { return this.t }, setTimer… }`) runs on a deep copy of it: the caller's clock
 *    moving 5 s on leaves the proxy's breaker (timeout 1000 ms) open for good, every request answered 503 with
 *    nothing sent, where `createResilience` and `createClient({ resilience })` with the same clock probe the host
 *    again. Cause: src/cloudflare/resilient-proxy.ts `resilientProxy` starts with `options = plainCopy(options)`,
 *    which copies every plain object down to `resilience.clock` (and `const clock = resilienceOptions?.clock` is
 *    the copy too), where src/http/resolve-options.ts keeps `o.clock` as given.
 * 2. docs/options.md "… and `resilientProxy` check their options when they are made and keep what they read then"
 *    ("other objects are kept as given"). Observed: a `resilience` that holds its options other than as own keys (a
 *    class instance with `get retry()`, or `Object.create(defaults)`) is checked as read (`retry.maxAttempts: 1`,
 *    accepted) and then runs without them: a 500 is sent 3 times (the default), where `createResilience` and
 *    `createClient({ resilience })` take the same object and send it once. Cause: src/cloudflare/resilient-proxy.ts
 *    `init` builds the layer from `shallowCopy(resilienceOptions ?? {})`, own keys only (`plainCopy` keeps such an
 *    object as it is, not plain, and `resolveOptions` read the inherited keys when it checked them).
 * 3. docs/options.md "The ky client's `createClient({ resilience })` and `resilientProxy({ resilience })` name these
 *    options as their callers wrote them", the row `redirects` "(the browser build: only `"platform"`)", and
 *    docs/cloudflare.md "`resilientProxy` checks its options when it is made, not on each request". Observed, in the
 *    browser build: `createClient({ resilience: { redirects: "library" } })` throws `ConfigError` with path
 *    `redirects` ("redirects: expected "platform" …"), not `resilience.redirects`; `resilientProxy({ resilience: {
 *    redirects: "library" } })` is made without a word and every request's `proxy.fetch` rejects with that
 *    `ConfigError` (path `redirects`). Cause: the browser build's refusal lives in src/http/create-resilience.ts
 *    (`throw new ConfigError("redirects", …)`), not in src/http/resolve-options.ts `resolveOptions(options, root)`,
 *    which is all the ky client (src/ky/index.ts) and the proxy run before the layer is made (the proxy makes it on
 *    its first request).
 *
 * Held (plain `it`):
 * - The controls: `createResilience` and `createClient({ resilience })` keep an object-literal clock as given (the
 *   breaker probes again once it moved past `breaker.timeout`); the proxy keeps a `TestClock` (a class instance) as
 *   given; `createResilience` and ky send a 500 once under a class instance's or an inherited `retry: {
 *   maxAttempts: 1 }`.
 * - `undefined` never wipes a default through the proxy and `execute`: `retry: { maxAttempts: undefined }` sends a
 *   500 three times at the real server; `execute(fn, { retry: { maxAttempts: undefined } })` runs the layer's 2.
 * - In the browser build, `createResilience({ redirects: "library" })` is refused at once with path `redirects`,
 *   and `"platform"` is taken by the root, ky and the proxy.
 * - zod/mini is bundled by the cloudflare entry only (with `stores/shared-snapshot.ts`): the root, ./fallback,
 *   ./degradation, ./policies, ./ky and ./testing bundle none of it.
 *
 * Docs-silent (not pinned):
 * - `execute(fn, { retry: { retryOn: { statuses: [500] }, maxRetryAfter: 1, idempotencyKey: true } })` is taken and
 *   does nothing (work has no status); docs/retry.md lists those keys as `resilience.fetch`'s for `retry(fn)` only.
 */
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { ConfigError, createResilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
serveDuringFile(a);

afterEach(() => {
  vi.unstubAllGlobals();
});

const ctx = { waitUntil() {}, passThroughOnException() {} };

/** A clock written as an object literal, its time and timers kept in `this` (a hand-made test clock). */
function objectClock() {
  return {
    t: 1_000_000,
    timers: [] as { at: number; fn: () => void; live: boolean }[],
    now() {
      return this.t;
    },
    setTimer(fn: () => void, ms: number) {
      const timer = { at: this.t + ms, fn, live: true };
      this.timers.push(timer);
      return () => {
        timer.live = false;
      };
    },
  };
}

const busy = (status: number) => (h: { res: { statusCode: number; end(body: string): void } }) => {
  h.res.statusCode = status;
  h.res.end("busy");
};

function proxyOn(resilience: ResilienceOptions) {
  const proxy = resilientProxy({ routes: [{ path: "/", upstream: a.base }], resilience });
  return (path: string) => proxy.fetch(new Request(`https://worker.example${path}`), {}, ctx);
}

function refusal(fn: () => unknown): ConfigError | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  return undefined;
}

describe("clocks are kept as given", () => {
  const breaker = { failureThreshold: 1, timeout: 1_000 };

  it("resilientProxy runs on the caller's object-literal clock, not a copy of it", async () => {
    a.on(busy(503));
    const clock = objectClock();
    const call = proxyOn({ clock, retry: false, breaker });
    expect((await call("/x")).status).toBe(503); // the upstream's 503: the breaker opens
    const refused = await call("/x");
    expect(refused.status).toBe(503); // the proxy's own: open circuit, nothing sent
    expect(a.hits.length).toBe(1);
    clock.t += 5_000; // past breaker.timeout
    await call("/x");
    expect(a.hits.length).toBe(2); // observed: 1, the copy's clock still says 1_000_000
  });

  it("createResilience and createClient({ resilience }) run on it: the host is probed again once it moved", async () => {
    a.on(busy(503));
    const rootClock = objectClock();
    const root = createResilience({ clock: rootClock, retry: false, breaker });
    await root.fetch(`${a.base}/x`);
    await expect(root.fetch(`${a.base}/x`)).rejects.toMatchObject({ name: "CircuitOpenError" });
    rootClock.t += 5_000;
    expect((await root.fetch(`${a.base}/x`)).status).toBe(503);
    expect(a.hits.length).toBe(2);

    const kyClock = objectClock();
    const api = createClient({ resilience: { clock: kyClock, retry: false, breaker }, throwHttpErrors: false });
    await api.get(`${a.base}/y`);
    await expect(api.get(`${a.base}/y`)).rejects.toMatchObject({ name: "CircuitOpenError" });
    kyClock.t += 5_000;
    expect((await api.get(`${a.base}/y`)).status).toBe(503);
    expect(a.hits.length).toBe(4);
  });

  it("resilientProxy keeps a TestClock (a class instance) as given", async () => {
    a.on(busy(503));
    const clock = new TestClock();
    const call = proxyOn({ clock, retry: false, breaker });
    await call("/x");
    expect((await call("/x")).headers.get("retry-after")).toBe("1");
    expect(a.hits.length).toBe(1);
    await clock.advance(5_000);
    expect((await call("/x")).status).toBe(503);
    expect(a.hits.length).toBe(2);
  });
});

describe("options held other than as own keys", () => {
  // `random` as an own key everywhere: full jitter then waits 0 ms, so three attempts take no real time.
  class Config {
    random = () => 0;
    get retry() {
      return { maxAttempts: 1 };
    }
  }
  const inherited = () =>
    Object.assign(Object.create({ retry: { maxAttempts: 1 } }) as ResilienceOptions, { random: () => 0 });
  const shapes: [string, () => ResilienceOptions][] = [
    ["a class instance with get retry()", () => new Config() as ResilienceOptions],
    ["Object.create(defaults)", inherited],
  ];

  for (const [label, make] of shapes) {
    it(`resilientProxy keeps what it checked: ${label} sends a 500 once`, async () => {
      a.on(busy(500));
      const call = proxyOn(make());
      expect((await call("/x")).status).toBe(500);
      expect(a.hits.length).toBe(1); // observed: 3, the layer made without `retry`
    });

    it(`createResilience and createClient({ resilience }) take ${label}: one send`, async () => {
      a.on(busy(500));
      expect((await createResilience(make()).fetch(`${a.base}/x`)).status).toBe(500);
      expect(a.hits.length).toBe(1);
      const api = createClient({ resilience: make(), throwHttpErrors: false });
      expect((await api.get(`${a.base}/y`)).status).toBe(500);
      expect(a.hits.length).toBe(2);
    });
  }
});

describe("undefined never wipes a default", () => {
  it("through the proxy: retry.maxAttempts undefined is 3 attempts at the real server", async () => {
    a.on(busy(500));
    const call = proxyOn({ retry: { maxAttempts: undefined, initialDelay: 1, maxDelay: 2 }, timeout: undefined });
    expect((await call("/x")).status).toBe(500);
    expect(a.hits.length).toBe(3);
  });

  it("through execute: a per-call maxAttempts undefined keeps the layer's", async () => {
    const r = createResilience({ retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 2 } });
    let runs = 0;
    const error = await r
      .execute(
        () => {
          runs++;
          throw new Error("no");
        },
        { retry: { maxAttempts: undefined } },
      )
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "RetryExhaustedError" });
    expect(runs).toBe(2);
  });
});

describe('the browser build: redirects "library" refused, under the path the caller wrote', () => {
  const browser = () => vi.stubGlobal("__RESILIENT_FETCH_BROWSER__", true);
  const words = 'expected "platform" (the browser build leaves redirects to the browser), received "library"';

  it("createClient names it resilience.redirects", () => {
    browser();
    const error = refusal(() => createClient({ resilience: { redirects: "library" } }));
    expect(error?.path).toBe("resilience.redirects"); // observed: "redirects"
    expect(error?.message).toBe(`resilience.redirects: ${words}`);
  });

  it("resilientProxy refuses it when it is made, as resilience.redirects", async () => {
    browser();
    let made: ReturnType<typeof resilientProxy> | undefined;
    const error = refusal(() => {
      made = resilientProxy({ routes: [{ path: "/", upstream: a.base }], resilience: { redirects: "library" } });
    });
    // Observed: made without a word; its first request rejects with `redirects: …` (path "redirects").
    const late = await made?.fetch(new Request("https://worker.example/x"), {}, ctx).catch((e: unknown) => e);
    expect(late).toBeUndefined();
    expect(error?.path).toBe("resilience.redirects");
    expect(error?.message).toBe(`resilience.redirects: ${words}`);
  });

  it('createResilience refuses it at once (path redirects); "platform" is taken by root, ky and proxy', async () => {
    browser();
    const error = refusal(() => createResilience({ redirects: "library" }));
    expect(error?.path).toBe("redirects");
    expect(error?.message).toBe(`redirects: ${words}`);
    expect(createResilience({ redirects: "platform" }).debugInfo().options.redirects).toBe("platform");
    expect(refusal(() => createClient({ resilience: { redirects: "platform" } }))).toBeUndefined();
    const call = proxyOn({ redirects: "platform", retry: false });
    expect((await call("/x")).status).toBe(200);
    expect(a.hits.length).toBe(1);
  });
});

describe("what validates what: only the Cloudflare entry pays for zod", () => {
  it("zod/mini is bundled by ./cloudflare alone", async () => {
    const zodIn = async (entry: string) => {
      const result = await build({
        entryPoints: [fileURLToPath(new URL(`../../src/${entry}.ts`, import.meta.url))],
        bundle: true,
        write: false,
        format: "esm",
        platform: "neutral",
        external: ["ky", "msw"],
        metafile: true,
        logLevel: "silent",
      });
      const inputs = Object.keys(result.metafile.inputs);
      return {
        zod: inputs.some((file) => file.includes("node_modules/zod/")),
        snapshot: inputs.some((f) => f.endsWith("shared-snapshot.ts")),
      };
    };
    for (const entry of [
      "index",
      "fallback/index",
      "degradation/index",
      "policies/index",
      "ky/index",
      "testing/index",
    ]) {
      expect({ entry, ...(await zodIn(entry)) }).toEqual({ entry, zod: false, snapshot: false });
    }
    expect(await zodIn("cloudflare/index")).toEqual({ zod: true, snapshot: true });
  }, 30_000);
});
