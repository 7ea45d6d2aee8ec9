/**
 * Outside-in attack on "a paid request is never processed twice": a matrix that COUNTS how many times real
 * upstreams receive a request's body, per failure kind × method/key × path.
 * Docs: SECURITY.md "A paid request is never processed twice | without an `Idempotency-Key` (an empty one is
 * none), a POST or PATCH is sent again (a retry, or the next endpoint of a chain: one rule) only when it surely was
 * not processed: 429, 503, or a failure before it reached the server (connection refused, DNS or TLS failure, a
 * connect timeout, an open breaker or full bulkhead); never after a 500, a reset, an attempt or total timeout or a
 * redirect (whatever its target answers); hedging needs a key"; docs/retry.md ("an empty one, or one of spaces, is
 * none, as a server reads it", "Nor after a redirect: the server that answered it may have done the work (a 303
 * after a POST says so), whatever the redirect's target then answers or however reaching it fails", "A layer used
 * as another's `fetch` … takes the request as not sent only when nothing the inner layer tried may have had it",
 * `execute`: "Both retry every thrown error except an abort, unless `retryOn.error` says otherwise"; ky:
 * `createClient` has "ky's own retry off"); docs/fallback.md ("Moving on follows the rule of a retry … after a 500,
 * a reset or a timeout the chain ends there, so a fallback provider never receives a paid job twice. So does a 2xx
 * that fails `validate`", "`hedge: { delay }`, for idempotent requests or requests with an `Idempotency-Key` only");
 * docs/cloudflare.md (the proxy answers "`502` when no endpoint answered otherwise (a redirect's later hop its open
 * circuit refused included: the first upstream had the request, and a `503` would tell the client it was declined,
 * free to send again)", "the client gets where the redirect leads"); `failureResponse`'s JSDoc.
 * How: `createResilience`, `execute` (root); `fallback` (./fallback, two endpoints, `validate`, `transform`,
 * `hedge`); `degradation` (./degradation, level `medium`, rewriting `steps`); `createClient` (./ky) and plain
 * `ky.create({ fetch })` with ky's default retry; `resilientProxy` and `failureResponse` (./cloudflare), the proxy
 * called in Node as a plain handler under a client layer (`fetch: (i, n) => proxy.fetch(new Request(i, n), {},
 * ctx)`);
 * node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) counting every request by method, and one that
 * hangs up as soon as a request's head arrived (a reset mid-request). Real waits are short: attempt timeout
 * 150 ms, total 200 ms, backoffs of 1–2 ms.
 * Failure kinds at the first upstream: 500, 502, 504, 429, 503, reset after the request, reset after a 500's headers,
 * reset mid-request, attempt timeout, total timeout, a 200 whose body fails mid-response, 307/308/303 then 503 at the
 * target, 307 then reset, 307 then refused; in chains also `validate` rejecting a 200 and `validate` meeting a body
 * that fails. Methods/keys: POST without a key, with an empty key, with a key of a tab, PATCH without a key (each
 * may reach the first upstream once, or per attempt when declined), POST with a key and PUT (controls).
 * Paths: plain call, `Request` input, degradation rewrite, ky client (`createClient`), plain ky over the layer
 * (ky's default retry), `execute`, a layer as another layer's `fetch`, a client layer over the Worker proxy; fallback
 * chain (also with `transform` on the second endpoint), hedged chain, chain with `Request` input, chain through the
 * ky client, chain under an outer layer (counting both endpoints); redirect (307/308/303) and a redirect target's
 * open circuit through the proxy; `failureResponse` for each failure kind with a client layer over it.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the Worker proxy answers a redirect target's 429 or 503 for a request it would not
 * send again with 502):
 * 1. SECURITY.md "never after … a redirect (whatever its target answers)", for a keyless POST through the Worker
 *    proxy with a client layer of this library in front of it. Observed: the first upstream answers 307 (or 308,
 *    or 303) and the target 503; the proxy's layer sees a `redirected` 503 and rightly does not retry, but hands
 *    the client that 503 as a fresh `Response` (src/cloudflare/resilient-proxy.ts, `new Response(response.body,
 *    response)`, which drops `redirected`; over HTTP no client could see it anyway), so the client reads "declined"
 *    (src/http/send/classify.ts `maySendAgain` → `isDeclined`) and sends it again: the first upstream receives the
 *    keyless POST once per client attempt (3 of 3; the matrix shows 2 of 2 for 307, 308 and 303 alike). The proxy
 *    already answers 502 when the redirect's target is refused by its open circuit, for this very reason
 *    (docs/cloudflare.md); a target's own 429/503 after a redirect is passed on as it came.
 *    A chain route is not counted here; it goes through the same line of the proxy.
 *
 * Docs-silent (not pinned):
 * - `execute(() => layer.fetch(keylessPost))`: `execute` retries the layer's own rejection (a reset, an attempt or
 *   total timeout, a redirect's failed later hop), so the upstream receives the POST once per `execute` attempt.
 *   docs/retry.md says `execute` retries "every thrown error except an abort, unless `retryOn.error` says
 *   otherwise", and a layer used as another's `fetch` does read the inner error's "may have been sent"; `execute`
 *   does not. Pinned as held behaviour (2, and 1 with `retry: false`); docs/retry.md says so since ("They know
 *   nothing of requests").
 * - A PUT that the first endpoint's `transform` makes a keyless POST: held here (not sent to it twice after a 500).
 *
 * Held (plain `it`):
 * - The count matrix: on every path but the proxy's redirect case, a keyless POST/PATCH (no key, an empty one, a
 *   tab) reaches the first upstream once after 500, 502, 504, a reset (after the request, after headers,
 * mid-request),
 *   an attempt or total timeout, a failing response body, and a redirect whatever its target does (503, reset,
 *   refused); 429 and 503 are retried; through two layers (nested, proxy) declined answers multiply (≤ 4).
 * - Chains: the second endpoint never receives a keyless POST after the first's 500/502/504, reset, timeout,
 *   redirect, or a 200 that `validate` rejects or whose body fails; after 429/503 it receives it once (once per
 *   outer attempt under an outer layer); also with `transform`, `hedge`, `Request` input and the ky client.
 * - A hedge never fires for a keyless POST; it does for a keyed one (the control).
 * - A `Request`'s key replaced by the call's own `headers` counts as none (not sent again after a 500).
 * - A keyless POST's 500 ends a chain even when the next endpoint's `transform` makes a PUT of it.
 * - Proxy: a redirect whose target's circuit is open is a 502 without `Retry-After`, not resent by the client; a
 *   chain route whose first endpoint declined and second reset is a 502; an open circuit (nothing sent) is a 503
 *   with `Retry-After` and no upstream sees the client's request.
 * - `failureResponse`: a reset (after the request, mid-request) 502, an attempt or total timeout 504, a redirect's
 *   reset or refused later hop 502, none with `Retry-After`, none resent by a client layer; connection refused is a
 *   502 too (allowed: not resending is always safe).
 */
