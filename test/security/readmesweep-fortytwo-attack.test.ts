/**
 * Outside-in attack on every behavioural sentence of README.md (size and benchmark figures aside), driven on
 * the paths earlier README runs (readme-paths-attack, readme-twenty-attack, readme-twentyone-attack,
 * newcomer-thirty-attack, examples-fortyone-attack) did not combine: a `transform` that points a chain
 * endpoint at a host whose breaker is open, a hedge whose losing primary asks for a long `Retry-After`, a `URL`
 * object, headers and bytes edited after the call while a retry waits, a `resilientProxy` chain route that
 * streams, named breakers through `resilience.execute`, the StoryCore-Engine mapping table row by row, and
 * docs/architecture.md's dependency table across every entry.
 * Docs: README.md ("This library retries what is safe to retry, …, honours the server's `Retry-After`, stops
 * calling a host whose breaker is open … and never buffers your streamed responses"; "`resilience.fetch` is a
 * bound `(input, init) => Promise<Response>`, so it drops into anything that takes a custom fetch"; the Worker
 * quick start "a proxy with a fallback chain …"; the entry table "`createResilience`: … `health()`, `execute`,
 * named breakers"; "Upgrading from 0.1: … rename `sensitiveHeaders` to `crossOriginHeaders`"; "Mapping to the
 * StoryCore-Engine error-handling guide", "Project layout and dependencies"); docs/storycore-mapping.md (the
 * names table, and "work run through `system.execute(fn)` counts in `health()`'s `errorRate` and in the
 * automatic degradation triggers, as every `resilience.fetch` call does"); docs/architecture.md ("zod
 * (`zod/mini`) | runtime | validating remote breaker state … in the `./cloudflare` entry only", "ky | optional
 * peer | the `./ky` adapter", "msw | optional peer, dev | the `./testing` fault kit"); docs/fallback.md ("The
 * origin is judged on the URL actually sent, after `transform`").
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `resilientProxy` (./cloudflare), `TestClock` (./testing); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts); esbuild's metafile over each source entry.
 * Paths: plain URL call, `URL` object, fallback chain, hedged chain, `transform`, degradation stage,
 * `resilientProxy` chain route, `resilience.execute` and `resilience.breaker(name).execute`,
 * `resilience.fallback.chain(name)`, `resilience.degradation.adjust`, the package's entries' module graphs.
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour): none. Every promise tried held.
 *
 * Held (plain `it`):
 * - "stops calling a host whose breaker is open", `transform` path: a chain endpoint whose `transform` points
 *   the request at a host a direct call opened is not sent there; the call settles with the primary's 503.
 * - "honours the server's `Retry-After`", hedge path: a primary that answers `503 Retry-After: 7200` after the
 *   hedge to the backup started loses to the backup's 200, and the hold still reaches the primary's host: the
 *   next call goes straight to the backup (health shows the primary open for 7,200 s).
 * - "drops into anything that takes a custom fetch" (fetch reads its arguments once): a `URL` object, an
 *   `init.headers` object and a `Uint8Array` body edited after the call while the retry waits change nothing
 *   the retry sends: plain, chain, degradation stage.
 * - "never buffers your streamed responses", proxy chain route: the first SSE event reaches the Worker's
 *   client before the upstream ends.
 * - Named breakers through `execute` (entry table; the mapping's `cb.execute(fn)` and
 *   `execute(fn, { breaker })`): once open the work is not run (`CircuitOpenError`), through
 *   `breaker(name).execute` too; after the breaker's `timeout` on a TestClock the next run is the probe; the
 *   layer's retry applies to `execute` ("enable_retry=True").
 * - The mapping table's other rows run as written: `fallback.chain("x").add(fn, { name, expectedQuality })`,
 *   `.execute`, `.statistics()`, `degradation.adjust(p)` (unchanged at full, the documented medium values),
 *   `health()` lists the chain and the named breaker; failing `execute` work raises `errorRate` and steps the
 *   degradation level down by the error-rate trigger (0.1).
 * - 0.1's `sensitiveHeaders` is a `ConfigError` naming it (not silently ignored, which would drop the
 *   caller's intent about credentials).
 * - Dependencies: zod is in the module graph of `./cloudflare` only (root, fallback, degradation, policies,
 *   ky, testing, testing/clock hold none); ky is imported by `./ky` alone and msw by `./testing` alone.
 */
import { buildSync } from "esbuild";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isCircuitOpenError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const busy = (h: Hit) => {
  h.res.statusCode = 503;
  h.res.end("busy");
};

