/**
 * Outside-in attack on c7745f1 (hedged chains track what is out, held-back
 * entries, transform methods, GET/HEAD bodies, Request redirect + init
 * integrity), public entries only; stub `fetch` on a `TestClock`, each test
 * under a short timeout.
 *
 * Tried (controls, held): a spare held back while the primary PUT runs is
 * sent once after its 500 (no loop, no timer left); an abort while a spare
 * is held back settles the call; a transform returning "BAD METHOD" is a
 * TypeError naming the endpoint and the spare serves; a transform throwing
 * an Error on a keyless POST moves on; `fetch(url, { body })`,
 * `{ method: "head", body }`, `{ body: "" }`, a GET Request with init body
 * reject with a TypeError, nothing sent; ky `api.get(url, { json | body })`
 * via createClient rejects, nothing sent; a Request with redirect
 * manual/error/follow plus init integrity (and init redirect) is sent in Node.
 *
 * Defects (each an `it.fails` on the code it was written against, asserting
 * the expected behaviour; all fixed):
 * 1. Generic `FallbackChain.run(input, { heldBack: () => true })` with one
 *    entry (hedged or not): the entry is re-run in a loop without end (the
 *    test's guard escapes after 200 runs; without it a microtask livelock).
 * 2. Hedge, validate window: primary PUT answers headers at 100 ms, its body
 *    (read by `validate`) at 2 s; the spare's keyless POST (transform) goes
 *    out as a hedge at 1 s beside it (`inFlight` counts to the headers
 *    only), and the primary serves: a paid job sent for nothing.
 * 3. Same window the other way: the primary's transform makes a keyless
 *    POST, its 2xx fails `validate`; the spare's PUT was sent at 1 s beside it.
 * 4. A transform throwing a non-object (`throw "…"`) on a keyless POST ends
 *    the chain (only objects are marked unsent), though nothing was sent.
 * 5. A transform returning method "get" on a PUT with a body sends a GET
 *    with a body (no TypeError naming the endpoint).
 * 6. `resilience.fetch(new Request(url, { method: "POST", body }), { method: "GET" })`
 *    is not refused: sent as a GET carrying the Request's body (native
 *    `new Request` throws a TypeError).
 */
import { describe, expect, it } from "vitest";
import { type FallbackEndpoint, fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";

type Transform = NonNullable<FallbackEndpoint["transform"]>;
type Sent = { at: number; method: string; url: string; body: boolean };

/** A stub transport on `clock` recording method and body before the platform would judge them. */
function transport(clock: TestClock, answer: (url: string) => { status: number; after: number; bodyAfter?: number }) {
  const sent: Sent[] = [];
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const isReq = input instanceof Request;
    const url = isReq ? input.url : String(input);
    const method = (init?.method ?? (isReq ? input.method : "GET")).toUpperCase();
    const body = init?.body != null || (init?.body === undefined && isReq && input.body !== null);
    sent.push({ at: clock.now(), method, url, body });
    const { status, after, bodyAfter } = answer(url);
    return new Promise<Response>((resolve, reject) => {
      const cancel = clock.setTimer(() => {
        if (bodyAfter === undefined) return resolve(new Response(`{"s":${status}}`, { status }));
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            clock.setTimer(() => {
              controller.enqueue(new TextEncoder().encode(`{"s":${status}}`));
              controller.close();
            }, bodyAfter);
          },
        });
        resolve(new Response(stream, { status, headers: { "content-type": "application/json" } }));
      }, after);
      const signal = init?.signal ?? (isReq ? input.signal : undefined);
      signal?.addEventListener("abort", () => {
        cancel();
        reject(signal.reason);
      });
    });
  };
  return { sent, fetch };
}

function byHost(table: Record<string, { status: number; after: number; bodyAfter?: number }>) {
  return (url: string) => table[new URL(url).host] ?? { status: 200, after: 10 };
}

const toPost: Transform = (req) => ({ ...req, method: "POST" });

const anyJson = {
  "~standard": { version: 1 as const, vendor: "atk", validate: (value: unknown) => ({ value }) },
};

function chainOf(
  clock: TestClock,
  fetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>,
  endpoints: FallbackEndpoint[],
  hedge = true,
) {
  return createResilience({
    clock,
    retry: false,
    fetch,
    fallback: fallback([{ name: "gen", ...(hedge ? { hedge: { delay: 1_000 } } : {}), endpoints }]),
  });
}

const settle = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ value }) as { value?: T; error?: unknown },
    (error: unknown) => ({ error }) as { value?: T; error?: unknown },
  );

describe("generic FallbackChain with heldBack", () => {
  for (const hedgeDelay of [undefined, 10]) {
    it(`defect: an entry always held back, alone, is re-run in a loop (hedgeDelay ${hedgeDelay})`, async () => {
      const held = new Error("held");
      let calls = 0;
      const chain = new FallbackChain<number, string>("loop", { clock: new TestClock(0) });
      chain.add(
        () => {
          calls++;
          // Guard: escape the loop after 200 runs so the test settles.
          if (calls > 200) return "escaped";
          throw held;
        },
        { name: "only" },
      );
      const result = await chain.run(1, { hedgeDelay, heldBack: (e) => e === held });
      expect(calls).toBeLessThanOrEqual(2);
      expect(result.ok).toBe(false);
    }, 2_000);
  }
});

