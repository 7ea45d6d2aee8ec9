/**
 * Imported at module scope inside workerd: if any entry created a timer, an
 * AbortController or a promise on import, workerd would refuse to load this
 * file ("Disallowed operation called within global scope").
 */

import { describe, expect, it } from "vitest";
import * as cloudflare from "../../src/cloudflare/index.ts";
import * as core from "../../src/index.ts";
import * as testing from "../../src/testing/test-clock.ts";

describe("module scope in workerd", () => {
  it("imports every entry cleanly", () => {
    expect(typeof core.createResilience).toBe("function");
    expect(typeof cloudflare.resilientProxy).toBe("function");
    expect(typeof testing.TestClock).toBe("function");
  });

  it("creates a layer inside a request and uses it", async () => {
    const resilience = core.createResilience({ fetch: async () => new Response("ok") });
    expect(await (await resilience.fetch("https://x.example/")).text()).toBe("ok");
  });
});
