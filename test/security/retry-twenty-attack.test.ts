/**
 * Outside-in attack on docs/retry.md (retry rules, statuses and methods, `Retry-After` and `maxRetryAfter`,
 * idempotency keys, the budget, timeouts, redirects, `execute`, `retry(fn)`, ky) and SECURITY.md's rows "A paid
 * request is never processed twice", "Server-supplied times are bounded" and "The caller's mistakes never trip a
 * breaker". How: public entries only (root, `./fallback`, `./ky`, `./testing`); `hostFetch` stubs answering a
 * `Retry-After` in every form RFC 9110 allows and a few it does not, read under a `TestClock` set to the moment
 * the date matters; real `node:http` servers on 127.0.0.1 (`httpUpstream`) behind the platform's own fetch
 * (`onPlatform`: breaker threshold 2, zero delays) for the caller's mistakes that fetch refuses and for a POST
 * on a plain call, a `Request` input with a body, a followed 307, a fallback chain and the ky client. No real
 * sleeps: zero delays, `maxAttempts`, or the TestClock, never advanced past a timer that would throw.
 * Not repeated: docs-numbers-attack (the budget's 1.1 and 1.125), redirects-seventeen-attack (hops, holds),
 * fixes-nineteen-attack (`onRetry`, `execute`'s hooks).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`; 6 now holds the call refused at once, a `TypeError`, with no timer left):
 * 1. docs/retry.md "anything else (`Mon 2`, `1.5`, an ISO date) falls back to the computed delay", SECURITY.md
 *    "`Retry-After` counts only as delay-seconds or an RFC 9110 date": `Retry-After: <NBSP>120` (U+00A0 is a
 *    byte a header may carry, obs-text, but no whitespace HTTP knows) is read as 120 s: the call settles at once
 *    and the host is held open 120 s. Cause: src/http/send/retry-after.ts:27, `value.trim()` strips JavaScript's
 *    whitespace (U+00A0, U+FEFF…), not only HTTP's (SP, HTAB).
 * 2. docs/retry.md "A `Retry-After` header on 429/503, in one of the forms RFC 9110 allows (…an HTTP date:
 *    IMF-fixdate…), replaces the computed delay": a leap second, `23:59:60` (RFC 9110 §5.6.7: "00:00:00 -
 *    23:59:60 (leap second)"), is read a minute early, as 23:59:00 of that day: at 23:59:00 the header says 60 s
 *    and the layer waits 0 (retried at once instead of settling past `maxRetryAfter` and holding the host).
 *    Cause: src/http/send/retry-after.ts:31, `Date.parse` (V8's legacy parser turns second 60 into 0 of the same
 *    minute).
 * 3. Same sentence, RFC 850 form: RFC 9110 §5.6.7 says a two-digit year that "appears to be more than 50 years
 *    in the future" is in the past century, so `01-Jan-60` read in 2025 is 2060; the layer reads 1960 (in the
 *    past: a delay of 0, retried at once, no hold). Cause: src/http/send/retry-after.ts:31, `Date.parse` maps
 *    50..99 to 19xx whatever the date is now.
 * 4. docs/retry.md "The caller's own mistakes reject at once with a `TypeError`, before any timer starts, and
 *    are never retried nor counted against the host's breaker", SECURITY.md "The caller's mistakes never trip a
 *    breaker": four `init` fields that fetch refuses at once, whatever the server, go to the transport, are
 *    retried as network errors and open a live host's breaker in two calls, nothing having reached it:
 *    `redirect: "bogus"`, `referrer: "http://[::"`, `duplex: "full"`, `window: 1`. Cause:
 *    src/http/request/check-request.ts:118, `CHECKED_FIELDS` builds a `Request` only for `cache`, `mode`,
 *    `credentials`, `referrerPolicy`, `priority` (and `redirect: "error"`); src/http/send/follow-redirects.ts:65
 *    hands any `redirect` other than "follow" to the transport untouched.
 * 5. Same sentences, an `init.signal` that is no AbortSignal (fetch: "member signal is not of type
 *    AbortSignal"): the transport is called anyway, then src/core/until-aborted.ts:19
 *    (`signal.addEventListener` is not a function) throws, which src/http/send/classify.ts:14 (`isNetworkError`) takes for a network
 *    error: counted against the host (threshold 1: open). With the platform's fetch the transport's own
 *    rejection is then left unhandled (nothing subscribed to it: the throw came first).
 * 6. SECURITY.md "Nothing outlives its call: every timer is cleared when its call settles": with that same
 *    signal and a retry left, src/core/sleep.ts:16-20 arms the backoff timer, then `signal.addEventListener` throws:
 *    the call settles (RetryExhaustedError) with the timer still armed, and when it fires its callback throws
 *    (`signal.removeEventListener` is not a function) outside any promise: an uncaught exception, which ends a
 *    Node process without a handler (seen with real timers while probing; here the TestClock is never advanced).
 *
 * Held (plain `it`):
 * - a `Retry-After` of 400 digits (Infinity seconds) and an IMF-fixdate in year 9999: the call resolves with the
 *   503 at once, the host held open exactly 24 hours;
 * - "A paid request is never processed twice": a POST answered 500 is sent once as a plain call, as a
 *   `Request` with a body, through ky, and down a chain (which does not move on); a POST followed through a 307
 *   to a 503 is not sent again; with `idempotencyKey: true` a `Request` input and a ky POST are retried once
 *   with the same key and the same bytes.
 *
 * Suspicious, not pinned (no sentence promises otherwise):
 * - a `Retry-After` date the RFC's grammar takes but no calendar holds is read by `Date.parse`'s rollover:
 *   `Wed, 31 Feb 2024` as 2 March, `24:00:00` as the next day's midnight, year `0000` as 2000;
 * - the hold's reason reads "Retry-After Infinity s on status 503" for a delay-seconds past 2^1024;
 * - `connect timeout` (ETIMEDOUT on connect, UND_ERR_CONNECT_TIMEOUT) counts as "not sent", so a POST is sent
 *   again after it, where docs/retry.md says "after … a timeout it is not sent again" (the list of "never
 *   reached the server" does not name it either); reasonable, but the sentence reads otherwise;
 * - an empty `Idempotency-Key: ""` makes a POST retried freely (`headerOf(…) !== null`), though a server
 *   reads it as no key.
 */
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { declinedWith } from "../helpers/declined.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { FAST, onPlatform, outcome } from "../helpers/platform-layer.ts";

