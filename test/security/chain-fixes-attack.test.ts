/**
 * Outside-in attack on the fallback-chain fixes of c190fd7 ("Fallback chains:
 * move-on and retries judged on the request each endpoint was sent…"), public
 * entries only: `asSent`/`mayMoveOn` (try-endpoints), `restOf` (chain-router),
 * `EndpointStats.lost` and the new `fallback([…])` checks. Real `node:http`
 * servers on 127.0.0.1 where no timer matters (retry delays of 1 ms), a stub
 * `fetch` on a `TestClock` where one does.
 *
 * Tried (controls, all held):
 * - transform adds an Idempotency-Key to a keyless POST: retried after 500,
 *   then passed to the spare (as designed: judged on what the primary got);
 *   POST→PUT likewise; PUT→keyless POST and a dropped key: sent once.
 * - `retry.retryOn.methods` customised both ways (PUT not idempotent, POST
 *   idempotent) with a transform that touches the headers only.
 * - `retry.idempotencyKey: true`: the auto key survives a transform and is
 *   the same on every retry and at the spare; a transform that turns a PUT
 *   into a POST got no key then and the POST was sent once; since the
 *   eighteenth session it gets a key of its own (as the caller's POST would)
 *   and is retried, then passed to the spare (the test below, changed).
 * - a `Request` input whose transform drops the key: sent once.
 * - redirects the library follows inside an endpoint (307 and 303), with a
 *   transform adding or dropping the key.
 * - `restOf`: repeated own parameter, several own parameters in any order,
 *   empty pairs (`&&`), a fragment, a `Request` input (`'` read as `%27`),
 *   a degradation `{ query }` rule editing another parameter, a caller who
 *   passes the endpoint's own `org=O` for itself (dropped for the spare, as
 *   documented).
 * - a hedge that lost counts the time it ran (`FallbackChain.run`).
 * - `validate` without a function, with a non-function `validate`, a callable
 *   schema (ArkType-style); `respond` with `transform` or `headers`: a
 *   `ConfigError` naming `fallback.0.endpoints.1`.
 *
 * Defects (each an `it.fails` on the code it was written against, asserting
 * the documented behaviour; all fixed):
 * 1. docs/fallback.md: "a call that carries the first endpoint's own
 *    parameters, wherever in its query and under whatever path, sends them
 *    once to that endpoint and to no other". Parameters are compared as raw
 *    text: a caller who built its URL with `URLSearchParams` (endpoint
 *    `…/v1?key=s3cr/t=`, caller `u.searchParams.set("seed","7")` →
 *    `…/v1/jobs?key=s3cr%2Ft%3D&seed=7`) sends the key to the spare, on
 *    another origin (`/v2/jobs?key=s3cr%2Ft%3D&seed=7`), and the primary gets
 *    it twice.
 * 2. Same sentence: lowercase percent-escapes (endpoint `?key=K%2FX`, caller
 *    `?key=K%2fX`, one value to every server) reach the spare too.
 * 3. docs/fallback.md hedge "for idempotent requests or requests with an
 *    Idempotency-Key only" + "judged on what each endpoint was sent": hedging
 *    is still decided on the caller's request. A PUT whose primary
 *    `transform` sends it as a keyless POST is hedged: while the primary may
 *    still be processing that POST (it answers 500 later, after which the
 *    chain may not move on), the spare already received the job and served it.
 * 4. docs/fallback.md hedge "the first acceptable answer wins and the other
 *    is aborted …; both are counted": when the run ends on a failure after
 *    which it may not move on (`moveOn` false) while a hedge runs, the hedge
 *    is aborted and counted nowhere (`calls: 0`) though it ran 500 ms.
 *
 * Questionable, not pinned: `fallback(chains)` checks the array and keeps
 * a reference to it; an endpoint edited after the check (before
 * `createResilience`) is used unchecked. A losing hedge counts as a call
 * without success, so its `successRate` falls (older behaviour, not new).
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { type FallbackEndpoint, fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, type DegradationControl, getResilienceInfo } from "../../src/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Handler, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { recordingFetch, type Sent } from "../helpers/recording-fetch.ts";

const P = httpUpstream(); // the primary: the origin the caller addresses
const S = httpUpstream(); // the spare, another origin
serveDuringFile(P, S);

const down: Handler = (hit) => {
  hit.res.writeHead(503);
  hit.res.end("down");
};
const failing: Handler = (hit) => {
  hit.res.writeHead(500);
  hit.res.end("boom");
};

/** A stub transport that records what was sent and answers with `answer`. */
function stub(answer: (url: string, n: number) => Response | Promise<Response>) {
  return recordingFetch((sent, n) => answer(sent.url, n));
}

