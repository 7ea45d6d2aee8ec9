/**
 * Outside-in attack on every promise of SECURITY.md (and the README's pointer to it) that the newest fixes touch,
 * driven against the code paths those fixes changed (CHANGELOG.md, Unreleased, "### Fixed"): a chain's first
 * endpoint's own query parameters (an API key in the query) written every way a caller may write them; the
 * `transform` check for the caller's credentials moved under other names; `resilientProxy`'s single copy of its
 * layer options (`layerCopy`) and its chain routes; the ky client's error redaction (its `beforeError` hooks,
 * ky's `NetworkError` unwrapped); the redaction of a `FallbackExhaustedError`'s `errors` record and of
 * `execute`'s `RetryExhaustedError`; `String` object bodies and bodies of another realm (`node:vm`). Every
 * channel a secret could leak through was searched: the spare origin's server, `resilience.on` payloads
 * (`recordEvents`), an error's message, stack, cause, `errors` and own fields, `health()` and `debugInfo()`.
 *
 * Docs:
 * - SECURITY.md, "Credentials never cross origins": "to an origin other than the caller's (a fallback endpoint, a
 *   hedge, a `transform` pointing elsewhere, a redirect the library follows) only `accept`, `accept-language`,
 *   `content-language`, `content-type`, `idempotency-key`, `user-agent` and the headers named in
 *   `crossOriginHeaders` go; the origin is judged on the URL actually sent".
 * - SECURITY.md, "Credentials never follow a redirect to another origin": "from the first cross-origin hop on only
 *   the allowlist goes, for good".
 * - SECURITY.md, "No secret in events, errors, `health()` or `debugInfo()`": "URLs lose their userinfo …, query
 *   string and fragment (where keys such as `?api_key=` live) before they reach any of them (an error's causes
 *   included, an `AggregateError`'s errors, … an error of another realm and a thrown string among them …, and
 *   `execute`'s `RetryExhaustedError` when its work's error names a URL) …, and so does the message of ky's own
 *   errors through `createClient` (their `request` and `options` are ky's, as ky documents them: the URL with its
 *   query, the headers, the body)"; SECURITY.md, Limits, "Objects an error holds": "The redaction rewrites an
 *   error's message, stack, causes and its own string and `URL` fields".
 * - SECURITY.md, "Buffered bodies are bounded": "a request body is kept for replay only up to `maxReplayBytes`
 *   …; a larger one (with a `replay` event) … is sent once on every path".
 * - docs/fallback.md: "an endpoint's own query, `?key=…`, stays on it: a call that carries the first endpoint's
 *   own parameters, wherever in its query and under whatever path, sends them once to that endpoint and to no
 *   other"; "Both are compared as the URL parser reads them"; "Any other header that holds the caller's value
 *   … stays home, whole: … extended with `append` …, or copied into a `Headers` of its own … Under another name
 *   … it stays home when it holds one of those values or parts of 8 characters or more".
 * - docs/degradation.md: "a rewritten parameter that the first endpoint's own `url` names, `…/v1?model=premium`,
 *   goes to that endpoint once, with the rewritten value in its place, and to no other endpoint".
 * - docs/cloudflare.md: "the query after the upstream's own, so an upstream such as `https://api.example/v1?key=…`
 *   keeps its key"; docs/options.md: "`resilientProxy` check[s] [its] options when [it is] made and keep[s] what
 *   [it] read then".
 * - docs/retry.md "## ky": "The layer's errors reach you as they are: one that ky would wrap in its
 *   `NetworkError` … comes unwrapped"; "ky's own errors (`HTTPError`, `TimeoutError`) name the URL in their
 *   message without its query, userinfo and fragment, as the layer's errors do".
 * - CHANGELOG.md, Fixed: "And in Chromium, `execute`'s `RetryExhaustedError` kept a URL's query in its `stack`
 *   when its work's error named one (Chromium writes the stack's first line when the error is made): its stack is
 *   cut now, as its message and causes were."
 *
 * How: `createResilience`, `isRetryExhaustedError` (root), `fallback` (./fallback), `degradation`
 * (./degradation), `FallbackChain` (./policies), `recordEvents` and `TestClock` (./testing), `createClient`
 * (./ky), `resilientProxy` (./cloudflare, with a fake `ctx`); two node:http servers on 127.0.0.1, two ports and
 * so two origins (test/helpers/http-upstream.ts): A, the chain's first endpoint (`?key=ASECRET`), B the spare;
 * `node:vm` for errors and bodies of another realm; for the browser, Debian's Chromium on the BUILT
 * `dist/browser/ky` (`npm run build` first) with ky 2 from node_modules through an import map
 * (test/helpers/library-page.ts serving the page).
 *
 * Paths: plain call (string URL, `URL`), `Request` input, fallback chain, hedge (on a `TestClock`), redirect the
 * library follows (Node), degradation query rewrite, `transform`, `resilientProxy` chain route, ky client (Node
 * and Chromium), `execute`, `resilience.fallback.chain(name)`, a layer whose `fetch` is a generic chain.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed since: the ky client cuts its errors' stack as their message, so plain `it`):
 * 1. SECURITY.md "No secret in events, errors, …" ("… and so does the message of ky's own errors through
 *    `createClient` (their `request` and `options` are ky's …)", the only parts it leaves to ky) and its Limits
 *    ("The redaction rewrites an error's message, stack, causes …"). Observed in Chromium: `api.get("/api/500?
 *    key=SECRET")` through `createClient` rejects with ky's `HTTPError` whose `message` is cut
 *    ("… GET http://127.0.0.1:…/api/500") but whose `stack` still begins "HTTPError: Request failed with status
 *    code 500 …: GET http://127.0.0.1:…/api/500?key=SECRET"; the same for ky's `TimeoutError` (ky's `timeout`)
 *    and for a key given in ky's `searchParams`. Chromium writes the stack's first line when the error is made
 *    (the reason the CHANGELOG gives for cutting `execute`'s stack), and the client only assigns `error.message`:
 *    src/ky/index.ts `redactMessage` (`error.message = cut`), where the layer's errors, and a ky error one of the
 *    caller's hooks throws (`cutOnThrow` → `redactErrorChain`), have their stack cut too. A page that logs the
 *    error (`console.error(error)` prints the stack) logs the key. In Node the stack is written when first read,
 *    after the cut (held below).
 *
 * Held (plain `it`):
 * - A chain's first endpoint `…/v1?key=ASECRET`: a call carrying the key written as the parser reads it (a tab
 *   or newline inside, a space or NUL at the end, the name or value percent-encoded, twice, beside empty pairs
 *   `&&`, after an empty name `=x`, with a fragment), as a string, a `URL` and a `Request`, sends it to A exactly
 *   once and never to B (another origin), which gets neither `authorization`, `cookie` nor `x-api-key`;
 *   `content-type` and `idempotency-key` go.
 * - A hedge to B (TestClock): no key, no credentials at B; A's unanswered request is closed.
 * - At `medium`, a query rule rewrites A's own `model=premium` in its place (`model=standard`, once) for a call
 *   written with tabs, and B gets neither the model, the key nor the credentials.
 * - A redirect the library follows from A to B: B gets no credentials; the `redirect` and `request` events and
 *   `debugInfo()` name no key; a second hop back to A does not restore them.
 * - A `transform` on B: the caller's headers kept, its `x-api-key` appended as `x-goog-api-key`, a cookie part in
 *   a `Headers` of its own, the `authorization` under a `crossOriginHeaders` name: none reaches B.
 * - `resilientProxy` (fake ctx): a chain route's spare on another origin gets neither the client's credentials
 *   nor the first endpoint's key (in the target's query); names pushed into `crossOriginHeaders` after the proxy
 *   was made, and options held by a class's getters, change nothing; the health JSON and the `x-resilience-*`
 *   headers hold no key.
 * - `execute`: a work throwing a generic `FallbackChain`'s `FallbackExhaustedError` (its `errors` record holding
 *   a URL in a message, a `url` field, an `AggregateError` of a string and a `URL`), an error of a `node:vm`
 *   realm, an `errors` record of another realm: the `RetryExhaustedError`'s message, stack, cause and `errors`,
 *   the `retry` events and `debugInfo()` hold no key.
 * - A layer whose `fetch` transport throws a generic chain's `FallbackExhaustedError`: the call's rejection (and
 *   the same through the layer's own chain) holds no key; `resilience.fallback.chain(name).execute` neither.
 * - ky client in Node: `HTTPError` (a key in the URL and in `searchParams`), message and stack cut; the layer's
 *   `TypeError` (undici refusing `keep-alive`) unwrapped from `NetworkError`, no key; a hook that rethrows ky's
 *   error with the URL written in is cut, message and stack.
 * - Bodies over `maxReplayBytes` of another realm (`vm` bytes, `ArrayBuffer`, `String`) and a `String` subclass:
 *   sent once, on a plain call and down a chain, with a `replay` event whose URL has no key.
 * - In Chromium, the layer's own error through the ky client (every attempt refused) has no key in its stack.
 *
 * Docs-silent (not pinned):
 * - A `transform` that slices the token out of the caller's `authorization` (`Bearer sk-…` → `sk-…`) and appends
 *   it under `x-goog-api-key`, or writes a cookie's value without its `name=`: the docs look for whole values and
 *   their parts between commas and semicolons, and the token is neither, so it reaches the other origin. A value
 *   moved into the URL's query by a `transform` goes too (the docs speak of headers).
 * - A `respond` endpoint sees the caller's URL with the first endpoint's own `?key=` in it (through
 *   `resilientProxy`, always: the target carries it); `respond` is in-process, "to no other [endpoint]" speaks of
 *   what is sent.
 * - Query pairs joined by `;` (`?key=K;x=1`) are one pair to the URL parser: a server that splits on `;` reads
 *   the first endpoint's key in what the spare gets.
 * - A `beforeError` hook that throws or returns an error of its own (not ky's) quoting `request.url` is left as
 *   it is, query and all (earlier runs took the docs' "what one of yours throws is cut" to mean ky's errors).
 * - In Chromium, ky's `HTTPError` keeps the response body in `data`: an API that echoes the URL there keeps it.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import vm from "node:vm";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, isRetryExhaustedError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { type LibraryPage, openLibraryPage } from "../helpers/library-page.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const answer =
  (code: number, headers: Record<string, string> = {}) =>
  (h: Hit) => {
    h.res.writeHead(code, headers);
    h.res.end("x");
  };
/** The caller's credentials, each long enough for the transform check (8 characters or more). */
const CREDENTIALS = {
  authorization: "Bearer sk-CALLERSECRET",
  cookie: "theme=dark; session=SESSIONSECRET",
  "x-api-key": "XKEYSECRET1",
  "content-type": "application/json",
  "idempotency-key": "job-1",
};
const SECRET = /SECRET/;

