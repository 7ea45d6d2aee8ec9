/**
 * Outside-in checks of the documented promises (README, docs/fallback.md,
 * docs/degradation.md, docs/retry.md, SECURITY.md) on COMBINED paths: a
 * fallback chain whose endpoint redirects, a `Request` input through a chain
 * with `transform` and degradation rules, idempotency across chains,
 * redirects and hedges, and the ky client on the same paths. Public API only,
 * against real `node:http` servers on 127.0.0.1 (each port is its own
 * origin). Time moves only on a `TestClock`; nothing sleeps for real.
 */
import { once } from "node:events";
import { HTTPError } from "ky";
import { beforeAll, describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  type DegradationControl,
  FallbackExhaustedError,
  getResilienceInfo,
  type RedirectEvent,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Handler, type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const P = httpUpstream(); // the primary: the origin the caller addresses
const S = httpUpstream(); // the spare endpoint, another origin
const C = httpUpstream(); // a third origin (a CDN a redirect points to)
let REFUSED = ""; // an origin where nothing listens: connection refused

serveDuringFile(P, S, C);
beforeAll(async () => {
  REFUSED = await refusedOrigin();
});

const status =
  (code: number, headers: Record<string, string> = {}): Handler =>
  (hit) => {
    hit.res.writeHead(code, headers);
    hit.res.end(`${code} from ${hit.path}`);
  };
const redirectTo = (location: string, code = 302): Handler => status(code, { location });
const echo: Handler = (hit) => {
  hit.res.writeHead(200, { "content-type": "application/json" });
  hit.res.end(JSON.stringify({ method: hit.method, path: hit.path, body: hit.body }));
};
const reset: Handler = (hit) => hit.req.socket.destroy();
const hang: Handler = () => {};

const CREDENTIALS = {
  authorization: "Bearer caller-secret",
  "x-api-key": "k-caller",
  cookie: "session=caller",
  "x-trace": "t-1",
};

/** The layer's options; `fallback: null` leaves the chain out (a plain call to one host). */
type LayerOptions = Omit<ResilienceOptions, "fallback"> & { fallback?: ResilienceOptions["fallback"] | null };

/** A layer on the real network with chain "gen": primary P/v1 → spare S/v2 (own key). */
function layer({ fallback: chains, ...options }: LayerOptions = {}, spare: Record<string, unknown> = {}) {
  const clock = new TestClock(0);
  const calls: string[] = [];
  const gen = fallback([
    {
      name: "gen",
      endpoints: [
        { name: "primary", url: `${P.base}/v1` },
        { name: "spare", url: `${S.base}/v2`, headers: { "x-spare-key": "spare-own" }, ...spare },
      ],
    },
  ]);
  const resilience = createResilience({
    clock,
    retry: false,
    redirects: "library",
    crossOriginHeaders: ["x-trace"],
    // Records each transport call synchronously, then goes to the network.
    fetch: (input, init) => {
      calls.push(input instanceof Request ? input.url : String(input));
      return globalThis.fetch(input, init);
    },
    ...(chains === null ? {} : { fallback: chains ?? gen }),
    ...options,
  });
  const redirects: RedirectEvent[] = [];
  resilience.on("redirect", (e) => redirects.push(e));
  return { clock, resilience, calls, redirects };
}

/** The layer's degradation control (these layers are made with the stage). */
function levels(resilience: { degradation: DegradationControl | undefined }): DegradationControl {
  if (!resilience.degradation) throw new Error("the layer has no degradation stage");
  return resilience.degradation;
}

describe("a fallback endpoint that answers with a redirect (redirects: library)", () => {
  it("drops caller credentials and the spare's own key at a cross-origin hop, reports the hop, and says who served", async () => {
    P.on(status(503));
    S.on(redirectTo(`${C.base}/cdn/out.png?sig=s`));
    C.on(status(200));
    const { clock, resilience, redirects } = layer();
    const res = await clock.run(resilience.fetch(`${P.base}/v1/img?seed=7`, { headers: CREDENTIALS }));
    expect(res.status).toBe(200);
    expect(res.redirected).toBe(true);
    expect(res.url).toBe(`${C.base}/cdn/out.png?sig=s`);
    await res.text();
    // The primary (the caller's origin) got everything.
    expect(P.hits[0]?.headers.authorization).toBe("Bearer caller-secret");
    // The spare: its own key and the allowlist (x-trace named), none of the caller's credentials.
    const atSpare = S.hits[0] as Hit;
    expect(atSpare.path).toBe("/v2/img?seed=7");
    expect([atSpare.headers.authorization, atSpare.headers["x-api-key"], atSpare.headers.cookie]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect([atSpare.headers["x-spare-key"], atSpare.headers["x-trace"]]).toEqual(["spare-own", "t-1"]);
    // The CDN, another origin than the spare: not even the spare's own key.
    const atCdn = C.hits[0] as Hit;
    expect([atCdn.headers.authorization, atCdn.headers["x-api-key"], atCdn.headers["x-spare-key"]]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect(atCdn.headers["x-trace"]).toBe("t-1");
    expect(redirects).toEqual([
      {
        from: `${S.base}/v2/img`,
        to: `${C.base}/cdn/out.png`,
        status: 302,
        crossOrigin: true,
        dropped: ["x-spare-key"],
      },
    ]);
    expect(getResilienceInfo(res)).toMatchObject({
      attempts: 2,
      endpoint: "spare",
      fromFallback: true,
      degradationLevel: "full",
    });
  });

  it("never puts the caller's credentials back when the spare redirects to the caller's own origin", async () => {
    P.on((hit) => (hit.path.startsWith("/v1") ? status(503)(hit) : status(200)(hit)));
    S.on(redirectTo(`${P.base}/landing`));
    const { clock, resilience } = layer();
    const res = await clock.run(resilience.fetch(`${P.base}/v1/img`, { headers: CREDENTIALS }));
    expect([res.status, res.url]).toEqual([200, `${P.base}/landing`]);
    await res.text();
    const landing = P.hits[1] as Hit;
    expect(landing.path).toBe("/landing");
    // Neither the caller's credentials (dropped going to the spare) nor the spare's own key come to P.
    expect([landing.headers.authorization, landing.headers["x-api-key"], landing.headers["x-spare-key"]]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect(landing.headers["x-trace"]).toBe("t-1");
  });

  it("keeps method and body on 307/308 and turns the request into a GET without body on 301/302 (POST) and 303, at a spare reached with an Idempotency-Key", async () => {
    const cases: Array<[number, string, string, boolean]> = [
      [301, "POST", "GET", false],
      [302, "POST", "GET", false],
      [303, "POST", "GET", false],
      [307, "POST", "POST", true],
      [308, "POST", "POST", true],
      [302, "PUT", "PUT", true],
      [303, "PUT", "GET", false],
    ];
    for (const [code, method, expectedMethod, keepsBody] of cases) {
      P.reset();
      S.reset();
      C.reset();
      P.on(status(503));
      S.on(redirectTo(`${C.base}/final`, code));
      C.on(echo);
      const { clock, resilience } = layer();
      const body = '{"prompt":"x","seed":9007199254740993}';
      const res = await clock.run(
        resilience.fetch(`${P.base}/v1/jobs`, {
          method,
          body,
          headers: { ...CREDENTIALS, "content-type": "application/json", "idempotency-key": "job-1" },
        }),
      );
      const atCdn = C.hits[0] as Hit;
      const seen = [code, method, atCdn.method, atCdn.body, atCdn.headers["content-type"] ?? null];
      expect(seen).toEqual([
        code,
        method,
        expectedMethod,
        keepsBody ? body : "",
        keepsBody ? "application/json" : null,
      ]);
      expect(S.hits[0]?.body).toBe(body);
      // Only the allowlist crosses: the key (allowlisted) goes on, credentials do not.
      expect(atCdn.headers["idempotency-key"]).toBe("job-1");
      expect(atCdn.headers.authorization).toBeUndefined();
      expect(getResilienceInfo(res)).toMatchObject({ endpoint: "spare", fromFallback: true, attempts: 2 });
      await res.text();
    }
  });

  it("a transform's body is what a 307 replays to the next hop", async () => {
    P.on(status(503));
    S.on(redirectTo(`${C.base}/final`, 307));
    C.on(echo);
    const { clock, resilience } = layer(
      {},
      { transform: (req: { body?: Record<string, unknown> }) => ({ ...req, body: { input: req.body?.prompt } }) },
    );
    const res = await clock.run(
      resilience.fetch(`${P.base}/v1/jobs`, {
        method: "POST",
        body: JSON.stringify({ prompt: "a cat" }),
        headers: { "content-type": "application/json", "idempotency-key": "k" },
      }),
    );
    expect(await res.json()).toMatchObject({ method: "POST", body: '{"input":"a cat"}' });
  });

  it("follows at most 20 hops at an endpoint, then leaves it for the next one (a network error)", async () => {
    P.on((hit) => {
      const n = Number(hit.path.split("/").pop());
      redirectTo(`${P.base}/loop/${Number.isFinite(n) ? n + 1 : 0}`)(hit);
    });
    S.on(status(200));
    const { clock, resilience } = layer();
    const res = await clock.run(resilience.fetch(`${P.base}/v1/a`));
    expect(P.hits).toHaveLength(21);
    expect([res.status, getResilienceInfo(res)?.endpoint]).toEqual([200, "spare"]);
    await res.text();
  });

  it("refuses a Location that is not http(s) at an endpoint: nothing is sent there", async () => {
    P.on(redirectTo("file:///etc/passwd"));
    S.on(status(200));
    const { clock, resilience, calls } = layer();
    const res = await clock.run(resilience.fetch(`${P.base}/v1/a`));
    expect(calls.some((url) => url.startsWith("file:"))).toBe(false);
    expect(getResilienceInfo(res)?.endpoint).toBe("spare");
    await res.text();
  });

  it("a Request input with redirect: manual keeps it when the chain sends it to the spare", async () => {
    P.on(status(503));
    S.on(redirectTo(`${C.base}/final`));
    const { clock, resilience } = layer();
    const res = await clock.run(resilience.fetch(new Request(`${P.base}/v1/a`, { redirect: "manual" })));
    expect([res.status, C.hits.length]).toEqual([302, 0]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "spare", fromFallback: true });
    await res.text();
  });

  it("a POST without Idempotency-Key whose 307 target answers 500 is not sent again: no retry, no spare", async () => {
    P.on(redirectTo(`${C.base}/work`, 307));
    C.on(status(500));
    const { clock, resilience } = layer({ retry: { maxAttempts: 3, jitter: "none", initialDelay: 10 } });
    const res = await clock.run(resilience.fetch(`${P.base}/v1/jobs`, { method: "POST", body: "job" }));
    expect(res.status).toBe(500);
    expect([P.hits.length, C.hits.length, S.hits.length]).toEqual([1, 1, 0]);
    expect(C.hits[0]?.body).toBe("job");
    await res.text();
  });

  // SECURITY.md: a POST without Idempotency-Key is sent again only when it
  // surely was not processed. A 303 answers a POST the server processed: a
  // 503 (or a refused connection) on the GET that follows says nothing about
  // the POST, which must not reach the spare.
  it("a POST without Idempotency-Key that the server answered with 303 is not sent to the spare when the GET that follows meets a 503", async () => {
    P.on(redirectTo(`${C.base}/result`, 303));
    C.on(status(503));
    const { clock, resilience } = layer();
    const res = await clock.run(resilience.fetch(`${P.base}/v1/jobs`, { method: "POST", body: "job" }));
    await res.text();
    expect(S.hits.map((h) => [h.method, h.body])).toEqual([]);
  });

  // The same rule on one host: the retry loop does not POST again.
  it("a POST without Idempotency-Key answered with 303 is not retried when the result's GET meets a 503", async () => {
    P.on(redirectTo(`${C.base}/result`, 303));
    C.on(status(503));
    const { clock, resilience } = layer({
      fallback: null,
      retry: { maxAttempts: 2, jitter: "none", initialDelay: 10 },
    });
    const res = await clock.run(resilience.fetch(`${P.base}/jobs`, { method: "POST", body: "job" }));
    await res.text();
    expect(P.hits.filter((h) => h.method === "POST")).toHaveLength(1);
  });

  // The same with a refused connection at the 303's target: that failure
  // happened after the POST was answered.
  it("a POST without Idempotency-Key answered with 303 is not sent to the spare when the result's origin refuses the connection", async () => {
    P.on(redirectTo(`${REFUSED}/result`, 303));
    const { clock, resilience } = layer();
    await clock.run(resilience.fetch(`${P.base}/v1/jobs`, { method: "POST", body: "job" })).catch(() => undefined);
    expect(S.hits.map((h) => [h.method, h.body])).toEqual([]);
  });
});

describe("a Request input through a chain with transform and degradation", () => {
  const RULES = (steps: string) => degradation({ rules: [{ match: `${P.base}/v1`, params: { steps } }] });

  it("a Request with a JSON body: each endpoint sees the degraded body, the transform receives it, credentials stay home", async () => {
    P.on(status(503));
    S.on(echo);
    const seenByTransform: unknown[] = [];
    const { clock, resilience } = layer(
      { degradation: RULES("parameters.steps") },
      {
        transform: (req: { body?: { prompt?: string; parameters?: { steps?: number } }; headers: Headers }) => {
          seenByTransform.push(structuredClone(req.body));
          return { ...req, body: { input: req.body?.prompt, num_steps: req.body?.parameters?.steps } };
        },
      },
    );
    levels(resilience).setLevel("medium");
    const request = new Request(`${P.base}/v1/jobs`, {
      method: "POST",
      headers: { ...CREDENTIALS, "content-type": "application/json", "idempotency-key": "job-7" },
      body: '{"prompt":"a cat","parameters":{"steps":50,"seed":9007199254740993}}',
    });
    const res = await clock.run(resilience.fetch(request));
    // The primary got the caller's bytes with only `steps` rewritten (the 64-bit seed intact).
    expect(P.hits[0]?.body).toBe('{"prompt":"a cat","parameters":{"steps":30,"seed":9007199254740993}}');
    expect(P.hits[0]?.headers.authorization).toBe("Bearer caller-secret");
    expect(seenByTransform).toEqual([{ prompt: "a cat", parameters: { steps: 30, seed: 9007199254740992 } }]);
    const atSpare = S.hits[0] as Hit;
    expect(atSpare.body).toBe('{"input":"a cat","num_steps":30}');
    expect([atSpare.headers.authorization, atSpare.headers["x-api-key"], atSpare.headers.cookie]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect([atSpare.headers["idempotency-key"], atSpare.headers["x-spare-key"]]).toEqual(["job-7", "spare-own"]);
    expect(getResilienceInfo(res)).toMatchObject({
      attempts: 2,
      endpoint: "spare",
      fromFallback: true,
      degradationLevel: "medium",
    });
    await res.text();
  });

  it("a Request whose body is a (small) stream is read once and replayed to the spare, degraded", async () => {
    P.on(status(503));
    S.on(echo);
    const { clock, resilience } = layer({ degradation: degradation() });
    levels(resilience).setLevel("low");
    const bytes = new TextEncoder().encode('{"prompt":"x","steps":50,"resolution":"1080p"}');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 10));
        controller.enqueue(bytes.slice(10));
        controller.close();
      },
    });
    const request = new Request(`${P.base}/v1/jobs`, {
      method: "POST",
      body: stream,
      duplex: "half",
      headers: { "content-type": "application/json", "idempotency-key": "s-1" },
    } as RequestInit);
    const res = await clock.run(resilience.fetch(request));
    const degraded = '{"prompt":"x","steps":20,"resolution":"720p"}';
    expect([P.hits[0]?.body, S.hits[0]?.body]).toEqual([degraded, degraded]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "spare", degradationLevel: "low" });
    await res.text();
  });

  it("a stream body in init is sent to one endpoint only, with a key, whatever rules and transforms say", async () => {
    P.on(status(503));
    let transformed = 0;
    const { clock, resilience } = layer(
      { degradation: degradation() },
      {
        transform: (req: object) => {
          transformed++;
          return req;
        },
      },
    );
    levels(resilience).setLevel("low");
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"steps":50}'));
        controller.close();
      },
    });
    const res = await clock.run(
      resilience.fetch(`${P.base}/v1/jobs`, {
        method: "POST",
        body,
        duplex: "half",
        headers: { "content-type": "application/json", "idempotency-key": "once" },
      } as RequestInit),
    );
    expect(res.status).toBe(503);
    expect([P.hits.length, P.hits[0]?.body, S.hits.length, transformed]).toEqual([1, '{"steps":50}', 0, 0]);
    await res.text();
  });

  it("a Request's own signal aborts the chain: the call rejects with its reason, the spare is never called", async () => {
    const controller = new AbortController();
    const reason = new Error("user left");
    P.on(() => controller.abort(reason)); // aborts while the primary holds the request
    const { clock, resilience, calls } = layer({ degradation: RULES("steps") }, { transform: (req: object) => req });
    levels(resilience).setLevel("medium");
    const request = new Request(`${P.base}/v1/jobs`, {
      method: "POST",
      body: '{"steps":50}',
      headers: { "content-type": "application/json", "idempotency-key": "sig" },
      signal: controller.signal,
    });
    const closed = P.nth(1).then((hit) => once(hit.res, "close"));
    await expect(clock.run(resilience.fetch(request))).rejects.toBe(reason);
    await closed; // the primary saw its connection closed
    expect(P.hits[0]?.body).toBe('{"steps":30}');
    expect([S.hits.length, calls.length]).toEqual([0, 1]);
  });
});

