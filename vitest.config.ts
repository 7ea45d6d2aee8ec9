import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { buildSync } from "esbuild";
import { defineConfig } from "vitest/config";
import { conformanceUpstream } from "./test/runtimes/upstream-logic.ts";

/** The upstreams the workerd tests talk to, answered by Miniflare (no network). */
function fakeUpstreams(request: Request): Response | Promise<Response> {
  const url = new URL(request.url);
  if (url.host.endsWith(".conformance")) return conformanceUpstream(request);
  if (url.host === "primary.example") {
    if (url.pathname.includes("/down")) return new Response("down", { status: 503 });
    return Response.json({ from: "primary", path: url.pathname, query: url.search });
  }
  if (url.host === "spare.example") {
    return Response.json({ from: "spare", authorization: request.headers.get("authorization") });
  }
  return new Response(`unexpected request to ${url.host}`, { status: 599 });
}

/**
 * The cross-isolate tests run `test/workers/isolate-worker.ts` as separate
 * Worker scripts (Miniflare loads plain JavaScript, so it is bundled first).
 */
const isolateDir = mkdtempSync(join(tmpdir(), "resilient-fetch-isolate-"));
const isolateBundle = join(isolateDir, "isolate-worker.js");
process.once("exit", () => rmSync(isolateDir, { recursive: true, force: true }));
try {
  buildSync({
    entryPoints: [resolve(import.meta.dirname, "test/workers/isolate-worker.ts")],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    outfile: isolateBundle,
    logLevel: "silent",
  });
} catch (error) {
  // A source that does not build must fail the cross-isolate tests, loudly,
  // not every project's configuration: the stand-in Worker answers the error.
  const message = JSON.stringify(`isolate-worker.ts did not build: ${String(error)}`);
  const objects = ["BreakerStateObject", "SlowStateObject", "BrokenStateObject"];
  writeFileSync(
    isolateBundle,
    `const fail = () => new Response(${message}, { status: 500 });\n` +
      `export default { fetch: fail };\n${objects.map((o) => `export class ${o} { fetch() { return fail(); } }`).join("\n")}\n`,
  );
}
const objectBindings = (scriptName: string) => ({
  BREAKER_STATE: { className: "BreakerStateObject", scriptName },
  SLOW_STATE: { className: "SlowStateObject", scriptName },
  BROKEN_STATE: { className: "BrokenStateObject", scriptName },
});
const isolateWorker = (name: string) => ({
  name,
  modules: true,
  scriptPath: isolateBundle,
  modulesRoot: dirname(isolateBundle),
  compatibilityDate: "2025-09-01",
  bindings: { ISOLATE_NAME: name },
  durableObjects: objectBindings("breaker-state"),
});

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          include: ["test/**/*.test.ts"],
          exclude: ["test/workers/**"],
          environment: "node",
          typecheck: { enabled: true, include: ["test/**/*.test-d.ts"], tsconfig: "./tsconfig.test.json" },
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./test/workers/wrangler.toml" },
            miniflare: {
              outboundService: fakeUpstreams,
              serviceBindings: { ISOLATE_A: "isolate-a", ISOLATE_B: "isolate-b" },
              workers: [
                {
                  ...isolateWorker("breaker-state"),
                  durableObjects: {
                    BREAKER_STATE: "BreakerStateObject",
                    SLOW_STATE: "SlowStateObject",
                    BROKEN_STATE: "BrokenStateObject",
                  },
                },
                isolateWorker("isolate-a"),
                isolateWorker("isolate-b"),
              ],
            },
          }),
        ],
        test: { name: "workers", include: ["test/workers/**/*.test.ts"] },
      },
    ],
  },
});
