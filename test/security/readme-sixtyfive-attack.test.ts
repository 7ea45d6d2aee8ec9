/**
 * Outside-in attack on README.md.
 *
 * Docs:
 * - README.md quick start: "return await res.json(); // a 200 whose body is no JSON (an HTML error page) rejects
 *   with a SyntaxError".
 * - README.md: "A layer without a `fetch` option then sends through the fetch that was global when it was made, never
 *   through itself (a `fetch` you pass is called as it is: one that reads the global fetch at call time reaches
 *   whatever layer is installed there)".
 * - README.md: "Every capability beyond retry, breakers and timeouts is an entry of its own that you import only if
 *   you use it"; the entries table ("`…/ky`, `…/cloudflare`, `…/testing` | the ky client, the Workers stores and
 *   proxy, the MSW fault kit"); docs/architecture.md "Dependencies and what each is for": "zod (`zod/mini`) |
 *   runtime | validating remote breaker state … in the `./cloudflare` entry only", "ky | optional peer | the `./ky`
 *   adapter", "msw | optional peer, dev | the `./testing` fault kit"; docs/options.md "Only the Cloudflare entry
 *   pays for zod".
 * - README.md "Upgrading from 0.1": "degradation, on by default in 0.1, is now off unless you pass
 *   `degradation({})`: a 0.1 configuration without a `degradation` key no longer rewrites requests".
 * - docs/storycore-mapping.md: "`ErrorHandlingSystem()` | `createResilience({ …, fallback: fallback([…]),
 *   degradation: degradation() })`", "`system.fallback.chain("x").add(fn, { name, expectedQuality })`",
 *   "`system.degradation.adjust(p)`", "`system.execute(fn, { breaker: "x" })`", "`chain.statistics()`,
 *   `system.health()`"; "As in that system, work run through `system.execute(fn)` counts in `health()`'s
 *   `errorRate`".
 *
 * How: `createResilience`, `getResilienceInfo`, `isRetryExhaustedError` (root), `fallback` (./fallback),
 * `degradation` (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare, a plain handler with a stub
 * `ctx`), `TestClock` (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts); one child Node
 * process with a small stack (`--stack-size=100`) for a layer that reaches itself; src/ read as text for its imports.
 *
 * Paths: plain call, `Request` input, fallback chain, hedged chain, degradation rewrite (level `low`), ky client,
 * `resilientProxy` (upstream route), a layer installed as the global fetch (another layer, and itself).
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found in this pass.
 *
 * Held (plain `it`):
 * - A 200 answering an HTML page: `res.json()` rejects with a `SyntaxError` on all seven paths (ky's `.json()` too),
 *   and the call itself resolved with that 200 (one request).
 * - A layer given `fetch: (i, o) => globalThis.fetch(i, o)` while another layer is installed reaches that layer: a
 *   503 is sent 3 times (the installed layer's retries) for one call of a `retry: false` layer, and the installed
 *   layer fires its `request` event; a layer without a `fetch` option passes it over (1 request).
 * - Such a layer installed over itself reached itself and never sent: the call rejected with a
 *   `RetryExhaustedError`, nothing reached the server. In the sixty-fifth session that was changed (see Docs-silent):
 *   the layer, handed back the request it is handing the `fetch` you passed, sends it to the fetch beneath it, once
 *   (child process, small stack).
 * - Imports: the root, ./fallback, ./degradation, ./policies and ./testing/clock import no package; ./ky imports
 *   `ky` alone, ./testing `msw` alone, ./cloudflare `zod/mini` alone; package.json has zod as its one dependency,
 *   ky and msw as optional peers.
 * - A layer without a `degradation` key sends `steps: 50, resolution: "1080p"` untouched after 30 failures in a row
 *   (an error rate far past 0.1), its info's `degradationLevel` "full" (as docs/health-and-events.md says);
 *   `degradation({})` over the same traffic steps down and rewrites the body (`resolution: "720p"`).
 * - The mapping table as written (`degradation()` with no argument): a named breaker's `execute`, a chain's `add`
 *   and `statistics()`, `degradation.adjust`, `execute(fn, { breaker })`, whose failure counts in `health()`.
 *
 * Docs-silent (not pinned):
 * - A layer with `fetch: (i, o) => globalThis.fetch(i, o)` installed as the global fetch (a common way to pass the
 *   platform's fetch) recurses synchronously until the stack overflows: about 670 nested pipelines on Node's default
 *   stack, 25–27 s of CPU for the one call (quadratic: 65 levels take 0.4 s, 134 levels 1.2 s), a
 *   `RetryExhaustedError` whose message nests "gave up after 1 attempt to …" once per level (about 30 KB), and Node
 *   printing "Exception in PromiseRejectCallback: RangeError: Maximum call stack size exceeded" many times. Under
 *   vitest the same call also left 26 unhandled `RetryExhaustedError` rejections (none in a plain Node process). The
 *   README's parenthesis admits the layer reaches itself; it says nothing of the cost, and the default-transport
 *   guard (`sending`, src/http/global-fetch.ts) is not set for a passed `fetch`. In the sixty-fifth session the layer
 *   came to note what it hands the `fetch` you passed, and to send that request, handed back, to the fetch beneath
 *   it, as it does for a wrapper installed over it; README.md says so. Test "installed over itself, …".
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type Resilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const ctx = { waitUntil: (_p: Promise<unknown>) => {}, passThroughOnException: () => {} };
const send =
  (code: number, body: string, type = "text/plain") =>
  (hit: Hit) => {
    hit.res.writeHead(code, { "content-type": type });
    hit.res.end(body);
  };
const HTML = "<!doctype html><html><body><h1>Bad gateway</h1></body></html>";
const clearHits = () => {
  A.hits.length = 0;
  B.hits.length = 0;
};

type Path = "plain" | "request" | "chain" | "hedge" | "degraded" | "ky" | "proxy";
const PATHS: Path[] = ["plain", "request", "chain", "hedge", "degraded", "ky", "proxy"];

function layerFor(path: Path, options: ResilienceOptions = {}): Resilience {
  const chain =
    path === "chain" || path === "hedge"
      ? fallback([
          {
            name: "images",
            ...(path === "hedge" ? { hedge: { delay: 60_000 } } : {}),
            endpoints: [
              { name: "primary", url: `${A.base}/v1/images` },
              { name: "backup", url: `${B.base}/v1/images`, expectedQuality: 0.8 },
            ],
          },
        ])
      : undefined;
  const layer = createResilience({
    ...options,
    ...(chain ? { fallback: chain } : {}),
    ...(path === "degraded" ? { degradation: degradation({}) } : {}),
  });
  layer.degradation?.setLevel("low");
  return layer;
}

describe("README quick start: a 200 whose body is no JSON rejects res.json() with a SyntaxError", () => {
  it.each(PATHS)("%s", async (path) => {
    A.on(send(200, HTML, "text/html"));
    B.on(send(200, HTML, "text/html"));
    clearHits();
    const init = {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "a cat", steps: 50, resolution: "1080p" }),
    };
    const options: ResilienceOptions = { retry: { maxAttempts: 4, initialDelay: 500 } };
    let parsed: Promise<unknown>;
    if (path === "ky") {
      const api = createClient({ resilience: options });
      parsed = api.post(`${A.base}/v1/images`, { json: JSON.parse(init.body) }).json();
    } else if (path === "proxy") {
      const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${A.base}/v1` }], resilience: options });
      const res = await proxy.fetch(new Request("http://proxy.local/v1/images", init), {}, ctx);
      expect(res.status).toBe(200);
      parsed = res.json();
    } else {
      const layer = layerFor(path, options);
      const url = `${A.base}/v1/images`;
      const res = await (path === "request" ? layer.fetch(new Request(url, init)) : layer.fetch(url, init));
      expect(res.status).toBe(200);
      expect(getResilienceInfo(res)?.attempts).toBe(1);
      parsed = res.json();
    }
    const error = await rejection(parsed);
    expect(error).toBeInstanceOf(SyntaxError);
    expect(A.hits.length + B.hits.length).toBe(1);
  });
});

describe("README: a `fetch` you pass is called as it is, and reaches whatever layer is installed there", () => {
  it("a layer whose fetch reads the global fetch goes through the installed layer (its retries, its events)", async () => {
    A.on(send(503, "busy"));
    clearHits();
    const clock = new TestClock();
    const installedLayer = createResilience({ clock });
    const heard: string[] = [];
    installedLayer.on("request", () => heard.push("request"));
    const passing = createResilience({
      clock,
      retry: false,
      fetch: (input, init) => globalThis.fetch(input, init),
    });
    const plain = createResilience({ clock, retry: false });
    const before = globalThis.fetch;
    globalThis.fetch = installedLayer.fetch;
    try {
      const res = await clock.run(passing.fetch(`${A.base}/v1/images`));
      expect(res.status).toBe(503);
      expect(A.hits).toHaveLength(3);
      expect(heard).toEqual(["request"]);

      clearHits();
      const past = await clock.run(plain.fetch(`${A.base}/v1/images`));
      expect(past.status).toBe(503);
      expect(A.hits).toHaveLength(1);
      expect(heard).toEqual(["request"]);
    } finally {
      globalThis.fetch = before;
    }
  });

  it("installed over itself, such a layer is handed its own request back and sends it beneath, once (child, small stack)", async () => {
    A.on(send(200, "ok"));
    clearHits();
    const dir = mkdtempSync(join(tmpdir(), "readme65-"));
    const script = join(dir, "loop.ts");
    writeFileSync(
      script,
      [
        `const { createResilience, isRetryExhaustedError } = await import(${JSON.stringify(join(ROOT, "src/index.ts"))});`,
        "let calls = 0;",
        "const layer = createResilience({ retry: false, fetch: (i: RequestInfo, o?: RequestInit) => { calls++; return globalThis.fetch(i, o); } });",
        "globalThis.fetch = layer.fetch;",
        "const out = await layer.fetch(process.argv[2]).then(async (r: Response) => 'status ' + r.status + ' ' + (await r.text()), (e: Error) => (isRetryExhaustedError(e) ? 'RetryExhaustedError' : String(e?.name)));",
        "console.log(JSON.stringify({ out, calls }));",
      ].join("\n"),
    );
    try {
      // Not spawnSync: the upstream answers from this process, which must keep running meanwhile.
      const ran = await promisify(execFile)(process.execPath, ["--stack-size=100", script, `${A.base}/x`], {
        cwd: dirname(script),
        encoding: "utf8",
        timeout: 30_000,
      });
      const last = ran.stdout.trim().split("\n").at(-1) ?? "";
      const result = JSON.parse(last) as { out: string; calls: number };
      expect(result.out).toBe("status 200 ok");
      expect(result.calls).toBe(1);
      expect(A.hits).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("README entries table and docs/architecture.md: what each entry imports", () => {
  /** Every bare import reachable from `entry` through relative imports (import, export … from, dynamic). */
  function packagesOf(entry: string): Set<string> {
    const seen = new Set<string>();
    const bare = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, "utf8")
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .replace(/^\s*\/\/.*$/gm, "");
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\("([^"]+)"\)/g)) {
        const spec = (m[1] ?? m[2]) as string;
        if (spec.startsWith(".")) walk(resolve(dirname(file), spec));
        else bare.add(spec);
      }
    };
    walk(join(ROOT, "src", entry));
    expect(seen.size).toBeGreaterThan(0);
    return bare;
  }

  it("each entry imports only the package its row names", () => {
    for (const entry of ["index.ts", "fallback/index.ts", "degradation/index.ts", "policies/index.ts"]) {
      expect([...packagesOf(entry)], entry).toEqual([]);
    }
    expect([...packagesOf("testing/clock.ts")]).toEqual([]);
    expect([...packagesOf("ky/index.ts")]).toEqual(["ky"]);
    expect([...packagesOf("testing/index.ts")]).toEqual(["msw"]);
    expect([...packagesOf("cloudflare/index.ts")]).toEqual(["zod/mini"]);
  });

  it("package.json: zod the one dependency; ky and msw optional peers", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      peerDependencies: Record<string, string>;
      peerDependenciesMeta: Record<string, { optional?: boolean }>;
    };
    expect(Object.keys(pkg.dependencies)).toEqual(["zod"]);
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual(["ky", "msw"]);
    expect(pkg.peerDependenciesMeta.ky?.optional).toBe(true);
    expect(pkg.peerDependenciesMeta.msw?.optional).toBe(true);
  });
});

