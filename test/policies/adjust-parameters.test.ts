import { describe, expect, it } from "vitest";
import { defaultLevels, degradation } from "../../src/degradation/index.ts";
import { createResilience, type LevelName } from "../../src/index.ts";
import { adjustParameters, type GenerationParams } from "../../src/policies/index.ts";

const table = {
  resolutions: ["2160p", "1440p", "1080p", "720p", "480p", "360p"],
  sizeMultiple: 8,
  models: [["premium", "standard", "basic"]],
};
const seed = { quality: 1.0, resolution: "1080p", steps: 50, model: "premium" };

describe("adjust(params): the StoryCore-Engine guide's parameter table", () => {
  it("turns the StoryCore-Engine guide's example into exactly its answer at medium", () => {
    const resilience = createResilience({ degradation: degradation() });
    resilience.degradation.setLevel("medium");
    expect(resilience.degradation.adjust(seed)).toEqual({
      quality: 0.8,
      resolution: "720p",
      steps: 30,
      model: "standard",
    });
  });

  it.each<[LevelName, object]>([
    [
      "full",
      { quality: 1, resolution: "1080p", steps: 50, model: "premium", features: ["core", "enhancements", "upscale"] },
    ],
    ["high", { quality: 0.9, resolution: "720p", steps: 50, model: "premium", features: ["core", "enhancements"] }],
    ["medium", { quality: 0.8, resolution: "720p", steps: 30, model: "standard", features: ["core"] }],
    ["low", { quality: 0.6, resolution: "720p", steps: 20, model: "basic", features: [] }],
    ["minimal", { quality: 0.4, resolution: "720p", steps: 10, model: "basic", features: [] }],
  ])("at %s", (level, expected) => {
    expect(
      adjustParameters({ ...seed, features: ["core", "enhancements", "upscale"] }, defaultLevels[level], table),
    ).toEqual(expected);
  });

  it("snaps resolutions down the ladder and scales WxH sizes to the size multiple", () => {
    const low = defaultLevels.low;
    expect(adjustParameters({ resolution: "2160p" }, low, table).resolution).toBe("1440p");
    expect(adjustParameters({ resolution: "360p" }, low, table).resolution).toBe("360p");
    expect(adjustParameters({ resolution: "1024x1024" }, defaultLevels.medium, table).resolution).toBe("920x920");
    expect(
      adjustParameters({ resolution: "1024x576" }, defaultLevels.medium, { ...table, sizeMultiple: 64 }).resolution,
    ).toBe("896x512");
    expect(adjustParameters({ resolution: "ultra" }, low, table).resolution).toBe("ultra");
  });

  it("keeps features of the level's tiers only, and unknown fields untouched", () => {
    const out = adjustParameters(
      { features: ["basic", "core", 7], prompt: "a cat", seed: 42, nested: { a: 1 } },
      defaultLevels.low,
      table,
    );
    expect(out).toEqual({ features: ["basic"], prompt: "a cat", seed: 42, nested: { a: 1 } });
  });

  it("leaves values it does not understand alone and does not mutate its input", () => {
    const input = { quality: "best", steps: "many", model: "custom-v2" } as unknown as GenerationParams;
    expect(adjustParameters(input, defaultLevels.minimal, table)).toEqual(input);
    const params = { ...seed };
    adjustParameters(params, defaultLevels.minimal, table);
    expect(params).toEqual(seed);
  });

  it("treats __proto__, constructor and prototype keys as data", () => {
    const params = JSON.parse(
      '{"quality": 1, "__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}',
    );
    const out = adjustParameters(params, defaultLevels.medium, table);
    expect(out.quality).toBe(0.8);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect((out as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("validates adjust's argument", () => {
    const resilience = createResilience({ degradation: degradation() });
    expect(() => resilience.degradation.adjust(null as never)).toThrow(
      /adjust\(params\): expected an object, got null/,
    );
  });
});
