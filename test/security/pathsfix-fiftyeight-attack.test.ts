/**
 * Outside-in attack on the fifty-seventh session's three fixes (Symbols cut by URL redaction, a `Request` upload
 * failing past `maxReplayBytes` while it is sent) on the paths recheck- and recheck2-fiftyseven did not drive.
 *
 * Docs:
 * - SECURITY.md "No secret …": "URLs lose their userinfo …, query string and fragment … before they reach any of them
 *   (an error's causes included, an `AggregateError`'s errors, …)"; Limits: "a message, stack or field that is a
 *   Symbol gets a new Symbol whose description is cut, and so does a Symbol thrown, given as a cause or listed in
 *   `errors`".
 * - docs/retry.md: "A body stream that fails during that read fails the call with a `TypeError` ("the request body
 *   could not be read"), its `cause` the stream's error …: nothing was sent, retried or counted."; "One read that far,
 *   past `maxReplayBytes`, that fails later, while it is sent, fails the call with fetch's `TypeError` (its `cause`
 *   the stream's error; … Deno's with a `TypeError` whose `cause` is a plain copy of it, its class and fields lost: the
 *   layer gives either the `TypeError` "the request body stream failed while it was sent", whose `cause` is the
 *   stream's error itself), through a chain too, counted as no attempt and by nothing (the host's breaker, the error
 *   rate, the retry budget, a chain's statistics)"; "307/308 replay method and body (a body sent once, a stream or
 *   one larger than `maxReplayBytes` as the caller gave it, cannot be: a `TypeError`)".
 * - docs/cloudflare.md: "`400` when the request failed of the client's own making at every endpoint tried (… or the
 *   client's body stream failed while the layer read it ahead or, past `maxReplayBytes`, while it went …)".
 *
 * How: root `createResilience`, `getResilienceInfo`, errors; `fallback` (./fallback); `degradation` (./degradation);
 * `resilientProxy` (./cloudflare); `TestClock`, `recordEvents` (./testing). Two node:http servers on 127.0.0.1 (and
 * one raw one answering 307 before the body ends); a `fetch` transport that sends with the real fetch, then throws a
 * Symbol-bearing value quoting the URL with `user:pw@` and `https://user:pw@host.example/?key=…`. Deno: the built
 * package (`dist`) in a child `deno run`, as denobun-fiftyfive does.
 *
 * Paths: library-followed redirect (302, transport throws on hop 2), degradation rewrite (query and JSON body, the
 * transport throws on the rewritten request), a chain's second endpoint after a 503, a hedge, `execute`, events
 * (`on` listeners), `health()`, `debugInfo()`, `getResilienceInfo` of a served fallback; uploads failing early and
 * past `maxReplayBytes` through `redirects: "library"` with a 307 route, a degradation rewrite, `resilientProxy`
 * (both together), a 307 answered before the body ends; Deno: redirect, rewrite, proxy.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - None. Every path below held.
 *
 * Held (plain `it`):
 * - Six Symbol placements (thrown; an Error's `message`, `stack`, own field; a `cause`; an `AggregateError`'s
 *   `errors` item), each quoting the URL with `user:pw@` and `https://user:pw@host.example/?key=…`: on the library's
 *   302 hop 2 (`RetryExhaustedError`), a query rewrite and a JSON body rewrite (`steps` 50 → 30 sent; transport
 *   throws on the rewritten request), a chain's second endpoint (a fails keyless, b throws:
 *   `FallbackExhaustedError`), a hedge (b at 50 ms beside a) and `execute`: no secret in any string, Symbol
 *   description/`toString()`, `String(x)` or JSON, causes and `errors` included; none in `on` listeners' events,
 *   `health()`, `debugInfo()`, nor `getResilienceInfo` of an answer b served after a threw.
 * - Upload failing early (4 bytes, then a RangeError with a field), `redirects: "library"` 307 route, degradation
 *   rewrite, proxy: `TypeError` "resilience.fetch: the request body could not be read", its `cause` the stream's
 *   error itself; nothing sent; `request` events say 0 attempts; no breaker; proxy `400 {"error":"the client's
 *   request failed"}`.
 * - Upload past `maxReplayBytes` failing while sent: library 307 route, rewrite, platform follower on a 307 route:
 *   a `TypeError` whose `cause` is the stream's error itself (its `tag` field kept); no hop 2, no retry or fallback
 *   event, `request` events say 0 attempts, breakers count 0 (layer and proxy health); proxy 400.
 * - A 307 answered before the upload's body ended, the stream failing right after: a documented outcome (Node's
 *   `TypeError` "fetch failed" whose `cause` is the stream's error; every run so far), hop 2 never sent.
 * - A stream error that quotes the URL (a RangeError with a `url` field, a Symbol `message`, a Symbol, an
 *   `AggregateError` listing one), early and while sent, plain, library 307, rewrite and chain: a `TypeError`
 *   with no secret readable; the proxy answers its 400 with none.
 * - Deno (dist in `deno run`): library 307 and rewrite, early and past the limit: the layer's `TypeError`, `cause`
 *   the stream's own RangeError with its field; breaker counts 0; proxy 400; a stream error quoting the URL (field,
 *   Symbol message, Symbol) leaves no secret in the rejection.
 *
 * Docs-silent when found, now in the docs (fifty-eighth session) and asserted:
 * - A frozen stream error that quotes a URL: retry.md said the `cause` is "the stream's error itself", which the
 *   redaction cannot keep (it cannot cut a frozen error). It arrives as a plain `Error` copy, cut, keeping `name`
 *   and `code`, losing its class and other fields; retry.md and SECURITY.md's Limits now say so. A frozen error
 *   with nothing to cut is still the error itself.
 *
 * Docs-silent (not pinned):
 * - Each failed upload emits a `request` event (`error: "TypeError"`, `attempts: 0`): "counted by nothing" is read
 *   as counts (breaker, rate, budget), not events.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, FallbackExhaustedError, getResilienceInfo, RetryExhaustedError } from "../../src/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const SECRET = "sk-live-pathsfix58-0123456789";
const FOREIGN = `https://user:pw@host.example/?key=${SECRET}`;
const up = httpUpstream();
const spare = httpUpstream();
serveDuringFile(up, spare);
const pending: Promise<unknown>[] = [];
afterEach(async () => {
  await Promise.allSettled(pending.splice(0));
  up.reset();
  spare.reset();
});
const ctx = {
  waitUntil(p: Promise<unknown>) {
    pending.push(p);
  },
  passThroughOnException() {},
};
const one = { maxAttempts: 1 } as const;
const hrefOf = (input: RequestInfo | URL): string =>
  typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
const quoted = (href: string): string => `${href.replace("http://", "http://user:pw@")} and ${FOREIGN}`;
const sleep = (clock: TestClock, ms: number): Promise<void> =>
  new Promise((resolve) => clock.setTimer(() => resolve(), ms));

// ---------------------------------------------------------------------------------------------------------------
// 1. Symbols in errors

/** Every place a caller can read a secret in `value`: strings, Symbol descriptions and `toString()`, `String(x)`, JSON. */
function secretPaths(value: unknown): string[] {
  const found = new Set<string>();
  const seen = new Set<object>();
  const bad = (text: unknown): boolean => typeof text === "string" && (text.includes(SECRET) || text.includes(":pw@"));
  const tryText = (f: () => unknown): unknown => {
    try {
      return f();
    } catch {
      return undefined;
    }
  };
  const walk = (v: unknown, path: string, depth: number): void => {
    if (typeof v === "symbol") {
      if (bad(v.description) || bad(v.toString()) || bad(String(v))) found.add(`${path} (Symbol)`);
      return;
    }
    if (typeof v === "string") {
      if (bad(v)) found.add(path);
      return;
    }
    if (typeof v !== "object" || v === null || depth > 12 || seen.has(v)) return;
    seen.add(v);
    if (bad(tryText(() => String(v)))) found.add(`${path} (String)`);
    if (bad(tryText(() => JSON.stringify(v)))) found.add(`${path} (JSON)`);
    for (const key of new Set<PropertyKey>([...Reflect.ownKeys(v), "message", "stack", "cause", "errors"]))
      walk(
        tryText(() => (v as Record<PropertyKey, unknown>)[key]),
        `${path}.${String(key)}`,
        depth + 1,
      );
  };
  walk(value, "e", 0);
  return [...found];
}