describe("README, upgrading from 0.1: degradation is off unless you pass degradation({})", () => {
  const body = JSON.stringify({ prompt: "a cat", steps: 50, resolution: "1080p" });
  const post = { method: "POST", headers: { "content-type": "application/json" }, body };

  async function drive(layer: Resilience, clock: TestClock): Promise<Response> {
    A.on(send(503, "busy"));
    for (let i = 0; i < 30; i++) {
      await (await layer.fetch(`${A.base}/v1/images`, post)).text();
      await clock.advance(500);
    }
    A.on(send(200, "{}", "application/json"));
    clearHits();
    return layer.fetch(`${A.base}/v1/images`, post);
  }

  it('without a degradation key: 30 failures later the body goes untouched, the info says "full"', async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: false, breaker: false });
    expect(layer.degradation).toBeUndefined();
    const res = await drive(layer, clock);
    expect(res.status).toBe(200);
    expect(A.hits).toHaveLength(1);
    expect(A.hits[0]?.body).toBe(body);
    // docs/health-and-events.md: `degradationLevel` is "full" without the degradation stage.
    expect(getResilienceInfo(res)?.degradationLevel).toBe("full");
  });

  it("with degradation({}): the same traffic steps the level down and the body is rewritten", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: false, breaker: false, degradation: degradation({}) });
    const res = await drive(layer, clock);
    expect(res.status).toBe(200);
    const level = getResilienceInfo(res)?.degradationLevel;
    expect(level).not.toBe("full");
    const sent = JSON.parse(A.hits[0]?.body ?? "{}") as { steps: number; resolution: string };
    // `high` keeps the steps (no cap) and scales 1080p by 0.95, which snaps down to 720p.
    expect(sent.resolution).toBe("720p");
    expect(sent.steps).toBe(level === "high" ? 50 : Math.min(50, level === "medium" ? 30 : 20));
  });
});

