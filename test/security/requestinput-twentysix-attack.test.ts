/**
 * Outside-in attack on a `Request` object as the input, on every path.
 * Docs: docs/retry.md "Bodies" (each body kind re-sent on each retry, a `Request` input's body read once and
 * replayed within `maxReplayBytes`, a larger one sent once, "A `Request` whose body was already read is refused
 * at once with a `TypeError`, as fetch refuses it", a body "given with a signal already aborted" cancelled "as
 * fetch's abort cancels a body", "A `Request` input keeps its own properties when a chain or a rule sends it
 * elsewhere", methods as fetch normalises them), docs/retry.md "Fetch semantics are kept" (an abort rejects
 * with `signal.reason`), "Idempotency" (`Idempotency-Key` the same on every retry), "Redirects" (`manual` /
 * `error` untouched, 303 drops the body and its headers, only the allowlist crosses origins, `integrity`
 * checked on the final answer), docs/fallback.md ("Credentials never cross origins", `transform`, hedge),
 * docs/degradation.md (a JSON body rewritten, the level header), docs/retry.md "ky", README.md (drop-in
 * `fetch`, the Worker proxy).
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient`
 * (./ky), `resilientProxy` (./cloudflare), `TestClock` (./testing); a recording transport (which builds
 * `new Request(input, init)` as fetch does) and two real node:http servers on 127.0.0.1; native `fetch`
 * as the reference where the docs say "as fetch".
 * Paths: plain call, retry (503 then 200), `redirects: "library"` with 307/303 (same and cross origin), a
 * fallback chain to another origin with and without `transform`, a hedge, a degradation rewrite, the ky
 * client, `resilientProxy` with an incoming `Request`; `Request`s with string / bytes / Blob / FormData /
 * URLSearchParams / stream bodies, used bodies, aborted signals (before and during the call), `init`
 * overrides, a subclass, lowercase methods, `redirect: "manual"`/`"error"`, `integrity`, `referrer`,
 * `keepalive`, `cache`, `credentials`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a read body refused before an abort, a replaced body left alone):
 * 1. docs/retry.md "A `Request` whose body was already read is refused at once with a `TypeError`, as fetch
 *    refuses it". Observed: when the call's signal (`init.signal`, or the `Request`'s own) is already aborted,
 *    a `Request` whose body was read rejects with the abort reason instead (native fetch: "TypeError: Cannot
 *    construct a Request with a Request object that has already been used", whatever the signal). Cause:
 *    `startCall` (src/http/resilient-fetch.ts) throws `callerSignal.reason` before `normalizeRequest` checks
 *    the input (`bodyUsed` in `readRequestBody`); the same order puts the abort before every other check of
 *    the caller's own mistakes, which fetch makes first (it builds the `Request` before it looks at the signal).
 * 2. docs/retry.md "a call that ends without sending it (... an abort before the send ...) cancels it, so the
 *    stream's source closes then, as fetch's abort cancels a body, and so it does ... any `Request` body given
 *    with a signal already aborted". Observed: `resilience.fetch(request, { body: "other", signal: aborted })`
 *    cancels the `Request`'s own body, which `init.body` replaced and which was never given: afterwards
 *    `request.bodyUsed` is true and the caller cannot send it again, where native fetch leaves it untouched
 *    (`bodyUsed` false). Cause: `startCall` cancels `request.body` whenever the signal is aborted, without
 *    looking at whether `init.body` replaces it.
 *
 * Held (plain `it`):
 * - Every `Request` body kind (string, bytes, Blob, FormData, URLSearchParams, a `duplex: "half"` stream) is
 *   re-sent whole on a 503 retry, with the same `content-type` (the multipart boundary included).
 * - `maxReplayBytes`: a `Request` body of exactly the limit is retried, one byte more is sent once (the 503 is
 *   the answer); a keepalive `Request` the same, with `keepalive` on every attempt.
 * - A used `Request` is a `TypeError`, nothing sent; a locked one too.
 * - The `Request`'s own signal aborting during the backoff, or while a stalled body is read, rejects with its
 *   reason (the stream cancelled with it); `timeout.total` during that read is a `TimeoutError`.
 * - A `Request`'s `referrer`/`referrerPolicy` reach a real server as native fetch sends them, on every attempt.
 * - Lowercase `patch` goes as `patch`, gets one `Idempotency-Key`, the same on the retry; a subclass works.
 * - `redirect: "manual"`/`"error"` on the `Request` go untouched (the 307 is the answer); `init.redirect:
 *   "follow"` overrides the `Request`'s `"manual"` and the 307 replays the body.
 * - A 303 after a `Request` POST: a GET without body or `content-type`, to another origin without
 *   `Authorization`/`x-api-key` (real servers).
 * - Chain to another origin (with and without `transform`), and a hedge: the body replayed, credentials stay
 *   home, the `Request`'s `cache`/`credentials`/`referrer`/`redirect` go to every endpoint.
 * - Degradation rewrites a `Request`'s JSON body on every attempt, with the level header.
 * - ky: a JSON POST retried after a 503 with its body and one key; `resilientProxy`: an incoming `Request` PUT
 *   retried with its body.
 * - `integrity` on a `Request`: a mismatch rejects, a match resolves, `init.integrity` overrides the `Request`'s.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { recordingFetch, type Sent } from "../helpers/recording-fetch.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

afterEach(() => {
  vi.useRealTimers();
});

/** 503 to the first request, 200 after. */
const flaky = () => recordingFetch((_s, n) => new Response("x", { status: n === 1 ? 503 : 200 }));
const view = (sent: Sent[]) => sent.map((s) => [s.method, s.url, s.headers.get("content-type"), s.body]);

