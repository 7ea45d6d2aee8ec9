/**
 * Outside-in attack on the last fixes of session twenty-seven: each redirect hop's referrer worked out by the
 * library under the redirect's `Referrer-Policy`, answers that must have a body to read, a store's thrown
 * primitive wrapped, and options copied with their keys defined not enumerable (`plainCopy`).
 * Docs: docs/retry.md ("Everything else is the Fetch standard's: … the referrer each hop carries is where the
 * next starts (a redirect can only trim it further) and a redirect's `Referrer-Policy` rules the hops after it
 * (where a `referrer` is sent at all)"; "A `Request` input's own properties (… `referrerPolicy` …) go to every
 * hop"), docs/options.md (`fetch`: "an answer that is no `Response` (or a `Response.error()`) is a network
 * error"; "plain objects and arrays are copied; functions, clocks, schemas and other objects are kept as
 * given"), docs/breakers.md (a store's throw fails the call), CHANGELOG.md (a store's primitive "is wrapped,
 * never quoted, and held as the cause").
 * How: `createResilience` (root) with Node's fetch against two real 127.0.0.1 servers on two ports (each sees
 * the `Referer` header), compared with the Referrer Policy standard's "determine request's referrer" and its
 * header parsing (`1#policy-token`, extension tokens `1*( ALPHA / "-" )`); `createClient` (./ky) with options
 * holding hidden keys, getters, frozen objects and platform objects; a transport returning duck-typed answers;
 * a `BreakerStore` of one's own that throws a string.
 * Paths: plain call with a followed redirect (URL input and `Request` input), cross-origin and same-origin
 * hops, a return to the first origin, `about:client`, a `data:` referrer; ky client made by `createClient`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the Referrer-Policy header read as the standard parses it, a hop's referrer worked out for every policy and sent as computed, only an http(s) referrer carried past the first request, a Response of another realm known by its full shape, keys defined not enumerable kept not enumerable by the copy):
 * 1. docs/retry.md "a redirect's `Referrer-Policy` rules the hops after it". Observed: a redirect carrying
 *    `Referrer-Policy: no-referrer, \u00a0unsafe-url` (a no-break space, byte 0xA0, before the second token)
 *    sends the next hop the caller's full referrer, path and query. Under the standard the header does not
 *    parse (`1#policy-token`; no token starts with U+00A0), so the policy stays and the cross-origin hop carries
 *    the origin alone (a reader that splits on commas would keep `no-referrer`). `referrerPolicyOf`
 *    (http/send/follow-redirects.ts) trims each token with `String.prototype.trim`, which takes U+00A0 too.
 * 2. Same sentence. Observed: `Referrer-Policy: no-referrer, "x,unsafe-url,y"` (a quoted string, which the
 *    standard's header parsing keeps whole and which is no policy token) also sends the full referrer:
 *    `referrerPolicyOf` splits on every comma, quotes or not, so `unsafe-url` is read out of the quotes.
 * 3. Same sentence ("where a `referrer` is sent at all"). Observed: a call with `referrer: "data:…"` (accepted:
 *    it is a URL) sends the `data:` URL whole as `Referer` to the hop after a redirect that says
 *    `Referrer-Policy: no-referrer`. The standard sends no referrer under `no-referrer` (and none for a `data:`
 *    referrer at all: a local scheme). `sentReferrer` leaves a referrer that is no http(s) URL "for the platform
 *    to judge", and undici sends it under every policy (`same-origin` aside).
 * 4. docs/retry.md "Everything else is the Fetch standard's: … a redirect's `Referrer-Policy` rules the hops
 *    after it". Observed: under `Referrer-Policy: no-referrer-when-downgrade` (and `origin-when-cross-origin` on
 *    a same-origin hop) the hop carries only the origin, and under `same-origin` a same-origin hop carries none,
 *    where the standard sends the full referrer (no downgrade between two 127.0.0.1 ports; same origin). The follower works the referrer out itself, then
 *    hands it to the transport with the policy, and undici applies that policy again, wrongly (plain
 *    `fetch(url, { referrer, referrerPolicy })` in Node 22 sends the origin under `no-referrer-when-downgrade`
 *    and none under `same-origin` to the referrer's own origin). Passing the computed referrer with `referrerPolicy: "unsafe-url"` would keep it as computed.
 * 5. docs/options.md (`fetch`) "an answer that is no `Response` (or a `Response.error()`) is a network error".
 *    Observed: a plain object `{ status: 200, headers: new Headers(), text() {} }` from the transport reaches
 *    the caller as the call's answer. `answerOf` (http/send/answer-of.ts) still checks a shape, now one more
 *    method; the object has no `body`, `clone`, `json`, `arrayBuffer`.
 * 6. docs/options.md "plain objects and arrays are copied" (and the ky client's options are ky's to judge).
 *    Observed: `createClient({ json })` where `json` has a field defined not enumerable (a password kept out
 *    of serialisation) sends that field: `{"user":"ann","password":"hunter2"}` where ky alone sends
 *    `{"user":"ann"}`. `plainCopy` (core/plain-copy.ts) copies every own key, hidden ones included, as
 *    enumerable, so what JSON skips is no longer hidden.
 * 7. Same sentence. Observed: `createClient({ headers })` with a header defined not enumerable sends it (fetch's
 *    record conversion, and ky alone, read enumerable keys only). Same cause.
 *
 * Held (plain `it`):
 * - Every standard policy but (4)'s on a cross-origin hop between two 127.0.0.1 ports (`no-referrer`,
 *   `same-origin`, `origin`, `strict-origin`, `origin-when-cross-origin`, `strict-origin-when-cross-origin`,
 *   `unsafe-url`, none), and on a same-origin hop (`no-referrer`, `origin`, `strict-origin`, the default,
 *   `unsafe-url`).
 * - Mixed case (`No-Referrer`) and unknown tokens (`bogus`) are ignored; the last valid token wins
 *   (`no-referrer, bogus`).
 * - A return to the first origin after a cross-origin hop carries the origin, not the path (trimmed stays trimmed).
 * - A `Request` input's referrer: trimmed to the origin on a cross-origin hop, none after `no-referrer`.
 * - `about:client` sends no referrer on any hop, even under `unsafe-url`.
 * - A store's thrown string: the call fails with an `Error` whose cause is the string, never quoted.
 * - A `Response` subclass is served; `{ status, headers }` alone is a network error.
 * - ky's options: a `Headers`, `URLSearchParams`, `AbortSignal`, hooks (functions with properties), a frozen
 *   plain object and a getter (read once, its value kept) all work as given.
 */
