// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

function stubNavigator(fields: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(fields)) {
    Object.defineProperty(globalThis.navigator, key, { value, configurable: true });
  }
}

afterEach(() => {
  for (const key of ["connection", "deviceMemory"])
    delete (globalThis.navigator as unknown as Record<string, unknown>)[key];
});

describe("browser signals (happy-dom)", () => {
  it("runs in a DOM environment", () => {
    expect(typeof window).toBe("object");
    expect(typeof document.createElement).toBe("function");
  });

  it.each([
    [{ connection: { effectiveType: "slow-2g" } }, "minimal"],
    [{ connection: { effectiveType: "2g" } }, "low"],
    [{ connection: { saveData: true, effectiveType: "4g" } }, "low"],
    [{ connection: { effectiveType: "3g" } }, "medium"],
    [{ deviceMemory: 1 }, "medium"],
    [{ deviceMemory: 2 }, "high"],
    [{ connection: { effectiveType: "4g" }, deviceMemory: 8 }, "full"],
  ])("navigator %o sets a floor of %s", (fields, level) => {
    stubNavigator(fields);
    const resilience = createResilience({ clock: new TestClock(), degradation: degradation() });
    expect(resilience.degradation.evaluate().name).toBe(level);
  });

  it("browserSignals: false ignores them", () => {
    stubNavigator({ connection: { effectiveType: "slow-2g" } });
    const resilience = createResilience({ degradation: degradation({ browserSignals: false }) });
    expect(resilience.degradation.evaluate().name).toBe("full");
  });

  it("fetches and rewrites through the library in a DOM environment", async () => {
    stubNavigator({ connection: { saveData: true } });
    let sent = "";
    const resilience = createResilience({
      degradation: degradation(),
      fetch: async (_input, init) => {
        sent = String(init?.body);
        return new Response("{}");
      },
    });
    resilience.degradation.evaluate();
    await resilience.fetch("https://gen.example/v1", { method: "POST", body: JSON.stringify({ steps: 50 }) });
    expect(JSON.parse(sent)).toEqual({ steps: 20 });
  });
});
