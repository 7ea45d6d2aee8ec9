/**
 * Outside-in attack on the promises of docs/fallback.md, docs/degradation.md
 * and the fallback/degradation rows of docs/options.md, on every path a call
 * can take: a plain call, a `Request` input, a chain (rebasing, `transform`,
 * `validate`, hedging), the ky client and the Worker proxy. Public entries
 * only, against real `node:http` servers on 127.0.0.1 (each port is its own
 * origin). Time moves only on a `TestClock`, except where a real server must
 * be heard from first.
 *
 * Each `it.fails` pins a defect: it asserts the documented behaviour, quoted
 * above it, and fails while the library does otherwise.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { type FallbackEndpoint, fallback } from "../../src/fallback/index.ts";
import {
  ConfigError,
  createResilience,
  type DegradationControl,
  type FallbackEvent,
  getResilienceInfo,
  type ResilienceOptions,
  type StandardSchemaLike,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Handler, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const P = httpUpstream(); // the primary: the origin the caller addresses
const S = httpUpstream(); // the spare, another origin
serveDuringFile(P, S);

const down: Handler = (hit) => {
  hit.res.writeHead(503);
  hit.res.end("down");
};
const ok: Handler = (hit) => {
  hit.res.writeHead(200, { "content-type": "application/json" });
  hit.res.end('{"ok":true}');
};
const ctx = { waitUntil: () => {} };

/** A schema that wants `{ ok: true }`. */
const wantsOk: StandardSchemaLike = {
  "~standard": {
    version: 1,
    vendor: "test",
    validate: (v: unknown) =>
      typeof v === "object" && v !== null && (v as { ok?: unknown }).ok === true
        ? { value: v }
        : { issues: [{ message: "expected ok: true" }] },
  },
};

/** A layer with chain "gen": primary P/v1 → spare S/v2 unless `endpoints` says otherwise. */
function layer(endpoints?: FallbackEndpoint[], options: Omit<ResilienceOptions, "fallback"> = {}) {
  const clock = new TestClock(0);
  const resilience = createResilience({
    clock,
    retry: false,
    fallback: fallback([
      {
        name: "gen",
        endpoints: endpoints ?? [
          { name: "primary", url: `${P.base}/v1` },
          { name: "spare", url: `${S.base}/v2` },
        ],
      },
    ]),
    ...options,
  });
  return { clock, resilience };
}

function levels(resilience: { degradation: DegradationControl | undefined }): DegradationControl {
  if (!resilience.degradation) throw new Error("the layer has no degradation stage");
  return resilience.degradation;
}

describe("which requests go down a chain: the URL, not its spelling", () => {
  // docs/fallback.md: "A request whose URL starts with a chain's first endpoint `url` goes down that chain"
  it("a string URL spelled with an upper-case scheme (the same URL) goes down the chain, as a Request of it does", async () => {
    P.on(down);
    S.on(ok);
    const { resilience } = layer();
    const res = await resilience.fetch(`HTTP://${P.host}/v1/jobs`);
    await res.text();
    expect(getResilienceInfo(res)?.endpoint).toBe("spare");
    expect(S.hits.map((h) => h.path)).toEqual(["/v2/jobs"]);
  });

  // docs/fallback.md: "longest prefix wins; `…/v1` does not capture `…/v10`"
  it("a URL that is …/v10/x, written with a dot segment after …/v1/, is not captured by the …/v1 chain (nor sent off the spare's base)", async () => {
    P.on(down);
    S.on(ok);
    const { resilience } = layer();
    const res = await resilience.fetch(`${P.base}/v1/../v10/x`);
    await res.text();
    expect(P.hits.map((h) => h.path)).toEqual(["/v10/x"]);
    // Captured, the spare received /v10/x: a path outside its configured /v2 base.
    expect(S.hits).toHaveLength(0);
    expect(res.status).toBe(503);
  });

  // docs/fallback.md: "A request whose URL starts with a chain's first endpoint `url` goes down that chain"
  it("a chain whose first url is written HTTP://… still takes a Request for that URL", async () => {
    P.on(down);
    S.on(ok);
    const { resilience } = layer([
      { name: "primary", url: `HTTP://${P.host}/v1` },
      { name: "spare", url: `${S.base}/v2` },
    ]);
    const res = await resilience.fetch(new Request(`${P.base}/v1/jobs`));
    await res.text();
    expect(getResilienceInfo(res)?.endpoint).toBe("spare");
    expect(S.hits).toHaveLength(1);
  });

  // docs/fallback.md, same sentence, on the Worker proxy's path (it builds a Request, whose URL is normalised)
  it("resilientProxy: a route's chain whose first url is written HTTP://… falls back to the spare", async () => {
    P.on(down);
    S.on(ok);
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "c",
            endpoints: [
              { name: "primary", url: `HTTP://${P.host}/v1` },
              { name: "spare", url: `${S.base}/v2` },
            ],
          },
        },
      ],
      resilience: { retry: false },
    });
    const res = await proxy.fetch(new Request("https://worker.example/v1/x"), {}, ctx);
    await res.text();
    expect(res.headers.get("x-resilience-endpoint")).toBe("spare");
    expect(res.status).toBe(200);
  });

  // docs/fallback.md: "A request whose URL starts with a chain's first endpoint `url` goes down that chain
  // (…). The rest of the path and the query are rebased onto each endpoint's `url`"
  it("a call to the first endpoint's url itself, its ?key= included, is sent with that key once", async () => {
    P.on(ok);
    const { resilience } = layer([
      { name: "primary", url: `${P.base}/v1?key=K` },
      { name: "spare", url: `${S.base}/v2` },
    ]);
    const res = await resilience.fetch(`${P.base}/v1?key=K`);
    await res.text();
    // The rest after the url is empty, yet the query is rebased again: "/v1?key=K&key=K".
    expect(P.hits.map((h) => h.path)).toEqual(["/v1?key=K"]);
  });
});

