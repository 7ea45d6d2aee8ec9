/**
 * Outside-in attack on the retry budget and the bulkhead, across every path: what `health()` says of the budget's
 * tokens and of each host's slots after each outcome, against the requests a real server saw.
 * Docs: docs/retry.md ("One token bucket per `createResilience` instance: each call earns `ratio` tokens (0.1), each
 * retry spends one", "An empty bucket means no retry, never a wait", "`BulkheadRejectedError` | the host's bulkhead
 * queue is full: nothing was sent", "when the layer itself refuses the retry (the host's breaker opened during the
 * wait, its bulkhead is full), the call settles with that response, body intact"); docs/breakers.md ("`bulkhead: {
 * maxConcurrent, maxQueue }` limits attempts in flight per host", "a redirect's hop to another host runs inside the
 * attempt that holds the first host's slot, not in a slot of the host it goes to; a slot is held until response
 * headers arrive (a streamed body does not hold it) or the attempt is given up (an abort or a timeout, even when the
 * transport ignores its signal: a hung transport cannot wedge the host)", "A full queue rejects at once with
 * `BulkheadRejectedError`; a queued caller that aborts leaves the queue", "each reads the breaker again when it gets
 * its slot, and is refused then if the host is open", "a host that calls hold (in flight, queued in its bulkhead, or
 * waiting to retry) is never the one evicted", "A store of your own implements `BreakerStore` … Its `publish`, `peek`
 * and `record` run on the request's path: what they throw fails the call", "an attempt that waited for a bulkhead
 * slot (each attempt reads the store before it leaves, and again after such a wait)"); docs/health-and-events.md
 * ("every breaker (… bulkhead `active`/`queued`), the budget's tokens"); docs/fallback.md ("the retry budget is
 * shared", hedging: "the first acceptable answer wins and the others are aborted"); SECURITY.md (a keyless POST "is
 * sent again … only when it surely was not processed: … an open breaker or full bulkhead").
 * How: `createResilience`, `memoryStore`, a `BreakerStore` of the test's own (root), `fallback` (./fallback),
 * `createClient` (./ky), `resilientProxy` (./cloudflare) and its health route; node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts), and a transport that ignores its signal. Budgets of `{ ratio: 1, minPerSecond: 0
 * }`
 * make the count exact: one token a call, none free, so a call's first retry goes and its second is denied.
 * Paths: plain call, chain with two endpoints, hedge, redirect followed (307 to a second origin), async `transform`,
 * `Request` input with a body, ky client, `resilientProxy`; outcomes 200, 503, 429 with `Retry-After: 0`, reset
 * connection, attempt timeout, caller's abort mid-request, body read error (the matrix); refused by the breaker (a
 * queued call whose host opened) and by the bulkhead (plain call, chain, hedge, a retry, maxHosts), apart.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a queued call's slot goes back when the store's read fails it):
 * 1. docs/breakers.md: a slot "is held until response headers arrive … or the attempt is given up … a hung transport
 *    cannot wedge the host", and a store of one's own whose `peek` throws "fails the call" (not the host). Observed:
 *    a call that waited in the bulkhead queue reads the store again when it gets its slot (as documented); when the
 *    store's `peek` throws at that moment (a Redis-backed store losing its connection for a moment), the call fails
 *    with `RetryExhaustedError` (its `cause` the store's error) but its slot is never given back: `health()` shows
 *    `active: 1` with nothing in flight for good, and once the store answers again every later call to the host
 *    queues forever (or, with `maxQueue: 0`, is refused with `BulkheadRejectedError`). src/http/send/send-attempt.ts
 *    `sendAttempt`: `release = await acquired; scope.sync?.();` runs before the `try { … } finally { release?.() }`
 *    that frees the slot, so a throw from `sync` (`BreakerRegistry.sync` → `store.peek`) skips the release.
 *
 * Held (plain `it`):
 * - The matrix (8 paths × 7 outcomes): requests at the servers, `retriesAllowed`/`retriesDenied`, tokens
 *   (calls − retries allowed) and every host's `active`/`queued` back at 0 agree with the docs on every cell: one
 *   token buys one retry of one endpoint, a chain's next endpoint and a hedge spend none and deposit nothing more,
 *   a redirect's retry costs one token for both hops, a caller's abort or a body read error spends none.
 * - A full queue refuses at once with `BulkheadRejectedError`, nothing sent; a queued caller that aborts leaves the
 *   queue, and the next queued call gets the slot.
 * - A streamed body does not hold the slot: the next call goes while the first body is still open.
 * - A transport that ignores its signal frees the slot on `timeout.attempt`, `timeout.total`, a caller's abort, ky's
 *   own `timeout`, and when its endpoint lost a hedge.
 * - A hedge queued behind a busy host leaves the queue when the other endpoint wins; a hedge to the same host as the
 *   running endpoint is refused by its bulkhead and the chain moves on.
 * - A redirect's hop to a host whose slot is taken goes (it runs in the first host's slot).
 * - A call queued when the host opens is refused with `CircuitOpenError` when it gets its slot, nothing sent.
 * - A retry refused by a full bulkhead settles with the 503 it had, body intact; the token stays spent (the
 *   `RetryBudgetSnapshot` JSDoc says so).
 * - A keyless POST passes over a chain endpoint whose bulkhead is full to the next, sent once.
 * - `maxHosts: 1` never evicts a host whose slot is held: a second call is still refused.
 * - `resilientProxy`: its health route's budget and slots agree with what its upstream saw, after a 503 retried,
 *   a streamed body, a client's abort, a POST.
 *
 * Docs-silent when found, said since (docs/retry.md, docs/fallback.md) and tested at the end:
 * - A retry the budget let go whose wait the caller's abort or a hedge's win then ended keeps its token spent and
 *   counts in `retriesAllowed` though nothing was sent (the JSDoc names a breaker's opening and a full bulkhead).
 * - A call refused by a full bulkhead or an open breaker, or aborted by its caller, keeps its deposit.
 * - A chain endpoint refused by its full bulkhead counts as a failed call in `statistics()` (nothing was sent).
 *
 * - A `ReadableStream` given in `init` is not cancelled when a full bulkhead refuses the call (a `Request`'s
 *   body held past `maxReplayBytes` is): docs/retry.md says it stays the caller's, unread.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerStore,
  createResilience,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isRetryExhaustedError,
  isTimeoutError,
  memoryStore,
  type Resilience,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const, maxAttempts: 3 };
/** One token a call, none free: a call's first retry goes, its second is denied. */
const exact = { ratio: 1, minPerSecond: 0 };
const tick = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));
const ctx = { waitUntil() {} };

