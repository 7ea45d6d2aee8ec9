/**
 * Outside-in attack on every sentence of docs/retry.md "## Redirects" with the library's own follower (the
 * Node default, `redirects: "library"`), on the paths and inputs the earlier redirect files (redirectmatrix-forty,
 * followdiff-thirtyfour, redirects-seventeen, hopflag-fortyone, retryhop-fortyone) did not drive: a `URL` object,
 * a `Request` with its own properties, a retried call, the response's `type` on every path, bodies past
 * `maxReplayBytes`, async iterables, a `transform` that replaced a stream, `integrity` across hops, several
 * `Referrer-Policy` lines, each referrer policy through a `Request`, a chain and ky, `localhost` against
 * `127.0.0.1` on one port, and a half-open host's probe slot taken by a hop, each way it can end.
 *
 * Docs: docs/retry.md "Redirects":
 * - "From the first hop to another origin on (a scheme change counts) only the cross-origin allowlist is sent
 *   (`accept`, `accept-language`, `content-language`, `content-type`, `idempotency-key`, `user-agent`, and the
 *   headers you name in `crossOriginHeaders`)".
 * - "the referrer each hop carries is where the next starts (a redirect can only trim it further) and a
 *   redirect's `Referrer-Policy` rules the hops after it (where a `referrer` is sent at all; a header value that
 *   does not parse, such as a quoted string, sets none)"; "Several `Referrer-Policy` lines are read as one value,
 *   joined as `Headers.get` gives them …, so an empty line is an empty element, passed over"; "Each request's
 *   referrer, the first's and every later hop's, is worked out by the library, as the Referrer Policy standard
 *   determines it … Node's fetch applies some policies wrongly (the origin alone under
 *   `no-referrer-when-downgrade` without a downgrade)".
 * - "301/302 turn a POST into a GET and 303 turns anything but GET/HEAD into a GET (body and its headers
 *   dropped), 307/308 replay method and body (a body sent once, a stream or one larger than `maxReplayBytes` as
 *   the caller gave it, cannot be: a `TypeError`), and a stream body (or an async iterable) given in `init` fails
 *   any redirect but a 303, a 301/302 too …; judged on the body the hop would send, so one a `transform` or a
 *   rule replaced follows a 301/302 POST as a GET, while a 307/308 never sends again what the caller gave as a
 *   stream". "a `Request` built on a stream and past the limit then follows [a 301/302 POST as a GET]".
 * - "Whatever ends a followed redirect … a request that is not idempotent is not sent again, an idempotent one
 *   is retried as after any failure, and the call rejects … with a `RetryExhaustedError` whose `cause` is that
 *   failure".
 * - "A `Request` input's own properties (`cache`, `credentials`, `referrerPolicy`, `keepalive`…) go to every
 *   hop, save `integrity`, which is checked on the final answer as fetch checks it (the strongest algorithm
 *   named, base64 or base64url, padded or not …)"; "(with `referrerPolicy: "unsafe-url"`, which a transport of
 *   your own sees)".
 * - "The result has `redirected: true` and the last hop's `url`, and `type` `"cors"` once a hop left the first
 *   URL's origin".
 * - "a hop to a half-open host with a free slot takes it, as that host's probe …: its own answer settles the slot
 *   (a 5xx or 429, or an error, an attempt timeout among them, re-opens the host; any other answer, a redirect
 *   onward too, is the probe's success; the caller's abort, or `timeout.total`, frees the slot at once …)".
 * - "A `redirect` event reports each hop (`from`, `to`, `status`, `crossOrigin`, and the _names_ of the headers
 *   dropped)".
 *
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `TestClock` (./testing); two node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) that record every
 * hop (method, body, headers): A answers the redirects, B is the other origin; `http://localhost:<A's port>` is a
 * third origin on A's socket. Bare `fetch` (undici's follower) as the reference where the docs name it.
 *
 * Paths: plain call (string, `URL` object), `Request` input (own properties, referrer, body built on a stream,
 * `integrity`), a retried call, a fallback chain (and its endpoint `transform`), a hedged chain, a degradation
 * level, the ky client, a transport of my own (what each hop is handed).
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour): none found. Every sentence driven here
 * held on every path tried.
 *
 * Held (plain `it`):
 * - `redirected: true`, the last hop's `url` and `type: "cors"` after a hop to B, on a string, a `URL`, a
 *   `Request`, a chain, a hedged chain, a degradation level, ky, and a call whose first attempt was retried.
 * - `http://localhost:<port>` is another origin than `http://127.0.0.1:<port>`: only the allowlist (and a
 *   `crossOriginHeaders` name given in mixed case) reaches it; `authorization`, `cookie`, `proxy-authorization`,
 *   `x-api-key` and a custom header are dropped and named in the one `redirect` event (`crossOrigin: true`).
 * - Bodies (`maxReplayBytes: 8`): a larger string POST follows a 301/302/303 as a bodiless GET and fails a 307
 *   (`TypeError` naming the limit); a larger PUT fails a 301/302/307 and follows a 303 as a GET; an async
 *   iterable fails 301/302/307 ("a stream") and follows a 303; a `Request` on a stream past the limit follows a
 *   301/302/303 as a GET and fails a 307; a chain `transform` that replaced a stream body follows 301/302/303
 *   as a GET and fails a 307 (nothing reaches B).
 * - After a redirect: a GET, a keyed POST and a PUT whose hop's connection resets are retried (3 attempts), a
 *   keyless POST is not (2: the declined first, then the redirect); each rejects with `RetryExhaustedError`
 *   whose `cause` is the hop's `TypeError`; a final 503 from B settles the call with it (`redirected`).
 * - `integrity` on a redirected call (string, `Request`, chain, ky): the strongest algorithm named decides
 *   (sha512 right with sha256 wrong passes, the reverse fails), base64url unpadded and an upper-case algorithm
 *   pass; a mismatch rejects with a `TypeError` cause (`RetryExhaustedError`, `FallbackExhaustedError` on a
 *   chain), as bare fetch fails it.
 * - A `Request`'s `cache`, `credentials`, `keepalive`, `mode`, `referrerPolicy` reach every hop a transport of
 *   my own is handed, each with `redirect: "manual"`; a 307 replays the `Request`'s body; a hop handed a worked-
 *   out referrer says `referrerPolicy: "unsafe-url"`.
 * - `Referrer-Policy` lines: `""` + `origin` sets `origin`; `no-referrer` + `""` sets `no-referrer`; a quoted
 *   `"no-referrer"` sets none (the caller's `unsafe-url` rules on); `origin, bogus` sets `origin`.
 * - Each referrer policy, through a `Request`, a chain and ky, across A → A → B: what each hop carries is the
 *   standard's (the full URL without fragment same-origin where allowed, the origin or nothing cross-origin),
 *   where bare fetch sends the origin under `no-referrer-when-downgrade`, `origin-when-cross-origin` and
 *   `no-referrer` to the same origin and nothing under `same-origin`.
 * - A half-open B (one probe slot) reached by a hop from A: a 429 or a reset re-opens it, a 404 or a redirect
 *   onward closes it, the attempt timeout re-opens it; `timeout.total` and the caller's abort free the slot
 *   (B still half-open, and the next direct call to B is let through).
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { type EndpointRequest, fallback } from "../../src/fallback/index.ts";
import { createResilience, type RedirectEvent } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };

function go(h: Hit, status: number, location: string, extra: Record<string, string | string[]> = {}) {
  h.res.statusCode = status;
  h.res.setHeader("location", location);
  for (const [name, value] of Object.entries(extra)) h.res.setHeader(name, value);
  h.res.end();
}

/** Answers `status` with `body`. */
function answer(h: Hit, status: number, body = ""): void {
  h.res.statusCode = status;
  h.res.end(body);
}

