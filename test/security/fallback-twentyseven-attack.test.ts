/**
 * Outside-in attack on fallback chains (docs/fallback.md, every sentence, and the chain parts of README.md and
 * docs/options.md).
 * Docs: docs/fallback.md ("An endpoint is left for the next one on a network error, a timeout, a 5xx, 429 or
 * 408"; `respond`: "One that throws or rejects (a cache miss) sent nothing, so the call moves on to the next
 * endpoint whatever its method"; "a chain that stopped early says after which endpoint and why: the request had
 * no `Idempotency-Key`, or its body could be sent only once"; "A body sent once (a stream, or larger than
 * `maxReplayBytes`) goes to one endpoint only"; `hedge.delay` "at most 2,147,483,647 ms … a longer one is a
 * `ConfigError`"; rebasing and an endpoint's own `?key=`; "`getResilienceInfo(res)` says which `endpoint`
 * served and whether `fromFallback`"; "`res.url` says where they ended"), README.md ("It resolves with a
 * response, even a 503, as `fetch` would, whenever it has one to give … and rejects when it has none"),
 * docs/options.md (`fetch` row: "an answer that is no `Response` (or a `Response.error()`) is a network
 * error"; `fallback[].hedge.delay` row), docs/cloudflare.md (`x-resilience-endpoint` percent-encoded).
 * How: `createResilience` (root), `fallback` (./fallback), `resilientProxy` (./cloudflare), `createClient`
 * (./ky), `TestClock` (./testing), a hand-written transport and real servers on 127.0.0.1
 * (test/helpers/http-upstream.ts, `refusedOrigin`).
 * Paths: plain chain, hedge, redirect inside a chain (real 302), `Request` input (with a body, read and
 * unread), a `respond` endpoint, a stream body, the Worker proxy's chain route, the ky client.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a chain's respond answer checked as a transport's is, and a chain stopped by a body sent once saying so):
 * 1. README.md "It resolves with a response, even a 503, as `fetch` would" and docs/fallback.md "An endpoint is
 *    left for the next one on a network error". Observed: a `respond` that answers `Response.error()` (the
 *    Fetch standard's network error, which the transport path now turns into a `TypeError`) is taken as the
 *    chain's answer: the call resolves with a `type: "error"` Response of status 0, `endpoint` the respond
 *    endpoint, and the next endpoint is never tried. try-endpoints.ts `tryEndpoint` hands a `respond`'s answer
 *    to the judge as it is (no `answerOf`, which send-attempt.ts applies to the transport's answers); `judge`
 *    sees neither a 5xx nor a 2xx.
 * 2. docs/fallback.md "`respond(req)` … One that throws or rejects (a cache miss) sent nothing, so the call
 *    moves on to the next endpoint whatever its method". Observed: a `respond` that resolves with `undefined`,
 *    as the Cache API's `match()` answers a miss, fails when `judge` reads `response.status` (a TypeError
 *    inside the chain's `accept`); that error is not marked as "nothing sent" (`notSent` in hedge-ledger.ts is
 *    only applied to a throw or rejection of `respond` itself), so for a POST without a key `maySendAgain`
 *    reads it as a network error that may have been processed and the chain ends there: the call resolves
 *    with the first endpoint's 503, the next endpoint never sent.
 * 3. README.md "It resolves with a response … whenever it has one to give, and rejects when it has none".
 *    Observed: a `respond` that answers something that is no Response (a string) is accepted as the chain's
 *    answer (its `status` reads `undefined`, no failure): the chain statistics count a success for it, the next
 *    endpoint (which would answer 200) is never tried, and the call then rejects with a `RetryExhaustedError`
 *    "gave up after 1 attempt to c: Cannot create property 'Symbol(resilience-info)' on string 'x'" from
 *    `attachInfo` (resilient-fetch.ts). A plain object would be resolved with as is. Same cause as 1.
 * 4. docs/fallback.md "a chain that stopped early says after which endpoint and why: the request had no
 *    `Idempotency-Key`, or its body could be sent only once". Observed: a keyless POST whose body is a stream,
 *    whose first endpoint refuses the connection, stops there (the body is sent once) but the error says
 *    "(only one with an Idempotency-Key moves on)", which is not why: a refused connection moves a keyless
 *    POST on, and the same call with a key stops too. `served` in try-endpoints.ts picks the reason from
 *    `request.idempotent` alone, never from `canSendBody`.
 *
 * Held (plain `it`):
 * - A transport answering `Response.error()`, a plain object, or a Response whose `headers` getter throws is a
 *   network error on every attempt: the chain moves on to the next endpoint, unhedged and hedged.
 * - `hedge.delay` 2,147,483,647 is taken, 2,147,483,648 is a `ConfigError` naming `fallback.0.hedge.delay`.
 * - A redirect inside a chain (real 302 to another server): the redirect's 503 moves a GET on, with a
 *   `fallback` event `status 503`; when the redirect ends in a 200, `endpoint` is the first endpoint's name,
 *   `fromFallback` false, and `res.url` where the redirect ended.
 * - A `Request` input with a JSON body and a key: replayed to the next endpoint after a 503, the `transform`'s
 *   change sent, the query rebased, the key kept; a `Request` whose body was read is a `TypeError` at once,
 *   nothing sent.
 * - A stream body's POST with a key (or a PUT) stops after the first endpoint saying "its body could be sent
 *   only once"; the second endpoint never receives anything.
 * - Worker proxy chain route: the first endpoint gets its own `?key=` once with the client's query, the
 *   second endpoint does not get it; `x-resilience-endpoint` percent-encodes a name with `%`.
 * - ky client on a layer with a chain: a 503 from the first endpoint is served by the second, and
 *   `getResilienceInfo` names it.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

/** A transport: `https://a.example` answers with `a()`, anything else 200 "b"; every URL sent is logged. */
function twoHosts(a: () => unknown) {
  const sent: string[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    sent.push(request.url);
    if (request.url.startsWith("https://a.example")) return a() as Response;
    return new Response("b");
  };
  return { fetch, sent };
}

