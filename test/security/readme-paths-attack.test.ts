/**
 * Outside-in attack on README.md, sentence by sentence, on the paths earlier runs did not
 * combine: a plain call, a `Request` input with and without an `init` over it, a fallback
 * chain, a hedged chain, a redirect the library follows (Node's default `redirects:
 * "library"`) and one it refuses (`redirect: "error"`), a degradation rewrite, the ky client
 * and the Worker proxy (`resilientProxy`, called in Node with an empty env). Public entries
 * only; real servers on 127.0.0.1 (test/helpers/http-upstream.ts) or stub transports; time
 * moves only on a TestClock.
 *
 * Sentences checked:
 * - "This library retries what is safe to retry, only as often as a retry budget allows,
 *   honours the server's `Retry-After`, stops calling a host whose breaker is open, and never
 *   buffers your streamed responses." (each clause on the paths above)
 * - the quick start's comment: "with no Idempotency-Key, a dropped connection does not move on
 *   to the backup: set `retry: { idempotencyKey: true }` if your API honours the header"
 *   (`Request` + `init`, `init.method` over a GET `Request`, a degradation rewrite, ky, the proxy)
 * - "It resolves with a response, even a 503, … (the last attempt's, or in a chain the last
 *   answer any endpoint gave), and rejects when it has none, or when the call is aborted or its
 *   `timeout.total` passes." (hedged chain, `validate`, a total past 2^31 - 1 ms on every path)
 * - `getResilienceInfo(res); // { attempts, endpoint, fromFallback, degradationLevel, … }` (ky)
 * - the table's "dead API, one call at a time: calls sent before the breaker refuses: 4"
 *   (the Worker proxy)
 * - the entry table (what `…/policies`, `…/degradation`, `…/cloudflare`, `…/testing` export)
 *   and docs/architecture.md's "zod … in the `./cloudflare` entry only" (esbuild's metafile)
 *
 * Failures pinned (first `it.fails` asserting the promise, on the code they were written
 * against; all fixed since, so plain `it`: a hop to a host whose breaker is open is refused with
 * a `CircuitOpenError` naming it, and a hold goes to the host that asked; docs/retry.md#redirects):
 * 1. "stops calling a host whose breaker is open" — redirect path (plain call, and a chain
 *    endpoint): with b's breaker open (a direct call to b answered 503, failureThreshold 1),
 *    a call to a that a answers with `302 Location: b` is followed to b: b receives the
 *    request. The hop is sent under a's breaker only (docs/retry.md: "the final status counts
 *    against the first host's breaker"), so b's open breaker is never consulted.
 * 2. "honours the server's `Retry-After`" — redirect path: a redirects to b, b answers
 *    `503 Retry-After: 7200`. The hold goes to a (a's breaker open 2 h: a direct call to a,
 *    which never said so, is refused), while b, the server that asked for two hours, is
 *    called again at once by the next direct call.
 *
 * Held (plain `it`): a short Retry-After after a same-origin redirect waits its 7 s; the
 * proxy waits an upstream's Retry-After and passes a final 503 (body, Retry-After) then refuses
 * unsent; a dead upstream behind the proxy gets 4 requests (12 attempts) before the proxy
 * answers "circuit open"; the proxy streams an SSE answer before its end; a hedged chain
 * resolves with the primary's late 503 when the hedge's connection is reset; a 2xx failing
 * `validate` is the answer when the other endpoint is reset (chain and hedged, both orders);
 * `timeout.total` (5 s and 2^31 + 5 s) rejects at exactly its time on a plain call, a
 * `Request` with a body, a `Request` + `init`, a hedged chain, a redirect, a degradation
 * rewrite and ky (the proxy answers 504 then); a POST without a key is sent once after a
 * reset with a `Request` + `init.headers` (the Request's key replaced, as fetch does), a GET
 * `Request` turned POST by `init`, a degradation rewrite, and after `redirect: "error"` meets
 * a 302; with a key (the caller's through `init`, ky's and the proxy's automatic one, the
 * proxy client's own) a reset moves on to the backup with the same key and body;
 * `getResilienceInfo` reads ky's response; the entries export what the table says; zod is
 * bundled only from `./cloudflare`.
 */
