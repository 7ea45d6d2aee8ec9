/**
 * Outside-in attack on docs/fallback.md as it stands after today's change (a chain that may have had a keyless
 * POST processed by a later endpoint no longer answers with an earlier endpoint's 503), read end to end.
 * Docs: docs/fallback.md: "or rejects with `FallbackExhaustedError` ... if an endpoint tried after it may have
 * processed a request that is not safe to send twice (a keyless POST whose connection dropped once it went out:
 * the earlier answer, a 503 say, would tell you or a layer around this one to send it again) (a chain that stopped
 * early says after which endpoint and why ...; an endpoint's `TimeoutError` there counts that endpoint's
 * `attempts`)"; "longest prefix wins; `…/v1` does not capture `…/v10`"; "compared as the URL parser reads them,
 * so `HTTPS://Gen.example:443/v1`, `…/v1/../v10` and a `Request` are routed by what they stand for"; "an
 * endpoint's own query, `?key=…`, stays on it: a call that carries the first endpoint's own parameters ... sends
 * them once to that endpoint and to no other"; "any other status (a 400, a 404) is the caller's answer and ends
 * the chain"; "after a 500 ... the chain ends there"; "So does a 2xx that fails `validate`: ... the call resolves
 * with that answer as it is"; "a body that stalls ... fails validation, and so does one whose schema throws";
 * "Outside a chain `endpoint` is the host the call was sent to, the first one when the layer followed redirects
 * ...; `res.url` says where they ended"; "Credentials never cross origins" (the allowlist, `crossOriginHeaders`,
 * "The origin is judged on the URL actually sent, after `transform`", an endpoint's and a transform's own
 * headers are sent); `transform` (a method fetch forbids, a GET with a body: a `TypeError`, nothing sent, the
 * chain moves on; `body` `undefined` for no JSON object, sent as written; "its own copy: edits do not leak";
 * "serialised as JSON ... with `content-type: application/json` unless the request's label names a JSON type
 * already"); `respond` ("`undefined` ...; `Response.error()`; any other value), a `TypeError` naming the
 * endpoint", "whatever its method"; a `ConfigError` with `headers`); `hedge` ("no response headers yet, or a
 * body `validate` is still reading", "the others are aborted (their upstreams see the connection closed); all
 * are counted", keyless POST not hedged); `resilience.fallback.chain(name)` ("its `add` and `execute` throw a
 * `TypeError`", "a new chain ... reported in `health().fallback` ... kept for the layer's life", `.add` "any
 * other option is a `TypeError`", `.execute` "rejects with `FallbackExhaustedError`").
 * docs/cloudflare.md: "`502` when no endpoint answered otherwise", `x-resilience-endpoint`.
 * How: `createResilience`, `getResilienceInfo`, `FallbackExhaustedError`, `TimeoutError`, `ConfigError` (.),
 * `fallback` (./fallback), `createClient` (./ky), `resilientProxy` (./cloudflare, run in Node over plain fetch);
 * node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts): 503s, 404, 500, a socket destroyed once the
 * request arrived, a refused origin, a hang, a body that stalls, a 307.
 * Paths: plain call (redirect), chain, chain with `transform` / `respond` / `validate`, hedge, `Request` input,
 * ky client, Cloudflare proxy chain route, `fallback.chain(name)` for own work.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a failed chain run names the entry it tried last (`lastTried`), which `errors`' key order cannot give for number-like names):
 * 1. docs/fallback.md "or rejects with `FallbackExhaustedError` ... if an endpoint tried after it may have
 *    processed a request that is not safe to send twice". Observed: with endpoints named "primary" and "2", a
 *    keyless POST that got a 503 from "primary" and then dropped at "2" (which received the whole job) resolves
 *    with primary's 503, the answer the rule exists to withhold. Mechanism: src/fallback/try-endpoints.ts:105-106
 *    takes the endpoint the chain stopped at as the last key of `Object.keys(result.errors)`, but JavaScript
 *    lists integer-like keys ("2", "7", "10") first, in numeric order, before other keys in insertion order; so
 *    `stoppedAt` is "primary", equal to `lastRejectedBy`, and `processed` (line 112) is false. `fallback([…])`
 *    accepts such names (`name: "str+"`, src/fallback/fallback-rules.ts).
 * 2. docs/fallback.md "(a chain that stopped early says after which endpoint and why ...)". Observed: endpoints
 *    "primary" (refused), "7" (connection dropped after a keyless POST went out), "third": the message says
 *    `stopped after "primary"` and lists "7" first; same mechanism (line 105-106). The same misreading also
 *    judges a breaker store's failure (`storeFailed`, line 108) on the wrong endpoint.
 *
 * Held (plain `it`):
 * - The new rule with ordinary names: 503 then a dropped keyless POST rejects `FallbackExhaustedError`,
 *   "stopped after "backup", which may have processed the request", third endpoint untouched; the same after a
 *   `timeout.attempt` hang (the `TimeoutError` in `errors` with `attempts` 1, and 2 after a 503 then a hang);
 *   a refused later endpoint keeps the earlier 503 (`endpoint: "primary"`); through `resilientProxy` the
 *   client gets the proxy's 502, not the 503.
 * - Routing: `HTTP://…/v1/../v10/x` goes down the `/v10` chain, not `/v1`; an endpoint's own `?key=` stays on it
 *   and the first endpoint's key the call carries goes to it once and to no other; a `Request` PUT is replayed
 *   to the next endpoint with its path, query and 64-bit integer bytes; a 404 ends the chain; a keyless POST's
 *   500 ends it, a keyed one moves on with the same key.
 * - Outside a chain, after a followed 307 to another origin, `endpoint` is the first host, `res.url` the last.
 * - Credentials: `authorization`, `cookie`, `x-api-key`, `api-key`, `x-goog-api-key`, `openai-organization` and
 *   a custom header stay home; the allowlist and `crossOriginHeaders` go; an endpoint's own `authorization`
 *   and a header a `transform` set go; a same-origin endpoint whose `transform` sends elsewhere keeps keys home.
 * - `transform`: a changed body goes as JSON with `application/json` in place of `text/plain`, keeps
 *   `application/vnd.api+json`; `[1,2]` is `undefined` to it and sent as written; edits do not leak to the next
 *   endpoint; `TRACE` and a GET with a body are `TypeError`s, nothing sent, a keyless POST moves on (events
 *   `fallback` name each).
 * - `respond`: `undefined`, `Response.error()` and `42` each a `TypeError` naming the endpoint, a keyless POST
 *   moving on; a `respond` answer is `fromFallback`; `headers` beside it is a `ConfigError`.
 * - `validate`: a failing GET moves on, a throwing schema too; a keyless POST's failing 2xx resolves as it is
 *   (body intact, `endpoint: "a"`), with `retry.idempotencyKey` it moves on with the same key; a stalled body
 *   fails within `timeout.attempt` and its connection is closed.
 * - `hedge`: no headers after `delay` starts the next, the loser's connection closed, both counted,
 *   `lastSuccessfulFallback`; a body `validate` is still reading is hedged too; a keyless POST is not hedged.
 * - `fallback.chain(name)`: a configured chain's `add`/`execute` throw `TypeError`; a new chain is the same
 *   object on a second call, in `health().fallback`, refuses an unknown `add` option, falls back, and rejects
 *   `FallbackExhaustedError` when its only entry fails.
 * - ky `createClient` over a chain layer fails over with the rebased path and the endpoint's info; the Cloudflare
 *   proxy's chain route fails over with `x-resilience-endpoint: standard`, the endpoint's own authorization, and
 *   the client's `x-api-key` kept home.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, FallbackExhaustedError, getResilienceInfo, TimeoutError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

/** A Standard Schema that accepts objects with `ok: true`; `mode: "throw"` throws instead. */
function schema(mode: "check" | "throw" = "check") {
  return {
    "~standard": {
      version: 1 as const,
      vendor: "test",
      validate: (value: unknown) => {
        if (mode === "throw") throw new Error("schema broke");
        return (value as { ok?: unknown } | null)?.ok === true ? { value } : { issues: [{ message: "not ok" }] };
      },
    },
  };
}

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const busy = (hit: Hit): void => {
  hit.res.writeHead(503, { "content-type": "text/plain" }).end("busy");
};
/** The connection drops once the whole request arrived: the job may have been processed. */
const drop = (hit: Hit): void => {
  hit.req.socket.destroy();
};
const okJson =
  (body: unknown) =>
  (hit: Hit): void => {
    hit.res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  };