/**
 * Every text reachable from `value`: strings, own fields (hidden and symbol-named too), `message`, `stack`,
 * `cause`, an `errors` record or list, Map and Set entries, a `URL`'s href; each object once.
 */
function textOf(value: unknown, seen = new Set<unknown>()): string {
  if (typeof value === "string") return value;
  if (typeof value !== "object" || value === null) return String(value);
  if (seen.has(value)) return "";
  seen.add(value);
  const parts: string[] = [];
  if (value instanceof URL) parts.push(value.href);
  if (value instanceof Map || value instanceof Set) for (const entry of value) parts.push(textOf(entry, seen));
  for (const key of Reflect.ownKeys(value)) {
    try {
      parts.push(String(key), textOf((value as Record<PropertyKey, unknown>)[key], seen));
    } catch {}
  }
  for (const key of ["message", "stack", "cause", "errors", "name"]) {
    try {
      parts.push(textOf((value as Record<string, unknown>)[key], seen));
    } catch {}
  }
  return parts.join(" ");
}

/** The values of `name` in the query of a request path, as a server reads them. */
const queryValues = (hit: Hit, name: string) => new URL(hit.path, "http://h").searchParams.getAll(name);

/** A layer whose chain starts at A (`?key=ASECRET` its own) and moves on to B, on another origin. */
function chainLayer(extra: Parameters<typeof createResilience>[0] = {}, own = "?key=ASECRET") {
  return createResilience({
    retry: { maxAttempts: 1 },
    breaker: false,
    fallback: fallback([
      {
        name: "gen",
        endpoints: [
          { name: "a", url: `${A.base}/v1${own}` },
          { name: "b", url: `${B.base}/v2` },
        ],
      },
    ]),
    ...extra,
  });
}

