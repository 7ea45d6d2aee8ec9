/**
 * Outside-in attack on the fixes of cf9871e: a URL of a scheme fetch does not send over HTTP refused at once, a
 * symbol body refused at once, number/boolean/bigint bodies as their text, `duplex: "half"` and the keepalive
 * rule for any stream or async iterable, the follower's 307/308 refusal naming a body given as a stream.
 * Docs: SECURITY.md "The caller's mistakes never trip a breaker" ("a URL of a scheme fetch does not send over HTTP
 * (`wss:`, `ftp:`; `data:` and `blob:` go to fetch as they are), a symbol as a body … reject at once with a
 * `TypeError`: never retried, never counted, no timer left") and "No secret in events, errors, `health()` or
 * `debugInfo()`" ("URLs lose their userinfo … query string and fragment … before they reach any of them");
 * docs/retry.md ("A `data:` or `blob:` URL reads no network …: it goes to fetch as it is", the caller's mistakes
 * paragraph, Redirects: 301/302/303/307/308 with a stream body or async iterable, "A `Request` input's body is
 * taken as one with a source, whatever its size"); docs/fallback.md (`transform`: "a `transform` that fails sends
 * nothing, so the chain may move on", "A body it changes is serialised as JSON"); CHANGELOG.md (cf9871e's entry).
 * How: `createResilience` (root), `fallback` (./fallback), `createClient` (./ky), `resilientProxy` (./cloudflare),
 * `TestClock` and `recordEvents` (./testing); a recording transport, Node's own fetch against node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts), Node `Readable` and async generators as bodies, `vi.stubGlobal` for a
 * page's `location`.
 * Paths: plain call (string, `URL`, `Request`), a custom `breaker.key`, ky with `prefix`, a fallback chain and a
 * hedged one (the chain's endpoint URLs, a `transform` returning `ws:`/`data:`/`blob:` URLs or a symbol body), a
 * followed redirect (301/302/303/307/308), the Worker proxy's routes, a page's relative URL.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: only the scheme named in the refusal; data: and blob: from a transform sent as before; a data: or blob: call handed to fetch without the follower; a transform body JSON cannot carry refused; a Request's carried-on body named as past the limit):
 * 1. SECURITY.md "No secret in events, errors, `health()` or `debugInfo()`": "URLs lose their userinfo … before
 *    they reach any of them". Observed: the new refusal quotes a URL of another scheme that wraps one with
 *    credentials whole: `jdbc:postgresql://app:S3cret@db.internal:5432/prod` (a JDBC string given by mistake),
 *    `view-source:https://user:pw@…`, `feed:https://user:pw@…` reject with "resilience.fetch:
 *    jdbc:postgresql://app:S3cret@db.internal:5432/prod is no http(s) URL, which fetch sends" (the query is cut,
 *    the password stays). Cause: `parseRequestUrl` (src/http/request/host-key.ts) quotes `redactUrl(parsed.href)`;
 *    such a scheme has an opaque path, no authority, so `redactUrl` finds no userinfo to cut in it (only
 *    `redactUrlsIn`, for text, would find the nested URL). `refuseUserinfo` does not see it either.
 * 2. SECURITY.md "(`wss:`, `ftp:`; `data:` and `blob:` go to fetch as they are)", docs/retry.md "A `data:` or
 *    `blob:` URL reads no network …: it goes to fetch as it is". Observed: on a chain, a `transform` returning a
 *    `data:` URL (a canned answer) or a `blob:` one is refused, "data:application/json,{} is no http(s) URL, which
 *    fetch sends", and the chain moves on; nothing reaches fetch. Before cf9871e it went to fetch. Cause:
 *    `sendToEndpoint` (src/fallback/try-endpoints.ts) takes the endpoint's breaker key with `keyOf`, whose
 *    `parseRequestUrl` now refuses every scheme but http(s); only the entry (`startCall`'s `LOCAL_URL`) sets
 *    `data:`/`blob:` aside.
 * 3. docs/retry.md "A `data:` or `blob:` URL reads no network …: it goes to fetch as it is" (SECURITY.md "go to
 *    fetch as they are"). Observed: the transport gets the URL as given but not the caller's `init`:
 *    `fetch("data:,")` reaches it as `("data:,", { redirect: "manual" })`, a call with `init` as a copy with
 *    `redirect: "manual"` (and `integrity` emptied, the referrer worked out), a `Request` input with
 *    `{ redirect: "manual" }`. Cause: `startCall`'s `data:`/`blob:` path (src/http/resilient-fetch.ts) hands the
 *    call to `parts.transport()`, which outside browsers is the redirect follower (`followingFetch`,
 *    src/http/send/follow-redirects.ts), not the platform's or the caller's `fetch`. Harmless with the platform's
 *    fetch (such a URL never redirects); seen by a `fetch` of one's own.
 * 4. docs/fallback.md `transform`: "A body it changes is serialised as JSON (a string is sent as it is)" (and
 *    docs/retry.md: "a symbol as a body" is a mistake refused at once). Observed: a `transform` (untyped JS) that
 *    returns `body: Symbol()` (or a function) sends the POST with no body at all, `content-type:
 *    application/json` and `content-length: 0`, and the call resolves 200: `JSON.stringify` gives `undefined`
 *    for them and `transformedRequest` (src/fallback/endpoint-request.ts) takes that as the new body. (A bigint
 *    makes `JSON.stringify` throw: a transform failure, the chain moves on, as documented.)
 * 5. docs/retry.md "A `Request` input's body is taken as one with a source, whatever its size" and CHANGELOG
 *    "the follower's refusal of a 307/308 names a body given as a stream as such". Observed: a `Request` built on
 *    a string past `maxReplayBytes` is refused on a 307/308 with "its body is a stream, sent once", while the same
 *    string given in `init` is "larger than maxReplayBytes (1000 bytes)": the body given as a string is named a
 *    stream. Cause: `nextHop` (src/http/send/follow-redirects.ts) names by `isSourceless(body)` the stream that
 *    carries the `Request`'s body on, though `requestBodyStreams` marks it as one with a source.
 *
 * Held (plain `it`):
 * - `wss:`, `ws:` (also `ws:host`), `ftp:`, `file:`, `javascript:`, `about:`, a misspelt `htps:`, `sftp:`, `mailto:`,
 *   with the scheme in capitals or split by tabs/newlines (`w\tss:`), as a string, a `URL` or a `Request`, with a
 *   custom `breaker.key`, through ky's `prefix`: a `TypeError` at once, nothing sent, no breaker, no event, and the
 *   https host's breaker untouched (threshold 1); the message has no query or fragment, and `user:pass@` of a
 *   hierarchical URL (`wss://`, `git+https://`, `webcal://`) is refused and cut.
 * - `  HTTPS://…`, `\thttps://…`, `ht\ttps://…` go as https.
 * - `data:`/`blob:` (in capitals, after spaces, with a newline in the scheme; string, `URL`, `Request`, custom
 *   `breaker.key`, ky) reach the transport as the caller gave them, with no breaker or event.
 * - A relative URL: a `TypeError` in Node; with a page's `location` (https) resolved against it and sent.
 * - A chain's endpoint `url` of `wss:` is a `ConfigError`; a proxy route's `wss:` upstream a `TypeError`.
 * - A `transform` returning `ws://…?token=…`: refused, nothing sent, no breaker for that host, the chain moves on
 *   (also under a hedge), the `fallback` event's reason without the token.
 * - A redirect to `wss:`: refused (as fetch).
 * - A symbol body is refused at once (string and `Request` input); 10n, true, 1.5, -0, NaN go as "10", "true",
 *   "1.5", "0", "NaN" (as Node's fetch sends them), replayed as text on a retry and to a chain's next endpoint.
 * - A Node `Readable`, an async generator, a plain async iterable go with `duplex: "half"`, the body arriving
 *   whole; with `keepalive` (in `init` or on a `Request` input) a `TypeError` at once, nothing counted.
 * - 301/302/307/308 with such a body: refused naming "a stream"; 303: followed as a GET, as Node's fetch does.
 */
