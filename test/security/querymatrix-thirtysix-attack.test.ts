/**
 * Outside-in attack on query strings, as a matrix with an oracle: what a real node:http server on 127.0.0.1
 * receives (the raw request target) against what plain `fetch` sends for the URL the docs say each endpoint gets.
 * Docs: docs/fallback.md ("The rest of the path and the query are rebased onto each endpoint's `url` (an
 * endpoint's own query, `?key=…`, stays on it: a call that carries the first endpoint's own parameters, wherever in
 * its query and under whatever path, sends them once to that endpoint and to no other)", "The first endpoint gets
 * the URL called", chains "that differ only in their query … a call goes down the one whose every parameter it
 * carries, the most of them, else the first declared"); docs/degradation.md (query rules: "Only the values a rule
 * changes are rewritten … and the other query parameters, stay as you wrote them (each place of a repeated query
 * parameter is adjusted from its own value"); docs/cloudflare.md (a route's path below "goes onto the upstream's
 * path …, the query after the upstream's own, so an upstream such as `https://api.example/v1?key=…` keeps its
 * key"); SECURITY.md and docs/health-and-events.md (URLs "without their userinfo (`user:pass@`), query string or
 * fragment" in events, errors and health; `debugInfo()` "the last 50 failures (URLs without their query string,
 * which may hold keys)").
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `resilientProxy` (./cloudflare, its `fetch` handler called directly in Node); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts); the oracle is plain `fetch` of the documented URL against the same server.
 * Paths: plain call (string, `Request`, `URL` whose `searchParams` were edited), chain where the first endpoint
 * serves, first answers 503 so the spare serves, hedge, 307 redirect followed by the library (plain and in a chain),
 * degradation query rule at `medium` (plain and chain), chains told apart by their query, `resilientProxy` upstream
 * and chain routes.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a query pair is split where it is written with = before its escapes are decoded):
 * 1. docs/fallback.md "The rest of the path and the query are rebased onto each endpoint's `url` (an endpoint's own
 *    query, `?key=…`, stays on it: a call that carries the first endpoint's own parameters … sends them once to that
 *    endpoint and to no other)". Observed: with a first endpoint at `…/v1?k%3Dx=1` (a parameter named `k=x`, value
 *    `1`), a call to `…/v1/x?k=x=1` (a parameter named `k`, value `x=1`: another parameter under every reading,
 *    `URLSearchParams` included) loses that parameter on every endpoint: the first gets `?k%3Dx=1` only and the
 *    spare no query at all; the mirror case (own `?k=x%3D1`, call `?k%3Dx=1`) loses it too. Mechanism:
 *    src/fallback/chain-router.ts `readings()` (line ~177) makes its "URL reading" by `decodeURIComponent` of the
 *    whole pair and only then splits it at the first `=`, so an encoded `=` in a name becomes the separator:
 *    `k%3Dx=1` reads as name `k`, value `x=1`, equal to the form reading of the caller's `k=x=1`; `restOf` then
 *    drops the caller's pair as one of the endpoint's own.
 *
 * Held (plain `it`):
 * - Plain call as a string, a `Request` and a `URL` whose `searchParams` were edited: every query of the matrix
 *   (none, `?`, `??`, `&`, repeated, `+`/`%20`/`%2B`, raw space, `;`, `=` in values, empty names, unicode, bad
 *   escapes, `'"<>`, `%2F/`, a fragment, an 8,000-byte query) arrives as plain fetch sends it.
 * - Chain without an own query: the first endpoint gets the URL called, the spare the same query below its path,
 *   byte for byte as plain fetch sends them.
 * - Chain with own queries (`?key=K`, `?key=K&v=2`, `?%6Bey=K`, `?key=K&key=L`, `?key`, `?key=`, `?q=é`, a trailing
 *   `&`): the caller's copy of the own parameters, in any position and encoding (`%6Bey=K`, `key=%4B`, repeated),
 *   goes once, first, to the first endpoint and never to the spare; every other parameter arrives as written.
 * - A hedge: the first endpoint keeps its own key, the hedged spare its own and never the first's.
 * - A 307 redirect followed by the library (relative query-only `?only=1`, raw space, raw unicode, bare `?`, a
 *   fragment, `%zz`, another origin, a scheme-relative one), plain and from a chain endpoint: the target receives
 *   what plain fetch following the same redirect sends.
 * - Chains told apart by their query (`?model=a`, `?model=b`): encoded forms (`%62`, `m%6Fdel`) route alike; the
 *   chosen chain's own parameter goes once to its first endpoint, the caller's others go on as written.
 * - A degradation query rule at `medium`: `steps` and `model` are edited in each place (encoded names too), every
 *   other pair byte for byte (raw space, `%2B`, `+`, `;`, empty pieces, a pair without `=`), on a plain call and
 *   down a chain to the spare.
 * - `resilientProxy`: an upstream route sends the upstream's own query first and the client's after it; a chain
 *   route sends the first endpoint's own key once to it and never to the spare, whatever the client wrote.
 * - No query value (the caller's, an endpoint's own, a spare's own, a redirect target's) in any error (message,
 *   stack, causes), event, `health()` or `debugInfo()`: refused origins, a chain exhausted by refusals and by
 *   attempt timeouts, a `transform` whose error quotes its URL, a redirect loop, an invalid port, a breaker opened
 *   by 503s, a degradation-rewritten call; nor in the proxy's 502 and health answers.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { type Handler, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const once = { maxAttempts: 1 };
const fast = { maxAttempts: 2, initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const unavailable: Handler = (hit) => {
  hit.res.statusCode = 503;
  hit.res.end();
};
const ctx = { waitUntil() {}, passThroughOnException() {} };

/** The request targets each server received while `call` ran (its body read), after the handlers were set. */
async function received(
  call: () => Promise<Response>,
  onA?: Handler,
  onB?: Handler,
): Promise<{ a: string[]; b: string[]; status: number }> {
  a.reset();
  b.reset();
  if (onA) a.on(onA);
  if (onB) b.on(onB);
  const res = await call();
  await res.text();
  return { a: a.hits.map((hit) => hit.path), b: b.hits.map((hit) => hit.path), status: res.status };
}