/** What B received carries no secret: no key in its path, none of the caller's credentials. */
function expectCleanAtB(hit: Hit | undefined) {
  expect(hit).toBeDefined();
  const h = hit as Hit;
  expect(h.path).not.toMatch(SECRET);
  expect(h.headers.authorization).toBeUndefined();
  expect(h.headers.cookie).toBeUndefined();
  expect(h.headers["x-api-key"]).toBeUndefined();
  expect(JSON.stringify(h.headers)).not.toMatch(SECRET);
}

describe("a chain's first endpoint's own key, written every way, goes to it once and never to the spare", () => {
  const variants = [
    "?key=ASECRET",
    "?x=1&key=ASECRET",
    "?key=\tASECRET&x=1",
    "?x=1&key=ASECRET ",
    "?x=1&key=ASECRET\u0000",
    "?key=ASEC\nRET",
    "?k%65y=%41SECRET",
    "?key=ASECRET&key=ASECRET",
    "?&&key=ASECRET&&",
    "?=x&key=ASECRET",
    "?key=ASECRET#frag",
  ];

  it("string URL, `URL` and `Request` input: A gets the key once, B gets neither it nor the credentials", async () => {
    A.on(answer(503));
    B.on(answer(200));
    const resilience = chainLayer();
    const recorder = recordEvents(resilience);
    const inputs = (q: string): Array<[string, () => RequestInfo | URL]> => [
      ["string", () => `${A.base}/v1/jobs${q}`],
      ["URL", () => new URL(`${A.base}/v1/jobs${q}`)],
      ["Request", () => new Request(`${A.base}/v1/jobs${q}`, { headers: CREDENTIALS })],
    ];
    for (const q of variants) {
      for (const [kind, make] of inputs(q)) {
        const before = [A.hits.length, B.hits.length];
        const input = make();
        const res = await resilience.fetch(input, kind === "Request" ? undefined : { headers: CREDENTIALS });
        expect(res.status, `${kind} ${JSON.stringify(q)}`).toBe(200);
        await res.text();
        const a = A.hits[before[0] as number] as Hit;
        const b = B.hits[before[1] as number];
        expect(queryValues(a, "key"), `${kind} ${JSON.stringify(q)}: A's query ${a.path}`).toEqual(["ASECRET"]);
        expect(a.headers.authorization).toBe(CREDENTIALS.authorization); // the caller's origin
        expectCleanAtB(b);
        expect((b as Hit).headers["content-type"]).toBe("application/json");
        expect((b as Hit).headers["idempotency-key"]).toBe("job-1");
      }
    }
    expect(textOf(recorder.events) + textOf(resilience.debugInfo()) + textOf(resilience.health())).not.toMatch(SECRET);
  });

  it("a hedge to the spare (TestClock) carries neither the key nor the credentials", async () => {
    A.on(() => {}); // never answers
    B.on(answer(200));
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: false,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "a", url: `${A.base}/v1?key=ASECRET` },
            { name: "b", url: `${B.base}/v2` },
          ],
        },
      ]),
    });
    const recorder = recordEvents(resilience);
    const pending = resilience.fetch(new Request(`${A.base}/v1/jobs?key=\tASECRET&n=1`, { headers: CREDENTIALS }));
    const first = await A.nth(1);
    await clock.advance(1_000);
    const res = await pending;
    expect(res.status).toBe(200);
    await res.text();
    expect(queryValues(first, "key")).toEqual(["ASECRET"]);
    expectCleanAtB(B.hits[0]);
    expect(queryValues(B.hits[0] as Hit, "n")).toEqual(["1"]);
    await first.closed; // the losing hedge was aborted
    expect(textOf(recorder.events) + textOf(resilience.debugInfo())).not.toMatch(SECRET);
  });

  it("at `medium` a query rule rewrites A's own model in its place; B gets neither it nor the key", async () => {
    A.on(answer(503));
    B.on(answer(200));
    const resilience = chainLayer(
      { degradation: degradation({ rules: [{ match: `${A.base}/v1`, params: { model: { query: "model" } } }] }) },
      "?model=premium&key=ASECRET",
    );
    const levels = resilience.degradation;
    if (!levels) throw new Error("the layer has no degradation stage");
    levels.setLevel("medium");
    const recorder = recordEvents(resilience);
    for (const q of ["?model=premium&key=ASECRET", "?key=\tASECRET&model=pre\tmium&n=2", "?n=2&model=premium "]) {
      A.reset();
      B.reset();
      A.on(answer(503));
      B.on(answer(200));
      const res = await resilience.fetch(`${A.base}/v1/jobs${q}`, { headers: CREDENTIALS });
      expect(res.status).toBe(200);
      await res.text();
      const a = A.hits[0] as Hit;
      expect(queryValues(a, "model"), a.path).toEqual(["standard"]);
      expect(queryValues(a, "key"), a.path).toEqual(["ASECRET"]);
      expectCleanAtB(B.hits[0]);
      expect(queryValues(B.hits[0] as Hit, "model")).toEqual([]);
    }
    expect(textOf(recorder.events) + textOf(resilience.debugInfo())).not.toMatch(SECRET);
  });
});