/** A chain a → cache (`respond`) → b. */
function withRespond(respond: () => unknown, a: () => unknown = () => new Response("x", { status: 503 })) {
  const { fetch, sent } = twoHosts(a);
  const r = createResilience({
    fetch,
    retry: false,
    fallback: fallback([
      {
        name: "c",
        endpoints: [
          { name: "a", url: "https://a.example/v1" },
          { name: "cache", respond: respond as () => Response },
          { name: "b", url: "https://b.example/v1" },
        ],
      },
    ]),
  });
  return { r, sent };
}

describe("a `respond` endpoint's answer", () => {
  it("Response.error() from `respond` is no answer fetch would give: the chain moves on to b", async () => {
    const { r, sent } = withRespond(() => Response.error());
    const res = await r.fetch("https://a.example/v1/x");
    expect(res.type).not.toBe("error");
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(sent).toContain("https://b.example/v1/x");
  });

  it("a `respond` that resolves with undefined (a cache miss) sent nothing: a keyless POST moves on", async () => {
    const { r, sent } = withRespond(() => undefined);
    const res = await r.fetch("https://a.example/v1/x", { method: "POST", body: "{}" });
    expect(sent).toContain("https://b.example/v1/x");
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
  });

  it("a `respond` that answers no Response is no answer: the call still gets b's response", async () => {
    const { r, sent } = withRespond(() => "x");
    const res = await r.fetch("https://a.example/v1/x");
    expect(res).toBeInstanceOf(Response);
    expect(res.status).toBe(200);
    expect(sent).toContain("https://b.example/v1/x");
  });

  it("a `respond` that rejects (a cache miss) lets a keyless POST go on to b (control)", async () => {
    const { r, sent } = withRespond(() => Promise.reject(new Error("miss")));
    const res = await r.fetch("https://a.example/v1/x", { method: "POST", body: "{}" });
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(sent).toEqual(["https://a.example/v1/x", "https://b.example/v1/x"]);
  });
});

