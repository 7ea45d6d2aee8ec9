/**
 * workerd refuses `redirect: "error"` and any `integrity` in its fetch,
 * whatever the server answers. Such a call is the caller's mistake, found by
 * the runtime's own `Request` constructor as the call starts: it fails at
 * once with the runtime's words, is never retried and never counts against
 * the host's breaker (it once failed as a network error, three attempts,
 * each a failure of a healthy host). `integrity` on a redirect the library
 * follows is the library's to check (session-nine-attack covers that).
 */
import { createResilience } from "@storycore/resilient-fetch";
import { describe, expect, it } from "vitest";

function counted() {
  const sent: string[] = [];
  const resilience = createResilience({
    fetch: async (input) => {
      sent.push(String(input instanceof Request ? input.url : input));
      return new Response("ok");
    },
    breaker: { failureThreshold: 1 },
  });
  const retries: unknown[] = [];
  resilience.on("retry", (e) => retries.push(e));
  return { resilience, sent, retries };
}

describe("fields workerd's fetch refuses fail at once", () => {
  it('redirect: "error" is refused before anything is sent: no attempt, no retry, no failure counted', async () => {
    const { resilience, sent, retries } = counted();
    const error = await resilience.fetch("https://h.conformance/x", { redirect: "error" }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(TypeError);
    expect(error?.message).toMatch(/^resilience\.fetch: this runtime refuses the call: Invalid redirect value/);
    expect(sent).toEqual([]);
    expect(retries).toEqual([]);
    expect(resilience.health().breakers["h.conformance"]?.failureCount ?? 0).toBe(0);
    // The host stays usable.
    expect((await resilience.fetch("https://h.conformance/x")).status).toBe(200);
  });

  it('integrity with redirect: "manual" (the library does not follow) is refused at once', async () => {
    const { resilience, sent } = counted();
    await expect(
      resilience.fetch("https://h.conformance/x", { redirect: "manual", integrity: "sha256-abc" }),
    ).rejects.toThrow(/this runtime refuses the call: Subrequest integrity checking is not implemented/);
    expect(sent).toEqual([]);
  });

  it("integrity on a call the library follows goes on (the library checks it on the final answer)", async () => {
    const { resilience, sent } = counted();
    const empty = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array()))));
    await expect(resilience.fetch("https://h.conformance/x", { integrity: `sha256-${empty}` })).rejects.toThrow(
      /integrity mismatch/,
    );
    expect(sent).toHaveLength(1);
  });
});
