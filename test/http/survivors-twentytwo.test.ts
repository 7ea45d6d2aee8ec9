/**
 * Mutants of the twenty-first session's last lines that its tests let live
 * (Stryker over `git diff 2252529 8923320 -- src`), killed here through the
 * public entries: the refusal of a body stream's chunk names its kind
 * (a typed array's class, `object` for null or an object without a
 * constructor, the `typeof` of a primitive); a degradation header target
 * read whole is not split again once the whole was moved (a model named
 * `premium, v2` stays one name), and one left as it is goes out as written
 * (`50,50`, not re-joined as `50, 50`). And, from the forty-second
 * session, the branch no earlier test reached: a chunk whose kind cannot
 * be read still fails the call with "the request body could not be read".
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { createResilience } from "../../src/index.ts";
import { rejection } from "../helpers/settled.ts";

describe("a body stream's chunk that is no bytes, named by kind", () => {
  const refusal = async (chunk: unknown): Promise<string> => {
    const layer = createResilience({ retry: false, fetch: async () => new Response("sent") });
    const body = new ReadableStream<unknown>({ start: (controller) => controller.enqueue(chunk) });
    const request = new Request("https://a.example/v1/jobs", { method: "POST", body, duplex: "half" } as RequestInit);
    return ((await rejection(layer.fetch(request))) as Error).message;
  };

  it.each([
    ["a Uint16Array", () => new Uint16Array(2), "Uint16Array"],
    ["a DataView", () => new DataView(new ArrayBuffer(2)), "DataView"],
    ["null", () => null, "object"],
    ["an object without a constructor", () => Object.create(null), "object"],
    ["a number", () => 7, "number"],
  ])("%s", async (_name, make, kind) => {
    expect(await refusal(make())).toBe(
      `resilience.fetch: a request body stream must yield bytes (Uint8Array), got ${kind}`,
    );
  });
});

describe("a body stream whose chunk cannot even be named", () => {
  it("fails the call with the documented TypeError, the chunk's own error its cause; nothing is sent or counted", async () => {
    let sent = 0;
    const layer = createResilience({
      retry: false,
      fetch: async () => {
        sent++;
        return new Response("sent");
      },
    });
    const hostile = new RangeError("constructor read");
    const chunk = Object.defineProperty({}, "constructor", {
      get() {
        throw hostile;
      },
    });
    const body = new ReadableStream<unknown>({ start: (controller) => controller.enqueue(chunk) });
    const request = new Request("https://a.example/v1/jobs", { method: "POST", body, duplex: "half" } as RequestInit);
    const error = await rejection(layer.fetch(request));
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toMatchObject({ message: "resilience.fetch: the request body could not be read", cause: hostile });
    expect(sent).toBe(0);
    expect(layer.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
  });
});

describe("a degradation { header } target", () => {
  const sentHeader = async (name: string, value: string, models?: string[][]): Promise<string | null> => {
    let seen: string | null = null;
    const layer = createResilience({
      retry: false,
      fetch: async (_input, init) => {
        seen = new Headers(init?.headers).get(name);
        return new Response("ok");
      },
      degradation: degradation({
        ...(models ? { models } : {}),
        rules: [{ params: { steps: { header: "x-steps" }, model: { header: "x-model" } } }],
      }),
    });
    layer.degradation.setLevel("medium");
    await layer.fetch("https://g.example/gen", { headers: { [name]: value } });
    return seen;
  };

  it("moved whole is not split again: a model named `premium, v2` goes out as its ladder's next rung alone", async () => {
    const models = [
      ["premium, v2", "standard"],
      ["premium", "standard", "basic"],
    ];
    expect(await sentHeader("x-model", "premium, v2", models)).toBe("standard");
  });

  it("left as it is, a value sent twice goes out as written", async () => {
    // Under medium's cap of 30 each value stays: `20,20` is not re-spelt `20, 20`.
    expect(await sentHeader("x-steps", "20,20")).toBe("20,20");
    expect(await sentHeader("x-steps", "50,20")).toBe("30, 20");
  });
});
