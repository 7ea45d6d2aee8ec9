/**
 * Outside-in attack on the thirty-first session's fixes, down the paths they may have missed: a chain that rejects
 * ("stopped after …, which may have processed the request") instead of giving an earlier 503; an answer whose body
 * `validate` stopped reading, given as a piped `Response`, and no unhandled rejection at an abort or
 * `timeout.total`; rebuilt responses keeping `url` and `redirected` on `clone()`; a URL percent-encoded into a
 * call's path cut in events and `debugInfo()`; a `FallbackExhaustedError`'s cause being the endpoint tried last.
 * Docs: CHANGELOG.md (Unreleased, Fixed: "A fallback chain no longer answers with an earlier endpoint's 503 … the
 * 503 told the caller, or a layer wrapping this one, to send the paid job again"; "A chain answer whose body
 * `validate` stopped reading … no longer makes an abort or `timeout.total` raise an unhandled rejection … Such an
 * answer, given as the chain's last one, is a response piping its body on"; "keeps its `url` and `redirected` on
 * every `clone()`"; "A URL percent-encoded into a call's own URL (a callback in its path) is cut in events and
 * `debugInfo()`"); SECURITY.md ("A paid request is never processed twice"; "No secret in events, errors, `health()`
 * or `debugInfo()` | … a URL percent-encoded into text or into a URL's path, `https%3A%2F%2F…`, is cut as a plain
 * one"); docs/fallback.md ("Moving on follows the rule of a retry …: a POST without an `Idempotency-Key` goes to
 * the next endpoint only when it surely was not processed (429, 503, connection refused, DNS or TLS failure, an
 * open breaker) … so a fallback provider never receives a paid job twice"); docs/retry.md ("Neither bounds reading
 * the body of the response you get: that read is yours, under your own signal"; "the signal such a call hands its
 * transport follows yours after the call settled, as fetch's own does, so aborting then still cancels a body being
 * read"); src/core/errors.ts JSDoc (`cause` "is the error of the endpoint tried last").
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `resilientProxy` (./cloudflare, run
 * in Node over plain fetch), `createClient` (./ky); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts);
 * `watchUnhandled` (test/helpers/unhandled.ts).
 * Paths: chain inside a chain (a layer whose transport is a layer with a chain), outer retry over an inner chain,
 * hedge, redirect (302 between two servers), `integrity`, `Request` input, the proxy, the ky client, events and
 * `debugInfo()`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a layer's own error heard by an outer chain is judged by the failure it ended on, never by its message's words; a URL escaped as a path segment, or scheme-relative and encoded, is cut; the piped answer's read ends at the caller's abort):
 * 1. docs/fallback.md "a POST without an `Idempotency-Key` goes to the next endpoint only when it surely was not
 *    processed … so a fallback provider never receives a paid job twice" (and CHANGELOG: the fix was for "a layer
 *    wrapping this one"). Observed: an outer layer's chain `[p, q, r]` whose q is a layer with a chain named
 *    "certificates" (`primary` 503, `backup` took the POST then hung past `timeout.attempt`) gets the inner
 *    `FallbackExhaustedError` "stopped after "backup", which may have processed the request" and moves on to r,
 *    which receives the job again (the call resolves with r's 200). With the chain named "images" it stops, as
 *    documented. Mechanism: the outer chain judges q's error with `maySendAgain` → `failureReason`
 *    (src/http/send/failure-reason.ts `platformReason`): no platform code in the error's cause chain (its cause is
 *    the `TimeoutError`), so it reads the messages, and the inner error's message holds the chain's name in
 *    quotes: `"certificates"` matches the "TLS failure" words (`certificates?|tls|ssl`), which say "not sent".
 * 2. The same sentence. Observed: where a runtime gives messages, not codes (Deno, workerd; here a transport that
 *    throws Deno's "tcp connect error: Connection refused" for the refused host), an inner chain whose first
 *    endpoint was refused and whose second took the POST and timed out rejects "every endpoint … failed (p: …
 *    Connection refused …; q: attempt timeout …)"; the outer chain reads "connection refused" in that message
 *    (the words of an endpoint that was NOT the one that may have processed it) and moves on: r receives the
 *    job a second time. Same mechanism: the message of a `FallbackExhaustedError` lists every endpoint's error,
 *    and `platformReason` reads it as if it were one failure.
 * 3. SECURITY.md "a URL percent-encoded … into a URL's path … is cut as a plain one" (CHANGELOG: "cut in events
 *    and `debugInfo()`"). Observed: a callback URL escaped as a path segment by Go's `url.PathEscape` (or any
 *    RFC 3986 segment encoder, which leaves `:`, `@` and `=` raw: `https:%2F%2Fu:pw@evil.example%2Fx%3Fkey=…`)
 *    reaches `request` events' `url` and `debugInfo().recentErrors` whole, password and key. Mechanism: the pass
 *    for encoded URLs (src/core/redact-url.ts `ENCODED_URL`) looks only for a word with an encoded colon
 *    (`%3A`); the plain pass reads the event's URL as one parsed URL, whose authority has no userinfo. The same
 *    URL fully encoded (`https%3A%2F%2F…`), in lower-case hex, with `@` raw, or after `;cb=`, is cut.
 * 4. docs/retry.md "the signal such a call hands its transport follows yours after the call settled, as fetch's
 *    own does, so aborting then still cancels a body being read" (and "that read is yours, under your own
 *    signal"). Observed: the answer given piped (its body `validate` stopped reading, `timeout.attempt` 40 ms)
 *    whose upstream finished sending after the answer was given: once the caller aborts, `text()` never settles
 *    (neither the body nor a rejection), through the layer and through `resilientProxy` (the incoming request's
 *    signal). A plain answer of the same chain (no `validate`) rejects at once, as fetch's own does.
 *    Mechanism: `answerToGive` (src/fallback/validate-response.ts:92) gives `response.body.pipeThrough(new
 *    TransformStream())`; at the abort undici's cancel of the locked body is refused, and the data it had not yet
 *    handed to the stream never comes: plain Node 22 does the same with `fetch` and `pipeThrough`. With a server
 *    still sending at the abort the read rejects with the caller's reason (held, last session's test).
 *
 * Held (plain `it`):
 * - Fix 1: an outer chain over an inner chain of an ordinary name stops ("stopped after "q"", r never hit); an
 *   outer plain layer with retries does not send the inner `FallbackExhaustedError` again.
 * - Fix 2: the piped answer read after `timeout.total` passed reads whole, with no unhandled rejection: the only
 *   endpoint, p's answer after q was refused, a hedge's last answer, through ky's client; a caller's abort right
 *   after the answer (ky, a `Request` input's own signal) rejects its read with the caller's reason.
 * - Fix 3: after a 302 the answer, its clone and a clone's clone keep `url` and `redirected`; so do an `integrity`
 *   checked answer's clone and ky's `afterResponse` hook.
 * - Fix 5: in a hedge (p slow, q refused first), `cause` is `errors.p`, the endpoint that failed last.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { type FallbackEndpoint, fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  type FallbackExhaustedError,
  type FetchLike,
  getResilienceInfo,
  type ResilienceOptions,
  type StandardSchemaLike,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
const d = httpUpstream();
serveDuringFile(a, b, c, d);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const busy = (h: Hit) => {
  h.res.statusCode = 503;
  h.res.end("busy");
};
const hang = (_h: Hit) => {};
const post = { method: "POST", body: '{"prompt":"cat"}' };
const ctx = { waitUntil: (p: Promise<unknown>) => void p.catch(() => {}) };

/** What the call settled with: the status and endpoint of a response, or an error's name and message. */
async function outcome(call: Promise<Response>) {
  try {
    const res = await call;
    return { status: res.status, endpoint: getResilienceInfo(res)?.endpoint, body: await res.text() };
  } catch (error) {
    return { error: (error as Error).name, message: (error as Error).message };
  }
}