function levels(resilience: { degradation: DegradationControl | undefined }): DegradationControl {
  if (!resilience.degradation) throw new Error("the layer has no degradation stage");
  return resilience.degradation;
}

/** A two-endpoint chain primary (P) → spare (S) on real servers, retry off. */
function keyed(primaryUrl: string, extra: { degradation?: ReturnType<typeof degradation> } = {}) {
  return createResilience({
    retry: false,
    ...extra,
    fallback: fallback([
      {
        name: "gen",
        endpoints: [
          { name: "primary", url: primaryUrl },
          { name: "spare", url: `${S.base}/v2` },
        ],
      },
    ]),
  });
}

describe("restOf: the first endpoint's own parameters go to it once and to no other endpoint", () => {
  it("control: a repeated own parameter (?key=K&x=1&key=K) is taken out twice and put back once", async () => {
    P.on(down);
    const resilience = keyed(`${P.base}/v1?key=K`);
    await (await resilience.fetch(`${P.base}/v1/jobs?key=K&x=1&key=K`)).text();
    expect(P.hits.map((h) => h.path)).toEqual(["/v1/jobs?key=K&x=1"]);
    expect(S.hits.map((h) => h.path)).toEqual(["/v2/jobs?x=1"]);
  });

  it("control: several own parameters in another order, with empty pairs and a fragment", async () => {
    P.on(down);
    const resilience = keyed(`${P.base}/v1?key=K&org=O`);
    await (await resilience.fetch(`${P.base}/v1/jobs?&&org=O&&x=1&key=K#frag`)).text();
    expect(S.hits).toHaveLength(1);
    expect(S.hits[0]?.path).not.toMatch(/key|org/);
    expect(S.hits[0]?.path).toContain("x=1");
    expect(P.hits[0]?.path.match(/key=K/g)).toHaveLength(1);
    expect(P.hits[0]?.path.match(/org=O/g)).toHaveLength(1);
  });

  // Documented: "sends them once to that endpoint and to no other" — also when the caller meant them for itself.
  it("control: a caller passing the endpoint's own org=O for itself: the spare does not get it (as documented)", async () => {
    P.on(down);
    const resilience = keyed(`${P.base}/v1?key=K&org=O`);
    await (await resilience.fetch(`${P.base}/v1/jobs?org=O`)).text();
    expect(S.hits.map((h) => h.path)).toEqual(["/v2/jobs"]);
    expect(P.hits.map((h) => h.path)).toEqual(["/v1/jobs?key=K&org=O"]);
  });

  it("control: a Request input (the platform writes K'1 as K%271) keeps the key home", async () => {
    P.on(down);
    const resilience = keyed(`${P.base}/v1?key=K'1`);
    await (await resilience.fetch(new Request(`${P.base}/v1/jobs?x=1&key=K'1`))).text();
    expect(S.hits.map((h) => h.path)).toEqual(["/v2/jobs?x=1"]);
    expect(P.hits).toHaveLength(1);
    expect(P.hits[0]?.path.match(/key=/g)).toHaveLength(1);
  });

  it("control: a degradation { query } rule editing another parameter leaves the key home", async () => {
    P.on(down);
    const resilience = keyed(`${P.base}/v1?key=K`, {
      degradation: degradation({ rules: [{ params: { steps: { query: "steps" } } }] }),
    });
    levels(resilience).setLevel("medium");
    await (await resilience.fetch(`${P.base}/v1/jobs?steps=50&key=K`)).text();
    expect(S.hits.map((h) => h.path)).toEqual(["/v2/jobs?steps=30"]);
    expect(P.hits.map((h) => h.path)).toEqual(["/v1/jobs?key=K&steps=30"]);
  });

  it("a URL re-serialised by URLSearchParams (key=s3cr%2Ft%3D) does not carry the key to the spare", async () => {
    P.on(down);
    const resilience = keyed(`${P.base}/v1?key=s3cr/t=`);
    const url = new URL(`${P.base}/v1/jobs?key=s3cr/t=`);
    url.searchParams.set("seed", "7");
    expect(url.search).toBe("?key=s3cr%2Ft%3D&seed=7");
    const res = await resilience.fetch(url);
    await res.text();
    expect(getResilienceInfo(res)?.endpoint).toBe("spare");
    // Today: the spare (another origin) gets "/v2/jobs?key=s3cr%2Ft%3D&seed=7", the primary the key twice.
    expect(S.hits.map((h) => h.path)).toEqual(["/v2/jobs?seed=7"]);
  });

  it("a lowercase percent-escape of the same key (K%2fX for K%2FX) does not reach the spare", async () => {
    P.on(down);
    const resilience = keyed(`${P.base}/v1?key=K%2FX`);
    await (await resilience.fetch(`${P.base}/v1/jobs?x=1&key=K%2fX`)).text();
    // Today: "/v2/jobs?x=1&key=K%2fX".
    expect(S.hits.map((h) => h.path)).toEqual(["/v2/jobs?x=1"]);
  });
});

