/**
 * Outside-in attack on idempotency keys, after today's fix ("`retry.idempotencyKey: true` adds its key to a POST or
 * PATCH that `retryOn.methods` lists too (and to one a `transform` makes)", CHANGELOG.md): which requests get a key,
 * whether it is the same on every retry, endpoint, hedge and hop, whether a key is ever invented with the option off,
 * and whether a caller's own key is ever replaced, counted by what real servers receive on each attempt.
 *
 * Docs:
 * - docs/retry.md "## Idempotency": "A POST or PATCH without an `Idempotency-Key` (an empty one, or one of spaces, is
 *   none, as a server reads it) is sent again (retried, or passed to the next endpoint of a chain: one rule for both)
 *   only when it surely was not processed: on 429 and 503 …"; "With `retry.idempotencyKey: true`, POST and PATCH
 *   requests without a key get one (`crypto.randomUUID()`), the same on every retry of that call (a POST or PATCH
 *   that a chain's `transform` makes of another method gets one of its own, the same on every retry of that
 *   endpoint)"; "## Bodies": "(`init.headers`, else a `Request` input's own)", "(`patch` goes as `patch` … the retry
 *   policy and the `Idempotency-Key` rules still read it as PATCH)"; "## Redirects": "307/308 replay method and
 *   body", the allowlist "`idempotency-key`"; "## Generic work": "wrapped around a layer's `fetch`, they send a POST
 *   without an `Idempotency-Key` again … (give it a key …)".
 * - JSDoc of `RetryOptions.idempotencyKey`: "Add an `Idempotency-Key` (a random UUID: `crypto.randomUUID()`, or
 *   `crypto.getRandomValues` in a page that is no secure context) to POST and PATCH requests that have none: one key
 *   per logical call, reused on every retry and fallback, which makes them retryable like GET"; of
 *   `RetryOn.methods`: "Other methods (POST, PATCH) are retried only on 429 and 503 … unless the request carries an
 *   `Idempotency-Key` header".
 * - docs/options.md: `retry.idempotencyKey` "`false` | add an `Idempotency-Key` to POST/PATCH"; `retry.retryOn.methods`
 *   "methods retried on any retryable outcome, in any case".
 * - docs/fallback.md: "Moving on follows the rule of a retry …: a POST without an `Idempotency-Key` goes to the next
 *   endpoint only when it surely was not processed"; `transform`: "with `retry.idempotencyKey`, a POST or PATCH it
 *   makes of another method gets an `Idempotency-Key` of its own, as the caller's would have, unless it dropped the
 *   key the caller's request had, its own or the one added for it: a key it drops stays dropped"; "**`hedge: {
 *   delay }`**, for idempotent requests or requests with an `Idempotency-Key` only (as each endpoint is sent them:
 *   once a `transform` has made one that may not be sent twice, a POST without a key, no hedge starts while it is
 *   out …): when the running endpoint has given no acceptable answer after `delay` …, the next endpoint starts too";
 *   "Credentials never cross origins" (allowlist with `idempotency-key`). JSDoc of `FallbackChainOptions.hedge`:
 *   "Only for idempotent requests or requests with an `Idempotency-Key`".
 * - SECURITY.md: "only `accept`, …, `idempotency-key`, `user-agent` … go"; "without an `Idempotency-Key` (an empty
 *   one is none), a POST or PATCH is sent again … only when it surely was not processed … hedging needs a key".
 * - docs/cloudflare.md: 502 for "a `429` or `503` that came after another request of the call … for a client's POST
 *   or PATCH without a key, when `retry.idempotencyKey` is on".
 *
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `resilientProxy` (./cloudflare), `TestClock` (./testing); two node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) recording every request's method and `Idempotency-Key`, and a raw TCP server for a
 * lower-case `patch` (node:http refuses it with a 400 before any handler runs).
 *
 * Paths: plain call; `Request` input (its own headers, `init.headers` replacing them); fallback chain without and
 * with `transform` (PUT→POST, PUT→`post`, PUT→PATCH, PUT→`patch`, POST→PUT, one that drops the key, one that sets
 * its own, one to another origin copying the key into a `Headers` of its own); hedged chain (keyless POST listed
 * and unlisted, on and off; PUT→POST transforms; keying transforms); degradation rewrite (JSON rule and level
 * header); redirects (`redirects: "library"`: 307, 308, 303, 302, cross-origin 307, a 307 whose target answers
 * 500); `resilientProxy` (upstream and chain routes, client key and none); the ky client; `execute` around a fetch;
 * a layer used as another's `fetch`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed since, so plain `it`):
 * 1. docs/fallback.md "`hedge: { delay }`, for idempotent requests or requests with an `Idempotency-Key` only (as
 *    each endpoint is sent them …): when the running endpoint has given no acceptable answer after `delay` …, the
 *    next endpoint starts too". Observed: a caller's keyless POST whose every endpoint's `transform` sets an
 *    `Idempotency-Key` of its own (each endpoint is sent a keyed POST, which the chain then retries and moves on as
 *    a keyed one: held below) is never hedged: the primary hangs, the spare receives nothing at `delay`, and the
 *    call ends at `timeout.total` with a `TimeoutError`. The same for a keyless POST every `transform` makes a PUT.
 *    Cause: src/fallback/try-endpoints.ts `tryEndpoints` creates the `HedgeLedger` only when the caller's request
 *    is safe to send twice (`request.idempotent && request.replay.allowed && hedge`), before any `transform` ran;
 *    `sendToEndpoint` judges each endpoint on what it is sent (`asSent`, `hedge.send(name, !request.idempotent)`),
 *    but there is no ledger then, so `hedgeDelay` is `undefined`.
 *
 * Held (plain `it`):
 * - Plain call: with the option, a keyless POST answered 500, 500, 200 goes three times under one UUID v4 key
 *   (another call gets another); PATCH the same, lower-case `patch` too (sent as `patch`); a POST listed in
 *   `retryOn.methods` (`"post"`, lower case) gets one key on its three attempts (today's fix); PUT, DELETE and GET
 *   get none. Without the option no key is ever invented: a keyless POST goes once after a 500, a PATCH three times
 *   after 503s, and a POST listed in `retryOn.methods` three times after 500s, always without a key. `crypto.randomUUID` missing: a v4 UUID
 *   from `getRandomValues`.
 * - A caller's key is kept as given on every attempt, whatever its spelling (record, upper case, `Headers`, pairs),
 *   and one after an empty value (`, k1` as fetch joins them); an empty or spaces-only key is none: replaced with
 *   the option, and without it the POST is not sent again after a 500.
 * - `Request` input: its own key kept; `init.headers` replacing them without a key gets a generated key (none with
 *   the option off, and no resend after a 500); a keyless `Request` one key on every attempt.
 * - Chain: one key on every retry of A and at B; without the option a keyless POST stops after A's 500 and moves on
 *   after 503s without a key; a listed POST keyed across both. `transform` PUT→POST (and `post`, PATCH, `patch`):
 *   a key of its own per endpoint, the same on its retries; none without the option, the chain then stopping after
 *   the 500. POST→PUT keeps the caller's key. A `transform` that drops the key (the generated one, or the caller's
 *   own) leaves it dropped (no resend after a 500, no move on), as does a PUT→POST that drops the PUT's own key. A
 *   `transform` that sets its own key: kept, retried, moved on. A `transform` to another origin that copies the key
 *   into a `Headers` of its own: the key goes.
 * - Hedge: a keyless unlisted POST is not hedged without the option; with it (or listed, with it) both endpoints
 *   receive the same key at `delay`; PUT→POST transforms: each endpoint its own key; without the option the spare is
 *   held back.
 * - Degradation: the rewritten body and level header go under one key on three attempts; none without the option.
 * - Redirects: 307 and 308 keep the key on the hop, and a 307 whose target answered 500 is retried from the first
 *   URL under the same key; a cross-origin 307 carries the key (and a caller's own); without the option neither hop
 *   has one.
 * - `resilientProxy`: a client's own key goes on every attempt and its 503 is passed on; a keyless client POST gets
 *   one key on every attempt and a 503 after retries is a 502 (listed in `methods` too, an empty client key too);
 *   without the option no key and the 503 is passed on; a chain route keys both endpoints alike.
 * - ky: one key on every attempt; a caller's own kept; none without the option.
 * - `execute` around a fetch with the caller's own key: every attempt under that key. A layer used as another's
 *   `fetch`: the outer key is used by the inner layer and on the outer retry; with the outer option off, the inner
 *   layer's retries under its own key are not sent again by the outer.
 *
 * Docs-silent (not pinned):
 * - A POST listed in `retryOn.methods` with `idempotencyKey` off is retried after a 500, moved on and hedged with no
 *   key at all, which `retryOn.methods` allows but SECURITY.md's "A paid request is never processed twice … hedging
 *   needs a key" does not mention.
 * - Two empty values (`[["idempotency-key", ""], ["Idempotency-Key", ""]]`) reach the server as `,` and count as a
 *   key (retried after a 500, never replaced), and `{ "idempotency-key": undefined }` goes as the key `undefined`
 *   (fetch's reading of a record): every such call shares one key, so a server that honours it de-duplicates
 *   distinct jobs. The ky client drops an `undefined` header, so there the layer keys the call.
 * - `degradation({ levelHeader: "Idempotency-Key" })` is accepted and overwrites every key, the caller's own too,
 *   with the level name (`low`): distinct POSTs share one key. So would an endpoint's own `headers` naming the key
 *   (set over the caller's, by src/fallback/endpoint-request.ts `withOwnHeaders`; not driven here).
 * - A 303 (or 301/302) that turns a POST into a GET carries the POST's `Idempotency-Key` on the GET (only body
 *   headers are dropped).
 * - `execute(fn, { retry: { idempotencyKey: true } })` is accepted and does nothing; a fetch inside `execute`'s
 *   `fn` gets a new key on each of `execute`'s attempts.
 * - `resilientProxy`: for a client's PUT that a chain route's `transform` makes a POST, keyed by the layer and
 *   retried past a 500 under that key, a later 503 is passed on (the 502 rule names a client's POST or PATCH only):
 *   the client's next PUT goes under another key.
 */