/** Each host's slots as `active/queued`. */
function slots(r: { health(): ReturnType<Resilience["health"]> }): Record<string, string> {
  return Object.fromEntries(Object.entries(r.health().breakers).map(([k, v]) => [k, `${v.active}/${v.queued}`]));
}

type Outcome = "200" | "503" | "429" | "reset" | "timeout" | "abort" | "bodyerr";
const outcomes: Outcome[] = ["200", "503", "429", "reset", "timeout", "abort", "bodyerr"];

function answer(outcome: Outcome): (h: Hit) => void {
  return (h) => {
    if (outcome === "200") h.res.end("ok");
    else if (outcome === "503") {
      h.res.statusCode = 503;
      h.res.end("busy");
    } else if (outcome === "429") {
      h.res.statusCode = 429;
      h.res.setHeader("retry-after", "0");
      h.res.end("slow");
    } else if (outcome === "reset") h.res.socket?.destroy();
    else if (outcome === "bodyerr") {
      h.res.writeHead(200);
      h.res.write("part");
      setTimeout(() => h.res.socket?.destroy(), 5);
    }
    // "timeout" and "abort": no answer.
  };
}

const failing = (o: Outcome) => o === "503" || o === "429" || o === "reset" || o === "timeout";

type Path = "plain" | "chain" | "hedge" | "redirect" | "transform" | "request" | "ky" | "proxy";
const paths: Path[] = ["plain", "chain", "hedge", "redirect", "transform", "request", "ky", "proxy"];