describe("used bodies and aborted signals", () => {
  it("a used Request with an already aborted signal is refused with a TypeError, as fetch refuses it", async () => {
    const { fetch, sent } = recordingFetch();
    const r = createResilience({ fetch });
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    const used = new Request("https://api.example/x", { method: "POST", body: "abc" });
    await used.text();
    // Native fetch, for reference: the Request is built (and refused) before the signal is looked at.
    const native = await rejection(globalThis.fetch(used, { signal: controller.signal }));
    expect(native).toBeInstanceOf(TypeError);
    const error = await rejection(r.fetch(used, { signal: controller.signal }));
    expect(sent).toHaveLength(0);
    expect(error).toBeInstanceOf(TypeError);
  });

  it("a used Request (signal not aborted) and a locked one are TypeErrors, nothing sent", async () => {
    const { fetch, sent } = recordingFetch();
    const r = createResilience({ fetch });
    const used = new Request("https://api.example/x", { method: "POST", body: "abc" });
    await used.text();
    expect(await rejection(r.fetch(used))).toBeInstanceOf(TypeError);
    const locked = new Request("https://api.example/x", { method: "POST", body: "abc" });
    locked.body?.getReader();
    expect(await rejection(r.fetch(locked))).toBeInstanceOf(TypeError);
    expect(sent).toHaveLength(0);
  });

  it("an aborted call whose init.body replaces the Request's leaves the Request's own body alone, as fetch does", async () => {
    const { fetch, sent } = recordingFetch();
    const r = createResilience({ fetch });
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    // Native fetch: the Request's body is not the one given, and stays readable.
    const nativeRequest = new Request("http://127.0.0.1:1/x", { method: "POST", body: "mine" });
    expect(await rejection(globalThis.fetch(nativeRequest, { body: "other", signal: controller.signal }))).toBe(
      controller.signal.reason,
    );
    expect(nativeRequest.bodyUsed).toBe(false);

    const request = new Request("https://api.example/x", { method: "POST", body: "mine" });
    expect(await rejection(r.fetch(request, { body: "other", signal: controller.signal }))).toBe(
      controller.signal.reason,
    );
    expect(sent).toHaveLength(0);
    expect(request.bodyUsed).toBe(false);
    expect(await request.text()).toBe("mine");
  });

  it("a Request with an aborted signal rejects with its reason, its body cancelled, nothing sent", async () => {
    const { fetch, sent } = recordingFetch();
    const r = createResilience({ fetch });
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    let cancelled: unknown;
    const body = new ReadableStream<Uint8Array>({
      cancel(reason) {
        cancelled = reason;
      },
    });
    const request = new Request("https://api.example/x", {
      method: "PUT",
      body,
      duplex: "half",
      signal: controller.signal,
    } as RequestInit);
    expect(await rejection(r.fetch(request))).toBe(controller.signal.reason);
    expect(cancelled).toBe(controller.signal.reason);
    expect(sent).toHaveLength(0);
  });

  it("the Request's own signal aborting during the backoff rejects with its reason; one request sent", async () => {
    const clock = new TestClock();
    const { fetch, sent } = recordingFetch(() => new Response("x", { status: 503, headers: { "retry-after": "5" } }));
    const r = createResilience({ fetch, clock });
    const controller = new AbortController();
    const call = r.fetch(new Request("https://api.example/x", { method: "PUT", body: "b", signal: controller.signal }));
    const settled = rejection(call);
    await clock.advance(1000);
    controller.abort(new Error("user"));
    expect(await settled).toBe(controller.signal.reason);
    expect(sent).toHaveLength(1);
  });

  it("the Request's signal aborting while its stalled body is read rejects with its reason and cancels the stream", async () => {
    const { fetch, sent } = recordingFetch();
    const r = createResilience({ fetch });
    const controller = new AbortController();
    let cancelled: unknown;
    const body = new ReadableStream<Uint8Array>({
      pull: () => new Promise<void>(() => {}),
      cancel(reason) {
        cancelled = reason;
      },
    });
    const settled = rejection(
      r.fetch(
        new Request("https://api.example/x", {
          method: "PUT",
          body,
          duplex: "half",
          signal: controller.signal,
        } as RequestInit),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort(new Error("user"));
    expect(await settled).toBe(controller.signal.reason);
    expect(cancelled).toBe(controller.signal.reason);
    expect(sent).toHaveLength(0);
  });

  it("timeout.total passing while a Request body is read is a TimeoutError, the stream cancelled", async () => {
    const clock = new TestClock();
    const { fetch, sent } = recordingFetch();
    const r = createResilience({ fetch, clock, timeout: { total: 100 } });
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull: () => new Promise<void>(() => {}),
      cancel() {
        cancelled = true;
      },
    });
    const settled = rejection(
      r.fetch(new Request("https://api.example/x", { method: "PUT", body, duplex: "half" } as RequestInit)),
    );
    await clock.advance(100);
    expect((await settled) as Error).toMatchObject({ name: "TimeoutError", phase: "total" });
    expect(cancelled).toBe(true);
    expect(sent).toHaveLength(0);
  });
});