const noRetry = { retry: false } as const;

function chainLayer(
  endpoints: Parameters<typeof fallback>[0][number]["endpoints"],
  extra: Omit<Parameters<typeof fallback>[0][number], "name" | "endpoints"> = {},
  options: Omit<Parameters<typeof createResilience>[0] & object, "fallback"> = noRetry,
) {
  return createResilience({ ...options, fallback: fallback([{ name: "jobs", endpoints, ...extra }]) });
}

describe("a keyless POST a later endpoint may have processed (the new rule)", () => {
  it("rejects with FallbackExhaustedError, not the earlier 503, saying after which endpoint it stopped", async () => {
    a.on(busy);
    b.on(drop);
    const layer = chainLayer([
      { name: "primary", url: `${a.base}/v1` },
      { name: "backup", url: `${b.base}/v1` },
      { name: "third", url: `${c.base}/v1` },
    ]);
    const error = (await rejection(
      layer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: '{"paid":1}' }),
    )) as FallbackExhaustedError;
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(error.message).toContain('stopped after "backup", which may have processed the request');
    expect(Object.keys(error.errors).sort()).toEqual(["backup", "primary"]);
    expect(a.hits.length).toBe(1);
    expect(b.hits.length).toBe(1);
    expect(c.hits.length).toBe(0);
  });

  it("holds for endpoints named by number too ('primary', then '2')", async () => {
    a.on(busy);
    b.on(drop);
    const layer = chainLayer([
      { name: "primary", url: `${a.base}/v1` },
      { name: "2", url: `${b.base}/v1` },
    ]);
    const outcome = await layer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: '{"paid":1}' }).then(
      (res) => res.status,
      (error: unknown) => error,
    );
    expect(b.hits.length).toBe(1); // the job went out to "2" and may have been processed
    expect(outcome).toBeInstanceOf(FallbackExhaustedError);
    expect((outcome as Error).message).toContain('stopped after "2"');
  });

  it("a chain that stopped early names the endpoint it stopped after, when that one is named by number", async () => {
    const refused = await refusedOrigin();
    b.on(drop);
    const layer = chainLayer([
      { name: "primary", url: `${refused}/v1` },
      { name: "7", url: `${b.base}/v1` },
      { name: "third", url: `${c.base}/v1` },
    ]);
    const error = (await rejection(layer.fetch(`${refused}/v1/jobs`, { method: "POST", body: "{}" }))) as Error;
    expect(c.hits.length).toBe(0);
    expect(error.message).toContain('stopped after "7"');
  });

  it("a TimeoutError at the later endpoint is the same: rejects, counting that endpoint's attempts", async () => {
    a.on(busy);
    b.on(() => {}); // never answers
    const layer = chainLayer(
      [
        { name: "primary", url: `${a.base}/v1` },
        { name: "backup", url: `${b.base}/v1` },
      ],
      {},
      { retry: false, timeout: { attempt: 100 } },
    );
    const error = (await rejection(
      layer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: "{}" }),
    )) as FallbackExhaustedError;
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(error.message).toContain('stopped after "backup"');
    expect(error.errors.backup).toBeInstanceOf(TimeoutError);
    expect((error.errors.backup as TimeoutError & { attempts?: number }).attempts).toBe(1);
    await (await b.nth(1)).closed;
  });

  it("the TimeoutError there counts that endpoint's attempts: a 503, then a hang, is 2", async () => {
    a.on(busy);
    b.on((hit) => {
      if (hit.n === 1) busy(hit);
    });
    const layer = chainLayer(
      [
        { name: "primary", url: `${a.base}/v1` },
        { name: "backup", url: `${b.base}/v1` },
      ],
      {},
      { retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 2, jitter: "none" }, timeout: { attempt: 100 } },
    );
    const error = (await rejection(
      layer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: "{}" }),
    )) as FallbackExhaustedError;
    expect(error.message).toContain('stopped after "backup"');
    expect(b.hits.length).toBe(2);
    expect((error.errors.backup as TimeoutError & { attempts?: number }).attempts).toBe(2);
    await (await b.nth(2)).closed;
  });

  it("keeps the earlier 503 when the later endpoint was refused (surely not processed)", async () => {
    a.on(busy);
    const refused = await refusedOrigin();
    const layer = chainLayer([
      { name: "primary", url: `${a.base}/v1` },
      { name: "backup", url: `${refused}/v1` },
    ]);
    const res = await layer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: "{}" });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("busy");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "primary", fromFallback: false });
  });

  it("through the Cloudflare proxy the client gets the proxy's 502, not the earlier 503", async () => {
    a.on(busy);
    b.on(drop);
    const proxy = resilientProxy<object>({
      routes: [
        {
          path: "/v1/jobs",
          chain: {
            name: "jobs",
            endpoints: [
              { name: "primary", url: `${a.base}/v1/jobs` },
              { name: "backup", url: `${b.base}/v1/jobs` },
            ],
          },
        },
      ],
      resilience: noRetry,
    });
    const res = await proxy.fetch(
      new Request("https://worker.example/v1/jobs", { method: "POST", body: "{}" }),
      {},
      { waitUntil() {} },
    );
    expect(b.hits.length).toBe(1);
    expect(res.status).toBe(502);
  });
});

