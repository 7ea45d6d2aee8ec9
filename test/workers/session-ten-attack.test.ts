/**
 * Session ten: an outside-in attack, in real workerd, on today's changes
 * (168bca6/e2b68aa/d90eae2 the platform-field check, c190fd7/adca23d the
 * chain fixes, the redaction of URLs). Only the BUILT package is used (run
 * `npm run build` first). Upstreams are Miniflare's outbound service
 * (vitest.config.ts) or a stub through the layer's `fetch` option.
 *
 * The stub transport `refusing` judges each send as workerd's fetch does,
 * with workerd's own `Request` constructor (`new Request(input, init)`): the
 * same words, without the unhandled-rejection report workerd's real fetch
 * adds for a call it refuses (that report fails a vitest run even when the
 * caller catches the rejection; plain fetch does it too).
 *
 * Tried: `redirect: "error"` and `integrity` through a plain call, a `Request`
 * input (with and without its own redirect mode), `redirects: "platform"`, a
 * fallback chain, a hedged chain, a transform (which cannot set either field:
 * its `TransformedRequest` has none; it can set a method); a GET with a body
 * (workerd's `Request` refuses it); a redirect to a URL with userinfo, to a
 * data: URL and to a port fetch will not dial (error text and `redirect`
 * events); a transform URL with userinfo (the `fallback` event's reason);
 * the first endpoint's `?key=` written re-encoded (`%6Bey=`, `a b` for
 * `a+b`, twice, before a fragment) on a chain with a spare on another
 * origin; `resilientProxy`'s answer when a chain's every endpoint threw an
 * error quoting its keyed URL. Raw workerd: `cache`, `mode`, `credentials`,
 * `keepalive` and `referrerPolicy` are taken by its fetch (the library's
 * passing them on is no harm); a URL with userinfo is sent by workerd's
 * fetch (the library refuses it at once, as documented).
 *
 * DEFECTS (each an `it.fails` asserting the documented behaviour; each
 * failed on the code it was written against; all fixed):
 * 1. A `Request` input whose own `redirect` is "manual" with `integrity` in
 *    `init`: the platform-field check reads only `init` (redirect absent,
 *    read as "follow", so the library "follows" and `integrity` is allowed),
 *    but the call goes out with the Request's "manual" and the integrity.
 *    workerd refuses it on every attempt: 3 attempts, 2 `retry` events, 3
 *    failures counted against a healthy host's breaker
 *    (`fetch(new Request(u, { redirect: "manual" }), { integrity: "sha256-…" })`).
 *    docs/retry.md: such a call "fails at once … never sent, retried or
 *    counted".
 * 2. The same call through a (hedged) fallback chain: sent to every
 *    endpoint, one failure counted against each endpoint's breaker, the
 *    `fallback` event blames the primary and moves on.
 * 3. A GET with a body (`{ method: "GET", body: "x" }`), which workerd's
 *    fetch (and `Request`) refuse whatever the server answers: sent three
 *    times, counted three times against the host's breaker, instead of the
 *    caller's-mistake `TypeError` at once (SECURITY.md: "The caller's
 *    mistakes never trip a breaker").
 * 4. A fallback `transform` returning a method that is not an HTTP token
 *    (`method: "BAD METHOD"`): no check, so workerd's "Invalid HTTP method
 *    string" counts as a failure of the healthy primary, and the chain stops
 *    saying the primary "may have processed the request" though nothing was
 *    sent. A call's own such method is refused at once, never counted
 *    (docs/retry.md); a transform's is the same mistake of the Worker's
 *    author.
 *
 * Held (controls): `redirect: "error"` in `init` (with a URL, a `Request`,
 * through a chain) and `integrity` with `redirects: "platform"` fail at once
 * with the runtime's words, nothing sent or counted; a redirect to a URL with
 * userinfo or to a data: URL is refused with a message quoting only the
 * redirecting URL without its query; the `redirect` event's `to` has no
 * query; a transform URL with userinfo is refused, the `fallback` reason
 * names the URL without userinfo, query or fragment; the first endpoint's
 * `?key=` re-encoded never reaches the spare; `resilientProxy`'s 502 body
 * and a `FallbackExhaustedError`'s message and causes carry no key.
 *
 * Questionable, not pinned: the first endpoint's `?key=a+b` and a caller's
 * `?key=a%2Bb` compare unequal (form decoding reads `+` as a space), so the
 * spare gets `key=a%2Bb`: right by URLSearchParams, wrong for a server that
 * reads `+` literally. A redirect to a URL with userinfo counts as a failure
 * of the redirecting host (a server's answer, arguably its fault).
 */

import { createExecutionContext } from "cloudflare:test";
import { createResilience, isFallbackExhaustedError } from "@storycore/resilient-fetch";
import { resilientProxy } from "@storycore/resilient-fetch/cloudflare";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { describe, expect, it } from "vitest";

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** A transport that refuses what workerd's fetch refuses (by workerd's own `Request`), and records each send. */
function refusing(status: (url: string) => number = () => 200) {
  const sent: string[] = [];
  const fetch: Fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    sent.push(url);
    new Request(input, init); // throws workerd's TypeError for a field its fetch refuses
    return new Response("ok", { status: status(url) });
  };
  return { sent, fetch };
}

