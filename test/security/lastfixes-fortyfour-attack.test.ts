/**
 * Outside-in attack on the two newest fixes (443bbf3): the ky client handing on the layer's error unwrapped from
 * ky's `NetworkError`, cutting what a `beforeError` hook throws, copying what `extend(fn)` returns; and a fallback
 * chain reading which query pairs were its first endpoint's own from the URL before a degradation rewrite.
 * Docs: docs/retry.md "## ky" ("The layer's errors reach you as they are: one that ky would wrap in its
 * `NetworkError` (a platform's `TypeError` the layer passed on) comes unwrapped, to your `beforeError` hooks too.
 * ky's own errors (`HTTPError`, `TimeoutError`) name the URL in their message without its query … its last cuts
 * what yours wrote, and what one of yours throws is cut as well. Passing ky's `retry` or `fetch` is a
 * `ConfigError`, at once, … to `extend`"); CHANGELOG.md Fixed ("`extend(fn)` kept the objects its function
 * returned (`searchParams`, `json`) by reference, where `extend({…})` copies them: both copy now"); docs/fallback.md
 * ("a call that carries the first endpoint's own parameters, wherever in its query and under whatever path, sends
 * them once to that endpoint and to no other", "Both are compared as the URL parser reads them");
 * docs/degradation.md ("a rewritten parameter that the first endpoint's own `url` names, `…/v1?model=premium`,
 * goes to that endpoint once, with the rewritten value in its place, and to no other endpoint").
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient`
 * (./ky) with ky's `replaceOption`; node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts), a refused
 * origin for network failures, undici's refusal of a `keep-alive` header for the layer's raw `TypeError`.
 * Paths: plain call, `Request` input, chain (all endpoints refused, and hedged), degradation rewrite (query rule,
 * with a body and a header rule beside it), `transform` on the first endpoint, ky client (call, `extend`,
 * `extend(fn)`, `create`, `beforeError: undefined`, `replaceOption`).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the chain compares query pairs as the URL parser reads them (ends trimmed, tabs
 * and newlines dropped), before and after a rewrite):
 * 1. docs/fallback.md "a call that carries the first endpoint's own parameters … sends them once to that
 *    endpoint and to no other" and "Both are compared as the URL parser reads them". Observed: a call URL whose
 *    own pair carries what the URL parser drops (a tab or newline anywhere, `?key=\tK`; a space or control
 *    character at the end, `…&key=K `) sends the API key to the spare (`/v2?x=1&key=K`, another origin) and twice
 *    to the first endpoint (`/v1?key=K&x=1&key=K`), at `full` as at a degraded level; at `medium` the first
 *    endpoint's own `model=premium` goes too (`?key=K&model=premium&model=standard`: the premium model first,
 *    which the last fix meant to end) and the spare gets `model=standard`. src/fallback/chain-router.ts `restOf`
 *    / `endpointsFor` / `readings` compare the pairs as written (`key=K\t` is no reading of `key=K`), where
 *    fetch sends the URL as the parser reads it; `editQuery` (src/degradation/query-edit.ts) trims the URL's ends
 *    too, so the rewritten URL and `callerUrl` disagree in the last pair.
 *
 * Docs-silent (not pinned):
 * - An own `model=standard` on the first endpoint and a call `?model=premium` that `medium` rewrites to
 *   `standard`: the first endpoint gets `model=standard` twice (the same value), the spare `model=standard`.
 * - Empty pairs (`?&key=K&model=premium&`) keep their `&`s (`/v1?key=K&model=standard&&`, spare `/v2?&`).
 * - A `beforeError` hook that throws an error of its own (no ky error) with the URL in it is left as is (the
 *   docs say the layer's and ky's errors are cut; the brief's "left as is").
 *
 * Held (plain `it`):
 * - The layer's raw `TypeError: fetch failed` reaches the caller unwrapped (not `NetworkError`): plain call,
 *   `Request` input, a degradation rewrite, `extend`/`create` instances, `hooks: { beforeError: undefined }` and
 *   `replaceOption({ beforeError: undefined } as unknown as NonNullable<Options["hooks"]>)` on a call; the caller's
 * hooks (call, `extend`, `create`,
 *   `replaceOption`) see the `TypeError`; a hook returning its own Error gives that Error.
 * - A chain whose endpoints all fail at the network, and a hedged one, reject with the layer's error (no
 *   `NetworkError`), no query in message or stack.
 * - A hook that throws (sync or async) ky's `HTTPError` or `TimeoutError` with the URL written into its message
 *   has message and stack cut, on a call, an `extend` and `createClient`'s own hooks; a cause it set is cut too.
 *   A hook throwing a non-ky error is left as is.
 * - `extend(fn)`: sees the parent's `fetch` and `retry: 0`; the `searchParams` and `json` it returns are copied
 *   (edited afterwards, the request is unchanged); its hook functions run as given; a changed `retry` or `fetch`
 *   is a `ConfigError`; returning the parent's `retry`/`fetch` unchanged is accepted.
 * - Chain at `medium` with own `?key=K&model=premium`: the key goes once to the first endpoint and never to the
 *   spare for the call written twice, with empty pairs, with a fragment, with a body and a header rule beside
 *   the query rule, and with a `transform` on the first endpoint (which sees the rewritten value once).
 */