describe("redirects, transforms and the proxy", () => {
  it("a redirect the library follows to another origin drops the credentials for good; events name no key", async () => {
    A.on((h) => {
      if (h.path.startsWith("/back")) return answer(200)(h);
      answer(307, { location: `${B.base}/landing?from=a` })(h);
    });
    B.on(answer(307, { location: `${A.base}/back` }));
    const resilience = createResilience({ retry: { maxAttempts: 1 } });
    const recorder = recordEvents(resilience);
    const res = await resilience.fetch(`${A.base}/v1/jobs?api_key=ASECRET`, { headers: CREDENTIALS });
    expect(res.status).toBe(200);
    await res.text();
    expect(A.hits.map((h) => h.path)).toEqual(["/v1/jobs?api_key=ASECRET", "/back"]);
    expectCleanAtB(B.hits[0]);
    // Back home after a cross-origin hop: the dropped headers are not restored.
    expect(A.hits[1]?.headers.authorization).toBeUndefined();
    expect(A.hits[1]?.headers["x-api-key"]).toBeUndefined();
    const redirects = recorder.of("redirect");
    expect(redirects).toHaveLength(2);
    expect(redirects[0]?.crossOrigin).toBe(true);
    expect(redirects[0]?.dropped).toEqual(expect.arrayContaining(["authorization", "cookie", "x-api-key"]));
    expect(textOf(recorder.events) + textOf(resilience.debugInfo())).not.toMatch(SECRET);
  });

  it("a `transform` on the spare: the caller's values, moved or kept, stay home", async () => {
    A.on(answer(503));
    B.on(answer(200));
    type Transform = NonNullable<Parameters<typeof fallback>[0][number]["endpoints"][number]["transform"]>;
    const transforms: Array<[string, Transform]> = [
      ["kept as given", (req) => req],
      [
        "x-api-key appended as x-goog-api-key",
        (req) => {
          req.headers.append("x-goog-api-key", req.headers.get("x-api-key") ?? "");
          return req;
        },
      ],
      [
        "a cookie part in a Headers of its own",
        (req) => ({ ...req, headers: new Headers({ "x-session": "session=SESSIONSECRET" }) }),
      ],
      [
        "authorization under a crossOriginHeaders name",
        (req) => {
          req.headers.append("x-trace", req.headers.get("authorization") ?? "");
          return req;
        },
      ],
    ];
    for (const [label, transform] of transforms) {
      B.reset();
      B.on(answer(200));
      const resilience = createResilience({
        retry: { maxAttempts: 1 },
        breaker: false,
        crossOriginHeaders: ["x-trace"],
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "a", url: `${A.base}/v1?key=ASECRET` },
              { name: "b", url: `${B.base}/v2`, transform },
            ],
          },
        ]),
      });
      const res = await resilience.fetch(`${A.base}/v1/jobs?n=1`, { headers: CREDENTIALS });
      expect(res.status, label).toBe(200);
      await res.text();
      expectCleanAtB(B.hits[0]);
    }
  });

  it("resilientProxy (fake ctx): the spare gets neither the client's credentials nor the first endpoint's key", async () => {
    A.on(answer(503));
    B.on(answer(200));
    const waited: Promise<unknown>[] = [];
    const ctx = {
      waitUntil(p: Promise<unknown>) {
        waited.push(p);
      },
      passThroughOnException() {},
    };
    const names = ["x-trace"];
    // Options held by a class's getters: read once, by name, when the proxy is made.
    class LayerOptions {
      get retry() {
        return { maxAttempts: 1 };
      }
      get crossOriginHeaders() {
        return names;
      }
      breaker = false as const;
    }
    const proxy = resilientProxy({
      routes: [
        {
          path: "/gen",
          chain: {
            name: "gen",
            endpoints: [
              { name: "a", url: `${A.base}/v1?key=ASECRET` },
              { name: "b", url: `${B.base}/v2` },
            ],
          },
        },
      ],
      resilience: new LayerOptions() as unknown as Parameters<typeof resilientProxy>[0]["resilience"],
    });
    // Pushed after the proxy was made: the copy it checked is what runs.
    names.push("authorization", "cookie", "x-api-key");
    const client = { ...CREDENTIALS, "x-trace": "t-1", "x-forwarded-for": "203.0.113.9" };
    for (const q of ["?n=1", "?key=ASECRET&n=1", "?n=1&key=%41SECRET"]) {
      A.reset();
      B.reset();
      A.on(answer(503));
      B.on(answer(200));
      const res = await proxy.fetch(new Request(`https://worker.example/gen/jobs${q}`, { headers: client }), {}, ctx);
      expect(res.status).toBe(200);
      await res.text();
      expect(queryValues(A.hits[0] as Hit, "key"), A.hits[0]?.path).toEqual(["ASECRET"]);
      expect(A.hits[0]?.headers.authorization).toBe(CREDENTIALS.authorization);
      expectCleanAtB(B.hits[0]);
      expect(B.hits[0]?.headers["x-trace"]).toBe("t-1");
      expect(B.hits[0]?.headers["x-forwarded-for"]).toBeUndefined();
      expect(textOf([...res.headers])).not.toMatch(SECRET);
    }
    const health = await proxy.fetch(new Request("https://worker.example/__resilience/health"), {}, ctx);
    expect(health.status).toBe(200);
    expect(await health.text()).not.toMatch(SECRET);
    await Promise.allSettled(waited);
  });
});