describe("bad endpoints: refused at once, or sent as documented", () => {
  // docs/fallback.md: "`fallback([…])` checks the chains at once (a bad one throws `ConfigError` naming its
  // path, `fallback.0.endpoints.1.url`)" and "The rest of the path and the query are rebased onto each endpoint's `url`"
  it("an endpoint url with a #fragment is refused, or the rest of the path and query still reach it", async () => {
    const endpoints: FallbackEndpoint[] = [
      { name: "primary", url: `${P.base}/v1` },
      { name: "spare", url: `${S.base}/v2#section` },
    ];
    let accepted = true;
    try {
      fallback([{ name: "gen", endpoints }]);
    } catch (error) {
      accepted = false;
      expect(error).toBeInstanceOf(ConfigError);
      expect(String((error as Error).message)).toContain("fallback.0.endpoints.1.url");
    }
    if (!accepted) return;
    P.on(down);
    S.on(ok);
    const { resilience } = layer(endpoints);
    const res = await resilience.fetch(`${P.base}/v1/jobs?x=1`);
    await res.text();
    // Sent as "/v2": the fragment swallowed the rebased path and query.
    expect(S.hits.map((h) => h.path)).toEqual(["/v2/jobs?x=1"]);
  });

  // docs/fallback.md: "a bad one throws `ConfigError` naming its path" and "When every endpoint failed,
  // the call resolves with the last response any endpoint gave"
  it("an endpoint url with user:pass@ is refused at once, or the call still resolves with the primary's 503", async () => {
    const endpoints: FallbackEndpoint[] = [
      { name: "primary", url: `${P.base}/v1` },
      { name: "spare", url: `http://user:SECRET@${S.host}/v2` },
    ];
    let accepted = true;
    try {
      fallback([{ name: "gen", endpoints }]);
    } catch (error) {
      accepted = false;
      expect(error).toBeInstanceOf(ConfigError);
      expect(String((error as Error).message)).toContain("fallback.0.endpoints.1.url");
      expect(String((error as Error).message)).not.toContain("SECRET");
    }
    if (!accepted) return;
    P.on(down);
    const { resilience } = layer(endpoints);
    const events: FallbackEvent[] = [];
    resilience.on("fallback", (e) => events.push(e));
    // Today it rejects with RetryExhaustedError "gave up after 1 attempt to gen": the spare's
    // breaker key refuses its URL outside the chain's error handling.
    const res = await resilience.fetch(`${P.base}/v1/jobs`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("down");
    expect(JSON.stringify(events)).not.toContain("SECRET");
  });

  // docs/degradation.md: "`degradation(options)` checks its options at once (`degradation.levels.medium.maxSteps` …)"
  it("a header rule naming a header that cannot exist is refused at once, naming its path", () => {
    // Accepted today; every call below `full` then rejects with
    // RetryExhaustedError("gave up after 0 attempts … "x model" is an invalid header name").
    expect(() => degradation({ rules: [{ params: { model: { header: "x model" } } }] })).toThrow(
      /degradation\.rules\.0\.params\.model\.header/,
    );
  });

  // docs/degradation.md: "`degradation(options)` checks its options at once"
  it("a levelHeader that is not a header name is refused at once, naming degradation.levelHeader", () => {
    // Accepted today; every call, even at full, then rejects before anything is sent.
    expect(() => degradation({ levelHeader: "x level" })).toThrow(/degradation\.levelHeader/);
  });
});

describe("degradation on a chain's other endpoints", () => {
  // docs/degradation.md: "A call that goes down a fallback chain is rewritten once, by the rule its own
  // URL selects, before the chain: every endpoint gets that request, and an endpoint's `transform`
  // reshapes it for its provider (… never twice to one request)".
  it("every endpoint gets the request as the caller URL's rule rewrote it, once; the spare's rule does not apply on top", async () => {
    P.on(down);
    S.on(ok);
    const { resilience } = layer(undefined, {
      degradation: degradation({
        rules: [
          { match: `${P.base}/v1`, params: { steps: "steps" } },
          { match: `${S.base}/v2`, params: { steps: "parameters.steps" } },
        ],
      }),
    });
    levels(resilience).setLevel("medium");
    const body = JSON.stringify({ steps: 50, parameters: { steps: 50 } });
    const res = await resilience.fetch(`${P.base}/v1/x`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body,
    });
    await res.text();
    expect(JSON.parse(P.hits[0]?.body ?? "")).toEqual({ steps: 30, parameters: { steps: 50 } });
    expect(JSON.parse(S.hits[0]?.body ?? "")).toEqual({ steps: 30, parameters: { steps: 50 } });
  });
});