import { HTTPError, isNetworkError, TimeoutError as KyTimeoutError, type Options, replaceOption } from "ky";
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { type EndpointRequest, fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const answer = (status: number) => (h: Hit) => {
  h.res.statusCode = status;
  h.res.end("x");
};
const paths = (server: typeof a) => server.hits.map((h) => h.path);
const params = (hit: Hit | undefined) => new URL(hit?.path ?? "", "http://x").searchParams;
/** undici refuses a `keep-alive` header before sending: the layer passes on `TypeError: fetch failed`. */
const refused = { headers: { "keep-alive": "timeout=5" } };
const modelRule = { rules: [{ params: { model: { query: "model" } } }] };

function chainLayer(first: string, rules: object = modelRule, transform?: (r: EndpointRequest) => EndpointRequest) {
  const resilience = createResilience({
    retry: false,
    fallback: fallback([
      {
        name: "A",
        endpoints: [
          { name: "p", url: `${a.base}${first}`, ...(transform ? { transform } : {}) },
          { name: "q", url: `${b.base}/v2` },
        ],
      },
    ]),
    degradation: degradation({ ...rules, models: [["premium", "standard", "basic"]] } as Parameters<
      typeof degradation
    >[0]),
  });
  resilience.degradation?.setLevel("medium");
  return resilience;
}

function keyChain() {
  return createResilience({
    retry: false,
    fallback: fallback([
      {
        name: "A",
        endpoints: [
          { name: "p", url: `${a.base}/v1?key=K` },
          { name: "q", url: `${b.base}/v2` },
        ],
      },
    ]),
  });
}

describe("defects", () => {
  it("1. an own key the URL parser reads through a tab or a trailing space goes to no spare, once to the first", async () => {
    for (const written of ["/v1?key=\tK&x=1", "/v1?x=1&key=K ", "/v1?x=1&key=K\n"]) {
      a.reset();
      b.reset();
      a.on(answer(503));
      const res = await keyChain().fetch(`${a.base}${written}`);
      await res.text();
      // Observed: the spare gets `?x=1&key=K`, the first endpoint `key=K` twice.
      expect(params(b.hits[0]).getAll("key"), JSON.stringify(written)).toEqual([]);
      expect(params(a.hits[0]).getAll("key"), JSON.stringify(written)).toEqual(["K"]);
    }
    // At medium, the premium model goes first to the first endpoint, the rewritten one to the spare.
    a.reset();
    b.reset();
    a.on(answer(503));
    const res = await chainLayer("/v1?key=K&model=premium").fetch(`${a.base}/v1?key=K&model=premium `);
    await res.text();
    expect(params(a.hits[0]).getAll("model")).toEqual(["standard"]);
    expect(params(b.hits[0]).getAll("model")).toEqual([]);
  });
});

describe("held: ky client hands on the layer's error unwrapped", () => {
  const api = createClient({ resilience: { retry: false } });
  const unwrapped = (error: unknown) => {
    expect(isNetworkError(error)).toBe(false);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe("fetch failed");
  };

  it("plain call, Request input, degradation rewrite", async () => {
    unwrapped(await rejection(api.get(`${a.base}/x?key=S`, refused)));
    unwrapped(await rejection(api(new Request(`${a.base}/x?key=S`), refused)));
    const d = createClient({ resilience: { retry: false, degradation: degradation(modelRule) } });
    unwrapped(await rejection(d.get(`${a.base}/v1?model=premium`, refused)));
    expect(a.hits).toHaveLength(0);
  });

  it("extend and create instances, beforeError undefined and replaceOption on a call", async () => {
    const seen: unknown[] = [];
    const hook = ({ error }: { error: Error }) => {
      seen.push(error);
      return error;
    };
    unwrapped(await rejection(api.extend({ hooks: { beforeError: [hook] } }).get(`${a.base}/x`, refused)));
    unwrapped(await rejection(api.create({ hooks: { beforeError: [hook] } }).get(`${a.base}/x`, refused)));
    unwrapped(await rejection(api.extend(() => ({ hooks: { beforeError: [hook] } })).get(`${a.base}/x`, refused)));
    unwrapped(
      await rejection(
        api.get(`${a.base}/x`, {
          ...refused,
          hooks: { beforeError: undefined } as unknown as NonNullable<Options["hooks"]>,
        }),
      ),
    );
    unwrapped(
      await rejection(
        api.get(`${a.base}/x`, {
          ...refused,
          hooks: replaceOption({ beforeError: undefined } as unknown as NonNullable<Options["hooks"]>),
        }),
      ),
    );
    unwrapped(await rejection(api.get(`${a.base}/x`, { ...refused, hooks: replaceOption({ beforeError: [hook] }) })));
    expect(seen).toHaveLength(4);
    for (const error of seen) unwrapped(error);
    const mine = new Error("mine");
    expect(await rejection(api.get(`${a.base}/x`, { ...refused, hooks: { beforeError: [() => mine] } }))).toBe(mine);
  });

  it("a chain whose endpoints all fail at the network, and a hedged one: the layer's error, no query", async () => {
    const dead1 = await refusedOrigin();
    const dead2 = await refusedOrigin();
    for (const hedge of [undefined, 0]) {
      const client = createClient({
        resilience: {
          retry: false,
          fallback: fallback([
            {
              name: "A",
              ...(hedge === undefined ? {} : { hedge: { delay: hedge } }),
              endpoints: [
                { name: "p", url: `${dead1}/v1?key=SECRET` },
                { name: "q", url: `${dead2}/v2` },
              ],
            },
          ]),
        },
      });
      const error = (await rejection(client.get(`${dead1}/v1?key=SECRET&x=1`))) as Error;
      expect(isNetworkError(error)).toBe(false);
      expect(error).toBeInstanceOf(Error);
      expect(`${error.message} ${error.stack} ${String(error.cause)}`).not.toContain("SECRET");
    }
  });
});

describe("held: what a beforeError hook throws is cut", () => {
  const api = createClient({ resilience: { retry: false } });
  const writeIn = ({ error, request }: { error: Error; request: Request }) => {
    error.message += ` ${request.url}`;
    throw error;
  };
  const writeInAsync = async (input: { error: Error; request: Request }) => writeIn(input);

  it("HTTPError, sync and async, on a call, an extend and createClient's own hooks", async () => {
    a.on(answer(500));
    const own = createClient({ resilience: { retry: false }, hooks: { beforeError: [writeIn] } });
    const calls = [
      api.get(`${a.base}/x?key=SECRET`, { hooks: { beforeError: [writeIn] } }),
      api.get(`${a.base}/x?key=SECRET`, { hooks: { beforeError: [writeInAsync] } }),
      api.extend({ hooks: { beforeError: [writeInAsync] } }).get(`${a.base}/x?key=SECRET`),
      own.get(`${a.base}/x?key=SECRET`),
      api.get(`${a.base}/x?key=SECRET`, {
        hooks: {
          beforeError: [
            ({ error, request }) => {
              error.cause = new Error(request.url);
              throw error;
            },
          ],
        },
      }),
    ];
    for (const call of calls) {
      const error = (await rejection(call)) as Error;
      expect(error).toBeInstanceOf(HTTPError);
      expect(`${error.message} ${error.stack} ${String(error.cause)}`).not.toContain("SECRET");
    }
  });

  it("TimeoutError thrown with the URL is cut; a non-ky error thrown is left as is", async () => {
    a.on(() => {});
    const error = (await rejection(
      api.get(`${a.base}/x?key=SECRET`, { timeout: 30, hooks: { beforeError: [writeIn] } }),
    )) as Error;
    expect(error).toBeInstanceOf(KyTimeoutError);
    expect(`${error.message} ${error.stack}`).not.toContain("SECRET");
    a.on(answer(500));
    const own = new RangeError("own http://h/x?key=MINE");
    expect(
      await rejection(
        api.get(`${a.base}/x`, {
          hooks: {
            beforeError: [
              () => {
                throw own;
              },
            ],
          },
        }),
      ),
    ).toBe(own);
    expect(own.message).toContain("MINE");
  });
});

describe("held: extend(fn)", () => {
  const api = createClient({ resilience: { retry: false } });

  it("sees the parent's options, copies what it returns, keeps hooks as given", async () => {
    let parentRetry: unknown;
    let parentFetch: unknown;
    const search = { q: "1" };
    const json = { n: 1 };
    let ran = 0;
    const hook = () => {
      ran++;
    };
    const child = api.extend((parent) => {
      parentRetry = parent.retry;
      parentFetch = parent.fetch;
      return { searchParams: search, json, method: "post", hooks: { beforeRequest: [hook] } };
    });
    expect(parentRetry).toBe(0);
    expect(typeof parentFetch).toBe("function");
    search.q = "2";
    json.n = 2;
    await child.post(`${a.base}/x`).text();
    expect(a.hits[0]?.path).toBe("/x?q=1");
    expect(a.hits[0]?.body).toBe('{"n":1}');
    expect(ran).toBe(1);
    // The parent's own retry and fetch handed back are no change.
    await api
      .extend((parent) => ({ retry: parent.retry, fetch: parent.fetch }) as Options)
      .get(`${a.base}/y`)
      .text();
    expect(paths(a)).toContain("/y");
    expect(() => api.extend(() => ({ retry: 2 }))).toThrow(ConfigError);
    expect(() => api.extend(() => ({ fetch: globalThis.fetch }))).toThrow(ConfigError);
  });
});

describe("held: a chain at medium whose first endpoint owns ?key=K&model=premium", () => {
  const cases: Array<[string, string, string]> = [
    ["/v1?key=K&key=K&model=premium&model=premium", "/v1?key=K&model=standard", "/v2"],
    ["/v1?&key=K&model=premium&", "/v1?key=K&model=standard&&", "/v2?&"],
    ["/v1?model=premium&key=K#frag", "/v1?key=K&model=standard", "/v2"],
  ];
  for (const [called, first, spare] of cases) {
    it(`called as ${called}`, async () => {
      a.on(answer(503));
      const res = await chainLayer("/v1?key=K&model=premium").fetch(`${a.base}${called}`);
      await res.text();
      expect(paths(a)).toEqual([first]);
      expect(paths(b)).toEqual([spare]);
    });
  }

  it("with a body and a header rule beside the query rule", async () => {
    a.on(answer(503));
    const rules = {
      rules: [{ params: { model: { query: "model" }, steps: "steps", quality: { header: "x-q" } } }],
    };
    const res = await chainLayer("/v1?key=K&model=premium", rules).fetch(`${a.base}/v1?model=premium&key=K&s=1`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-q": "90" },
      body: JSON.stringify({ steps: 50 }),
    });
    await res.text();
    expect(paths(a)).toEqual(["/v1?key=K&model=standard&s=1"]);
    expect(paths(b)).toEqual(["/v2?s=1"]);
    expect(b.hits[0]?.body).not.toContain('"steps":50');
  });

  it("with a transform on the first endpoint", async () => {
    a.on(answer(503));
    const seen: string[] = [];
    const res = await chainLayer("/v1?key=K&model=premium", modelRule, (r) => {
      seen.push(r.url);
      return r;
    }).fetch(`${a.base}/v1?model=premium&key=K&x=1`);
    await res.text();
    expect(seen).toEqual([`${a.base}/v1?key=K&model=standard&x=1`]);
    expect(paths(b)).toEqual(["/v2?x=1"]);
  });
});