import { once } from "node:events";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, type HttpUpstream, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ON: ResilienceOptions = { retry: { idempotencyKey: true } };

/** A fresh TestClock and layer (no jitter wait: `random` 0). */
function layerOf(options: ResilienceOptions = {}) {
  const clock = new TestClock(1_000_000);
  return { clock, layer: createResilience({ clock, random: () => 0, ...options }) };
}

/** `server` answers `statuses` in turn, then 200. */
function script(server: HttpUpstream, statuses: readonly number[]): void {
  let i = 0;
  server.on((hit: Hit) => {
    hit.res.writeHead(statuses[i++] ?? 200);
    hit.res.end("x");
  });
}

/** What `server` received: the method and the `Idempotency-Key` ("none" when absent) of each request. */
const sent = (server: HttpUpstream): string[] =>
  server.hits.map((hit) => `${hit.method} ${(hit.headers["idempotency-key"] as string | undefined) ?? "none"}`);

/** The keys `server` received, in order ("none" when absent). */
const keys = (server: HttpUpstream): string[] =>
  server.hits.map((hit) => (hit.headers["idempotency-key"] as string | undefined) ?? "none");

/** How a call ended (its status, or its error's name), on `clock`. */
async function outcome(call: Promise<Response>, clock: TestClock): Promise<string> {
  try {
    const response = await clock.run(call);
    await response.arrayBuffer();
    return String(response.status);
  } catch (error) {
    return (error as Error).name;
  }
}