describe("asSent / mayMoveOn: retries and moving on judged on what each endpoint was sent", () => {
  /** primary (a.example) answers 500, spare (b.example) 200; default 3 attempts. */
  function chain(
    transform: FallbackEndpoint["transform"],
    retry: NonNullable<Parameters<typeof createResilience>[0]>["retry"],
    spareTransform?: FallbackEndpoint["transform"],
  ) {
    const clock = new TestClock(0);
    const upstream = stub((url) => new Response("x", { status: url.startsWith("https://a.example") ? 500 : 200 }));
    const resilience = createResilience({
      clock,
      retry,
      fetch: upstream.fetch,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: "https://a.example/v1", ...(transform ? { transform } : {}) },
            { name: "spare", url: "https://b.example/v2", ...(spareTransform ? { transform: spareTransform } : {}) },
          ],
        },
      ]),
    });
    return { clock, upstream, resilience };
  }
  const fastRetry = { jitter: "none" as const, initialDelay: 10 };
  const urls = (sent: Sent[]) => sent.map((s) => s.url);

  it("control: a keyless POST whose transform adds a key is retried after 500, then sent to the spare", async () => {
    const { clock, upstream, resilience } = chain((req) => {
      req.headers.set("idempotency-key", "k1");
      return req;
    }, fastRetry);
    const res = await clock.run(resilience.fetch("https://a.example/v1/jobs", { method: "POST", body: '{"p":1}' }));
    expect(res.status).toBe(200);
    expect(urls(upstream.sent)).toEqual([
      "https://a.example/v1/jobs",
      "https://a.example/v1/jobs",
      "https://a.example/v1/jobs",
      "https://b.example/v2/jobs",
    ]);
  });

  it("control: a keyless POST sent as a PUT is retried and moves on; a PUT sent as a keyless POST goes once", async () => {
    const toPut = chain((req) => ({ ...req, method: "put" }), fastRetry);
    const a = await toPut.clock.run(toPut.resilience.fetch("https://a.example/v1/j", { method: "POST", body: "{}" }));
    expect(a.status).toBe(200);
    expect(toPut.upstream.sent.map((s) => s.method)).toEqual(["PUT", "PUT", "PUT", "POST"]);

    const toPost = chain((req) => ({ ...req, method: "POST" }), fastRetry);
    const b = await toPost.clock.run(toPost.resilience.fetch("https://a.example/v1/j", { method: "PUT", body: "{}" }));
    expect(b.status).toBe(500);
    expect(urls(toPost.upstream.sent)).toEqual(["https://a.example/v1/j"]);
  });

  it("control: retryOn.methods without PUT: a PUT whose transform only adds a header is sent once", async () => {
    const { clock, upstream, resilience } = chain(
      (req) => {
        req.headers.set("x-provider", "a");
        return req;
      },
      { ...fastRetry, retryOn: { methods: ["GET", "HEAD"] } },
    );
    const res = await clock.run(resilience.fetch("https://a.example/v1/j", { method: "PUT", body: "{}" }));
    expect(res.status).toBe(500);
    expect(urls(upstream.sent)).toEqual(["https://a.example/v1/j"]);
  });

  it("control: retryOn.methods with POST: a POST whose transform changes headers is retried and moves on", async () => {
    const { clock, upstream, resilience } = chain(
      (req) => {
        req.headers.set("x-provider", "a");
        return req;
      },
      { ...fastRetry, retryOn: { methods: ["get", "post"] } },
    );
    const res = await clock.run(resilience.fetch("https://a.example/v1/j", { method: "POST", body: "{}" }));
    expect(res.status).toBe(200);
    expect(upstream.sent).toHaveLength(4);
  });

  it("control: idempotencyKey: true — the auto key survives a transform, one key on every retry and at the spare", async () => {
    const { clock, upstream, resilience } = chain(
      (req) => ({ ...req, body: { ...req.body, provider: "a" } }),
      { ...fastRetry, idempotencyKey: true },
      (req) => ({ ...req, body: { ...req.body, provider: "b" } }),
    );
    const res = await clock.run(resilience.fetch("https://a.example/v1/j", { method: "POST", body: '{"p":1}' }));
    expect(res.status).toBe(200);
    const keys = upstream.sent.map((s) => s.headers.get("idempotency-key"));
    expect(keys).toHaveLength(4);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("idempotencyKey: true — a PUT a transform sends as POST gets a key of its own, kept on every retry", async () => {
    const { clock, upstream, resilience } = chain((req) => ({ ...req, method: "POST" }), {
      ...fastRetry,
      idempotencyKey: true,
    });
    const res = await clock.run(resilience.fetch("https://a.example/v1/j", { method: "PUT", body: "{}" }));
    expect(res.status).toBe(200);
    expect(upstream.sent.map((s) => s.method)).toEqual(["POST", "POST", "POST", "PUT"]);
    const keys = upstream.sent.map((s) => s.headers.get("idempotency-key"));
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys.slice(0, 3)).size).toBe(1);
    // The spare is sent the caller's PUT, which needs no key.
    expect(keys[3]).toBeNull();
  });

  it("idempotencyKey off — a PUT a transform sends as POST gets no key and goes once", async () => {
    const { clock, upstream, resilience } = chain((req) => ({ ...req, method: "POST" }), fastRetry);
    const res = await clock.run(resilience.fetch("https://a.example/v1/j", { method: "PUT", body: "{}" }));
    expect(res.status).toBe(500);
    expect(upstream.sent).toHaveLength(1);
    expect(upstream.sent[0]?.headers.has("idempotency-key")).toBe(false);
  });

  it("idempotencyKey: true — a key a transform drops from the caller's POST stays dropped: sent once", async () => {
    const { clock, upstream, resilience } = chain(
      (req) => {
        req.headers.delete("idempotency-key");
        return req;
      },
      { ...fastRetry, idempotencyKey: true },
    );
    const res = await clock.run(resilience.fetch("https://a.example/v1/j", { method: "POST", body: "{}" }));
    expect(res.status).toBe(500);
    expect(upstream.sent).toHaveLength(1);
    expect(upstream.sent[0]?.headers.has("idempotency-key")).toBe(false);
  });

  it("a transform's method the call's mode refuses fails before anything is sent; the spare answers", async () => {
    const { clock, upstream, resilience } = chain((req) => ({ ...req, method: "PUT" }), fastRetry);
    const res = await clock.run(
      resilience.fetch("https://a.example/v1/j", { method: "POST", body: "{}", mode: "no-cors" }),
    );
    expect(res.status).toBe(200);
    expect(urls(upstream.sent)).toEqual(["https://b.example/v2/j"]);
    expect(resilience.health().breakers["a.example"]).toBeUndefined();
    const forbidden = chain((req) => ({ ...req, method: "TRACE" }), fastRetry);
    const answer = await forbidden.clock.run(forbidden.resilience.fetch("https://a.example/v1/j"));
    expect(answer.status).toBe(200);
    expect(urls(forbidden.upstream.sent)).toEqual(["https://b.example/v2/j"]);
  });

  it("names the endpoint and the method when the transform's method is refused and no endpoint is left", async () => {
    const upstream = stub(() => new Response("x"));
    const resilience = createResilience({
      fetch: upstream.fetch,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [{ name: "only", url: "https://a.example/v1", transform: (req) => ({ ...req, method: "put" }) }],
        },
      ]),
    });
    const error = await resilience
      .fetch("https://a.example/v1/j", { method: "POST", body: "{}", mode: "no-cors" })
      .catch((e: unknown) => e);
    const cause = (error as { errors: Record<string, Error> }).errors.only as Error;
    expect(cause).toBeInstanceOf(TypeError);
    expect(cause.message).toMatch(
      /^fallback endpoint "only": transform\(request\) returned method "PUT", which this call cannot send \(resilience\.fetch: this runtime refuses the call: .+\)$/,
    );
    expect(upstream.sent).toEqual([]);
  });

  it("control: a Request input with an Idempotency-Key its transform drops is sent once", async () => {
    const { clock, upstream, resilience } = chain((req) => {
      req.headers.delete("Idempotency-Key");
      return req;
    }, fastRetry);
    const request = new Request("https://a.example/v1/j", {
      method: "POST",
      body: '{"p":1}',
      headers: { "Idempotency-Key": "job-9", "content-type": "application/json" },
    });
    const res = await clock.run(resilience.fetch(request));
    expect(res.status).toBe(500);
    expect(urls(upstream.sent)).toEqual(["https://a.example/v1/j"]);
  });

  it("control: a spare whose transform drops the key: the primary (keyed) moves on; the spare is not retried", async () => {
    const clock = new TestClock(0);
    const upstream = stub(() => new Response("x", { status: 500 }));
    const resilience = createResilience({
      clock,
      retry: fastRetry,
      fetch: upstream.fetch,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: "https://a.example/v1" },
            {
              name: "spare",
              url: "https://b.example/v2",
              transform: (req) => {
                req.headers.delete("idempotency-key");
                return req;
              },
            },
            { name: "third", url: "https://c.example/v3" },
          ],
        },
      ]),
    });
    const res = await clock.run(
      resilience.fetch("https://a.example/v1/j", { method: "POST", body: "{}", headers: { "idempotency-key": "k" } }),
    );
    expect(res.status).toBe(500);
    expect(urls(upstream.sent)).toEqual([
      "https://a.example/v1/j",
      "https://a.example/v1/j",
      "https://a.example/v1/j",
      "https://b.example/v2/j",
    ]);
  });

  // docs/fallback.md: "`hedge: { delay }`, for idempotent requests or requests with an `Idempotency-Key`
  // only" and "a POST without an `Idempotency-Key` goes to the next endpoint only when it surely was not
  // processed"; CHANGELOG: "It is now judged on what each endpoint was sent."
  it("a PUT the primary's transform sends as a keyless POST is not hedged to the spare while the primary runs", async () => {
    const clock = new TestClock(0);
    const sent: string[] = [];
    const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      const request = new Request(input, init);
      sent.push(`${request.method} ${request.url}`);
      const primary = request.url.startsWith("https://a.example");
      return new Promise<Response>((resolve, reject) => {
        const cancel = clock.setTimer(
          () => resolve(new Response(primary ? "boom" : "ok", { status: primary ? 500 : 200 })),
          primary ? 3_000 : 500,
        );
        init?.signal?.addEventListener("abort", () => {
          cancel();
          reject(init.signal?.reason);
        });
      });
    };
    const resilience = createResilience({
      clock,
      retry: false,
      fetch,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "primary", url: "https://a.example/v1", transform: (req) => ({ ...req, method: "POST" }) },
            { name: "spare", url: "https://b.example/v2" },
          ],
        },
      ]),
    });
    const res = await clock.run(resilience.fetch("https://a.example/v1/j", { method: "PUT", body: '{"p":1}' }));
    await res.text();
    // Today: ["POST https://a.example/v1/j", "PUT https://b.example/v2/j"]: the spare got the job at 1 s,
    // while the primary's keyless POST was still in flight, and served it (200, fromFallback).
    expect(sent).toEqual(["POST https://a.example/v1/j"]);
    expect(res.status).toBe(500);
  });
});