describe("routing, rebasing and the Request input", () => {
  it("longest prefix wins, …/v1 does not capture …/v10, and /v1/../v10 is routed by what it stands for", async () => {
    b.on(okJson({ from: "b" }));
    c.on(okJson({ from: "c" }));
    const layer = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "v1",
          endpoints: [
            { name: "a1", url: `${a.base}/v1` },
            { name: "b1", url: `${b.base}/v1` },
          ],
        },
        {
          name: "v10",
          endpoints: [
            { name: "a10", url: `${a.base}/v10` },
            { name: "c10", url: `${c.base}/v10` },
          ],
        },
      ]),
    });
    a.on(busy);
    const res = await layer.fetch(`${a.base.replace("http", "HTTP")}/v1/../v10/x`);
    expect(await res.json()).toEqual({ from: "c" });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "c10", fromFallback: true });
    expect(c.hits[0]?.path).toBe("/v10/x");
    expect(b.hits.length).toBe(0);
  });

  it("an endpoint's own query stays on it; the first endpoint's parameters the call carries go to it once and to no other", async () => {
    a.on(busy);
    b.on(okJson({}));
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1?key=AKEY` },
      { name: "b", url: `${b.base}/v2?key=BKEY` },
    ]);
    const res = await layer.fetch(`${a.base}/v1/jobs/7?seed=7&key=AKEY`);
    expect(res.status).toBe(200);
    const aq = new URL(a.hits[0]?.path ?? "", a.base);
    const bq = new URL(b.hits[0]?.path ?? "", b.base);
    expect(aq.pathname).toBe("/v1/jobs/7");
    expect(aq.searchParams.getAll("key")).toEqual(["AKEY"]);
    expect(aq.searchParams.get("seed")).toBe("7");
    expect(bq.pathname).toBe("/v2/jobs/7");
    expect(bq.searchParams.getAll("key")).toEqual(["BKEY"]);
    expect(bq.searchParams.get("seed")).toBe("7");
    expect(b.hits[0]?.path).not.toContain("AKEY");
  });

  it("a Request input goes down the chain, its body replayed to the next endpoint", async () => {
    a.on(busy);
    b.on(okJson({ ok: true }));
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "b", url: `${b.base}/v2` },
    ]);
    const res = await layer.fetch(
      new Request(`${a.base}/v1/put/1?x=1`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: '{"n":12345678901234567890}',
      }),
    );
    expect(res.status).toBe(200);
    expect(b.hits[0]).toMatchObject({ method: "PUT", path: "/v2/put/1?x=1", body: '{"n":12345678901234567890}' });
  });

  it("any other status (a 404) is the caller's answer and ends the chain", async () => {
    a.on((hit) => hit.res.writeHead(404).end("nope"));
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "b", url: `${b.base}/v1` },
    ]);
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(404);
    expect(b.hits.length).toBe(0);
  });

  it("a keyless POST after a 500 ends there; with an Idempotency-Key it moves on", async () => {
    a.on((hit) => hit.res.writeHead(500).end("boom"));
    b.on(okJson({}));
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "b", url: `${b.base}/v1` },
    ]);
    const res = await layer.fetch(`${a.base}/v1/x`, { method: "POST", body: "{}" });
    expect(res.status).toBe(500);
    expect(b.hits.length).toBe(0);
    const keyed = await layer.fetch(`${a.base}/v1/x`, {
      method: "POST",
      body: "{}",
      headers: { "idempotency-key": "k-1" },
    });
    expect(keyed.status).toBe(200);
    expect(b.hits[0]?.headers["idempotency-key"]).toBe("k-1");
  });

  it("outside a chain, endpoint is the first host when the layer followed a redirect; res.url where it ended", async () => {
    a.on((hit) => hit.res.writeHead(307, { location: `${b.base}/final` }).end());
    b.on(okJson({}));
    const layer = createResilience({ retry: false });
    const res = await layer.fetch(`${a.base}/start`);
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)?.endpoint).toBe(a.host);
    expect(res.url).toBe(`${b.base}/final`);
    expect(res.redirected).toBe(true);
  });
});

describe("credentials across origins", () => {
  it("only the allowlist and crossOriginHeaders go to another origin; the endpoint's and transform's own headers go", async () => {
    a.on(busy);
    b.on(okJson({}));
    c.on(okJson({}));
    const layer = createResilience({
      retry: false,
      crossOriginHeaders: ["x-trace"],
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            {
              name: "b",
              url: `${b.base}/v1`,
              headers: { authorization: "Bearer B-OWN" },
              transform: (req) => {
                req.headers.set("x-set-by-transform", "yes");
                return req;
              },
            },
          ],
        },
      ]),
    });
    const res = await layer.fetch(`${a.base}/v1/x`, {
      headers: {
        authorization: "Bearer CALLER",
        cookie: "sid=1",
        "x-api-key": "k",
        "api-key": "azure",
        "x-goog-api-key": "g",
        "openai-organization": "org",
        "x-custom": "c",
        "x-trace": "t",
        accept: "application/json",
        "accept-language": "fr",
      },
    });
    expect(res.status).toBe(200);
    expect(a.hits[0]?.headers.authorization).toBe("Bearer CALLER");
    const sent = b.hits[0]?.headers ?? {};
    expect(sent.authorization).toBe("Bearer B-OWN");
    for (const name of ["cookie", "x-api-key", "api-key", "x-goog-api-key", "openai-organization", "x-custom"])
      expect(sent[name], name).toBeUndefined();
    expect(sent["x-trace"]).toBe("t");
    expect(sent.accept).toBe("application/json");
    expect(sent["accept-language"]).toBe("fr");
    expect(sent["x-set-by-transform"]).toBe("yes");
  });

  it("the origin is judged on the URL a transform sends to: a same-origin endpoint sent elsewhere keeps the key home", async () => {
    a.on(busy);
    c.on(okJson({}));
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "a2", url: `${a.base}/v2`, transform: (req) => ({ ...req, url: `${c.base}/moved` }) },
    ]);
    const res = await layer.fetch(`${a.base}/v1/x`, { headers: { "x-api-key": "SECRET", authorization: "Bearer S" } });
    expect(res.status).toBe(200);
    expect(c.hits[0]?.path).toBe("/moved");
    expect(c.hits[0]?.headers["x-api-key"]).toBeUndefined();
    expect(c.hits[0]?.headers.authorization).toBeUndefined();
  });
});

describe("transform", () => {
  it("a changed body goes as JSON with application/json in place of a text/plain label; a JSON label stays", async () => {
    a.on(busy);
    b.on(okJson({}));
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      {
        name: "b",
        url: `${b.base}/v1`,
        transform: (req) => ({ ...req, body: { ...req.body, shaped: true } }),
      },
    ]);
    await layer.fetch(`${a.base}/v1/x`, { method: "PUT", headers: { "content-type": "text/plain" }, body: '{"n":1}' });
    expect(JSON.parse(b.hits[0]?.body ?? "")).toEqual({ n: 1, shaped: true });
    expect(b.hits[0]?.headers["content-type"]).toBe("application/json");
    await layer.fetch(`${a.base}/v1/x`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.api+json" },
      body: '{"n":2}',
    });
    expect(JSON.parse(b.hits[1]?.body ?? "")).toEqual({ n: 2, shaped: true });
    expect(b.hits[1]?.headers["content-type"]).toBe("application/vnd.api+json");
  });

  it("a body that is no JSON object is undefined to transform and sent as written; edits do not leak to the next endpoint", async () => {
    a.on(busy);
    b.on(busy);
    c.on(okJson({}));
    const seen: unknown[] = [];
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      {
        name: "b",
        url: `${b.base}/v1`,
        transform: (req) => {
          seen.push(req.body);
          if (req.body) req.body.leaked = true;
          return req;
        },
      },
      {
        name: "c",
        url: `${c.base}/v1`,
        transform: (req) => {
          seen.push(req.body);
          return req;
        },
      },
    ]);
    await layer.fetch(`${a.base}/v1/x`, { method: "PUT", body: "[1,2]" });
    expect(seen).toEqual([undefined, undefined]);
    expect(c.hits[0]?.body).toBe("[1,2]");
    seen.length = 0;
    await layer.fetch(`${a.base}/v1/x`, { method: "PUT", body: '{"n":1}' });
    expect(seen).toEqual([{ n: 1, leaked: true }, { n: 1 }]);
    expect(c.hits[1]?.body).toBe('{"n":1}');
  });

  it("a TRACE, or a GET with a body, is a TypeError before anything is sent, and the chain moves on (keyless POST too)", async () => {
    c.on(okJson({}));
    const events: string[] = [];
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1`, transform: (req) => ({ ...req, method: "TRACE" }) },
      { name: "b", url: `${b.base}/v1`, transform: (req) => ({ ...req, method: "GET" }) },
      { name: "c", url: `${c.base}/v1` },
    ]);
    layer.on("fallback", (e) => events.push(`${e.from}>${e.next}:${e.reason.slice(0, 9)}`));
    const res = await layer.fetch(`${a.base}/v1/x`, { method: "POST", body: '{"n":1}' });
    expect(res.status).toBe(200);
    expect(a.hits.length + b.hits.length).toBe(0);
    expect(c.hits[0]?.method).toBe("POST");
    expect(events).toEqual(["a>b:TypeError", "b>c:TypeError"]);
  });
});

