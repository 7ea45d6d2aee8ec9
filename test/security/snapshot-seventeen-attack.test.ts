/**
 * Outside-in attack on the last commit's snapshots, on every path: `init.headers` (a `Headers` with
 * `set-cookie` values, a record with mixed case and null, pairs with duplicates and numbers, a `Map`, a
 * generator) and mutable bodies (`DataView`, a `Float64Array` view, an `ArrayBuffer`, `FormData` with duplicate
 * names, a `File` and a `Blob`, `URLSearchParams`) taken at the call; header values above U+00FF and malformed
 * pairs refused at once; the late redirect no longer followed; `init.signal: null` with a `Request` input. Paths:
 * plain `resilience.fetch` with a URL string, a `URL`, a `Request` (alone and with an `init`), a chain of two
 * endpoints (fixed, hedged, endpoint `headers`), a degradation rule and `levelHeader`, `maxReplayBytes`, the
 * ky client (`headers`, `json`, a `beforeRequest` hook), `resilientProxy` in Node with an empty env, `execute`,
 * `redirects: "library"` and `"platform"`. How: public entries only; a user `fetch` answering by host (a.test,
 * b.test…, no network) that builds the `Request` fetch would build and records its method, header pairs and
 * bytes; each send compared with `new Request(url, init)` built at the call (what fetch takes); a `node:http`
 * server on 127.0.0.1 for the platform's own `fetch` with the same arguments; `TestClock` for every wait.
 * Not repeated from test/security/bodies-seventeen-attack.test.ts: the plain-call snapshots of a
 * `URLSearchParams`, a reused view, a hedge's `FormData` and a reused `Headers`, the Latin-1 JSON body.
 *
 * Defects pinned (first `it.fails` asserting the documented promise, on the code they were written against;
 * all fixed since, so plain `it`):
 * 1. An `init` whose members are not own enumerable properties (built on a prototype, or a `Request` passed as
 *    `init`, both of which fetch reads with [[Get]]) loses them: with headers, `{ method: "DELETE" }` on the
 *    prototype reaches the server as a GET (1a, against node:http; 1b, a `Request` as init, as a GET), where
 *    the same init without headers goes as DELETE with `redirects: "platform"`. docs/retry.md "Bodies": "Every
 *    field of the caller's `init` (`redirect`, `credentials`, …) reaches the transport on every path"; "Fetch
 *    semantics are kept". Cause: src/http/request/normalize-request.ts rebuilds the caller's init as
 *    `sent = { ...init }` as soon as it copied the headers or the body (always, when there are headers), and
 *    `original` then carries that spread. 1c, older than the commit but on every Node call: with the default
 *    `redirects: "library"`, even without headers, `followingFetch` (src/http/send/follow-redirects.ts) calls
 *    the transport with `{ ...init, redirect: "manual" }`: the prototype's DELETE goes as a GET.
 * 2. A `Request` input's own `Headers` are kept by reference: a caller that edits them after the call (a
 *    template reused for its next call) has the edit sent by this call's retry (2a: `authorization`) and, for a
 *    POST whose body is read first, by every send (2b: the `Idempotency-Key` of the next job reaches both
 *    endpoints of a chain). docs/retry.md "Bodies": "taken as they are when the call is made, as fetch takes
 *    them … A caller that edits its buffer, form or `Headers` for its next call while this one still retries
 *    changes nothing in this one (its retries, next endpoints and hedges keep its own `Idempotency-Key`)";
 *    fetch(request) copies the header list when called. Cause: normalize-request.ts `headers ??=
 *    request.headers` (and `original`, which hands the caller's `Request` to the transport on each attempt);
 *    only `init.headers` go through `snapshotHeaders`.
 * 3. A body larger than `maxReplayBytes` is not copied (`snapshotBody` runs only under the limit) and is sent
 *    after the call's first await (a degradation stage, a chain): bytes or search params the caller edits
 *    right after the call are sent edited, where fetch sends them as they were. docs/retry.md "Bodies":
 *    "Strings, bytes, `Blob`, `FormData` and `URLSearchParams` bodies are taken as they are when the call is
 *    made, as fetch takes them". Cause: normalize-request.ts (`else body = snapshotBody(body)` in the branch
 *    under the limit only).
 * 4. `headers: null` (also `""`, `0`, `false`), which fetch refuses with a `TypeError` ("could not be converted
 *    to one of: sequence<sequence<ByteString>>, record<ByteString, ByteString>"), is passed on: the transport's
 *    `TypeError` is taken for a network error, retried and counted against the host's breaker
 *    (`RetryExhaustedError`). docs/retry.md "Bodies": "The caller's own mistakes reject at once with a
 *    `TypeError`, before any timer starts, and are never retried nor counted against the host's breaker: … a
 *    header name or value that is not valid (…, a pair that is not `[name, value]`)". Cause: `snapshotHeaders`
 *    (src/http/request/check-request.ts) returns any falsy `headers` as it is (`if (!headers) return headers`).
 * 5. A `Request` whose signal is aborted, called with `init.signal: null` and answered with a 302, rejects
 *    (`RetryExhaustedError`, "gave up after 1 attempt") where fetch, against the same node:http server,
 *    follows the redirect to its 200. CHANGELOG "Fixed": "`init.signal: null` with a `Request` input leaves the
 *    `Request`'s signal behind, as fetch does"; docs/retry.md "Redirects" (the library follows the hops). Cause:
 *    the new check in `followingFetch` reads `init?.signal ?? request?.signal`: with no timeout and no caller
 *    signal the layer passes `signal: null` on, and `??` falls through to the Request's aborted signal.
 *
 * Held (plain `it`): `set-cookie` values of a `Headers`, duplicate pairs, names' case, a `Map`, a generator,
 * numbers and null as values reach a retry, a hedge (endpoint `headers` added) and a fixed chain's next endpoint
 * as fetch takes them; a `DataView`, a `Float64Array` view, an `ArrayBuffer`, a `FormData` (duplicates, a `File`
 * with its name and type, a `Blob`) and `URLSearchParams` edited after the call are retried with the bytes and
 * the content-type fetch derives at the call (a new multipart boundary, same parts); a detached buffer is a
 * `TypeError` at once, as fetch's; a value above U+00FF or a 3-item pair, on a chain, with a `Request` input and
 * under a degradation rule, is a `TypeError` naming the header, not its value, nothing sent; ky's `headers`,
 * `json` and a `beforeRequest` header go to every retry; the proxy forwards a client's duplicate headers and
 * replays its bytes; `execute` runs.
 *
 * Suspicious, not pinned (docs silent, or the layer more lenient than fetch):
 * - `headers: "Bearer sk-…"` (a string) is refused at once, but with the engine's message "Cannot use 'in'
 *   operator to search for 'Symbol(Symbol.iterator)' in Bearer sk-…": the value, secret included, is in the
 *   message (`Symbol.iterator in headers` in `snapshotHeaders`, whose own comment says a message names the
 *   header, never its value): fixed since, refused by kind (test/http/check-request.test.ts);
 * - pairs or a `Map` with a number as a name (`[[1, "a"]]`) are refused ("invalid header name number"), where
 *   fetch converts the number and sends `1: a`; a record with a symbol key has the key dropped silently, where
 *   fetch refuses it with a `TypeError`;
 * - a resizable `ArrayBuffer` (or a view over one) and a view over a `SharedArrayBuffer`, which fetch refuses,
 *   are copied by `snapshotBody` and sent (before the commit the transport's `TypeError` was retried)
 *   (fixed since, with the symbol key above: refused at once, test/http/normalize-request.test.ts);
 * - a `URLSearchParams` subclass is copied into a plain one: undici sends the subclass's `toString()`, the
 *   layer the entries;
 * - a JSON body in bytes labelled `charset=unicode-1-1-utf-8` (a UTF-8 label of the Encoding Standard) is left
 *   unrewritten by degradation: the test in `readJsonBody` knows `utf-8` and `utf8` only: fixed since, the
 *   label is read as the Encoding Standard reads it (test/http/json-body.test.ts).
 */
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Answer, header, hostFetch, type Received, status } from "../helpers/host-fetch.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const text = (r: { bytes: Uint8Array | null } | undefined): string =>
  r?.bytes ? new TextDecoder().decode(r.bytes) : "";