/** One key, the same on every entry, that is a generated UUID. */
function oneGeneratedKey(list: readonly string[]): string {
  expect(list.length).toBeGreaterThan(0);
  expect(new Set(list).size).toBe(1);
  const key = list[0] as string;
  expect(key).toMatch(UUID_V4);
  return key;
}

const POST = { method: "POST", body: '{"prompt":"cat"}', headers: { "content-type": "application/json" } };

type View = { method: string; url: string; headers: Headers; body: unknown };
type Transform = (request: View) => View;

/** A two-endpoint chain at A's `/v1` (then B's), with optional transforms and hedge. */
function chainLayer(
  options: ResilienceOptions,
  transforms: { a?: Transform; b?: Transform } = {},
  hedge?: number,
): { clock: TestClock; layer: ReturnType<typeof createResilience> } {
  return layerOf({
    ...options,
    fallback: fallback([
      {
        name: "c",
        ...(hedge === undefined ? {} : { hedge: { delay: hedge } }),
        endpoints: [
          { name: "a", url: `${A.base}/v1`, ...(transforms.a ? { transform: transforms.a } : {}) },
          { name: "b", url: `${B.base}/v1`, ...(transforms.b ? { transform: transforms.b } : {}) },
        ],
      },
    ]),
  });
}

const toMethod =
  (method: string): Transform =>
  (request) => ({ ...request, method });
const dropKey: Transform = (request) => {
  request.headers.delete("idempotency-key");
  return request;
};
const ownKey =
  (key: string): Transform =>
  (request) => {
    request.headers.set("Idempotency-Key", key);
    return request;
  };