describe("degradation rewriting on a chain", () => {
  it("a body rule reaches every endpoint (no transform): each sees the rewritten parameters", async () => {
    P.on(status(503));
    S.on(echo);
    const { clock, resilience } = layer({ degradation: degradation() });
    levels(resilience).setLevel("medium");
    const res = await clock.run(
      resilience.fetch(`${P.base}/v1/jobs`, {
        method: "POST",
        body: '{"steps":50,"model":"premium","quality":1}',
        headers: { "content-type": "application/json", "idempotency-key": "d" },
      }),
    );
    const degraded = '{"steps":30,"model":"standard","quality":0.8}';
    expect([P.hits[0]?.body, S.hits[0]?.body]).toEqual([degraded, degraded]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "spare", degradationLevel: "medium" });
    await res.text();
  });

  it("a query rule rewrites a plain call's query (control, no chain)", async () => {
    P.on(status(200));
    const { clock, resilience } = layer({
      fallback: null,
      degradation: degradation({ rules: [{ match: `${P.base}/plain`, params: { steps: { query: "steps" } } }] }),
    });
    levels(resilience).setLevel("low");
    const res = await clock.run(resilience.fetch(`${P.base}/plain/gen?steps=50&seed=7`));
    expect(P.hits[0]?.path).toBe("/plain/gen?steps=20&seed=7");
    await res.text();
  });

  // docs/degradation.md: a query rule applies per URL prefix; on a chain route
  // every endpoint receives the edited query, as a plain call does.
  it("a query rule on a chain route rewrites the query every endpoint receives", async () => {
    P.on(status(503));
    S.on(status(200));
    const { clock, resilience } = layer({
      degradation: degradation({ rules: [{ match: `${P.base}/v1`, params: { steps: { query: "steps" } } }] }),
    });
    levels(resilience).setLevel("low");
    const res = await clock.run(resilience.fetch(`${P.base}/v1/gen?steps=50&seed=7`));
    await res.text();
    expect([P.hits[0]?.path, S.hits[0]?.path]).toEqual(["/v1/gen?steps=20&seed=7", "/v2/gen?steps=20&seed=7"]);
  });

  // docs/degradation.md: the level header is one of the caller's headers at
  // another origin (SECURITY.md's allowlist): it goes there when named in
  // `crossOriginHeaders`.
  it("the level header goes to the caller's origin; to another origin only when named in crossOriginHeaders", async () => {
    for (const named of [false, true]) {
      P.reset();
      S.reset();
      P.on(status(503));
      S.on(status(200));
      const { clock, resilience } = layer({
        crossOriginHeaders: named ? ["x-trace", "x-degradation-level"] : ["x-trace"],
        degradation: degradation({ levelHeader: "x-degradation-level" }),
      });
      levels(resilience).setLevel("high");
      const res = await clock.run(resilience.fetch(`${P.base}/v1/gen`, { headers: CREDENTIALS }));
      await res.text();
      expect([named, P.hits[0]?.headers["x-degradation-level"], S.hits[0]?.headers["x-degradation-level"]]).toEqual([
        named,
        "high",
        named ? "high" : undefined,
      ]);
      expect(S.hits[0]?.headers.authorization).toBeUndefined();
    }
  });

  it("a header rule's rewritten caller header still stays home", async () => {
    P.on(status(503));
    S.on(status(200));
    const { clock, resilience } = layer({
      degradation: degradation({ rules: [{ match: `${P.base}/v1`, params: { model: { header: "x-model" } } }] }),
    });
    levels(resilience).setLevel("low");
    const res = await clock.run(
      resilience.fetch(`${P.base}/v1/gen`, { headers: { ...CREDENTIALS, "x-model": "premium" } }),
    );
    await res.text();
    expect([P.hits[0]?.headers["x-model"], S.hits[0]?.headers["x-model"]]).toEqual(["basic", undefined]);
  });
});