import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import ky from "ky";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failureResponse, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type ResilienceOptions, type StandardSchemaLike } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream(); // the first upstream: the one that must not get a keyless POST twice
const b = httpUpstream(); // a chain's second endpoint
const c = httpUpstream(); // a redirect's target
serveDuringFile(a, b, c);

/** A server that hangs up as soon as a request's head arrived, its body still coming: a reset mid-request. */
const mid = (() => {
  let count = 0;
  let base = "";
  const server = createServer((req: IncomingMessage) => {
    count++;
    req.socket.destroy();
  });
  return {
    get base() {
      return base;
    },
    get count() {
      return count;
    },
    reset() {
      count = 0;
    },
    server,
    async start() {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
  };
})();
let refused = "";
beforeAll(async () => {
  await mid.start();
  refused = await refusedOrigin();
});
afterAll(() => {
  mid.server.closeAllConnections();
  mid.server.close();
});

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const ctx = { waitUntil: (_p: Promise<unknown>) => {}, passThroughOnException: () => {} };
const BODY = '{"prompt":"cat","steps":50}';
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- failure kinds (at the first upstream `a`)

type Kind =
  | "500"
  | "502"
  | "504"
  | "429"
  | "503"
  | "reset after request"
  | "reset after headers"
  | "reset mid-request"
  | "attempt timeout"
  | "total timeout"
  | "body fails mid-response"
  | "307 then 503"
  | "308 then 503"
  | "303 then 503"
  | "307 then reset"
  | "307 then refused";

const status = (n: number) => (h: Hit) => h.res.writeHead(n, { "content-type": "text/plain" }).end(`status ${n}`);
const hang = (h: Hit) => void h.closed;
const redirectTo = (code: number, path: string) => (h: Hit) =>
  h.res.writeHead(code, { location: path.startsWith("http") ? path : `${c.base}${path}` }).end();

interface KindSetup {
  /** Declined by the server: a keyless POST may go again. */
  declined: boolean;
  /** The first upstream (the one whose count matters). */
  url: (path: string) => string;
  arm: () => void;
  count: (method: string) => number;
  layer?: ResilienceOptions;
}

function setup(kind: Kind): KindSetup {
  const onA = (arm: () => void, declined = false, layer?: ResilienceOptions): KindSetup => ({
    declined,
    url: (path) => `${a.base}${path}`,
    arm,
    count: (method) => a.hits.filter((h) => h.method === method).length,
    ...(layer ? { layer } : {}),
  });
  switch (kind) {
    case "500":
    case "502":
    case "504":
      return onA(() => a.on(status(Number(kind))));
    case "429":
    case "503":
      return onA(() => a.on(status(Number(kind))), true);
    case "reset after request":
      return onA(() => a.on((h) => h.res.socket?.destroy()));
    case "reset after headers":
      return onA(() =>
        a.on((h) => {
          h.res.writeHead(500, { "content-length": "100" });
          h.res.flushHeaders();
          h.res.socket?.destroy();
        }),
      );
    case "body fails mid-response":
      return onA(() =>
        a.on((h) => {
          h.res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
          h.res.write('{"id":');
          setTimeout(() => h.res.socket?.destroy(), 5);
        }),
      );
    case "reset mid-request":
      return {
        declined: false,
        url: (path) => `${mid.base}${path}`,
        arm: () => mid.reset(),
        count: () => mid.count,
      };
    case "attempt timeout":
      return onA(() => a.on(hang), false, { timeout: { attempt: 150 } });
    case "total timeout":
      return onA(() => a.on(hang), false, { timeout: { total: 200 } });
    case "307 then 503":
    case "308 then 503":
    case "303 then 503":
      return onA(() => {
        a.on(redirectTo(Number(kind.slice(0, 3)), "/t"));
        c.on(status(503));
      });
    case "307 then reset":
      return onA(() => {
        a.on(redirectTo(307, "/t"));
        c.on((h) => h.res.socket?.destroy());
      });
    case "307 then refused":
      return onA(() => a.on((h) => h.res.writeHead(307, { location: `${refused}/t` }).end()));
  }
}

const KINDS: Kind[] = [
  "500",
  "502",
  "504",
  "429",
  "503",
  "reset after request",
  "reset after headers",
  "reset mid-request",
  "attempt timeout",
  "total timeout",
  "body fails mid-response",
  "307 then 503",
  "308 then 503",
  "303 then 503",
  "307 then reset",
  "307 then refused",
];

/** The kinds after which the layer's call rejects (no response to give). */
const THROWN = new Set<Kind>([
  "reset after request",
  "reset mid-request",
  "attempt timeout",
  "total timeout",
  "307 then reset",
  "307 then refused",
]);

// ---------------------------------------------------------------- methods and keys

interface Shape {
  label: string;
  method: string;
  headers: Record<string, string>;
  /** Needs no proof it was not processed to be sent again. */
  keyed: boolean;
}
const SHAPES: Shape[] = [
  { label: "POST without a key", method: "POST", headers: {}, keyed: false },
  { label: "POST with an empty key", method: "POST", headers: { "idempotency-key": "" }, keyed: false },
  { label: "POST with a key of a tab", method: "POST", headers: { "idempotency-key": "\t" }, keyed: false },
  { label: "PATCH without a key", method: "PATCH", headers: {}, keyed: false },
  { label: "POST with a key", method: "POST", headers: { "idempotency-key": "k-1" }, keyed: true },
  { label: "PUT", method: "PUT", headers: {}, keyed: true },
];

function initOf(shape: Shape): RequestInit {
  return { method: shape.method, headers: { "content-type": "application/json", ...shape.headers }, body: BODY };
}

/** The most times the first upstream may receive the request. */
function allowed(kind: KindSetup, shape: Shape, attempts: number): number {
  return shape.keyed ? 20 : kind.declined ? attempts : 1;
}

async function settle(p: Promise<unknown>): Promise<unknown> {
  try {
    const res = await p;
    if (res instanceof Response) await res.arrayBuffer().catch(() => undefined);
    return res;
  } catch (error) {
    return error;
  }
}

// ---------------------------------------------------------------- paths

const retry = { ...fast, maxAttempts: 2 };

type Path = (kind: KindSetup, shape: Shape) => Promise<unknown>;

function layerFor(kind: KindSetup, extra: ResilienceOptions = {}) {
  return createResilience({ retry, ...kind.layer, ...extra });
}

const PATHS: Record<string, Path> = {
  "plain call": (kind, shape) => layerFor(kind).fetch(kind.url("/v1/jobs"), initOf(shape)),
  "Request input": (kind, shape) => layerFor(kind).fetch(new Request(kind.url("/v1/jobs"), initOf(shape))),
  "degradation rewrite": (kind, shape) => {
    const layer = layerFor(kind, { degradation: degradation({}) });
    layer.degradation?.degrade("queue full");
    layer.degradation?.degrade("queue full");
    return layer.fetch(kind.url("/v1/jobs"), initOf(shape));
  },
  "ky client (createClient)": (kind, shape) =>
    createClient({ resilience: layerFor(kind) })(kind.url("/v1/jobs"), initOf(shape) as never),
  "plain ky over the layer (ky's default retry)": (kind, shape) =>
    ky.create({ fetch: layerFor(kind).fetch })(kind.url("/v1/jobs"), initOf(shape) as never),
  "a layer as another layer's fetch": (kind, shape) => {
    const inner = layerFor(kind);
    const outer = createResilience({ retry, fetch: inner.fetch });
    return outer.fetch(kind.url("/v1/jobs"), initOf(shape));
  },
  execute: (kind, shape) => {
    const layer = layerFor(kind);
    return layer.execute(() => layer.fetch(kind.url("/v1/jobs"), initOf(shape)));
  },
  "client layer over the Worker proxy": (kind, shape) => {
    const proxy = resilientProxy<object>({
      routes: [{ path: "/", upstream: kind.url("") }],
      resilience: { retry, ...kind.layer },
    });
    const client = createResilience({ retry, fetch: (i, n) => proxy.fetch(new Request(i, n), {}, ctx) });
    return client.fetch("https://worker.example/v1/jobs", initOf(shape));
  },
};

// ---------------------------------------------------------------- the matrix

describe("the first upstream's count, per failure kind × method/key × path", () => {
  for (const [pathName, run] of Object.entries(PATHS)) {
    describe(pathName, () => {
      for (const kindName of KINDS) {
        for (const shape of SHAPES) {
          // Two layers (nested, proxy) multiply a declined request's attempts.
          const attempts = pathName.includes("layer") && !pathName.startsWith("ky") ? 4 : 2;
          // Pinned on its own below (defect 1): the proxy's answer loses `redirected`.
          if (pathName.includes("Worker proxy") && /^30\d then 503$/.test(kindName) && !shape.keyed) continue;
          // `execute` retries what its work throws (docs/retry.md): see "execute" below.
          if (pathName === "execute" && THROWN.has(kindName) && !shape.keyed) continue;
          it(`${kindName}, ${shape.label}`, async () => {
            const kind = setup(kindName);
            kind.arm();
            await settle(run(kind, shape));
            await wait(20);
            const count = kind.count(shape.method);
            expect(count).toBeGreaterThanOrEqual(1);
            expect(count).toBeLessThanOrEqual(allowed(kind, shape, attempts));
          });
        }
      }
    });
  }
});

// ---------------------------------------------------------------- chains

const Job: StandardSchemaLike = {
  "~standard": {
    version: 1,
    vendor: "attack",
    validate: (v: unknown) =>
      typeof v === "object" && v !== null && typeof (v as { id?: unknown }).id === "number"
        ? { value: v as { id: number } }
        : { issues: [{ message: "no id" }] },
  },
};

type ChainKind = Kind | "validate rejects a 200" | "validate meets a body that fails";
const CHAIN_KINDS: ChainKind[] = [...KINDS, "validate rejects a 200", "validate meets a body that fails"];

function chainSetup(kind: ChainKind): KindSetup {
  if (kind === "validate rejects a 200")
    return { ...setup("500"), arm: () => a.on((h) => h.res.writeHead(200).end('{"error":"no"}')) };
  if (kind === "validate meets a body that fails") return setup("body fails mid-response");
  return setup(kind);
}

function chainOptions(kind: KindSetup, variant: "plain" | "transform" | "hedge") {
  b.on((h) => h.res.writeHead(200, { "content-type": "application/json" }).end('{"id":1}'));
  return fallback([
    {
      name: "jobs",
      ...(variant === "hedge" ? { hedge: { delay: 40 } } : {}),
      endpoints: [
        { name: "p", url: kind.url("/v1"), validate: Job },
        variant === "transform"
          ? { name: "q", url: `${b.base}/v1`, transform: (req) => ({ ...req, body: { ...req.body, shaped: true } }) }
          : { name: "q", url: `${b.base}/v1` },
      ],
    },
  ]);
}

type ChainPath = (kind: KindSetup, shape: Shape) => Promise<unknown>;
const CHAIN_PATHS: Record<string, ChainPath> = {
  "fallback chain": (kind, shape) =>
    layerFor(kind, { fallback: chainOptions(kind, "plain") }).fetch(kind.url("/v1/jobs"), initOf(shape)),
  "fallback chain with transform": (kind, shape) =>
    layerFor(kind, { fallback: chainOptions(kind, "transform") }).fetch(kind.url("/v1/jobs"), initOf(shape)),
  "hedged chain": (kind, shape) =>
    layerFor(kind, { fallback: chainOptions(kind, "hedge") }).fetch(kind.url("/v1/jobs"), initOf(shape)),
  "chain, Request input": (kind, shape) =>
    layerFor(kind, { fallback: chainOptions(kind, "plain") }).fetch(new Request(kind.url("/v1/jobs"), initOf(shape))),
  "chain, ky client": (kind, shape) =>
    createClient({ resilience: layerFor(kind, { fallback: chainOptions(kind, "plain") }) })(
      kind.url("/v1/jobs"),
      initOf(shape) as never,
    ),
  "chain under an outer layer": (kind, shape) => {
    const inner = layerFor(kind, { fallback: chainOptions(kind, "plain") });
    return createResilience({ retry, fetch: inner.fetch }).fetch(kind.url("/v1/jobs"), initOf(shape));
  },
};

describe("a chain's endpoints' counts, per failure kind of the first × method/key × path", () => {
  for (const [pathName, run] of Object.entries(CHAIN_PATHS)) {
    describe(pathName, () => {
      for (const kindName of CHAIN_KINDS) {
        for (const shape of SHAPES.slice(0, 4)) {
          it(`${kindName}, ${shape.label}`, async () => {
            const kind = chainSetup(kindName);
            kind.arm();
            await settle(run(kind, shape));
            await wait(20);
            const first = kind.count(shape.method);
            const second = b.hits.filter((h) => h.method === shape.method).length;
            const outer = pathName.includes("outer") ? 2 : 1;
            expect(first).toBeGreaterThanOrEqual(1);
            expect(first).toBeLessThanOrEqual(kind.declined ? 2 * outer : 1);
            expect(second).toBeLessThanOrEqual(kind.declined ? outer : 0);
          });
        }
      }
    });
  }
});

// ---------------------------------------------------------------- single cases

const keyless = (extra: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...extra },
  body: BODY,
});
const posts = (server: typeof a) => server.hits.filter((h) => h.method === "POST").length;

