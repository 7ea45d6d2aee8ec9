import { readFile } from "node:fs/promises";
import { describe, expect, it, vi } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import {
  ConfigError,
  createResilience,
  type DegradationEvent,
  getResilienceInfo,
  type ResilienceOptions,
} from "../../src/index.ts";
import { json, status, TestClock } from "../../src/testing/index.ts";
import { route, useMswServer } from "../helpers/msw.ts";

const server = useMswServer();
const URL_ = "https://gen.example/v1/images";
const seedBody = { prompt: "a lighthouse", quality: 1.0, resolution: "1080p", steps: 50, model: "premium" };

function setup(
  options: Omit<ResilienceOptions, "degradation"> & { degradation?: ReturnType<typeof degradation> } = {},
) {
  const clock = new TestClock(0);
  const resilience = createResilience({ clock, degradation: degradation(), ...options });
  const events: DegradationEvent[] = [];
  resilience.on("degradation", (e) => events.push(e));
  return { clock, resilience, events };
}

describe("request rewriting by level", () => {
  it("rewrites the guide's fields at the top of a JSON body by default; the upstream sees it", async () => {
    const upstream = route(server, "POST", URL_, json({ ok: true }));
    const { resilience, events } = setup();
    resilience.degradation.setLevel("medium", "testing");
    const res = await resilience.fetch(URL_, {
      method: "POST",
      body: JSON.stringify(seedBody),
      headers: { "content-type": "application/json" },
    });
    expect(JSON.parse(upstream.bodies[0] as string)).toEqual({
      prompt: "a lighthouse",
      quality: 0.8,
      resolution: "720p",
      steps: 30,
      model: "standard",
    });
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
    expect(events).toEqual([{ from: "full", to: "medium", percentage: 60, reason: "testing" }]);
    expect(resilience.health().degradationLevel).toBe("medium");
  });

  it("leaves requests untouched at full", async () => {
    const upstream = route(server, "POST", URL_, json({}));
    const { resilience } = setup();
    const body = JSON.stringify({ ...seedBody, resolution: "1100p" });
    const res = await resilience.fetch(URL_, { method: "POST", body });
    expect(upstream.bodies[0]).toBe(body);
    expect(getResilienceInfo(res)?.degradationLevel).toBe("full");
  });

  it("follows rules: JSON body paths, query parameters and headers, per route", async () => {
    const upstream = route(server, "POST", "https://img.example/v2/generate", json({}));
    const { resilience } = setup({
      degradation: degradation({
        levelHeader: "x-degradation-level",
        rules: [
          {
            match: "https://img.example/v2",
            params: {
              steps: "parameters.num_inference_steps",
              resolution: { body: "parameters.size" },
              quality: { query: "q" },
              model: { header: "x-model" },
            },
          },
        ],
      }),
    });
    resilience.degradation.setLevel("low");
    await resilience.fetch("https://img.example/v2/generate?q=0.9&keep=1", {
      method: "POST",
      headers: { "x-model": "premium", "content-type": "application/json" },
      body: JSON.stringify({ prompt: "p", parameters: { num_inference_steps: 40, size: "1024x768", guidance: 7 } }),
    });
    const request = upstream.requests[0] as Request;
    expect(JSON.parse(upstream.bodies[0] as string)).toEqual({
      prompt: "p",
      parameters: { num_inference_steps: 20, size: "816x608", guidance: 7 },
    });
    expect(new URL(request.url).searchParams.get("q")).toBe("0.54");
    expect(new URL(request.url).searchParams.get("keep")).toBe("1");
    expect(request.headers.get("x-model")).toBe("basic");
    expect(request.headers.get("x-degradation-level")).toBe("low");
  });

  it("rules: [] turns rewriting off; non-JSON bodies are left alone", async () => {
    const upstream = route(server, "POST", URL_, json({}));
    const off = setup({ degradation: degradation({ rules: [] }) });
    off.resilience.degradation.setLevel("minimal");
    await off.resilience.fetch(URL_, { method: "POST", body: JSON.stringify(seedBody) });
    expect(JSON.parse(upstream.bodies[0] as string)).toEqual(seedBody);
    const on = setup();
    on.resilience.degradation.setLevel("minimal");
    await on.resilience.fetch(URL_, { method: "POST", body: new URLSearchParams({ steps: "50" }) });
    expect(upstream.bodies[1]).toBe("steps=50");
  });

  it("keeps prototype keys in bodies as inert data", async () => {
    const upstream = route(server, "POST", URL_, json({}));
    const { resilience } = setup();
    resilience.degradation.setLevel("medium");
    const body =
      '{"__proto__": {"steps": 5, "polluted": true}, "constructor": {"prototype": {"polluted": true}}, "steps": 50}';
    await resilience.fetch(URL_, { method: "POST", body, headers: { "content-type": "application/json" } });
    const sent = JSON.parse(upstream.bodies[0] as string);
    expect(sent.steps).toBe(30);
    expect(Object.hasOwn(sent, "__proto__")).toBe(true);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect((Object.prototype as { steps?: number }).steps).toBeUndefined();
  });

  it("refuses rule paths that name a prototype", () => {
    for (const path of ["__proto__.steps", "a.constructor.b", "prototype", "a..b"]) {
      expect(() => createResilience({ degradation: degradation({ rules: [{ params: { steps: path } }] }) })).toThrow(
        ConfigError,
      );
    }
    expect(() =>
      createResilience({ degradation: degradation({ rules: [{ params: { steps: { body: "__proto__" } } }] }) }),
    ).toThrow(/degradation\.rules\.0\.params\.steps/);
  });
});

