import { describe, expect, it } from "vitest";
import { type DegradationOptions, degradation } from "../../src/degradation/index.ts";
import { createResilience } from "../../src/index.ts";

type Level = "full" | "high" | "medium" | "low" | "minimal";

/** A transport that keeps the arguments exactly as the library handed them over. */
function at(level: Level, options?: DegradationOptions) {
  const calls: Array<{ input: RequestInfo | URL; init: RequestInit | undefined }> = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    calls.push({ input, init });
    return new Response("ok");
  };
  const resilience = createResilience({ fetch, retry: false, degradation: degradation(options) });
  resilience.degradation.setLevel(level);
  const sent = async (n = 0) => {
    const call = calls[n];
    if (!call) throw new Error(`no call ${n}`);
    const request = new Request(call.input, call.init);
    return { url: request.url, headers: request.headers, text: await request.text(), ...call };
  };
  return { resilience, calls, sent };
}

describe("rewriting a request for the current level", () => {
  it("leaves parameters alone at full, even when full's settings are overridden", async () => {
    const { resilience, sent } = at("full", { levelHeader: "x-level", levels: { full: { qualityMultiplier: 0.5 } } });
    const body = JSON.stringify({ quality: 1 });
    await resilience.fetch("https://img.example/gen", { method: "POST", body });
    const got = await sent();
    expect([got.text, got.headers.get("x-level")]).toEqual([body, "full"]);
  });

  it("keeps the caller's bytes for a value the level does not change, next to one it does", async () => {
    const { resilience, sent } = at("medium");
    await resilience.fetch("https://img.example/gen", { method: "POST", body: '{"steps": 20.0, "quality": 1}' });
    expect((await sent()).text).toBe('{"steps": 20.0, "quality": 0.8}');
  });

  it("hands the caller's body, as it was at the call, to the transport when no parameter changes", async () => {
    const { resilience, calls } = at("medium");
    const body = '{"prompt":"p","steps":10}';
    await resilience.fetch("https://img.example/gen", {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    expect(calls[0]?.init?.body).toBe(body);
    // Bytes are copied at the call (the caller may reuse its buffer), then sent as they were.
    const bytes = new TextEncoder().encode(body);
    const call = resilience.fetch("https://img.example/gen", { method: "POST", body: bytes });
    bytes.fill(32);
    await call;
    expect(new TextDecoder().decode(calls[1]?.init?.body as Uint8Array)).toBe(body);
  });

  it("hands the caller's URL to the transport as written when the rule keeps its parameters in the body", async () => {
    const { resilience, calls } = at("medium");
    await resilience.fetch("https://img.example/gen?prompt=a cat", { method: "POST", body: '{"steps":10}' });
    expect(calls[0]?.input).toBe("https://img.example/gen?prompt=a cat");
  });

  it("sends a rewritten query when the query is the only thing that changed", async () => {
    const { resilience, sent } = at("medium", { rules: [{ params: { quality: { query: "q" } } }] });
    await resilience.fetch("https://img.example/gen?q=1&x=y");
    expect((await sent()).url).toBe("https://img.example/gen?q=0.8&x=y");
  });

  it("refuses two rules with the same match, as written or as the URL parser reads it (the second would never apply)", () => {
    const rules = [
      { match: "https://img.example/v1", params: { steps: "first" } },
      { match: "https://IMG.example/v1", params: { steps: "second" } },
    ];
    expect(() => at("medium", { rules })).toThrow(
      "degradation.rules: expected one rule per `match` (a second never applies)",
    );
  });

  it("leaves a resolution that is not a string alone, even an array whose text looks like one", async () => {
    const { resilience, sent } = at("medium");
    const body = JSON.stringify({ resolution: ["1080p"] });
    await resilience.fetch("https://img.example/gen", { method: "POST", body });
    expect((await sent()).text).toBe(body);
  });

  it("reads a features header as a trimmed comma list without empty entries", async () => {
    const { resilience, sent } = at("high", {
      levels: { high: { features: ["core", "extra"] } },
      rules: [{ params: { features: { header: "x-features" } } }],
    });
    await resilience.fetch("https://img.example/gen", { headers: { "x-features": "core, ,enhancements,, extra" } });
    expect((await sent()).headers.get("x-features")).toBe("core,extra");
  });

  it("leaves a features header the level keeps whole as written (only changed values are rewritten)", async () => {
    const { resilience, sent } = at("high", {
      levels: { high: { features: ["all"] } },
      rules: [{ params: { features: { header: "x-features" } } }],
    });
    await resilience.fetch("https://img.example/gen", { headers: { "x-features": "core, ,enhancements,, extra" } });
    // It was written back as "core,enhancements,extra" until the twentieth session.
    expect((await sent()).headers.get("x-features")).toBe("core, ,enhancements,, extra");
  });

  it("writes the features it keeps back into a header as a comma list", async () => {
    const { resilience, sent } = at("high", { rules: [{ params: { features: { header: "x-features" } } }] });
    await resilience.fetch("https://img.example/gen", { headers: { "x-features": "core,extra,enhancements" } });
    expect((await sent()).headers.get("x-features")).toBe("core,enhancements");
  });
});