describe("redirects the library follows inside a chain endpoint (real servers)", () => {
  function chain(transform: FallbackEndpoint["transform"]) {
    return createResilience({
      retry: { jitter: "none", initialDelay: 1, maxDelay: 2 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: `${P.base}/v1`, transform },
            { name: "spare", url: `${S.base}/v2` },
          ],
        },
      ]),
    });
  }
  const redirectThenFail = (status: number): Handler => {
    return (hit) => {
      if (hit.path.startsWith("/v1/jobs")) {
        hit.res.writeHead(status, { location: "/v1/done" });
        hit.res.end();
      } else failing(hit);
    };
  };

  it("control: keyless POST, transform adds a key, 307 then 500: retried (two hops each), then the spare", async () => {
    P.on(redirectThenFail(307));
    const resilience = chain((req) => {
      req.headers.set("idempotency-key", "k7");
      return req;
    });
    const res = await resilience.fetch(`${P.base}/v1/jobs`, { method: "POST", body: '{"p":1}' });
    expect(await res.text()).toBe("ok");
    expect(P.hits.map((h) => `${h.method} ${h.path}`)).toEqual([
      "POST /v1/jobs",
      "POST /v1/done",
      "POST /v1/jobs",
      "POST /v1/done",
      "POST /v1/jobs",
      "POST /v1/done",
    ]);
    expect(P.hits.every((h) => h.headers["idempotency-key"] === "k7")).toBe(true);
    expect(S.hits.map((h) => `${h.method} ${h.path}`)).toEqual(["POST /v2/jobs"]);
    expect(S.hits[0]?.headers["idempotency-key"]).toBeUndefined();
  });

  it("control: keyed POST, transform drops the key, 303 then 500: one exchange, no spare", async () => {
    P.on(redirectThenFail(303));
    const resilience = chain((req) => {
      req.headers.delete("idempotency-key");
      return req;
    });
    const res = await resilience.fetch(`${P.base}/v1/jobs`, {
      method: "POST",
      body: '{"p":1}',
      headers: { "idempotency-key": "k8" },
    });
    expect(res.status).toBe(500);
    await res.text();
    expect(P.hits.map((h) => `${h.method} ${h.path}`)).toEqual(["POST /v1/jobs", "GET /v1/done"]);
    expect(S.hits).toHaveLength(0);
  });
});