const withField = (key: string, value: unknown): Error => Object.assign(new Error("request failed"), { [key]: value });
const KINDS: Record<string, (href: string) => unknown> = {
  "a Symbol thrown": (href) => Symbol(`request to ${href} failed`),
  "an Error whose message is a Symbol": (href) => withField("message", Symbol(`request to ${href} failed`)),
  "an Error whose stack is a Symbol": (href) => withField("stack", Symbol(`Error: at ${href}`)),
  "an Error with a Symbol own field": (href) => withField("request", Symbol(`GET ${href}`)),
  "an Error whose cause is a Symbol": (href) => new Error("socket closed", { cause: Symbol(`socket to ${href}`) }),
  "an AggregateError listing a Symbol": (href) =>
    new AggregateError([new Error("mirror 1 refused"), Symbol(`mirror ${href} refused`)], "mirrors failed"),
};

/** Sends with the real fetch (the server sees it), then throws `make`'s value where `when` says. */
const throwing =
  (make: (href: string) => unknown, when: (href: string) => boolean, before?: (href: string) => Promise<void>) =>
  async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const href = hrefOf(input);
    const res = await fetch(input, init);
    if (!when(href)) return res;
    await res.body?.cancel();
    await before?.(href);
    throw make(quoted(href));
  };

interface Outcome {
  kind: string;
  keys: string[];
}
const outcome = (error: unknown): Outcome => ({
  kind:
    error instanceof RetryExhaustedError
      ? "RetryExhaustedError"
      : error instanceof FallbackExhaustedError
        ? "FallbackExhaustedError"
        : `other ${typeof error}`,
  keys: secretPaths(error),
});

