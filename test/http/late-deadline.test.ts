import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type Clock, createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

/**
 * A clock whose timers cannot be cleared, as in workerd, where a request
 * cannot clear a timer another request of the isolate set (a call woken by
 * another request's failure settles in that request's turn): a timer the
 * layer meant to clear fires anyway. The call has settled by then; the
 * timer must do nothing.
 */
function unclearable(clock: TestClock): Clock {
  return {
    now: () => clock.now(),
    setTimer: (fn, ms) => {
      clock.setTimer(fn, ms);
      return () => {};
    },
  };
}

describe("a deadline timer that fires after its call settled", () => {
  it("does not abort the response the call gave (its body still reads)", async () => {
    const clock = new TestClock();
    let push: ((text: string) => void) | undefined;
    const layer = createResilience({
      clock: unclearable(clock),
      timeout: { total: 1_000 },
      fetch: async (_input, init) => {
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            init?.signal?.addEventListener("abort", () => controller.error(init.signal?.reason));
            push = (text) => {
              controller.enqueue(new TextEncoder().encode(text));
              controller.close();
            };
          },
        });
        return new Response(body, { status: 200 });
      },
    });
    const response = await layer.fetch("https://api.example/video");
    await clock.advance(1_500);
    await flush();
    push?.("frames");
    expect(await response.text()).toBe("frames");
  });

  it("is what SECURITY.md says of workerd (tested there in test/workers/wake-twentyfour-attack.test.ts)", () => {
    const security = readFileSync(new URL("../../SECURITY.md", import.meta.url), "utf8");
    expect(security).toContain(
      "in workerd, a call woken when another request of the isolate opens its host's breaker settles at once, but workerd lets only the request that set a timer clear it: the call's backoff and deadline timers fire later and do nothing (its response and body are left alone)",
    );
  });
});