describe("getResilienceInfo when a chain ends on a turned-down answer", () => {
  // `fromFallback` is "true when an endpoint other than the first one served":
  // false when the chain ends on the primary's own answer.
  it("names the primary and says fromFallback: false when the primary's 500 ends the chain", async () => {
    P.on(status(500));
    const { clock, resilience } = layer();
    const res = await clock.run(resilience.fetch(`${P.base}/v1/jobs`, { method: "POST", body: "job" }));
    await res.text();
    expect([res.status, S.hits.length]).toEqual([500, 0]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "primary", fromFallback: false, attempts: 1 });
  });

  it("names the spare when its answer is the last one given", async () => {
    P.on(status(503));
    S.on(status(502));
    const { clock, resilience } = layer();
    const res = await clock.run(resilience.fetch(`${P.base}/v1/gen`));
    expect(res.status).toBe(502);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "spare", fromFallback: true, attempts: 2 });
    await res.text();
  });
});

describe("idempotency on chains: a POST without Idempotency-Key", () => {
  const retrying = { retry: { maxAttempts: 3, jitter: "none" as const, initialDelay: 10 } };

  it("after a 500 at the primary: not retried, not sent to the spare", async () => {
    P.on(status(500));
    const { clock, resilience } = layer(retrying);
    const res = await clock.run(resilience.fetch(`${P.base}/v1/jobs`, { method: "POST", body: "job" }));
    expect([res.status, P.hits.length, S.hits.length]).toEqual([500, 1, 0]);
    await res.text();
  });

  it("after a reset connection at the primary: not retried, not sent to the spare", async () => {
    P.on(reset);
    const { clock, resilience } = layer(retrying);
    const error = await clock
      .run(resilience.fetch(`${P.base}/v1/jobs`, { method: "POST", body: "job" }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect([P.hits.length, S.hits.length]).toEqual([1, 0]);
  });

  it("after an attempt timeout at the primary: not sent to the spare", async () => {
    P.on(hang);
    const { clock, resilience, calls } = layer({ ...retrying, timeout: { attempt: 1_000 } });
    const call = resilience.fetch(`${P.base}/v1/jobs`, { method: "POST", body: "job" });
    const settled = call.then(
      () => "resolved",
      (e: unknown) => e,
    );
    const held = await P.nth(1);
    const closed = once(held.res, "close");
    await clock.advance(1_000);
    expect(await settled).toBeInstanceOf(FallbackExhaustedError);
    await closed;
    expect([calls.length, P.hits.length, S.hits.length]).toEqual([1, 1, 0]);
  });

  it("after a 503 or a refused connection it goes on to the spare, once", async () => {
    for (const primaryUrl of ["503", "refused"]) {
      P.reset();
      S.reset();
      P.on(status(503));
      S.on(echo);
      const base = primaryUrl === "503" ? P.base : REFUSED;
      const { clock, resilience } = layer({
        retry: false,
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "primary", url: `${base}/v1` },
              { name: "spare", url: `${S.base}/v2` },
            ],
          },
        ]),
      });
      const res = await clock.run(resilience.fetch(`${base}/v1/jobs`, { method: "POST", body: "job" }));
      expect([primaryUrl, res.status, S.hits.map((h) => h.body)]).toEqual([primaryUrl, 200, ["job"]]);
      await res.text();
    }
  });
});

