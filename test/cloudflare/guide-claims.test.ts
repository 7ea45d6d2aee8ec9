import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { stateObject } from "./fake-durable-object.ts";

/**
 * Sentences of docs/cloudflare.md the cfdoc run (test/workers/cfdoc-fiftyeight-attack.test.ts) found the guide
 * silent on, now written into it: each is asserted here as behaviour, and the guide is checked to say it.
 */

const guide = async () =>
  (await readFile(new URL("../../docs/cloudflare.md", import.meta.url), "utf8")).replace(/\s+/g, " ");

const T0 = Date.parse("2026-11-28T00:00:00Z");
const policy = {
  failureThreshold: 2,
  successThreshold: 1,
  timeout: 30_000,
  halfOpenMaxCalls: 1,
  timeWindow: 60_000,
  probeTimeout: 5_000,
  failureRate: null,
  minimumCalls: 20,
};

describe("the object reads a hold's end as sent when it sees under a second", () => {
  it("an isolate 1.5 s ahead whose report spent 1 s on the wire is held 1.5 s past its own spell", async () => {
    // The isolate sends at its T0 + 1.5 s (the object's T0); the object reads it at its T0 + 1 s: it sees -0.5 s.
    const clock = new TestClock(T0 + 1_000);
    const { post } = stateObject(clock);
    const sentAt = T0 + 1_500;
    const res = await post("/report", { policy, ok: 0, fail: 0, holdUntil: sentAt + 30_000, sentAt, reason: "trip" });
    const verdict = (await res.json()) as { state: string; openUntil: number };
    expect(verdict.state).toBe("open");
    // The isolate's spell ends at its T0 + 31.5 s, the object's T0 + 30 s: the object holds 1.5 s longer.
    expect(verdict.openUntil - (T0 + 30_000)).toBe(1_500);
  });

  it("an isolate 0.5 s behind is held that much shorter", async () => {
    const clock = new TestClock(T0 + 100);
    const { post } = stateObject(clock);
    const sentAt = T0 - 500; // the object's T0, 100 ms on the wire: it sees 0.6 s
    const res = await post("/report", { policy, ok: 0, fail: 0, holdUntil: sentAt + 30_000, sentAt, reason: "trip" });
    const verdict = (await res.json()) as { openUntil: number };
    expect(verdict.openUntil - (T0 + 30_000)).toBe(-500);
  });

  it("the guide says so", async () => {
    expect(await guide()).toContain(
      "the hold's end is read as sent (so an isolate whose clock runs ahead of the object's has the host held that much longer than its spell, which is under a second plus the wire time; one behind it, that much shorter)",
    );
  });
});

describe("x-resilience-endpoint after a redirect the proxy followed", () => {
  it("names the breaker's key of the host first called, as getResilienceInfo's endpoint", async () => {
    const asked: string[] = [];
    const proxy = resilientProxy({
      routes: [{ path: "/gen", upstream: "https://first.example/v1" }],
      resilience: {
        retry: false,
        fetch: async (input: RequestInfo | URL) => {
          const url = new Request(input).url;
          asked.push(url);
          return url.startsWith("https://first.example")
            ? new Response(null, { status: 307, headers: { location: "https://second.example/v1/gen" } })
            : new Response("done");
        },
      },
    });
    const res = await proxy.fetch(new Request("https://proxy.example/gen"), {}, { waitUntil() {} });
    expect([res.status, await res.text()]).toEqual([200, "done"]);
    expect(asked).toEqual(["https://first.example/v1", "https://second.example/v1/gen"]);
    expect(res.headers.get("x-resilience-endpoint")).toBe("first.example");
    expect(await guide()).toContain(
      "`x-resilience-endpoint` (the endpoint's name, else the breaker's key of the host first called, after redirects too, as `getResilienceInfo`'s `endpoint` reads it;",
    );
  });
});

describe("a KV write that fails otherwise than with a 429", () => {
  it("is tried once more too: the guide says so (the behaviour: kv-store-units, 'a refused write is skipped …')", async () => {
    expect(await guide()).toContain(
      "A write KV refuses (its 429: another isolate wrote the key within the second), or that fails otherwise, never reaches a caller; it is tried once more `minPublishInterval` later, inside the same `waitUntil` (which lasts that long),",
    );
  });
});
