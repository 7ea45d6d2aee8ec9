/**
 * Outside-in attack on docs/fallback.md, sentence by sentence (chains, routing, rebasing, transforms, adaptive
 * order, hedging, `validate`, moving on, statistics, Idempotency-Key across a chain).
 * Docs: docs/fallback.md: "Under another name (`append`ed, or in a `Headers` of the transform's own, such as
 * `x-goog-api-key` holding the caller's `x-api-key`; an allowlisted name, or one of `crossOriginHeaders`, too) it
 * stays home when it holds one of those values or parts of 8 characters or more: a key or a session, not a `1`
 * any header may hold. The same holds for hedges and redirects"; "The rest of the path and the query are rebased
 * onto each endpoint's `url` (an endpoint's own query, `?key=…`, stays on it …)"; "The first endpoint gets the URL
 * called, every slash of it (`…/v1//x` under a chain at `…/v1/` too); on every endpoint, a closing `/` (or `\`,
 * which the parser reads as one) of its `url` is the first slash of the path below, and only that one";
 * "To an origin other than the one the caller addressed, only an allowlist of the caller's headers goes";
 * "An endpoint's own `headers` … are sent"; "and the body is replayed"; "one whose body `validate` stopped
 * reading, too large or too slow, comes, if the call resolves with it, as a new `Response` that pipes on the rest
 * of its body under your signal, with the endpoint's status, headers, `url` and `redirected`, and whose headers,
 * unlike fetch's, can be changed"; "So does a 2xx that fails `validate`: the endpoint took the job, and the call
 * resolves with that answer as it is (`getResilienceInfo(res)` names the endpoint)"; "`FallbackExhaustedError`
 * (`errors` per endpoint; its message lists them in the order they failed, its `cause` is the last one's
 * error)"; "the first acceptable answer wins … all are counted"; statistics "so does one its full bulkhead refused
 * (it did not serve, though nothing was sent: `order: \"adaptive\"` moves a busy endpoint down)"; "with
 * `retry.idempotencyKey`, a POST or PATCH it makes of another method gets an `Idempotency-Key` of its own, as the
 * caller's would have".
 * How: `createResilience`, `getResilienceInfo`, `FallbackExhaustedError` (.), `fallback` (./fallback),
 * `resilientProxy` (./cloudflare, run in Node as a plain handler); three node:http servers on 127.0.0.1 that record
 * path, query, headers and body (test/helpers/http-upstream.ts), and a refused origin.
 * Paths: chain (plain URL string, `URL` object, `Request` input with body, headers and signal), `transform`, hedge,
 * a redirect the library follows inside an endpoint, `validate`, a full bulkhead, the Worker proxy's chain route.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a value moved under a name the caller sent too is looked for among all the
 * caller's values):
 * 1. docs/fallback.md "Under another name (… in a `Headers` of the transform's own …) it stays home when it holds
 *    one of those values or parts of 8 characters or more … The same holds for hedges". Observed: a cross-origin
 *    endpoint's `transform` that returns a `Headers` of its own with the caller's `authorization` value
 *    (`Bearer sk-live-…`) under `x-api-key` sends it to the other origin whenever the caller also sent an
 *    `x-api-key` of its own (any value, an empty one too); under a name the caller did not send
 *    (`x-goog-api-key`), or an allowlisted one (`content-type`), the same value stays home (held, below). Seen on a
 *    plain chain call, through `resilientProxy`'s chain route, and on a hedge (a caller's `cookie` session under
 *    `x-api-key: ""`). Cause: src/fallback/endpoint-request.ts `transformedRequest`: for a name outside the
 *    allowlist, `theirs = caller.get(name)`, and only when the caller lacks that name (`null`) is the value checked
 *    against the caller's other values (`secrets`); when the caller sent the name, only that header's own value
 *    and parts are looked for, so any other header's value moved under it goes out.
 *
 * Held (plain `it`):
 * - Controls of 1: the caller's `authorization` in a transform's own `Headers` under `x-goog-api-key` (a name the
 *   caller did not send) or `content-type` (allowlisted) stays home.
 * - `URL` object input: `…/v1//a%2Fb/%7Ec;p?x=1&y=%2F#frag` under a chain at `…/v1/` reaches the first endpoint
 *   with every slash and escape, and an endpoint at `…/v2\?key=K2` as `/v2//a%2Fb/%7Ec;p?key=K2&x=1&y=%2F`; the
 *   fragment goes to neither.
 * - `Request` input (PUT, JSON body with a 64-bit integer, `authorization`, `cookie`, own signal): the first
 *   endpoint gets the credentials; the cross-origin spare gets the path and query rebased, the bytes as written,
 *   `content-type` and its own header, and neither credential.
 * - `validate` stopping its read (body over `maxReplayBytes`) after a 307 the library followed inside the
 *   endpoint: a keyless POST resolves with that answer, status 200, its header, `url` the last hop, `redirected`
 *   true, headers that can be changed, the body whole, `endpoint` "a"; the spare is sent nothing.
 * - Hedge: a primary that drops after the hedge's refused origin failed: `FallbackExhaustedError` lists the hedge
 *   first (the order they failed), `cause` the primary's error; both counted as calls without success.
 * - A full bulkhead on the primary's host: a keyless POST moves on (nothing was sent), the primary counts a failed
 *   call, `order: "adaptive"` ranks it second.
 * - `retry.idempotencyKey`: a `transform` that makes a GET a POST gives it an `Idempotency-Key`; its 500 then
 *   moves the chain on to the third endpoint.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, FallbackExhaustedError, getResilienceInfo } from "../../src/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const busy = (hit: Hit): void => {
  hit.res.writeHead(503, { "content-type": "text/plain" }).end("busy");
};

/** A Standard Schema that accepts objects with `ok: true`. */
const schema = {
  "~standard": {
    version: 1 as const,
    vendor: "test",
    validate: (value: unknown) =>
      (value as { ok?: unknown } | null)?.ok === true ? { value } : { issues: [{ message: "not ok" }] },
  },
};

