/**
 * Outside-in attack on the fifty-fifth session's four changes: `durableObjectStore` putting a failed report's hold
 * back, the proxy's health HEAD copied from status + header list, a `Request` body past `maxReplayBytes` failing while
 * sent under a transport rejecting with the stream's own error (workerd), and the fallback/testing/benchmarks fixes.
 *
 * Docs:
 * - docs/cloudflare.md: "a trip or hold that report carried goes again with the next one (its counts do not: the
 *   object may have applied them before its answer was lost)"; "A local trip also holds a closed object open for the
 *   local open spell"; "a `Retry-After` hold holds it whatever its state"; "Asking the object again for a closed
 *   verdict is a report too …: a `verdictTtl` shorter than `flushInterval` sends them every `verdictTtl`"; table: "or
 *   at once on a local trip (a `flushInterval` later if the object failed that report)". docs/breakers.md (a clock set
 *   back): "an open spell then waits its own length again from now".
 * - docs/cloudflare.md: "`HEAD` the same without the body"; CHANGELOG: "It is made from the status and header list".
 * - docs/retry.md: "fails the call with fetch's `TypeError` (its `cause` the stream's error; workerd's fetch rejects
 *   with the stream's error itself, which the layer then wraps in a `TypeError`, "the request body stream failed while
 *   it was sent"), through a chain too, counted as no attempt and by nothing"; "Retried by default: network errors".
 *   docs/cloudflare.md: "`400` when the request failed of the client's own making … past `maxReplayBytes`, while it
 *   went … and `502` when no endpoint answered otherwise".
 * - docs/fallback.md: "its `add` throws a `TypeError` that says so, and its `execute` and `run` reject with it";
 *   docs/testing.md: "a `breakAfter` that is no whole number or not below the number of chunks"; docs/benchmarks.md:
 *   "opossum at its defaults but its 10 s call timeout, switched off (`timeout: false` …)".
 *
 * How: cloudflare entry (`durableObjectStore`, `BreakerStateObject`, `resilientProxy`), root `createResilience`,
 * `fallback`, `degradation`, ky `createClient`, testing `TestClock`/`recordEvents`/`stream`; node:http servers A, B on
 * 127.0.0.1; `FakeDo`, stubs over a real `BreakerStateObject` on a Map storage, each `/report` by plan (ok, throw,
 * 500, non-JSON, hang, or applied and answered 400 ms late); a TestClock with an offset for a step back;
 * `workerdLike`, a `fetch` option reading the body with `new Request(input, init).text()` and rethrowing; MSW 3.
 *
 * Paths: `Request` input (alone, with init), chain, hedge, 307 hop, degradation rewrite, ky, proxy plain and chain
 * routes and health path; the DO store under one or two layers per isolate, several isolates, two hosts.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the fifty-fifth session three were fixed
 * and the fourth sentence corrected, so plain `it`):
 * 1. retry.md "(its `cause` the stream's error; … which the layer then wraps in a `TypeError` …)". Observed: a client
 *    stream failing with a `TypeError` of its own rejects the call with that very error (no cause): `fetchFailure`
 *    (src/http/send/send-attempt.ts) keeps any `TypeError`. Still counted by nothing; the proxy answers 400 (held).
 *    Fixed: the stream's own error is wrapped whatever its class (the source's failure is kept to tell it).
 * 2. breakers.md "waits its own length again from now" with cloudflare.md "for the local open spell". Observed: a trip
 *    whose report failed, then the clock set back 10 min: the hold put back (old clock's T0 + 60 s) reaches the object
 *    after the step, which holds 11 min from its now; the isolate adopts it and refuses for 660 s (control, report
 *    heard before the step: 70 s). `stateOf` re-times flush times on a step back, not `holdUntil`. Fixed: a hold
 *    waiting to go is re-timed too, its spell's length from the new time.
 * 3. cloudflare.md "a `Retry-After` hold holds it whatever its state" / CHANGELOG "puts its hold back". Observed: two
 *    layers on one store; a trip (180 s spell) whose report hangs; meanwhile a 503 `Retry-After: 120` sets a newer,
 *    shorter hold; the put-back keeps the later deadline, the older trip's, with its reason, so the Retry-After hold
 *    is never sent, and the object (open from another isolate until 30,010 ms) ignores the trip (control: 120,120).
 *    Fixed: a failed report's hold is put back only when no hold was set since.
 * 4. cloudflare.md table "(a `flushInterval` later if the object failed that report)". Observed: the hold goes again
 *    only with a report the tripped isolate's next call to that host starts; an isolate that makes none never
 *    re-sends it, and another isolate calling every second is never refused (30 s). Corrected: the table says the hold
 *    goes with the isolate's next report, and that an isolate calling the host no more sends none.
 *
 * Held (plain `it`):
 * - DO: throw, 500, non-JSON, hang: the next report (5 s on; 6 s for a hang) carries the same hold and reason,
 *   `fail: 0`; the object open until the local spell's end. A late answer: hold re-sent, spell not lengthened, counts
 *   not twice. A longer hold set meanwhile kept and sent at once. A failed Retry-After hold goes again and holds. A
 *   hold past by then holds nothing; two hosts keep their own. Reports every 2 s at `verdictTtl` 2000, 5 s at 8000.
 * - Health HEAD = GET (status, statusText, header list; no body) with no token, a right, a wrong, no bearer, with and
 *   without MSW (its trap checked live); proxied HEADs on plain and chain routes keep the upstream's headers.
 * - Body past the limit failing while sent: the wrapped `TypeError`, `cause` the stream's error, sent once, no breaker
 *   failure, error rate 0, no retry event, on every path above but the 307 (not followed: the follower's documented
 *   failure, counted); the proxy 400 on both routes. Body fine, transport failing: the host's (counted; past the
 *   limit once; within it a PUT retried on workerd's `retryable` Error, not on a plain Error or for a keyless POST);
 *   the proxy 502.
 * - fallback.md: `add` throws, `execute`/`run` reject (no throw) with a TypeError of the same words naming their
 *   method. testing.md: breakAfter = / > chunks, 1.5, −1, 0 of none refused; 0, 1 of 2 taken; stallAfter 2 of 2 taken,
 *   3 refused. benchmarks.md: opossum's default timeout is 10,000 ms; the variant passes `{ timeout: false }` only.
 *
 * Docs-silent (not pinned):
 * - A newer, shorter trip hold set meanwhile gives way to the older, longer one (its reason lost); a report whose hold
 *   is already past still carries it (the object ignores it).
 * - "after a redirect hop" is unreachable with a body past the limit: a 307 refuses it, a 301/302/303 drops it.
 * - The random-503 step does not run the opossum variant (`flakyVariantNames` drops it), though its bullet lists it.
 * - browsers-and-cors.md's preflight 5xx sentence not driven (the browserdoc run held it in Chromium).
 */