function stream(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
      c.close();
    },
  });
}

/** What a call settled with, as one line: status, url, redirected, type; or the error and its cause. */
function outcome(p: Promise<Response>): Promise<string> {
  return p.then(
    (r) => `${r.status} ${r.url} ${r.redirected} ${r.type}`,
    (e: Error & { cause?: Error }) => `${e.name}: ${e.cause?.name ?? ""} ${e.cause?.message ?? e.message}`,
  );
}

function chainOf(extra: Record<string, unknown> = {}) {
  return fallback([
    {
      name: "c",
      ...extra,
      endpoints: [
        { name: "p", url: `${a.base}/v1` },
        { name: "q", url: `${a.base}/v2` },
      ],
    },
  ]);
}

describe("the result of a followed redirect, on every path", () => {
  it("says redirected, the last hop's url and type cors after a hop to another origin", async () => {
    a.on((h) => (h.path.includes("/r") ? go(h, 302, `${b.base}/f`) : h.res.end("x")));
    const deg = createResilience({ retry: false, degradation: degradation({ levelHeader: "x-level" }) });
    deg.degradation?.setLevel("medium");
    const calls: Record<string, () => Promise<Response>> = {
      string: () => createResilience({ retry: false }).fetch(`${a.base}/r`),
      url: () => createResilience({ retry: false }).fetch(new URL(`${a.base}/r`)),
      request: () => createResilience({ retry: false }).fetch(new Request(`${a.base}/r`, { redirect: "follow" })),
      chain: () => createResilience({ retry: false, fallback: chainOf() }).fetch(`${a.base}/v1/r`),
      hedge: () =>
        createResilience({ retry: false, fallback: chainOf({ hedge: { delay: 1_000 } }) }).fetch(`${a.base}/v1/r`),
      degradation: () => deg.fetch(`${a.base}/r`),
      ky: () => createClient({ resilience: { retry: false } })(`${a.base}/r`),
    };
    for (const [path, call] of Object.entries(calls)) {
      expect(await outcome(call()), path).toBe(`200 ${b.base}/f true cors`);
    }
    // A call whose first attempt A declined: the retry's redirect gives the same marks.
    let n = 0;
    a.on((h) => (n++ === 0 ? answer(h, 503) : go(h, 302, `${b.base}/f`)));
    const retried = createResilience({ retry: { ...fast, maxAttempts: 2 } }).fetch(`${a.base}/r`);
    expect(await outcome(retried)).toBe(`200 ${b.base}/f true cors`);
  });

  it("takes localhost for another origin than 127.0.0.1 on the same port: only the allowlist goes", async () => {
    const other = `http://localhost:${a.port}`;
    a.on((h) => (h.path === "/r" ? go(h, 302, `${other}/f`) : h.res.end("x")));
    const layer = createResilience({ retry: false, crossOriginHeaders: ["X-Trace"] });
    const events: RedirectEvent[] = [];
    layer.on("redirect", (e) => events.push(e));
    const res = await layer.fetch(`${a.base}/r`, {
      headers: {
        authorization: "Bearer s",
        "x-api-key": "k",
        cookie: "c=1",
        "proxy-authorization": "Basic p",
        "x-custom": "v",
        "x-trace": "t",
        accept: "text/plain",
        "idempotency-key": "i",
      },
    });
    expect(await outcome(Promise.resolve(res))).toBe(`200 ${other}/f true cors`);
    const [first, second] = a.hits as [Hit, Hit];
    expect(first.headers.authorization).toBe("Bearer s");
    expect(second.headers.host).toBe(`localhost:${a.port}`);
    for (const gone of ["authorization", "x-api-key", "cookie", "proxy-authorization", "x-custom"]) {
      expect(second.headers[gone], gone).toBeUndefined();
    }
    expect(second.headers).toMatchObject({ "x-trace": "t", accept: "text/plain", "idempotency-key": "i" });
    expect(events).toEqual([
      {
        from: `${a.base}/r`,
        to: `${other}/f`,
        status: 302,
        crossOrigin: true,
        dropped: ["authorization", "cookie", "proxy-authorization", "x-api-key", "x-custom"],
      },
    ]);
  });
});