import { buildSync } from "esbuild";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { defaultLevels, degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  CircuitOpenError,
  createResilience,
  getResilienceInfo,
  isResilienceError,
  type RetryEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import * as policies from "../../src/policies/index.ts";
import * as testing from "../../src/testing/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const settle = <T>(p: Promise<T>): Promise<T | unknown> => p.catch((e: unknown) => e);
const ctx = { waitUntil: () => {} };
const answer =
  (code: number, headers: Record<string, string> = {}, body = "") =>
  (hit: Hit) => {
    hit.res.writeHead(code, headers);
    hit.res.end(body);
  };
const reset = (hit: Hit) => hit.req.socket.destroy();
const chainAB = (extra: Record<string, unknown> = {}) => ({
  name: "c",
  ...extra,
  endpoints: [
    { name: "a", url: `${A.base}/v1` },
    { name: "b", url: `${B.base}/v1` },
  ],
});

/** Opens b's breaker with one direct 503 (failureThreshold 1), then calls a, which redirects to b. */
async function redirectIntoOpenBreaker(viaChain: boolean) {
  B.on(answer(503, {}, "down"));
  A.on(answer(302, { location: `${B.base}/v1/x` }));
  const clock = new TestClock();
  const resilience = createResilience({
    clock,
    retry: false,
    breaker: { failureThreshold: 1 },
    ...(viaChain ? { fallback: fallback([chainAB()]) } : {}),
  });
  await settle(clock.run(resilience.fetch(`${B.base}/v1/x`)));
  const direct = await settle(clock.run(resilience.fetch(`${B.base}/v1/x`)));
  expect(direct).toBeInstanceOf(CircuitOpenError); // b's breaker is open: a direct call is refused unsent
  const before = B.hits.length;
  const result = await settle(clock.run(resilience.fetch(`${A.base}/v1/x`)));
  return { sentToB: B.hits.length - before, result };
}

describe("README: 'stops calling a host whose breaker is open'", () => {
  // "stops calling a host whose breaker is open" — redirect path, plain call.
  it("redirect path: a call whose redirect leads to a host with an open breaker does not reach that host", async () => {
    const { sentToB, result } = await redirectIntoOpenBreaker(false);
    expect(sentToB).toBe(0);
    // Refused as a call to b would be (docs/retry.md#redirects), naming b.
    expect(result).toBeInstanceOf(CircuitOpenError);
    expect((result as CircuitOpenError).key).toBe(new URL(B.base).host);
  });

  // Same sentence, same cause, on a chain endpoint that redirects.
  it("redirect path inside a chain: endpoint a's redirect to b, whose breaker is open, does not reach b", async () => {
    const { sentToB } = await redirectIntoOpenBreaker(true);
    expect(sentToB).toBe(0);
  });

  // Table: "dead API, one call at a time: calls sent before the breaker refuses | 4".
  it("Worker proxy: a dead upstream gets 4 requests (12 attempts), the 5th is answered 'circuit open' unsent", async () => {
    A.on(answer(503, {}, "busy"));
    const clock = new TestClock();
    const proxy = resilientProxy<object>({
      routes: [{ path: "/v1", upstream: `${A.base}/v1` }],
      resilience: { clock },
    });
    for (let i = 0; i < 4; i++) {
      const res = await clock.run(proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx));
      expect(res.status).toBe(503);
      expect(await res.text()).toBe("busy");
    }
    expect(A.hits.length).toBe(12);
    const fifth = await clock.run(proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx));
    expect(fifth.status).toBe(503);
    expect(await fifth.text()).toMatch(/circuit open/);
    expect(A.hits.length).toBe(12);
  });
});