const up = httpUpstream();
const spare = httpUpstream();
serveDuringFile(up, spare);

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('docs/retry.md "Retry": Retry-After is read only in the forms RFC 9110 allows, as they say', () => {
  it('"anything else … falls back to the computed delay": a Retry-After of NBSP + "120" is not 120 s', async () => {
    // U+00A0 before the digits: not delay-seconds (1*DIGIT), so the computed delay (0 here) applies and the call
    // is retried; the layer reads it as 120 s, settles at once and holds the host open.
    const seen = await declinedWith("\u00a0120", 0);
    expect(seen).toMatchObject({ sent: 2, delays: [0], state: "closed" });
  });

  it('"an HTTP date: IMF-fixdate … replaces the computed delay": a leap second (23:59:60) is 60 s away, not 0', async () => {
    // At 23:59:00 the header names 00:00:00 of the next day (RFC 9110 §5.6.7 allows second 60): 60 s, past
    // `maxRetryAfter` (30 s): the call settles with the 503 at once and the host is held until then.
    const now = Date.UTC(2016, 11, 31, 23, 59, 0);
    const seen = await declinedWith("Sat, 31 Dec 2016 23:59:60 GMT", now);
    expect(seen).toMatchObject({ sent: 1, delays: [], state: "open", until: Date.UTC(2017, 0, 1) });
  });

  it('"an HTTP date: … RFC 850 …": a two-digit year more than 50 years back is in this century (RFC 9110 §5.6.7)', async () => {
    // Read in 2025, `01-Jan-60` is 2060 (35 years ahead, not "more than 50": the RFC keeps it in this century):
    // far past `maxRetryAfter`, so the call settles at once and the host is held 24 h. The layer reads 1960: a
    // delay of 0, retried at once.
    const now = Date.UTC(2025, 0, 1);
    const seen = await declinedWith("Thursday, 01-Jan-60 00:00:00 GMT", now);
    expect(seen).toMatchObject({ sent: 1, delays: [], state: "open", until: now + DAY });
  });

  it('SECURITY.md "a host is held open for at most 24 hours whatever a header says": Infinity seconds, year 9999', async () => {
    const now = Date.UTC(2025, 0, 1);
    for (const header of ["9".repeat(400), "Fri, 31 Dec 9999 23:59:59 GMT"]) {
      const seen = await declinedWith(header, now);
      expect(seen).toEqual({ sent: 1, delays: [], status: 503, state: "open", until: now + DAY });
    }
  });
});