describe("docs/storycore-mapping.md: the Names table as written", () => {
  it("ErrorHandlingSystem() → createResilience({ fallback, degradation: degradation() }) and its methods", async () => {
    const clock = new TestClock();
    const system = createResilience({
      clock,
      fallback: fallback([{ name: "video", endpoints: [{ name: "primary", url: `${A.base}/v1/video` }] }]),
      degradation: degradation(),
    });
    const cb = system.breaker("x");
    expect(await cb.execute(async () => "ran")).toBe("ran");

    const chain = system.fallback?.chain("x");
    expect(chain).toBeDefined();
    chain?.add(
      async () => {
        throw new Error("hunyuan down");
      },
      { name: "hunyuan", expectedQuality: 1 },
    );
    chain?.add(async () => "wan", { name: "wan", expectedQuality: 0.8 });
    const served = await clock.run(Promise.resolve(chain?.execute(undefined)));
    expect(served).toBe("wan");
    const stats = chain?.statistics() as unknown as { fallbacks: Record<string, { calls: number }> };
    expect(stats.fallbacks.wan?.calls).toBe(1);

    system.degradation?.setLevel("medium");
    const adjusted = system.degradation?.adjust({ steps: 50, resolution: "1080p" });
    expect(adjusted?.steps).toBeLessThan(50);

    const failed = await rejection(
      clock.run(
        system.execute(
          async () => {
            throw new Error("engine crashed");
          },
          { breaker: "x", retry: false },
        ),
      ),
    );
    expect(failed).toBeInstanceOf(Error);
    const health = system.health();
    expect(health.errorRate).toBeGreaterThan(0);
  });
});
