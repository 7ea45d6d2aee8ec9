/**
 * Outside-in attack on this session's fixes on every path other than the plain call.
 * Docs: CHANGELOG.md "### Fixed" first entry ("An `init` member that is `undefined` leaves a `Request` input's
 * own", "A frozen `Response` from a transport is served (its info is kept aside, its redirect marks go on a
 * copy)", "a `Response` of another realm needs `blob()` too", "A `fallback` listener added while a chain runs
 * hears that run's next events", "the KV and Durable Object stores build a `store` event, and read an error's
 * text, only while someone listens"); docs/retry.md "Redirects" ("A `Request` input's own properties … go to
 * every hop, save `integrity`, which is checked on the final answer", "Each request's referrer, the first's and
 * every later hop's, is worked out by the library", "a redirect can only trim it further"); docs/options.md
 * `fetch` row ("an answer that is no `Response` … is a network error (one of another realm … is known by its
 * shape …)"); docs/fallback.md (`respond`: "any other value moves the call on", "`getResilienceInfo(res)` says
 * which `endpoint` served"); docs/degradation.md ("A call that goes down a fallback chain is rewritten once …
 * every endpoint gets that request"); docs/health-and-events.md ("An event object is only built when someone
 * listens", "an event goes to the listeners subscribed when it fired, less any unsubscribed meanwhile").
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `kvStore` (./cloudflare) over a fake KV (get/put/getWithMetadata/list returning promises), `createClient`
 * (./ky), `TestClock` (./testing); a transport that rebuilds what it is handed into a `Request` (as fetch does)
 * and records its referrer, policy, credentials, cache, keepalive, integrity, method, headers and body.
 * Paths: fallback chain (retry on an endpoint, cross-origin endpoint, 307 across origins), hedged chain,
 * `transform` changing URL and body, `respond`, a degradation rule rewriting the body and one rewriting the
 * query, `Request` input with a body, `redirect: "follow"` on chain endpoints, the ky client.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: info kept aside for a frozen Response read before its own property, a failed KV write's text read only for a listener):
 * 1. CHANGELOG.md "A frozen `Response` from a transport is served (its info is kept aside …)" and
 *    docs/fallback.md "`getResilienceInfo(res)` says which `endpoint` served and whether `fromFallback`".
 *    Observed: a frozen `Response` that already carries the info of an earlier call (a cache's `respond` handing
 *    back, frozen, the very answer a call was served earlier) keeps that earlier info: the chain served it from
 *    its `respond` endpoint "cache" after "a" failed, yet `getResilienceInfo` says `endpoint: "z.example"`,
 *    `fromFallback: false`. Cause: src/http/resilience-info.ts `getResilienceInfo` reads the symbol property
 *    first (`response[INFO] ?? unextensible?.get(response)`), and `attachInfo` could only write the new info into
 *    the WeakMap, which is never read while the stale property is there.
 * 2. CHANGELOG.md "the KV and Durable Object stores build a `store` event, and read an error's text, only while
 *    someone listens" (docs/health-and-events.md "An event object is only built when someone listens"). Observed:
 *    with no `store` listener at all, a KV whose `put` rejects has its error's text read (twice: the write and its
 *    retry). Cause: src/cloudflare/kv-store.ts `write`'s catch computes `errorDetail(error)` eagerly, to tell a
 *    429 (`limited`), though `limited` only names the event's outcome.
 *
 * Held (plain `it`):
 * - `init` members all `undefined` over a `Request` with a body, referrer, credentials, cache and keepalive: every
 *   send of a chain (a retried endpoint, a cross-origin endpoint, a 307 hop to a third origin), of a hedged chain
 *   with a `transform` changing URL and body, under a degradation rule rewriting the body and one rewriting the
 *   query, carries the `Request`'s own; a `respond` sees its method, headers and body; its `integrity` is checked
 *   on a chain endpoint's final answer after a redirect (a mismatch rejects, a match is served).
 * - The referrer (default policy) down a chain: full to the referrer's origin, the origin alone to another origin
 *   and on its 307 hop, full again through a `transform` that sends to the referrer's origin, the origin alone to a
 *   hedge on another origin, none on a downgrade to http; a ky call trimmed on a 307 to another origin.
 * - Frozen answers from `respond`, from a hedge winner after a redirect, a frozen 503 kept while the next endpoint
 *   fails on the network, a foreign shape from `respond`: served with the right endpoint and attempts; a foreign
 *   shape without `blob()` from `respond` moves the chain on.
 * - A `fallback` listener added in the first endpoint's send hears that run's pass-over, one removed in the second
 *   endpoint's send hears no later event; a `store` listener added while a KV fails hears the failures, and once
 *   removed hears none, the error's text then unread.
 */