describe("README: 'honours the server's `Retry-After`'", () => {
  // "honours the server's `Retry-After`" — redirect path: the server that said it is b.
  it("redirect path: b's 'Retry-After: 7200' (via a's 302) keeps the next direct call from reaching b", async () => {
    B.on(answer(503, { "retry-after": "7200" }, "later"));
    A.on((hit) => (hit.path === "/hop" ? answer(302, { location: `${B.base}/x` })(hit) : answer(200, {}, "fine")(hit)));
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const first = await clock.run(resilience.fetch(`${A.base}/hop`));
    expect(first.status).toBe(503);
    expect(B.hits.length).toBe(1);
    // Today b is called again at once (and a, which said nothing, is the host held for two hours:
    // health() lists a's breaker open with reason "Retry-After 7200 s on status 503").
    const again = await settle(clock.run(resilience.fetch(`${B.base}/x`)));
    expect(B.hits.length).toBe(1);
    expect(again).toBeInstanceOf(CircuitOpenError);
  });

  it("after a same-origin redirect, a 503's 'Retry-After: 7' is the wait before the retry (not jittered)", async () => {
    let targets = 0;
    A.on((hit) => {
      if (hit.path === "/hop") return answer(302, { location: "/x" })(hit);
      targets++;
      return targets === 1 ? answer(503, { "retry-after": "7" }, "busy")(hit) : answer(200, {}, "ok")(hit);
    });
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const retries: RetryEvent[] = [];
    resilience.on("retry", (e) => retries.push(e));
    const res = await clock.run(resilience.fetch(`${A.base}/hop`));
    expect(res.status).toBe(200);
    expect(retries.map((e) => [e.delay, e.retryAfter])).toEqual([[7000, true]]);
    expect(A.hits.map((h) => h.path)).toEqual(["/hop", "/x", "/hop", "/x"]);
  });

  it("Worker proxy: waits an upstream's Retry-After (9 s) before the retry; a final 503 beyond maxRetryAfter goes back with its body and header, then the host is refused unsent", async () => {
    const clock = new TestClock();
    A.on((hit) => (hit.n === 1 ? answer(503, { "retry-after": "9" }, "busy")(hit) : answer(200, {}, "ok")(hit)));
    const proxy = resilientProxy<object>({
      routes: [{ path: "/v1", upstream: `${A.base}/v1` }],
      resilience: { clock },
    });
    const res = await clock.run(proxy.fetch(new Request("https://w.example/v1/s"), {}, ctx));
    expect([res.status, clock.now(), res.headers.get("x-resilience-attempts")]).toEqual([200, 9000, "2"]);

    A.reset();
    A.on(answer(503, { "retry-after": "7200" }, "busy body"));
    const held = await clock.run(proxy.fetch(new Request("https://w.example/v1/s"), {}, ctx));
    expect([held.status, await held.text(), held.headers.get("retry-after")]).toEqual([503, "busy body", "7200"]);
    const refused = await clock.run(proxy.fetch(new Request("https://w.example/v1/s"), {}, ctx));
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(7000);
    expect(A.hits.length).toBe(1);
  });
});