describe("automatic triggers", () => {
  it("a burst of failures steps the level down within stepInterval, health steps it back up with hysteresis", async () => {
    let failing = true;
    route(server, "GET", URL_, (request, info) => (failing ? status(500) : json({}))(request, info));
    const { clock, resilience, events } = setup({
      retry: false,
      breaker: false,
      degradation: degradation({ minSamples: 10, stepInterval: 5_000, restoreAfter: 20_000 }),
    });
    for (let i = 0; i < 10; i++) await resilience.fetch(URL_);
    await clock.advance(1_000);
    await resilience.fetch(URL_);
    expect(resilience.degradation.currentLevel()).toMatchObject({
      name: "high",
      reason: expect.stringMatching(/error rate/),
    });
    for (let t = 0; t < 5; t++) {
      await clock.advance(1_000);
      await resilience.fetch(URL_);
    }
    expect(resilience.degradation.currentLevel().name).toBe("medium");

    failing = false;
    await clock.advance(60_000); // the failures leave the 60 s window
    const path: string[] = [];
    for (let t = 0; t < 60; t++) {
      await clock.advance(1_000);
      await resilience.fetch(URL_);
      const name = resilience.degradation.currentLevel().name;
      if (path[path.length - 1] !== name) path.push(name);
    }
    expect(path).toEqual(["medium", "high", "full"]);
    expect(events.map((e) => e.to)).toEqual(["high", "medium", "high", "full"]);
  });

  it("p95 latency above responseTime degrades", async () => {
    const clock = new TestClock();
    // Every call takes 2 s on the injected clock.
    const slow = () => new Promise<Response>((resolve) => clock.setTimer(() => resolve(new Response("{}")), 2_000));
    const resilience = createResilience({
      clock,
      fetch: slow,
      degradation: degradation({ minSamples: 5, triggers: { responseTime: 1_000 } }),
    });
    for (let i = 0; i < 6; i++) await clock.run(resilience.fetch(URL_));
    expect(resilience.degradation.currentLevel()).toMatchObject({
      name: "high",
      reason: expect.stringMatching(/p95 latency 2000 ms > 1000 ms/),
    });
  });

  it("configureTriggers replaces thresholds and validates them", () => {
    const { resilience } = setup();
    resilience.degradation.configureTriggers({ errorRate: 0.5 });
    expect(() => resilience.degradation.configureTriggers({ errorRate: 2 })).toThrow(
      /degradation\.triggers\.errorRate/,
    );
    expect(() => resilience.degradation.configureTriggers({ latency: 1 } as never)).toThrow(/unknown option "latency"/);
  });

  it("manual control: degrade, restore, setLevel, currentLevel", () => {
    const { resilience, clock } = setup();
    expect(resilience.degradation.currentLevel()).toEqual({
      name: "full",
      percentage: 100,
      since: 0,
      reason: "initial",
      pinned: false,
    });
    resilience.degradation.degrade("High system load detected");
    expect(resilience.degradation.currentLevel()).toMatchObject({
      name: "high",
      percentage: 80,
      reason: "High system load detected",
    });
    resilience.degradation.restore();
    expect(resilience.degradation.currentLevel().name).toBe("full");
    resilience.degradation.restore();
    expect(resilience.degradation.currentLevel().name).toBe("full");
    for (let i = 0; i < 9; i++) resilience.degradation.degrade();
    expect(resilience.degradation.currentLevel().name).toBe("minimal");
    expect(() => resilience.degradation.setLevel("ultra" as never)).toThrow(
      /expected one of "full", "high", "medium", "low", "minimal"/,
    );
    expect(clock.now()).toBe(0);
  });
});