describe("errors: execute, a generic chain as transport, the layer's own chain", () => {
  const URL_WITH_KEY = "https://mirror.example/v1/jobs?api_key=ASECRET";

  function mirrors(): FallbackChain<void, string> {
    const chain = new FallbackChain<void, string>("mirrors");
    chain.add(
      () => {
        throw new Error(`GET ${URL_WITH_KEY} returned 503`);
      },
      { name: "m1" },
    );
    chain.add(
      () => {
        throw Object.assign(new Error("upstream failed"), { url: URL_WITH_KEY });
      },
      { name: "m2" },
    );
    chain.add(
      () => {
        throw new AggregateError([`tried ${URL_WITH_KEY}`, new URL(URL_WITH_KEY)], "every mirror");
      },
      { name: "m3" },
    );
    return chain;
  }

  it("execute: the RetryExhaustedError's message, stack, cause and errors hold no key; nor do events or debugInfo", async () => {
    const resilience = createResilience({ retry: { maxAttempts: 2, ...fast } });
    const recorder = recordEvents(resilience);
    const works: Array<[string, () => unknown]> = [
      ["a generic chain's FallbackExhaustedError", () => mirrors().execute()],
      ["an error of a vm realm", () => vm.runInNewContext(`(() => { throw new Error("GET ${URL_WITH_KEY}"); })()`)],
      [
        "an errors record of a vm realm",
        () =>
          vm.runInNewContext(
            `(() => { throw Object.assign(new Error("chain"), { errors: { a: new TypeError("GET ${URL_WITH_KEY}") } }); })()`,
          ),
      ],
      ["a thrown string", () => Promise.reject(`GET ${URL_WITH_KEY}`)],
    ];
    for (const [label, work] of works) {
      const error = await rejection(resilience.execute(async () => work()));
      expect(isRetryExhaustedError(error), label).toBe(true);
      expect(textOf(error), label).not.toMatch(SECRET);
      expect(String((error as Error).stack), label).not.toMatch(SECRET);
    }
    const chainError = (await rejection(resilience.execute(() => mirrors().execute()))) as Error & {
      cause: { errors: Record<string, unknown> };
    };
    expect(Object.keys(chainError.cause.errors)).toEqual(["m1", "m2", "m3"]);
    expect(textOf(recorder.events) + textOf(resilience.debugInfo())).not.toMatch(SECRET);
  });

  it("a layer whose fetch is a generic chain over mirrors: the rejection holds no key, nor through a chain", async () => {
    const transport = () => mirrors().execute() as unknown as Promise<Response>;
    const plain = createResilience({ retry: { maxAttempts: 1 }, fetch: transport });
    const recorder = recordEvents(plain);
    const error = await rejection(plain.fetch(`${A.base}/v1/jobs?key=ASECRET`));
    expect(textOf(error)).not.toMatch(SECRET);
    expect(String((error as Error).stack)).not.toMatch(SECRET);
    const chained = chainLayer({ fetch: transport });
    const viaChain = await rejection(chained.fetch(`${A.base}/v1/jobs?n=1`));
    expect((viaChain as Error).name).toBe("FallbackExhaustedError");
    expect(textOf(viaChain)).not.toMatch(SECRET);
    expect(textOf(recorder.events) + textOf(plain.debugInfo()) + textOf(chained.debugInfo())).not.toMatch(SECRET);
    // The layer's handle on a chain of any work cuts its entries' errors too.
    const chains = chained.fallback;
    if (!chains) throw new Error("the layer has no fallback stage");
    const layerChain = chains.chain<void, string>("mirrors");
    layerChain.add(
      () => {
        throw new Error(`GET ${URL_WITH_KEY}`);
      },
      { name: "only" },
    );
    expect(textOf(await rejection(layerChain.execute()))).not.toMatch(SECRET);
  });
});

