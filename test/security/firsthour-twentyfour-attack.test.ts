/**
 * Outside-in attack on a newcomer's first hour: README.md top to bottom, and docs/README.md and docs/options.md
 * where the README sends a reader. Docs: the quick starts' code blocks (page, test suite), "A run with the default
 * seed" and the commands table (`npm run demo -- --json`), the entry table, "Upgrading from 0.1", docs/options.md's
 * defaults and its first paragraph ("throws `ConfigError` naming the path and the expected value"), docs/README.md's
 * "[Project layout and dependencies](architecture.md) | the source tree, what each dependency is for".
 * How: the root, `./fallback`, `./policies`, `./degradation`, `./ky`, `./cloudflare` and `./testing` entries from src;
 * the README's blocks pasted as written (package name swapped for src, an injected `fetch` or MSW for the network,
 * time on `TestClock`); package.json and docs/architecture.md read as files. The demo was run by hand
 * (`node demo/main.ts --json`, 30 s): it printed only JSON (calls 450 / 450, served 60.7% / 100%, premium 265 and
 * standard 185, 1.1 attempts per call, standard's last request 30 steps @ 720p), in line with the README's figures.
 * Paths: plain call, a `Request` input, a fallback chain, degradation, the ky client.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * both fixed since, so plain `it`: a union no branch fits names what each branch takes (`retry: expected false or
 * object, received true`; a resolution names its form), and the dependency table has a row for every package):
 * 1. docs/options.md "`createResilience` validates them (see [what validates what](#what-validates-what)) and throws
 *    `ConfigError` naming the path and the expected value". Observed: `retry: true`, `breaker: true` and
 *    `budget: true` (what a newcomer writes to "turn retry on") throw "retry: expected a valid value, received true"
 *    (and the same for breaker and budget): no expected value is named (the option takes `false` or an object).
 * 2. docs/README.md "[Project layout and dependencies](architecture.md) | the source tree, what each dependency is
 *    for", docs/architecture.md "## Dependencies and what each is for". Observed: eight packages of package.json's
 *    devDependencies have no row: @anthropic-ai/sdk, axios, openai, replicate, hono (the recipe tests),
 *    @stryker-mutator/core and @stryker-mutator/vitest-runner (`npm run test:mutation`), @types/node.
 *
 * Held (plain `it`):
 * - the page quick start as written: primary 503 ×4 (its `maxAttempts: 4`, 500 ms backoff) then the backup serves,
 *   `getResilienceInfo` gives `{ attempts: 5, endpoint: "backup", fromFallback: true, degradationLevel }`; a dead
 *   chain rejects with an error `isResilienceError` recognises, so the catch wraps it;
 * - both test-suite blocks (MSW) run as written (run as such in test/security/kit-and-stores.test.ts and
 *   test/security/doc-sentences.test.ts, so not repeated here);
 * - the defaults by behaviour: 3 attempts, 1 s then 2 s (full jitter's ceiling), `maxDelay` 60 s cap, `maxRetryAfter`
 *   60 s (60 waited, 61 given back at once), no bulkhead (500 calls in flight), `maxReplayBytes` 8 MiB (one byte
 *   more goes once), 12 failures in a row open, 30 s open, the 50% rule over 100 calls;
 * - newcomer errors: a misspelt option and a wrong type are `ConfigError`s naming their path (root, fallback,
 *   degradation, through ky); a relative URL, a wrong input and no global `fetch` reject (never a synchronous throw)
 *   with a `TypeError` saying what is wrong, on a plain call and through ky;
 * - the 0.1 shapes are `ConfigError`s saying where to import from; each entry exports what the table says.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import * as cloudflare from "../../src/cloudflare/index.ts";
import * as degradationEntry from "../../src/degradation/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import * as fallbackEntry from "../../src/fallback/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import * as root from "../../src/index.ts";
import {
  type ConfigError,
  createResilience,
  getResilienceInfo,
  isConfigError,
  isResilienceError,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import * as policies from "../../src/policies/index.ts";
import * as testing from "../../src/testing/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const repo = resolve(import.meta.dirname, "../..");
const A = "https://a.test/";

/** A transport answering `answer(n)` to the n-th request, noting when each came on the clock. */
function timed(clock: TestClock, answer: (n: number) => Response) {
  const at: number[] = [];
  const fetch = async (_input: RequestInfo | URL, _init?: RequestInit): Promise<Response> => {
    at.push(clock.now());
    return answer(at.length);
  };
  return { fetch, at };
}
const code = (p: Promise<Response>): Promise<number | string> =>
  p.then(
    (r) => r.status,
    (e: Error) => e.name,
  );