const failures = (r: { health(): { breakers: Record<string, { failureCount: number } | undefined> } }, host: string) =>
  r.health().breakers[host]?.failureCount ?? 0;

const settle = <T>(p: Promise<T>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );

describe("fields workerd refuses, on every path", () => {
  it('DEFECT 1: a Request with redirect "manual" and init.integrity fails at once, never sent, retried or counted', async () => {
    const up = refusing();
    const r = createResilience({ fetch: up.fetch, breaker: { failureThreshold: 5 } });
    const retries: unknown[] = [];
    r.on("retry", (e) => retries.push(e));
    const error = await settle(
      r.fetch(new Request("https://primary.example/a", { redirect: "manual" }), { integrity: "sha256-abc" }),
    );
    // Today: RetryExhaustedError after 3 attempts, 3 failures of primary.example.
    expect(error?.message).toMatch(/this runtime refuses the call: Subrequest integrity/);
    expect(up.sent).toEqual([]);
    expect(retries).toEqual([]);
    expect(failures(r, "primary.example")).toBe(0);
  });

  it("DEFECT 2: the same call through a hedged chain is refused at once, no endpoint sent or blamed", async () => {
    const up = refusing();
    const r = createResilience({
      fetch: up.fetch,
      breaker: { failureThreshold: 5 },
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 5 },
          endpoints: [
            { name: "p", url: "https://primary.example/v1" },
            { name: "s", url: "https://spare.example/v1" },
          ],
        },
      ]),
    });
    const moves: unknown[] = [];
    r.on("fallback", (e) => moves.push(e));
    const error = await settle(
      r.fetch(new Request("https://primary.example/v1/x", { redirect: "manual" }), { integrity: "sha256-abc" }),
    );
    // Today: FallbackExhaustedError, both endpoints sent it, one failure each.
    expect(error?.message).toMatch(/this runtime refuses the call/);
    expect(up.sent).toEqual([]);
    expect(moves).toEqual([]);
    expect(failures(r, "primary.example")).toBe(0);
    expect(failures(r, "spare.example")).toBe(0);
  });

  it("DEFECT 3: a GET with a body (refused by workerd whatever the server says) fails at once, never counted", async () => {
    const up = refusing();
    const r = createResilience({ fetch: up.fetch, breaker: { failureThreshold: 5 } });
    const error = await settle(r.fetch("https://primary.example/a", { method: "GET", body: "x" }));
    // Today: RetryExhaustedError "gave up after 3 attempts", 3 failures counted.
    expect(error).toBeInstanceOf(TypeError);
    expect(up.sent).toEqual([]);
    expect(failures(r, "primary.example")).toBe(0);
  });

  it("DEFECT 4: a transform's method that is not an HTTP token is refused, not counted against the endpoint", async () => {
    const up = refusing();
    const r = createResilience({
      fetch: up.fetch,
      breaker: { failureThreshold: 5 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://primary.example/v1", transform: (q) => ({ ...q, method: "BAD METHOD" }) },
            { name: "s", url: "https://spare.example/v1" },
          ],
        },
      ]),
    });
    const error = await settle(r.fetch("https://primary.example/v1/x"));
    // Today: "stopped after "p", which may have processed the request (… Invalid HTTP method string …)",
    // one failure of primary.example.
    expect(error?.message ?? "").not.toMatch(/may have processed/);
    expect(failures(r, "primary.example")).toBe(0);
  });

  it('control: redirect "error" in init (URL, Request, chain) fails at once with the runtime\'s words', async () => {
    const up = refusing();
    const r = createResilience({
      fetch: up.fetch,
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://primary.example/v1?key=SECRETK" },
            { name: "s", url: "https://spare.example/v1" },
          ],
        },
      ]),
    });
    for (const input of [
      "https://other.example/a",
      new Request("https://other.example/a"),
      "https://primary.example/v1/x",
      new Request("https://primary.example/v1/x", { redirect: "manual" }),
    ]) {
      await expect(r.fetch(input, { redirect: "error" })).rejects.toThrow(
        /^resilience\.fetch: this runtime refuses the call: Invalid redirect value/,
      );
    }
    expect(up.sent).toEqual([]);
    expect(Object.values(r.health().breakers).every((b) => (b?.failureCount ?? 0) === 0)).toBe(true);
  });

  it('control: integrity with redirects: "platform" fails at once; with the library following it is sent', async () => {
    const up = refusing();
    const platform = createResilience({ fetch: up.fetch, redirects: "platform" });
    await expect(platform.fetch("https://primary.example/a", { integrity: "sha256-abc" })).rejects.toThrow(
      /this runtime refuses the call: Subrequest integrity/,
    );
    expect(up.sent).toEqual([]);
    // A Request input whose own mode is "follow", with init.integrity: the library follows and checks.
    const library = createResilience({ fetch: up.fetch, retry: { maxAttempts: 1 } });
    await expect(library.fetch(new Request("https://primary.example/a"), { integrity: "sha256-abc" })).rejects.toThrow(
      /integrity mismatch/,
    );
    expect(up.sent).toHaveLength(1);
  });
});

