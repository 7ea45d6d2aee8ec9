/**
 * docs/fallback.md, `respond`: one `Response` handed to two calls at once,
 * before either read it, reaches both as the same object (only the first
 * read of its body succeeds); `clone()` gives each call its own.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { rejection } from "../helpers/settled.ts";

function layerAnswering(respond: () => Response) {
  return createResilience({
    retry: false,
    fetch: async () => new Response(null, { status: 503 }),
    fallback: fallback([
      {
        name: "gen",
        endpoints: [
          { name: "api", url: "https://api.example/v1" },
          { name: "cached", respond },
        ],
      },
    ]),
  });
}

describe("respond: one Response for two calls at once", () => {
  it("reaches both as one object whose body reads once, and clone() gives each its own", async () => {
    const guide = readFileSync(new URL("../../docs/fallback.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain(
      "One `Response` handed to two calls at once, before either read it, reaches both as the same object, and only the first read of its body succeeds: hand each call its own (`cached.clone()`).",
    );
    const cached = new Response("last good image");
    const shared = layerAnswering(() => cached);
    const [a, b] = await Promise.all([
      shared.fetch("https://api.example/v1/img"),
      shared.fetch("https://api.example/v1/img"),
    ]);
    expect(a).toBe(b);
    expect(await a.text()).toBe("last good image");
    expect(await rejection(b.text())).toBeInstanceOf(TypeError);

    const fresh = new Response("last good image");
    const cloned = layerAnswering(() => fresh.clone());
    const [c, d] = await Promise.all([
      cloned.fetch("https://api.example/v1/img"),
      cloned.fetch("https://api.example/v1/img"),
    ]);
    expect([await c.text(), await d.text()]).toEqual(["last good image", "last good image"]);
  });
});
