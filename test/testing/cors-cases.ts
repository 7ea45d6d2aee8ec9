import { describe, expect, it } from "vitest";
import { createResilience, type ResilienceOptions } from "../../src/index.ts";
import {
  corsPreflight,
  json,
  recordEvents,
  seededRandom,
  sequence,
  status,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";
import { useMswServer } from "../helpers/msw.ts";

/** corsPreflight's model of strict APIs; run in Node and in happy-dom by the two files beside this one. */
export function defineCorsSuite(environment: "node" | "happy-dom"): void {
  const server = useMswServer();
  // Each test its own path: happy-dom caches preflight answers per URL.
  let n = 0;
  const nextUrl = () => `https://strict.example/v1/images/${environment}-${++n}`;
  const setup = (options: ResilienceOptions = {}) => {
    const clock = new TestClock(10_000);
    const resilience = createResilience({ clock, random: seededRandom(1), ...options });
    return { clock, resilience, recorder: recordEvents(resilience) };
  };
  const post = { method: "POST", headers: { "content-type": "application/json" }, body: '{"prompt":"a cat"}' };

  describe(`corsPreflight (${environment})`, () => {
    it("permissive by default: an idempotency key goes through and Retry-After is seen", async () => {
      const url = nextUrl();
      const cors = corsPreflight();
      const api = upstream("POST", url, cors.respond(sequence([status(503, { retryAfter: 2 }), json({ ok: 1 })])));
      server.use(cors, api.handler);
      const { clock, resilience, recorder } = setup({ retry: { idempotencyKey: true } });
      const response = await clock.run(resilience.fetch(url, post));
      expect(response.status).toBe(200);
      expect(response.headers.get("access-control-allow-origin")).toBe("*");
      expect(api.count()).toBe(2);
      expect(recorder.of("retry").map((e) => e.delay)).toEqual([2_000]);
    });

    it("a preflight that does not allow Idempotency-Key makes every attempt fail as a network error", async () => {
      const url = nextUrl();
      const cors = corsPreflight({ allowHeaders: ["content-type", "authorization"] });
      const api = upstream("POST", url, cors.respond(json({ ok: 1 })));
      server.use(cors, api.handler);
      const { clock, resilience } = setup({ retry: { idempotencyKey: true } });
      const error = await clock.run(resilience.fetch(url, post)).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: "RetryExhaustedError", attempts: 3 });
      expect(["TypeError", "NetworkError"]).toContain(((error as Error).cause as Error).name);
      // Node sends no preflight, and happy-dom's reaches MSW without its
      // Access-Control-Request-Headers: respond() refuses each POST instead,
      // before the fault answers (a browser would stop at the preflight).
      expect(api.count()).toBe(3);
      expect(api.header("idempotency-key")[0]).toMatch(/./);
    });

    it("the same strict API serves a call without the key, and one whose key it allows", async () => {
      const url = nextUrl();
      const cors = corsPreflight({ allowHeaders: ["content-type"] });
      server.use(cors, upstream("POST", url, cors.respond(json({ ok: 1 }))).handler);
      const { clock, resilience } = setup();
      expect((await clock.run(resilience.fetch(url, post))).status).toBe(200);

      const allowing = corsPreflight({ allowHeaders: ["content-type", "Idempotency-Key"] });
      const url2 = nextUrl();
      server.use(allowing, upstream("POST", url2, allowing.respond(json({ ok: 2 }))).handler);
      const keyed = setup({ retry: { idempotencyKey: true } });
      expect(await (await keyed.clock.run(keyed.resilience.fetch(url2, post))).json()).toEqual({ ok: 2 });
    });

    it("a Retry-After the API does not expose is not seen; exposed, it is honoured", async () => {
      const hidden = corsPreflight({ exposeHeaders: [] });
      const url = nextUrl();
      server.use(
        hidden,
        upstream("GET", url, hidden.respond(sequence([status(503, { retryAfter: 2 }), json({})]))).handler,
      );
      const first = setup();
      const response = await first.clock.run(first.resilience.fetch(url));
      expect(response.headers.get("retry-after")).toBeNull();
      const [waited] = first.recorder.of("retry").map((e) => e.delay);
      expect(waited).toBeLessThan(2_000);

      const exposed = corsPreflight({ exposeHeaders: ["Retry-After"] });
      const url2 = nextUrl();
      server.use(
        exposed,
        upstream("GET", url2, exposed.respond(sequence([status(503, { retryAfter: 2 }), json({})]))).handler,
      );
      const second = setup();
      await second.clock.run(second.resilience.fetch(url2));
      expect(second.recorder.of("retry").map((e) => e.delay)).toEqual([2_000]);
    });

    it("keeps safelisted response headers and the body when it hides the rest", async () => {
      const cors = corsPreflight({ exposeHeaders: ["x-request-id"] });
      const url = nextUrl();
      server.use(
        cors,
        upstream(
          "GET",
          url,
          cors.respond(
            json({ id: 7 }, { headers: { "x-request-id": "r1", "x-internal": "secret", "cache-control": "no-store" } }),
          ),
        ).handler,
      );
      const { clock, resilience } = setup();
      const response = await clock.run(resilience.fetch(url));
      expect(await response.json()).toEqual({ id: 7 });
      expect(response.headers.get("x-request-id")).toBe("r1");
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(response.headers.get("x-internal")).toBeNull();
      expect(response.headers.get("access-control-expose-headers")).toBe("x-request-id");
    });

    it.runIf(environment === "node")(
      "answers a preflight as the policy says (what a browser with MSW's worker checks)",
      async () => {
        server.use(corsPreflight({ allowHeaders: ["content-type", "authorization"] }));
        const preflight = (headers: string) =>
          fetch("https://strict.example/v1/images", {
            method: "OPTIONS",
            headers: { "access-control-request-method": "POST", "access-control-request-headers": headers },
          });
        const ok = await preflight("authorization,content-type");
        expect(ok.status).toBe(204);
        expect(ok.headers.get("access-control-allow-headers")).toBe("content-type, authorization");
        expect(ok.headers.get("access-control-allow-origin")).toBe("*");
        await expect(preflight("content-type,idempotency-key")).rejects.toThrow(TypeError);

        server.resetHandlers(corsPreflight());
        expect(
          (await preflight("content-type,idempotency-key,x-anything")).headers.get("access-control-allow-headers"),
        ).toBe("*");
      },
    );

    it("rejects a bad policy at once, by name", () => {
      expect(() => corsPreflight({ allowHeaders: "content-type" as never })).toThrow(/allowHeaders/);
      expect(() => corsPreflight({ exposeHeaders: ["retry after"] })).toThrow(/exposeHeaders/);
      expect(() => corsPreflight(null as never)).toThrow(TypeError);
      expect(() => corsPreflight().respond("503" as never)).toThrow(/fault must be a function/);
    });
  });
}