describe("respond", () => {
  it("no Response (undefined, Response.error(), a value) moves on whatever the method; all failing names each endpoint", async () => {
    const refused = await refusedOrigin();
    const layer = chainLayer([
      { name: "net", url: `${refused}/v1` },
      { name: "miss", respond: () => undefined as unknown as Response },
      { name: "err", respond: () => Response.error() },
      { name: "val", respond: () => 42 as unknown as Response },
    ]);
    const error = (await rejection(
      layer.fetch(`${refused}/v1/x`, { method: "POST", body: "{}" }),
    )) as FallbackExhaustedError;
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    for (const name of ["miss", "err", "val"]) {
      expect(error.errors[name], name).toBeInstanceOf(TypeError);
      expect((error.errors[name] as Error).message, name).toContain(name);
    }
  });

  it("a respond that answers serves the call without the network, named and fromFallback", async () => {
    a.on(busy);
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "cached", respond: (req) => Response.json({ cached: req.url }) },
    ]);
    const res = await layer.fetch(`${a.base}/v1/x?q=1`);
    expect(await res.json()).toEqual({ cached: `${a.base}/v1/x?q=1` });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "cached", fromFallback: true });
  });

  it("transform or headers beside respond is a ConfigError", async () => {
    const { ConfigError } = await import("../../src/index.ts");
    expect(() =>
      fallback([
        {
          name: "x",
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            { name: "r", respond: () => new Response("x"), headers: { a: "b" } },
          ],
        },
      ]),
    ).toThrow(ConfigError);
  });
});