describe("bodies: what a hop may send again", () => {
  async function* iterable() {
    yield new TextEncoder().encode("it");
  }
  const typeError = (status: number, what: RegExp) =>
    new RegExp(
      `^(Retry|Fallback)ExhaustedError: TypeError resilience\\.fetch: cannot follow a ${status} redirect .*${what.source}`,
    );

  for (const status of [301, 302, 303, 307]) {
    it(`${status}: larger than maxReplayBytes, async iterables, a Request on a stream, a transform's body`, async () => {
      a.on((h) => (h.path === "/r" ? go(h, status, `${b.base}/f`) : h.res.end("x")));
      const layer = createResilience({ retry: false, maxReplayBytes: 8 });
      const landed = `200 ${b.base}/f true cors`;
      const limit = /its body is larger than maxReplayBytes \(8 bytes\), sent once/;

      const big = await outcome(layer.fetch(`${a.base}/r`, { method: "POST", body: "x".repeat(20) }));
      expect(big).toMatch(status === 307 ? typeError(status, limit) : new RegExp(`^${landed}$`));

      const bigPut = await outcome(layer.fetch(`${a.base}/r`, { method: "PUT", body: "x".repeat(20) }));
      expect(bigPut).toMatch(status === 303 ? new RegExp(`^${landed}$`) : typeError(status, limit));

      const iter = await outcome(
        createResilience({ retry: false }).fetch(`${a.base}/r`, {
          method: "POST",
          body: iterable() as never,
          duplex: "half",
        } as RequestInit),
      );
      expect(iter).toMatch(status === 303 ? new RegExp(`^${landed}$`) : typeError(status, /its body is a stream/));

      const onStream = new Request(`${a.base}/r`, {
        method: "POST",
        body: stream("y".repeat(30)),
        duplex: "half",
      } as RequestInit);
      const fromRequest = await outcome(layer.fetch(onStream));
      expect(fromRequest).toMatch(status === 307 ? typeError(status, limit) : new RegExp(`^${landed}$`));

      const replaced = fallback([
        {
          name: "c",
          endpoints: [
            {
              name: "p",
              url: `${a.base}/v1`,
              transform: (req: EndpointRequest) => ({ ...req, url: `${a.base}/r`, body: "replaced" }),
            },
          ],
        },
      ]);
      const transformed = await outcome(
        createResilience({ retry: false, fallback: replaced }).fetch(`${a.base}/v1/x`, {
          method: "POST",
          body: stream("s"),
          duplex: "half",
        } as RequestInit),
      );
      expect(transformed).toMatch(
        status === 307
          ? typeError(status, /given as a stream or larger than maxReplayBytes/)
          : new RegExp(`^${landed}$`),
      );

      // Whatever followed reached B as a bodiless GET; a 307 sent B nothing.
      const followed = status === 303 ? 5 : status === 307 ? 0 : 3;
      expect(b.hits.map((h) => `${h.method} ${h.body}`)).toEqual(Array(followed).fill("GET "));
    });
  }
});