describe("bodies replayed on a retry", () => {
  const form = () => {
    const f = new FormData();
    f.append("prompt", "a cat");
    return f;
  };
  const stream = () =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("streamed"));
        controller.close();
      },
    });
  const kinds: Array<[string, () => BodyInit]> = [
    ["string", () => "text"],
    ["bytes", () => new Uint8Array([1, 2, 3])],
    ["Blob", () => new Blob(["blob"], { type: "image/png" })],
    ["FormData", form],
    ["URLSearchParams", () => new URLSearchParams("a=1&b=2")],
    ["stream", stream],
  ];
  for (const [kind, make] of kinds) {
    it(`a Request with a ${kind} body is sent whole on both attempts, same content-type`, async () => {
      const { fetch, sent } = flaky();
      const r = createResilience({ fetch, retry: { initialDelay: 0 } });
      const res = await r.fetch(
        new Request("https://api.example/x", { method: "PUT", body: make(), duplex: "half" } as RequestInit),
      );
      expect(res.status).toBe(200);
      expect(sent).toHaveLength(2);
      const [first, second] = sent as [Sent, Sent];
      expect(first.body?.length).toBeGreaterThan(0);
      expect(second.body).toBe(first.body);
      expect(second.headers.get("content-type")).toBe(first.headers.get("content-type"));
    });
  }

  it("maxReplayBytes: a Request body of exactly the limit is retried, one byte more is sent once", async () => {
    for (const [body, sends, status] of [
      ["0123", 2, 200],
      ["01234", 1, 503],
    ] as const) {
      const { fetch, sent } = flaky();
      const r = createResilience({ fetch, retry: { initialDelay: 0 }, maxReplayBytes: 4 });
      const res = await r.fetch(new Request("https://api.example/x", { method: "PUT", body }));
      expect([res.status, sent.length, sent[0]?.body]).toEqual([status, sends, body]);
    }
  });

  it("a keepalive Request: replayed within the limit with keepalive each time, sent once past it", async () => {
    for (const [body, sends] of [
      ["0123", 2],
      ["01234", 1],
    ] as const) {
      const { fetch, sent } = flaky();
      const r = createResilience({ fetch, retry: { initialDelay: 0 }, maxReplayBytes: 4 });
      await r.fetch(new Request("https://api.example/x", { method: "PUT", body, keepalive: true }));
      expect(sent.map((s) => [s.body, new Request(s.url, s.init).keepalive])).toEqual(
        Array.from({ length: sends }, () => [body, true]),
      );
    }
  });

  it("lowercase patch goes as written, with one Idempotency-Key kept on the retry; a subclass works", async () => {
    class Tagged extends Request {
      readonly tag = "mine";
    }
    const { fetch, sent } = recordingFetch((_s, n) => new Response("x", { status: n === 1 ? 500 : 200 }));
    const r = createResilience({ fetch, retry: { initialDelay: 0, idempotencyKey: true } });
    const res = await r.fetch(new Tagged("https://api.example/x", { method: "patch", body: "{}" }));
    expect(res.status).toBe(200);
    expect(sent.map((s) => s.method)).toEqual(["patch", "patch"]);
    const keys = sent.map((s) => s.headers.get("idempotency-key"));
    expect(keys[0]).toBeTruthy();
    expect(keys[1]).toBe(keys[0]);
  });

  it("a Request's referrer and policy reach a real server on every attempt, as native fetch sends them", async () => {
    a.on((hit) => {
      hit.res.statusCode = hit.n === 1 ? 503 : 200;
      hit.res.end("x");
    });
    const make = () =>
      new Request(`${a.base}/x`, {
        method: "PUT",
        body: "b",
        referrer: `${a.base}/page?q=1`,
        referrerPolicy: "unsafe-url",
      });
    await (await globalThis.fetch(make())).text();
    const native = a.hits[0]?.headers.referer;
    expect(native).toBe(`${a.base}/page?q=1`);
    a.reset();
    a.on((hit) => {
      hit.res.statusCode = hit.n === 1 ? 503 : 200;
      hit.res.end("x");
    });
    const r = createResilience({ retry: { initialDelay: 0 } });
    expect((await r.fetch(make())).status).toBe(200);
    expect(a.hits.map((h) => h.headers.referer)).toEqual([native, native]);
  });
});

