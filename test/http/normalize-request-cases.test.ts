import { describe, expect, it } from "vitest";
import { createResilience } from "../../src/index.ts";

const URL_ = "https://api.example/v1/jobs";

/** What the transport receives for one call (redirects left to the platform, so nothing is added on the way). */
async function sent(
  input: RequestInfo,
  init?: RequestInit,
  options: { idempotencyKey?: boolean } = {},
): Promise<{ input: RequestInfo | URL; init: RequestInit | undefined }> {
  let seen: { input: RequestInfo | URL; init: RequestInit | undefined } | undefined;
  const resilience = createResilience({
    redirects: "platform",
    retry: { idempotencyKey: options.idempotencyKey ?? false },
    fetch: async (given, givenInit) => {
      seen = { input: given, init: givenInit };
      return new Response("ok");
    },
  });
  await resilience.fetch(input, init);
  if (!seen) throw new Error("nothing was sent");
  return seen;
}

describe("a Request input sent again with its body read: the properties it carries", () => {
  it("carries none of a Request's default properties (workerd refuses some even at their defaults)", async () => {
    const { input, init } = await sent(new Request(URL_, { method: "POST", body: "x" }));
    expect(input).toBe(URL_);
    for (const name of [
      "redirect",
      "credentials",
      "cache",
      "mode",
      "integrity",
      "keepalive",
      "referrerPolicy",
      "referrer",
    ]) {
      expect((init as Record<string, unknown>)[name], name).toBeUndefined();
    }
  });

  it("carries every property the Request set to something else", async () => {
    const properties: RequestInit = {
      redirect: "error",
      credentials: "omit",
      cache: "no-store",
      mode: "same-origin",
      integrity: "sha256-abc",
      keepalive: true,
      referrerPolicy: "no-referrer",
      referrer: "https://api.example/page",
    };
    const { init } = await sent(new Request(URL_, { method: "POST", body: "x", ...properties }));
    expect(init).toMatchObject(properties);
  });

  it("carries an empty referrer (no referrer): an init without it would reset it to the client's", async () => {
    const request = new Request(URL_, { method: "POST", body: "x", referrer: "" });
    expect(request.referrer).toBe("");
    const { init } = await sent(request);
    expect(init?.referrer).toBe("");
    // The default (`about:client`) is left out: any init falls back to it.
    const plain = await sent(new Request(URL_, { method: "POST", body: "x" }));
    expect(plain.init && "referrer" in plain.init).toBe(false);
  });
});

describe("idempotency keys added by the layer (retry.idempotencyKey)", () => {
  it("keep the caller's own key as it is", async () => {
    const { init } = await sent(
      URL_,
      { method: "POST", body: "x", headers: { "Idempotency-Key": "mine" } },
      { idempotencyKey: true },
    );
    expect(new Headers(init?.headers).get("idempotency-key")).toBe("mine");
  });

  it("are added to POST and PATCH only, not to other methods that are not retried freely", async () => {
    const post = await sent(URL_, { method: "POST", body: "x" }, { idempotencyKey: true });
    expect(new Headers(post.init?.headers).get("idempotency-key")).toMatch(/^[0-9a-f-]{36}$/);
    const purge = await sent(URL_, { method: "PURGE" }, { idempotencyKey: true });
    expect(new Headers(purge.init?.headers).has("idempotency-key")).toBe(false);
  });
});