function proxyClient(routes: Parameters<typeof resilientProxy>[0]["routes"], inner: ResilienceOptions = {}) {
  const proxy = resilientProxy<object>({ routes, resilience: { retry, ...inner } });
  const client = createResilience({
    retry: { ...fast, maxAttempts: 3, maxRetryAfter: 100 },
    fetch: (i, n) => proxy.fetch(new Request(i, n), {}, ctx),
  });
  return { proxy, client };
}

describe("the Worker proxy under a client layer of this library", () => {
  it("does not let a client re-send a keyless POST whose first upstream answered a redirect (target 503)", async () => {
    a.on(redirectTo(307, "/t"));
    c.on(status(503));
    const { client } = proxyClient([{ path: "/", upstream: a.base }]);
    const res = await client.fetch("https://worker.example/v1/jobs", keyless());
    await res.arrayBuffer();
    // SECURITY.md: never sent again after a redirect, whatever its target answers. The proxy hands the client
    // the target's 503 as a fresh Response (`redirected` false), which the client reads as "declined".
    expect(posts(a)).toBe(1); // observed: 3 (one per client attempt)
  });

  it("a chain route, and a target's 429, are told 502 too: the client sends the keyless POST once", async () => {
    a.on(redirectTo(308, "/t"));
    c.on(status(429));
    const { client } = proxyClient([
      {
        path: "/",
        chain: {
          name: "jobs",
          endpoints: [
            { name: "first", url: a.base },
            { name: "second", url: b.base },
          ],
        },
      },
    ]);
    const res = await client.fetch("https://worker.example/v1/jobs", keyless());
    await res.arrayBuffer();
    expect(res.status).toBe(502);
    expect([posts(a), posts(b), posts(c)]).toEqual([1, 0, 1]);
  });

  it("the proxy alone follows the redirect once, and answers the target's 503 as 502, whatever the request", async () => {
    a.on(redirectTo(307, "/t"));
    c.on(status(503));
    const proxy = resilientProxy<object>({ routes: [{ path: "/", upstream: a.base }], resilience: { retry } });
    const send = async (init: RequestInit) => {
      const res = await proxy.fetch(new Request("https://worker.example/v1/jobs", init), {}, ctx);
      await res.arrayBuffer();
      return res.status;
    };
    // Nothing on a passed-on answer says the first upstream had the request (`redirected` does not cross the
    // wire): a 503 would read as declined, so a request the client would send again is told 502.
    expect(await send({ method: "POST", body: BODY })).toBe(502);
    expect([posts(a), posts(c)]).toEqual([1, 1]);
    expect(await send({ method: "PATCH", body: BODY, headers: { "idempotency-key": " " } })).toBe(502);
    // A keyed POST and a GET too: a chain's transform may have made a keyless POST of them.
    expect(await send({ method: "POST", body: BODY, headers: { "idempotency-key": "k1" } })).toBe(502);
    expect(await send({ method: "GET" })).toBe(502);
  });

  it("a redirect whose target's circuit is open is a 502 the client does not send again", async () => {
    c.on(status(500));
    const { proxy, client } = proxyClient(
      [
        { path: "/", upstream: a.base },
        { path: "/c", upstream: c.base },
      ],
      { breaker: { failureThreshold: 1 } },
    );
    await settle(proxy.fetch(new Request("https://worker.example/c/t"), {}, ctx)); // the proxy's layer opens c's circuit
    c.reset();
    a.on(redirectTo(307, "/t"));
    const res = await client.fetch("https://worker.example/v1/jobs", keyless());
    expect(res.status).toBe(502);
    expect(res.headers.get("retry-after")).toBeNull();
    await res.arrayBuffer();
    expect(posts(a)).toBe(1);
    expect(c.hits.length).toBe(0);
  });

  it("a chain route whose first endpoint declined and second reset is a 502, not the first's 503", async () => {
    a.on(status(503));
    b.on((h) => h.res.socket?.destroy());
    const { client } = proxyClient([
      {
        path: "/",
        chain: {
          name: "jobs",
          endpoints: [
            { name: "p", url: a.base },
            { name: "q", url: b.base },
          ],
        },
      },
    ]);
    const res = await client.fetch("https://worker.example/v1/jobs", keyless());
    expect(res.status).toBe(502);
    await res.arrayBuffer();
    expect(posts(b)).toBe(1);
  });

  it("an open circuit (nothing sent) is a 503 with Retry-After, and the client's resend reaches no upstream", async () => {
    a.on(status(500));
    const { proxy, client } = proxyClient([{ path: "/", upstream: a.base }], { breaker: { failureThreshold: 1 } });
    await settle(proxy.fetch(new Request("https://worker.example/warm"), {}, ctx));
    a.reset();
    // The client holds off for the Retry-After (30 s here), longer than it sleeps through: one attempt, settled with the 503.
    const res = await client.fetch("https://worker.example/v1/jobs", keyless());
    expect(res.status).toBe(503);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    await res.arrayBuffer();
    expect(a.hits.length).toBe(0);
  });
});