const hang: Answer = (request) =>
  new Promise((_resolve, reject) => {
    request.signal.addEventListener("abort", () => reject(request.signal.reason), { once: true });
  });
const FAST = { initialDelay: 10, maxDelay: 10, jitter: "none" } as const;

const seen = ({ method, headers, bytes }: Received) => ({ method, headers, bytes });

/** What fetch itself takes from the same arguments, at the call: the baseline every send is held to. */
async function asFetchTakesIt(url: string, init: RequestInit): Promise<ReturnType<typeof seen>> {
  const request = new Request(url, init);
  return {
    method: request.method,
    headers: [...request.headers],
    bytes: request.body ? new Uint8Array(await request.arrayBuffer()) : null,
  };
}

// A real server on 127.0.0.1, for what the platform's own fetch does with the same arguments.
const upstream = httpUpstream();
serveDuringFile(upstream);
let base = "";
beforeAll(() => {
  base = upstream.base;
});
beforeEach(() =>
  upstream.on((hit) => {
    if (hit.path.startsWith("/moved")) {
      hit.res.writeHead(302, { location: "/done" });
      hit.res.end();
      return;
    }
    hit.res.end("ok");
  }),
);
const serverSeen = () => upstream.hits.map((hit) => `${hit.method} ${hit.path}`);

