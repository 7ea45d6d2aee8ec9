import { build } from "esbuild";
import { describe, expect, it } from "vitest";

/** The files esbuild pulls into a browser bundle of `entry`, as a user's bundler would. */
async function bundledInputs(entry: string): Promise<string[]> {
  const result = await build({
    entryPoints: [new URL(`../../${entry}`, import.meta.url).pathname],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    metafile: true,
    logLevel: "silent",
  });
  return Object.keys(result.metafile.inputs);
}

describe("zod stays out of the root entry", () => {
  it("a browser bundle of the root entry contains no zod module (options use our own checker)", async () => {
    const inputs = await bundledInputs("src/index.ts");
    expect(inputs.some((path) => path.includes("core/options/check-options.ts"))).toBe(true);
    expect(inputs.filter((path) => path.includes("node_modules/zod/"))).toEqual([]);
  });

  it("the Cloudflare entry still reads state and messages back through zod", async () => {
    const inputs = await bundledInputs("src/cloudflare/index.ts");
    expect(inputs.some((path) => path.includes("node_modules/zod/"))).toBe(true);
  });
});

describe("the opt-in entries stay out of the root", () => {
  it("a bundle of the root entry carries no fallback or degradation code", async () => {
    const inputs = await bundledInputs("src/index.ts");
    expect(inputs.some((path) => path.includes("src/http/resilient-fetch.ts"))).toBe(true);
    expect(inputs.filter((path) => /src\/(fallback|degradation)\//.test(path))).toEqual([]);
    // The generic chain and level machine are not in it either.
    expect(
      inputs.filter((path) => /policies\/(fallback-chain|degradation-machine|adjust-parameters)\.ts/.test(path)),
    ).toEqual([]);
  });

  it("each entry brings its own stage and nothing of the other", async () => {
    const fallback = await bundledInputs("src/fallback/index.ts");
    expect(fallback.some((path) => path.includes("src/fallback/try-endpoints.ts"))).toBe(true);
    expect(fallback.filter((path) => path.includes("src/degradation/"))).toEqual([]);
    const degradation = await bundledInputs("src/degradation/index.ts");
    expect(degradation.some((path) => path.includes("src/degradation/rewrite-request.ts"))).toBe(true);
    expect(degradation.filter((path) => path.includes("src/fallback/"))).toEqual([]);
  });
});