describe("validate", () => {
  it("a GET whose 2xx JSON fails validate moves on; a schema that throws fails validation too", async () => {
    a.on(okJson({ ok: false }));
    b.on(okJson({ ok: true, from: "b" }));
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1`, validate: schema() },
      { name: "b", url: `${b.base}/v1`, validate: schema() },
    ]);
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    const throwing = chainLayer([
      { name: "a", url: `${a.base}/v1`, validate: schema("throw") },
      { name: "b", url: `${b.base}/v1` },
    ]);
    const res2 = await throwing.fetch(`${a.base}/v1/x`);
    expect(getResilienceInfo(res2)?.endpoint).toBe("b");
  });

  it("a keyless POST that fails validate resolves with that answer as it is; retry.idempotencyKey moves it on", async () => {
    a.on(okJson({ ok: false, job: 1 }));
    b.on(okJson({ ok: true }));
    const endpoints = [
      { name: "a", url: `${a.base}/v1`, validate: schema() },
      { name: "b", url: `${b.base}/v1` },
    ];
    const res = await chainLayer(endpoints).fetch(`${a.base}/v1/x`, { method: "POST", body: "{}" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: false, job: 1 });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", fromFallback: false });
    expect(b.hits.length).toBe(0);
    const keyed = chainLayer(endpoints, {}, { retry: { maxAttempts: 1, idempotencyKey: true } });
    const res2 = await keyed.fetch(`${a.base}/v1/x`, { method: "POST", body: "{}" });
    expect(getResilienceInfo(res2)?.endpoint).toBe("b");
    const key = a.hits[1]?.headers["idempotency-key"];
    expect(key).toBeTruthy();
    expect(b.hits[0]?.headers["idempotency-key"]).toBe(key);
  });

  it("a body that stalls fails validation within timeout.attempt, and its connection is closed", async () => {
    a.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/json" });
      hit.res.write('{"ok":');
    });
    b.on(okJson({ ok: true }));
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1`, validate: schema() },
        { name: "b", url: `${b.base}/v1` },
      ],
      {},
      { retry: false, timeout: { attempt: 100 } },
    );
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    await (await a.nth(1)).closed;
  });
});