describe("after a redirect: retries", () => {
  for (const [name, init, attempts] of [
    ["GET", {}, 3],
    ["keyless POST", { method: "POST", body: "job" }, 2],
    ["keyed POST", { method: "POST", body: "job", headers: { "idempotency-key": "k1" } }, 3],
    ["PUT", { method: "PUT", body: "job" }, 3],
  ] as const) {
    it(`${name}: a hop whose connection resets is retried only when idempotent`, async () => {
      let n = 0;
      a.on((h) => (n++ === 0 ? answer(h, 503, "busy") : go(h, 307, `${b.base}/f`)));
      b.on((h) => h.res.socket?.destroy());
      const layer = createResilience({ retry: { ...fast, maxAttempts: 3 } });
      expect(await outcome(layer.fetch(`${a.base}/r`, init as RequestInit))).toBe(
        "RetryExhaustedError: TypeError fetch failed",
      );
      expect(a.hits.length).toBe(attempts);
      expect(b.hits.length).toBe(attempts - 1);
    });
  }

  it("a final 503 from the hop's host settles a keyless POST with it, not sent again", async () => {
    let n = 0;
    a.on((h) => (n++ === 0 ? answer(h, 503, "busy") : go(h, 307, `${b.base}/f`)));
    b.on((h) => {
      h.res.statusCode = 503;
      h.res.end("b busy");
    });
    const layer = createResilience({ retry: { ...fast, maxAttempts: 3 } });
    expect(await outcome(layer.fetch(`${a.base}/r`, { method: "POST", body: "job" }))).toBe(
      `503 ${b.base}/f true cors`,
    );
    expect([a.hits.length, b.hits.length]).toEqual([2, 1]);
  });
});