describe("plain call", () => {
  it("with the option, a keyless POST and PATCH go under one UUID v4 key on every attempt; another call gets another", async () => {
    const { clock, layer } = layerOf(ON);
    const seen: string[][] = [];
    for (const method of ["POST", "PATCH", "POST"]) {
      A.reset();
      script(A, [500, 500]);
      expect(await outcome(layer.fetch(`${A.base}/x`, { method, body: "b" }), clock)).toBe("200");
      expect(A.hits.map((hit) => hit.method)).toEqual([method, method, method]);
      seen.push(keys(A));
      oneGeneratedKey(keys(A));
    }
    expect(new Set(seen.map((list) => list[0])).size).toBe(3);
  });

  it("a POST listed in retryOn.methods (in lower case) is keyed, one key on its three attempts (today's fix)", async () => {
    const { clock, layer } = layerOf({ retry: { idempotencyKey: true, retryOn: { methods: ["post", "patch"] } } });
    script(A, [500, 500]);
    expect(await outcome(layer.fetch(`${A.base}/x`, { method: "post", body: "b" }), clock)).toBe("200");
    expect(A.hits.map((hit) => hit.method)).toEqual(["POST", "POST", "POST"]);
    oneGeneratedKey(keys(A));
  });

  it("PUT, DELETE and GET get no key with the option", async () => {
    const { clock, layer } = layerOf(ON);
    for (const method of ["PUT", "DELETE", "GET"]) {
      A.reset();
      script(A, [500]);
      const init = method === "GET" ? { method } : { method, body: "b" };
      expect(await outcome(layer.fetch(`${A.base}/x`, init), clock)).toBe("200");
      expect(sent(A)).toEqual([`${method} none`, `${method} none`]);
    }
  });

  it("without the option no key is ever invented: a keyless POST once after a 500, a PATCH three times after 503s; a listed POST three times after 500s, keyless", async () => {
    const off = layerOf();
    script(A, [500]);
    expect(await outcome(off.layer.fetch(`${A.base}/x`, { method: "POST", body: "b" }), off.clock)).toBe("500");
    expect(sent(A)).toEqual(["POST none"]);
    A.reset();
    script(A, [503, 503]);
    expect(await outcome(off.layer.fetch(`${A.base}/x`, { method: "PATCH", body: "b" }), off.clock)).toBe("200");
    expect(sent(A)).toEqual(["PATCH none", "PATCH none", "PATCH none"]);
    A.reset();
    script(A, [500, 500]);
    const listed = layerOf({ retry: { retryOn: { methods: ["POST"] } } });
    expect(await outcome(listed.layer.fetch(`${A.base}/x`, { method: "POST", body: "b" }), listed.clock)).toBe("200");
    expect(sent(A)).toEqual(["POST none", "POST none", "POST none"]);
  });

  it("a caller's own key is kept as given, whatever its spelling; one after an empty value too", async () => {
    const given: Array<[HeadersInit, string]> = [
      [{ "Idempotency-Key": "rec-1" }, "rec-1"],
      [{ "IDEMPOTENCY-KEY": "upper-1" }, "upper-1"],
      [new Headers({ "idempotency-key": "hdrs-1" }), "hdrs-1"],
      [[["idempotency-key", "pair-1"]], "pair-1"],
      [
        [
          ["idempotency-key", ""],
          ["Idempotency-Key", "k1"],
        ],
        ", k1",
      ],
      [{ "idempotency-key": "  padded  " }, "padded"],
    ];
    for (const [headers, wire] of given) {
      A.reset();
      script(A, [500, 500]);
      // A fresh layer each: the retry budget's 10 free retries a second would run out on a clock that stands still.
      const { clock, layer } = layerOf(ON);
      expect(await outcome(layer.fetch(`${A.base}/x`, { method: "POST", body: "b", headers }), clock)).toBe("200");
      expect(keys(A)).toEqual([wire, wire, wire]);
    }
  });

  it("an empty or spaces-only key is none: replaced with the option; without it the POST is not sent again after a 500", async () => {
    const on = layerOf(ON);
    for (const value of ["", "   ", "\t"]) {
      A.reset();
      script(A, [500, 500]);
      const init = { method: "POST", body: "b", headers: { "Idempotency-Key": value } };
      expect(await outcome(on.layer.fetch(`${A.base}/x`, init), on.clock)).toBe("200");
      oneGeneratedKey(keys(A));
    }
    const off = layerOf();
    A.reset();
    script(A, [500]);
    const init = { method: "POST", body: "b", headers: { "Idempotency-Key": " " } };
    expect(await outcome(off.layer.fetch(`${A.base}/x`, init), off.clock)).toBe("500");
    expect(A.hits.length).toBe(1);
  });

  it("without crypto.randomUUID (a page that is no secure context) the key is a v4 UUID from getRandomValues", async () => {
    const original = crypto.randomUUID;
    Object.defineProperty(crypto, "randomUUID", { value: undefined, configurable: true, writable: true });
    try {
      const { clock, layer } = layerOf(ON);
      script(A, [500]);
      expect(await outcome(layer.fetch(`${A.base}/x`, { method: "POST", body: "b" }), clock)).toBe("200");
      oneGeneratedKey(keys(A));
    } finally {
      Object.defineProperty(crypto, "randomUUID", { value: original, configurable: true, writable: true });
    }
  });
});

describe("lower-case patch (a raw server: node:http refuses the method)", () => {
  const lines: string[] = [];
  let answered = 0;
  let base = "";
  const raw = createTcpServer((socket: Socket) => {
    let buffer = "";
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("latin1");
      for (;;) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buffer.slice(0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        buffer = buffer.slice(end + 4 + length);
        const method = head.slice(0, head.indexOf(" "));
        lines.push(`${method} ${/\r\nidempotency-key: *([^\r]*)/i.exec(head)?.[1] ?? "none"}`);
        socket.write(`HTTP/1.1 ${answered++ < 2 ? 500 : 200} X\r\ncontent-length: 1\r\n\r\nx`);
      }
    });
  });
  beforeAll(async () => {
    raw.listen(0, "127.0.0.1");
    await once(raw, "listening");
    base = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    raw.close();
  });

  it("`patch` goes as `patch` under one key on every attempt, and a transform's `patch` gets a key of its own", async () => {
    const { clock, layer } = layerOf(ON);
    lines.length = 0;
    answered = 0;
    expect(await outcome(layer.fetch(`${base}/x`, { method: "patch", body: "b" }), clock)).toBe("200");
    expect(lines.map((line) => line.split(" ")[0])).toEqual(["patch", "patch", "patch"]);
    oneGeneratedKey(lines.map((line) => line.split(" ")[1] as string));

    const chained = layerOf({
      ...ON,
      fallback: fallback([{ name: "p", endpoints: [{ name: "r", url: `${base}/v1`, transform: toMethod("patch") }] }]),
    });
    lines.length = 0;
    answered = 0;
    const init = { method: "PUT", body: "b" };
    expect(await outcome(chained.layer.fetch(`${base}/v1/x`, init), chained.clock)).toBe("200");
    expect(lines.map((line) => line.split(" ")[0])).toEqual(["patch", "patch", "patch"]);
    oneGeneratedKey(lines.map((line) => line.split(" ")[1] as string));

    const off = layerOf();
    lines.length = 0;
    answered = 0;
    expect(await outcome(off.layer.fetch(`${base}/x`, { method: "patch", body: "b" }), off.clock)).toBe("500");
    expect(lines).toEqual(["patch none"]);
  });
});