import { describe, expect, it } from "vitest";
import { kvStore } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** What a transport was handed, read as fetch reads it: rebuilt into a `Request`. */
interface Seen {
  url: string;
  referrer: string;
  credentials: string;
  cache: string;
  keepalive: boolean;
  integrity: string;
  method: string;
  headers: Record<string, string>;
  body: string | null;
}

function recorder(answer: (url: string, n: number) => Response | Promise<Response> = () => new Response("ok")) {
  const seen: Seen[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const r = new Request(input, init);
    seen.push({
      url: r.url,
      referrer: r.referrer,
      credentials: r.credentials,
      cache: r.cache,
      keepalive: r.keepalive,
      integrity: r.integrity,
      method: r.method,
      headers: Object.fromEntries(r.headers),
      body: r.body ? await r.text() : null,
    });
    return answer(r.url, seen.length);
  };
  return { fetch, seen };
}

const REFERRER = "https://a.example/page?q=1";

/** A `Request` with its own body, headers, referrer, credentials, cache and keepalive. */
const request = (url = "https://a.example/v1/x", extra: RequestInit = {}) =>
  new Request(url, {
    method: "POST",
    body: '{"p":1,"steps":50}',
    headers: { "content-type": "application/json", "idempotency-key": "k1", "x-a": "1" },
    referrer: REFERRER,
    referrerPolicy: "unsafe-url",
    credentials: "include",
    cache: "no-store",
    keepalive: true,
    ...extra,
  });

/** Every member of `init` present and `undefined`. */
const UNDEFINED_INIT = {
  referrer: undefined,
  referrerPolicy: undefined,
  credentials: undefined,
  cache: undefined,
  keepalive: undefined,
  integrity: undefined,
  headers: undefined,
  method: undefined,
  body: undefined,
} as unknown as RequestInit;

/** What every send of `request()` carries whatever its URL. */
const own = { credentials: "include", cache: "no-store", keepalive: true, method: "POST" };
const allowlisted = { "content-type": "application/json", "idempotency-key": "k1" };

const sha256 = async (text: string) =>
  `sha256-${btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)))))}`;

const settled = (p: Promise<Response>) =>
  p.then(
    async (r) => ({ status: r.status, text: await r.text(), info: getResilienceInfo(r) }),
    (e: unknown) => ({ error: e instanceof Error ? e.name : String(e) }),
  );

