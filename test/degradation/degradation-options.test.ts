import { describe, expect, it } from "vitest";
import { defaultTriggers, resolveTriggers } from "../../src/degradation/degradation-options.ts";
import { degradation } from "../../src/degradation/index.ts";
import { createResilience } from "../../src/index.ts";

describe("degradation options", () => {
  it("takes each trigger threshold given and keeps the base value of the others", () => {
    expect(resolveTriggers({ memoryUsage: 0.5, cpuUsage: 0.6 }, defaultTriggers)).toEqual({
      ...defaultTriggers,
      memoryUsage: 0.5,
      cpuUsage: 0.6,
    });
    expect(resolveTriggers({ errorRate: 0.2 }, defaultTriggers)).toEqual({ ...defaultTriggers, errorRate: 0.2 });
    expect(resolveTriggers(undefined, defaultTriggers)).toEqual(defaultTriggers);
  });

  it("snaps resolutions down the default ladder, 2160p to 360p", () => {
    const resilience = createResilience({ fetch: async () => new Response("ok"), degradation: degradation() });
    resilience.degradation.setLevel("high"); // scale 0.95
    const at = (resolution: string) => resilience.degradation.adjust({ resolution }).resolution;
    expect(["4320p", "1600p", "1200p", "800p", "540p", "400p", "370p", "300p"].map(at)).toEqual([
      "2160p",
      "1440p",
      "1080p",
      "720p",
      "480p",
      "360p",
      "360p", // scaled below the ladder (351.5): its lowest rung, still lower than 370p
      "300p", // below the whole ladder: left as it is, never raised to 360p
    ]);
  });
});
