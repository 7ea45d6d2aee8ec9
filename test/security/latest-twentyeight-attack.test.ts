/**
 * Outside-in attack on the fixes of 5e696b1 (the proxy's health path) and 17a0f89 (the first request's
 * referrer, `undefined` init members, frozen and foreign answers, ky's hidden options, listeners added late).
 * Docs: CHANGELOG.md "### Fixed" first entry ("a redirect never widens what was sent", `localhost.`, `init`
 * members `undefined`, frozen `Response`, `blob()`, ky's hidden options, `fallback` listener, store events);
 * docs/retry.md "Redirects" ("Each request's referrer, the first's and every later hop's, is worked out by the
 * library … and handed to the transport as it is (with `referrerPolicy: "unsafe-url"` …)", "Only an http(s)
 * referrer is worked out", "a redirect can only trim it further", "Calls that ask for `redirect: "manual"`
 * pass through", "A `Request` input's own properties … go to every hop"); docs/retry.md "ky" ("ky's 10 s timeout
 * off unless you pass one"); docs/options.md `fetch` row; docs/cloudflare.md (health path its own, HEAD, 405 with
 * `Allow: GET, HEAD`, escapes in any case, a `get()` waited 5 s at most, a throwing `store` factory); SECURITY.md
 * health row.
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `resilientProxy`, `kvStore`
 * (./cloudflare), `TestClock` (./testing), `createClient` (./ky) beside `ky` itself, a transport that records its
 * `init`, a real node:http server on 127.0.0.1 (Node's own fetch as the transport), vi fake timers for ky's timeout.
 * Paths: plain call, `Request` input (with a body, `init` members `undefined`), 302/307 chains on 127.0.0.1,
 * `redirect: "manual"`, fallback chain, ky client (create, call, `extend`, `create`), proxy health path (custom
 * path with escapes, query, OPTIONS/PUT/DELETE/POST, HEAD, tokens, Secrets Store `get()` at 4,999 and 5,001 ms on
 * the layer's TestClock, overlapping requests), proxy `store` factory that throws, KV store events.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the first request's referrer parsed as fetch parses it before it is worked out, ky's timeout kept off when the one given is not enumerable):
 * 1. docs/retry.md "Each request's referrer, the first's and every later hop's, is worked out by the library, as
 *    the Referrer Policy standard determines it, and handed to the transport as it is (with `referrerPolicy:
 *    "unsafe-url"`, which a transport of your own sees)". Observed: an http(s) `referrer` the URL parser reads
 *    but written with a leading space or tab, or a tab inside the scheme (`" https://a.example/p"`,
 *    `"ht\ttp://…"`; fetch accepts all of them, the URL parser strips them), reaches the transport as written with
 *    the caller's policy: the first request is not worked out. Cause: follow-redirects.ts tests the raw string
 *    with `/^https?:/i` before working it out (sentReferrer itself parses it).
 * 2. CHANGELOG.md "so a redirect never widens what was sent" and docs/retry.md "the referrer each hop carries is
 *    where the next starts (a redirect can only trim it further)". Observed, on 127.0.0.1 with Node's fetch: the
 *    same referrer (`" http://127.0.0.1:…/p?q"`, `no-referrer-when-downgrade`, no downgrade) goes with the first
 *    request as the origin alone (Node's own reading, defect 1), then the hop after a 302 carries the full URL
 *    with its query, which the library worked out from the parsed referrer: the redirect widened it.
 * 3. docs/retry.md (ky) "ky's 10 s timeout off unless you pass one". Observed: `createClient` with a `timeout`
 *    defined not enumerable (which ky, reading its options through `Object.entries`, never takes) gets ky's 10 s
 *    timeout back: a call to a transport that has not answered rejects with ky's `TimeoutError` at 10 s, where the
 *    same client without the key, or with it enumerable (60 s), waits. Cause: src/ky/index.ts `onLayer` sets
 *    `timeout: false` only when `!Object.hasOwn(own, "timeout")`; the hidden key counts as given, and ky's merge
 *    then drops it.
 *
 * Held (plain `it`):
 * - Proxy health path: OPTIONS/PUT/DELETE/POST (query too) are 405 with `Allow: GET, HEAD` and never reach the
 *   catch-all route; HEAD answers as GET without a body, 401 without the token; a custom `healthPath` with escapes
 *   matches a request whose escapes are in the other case (and a route's path likewise); a Secrets Store `get()`
 *   settling at 4,999 ms on the layer's TestClock opens it, one at 5,001 ms keeps it 401; overlapping requests each
 *   get their answer; a `store` factory that throws rejects the request and is called again on the next.
 * - The first request's referrer under `no-referrer-when-downgrade`, `same-origin`, the default policy, on a plain
 *   call and a `Request` input; `localhost.` as trustworthy; `redirect: "manual"` untouched; a chain's second
 *   endpoint gets none under `same-origin`; a real server sees the full URL where the standard says so.
 * - `init` members `undefined` leave a `Request`'s referrer, policy, credentials, cache, keepalive, mode and
 *   headers, on the first request and after a 307 with a body.
 * - A frozen `Response` is served with its info, a frozen redirect's final answer marked on a copy; a foreign
 *   shape without `blob()` is a network error, one with it is served.
 * - ky: a hidden `headers` is sent, hidden `searchParams` and `json` are left out, as ky alone does (create, call,
 *   extend, create).
 * - A `fallback` listener added during a chain run hears the run's later events; a KV store's `store` events are
 *   heard only while a listener is on, and the error's text is read only then.
 */