// ---------------------------------------------------------------------------

describe("fix 1 inside a chain: an inner chain's 'may have processed' heard by the outer chain", () => {
  /** An inner layer whose chain starts at b: "primary" (b) answers 503, "backup" (c) takes the POST and hangs. */
  function nested(innerName: string, innerFetch?: FetchLike, firstInner = b.base) {
    b.on(busy);
    c.on(hang);
    a.on(busy);
    const inner = createResilience({
      ...(innerFetch ? { fetch: innerFetch } : {}),
      retry: { maxAttempts: 1 },
      // Long enough for the hanging POST to reach c on a loaded machine (a mutation run's dry run missed it at 60 ms).
      timeout: { attempt: 400 },
      fallback: fallback([
        {
          name: innerName,
          endpoints: [
            { name: "primary", url: `${firstInner}/v1` },
            { name: "backup", url: `${c.base}/v1` },
          ],
        },
      ]),
    });
    const outer = createResilience({
      fetch: inner.fetch,
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "outer",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${firstInner}/v1` },
            { name: "r", url: `${d.base}/v1` },
          ],
        },
      ]),
    });
    return { inner, outer };
  }
  const stoppedAfterQ = {
    error: "FallbackExhaustedError",
    message: expect.stringContaining('stopped after "q", which may have processed the request'),
  };

  it("an inner chain of an ordinary name: the outer chain stops after q, r never receives the job", async () => {
    const { outer } = nested("images");
    expect(await outcome(outer.fetch(`${a.base}/v1/jobs`, post))).toEqual(stoppedAfterQ);
    expect(c.hits.map((h) => h.body)).toEqual([post.body]);
    expect(d.hits).toHaveLength(0);
  });

  it("an outer plain layer with retries does not send the inner chain's error again", async () => {
    b.on(busy);
    c.on(hang);
    const inner = createResilience({
      retry: { maxAttempts: 1 },
      // Long enough for the hanging POST to reach c on a loaded machine (a mutation run's dry run missed it at 60 ms).
      timeout: { attempt: 400 },
      fallback: fallback([
        {
          name: "certificates",
          endpoints: [
            { name: "primary", url: `${b.base}/v1` },
            { name: "backup", url: `${c.base}/v1` },
          ],
        },
      ]),
    });
    const outer = createResilience({ fetch: inner.fetch, retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 2 } });
    expect(await outcome(outer.fetch(`${b.base}/v1/jobs`, post))).toMatchObject({
      error: "FallbackExhaustedError",
      message: expect.stringContaining('stopped after "backup"'),
    });
    expect(c.hits).toHaveLength(1);
  });

  it("an inner chain named 'certificates': the outer chain stops after q, r never receives the job", async () => {
    const { outer } = nested("certificates");
    const settled = await outcome(outer.fetch(`${a.base}/v1/jobs`, post));
    expect(c.hits.map((h) => h.body)).toEqual([post.body]);
    expect({ settled, r: d.hits.length }).toEqual({ settled: stoppedAfterQ, r: 0 }); // observed: r's 200, r hit once
  });

  it("an inner chain whose refused first endpoint's error text says 'Connection refused' (Deno's words): the outer chain stops", async () => {
    const refused = await refusedOrigin();
    // Deno's and workerd's errors carry no code: only their message says what happened.
    const denoLike: FetchLike = (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.startsWith(refused))
        return Promise.reject(
          new TypeError(
            `error sending request for url (${url}): client error (Connect): tcp connect error: Connection refused (os error 111)`,
          ),
        );
      return fetch(input, init);
    };
    const { outer } = nested("jobs", denoLike, refused);
    const settled = await outcome(outer.fetch(`${a.base}/v1/jobs`, post));
    expect(c.hits.map((h) => h.body)).toEqual([post.body]);
    expect({ settled, r: d.hits.length }).toEqual({ settled: stoppedAfterQ, r: 0 }); // observed: r's 200, r hit once
  });
});

// ---------------------------------------------------------------------------

const okSchema: StandardSchemaLike = {
  "~standard": { version: 1, vendor: "test", validate: (value: unknown) => ({ value }) },
};
const HEAD = '{"ok": true, "pad": "';
const WHOLE = `${HEAD}zz"}`;
/** 200 with the head at once, the rest after `after` ms (after `validate` gave up at 40 ms). */
const lateTail =
  (after = 100) =>
  (h: Hit) => {
    h.res.writeHead(200, { "content-type": "application/json" });
    h.res.write(HEAD);
    setTimeout(() => {
      if (!h.res.destroyed) h.res.end('zz"}');
    }, after);
  };
const within = <T>(p: Promise<T>, ms: number): Promise<T | "never settled"> =>
  Promise.race([p, sleep(ms).then(() => "never settled" as const)]);
function chainLayer(endpoints: FallbackEndpoint[], extra: ResilienceOptions = {}, hedge?: { delay: number }) {
  return createResilience({
    retry: { maxAttempts: 1 },
    timeout: { attempt: 40 },
    ...extra,
    fallback: fallback([{ name: "c", ...(hedge ? { hedge } : {}), endpoints }]),
  });
}
const p = (): FallbackEndpoint => ({ name: "p", url: `${a.base}/v1`, validate: okSchema });

describe("fix 2: the piped answer under timeout.total and aborts", () => {
  it("read after timeout.total passed: whole, nothing unhandled (only endpoint; p after q refused; hedge; ky)", async () => {
    const refused = await refusedOrigin();
    a.on(lateTail());
    b.on((h) => setTimeout(() => busy(h), 80));
    const total = { timeout: { attempt: 40, total: 150 } };
    const calls: Array<() => Promise<Response>> = [
      () => chainLayer([p()], total).fetch(`${a.base}/v1/x`, post),
      () => chainLayer([p(), { name: "q", url: `${refused}/v1` }], total).fetch(`${a.base}/v1/x`, post),
      () =>
        chainLayer([p(), { name: "q", url: `${b.base}/v1`, validate: okSchema }], total, { delay: 10 }).fetch(
          `${a.base}/v1/x`,
        ),
      () => createClient({ resilience: chainLayer([p()], total) }).post(`${a.base}/v1/x`, { body: "{}" }),
    ];
    for (const call of calls) {
      const { value, unhandled } = await watchUnhandled(async () => {
        const res = await call();
        const endpoint = getResilienceInfo(res)?.endpoint;
        await sleep(200);
        return { endpoint, text: await res.text() };
      });
      expect(value).toEqual({ endpoint: "p", text: WHOLE });
      expect(unhandled).toEqual([]);
    }
  });

  it("a caller's abort right after the answer (ky's signal, a Request input's own): the caller's reason", async () => {
    for (const via of ["ky", "Request"] as const) {
      a.on(lateTail(200));
      const caller = new AbortController();
      const reason = new Error("caller gave up");
      const l = chainLayer([p()]);
      const { value, unhandled } = await watchUnhandled(async () => {
        const res =
          via === "ky"
            ? await createClient({ resilience: l }).post(`${a.base}/v1/x`, { body: "{}", signal: caller.signal })
            : await l.fetch(new Request(`${a.base}/v1/x`, { ...post, signal: caller.signal }));
        caller.abort(reason);
        await sleep(20);
        return await rejection(res.text());
      });
      expect(value).toBe(reason);
      expect(unhandled).toEqual([]);
    }
  });

  it("(control) a plain answer of the same chain: a read after the caller's abort settles at once", async () => {
    a.on(lateTail());
    const caller = new AbortController();
    const res = await chainLayer([{ name: "p", url: `${a.base}/v1` }]).fetch(`${a.base}/v1/x`, {
      ...post,
      signal: caller.signal,
    });
    await sleep(200);
    caller.abort(new Error("caller gave up"));
    await sleep(20);
    expect(
      await within(
        res.text().catch((e: unknown) => e),
        500,
      ),
    ).toBeInstanceOf(Error);
  });

  for (const via of ["layer", "proxy"] as const) {
    it(`${via}: the piped answer's read settles after the caller's abort that came once its body arrived`, async () => {
      a.on(lateTail());
      const caller = new AbortController();
      const { value, unhandled } = await watchUnhandled(async () => {
        let res: Response;
        if (via === "proxy") {
          const proxy = resilientProxy<object>({
            routes: [{ path: "/v1", chain: { name: "pc", endpoints: [p()] } }],
            resilience: { retry: { maxAttempts: 1 }, timeout: { attempt: 40 } },
          });
          res = await proxy.fetch(
            new Request("https://w.example/v1/jobs", { ...post, signal: caller.signal }),
            {},
            ctx,
          );
        } else {
          res = await chainLayer([p()]).fetch(`${a.base}/v1/x`, { ...post, signal: caller.signal });
        }
        await sleep(200);
        caller.abort(new Error("caller gave up"));
        await sleep(20);
        return await within(
          res.text().catch((e: unknown) => e),
          500,
        );
      });
      expect(unhandled).toEqual([]);
      expect(value).not.toBe("never settled"); // observed: "never settled"
    });
  }
});

// ---------------------------------------------------------------------------

describe("fix 3: rebuilt answers keep url and redirected on clone()", () => {
  it("a redirect followed, an integrity checked and ky's afterResponse hook", async () => {
    a.on((h) => {
      h.res.writeHead(302, { location: `${b.base}/t` });
      h.res.end();
    });
    b.on((h) => h.res.end("body"));
    const l = createResilience({ retry: { maxAttempts: 1 } });
    const to = `${b.base}/t`;
    const res = await l.fetch(`${a.base}/x`);
    const copy = res.clone();
    const copyOfCopy = copy.clone();
    expect([res, copy, copyOfCopy].map((r) => [r.url, r.redirected])).toEqual([
      [to, true],
      [to, true],
      [to, true],
    ]);
    expect(await copyOfCopy.text()).toBe("body");
    const integrity = `sha256-${createHash("sha256").update("body").digest("base64")}`;
    const checked = (await l.fetch(`${a.base}/x`, { integrity })).clone();
    expect([checked.url, checked.redirected, await checked.text()]).toEqual([to, true, "body"]);
    let hook: unknown[] = [];
    const kr = await createClient({
      resilience: l,
      hooks: {
        afterResponse: [
          ({ response }) => {
            hook = [response.url, response.redirected];
          },
        ],
      },
    }).get(`${a.base}/x`);
    expect([kr.url, kr.redirected, hook]).toEqual([to, true, [to, true]]);
  });
});

// ---------------------------------------------------------------------------

const secretUrl = "https://u:pw@evil.example/x?key=SECRET1";
const leaks = (value: unknown) => /SECRET1|pw(?:%(?:25)*40|@)|u(?:%(?:25)*3A|:)pw/i.test(JSON.stringify(value));
/** Go's `url.PathEscape`: a path segment's escape, which leaves `:`, `@`, `=`, `&`, `+` and `$` raw. */
const pathEscape = (s: string) =>
  s.replace(/[^A-Za-z0-9\-._~:@=&+$]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
const e500 = (h: Hit) => {
  h.res.statusCode = 500;
  h.res.end("x");
};

describe("fix 4: a URL encoded into a call's path, in events and debugInfo()", () => {
  it("cut: lower-case hex, '@' left raw, after ';cb='", async () => {
    a.on(e500);
    const l = createResilience({ retry: { maxAttempts: 1 } });
    const urls: string[] = [];
    l.on("request", (e) => urls.push(e.url));
    const forms = [
      encodeURIComponent(secretUrl).toLowerCase(),
      encodeURIComponent(secretUrl).replace("%40", "@"),
      `;cb=${encodeURIComponent(secretUrl)}`,
    ];
    for (const form of forms) await (await l.fetch(`${a.base}/cb/${form}/jobs`)).text();
    expect(urls).toHaveLength(3);
    expect(leaks(urls)).toBe(false);
    expect(leaks(l.debugInfo())).toBe(false);
  });

  it("cut: a URL escaped as a path segment (Go's url.PathEscape: ':' '@' '=' raw)", async () => {
    a.on(e500);
    const l = createResilience({ retry: { maxAttempts: 1 } });
    const urls: string[] = [];
    l.on("request", (e) => urls.push(e.url));
    const segment = pathEscape(secretUrl);
    expect(segment).toBe("https:%2F%2Fu:pw@evil.example%2Fx%3Fkey=SECRET1");
    await (await l.fetch(`${a.base}/cb/${segment}/jobs`)).text();
    expect(urls).toHaveLength(1);
    // observed: `${a.base}/cb/https:%2F%2Fu:pw@evil.example%2Fx%3Fkey=SECRET1/jobs`, in both
    expect({ events: leaks(urls), debugInfo: leaks(l.debugInfo().recentErrors) }).toEqual({
      events: false,
      debugInfo: false,
    });
  });
});

// ---------------------------------------------------------------------------

describe("fix 5: the cause in a hedge", () => {
  it("p slow then reset, q refused first: cause is errors.p, the endpoint that failed last", async () => {
    const refused = await refusedOrigin();
    a.on((h) => setTimeout(() => h.res.socket?.destroy(), 80));
    const l = chainLayer(
      [
        { name: "p", url: `${a.base}/v1` },
        { name: "q", url: `${refused}/v1` },
      ],
      { timeout: {} },
      { delay: 10 },
    );
    const error = (await rejection(l.fetch(`${a.base}/v1/x`))) as FallbackExhaustedError;
    expect(error.name).toBe("FallbackExhaustedError");
    expect(Object.keys(error.errors)).toEqual(["q", "p"]);
    expect(error.cause).toBe(error.errors.p);
  });
});
