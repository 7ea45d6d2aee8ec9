/**
 * The browser build's switch read through the source: the source reads
 * `globalThis.__RESILIENT_FETCH_BROWSER__` at each use (a bundler folds it
 * in `dist/browser`, see browser-build.test.ts), so defining the global
 * here makes the source behave as that build does, where mutation testing
 * can see it.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { failureReason } from "../../src/http/send/failure-reason.ts";
import { defaultRedirectMode } from "../../src/http/send/follow-redirects.ts";
import { ConfigError, createResilience } from "../../src/index.ts";

const refused = new TypeError("fetch failed", { cause: Object.assign(new Error("connect"), { code: "ECONNREFUSED" }) });

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("with __RESILIENT_FETCH_BROWSER__ defined, as in the browser build", () => {
  it("leaves redirects to the platform by default, and accepts platform", () => {
    vi.stubGlobal("__RESILIENT_FETCH_BROWSER__", true);
    expect(defaultRedirectMode()).toBe("platform");
    expect(createResilience().debugInfo().options.redirects).toBe("platform");
    expect(createResilience({ redirects: "platform" }).debugInfo().options.redirects).toBe("platform");
  });

  it("refuses redirects: library at once, naming the option", () => {
    vi.stubGlobal("__RESILIENT_FETCH_BROWSER__", true);
    let error: unknown;
    try {
      createResilience({ redirects: "library" });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("redirects");
    expect((error as ConfigError).message).toBe(
      'redirects: expected "platform" (the browser build leaves redirects to the browser), received "library"',
    );
  });

  it("names a refused connection a network error, as a browser would (no platform codes)", () => {
    expect(failureReason(refused).reason).toBe("connection refused");
    vi.stubGlobal("__RESILIENT_FETCH_BROWSER__", true);
    expect(failureReason(refused)).toEqual({ reason: "network error", notSent: false });
  });
});