describe("a transport's answer that is no Response is a network error in a chain", () => {
  const broken = (): Response => {
    const res = new Response("x");
    Object.defineProperty(res, "headers", {
      get() {
        throw new Error("unreadable");
      },
    });
    return res;
  };
  for (const [label, bad] of [
    ["Response.error()", () => Response.error()],
    ["a plain object", () => ({ status: 200, ok: true })],
    ["a Response whose headers getter throws", broken],
  ] as const) {
    for (const hedge of [undefined, { delay: 10 }]) {
      it(`${label}, ${hedge ? "hedged" : "unhedged"}: b serves`, async () => {
        const clock = new TestClock();
        const { fetch, sent } = twoHosts(bad);
        const r = createResilience({
          clock,
          fetch,
          retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" },
          fallback: fallback([
            {
              name: "c",
              hedge,
              endpoints: [
                { name: "a", url: "https://a.example/v1" },
                { name: "b", url: "https://b.example/v1" },
              ],
            },
          ]),
        });
        const pending = r.fetch("https://a.example/v1/x");
        for (let k = 0; k < 5; k++) await clock.advance(5);
        const res = await pending;
        expect(res.status).toBe(200);
        expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true });
        expect(sent.filter((u) => u.startsWith("https://a.example")).length).toBeGreaterThanOrEqual(1);
      });
    }
  }
});

describe("hedge.delay bound", () => {
  const chain = (delay: number) => [
    { name: "c", hedge: { delay }, endpoints: [{ name: "a", url: "https://a.example/v1" }] },
  ];
  it("2,147,483,647 ms is taken, one more is a ConfigError naming its path", () => {
    expect(() => fallback(chain(2_147_483_647))).not.toThrow();
    expect(() => fallback(chain(2_147_483_648))).toThrow(ConfigError);
    expect(() => fallback(chain(2_147_483_648))).toThrow(/fallback\.0\.hedge\.delay/);
  });
});

describe("a redirect inside a chain (real servers)", () => {
  it("the redirect's 503 moves a GET on; a redirect that ends well is the first endpoint's answer", async () => {
    A.on((h) => {
      h.res.writeHead(302, { location: `${B.base}/moved` });
      h.res.end();
    });
    B.on((h) => {
      if (h.path === "/moved") {
        h.res.writeHead(503);
        h.res.end("no");
      } else h.res.end("ok-b");
    });
    const r = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${A.base}/v1` },
            { name: "b", url: `${B.base}/v1` },
          ],
        },
      ]),
    });
    const events: unknown[] = [];
    r.on("fallback", (e) => events.push(e));
    const first = await r.fetch(`${A.base}/v1/x`);
    expect(await first.text()).toBe("ok-b");
    expect(getResilienceInfo(first)).toMatchObject({ endpoint: "b", fromFallback: true });
    expect(events).toEqual([{ chain: "c", from: "a", reason: "status 503", next: "b" }]);
    B.on((h) => h.res.end("final"));
    const second = await r.fetch(`${A.base}/v1/x`);
    expect(await second.text()).toBe("final");
    expect(getResilienceInfo(second)).toMatchObject({ endpoint: "a", fromFallback: false });
    expect(second.url).toBe(`${B.base}/moved`);
  });
});

describe("a Request input down a chain", () => {
  it("its JSON body and key are replayed to b, reshaped by b's transform; a read body is refused", async () => {
    A.on((h) => {
      h.res.writeHead(503);
      h.res.end("no");
    });
    B.on((h) => h.res.end("ok-b"));
    const r = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${A.base}/v1` },
            {
              name: "b",
              url: `${B.base}/v2`,
              transform: (q) => ({ ...q, body: { ...q.body, x: 2 } }),
            },
          ],
        },
      ]),
    });
    const request = new Request(`${A.base}/v1/x?q=1`, {
      method: "POST",
      body: JSON.stringify({ a: 1 }),
      headers: { "content-type": "application/json", "idempotency-key": "k" },
    });
    const res = await r.fetch(request);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 2 });
    expect(B.hits.map((h) => [h.path, h.body, h.headers["idempotency-key"]])).toEqual([
      ["/v2/x?q=1", '{"a":1,"x":2}', "k"],
    ]);
    const used = new Request(`${A.base}/v1/x`, { method: "POST", body: "x" });
    await used.text();
    const hits = A.hits.length;
    await expect(r.fetch(used)).rejects.toThrow(TypeError);
    expect(A.hits.length).toBe(hits);
  });
});