/** docs/degradation.md with its whitespace folded, for the sentences the tests below assert. */
const guide = async () =>
  (await readFile(new URL("../../docs/degradation.md", import.meta.url), "utf8")).replace(/\s+/g, " ");

describe("model ladders", () => {
  it("moves a name found in two ladders down the first that holds it, as degradation.md says", async () => {
    expect(await guide()).toContain(
      "a name twice in one ladder is a `ConfigError`, and a name in two ladders moves down the first that holds it",
    );
    const resilience = createResilience({
      degradation: degradation({
        models: [
          ["large", "shared", "small"],
          ["shared", "other"],
        ],
      }),
    });
    resilience.degradation.setLevel("medium");
    expect(resilience.degradation.adjust({ model: "shared" }).model).toBe("small");
    expect(resilience.degradation.adjust({ model: "large" }).model).toBe("shared");
    expect(resilience.degradation.adjust({ model: "other" }).model).toBe("other");
  });
});

describe("a relative match", () => {
  /** The URL a call at `medium` sends, with a rule whose `match` is `/v1`. */
  const sent = async () => {
    const seen: string[] = [];
    const layer = createResilience({
      retry: false,
      degradation: degradation({ rules: [{ match: "/v1", params: { steps: { query: "steps" } } }] }),
      fetch: async (input) => {
        seen.push(String(input instanceof Request ? input.url : input));
        return new Response("ok");
      },
    });
    layer.degradation.setLevel("medium");
    await layer.fetch("https://app.example/v1/images?steps=50");
    return seen[0];
  };

  it("takes no call outside a page, and is read against the page's address in one, as degradation.md says", async () => {
    expect(await guide()).toContain(
      "a relative one, `/v1`, is read against the page's address when `degradation({…})` is called, and outside a page, where a call's URL is never relative, takes no call",
    );
    expect(await sent()).toBe("https://app.example/v1/images?steps=50");
    vi.stubGlobal("location", { href: "https://app.example/page" });
    try {
      expect(await sent()).toBe("https://app.example/v1/images?steps=30");
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe("setLevel to the level it is at", () => {
  it("pins it with the new reason and keeps since, with no event, as degradation.md says", async () => {
    expect(await guide()).toContain(
      "to the level it is at, it pins it and takes the new reason, and `since` stays when the level was entered",
    );
    const clock = new TestClock(1_000);
    const resilience = createResilience({ clock, degradation: degradation() });
    const events: DegradationEvent[] = [];
    resilience.on("degradation", (event) => events.push(event));
    resilience.degradation.degrade("load");
    await clock.advance(30_000);
    expect(resilience.degradation.setLevel("high", "ops")).toMatchObject({
      name: "high",
      since: 1_000,
      reason: "ops",
      pinned: true,
    });
    expect(events).toHaveLength(1);
  });
});

describe("a features list the level empties", () => {
  it("is sent empty in a body, the query and a header, never dropped, as degradation.md says", async () => {
    expect(await guide()).toContain(
      "a list the level empties is sent empty, never dropped: `[]` in a JSON body, an empty value in the query, `f=`, or a header",
    );
    const sent: string[] = [];
    const layer = (params: Record<string, unknown>) => {
      const resilience = createResilience({
        retry: false,
        degradation: degradation({ rules: [{ params: params as never }] }),
        fetch: async (input, init) => {
          const header = new Headers(init?.headers).get("x-features");
          sent.push(`${String(input)} ${header === null ? "-" : JSON.stringify(header)} ${String(init?.body ?? "-")}`);
          return new Response("ok");
        },
      });
      resilience.degradation.setLevel("minimal");
      return resilience;
    };
    await layer({ features: { query: "f" } }).fetch("https://a.example/v1?f=upscale&f=upscale,hdr&x=1");
    await layer({ features: { header: "x-features" } }).fetch("https://a.example/v1", {
      headers: { "x-features": "upscale" },
    });
    await layer({ features: "features" }).fetch("https://a.example/v1", {
      method: "POST",
      body: JSON.stringify({ features: ["upscale"], n: 1 }),
    });
    expect(sent).toEqual([
      "https://a.example/v1?f=&f=&x=1 - -",
      'https://a.example/v1 "" -',
      'https://a.example/v1 - {"features":[],"n":1}',
    ]);
  });
});