describe("hedging on a chain", () => {
  const hedged = (extra: ResilienceOptions = {}) =>
    layer({
      ...extra,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 100 },
          endpoints: [
            { name: "primary", url: `${P.base}/v1` },
            { name: "spare", url: `${S.base}/v2`, headers: { "x-spare-key": "spare-own" } },
          ],
        },
      ]),
    });

  it("does not hedge a POST without Idempotency-Key", async () => {
    P.on(hang);
    const { clock, resilience, calls } = hedged();
    const call = resilience.fetch(`${P.base}/v1/jobs`, { method: "POST", body: "job" });
    const held = await P.nth(1);
    await clock.advance(1_000);
    expect(calls).toEqual([`${P.base}/v1/jobs`]);
    held.res.end("done");
    const res = await call;
    expect([await res.text(), S.hits.length]).toEqual(["done", 0]);
  });

  it("hedges a POST with a key to the spare, which redirects cross-origin: the key goes, credentials do not, the loser is closed", async () => {
    P.on(hang);
    S.on(redirectTo(`${C.base}/done`, 307));
    C.on(echo);
    const { clock, resilience, calls } = hedged();
    const call = resilience.fetch(`${P.base}/v1/jobs`, {
      method: "POST",
      body: "job",
      headers: { ...CREDENTIALS, "idempotency-key": "h-1" },
    });
    const held = await P.nth(1);
    const loserClosed = once(held.res, "close");
    await clock.advance(100);
    const res = await call;
    expect(await res.json()).toMatchObject({ method: "POST", body: "job" });
    await loserClosed; // the primary's upstream saw the connection closed
    expect(calls).toEqual([`${P.base}/v1/jobs`, `${S.base}/v2/jobs`, `${C.base}/done`]);
    for (const hit of [S.hits[0], C.hits[0]] as Hit[]) {
      expect(hit.headers["idempotency-key"]).toBe("h-1");
      expect([hit.headers.authorization, hit.headers["x-api-key"]]).toEqual([undefined, undefined]);
    }
    expect(C.hits[0]?.headers["x-spare-key"]).toBeUndefined();
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "spare", fromFallback: true, attempts: 2 });
  });

  it("with retry.idempotencyKey, the generated key is the same at both hedged endpoints", async () => {
    P.on(hang);
    S.on(status(200));
    const { clock, resilience } = hedged({ retry: { idempotencyKey: true, maxAttempts: 1 } });
    const call = resilience.fetch(`${P.base}/v1/jobs`, { method: "POST", body: "job" });
    const held = await P.nth(1);
    const loserClosed = once(held.res, "close");
    await clock.advance(100);
    const res = await call;
    await res.text();
    await loserClosed;
    const keys = [P.hits[0]?.headers["idempotency-key"], S.hits[0]?.headers["idempotency-key"]];
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
  });
});