function optionsFor(path: Path, outcome: Outcome): ResilienceOptions {
  const options: ResilienceOptions = {
    retry: fast,
    budget: exact,
    bulkhead: { maxConcurrent: 1, maxQueue: 0 },
    timeout: outcome === "timeout" ? { attempt: 30 } : undefined,
  };
  if (path === "chain" || path === "hedge" || path === "transform") {
    options.fallback = fallback([
      {
        name: "c",
        // The hedge starts where nothing else would move the call on; elsewhere, room for a loaded machine.
        hedge: path === "hedge" ? { delay: outcome === "abort" || outcome === "timeout" ? 10 : 250 } : undefined,
        endpoints: [
          {
            name: "p",
            url: `${a.base}/v1`,
            transform:
              path === "transform"
                ? async (req) => {
                    await tick(2);
                    return req;
                  }
                : undefined,
          },
          { name: "q", url: `${b.base}/v1` },
        ],
      },
    ]);
  }
  return options;
}

describe("the budget and the slots after each outcome, on each path", () => {
  for (const path of paths) {
    for (const outcome of outcomes) {
      it(`${path}: ${outcome}`, async () => {
        const chained = path === "chain" || path === "hedge" || path === "transform";
        a.on(answer(outcome));
        b.on(answer(outcome));
        if (path === "redirect") {
          a.on((h) => {
            h.res.statusCode = 307;
            h.res.setHeader("location", `${b.base}/to`);
            h.res.end();
          });
        }
        const options = optionsFor(path, outcome);
        const controller = new AbortController();
        const reason = new Error("caller left");
        const url = `${a.base}/v1/x`;
        let layer: { health(): ReturnType<Resilience["health"]> };
        let call: Promise<Response>;
        if (path === "proxy") {
          const proxy = resilientProxy({ routes: [{ path: "/", upstream: a.base }], resilience: options });
          let proxyHealth: unknown;
          // The proxy's layer, as its health route shows it once the call settled.
          layer = { health: () => proxyHealth as ReturnType<Resilience["health"]> };
          call = proxy.fetch(new Request("https://w.example/v1/x", { signal: controller.signal }), {}, ctx);
          call = call.finally(async () => {
            await tick();
            const res = await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx);
            proxyHealth = await res.json();
          });
        } else {
          const r = createResilience(options);
          layer = r;
          if (path === "request")
            call = r.fetch(new Request(url, { method: "PUT", body: "hello", signal: controller.signal }));
          else if (path === "ky")
            call = createClient({ resilience: r }).get(url, { throwHttpErrors: false, signal: controller.signal });
          else call = r.fetch(path === "redirect" ? `${a.base}/r` : url, { signal: controller.signal });
        }
        if (outcome === "abort") {
          // Once the request is out (with a hedge: both), the caller leaves.
          await (path === "redirect" || path === "hedge" ? b.nth(1) : a.nth(1));
          controller.abort(reason);
        }
        const settled = await call.then(
          async (res) => {
            const body = await res.text().catch((e: unknown) => e);
            return { status: res.status, body };
          },
          (error: unknown) => ({ status: undefined, body: error }),
        );
        await tick();
        if (path === "proxy") await tick();
        // What the servers saw: the first host's requests, and the second's (the chain's q, the redirect's target).
        const first = a.hits.length;
        const second = b.hits.length;
        const health = layer.health();
        const budget = health.budget;
        if (outcome === "abort") {
          expect(settled.body).toBe(reason);
        } else if (outcome === "bodyerr") {
          expect(settled.status).toBe(200);
          expect(settled.body).toBeInstanceOf(TypeError);
        }
        if (failing(outcome)) {
          // One token: the first retry goes, the second is denied; a chain's next endpoint spends none.
          expect(budget?.retriesAllowed).toBe(1);
          if (chained) {
            expect(first + second).toBe(3);
            expect(budget?.retriesDenied).toBe(2);
          } else {
            expect(first).toBe(2);
            expect(second).toBe(path === "redirect" ? 2 : 0);
            expect(budget?.retriesDenied).toBe(1);
          }
          expect(budget?.tokens).toBe(0);
        } else {
          expect(budget?.retriesAllowed).toBe(0);
          expect(budget?.retriesDenied).toBe(0);
          expect(budget?.tokens).toBe(1);
          expect(first).toBe(1);
          const expectedSecond = path === "redirect" || (path === "hedge" && outcome === "abort") ? 1 : 0;
          expect(second).toBe(expectedSecond);
        }
        // Every slot given back, nothing queued.
        for (const [, held] of Object.entries(slots(layer))) expect(held).toBe("0/0");
      });
    }
  }
});