describe("hedge", () => {
  it("starts the next endpoint after delay when there are no headers yet; the winner aborts the other, all counted", async () => {
    a.on(() => {});
    b.on(okJson({ from: "b" }));
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v1` },
      ],
      { hedge: { delay: 50 } },
    );
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(await res.json()).toEqual({ from: "b" });
    await (await a.nth(1)).closed;
    const stats = layer.fallback.chain("jobs").statistics();
    expect(stats.fallbacks.a?.calls).toBe(1);
    expect(stats.fallbacks.b?.calls).toBe(1);
    expect(stats.lastSuccessfulFallback).toBe("b");
  });

  it("also when the running endpoint's body is still being read by validate", async () => {
    a.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/json" });
      hit.res.write('{"ok":');
    });
    b.on(okJson({ ok: true, from: "b" }));
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1`, validate: schema() },
        { name: "b", url: `${b.base}/v1`, validate: schema() },
      ],
      { hedge: { delay: 50 } },
      { retry: false, timeout: { attempt: 5_000 } },
    );
    const started = Date.now();
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(Date.now() - started).toBeLessThan(2_000);
    await (await a.nth(1)).closed;
  });

  it("a keyless POST is not hedged: the next endpoint starts only after the first answered", async () => {
    let aAnswered = false;
    a.on((hit) =>
      setTimeout(() => {
        aAnswered = true;
        busy(hit);
      }, 150),
    );
    let bSawAAnswered: boolean | undefined;
    b.on((hit) => {
      bSawAAnswered = aAnswered;
      okJson({})(hit);
    });
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v1` },
      ],
      { hedge: { delay: 20 } },
    );
    const res = await layer.fetch(`${a.base}/v1/x`, { method: "POST", body: "{}" });
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(bSawAAnswered).toBe(true);
  });
});

describe("resilience.fallback.chain(name), health() and the clients", () => {
  it("a configured chain's add and execute throw a TypeError; a new chain is kept and reported in health().fallback", async () => {
    const layer = chainLayer([{ name: "a", url: `${a.base}/v1` }]);
    const jobs = layer.fallback.chain("jobs");
    expect(() => jobs.add(async () => 1, { name: "x" })).toThrow(TypeError);
    await expect(jobs.execute(undefined)).rejects.toBeInstanceOf(TypeError);
    const adhoc = layer.fallback.chain("adhoc");
    expect(layer.fallback.chain("adhoc")).toBe(adhoc);
    expect(() => adhoc.add(async () => 1, { name: "x", bogus: 1 } as never)).toThrow(TypeError);
    adhoc.add(
      async () => {
        throw new Error("down");
      },
      { name: "first" },
    );
    adhoc.add(async () => "second", { name: "second", expectedQuality: 0.5 });
    expect(await adhoc.execute(undefined)).toBe("second");
    const health = layer.health().fallback;
    expect(Object.keys(health).sort()).toEqual(["adhoc", "jobs"]);
    expect(health.adhoc?.lastSuccessfulFallback).toBe("second");
    const lone = layer.fallback.chain("lone");
    lone.add(
      async () => {
        throw new Error("x");
      },
      { name: "only" },
    );
    await expect(lone.execute(undefined)).rejects.toBeInstanceOf(FallbackExhaustedError);
  });

  it("the ky client goes down a chain route", async () => {
    a.on(busy);
    b.on(okJson({ from: "b" }));
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "b", url: `${b.base}/v1` },
    ]);
    const api = createClient({ prefix: `${a.base}/v1`, resilience: layer });
    const res = await api.get("x?q=1");
    expect(await res.json()).toEqual({ from: "b" });
    expect(b.hits[0]?.path).toBe("/v1/x?q=1");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true });
  });

  it("the Cloudflare proxy's chain route fails over and names the endpoint; the client's credentials stay home", async () => {
    a.on(busy);
    b.on(okJson({ from: "b" }));
    const proxy = resilientProxy<object>({
      routes: [
        {
          path: "/v1/video",
          chain: {
            name: "video",
            endpoints: [
              { name: "premium", url: `${a.base}/v1/video` },
              { name: "standard", url: `${b.base}/v2/video`, headers: { authorization: "Bearer STD" } },
            ],
          },
        },
      ],
      resilience: noRetry,
    });
    const res = await proxy.fetch(
      new Request("https://worker.example/v1/video/jobs?seed=7", { headers: { "x-api-key": "CLIENT" } }),
      {},
      { waitUntil() {} },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("x-resilience-endpoint")).toBe("standard");
    expect(b.hits[0]?.path).toBe("/v2/video/jobs?seed=7");
    expect(b.hits[0]?.headers.authorization).toBe("Bearer STD");
    expect(b.hits[0]?.headers["x-api-key"]).toBeUndefined();
  });
});