describe("the ky client on the same paths", () => {
  it("a ky POST goes down the chain: the spare gets the degraded, transformed JSON and none of ky's credentials", async () => {
    P.on(status(503));
    S.on(echo);
    const { resilience, clock } = layer(
      { degradation: degradation() },
      {
        transform: (req: { body?: { prompt?: string; steps?: number } }) => ({
          ...req,
          body: { input: req.body?.prompt, n: req.body?.steps },
        }),
      },
    );
    levels(resilience).setLevel("medium");
    const api = createClient({ prefix: `${P.base}/v1`, resilience, headers: { authorization: "Bearer ky-secret" } });
    const answer = await clock.run(
      api.post("jobs", { json: { prompt: "a cat", steps: 50 }, headers: { "idempotency-key": "ky-1" } }).json(),
    );
    expect(answer).toMatchObject({ body: '{"input":"a cat","n":30}' });
    expect(P.hits[0]?.body).toBe('{"prompt":"a cat","steps":30}');
    expect(P.hits[0]?.headers.authorization).toBe("Bearer ky-secret");
    expect(S.hits[0]?.headers.authorization).toBeUndefined();
    expect(S.hits[0]?.headers["idempotency-key"]).toBe("ky-1");
  });

  it("a ky POST without key after a 500 is not sent again (HTTPError with the primary's answer)", async () => {
    P.on(status(500));
    const { resilience, clock } = layer({ retry: { maxAttempts: 3, jitter: "none", initialDelay: 10 } });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const error = await clock.run(
      api.post("jobs", { json: { prompt: "x" } }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).response.status).toBe(500);
    expect([P.hits.length, S.hits.length]).toEqual([1, 0]);
  });

  it("a ky GET redirected to another origin loses its credentials there", async () => {
    P.on(redirectTo(`${C.base}/blob`));
    C.on(status(200));
    const { resilience, clock, redirects } = layer({ fallback: null });
    const api = createClient({
      prefix: `${P.base}/files`,
      resilience,
      headers: { authorization: "Bearer ky-secret", "x-api-key": "k" },
    });
    const text = await clock.run(api.get("1").text());
    expect(text).toBe("200 from /blob");
    expect([C.hits[0]?.headers.authorization, C.hits[0]?.headers["x-api-key"]]).toEqual([undefined, undefined]);
    expect(redirects[0]).toMatchObject({ crossOrigin: true, dropped: ["authorization", "x-api-key"] });
  });
});