describe("promises that hold (coverage not found elsewhere)", () => {
  // docs/degradation.md: "`quality` multiplied" — a rewrite applied twice would give 0.64, not 0.8.
  it("quality is multiplied exactly once at medium: plain call, Request, ky, and a hedged chain with a transform and a retry", async () => {
    P.on(down);
    S.on(ok);
    const resilience = createResilience({
      retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" },
      degradation: degradation(),
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 1 },
          endpoints: [
            { name: "primary", url: `${P.base}/v1` },
            { name: "spare", url: `${S.base}/v2`, transform: (req) => ({ ...req, body: { ...req.body, extra: 1 } }) },
          ],
        },
      ]),
    });
    levels(resilience).setLevel("medium");
    const body = JSON.stringify({ quality: 1, steps: 50 });
    await (
      await resilience.fetch(`${P.base}/v1/x`, { method: "PUT", headers: { "content-type": "application/json" }, body })
    ).text();
    await (await resilience.fetch(new Request(`${P.base}/v1/x`, { method: "PUT", body }))).text();
    await createClient({ resilience })
      .put(`${P.base}/v1/x`, { json: { quality: 1, steps: 50 } })
      .text();
    expect(P.hits.length).toBeGreaterThanOrEqual(3);
    for (const hit of P.hits) expect(JSON.parse(hit.body)).toEqual({ quality: 0.8, steps: 30 });
    expect(S.hits).toHaveLength(3);
    for (const hit of S.hits) expect(JSON.parse(hit.body)).toEqual({ quality: 0.8, steps: 30, extra: 1 });
  });

  // docs/fallback.md: "a POST without an `Idempotency-Key` goes to the next endpoint only when it surely was not
  // processed (…)" and "the call resolves with the last response any endpoint gave"
  it("a POST without a key whose 2xx fails validate ends the chain: the spare is not called, the caller gets that answer, readable", async () => {
    P.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/json" });
      hit.res.end('{"bad":1}');
    });
    S.on(ok);
    const { resilience, clock } = layer([
      { name: "primary", url: `${P.base}/v1`, validate: wantsOk },
      { name: "spare", url: `${S.base}/v2` },
    ]);
    const res = await resilience.fetch(`${P.base}/v1/jobs`, { method: "POST", body: "{}" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"bad":1}');
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "primary", fromFallback: false });
    expect(S.hits).toHaveLength(0);
    expect(clock.pending()).toBe(0);
  });

  // docs/fallback.md: "both are counted" (hedges) and the statistics fields
  it("a hedge the spare wins counts one call for each endpoint and a success for the spare only; no timer is left", async () => {
    P.on(() => {}); // never answers
    S.on(ok);
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 100 },
          endpoints: [
            { name: "primary", url: `${P.base}/v1` },
            { name: "spare", url: `${S.base}/v2` },
          ],
        },
      ]),
    });
    const call = resilience.fetch(`${P.base}/v1/x`);
    await P.nth(1);
    await clock.advance(100);
    await (await call).text();
    const stats = resilience.fallback?.chain("gen").statistics();
    expect(stats).toMatchObject({
      lastSuccessfulFallback: "spare",
      overallSuccessRate: 1,
      fallbacks: { primary: { calls: 1, successes: 0 }, spare: { calls: 1, successes: 1 } },
    });
    expect(clock.pending()).toBe(0);
  });
});