import { Readable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

afterEach(() => {
  vi.unstubAllGlobals();
});

/** A transport that records what it is handed and answers 200 "ok". */
function recorder() {
  const calls: Array<{ input: RequestInfo | URL; init: RequestInit | undefined }> = [];
  const fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ input, init });
    return Promise.resolve(new Response("ok"));
  };
  return { calls, fetch };
}

const urlOf = (input: RequestInfo | URL) => (input instanceof Request ? input.url : String(input));

/** Everything a logger could print of an error: message, stack, own string fields, causes. */
function allText(error: unknown, seen = new Set<unknown>()): string {
  if (typeof error !== "object" || error === null || seen.has(error)) return String(error);
  seen.add(error);
  const o = error as Record<string, unknown>;
  let out = `${String(o.message)} ${String(o.stack)} `;
  for (const key of Object.getOwnPropertyNames(o)) if (typeof o[key] === "string") out += `${key}=${o[key]} `;
  if (o.cause !== undefined) out += allText(o.cause, seen);
  return out;
}

const asBody = (value: unknown) => value as BodyInit;
const generator = (...chunks: string[]) =>
  (async function* () {
    for (const chunk of chunks) yield new TextEncoder().encode(chunk);
  })();

describe("a URL of a scheme fetch does not send over HTTP is refused at once", () => {
  const refused = [
    "wss://h.example/v1/realtime?token=SECRET_A#f",
    "WSS://h.example/v1/realtime",
    "w\tss://h.example/x?token=SECRET_B",
    "\n ws:h.example/x?token=SECRET_C",
    "ftp://h.example/x",
    "file:///etc/passwd",
    "javascript:fetch('/x?api_key=SECRET_D')",
    "about:blank?api_key=SECRET_E",
    "htps://h.example/x?key=SECRET_F",
    "sftp://h.example/x#access_token=SECRET_G",
    "mailto:ops@h.example?subject=SECRET_H",
  ];
  for (const url of refused) {
    it(`${JSON.stringify(url)}: a TypeError at once (string, URL, Request, custom key), nothing sent or counted`, async () => {
      const t = recorder();
      const r = createResilience({ fetch: t.fetch, breaker: { failureThreshold: 1 } });
      const keyed = createResilience({ fetch: t.fetch, breaker: { failureThreshold: 1, key: (u) => u.hostname } });
      const events = recordEvents(r);
      const errors: unknown[] = [];
      const inputs: Array<() => Promise<Response>> = [
        () => r.fetch(url),
        () => r.fetch(new URL(url)),
        () => r.fetch(url, { method: "POST", body: "x" }),
        () => keyed.fetch(url),
      ];
      // Node's Request takes any URL the parser takes.
      inputs.push(() => r.fetch(new Request(url)));
      for (const call of inputs) {
        errors.push(await rejection(call()));
      }
      for (const error of errors) {
        expect(error).toBeInstanceOf(TypeError);
        expect(allText(error)).not.toContain("SECRET");
      }
      expect(t.calls).toEqual([]);
      expect(events.events).toEqual([]);
      expect(r.health().breakers).toEqual({});
      expect(keyed.health().breakers).toEqual({});
      // The https host of the same name is untouched.
      expect((await r.fetch("https://h.example/v1/models")).status).toBe(200);
    });
  }

  it("credentials in a hierarchical URL of another scheme are refused and cut", async () => {
    const r = createResilience({ fetch: recorder().fetch });
    for (const url of [
      "wss://user:SECRET_P@h.example/x",
      "git+https://user:SECRET_Q@h.example/r.git",
      "webcal://SECRET_R@h.example/c.ics",
      "htps://user:pa ss SECRET_S@h.example/x",
    ]) {
      const error = await rejection(r.fetch(url));
      expect(error).toBeInstanceOf(TypeError);
      expect(allText(error)).toContain("credentials");
      expect(allText(error)).not.toContain("SECRET");
    }
  });

  it("SECURITY.md: a URL wrapping one with credentials (jdbc:, view-source:, feed:) loses its userinfo in the error", async () => {
    const r = createResilience({ fetch: recorder().fetch });
    for (const url of [
      "jdbc:postgresql://app:S3cret_JDBC@db.internal:5432/prod?sslmode=require",
      "view-source:https://user:SECRET_VS@h.example/x",
      "feed:https://user:SECRET_FEED@h.example/rss",
    ]) {
      const error = await rejection(r.fetch(url));
      expect(error).toBeInstanceOf(TypeError);
      // Today: "resilience.fetch: jdbc:postgresql://app:S3cret_JDBC@db.internal:5432/prod is no http(s) URL, …"
      expect((error as Error).message).not.toMatch(/S3cret_JDBC|SECRET_VS|SECRET_FEED/);
    }
  });

  it("whitespace and tabs the URL parser skips: `  HTTPS:`, `\\thttps:`, `ht\\ttps:` go as https", async () => {
    const t = recorder();
    const r = createResilience({ fetch: t.fetch });
    for (const url of ["  HTTPS://h.example/x", "\thttps://h.example/x", "ht\ttps://h.example/x"]) {
      expect((await r.fetch(url)).status).toBe(200);
    }
    expect(t.calls.map((c) => c.input)).toEqual([
      "  HTTPS://h.example/x",
      "\thttps://h.example/x",
      "ht\ttps://h.example/x",
    ]);
    expect(Object.keys(r.health().breakers)).toEqual(["h.example"]);
  });

  it("ky's prefix of wss: is refused at once, nothing sent", async () => {
    const t = recorder();
    const api = createClient({ prefix: "wss://h.example/v1", resilience: { fetch: t.fetch } });
    const error = await rejection(api.get("jobs?token=SECRET_KY"));
    expect(error).toBeInstanceOf(TypeError);
    expect(allText(error)).not.toContain("SECRET");
    expect(t.calls).toEqual([]);
  });

  it("a relative URL: a TypeError in Node; resolved against a page's https location", async () => {
    const t = recorder();
    const r = createResilience({ fetch: t.fetch });
    expect(await rejection(r.fetch("/api/x?k=SECRET_REL"))).toBeInstanceOf(TypeError);
    expect(t.calls).toEqual([]);
    vi.stubGlobal("location", { href: "https://app.example/page" });
    expect((await r.fetch("/api/x")).status).toBe(200);
    // Until the fifty-first session the transport got "/api/x" as written, read against the page's base on each
    // attempt; it is resolved once now, so a retry goes where the first attempt went.
    expect(t.calls.map((c) => c.input)).toEqual(["https://app.example/api/x"]);
    expect(Object.keys(r.health().breakers)).toEqual(["app.example"]);
  });

  it("a chain's wss: endpoint is a ConfigError; a proxy route's wss: upstream a TypeError", () => {
    expect(() => fallback([{ name: "rt", endpoints: [{ name: "a", url: "wss://h.example/v1" }] }])).toThrow(
      /http\(s\)/,
    );
    expect(() => resilientProxy({ routes: [{ path: "/rt", upstream: "wss://h.example/v1" }] })).toThrow(TypeError);
  });

  it("a redirect to wss: is refused, as fetch refuses it", async () => {
    A.on((hit) => {
      hit.res.writeHead(302, { location: `wss://${B.host}/socket?token=SECRET_REDIR` });
      hit.res.end();
    });
    const r = createResilience({ retry: false });
    const error = await rejection(r.fetch(`${A.base}/a`));
    expect(allText(error)).toContain("wss:");
    expect(allText(error)).not.toContain("SECRET");
    expect(B.hits).toEqual([]);
  });
});