describe("the bulkhead", () => {
  it("refuses at once when the queue is full, sends nothing, and a queued caller that aborts leaves", async () => {
    const held: Hit[] = [];
    a.on((h) => held.push(h));
    const r = createResilience({ retry: fast, bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
    const controller = new AbortController();
    const first = r.fetch(`${a.base}/1`, { signal: controller.signal });
    await a.nth(1);
    const queued = r.fetch(`${a.base}/2`);
    await tick();
    expect(slots(r)[a.host]).toBe("1/1");
    const refused = await rejection(r.fetch(`${a.base}/3`));
    expect(isBulkheadRejectedError(refused)).toBe(true);
    expect(a.hits.length).toBe(1);
    // The first caller leaves: its slot goes to the queued call.
    const reason = new Error("left");
    controller.abort(reason);
    expect(await rejection(first)).toBe(reason);
    await a.nth(2);
    expect(slots(r)[a.host]).toBe("1/0");
    (held[1] as Hit).res.end("second");
    expect(await (await queued).text()).toBe("second");
    expect(slots(r)[a.host]).toBe("0/0");

    // A queued caller that aborts leaves the queue.
    const hold = r.fetch(`${a.base}/4`);
    await a.nth(3);
    const waiting = new AbortController();
    const leaving = r.fetch(`${a.base}/5`, { signal: waiting.signal });
    await tick();
    expect(slots(r)[a.host]).toBe("1/1");
    waiting.abort(reason);
    expect(await rejection(leaving)).toBe(reason);
    expect(slots(r)[a.host]).toBe("1/0");
    (held[2] as Hit).res.end("ok");
    await hold;
    expect(a.hits.length).toBe(3);
  });

  it("does not hold the slot while a streamed body is read", async () => {
    a.on((h) => {
      if (h.path === "/stream") {
        h.res.writeHead(200);
        h.res.write("chunk");
      } else h.res.end("next");
    });
    const r = createResilience({ retry: fast, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const streaming = await r.fetch(`${a.base}/stream`);
    expect(slots(r)[a.host]).toBe("0/0");
    expect(await (await r.fetch(`${a.base}/next`)).text()).toBe("next");
    await streaming.body?.cancel();
  });

  it("frees the slot of a transport that ignores its signal, on every way an attempt is given up", async () => {
    let sent = 0;
    const deaf = ((input: RequestInfo | URL, init?: RequestInit) => {
      const target = String(input instanceof Request ? input.url : input);
      if (!target.includes("deaf.example")) return fetch(input, init);
      sent++;
      return new Promise<Response>(() => {});
    }) as typeof fetch;
    const base = { fetch: deaf, retry: { ...fast, maxAttempts: 1 }, bulkhead: { maxConcurrent: 1, maxQueue: 0 } };
    const host = "deaf.example";

    const attempt = createResilience({ ...base, timeout: { attempt: 20 } });
    expect(isTimeoutError(await rejection(attempt.fetch(`http://${host}/1`)))).toBe(true);
    expect(slots(attempt)[host]).toBe("0/0");

    const total = createResilience({ ...base, timeout: { total: 20 } });
    expect(isTimeoutError(await rejection(total.fetch(`http://${host}/1`)))).toBe(true);
    expect(slots(total)[host]).toBe("0/0");

    const plain = createResilience(base);
    const reason = new Error("left");
    const controller = new AbortController();
    const pending = plain.fetch(`http://${host}/1`, { signal: controller.signal });
    await tick();
    expect(slots(plain)[host]).toBe("1/0");
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    expect(slots(plain)[host]).toBe("0/0");

    const client = createClient({ resilience: plain, timeout: 20 });
    expect(await rejection(client.get(`http://${host}/2`))).toMatchObject({ name: "TimeoutError" });
    expect(slots(plain)[host]).toBe("0/0");

    b.on((h) => h.res.end("spare"));
    const hedged = createResilience({
      ...base,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: `http://${host}/p` },
            { name: "q", url: `${b.base}/q` },
          ],
        },
      ]),
    });
    expect(await (await hedged.fetch(`http://${host}/p/x`)).text()).toBe("spare");
    expect(slots(hedged)[host]).toBe("0/0");
    expect(sent).toBe(5);
  });

  it("lets a hedge queued behind a busy host leave the queue when the other endpoint wins", async () => {
    const held: Hit[] = [];
    a.on((h) => held.push(h));
    b.on((h) => h.res.end("spare"));
    const r = createResilience({
      retry: fast,
      bulkhead: { maxConcurrent: 1, maxQueue: 2 },
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: `${a.base}/p` },
            { name: "q", url: `${b.base}/q` },
          ],
        },
      ]),
    });
    const blocker = r.fetch(`${a.base}/block`);
    await a.nth(1);
    expect(await (await r.fetch(`${a.base}/p/x`)).text()).toBe("spare");
    expect(slots(r)).toEqual({ [a.host]: "1/0", [b.host]: "0/0" });
    (held[0] as Hit).res.end("ok");
    await blocker;
    expect(a.hits.length).toBe(1); // p never went
    expect(slots(r)[a.host]).toBe("0/0");
  });

  it("refuses a hedge to the running endpoint's own host, and the chain moves on", async () => {
    const held: Hit[] = [];
    a.on((h) => held.push(h));
    b.on((h) => h.res.end("spare"));
    const r = createResilience({
      retry: fast,
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: `${a.base}/p` },
            { name: "q", url: `${a.base}/q` },
            { name: "s", url: `${b.base}/s` },
          ],
        },
      ]),
    });
    const reasons: string[] = [];
    r.on("fallback", (e) => reasons.push(`${e.from}: ${e.reason.split(":")[0]}`));
    expect(await (await r.fetch(`${a.base}/p/x`)).text()).toBe("spare");
    expect(reasons).toEqual(["q: BulkheadRejectedError"]);
    expect(a.hits.map((h) => h.path)).toEqual(["/p/x"]);
    await (held[0] as Hit).closed; // the loser p was aborted
    expect(slots(r)).toEqual({ [a.host]: "0/0", [b.host]: "0/0" });
  });

  it("runs a redirect's hop in the first host's slot, not in the target's", async () => {
    const held: Hit[] = [];
    a.on((h) => {
      h.res.statusCode = 307;
      h.res.setHeader("location", `${b.base}/to`);
      h.res.end();
    });
    b.on((h) => (h.path === "/hold" ? held.push(h) : h.res.end("target")));
    const r = createResilience({ retry: fast, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const blocker = r.fetch(`${b.base}/hold`);
    await b.nth(1);
    expect(await (await r.fetch(`${a.base}/r`)).text()).toBe("target");
    expect(slots(r)).toEqual({ [a.host]: "0/0", [b.host]: "1/0" });
    (held[0] as Hit).res.end("ok");
    await blocker;
    expect(slots(r)[b.host]).toBe("0/0");
  });

  it("refuses a call queued when its host opens, once it gets its slot, with nothing sent", async () => {
    const held: Hit[] = [];
    a.on((h) => held.push(h));
    const r = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      bulkhead: { maxConcurrent: 1, maxQueue: 1 },
    });
    const first = r.fetch(`${a.base}/1`);
    await a.nth(1);
    const queued = r.fetch(`${a.base}/2`);
    await tick();
    expect(slots(r)[a.host]).toBe("1/1");
    (held[0] as Hit).res.statusCode = 503;
    (held[0] as Hit).res.end();
    expect((await first).status).toBe(503);
    expect(isCircuitOpenError(await rejection(queued))).toBe(true);
    expect(a.hits.length).toBe(1);
    expect(slots(r)[a.host]).toBe("0/0");
  });

  it("settles a retry refused by a full bulkhead with the 503 it had, its token spent", async () => {
    const held: Hit[] = [];
    a.on((h) => {
      if (h.path === "/hold") held.push(h);
      else {
        h.res.statusCode = 503;
        h.res.end("busy body");
      }
    });
    const r = createResilience({
      retry: { ...fast, initialDelay: 40, maxDelay: 40 },
      budget: exact,
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
    });
    const call = r.fetch(`${a.base}/x`);
    await a.nth(1);
    await tick(10); // the 503 is in, the retry waits
    const blocker = r.fetch(`${a.base}/hold`);
    const res = await call;
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("busy body");
    expect(a.hits.map((h) => h.path)).toEqual(["/x", "/hold"]);
    // Two calls deposited, one retry let go (refused by the bulkhead, as the JSDoc says).
    expect(r.health().budget).toMatchObject({ tokens: 1, retriesAllowed: 1, retriesDenied: 0 });
    (held[0] as Hit).res.end("ok");
    await blocker;
    expect(slots(r)[a.host]).toBe("0/0");
  });

  it("passes a keyless POST over an endpoint whose bulkhead is full, sent once", async () => {
    const held: Hit[] = [];
    a.on((h) => held.push(h));
    b.on((h) => h.res.end(`took ${h.body}`));
    const r = createResilience({
      retry: fast,
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const blocker = r.fetch(`${a.base}/hold`);
    await a.nth(1);
    const res = await r.fetch(`${a.base}/v1/jobs`, { method: "POST", body: "job" });
    expect(await res.text()).toBe("took job");
    expect(a.hits.length).toBe(1);
    expect(b.hits.length).toBe(1);
    (held[0] as Hit).res.end("ok");
    await blocker;
  });

  it("never evicts a host whose slot is held, whatever maxHosts", async () => {
    const held: Hit[] = [];
    a.on((h) => held.push(h));
    b.on((h) => h.res.end("b"));
    const r = createResilience({
      retry: fast,
      breaker: { maxHosts: 1 },
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
    });
    const blocker = r.fetch(`${a.base}/1`);
    await a.nth(1);
    expect(await (await r.fetch(`${b.base}/x`)).text()).toBe("b");
    expect(isBulkheadRejectedError(await rejection(r.fetch(`${a.base}/2`)))).toBe(true);
    expect(a.hits.length).toBe(1);
    (held[0] as Hit).res.end("ok");
    await blocker;
  });

  it("resilientProxy: the health route's budget and slots agree with what the upstream saw", async () => {
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: a.base }],
      resilience: { retry: fast, budget: exact, bulkhead: { maxConcurrent: 1, maxQueue: 0 } },
    });
    const health = async () => {
      const h = (await (
        await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx)
      ).json()) as ReturnType<Resilience["health"]>;
      return {
        tokens: h.budget?.tokens,
        allowed: h.budget?.retriesAllowed,
        slots: Object.values(h.breakers).map((v) => `${v.active}/${v.queued}`),
      };
    };
    a.on((h) => {
      h.res.statusCode = 503;
      h.res.end();
    });
    expect((await proxy.fetch(new Request("https://w.example/1"), {}, ctx)).status).toBe(503);
    expect(a.hits.length).toBe(2);
    expect(await health()).toEqual({ tokens: 0, allowed: 1, slots: ["0/0"] });

    a.on((h) => {
      h.res.writeHead(200);
      h.res.write("x");
    });
    const streaming = await proxy.fetch(new Request("https://w.example/2"), {}, ctx);
    expect(await health()).toEqual({ tokens: 1, allowed: 1, slots: ["0/0"] });
    await streaming.body?.cancel();

    a.on(() => {});
    const controller = new AbortController();
    const reason = new Error("client left");
    const pending = proxy.fetch(new Request("https://w.example/3", { signal: controller.signal }), {}, ctx);
    await a.nth(4);
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    expect(await health()).toEqual({ tokens: 2, allowed: 1, slots: ["0/0"] });

    a.on((h) => h.res.end(`took ${h.body}`));
    const posted = await proxy.fetch(new Request("https://w.example/4", { method: "POST", body: "abc" }), {}, ctx);
    expect(await posted.text()).toBe("took abc");
    expect(await health()).toEqual({ tokens: 3, allowed: 1, slots: ["0/0"] });
    expect(a.hits.length).toBe(5);
  });
});