/** The oracle: the request target plain fetch sends for `url`, on the server that gets it. */
async function plainTarget(url: string): Promise<string> {
  const server = url.startsWith(b.base) ? b : a;
  server.reset();
  await (await fetch(url)).text();
  const [hit] = server.hits;
  server.reset();
  return hit?.path ?? "(none)";
}

const callQueries = [
  "",
  "?",
  "??",
  "?&",
  "?a=1&",
  "?a=1&a=2&a=1",
  "?q=a+b",
  "?q=a%20b",
  "?q=a%2Bb",
  "?q=a b",
  "?a=1;b=2",
  "?a=b=c",
  "?=x&=",
  "?&&",
  "?q=é",
  "?q=%zz",
  "?q=%E9",
  "?q='\"<>`{}|^",
  "?q=%2F/&r=%26",
  "?x#frag",
  "?x=1#a?b",
  `?long=${"z".repeat(8_000)}`,
];

describe("plain calls: the query arrives as plain fetch sends it", () => {
  it("a string, a Request and a URL whose searchParams were edited", async () => {
    const layer = createResilience({ retry: once });
    for (const query of callQueries) {
      const url = `${a.base}/v1/x${query}`;
      const oracle = await plainTarget(url);
      expect((await received(() => layer.fetch(url))).a, query).toEqual([oracle]);
      expect((await received(() => layer.fetch(new Request(url)))).a, query).toEqual([oracle]);
      const edited = new URL(url);
      edited.searchParams.append("added", "a b+c/é");
      const editedOracle = await plainTarget(edited.href);
      expect((await received(() => layer.fetch(edited))).a, query).toEqual([editedOracle]);
    }
  });
});