describe("EndpointStats.lost: a losing hedge counts the time it ran", () => {
  /** An entry that settles after `ms` on `clock` (value or failure), rejecting at its signal's abort. */
  function settlesAfter(clock: TestClock, ms: number, outcome: "ok" | "fail") {
    return (_input: unknown, { signal }: { signal: AbortSignal | undefined }) =>
      new Promise<string>((resolve, reject) => {
        const cancel = clock.setTimer(() => (outcome === "ok" ? resolve("v") : reject(new Error("x"))), ms);
        signal?.addEventListener("abort", () => {
          cancel();
          reject(signal.reason);
        });
      });
  }

  it("control: a primary that ran 1.5 s and lost counts 1 call of 1500 ms; the winner its own 500 ms", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<unknown, string>("c", { clock });
    chain.add(settlesAfter(clock, 10_000, "ok"), { name: "slow" });
    chain.add(settlesAfter(clock, 500, "ok"), { name: "fast" });
    const result = await clock.run(chain.run(undefined, { hedgeDelay: 1_000 }));
    expect(result).toMatchObject({ ok: true, name: "fast" });
    const stats = chain.statistics().fallbacks;
    expect(stats.slow).toMatchObject({ calls: 1, successes: 0, meanLatencyMs: 1_500 });
    expect(stats.fast).toMatchObject({ calls: 1, successes: 1, meanLatencyMs: 500 });
  });

  // docs/fallback.md (hedge): "the first acceptable answer wins and the other is aborted (…); both are counted"
  it("a hedge aborted because the run may not move on after the other's failure is still counted", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<unknown, string>("c", { clock });
    chain.add(settlesAfter(clock, 1_500, "fail"), { name: "first" });
    chain.add(settlesAfter(clock, 10_000, "ok"), { name: "hedge" });
    const result = await clock.run(chain.run(undefined, { hedgeDelay: 1_000, moveOn: () => false }));
    expect(result.ok).toBe(false);
    const stats = chain.statistics().fallbacks;
    expect(stats.first).toMatchObject({ calls: 1, meanLatencyMs: 1_500 });
    // Today: { calls: 0, meanLatencyMs: 0 } — it ran 500 ms and is counted nowhere.
    expect(stats.hedge).toMatchObject({ calls: 1, meanLatencyMs: 500 });
  });
});

