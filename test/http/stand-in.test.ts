import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { keepBody } from "../../src/http/send/discard-body.ts";
import { checkIntegrity } from "../../src/http/send/integrity.ts";
import { standIn } from "../../src/http/send/stand-in.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

describe("a response standing in for another", () => {
  it("reports the url and redirected it was given, and so does every clone of it", async () => {
    const copy = standIn(new Response("body"), "https://api.example/v1/x", true);
    const clone = copy.clone();
    const again = clone.clone();
    for (const r of [copy, clone, again]) expect([r.url, r.redirected]).toEqual(["https://api.example/v1/x", true]);
    expect(await again.text()).toBe("body");
    expect(await copy.text()).toBe("body");
  });

  it("a redirect the layer followed: the answer's clone is redirected, from the last hop's URL", async () => {
    const fetch = async (input: RequestInfo | URL) =>
      String(input).endsWith("/from")
        ? new Response(null, { status: 302, headers: { location: "https://api.example/to" } })
        : new Response("done");
    const resilience = createResilience({ clock: new TestClock(), fetch, redirects: "library" });
    const response = await resilience.fetch("https://api.example/from");
    const clone = response.clone();
    expect([clone.url, clone.redirected]).toEqual(["https://api.example/to", true]);
    expect(await clone.text()).toBe("done");
  });

  // A page's fetch answers a cross-origin call with `type: "cors"`; `new Response` always says "default".
  const cors = (body: string, init?: ResponseInit): Response => asCors(new Response(body, init));
  const asCors = (response: Response): Response => {
    const clone = response.clone.bind(response);
    Object.defineProperty(response, "clone", { value: () => asCors(clone()) });
    return Object.defineProperty(response, "type", { value: "cors" });
  };

  it("reports the type of the response it stands in for, on every clone", async () => {
    const copy = standIn(new Response("body"), "https://api.example/v1/x", false, "cors");
    for (const r of [copy, copy.clone(), copy.clone().clone()]) expect(r.type).toBe("cors");
    // Nothing to change: the copy is given back as it is.
    const same = new Response("x");
    expect(standIn(same, same.url, same.redirected)).toBe(same);
  });

  it("a rebuilt response keeps the type of the one it replaces: a kept body, an integrity check", async () => {
    const kept = await keepBody(cors("kept", { status: 503 }));
    expect([kept?.type, kept?.status, await kept?.text()]).toEqual(["cors", 503, "kept"]);
    const body = "checked";
    const digest = Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body))).toString(
      "base64",
    );
    const checked = await checkIntegrity(cors(body), `sha256-${digest}`);
    expect([checked.type, await checked.text()]).toEqual(["cors", body]);
  });

  it("a chain's answer whose body validate stopped reading (piped on) is of the type fetch gave", async () => {
    const resilience = createResilience({
      clock: new TestClock(),
      // Past this, `validate` stops reading and the answer's body is piped on to the caller.
      maxReplayBytes: 8,
      fetch: async () =>
        cors(JSON.stringify({ ok: true, pad: "x".repeat(64) }), { headers: { "content-type": "application/json" } }),
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            {
              name: "a",
              url: "https://a.example/v1",
              // A Standard Schema that reads the body: the answer is rebuilt from what it read.
              validate: {
                "~standard": {
                  version: 1,
                  vendor: "test",
                  validate: (value: unknown) =>
                    (value as { ok?: boolean }).ok === true ? { value } : { issues: [{ message: "not ok" }] },
                },
              },
            },
          ],
        },
      ]),
    });
    const response = await resilience.fetch("https://a.example/v1/x");
    expect([response.type, response.clone().type]).toEqual(["cors", "cors"]);
    expect(await response.json()).toEqual({ ok: true, pad: "x".repeat(64) });
  });
});
