import { HTTPError, SchemaValidationError } from "ky";
import { describe, expect, it } from "vitest";
import * as z from "zod";
import { CircuitOpenError, ConfigError, createResilience } from "../src/index.ts";
import { createClient } from "../src/ky/index.ts";
import { json, status, TestClock } from "../src/testing/index.ts";
import { route, useMswServer } from "./helpers/msw.ts";

const server = useMswServer();
const Job = z.object({ id: z.string(), status: z.enum(["queued", "done"]) });

describe("createClient (ky on resilience.fetch)", () => {
  it("retries once, in one place, and validates JSON with a zod schema", async () => {
    const upstream = route(
      server,
      "GET",
      "https://gen.example/v1/jobs/1",
      status(503),
      json({ id: "1", status: "done" }),
    );
    const clock = new TestClock();
    const api = createClient({ prefix: "https://gen.example/v1", resilience: createResilience({ clock }) });
    const job = await clock.run(api.get("jobs/1").json(Job));
    expect(job).toEqual({ id: "1", status: "done" });
    expect(upstream.count()).toBe(2);
  });

  it("surfaces a schema mismatch as ky's validation error", async () => {
    const upstream = route(server, "GET", "https://gen.example/v1/jobs/2", json({ id: 2 }));
    const api = createClient({ prefix: "https://gen.example/v1" });
    const error = await api
      .get("jobs/2")
      .json(Job)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(SchemaValidationError);
    // zod's issues, as ky passes them on: the id is a number, the status is missing.
    expect((error as SchemaValidationError).issues.map((i) => i.path?.map(String).join("."))).toEqual(["id", "status"]);
    expect(upstream.count()).toBe(1); // a 200 that fails validation is not retried
  });

  it("keeps ky's HTTPError for a final non-2xx, after the layer's retries", async () => {
    const upstream = route(server, "POST", "https://gen.example/v1/jobs", status(500));
    const api = createClient({ prefix: "https://gen.example/v1", resilience: { retry: { maxAttempts: 3 } } });
    await expect(api.post("jobs", { json: { prompt: "x" } })).rejects.toBeInstanceOf(HTTPError);
    expect(upstream.count()).toBe(1);
  });

  it("refuses ky's own retry and fetch options, naming them", () => {
    expect(() => createClient({ retry: 2 } as never)).toThrow(ConfigError);
    expect(() => createClient({ retry: 2 } as never)).toThrow(/retry/);
    expect(() => createClient({ fetch: globalThis.fetch } as never)).toThrow(/fetch/);
  });
});

describe("createClient: ky's own errors carry no secret in their message (SECURITY.md)", () => {
  const answer = (status: number) => async () => new Response("no", { status });

  it("an HTTPError's message names the URL without its query, userinfo-free and fragment-free", async () => {
    const api = createClient({ resilience: { retry: false, fetch: answer(401) } });
    const error = await api
      .post("https://api.example/v1/x?api_key=K3Y#frag", { headers: { authorization: "Bearer T0KEN" }, json: { p: 1 } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as Error).message).toBe("Request failed with status code 401: POST https://api.example/v1/x");
    // ky's own record of the request (its `request` and `options`) is left as ky documents it (SECURITY.md says so).
    const { request, options } = error as HTTPError;
    expect(request.url).toContain("api_key=K3Y");
    expect(request.headers.get("authorization")).toBe("Bearer T0KEN");
    expect(new Headers(options.headers).get("authorization")).toBe("Bearer T0KEN");
  });

  it("a caller's beforeError hook sees ky's message cut (a logger there logs no key); the layer's own errors pass as they are", async () => {
    const seen: string[] = [];
    const api = createClient({
      resilience: { retry: false, fetch: answer(500), breaker: { failureThreshold: 1 } },
      hooks: {
        beforeError: [
          ({ error }) => {
            seen.push(error.message);
            return error;
          },
        ],
      },
    });
    await api.get("https://api.example/v1/x?api_key=K3Y").catch(() => {});
    expect(seen).toEqual(["Request failed with status code 500: GET https://api.example/v1/x"]);
    const open = await api.get("https://api.example/v1/x?api_key=K3Y").catch((e: unknown) => e);
    expect(open).toBeInstanceOf(CircuitOpenError);
    expect((open as Error).message).not.toContain("K3Y");
  });
});