describe("redirects", () => {
  const redirecting = () =>
    recordingFetch((s) =>
      s.url.endsWith("/x") ? new Response(null, { status: 307, headers: { location: "/y" } }) : new Response("y"),
    );

  it("redirect: manual / error on the Request go untouched; init.redirect follow overrides manual", async () => {
    for (const redirect of ["manual", "error"] as const) {
      const { fetch, sent } = redirecting();
      const r = createResilience({ fetch, retry: false, redirects: "library" });
      const res = await r.fetch(new Request("https://api.example/x", { method: "POST", body: "b", redirect }));
      expect([res.status, sent.length, sent[0]?.init?.redirect]).toEqual([307, 1, redirect]);
    }
    const { fetch, sent } = redirecting();
    const r = createResilience({ fetch, retry: false, redirects: "library" });
    const res = await r.fetch(new Request("https://api.example/x", { method: "POST", body: "b", redirect: "manual" }), {
      redirect: "follow",
    });
    expect(res.status).toBe(200);
    expect(res.redirected).toBe(true);
    expect(view(sent)).toEqual([
      ["POST", "https://api.example/x", "text/plain;charset=UTF-8", "b"],
      ["POST", "https://api.example/y", "text/plain;charset=UTF-8", "b"],
    ]);
  });

  it("a 303 after a Request POST, to another origin: a GET without body, content-type or credentials", async () => {
    a.on((hit) => {
      hit.res.statusCode = 303;
      hit.res.setHeader("location", `${b.base}/y`);
      hit.res.end();
    });
    const r = createResilience({ retry: false });
    const res = await r.fetch(
      new Request(`${a.base}/x`, {
        method: "POST",
        body: JSON.stringify({ a: 1 }),
        headers: { "content-type": "application/json", authorization: "Bearer s", "x-api-key": "k" },
      }),
    );
    expect([res.status, res.redirected, res.url]).toEqual([200, true, `${b.base}/y`]);
    expect(a.hits.map((h) => [h.method, h.headers.authorization, h.body])).toEqual([["POST", "Bearer s", '{"a":1}']]);
    const hop = b.hits[0];
    expect([hop?.method, hop?.headers.authorization, hop?.headers["x-api-key"], hop?.headers["content-type"]]).toEqual([
      "GET",
      undefined,
      undefined,
      undefined,
    ]);
    expect(hop?.body).toBe("");
  });

  it("integrity on a Request: a mismatch rejects, a match resolves, init.integrity overrides", async () => {
    a.on((hit) => hit.res.end("hello"));
    const good = "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";
    const r = createResilience({ retry: false });
    expect((await r.fetch(new Request(`${a.base}/x`, { integrity: good }))).status).toBe(200);
    await expect(r.fetch(new Request(`${a.base}/x`, { integrity: "sha256-AAAA" }))).rejects.toThrow(/integrity/);
    const res = await r.fetch(new Request(`${a.base}/x`, { integrity: "sha256-AAAA" }), { integrity: good });
    expect(await res.text()).toBe("hello");
  });
});