describe("Request input", () => {
  it("its own key is kept; init.headers replacing its headers leaves a keyless call (keyed with the option); a keyless Request gets one key", async () => {
    const { clock, layer } = layerOf(ON);
    const own = () =>
      new Request(`${A.base}/x`, { method: "POST", body: "b", headers: { "idempotency-key": "req-1" } });
    script(A, [500, 500]);
    expect(await outcome(layer.fetch(own()), clock)).toBe("200");
    expect(keys(A)).toEqual(["req-1", "req-1", "req-1"]);

    A.reset();
    script(A, [500, 500]);
    expect(await outcome(layer.fetch(own(), { headers: { "x-trace": "1" } }), clock)).toBe("200");
    const generated = oneGeneratedKey(keys(A));
    expect(generated).not.toBe("req-1");

    A.reset();
    script(A, [500, 500]);
    expect(await outcome(layer.fetch(new Request(`${A.base}/x`, { method: "POST", body: "b" })), clock)).toBe("200");
    oneGeneratedKey(keys(A));

    const off = layerOf();
    A.reset();
    script(A, [500]);
    expect(await outcome(off.layer.fetch(own(), { headers: { "x-trace": "1" } }), off.clock)).toBe("500");
    expect(sent(A)).toEqual(["POST none"]);
  });
});

describe("fallback chain", () => {
  it("one key on every retry of A and at B; without the option a keyless POST stops after A's 500 and moves on after 503s keyless", async () => {
    const on = chainLayer(ON);
    script(A, [500, 500, 500]);
    expect(await outcome(on.layer.fetch(`${A.base}/v1/x`, POST), on.clock)).toBe("200");
    const key = oneGeneratedKey([...keys(A), ...keys(B)]);
    expect(keys(A)).toEqual([key, key, key]);

    A.reset();
    B.reset();
    const off = chainLayer({});
    script(A, [500]);
    expect(await outcome(off.layer.fetch(`${A.base}/v1/x`, POST), off.clock)).toBe("500");
    expect([sent(A), sent(B)]).toEqual([["POST none"], []]);

    A.reset();
    script(A, [503, 503, 503]);
    expect(await outcome(off.layer.fetch(`${A.base}/v1/x`, POST), off.clock)).toBe("200");
    expect([sent(A), sent(B)]).toEqual([["POST none", "POST none", "POST none"], ["POST none"]]);
  });

  it("a listed POST is keyed across both endpoints", async () => {
    const { clock, layer } = chainLayer({
      retry: { idempotencyKey: true, retryOn: { methods: ["GET", "PUT", "POST"] } },
    });
    script(A, [500, 500, 500]);
    expect(await outcome(layer.fetch(`${A.base}/v1/x`, POST), clock)).toBe("200");
    expect(A.hits.length + B.hits.length).toBe(4);
    oneGeneratedKey([...keys(A), ...keys(B)]);
  });

  it("a transform's POST (POST, `post`, PATCH) of a PUT gets a key of its own per endpoint, the same on its retries; none without the option", async () => {
    for (const method of ["POST", "post", "PATCH"]) {
      A.reset();
      B.reset();
      const { clock, layer } = chainLayer(ON, { a: toMethod(method), b: toMethod(method) });
      script(A, [500, 500, 500]);
      script(B, [500]);
      expect(await outcome(layer.fetch(`${A.base}/v1/x`, { method: "PUT", body: "{}" }), clock)).toBe("200");
      const upper = method.toUpperCase();
      expect(A.hits.map((hit) => hit.method)).toEqual([upper, upper, upper]);
      expect(B.hits.map((hit) => hit.method)).toEqual([upper, upper]);
      const atA = oneGeneratedKey(keys(A));
      const atB = oneGeneratedKey(keys(B));
      expect(atA).not.toBe(atB);
    }
    A.reset();
    B.reset();
    const off = chainLayer({}, { a: toMethod("POST"), b: toMethod("POST") });
    script(A, [500]);
    expect(await outcome(off.layer.fetch(`${A.base}/v1/x`, { method: "PUT", body: "{}" }), off.clock)).toBe("500");
    expect([sent(A), sent(B)]).toEqual([["POST none"], []]);
  });

  it("a transform's PUT of a keyed POST carries the caller's key", async () => {
    const { clock, layer } = chainLayer(ON, { a: toMethod("PUT") });
    script(A, [500, 500, 500]);
    expect(await outcome(layer.fetch(`${A.base}/v1/x`, POST), clock)).toBe("200");
    expect(A.hits.map((hit) => hit.method)).toEqual(["PUT", "PUT", "PUT"]);
    expect(B.hits.map((hit) => hit.method)).toEqual(["POST"]);
    oneGeneratedKey([...keys(A), ...keys(B)]);
  });

  it("a key a transform drops stays dropped: the generated one, the caller's own, a PUT's own made a POST", async () => {
    const generated = chainLayer(ON, { a: dropKey });
    script(A, [500]);
    expect(await outcome(generated.layer.fetch(`${A.base}/v1/x`, POST), generated.clock)).toBe("500");
    expect([sent(A), sent(B)]).toEqual([["POST none"], []]);

    A.reset();
    const callers = chainLayer({}, { a: dropKey });
    script(A, [500]);
    const keyed = { ...POST, headers: { ...POST.headers, "idempotency-key": "mine-1" } };
    expect(await outcome(callers.layer.fetch(`${A.base}/v1/x`, keyed), callers.clock)).toBe("500");
    expect([sent(A), sent(B)]).toEqual([["POST none"], []]);

    A.reset();
    const put = chainLayer(ON, { a: (request) => dropKey(toMethod("POST")(request)) });
    script(A, [500]);
    const init = { method: "PUT", body: "{}", headers: { "idempotency-key": "put-1" } };
    expect(await outcome(put.layer.fetch(`${A.base}/v1/x`, init), put.clock)).toBe("500");
    expect([sent(A), sent(B)]).toEqual([["POST none"], []]);
  });

  it("a transform that sets its own key: kept (never replaced), retried and moved on as a keyed POST, with the option or without", async () => {
    for (const options of [ON, {}]) {
      A.reset();
      B.reset();
      const { clock, layer } = chainLayer(options, { a: ownKey("t-key-a"), b: ownKey("t-key-b") });
      script(A, [500, 500, 500]);
      script(B, [500]);
      expect(await outcome(layer.fetch(`${A.base}/v1/x`, POST), clock)).toBe("200");
      expect(keys(A)).toEqual(["t-key-a", "t-key-a", "t-key-a"]);
      expect(keys(B)).toEqual(["t-key-b", "t-key-b"]);
    }
  });

  it("a transform to another origin that copies the key into a Headers of its own: the key goes (it is allowlisted)", async () => {
    const copy: Transform = (request) => ({
      ...request,
      headers: new Headers({
        "idempotency-key": request.headers.get("idempotency-key") ?? "",
        "content-type": "application/json",
      }),
    });
    const { clock, layer } = chainLayer(ON, { b: copy });
    script(A, [500, 500, 500]);
    script(B, [500]);
    expect(await outcome(layer.fetch(`${A.base}/v1/x`, POST), clock)).toBe("200");
    expect(B.hits.length).toBe(2);
    oneGeneratedKey([...keys(A), ...keys(B)]);
  });
});