describe("README 'Why' clauses on further paths", () => {
  it("a transform pointing at a host whose breaker is open sends nothing there", async () => {
    const resilience = createResilience({
      retry: false,
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "a", url: a.base },
            { name: "b", url: b.base, transform: (req) => ({ ...req, url: req.url.replace(b.base, c.base) }) },
          ],
        },
      ]),
    });
    c.on(busy);
    expect((await resilience.fetch(`${c.base}/direct`)).status).toBe(503);
    expect(resilience.health().breakers[c.host]?.state).toBe("open");
    a.on(busy);
    const res = await resilience.fetch(`${a.base}/x`);
    expect(res.status).toBe(503);
    expect(getResilienceInfo(res)?.endpoint).toBe("a");
    expect(c.hits.map((h) => h.path)).toEqual(["/direct"]);
    expect(b.hits).toHaveLength(0);
  });

  it("a hedged primary's long Retry-After holds its host though the hedge won", async () => {
    a.on((h) =>
      setTimeout(() => {
        h.res.writeHead(503, { "retry-after": "7200" });
        h.res.end("busy");
      }, 40),
    );
    b.on((h) => setTimeout(() => h.res.end("ok-b"), 120));
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "a", url: a.base },
            { name: "b", url: b.base },
          ],
        },
      ]),
    });
    const first = await resilience.fetch(`${a.base}/x`);
    expect(await first.text()).toBe("ok-b");
    expect(getResilienceInfo(first)).toMatchObject({ endpoint: "b", fromFallback: true });
    const hold = resilience.health().breakers[a.host];
    expect(hold?.state).toBe("open");
    // Counted from when the answer was read; the failure is dated a tick
    // later, so a millisecond may pass between the two real-clock reads.
    const held = (hold?.openUntil ?? 0) - (hold?.lastFailureTime ?? 0);
    expect(held).toBeGreaterThan(7_200_000 - 50);
    expect(held).toBeLessThanOrEqual(7_200_000);
    const second = await resilience.fetch(`${a.base}/x`);
    expect(await second.text()).toBe("ok-b");
    expect(a.hits).toHaveLength(1);
    expect(b.hits).toHaveLength(2);
  });

  for (const path of ["plain", "chain", "degradation"] as const) {
    it(`reads a URL object, headers and bytes once, at the call (${path})`, async () => {
      const resilience = createResilience({
        retry: { initialDelay: 20, maxDelay: 20, jitter: "none" },
        ...(path === "chain"
          ? {
              fallback: fallback([
                {
                  name: "c",
                  endpoints: [
                    { name: "a", url: a.base },
                    { name: "b", url: b.base },
                  ],
                },
              ]),
            }
          : {}),
        ...(path === "degradation" ? { degradation: degradation() } : {}),
      });
      a.on((h) => (h.n === 1 ? busy(h) : h.res.end("ok")));
      const url = new URL(`${a.base}/first?x=1`);
      const headers = { "x-t": "one" };
      const body = new Uint8Array([49]);
      const call = resilience.fetch(url, { method: "PUT", headers, body });
      url.pathname = "/mutated";
      url.search = "?y=2";
      headers["x-t"] = "two";
      body[0] = 50;
      expect((await call).status).toBe(200);
      expect(a.hits.map((h) => `${h.path} ${String(h.headers["x-t"])} ${h.body}`)).toEqual([
        "/first?x=1 one 1",
        "/first?x=1 one 1",
      ]);
      expect(b.hits).toHaveLength(0);
    });
  }

  it("the Worker proxy's chain route streams an SSE answer before its end", async () => {
    a.on((h) => {
      h.res.writeHead(200, { "content-type": "text/event-stream" });
      h.res.write("data: one\n\n"); // never ended
    });
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1/video",
          chain: {
            name: "video",
            endpoints: [
              { name: "premium", url: `${a.base}/v1/video` },
              { name: "standard", url: `${b.base}/v2/video` },
            ],
          },
        },
      ],
    });
    const res = await proxy.fetch(new Request("https://worker.example/v1/video/x"), {}, { waitUntil() {} });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await Promise.race([
      reader.read(),
      new Promise<"late">((resolve) => setTimeout(() => resolve("late"), 1_000)),
    ]);
    expect(first).not.toBe("late");
    expect(new TextDecoder().decode((first as ReadableStreamReadResult<Uint8Array>).value)).toBe("data: one\n\n");
    await reader.cancel();
    expect(a.hits[0]?.path).toBe("/v1/video/x");
  });
});

