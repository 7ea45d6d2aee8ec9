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

describe("a page's mode no-cors and same-origin calls, with the browser build's switch on", () => {
  /** A transport that records what it was sent and answers `status`. */
  function recording(status: number) {
    const sent: Array<{ url: string; key: string | null }> = [];
    const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
      sent.push({ url: String(input), key: new Headers(init?.headers).get("idempotency-key") });
      return new Response("x", { status });
    };
    return { sent, fetch };
  }

  it("adds no key to a no-cors POST and sends it once after a 500 (the browser would drop the key)", async () => {
    vi.stubGlobal("__RESILIENT_FETCH_BROWSER__", true);
    const { sent, fetch } = recording(500);
    const r = createResilience({ fetch, retry: { idempotencyKey: true, initialDelay: 0, jitter: "none" } });
    const response = await r.fetch("https://api.example/jobs", { method: "POST", mode: "no-cors", body: "j" });
    expect(response.status).toBe(500);
    expect(sent).toEqual([{ url: "https://api.example/jobs", key: null }]);
    // The caller's own key counts for nothing either.
    const own = recording(500);
    const mine = createResilience({ fetch: own.fetch, retry: { initialDelay: 0, jitter: "none" } });
    await mine.fetch("https://api.example/jobs", {
      method: "POST",
      mode: "no-cors",
      body: "j",
      headers: { "idempotency-key": "k" },
    });
    expect(own.sent).toHaveLength(1);
  });

  it("refuses a same-origin call to another origin before sending it, as the caller's mistake", async () => {
    vi.stubGlobal("__RESILIENT_FETCH_BROWSER__", true);
    vi.stubGlobal("origin", "https://app.example");
    const { sent, fetch } = recording(200);
    const r = createResilience({ fetch });
    await expect(r.fetch("https://api.example/x", { mode: "same-origin" })).rejects.toThrow(
      new TypeError(
        'resilience.fetch: mode "same-origin" cannot fetch https://api.example from a page of https://app.example',
      ),
    );
    expect(sent).toEqual([]);
    expect(r.health().breakers["api.example"]?.failureCount ?? 0).toBe(0);
    // Its own origin goes.
    expect((await r.fetch("https://app.example/y", { mode: "same-origin" })).status).toBe(200);
    expect(sent.map((s) => s.url)).toEqual(["https://app.example/y"]);
  });
});