describe("hedged chain (A hangs, hedge delay 1000 ms, total 10 s)", () => {
  /** Starts the call, waits for A's first request (real I/O), then runs the clock: when B started, and the outcome. */
  async function hedged(
    options: ResilienceOptions,
    init: RequestInit,
    transforms: { a?: Transform; b?: Transform } = {},
  ): Promise<{ outcome: string; bAt: number[] }> {
    A.on(() => {});
    const bAt: number[] = [];
    const { clock, layer } = chainLayer({ ...options, timeout: { total: 10_000 } }, transforms, 1000);
    B.on((hit: Hit) => {
      bAt.push(clock.now() - 1_000_000);
      hit.res.writeHead(200);
      hit.res.end("b");
    });
    const call = layer.fetch(`${A.base}/v1/x`, init);
    call.catch(() => {});
    await A.nth(1);
    return { outcome: await outcome(call, clock), bAt };
  }

  it("a keyless POST is not hedged without the option; with it (or listed, with it) both endpoints get the same key at the delay", async () => {
    const off = await hedged({}, POST);
    expect(off).toEqual({ outcome: "TimeoutError", bAt: [] });
    expect(sent(A)).toEqual(["POST none"]);
    for (const options of [ON, { retry: { idempotencyKey: true, retryOn: { methods: ["GET", "POST"] } } }]) {
      A.reset();
      B.reset();
      expect(await hedged(options, POST)).toEqual({ outcome: "200", bAt: [1000] });
      oneGeneratedKey([...keys(A), ...keys(B)]);
    }
  });

  it("PUT→POST transforms: hedged with a key of its own at each endpoint; without the option the spare is held back", async () => {
    const to = { a: toMethod("POST"), b: toMethod("POST") };
    expect(await hedged(ON, { method: "PUT", body: "{}" }, to)).toEqual({ outcome: "200", bAt: [1000] });
    expect(oneGeneratedKey(keys(A))).not.toBe(oneGeneratedKey(keys(B)));
    A.reset();
    B.reset();
    expect(await hedged({}, { method: "PUT", body: "{}" }, to)).toEqual({ outcome: "TimeoutError", bAt: [] });
    expect(sent(A)).toEqual(["POST none"]);
  });

  it("defect 1: a keyless POST every transform sends with a key of its own is hedged at the delay", async () => {
    const keyed = { a: ownKey("t-key-a"), b: ownKey("t-key-b") };
    const result = await hedged({}, POST, keyed);
    expect(sent(A)).toEqual(["POST t-key-a"]);
    // docs/fallback.md: hedging is for requests with an Idempotency-Key "as each endpoint is sent them".
    expect(result).toEqual({ outcome: "200", bAt: [1000] });
    expect(sent(B)).toEqual(["POST t-key-b"]);
  });

  it("defect 1 (method): a keyless POST every transform sends as a PUT is hedged at the delay", async () => {
    const result = await hedged({}, POST, { a: toMethod("PUT"), b: toMethod("PUT") });
    expect(sent(A)).toEqual(["PUT none"]);
    expect(result).toEqual({ outcome: "200", bAt: [1000] });
    expect(sent(B)).toEqual(["PUT none"]);
  });
});