describe("bodies of another realm and String objects over maxReplayBytes", () => {
  it("are sent once, plain and down a chain, with a replay event whose URL has no key", async () => {
    A.on(answer(503));
    B.on(answer(503));
    const bodies: Array<[string, () => BodyInit]> = [
      ["vm Uint8Array", () => vm.runInNewContext("new Uint8Array(2048)")],
      ["vm ArrayBuffer", () => vm.runInNewContext("new ArrayBuffer(2048)")],
      ["vm String", () => vm.runInNewContext("new String('x'.repeat(2048))")],
      [
        "String subclass",
        () => {
          class Prompt extends String {}
          return new Prompt("x".repeat(2048)) as unknown as string;
        },
      ],
    ];
    for (const [label, make] of bodies) {
      for (const path of ["/plain", "/v1/jobs"]) {
        A.reset();
        B.reset();
        A.on(answer(503));
        B.on(answer(503));
        const resilience = chainLayer({ maxReplayBytes: 1024, retry: { maxAttempts: 3, ...fast } });
        const recorder = recordEvents(resilience);
        const res = await resilience.fetch(`${A.base}${path}?key=ASECRET`, {
          method: "POST",
          body: make(),
          headers: { "idempotency-key": "job-2" },
        });
        expect(res.status, `${label} ${path}`).toBe(503);
        await res.text();
        expect(
          A.hits.map((h) => h.bytes.length),
          `${label} ${path}`,
        ).toEqual([2048]);
        expect(B.hits).toHaveLength(0);
        const replay = recorder.of("replay");
        expect(replay).toHaveLength(1);
        expect(replay[0]?.bytes).toBe(2048);
        expect(textOf(recorder.events)).not.toMatch(SECRET);
      }
    }
  });
});