describe("a store of one's own whose peek throws when a queued call gets its slot", () => {
  it("fails that call, and gives its slot back: the host is not wedged", async () => {
    const shared = memoryStore();
    let down = false;
    const store: BreakerStore = {
      name: "flaky",
      publish: (key, snapshot) => shared.publish(key, snapshot),
      peek: (key, now) => {
        if (down) throw new Error("store connection lost");
        return shared.peek(key, now);
      },
    };
    const held: Hit[] = [];
    a.on((h) => held.push(h));
    const r = createResilience({ store, retry: false, bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
    const first = r.fetch(`${a.base}/1`);
    await a.nth(1);
    const queued = r.fetch(`${a.base}/2`);
    await tick();
    expect(slots(r)[a.host]).toBe("1/1");
    // The store is down for a moment, just as the queued call gets the slot.
    down = true;
    (held[0] as Hit).res.end("ok");
    expect((await first).status).toBe(200);
    const error = await rejection(queued);
    // The call fails with the store's error, as documented.
    expect(isRetryExhaustedError(error) && (error.cause as Error).message).toBe("store connection lost");
    down = false;
    // Nothing is in flight: every slot is free (observed: "1/0" for good).
    expect(slots(r)[a.host]).toBe("0/0");
    // And the host takes calls again (observed: this call waits in the queue for a slot no one will free).
    a.on((h) => h.res.end("again"));
    const next = await r.fetch(`${a.base}/3`, { signal: AbortSignal.timeout(50) }).catch((e: unknown) => e);
    expect(next).toBeInstanceOf(Response);
    expect(a.hits.length).toBe(2);
  });
});

describe("what docs/retry.md and docs/fallback.md say of it since", () => {
  it("keeps a retry's token spent when the caller aborts during its wait, and the deposit of every call", async () => {
    a.on((h) => {
      h.res.statusCode = 503;
      h.res.end("busy");
    });
    const r = createResilience({ retry: { ...fast, initialDelay: 200, maxDelay: 200 }, budget: exact });
    const controller = new AbortController();
    const call = r.fetch(`${a.base}/x`, { signal: controller.signal });
    await a.nth(1);
    await tick(10); // the 503 is in, the retry waits
    controller.abort(new Error("gone"));
    expect(await rejection(call)).toMatchObject({ message: "gone" });
    expect(a.hits.length).toBe(1);
    // One call deposited one token, the retry allowed before its wait spent it.
    expect(r.health().budget).toMatchObject({ tokens: 0, retriesAllowed: 1, retriesDenied: 0 });
  });

  it("keeps the deposit of a call its full bulkhead refused", async () => {
    const held: Hit[] = [];
    a.on((h) => held.push(h));
    const r = createResilience({ retry: fast, budget: exact, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const blocker = r.fetch(`${a.base}/hold`);
    await a.nth(1);
    expect(isBulkheadRejectedError(await rejection(r.fetch(`${a.base}/x`)))).toBe(true);
    expect(r.health().budget).toMatchObject({ tokens: 2, retriesAllowed: 0 });
    (held[0] as Hit).res.end("ok");
    await blocker;
  });

  it("counts a chain endpoint its full bulkhead refused as failed, not one passed over for its open breaker", async () => {
    const held: Hit[] = [];
    a.on((h) => {
      if (h.path === "/hold") held.push(h);
      else {
        h.res.statusCode = 500;
        h.res.end("down");
      }
    });
    b.on((h) => h.res.end("ok"));
    const r = createResilience({
      retry: { maxAttempts: 1 },
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const chain = r.fallback.chain("c");
    const blocker = r.fetch(`${a.base}/hold`);
    await a.nth(1);
    expect(await (await r.fetch(`${a.base}/v1/x`)).text()).toBe("ok");
    expect(a.hits.length).toBe(1);
    expect(chain.statistics().fallbacks.p).toMatchObject({ calls: 1, successes: 0 });
    (held[0] as Hit).res.end("ok");
    await blocker;
    // p fails once and opens its breaker; the next call passes it over, uncounted.
    expect(await (await r.fetch(`${a.base}/v1/y`)).text()).toBe("ok");
    expect(chain.statistics().fallbacks.p).toMatchObject({ calls: 2, successes: 0 });
    expect(await (await r.fetch(`${a.base}/v1/z`)).text()).toBe("ok");
    expect(a.hits.length).toBe(2);
    expect(chain.statistics().fallbacks.p).toMatchObject({ calls: 2, successes: 0 });
  });
});

describe("an init stream a full bulkhead kept from being sent", () => {
  it("stays the caller's: unread, unlocked, not cancelled", async () => {
    const held: Hit[] = [];
    a.on((h) => held.push(h));
    const r = createResilience({ bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const blocker = r.fetch(`${a.base}/hold`);
    await a.nth(1);
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("job"));
        controller.close();
      },
      cancel() {
        cancelled = true;
      },
    });
    const refused = r.fetch(`${a.base}/x`, { method: "POST", body: stream, duplex: "half" } as RequestInit);
    expect(isBulkheadRejectedError(await rejection(refused))).toBe(true);
    expect(stream.locked).toBe(false);
    expect(cancelled).toBe(false);
    expect(await new Response(stream).text()).toBe("job");
    (held[0] as Hit).res.end("ok");
    await blocker;
  });
});