describe("fallback chains: each endpoint's query", () => {
  it("without an own query: the first gets the URL called, the spare the same query below its path", async () => {
    const layer = createResilience({
      retry: once,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "A", url: `${a.base}/v1` },
            { name: "B", url: `${b.base}/v2` },
          ],
        },
      ]),
    });
    for (const query of callQueries) {
      const url = `${a.base}/v1/x${query}`;
      const first = await received(() => layer.fetch(url));
      expect(first.a, query).toEqual([await plainTarget(url)]);
      expect(first.b).toEqual([]);
      const viaRequest = await received(() => layer.fetch(new Request(url)));
      expect(viaRequest.a, query).toEqual([await plainTarget(url)]);
      const spare = await received(() => layer.fetch(url), unavailable);
      expect(spare.b, query).toEqual([await plainTarget(`${b.base}/v2/x${query}`)]);
    }
  });

  // [own query of the first endpoint, call query, what the first should get after its own, what the spare gets]
  const ownCases: Array<[string, string, string, string]> = [
    ["?key=K", "", "", ""],
    ["?key=K", "?", "", ""],
    ["?key=K", "?key=K", "", ""],
    ["?key=K", "?a=1&key=K", "a=1", "a=1"],
    ["?key=K", "?key=K&a=1", "a=1", "a=1"],
    ["?key=K", "?a=1&key=K&b=2", "a=1&b=2", "a=1&b=2"],
    ["?key=K", "?%6Bey=K", "", ""],
    ["?key=K", "?key=%4B&q=a+b", "q=a+b", "q=a+b"],
    ["?key=K", "?key=K&key=K&z", "z", "z"],
    ["?key=K", "?key=L", "key=L", "key=L"],
    ["?key=K", "?a=1;key=K", "a=1;key=K", "a=1;key=K"],
    ["?key=K", "?q=a%2Bb&key=K&r=%20", "q=a%2Bb&r=%20", "q=a%2Bb&r=%20"],
    ["?key=K&v=2", "?v=2&x=1&key=K", "x=1", "x=1"],
    ["?%6Bey=K", "?key=K&x=1", "x=1", "x=1"],
    ["?key=K&key=L", "?key=L&x=1", "x=1", "x=1"],
    ["?key", "?key&x=1", "x=1", "x=1"],
    ["?key=", "?x=1&key=", "x=1", "x=1"],
    ["?q=é", "?q=%C3%A9&x=é", "x=é", "x=é"],
  ];

  it("own parameters go once, first, to the first endpoint and never to the spare", async () => {
    for (const [own, query, restA, restB] of ownCases) {
      const layer = createResilience({
        retry: once,
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "A", url: `${a.base}/v1${own}` },
              { name: "B", url: `${b.base}/v2` },
            ],
          },
        ]),
      });
      const url = `${a.base}/v1/x${query}`;
      const ownQuery = own.slice(1);
      const expectA = await plainTarget(`${a.base}/v1/x?${[ownQuery, restA].filter(Boolean).join("&")}`);
      const expectB = await plainTarget(`${b.base}/v2/x${restB ? `?${restB}` : ""}`);
      const first = await received(() => layer.fetch(url));
      expect(first.a, `${own} ${query}`).toEqual([expectA]);
      const spare = await received(() => layer.fetch(new Request(url)), unavailable);
      expect(spare.a, `${own} ${query}`).toEqual([expectA]);
      expect(spare.b, `${own} ${query}`).toEqual([expectB]);
    }
  });

  it("a trailing `&` on the own query: the caller's parameters follow it as written", async () => {
    const layer = createResilience({
      retry: once,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "A", url: `${a.base}/v1?key=K&` },
            { name: "B", url: `${b.base}/v2` },
          ],
        },
      ]),
    });
    const spare = await received(() => layer.fetch(`${a.base}/v1/x?a=1&key=K`), unavailable);
    expect(spare.a).toEqual(["/v1/x?key=K&&a=1"]);
    expect(spare.b).toEqual(["/v2/x?a=1"]);
  });

  it("a hedge: the hedged spare gets its own query and the caller's, never the first's key", async () => {
    const layer = createResilience({
      retry: once,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 20 },
          endpoints: [
            { name: "A", url: `${a.base}/v1?key=K` },
            { name: "B", url: `${b.base}/v2?tok=T` },
          ],
        },
      ]),
    });
    const got = await received(
      () => layer.fetch(`${a.base}/v1/x?z=1&key=K&q=a+b`),
      () => {}, // never answers: the hedge starts, wins, and the first is aborted
    );
    expect(got.a).toEqual([await plainTarget(`${a.base}/v1/x?key=K&z=1&q=a+b`)]);
    expect(got.b).toEqual([await plainTarget(`${b.base}/v2/x?tok=T&z=1&q=a+b`)]);
  });

  it("chains told apart by their query: encoded forms route alike, the own parameter goes once", async () => {
    const layer = createResilience({
      retry: once,
      fallback: fallback([
        {
          name: "ca",
          endpoints: [
            { name: "A1", url: `${a.base}/v1?model=a` },
            { name: "B1", url: `${b.base}/a` },
          ],
        },
        {
          name: "cb",
          endpoints: [
            { name: "A2", url: `${a.base}/v1?model=b` },
            { name: "B2", url: `${b.base}/b` },
          ],
        },
      ]),
    });
    for (const [query, a1, b1] of [
      ["?model=b", "/v1/x?model=b", "/b/x"],
      ["?x=1&model=b", "/v1/x?model=b&x=1", "/b/x?x=1"],
      ["?model=%62", "/v1/x?model=b", "/b/x"],
      ["?m%6Fdel=b&y=%20", "/v1/x?model=b&y=%20", "/b/x?y=%20"],
      ["?model=a", "/v1/x?model=a", "/a/x"],
    ] as const) {
      const got = await received(() => layer.fetch(`${a.base}/v1/x${query}`), unavailable);
      expect(got.a, query).toEqual([a1]);
      expect(got.b, query).toEqual([b1]);
    }
  });
});