describe("`data:` and `blob:` go to fetch as they are", () => {
  it("string, URL, Request, custom breaker.key, ky: the transport gets the caller's input, no breaker or event", async () => {
    const t = recorder();
    const r = createResilience({ fetch: t.fetch, breaker: { key: (u) => u.hostname } });
    const events = recordEvents(r);
    const init = { headers: { accept: "text/plain" } };
    const request = new Request("data:,x");
    const url = new URL("blob:https://app.example/3f6c");
    for (const [input, given] of [
      ["data:,hello", init],
      ["  DATA:,hello", undefined],
      ["d\nata:,hello", undefined],
      ["BLOB:https://app.example/3f6c", undefined],
      [url, init],
      [request, undefined],
    ] as const) {
      expect((await r.fetch(input, given)).status).toBe(200);
      const last = t.calls.at(-1);
      expect(last?.input).toBe(input);
      expect(last?.init?.headers).toBe(given?.headers);
    }
    const api = createClient({ prefix: "data:,", resilience: r });
    expect(await api.get("x").text()).toBe("ok");
    expect(events.events).toEqual([]);
    expect(r.health().breakers).toEqual({});
  });

  it("retry.md: `fetch(\"data:,\")` reaches fetch as it is, the caller's init and not one of the follower's", async () => {
    const t = recorder();
    const r = createResilience({ fetch: t.fetch });
    const init: RequestInit = { headers: { accept: "text/plain" } };
    await r.fetch("data:,", init);
    await r.fetch("data:,");
    await r.fetch(new Request("blob:https://app.example/3f6c"));
    // Today: { ...init, redirect: "manual" } each time (the redirect follower is the transport it goes to).
    expect(t.calls.map((c) => c.init)).toEqual([init, undefined, undefined]);
  });

  /** A chain whose second endpoint's `transform` sends the call to `target`; the first answers 503. */
  function chainTo(target: string) {
    const calls: string[] = [];
    const r = createResilience({
      retry: false,
      fetch: (input) => {
        const url = urlOf(input);
        calls.push(url);
        if (/^(?:data|blob):/i.test(url)) return Promise.resolve(new Response("canned"));
        return Promise.resolve(
          new Response(url.includes("a.example") ? "busy" : "spare", { status: url.includes("a.example") ? 503 : 200 }),
        );
      },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: "https://a.example/v1" },
            { name: "local", url: "https://b.example/v1", transform: (req) => ({ ...req, url: target }) },
            { name: "spare", url: "https://c.example/v1" },
          ],
        },
      ]),
    });
    return { r, calls, events: recordEvents(r) };
  }

  it("SECURITY.md/retry.md: a transform's data: URL (a canned answer) goes to fetch as it is", async () => {
    const { r, calls } = chainTo("data:application/json,{}");
    const response = await r.fetch("https://a.example/v1/jobs");
    // Today: "data:application/json,{} is no http(s) URL, which fetch sends"; the chain moves on to "spare".
    expect(calls).toContain("data:application/json,{}");
    expect(await response.text()).toBe("canned");
  });

  it("SECURITY.md/retry.md: a transform's blob: URL goes to fetch as it is", async () => {
    const { r, calls } = chainTo("blob:https://app.example/3f6c");
    const response = await r.fetch("https://a.example/v1/jobs");
    expect(calls).toContain("blob:https://app.example/3f6c");
    expect(await response.text()).toBe("canned");
  });

  it("a transform's ws: URL is refused: nothing sent, no breaker for it, the chain moves on, no token in the event", async () => {
    const { r, calls, events } = chainTo(`ws://h.example/x?token=SECRET_WS`);
    const response = await r.fetch("https://a.example/v1/jobs");
    expect(await response.text()).toBe("spare");
    expect(calls).toEqual(["https://a.example/v1/jobs", "https://c.example/v1/jobs"]);
    expect(Object.keys(r.health().breakers).sort()).toEqual(["a.example", "c.example"]);
    const reasons = events.events.filter((e) => e.type === "fallback").map((e) => (e as { reason: string }).reason);
    expect(reasons[1]).toContain("no http(s) URL");
    expect(JSON.stringify(events.events)).not.toContain("SECRET");
  });

  it("under a hedge, a transform's ws: URL is refused and the primary's answer wins", async () => {
    const clock = new TestClock();
    const calls: string[] = [];
    const r = createResilience({
      clock,
      retry: false,
      fetch: (input) => {
        calls.push(urlOf(input));
        return new Promise((resolve) => clock.setTimer(() => resolve(new Response("primary")), 500));
      },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 100 },
          endpoints: [
            { name: "primary", url: "https://a.example/v1" },
            { name: "ws", url: "https://b.example/v1", transform: (req) => ({ ...req, url: "ws://b.example/v1" }) },
          ],
        },
      ]),
    });
    const response = await clock.run(r.fetch("https://a.example/v1/jobs"));
    expect(await response.text()).toBe("primary");
    expect(calls).toEqual(["https://a.example/v1/jobs"]);
    expect(Object.keys(r.health().breakers)).toEqual(["a.example"]);
  });
});