/** The error a synchronous call throws. */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a throw");
}

describe("README quick start, in a front-end app (pasted; network and time injected)", () => {
  const chain = () =>
    fallback([
      {
        name: "images",
        endpoints: [
          { name: "primary", url: "https://gen.example/v1/images" },
          { name: "backup", url: "https://backup.example/v1/images", expectedQuality: 0.8 },
        ],
      },
    ]);
  function layer(fetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>) {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      fetch,
      retry: { maxAttempts: 4, initialDelay: 500 },
      timeout: { attempt: 30_000, total: 120_000 },
      fallback: chain(),
    });
    async function generateImage(prompt: string): Promise<unknown> {
      try {
        const res = await resilience.fetch("https://gen.example/v1/images", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ prompt, steps: 50, resolution: "1080p" }),
        });
        info.push(getResilienceInfo(res));
        return await res.json();
      } catch (error) {
        if (isResilienceError(error)) throw new Error(`generation unavailable: ${error.message}`, { cause: error });
        throw error;
      }
    }
    const info: unknown[] = [];
    return { clock, generateImage, info };
  }

  it("the primary's 503s are retried four times, then the backup serves; the info names it", async () => {
    const sent: string[] = [];
    const l = layer(async (input, init) => {
      const request = new Request(input, init);
      sent.push(`${new URL(request.url).host} ${await request.text()}`);
      return request.url.includes("gen.example")
        ? new Response("busy", { status: 503 })
        : Response.json({ url: "https://cdn.example/cat.png" });
    });
    expect(await l.clock.run(l.generateImage("a cat"))).toEqual({ url: "https://cdn.example/cat.png" });
    expect(sent.map((s) => s.split(" ")[0])).toEqual([
      "gen.example",
      "gen.example",
      "gen.example",
      "gen.example",
      "backup.example",
    ]);
    expect(new Set(sent.map((s) => s.split(" ")[1])).size).toBe(1);
    expect(l.info[0]).toMatchObject({ attempts: 5, endpoint: "backup", fromFallback: true });
    expect(l.info[0]).toHaveProperty("degradationLevel");
  });

  it("no response at all: the catch recognises the error and wraps it", async () => {
    const l = layer(async () => {
      throw new TypeError("fetch failed", { cause: Object.assign(new Error("refused"), { code: "ECONNREFUSED" }) });
    });
    const error = await l.clock.run(l.generateImage("a cat")).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^generation unavailable: /);
    expect(isResilienceError((error as Error).cause)).toBe(true);
  });
});