import { readFileSync } from "node:fs";
import { setupServer } from "msw/node";
import CircuitBreaker from "opossum";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BreakerStateObject, durableObjectStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, stream, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const T0 = 1_000_000;
const pending: Promise<unknown>[] = [];
afterEach(async () => {
  await Promise.allSettled(pending.splice(0));
});
const ctx = {
  waitUntil(p: Promise<unknown>) {
    pending.push(p);
  },
  passThroughOnException() {},
};
const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 1));
};
const settled = <T>(p: Promise<T>): Promise<T | unknown> =>
  p.then(
    (v) => v,
    (e: unknown) => e,
  );

// ---------------------------------------------------------------------------------------------------------------
// 3. A `Request` body past `maxReplayBytes` whose stream fails while it is sent, under a transport that rejects
// with the stream's own error (workerd's fetch), simulated by reading the body with `new Request(input, init).text()`.

const enc = new TextEncoder();
/** One 100-byte chunk, then the stream fails with `error` (or closes). */
const failing = (error?: unknown) => {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i++ === 0) controller.enqueue(enc.encode("y".repeat(100)));
      else if (error !== undefined) controller.error(error);
      else controller.close();
    },
  });
};

type Sent = { url: string; method: string; body: string | Error };
/** workerd's fetch, as far as bodies go: reads the body whole and rethrows what the read rejected with. */
function workerdLike(answer: (url: URL, sent: Sent[]) => Response | Error = () => new Response("ok")) {
  const sent: Sent[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const entry: Sent = { url: request.url, method: request.method, body: "" };
    sent.push(entry);
    const made = answer(url, sent);
    if (made instanceof Response && made.status >= 300 && made.status < 400) return made; // answered unread
    try {
      entry.body = await request.text();
    } catch (error) {
      entry.body = error as Error;
      throw error;
    }
    if (made instanceof Error) throw made;
    return made;
  };
  return { sent, fetch };
}

