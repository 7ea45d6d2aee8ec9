/**
 * The two builds of the same source (src/core/browser-build.ts): `dist/` for
 * Node, Deno, Bun and workerd, `dist/browser/` for the `browser` export
 * condition, without the redirect follower and the platform error codes.
 * Both are loaded here as built (`npm run build` first), in Node.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type * as Root from "../../src/index.ts";

const ROOT = resolve(import.meta.dirname, "../..");
type Lib = typeof Root;
let full: Lib;
let browser: Lib;

beforeAll(async () => {
  if (!existsSync(join(ROOT, "dist/browser/index.js"))) throw new Error("run `npm run build` first: this loads dist/");
  full = (await import(join(ROOT, "dist/index.js"))) as Lib;
  browser = (await import(join(ROOT, "dist/browser/index.js"))) as Lib;
});

/** A fetch that refuses every connection the way undici does (`cause.code`). */
const refused = () =>
  Promise.reject(
    new TypeError("fetch failed", { cause: Object.assign(new Error("connect"), { code: "ECONNREFUSED" }) }),
  );

/** The reason the first retry event gives for a refused connection. */
async function retryReason(lib: Lib): Promise<unknown> {
  const reasons: unknown[] = [];
  const resilience = lib.createResilience({ fetch: refused, retry: { maxAttempts: 2, initialDelay: 0 } });
  resilience.on("retry", (event) => reasons.push(event.reason));
  await resilience.fetch("http://api.example/x").catch(() => {});
  return reasons[0];
}

describe("the browser build", () => {
  it("leaves redirects to the browser: platform by default even outside one, library refused at once", () => {
    expect(browser.createResilience().debugInfo().options.redirects).toBe("platform");
    expect(() => browser.createResilience({ redirects: "library" })).toThrow(
      new browser.ConfigError(
        "redirects",
        'expected "platform" (the browser build leaves redirects to the browser), received "library"',
      ),
    );
  });

  it("names failures as a browser does (a network error), without the platform codes", async () => {
    expect(await retryReason(browser)).toBe("network error");
  });

  it("carries neither the follower nor the code tables in its files", () => {
    const text = readdirSync(join(ROOT, "dist/browser"), { recursive: true })
      .filter((name) => String(name).endsWith(".js"))
      .map((name) => readFileSync(join(ROOT, "dist/browser", String(name)), "utf8"))
      .join("\n");
    expect(text).not.toContain("redirects from");
    expect(text).not.toContain("ECONNREFUSED");
  });
});

describe("the build for everything else (Node, Deno, Bun, workerd)", () => {
  it("follows redirects itself outside a browser, and names a refused connection", async () => {
    expect(full.createResilience().debugInfo().options.redirects).toBe("library");
    expect(full.createResilience({ redirects: "library" }).debugInfo().options.redirects).toBe("library");
    expect(await retryReason(full)).toBe("connection refused");
  });
});