/** `make` on every new path: the error's kind, and where a secret stays readable. */
async function drive(make: (href: string) => unknown): Promise<Record<string, Outcome>> {
  const out: Record<string, Outcome> = {};
  const layers: ReturnType<typeof createResilience>[] = [];
  const listened: unknown[] = [];
  const listen = <L extends ReturnType<typeof createResilience>>(layer: L): L => {
    layers.push(layer);
    listened.push(recordEvents(layer).events);
    return layer;
  };
  // (a) up answers 302 to spare (a key in the Location); the library follows; the transport throws on hop 2.
  up.on((hit: Hit) => {
    if (hit.path.startsWith("/start"))
      return void hit.res.writeHead(302, { location: `${spare.base}/next?token=${SECRET}` }).end();
    hit.res.end("ok");
  });
  const redirecting = listen(
    createResilience({
      budget: false,
      retry: one,
      redirects: "library",
      fetch: throwing(make, (href) => href.startsWith(spare.base)),
    }),
  );
  out.redirect = outcome(await rejection(redirecting.fetch(`${up.base}/start?key=${SECRET}`)));
  // (b) A rewrite: the query's steps and the JSON body's steps; the transport throws only on a rewritten request.
  const degrading = listen(
    createResilience({
      budget: false,
      retry: one,
      degradation: degradation({
        rules: [
          { match: `${up.base}/q`, params: { steps: { query: "steps" } } },
          { match: `${up.base}/b`, params: { steps: "steps" } },
        ],
      }),
      fetch: throwing(make, (href) => !href.includes("steps=50")),
    }),
  );
  degrading.degradation.setLevel("medium");
  out.rewriteQuery = outcome(await rejection(degrading.fetch(`${up.base}/q/gen?steps=50&key=${SECRET}`)));
  out.rewriteBody = outcome(
    await rejection(
      degrading.fetch(`${up.base}/b/gen?key=${SECRET}`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": "k1" },
        body: '{"steps":50}',
      }),
    ),
  );
  // (c) A chain: a fails with a plain TypeError (no key), b throws `make`'s; and a hedge: a throws at 100 ms, b
  // (started at 50 ms) at once.
  const clock = new TestClock(0);
  const chained = listen(
    createResilience({
      clock,
      budget: false,
      breaker: false,
      retry: one,
      fetch: throwing(
        make,
        () => true,
        async (href) => {
          if (href.startsWith(up.base) && href.includes("/c/")) throw new TypeError("fetch failed");
          if (href.startsWith(up.base) && href.includes("/h/")) await sleep(clock, 100);
        },
      ),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${up.base}/c` },
            { name: "b", url: `${spare.base}/c?token=${SECRET}` },
          ],
        },
        {
          name: "h",
          endpoints: [
            { name: "a", url: `${up.base}/h` },
            { name: "b", url: `${spare.base}/h` },
          ],
          hedge: { delay: 50 },
        },
      ]),
    }),
  );
  out.chainSecond = outcome(await clock.run(rejection(chained.fetch(`${up.base}/c/jobs?key=${SECRET}`))));
  out.hedge = outcome(await clock.run(rejection(chained.fetch(`${up.base}/h/jobs?key=${SECRET}`))));
  out.execute = outcome(
    await rejection(
      chained.execute(() => {
        throw make(FOREIGN);
      }),
    ),
  );
  // (d) Events, health(), debugInfo() of every layer above, and the info of an answer b served after a threw.
  const served = createResilience({
    budget: false,
    retry: one,
    fetch: throwing(make, (href) => href.startsWith(up.base)),
    fallback: fallback([
      {
        name: "s",
        endpoints: [
          { name: "a", url: `${up.base}/s` },
          { name: "b", url: `${spare.base}/s` },
        ],
      },
    ]),
  });
  listen(served);
  const res = await served.fetch(`${up.base}/s/jobs?key=${SECRET}`);
  await res.text();
  out.observed = {
    kind: `served by ${getResilienceInfo(res)?.endpoint}`,
    keys: secretPaths([listened, layers.map((l) => [l.health(), l.debugInfo()]), getResilienceInfo(res)]),
  };
  return out;
}

const CLEAN: Record<string, Outcome> = {
  redirect: { kind: "RetryExhaustedError", keys: [] },
  rewriteQuery: { kind: "RetryExhaustedError", keys: [] },
  rewriteBody: { kind: "RetryExhaustedError", keys: [] },
  chainSecond: { kind: "FallbackExhaustedError", keys: [] },
  hedge: { kind: "FallbackExhaustedError", keys: [] },
  execute: { kind: "RetryExhaustedError", keys: [] },
  observed: { kind: "served by b", keys: [] },
};

describe("URL redaction of Symbols on the redirect hop, a rewrite, a chain's second endpoint, a hedge, events", () => {
  for (const [kind, make] of Object.entries(KINDS))
    it(`${kind} quoting user:pw@ and ?key=: no secret readable on any path`, async () => {
      // Not vacuous: the value thrown holds the secret.
      expect(secretPaths(make(quoted(`${up.base}/x?key=${SECRET}`))).length).toBeGreaterThan(0);
      // And the walk finds it below a wrapper, as the layer's error would hold it uncut.
      expect(secretPaths(new Error("wrap", { cause: { errors: [make(FOREIGN)] } })).length).toBeGreaterThan(0);
      expect(await drive(make)).toEqual(CLEAN);
      // Every path was driven: hop 2 went out, both rewrites went rewritten, b of both chains was sent to.
      expect(spare.hits.map((h) => h.path.split("?")[0])).toEqual(["/next", "/c/jobs", "/h/jobs", "/s/jobs"]);
      const gen = up.hits.filter((h) => h.path.includes("/gen"));
      expect(gen.map((h) => [h.path.replace(/&key=.*/, ""), h.body])).toEqual([
        ["/q/gen?steps=30", ""],
        [`/b/gen?key=${SECRET}`, '{"steps":30}'],
      ]);
    });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. A Request upload whose stream fails

const enc = new TextEncoder();
/** A stream that yields `chunks` chunks of `size` bytes, then fails with a RangeError carrying an own field. */
function failingStream(chunks: number, size: number) {
  let i = 0;
  let cancelled = false;
  const boom = Object.assign(new RangeError("client went away"), { tag: "mine" });
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i++ < chunks) c.enqueue(enc.encode("x".repeat(size)));
      else c.error(boom);
    },
    cancel() {
      cancelled = true;
    },
  });
  return { boom, stream, cancelled: () => cancelled };
}
const upload = (url: string, stream: ReadableStream<Uint8Array>) =>
  new Request(url, {
    method: "PUT",
    body: stream,
    headers: { "idempotency-key": "k-1", "content-type": "application/json" },
    duplex: "half",
  } as RequestInit);

const READ = "resilience.fetch: the request body could not be read";
const shape = (e: unknown, boom: unknown) => {
  const x = e as Error;
  return `${x?.name}: ${x?.message} | cause is the stream's error: ${x?.cause === boom}`;
};

describe("a Request upload whose stream fails: redirect, rewrite, proxy (Node)", () => {
  const layerOptions = (clock: TestClock) =>
    ({
      clock,
      budget: false,
      maxReplayBytes: 64,
      redirects: "library",
      degradation: degradation({ rules: [{ match: `${up.base}/gen`, params: { steps: { query: "steps" } } }] }),
    }) as const;

  it("early (first chunk, then a RangeError with a field): 'could not be read', cause the stream's error, nothing sent; proxy 400", async () => {
    up.on((hit: Hit) => hit.res.writeHead(307, { location: `${spare.base}/moved` }).end());
    const clock = new TestClock(0);
    const layer = createResilience(layerOptions(clock));
    layer.degradation?.setLevel("medium");
    const events = recordEvents(layer);
    const out: Record<string, string> = {};
    for (const [name, url] of [
      ["redirect", `${up.base}/r`],
      ["rewrite", `${up.base}/gen?steps=50`],
    ] as const) {
      const { boom, stream } = failingStream(1, 4);
      out[name] = shape(await clock.run(rejection(layer.fetch(upload(url, stream)))), boom);
    }
    const proxy = resilientProxy({
      routes: [{ path: "/api", upstream: `${up.base}/gen` }],
      resilience: layerOptions(clock),
    });
    const res = await clock.run(
      proxy.fetch(upload("http://worker.test/api/x?steps=50", failingStream(1, 4).stream), {}, ctx),
    );
    out.proxy = `${res.status} ${await res.text()}`;
    const fine = `TypeError: ${READ} | cause is the stream's error: true`;
    expect(out).toEqual({ redirect: fine, rewrite: fine, proxy: `400 {"error":"the client's request failed"}` });
    // Nothing sent, retried or counted: each call's `request` event says 0 attempts; no breaker counted a failure.
    expect([up.hits.length, spare.hits.length, events.of("retry").length]).toEqual([0, 0, 0]);
    expect(events.of("request").map((e) => `${e.error} ${e.attempts}`)).toEqual(["TypeError 0", "TypeError 0"]);
    expect(Object.values(layer.health().breakers).map((b) => b.failureCount)).toEqual([]);
    events.stop();
  });

  it("past maxReplayBytes, failing while sent: a TypeError whose cause is the stream's error itself (field kept), counted by nothing; proxy 400", async () => {
    up.on((hit: Hit) => hit.res.writeHead(307, { location: `${spare.base}/moved` }).end());
    const clock = new TestClock(0);
    const layer = createResilience(layerOptions(clock));
    layer.degradation?.setLevel("medium");
    const events = recordEvents(layer);
    const out: Record<string, string> = {};
    for (const [name, url] of [
      ["redirect", `${up.base}/r`],
      ["rewrite", `${up.base}/gen?steps=50`],
    ] as const) {
      const { boom, stream } = failingStream(4, 20);
      const e = await clock.run(rejection(layer.fetch(upload(url, stream))));
      out[name] =
        `${(e as Error)?.name} | cause is the stream's error: ${(e as Error)?.cause === boom} | field ${String(((e as Error)?.cause as { tag?: string })?.tag)}`;
    }
    // And the platform's follower (undici's, redirect: "follow") on the same 307 route.
    const platform = createResilience({ ...layerOptions(clock), redirects: "platform" });
    const viaPlatform = failingStream(4, 20);
    const p = await clock.run(rejection(platform.fetch(upload(`${up.base}/r`, viaPlatform.stream))));
    out.platform = `${(p as Error)?.name} | cause is the stream's error: ${(p as Error)?.cause === viaPlatform.boom} | field ${String(((p as Error)?.cause as { tag?: string })?.tag)}`;
    const proxy = resilientProxy({
      routes: [{ path: "/api", upstream: `${up.base}/gen` }],
      resilience: layerOptions(clock),
    });
    const res = await clock.run(
      proxy.fetch(upload("http://worker.test/api/x?steps=50", failingStream(4, 20).stream), {}, ctx),
    );
    out.proxy = `${res.status} ${await res.text()}`;
    const health = JSON.parse(
      await (await proxy.fetch(new Request("http://worker.test/__resilience/health"), {}, ctx)).text(),
    ) as { breakers: Record<string, { failureCount: number }> };
    const held = "TypeError | cause is the stream's error: true | field mine";
    expect(out).toEqual({
      redirect: held,
      rewrite: held,
      platform: held,
      proxy: `400 {"error":"the client's request failed"}`,
    });
    expect(Object.values(platform.health().breakers).map((b) => b.failureCount)).toEqual([0]);
    // No hop 2, no retry, no breaker count; the layer's and the proxy's breakers counted nothing.
    expect(spare.hits).toEqual([]);
    expect(events.of("retry").length + events.of("fallback").length).toBe(0);
    // "counted as no attempt": each call's `request` event.
    expect(events.of("request").map((e) => `${e.error} ${e.attempts}`)).toEqual(["TypeError 0", "TypeError 0"]);
    expect(Object.values(layer.health().breakers).map((b) => b.failureCount)).toEqual([0]);
    expect(Object.values(health.breakers).map((b) => b.failureCount)).toEqual([0]);
    events.stop();
  });

  it("a 307 answered before the body ends (past maxReplayBytes): the body sent once is not replayed, hop 2 never sent", async () => {
    // docs/retry.md: "307/308 replay method and body (a body sent once, a stream or one larger than `maxReplayBytes`
    // as the caller gave it, cannot be: a `TypeError`)"; "the call rejects … with a `RetryExhaustedError` whose
    // `cause` is that failure (the follower's `TypeError` among them)", or, when the stream failed first, the
    // stream's `TypeError`.
    let answered: () => void = () => {};
    const early = new Promise<void>((r) => {
      answered = r;
    });
    const raw: Server = createServer((req, res) => {
      res.writeHead(307, { location: `${spare.base}/moved` }).end();
      res.on("finish", () => answered());
      req.resume();
    });
    await new Promise<void>((r) => raw.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
    try {
      let i = 0;
      const boom = Object.assign(new RangeError("client went away"), { tag: "mine" });
      const stream = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (i++ < 4) return c.enqueue(enc.encode("x".repeat(20)));
          await early;
          c.error(boom);
        },
      });
      const layer = createResilience({ budget: false, maxReplayBytes: 10, redirects: "library" });
      const e = (await rejection(layer.fetch(upload(`${base}/r`, stream)))) as Error;
      const documented =
        (e instanceof RetryExhaustedError && e.cause instanceof TypeError) ||
        (e instanceof TypeError && e.cause === boom);
      expect({ documented, spare: spare.hits.length }, `${e?.name}: ${e?.message}`).toEqual({
        documented: true,
        spare: 0,
      });
    } finally {
      raw.closeAllConnections();
      await new Promise((r) => raw.close(r));
    }
  });
});