// ---------------------------------------------------------------------------------------------
describe("init's fields reach the transport after the headers copy", () => {
  // docs/retry.md "Bodies": "Every field of the caller's `init` (…) reaches the transport on every path";
  // "Fetch semantics are kept". fetch reads a RequestInit's members with [[Get]] (a `Request` passed as init,
  // an init built on a prototype); normalizeRequest now rebuilds `init` as `{ ...init }` whenever it copied the
  // headers or the body, which keeps own enumerable properties only.
  it("1a. an init whose method comes from its prototype, with headers: DELETE reaches the server", async () => {
    // redirects: "platform" keeps the library's follower out: only the entry's copy is at work.
    const layer = createResilience({ retry: false, redirects: "platform" });
    const defaults = { method: "DELETE" };
    const make = (): RequestInit => Object.assign(Object.create(defaults) as RequestInit, { headers: { "x-a": "1" } });
    upstream.hits.length = 0;
    await (await fetch(`${base}/plain`, make())).text();
    await (await layer.fetch(`${base}/layer`, make())).text();
    // Without headers (nothing copied) the same init goes as given:
    await (await layer.fetch(`${base}/bare`, Object.create(defaults) as RequestInit)).text();
    // observed: ["DELETE /plain", "GET /layer", "DELETE /bare"]
    expect(serverSeen()).toEqual(["DELETE /plain", "DELETE /layer", "DELETE /bare"]);
  });

  // The same sentence, on the default path in Node (redirects: "library"): followRedirects calls the transport
  // with `{ ...init, redirect: "manual" }` (src/http/send/follow-redirects.ts), which drops inherited members
  // even when nothing was copied (older than the last commit, on the path every Node call takes).
  it("1c. the same prototype-built init, no headers, default redirects in Node: DELETE reaches the server", async () => {
    const layer = createResilience({ retry: false });
    upstream.hits.length = 0;
    await (await layer.fetch(`${base}/bare`, Object.create({ method: "DELETE" }) as RequestInit)).text();
    // observed: ["GET /bare"]
    expect(serverSeen()).toEqual(["DELETE /bare"]);
  });

  it("1b. a Request given as init (fetch(url, request)): its method reaches the transport", async () => {
    const up = hostFetch({ "a.test": status(200) });
    const layer = createResilience({ fetch: up.fetch, retry: false, redirects: "platform" });
    const template = new Request("https://a.test/template", { method: "DELETE", headers: { "x-a": "1" } });
    const expected = await asFetchTakesIt("https://a.test/jobs", template as unknown as RequestInit);
    expect(expected.method).toBe("DELETE");
    await layer.fetch("https://a.test/jobs", template as unknown as RequestInit);
    // observed: a GET (the spread `{ ...template }` has the copied headers only)
    expect(up.log.map(seen)).toEqual([expected]);
  });
});