import ky from "ky";
import { afterEach, describe, expect, it, vi } from "vitest";
import { kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

afterEach(() => {
  vi.useRealTimers();
});

const server = httpUpstream();
serveDuringFile(server);

const ctx = { waitUntil: (_p: Promise<unknown>) => {}, passThroughOnException: () => {} };

/** A transport that records its input and a copy of its `init`, and answers with `answer`. */
function initRecorder(answer: (url: string, n: number) => Response = () => new Response("ok")) {
  const seen: Array<{ url: string; init: RequestInit | undefined; input: unknown }> = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    seen.push({ url, init: init && { ...init }, input });
    return answer(url, seen.length);
  };
  return { fetch, seen };
}

const hidden = <T extends object>(base: T, key: string, value: unknown): T =>
  Object.defineProperty(base, key, { value, enumerable: false, writable: true, configurable: true });

/** The 127.0.0.1 server: `/x` redirects (302) to `/y`, anything else is "ok". */
const redirectingServer = () => {
  server.on((hit) => {
    if (hit.path === "/x") {
      hit.res.writeHead(302, { location: "/y" });
      hit.res.end();
    } else hit.res.end("ok");
  });
};

describe("the first request's referrer", () => {
  it("is worked out and handed over as unsafe-url under each policy, plain call and Request input", async () => {
    const cases: Array<[RequestInit, string]> = [
      [{ referrer: "https://a.example/p?q", referrerPolicy: "no-referrer-when-downgrade" }, "https://a.example/p?q"],
      [{ referrer: "https://b.example/p?q", referrerPolicy: "same-origin" }, "https://b.example/p?q"],
      [{ referrer: "https://a.example/p?q", referrerPolicy: "same-origin" }, ""],
      [{ referrer: "https://a.example/p?q" }, "https://a.example/"],
      [{ referrer: "http://a.example/p?q", referrerPolicy: "no-referrer-when-downgrade" }, "http://a.example/p?q"],
    ];
    for (const [init, expected] of cases) {
      for (const asRequest of [false, true]) {
        const { fetch, seen } = initRecorder();
        const r = createResilience({ fetch, retry: false, breaker: false });
        if (asRequest) await r.fetch(new Request("https://b.example/x", init));
        else await r.fetch("https://b.example/x", init);
        expect([seen[0]?.init?.referrer, seen[0]?.init?.referrerPolicy]).toEqual([expected, "unsafe-url"]);
      }
    }
  });

  it("counts localhost. as trustworthy: https to it is no downgrade, it to http is one", async () => {
    const { fetch, seen } = initRecorder();
    const r = createResilience({ fetch, retry: false, breaker: false });
    await r.fetch("http://localhost./x", {
      referrer: "https://a.example/p?q",
      referrerPolicy: "no-referrer-when-downgrade",
    });
    await r.fetch("http://b.example/x", { referrer: "http://localhost./p", referrerPolicy: "strict-origin" });
    expect(seen.map((s) => s.init?.referrer)).toEqual(["https://a.example/p?q", ""]);
  });

  it("leaves a redirect: manual call untouched", async () => {
    const { fetch, seen } = initRecorder();
    const r = createResilience({ fetch, retry: false, breaker: false });
    await r.fetch("https://b.example/x", {
      referrer: "https://a.example/p?q",
      referrerPolicy: "same-origin",
      redirect: "manual",
    });
    expect([seen[0]?.init?.referrer, seen[0]?.init?.referrerPolicy]).toEqual(["https://a.example/p?q", "same-origin"]);
  });

  it("goes to a chain's second endpoint as same-origin says: none", async () => {
    const { fetch, seen } = initRecorder((url) =>
      url.startsWith("https://a.example") ? new Response("x", { status: 503 }) : new Response("ok"),
    );
    const r = createResilience({
      fetch,
      retry: false,
      breaker: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    await r.fetch("https://a.example/v1/x", { referrer: "https://a.example/page?q", referrerPolicy: "same-origin" });
    expect(seen.map((s) => [s.url, s.init?.referrer])).toEqual([
      ["https://a.example/v1/x", "https://a.example/page?q"],
      ["https://b.example/v1/x", ""],
    ]);
  });

  it("reaches a real server in full under no-referrer-when-downgrade, first request and hop alike", async () => {
    redirectingServer();
    const r = createResilience({ retry: false, breaker: false });
    const res = await r.fetch(`${server.base}/x`, {
      referrer: `${server.base}/p?q`,
      referrerPolicy: "no-referrer-when-downgrade",
    });
    await res.text();
    expect(server.hits.map((h) => [h.path, h.headers.referer])).toEqual([
      ["/x", `${server.base}/p?q`],
      ["/y", `${server.base}/p?q`],
    ]);
  });

  it("is worked out when the referrer is an http(s) URL written with a space, a tab or a tab in its scheme", async () => {
    const written = [" https://a.example/p?q", "\thttps://a.example/p?q", "ht\ttps://a.example/p?q"];
    const got: unknown[] = [];
    for (const referrer of written) {
      // fetch itself reads each as https://a.example/p?q.
      expect(new Request("https://b.example/x", { referrer }).referrer).toBe("https://a.example/p?q");
      const { fetch, seen } = initRecorder();
      const r = createResilience({ fetch, retry: false, breaker: false });
      await r.fetch("https://b.example/x", { referrer, referrerPolicy: "no-referrer-when-downgrade" });
      got.push([seen[0]?.init?.referrer, seen[0]?.init?.referrerPolicy]);
    }
    expect(got).toEqual(written.map(() => ["https://a.example/p?q", "unsafe-url"]));
  });

  it("never widens on a redirect what the first request carried (a referrer written with a space)", async () => {
    redirectingServer();
    const r = createResilience({ retry: false, breaker: false });
    const res = await r.fetch(`${server.base}/x`, {
      referrer: ` ${server.base}/p?q`,
      referrerPolicy: "no-referrer-when-downgrade",
    });
    await res.text();
    const [first, hop] = server.hits.map((h) => h.headers.referer);
    // Same origin, same policy: the hop carries what the first request did, never more.
    // Today: first `http://127.0.0.1:…/` (Node's reading), the hop `http://127.0.0.1:…/p?q`.
    expect(hop, `first request ${first}, hop ${hop}`).toBe(first);
  });
});

describe("init members that are undefined leave a Request's own", () => {
  it("on the first request and after a 307, with and without a body", async () => {
    for (const withBody of [false, true]) {
      const { fetch, seen } = initRecorder((url) =>
        url.endsWith("/x") ? new Response(null, { status: 307, headers: { location: "/y" } }) : new Response("ok"),
      );
      const r = createResilience({ fetch, retry: false, breaker: false });
      const request = new Request("https://a.example/x", {
        method: withBody ? "POST" : "GET",
        body: withBody ? "hello" : undefined,
        referrer: "https://a.example/page?q",
        referrerPolicy: "unsafe-url",
        credentials: "omit",
        cache: "no-store",
        keepalive: true,
        mode: "same-origin",
        headers: { "x-k": "1" },
      } as RequestInit);
      await r.fetch(request, {
        referrer: undefined,
        referrerPolicy: undefined,
        credentials: undefined,
        cache: undefined,
        keepalive: undefined,
        mode: undefined,
        integrity: undefined,
        headers: undefined,
        body: undefined,
        method: undefined,
      } as unknown as RequestInit);
      const effective = seen.map((s) => {
        const e = new Request(s.input as Request, s.init);
        return [e.url, e.method, e.referrer, e.credentials, e.cache, e.keepalive, e.mode, e.headers.get("x-k")];
      });
      const method = withBody ? "POST" : "GET";
      const rest = ["https://a.example/page?q", "omit", "no-store", true, "same-origin", "1"];
      expect(effective).toEqual([
        ["https://a.example/x", method, ...rest],
        ["https://a.example/y", method, ...rest],
      ]);
    }
  });
});

describe("answers: frozen, or of another realm", () => {
  it("serves a frozen Response with its info, and marks a frozen redirect's final answer on a copy", async () => {
    const r = createResilience({
      fetch: async (input) => {
        const url = input instanceof Request ? input.url : String(input);
        return Object.freeze(
          url.endsWith("/r") ? new Response(null, { status: 302, headers: { location: "/done" } }) : new Response("ok"),
        );
      },
      retry: false,
      breaker: false,
    });
    const plain = await r.fetch("https://a.example/x");
    expect([plain.status, getResilienceInfo(plain)?.attempts, await plain.text()]).toEqual([200, 1, "ok"]);
    const followed = await r.fetch("https://a.example/r");
    expect([followed.redirected, followed.url, getResilienceInfo(followed)?.attempts, await followed.text()]).toEqual([
      true,
      "https://a.example/done",
      1,
      "ok",
    ]);
  });

  it("takes a foreign shape only with blob() too", async () => {
    const shape = (withBlob: boolean) => {
      const real = new Response("ok");
      const out: Record<string, unknown> = {
        status: 200,
        statusText: "",
        ok: true,
        type: "default",
        url: "",
        redirected: false,
        headers: real.headers,
        body: real.body,
        bodyUsed: false,
        clone: () => shape(withBlob),
        text: () => real.text(),
        json: () => real.json(),
        arrayBuffer: () => real.arrayBuffer(),
      };
      if (withBlob) out.blob = () => real.blob();
      return out as unknown as Response;
    };
    const withBlob = createResilience({ fetch: async () => shape(true), retry: false, breaker: false });
    const served = await withBlob.fetch("https://a.example/x");
    expect([await served.text(), getResilienceInfo(served)?.attempts]).toEqual(["ok", 1]);
    const without = createResilience({ fetch: async () => shape(false), retry: false, breaker: false });
    await expect(without.fetch("https://a.example/x")).rejects.toThrow(/network error/);
  });
});

describe("ky client: options defined not enumerable", () => {
  const run = async (who: "ky" | "client", where: string, key: string, value: unknown) => {
    const { fetch, sent } = recordingFetch(() => new Response("{}"));
    const kyBase = (o: object) => ky.create({ ...o, fetch, retry: 0 });
    const clientBase = (o: object) => createClient({ ...o, resilience: { fetch, retry: false, breaker: false } });
    const base = who === "ky" ? kyBase : clientBase;
    let call: () => Promise<unknown>;
    if (where === "create")
      call = () =>
        (who === "ky"
          ? ky.create(hidden({ fetch, retry: 0 }, key, value))
          : createClient(
              hidden({ resilience: { fetch, retry: false as const, breaker: false as const } }, key, value),
            ))("https://a.example/x").text();
    else if (where === "call") call = () => base({})("https://a.example/x", hidden({}, key, value)).text();
    else if (where === "extend")
      call = () =>
        base({})
          .extend(hidden({}, key, value))("https://a.example/x")
          .text();
    else
      call = () =>
        base({})
          .create(hidden(who === "ky" ? { fetch, retry: 0 } : {}, key, value))("https://a.example/x")
          .text();
    await call();
    return sent.map((s) => [s.method, s.url, s.headers.get("x-h"), s.body]);
  };

  it("sends them as ky alone does (headers read by name; searchParams and json not)", async () => {
    for (const [key, value] of [
      ["headers", { "x-h": "1" }],
      ["searchParams", { q: "1" }],
      ["json", { a: 1 }],
    ] as const) {
      for (const where of ["create", "call", "extend", "create2"]) {
        const alone = await run("ky", where, key, value);
        expect([key, where, await run("client", where, key, value)]).toEqual([key, where, alone]);
        if (key === "headers") expect(alone[0]?.[2]).toBe("1");
      }
    }
  });

  it("keeps ky's 10 s timeout off when a timeout ky never reads (not enumerable) is given", async () => {
    vi.useFakeTimers();
    const hang = (input: RequestInfo | URL, init?: RequestInit) =>
      new Promise<Response>((_resolve, reject) => {
        const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
        signal?.addEventListener("abort", () => reject(signal.reason));
      });
    const outcome: Record<string, string> = {};
    for (const mode of ["absent", "enumerable", "hidden"]) {
      const options: Record<string, unknown> = { resilience: { fetch: hang, retry: false, breaker: false } };
      if (mode === "enumerable") options.timeout = 60_000;
      if (mode === "hidden") hidden(options, "timeout", 60_000);
      const settled = createClient(options)
        .get("https://a.example/x")
        .then(
          () => "resolved",
          (error: Error) => error.name,
        );
      await vi.advanceTimersByTimeAsync(10_001);
      outcome[mode] = await Promise.race([settled, Promise.resolve("pending")]);
    }
    // Today: { absent: "pending", enumerable: "pending", hidden: "TimeoutError" }.
    expect(outcome).toEqual({ absent: "pending", enumerable: "pending", hidden: "pending" });
  });
});

describe("listeners added or removed while the layer runs", () => {
  it("a fallback listener added during a chain run hears the run's later events", async () => {
    let r!: ReturnType<typeof createResilience>;
    const heard: Array<{ from: string; next: string }> = [];
    const { fetch } = initRecorder((url) => {
      if (url.startsWith("https://a.example")) r.on("fallback", (e) => heard.push(e as { from: string; next: string }));
      return url.startsWith("https://c.example") ? new Response("ok") : new Response("x", { status: 503 });
    });
    r = createResilience({
      fetch,
      retry: false,
      breaker: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
            { name: "c", url: "https://c.example/v1" },
          ],
        },
      ]),
    });
    expect((await r.fetch("https://a.example/v1/x")).status).toBe(200);
    expect(heard.map((e) => [e.from, e.next])).toEqual([
      ["a", "b"],
      ["b", "c"],
    ]);
  });

  it("a KV store's events are built only while a store listener is on", async () => {
    const clock = new TestClock(1_000_000);
    let messageReads = 0;
    class KvDown extends Error {
      override get message() {
        messageReads++;
        return "kv down";
      }
    }
    const pending: Promise<unknown>[] = [];
    const namespace = {
      getWithMetadata: async () => {
        throw new KvDown();
      },
      put: async () => {},
    };
    const store = kvStore(namespace as never, {
      clock,
      refreshInterval: 1_000,
      ctx: { waitUntil: (p) => void pending.push(p) },
    });
    const { fetch } = recordingFetch();
    const r = createResilience({ fetch, clock, store, retry: false });
    const heard: unknown[] = [];
    const step = async () => {
      await clock.advance(1_000);
      await (await r.fetch("https://a.example/x")).text();
      await Promise.all(pending.splice(0));
    };
    await step();
    expect([heard.length, messageReads]).toEqual([0, 0]);
    const off = r.on("store", (e) => heard.push(e));
    await step();
    expect(heard).toEqual([
      { store: "kv", key: "a.example", operation: "read", outcome: "failed", detail: "Error: kv down" },
    ]);
    const reads = messageReads;
    expect(reads).toBeGreaterThan(0);
    off();
    await step();
    expect([heard.length, messageReads]).toEqual([1, reads]);
  });
});

