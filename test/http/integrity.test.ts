import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createResilience, type FetchLike } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const BODY = "the final answer";
const digest = (algorithm: string, text = BODY) =>
  `${algorithm}-${createHash(algorithm).update(text).digest("base64")}`;

/** A transport that redirects /a to /b once, answers /b with BODY, and records each init's integrity. */
function redirectOnce(seen: string[]): FetchLike {
  return async (input, init) => {
    seen.push(init?.integrity ?? (input instanceof Request ? input.integrity : ""));
    const url = input instanceof Request ? input.url : String(input);
    return url.endsWith("/a")
      ? new Response(null, { status: 302, headers: { location: "/b" } })
      : new Response(BODY, { headers: { "content-type": "text/plain" } });
  };
}

async function call(integrity: string, url = "https://api.example/a") {
  const seen: string[] = [];
  const clock = new TestClock(0);
  const resilience = createResilience({ clock, retry: false, redirects: "library", fetch: redirectOnce(seen) });
  const outcome = await clock.run(resilience.fetch(new Request(url, { integrity }))).then(
    async (res) => ({
      text: await res.text(),
      redirected: res.redirected,
      url: res.url,
      type: res.headers.get("content-type"),
    }),
    (error: unknown) => ({ error: String(error) }),
  );
  return { outcome, seen };
}

describe("integrity on a redirect the library follows: checked on the final answer, as fetch does", () => {
  it("takes a matching body; no hop carries the metadata (the platform would check a 302's empty body)", async () => {
    const { outcome, seen } = await call(digest("sha256"));
    expect(outcome).toEqual({
      text: BODY,
      redirected: true,
      url: "https://api.example/b",
      type: "text/plain",
    });
    expect(seen).toEqual(["", ""]);
  });

  it("refuses a body that does not match with fetch's network error, naming the URL", async () => {
    const { outcome } = await call(digest("sha256", "another body"));
    // A network error, so the layer reports the attempts it made (here one) around it.
    expect(outcome).toEqual({
      error:
        "RetryExhaustedError: gave up after 1 attempt to api.example: resilience.fetch: integrity mismatch for https://api.example/b",
    });
  });

  it("judges by the strongest algorithm named, any of its digests", async () => {
    // A wrong sha256 beside a right sha512: sha512 decides.
    expect((await call(`${digest("sha256", "x")} ${digest("sha512")}`)).outcome).toMatchObject({ text: BODY });
    // A right sha256 beside a wrong sha384: sha384 decides.
    expect((await call(`${digest("sha256")} ${digest("sha384", "x")}`)).outcome).toMatchObject({
      error: expect.stringContaining("integrity mismatch"),
    });
    // Two sha384 digests, the second right; options after `?` ignored.
    expect((await call(`${digest("sha384", "x")} ${digest("sha384")}?ct=text/plain`)).outcome).toMatchObject({
      text: BODY,
    });
  });

  it("checks nothing when no known algorithm is named, as fetch", async () => {
    expect((await call("md5-abc sha1-def")).outcome).toMatchObject({ text: BODY });
  });

  it("checks an answer that was no redirect too: its hop went without the metadata", async () => {
    expect((await call(digest("sha256"), "https://api.example/b")).outcome).toMatchObject({
      text: BODY,
      redirected: false,
    });
    expect((await call(digest("sha256", "x"), "https://api.example/b")).outcome).toMatchObject({
      error: expect.stringContaining("integrity mismatch"),
    });
  });

  it("compares digests padded or not: a sha512 digest (two `=`) written without its padding, in base64url", async () => {
    const unpadded = digest("sha512").replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    expect(unpadded.endsWith("=")).toBe(false);
    expect((await call(unpadded)).outcome).toMatchObject({ text: BODY });
  });

  it("an empty final answer keeps a null body, as fetch gives it", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      redirects: "library",
      fetch: async (input) =>
        String(input instanceof Request ? input.url : input).endsWith("/a")
          ? new Response(null, { status: 302, headers: { location: "/b" } })
          : new Response(null, { status: 204 }),
    });
    const res = await clock.run(resilience.fetch("https://api.example/a", { integrity: digest("sha256", "") }));
    expect(res.status).toBe(204);
    expect(res.body).toBeNull();
    expect(res.redirected).toBe(true);
  });
});