describe("bodies: a symbol refused at once; a number, boolean or bigint as its text", () => {
  it("a symbol body is refused at once, string or Request input, nothing sent or counted", async () => {
    const r = createResilience({ breaker: { failureThreshold: 1 } });
    const symbol = asBody(Symbol("body"));
    for (const call of [
      () => r.fetch(`${A.base}/s`, { method: "POST", body: symbol }),
      () => r.fetch(new Request(`${A.base}/s`, { method: "POST", body: "own" }), { body: symbol }),
    ]) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(TypeError);
      // The platform's own TypeError since 71bfd4d ("Cannot convert a Symbol value to a string").
      expect((error as Error).message).toMatch(/symbol/i);
    }
    expect(A.hits).toEqual([]);
    expect(r.health().breakers).toEqual({});
  });

  it("10n, true, 1.5, -0, NaN arrive as Node's fetch sends them", async () => {
    const r = createResilience({ retry: false });
    const values: unknown[] = [10n, true, 1.5, -0, Number.NaN];
    for (const value of values) {
      await (await r.fetch(`${A.base}/n`, { method: "POST", body: asBody(value) })).text();
      await (await fetch(`${B.base}/n`, { method: "POST", body: asBody(value) })).text();
    }
    expect(A.hits.map((h) => h.body)).toEqual(["10", "true", "1.5", "0", "NaN"]);
    expect(A.hits.map((h) => h.body)).toEqual(B.hits.map((h) => h.body));
    expect(A.hits.map((h) => h.headers["content-type"])).toEqual(B.hits.map((h) => h.headers["content-type"]));
  });

  it("a bigint body is replayed as its text on a retry and to a chain's next endpoint", async () => {
    A.on((hit) => {
      hit.res.statusCode = hit.n === 1 ? 503 : 200;
      hit.res.end();
    });
    const clock = new TestClock();
    const r = createResilience({
      clock,
      retry: { maxAttempts: 2 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: `${A.base}/chain` },
            { name: "b", url: `${B.base}/chain` },
          ],
        },
      ]),
    });
    const headers = { "idempotency-key": "k1" };
    expect((await clock.run(r.fetch(`${A.base}/plain`, { method: "POST", headers, body: asBody(42n) }))).status).toBe(
      200,
    );
    A.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end();
    });
    const chained = await clock.run(
      r.fetch(`${A.base}/chain`, { method: "POST", headers: { "idempotency-key": "k2" }, body: asBody(7n) }),
    );
    expect(chained.status).toBe(200);
    expect(A.hits.map((h) => h.body)).toEqual(["42", "42", "7", "7"]);
    expect(B.hits.map((h) => h.body)).toEqual(["7"]);
  });

  it("fallback.md: a transform's body that JSON cannot serialise (a symbol) is never sent as an empty POST", async () => {
    const r = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            {
              name: "a",
              url: `${A.base}/v1`,
              // Untyped JS: a body the transform computed wrongly.
              transform: (req) => ({ ...req, body: Symbol("oops") as unknown as Record<string, never> }),
            },
          ],
        },
      ]),
    });
    const outcome = await r
      .fetch(`${A.base}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "a cat" }),
      })
      .then(
        (response) => response.status,
        (error: unknown) => (error as Error).name,
      );
    // Today: 200, and the server got POST /v1/jobs with an empty body labelled application/json.
    expect(A.hits.map((h) => h.body)).not.toContain("");
    expect(outcome).not.toBe(200);
  });
});

describe("streams and async iterables: duplex, keepalive, redirects", () => {
  const bodies: Array<[string, () => BodyInit]> = [
    ["a Node Readable", () => asBody(Readable.from(["ab", "cd"]))],
    ["an async generator", () => asBody(generator("ab", "cd"))],
    [
      "a plain async iterable",
      () =>
        asBody({
          async *[Symbol.asyncIterator]() {
            yield new TextEncoder().encode("abcd");
          },
        }),
    ],
  ];

  for (const [what, make] of bodies) {
    it(`${what} goes with duplex: "half", whole; with keepalive it is refused at once`, async () => {
      const r = createResilience({ retry: false, breaker: { failureThreshold: 1 } });
      expect((await r.fetch(`${A.base}/up`, { method: "POST", body: make() })).status).toBe(200);
      expect(A.hits.map((h) => h.body)).toEqual(["abcd"]);
      for (const call of [
        () => r.fetch(`${A.base}/up`, { method: "POST", keepalive: true, body: make() }),
        () => r.fetch(new Request(`${A.base}/up`, { method: "POST", keepalive: true }), { body: make() }),
      ]) {
        const error = await rejection(call());
        expect(error).toBeInstanceOf(TypeError);
        expect((error as Error).message).toContain("keepalive");
      }
      expect(A.hits).toHaveLength(1);
      expect(r.health().breakers[A.host]?.failureCount ?? 0).toBe(0);
    });
  }

  /** Redirects /from with `status` to /to; /to answers with the method and body it got. */
  function redirecting(status: number) {
    A.on((hit) => {
      if (hit.path === "/from") {
        hit.res.writeHead(status, { location: "/to" });
        hit.res.end();
      } else hit.res.end(`${hit.method} ${hit.body}`);
    });
  }

  for (const status of [301, 302, 307, 308]) {
    it(`a ${status} with a stream or async iterable body is refused naming a stream; Node's fetch fails too`, async () => {
      redirecting(status);
      const r = createResilience({ retry: false });
      for (const [, make] of bodies) {
        const error = await rejection(r.fetch(`${A.base}/from`, { method: "POST", body: make() }));
        expect(allText(error)).toContain(`cannot follow a ${status} redirect`);
        expect(allText(error)).toContain("its body is a stream, sent once");
      }
      const native = await rejection(
        fetch(`${A.base}/from`, { method: "POST", body: asBody(Readable.from(["ab"])), duplex: "half" } as RequestInit),
      );
      expect(native).toBeInstanceOf(TypeError);
      expect(A.hits.filter((h) => h.path === "/to")).toEqual([]);
    });
  }

  it("a 303 with a stream body is followed as a GET, as Node's fetch follows it", async () => {
    redirecting(303);
    const r = createResilience({ retry: false });
    const ours = await (
      await r.fetch(`${A.base}/from`, { method: "POST", body: asBody(Readable.from(["ab"])) })
    ).text();
    const native = await (
      await fetch(`${A.base}/from`, {
        method: "POST",
        body: asBody(Readable.from(["ab"])),
        duplex: "half",
      } as RequestInit)
    ).text();
    expect(ours).toBe("GET ");
    expect(native).toBe(ours);
  });

  it("control: a string past maxReplayBytes given in init is named larger than maxReplayBytes on a 307", async () => {
    redirecting(307);
    const r = createResilience({ retry: false, maxReplayBytes: 1000 });
    const error = await rejection(r.fetch(`${A.base}/from`, { method: "POST", body: "x".repeat(2000) }));
    expect(allText(error)).toContain("its body is larger than maxReplayBytes (1000 bytes), sent once");
  });

  it("retry.md/CHANGELOG: a Request built on a string past maxReplayBytes is not named a stream on a 307", async () => {
    redirecting(307);
    const r = createResilience({ retry: false, maxReplayBytes: 1000 });
    const request = new Request(`${A.base}/from`, { method: "POST", body: "x".repeat(2000) });
    const error = await rejection(r.fetch(request));
    expect(allText(error)).toContain("cannot follow a 307 redirect");
    // Today: "its body is a stream, sent once".
    expect(allText(error)).not.toContain("is a stream");
  });
});