describe("README: what resilience.fetch resolves and rejects with", () => {
  // "(… or in a chain the last answer any endpoint gave)" — hedged chain.
  it("hedged chain: the primary's late 503 is the answer when the hedge's connection is reset", async () => {
    const clock = new TestClock();
    A.on((hit) => {
      clock.setTimer(() => answer(503, {}, "late busy")(hit), 5000);
    });
    B.on(reset);
    const resilience = createResilience({
      clock,
      retry: false,
      fallback: fallback([chainAB({ hedge: { delay: 1000 } })]),
    });
    const res = await clock.run(resilience.fetch(`${A.base}/v1/x`));
    expect([res.status, await res.text()]).toEqual([503, "late busy"]);
    expect([A.hits.length, B.hits.length]).toEqual([1, 1]);
  });

  // Same sentence; docs/fallback.md: a 2xx that fails `validate` is an answer the call may resolve with.
  it.each([
    ["chain, a invalid then b reset", false, "ab"],
    ["chain, a reset then b invalid", false, "ba"],
    ["hedged, a invalid then b reset", true, "ab"],
    ["hedged, a reset then b invalid", true, "ba"],
  ] as const)("%s: resolves with the answer that failed validate", async (_name, hedged, order) => {
    const schema = {
      "~standard": {
        version: 1 as const,
        vendor: "test",
        validate: (v: unknown) =>
          v !== null && typeof v === "object" && "ok" in v ? { value: v } : { issues: [{ message: "no ok" }] },
      },
    };
    const [invalid, broken] = order === "ab" ? [A, B] : [B, A];
    invalid.on(answer(200, { "content-type": "application/json" }, '{"bad":1}'));
    broken.on(reset);
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          ...(hedged ? { hedge: { delay: 1000 } } : {}),
          endpoints: [
            { name: "a", url: `${A.base}/v1`, validate: schema },
            { name: "b", url: `${B.base}/v1`, validate: schema },
          ],
        },
      ]),
    });
    const res = await clock.run(resilience.fetch(`${A.base}/v1/x`));
    expect([res.status, await res.text()]).toEqual([200, '{"bad":1}']);
    expect(getResilienceInfo(res)?.endpoint).toBe(order === "ab" ? "a" : "b");
  });

  // "rejects … when … its `timeout.total` passes" — every path, with a total past setTimeout's 2^31 - 1 ms too.
  it("timeout.total rejects at exactly its time on every path (5 s, and 2^31 + 5 s); the proxy answers 504", async () => {
    const hang = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
      const url = input instanceof Request ? input.url : String(input);
      if (url.includes("/hop"))
        return Promise.resolve(new Response(null, { status: 302, headers: { location: "https://a.example/v1/x" } }));
      return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason), { once: true }));
    };
    const hedged = fallback([
      {
        name: "c",
        hedge: { delay: 100 },
        endpoints: [
          { name: "p", url: "https://a.example/v1" },
          { name: "s", url: "https://b.example/v1", transform: (r) => r },
        ],
      },
    ]);
    for (const total of [5000, 2 ** 31 + 5000]) {
      const layer = (clock: TestClock, extra = {}) =>
        createResilience({ clock, fetch: hang, timeout: { total }, ...extra });
      const paths: Array<[string, (clock: TestClock) => Promise<unknown>]> = [
        ["plain", (clock) => layer(clock).fetch("https://a.example/v1/x")],
        [
          "Request with a body",
          (clock) => layer(clock).fetch(new Request("https://a.example/v1/x", { method: "PUT", body: "x" })),
        ],
        [
          "Request + init",
          (clock) =>
            layer(clock).fetch(new Request("https://a.example/v1/x", { method: "PUT", body: "x" }), {
              headers: { "x-a": "b" },
            }),
        ],
        ["hedged chain", (clock) => layer(clock, { fallback: hedged }).fetch("https://a.example/v1/x")],
        ["redirect", (clock) => layer(clock).fetch("https://a.example/hop")],
        [
          "degradation rewrite",
          (clock) => {
            const r = createResilience({ clock, fetch: hang, timeout: { total }, degradation: degradation() });
            r.degradation?.setLevel("low");
            return r.fetch("https://a.example/v1/x", {
              method: "PUT",
              headers: { "content-type": "application/json" },
              body: '{"steps":50}',
            });
          },
        ],
        ["ky", (clock) => createClient({ resilience: layer(clock) }).get("https://a.example/v1/x")],
      ];
      for (const [name, go] of paths) {
        const clock = new TestClock();
        const out = await settle(clock.run(go(clock)));
        expect([name, clock.now(), (out as { name?: string }).name, (out as { phase?: string }).phase]).toEqual([
          name,
          total,
          "TimeoutError",
          "total",
        ]);
      }
      const clock = new TestClock();
      const proxy = resilientProxy<object>({
        routes: [{ path: "/v1", upstream: "https://a.example/v1" }],
        resilience: { clock, fetch: hang, timeout: { total } },
      });
      const res = await clock.run(
        proxy.fetch(new Request("https://w.example/v1/x", { method: "POST", body: "abc" }), {}, ctx),
      );
      expect([res.status, clock.now()]).toEqual([504, total]);
    }
  });

  // Quick start: `console.log(getResilienceInfo(res)); // { attempts, endpoint, fromFallback, degradationLevel, … }`
  it("ky: getResilienceInfo reads the response ky resolves with (attempts 2 after a 503)", async () => {
    A.on((hit) => (hit.n === 1 ? answer(503, {}, "busy")(hit) : answer(200, {}, "ok")(hit)));
    const clock = new TestClock();
    const api = createClient({ resilience: createResilience({ clock }) });
    const res = await clock.run(api.get(`${A.base}/x`));
    expect(getResilienceInfo(res)).toMatchObject({
      attempts: 2,
      endpoint: A.host,
      fromFallback: false,
      degradationLevel: "full",
    });
  });
});