describe("a body sent once", () => {
  const stream = () =>
    new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("hi"));
        c.close();
      },
    });
  async function chainFromRefused() {
    const refused = await refusedOrigin();
    const r = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${refused}/v1` },
            { name: "b", url: `${B.base}/v1` },
          ],
        },
      ]),
    });
    return { r, url: `${refused}/v1/x` };
  }

  it("a keyed POST or a PUT with a stream body stops after a, saying its body could be sent only once", async () => {
    const { r, url } = await chainFromRefused();
    for (const init of [
      { method: "POST", headers: { "idempotency-key": "k" } },
      { method: "PUT", headers: {} },
    ]) {
      const error = await r.fetch(url, { ...init, body: stream(), duplex: "half" } as unknown as RequestInit).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.name).toBe("FallbackExhaustedError");
      expect(error?.message).toMatch(/stopped after "a".*its body could be sent only once/);
    }
    expect(B.hits).toHaveLength(0);
  });

  it("a keyless POST with a stream body refused by a: the error says it stopped for the body", async () => {
    const { r, url } = await chainFromRefused();
    const error = await r.fetch(url, { method: "POST", body: stream(), duplex: "half" } as RequestInit).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe("FallbackExhaustedError");
    expect(B.hits).toHaveLength(0);
    // A refused connection moves a keyless POST on (docs/retry.md): the body, not the key, stopped it.
    expect(error?.message).toMatch(/its body could be sent only once/);
  });
});

describe("the Worker proxy's chain route", () => {
  it("the first endpoint's own key goes to it once, not to b; the endpoint name is percent-encoded", async () => {
    A.on((h) => {
      h.res.writeHead(503);
      h.res.end("no");
    });
    B.on((h) => h.res.end("ok-b"));
    const proxy = resilientProxy<object>({
      resilience: { retry: false },
      routes: [
        {
          path: "/v1",
          chain: {
            name: "c",
            endpoints: [
              { name: "a", url: `${A.base}/v1?key=K` },
              { name: "b%", url: `${B.base}/v2` },
            ],
          },
        },
      ],
    });
    const ctx = { waitUntil() {}, passThroughOnException() {} };
    const res = await proxy.fetch(
      new Request("https://w.example/v1/x?a=1", { method: "POST", body: "{}", headers: { "idempotency-key": "k" } }),
      {},
      ctx,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("x-resilience-endpoint")).toBe("b%25");
    expect(decodeURIComponent(res.headers.get("x-resilience-endpoint") as string)).toBe("b%");
    expect(A.hits.map((h) => h.path)).toEqual(["/v1/x?key=K&a=1"]);
    expect(B.hits.map((h) => h.path)).toEqual(["/v2/x?a=1"]);
  });
});

describe("the ky client on a layer with a chain", () => {
  it("a's 503 is served by b, and getResilienceInfo names b", async () => {
    A.on((h) => {
      h.res.writeHead(503);
      h.res.end("no");
    });
    B.on((h) => h.res.end("ok-b"));
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${A.base}/v1` },
            { name: "b", url: `${B.base}/v1` },
          ],
        },
      ]),
    });
    const api = createClient({ resilience, prefix: `${A.base}/v1` });
    const res = await api.get("x");
    expect(await res.text()).toBe("ok-b");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true });
  });
});