describe("no secret in errors and events, in workerd", () => {
  it("control: a redirect to a URL with userinfo or a data: URL is refused naming only the redirecting URL, cut", async () => {
    for (const to of ["https://u:pw@spare.example/x?key=SECRETK#f", "data:,hi?key=SECRETK"]) {
      const r = createResilience({ retry: { maxAttempts: 1 } });
      const error = await settle(
        r.fetch(`https://r.conformance/redirect/1?to=${encodeURIComponent(to)}&token=SECRETT`),
      );
      const text = `${error?.message} ${String((error as { cause?: unknown }).cause)}`;
      expect(text).toMatch(/a redirect from https:\/\/r\.conformance\/redirect\/1 leads to/);
      expect(text).not.toMatch(/SECRET|pw@/);
    }
  });

  it("control: the redirect event reports the hop without its query", async () => {
    const r = createResilience({ retry: { maxAttempts: 1 } });
    const hops: Array<{ from: string; to: string }> = [];
    r.on("redirect", (e) => hops.push(e));
    const to = "https://primary.example/x?key=SECRETK#frag";
    const res = await r.fetch(`https://r.conformance/redirect/2?to=${encodeURIComponent(to)}`);
    expect(res.status).toBe(200);
    expect(hops).toHaveLength(1);
    expect(JSON.stringify(hops)).not.toMatch(/SECRET|frag/);
    expect(hops[0]?.to).toBe("https://primary.example/x");
  });

  it("control: a transform URL with userinfo is refused; the fallback reason and the spare's request carry no secret", async () => {
    const up = refusing();
    const r = createResilience({
      fetch: up.fetch,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            {
              name: "p",
              url: "https://primary.example/v1?key=SECRETK",
              transform: (q) => ({ ...q, url: "ftp://u:pw@primary.example/v1?key=SECRETK#f" }),
            },
            { name: "s", url: "https://spare.example/v1" },
          ],
        },
      ]),
    });
    const reasons: string[] = [];
    r.on("fallback", (e) => reasons.push(String(e.reason)));
    expect((await r.fetch("https://primary.example/v1/x?key=SECRETK")).status).toBe(200);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/includes credentials/);
    expect(reasons.join()).not.toMatch(/SECRET|pw/);
    expect(up.sent).toEqual(["https://spare.example/v1/x"]);
  });

  it("control: the first endpoint's key written re-encoded never reaches the spare", async () => {
    for (const call of [
      "https://primary.example/v1?%6Bey=a+b",
      "https://primary.example/v1?key=a b",
      "https://primary.example/v1?key=a+b&key=a+b",
      "https://primary.example/v1/jobs?x=1&key=a%20b#frag",
    ]) {
      const up = refusing((url) => (url.includes("primary") ? 503 : 200));
      const r = createResilience({
        fetch: up.fetch,
        retry: { maxAttempts: 1 },
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "p", url: "https://primary.example/v1?key=a+b" },
              { name: "s", url: "https://spare.example/v1" },
            ],
          },
        ]),
      });
      expect((await r.fetch(call)).status).toBe(200);
      const spare = up.sent.filter((u) => u.includes("spare.example"));
      expect(spare).toHaveLength(1);
      expect(spare[0]).not.toMatch(/key|%6Bey/i);
    }
  });

  it("control: a chain whose endpoints throw errors quoting keyed URLs: error, causes and the proxy's 502 carry no key", async () => {
    const fetch: Fetch = async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      throw new TypeError(`connect failed: ${url.replace("https://", "https://svc:pw@")}#frag`);
    };
    const chain = {
      name: "c",
      endpoints: [
        { name: "p", url: "https://primary.example/v1?key=SECRETK" },
        { name: "s", url: "https://spare.example/v1?token=SECRETT" },
      ],
    };
    const r = createResilience({ fetch, retry: { maxAttempts: 1 }, fallback: fallback([chain]) });
    const reasons: string[] = [];
    r.on("fallback", (e) => reasons.push(String(e.reason)));
    const error = await settle(r.fetch("https://primary.example/v1/x?q=1&key=SECRETK"));
    expect(isFallbackExhaustedError(error)).toBe(true);
    const causes = isFallbackExhaustedError(error)
      ? Object.values(error.errors).map((e) => `${(e as Error).message} ${String((e as Error).cause)}`)
      : [];
    const text = [error?.message, String((error as { cause?: unknown }).cause), ...causes, ...reasons].join(" | ");
    expect(text).toMatch(/connect failed/);
    expect(text).not.toMatch(/SECRET|pw@|frag/);

    const proxy = resilientProxy({
      routes: [{ path: "/v1", chain }],
      resilience: { fetch, retry: { maxAttempts: 1 } },
    });
    const res = await proxy.fetch(new Request("https://proxy.example/v1/x?key=SECRETK"), {}, createExecutionContext());
    expect(res.status).toBe(502);
    expect(await res.text()).not.toMatch(/SECRET|pw@/);
  });
});