describe("proxy: the health path is its own", () => {
  const make = (extra: { healthPath?: string; clock?: TestClock } = {}) => {
    const { fetch, sent } = recordingFetch();
    const proxy = resilientProxy({
      routes: [
        { path: "/", upstream: "https://up.example" },
        { path: "/vid%C3%A9o", upstream: "https://video.example/v" },
      ],
      resilience: { fetch, retry: false, ...(extra.clock ? { clock: extra.clock } : {}) },
      ...(extra.healthPath ? { healthPath: extra.healthPath } : {}),
    });
    const call = (path: string, init?: RequestInit, env: object = { RESILIENCE_HEALTH_TOKEN: "tok" }) =>
      proxy.fetch(new Request(`https://w.example${path}`, init), env, ctx as never);
    return { call, sent };
  };
  const bearer = { authorization: "Bearer tok" };

  it("answers any method but GET and HEAD with 405, query or not, and forwards none", async () => {
    const { call, sent } = make();
    for (const [path, method] of [
      ["/__resilience/health", "OPTIONS"],
      ["/__resilience/health", "PUT"],
      ["/__resilience/health", "DELETE"],
      ["/__resilience/health?x=1", "POST"],
      ["/__resilience/./health", "POST"],
    ] as const) {
      const res = await call(path, { method, headers: bearer });
      expect([path, method, res.status, res.headers.get("allow")]).toEqual([path, method, 405, "GET, HEAD"]);
    }
    expect(sent).toEqual([]);
  });

  it("answers HEAD as GET without a body, under the same token rules", async () => {
    const { call, sent } = make();
    const head = await call("/__resilience/health", { method: "HEAD", headers: bearer });
    expect([head.status, head.body, head.headers.get("cache-control")]).toEqual([200, null, "no-store"]);
    expect((await call("/__resilience/health", { method: "HEAD" })).status).toBe(401);
    expect(
      (await call("/__resilience/health", { method: "HEAD", headers: { authorization: "Bearer to" } })).status,
    ).toBe(401);
    expect(sent).toEqual([]);
  });

  it("matches a custom health path and a route whatever case the escapes are in", async () => {
    const { call, sent } = make({ healthPath: "/st%c3%a9tus" });
    expect((await call("/st%C3%A9tus", { headers: bearer })).status).toBe(200);
    expect((await call("/st%c3%A9tus", { method: "POST", headers: bearer })).status).toBe(405);
    expect((await call("/st%C3%A9tus")).status).toBe(401);
    expect(sent).toEqual([]);
    expect((await call("/vid%c3%a9o/jobs?x=1")).status).toBe(200);
    expect(sent.map((s) => s.url)).toEqual(["https://video.example/v/jobs?x=1"]);
  });

  it("waits for a Secrets Store get() 5 s on the layer's clock: 4,999 ms opens it, 5,001 ms keeps it closed", async () => {
    const clock = new TestClock(1_000);
    const { call, sent } = make({ clock });
    const statusAfter = async (ms: number) => {
      const secret = { get: () => new Promise((resolve) => clock.setTimer(() => resolve("tok"), ms)) };
      const answer = call("/__resilience/health", { headers: bearer }, { RESILIENCE_HEALTH_TOKEN: secret });
      await clock.advance(6_000);
      return (await answer).status;
    };
    expect([await statusAfter(4_999), await statusAfter(5_001)]).toEqual([200, 401]);
    // Overlapping: each request its own answer.
    const slow = { get: () => new Promise((resolve) => clock.setTimer(() => resolve("tok"), 3_000)) };
    const a = call("/__resilience/health", { headers: bearer }, { RESILIENCE_HEALTH_TOKEN: slow });
    const b = call("/__resilience/health", { method: "HEAD" }, { RESILIENCE_HEALTH_TOKEN: slow });
    await clock.advance(6_000);
    expect([(await a).status, (await b).status]).toEqual([200, 401]);
    expect([sent.length, clock.pending()]).toEqual([0, 0]);
  });

  it("rejects a request whose store factory throws, and calls the factory again on the next", async () => {
    const { fetch } = recordingFetch();
    let calls = 0;
    const proxy = resilientProxy<{ ok?: boolean }>({
      routes: [{ path: "/", upstream: "https://up.example" }],
      resilience: { fetch, retry: false },
      store: (env) => {
        calls++;
        if (!env.ok) throw new Error("binding missing");
        return undefined;
      },
    });
    await expect(proxy.fetch(new Request("https://w.example/x"), {}, ctx as never)).rejects.toThrow("binding missing");
    const res = await proxy.fetch(new Request("https://w.example/x"), { ok: true }, ctx as never);
    expect([res.status, calls]).toEqual([200, 2]);
  });
});
