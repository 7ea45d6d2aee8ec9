import { readFileSync } from "node:fs";
import { setupServer } from "msw/node";
import { describe, expect, it, vi } from "vitest";
import { createResilience, isRetryExhaustedError } from "../../src/index.ts";
import { latency, outage, status, TestClock, upstream } from "../../src/testing/index.ts";
import { rejection } from "../helpers/settled.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

describe("the testing kit reads a clock of yours as the layer does", () => {
  it("outage: a reading that is no finite number fails the request as a network error, the TypeError reported", async () => {
    const server = setupServer();
    server.listen();
    const reported = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      let reading: unknown = 1_000;
      const time = new TestClock();
      const clock = { now: () => reading as number, setTimer: time.setTimer.bind(time) };
      const api = upstream(
        "GET",
        "https://api.example/a",
        outage({ from: 0, until: 5_000, clock }, status(503), status(200)),
      );
      server.use(api.handler);
      const layer = createResilience({ retry: false, clock: time });
      expect((await layer.fetch("https://api.example/a")).status).toBe(503);
      reading = Number.NaN;
      const error = await rejection(layer.fetch("https://api.example/a"));
      // MSW would answer a throw with a 500, the API's answer to the layer: a network error instead.
      expect(isRetryExhaustedError(error) && (error.cause as Error).name).toBe("TypeError");
      reading = "1000";
      expect(isRetryExhaustedError(await rejection(layer.fetch("https://api.example/a")))).toBe(true);
      expect(reported.mock.calls.map(([e]) => String(e))).toEqual([
        "TypeError: clock.now() must answer a finite number, got NaN",
        'TypeError: clock.now() must answer a finite number, got "1000"',
      ]);
      expect(api.count()).toBe(3);
    } finally {
      reported.mockRestore();
      server.close();
    }
  });

  it("latency: a setTimer of yours that throws fails the request as a network error, the error reported", async () => {
    const doc = readFileSync(new URL("../../docs/testing.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain(
      "A `latency` whose clock's `setTimer` throws fails the request the same way, the error reported.",
    );
    const server = setupServer();
    server.listen();
    const reported = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const broken = new Error("setTimer broke");
      const clock = {
        now: () => 0,
        setTimer: (): (() => void) => {
          throw broken;
        },
      };
      const api = upstream("GET", "https://api.example/slow", latency(50, status(200), { clock }));
      server.use(api.handler);
      const layer = createResilience({ retry: false });
      const error = await rejection(layer.fetch("https://api.example/slow"));
      expect(isRetryExhaustedError(error) && (error.cause as Error).name).toBe("TypeError");
      expect(reported.mock.calls.map(([e]) => e)).toEqual([broken]);
    } finally {
      reported.mockRestore();
      server.close();
    }
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
    expect(doc).toContain(
      "fails the request as a network error (`HttpResponse.error()`: MSW answers a handler's throw with a 500, which the layer would take for the API's own) and reports the `TypeError` naming it (`clock.now() must answer a finite number, got NaN`) with `console.error`, as MSW reports a handler's exception",
    );
  });
});