/** A stream whose source fails, after `chunks` chunks of 20 bytes, with `error`. */
function streamFailingWith(chunks: number, error: unknown): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (i++ < chunks) c.enqueue(enc.encode("x".repeat(20)));
      else c.error(error);
    },
  });
}
const STREAM_ERRORS: Record<string, () => unknown> = {
  "a RangeError quoting the URL, a url field too": () =>
    Object.assign(new RangeError(`upload to ${FOREIGN} went away`), { url: FOREIGN }),
  "a RangeError whose message is a Symbol quoting the URL": () =>
    Object.assign(new RangeError("x"), { message: Symbol(`upload to ${FOREIGN} went away`) }),
  "a Symbol quoting the URL": () => Symbol(`upload to ${FOREIGN} went away`),
  "an AggregateError listing a Symbol quoting the URL": () =>
    new AggregateError([Symbol(`upload to ${FOREIGN}`)], "parts failed"),
};

// SECURITY.md: "URLs lose their userinfo …, query string and fragment … before they reach any of them (an error's
// causes included …)": the stream's error is the caller's rejection's `cause` (retry.md), so it is cut there too.
describe("a stream error that quotes a URL with a password and key: cut on the upload's paths (Node)", () => {
  it("early and past maxReplayBytes, plain, redirect, rewrite and a chain: a TypeError, no secret readable; proxy 400 says none", async () => {
    up.on((hit: Hit) => hit.res.writeHead(307, { location: `${spare.base}/moved` }).end());
    const clock = new TestClock(0);
    const options = {
      clock,
      budget: false,
      maxReplayBytes: 64,
      redirects: "library",
      degradation: degradation({ rules: [{ match: `${up.base}/gen`, params: { steps: { query: "steps" } } }] }),
    } as const;
    const layer = createResilience({
      ...options,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${up.base}/c` },
            { name: "b", url: `${spare.base}/c` },
          ],
        },
      ]),
    });
    layer.degradation?.setLevel("medium");
    const proxy = resilientProxy({ routes: [{ path: "/api", upstream: `${up.base}/gen` }], resilience: options });
    const out: Record<string, string[]> = {};
    for (const [kind, make] of Object.entries(STREAM_ERRORS)) {
      expect(secretPaths(make()).length).toBeGreaterThan(0);
      for (const [when, chunks] of [
        ["early", 1],
        ["sent", 4],
      ] as const)
        for (const [path, url] of [
          ["plain", `${up.base}/p`],
          ["redirect", `${up.base}/r`],
          ["rewrite", `${up.base}/gen?steps=50`],
          ["chain", `${up.base}/c/x`],
        ] as const) {
          const e = await clock.run(rejection(layer.fetch(upload(url, streamFailingWith(chunks, make())))));
          const leaks = secretPaths(e);
          if (!(e instanceof TypeError) || leaks.length)
            out[`${kind} ${when} ${path}`] = [String((e as Error)?.name), ...leaks];
        }
      const res = await clock.run(
        proxy.fetch(upload("http://worker.test/api/x?steps=50", streamFailingWith(4, make())), {}, ctx),
      );
      const text = `${res.status} ${await res.text()}`;
      if (text !== `400 {"error":"the client's request failed"}`) out[`${kind} proxy`] = [text];
    }
    expect(out).toEqual({});
    expect(spare.hits).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. Deno: the same upload past maxReplayBytes through redirect, rewrite and proxy (built package, child process)

const ROOT = resolve(import.meta.dirname, "../..");
const DENO = resolve(ROOT, "node_modules/.bin/deno");
let project = "";
afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

const SCRIPT = `
import { createResilience } from "@storycore/resilient-fetch";
import { degradation } from "@storycore/resilient-fetch/degradation";
import { resilientProxy } from "@storycore/resilient-fetch/cloudflare";
const [up, SECRET] = JSON.parse(Deno.args.at(-1));
const enc = new TextEncoder();
const failing = (chunks, size) => {
  let i = 0;
  const boom = Object.assign(new RangeError("client went away"), { tag: "mine" });
  const stream = new ReadableStream({ pull(c) { if (i++ < chunks) c.enqueue(enc.encode("x".repeat(size))); else c.error(boom); } });
  return { boom, stream };
};
const upload = (url, stream) => new Request(url, { method: "PUT", body: stream, duplex: "half", headers: { "idempotency-key": "k", "content-type": "application/json" } });
const opts = () => ({ budget: false, maxReplayBytes: 64, redirects: "library",
  degradation: degradation({ rules: [{ match: up + "/gen", params: { steps: { query: "steps" } } }] }) });
const layer = createResilience(opts());
layer.degradation.setLevel("medium");
const shape = (e, boom) => e?.name + " | cause is the stream's error: " + (e?.cause === boom) + " | field " + e?.cause?.tag;
const out = {};
for (const [name, url, chunks] of [["redirectLate", up + "/r", 4], ["rewriteLate", up + "/gen?steps=50", 4], ["redirectEarly", up + "/r", 1]]) {
  const { boom, stream } = failing(chunks, 20);
  out[name] = await layer.fetch(upload(url, stream)).then((r) => "resolved " + r.status, (e) => shape(e, boom));
}
out.breakers = Object.values(layer.health().breakers).map((b) => b.failureCount);
const FOREIGN = "https://user:pw@host.example/?key=" + SECRET;
const leaks = (v, path = "e", seen = new Set(), found = []) => {
  const text = typeof v === "symbol" ? v.description : typeof v === "string" ? v : undefined;
  if (text !== undefined) { if (text.includes(SECRET) || text.includes(":pw@")) found.push(path); return found; }
  if (Object(v) !== v || seen.has(v) || seen.size > 200) return found;
  seen.add(v);
  for (const k of new Set([...Reflect.ownKeys(v), "message", "stack", "cause", "errors"])) {
    let x; try { x = v[k]; } catch {}
    leaks(x, path + "." + String(k), seen, found);
  }
  return found;
};
const kinds = {
  field: () => Object.assign(new RangeError("upload to " + FOREIGN + " went away"), { url: FOREIGN }),
  symbolMessage: () => Object.assign(new RangeError("x"), { message: Symbol("upload to " + FOREIGN) }),
  symbol: () => Symbol("upload to " + FOREIGN),
};
out.secrets = {};
for (const [kind, make] of Object.entries(kinds))
  for (const [path, url] of [["redirect", up + "/r"], ["rewrite", up + "/gen?steps=50"]]) {
    let i = 0;
    const err = make();
    const stream = new ReadableStream({ pull(c) { if (i++ < 4) c.enqueue(enc.encode("x".repeat(20))); else c.error(err); } });
    const e = await layer.fetch(upload(url, stream)).then(() => "resolved", (x) => x);
    const found = leaks(e);
    if (!(e instanceof TypeError) || found.length) out.secrets[kind + " " + path] = [String(e?.name), ...found];
  }
const proxy = resilientProxy({ routes: [{ path: "/api", upstream: up + "/gen" }], resilience: opts() });
const ctx = { waitUntil() {}, passThroughOnException() {} };
const res = await proxy.fetch(upload("http://worker.test/api/x?steps=50", failing(4, 20).stream), {}, ctx);
out.proxy = res.status + " " + (await res.text());
console.log(JSON.stringify(out));
`;

function runDeno(): Promise<Record<string, unknown>> {
  const file = join(project, "upload.mjs");
  writeFileSync(file, SCRIPT);
  return new Promise((done, fail) => {
    const child = spawn(DENO, ["run", "-A", file, JSON.stringify([up.base, SECRET])], {
      cwd: project,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("error", fail);
    child.on("close", () => {
      clearTimeout(timer);
      const line = stdout.split("\n").find((l) => l.startsWith("{"));
      if (!line) return fail(new Error(`deno printed no report: ${stderr.slice(0, 2000)}`));
      done(JSON.parse(line));
    });
  });
}

describe.skipIf(!existsSync(DENO))(
  "Deno: the upload failing past maxReplayBytes through redirect, rewrite, proxy",
  () => {
    it("the layer's TypeError, its cause the stream's error itself (a RangeError with its field); proxy 400", async () => {
      if (!existsSync(resolve(ROOT, "dist/index.js")))
        execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: "ignore" });
      project = mkdtempSync(join(tmpdir(), "pathsfix-fiftyeight-"));
      mkdirSync(join(project, "node_modules/@storycore"), { recursive: true });
      symlinkSync(ROOT, join(project, "node_modules/@storycore/resilient-fetch"), "dir");
      writeFileSync(join(project, "package.json"), JSON.stringify({ name: "p", type: "module" }));
      up.on((hit: Hit) => hit.res.writeHead(307, { location: `${spare.base}/moved` }).end());
      const out = await runDeno();
      const held = "TypeError | cause is the stream's error: true | field mine";
      expect(out).toEqual({
        redirectLate: held,
        rewriteLate: held,
        redirectEarly: held,
        breakers: [0],
        secrets: {},
        proxy: `400 {"error":"the client's request failed"}`,
      });
      expect(spare.hits).toEqual([]);
    }, 60_000);
  },
);

describe("a frozen stream error (retry.md and SECURITY.md: one that quotes a URL arrives as a cut copy)", () => {
  const failing = (error: unknown) =>
    new ReadableStream({
      pull(controller) {
        controller.error(error);
      },
    });
  const send = (error: unknown, path: "plain" | "chain") => {
    const layer = createResilience({
      retry: false,
      fetch: async () => new Response("ok"),
      ...(path === "chain"
        ? {
            fallback: fallback([
              {
                name: "gen",
                endpoints: [
                  { name: "a", url: "https://fa.example/v1" },
                  { name: "b", url: "https://fb.example/v1" },
                ],
              },
            ]),
          }
        : {}),
    });
    const url = path === "chain" ? "https://fa.example/v1/x" : "https://fz.example/v1/x";
    return rejection(
      layer.fetch(new Request(url, { method: "POST", body: failing(error), duplex: "half" } as RequestInit)),
    );
  };

  for (const path of ["plain", "chain"] as const) {
    it(`${path}: quoting a URL, the cause is a plain Error copy keeping name and code, the secret cut`, async () => {
      const error = Object.freeze(
        Object.assign(new RangeError("bad https://u:pw@h.example/?key=sekrit"), { code: "E_BAD", tag: 7 }),
      );
      const rejected = (await send(error, path)) as TypeError & { cause: Error & { code?: string; tag?: number } };
      expect(rejected).toBeInstanceOf(TypeError);
      expect(rejected.cause).not.toBe(error);
      expect(rejected.cause).not.toBeInstanceOf(RangeError);
      expect([rejected.cause.name, rejected.cause.code, rejected.cause.tag]).toEqual([
        "RangeError",
        "E_BAD",
        undefined,
      ]);
      expect(rejected.cause.message).toBe("bad https://h.example/");
      expect(JSON.stringify(rejected.cause) + String(rejected.cause.stack)).not.toMatch(/pw|sekrit/);
    });

    it(`${path}: with nothing to cut, the frozen error is the cause itself`, async () => {
      const error = Object.freeze(Object.assign(new RangeError("disk gone"), { tag: 7 }));
      const rejected = (await send(error, path)) as TypeError;
      expect(rejected.cause).toBe(error);
    });
  }

  it("the docs say so", async () => {
    const { readFile } = await import("node:fs/promises");
    const read = async (file: string) =>
      (await readFile(new URL(`../../${file}`, import.meta.url), "utf8")).replace(/\s+/g, " ");
    expect(await read("docs/retry.md")).toContain(
      "a stream's error that quotes a URL has it cut, and one frozen is then a cut copy in its place",
    );
    expect(await read("SECURITY.md")).toContain(
      "is replaced by a plain `Error` that keeps its `name`, `code`, cut message, cause, `errors` and URL fields, not its class, stack or other fields",
    );
  });
});