describe("init members that are undefined leave a Request's own, on every path", () => {
  it("down a chain: a retried endpoint, a cross-origin endpoint and its 307 hop to a third origin", async () => {
    const clock = new TestClock();
    const { fetch, seen } = recorder((url, n) => {
      if (url.startsWith("https://a.example")) return new Response("x", { status: 503 });
      if (url.startsWith("https://b.example") && n === 3)
        return new Response(null, { status: 307, headers: { location: "https://c.example/y" } });
      return new Response("ok");
    });
    const r = createResilience({
      clock,
      fetch,
      retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" },
      breaker: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const res = await clock.run(r.fetch(request(), UNDEFINED_INIT));
    expect([res.status, res.url, getResilienceInfo(res)?.endpoint]).toEqual([200, "https://c.example/y", "b"]);
    const body = '{"p":1,"steps":50}';
    expect(seen).toEqual([
      {
        url: "https://a.example/v1/x",
        referrer: REFERRER,
        integrity: "",
        ...own,
        headers: { ...allowlisted, "x-a": "1" },
        body,
      },
      {
        url: "https://a.example/v1/x",
        referrer: REFERRER,
        integrity: "",
        ...own,
        headers: { ...allowlisted, "x-a": "1" },
        body,
      },
      { url: "https://b.example/v1/x", referrer: REFERRER, integrity: "", ...own, headers: allowlisted, body },
      { url: "https://c.example/y", referrer: REFERRER, integrity: "", ...own, headers: allowlisted, body },
    ]);
  });

  it("in a hedge whose second endpoint's transform changes URL and body, under a rule rewriting the body", async () => {
    const clock = new TestClock();
    const { fetch, seen } = recorder((url) =>
      url.startsWith("https://a.example") ? new Promise<Response>(() => {}) : new Response("ok"),
    );
    const r = createResilience({
      clock,
      fetch,
      retry: false,
      breaker: false,
      degradation: degradation({}),
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 100 },
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            {
              name: "t",
              url: "https://b.example/v1",
              transform: (q) => ({ ...q, url: "https://t.example/v9", body: { ...q.body, extra: true } }),
            },
          ],
        },
      ]),
    });
    r.degradation.setLevel("medium");
    const pending = r.fetch(request(), UNDEFINED_INIT);
    await clock.advance(100);
    const res = await pending;
    expect([res.status, getResilienceInfo(res)?.endpoint, getResilienceInfo(res)?.degradationLevel]).toEqual([
      200,
      "t",
      "medium",
    ]);
    expect(seen).toEqual([
      {
        url: "https://a.example/v1/x",
        referrer: REFERRER,
        integrity: "",
        ...own,
        headers: { ...allowlisted, "x-a": "1" },
        body: '{"p":1,"steps":30}',
      },
      {
        url: "https://t.example/v9",
        referrer: REFERRER,
        integrity: "",
        ...own,
        headers: allowlisted,
        body: '{"p":1,"steps":30,"extra":true}',
      },
    ]);
  });

  it("under a rule rewriting the query, and a respond sees the Request's method, headers and body", async () => {
    const clock = new TestClock();
    const { fetch, seen } = recorder(() => new Response("x", { status: 503 }));
    const views: Array<{ method: string; key: string | null; body: unknown }> = [];
    const r = createResilience({
      clock,
      fetch,
      retry: false,
      breaker: false,
      degradation: degradation({ rules: [{ params: { steps: { query: "steps" } } }] }),
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            {
              name: "cache",
              respond: (q) => {
                views.push({ method: q.method, key: q.headers.get("idempotency-key"), body: q.body });
                return new Response("cached");
              },
            },
          ],
        },
      ]),
    });
    r.degradation.setLevel("medium");
    const out = await settled(r.fetch(request("https://a.example/v1/x?steps=50"), UNDEFINED_INIT));
    expect(out).toMatchObject({ status: 200, text: "cached", info: { endpoint: "cache", fromFallback: true } });
    expect(
      seen.map(({ url, referrer, credentials, cache, keepalive }) => ({
        url,
        referrer,
        credentials,
        cache,
        keepalive,
      })),
    ).toEqual([
      {
        url: "https://a.example/v1/x?steps=30",
        referrer: REFERRER,
        credentials: "include",
        cache: "no-store",
        keepalive: true,
      },
    ]);
    expect(views).toEqual([{ method: "POST", key: "k1", body: { p: 1, steps: 50 } }]);
  });

  it("checks the Request's integrity on a chain endpoint's final answer after a redirect", async () => {
    const clock = new TestClock();
    const make = (body: string) => {
      const { fetch, seen } = recorder((url) =>
        url.endsWith("/x") ? new Response(null, { status: 307, headers: { location: "/v1/y" } }) : new Response(body),
      );
      const r = createResilience({
        clock,
        fetch,
        retry: false,
        breaker: false,
        fallback: fallback([{ name: "gen", endpoints: [{ name: "a", url: "https://a.example/v1" }] }]),
      });
      return { r, seen };
    };
    const integrity = await sha256("good");
    const good = make("good");
    expect(await settled(good.r.fetch(request(undefined, { integrity }), UNDEFINED_INIT))).toMatchObject({
      status: 200,
      text: "good",
    });
    // Each hop goes without it, as docs/retry.md says.
    expect(good.seen.map((s) => s.integrity)).toEqual(["", ""]);
    const bad = make("tampered");
    expect(await settled(bad.r.fetch(request(undefined, { integrity }), UNDEFINED_INIT))).toHaveProperty("error");
  });
});