describe("degradation rewrite", () => {
  it("the rewritten body and level header go under one key on three attempts; none without the option", async () => {
    for (const options of [ON, {}]) {
      A.reset();
      const clock = new TestClock(1_000_000);
      const layer = createResilience({
        clock,
        random: () => 0,
        ...options,
        degradation: degradation({
          levelHeader: "x-level",
          rules: [{ match: `${A.base}/v1`, params: { quality: "quality" } }],
        }),
      });
      layer.degradation.setLevel("low");
      script(A, [500, 500]);
      const init = { method: "POST", body: '{"quality":90}', headers: { "content-type": "application/json" } };
      const ended = await outcome(layer.fetch(`${A.base}/v1/x`, init), clock);
      for (const hit of A.hits) {
        expect(hit.body).not.toBe('{"quality":90}');
        expect(hit.headers["x-level"]).toBe("low");
      }
      if (options === ON) {
        expect(ended).toBe("200");
        expect(A.hits.length).toBe(3);
        oneGeneratedKey(keys(A));
      } else {
        expect(ended).toBe("500");
        expect(sent(A)).toEqual(["POST none"]);
      }
    }
  });
});

describe('redirects ("library")', () => {
  /** A: `/r` redirects with `status` to `/t` (or B's `/t` for `/rx`); `/t` answers `target` statuses in turn, then 200. */
  function redirecting(status: number, target: readonly number[] = []): void {
    let i = 0;
    const answer = (hit: Hit) => {
      hit.res.writeHead(target[i++] ?? 200);
      hit.res.end("x");
    };
    A.on((hit: Hit) => {
      if (hit.path === "/r" || hit.path === "/rx") {
        hit.res.writeHead(status, { location: hit.path === "/r" ? "/t" : `${B.base}/t` });
        hit.res.end();
      } else answer(hit);
    });
    B.on(answer);
  }

  it("307 and 308 keep the key on the hop; a cross-origin 307 carries it; 303 and 302 make a GET; none without the option", async () => {
    for (const status of [307, 308, 303, 302]) {
      A.reset();
      B.reset();
      redirecting(status);
      const { clock, layer } = layerOf({ ...ON, redirects: "library" });
      expect(await outcome(layer.fetch(`${A.base}/r`, { method: "POST", body: "b" }), clock)).toBe("200");
      const method = status >= 307 ? "POST" : "GET";
      expect(A.hits.map((hit) => `${hit.method} ${hit.path}`)).toEqual(["POST /r", `${method} /t`]);
      oneGeneratedKey(keys(A));

      A.reset();
      const off = layerOf({ redirects: "library" });
      redirecting(status);
      expect(await outcome(off.layer.fetch(`${A.base}/r`, { method: "POST", body: "b" }), off.clock)).toBe("200");
      expect(keys(A)).toEqual(["none", "none"]);
    }
    A.reset();
    B.reset();
    redirecting(307);
    const { clock, layer } = layerOf({ ...ON, redirects: "library" });
    expect(await outcome(layer.fetch(`${A.base}/rx`, { method: "POST", body: "b" }), clock)).toBe("200");
    const key = oneGeneratedKey([...keys(A), ...keys(B)]);
    expect(sent(B)).toEqual([`POST ${key}`]);
    A.reset();
    B.reset();
    redirecting(307);
    const init = { method: "POST", body: "b", headers: { "Idempotency-Key": "own-x", authorization: "Bearer s" } };
    expect(await outcome(layer.fetch(`${A.base}/rx`, init), clock)).toBe("200");
    expect(sent(B)).toEqual(["POST own-x"]);
    expect(B.hits[0]?.headers.authorization).toBeUndefined();
  });

  it("a 307 whose target answered 500 is retried from the first URL under the same key", async () => {
    redirecting(307, [500]);
    const { clock, layer } = layerOf({ ...ON, redirects: "library" });
    expect(await outcome(layer.fetch(`${A.base}/r`, { method: "POST", body: "b" }), clock)).toBe("200");
    expect(A.hits.map((hit) => hit.path)).toEqual(["/r", "/t", "/r", "/t"]);
    oneGeneratedKey(keys(A));
  });
});