describe("redirects followed by the library", () => {
  it("the target receives what plain fetch following the same redirect sends", async () => {
    const layer = createResilience({ retry: once });
    const chain = createResilience({
      retry: once,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "A", url: `${a.base}/v1?key=K` },
            { name: "B", url: `${b.base}/v2` },
          ],
        },
      ]),
    });
    for (const location of [
      "?only=1",
      "/p?q=a b",
      "/p?q=é",
      "/p?",
      "/p?a=1&a=2#f",
      `${b.base}/p?key=K`,
      "/p?q=%zz",
      `//${b.host}/p?x=1`,
      `${b.base}/p?q='\``,
    ]) {
      const redirect: Handler = (hit) => {
        if (hit.n > 1) return void hit.res.end("ok");
        hit.res.statusCode = 307;
        hit.res.setHeader("location", location);
        hit.res.end();
      };
      const plain = await received(() => fetch(`${a.base}/v1/x?k=1`), redirect);
      const viaLayer = await received(() => layer.fetch(`${a.base}/v1/x?k=1`), redirect);
      expect(viaLayer, location).toEqual(plain);
      const viaChain = await received(() => chain.fetch(`${a.base}/v1/x?k=1&key=K`), redirect);
      expect(viaChain.a[0]).toBe("/v1/x?key=K&k=1");
      expect({ a: viaChain.a.slice(1), b: viaChain.b }, location).toEqual({ a: plain.a.slice(1), b: plain.b });
    }
  });
});

describe("degradation query rules", () => {
  const cases: Array<[string, string]> = [
    ["?steps=50", "?steps=30"],
    ["?steps=50&steps=10&steps=40", "?steps=30&steps=10&steps=30"],
    ["?a=b c&steps=50&z=%2B&w=a+b", "?a=b%20c&steps=30&z=%2B&w=a+b"],
    ["?st%65ps=50", "?st%65ps=30"],
    ["?steps=50;x", "?steps=50;x"],
    ["?model=premium&q=a%2Fb/c", "?model=standard&q=a%2Fb/c"],
    ["?steps=50&steps&flag", "?steps=30&steps&flag"],
    ["?x=1&&steps=50&", "?x=1&&steps=30&"],
    ["??steps=50", "??steps=50"],
  ];

  it("edits only the rule's parameters, every other byte as written, plain and down a chain", async () => {
    const params = { steps: { query: "steps" }, model: { query: "model" } };
    const plain = createResilience({
      retry: once,
      degradation: degradation({ rules: [{ match: `${a.base}/v1`, params }] }),
    });
    plain.degradation?.setLevel("medium");
    const chained = createResilience({
      retry: once,
      degradation: degradation({ rules: [{ match: `${a.base}/v1`, params }] }),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "A", url: `${a.base}/v1?key=K` },
            { name: "B", url: `${b.base}/v2` },
          ],
        },
      ]),
    });
    chained.degradation?.setLevel("medium");
    for (const [query, edited] of cases) {
      const got = await received(() => plain.fetch(`${a.base}/v1/x${query}`));
      expect(got.a, query).toEqual([await plainTarget(`${a.base}/v1/x${edited}`)]);
      const spare = await received(() => chained.fetch(`${a.base}/v1/x${query}&key=K`), unavailable);
      expect(spare.b, query).toEqual([await plainTarget(`${b.base}/v2/x${edited}`)]);
      expect(spare.a[0], query).toBe(await plainTarget(`${a.base}/v1/x?key=K&${edited.slice(1)}`));
    }
  });
});