import { describe, expect, it } from "vitest";
import { type BreakerStore, createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

/**
 * A call to A's `/start` with `referrer` (A's `/page?secret=1` unless given), which A answers with a 302 to
 * `target`'s `/end` carrying `policy` as `Referrer-Policy` (none when `undefined`). Resolves with the
 * `Referer` of the first request and of each later one (`undefined` for none).
 */
async function hop(
  policy: string | undefined,
  options: {
    to?: "A" | "B";
    referrer?: string;
    referrerPolicy?: ReferrerPolicy;
    request?: boolean;
    back?: boolean;
  } = {},
) {
  A.reset();
  B.reset();
  const target = options.to === "A" ? A : B;
  const referrer = options.referrer ?? `${A.base}/page?secret=1`;
  A.on((hit) => {
    if (hit.path === "/start") {
      hit.res.writeHead(302, {
        location: `${target.base}/end`,
        ...(policy === undefined ? {} : { "referrer-policy": policy }),
      });
      hit.res.end();
    } else hit.res.end("ok");
  });
  // `back`: B sends the call home to A's `/home`.
  B.on((hit) => {
    if (options.back && hit.path === "/end") {
      hit.res.writeHead(302, { location: `${A.base}/home` });
      hit.res.end();
    } else hit.res.end("ok");
  });
  const r = createResilience({ retry: false });
  const init = { referrer, referrerPolicy: options.referrerPolicy ?? "" };
  const res = options.request
    ? await r.fetch(new Request(`${A.base}/start`, init))
    : await r.fetch(`${A.base}/start`, init);
  await res.text();
  const at = (hits: typeof A.hits, path: string) => hits.find((h) => h.path === path)?.headers.referer;
  return { first: at(A.hits, "/start"), end: at(target.hits, "/end"), home: at(A.hits, "/home") };
}

const full = () => `${A.base}/page?secret=1`;
const origin = () => `${A.base}/`;

describe("redirect hops: the referrer under the redirect's Referrer-Policy", () => {
  it("1. a token after a no-break space is no policy: the hop keeps the path and query out", async () => {
    const { end } = await hop("no-referrer, \u00a0unsafe-url");
    expect(end === undefined || end === origin()).toBe(true);
  });

  it("2. a quoted string is one value, no policy: unsafe-url inside quotes is not read", async () => {
    const { end } = await hop('no-referrer, "x,unsafe-url,y"');
    expect(end === undefined || end === origin()).toBe(true);
  });

  it("3. a data: referrer is not sent after Referrer-Policy: no-referrer", async () => {
    const { end } = await hop("no-referrer", { referrer: "data:text/plain,SECRET" });
    expect(end).toBeUndefined();
  });

  it("4. no-referrer-when-downgrade without a downgrade sends the full referrer (the standard's)", async () => {
    const cross = await hop("no-referrer-when-downgrade");
    const same = await hop("origin-when-cross-origin", { to: "A" });
    const sameOrigin = await hop("same-origin", { to: "A" });
    expect([cross.end, same.end, sameOrigin.end]).toEqual([full(), full(), full()]);
  });

  it("every policy on a cross-origin hop between two 127.0.0.1 ports", async () => {
    const want: Array<[string | undefined, () => string | undefined]> = [
      [undefined, origin],
      ["no-referrer", () => undefined],
      ["same-origin", () => undefined],
      ["origin", origin],
      ["strict-origin", origin],
      ["origin-when-cross-origin", origin],
      ["strict-origin-when-cross-origin", origin],
      ["unsafe-url", full],
    ];
    for (const [policy, expected] of want) {
      const { first, end } = await hop(policy);
      expect([policy, first, end]).toEqual([policy, full(), expected()]);
    }
  });

  it("the policies on a same-origin hop", async () => {
    const want: Array<[string | undefined, () => string | undefined]> = [
      [undefined, full],
      ["no-referrer", () => undefined],
      ["origin", origin],
      ["strict-origin", origin],
      ["strict-origin-when-cross-origin", full],
      ["unsafe-url", full],
    ];
    for (const [policy, expected] of want) {
      const { end } = await hop(policy, { to: "A" });
      expect([policy, end]).toEqual([policy, expected()]);
    }
  });

  it("mixed-case and unknown tokens are ignored, the last valid one wins", async () => {
    expect((await hop("No-Referrer", { referrerPolicy: "unsafe-url" })).end).toBe(full());
    expect((await hop("bogus", { referrerPolicy: "unsafe-url" })).end).toBe(full());
    expect((await hop("no-referrer, bogus", { referrerPolicy: "unsafe-url" })).end).toBeUndefined();
    expect((await hop("no-referrer, unsafe-url")).end).toBe(full());
  });

  it("a return to the first origin carries the origin the cross-origin hop was trimmed to", async () => {
    const { end, home } = await hop(undefined, { back: true });
    expect([end, home]).toEqual([origin(), origin()]);
  });

  it("a Request input's referrer: trimmed on a cross-origin hop, none after no-referrer", async () => {
    expect((await hop(undefined, { request: true })).end).toBe(origin());
    expect((await hop("no-referrer", { request: true, referrerPolicy: "unsafe-url" })).end).toBeUndefined();
  });

  it("about:client sends no referrer on any hop, even under unsafe-url", async () => {
    const { first, end } = await hop("unsafe-url", { referrer: "about:client" });
    expect([first, end]).toEqual([undefined, undefined]);
  });
});

describe("answers and stores", () => {
  it("5. an object with status, headers and text() is no Response: a network error", async () => {
    const fake = { status: 200, headers: new Headers(), text: async () => "fake" };
    const r = createResilience({ retry: false, fetch: async () => fake as unknown as Response });
    await expect(r.fetch("https://a.example/")).rejects.toThrow();
  });

  it("a Response subclass is served; { status, headers } alone is a network error", async () => {
    class Mine extends Response {}
    const r = createResilience({ retry: false, fetch: async () => new Mine("m") });
    expect(await (await r.fetch("https://a.example/")).text()).toBe("m");
    const shaped = { status: 200, headers: new Headers() };
    const r2 = createResilience({ retry: false, fetch: async () => shaped as unknown as Response });
    await expect(r2.fetch("https://a.example/")).rejects.toThrow();
  });

  it("a store's thrown string fails the call as an Error holding it as its cause, never quoted", async () => {
    const store: BreakerStore = {
      name: "mine",
      publish() {},
      peek: () => undefined,
      record() {
        throw "SECRET-store-words";
      },
    };
    const r = createResilience({ store, retry: false, fetch: async () => new Response("ok") });
    const error = await r.fetch("https://a.example/").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    const chain: unknown[] = [];
    for (let e: unknown = error; e instanceof Error; e = e.cause) chain.push(e);
    const last = chain[chain.length - 1] as Error;
    expect(last.cause).toBe("SECRET-store-words");
    expect(String((error as Error).message)).not.toContain("SECRET");
  });
});

describe("ky's options as copied", () => {
  it("6. a json default's field defined not enumerable is not sent (ky alone leaves it out)", async () => {
    const json = { user: "ann" };
    Object.defineProperty(json, "password", { value: "hunter2", enumerable: false });
    const api = createClient({ prefix: A.base, json, resilience: { retry: false } });
    await api.post("x").text();
    expect(A.hits[0]?.body).toBe('{"user":"ann"}');
  });

  it("7. a headers default's header defined not enumerable is not sent", async () => {
    const headers = { "x-a": "1" };
    Object.defineProperty(headers, "x-hidden", { value: "secret", enumerable: false });
    const api = createClient({ prefix: A.base, headers, resilience: { retry: false } });
    await api.get("y").text();
    expect([A.hits[0]?.headers["x-a"], A.hits[0]?.headers["x-hidden"]]).toEqual(["1", undefined]);
  });

  it("Headers, URLSearchParams, an AbortSignal, hooks with properties, frozen and getter options work as given", async () => {
    let reads = 0;
    const token = "t1";
    const hook = Object.assign(({ request }: { request: Request }) => request.headers.set("x-hook", "yes"), {
      tag: "mine",
    });
    const options = Object.freeze({
      prefix: A.base,
      headers: new Headers({ "x-h": "h" }),
      searchParams: new URLSearchParams({ q: "1" }),
      signal: new AbortController().signal,
      hooks: { beforeRequest: [hook] },
      json: Object.freeze({ n: 1 }),
      get context() {
        reads++;
        return { token };
      },
      resilience: { retry: false as const },
    });
    const api = createClient(options);
    await api.post("z").text();
    const hit = A.hits[0];
    expect([hit?.path, hit?.headers["x-h"], hit?.headers["x-hook"], hit?.body]).toEqual([
      "/z?q=1",
      "h",
      "yes",
      '{"n":1}',
    ]);
    expect(reads).toBeGreaterThan(0);
    const before = reads;
    await api.post("z").text();
    expect(reads).toBe(before);
  });
});