describe("README quick start: 'with no Idempotency-Key, a dropped connection does not move on to the backup'", () => {
  async function keyless(call: (resilience: ReturnType<typeof createResilience>) => Promise<Response>, extra = {}) {
    A.on(reset);
    B.on(answer(200, {}, "spare"));
    const clock = new TestClock();
    const resilience = createResilience({ clock, fallback: fallback([chainAB()]), ...extra });
    const out = await settle(clock.run(call(resilience)));
    return { out, a: A.hits, b: B.hits };
  }

  it("a Request carrying a key, with init.headers over it (which replace the Request's, as fetch does): sent once, not moved on", async () => {
    const { out, a, b } = await keyless((r) =>
      r.fetch(new Request(`${A.base}/v1/x`, { method: "POST", headers: { "idempotency-key": "k1" }, body: "{}" }), {
        headers: { "content-type": "application/json" },
      }),
    );
    expect(isResilienceError(out)).toBe(true);
    expect(a.map((h) => h.headers["idempotency-key"])).toEqual([undefined]);
    expect(b.length).toBe(0);
  });

  it("a GET Request turned POST by init: sent once, not moved on", async () => {
    const { out, a, b } = await keyless((r) => r.fetch(new Request(`${A.base}/v1/x`), { method: "POST", body: "{}" }));
    expect(isResilienceError(out)).toBe(true);
    expect([a.length, b.length]).toEqual([1, 0]);
  });

  it("a degradation rewrite: the rewritten body is sent once, not moved on", async () => {
    const { out, a, b } = await keyless(
      (r) => {
        r.degradation?.setLevel("low");
        return r.fetch(`${A.base}/v1/x`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ steps: 50, resolution: "1080p" }),
        });
      },
      { degradation: degradation() },
    );
    expect(isResilienceError(out)).toBe(true);
    expect(a.map((h) => h.body)).toEqual(['{"steps":20,"resolution":"720p"}']);
    expect(b.length).toBe(0);
  });

  it('redirect: "error" meeting a 302 (the server answered): a POST is sent once, plain and down a chain', async () => {
    A.on(answer(302, { location: "/elsewhere" }));
    const clock = new TestClock();
    const plain = await settle(
      clock.run(createResilience({ clock }).fetch(`${A.base}/v1/x`, { method: "POST", body: "{}", redirect: "error" })),
    );
    expect(isResilienceError(plain)).toBe(true);
    expect(A.hits.length).toBe(1);
    const chained = await settle(
      clock.run(
        createResilience({ clock, fallback: fallback([chainAB()]) }).fetch(
          new Request(`${A.base}/v1/x`, { method: "POST", body: "{}", redirect: "error" }),
        ),
      ),
    );
    expect(isResilienceError(chained)).toBe(true);
    expect([A.hits.length, B.hits.length]).toEqual([2, 0]);
  });

  it.each([
    "ky with retry.idempotencyKey",
    "Request + init naming a key",
    "Request + init, retry.idempotencyKey",
    "proxy, the client's key",
    "proxy, retry.idempotencyKey",
  ])("with a key (%s), a reset moves on to the backup with the same key and body", async (way) => {
    A.on(reset);
    B.on(answer(200, {}, "spare"));
    const clock = new TestClock();
    const chain = chainAB();
    const auto = { retry: { idempotencyKey: true } };
    const body = '{"a":1}';
    const url = `${A.base}/v1/x`;
    let call: Promise<string>;
    if (way === "ky with retry.idempotencyKey")
      call = createClient({ resilience: createResilience({ clock, ...auto, fallback: fallback([chain]) }) })
        .post(url, { body })
        .text();
    else if (way === "Request + init naming a key")
      call = createResilience({ clock, fallback: fallback([chain]) })
        .fetch(new Request(url, { method: "POST", body }), { headers: { "idempotency-key": "k9" } })
        .then((r) => r.text());
    else if (way === "Request + init, retry.idempotencyKey")
      call = createResilience({ clock, ...auto, fallback: fallback([chain]) })
        .fetch(new Request(url, { method: "POST", body }), { headers: { "x-a": "1" } })
        .then((r) => r.text());
    else {
      const proxy = resilientProxy<object>({
        routes: [{ path: "/v1", chain }],
        resilience: { clock, ...(way === "proxy, retry.idempotencyKey" ? auto : {}) },
      });
      const headers: Record<string, string> = way === "proxy, the client's key" ? { "idempotency-key": "pk" } : {};
      call = proxy
        .fetch(new Request("https://w.example/v1/x", { method: "POST", headers, body }), {}, ctx)
        .then((r) => r.text());
    }
    expect(await clock.run(call)).toBe("spare");
    const keys = new Set([...A.hits, ...B.hits].map((h) => h.headers["idempotency-key"]));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toEqual(expect.any(String));
    expect([...A.hits, ...B.hits].every((h) => h.body === body)).toBe(true);
    expect(B.hits.length).toBe(1);
  });
});