describe("integrity across hops", () => {
  const body = "hello";
  const digest = (alg: string) => createHash(alg).update(body).digest("base64");
  const url64 = (s: string) => s.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  it("is checked on the final answer, the strongest algorithm named, on every path", async () => {
    a.on((h) => (h.path.includes("/r") ? go(h, 302, "/f") : h.res.end(body)));
    const cases: Array<[string, boolean]> = [
      [`sha256-${digest("sha256")}`, true],
      [`sha256-WRONG sha512-${digest("sha512")}`, true],
      [`sha256-${digest("sha256")} sha512-WRONG`, false],
      [`sha512-${url64(digest("sha512"))}`, true],
      [`SHA256-${digest("sha256")}`, true],
      ["sha384-AAAA", false],
    ];
    for (const [integrity, passes] of cases) {
      const label = integrity.slice(0, 16);
      const bare = await outcome(fetch(`${a.base}/r`, { integrity }));
      expect(bare.startsWith("200"), `bare ${label}`).toBe(passes);
      // Each call is read at once: a rejection waiting for its turn in the loop
      // below would be reported as unhandled.
      const paths = {
        string: outcome(createResilience({ retry: false }).fetch(`${a.base}/r`, { integrity })),
        request: outcome(createResilience({ retry: false }).fetch(new Request(`${a.base}/r`, { integrity }))),
        chain: outcome(
          createResilience({
            retry: false,
            fallback: fallback([{ name: "c", endpoints: [{ name: "p", url: `${a.base}/v1` }] }]),
          }).fetch(`${a.base}/v1/r`, { integrity }),
        ),
        ky: outcome(createClient({ resilience: { retry: false } })(`${a.base}/r`, { integrity })),
      };
      for (const [path, call] of Object.entries(paths)) {
        const out = await call;
        if (passes) expect(out, `${path} ${label}`).toBe(`200 ${a.base}/f true basic`);
        else
          expect(out, `${path} ${label}`).toMatch(
            /^(Retry|Fallback)ExhaustedError: TypeError resilience\.fetch: integrity mismatch for http:\/\/127\.0\.0\.1:\d+\/f$/,
          );
      }
    }
  });
});