type Chain = Parameters<typeof fallback>[0][number];
type Options = Omit<NonNullable<Parameters<typeof createResilience>[0]>, "fallback">;

function chainLayer(
  endpoints: Chain["endpoints"],
  extra: Omit<Chain, "name" | "endpoints"> = {},
  options: Options = { retry: false },
) {
  return createResilience({ ...options, fallback: fallback([{ name: "jobs", endpoints, ...extra }]) });
}

const SECRET = "Bearer sk-live-0123456789";

/** A `transform` that returns a `Headers` of its own with the caller's `from` header under `to`. */
function moveUnder(from: string, to: string): NonNullable<Chain["endpoints"][number]["transform"]> {
  return (req) => {
    const own = new Headers(req.headers);
    own.set(to, req.headers.get(from) ?? "");
    return { ...req, headers: own };
  };
}

describe("credentials moved under another name by a transform's own Headers", () => {
  it("the caller's authorization under x-api-key stays home when the caller sent an x-api-key too", async () => {
    a.on(busy);
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "b", url: `${b.base}/v2`, transform: moveUnder("authorization", "x-api-key") },
    ]);
    const res = await layer.fetch(`${a.base}/v1/x`, { headers: { authorization: SECRET, "x-api-key": "pub" } });
    expect(res.status).toBe(200);
    expect(b.hits.length).toBe(1);
    // Observed: "Bearer sk-live-0123456789" (also through resilientProxy's chain route, and on a hedge).
    expect(b.hits[0]?.headers["x-api-key"]).toBeUndefined();
  });

  it("the same through resilientProxy and a hedge: the value stays home", async () => {
    a.on(busy);
    const proxy = resilientProxy<object>({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "p",
            endpoints: [
              { name: "a", url: `${a.base}/v1` },
              { name: "b", url: `${b.base}/v2`, transform: moveUnder("authorization", "x-api-key") },
            ],
          },
        },
      ],
      resilience: { retry: false },
    });
    const res = await proxy.fetch(
      new Request("https://worker.example/v1/x", { headers: { authorization: SECRET, "x-api-key": "pub" } }),
      {},
      { waitUntil() {} },
    );
    expect(res.status).toBe(200);
    expect(b.hits[0]?.headers["x-api-key"]).toBeUndefined();
    b.reset();
    a.on(() => {}); // the primary never answers: the hedge wins
    const hedged = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v2`, transform: moveUnder("cookie", "x-api-key") },
      ],
      { hedge: { delay: 10 } },
    );
    const won = await hedged.fetch(`${a.base}/v1/x`, {
      headers: { cookie: "session=0123456789abcdef", "x-api-key": "" },
    });
    expect(won.status).toBe(200);
    expect(b.hits[0]?.headers.cookie).toBeUndefined();
    expect(b.hits[0]?.headers["x-api-key"]).toBeUndefined();
  });

  it("under a name the caller did not send, or an allowlisted one, the same value stays home", async () => {
    for (const to of ["x-goog-api-key", "content-type"]) {
      a.reset();
      b.reset();
      a.on(busy);
      const layer = chainLayer([
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v2`, transform: moveUnder("authorization", to) },
      ]);
      const res = await layer.fetch(`${a.base}/v1/x`, { headers: { authorization: SECRET, "x-api-key": "pub" } });
      expect(res.status).toBe(200);
      expect(a.hits[0]?.headers.authorization).toBe(SECRET);
      expect(b.hits[0]?.headers[to]).toBeUndefined();
      expect(b.hits[0]?.headers.authorization).toBeUndefined();
      expect(b.hits[0]?.headers["x-api-key"]).toBeUndefined();
    }
  });
});