describe("HTTP hedged chains: what is out", () => {
  it("defect: a spare's keyless POST is sent as a hedge while the primary's answer is still being validated", async () => {
    const clock = new TestClock(0);
    const up = transport(
      clock,
      byHost({
        "a.example": { status: 200, after: 100, bodyAfter: 1_900 },
        "b.example": { status: 200, after: 5_000 },
      }),
    );
    const resilience = chainOf(clock, up.fetch, [
      { name: "primary", url: "https://a.example/v1", validate: anyJson },
      { name: "spare", url: "https://b.example/v2", transform: toPost },
    ]);
    const out = await settle(clock.run(resilience.fetch("https://a.example/v1/j", { method: "PUT", body: "{}" })));
    expect((out.value as Response).status).toBe(200);
    // Today: [PUT a at 0, POST b at 1000]: the job paid at b though a served.
    expect(up.sent.map((s) => `${s.at} ${s.method} ${s.url}`)).toEqual(["0 PUT https://a.example/v1/j"]);
  }, 3_000);

  it("defect: the primary's keyless POST, its 2xx failing validate, had a hedge sent beside it", async () => {
    const clock = new TestClock(0);
    const up = transport(
      clock,
      byHost({
        "a.example": { status: 200, after: 100, bodyAfter: 1_900 },
        "b.example": { status: 200, after: 5_000 },
      }),
    );
    const never = {
      "~standard": {
        version: 1 as const,
        vendor: "atk",
        validate: () => ({ issues: [{ message: "bad shape" }] }),
      },
    };
    const resilience = chainOf(clock, up.fetch, [
      { name: "primary", url: "https://a.example/v1", transform: toPost, validate: never },
      { name: "spare", url: "https://b.example/v2" },
    ]);
    const out = await settle(clock.run(resilience.fetch("https://a.example/v1/j", { method: "PUT", body: "{}" })));
    // docs: a 2xx failing validate after a keyless POST: "the endpoint took the job", the call resolves with it.
    expect((out.value as Response | undefined)?.status).toBe(200);
    expect(up.sent.map((s) => `${s.at} ${s.method} ${s.url}`)).toEqual(["0 POST https://a.example/v1/j"]);
  }, 3_000);

  it("control: a spare held back while the primary PUT runs is sent once after its 500, no loop", async () => {
    const clock = new TestClock(0);
    const up = transport(clock, byHost({ "a.example": { status: 500, after: 3_000 } }));
    const resilience = chainOf(clock, up.fetch, [
      { name: "primary", url: "https://a.example/v1" },
      { name: "spare", url: "https://b.example/v2", transform: toPost },
    ]);
    const res = await clock.run(resilience.fetch("https://a.example/v1/j", { method: "PUT", body: "{}" }));
    expect(res.status).toBe(200);
    expect(up.sent.map((s) => `${s.at} ${s.method}`)).toEqual(["0 PUT", "3000 POST"]);
    expect(clock.pending()).toBe(0);
  }, 3_000);

  it("control: an abort while a spare is held back settles the call; nothing else sent", async () => {
    const clock = new TestClock(0);
    const up = transport(clock, byHost({ "a.example": { status: 200, after: 1e9 } }));
    const resilience = chainOf(clock, up.fetch, [
      { name: "primary", url: "https://a.example/v1" },
      { name: "spare", url: "https://b.example/v2", transform: toPost },
    ]);
    const controller = new AbortController();
    clock.setTimer(() => controller.abort(new Error("gone")), 2_000);
    const out = await settle(
      clock.run(resilience.fetch("https://a.example/v1/j", { method: "PUT", body: "{}", signal: controller.signal })),
    );
    expect((out.error as Error).message).toBe("gone");
    expect(up.sent.length).toBe(1);
  }, 3_000);
});