describe("the referrer worked out on a chain's first request and each hop", () => {
  const plain = (url = "https://a.example/v1/x") =>
    new Request(url, { method: "POST", body: "{}", headers: { "idempotency-key": "k" }, referrer: REFERRER });

  it("to another origin, on its 307, through a transform back to the referrer's origin, on a downgrade", async () => {
    const clock = new TestClock();
    const { fetch, seen } = recorder((url) => {
      if (url.startsWith("https://a.example/v1")) return new Response("x", { status: 503 });
      if (url.startsWith("https://b.example"))
        return new Response(null, { status: 307, headers: { location: "https://c.example/y" } });
      if (url.startsWith("https://c.example")) return new Response("x", { status: 503 });
      if (url.startsWith("https://a.example/alt")) return new Response("x", { status: 503 });
      return new Response("ok");
    });
    const r = createResilience({
      clock,
      fetch,
      retry: false,
      breaker: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
            { name: "back", url: "https://t.example/v1", transform: (q) => ({ ...q, url: "https://a.example/alt" }) },
            { name: "down", url: "http://d.example/v1" },
          ],
        },
      ]),
    });
    const res = await r.fetch(plain(), { referrer: undefined } as unknown as RequestInit);
    expect(getResilienceInfo(res)?.endpoint).toBe("down");
    expect(seen.map((s) => [s.url, s.referrer])).toEqual([
      ["https://a.example/v1/x", REFERRER],
      ["https://b.example/v1/x", "https://a.example/"],
      ["https://c.example/y", "https://a.example/"],
      ["https://a.example/alt", REFERRER],
      ["http://d.example/v1/x", ""],
    ]);
  });

  it("to a hedge on another origin", async () => {
    const clock = new TestClock();
    const { fetch, seen } = recorder((url) =>
      url.startsWith("https://a.example") ? new Promise<Response>(() => {}) : new Response("ok"),
    );
    const r = createResilience({
      clock,
      fetch,
      retry: false,
      breaker: false,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 50 },
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const pending = r.fetch(plain());
    await clock.advance(50);
    expect(getResilienceInfo(await pending)?.endpoint).toBe("b");
    expect(seen.map((s) => [s.url, s.referrer])).toEqual([
      ["https://a.example/v1/x", REFERRER],
      ["https://b.example/v1/x", "https://a.example/"],
    ]);
  });

  it("on a ky call redirected to another origin", async () => {
    const { fetch, seen } = recorder((url) =>
      url === "https://a.example/x"
        ? new Response(null, { status: 307, headers: { location: "https://c.example/y" } })
        : new Response("ok"),
    );
    const api = createClient({ resilience: { fetch, retry: false } });
    expect(await api.post("https://a.example/x", { body: "b", referrer: REFERRER }).text()).toBe("ok");
    expect(seen.map((s) => [s.url, s.referrer])).toEqual([
      ["https://a.example/x", REFERRER],
      ["https://c.example/y", "https://a.example/"],
    ]);
  });
});