describe("a Request's own properties and the referrer", () => {
  it("hands every hop the Request's cache, credentials, keepalive, mode and referrerPolicy, redirect manual", async () => {
    a.on((h) => (h.path === "/r" ? go(h, 307, "/f") : h.res.end("x")));
    const seen: RequestInit[] = [];
    const layer = createResilience({
      retry: false,
      fetch: (input, init) => {
        seen.push({ ...init });
        return fetch(input, init);
      },
    });
    const request = new Request(`${a.base}/r`, {
      cache: "no-store",
      credentials: "omit",
      keepalive: true,
      referrerPolicy: "origin",
      mode: "same-origin",
      method: "POST",
      body: "b",
    });
    expect((await layer.fetch(request)).status).toBe(200);
    expect(seen).toHaveLength(2);
    for (const init of seen) {
      expect(init).toMatchObject({
        cache: "no-store",
        credentials: "omit",
        keepalive: true,
        referrerPolicy: "origin",
        mode: "same-origin",
        redirect: "manual",
      });
    }
    expect(a.hits.map((h) => `${h.method} ${h.path} ${h.body}`)).toEqual(["POST /r b", "POST /f b"]);
  });

  it("hands a transport of one's own each worked-out referrer with referrerPolicy unsafe-url", async () => {
    a.on((h) => (h.path === "/r" ? go(h, 302, `${b.base}/f`) : h.res.end("x")));
    const seen: RequestInit[] = [];
    const layer = createResilience({
      retry: false,
      fetch: (input, init) => {
        seen.push({ ...init });
        return fetch(input, init);
      },
    });
    await layer.fetch(`${a.base}/r`, { referrer: `${a.base}/page?s=1#f` });
    expect(seen.map((i) => [i.referrer, i.referrerPolicy])).toEqual([
      [`${a.base}/page?s=1`, "unsafe-url"],
      [`${a.base}/`, "unsafe-url"],
    ]);
  });

  it("reads several Referrer-Policy lines as one value; a quoted one sets none", async () => {
    const full = () => `${a.base}/page?s=1`;
    const cases: Array<[string[], () => string | undefined]> = [
      [["", "origin"], () => `${a.base}/`],
      [["no-referrer", ""], () => undefined],
      [['"no-referrer"'], full],
      [["origin, bogus"], () => `${a.base}/`],
      [["unsafe-url", "no-referrer"], () => undefined],
    ];
    for (const [lines, expected] of cases) {
      a.reset();
      b.reset();
      a.on((h) => (h.path.startsWith("/r") ? go(h, 302, `${b.base}/f`, { "referrer-policy": lines }) : h.res.end("x")));
      await createResilience({ retry: false }).fetch(`${a.base}/r?q=1`, {
        referrer: `${a.base}/page?s=1#frag`,
        referrerPolicy: "unsafe-url",
      });
      expect(a.hits[0]?.headers.referer, JSON.stringify(lines)).toBe(full());
      expect(b.hits[0]?.headers.referer, JSON.stringify(lines)).toBe(expected());
    }
  });

  it("works out each policy's referrer on every hop, through a Request, a chain and ky", async () => {
    const full = () => `${a.base}/page?secret=1`;
    const origin = () => `${a.base}/`;
    const none = () => undefined;
    // [policy, A's two hops, B's]: A → A (302) → B (307), the referrer on A's origin.
    const table: Array<[ReferrerPolicy, () => string | undefined, () => string | undefined]> = [
      ["", full, origin],
      ["no-referrer-when-downgrade", full, full],
      ["same-origin", full, none],
      ["origin-when-cross-origin", full, origin],
      ["strict-origin", origin, origin],
      ["unsafe-url", full, full],
      ["origin", origin, origin],
      ["no-referrer", none, none],
    ];
    const route = (h: Hit) =>
      h.path === "/r" ? go(h, 302, "/s") : h.path === "/s" ? go(h, 307, `${b.base}/f`) : h.res.end("x");
    for (const [policy, home, away] of table) {
      const referrer = `${a.base}/page?secret=1#frag`;
      const paths: Record<string, () => Promise<Response>> = {
        request: () =>
          createResilience({ retry: false }).fetch(new Request(`${a.base}/r`, { referrer, referrerPolicy: policy })),
        chain: () =>
          createResilience({
            retry: false,
            fallback: fallback([{ name: "c", endpoints: [{ name: "p", url: a.base }] }]),
          }).fetch(`${a.base}/r`, { referrer, referrerPolicy: policy }),
        ky: () => createClient({ resilience: { retry: false } })(`${a.base}/r`, { referrer, referrerPolicy: policy }),
      };
      for (const [path, call] of Object.entries(paths)) {
        a.reset();
        b.reset();
        a.on(route);
        expect((await call()).status).toBe(200);
        const label = `${path} ${policy || "(default)"}`;
        expect([...a.hits.map((h) => h.headers.referer), ...b.hits.map((h) => h.headers.referer)], label).toEqual([
          home(),
          home(),
          away(),
        ]);
      }
    }
  });
});

