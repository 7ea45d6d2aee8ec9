import { describe, expect, it } from "vitest";
import type { CallRequest } from "../../src/http/request/call-request.ts";
import { isNetworkError, maySendAgain } from "../../src/http/send/classify.ts";
import { markAfterSent } from "../../src/http/send/follow-redirects.ts";

describe("isNetworkError", () => {
  it("counts any TypeError, whatever name a subclass gives it", () => {
    class TransportError extends TypeError {
      override name = "TransportError";
    }
    expect(isNetworkError(new TransportError("socket hang up"))).toBe(true);
  });

  it("answers false, without throwing, for null, undefined and primitives", () => {
    expect(isNetworkError(null)).toBe(false);
    expect(isNetworkError(undefined)).toBe(false);
    expect(isNetworkError("TypeError")).toBe(false);
  });

  it("counts an error workerd marks retryable (its plain Error for a refused or reset connection), outside pages", () => {
    const lost = Object.assign(new Error("Network connection lost."), { retryable: true });
    expect(isNetworkError(lost)).toBe(true);
    expect(isNetworkError(new Error("Network connection lost."))).toBe(false);
    expect(isNetworkError(Object.assign(new Error("overloaded"), { retryable: false }))).toBe(false);
    // A page's build leaves the check out: no browser throws it.
    (globalThis as { __RESILIENT_FETCH_BROWSER__?: boolean }).__RESILIENT_FETCH_BROWSER__ = true;
    try {
      expect(isNetworkError(lost)).toBe(false);
    } finally {
      delete (globalThis as { __RESILIENT_FETCH_BROWSER__?: boolean }).__RESILIENT_FETCH_BROWSER__;
    }
  });
});

describe("maySendAgain for a POST without Idempotency-Key", () => {
  const post = { idempotent: false, body: "job", replay: { allowed: true, sends: 1 } } as unknown as CallRequest;
  const refused = () => Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });

  it("sends again after a 503 or a refused connection: the server declined, or never saw it", () => {
    expect(maySendAgain(post, { value: new Response(null, { status: 503 }) })).toBe(true);
    expect(maySendAgain(post, { error: refused() })).toBe(true);
  });

  it("never after a 503 reached through a redirect (a browser's, marked redirected): the first server answered", () => {
    const redirected = new Response(null, { status: 503 });
    Object.defineProperty(redirected, "redirected", { value: true });
    expect(maySendAgain(post, { value: redirected })).toBe(false);
  });

  it("never after a refused connection at a redirect's target", () => {
    const error = refused();
    markAfterSent(error);
    expect(maySendAgain(post, { error })).toBe(false);
  });
});