describe("named breakers and the StoryCore-Engine mapping", () => {
  it("execute under an open named breaker does not run the work; the probe runs after its timeout", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, breaker: { failureThreshold: 2, timeout: 10_000 } });
    let runs = 0;
    const down = async () => {
      runs++;
      throw new Error("engine down");
    };
    for (let i = 0; i < 2; i++) await clock.run(resilience.execute(down, { breaker: "hunyuan" })).catch(() => {});
    expect(runs).toBe(2);
    const refused = await clock.run(resilience.execute(down, { breaker: "hunyuan" })).catch((e: unknown) => e);
    expect(isCircuitOpenError(refused)).toBe(true);
    const refusedToo = await resilience
      .breaker("hunyuan")
      .execute(down)
      .catch((e: unknown) => e);
    expect(isCircuitOpenError(refusedToo)).toBe(true);
    expect(runs).toBe(2);
    expect(resilience.health().breakers.hunyuan?.state).toBe("open");
    await clock.advance(10_000);
    const probed = await clock.run(
      resilience.execute(
        async () => {
          runs++;
          return "ok";
        },
        { breaker: "hunyuan" },
      ),
    );
    expect(probed).toBe("ok");
    expect(runs).toBe(3);
  });

  it("execute(fn, { breaker }) retries under the layer's retry (enable_retry=True)", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { initialDelay: 10, jitter: "none" } });
    let n = 0;
    const out = await clock.run(
      resilience.execute(
        async () => {
          n++;
          if (n < 3) throw new Error("flaky");
          return n;
        },
        { breaker: "wan" },
      ),
    );
    expect(out).toBe(3);
  });

  it("the mapping table's rows run as written", async () => {
    const resilience = createResilience({ fallback: fallback([]), degradation: degradation() });
    const full = { quality: 1, resolution: "1080p", steps: 50, model: "premium" };
    expect(resilience.degradation.adjust(full)).toEqual(full);
    resilience.degradation.setLevel("medium");
    expect(resilience.degradation.adjust(full)).toEqual({
      quality: 0.8,
      resolution: "720p",
      steps: 30,
      model: "standard",
    });
    const chain = resilience.fallback.chain<string, string>("video");
    chain.add(
      async () => {
        throw new Error("hunyuan down");
      },
      { name: "hunyuan", expectedQuality: 1 },
    );
    chain.add(async (prompt) => `wan:${prompt}`, { name: "wan", expectedQuality: 0.8 });
    expect(await chain.execute("cat")).toBe("wan:cat");
    expect(chain.statistics()).toMatchObject({
      lastSuccessfulFallback: "wan",
      fallbacks: { hunyuan: { calls: 1, successes: 0 }, wan: { calls: 1, successes: 1 } },
    });
    expect(await resilience.breaker("x").execute(async () => 1)).toBe(1);
    expect(await resilience.execute(async () => 2, { breaker: "x" })).toBe(2);
    const health = resilience.health();
    expect(Object.keys(health.breakers)).toContain("x");
    expect(Object.keys(health.fallback ?? {})).toContain("video");
  });

  it("failing execute work counts in errorRate and steps the level down (error rate 0.1)", async () => {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: false,
      degradation: degradation({ triggers: { cpuUsage: 1, memoryUsage: 1 } }),
    });
    for (let i = 0; i < 25; i++) {
      await clock.advance(100);
      await clock
        .run(
          resilience.execute(async () => {
            throw new Error("engine down");
          }),
        )
        .catch(() => {});
    }
    expect(resilience.health().errorRate).toBe(1);
    expect(resilience.degradation.currentLevel()).toMatchObject({ name: "high" });
    expect(resilience.degradation.currentLevel().reason).toMatch(/error rate/);
  });
});

describe("the upgrade note and the dependency table", () => {
  it("0.1's sensitiveHeaders is refused, not ignored", () => {
    expect(() => createResilience({ sensitiveHeaders: ["x-trace"] } as never)).toThrow(
      /unknown option "sensitiveHeaders"/,
    );
  });

  it("zod only in ./cloudflare, ky only in ./ky, msw only in ./testing", () => {
    const entries = [
      "index",
      "fallback/index",
      "degradation/index",
      "policies/index",
      "ky/index",
      "cloudflare/index",
      "testing/index",
      "testing/clock",
    ];
    const graph: Record<string, { zod: boolean; ky: boolean; msw: boolean }> = {};
    for (const entry of entries) {
      const result = buildSync({
        entryPoints: [`src/${entry}.ts`],
        bundle: true,
        write: false,
        metafile: true,
        format: "esm",
        platform: "neutral",
        external: ["ky", "msw", "msw/*"],
        logLevel: "silent",
      });
      const inputs = Object.values(result.metafile.inputs).flatMap((input) => input.imports.map((i) => i.path));
      const files = Object.keys(result.metafile.inputs);
      graph[entry] = {
        zod: files.some((f) => f.includes("node_modules/zod")),
        ky: inputs.includes("ky"),
        msw: inputs.some((p) => p === "msw" || p.startsWith("msw/")),
      };
    }
    for (const entry of entries) {
      expect(graph[entry], entry).toEqual({
        zod: entry === "cloudflare/index",
        ky: entry === "ky/index",
        msw: entry === "testing/index",
      });
    }
  });
});