describe("ky client in Node", () => {
  it("HTTPError: message and stack cut (a key in the URL and in searchParams); the layer's TypeError unwrapped", async () => {
    A.on(answer(500));
    const api = createClient({ resilience: { retry: { maxAttempts: 1 } } });
    for (const call of [
      () => api.get(`${A.base}/v1/jobs?key=ASECRET`),
      () => api.get(`${A.base}/v1/jobs`, { searchParams: { key: "ASECRET" } }),
    ]) {
      const error = (await rejection(call())) as Error & { request: Request };
      expect(error.name).toBe("HTTPError");
      expect(error.message).not.toMatch(SECRET);
      expect(String(error.stack)).not.toMatch(SECRET);
      expect(error.request.url).toMatch(SECRET); // ky's, as ky documents it
    }
    // undici refuses `keep-alive` before sending: the layer's TypeError, not ky's NetworkError.
    const refused = (await rejection(
      api.get(`${A.base}/v1/jobs?key=ASECRET`, { headers: { "keep-alive": "timeout=5" } }),
    )) as Error;
    expect(refused).toBeInstanceOf(TypeError);
    expect(refused.name).toBe("TypeError");
    expect(textOf(refused)).not.toMatch(SECRET);
  });

  it("a beforeError hook that writes the URL into ky's error and rethrows it: cut, message and stack", async () => {
    A.on(answer(500));
    const api = createClient({
      resilience: { retry: { maxAttempts: 1 } },
      hooks: {
        beforeError: [
          ({ error, request }) => {
            error.message = `${error.message} (asked ${request.url})`;
            throw error;
          },
        ],
      },
    });
    const error = (await rejection(api.get(`${A.base}/v1/jobs?key=ASECRET`))) as Error;
    expect(error.name).toBe("HTTPError");
    expect(error.message).toMatch(/asked http:\/\/127\.0\.0\.1:\d+\/v1\/jobs/);
    expect(error.message).not.toMatch(SECRET);
    expect(String(error.stack)).not.toMatch(SECRET);
  });
});

