import { afterEach, describe, expect, it, vi } from "vitest";
import { createCpuMeter, readBrowserFloor, readMemoryUsage } from "../../src/degradation/runtime-signals.ts";

afterEach(() => vi.unstubAllGlobals());

describe("runtime probes", () => {
  it("reads Chromium's performance.memory as used / limit", () => {
    vi.stubGlobal("performance", { memory: { usedJSHeapSize: 300, jsHeapSizeLimit: 1_000 } });
    expect(readMemoryUsage()).toBe(0.3);
  });

  it("reads Node's rss against a cgroup limit, and nothing without a real limit", () => {
    vi.stubGlobal("performance", {});
    vi.stubGlobal("process", { memoryUsage: () => ({ rss: 512 }), constrainedMemory: () => 2_048 });
    expect(readMemoryUsage()).toBe(0.25);
    for (const limit of [0, undefined, Number.MAX_SAFE_INTEGER]) {
      vi.stubGlobal("process", { memoryUsage: () => ({ rss: 512 }), constrainedMemory: () => limit });
      expect(readMemoryUsage(), String(limit)).toBeUndefined();
    }
    vi.stubGlobal("process", { memoryUsage: () => ({ rss: 512 }) });
    expect(readMemoryUsage()).toBeUndefined();
  });

  it("treats a probe that throws as absent", () => {
    vi.stubGlobal("performance", {});
    vi.stubGlobal("process", {
      memoryUsage: () => {
        throw new Error("not implemented");
      },
      constrainedMemory: () => 1_000,
    });
    expect(readMemoryUsage()).toBeUndefined();
  });

  it("measures CPU as the share of all cores used between two readings", () => {
    let used = 0;
    const cpuUsage = vi.fn(() => ({ user: used, system: used / 2 }));
    vi.stubGlobal("process", { cpuUsage });
    vi.stubGlobal("navigator", { hardwareConcurrency: 2 });
    let now = 1_000;
    const meter = createCpuMeter(() => now);
    expect(meter()).toBeUndefined(); // no previous reading yet
    now += 1_000;
    used = 1_000_000; // 1 s user + 0.5 s system over 1 s on 2 cores
    expect(meter()).toBe(0.75);
    expect(meter()).toBeUndefined(); // no time passed
    now += 100;
    used = 10_000_000;
    expect(meter()).toBe(1); // capped
  });

  it("gives up on a CPU probe that throws, and does not ask again", () => {
    const cpuUsage = vi.fn(() => {
      throw new Error("not implemented"); // workerd's node compatibility
    });
    vi.stubGlobal("process", { cpuUsage });
    vi.stubGlobal("navigator", { hardwareConcurrency: 4 });
    const meter = createCpuMeter(() => 0);
    expect(meter()).toBeUndefined();
    expect(meter()).toBeUndefined();
    expect(cpuUsage).toHaveBeenCalledTimes(1);
  });

  it("says nothing about CPU without a core count or cpuUsage", () => {
    vi.stubGlobal("process", { cpuUsage: () => ({ user: 0, system: 0 }) });
    vi.stubGlobal("navigator", {});
    expect(createCpuMeter(() => 0)()).toBeUndefined();
    vi.stubGlobal("process", {});
    vi.stubGlobal("navigator", { hardwareConcurrency: 2 });
    expect(createCpuMeter(() => 0)()).toBeUndefined();
  });

  it("maps browser hints to a floor: the strictest signal wins", () => {
    const floor = (nav: object | undefined) => {
      vi.stubGlobal("navigator", nav);
      return readBrowserFloor();
    };
    expect(floor(undefined)).toBe(0);
    expect(floor({})).toBe(0);
    expect(floor({ connection: { effectiveType: "4g" } })).toBe(0);
    expect(floor({ connection: { effectiveType: "3g" } })).toBe(2);
    expect(floor({ connection: { effectiveType: "2g" } })).toBe(3);
    expect(floor({ connection: { effectiveType: "slow-2g", saveData: true } })).toBe(4);
    expect(floor({ connection: { effectiveType: "4g", saveData: true } })).toBe(3);
    expect(floor({ connection: { saveData: false } })).toBe(0);
    expect(floor({ deviceMemory: 0.5 })).toBe(2);
    expect(floor({ deviceMemory: 1 })).toBe(2);
    expect(floor({ deviceMemory: 2 })).toBe(1);
    expect(floor({ deviceMemory: 4 })).toBe(0);
    expect(floor({ deviceMemory: 2, connection: { effectiveType: "2g" } })).toBe(3);
    expect(floor({ deviceMemory: 1, connection: { effectiveType: "slow-2g" } })).toBe(4);
  });
});