describe("docs/options.md defaults, by behaviour", () => {
  it("retry: 3 attempts, 1 s then 2 s at full jitter's ceiling; maxDelay caps at 60 s", async () => {
    const clock = new TestClock();
    const t = timed(clock, () => new Response("busy", { status: 503 }));
    const r = createResilience({ clock, fetch: t.fetch, random: () => 0.999_999_999 });
    expect(await clock.run(code(r.fetch(A)))).toBe(503);
    expect(t.at.length).toBe(3);
    expect(t.at[1]).toBeCloseTo(1000, 3);
    expect((t.at[2] ?? 0) - (t.at[1] ?? 0)).toBeCloseTo(2000, 3);

    const clock2 = new TestClock();
    const t2 = timed(clock2, () => new Response("busy", { status: 503 }));
    const r2 = createResilience({
      clock: clock2,
      fetch: t2.fetch,
      retry: { maxAttempts: 9, jitter: "none" },
      budget: false,
      breaker: false,
    });
    await clock2.run(r2.fetch(A));
    expect(t2.at.map((x, i) => x - (t2.at[i - 1] ?? 0)).slice(1)).toEqual([
      1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000,
    ]);
  });

  it("maxRetryAfter 60 s: Retry-After 60 is waited, 61 is given back at once", async () => {
    const retryAfter = async (seconds: string) => {
      const clock = new TestClock();
      const t = timed(
        clock,
        (n) => new Response("x", { status: n === 1 ? 503 : 200, headers: { "retry-after": seconds } }),
      );
      const status = await clock.run(code(createResilience({ clock, fetch: t.fetch }).fetch(A)));
      return [status, t.at];
    };
    expect(await retryAfter("60")).toEqual([200, [0, 60_000]]);
    expect(await retryAfter("61")).toEqual([503, [0]]);
  });

  it("no bulkhead by default (500 in flight to one host); maxReplayBytes 8 MiB", async () => {
    const clock = new TestClock();
    let entered = 0;
    const hung = createResilience({
      clock,
      fetch: () => {
        entered++;
        return new Promise<Response>(() => {});
      },
    });
    const aborter = new AbortController();
    const calls = Array.from({ length: 500 }, () => hung.fetch(A, { signal: aborter.signal }).catch(() => "aborted"));
    await clock.advance(0);
    expect(entered).toBe(500);
    aborter.abort();
    expect(new Set(await Promise.all(calls))).toEqual(new Set(["aborted"]));

    for (const [size, requests] of [
      [8 * 1024 * 1024, 2],
      [8 * 1024 * 1024 + 1, 1],
    ] as const) {
      const c = new TestClock();
      const t = timed(c, (n) => new Response("x", { status: n === 1 ? 503 : 200 }));
      await c.run(
        createResilience({ clock: c, fetch: t.fetch }).fetch(A, { method: "PUT", body: new Uint8Array(size) }),
      );
      expect(t.at.length).toBe(requests);
    }
  });

  it("breaker: 12 failures in a row open it for 30 s; beside it, the 50% rule over 100 calls", async () => {
    const clock = new TestClock();
    const t = timed(clock, () => new Response("x", { status: 503 }));
    const r = createResilience({ clock, fetch: t.fetch, retry: false });
    const outs: Array<number | string> = [];
    for (let i = 0; i < 13; i++) outs.push(await clock.run(code(r.fetch(A))));
    expect(outs.slice(11)).toEqual([503, "CircuitOpenError"]);
    await clock.advance(29_999);
    expect(await clock.run(code(r.fetch(A)))).toBe("CircuitOpenError");
    await clock.advance(1);
    expect(await clock.run(code(r.fetch(A)))).toBe(503);
    expect(t.at.length).toBe(13);

    const c = new TestClock();
    const alt = timed(c, (n) => new Response("x", { status: n % 2 === 0 ? 503 : 200 }));
    const r2 = createResilience({ clock: c, fetch: alt.fetch, retry: false });
    for (let i = 0; i < 100; i++) await c.run(code(r2.fetch(A)));
    expect(r2.health().breakers["a.test"]?.state).toBe("open");
    expect(await c.run(code(r2.fetch(A)))).toBe("CircuitOpenError");
  });
});

describe("the errors a newcomer meets first", () => {
  it("a misspelt option and a wrong type are ConfigErrors naming the path, on every entry", () => {
    const cases: Array<[() => unknown, string, RegExp]> = [
      [() => createResilience({ retry: { maxAtempts: 3 } } as ResilienceOptions), "retry", /maxAtempts/],
      [() => createResilience({ retires: 3 } as ResilienceOptions), "options", /retires/],
      [
        () => createResilience({ retry: { maxAttempts: "3" } } as unknown as ResilienceOptions),
        "retry.maxAttempts",
        /expected number, received "3"/,
      ],
      [() => createResilience({ timeout: 30_000 } as unknown as ResilienceOptions), "timeout", /expected object/],
      [
        () => fallback([{ name: "c", endpoints: [{ name: "a", url: "/v1/images" }] }]),
        "fallback.0.endpoints.0.url",
        /absolute http\(s\) URL/,
      ],
      [() => degradation({ trigers: {} } as never), "degradation", /trigers/],
      [() => createClient({ resilience: { retry: { maxAtempts: 4 } } as never }), "resilience.retry", /maxAtempts/],
    ];
    for (const [make, path, message] of cases) {
      const error = thrown(make);
      expect(isConfigError(error), String(error)).toBe(true);
      expect((error as ConfigError).path).toBe(path);
      expect(error.message).toMatch(message);
    }
  });

  it("a relative URL, a wrong input and no global fetch reject with a TypeError saying what is wrong", async () => {
    const r = createResilience({ fetch: async () => new Response("ok") });
    const relative = r.fetch("/v1/images");
    await expect(relative).rejects.toThrow(TypeError);
    await expect(relative).rejects.toThrow(/invalid URL "\/v1\/images"/);
    await expect(r.fetch(42 as never)).rejects.toThrow(/input.*expected a URL string, URL or Request, got number/);
    await expect(r.fetch(new Request(A), "x" as never)).rejects.toThrow(/init must be an object/);

    const saved = globalThis.fetch;
    Reflect.deleteProperty(globalThis, "fetch");
    try {
      const plain = createResilience().fetch(A);
      const viaKy = createClient().get(A);
      await expect(plain).rejects.toThrow(/no global fetch in this runtime; pass one as the `fetch` option/);
      await expect(viaKy).rejects.toThrow(/no global fetch in this runtime/);
    } finally {
      globalThis.fetch = saved;
    }
  });

  it("docs/options.md: a `true` where `false` or an object goes names the expected value", () => {
    // "`createResilience` validates them … and throws `ConfigError` naming the path and the expected value"
    for (const option of ["retry", "breaker", "budget"] as const) {
      const error = thrown(() => createResilience({ [option]: true } as unknown as ResilienceOptions));
      expect(isConfigError(error)).toBe(true);
      expect((error as ConfigError).path).toBe(option);
      // Today: "retry: expected a valid value, received true".
      expect(error.message).toMatch(/expected .*(false|object)/);
    }
  });
});

