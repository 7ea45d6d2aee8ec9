import { describe, expect, it } from "vitest";
import { type DegradationOptions, degradation } from "../../src/degradation/index.ts";
import { createResilience } from "../../src/index.ts";
import { recordingFetch, type Sent } from "../helpers/recording-fetch.ts";

function at(level: "full" | "high" | "medium" | "low" | "minimal", options?: DegradationOptions) {
  const { fetch, sent } = recordingFetch();
  const resilience = createResilience({ fetch, retry: false, degradation: degradation(options) });
  resilience.degradation.setLevel(level);
  return { resilience, sent };
}

const QUERY_AND_HEADERS = {
  rules: [
    {
      params: {
        quality: { query: "q" },
        steps: { query: "steps" },
        resolution: { query: "res" },
        model: { header: "x-model" },
        features: { header: "x-features" },
      },
    },
  ],
};

describe("request rewriting by level (query, headers, rules)", () => {
  it("reads numbers and comma lists from query and header text, and writes them back as text", async () => {
    const { resilience, sent } = at("medium", QUERY_AND_HEADERS);
    await resilience.fetch("https://img.example/gen?q=1.0&steps=50&res=1080p&other=x", {
      headers: { "x-model": "premium", "x-features": "core, enhancements,,extra" },
    });
    const url = new URL((sent[0] as Sent).url);
    expect(Object.fromEntries(url.searchParams)).toEqual({ q: "0.8", steps: "30", res: "720p", other: "x" });
    expect((sent[0] as Sent).headers.get("x-model")).toBe("standard");
    expect((sent[0] as Sent).headers.get("x-features")).toBe("core");
  });

  it("edits only the query: the URL before it is passed on as the caller wrote it", async () => {
    const inputs: string[] = [];
    const resilience = createResilience({
      retry: false,
      degradation: degradation(QUERY_AND_HEADERS),
      fetch: async (input) => {
        inputs.push(String(input));
        return new Response("ok");
      },
    });
    resilience.degradation.setLevel("medium");
    // The URL parser would lower-case the host and resolve the dot segment:
    // a fallback chain's prefix, as the caller wrote it, would no longer match.
    await resilience.fetch("https://IMG.example/v1/./gen?q=1.0#top");
    await resilience.fetch("https://IMG.example/v1/./gen");
    expect(inputs).toEqual(["https://IMG.example/v1/./gen?q=0.8#top", "https://IMG.example/v1/./gen"]);
  });

  it("leaves text that is not a number as it is, and absent parameters absent", async () => {
    const { resilience, sent } = at("medium", QUERY_AND_HEADERS);
    await resilience.fetch("https://img.example/gen?q=high&steps=%20");
    const url = new URL((sent[0] as Sent).url);
    expect(Object.fromEntries(url.searchParams)).toEqual({ q: "high", steps: " " });
    expect((sent[0] as Sent).headers.has("x-model")).toBe(false);
    expect((sent[0] as Sent).headers.has("x-features")).toBe(false);
  });

  it("keeps all features at high, where the level allows all tiers", async () => {
    const { resilience, sent } = at("minimal", QUERY_AND_HEADERS);
    await resilience.fetch("https://img.example/gen", { headers: { "x-features": "core,essential" } });
    expect((sent[0] as Sent).headers.get("x-features")).toBe("essential");
  });

  it("leaves body values of the wrong type alone, and rewrites a features array", async () => {
    const { resilience, sent } = at("low", undefined);
    const body = { quality: "best", steps: "many", resolution: 1080, model: 7, features: ["basic", "core", 3] };
    await resilience.fetch("https://img.example/gen", { method: "POST", body: JSON.stringify(body) });
    expect(JSON.parse((sent[0] as Sent).body as string)).toEqual({ ...body, features: ["basic"] });
  });

  it("sends the caller's body as it is when no parameter changed", async () => {
    const { resilience, sent } = at("medium", undefined);
    const body = '{ "prompt": "p",   "seed": 1 }';
    await resilience.fetch("https://img.example/gen", { method: "POST", body });
    expect((sent[0] as Sent).body).toBe(body);
  });

  it("picks the longest matching rule, falls back to a global rule, and ignores rules for other URLs", async () => {
    const rules = [
      { params: { steps: "global_steps" } },
      { match: "https://img.example/v2", params: { steps: "v2_steps" } },
      { match: "https://img.example/v2/sdxl", params: { steps: "sdxl_steps" } },
      { match: "https://other.example", params: { steps: "other_steps" } },
    ];
    const { resilience, sent } = at("medium", { rules });
    const body = JSON.stringify({ global_steps: 50, v2_steps: 50, sdxl_steps: 50, other_steps: 50 });
    for (const url of ["https://img.example/v2/sdxl/gen", "https://img.example/v2/gen", "https://img.example/v1/gen"]) {
      await resilience.fetch(url, { method: "POST", body });
    }
    expect(sent.map((s) => JSON.parse(s.body as string))).toEqual([
      { global_steps: 50, v2_steps: 50, sdxl_steps: 30, other_steps: 50 },
      { global_steps: 50, v2_steps: 30, sdxl_steps: 50, other_steps: 50 },
      { global_steps: 30, v2_steps: 50, sdxl_steps: 50, other_steps: 50 },
    ]);
  });

  it("prefers a specific rule listed before the global one, and a longer one listed before a shorter", async () => {
    const rules = [
      { match: "https://img.example/v2/sdxl", params: { steps: "sdxl_steps" } },
      { match: "https://img.example/v2", params: { steps: "v2_steps" } },
      { params: { steps: "global_steps" } },
    ];
    const { resilience, sent } = at("medium", { rules });
    const body = JSON.stringify({ global_steps: 50, v2_steps: 50, sdxl_steps: 50 });
    await resilience.fetch("https://img.example/v2/sdxl/gen", { method: "POST", body });
    expect(JSON.parse((sent[0] as Sent).body as string)).toEqual({ global_steps: 50, v2_steps: 50, sdxl_steps: 30 });
  });

  it("at full only sets the level header, and leaves the body and URL alone", async () => {
    const { resilience, sent } = at("full", { levelHeader: "x-level" });
    const body = JSON.stringify({ steps: 50 });
    await resilience.fetch("https://img.example/gen?q=1", { method: "POST", body, headers: { a: "1" } });
    expect([(sent[0] as Sent).url, (sent[0] as Sent).body]).toEqual(["https://img.example/gen?q=1", body]);
    expect([(sent[0] as Sent).headers.get("x-level"), (sent[0] as Sent).headers.get("a")]).toEqual(["full", "1"]);
  });

  it("rewrites a Request input's header and query without losing its method, body or other headers", async () => {
    const { resilience, sent } = at("medium", QUERY_AND_HEADERS);
    const request = new Request("https://img.example/gen?q=1", {
      method: "PUT",
      body: "raw",
      headers: { "x-model": "premium", "x-keep": "k" },
    });
    await resilience.fetch(request);
    const got = sent[0] as Sent;
    expect([got.method, got.body, got.url]).toEqual(["PUT", "raw", "https://img.example/gen?q=0.8"]);
    expect([got.headers.get("x-model"), got.headers.get("x-keep")]).toEqual(["standard", "k"]);
  });

  it("leaves a Request input as it is when only its body would change but is not JSON", async () => {
    const { resilience, sent } = at("medium", undefined);
    const request = new Request("https://img.example/gen", { method: "POST", body: "plain", headers: { "x-a": "1" } });
    await resilience.fetch(request);
    expect([(sent[0] as Sent).body, (sent[0] as Sent).headers.get("x-a")]).toEqual(["plain", "1"]);
  });

  it("does not read a stream body to rewrite it", async () => {
    const { resilience, sent } = at("medium", undefined);
    const stream = new Blob(['{"steps":50}']).stream();
    await resilience.fetch("https://img.example/gen", { method: "POST", body: stream, duplex: "half" } as RequestInit);
    expect((sent[0] as Sent).body).toBe('{"steps":50}');
  });
});