describe("resilientProxy", () => {
  it("upstream routes put the client's query after the upstream's own; chain routes keep the key on the first", async () => {
    for (const own of ["", "?key=K"]) {
      const proxy = resilientProxy<object>({
        resilience: { retry: once },
        routes: [
          { path: "/t", upstream: `${a.base}/v1${own}` },
          {
            path: "/c",
            chain: {
              name: "c",
              endpoints: [
                { name: "A", url: `${a.base}/v1${own}` },
                { name: "B", url: `${b.base}/v2` },
              ],
            },
          },
        ],
      });
      const ownQuery = own.slice(1);
      for (const query of ["", "?a=1", "?q=a+b&r=a%2Bb", "?q=é", "?q='", "?key=L", "?a=1&key=K"]) {
        const client = query.slice(1);
        const callerRest = client
          .split("&")
          .filter((pair) => pair !== "" && (own === "" || pair !== "key=K"))
          .join("&");
        const upstream = await received(() => proxy.fetch(new Request(`https://w.example/t/x${query}`), {}, ctx));
        expect(upstream.a, `${own} ${query}`).toEqual([
          await plainTarget(`${a.base}/v1/x?${[ownQuery, client].filter(Boolean).join("&")}`),
        ]);
        const spare = await received(
          () => proxy.fetch(new Request(`https://w.example/c/x${query}`), {}, ctx),
          unavailable,
        );
        expect(spare.a, `${own} ${query}`).toEqual([
          await plainTarget(`${a.base}/v1/x?${[ownQuery, callerRest].filter(Boolean).join("&")}`),
        ]);
        expect(spare.b, `${own} ${query}`).toEqual([
          await plainTarget(`${b.base}/v2/x${callerRest ? `?${callerRest}` : ""}`),
        ]);
      }
    }
  });
});