describe("Upgrading from 0.1, and the entry table", () => {
  it("the 0.1 shapes are ConfigErrors that say where to import from, through ky too", () => {
    for (const make of [
      () => createResilience({ fallback: [] } as never),
      () => createClient({ resilience: { fallback: [] } as never }),
    ])
      expect(thrown(make).message).toMatch(
        /fallback: expected fallback\(…\) from "@storycore\/resilient-fetch\/fallback"/,
      );
    expect(thrown(() => createResilience({ degradation: {} } as never)).message).toMatch(
      /expected degradation\(…\) from "@storycore\/resilient-fetch\/degradation"/,
    );
    const changelog = readFileSync(resolve(repo, "CHANGELOG.md"), "utf8");
    expect(changelog).toMatch(/^### Changed \(breaking: migrating from 0\.1\)$/m);
  });

  it("each entry exports what the README's table says", () => {
    const r = createResilience({ fetch: async () => new Response("ok") });
    for (const name of ["createResilience", "getResilienceInfo", "memoryStore", "ConfigError", "isResilienceError"])
      expect(root).toHaveProperty(name);
    expect(typeof r.health).toBe("function");
    expect(typeof r.execute).toBe("function");
    expect(typeof r.breaker).toBe("function");
    expect(typeof fallbackEntry.fallback).toBe("function");
    expect(typeof degradationEntry.degradation).toBe("function");
    expect(policies.LEVEL_NAMES).toHaveLength(5);
    for (const name of ["retry", "CircuitBreaker", "Bulkhead", "RetryBudget", "FallbackChain", "nextLevel"])
      expect(policies).toHaveProperty(name);
    for (const name of ["kvStore", "durableObjectStore", "resilientProxy"]) expect(cloudflare).toHaveProperty(name);
    for (const name of ["TestClock", "upstream", "recordEvents", "status", "json"])
      expect(testing).toHaveProperty(name);
    // "…/degradation: … five levels, triggers, request rewriting", "the level machine" in …/policies.
    expect(Object.keys(degradationEntry.defaultLevels)).toHaveLength(5);
  });
});

describe("docs/architecture.md: what each dependency is for", () => {
  it("every package of package.json has a row in the dependency table", () => {
    // docs/README.md: "[Project layout and dependencies](architecture.md) | the source tree, what each dependency is for"
    const pkg = JSON.parse(readFileSync(resolve(repo, "package.json"), "utf8")) as Record<
      string,
      Record<string, string> | undefined
    >;
    const declared = new Set(
      ["dependencies", "devDependencies", "peerDependencies"].flatMap((k) => Object.keys(pkg[k] ?? {})),
    );
    const doc = readFileSync(resolve(repo, "docs/architecture.md"), "utf8");
    const table = doc.slice(doc.indexOf("## Dependencies and what each is for"));
    const listed = new Set(
      table
        .split("\n")
        .filter((line) => line.startsWith("| ") && !line.startsWith("| package") && !line.startsWith("| ---"))
        .flatMap((line) => (line.split("|")[1] ?? "").split(","))
        .map((cell) => cell.trim().split(/\s+/)[0] ?? ""),
    );
    // A size-limit plugin is the size-limit row's.
    const missing = [...declared].filter((name) => !listed.has(name) && !name.startsWith("@size-limit/")).sort();
    // Today: @anthropic-ai/sdk, @stryker-mutator/core, @stryker-mutator/vitest-runner, @types/node, axios, hono,
    // openai, replicate.
    expect(missing).toEqual([]);
  });

  it("zod is the one runtime dependency, and its row says what it is for", () => {
    const pkg = JSON.parse(readFileSync(resolve(repo, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(pkg.dependencies)).toEqual(["zod"]);
    const doc = readFileSync(resolve(repo, "docs/architecture.md"), "utf8");
    expect(doc).toMatch(/\| zod \(`zod\/mini`\) +\| runtime +\| validating remote breaker state/);
  });
});