describe("transform: method and failures", () => {
  it("control: a transform returning 'BAD METHOD' fails with a TypeError naming the endpoint; the spare serves", async () => {
    const clock = new TestClock(0);
    const up = transport(clock, byHost({}));
    const errors: string[] = [];
    const resilience = chainOf(
      clock,
      up.fetch,
      [
        { name: "primary", url: "https://a.example/v1", transform: (req) => ({ ...req, method: "BAD METHOD" }) },
        { name: "spare", url: "https://b.example/v2" },
      ],
      false,
    );
    resilience.on("fallback", (e) => errors.push(e.reason));
    const res = await clock.run(resilience.fetch("https://a.example/v1/j", { method: "POST", body: "{}" }));
    expect(res.status).toBe(200);
    expect(up.sent.map((s) => s.url)).toEqual(["https://b.example/v2/j"]);
    expect(errors[0]).toMatch(/TypeError.*primary/);
  }, 3_000);

  it("defect: a transform that throws a string on a keyless POST ends the chain though nothing was sent", async () => {
    const clock = new TestClock(0);
    const up = transport(clock, byHost({}));
    const resilience = chainOf(
      clock,
      up.fetch,
      [
        {
          name: "primary",
          url: "https://a.example/v1",
          transform: () => {
            throw "no mapping for this model";
          },
        },
        { name: "spare", url: "https://b.example/v2" },
      ],
      false,
    );
    const out = await settle(clock.run(resilience.fetch("https://a.example/v1/j", { method: "POST", body: "{}" })));
    // docs: "a transform that fails sends nothing, so the chain may move on".
    expect((out.value as Response | undefined)?.status).toBe(200);
    expect(up.sent.map((s) => s.url)).toEqual(["https://b.example/v2/j"]);
  }, 3_000);

  it("control: a transform that throws an Error on a keyless POST moves on", async () => {
    const clock = new TestClock(0);
    const up = transport(clock, byHost({}));
    const resilience = chainOf(
      clock,
      up.fetch,
      [
        {
          name: "primary",
          url: "https://a.example/v1",
          transform: () => {
            throw new Error("no mapping");
          },
        },
        { name: "spare", url: "https://b.example/v2" },
      ],
      false,
    );
    const res = await clock.run(resilience.fetch("https://a.example/v1/j", { method: "POST", body: "{}" }));
    expect(res.status).toBe(200);
    expect(up.sent.map((s) => s.url)).toEqual(["https://b.example/v2/j"]);
  }, 3_000);

  it("defect: a transform returning method 'GET' on a call with a body sends a GET with a body", async () => {
    const clock = new TestClock(0);
    const up = transport(clock, byHost({}));
    const reasons: string[] = [];
    const resilience = chainOf(
      clock,
      up.fetch,
      [
        { name: "primary", url: "https://a.example/v1", transform: (req) => ({ ...req, method: "get" }) },
        { name: "spare", url: "https://b.example/v2" },
      ],
      false,
    );
    resilience.on("fallback", (e) => reasons.push(e.reason));
    await settle(clock.run(resilience.fetch("https://a.example/v1/j", { method: "PUT", body: '{"a":1}' })));
    expect(up.sent.filter((s) => (s.method === "GET" || s.method === "HEAD") && s.body)).toEqual([]);
    expect(reasons[0]).toMatch(/TypeError.*primary/);
  }, 3_000);
});

describe("GET/HEAD with a body", () => {
  function stub() {
    const calls: unknown[] = [];
    const resilience = createResilience({
      retry: false,
      fetch: async (input) => {
        calls.push(input);
        return new Response("ok");
      },
    });
    return { calls, resilience };
  }

  it("control: fetch(url, { body }), { method: 'head', body }, a GET Request with init body: TypeError at once", async () => {
    const { calls, resilience } = stub();
    for (const [input, init] of [
      ["https://h.example/", { body: "x" }],
      ["https://h.example/", { method: "head", body: "x" }],
      [new Request("https://h.example/"), { body: "x" }],
      ["https://h.example/", { body: "" }],
    ] as [string | Request, RequestInit][]) {
      const out = await settle(Promise.resolve().then(() => resilience.fetch(input, init)));
      expect(out.error).toBeInstanceOf(TypeError);
    }
    expect(calls).toEqual([]);
  });

  it("defect: a POST Request with a body and init { method: 'GET' } is sent as a GET with a body", async () => {
    const { calls, resilience } = stub();
    const request = new Request("https://h.example/", { method: "POST", body: "job" });
    // Native fetch: new Request(request, { method: "GET" }) throws a TypeError.
    expect(() => new Request(request, { method: "GET" })).toThrow(TypeError);
    const out = await settle(Promise.resolve().then(() => resilience.fetch(request, { method: "GET" })));
    expect(out.error).toBeInstanceOf(TypeError);
    expect(calls).toEqual([]);
  }, 3_000);

  it("control: ky api.get(url, { json }) and { body } reject with a TypeError, nothing sent", async () => {
    const { calls, resilience } = stub();
    const api = createClient({ resilience });
    for (const options of [{ json: { a: 1 } }, { body: "x" }]) {
      const out = await settle(Promise.resolve().then(() => api.get("https://h.example/", options).text()));
      expect(out.error).toBeInstanceOf(TypeError);
    }
    expect(calls).toEqual([]);
  });
});

describe("checkPlatformFields on a Request merged with init (Node)", () => {
  it("control: a Request with redirect 'manual' or 'error' and init integrity is sent", async () => {
    let calls = 0;
    const resilience = createResilience({
      retry: false,
      fetch: async () => {
        calls++;
        return new Response("");
      },
    });
    const empty = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    for (const redirect of ["manual", "error", "follow"] as RequestRedirect[]) {
      const res = await resilience.fetch(new Request("https://h.example/", { redirect }), {
        integrity: empty,
      });
      expect(await res.text()).toBe("");
      const res2 = await resilience.fetch(
        new Request("https://h.example/", { redirect, integrity: empty, keepalive: true }),
        { redirect: "manual" },
      );
      expect(await res2.text()).toBe("");
    }
    expect(calls).toBe(6);
  });
});