describe("no query value in errors, events, health or debugInfo", () => {
  const secrets = ["CALLERSECRET", "OWNSECRET", "SPARESECRET", "REDIRSECRET"];
  const events = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;

  /** Every string reachable from `value` (own keys, enumerable or not), an error's message and stack included. */
  function texts(value: unknown, seen = new Set<unknown>(), depth = 0): string[] {
    if (typeof value === "string") return [value];
    if (typeof value !== "object" || value === null || depth > 10 || seen.has(value)) return [];
    seen.add(value);
    const out: string[] = value instanceof Error ? [String(value), value.stack ?? ""] : [];
    for (const key of Reflect.ownKeys(value)) {
      let inner: unknown;
      try {
        inner = (value as Record<PropertyKey, unknown>)[key];
      } catch {
        continue;
      }
      out.push(...texts(inner, seen, depth + 1));
    }
    return out;
  }

  it("across plain calls, chains, redirects, invalid URLs and rewrites", async () => {
    const dead = await refusedOrigin();
    const dead2 = await refusedOrigin();
    const redirectLoop: Handler = (hit) => {
      hit.res.statusCode = 302;
      hit.res.setHeader("location", `/p${hit.n}?sig=REDIRSECRET`);
      hit.res.end();
    };
    const scenarios: Array<{
      name: string;
      options: Parameters<typeof createResilience>[0];
      url: string;
      on?: Handler;
    }> = [
      { name: "refused", options: { retry: fast }, url: `${dead}/v1?key=CALLERSECRET` },
      {
        name: "503 opens the breaker",
        options: { retry: fast, breaker: { failureThreshold: 1 } },
        url: `${a.base}/v1?key=CALLERSECRET`,
        on: unavailable,
      },
      {
        name: "chain refused",
        options: {
          retry: fast,
          fallback: fallback([
            {
              name: "c",
              endpoints: [
                { name: "A", url: `${dead}/v1?key=OWNSECRET` },
                { name: "B", url: `${dead2}/v2?tok=SPARESECRET` },
              ],
            },
          ]),
        },
        url: `${dead}/v1/x?z=CALLERSECRET&key=OWNSECRET`,
      },
      {
        name: "chain timeouts",
        options: {
          retry: fast,
          timeout: { attempt: 30 },
          fallback: fallback([
            {
              name: "c",
              endpoints: [
                { name: "A", url: `${a.base}/v1?key=OWNSECRET` },
                { name: "B", url: `${b.base}/v2?tok=SPARESECRET` },
              ],
            },
          ]),
        },
        url: `${a.base}/v1/x?z=CALLERSECRET`,
        on: () => {},
      },
      {
        name: "transform quoting its URL",
        options: {
          retry: fast,
          fallback: fallback([
            {
              name: "c",
              endpoints: [
                {
                  name: "A",
                  url: `${a.base}/v1?key=OWNSECRET`,
                  transform: (req) => {
                    throw new Error(`cannot shape ${req.url}`);
                  },
                },
                {
                  name: "B",
                  url: `${b.base}/v2?tok=SPARESECRET`,
                  transform: (req) => {
                    throw new TypeError(`cannot shape (${req.url})`);
                  },
                },
              ],
            },
          ]),
        },
        url: `${a.base}/v1/x?z=CALLERSECRET`,
      },
      { name: "redirect loop", options: { retry: fast }, url: `${a.base}/v1?key=CALLERSECRET`, on: redirectLoop },
      { name: "invalid port", options: { retry: fast }, url: "http://127.0.0.1:99999/v1?key=CALLERSECRET" },
      {
        name: "rewritten call",
        options: { retry: fast, degradation: degradation({ rules: [{ params: { steps: { query: "steps" } } }] }) },
        url: `${a.base}/v1?steps=50&key=CALLERSECRET`,
        on: unavailable,
      },
    ];
    for (const { name, options, url, on } of scenarios) {
      const layer = createResilience(options);
      layer.degradation?.setLevel("medium");
      const seen: unknown[] = [];
      for (const event of events) layer.on(event, (payload) => void seen.push(payload));
      a.reset();
      b.reset();
      if (on) {
        a.on(on);
        b.on(on);
      }
      let error: unknown;
      try {
        const res = await layer.fetch(url);
        getResilienceInfo(res);
        await res.text();
      } catch (caught) {
        error = caught;
      }
      const all = [...texts(error), ...texts(seen), JSON.stringify(layer.health()), JSON.stringify(layer.debugInfo())];
      // Something to read: an error, or events of a call that settled (an invalid port is refused before it starts).
      expect(error !== undefined || seen.length > 0, name).toBe(true);
      for (const secret of secrets)
        expect(
          all.filter((text) => text.includes(secret)),
          `${name}: ${secret}`,
        ).toEqual([]);
    }
  });

  it("the proxy's 502 and health answers", async () => {
    const dead = await refusedOrigin();
    const proxy = resilientProxy<object>({
      resilience: { retry: fast },
      routes: [
        {
          path: "/c",
          chain: {
            name: "c",
            endpoints: [
              { name: "A", url: `${dead}/v1?key=OWNSECRET` },
              { name: "B", url: `${dead}/v2?tok=SPARESECRET` },
            ],
          },
        },
        { path: "/t", upstream: `${dead}/v1?key=OWNSECRET` },
      ],
    });
    const chain = await proxy.fetch(new Request("https://w.example/c/x?z=CALLERSECRET"), {}, ctx);
    const upstream = await proxy.fetch(new Request("https://w.example/t/x?z=CALLERSECRET"), {}, ctx);
    const health = await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx);
    expect([chain.status, upstream.status, health.status]).toEqual([502, 502, 200]);
    const bodies = [await chain.text(), await upstream.text(), await health.text()].join("\n");
    for (const secret of secrets) expect(bodies).not.toContain(secret);
  });
});

describe("defects", () => {
  it("an encoded `=` in a name: the caller's other parameter is dropped on every endpoint", async () => {
    for (const [own, query] of [
      ["?k%3Dx=1", "?k=x=1"],
      ["?k=x%3D1", "?k%3Dx=1"],
    ] as const) {
      const layer = createResilience({
        retry: once,
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "A", url: `${a.base}/v1${own}` },
              { name: "B", url: `${b.base}/v2` },
            ],
          },
        ]),
      });
      // Another parameter than the endpoint's own under every reading: URLSearchParams names them apart.
      expect([...new URLSearchParams(own)]).not.toEqual([...new URLSearchParams(query)]);
      const first = await received(() => layer.fetch(`${a.base}/v1/x${query}`));
      expect(first.a, `${own} ${query}`).toEqual([await plainTarget(`${a.base}/v1/x${own}&${query.slice(1)}`)]);
      const spare = await received(() => layer.fetch(`${a.base}/v1/x${query}`), unavailable);
      expect(spare.b, `${own} ${query}`).toEqual([await plainTarget(`${b.base}/v2/x${query}`)]);
    }
  });
});
