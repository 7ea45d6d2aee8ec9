import { isCircuitOpenError } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import Replicate from "replicate";
import { describe, expect, it } from "vitest";
import { createReplicate } from "../../examples/recipes/replicate.ts";
import type { Answer, FakeApi } from "./fake-api.ts";
import { layer, useFakeApis } from "./harness.ts";

const prediction = (status: string): Answer => ({
  status: status === "starting" ? 201 : 200,
  json: {
    id: "p1",
    version: "v1",
    status,
    input: { prompt: "a cat" },
    output: status === "succeeded" ? ["https://replicate.delivery/p1/out.png"] : null,
    urls: {
      get: "https://api.replicate.com/v1/predictions/p1",
      cancel: "https://api.replicate.com/v1/predictions/p1/cancel",
    },
  },
});
const down: Answer = { status: 503, json: { detail: "Service Unavailable" } };
const GET = "GET /v1/predictions/p1";
const CREATE = "POST /v1/predictions";

const fakeApi = useFakeApis();
const api = (answer: (method: string, n: number) => Answer): Promise<FakeApi> => fakeApi((r, n) => answer(r.method, n));

describe("recipe: replicate", () => {
  it("a GET to a host that stays down: the layer's 3 attempts, not 6 × 3; the client's ApiError", async () => {
    const server = await api(() => down);
    const { clock, resilience } = layer();
    const client = createReplicate(resilience, { auth: "r8_test", baseUrl: `${server.url}/v1` });

    const error = await clock.run(client.predictions.get("p1")).catch((e: unknown) => e);

    expect((error as { response?: Response }).response?.status).toBe(503);
    expect((error as Error).name).toBe("ApiError");
    expect(server.count(GET)).toBe(3);
  });

  it("on the bare layer, the client's own retries multiply the layer's: 18 requests (breaker off)", async () => {
    const server = await api(() => down);
    // Breaker off so the count does not depend on when it would open.
    const { clock, resilience } = layer({ breaker: false });
    const client = new Replicate({ auth: "r8_test", baseUrl: `${server.url}/v1`, fetch: resilience.fetch });

    await clock.run(client.predictions.get("p1")).catch(() => undefined);

    expect(server.count(GET)).toBe(18);
  });

  it("retries a 503 on create in the layer, once, then polls the prediction", async () => {
    const server = await api((method, n) =>
      method === "POST" ? (n === 1 ? down : prediction("starting")) : prediction("succeeded"),
    );
    const { clock, resilience, recorder } = layer();
    const client = createReplicate(resilience, { auth: "r8_test", baseUrl: `${server.url}/v1` });

    const created = await clock.run(client.predictions.create({ version: "v1", input: { prompt: "a cat" } }));
    const done = await clock.run(client.predictions.get(created.id));

    expect(created.status).toBe("starting");
    expect(done.output).toEqual(["https://replicate.delivery/p1/out.png"]);
    expect(server.count(CREATE)).toBe(2);
    expect(recorder.of("retry")).toHaveLength(1);
  });

  it("falls back to a second endpoint (a proxy or another region) when the first stays down", async () => {
    const primary = await api(() => down);
    const spare = await api(() => prediction("succeeded"));
    const { clock, resilience, recorder } = layer({
      fallback: fallback([
        {
          name: "replicate",
          endpoints: [
            { name: "primary", url: `${primary.url}/v1` },
            { name: "spare", url: `${spare.url}/v1`, headers: { authorization: "Bearer r8_spare" } },
          ],
        },
      ]),
    });
    const client = createReplicate(resilience, { auth: "r8_test", baseUrl: `${primary.url}/v1` });

    const done = await clock.run(client.predictions.get("p1"));

    expect(done.status).toBe("succeeded");
    expect(primary.count(GET)).toBe(3);
    expect(spare.count(GET)).toBe(1);
    expect(spare.requests[0]?.headers.authorization).toBe("Bearer r8_spare");
    recorder.expectFallback("primary", "spare");
  });

  it("an open breaker: CircuitOpenError reaches the caller unwrapped, asked of the layer once, not 6 times", async () => {
    const server = await api(() => down);
    const { clock, resilience, recorder } = layer({ breaker: { failureThreshold: 3 } });
    const client = createReplicate(resilience, { auth: "r8_test", baseUrl: `${server.url}/v1` });
    await clock.run(client.predictions.get("p1")).catch(() => undefined);
    const callsBefore = recorder.of("request").length;

    const error = await clock.run(client.predictions.get("p1")).catch((e: unknown) => e);

    expect(isCircuitOpenError(error)).toBe(true);
    expect(recorder.of("request").length - callsBefore).toBe(1);
    expect(server.count(GET)).toBe(3);

    const bare = new Replicate({ auth: "r8_test", baseUrl: `${server.url}/v1`, fetch: resilience.fetch });
    const before = recorder.of("request").length;
    const again = await clock.run(bare.predictions.get("p1")).catch((e: unknown) => e);
    expect(isCircuitOpenError(again)).toBe(true);
    expect(recorder.of("request").length - before).toBe(6);
  });
});