describe("resilientProxy", () => {
  function proxyOf(resilience: ResilienceOptions, chain = false) {
    const clock = new TestClock(1_000_000);
    const route = chain
      ? {
          path: "/v1",
          chain: {
            name: "c",
            endpoints: [
              { name: "a", url: `${A.base}/v1` },
              { name: "b", url: `${B.base}/v1` },
            ],
          },
        }
      : { path: "/v1", upstream: `${A.base}/v1` };
    const proxy = resilientProxy({ routes: [route], resilience: { clock, random: () => 0, ...resilience } });
    return {
      send: async (headers: Record<string, string> = {}) => {
        const request = new Request("http://w.example/v1/x", { method: "POST", body: "b", headers });
        const response = await clock.run(proxy.fetch(request, {}, ctx));
        await response.arrayBuffer();
        return response.status;
      },
    };
  }

  it("a client's own key goes on every attempt and its 503 is passed on", async () => {
    script(A, [500, 503, 503]);
    expect(await proxyOf(ON).send({ "Idempotency-Key": "client-1" })).toBe(503);
    expect(keys(A)).toEqual(["client-1", "client-1", "client-1"]);
  });

  it("a keyless client POST gets one key on every attempt, and a 503 after retries is a 502 (listed too, an empty key too)", async () => {
    const cases: Array<[ResilienceOptions, Record<string, string>]> = [
      [ON, {}],
      [{ retry: { idempotencyKey: true, retryOn: { methods: ["POST"] } } }, {}],
      [ON, { "idempotency-key": " " }],
    ];
    for (const [options, headers] of cases) {
      A.reset();
      script(A, [500, 503, 503]);
      expect(await proxyOf(options).send(headers)).toBe(502);
      expect(A.hits.length).toBe(3);
      oneGeneratedKey(keys(A));
    }
    A.reset();
    script(A, [500]);
    expect(await proxyOf(ON).send()).toBe(200);
    oneGeneratedKey(keys(A));
  });

  it("without the option no key is invented and the 503 is passed on", async () => {
    script(A, [503, 503, 503]);
    expect(await proxyOf({}).send()).toBe(503);
    expect(sent(A)).toEqual(["POST none", "POST none", "POST none"]);
    A.reset();
    script(A, [500]);
    expect(await proxyOf({}).send()).toBe(500);
    expect(sent(A)).toEqual(["POST none"]);
  });

  it("a chain route keys both endpoints alike", async () => {
    script(A, [500, 500, 500]);
    expect(await proxyOf(ON, true).send()).toBe(200);
    expect(A.hits.length).toBe(3);
    expect(B.hits.length).toBe(1);
    oneGeneratedKey([...keys(A), ...keys(B)]);
  });
});

describe("ky client", () => {
  it("one key on every attempt; a caller's own kept; none without the option", async () => {
    const cases: Array<[ResilienceOptions, Record<string, string>]> = [
      [ON, {}],
      [ON, { "Idempotency-Key": "ky-own" }],
      [{}, {}],
    ];
    for (const [options, headers] of cases) {
      A.reset();
      script(A, [500, 500]);
      const clock = new TestClock(1_000_000);
      const api = createClient({ resilience: { clock, random: () => 0, ...options }, throwHttpErrors: false });
      const status = await outcome(api.post(`${A.base}/x`, { json: { a: 1 }, headers }), clock);
      if (options === ON) {
        expect(status).toBe("200");
        if (headers["Idempotency-Key"]) expect(keys(A)).toEqual(["ky-own", "ky-own", "ky-own"]);
        else oneGeneratedKey(keys(A));
      } else {
        expect(status).toBe("500");
        expect(sent(A)).toEqual(["POST none"]);
      }
    }
  });
});

describe("execute and stacked layers", () => {
  it("execute around a fetch with the caller's own key: every attempt under that key", async () => {
    const { clock, layer } = layerOf(ON);
    script(A, [500, 500, 500]);
    const status = await clock.run(
      layer.execute(
        async () => {
          const response = await layer.fetch(`${A.base}/x`, {
            method: "POST",
            body: "b",
            headers: { "idempotency-key": "job-7" },
          });
          await response.arrayBuffer();
          if (response.status >= 500) throw new Error(`status ${response.status}`);
          return response.status;
        },
        { retry: { maxAttempts: 2 } },
      ),
    );
    expect(status).toBe(200);
    expect(keys(A)).toEqual(["job-7", "job-7", "job-7", "job-7"]);
  });

  it("a layer as another's fetch: the outer key is the inner's too; with the outer off, the inner's retries under its own key are not sent again", async () => {
    const clock = new TestClock(1_000_000);
    const inner = createResilience({ clock, random: () => 0, ...ON });
    const outer = createResilience({ clock, random: () => 0, ...ON, fetch: inner.fetch });
    script(A, [503, 503, 503, 503]);
    expect(await outcome(outer.fetch(`${A.base}/x`, { method: "POST", body: "b" }), clock)).toBe("200");
    expect(A.hits.length).toBe(5);
    oneGeneratedKey(keys(A));

    A.reset();
    const plainOuter = createResilience({ clock, random: () => 0, fetch: inner.fetch });
    script(A, [500, 503, 503]);
    expect(await outcome(plainOuter.fetch(`${A.base}/x`, { method: "POST", body: "b" }), clock)).toBe("503");
    expect(A.hits.length).toBe(3);
    oneGeneratedKey(keys(A));
  });
});
