import { isCircuitOpenError } from "@storycore/resilient-fetch";
import { AxiosError } from "axios";
import { HTTPError } from "ky";
import { FetchError, ofetch } from "ofetch";
import { describe, expect, it } from "vitest";
import { createAxios } from "../../examples/recipes/axios.ts";
import { createKy } from "../../examples/recipes/ky.ts";
import { createOfetch } from "../../examples/recipes/ofetch.ts";
import { chain, down, job, layer, useFakeApis } from "./harness.ts";

const JOB = "GET /v1/jobs/1";

/** Each client, called the same way: GET jobs/1 as JSON. */
const clients = {
  axios: (r: Parameters<typeof createAxios>[0], base: string) => async () =>
    (await createAxios(r, base).get("jobs/1")).data as unknown,
  ofetch: (r: Parameters<typeof createOfetch>[0], base: string) => () =>
    createOfetch(r, base)("jobs/1") as Promise<unknown>,
  ky: (r: Parameters<typeof createKy>[0], base: string) => () => createKy(r, base).get("jobs/1").json(),
};

/** Reaches the layer's error through each client's own. */
const layerError = {
  axios: (e: unknown) => (e instanceof AxiosError ? e.cause : undefined),
  ofetch: (e: unknown) => (e instanceof FetchError ? e.cause : undefined),
  ky: (e: unknown) => e,
};
/** The status of each client's error for a final non-2xx answer. */
const statusOf = {
  axios: (e: unknown) => (e instanceof AxiosError ? e.response?.status : undefined),
  ofetch: (e: unknown) => (e instanceof FetchError ? e.statusCode : undefined),
  ky: (e: unknown) => (e instanceof HTTPError ? e.response.status : undefined),
};

describe.each(["axios", "ofetch", "ky"] as const)("recipe: %s", (name) => {
  const api = useFakeApis();

  it("retries a 503 once, in the layer, and nowhere else", async () => {
    const server = await api((_, n) => (n === 1 ? down : job("primary")));
    const { clock, resilience, recorder } = layer();
    expect(await clock.run(clients[name](resilience, `${server.url}/v1/`)())).toMatchObject({ status: "done" });
    expect(server.count(JOB)).toBe(2);
    expect(recorder.of("retry")).toHaveLength(1);
  });

  it("an API that stays down gets the layer's 3 attempts, then the client's own status error", async () => {
    const server = await api(() => down);
    const { clock, resilience } = layer();
    const error = await clock.run(clients[name](resilience, `${server.url}/v1/`)()).catch((e: unknown) => e);
    expect(statusOf[name](error)).toBe(503);
    expect(server.count(JOB)).toBe(3);
  });

  it("falls back to the spare when the primary stays down", async () => {
    const primary = await api(() => down);
    const spare = await api(() => job("spare"));
    const { clock, resilience, recorder } = layer(chain(primary, spare));
    expect(await clock.run(clients[name](resilience, `${primary.url}/v1/`)())).toMatchObject({ from: "spare" });
    expect(primary.count(JOB)).toBe(3);
    expect(spare.count(JOB)).toBe(1);
    recorder.expectFallback("primary", "spare");
  });

  it("an open breaker's CircuitOpenError is reachable through the client's error; nothing is sent", async () => {
    const server = await api(() => down);
    const { clock, resilience } = layer({ breaker: { failureThreshold: 3 } });
    const call = clients[name](resilience, `${server.url}/v1/`);
    await clock.run(call()).catch(() => undefined);
    const error = await clock.run(call()).catch((e: unknown) => e);
    expect(isCircuitOpenError(layerError[name](error))).toBe(true);
    expect(server.count(JOB)).toBe(3);
  });
});

describe("recipe: ofetch without retry: 0", () => {
  const api = useFakeApis();

  it("retries on top of the layer: one GET to a down API is 2 calls to the layer, 6 requests", async () => {
    const server = await api(() => down);
    const { clock, resilience, recorder } = layer({ breaker: false });
    const bare = ofetch.create({ baseURL: `${server.url}/v1/` }, { fetch: resilience.fetch });
    await clock.run(bare("jobs/1")).catch(() => undefined);
    expect(server.count(JOB)).toBe(6);
    expect(recorder.of("request")).toHaveLength(2);
  });
});