describe("failureResponse, per failure kind, and what a client layer does with it", () => {
  async function errorOf(kindName: Kind): Promise<unknown> {
    const kind = setup(kindName);
    kind.arm();
    return settle(layerFor(kind).fetch(kind.url("/v1/jobs"), keyless()));
  }
  const cases: Array<[Kind, number]> = [
    ["reset after request", 502],
    ["reset mid-request", 502],
    ["attempt timeout", 504],
    ["total timeout", 504],
    ["307 then reset", 502],
    ["307 then refused", 502],
  ];
  for (const [kindName, expected] of cases) {
    it(`${kindName}: ${expected}, which a client does not send again`, async () => {
      const error = await errorOf(kindName);
      expect(error).toBeInstanceOf(Error);
      const answer = failureResponse(error);
      expect(answer.status).toBe(expected);
      expect(answer.headers.get("retry-after")).toBeNull();
      let sent = 0;
      const client = createResilience({
        retry,
        fetch: async () => {
          sent++;
          return failureResponse(error);
        },
      });
      await settle(client.fetch("https://worker.example/v1/jobs", keyless()));
      expect(sent).toBe(1);
    });
  }

  it("connection refused (surely not sent) is a 502 too: the client does not resend, which is allowed", async () => {
    const error = await settle(
      createResilience({ retry: { ...fast, maxAttempts: 1 } }).fetch(`${refused}/v1`, keyless()),
    );
    expect(failureResponse(error).status).toBe(502);
  });
});