describe("fallback([…]) refuses validate without a function and respond with transform/headers", () => {
  const url = "https://a.example/v1";
  function refused(endpoint: Record<string, unknown>): ConfigError {
    try {
      fallback([{ name: "c", endpoints: [{ name: "p", url }, endpoint as unknown as FallbackEndpoint] }]);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return error as ConfigError;
    }
    throw new Error("accepted");
  }

  it("control: validate { '~standard': {} } and a non-function validate are ConfigErrors naming the endpoint", () => {
    expect(refused({ name: "s", url: "https://b.example/v2", validate: { "~standard": {} } }).message).toContain(
      "fallback.0.endpoints.1",
    );
    expect(
      refused({ name: "s", url: "https://b.example/v2", validate: { "~standard": { validate: "yes" } } }).message,
    ).toContain("fallback.0.endpoints.1");
  });

  it("control: a callable schema (ArkType-style) with ~standard.validate is accepted", () => {
    const schema = Object.assign(() => true, {
      "~standard": { version: 1, vendor: "x", validate: (value: unknown) => ({ value }) },
    });
    expect(() =>
      fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url },
            { name: "s", url: "https://b.example/v2", validate: schema as unknown as FallbackEndpoint["validate"] },
          ],
        },
      ]),
    ).not.toThrow();
  });

  it("control: respond with transform, or with headers, is a ConfigError naming fallback.0.endpoints.1", () => {
    const respond = () => new Response("cached");
    expect(refused({ name: "cache", respond, transform: (r: unknown) => r }).message).toContain(
      "fallback.0.endpoints.1",
    );
    expect(refused({ name: "cache", respond, headers: { "x-a": "1" } }).message).toContain("fallback.0.endpoints.1");
    expect(refused({ name: "cache", respond, headers: {} }).message).toContain("fallback.0.endpoints.1");
  });
});
