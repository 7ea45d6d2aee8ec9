import { createResilience, type ResilienceOptions } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { recordEvents, seededRandom, TestClock } from "@storycore/resilient-fetch/testing";
import { afterEach } from "vitest";
import { type Answer, type FakeApi, type Received, startFakeApi } from "./fake-api.ts";

/** Fake APIs for the calling test file, closed after each test. */
export function useFakeApis(): (answer: (request: Received, n: number) => Answer) => Promise<FakeApi> {
  const servers: FakeApi[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  return async (answer) => {
    const server = await startFakeApi(answer);
    servers.push(server);
    return server;
  };
}

/** A layer on a TestClock (backoffs take no real time), with its events recorded. */
export function layer(options: ResilienceOptions = {}) {
  const clock = new TestClock();
  const resilience = createResilience({ clock, random: seededRandom(1), ...options });
  return { clock, resilience, recorder: recordEvents(resilience) };
}

/** A fallback chain from `primary` to `spare` under the path `/v1`. */
export function chain(primary: FakeApi, spare: FakeApi, spareHeaders: Record<string, string> = {}): ResilienceOptions {
  return {
    fallback: fallback([
      {
        name: "api",
        endpoints: [
          { name: "primary", url: `${primary.url}/v1` },
          { name: "spare", url: `${spare.url}/v1`, headers: spareHeaders },
        ],
      },
    ]),
  };
}

export const down: Answer = { status: 503, json: { error: "overloaded" } };
export const job = (from: string): Answer => ({ status: 200, json: { id: "job_1", status: "done", from } });

/**
 * Yields real event-loop turns until `condition()` holds (a fake API has
 * received a request): waiting for an event, not for time. Gives up after
 * 10,000 turns.
 */
export async function until(condition: () => boolean): Promise<void> {
  for (let turns = 0; !condition(); turns++) {
    if (turns > 10_000) throw new Error("until: the condition never held");
    await new Promise((resolve) => setImmediate(resolve));
  }
}
