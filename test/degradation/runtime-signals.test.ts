import { afterEach, describe, expect, it, vi } from "vitest";
import { createCpuMeter, readBrowserFloor, readMemoryUsage } from "../../src/degradation/runtime-signals.ts";

afterEach(() => vi.unstubAllGlobals());

const node = (limit: number | undefined) => ({ memoryUsage: () => ({ rss: 512 }), constrainedMemory: () => limit });

describe("memory reading", () => {
  it("reads Node's cgroup limit where there is no performance object at all", () => {
    vi.stubGlobal("performance", undefined);
    vi.stubGlobal("process", node(2_048));
    expect(readMemoryUsage()).toBe(0.25);
  });

  it("passes over a performance.memory whose heap limit is 0 and reads Node's instead", () => {
    vi.stubGlobal("performance", { memory: { usedJSHeapSize: 300, jsHeapSizeLimit: 0 } });
    vi.stubGlobal("process", node(2_048));
    expect(readMemoryUsage()).toBe(0.25);
  });

  it("says nothing for a negative cgroup limit", () => {
    vi.stubGlobal("performance", {});
    vi.stubGlobal("process", node(-2_048));
    expect(readMemoryUsage()).toBeUndefined();
  });
});

describe("CPU meter", () => {
  it("says nothing without a core count, however many readings are taken", () => {
    vi.stubGlobal("process", { cpuUsage: () => ({ user: 1_000, system: 0 }) });
    vi.stubGlobal("navigator", {});
    let now = 0;
    const meter = createCpuMeter(() => now);
    expect(meter()).toBeUndefined();
    now += 1_000;
    expect(meter()).toBeUndefined();
  });

  it("starts measuring once navigator appears, after readings without it", () => {
    vi.stubGlobal("navigator", undefined);
    let used = 0;
    vi.stubGlobal("process", { cpuUsage: () => ({ user: used, system: 0 }) });
    let now = 0;
    const meter = createCpuMeter(() => now);
    expect(meter()).toBeUndefined();
    vi.stubGlobal("navigator", { hardwareConcurrency: 1 });
    expect(meter()).toBeUndefined(); // first reading with a core count
    now += 1_000;
    used += 500_000;
    expect(meter()).toBe(0.5);
  });

  it("starts measuring once process appears, after readings without it", () => {
    vi.stubGlobal("process", undefined);
    vi.stubGlobal("navigator", { hardwareConcurrency: 1 });
    let now = 0;
    const meter = createCpuMeter(() => now);
    expect(meter()).toBeUndefined();
    let used = 0;
    vi.stubGlobal("process", { cpuUsage: () => ({ user: used, system: 0 }) });
    expect(meter()).toBeUndefined(); // first reading with cpuUsage
    now += 1_000;
    used += 250_000;
    expect(meter()).toBe(0.25);
  });
});

describe("browser floor", () => {
  it("ignores a deviceMemory that is not a number", () => {
    for (const deviceMemory of [null, "0.5", "2"]) {
      vi.stubGlobal("navigator", { deviceMemory });
      expect(readBrowserFloor(), String(deviceMemory)).toBe(0);
    }
  });
});