describe("chains, hedges, degradation, ky, proxy", () => {
  const init: RequestInit = {
    method: "PUT",
    body: '{"a":1}',
    headers: { authorization: "Bearer s", "x-api-key": "k", "content-type": "application/json" },
    cache: "no-store",
    credentials: "include",
    referrer: "https://a.example/p",
    redirect: "manual",
  };
  const a503 = () =>
    recordingFetch((s) => new Response("x", { status: s.url.startsWith("https://a.example") ? 503 : 200 }));

  for (const withTransform of [false, true]) {
    it(`a chain to another origin${withTransform ? " through a transform" : ""}: body replayed, credentials home, properties kept`, async () => {
      const { fetch, sent } = a503();
      const r = createResilience({
        fetch,
        retry: false,
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "a", url: "https://a.example/v1" },
              withTransform
                ? {
                    name: "b",
                    url: "https://b.example/v1",
                    transform: (req) => ({ ...req, body: { ...req.body, b: 2 } }),
                  }
                : { name: "b", url: "https://b.example/v1" },
            ],
          },
        ]),
      });
      const res = await r.fetch(new Request("https://a.example/v1/x", init));
      expect([res.status, getResilienceInfo(res)?.endpoint]).toEqual([200, "b"]);
      const [, second] = sent as [Sent, Sent];
      expect(second.url).toBe("https://b.example/v1/x");
      expect(second.body).toBe(withTransform ? '{"a":1,"b":2}' : '{"a":1}');
      expect([second.headers.get("authorization"), second.headers.get("x-api-key")]).toEqual([null, null]);
      const props = sent.map((s) => {
        const req = new Request(s.url, s.init);
        return [req.cache, req.credentials, req.referrer, req.redirect];
      });
      expect(props).toEqual([
        ["no-store", "include", "https://a.example/p", "manual"],
        ["no-store", "include", "https://a.example/p", "manual"],
      ]);
    });
  }

  it("a hedge with a Request input: the second endpoint gets the body, not the credentials", async () => {
    const { fetch, sent } = recordingFetch((s) =>
      s.url.startsWith("https://a.example") ? new Promise<Response>(() => {}) : new Response("b"),
    );
    const r = createResilience({
      fetch,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 1 },
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const res = await r.fetch(new Request("https://a.example/v1/x", init));
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(sent.map((s) => [s.url, s.headers.get("authorization"), s.body])).toEqual([
      ["https://a.example/v1/x", "Bearer s", '{"a":1}'],
      ["https://b.example/v1/x", null, '{"a":1}'],
    ]);
  });

  it("degradation rewrites a Request's JSON body on every attempt, with the level header", async () => {
    const { fetch, sent } = flaky();
    const r = createResilience({
      fetch,
      retry: { initialDelay: 0 },
      degradation: degradation({ levelHeader: "x-level" }),
    });
    r.degradation?.setLevel("medium");
    const res = await r.fetch(
      new Request("https://api.example/x", {
        method: "PUT",
        body: '{"steps":50,"resolution":"1080p"}',
        headers: { "content-type": "application/json" },
        cache: "no-store",
      }),
    );
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
    expect(sent.map((s) => [s.body, s.headers.get("x-level"), new Request(s.url, s.init).cache])).toEqual([
      ['{"steps":30,"resolution":"720p"}', "medium", "no-store"],
      ['{"steps":30,"resolution":"720p"}', "medium", "no-store"],
    ]);
  });

  it("ky: a JSON POST retried after a 503 with its body and one Idempotency-Key", async () => {
    const { fetch, sent } = flaky();
    const api = createClient({ resilience: { fetch, retry: { initialDelay: 0, idempotencyKey: true } } });
    const res = await api.post("https://api.example/x", { json: { a: 1 } });
    expect(res.status).toBe(200);
    expect(sent.map((s) => s.body)).toEqual(['{"a":1}', '{"a":1}']);
    const keys = sent.map((s) => s.headers.get("idempotency-key"));
    expect(keys[0]).toBeTruthy();
    expect(keys[1]).toBe(keys[0]);
  });

  it("resilientProxy: an incoming Request PUT is retried upstream with its body", async () => {
    const { fetch, sent } = flaky();
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: "https://up.example/v1" }],
      resilience: { fetch, retry: { initialDelay: 0 } },
    });
    const res = await proxy.fetch(
      new Request("https://me.example/v1/x?q=1", {
        method: "PUT",
        body: '{"a":1}',
        headers: { "content-type": "application/json" },
      }),
      {},
      { waitUntil() {} },
    );
    expect(res.status).toBe(200);
    expect(view(sent)).toEqual([
      ["PUT", "https://up.example/v1/x?q=1", "application/json", '{"a":1}'],
      ["PUT", "https://up.example/v1/x?q=1", "application/json", '{"a":1}'],
    ]);
  });
});