const post = (url: string, body: ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
  new Request(url, { method: "POST", body, headers, duplex: "half" } as RequestInit);

function counted(layer: ReturnType<typeof createResilience>) {
  const h = layer.health();
  return { failures: Object.values(h.breakers).map((b) => b.failureCount), errorRate: h.errorRate };
}
const pastLimit = (extra: Partial<ResilienceOptions> = {}) => {
  const t = workerdLike();
  const layer = createResilience({
    fetch: t.fetch,
    maxReplayBytes: 64,
    retry: { maxAttempts: 3, initialDelay: 1 },
    ...extra,
  });
  return { t, layer, recorder: recordEvents(layer) };
};
/** One call whose Request body fails (past the limit) with `cause`: how it failed, where it went, what counted. */
async function failedWhileSent(
  { t, layer }: ReturnType<typeof pastLimit>,
  send: (body: ReadableStream<Uint8Array>) => Promise<unknown>,
  cause: unknown = new Error("hung up"),
): Promise<string> {
  const e = await settled(send(failing(cause)));
  const wrapped =
    e instanceof TypeError &&
    e.message === "resilience.fetch: the request body stream failed while it was sent" &&
    e.cause === cause;
  const { failures, errorRate } = counted(layer);
  return `${wrapped ? "wrapped" : e === cause ? "itself" : String(e)} sent=${t.sent.map((s) => s.url).join(",")} failures=${failures} errorRate=${errorRate}`;
}
const endpoints = [
  { name: "a", url: "https://a.example/v" },
  { name: "b", url: "https://b.example/v" },
];
const once = (url: string) => `wrapped sent=${url} failures=0 errorRate=0`;

describe("3. a Request body past maxReplayBytes failing while sent, under a transport rejecting with the stream's error", () => {
  it("held: a Request input (alone, and with an init): the TypeError, cause the stream's error, sent once, counted by nothing", async () => {
    const plain = pastLimit();
    expect(await failedWhileSent(plain, (body) => plain.layer.fetch(post("https://a.example/x", body)))).toBe(
      once("https://a.example/x"),
    );
    expect(plain.recorder.events.filter((x) => x.type === "retry" || x.type === "breaker")).toEqual([]);
    const withInit = pastLimit();
    const send = (body: ReadableStream<Uint8Array>) =>
      withInit.layer.fetch(post("https://a.example/x", body), { headers: { "x-a": "1" } });
    expect(await failedWhileSent(withInit, send)).toBe(once("https://a.example/x"));
  });

  it("held: a fallback chain (next endpoint untried, statistics 0) and a hedged one (no second send)", async () => {
    const chain = pastLimit({ retry: false, fallback: fallback([{ name: "j", endpoints }]) });
    expect(await failedWhileSent(chain, (body) => chain.layer.fetch(post("https://a.example/v/x", body)))).toBe(
      once("https://a.example/v/x"),
    );
    const stats = chain.layer.fallback?.chain("j")?.statistics();
    expect([stats?.fallbacks.a?.calls, stats?.fallbacks.b?.calls]).toEqual([0, 0]);
    const hedged = pastLimit({ retry: false, fallback: fallback([{ name: "j", hedge: { delay: 10 }, endpoints }]) });
    expect(await failedWhileSent(hedged, (body) => hedged.layer.fetch(post("https://a.example/v/x", body)))).toBe(
      once("https://a.example/v/x"),
    );
  });

  it("held: under a degradation rule rewriting the query (level low), and through the ky client", async () => {
    const rules = [{ params: { quality: { query: "q" } } }];
    const degraded = pastLimit({
      retry: false,
      degradation: degradation({ triggers: { cpuUsage: 1, memoryUsage: 1 }, rules }),
    });
    degraded.layer.degradation?.setLevel("low");
    expect(await failedWhileSent(degraded, (body) => degraded.layer.fetch(post("https://a.example/x?q=1", body)))).toBe(
      once("https://a.example/x?q=0.6"),
    );
    const viaKy = pastLimit({ retry: false });
    const api = createClient({ resilience: viaKy.layer });
    expect(await failedWhileSent(viaKy, (body) => api.post("https://a.example/k", { body }))).toBe(
      once("https://a.example/k"),
    );
  });

  it("held: a 307 after such a body went is not followed (a body sent once): the follower's failure, counted, as retry.md says", async () => {
    const t = workerdLike((u) =>
      u.pathname === "/r" ? new Response(null, { status: 307, headers: { location: "/d" } }) : new Response("ok"),
    );
    const layer = createResilience({ fetch: t.fetch, maxReplayBytes: 64, retry: false });
    const e = (await settled(layer.fetch(post("https://a.example/r", failing(new Error("hung up")))))) as Error;
    expect([e.name, /cannot follow a 307/.test(e.message), t.sent.length, counted(layer).failures]).toEqual([
      "RetryExhaustedError",
      true,
      1,
      [1],
    ]);
  });

  it("DEFECT: a stream that fails with a TypeError of its own: the call's TypeError has that error as its cause", async () => {
    const { layer } = pastLimit();
    const cause = new TypeError("client reset");
    const e = await settled(layer.fetch(post("https://a.example/x", failing(cause))));
    // Observed: the call rejects with the stream's own TypeError itself (its cause undefined), not wrapped.
    expect([e instanceof TypeError, (e as TypeError).cause]).toEqual([true, cause]);
  });

  it("held (beside the defect): that TypeError of the stream's is wrapped as any other, counted by nothing, sent once", async () => {
    const own = pastLimit();
    const send = (body: ReadableStream<Uint8Array>) => own.layer.fetch(post("https://a.example/x", body));
    // Before the fix: "itself" (the stream's own TypeError, not wrapped).
    expect(await failedWhileSent(own, send, new TypeError("client reset"))).toBe(
      "wrapped sent=https://a.example/x failures=0 errorRate=0",
    );
  });

  it("held: a body fine but a transport rejecting with an Error is the host's: counted; sent once past the limit; within it a PUT retried on workerd's `retryable` Error, a plain Error (no network error) not", async () => {
    const run = async (maxReplayBytes: number, method: string, retryable: boolean) => {
      const failure = Object.assign(new Error("Network connection lost."), retryable ? { retryable: true } : {});
      const t = workerdLike(() => failure);
      const layer = createResilience({ fetch: t.fetch, maxReplayBytes, retry: { maxAttempts: 3, initialDelay: 1 } });
      const request = new Request("https://a.example/x", { method, body: failing(), duplex: "half" } as RequestInit);
      const e = (await settled(layer.fetch(request))) as Error;
      return `${e.name} ${e.cause === failure} sent=${t.sent.length} failures=${counted(layer).failures}`;
    };
    expect(await run(64, "PUT", true)).toBe("RetryExhaustedError true sent=1 failures=1");
    expect(await run(1000, "PUT", true)).toBe("RetryExhaustedError true sent=3 failures=3");
    expect(await run(1000, "PUT", false)).toBe("RetryExhaustedError true sent=1 failures=1");
    expect(await run(1000, "POST", true)).toBe("RetryExhaustedError true sent=1 failures=1"); // keyless POST: once
  });
});

describe("3. the same through resilientProxy (docs/cloudflare.md: 400 when the client's body stream failed … past maxReplayBytes, while it went)", () => {
  const proxyOver = (route: "plain" | "chain", fetch: ReturnType<typeof workerdLike>["fetch"]) =>
    resilientProxy({
      routes: [
        route === "plain"
          ? { path: "/up", upstream: "https://a.example/v" }
          : { path: "/up", chain: { name: "c", endpoints } },
      ],
      resilience: { fetch, maxReplayBytes: 64, retry: { maxAttempts: 3, initialDelay: 1 }, clock: new TestClock(T0) },
    });
  const send = async (proxy: ReturnType<typeof proxyOver>, body: ReadableStream<Uint8Array>) => {
    const res = await proxy.fetch(post("https://worker.example/up/x", body), {}, ctx);
    return [res.status, await res.text()];
  };

  it("held: a plain route and a chain route answer 400, the upstream sent to once", async () => {
    for (const route of ["plain", "chain"] as const) {
      const t = workerdLike();
      const got = await send(proxyOver(route, t.fetch), failing(new Error("hung up")));
      expect([route, ...got, t.sent.map((s) => s.url)]).toEqual([
        route,
        400,
        JSON.stringify({ error: "the client's request failed" }),
        ["https://a.example/v/x"],
      ]);
    }
  });

  it("held: a stream failing with a TypeError of its own: 400 too", async () => {
    const t = workerdLike();
    const got = await send(proxyOver("plain", t.fetch), failing(new TypeError("client reset")));
    expect(got[0]).toBe(400);
  });

  it("held: a body that went whole to a transport that then failed (a plain Error) is the host's: 502, on both routes", async () => {
    for (const route of ["plain", "chain"] as const) {
      const t = workerdLike(() => new Error("connection reset"));
      const got = await send(proxyOver(route, t.fetch), failing());
      expect([route, got[0], t.sent.length]).toEqual([route, 502, 1]);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 1. durableObjectStore: a report carrying a hold that the object failed puts the hold back.

type DoMode = "ok" | "throw" | "500" | "not-json" | "hang" | "late";
interface Clockish {
  now(): number;
  setTimer(callback: () => void, ms: number): () => void;
}
/** A namespace whose stubs call a real BreakerStateObject on a Map storage; each /report takes the next mode of `plan`. */
class FakeDo {
  readonly objects = new Map<string, BreakerStateObject>();
  readonly reports: { name: string; body: Record<string, unknown>; at: number; mode: DoMode }[] = [];
  plan: DoMode[] = [];
  readonly clock: Clockish;
  constructor(clock: Clockish) {
    this.clock = clock;
  }
  #object(name: string): BreakerStateObject {
    let object = this.objects.get(name);
    if (!object) {
      const values = new Map<string, unknown>();
      const state = {
        storage: {
          get: async <T>(key: string) => structuredClone(values.get(key)) as T | undefined,
          put: async (key: string, value: unknown) => void values.set(key, structuredClone(value)),
          setAlarm: async () => {},
        },
        blockConcurrencyWhile: <T>(callback: () => Promise<T>): Promise<T> => callback(),
      };
      object = new BreakerStateObject(state, {}, this.clock);
      this.objects.set(name, object);
    }
    return object;
  }
  /** The object's verdict now, through an empty report. */
  async state(host: string): Promise<Record<string, unknown>> {
    const object = this.#object(`cb:default:${host}`);
    const answer = await object.fetch(
      new Request("https://breaker-state/report", {
        method: "POST",
        body: JSON.stringify({ policy: (this.reports.at(-1)?.body.policy ?? {}) as object, ok: 0, fail: 0 }),
      }),
    );
    return (await answer.json()) as Record<string, unknown>;
  }
  readonly binding = {
    idFromName: (name: string) => ({ name }),
    get: (id: never) => {
      const { name } = id as { name: string };
      return {
        fetch: async (input: string, init?: RequestInit): Promise<Response> => {
          const request = new Request(input, init);
          const path = new URL(request.url).pathname;
          const mode = path === "/report" ? (this.plan.shift() ?? "ok") : "ok";
          if (path === "/report")
            this.reports.push({ name, body: JSON.parse(await request.clone().text()), at: this.clock.now(), mode });
          if (mode === "throw") throw new Error("object unreachable");
          if (mode === "hang") return new Promise<never>(() => {});
          if (mode === "not-json") return new Response("<html>overloaded</html>", { status: 200 });
          if (mode === "500") return Response.json({ error: "overloaded" }, { status: 500 });
          const answer = await this.#object(name).fetch(request);
          if (mode === "late") {
            // Applied at once; the answer comes 400 ms later, past the store's 250 ms `timeout`.
            return new Promise((resolve) => this.clock.setTimer(() => resolve(answer), 400));
          }
          return answer;
        },
      };
    },
  };
}

const route = (hit: Hit): void => {
  if (hit.path.startsWith("/fail")) hit.res.writeHead(500).end("down");
  else if (hit.path.startsWith("/busy")) hit.res.writeHead(503, { "retry-after": "120" }).end("busy");
  else hit.res.end("ok");
};
const call = async (layer: ReturnType<typeof createResilience>, url: string): Promise<string> => {
  const got = await layer.fetch(url).then(
    async (r) => {
      await r.text();
      return String(r.status);
    },
    (e: unknown) => (e as Error).name,
  );
  await turns(2);
  return got;
};
function isolate(ns: FakeDo, clock: Clockish, timeout = 60_000, threshold = 1) {
  return createResilience({
    clock,
    store: durableObjectStore(ns.binding, { clock, ctx }),
    retry: false,
    breaker: { failureThreshold: threshold, timeout },
  });
}
/** The reports that carried a hold, as "sent at → until, fail count, reason" (ms after T0). */
const holds = (ns: FakeDo) =>
  ns.reports
    .filter((r) => r.body.holdUntil !== undefined)
    .map((r) => `${r.at - T0}→${(r.body.holdUntil as number) - T0} fail=${r.body.fail} ${r.body.reason}`);
const trip = "1 failure in a row (last: status 500)";

/** Two layers (one isolate) on one store. */
function oneIsolate(ns: FakeDo, clock: Clockish, spells: [number, number]) {
  const store = durableObjectStore(ns.binding, { clock, ctx });
  return spells.map((timeout) =>
    createResilience({ clock, store, retry: false, breaker: { failureThreshold: 1, timeout } }),
  ) as [ReturnType<typeof createResilience>, ReturnType<typeof createResilience>];
}

/** Isolate one trips at T0 (after a closed verdict), the object failing that report by `mode`; then it calls every second. */
async function tripThenCall(mode: DoMode, seconds = 8) {
  const clock = new TestClock(T0);
  const ns = new FakeDo(clock);
  const one = isolate(ns, clock);
  await call(one, `${A.base}/ok`);
  ns.plan = [mode];
  await call(one, `${A.base}/fail`);
  for (let t = 0; t < seconds; t++) {
    await clock.advance(1_000);
    await call(one, `${A.base}/ok`);
  }
  return { ns, verdict: await ns.state(A.host) };
}

describe("1. durableObjectStore: a failed report's hold goes again with the next report", () => {
  beforeEach(() => {
    A.on(route);
    B.on(route);
  });
  it("held: the object throws, answers 500, answers no JSON, or does not answer within timeout: the next report (a flushInterval on) carries the same hold and reason, not the counts; the object ends open for the local spell", async () => {
    for (const mode of ["throw", "500", "not-json", "hang"] as const) {
      const { ns, verdict } = await tripThenCall(mode);
      const at = mode === "hang" ? 6_000 : 5_000; // the failure heard at the timeout, a second later
      expect([mode, ...holds(ns)]).toEqual([mode, `0→60000 fail=1 ${trip}`, `${at}→60000 fail=0 ${trip}`]);
      expect([verdict.state, verdict.openUntil]).toEqual(["open", T0 + 60_000]);
    }
  });

  it("held: a report that timed out but was applied, its answer arriving late: the hold is sent again, the object's spell not lengthened, the counts not sent twice", async () => {
    const { ns, verdict } = await tripThenCall("late");
    expect(holds(ns)).toEqual([`0→60000 fail=1 ${trip}`, `6000→60000 fail=0 ${trip}`]);
    expect([verdict.state, verdict.openUntil, verdict.changedAt]).toEqual(["open", T0 + 60_000, T0]);
  });

  it("held: a longer hold set meanwhile (another layer of the isolate tripping with a 120 s spell) is kept, and sent at once when the failed report returns", async () => {
    const clock = new TestClock(T0);
    const ns = new FakeDo(clock);
    const [one, two] = oneIsolate(ns, clock, [60_000, 120_000]);
    await call(one, `${A.base}/ok`);
    ns.plan = ["hang"];
    await call(one, `${A.base}/fail`);
    await clock.advance(100);
    await call(two, `${A.base}/fail`);
    await clock.advance(200);
    await turns(3);
    expect(holds(ns)).toEqual([`0→60000 fail=1 ${trip}`, `250→120100 fail=1 ${trip}`]);
    expect((await ns.state(A.host)).openUntil).toBe(T0 + 120_100);
  });

  it("held: a Retry-After hold whose report failed goes again (its reason kept) and holds the object", async () => {
    const clock = new TestClock(T0);
    const ns = new FakeDo(clock);
    const one = isolate(ns, clock);
    await call(one, `${A.base}/ok`);
    ns.plan = ["throw"];
    expect(await call(one, `${A.base}/busy`)).toBe("503");
    for (let t = 0; t < 6; t++) {
      await clock.advance(1_000);
      await call(one, `${A.base}/ok`);
    }
    const ra = "Retry-After 120 s on status 503";
    expect(holds(ns)).toEqual([`0→120000 fail=1 ${ra}`, `5000→120000 fail=0 ${ra}`]);
    expect((await ns.state(A.host)).openUntil).toBe(T0 + 120_000);
  });

  it("held: a hold already past when the next report goes is sent but holds nothing (3 s spell); two keys keep their own holds", async () => {
    const clock = new TestClock(T0);
    const ns = new FakeDo(clock);
    const one = isolate(ns, clock, 3_000);
    await call(one, `${A.base}/ok`);
    await call(one, `${B.base}/ok`);
    ns.plan = ["throw"];
    await call(one, `${A.base}/fail`);
    for (let t = 0; t < 6; t++) {
      await clock.advance(1_000);
      await call(one, `${B.base}/ok`);
    }
    // B's reports carry no hold; A's goes with A's next report only.
    expect(holds(ns).length).toBe(1);
    expect(await call(one, `${A.base}/ok`)).toBe("200");
    expect(holds(ns)).toEqual([`0→3000 fail=1 ${trip}`, `6000→3000 fail=0 ${trip}`]);
    expect((await ns.state(A.host)).state).toBe("closed");
    expect(ns.reports.filter((r) => r.name.endsWith(B.host)).every((r) => r.body.holdUntil === undefined)).toBe(true);
  });

  it("held: cloudflare.md: closed, reports go every `flushInterval`, or every `verdictTtl` if shorter (asking again is a report)", async () => {
    const counts: number[] = [];
    for (const verdictTtl of [2_000, 8_000]) {
      const clock = new TestClock(T0);
      const ns = new FakeDo(clock);
      const layer = createResilience({
        clock,
        store: durableObjectStore(ns.binding, { clock, ctx, flushInterval: 5_000, verdictTtl }),
        retry: false,
      });
      for (let i = 0; i < 40; i++) {
        await call(layer, `${A.base}/ok`);
        await clock.advance(500);
      }
      counts.push(ns.reports.length); // 20 s of calls, the first report at the first call
    }
    expect(counts).toEqual([10, 4]);
  });

  // docs/breakers.md "A clock set back": "each one notices the step at its first look after it …: an open spell then
  // waits its own length again from now"; docs/cloudflare.md: "A local trip also holds a closed object open for the
  // local open spell".
  it("DEFECT: a failed report, then the clock set back 10 min: the isolate (and the object) hold the host for the spell's own length again, not the step", async () => {
    const refusedFor = async (fail: boolean) => {
      const tc = new TestClock(T0);
      let offset = 0;
      const clock: Clockish = { now: () => tc.now() + offset, setTimer: (cb, ms) => tc.setTimer(cb, ms) };
      const ns = new FakeDo(clock);
      const one = isolate(ns, clock);
      await call(one, `${A.base}/ok`);
      if (fail) ns.plan = ["throw"];
      await call(one, `${A.base}/fail`);
      await tc.advance(1_000);
      offset = -600_000;
      for (let t = 1; t <= 100; t++) {
        await tc.advance(10_000);
        if ((await call(one, `${A.base}/ok`)) === "200") return t * 10;
      }
      return Number.POSITIVE_INFINITY;
    };
    expect(await refusedFor(false)).toBe(70); // control: the object heard the trip before the step
    // Observed: 660 (s): the hold put back carries the old clock's deadline (T0 + 60 s) to the object after the step;
    // the object takes it as 11 minutes from its now, and the isolate adopts that open verdict.
    expect(await refusedFor(true)).toBeLessThanOrEqual(80);
  });

  // docs/cloudflare.md: "a `Retry-After` hold holds it whatever its state"; "a trip or hold that report carried goes
  // again with the next one"; CHANGELOG: "A report that fails now puts its hold back for the next report".
  it("DEFECT: a Retry-After hold set while a failed trip report was out is overwritten by the older trip's hold and never reaches the object", async () => {
    const openUntil = async (oneTrips: boolean) => {
      const clock = new TestClock(T0);
      const ns = new FakeDo(clock);
      const other = isolate(ns, clock, 30_000);
      const [one, two] = oneIsolate(ns, clock, [180_000, 60_000]);
      await call(one, `${A.base}/ok`); // this isolate's verdict: closed
      await clock.advance(10);
      await call(other, `${A.base}/fail`); // another isolate opens the object until T0 + 30,010
      await clock.advance(10);
      if (oneTrips) {
        ns.plan = ["hang"];
        await call(one, `${A.base}/fail`); // a trip (180 s spell), its report out
      }
      await clock.advance(100);
      expect(await call(two, `${A.base}/busy`)).toBe("503"); // a Retry-After: 120 hold, until T0 + 120,120
      await clock.advance(200);
      await turns(3);
      for (let t = 0; t < 6; t++) {
        await clock.advance(1_000);
        await call(one, `${A.base}/ok`);
      }
      return ((await ns.state(A.host)).openUntil as number) - T0;
    };
    expect(await openUntil(false)).toBe(120_120); // control: the Retry-After hold holds the open object
    // Observed: 30,010: the put-back replaced the newer Retry-After hold (shorter) with the older trip (longer), sent
    // with the trip's reason, which the open object ignores.
    expect(await openUntil(true)).toBeGreaterThanOrEqual(120_120);
  });

  // docs/cloudflare.md table, staleness of durableObjectStore: "or at once on a local trip (a `flushInterval` later if
  // the object failed that report)".
  // Asserted before: refused within 15 s (the table said "a `flushInterval` later if the object failed that report").
  // The table now says the hold goes with the isolate's next report, a `flushInterval` or more later, and that an
  // isolate that calls the host no more sends none: this asserts both halves.
  it("DEFECT (text corrected): a tripped isolate's hold goes again with its next call's report; with no call, never", async () => {
    const refusedAt = async (oneCallsAgainAt: number | undefined) => {
      const clock = new TestClock(T0);
      const ns = new FakeDo(clock);
      const one = isolate(ns, clock);
      const two = isolate(ns, clock, 60_000, 5);
      await call(one, `${A.base}/ok`);
      await call(two, `${A.base}/ok`);
      ns.plan = ["throw"];
      await call(one, `${A.base}/fail`);
      for (let t = 1; t <= 30; t++) {
        await clock.advance(1_000);
        if (t * 1_000 === oneCallsAgainAt) await call(one, `${A.base}/ok`); // refused locally, but it reports
        if ((await call(two, `${A.base}/ok`)) === "CircuitOpenError") return t * 1_000;
      }
      return Number.POSITIVE_INFINITY;
    };
    expect(await refusedAt(undefined)).toBe(Number.POSITIVE_INFINITY); // observed before and after
    expect(await refusedAt(8_000)).toBeLessThanOrEqual(8_000 + 5_000 + 1_000); // its next report, then verdictTtl
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. resilientProxy's HEAD answer of the health path, copied with `new Headers(answer.headers)`, with and without MSW.

/** What a route or middleware that passes an answer on sees, as one line: status, reason, the copied header list. */
const copied = (res: Response) =>
  `${res.status} "${res.statusText}" ${[...new Headers(res.headers)].map(([k, v]) => `${k}=${v}`).join(" ")}`;

/** HEAD vs GET of the health path (no token; a token set with the right, a wrong, no bearer), and proxied HEADs. */
async function parity(): Promise<string[]> {
  A.on((hit) => hit.res.writeHead(200, { "x-request-id": "r1", "content-type": "text/plain" }).end());
  const proxy = resilientProxy({
    routes: [
      { path: "/up", upstream: `${A.base}/v` },
      { path: "/ch", chain: { name: "hc", endpoints: [{ name: "a", url: `${A.base}/v` }] } },
    ],
    resilience: { retry: false },
  });
  const ask = async (method: string, path: string, env: object = {}, auth?: string) => {
    const headers: Record<string, string> = auth ? { authorization: auth } : {};
    const res = await proxy.fetch(new Request(`https://w.example${path}`, { method, headers }), env, ctx);
    return `${copied(res)} body=${(await res.text()).length > 0}`;
  };
  const rows: string[] = [];
  const token = { RESILIENCE_HEALTH_TOKEN: "t0k" };
  for (const [env, auth] of [[{}], [token, "Bearer t0k"], [token, "Bearer nope"], [token]] as const) {
    const get = await ask("GET", "/__resilience/health", env, auth);
    const head = await ask("HEAD", "/__resilience/health", env, auth);
    rows.push(`${head} same=${head === get.replace("body=true", "body=false")}`);
  }
  for (const path of ["/up/x", "/ch/x"]) rows.push(/x-request-id=r1/.test(await ask("HEAD", path)) ? "kept" : "lost");
  return rows;
}
const ok = '200 "" cache-control=no-store content-type=application/json body=false same=true';
const refused = '401 "" content-type=application/json www-authenticate=Bearer body=false same=true';
const expectedParity = [ok, ok, refused, refused, "kept", "kept"];

describe("2. the health path's HEAD answer, copied", () => {
  it("held without MSW: HEAD has GET's status and header list (open, right token, wrong token, none), no body; proxied HEADs keep the upstream's headers", async () => {
    expect(await parity()).toEqual(expectedParity);
  });

  describe("under MSW 3 (msw/node, unhandled requests bypassed to the real server)", () => {
    const server = setupServer();
    beforeAll(() => server.listen({ onUnhandledFrame: "bypass" }));
    afterAll(() => server.close());
    it("held: the same under MSW: cache-control, content-type and www-authenticate survive `new Headers(answer.headers)`", async () => {
      // The trap is live: a Response made with another as its init keeps no headers in a copy here.
      const old = new Response(null, Response.json({}, { headers: { "x-a": "1" } }));
      expect(new Headers(old.headers).get("x-a")).toBe(null);
      expect(await parity()).toEqual(expectedParity);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 4. The corrected sentences.

describe("4. the doc corrections", () => {
  it("held: fallback.md: a configured chain's `add` throws a TypeError that says so; its `execute` and `run` reject with it (no throw)", async () => {
    const layer = createResilience({ retry: false, fallback: fallback([{ name: "j", endpoints }]) });
    const chain = layer.fallback?.chain("j");
    if (!chain) throw new Error("no chain j");
    let thrown: unknown;
    try {
      chain.add(async () => "x", { name: "z" });
    } catch (e) {
      thrown = e;
    }
    let execute: Promise<unknown> | undefined;
    let run: Promise<unknown> | undefined;
    expect(() => {
      execute = chain.execute(undefined as never);
      run = chain.run(undefined as never);
    }).not.toThrow();
    const [e1, e2] = [await settled(execute as Promise<unknown>), await settled(run as Promise<unknown>)];
    expect(thrown).toBeInstanceOf(TypeError);
    expect(/resilience\.fetch/.test((thrown as Error).message)).toBe(true);
    // Each names its own method, with the same words.
    const says = (e: unknown, method: string) =>
      e instanceof TypeError && (e as Error).message === (thrown as Error).message.replace(".add:", `.${method}:`);
    expect([says(e1, "execute"), says(e2, "run"), (thrown as Error).message]).toEqual([
      true,
      true,
      'fallbackChain("j").add: a chain from fallback([…]) runs through resilience.fetch only',
    ]);
  });

  it("held: testing.md: `stream` refuses a breakAfter not below the number of chunks (or no whole number) with a TypeError; stallAfter up to the chunks", () => {
    const tries = (options: { breakAfter?: number; stallAfter?: number }, chunks = ["a", "b"]) => {
      try {
        stream(chunks, options);
        return "ok";
      } catch (e) {
        return (e as Error).name;
      }
    };
    expect([
      tries({ breakAfter: 2 }),
      tries({ breakAfter: 3 }),
      tries({ breakAfter: 1.5 }),
      tries({ breakAfter: -1 }),
      tries({ breakAfter: 0 }, []),
      tries({ breakAfter: 1 }),
      tries({ breakAfter: 0 }),
      tries({ stallAfter: 2 }),
      tries({ stallAfter: 3 }),
    ]).toEqual(["TypeError", "TypeError", "TypeError", "TypeError", "TypeError", "ok", "ok", "ok", "TypeError"]);
  });

  it("held: benchmarks.md: opossum's call timeout is 10 s by default, and the random-503/outage variant switches it off and nothing else", () => {
    const made = new CircuitBreaker(async () => 1) as unknown as { options: { timeout: unknown } };
    expect(made.options.timeout).toBe(10_000);
    const source = readFileSync(new URL("../../bench/flaky.ts", import.meta.url), "utf8");
    const variant = source.slice(source.indexOf('"p-retry + opossum (defaults, timeout off)": (t) =>'));
    expect(variant.slice(0, 200)).toMatch(
      /new CircuitBreaker\(\(url: string\) => t\(url\)\.then\(failed\), \{ timeout: false \}\)/,
    );
  });
});