describe("a hop to a half-open host takes its probe slot", () => {
  const T0 = Date.UTC(2026, 0, 1);
  const oneProbe = {
    failureThreshold: 1,
    successThreshold: 1,
    timeout: 10_000,
    halfOpenMaxCalls: 1,
    failureRate: undefined,
  } as never;

  async function halfOpenB(extra: object = {}) {
    const clock = new TestClock(T0);
    const layer = createResilience({ clock, retry: false, breaker: oneProbe, ...extra });
    b.on((h) => {
      h.res.statusCode = 503;
      h.res.end("down");
    });
    await (await layer.fetch(`${b.base}/trip`)).text();
    await clock.advance(10_001);
    expect(layer.health().breakers[b.host]?.state).toBe("half_open");
    a.on((h) => (h.path === "/r" ? go(h, 307, `${b.base}/x`) : h.res.end("home")));
    return { clock, layer, stateOfB: () => layer.health().breakers[b.host]?.state };
  }

  for (const [name, reply, state] of [
    ["a 429 re-opens it", (h: Hit) => answer(h, 429, "x"), "open"],
    ["a reset re-opens it", (h: Hit) => h.res.socket?.destroy(), "open"],
    ["a 404 closes it", (h: Hit) => answer(h, 404, "x"), "closed"],
    ["a redirect onward closes it", (h: Hit) => go(h, 302, `${a.base}/home`), "closed"],
  ] as const) {
    it(name, async () => {
      const { layer, stateOfB } = await halfOpenB();
      b.on(reply);
      await outcome(layer.fetch(`${a.base}/r`));
      expect(b.hits.map((h) => h.path)).toEqual(["/trip", "/x"]);
      expect(stateOfB()).toBe(state);
    });
  }

  it("the attempt timeout re-opens it", async () => {
    const { layer, clock, stateOfB } = await halfOpenB({ timeout: { attempt: 1_000 } });
    b.on(() => {});
    const call = outcome(layer.fetch(`${a.base}/r`));
    await b.nth(2);
    await clock.advance(1_001);
    expect(await call).toMatch(/^TimeoutError/);
    expect(stateOfB()).toBe("open");
  });

  for (const how of ["timeout.total", "the caller's abort"] as const) {
    it(`${how} frees the slot: B stays half-open and the next call to it goes`, async () => {
      const { layer, clock, stateOfB } = await halfOpenB(how === "timeout.total" ? { timeout: { total: 1_000 } } : {});
      b.on(() => {});
      const controller = new AbortController();
      const call = layer.fetch(`${a.base}/r`, { signal: controller.signal }).catch((e: unknown) => e);
      await b.nth(2);
      if (how === "timeout.total") await clock.advance(1_001);
      else controller.abort(new Error("bye"));
      const error = await call;
      if (how === "timeout.total") expect(error).toMatchObject({ name: "TimeoutError", phase: "total" });
      else expect(error).toEqual(new Error("bye"));
      expect(stateOfB()).toBe("half_open");
      b.on((h) => h.res.end("ok"));
      expect((await layer.fetch(`${b.base}/direct`)).status).toBe(200);
      expect(stateOfB()).toBe("closed");
    });
  }
});