describe("docs/retry.md \"The caller's own mistakes … are never retried nor counted against the host's breaker\"", () => {
  // Each is refused by the platform's fetch at once, with a TypeError, before anything is sent.
  const refusedByFetch: Array<[string, RequestInit]> = [
    ['redirect: "bogus"', { redirect: "bogus" as RequestRedirect }],
    ['referrer: "http://[::"', { referrer: "http://[::" }],
    ['duplex: "full"', { method: "POST", body: "x", duplex: "full" } as RequestInit],
    ["window: 1", { window: 1 } as unknown as RequestInit],
  ];
  for (const [name, init] of refusedByFetch) {
    it(`${name}: fetch refuses it; two such calls leave a live host's breaker closed, nothing sent`, async () => {
      const { layer, entered } = onPlatform();
      const first = await layer.fetch(`${up.base}/jobs`, init).catch((e: unknown) => e);
      await layer.fetch(`${up.base}/jobs`, init).catch(() => undefined);
      expect(up.hits).toHaveLength(0);
      // Documented: a TypeError at once, the transport never asked, the breaker never told.
      expect(first).toBeInstanceOf(TypeError);
      expect(entered.n).toBe(0);
      expect(layer.health().breakers[up.host]?.state ?? "closed").toBe("closed");
    });
  }

  it("an init.signal that is no AbortSignal: a TypeError at once, the transport never called, nothing counted", async () => {
    let called = 0;
    const layer = createResilience({
      clock: new TestClock(0),
      retry: { ...FAST, maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      fetch: async () => {
        called++;
        return new Response("ok");
      },
    });
    const error = await layer.fetch("http://a.test/jobs", { signal: {} as AbortSignal }).then(
      () => "resolved",
      (e: unknown) => e,
    );
    // Observed: the transport is called, then RetryExhaustedError ("signal.addEventListener is not a function"),
    // and the host's breaker opens on the caller's mistake.
    expect(layer.health().breakers["a.test"]?.state ?? "closed").toBe("closed");
    expect(called).toBe(0);
    expect(error).toBeInstanceOf(TypeError);
  });

  it('SECURITY.md "every timer is cleared when its call settles": that signal with a retry left arms a timer that outlives the call', async () => {
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      retry: { ...FAST, maxAttempts: 2 },
      fetch: async () => new Response("ok"),
    });
    const settled = await layer.fetch("http://a.test/jobs", { signal: {} as AbortSignal }).then(
      () => "resolved",
      (e: unknown) => (e as Error).name,
    );
    // Observed: RetryExhaustedError, after the first attempt. Now refused before anything starts.
    expect(settled).toBe("TypeError");
    // Observed: one timer still armed on the clock; firing it throws from its callback (never advanced here).
    expect(clock.pending()).toBe(0);
  });
});

describe('SECURITY.md "A paid request is never processed twice", on every path a POST takes', () => {
  it("a POST answered 500 is sent once: a plain call, a Request with a body, ky, a chain; a 307 to a 503 is not followed twice", async () => {
    up.on((hit) =>
      hit.path.startsWith("/redirect")
        ? hit.res.writeHead(307, { location: `${spare.base}/t` }).end()
        : hit.res.writeHead(500).end("boom"),
    );
    spare.on((hit) => hit.res.writeHead(503).end("busy"));
    const { layer } = onPlatform({ retry: FAST });
    const seen: string[] = [];
    seen.push(await outcome(layer.fetch(`${up.base}/plain`, { method: "POST", body: "{}" })));
    seen.push(await outcome(layer.fetch(new Request(`${up.base}/request`, { method: "POST", body: "{}" }))));
    const api = createClient({ resilience: createResilience({ retry: FAST }) });
    seen.push(await api.post(`${up.base}/ky`, { json: {}, throwHttpErrors: false }).text());
    seen.push(
      await outcome(createResilience({ retry: FAST }).fetch(`${up.base}/redirect`, { method: "POST", body: "{}" })),
    );
    const chained = createResilience({
      retry: FAST,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: `${up.base}/v1` },
            { name: "spare", url: `${spare.base}/v1` },
          ],
        },
      ]),
    });
    seen.push(await outcome(chained.fetch(`${up.base}/v1/jobs`, { method: "POST", body: "{}" })));
    expect(seen).toEqual(["500 boom", "500 boom", "boom", "503 busy", "500 boom"]);
    expect(up.hits.map((hit) => `${hit.method} ${hit.path}`)).toEqual([
      "POST /plain",
      "POST /request",
      "POST /ky",
      "POST /redirect",
      "POST /v1/jobs",
    ]);
    expect(spare.hits.map((hit) => `${hit.method} ${hit.path}`)).toEqual(["POST /t"]);
  });

  it("with idempotencyKey: true, a Request input and a ky POST are retried once, same key, same bytes", async () => {
    up.on((hit) => (hit.n % 2 === 1 ? hit.res.writeHead(500).end("boom") : hit.res.end("ok")));
    const layer = createResilience({ retry: { ...FAST, idempotencyKey: true } });
    expect(await outcome(layer.fetch(new Request(`${up.base}/a`, { method: "POST", body: '{"n":1}' })))).toBe("200 ok");
    expect(
      await createClient({ resilience: layer })
        .post(`${up.base}/b`, { json: { n: 2 } })
        .text(),
    ).toBe("ok");
    const [a1, a2, b1, b2] = up.hits;
    expect(up.hits.map((hit) => hit.body)).toEqual(['{"n":1}', '{"n":1}', '{"n":2}', '{"n":2}']);
    expect(a1?.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(a2?.headers["idempotency-key"]).toBe(a1?.headers["idempotency-key"]);
    expect(b1?.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(b2?.headers["idempotency-key"]).toBe(b1?.headers["idempotency-key"]);
    expect(b1?.headers["idempotency-key"]).not.toBe(a1?.headers["idempotency-key"]);
  });
});
