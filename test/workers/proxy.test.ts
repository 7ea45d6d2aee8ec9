import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "./worker.ts";

async function call(path: string, init?: RequestInit, extraEnv: Record<string, string> = {}) {
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`https://proxy.example${path}`, init), { ...env, ...extraEnv }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("resilientProxy in workerd", () => {
  it("forwards a route to its upstream", async () => {
    const res = await call("/v1/text/complete?x=1");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ from: "primary", path: "/v1/text/complete", query: "?x=1" });
    expect(res.headers.get("x-resilience-endpoint")).toBe("primary.example");
  });

  it("fails over down a chain, with the spare's own key and no caller credentials across origins", async () => {
    const res = await call("/v1/video/down/jobs", {
      method: "POST",
      body: '{"prompt":"x"}',
      headers: { authorization: "Bearer caller" },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { from: string; authorization: string | null };
    expect(body.from).toBe("spare");
    expect(body.authorization).toBe("Bearer spare-key");
    expect(res.headers.get("x-resilience-endpoint")).toBe("spare");
  });

  it("serves health as JSON behind its bearer token", async () => {
    expect((await call("/__resilience/health")).status).toBe(401);
    expect((await call("/__resilience/health", { headers: { authorization: "Bearer wrong-token" } })).status).toBe(401);
    const res = await call("/__resilience/health", { headers: { authorization: "Bearer test-token" } });
    expect(res.status).toBe(200);
    const health = (await res.json()) as {
      status: string;
      breakers: Record<string, unknown>;
      fallback: Record<string, unknown>;
    };
    expect(health.fallback).toHaveProperty("video");
    expect(JSON.stringify(health)).not.toContain("caller");
    expect(JSON.stringify(health)).not.toContain("spare-key");
  });

  it("answers 404 for an unknown path", async () => {
    expect((await call("/nowhere")).status).toBe(404);
  });
});
