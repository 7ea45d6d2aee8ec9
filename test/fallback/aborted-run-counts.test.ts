/**
 * docs/fallback.md on a run its caller aborted: the run and the endpoint it
 * was waiting on are not counted, while an endpoint that had ended stays
 * counted as it ended, here one a `fallback` listener heard fail and then
 * aborted the call for.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

describe("a chain's statistics when a fallback listener aborts the call", () => {
  it("keeps the endpoint that failed counted, and counts nothing for the one never reached", async () => {
    const guide = readFileSync(new URL("../../docs/fallback.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain(
      "nor the endpoint it was waiting on, while an endpoint that had ended stays counted as it ended (one a `fallback` listener heard fail, then aborted the call for, counts as failed)",
    );
    const clock = new TestClock();
    const sent: string[] = [];
    const layer = createResilience({
      clock,
      retry: false,
      fetch: async (input) => {
        sent.push(new URL(input instanceof Request ? input.url : String(input)).host);
        return new Response(null, { status: 503 });
      },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const controller = new AbortController();
    const reason = new Error("user left");
    layer.on("fallback", () => controller.abort(reason));
    await expect(clock.run(layer.fetch("https://a.example/v1", { signal: controller.signal }))).rejects.toBe(reason);
    expect(sent).toEqual(["a.example"]);
    const stats = layer.fallback.chain("gen").statistics();
    expect(stats.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(stats.fallbacks.b?.calls ?? 0).toBe(0);
  });
});