describe("frozen and foreign answers on chain paths", () => {
  const frozen = (body: string | null, init?: ResponseInit) => Object.freeze(new Response(body, init));
  /** An answer of another copy of fetch: known by its shape. */
  const foreign = (text: string, withBlob = true) => {
    const real = new Response(text);
    const shape: Record<string, unknown> = {
      status: 200,
      statusText: "",
      ok: true,
      url: "",
      redirected: false,
      type: "default",
      headers: real.headers,
      body: real.body,
      bodyUsed: false,
      clone: () => new Response(text),
      text: () => real.text(),
      json: () => real.json(),
      arrayBuffer: () => real.arrayBuffer(),
    };
    if (withBlob) shape.blob = () => real.blob();
    return shape as unknown as Response;
  };
  const chain = (clock: TestClock, fetch: typeof globalThis.fetch, respond: () => unknown) =>
    createResilience({
      clock,
      fetch,
      retry: false,
      breaker: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "cache", respond: () => respond() as Response },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
  const busy = async (input: RequestInfo | URL) =>
    String(input).startsWith("https://a.") ? new Response("x", { status: 503 }) : new Response("from b");

  it("serves a frozen or foreign respond answer with its endpoint; one without blob() moves on", async () => {
    const clock = new TestClock();
    let answer: () => unknown = () => frozen("cached");
    const r = chain(clock, busy, () => answer());
    const reasons: string[] = [];
    r.on("fallback", (e) => reasons.push(`${e.from}: ${e.reason}`));
    expect(await settled(r.fetch("https://a.example/v1/x"))).toMatchObject({
      status: 200,
      text: "cached",
      info: { endpoint: "cache", fromFallback: true, attempts: 1 },
    });
    answer = () => foreign("shaped");
    expect(await settled(r.fetch("https://a.example/v1/x"))).toMatchObject({
      text: "shaped",
      info: { endpoint: "cache", fromFallback: true },
    });
    answer = () => foreign("no blob", false);
    expect(await settled(r.fetch("https://a.example/v1/x"))).toMatchObject({
      text: "from b",
      info: { endpoint: "b", attempts: 2 },
    });
    expect(reasons.at(-1)).toMatch(/^cache: TypeError: .*network error/);
  });

  it("serves a frozen 503 kept while the next endpoint fails, and a frozen hedge winner after a redirect", async () => {
    const clock = new TestClock();
    const kept = createResilience({
      clock,
      fetch: async (input) =>
        String(input).startsWith("https://a.")
          ? frozen("busy", { status: 503 })
          : Promise.reject(new TypeError("fetch failed")),
      retry: false,
      breaker: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    expect(await settled(kept.fetch("https://a.example/v1/x"))).toMatchObject({
      status: 503,
      text: "busy",
      info: { endpoint: "a", attempts: 2, fromFallback: false },
    });
    const hedged = createResilience({
      clock,
      fetch: async (input) => {
        const url = String(input);
        if (url.startsWith("https://a.")) return new Promise<Response>(() => {});
        if (url.endsWith("/x")) return frozen(null, { status: 307, headers: { location: "https://b.example/done" } });
        return frozen("won");
      },
      retry: false,
      breaker: false,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 50 },
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const pending = hedged.fetch("https://a.example/v1/x");
    await clock.advance(50);
    const res = await pending;
    expect([res.redirected, res.url, await res.text(), getResilienceInfo(res)]).toMatchObject([
      true,
      "https://b.example/done",
      "won",
      { endpoint: "b", fromFallback: true, attempts: 2 },
    ]);
  });

  it("names the endpoint that served a frozen answer that an earlier call was served", async () => {
    const clock = new TestClock();
    // An answer an earlier call was served, kept whole and frozen by a cache.
    const earlier = createResilience({ clock, fetch: async () => new Response(null, { status: 204 }), retry: false });
    const last = Object.freeze(await earlier.fetch("https://z.example/"));
    const r = chain(clock, busy, () => last);
    const res = await r.fetch("https://a.example/v1/x");
    expect(res).toBe(last);
    // Today: { endpoint: "z.example", fromFallback: false, … } — the earlier call's info.
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "cache", fromFallback: true, attempts: 1 });
  });
});

describe("listeners added or removed while a run goes on", () => {
  it("a fallback listener added in the first send hears the pass-over; one removed in the second hears no more", async () => {
    const clock = new TestClock();
    let r!: ReturnType<typeof createResilience>;
    const early: string[] = [];
    const late: string[] = [];
    let offEarly: (() => void) | undefined;
    const fetch = async (input: RequestInfo | URL) => {
      const url = String(input);
      if (url.startsWith("https://a.")) r.on("fallback", (e) => late.push(`${e.from}>${e.next}`));
      if (url.startsWith("https://b.")) offEarly?.();
      return url.startsWith("https://d.") ? new Response("ok") : new Response("x", { status: 503 });
    };
    r = createResilience({
      clock,
      fetch,
      retry: false,
      breaker: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
            { name: "c", url: "https://c.example/v1" },
            { name: "d", url: "https://d.example/v1" },
          ],
        },
      ]),
    });
    offEarly = r.on("fallback", (e) => early.push(`${e.from}>${e.next}`));
    expect((await r.fetch("https://a.example/v1/x")).status).toBe(200);
    expect(early).toEqual(["a>b"]);
    expect(late).toEqual(["a>b", "b>c", "c>d"]);
  });

  /** A KV namespace that fails every read and write, counting how often its errors' text is read. */
  const failingKv = () => {
    const counter = { reads: 0 };
    class KvDown extends Error {
      override get message() {
        counter.reads++;
        return "kv down";
      }
    }
    const kv = {
      get: async () => null,
      list: async () => ({ keys: [], list_complete: true }),
      getWithMetadata: async (): Promise<never> => {
        throw new KvDown();
      },
      put: async (): Promise<never> => {
        throw new KvDown();
      },
    };
    return { kv, counter };
  };

  it("a store listener added while a KV fails hears the failures, and once removed hears none", async () => {
    const clock = new TestClock(1_000_000);
    const { kv, counter } = failingKv();
    const pending: Promise<unknown>[] = [];
    const store = kvStore(kv as never, {
      clock,
      refreshInterval: 1_000,
      ctx: { waitUntil: (p) => void pending.push(p) },
    });
    const r = createResilience({ clock, fetch: async () => new Response("ok"), store, retry: false });
    const heard: string[] = [];
    const step = async () => {
      await clock.advance(1_000);
      await (await r.fetch("https://a.example/x")).text();
      await Promise.all(pending.splice(0));
    };
    await step();
    const off = r.on("store", (e) => heard.push(`${e.operation} ${e.outcome} ${e.detail}`));
    await step();
    await step();
    expect(heard).toEqual(["read failed Error: kv down", "read failed Error: kv down"]);
    off();
    const reads = counter.reads;
    await step();
    await step();
    expect([heard.length, counter.reads]).toEqual([2, reads]);
  });

  it("a KV whose put fails has its error's text read only while a store listener is on", async () => {
    const clock = new TestClock(1_000_000);
    const { kv, counter } = failingKv();
    const pending: Promise<unknown>[] = [];
    const store = kvStore(kv as never, {
      clock,
      refreshInterval: 1_000,
      publishJitter: 0,
      minPublishInterval: 1_000,
      ctx: { waitUntil: (p) => void pending.push(p) },
    });
    // One 503 opens the host: the trip is written to KV, whose put rejects; nobody listens.
    const r = createResilience({
      clock,
      fetch: async () => new Response("x", { status: 503 }),
      store,
      retry: false,
      breaker: { failureThreshold: 1 },
    });
    await (await r.fetch("https://a.example/x")).text();
    for (let i = 0; i < 3; i++) await clock.advance(1_000);
    await Promise.all(pending.splice(0));
    expect(r.health().breakers["a.example"]?.state).toBe("open");
    // Today: 2 (the write and its retry each read the text to tell a 429).
    expect(counter.reads).toBe(0);
  });
});