describe("ky client in Chromium (the built dist/browser/ky)", () => {
  const KY = resolve(import.meta.dirname, "../../node_modules/ky/distribution");
  const HTML = `<!doctype html>
<meta charset="utf-8" />
<script type="importmap">{ "imports": { "ky": "/ky/index.js" } }</script>
<script type="module">
  import * as ky from "/dist/browser/ky/index.js";
  window.kylib = ky;
</script>`;
  let opened: LibraryPage | undefined;
  let page: Page;
  let refused = "";

  beforeAll(async () => {
    refused = await refusedOrigin();
    opened = await openLibraryPage(async (req, res) => {
      const path = (req.url ?? "/").split("?")[0] as string;
      if (path === "/ky.html") return void res.writeHead(200, { "content-type": "text/html" }).end(HTML);
      if (path.startsWith("/ky/")) {
        const file = resolve(KY, `.${path.slice(3)}`);
        if (!file.startsWith(KY)) return void res.writeHead(404).end();
        return void (await readFile(file).then(
          (text) => res.writeHead(200, { "content-type": "text/javascript" }).end(text),
          () => res.writeHead(404).end(),
        ));
      }
      if (path === "/api/500") return void res.writeHead(500).end("no");
      if (path === "/api/hang") return; // never answers: closed with the server
      res.writeHead(404).end();
    });
    page = opened.page;
    await page.goto(new URL("/ky.html", page.url()).href);
    await page.waitForFunction(() => (window as unknown as { kylib?: unknown }).kylib !== undefined);
  }, 60_000);

  afterAll(async () => {
    await opened?.close();
  });

  type KyLib = typeof import("../../src/ky/index.ts");
  /** What one ky call rejects with in the page: name, message and stack. */
  const failure = (call: "http" | "params" | "timeout" | "refused") =>
    page.evaluate(
      async ({ call, refused }) => {
        const { createClient } = (window as unknown as { kylib: KyLib }).kylib;
        const api = createClient({ resilience: { retry: { maxAttempts: 1 } } });
        try {
          if (call === "http") await api.get("/api/500?key=SECRET");
          else if (call === "params") await api.get("/api/500", { searchParams: { key: "SECRET" } });
          else if (call === "timeout") await api.get("/api/hang?key=SECRET", { timeout: 50 });
          else await api.get(`${refused}/x?key=SECRET`);
          return { name: "resolved", message: "", stack: "" };
        } catch (error) {
          const e = error as Error;
          return { name: e.name, message: e.message, stack: String(e.stack) };
        }
      },
      { call, refused },
    );

  it("defect 1: ky's HTTPError through createClient keeps ?key= in its stack", async () => {
    const stacks: string[] = [];
    for (const call of ["http", "params"] as const) {
      const seen = await failure(call);
      expect(seen.name).toBe("HTTPError");
      expect(seen.message).not.toMatch(SECRET); // cut
      stacks.push(seen.stack.split("\n")[0] as string);
    }
    // Not cut, in either: "HTTPError: Request failed with status code 500 …: GET http://127.0.0.1:…/api/500?key=SECRET".
    expect(stacks.filter((line) => SECRET.test(line))).toEqual([]);
  });

  it("defect 1: ky's TimeoutError (ky's own `timeout`) through createClient keeps ?key= in its stack", async () => {
    const seen = await failure("timeout");
    expect(seen.name).toBe("TimeoutError");
    expect(seen.message).not.toMatch(SECRET);
    expect(seen.stack).not.toMatch(SECRET);
  });

  it("the layer's own error through the ky client (every attempt refused): no key in its stack", async () => {
    const seen = await failure("refused");
    expect(seen.name).toBe("RetryExhaustedError");
    expect(seen.message).not.toMatch(SECRET);
    expect(seen.stack).not.toMatch(SECRET);
  });
});
