import { describe, expect, it } from "vitest";
import { createResilience, isCircuitOpenError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

/**
 * docs/breakers.md: "A call to a half-open host queues like any other …, and
 * so does a call already queued when its host opens: each reads the breaker
 * again when it gets its slot, and is refused then if the host is open or
 * its probe slots are all taken."
 */
function hungLayer(clock: TestClock) {
  const sent: string[] = [];
  const answers: Array<(response: Response) => void> = [];
  const layer = createResilience({
    clock,
    retry: { maxAttempts: 1 },
    breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1, successThreshold: 1 },
    bulkhead: { maxConcurrent: 1, maxQueue: 5 },
    fetch: (input) => {
      sent.push(String(input));
      return new Promise<Response>((resolve) => answers.push(resolve));
    },
  });
  const answer = async (status: number) => {
    answers.shift()?.(new Response(String(status), { status }));
    await flush();
  };
  return { layer, sent, answer };
}

const outcome = (call: Promise<Response>) =>
  call.then(
    (response) => response.status,
    (error: unknown) => (isCircuitOpenError(error) ? "CircuitOpenError" : String(error)),
  );

describe("a call queued in a host's bulkhead reads the breaker when it gets its slot", () => {
  it("behind a half-open host's one probe: refused when the probe fails, sent when it closes the host", async () => {
    const clock = new TestClock();
    const { layer, sent, answer } = hungLayer(clock);
    const opening = outcome(layer.fetch("https://h.example/open"));
    await flush();
    await answer(503);
    expect(await opening).toBe(503);
    await clock.advance(1_000);

    const probe = outcome(layer.fetch("https://h.example/probe"));
    const queued = outcome(layer.fetch("https://h.example/queued"));
    await flush();
    // Queued, not refused: the probe may close the host before the slot frees.
    expect(layer.health().breakers["h.example"]).toMatchObject({ state: "half_open", active: 1, queued: 1 });
    await answer(503);
    expect(await probe).toBe(503);
    expect(await queued).toBe("CircuitOpenError");
    expect(sent).toEqual(["https://h.example/open", "https://h.example/probe"]);

    await clock.advance(1_000);
    const secondProbe = outcome(layer.fetch("https://h.example/probe2"));
    const behind = outcome(layer.fetch("https://h.example/behind"));
    await flush();
    await answer(200);
    expect(await secondProbe).toBe(200);
    await answer(200);
    expect(await behind).toBe(200);
    expect(sent.slice(2)).toEqual(["https://h.example/probe2", "https://h.example/behind"]);
  });

  it("queued while its host was closed, refused when it gets its slot after the host opened", async () => {
    const clock = new TestClock();
    const { layer, sent, answer } = hungLayer(clock);
    const first = outcome(layer.fetch("https://h.example/first"));
    const queued = outcome(layer.fetch("https://h.example/queued"));
    await flush();
    expect(layer.health().breakers["h.example"]).toMatchObject({ state: "closed", queued: 1 });
    await answer(503);
    expect(await first).toBe(503);
    expect(await queued).toBe("CircuitOpenError");
    expect(sent).toEqual(["https://h.example/first"]);
  });
});
