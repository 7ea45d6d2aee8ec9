/**
 * docs/testing.md: each builder reads what it is given when it is called, so
 * an edit made afterwards to its options, a `headers` object, `json`'s body,
 * `stream`'s chunks or `sequence`'s faults changes no answer.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type Fault, json, latency, outage, sequence, status, stream, TestClock } from "../../src/testing/index.ts";

const answer = (fault: Fault, attempt = 1) =>
  fault(new Request("https://kit.example/x"), { attempt } as Parameters<Fault>[1]) as Promise<Response>;

describe("builders read their arguments when they are called", () => {
  it("an edit made afterwards changes no answer", async () => {
    const guide = readFileSync(new URL("../../docs/testing.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain(
      "Each builder reads what it is given when it is called: an edit made afterwards to its options, a `headers` object, `json`'s body, `stream`'s chunks or `sequence`'s faults changes no answer.",
    );

    const headers: Record<string, string> = { "x-a": "1" };
    const statusOptions: { retryAfter?: number; body?: string; headers?: Record<string, string> } = {
      retryAfter: 2,
      body: "busy",
      headers,
    };
    const busy = status(503, statusOptions);
    statusOptions.retryAfter = -5;
    statusOptions.body = "changed";
    headers["x-a"] = "2";
    headers["bad name"] = "x";
    const first = await answer(busy);
    expect([first.headers.get("retry-after"), first.headers.get("x-a"), await first.text()]).toEqual([
      "2",
      "1",
      "busy",
    ]);

    const body = { id: 1 };
    const init = { status: 201, headers: { "x-b": "1" } as Record<string, string> };
    const created = json(body, init);
    body.id = 2;
    init.status = 500;
    init.headers["x-b"] = "2";
    const second = await answer(created);
    expect([second.status, second.headers.get("x-b"), await second.json()]).toEqual([201, "1", { id: 1 }]);

    const chunks = ["a", "b"];
    const options: { contentType?: string } = { contentType: "text/plain" };
    const streamed = stream(chunks, options);
    chunks.push("c");
    options.contentType = "text/html";
    const third = await answer(streamed);
    expect([third.headers.get("content-type"), await third.text()]).toEqual(["text/plain", "ab"]);

    const faults = [status(500)];
    const steps = sequence(faults);
    faults[0] = status(502);
    expect((await answer(steps)).status).toBe(500);

    const clock = new TestClock();
    const window = { from: 0, until: 10, clock };
    const down = outage(window, status(503), status(200));
    window.until = 0;
    expect((await answer(down)).status).toBe(503);

    const source: { clock?: TestClock } = { clock };
    const slow = latency(5, status(200), source);
    delete source.clock;
    const waiting = answer(slow);
    await clock.advance(5);
    expect((await waiting).status).toBe(200);
  });
});
