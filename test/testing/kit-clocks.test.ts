import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createResilience, isRetryExhaustedError } from "../../src/index.ts";
import { latency, outage, status, TestClock } from "../../src/testing/index.ts";
import { rejection } from "../helpers/settled.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

/** A layer whose transport is `fault` (the kit's faults take a Request and the attempt). */
function layerOver(fault: ReturnType<typeof status>) {
  let attempt = 0;
  return createResilience({
    retry: false,
    fetch: async (input, init) => fault(new Request(input as RequestInfo, init), { attempt: ++attempt }) as Response,
  });
}

describe("the testing kit reads a clock of yours as the layer does", () => {
  it("outage: a reading that is no finite number fails the request with a TypeError naming it", async () => {
    let reading: unknown = 1_000;
    const time = new TestClock();
    const clock = { now: () => reading as number, setTimer: time.setTimer.bind(time) };
    const layer = layerOver(outage({ from: 0, until: 5_000, clock }, status(503), status(200)));
    expect((await layer.fetch("https://api.example/a")).status).toBe(503);
    reading = Number.NaN;
    const error = await rejection(layer.fetch("https://api.example/a"));
    expect(isRetryExhaustedError(error) && error.cause).toEqual(
      new TypeError("clock.now() must answer a finite number, got NaN"),
    );
    reading = "1000";
    const text = await rejection(layer.fetch("https://api.example/a"));
    expect((text as Error).cause).toEqual(new TypeError("clock.now() must answer a finite number, got type string"));
  });

  it("latency: an abort during the wait settles at once, even when setTimer returns no cancel function", async () => {
    const time = new TestClock();
    const fired: string[] = [];
    const clock = {
      now: () => time.now(),
      setTimer: (fn: () => void, ms: number) => {
        time.setTimer(fn, ms);
        return undefined as unknown as () => void;
      },
    };
    let attempt = 0;
    const fault = latency(1_000, status(200), { clock });
    const controller = new AbortController();
    const { value, unhandled } = await watchUnhandled(async () => {
      const answer = Promise.resolve(
        fault(new Request("https://api.example/l", { signal: controller.signal }), { attempt: ++attempt }),
      ).then((response) => {
        fired.push(response.type);
        return response.type;
      });
      await time.waitForTimers(1);
      controller.abort(new Error("left"));
      const settled = await answer;
      // The wait's timer runs out later and does nothing: no second answer.
      await time.advance(1_000);
      return settled;
    });
    // An abort ends the wait as a network error (testing.md), at once.
    expect(value).toBe("error");
    expect(fired).toEqual(["error"]);
    expect(unhandled).toEqual([]);
  });

  it("docs/testing.md says so", () => {
    const doc = readFileSync(new URL("../../docs/testing.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain(
      "A clock of yours given to `latency`, `stream` or `outage` is read as the layer reads one: a wait an abort cancels does nothing even when your `setTimer` returns no function that cancels, and `outage` checks each reading",
    );
  });
});