describe("execute", () => {
  it("retries what its work throws, a keyless POST's reset included, unless told otherwise (docs/retry.md)", async () => {
    a.on((h) => h.res.socket?.destroy());
    const layer = createResilience({ retry });
    await settle(layer.execute(() => layer.fetch(`${a.base}/v1/jobs`, keyless())));
    await wait(20);
    expect(posts(a)).toBe(2); // "Both retry every thrown error except an abort, unless `retryOn.error` says otherwise"
    a.reset();
    a.on((h) => h.res.socket?.destroy());
    await settle(layer.execute(() => layer.fetch(`${a.base}/v1/jobs`, keyless()), { retry: false }));
    await wait(20);
    expect(posts(a)).toBe(1);
  });
});

describe("keys, hedges and transforms", () => {
  it("a hedge fires for a keyed POST (the control) and never for a keyless one", async () => {
    a.on((h) => setTimeout(() => h.res.writeHead(200).end('{"id":0}'), 150));
    b.on((h) => h.res.writeHead(200).end('{"id":1}'));
    const chains = () =>
      fallback([
        {
          name: "jobs",
          hedge: { delay: 30 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]);
    await settle(createResilience({ retry, fallback: chains() }).fetch(`${a.base}/v1/jobs`, keyless()));
    await wait(150);
    expect(posts(b)).toBe(0);
    a.reset();
    a.on((h) => setTimeout(() => h.res.writeHead(200).end('{"id":0}'), 150));
    await settle(
      createResilience({ retry, fallback: chains() }).fetch(`${a.base}/v1/jobs`, keyless({ "idempotency-key": "k" })),
    );
    expect(posts(b)).toBe(1);
  });

  it("a `Request` whose key the call's own `headers` replace is keyless: not sent again after a 500", async () => {
    a.on(status(500));
    const req = new Request(`${a.base}/v1/jobs`, { method: "POST", headers: { "idempotency-key": "k" }, body: BODY });
    await settle(createResilience({ retry }).fetch(req, { headers: { "content-type": "application/json" } }));
    await wait(20);
    expect(a.hits.map((h) => h.headers["idempotency-key"])).toEqual([undefined]);
  });

  it("a keyless POST's 500 ends the chain even when the next endpoint's transform makes a PUT of it", async () => {
    a.on(status(500));
    const layer = createResilience({
      retry,
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1`, transform: (req) => ({ ...req, method: "PUT" }) },
          ],
        },
      ]),
    });
    await settle(layer.fetch(`${a.base}/v1/jobs`, keyless()));
    await wait(20);
    expect(posts(a)).toBe(1);
    expect(b.hits.length).toBe(0);
  });

  it("a PUT that the first endpoint's transform makes a keyless POST is not sent to it twice after a 500", async () => {
    a.on(status(500));
    const layer = createResilience({
      retry,
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "p", url: `${a.base}/v1`, transform: (req) => ({ ...req, method: "POST" }) },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    await settle(layer.fetch(`${a.base}/v1/jobs`, { method: "PUT", body: BODY }));
    await wait(20);
    expect(posts(a)).toBe(1);
  });
});
