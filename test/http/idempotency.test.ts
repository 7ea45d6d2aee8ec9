import { describe, expect, it } from "vitest";
import { createResilience } from "../../src/index.ts";
import { json, networkError, seededRandom, status, TestClock } from "../../src/testing/index.ts";
import { route, useMswServer } from "../helpers/msw.ts";

const server = useMswServer();
const URL_ = "https://gen.example/v1/jobs";

function setup(
  retry: Parameters<typeof createResilience>[0] extends infer O
    ? O extends { retry?: infer R }
      ? R
      : never
    : never = {},
) {
  const clock = new TestClock();
  return { clock, resilience: createResilience({ clock, random: seededRandom(7), retry }) };
}

describe("idempotency rules", () => {
  it("does not retry a POST on 500 without an Idempotency-Key", async () => {
    const upstream = route(server, "POST", URL_, status(500), json({ id: 1 }));
    const { clock, resilience } = setup();
    const res = await clock.run(resilience.fetch(URL_, { method: "POST", body: '{"prompt":"a cat"}' }));
    expect(res.status).toBe(500);
    expect(upstream.count()).toBe(1);
  });

  it("an empty Idempotency-Key (or one of spaces) is none: a POST answered 500 is not sent again", async () => {
    for (const key of ["", "   "]) {
      const upstream = route(server, "POST", URL_, status(500), json({ id: 1 }));
      const { clock, resilience } = setup();
      const headers = [["idempotency-key", key]] as [string, string][];
      const res = await clock.run(resilience.fetch(URL_, { method: "POST", body: "x", headers }));
      expect(res.status).toBe(500);
      // It was sent three times until the twentieth session: any key, even an empty one, made the POST safe.
      expect(upstream.count()).toBe(1);
    }
  });

  it("with idempotencyKey: true, an empty key is replaced by a generated one, the same on every retry", async () => {
    const upstream = route(server, "POST", URL_, status(500), json({ id: 1 }));
    const { clock, resilience } = setup({ idempotencyKey: true });
    const res = await clock.run(
      resilience.fetch(URL_, { method: "POST", body: "x", headers: { "idempotency-key": "" } }),
    );
    expect(res.status).toBe(200);
    const keys = upstream.header("idempotency-key");
    expect(keys).toHaveLength(2);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("does not retry a POST after a network error without a key (the work may have been done)", async () => {
    const upstream = route(server, "POST", URL_, networkError());
    const { clock, resilience } = setup();
    await expect(clock.run(resilience.fetch(URL_, { method: "POST", body: "x" }))).rejects.toMatchObject({
      name: "RetryExhaustedError",
      attempts: 1,
    });
    expect(upstream.count()).toBe(1);
  });

  it.each([429, 503])("retries a POST on %i (the server declined the work)", async (code) => {
    const upstream = route(server, "POST", URL_, status(code), json({ id: 1 }));
    const { clock, resilience } = setup();
    const res = await clock.run(resilience.fetch(URL_, { method: "POST", body: "x" }));
    expect(res.status).toBe(200);
    expect(upstream.bodies).toEqual(["x", "x"]);
  });

  it("retries a POST on 500 with one stable key when idempotencyKey: true", async () => {
    const upstream = route(server, "POST", URL_, status(500), status(500), json({ id: 1 }));
    const { clock, resilience } = setup({ idempotencyKey: true });
    const res = await clock.run(resilience.fetch(URL_, { method: "POST", body: '{"prompt":"a cat"}' }));
    expect(res.status).toBe(200);
    const keys = upstream.requests.map((r) => r.headers.get("idempotency-key"));
    expect(keys).toHaveLength(3);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    expect(upstream.bodies).toEqual(Array(3).fill('{"prompt":"a cat"}'));
  });

  it("gives each logical call its own key", async () => {
    const upstream = route(server, "POST", URL_, json({ id: 1 }));
    const { clock, resilience } = setup({ idempotencyKey: true });
    await clock.run(resilience.fetch(URL_, { method: "POST", body: "a" }));
    await clock.run(resilience.fetch(URL_, { method: "POST", body: "b" }));
    const [first, second] = upstream.requests.map((r) => r.headers.get("idempotency-key"));
    expect(first).not.toBe(second);
  });

  it("keeps the caller's own Idempotency-Key and retries with it", async () => {
    const upstream = route(server, "PATCH", URL_, status(502), json({}));
    const { clock, resilience } = setup({ idempotencyKey: true });
    const res = await clock.run(
      resilience.fetch(URL_, { method: "PATCH", body: "x", headers: [["Idempotency-Key", "mine-1"]] }),
    );
    expect(res.status).toBe(200);
    expect(upstream.requests.map((r) => r.headers.get("idempotency-key"))).toEqual(["mine-1", "mine-1"]);
  });

  it("adds no key to GET", async () => {
    const upstream = route(server, "GET", URL_, json({}));
    const { clock, resilience } = setup({ idempotencyKey: true });
    await clock.run(resilience.fetch(URL_));
    expect(upstream.requests[0]?.headers.has("idempotency-key")).toBe(false);
  });

  it("retries PUT and DELETE freely, and a method listed in retryOn.methods", async () => {
    const put = route(server, "PUT", URL_, status(500), json({}));
    const { clock, resilience } = setup();
    expect((await clock.run(resilience.fetch(URL_, { method: "PUT", body: "x" }))).status).toBe(200);
    expect(put.count()).toBe(2);
    const post = route(server, "POST", URL_, status(500), json({}));
    const custom = setup({ retryOn: { methods: ["post"] } });
    expect((await custom.clock.run(custom.resilience.fetch(URL_, { method: "POST", body: "x" }))).status).toBe(200);
    expect(post.count()).toBe(2);
  });
});