// ---------------------------------------------------------------------------------------------
describe("what the caller gave reaches every send as fetch takes it at the call", () => {
  it("held: set-cookie values, duplicate pairs, a Map, a generator, numbers: retry, endpoint and hedge get fetch's headers", async () => {
    const fresh = () => {
      // Every endpoint on its caller's origin (another's gets the cross-origin allowlist only).
      const up = hostFetch({
        "a.test": status(503, 200),
        "b.test": (request, n) => (n === 1 ? hang(request, n) : status(200)(request, n)),
        "d.test": status(503, 200),
      });
      const clock = new TestClock();
      const layer = createResilience({
        fetch: up.fetch,
        clock,
        retry: { ...FAST, maxAttempts: 2 },
        fallback: fallback([
          {
            name: "hedged",
            hedge: { delay: 50 },
            endpoints: [
              { name: "b", url: "https://b.test/v1" },
              { name: "b2", url: "https://b.test/v2", headers: { "x-endpoint": "b2" } },
            ],
          },
          {
            name: "fixed",
            endpoints: [
              { name: "d", url: "https://d.test/v1" },
              { name: "d2", url: "https://d.test/v2" },
            ],
          },
        ]),
      });
      return { up, clock, layer };
    };
    const cookies = new Headers([
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
      ["X-Mixed-Case", "v"],
    ]);
    const givens: Array<() => HeadersInit> = [
      () => cookies,
      () => [
        ["x-dup", "1"],
        ["X-Dup", "2"],
        ["x-n", 3 as unknown as string],
      ],
      () => new Map([["x-map", ""]]) as unknown as HeadersInit,
      () =>
        (function* () {
          yield ["x-gen", "g"];
        })() as unknown as HeadersInit,
      () => ({ "X-Record": "r", "x-null": null as unknown as string }),
    ];
    for (const [i, url] of ["https://a.test/x", "https://b.test/v1/x", "https://d.test/v1/x"].entries()) {
      for (const given of givens) {
        const { up, layer, clock } = fresh();
        const expected = (await asFetchTakesIt(url, { headers: given() })).headers;
        const response = await clock.run(layer.fetch(url, { headers: given() }));
        expect(response.status).toBe(200);
        expect(up.log).toHaveLength(2);
        // The first send has the caller's headers exactly; the second the same plus an endpoint's own.
        expect(up.log[0]?.headers).toEqual(expected);
        const second = up.log[1]?.headers.filter(([n]) => n !== "x-endpoint");
        expect(second, `path ${i}`).toEqual(expected);
      }
    }
  });

  // docs/retry.md "Bodies": "Strings, bytes, `Blob`, `FormData` and `URLSearchParams` bodies are taken as they
  // are when the call is made, as fetch takes them … A caller that edits its buffer, form or `Headers` for its
  // next call while this one still retries changes nothing in this one". The layer keeps a `Request` input's
  // own `Headers` by reference (`headers ??= request.headers`, and `original` hands the caller's Request to
  // the transport again), where fetch(request) copies its header list when called.
  it("2a. a Request input whose Headers the caller edits after the call: the retry sends the edit", async () => {
    const up = hostFetch({ "a.test": status(503, 200) });
    const clock = new TestClock();
    const layer = createResilience({ fetch: up.fetch, clock, retry: FAST });
    const request = new Request("https://a.test/status", { headers: { authorization: "Bearer job-1" } });
    const call = layer.fetch(request);
    request.headers.set("authorization", "Bearer job-2"); // the template, prepared for the next call
    await clock.run(call);
    // observed: ["Bearer job-1", "Bearer job-2"]
    expect(up.log.map((r) => header(r, "authorization"))).toEqual(["Bearer job-1", "Bearer job-1"]);
  });

  it("2b. a POST Request's Idempotency-Key edited after the call reaches the next endpoint", async () => {
    const up = hostFetch({ "a.test": status(503), "b.test": status(200) });
    const layer = createResilience({
      fetch: up.fetch,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.test/v1" },
            { name: "b", url: "https://b.test/v1" },
          ],
        },
      ]),
    });
    const request = new Request("https://a.test/v1/jobs", {
      method: "POST",
      headers: { "idempotency-key": "job-1", "content-type": "application/json" },
      body: '{"prompt":"a cat"}',
    });
    const call = layer.fetch(request);
    request.headers.set("idempotency-key", "job-2");
    await call;
    // observed: ["job-2", "job-2"] (the body is read first): the job goes out under the next job's key
    expect(up.log.map((r) => header(r, "idempotency-key"))).toEqual(["job-1", "job-1"]);
  });

  // docs/retry.md "Bodies": "bytes … are taken as they are when the call is made, as fetch takes them"; a body
  // larger than `maxReplayBytes` is sent once, but it is not copied (snapshotBody runs only under the limit),
  // and it is sent after the call's first await (a degradation stage, a chain): the caller's edit goes.
  it("3. a body over maxReplayBytes, edited right after the call, is sent as the caller's edit", async () => {
    const up = hostFetch({ "a.test": status(200), "b.test": status(200) });
    const layer = createResilience({
      fetch: up.fetch,
      retry: false,
      maxReplayBytes: 8,
      degradation: degradation({ levelHeader: "x-level" }),
      fallback: fallback([{ name: "c", endpoints: [{ name: "b", url: "https://b.test/v1" }] }]),
    });
    const bytes = new TextEncoder().encode("prompt=a cat, 50 steps");
    const params = new URLSearchParams({ prompt: "a cat", steps: "50" });
    const calls = [
      layer.fetch("https://a.test/jobs", { method: "PUT", body: bytes }),
      layer.fetch("https://b.test/v1/jobs", { method: "PUT", body: params }),
    ];
    bytes.fill(0x30); // the buffer, reused for the next call
    params.set("prompt", "a dog");
    await Promise.all(calls);
    // observed: "0000…" and "prompt=a+dog&steps=50"
    expect(up.log.map(text)).toEqual(["prompt=a cat, 50 steps", "prompt=a+cat&steps=50"]);
  });

  it("held: DataView, Float64Array, an ArrayBuffer, a form with duplicates and files, edited after the call", async () => {
    const fresh = () => {
      const up = hostFetch({ "a.test": status(503, 200) });
      const clock = new TestClock();
      return { up, clock, layer: createResilience({ fetch: up.fetch, clock, retry: FAST }) };
    };
    const raw = new Uint8Array([9, 8, 7, 6, 5]);
    const float = new Float64Array([1.5, -2, Math.PI]);
    const form = new FormData();
    form.append("tag", "a");
    form.append("tag", "b");
    form.append("image", new File([new Uint8Array([0, 255])], "in.png", { type: "image/png" }));
    form.append("mask", new Blob(["m"], { type: "text/plain" }));
    const bodies: BodyInit[] = [
      new DataView(raw.buffer, 1, 3),
      float.subarray(1),
      raw.buffer,
      form,
      new URLSearchParams([
        ["q", "1"],
        ["q", "é"],
      ]),
    ];
    for (const body of bodies) {
      const { up, clock, layer } = fresh();
      raw.set([9, 8, 7, 6, 5]);
      const expected = await asFetchTakesIt("https://a.test/x", { method: "PUT", body });
      const call = layer.fetch("https://a.test/x", { method: "PUT", body });
      float.fill(0);
      raw.fill(0);
      if (body === form) form.set("tag", "z");
      await clock.run(call);
      const contentType = (r: { headers: Array<[string, string]> }) =>
        r.headers.find(([n]) => n === "content-type")?.[1]?.replace(/boundary=.*/, "boundary=");
      for (const r of up.log) {
        expect(contentType(r)).toBe(contentType(expected));
        if (body !== form) expect(r.bytes).toEqual(expected.bytes);
        else expect(text(r).replace(/-{4,}[^\r]*/g, "--")).toBe(text(expected).replace(/-{4,}[^\r]*/g, "--"));
      }
      expect(up.log).toHaveLength(2);
    }
    // A detached buffer is refused at once, as fetch refuses it.
    const detached = new ArrayBuffer(4);
    structuredClone(detached, { transfer: [detached] });
    expect(() => new Request("https://a.test/x", { method: "PUT", body: detached })).toThrow(TypeError);
    const { up, layer } = fresh();
    await expect(layer.fetch("https://a.test/x", { method: "PUT", body: detached })).rejects.toBeInstanceOf(TypeError);
    expect(up.state.entered).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
describe("the caller's header mistakes: refused at once, the header named, never its value", () => {
  // docs/retry.md "Bodies": "The caller's own mistakes reject at once with a `TypeError`, before any timer
  // starts, and are never retried nor counted against the host's breaker: … a header name or value that is
  // not valid (CR, LF or NUL in a value, a character above U+00FF, a pair that is not `[name, value]`)".
  // fetch refuses `headers: null` (and "", 0, false): "Argument 1 could not be converted to one of:
  // sequence<sequence<ByteString>>, record<ByteString, ByteString>". snapshotHeaders returns any falsy value
  // as it is (`if (!headers) return headers`), the transport refuses it, and its TypeError passes for a network error.
  it("4. headers: null is a TypeError at once, not sent, retried and counted", async () => {
    const up = hostFetch({ "a.test": status(200) });
    const clock = new TestClock();
    const layer = createResilience({ fetch: up.fetch, clock, retry: FAST, breaker: { failureThreshold: 2 } });
    const retries: unknown[] = [];
    layer.on("retry", (e) => retries.push(e));
    const error = await clock
      .run(layer.fetch("https://a.test/x", { headers: null as unknown as HeadersInit }))
      .catch((e: unknown) => e);
    // observed: RetryExhaustedError ("gave up after 2 attempts"), the transport's TypeError taken for the network's
    expect(error).toBeInstanceOf(TypeError);
    expect(retries).toEqual([]);
    expect(layer.health().breakers["a.test"]?.failureCount ?? 0).toBe(0);
  });

  it("held: on a chain, a Request input and a degradation rule: a value above U+00FF or a 3-item pair, named, not shown", async () => {
    const up = hostFetch({ "a.test": status(200), "b.test": status(200) });
    const layer = createResilience({
      fetch: up.fetch,
      degradation: degradation({ levelHeader: "x-level" }),
      fallback: fallback([{ name: "c", endpoints: [{ name: "b", url: "https://b.test/v1" }] }]),
    });
    layer.degradation?.setLevel("medium");
    const secret = "sk-\u20ac-secret";
    const calls: Array<() => Promise<Response>> = [
      () => layer.fetch("https://b.test/v1/x", { headers: { "x-api-key": secret } }),
      () => layer.fetch(new Request("https://a.test/x"), { headers: [["x-api-key", secret, "x"]] as never }),
      () => layer.fetch(new URL("https://a.test/x"), { headers: new Map([["x-api-key", secret]]) as never }),
    ];
    for (const call of calls) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect(String((error as Error).message)).toContain("x-api-key");
      expect(String((error as Error).message)).not.toContain("secret");
    }
    expect(up.state.entered).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
describe("init.signal: null with a Request input, on the redirect follower", () => {
  // CHANGELOG "Fixed": "`init.signal: null` with a `Request` input leaves the `Request`'s signal behind, as
  // fetch does"; docs/retry.md "Redirects": the library follows "hop by hop"; "Fetch semantics are kept".
  // fetch(abortedRequest, { signal: null }) is sent and its 302 followed (checked below against node:http).
  // The follower's new check reads `init?.signal ?? request?.signal`: the layer passes `signal: null` on
  // (no timeout, no caller signal), `??` falls through to the Request's aborted signal and the hop throws.
  it("5. an aborted Request with init.signal: null: the 302 is followed, as fetch follows it", async () => {
    const controller = new AbortController();
    controller.abort(new Error("the old page's signal"));
    const make = () => new Request(`${base}/moved`, { signal: controller.signal });
    upstream.hits.length = 0;
    const plain = await fetch(make(), { signal: null });
    expect([plain.status, await plain.text()]).toEqual([200, "ok"]);
    const layer = createResilience({ retry: false, redirects: "library" });
    const response = await layer.fetch(make(), { signal: null }).catch((e: unknown) => e);
    // observed: RetryExhaustedError ("gave up after 1 attempt") after the 302
    expect(response).toBeInstanceOf(Response);
    expect(serverSeen()).toEqual(["GET /moved", "GET /done", "GET /moved", "GET /done"]);
  });
});

// ---------------------------------------------------------------------------------------------
describe("ky, the proxy and execute still behave as documented", () => {
  it("held: ky's headers and json go to every retry; the proxy forwards the client's duplicate headers", async () => {
    const up = hostFetch({ "a.test": status(503, 200, 503, 200) });
    const clock = new TestClock();
    const layer = createResilience({ fetch: up.fetch, clock, retry: { ...FAST, idempotencyKey: true } });
    const api = createClient({ resilience: layer, headers: { "x-client": "ky" } });
    await clock.run(
      api
        .post("https://a.test/jobs", {
          json: { prompt: "a cat" },
          hooks: { beforeRequest: [({ request }) => request.headers.set("x-hook", "1")] },
        })
        .text(),
    );
    expect(up.log[0]?.headers).toEqual(up.log[1]?.headers);
    expect(header(up.log[0], "x-client")).toBe("ky");
    expect(header(up.log[0], "x-hook")).toBe("1");
    expect(text(up.log[1])).toBe('{"prompt":"a cat"}');
    const proxy = resilientProxy<Record<string, never>>({
      routes: [{ path: "/v1", upstream: "https://a.test/v1" }],
      resilience: { fetch: up.fetch, clock, retry: FAST },
    });
    const client = new Request("https://proxy.test/v1/jobs", {
      method: "PUT",
      headers: [
        ["x-tag", "a"],
        ["x-tag", "b"],
      ],
      body: new Uint8Array([1, 2, 3]),
    });
    const served = await clock.run(proxy.fetch(client, {}, { waitUntil() {} }));
    expect(served.status).toBe(200);
    expect(header(up.log[2], "x-tag")).toBe("a, b");
    expect(up.log[3]?.bytes).toEqual(new Uint8Array([1, 2, 3]));
    expect(await layer.execute(async () => 7)).toBe(7);
  });
});