describe("rebasing and replay", () => {
  it("a URL object keeps every slash and escape, onto a base closed by `\\` with its own key", async () => {
    a.on(busy);
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1/` },
      { name: "b", url: `${b.base}/v2\\?key=K2` },
    ]);
    const res = await layer.fetch(new URL(`${a.base}/v1//a%2Fb/%7Ec;p?x=1&y=%2F#frag`));
    expect(res.status).toBe(200);
    expect(a.hits[0]?.path).toBe("/v1//a%2Fb/%7Ec;p?x=1&y=%2F");
    expect(b.hits[0]?.path).toBe("/v2//a%2Fb/%7Ec;p?key=K2&x=1&y=%2F");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true });
  });

  it("a Request input's body and headers: credentials home, bytes, path and query at the spare", async () => {
    a.on(busy);
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "b", url: `${b.base}/v2`, headers: { "x-b": "own" } },
    ]);
    const body = '{"n":12345678901234567890}';
    const req = new Request(`${a.base}/v1/x?q=1`, {
      method: "PUT",
      body,
      headers: { authorization: SECRET, "content-type": "application/json", cookie: "s=1" },
      signal: new AbortController().signal,
    });
    const res = await layer.fetch(req);
    expect(res.status).toBe(200);
    expect(a.hits[0]?.headers.authorization).toBe(SECRET);
    expect(a.hits[0]?.headers.cookie).toBe("s=1");
    const spare = b.hits[0] as Hit;
    expect(spare.method).toBe("PUT");
    expect(spare.path).toBe("/v2/x?q=1");
    expect(spare.body).toBe(body);
    expect(spare.headers["content-type"]).toBe("application/json");
    expect(spare.headers["x-b"]).toBe("own");
    expect(spare.headers.authorization).toBeUndefined();
    expect(spare.headers.cookie).toBeUndefined();
  });
});

describe("validate, hedge accounting, bulkhead, keys", () => {
  it("an answer validate stopped reading after a followed redirect keeps status, headers, url, redirected", async () => {
    const big = JSON.stringify({ ok: false, pad: "y".repeat(5000) });
    a.on((hit) => {
      if (hit.path.startsWith("/v1/x")) hit.res.writeHead(307, { location: `${a.base}/final` }).end();
      else hit.res.writeHead(200, { "content-type": "application/json", "x-tag": "t1" }).end(big);
    });
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1`, validate: schema },
        { name: "b", url: `${b.base}/v2` },
      ],
      {},
      { retry: false, maxReplayBytes: 1024 },
    );
    const res = await layer.fetch(`${a.base}/v1/x`, { method: "POST", body: "{}" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-tag")).toBe("t1");
    expect(res.url).toBe(`${a.base}/final`);
    expect(res.redirected).toBe(true);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", fromFallback: false });
    res.headers.set("x-mine", "1");
    expect(res.headers.get("x-mine")).toBe("1");
    expect(await res.text()).toBe(big);
    expect(b.hits.length).toBe(0);
  });

  it("a hedged chain's FallbackExhaustedError lists endpoints in the order they failed; both counted", async () => {
    const refused = await refusedOrigin();
    a.on((hit) => {
      setTimeout(() => hit.req.socket.destroy(), 80);
    });
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${refused}/v2` },
      ],
      { hedge: { delay: 10 } },
    );
    const error = (await rejection(layer.fetch(`${a.base}/v1/x`))) as FallbackExhaustedError;
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(error.message.indexOf("b:")).toBeGreaterThan(-1);
    expect(error.message.indexOf("b:")).toBeLessThan(error.message.indexOf("a:"));
    expect(error.cause).toBe(error.errors.a);
    const stats = layer.fallback.chain("jobs").statistics() as unknown as {
      fallbacks: Record<string, { calls: number; successes: number }>;
    };
    expect(stats.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(stats.fallbacks.b).toMatchObject({ calls: 1, successes: 0 });
  });

  it("a full bulkhead moves a keyless POST on, counts the busy endpoint failed, ranks it down", async () => {
    a.on(() => {});
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v2` },
      ],
      { order: "adaptive" },
      { retry: false, bulkhead: { maxConcurrent: 1 } },
    );
    const caller = new AbortController();
    const holding = layer.fetch(`${a.base}/v1/hang`, { signal: caller.signal }).catch(() => undefined);
    await a.nth(1);
    const res = await layer.fetch(`${a.base}/v1/x`, { method: "POST", body: "{}" });
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true });
    expect(a.hits.length).toBe(1);
    expect(b.hits[0]?.body).toBe("{}");
    const chain = layer.fallback.chain("jobs");
    const stats = chain.statistics() as unknown as { fallbacks: Record<string, { calls: number; successes: number }> };
    expect(stats.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(chain.ordered()).toEqual(["b", "a"]);
    caller.abort();
    await holding;
  });

  it("retry.idempotencyKey gives a transform's POST made of a GET a key, and its 500 moves on", async () => {
    a.on(busy);
    b.on((hit) => hit.res.writeHead(500).end("boom"));
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v2`, transform: (req) => ({ ...req, method: "POST", body: { q: 1 } }) },
        { name: "c", url: `${c.base}/v3` },
      ],
      {},
      { retry: { maxAttempts: 1, idempotencyKey: true } },
    );
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(200);
    expect(b.hits[0]?.method).toBe("POST");
    expect(b.hits[0]?.headers["idempotency-key"]).toMatch(/\S{8,}/);
    expect(c.hits[0]?.method).toBe("GET");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "c" });
  });
});