describe("README: 'never buffers your streamed responses'", () => {
  it("Worker proxy: an SSE answer's first event arrives before the upstream ends it", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    A.on((hit) => {
      hit.res.writeHead(200, { "content-type": "text/event-stream" });
      hit.res.write("data: 1\n\n");
      void gate.then(() => hit.res.end("data: 2\n\n"));
    });
    const proxy = resilientProxy<object>({ routes: [{ path: "/v1", upstream: `${A.base}/v1` }] });
    const res = await proxy.fetch(new Request("https://w.example/v1/s"), {}, ctx);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("data: 1\n\n");
    release();
    await reader.cancel();
  });
});

describe("README's entry table and docs/architecture.md's dependency table", () => {
  // "`…/policies` | `retry(fn)`, `CircuitBreaker`, `Bulkhead`, `RetryBudget`, `FallbackChain`, the level machine"
  it("…/policies exports retry, CircuitBreaker, Bulkhead, RetryBudget, FallbackChain and the level machine", () => {
    expect(typeof policies.retry).toBe("function");
    for (const cls of [policies.CircuitBreaker, policies.Bulkhead, policies.RetryBudget, policies.FallbackChain])
      expect(typeof cls).toBe("function");
    expect(typeof policies.nextLevel).toBe("function");
    expect(typeof policies.initialLevelState).toBe("function");
  });

  // "`…/degradation` | `degradation({…})`: five levels, triggers, request rewriting"
  it("…/degradation: five levels, full 100 % down to minimal 20 %", () => {
    expect(Object.entries(defaultLevels).map(([name, l]) => [name, l.percentage])).toEqual([
      ["full", 100],
      ["high", 80],
      ["medium", 60],
      ["low", 40],
      ["minimal", 20],
    ]);
  });

  // "`…/ky`, `…/cloudflare`, `…/testing` | the ky client, the Workers stores and proxy, the MSW fault kit"
  it("…/testing gives the MSW fault kit, TestClock and the recorder", () => {
    for (const name of [
      "status",
      "json",
      "sequence",
      "hang",
      "networkError",
      "upstream",
      "recordEvents",
      "corsPreflight",
    ])
      expect(typeof (testing as Record<string, unknown>)[name], name).toBe("function");
  });

  // docs/architecture.md: "zod (`zod/mini`) | runtime | … in the `./cloudflare` entry only"
  it("zod is bundled from ./cloudflare and from no other entry", () => {
    const here = new URL(".", import.meta.url).pathname;
    const entries = ["index", "fallback/index", "degradation/index", "policies/index", "cloudflare/index"];
    const pullsZod = entries.map((entry) => {
      const out = buildSync({
        entryPoints: [`${here}../../src/${entry}.ts`],
        bundle: true,
        write: false,
        metafile: true,
        format: "esm",
        platform: "neutral",
        logLevel: "silent",
      });
      return [entry, Object.keys(out.metafile.inputs).some((path) => path.includes("node_modules/zod"))];
    });
    expect(pullsZod).toEqual([
      ["index", false],
      ["fallback/index", false],
      ["degradation/index", false],
      ["policies/index", false],
      ["cloudflare/index", true],
    ]);
  });
});
