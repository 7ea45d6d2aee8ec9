/**
 * Outside-in attack on half-open probes and coordinating stores, after this session's changes (a probe's wait
 * for a store's lease ends at the caller's abort or `timeout.total`, the local slot freed at once and nothing
 * sent; a store's refusal is a `CircuitOpenError` whose `retryAt` says when the host may be probed; an
 * `acquireProbe` that throws is ignored; a hop reports to `store.record` with its lease). Docs: docs/retry.md
 * ("Redirects", the caller's abort, `timeout.total`, `timeout.attempt`), docs/breakers.md (half-open, "Shared
 * breaker state"), docs/cloudflare.md (the stores' table, the Durable Object's probe leases), docs/fallback.md.
 * How: public entries only (root, `./fallback`, `./cloudflare`, `./ky`, `./testing`'s TestClock); `hostFetch`
 * stub hosts; custom stores that refuse, hang or grant `true`; "isolates" are layers (or `resilientProxy`s) over
 * one `FakeNamespace` of real `BreakerStateObject`s; a late grant is a `FakeNamespace.answer` that holds the
 * object's `/probe` answer until the test lets it through (within the store's 250 ms); nothing sleeps.
 * Paths: plain calls, a chain's endpoint (refusal, abort, `timeout.total`), a hedge whose primary waits for the
 * lease, `timeout.attempt` during the wait, retries after a refusal, a followed redirect's hop, the ky client, two
 * proxies over one namespace, a store whose `acquireProbe` resolves `true`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: an aborted probe, a hop among them, gives its lease back through the store's
 * new `releaseProbe`, and the object takes it back as neither outcome; a lease granted after the abort is given
 * back too):
 * 1. docs/breakers.md: "a caller's abort is neither, and so is an attempt cut by `timeout.total`" (neither a
 *    failure nor a success); docs/retry.md: "A caller's abort is never a failure". Observed with
 *    `durableObjectStore`: a half-open probe that holds the object's lease and is then aborted by its caller
 *    (or cut by `timeout.total`) never gives the lease back (`sendAttempt` skips `store.record` on an abort, and
 *    the object's protocol has no release). The object keeps it: the same isolate's next call, whose local slot
 *    is free, is refused (`CircuitOpenError`, retryAt +30 s); 30 s later the object counts the lease as a failed
 *    probe and re-opens the host for every isolate ("half_open→open shared: probe lease expired"), with a
 *    healthy upstream. The same through `resilientProxy` (the client's disconnect): a second isolate answers
 *    503 30 s later. (A hedge's loser holding a lease does the same; the docs say nothing of a hedge loser's
 *    outcome, so it is not pinned.)
 * 2. docs/retry.md ("Redirects"): a hop into a half-open host is its probe, "the caller's abort, or
 *    `timeout.total`, frees the slot at once, whatever the transport does". Observed with
 *    `durableObjectStore`: after the caller aborts a hop that holds the object's lease, a direct call to that
 *    host is refused (`CircuitOpenError`, retryAt +30 s): the hop's outcome skips `store.record` on an abort,
 *    the object's slot stays taken.
 * 3. docs/retry.md ("Redirects"): "the caller's abort while it waits for the lease frees the slot at once, and
 *    the hop is not sent". Observed: when the object grants the lease after the abort (a late grant, within its
 *    250 ms), the lease is kept by nobody: `probeLease` drops the `acquireProbe` promise at the abort, the store
 *    stores the lease and nothing reports it. The next direct call to the host is refused (retryAt +30 s), and
 *    30 s later the object re-opens the host ("probe lease expired").
 *
 * Held (plain `it`):
 * - a chain whose first endpoint's probe the store refuses: a POST without a key goes on to the next endpoint
 *   (as for an open breaker), the `fallback` event names the CircuitOpenError, nothing reaches the refused
 *   host; a direct call is refused with retryAt = its lease's expiry and not retried (no `retry` event);
 * - a chain's endpoint waiting for the lease: the caller's abort and `timeout.total` reject at once with the
 *   reason / a TimeoutError, nothing sent, no statistic counted, and the slot is free for the next call;
 * - a hedge whose primary waits for the lease: the hedge wins after `delay`, the primary's slot is freed (the
 *   next call asks the store again and its `record` carries its lease);
 * - `timeout.attempt` does not run during the lease wait (docs/retry.md: "a first one that waited (for … a
 *   store …) has a timer of its own"): the attempt leaves after the grant;
 * - a store whose `acquireProbe` resolves `true`: the probe goes, `record` gets no lease, the host closes;
 * - the ky client: the caller's abort during the lease wait rejects, nothing sent, the slot freed;
 * - two proxies over one namespace: while one isolate's probe holds the object's only lease, the other answers
 *   503 with `Retry-After`, nothing sent.
 *
 * Undocumented (not pinned): an endpoint refused by the store (or by a half-open breaker with every slot taken)
 * counts as a failed call in the chain's `statistics()`, where one skipped for an open breaker counts nothing;
 * the attempt timeout does not bound a custom store's `acquireProbe` (the contract leaves the bound to the
 * store); what a hedge loser's abort is to the breaker and to a coordinating store.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerStore, createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeNamespace, fakeCtx } from "../cloudflare/fake-durable-object.ts";
import { flush } from "../helpers/flush.ts";
import { hostFetch } from "../helpers/host-fetch.ts";
import { outcomeAt } from "../helpers/outcome.ts";

const T0 = 1_000_000;
const breaker = {
  failureThreshold: 1,
  timeout: 1000,
  halfOpenMaxCalls: 1,
  successThreshold: 1,
  failureRate: undefined,
};

type Handler = (request: Request) => Response | Promise<Response>;

/** Lets pending promise steps run (one real macrotask, no sleep). */
/** A request that hangs until its signal aborts. */
const hang: Handler = (request) =>
  new Promise((_, reject) => request.signal.addEventListener("abort", () => reject(request.signal.reason)));

/** A call's status and body, or its error (a CircuitOpenError with its host and `retryAt` from now). */
/** A store that coordinates probes: `acquireProbe` answers as `grant` says (a value, or a promise that hangs). */
function coordinator() {
  const asked: string[] = [];
  const records: unknown[][] = [];
  const control = { grant: (): Promise<boolean | string | undefined> => Promise.resolve("L") };
  const store: BreakerStore = {
    name: "coordinator",
    publish() {},
    peek: () => undefined,
    record: (...args: unknown[]) => void records.push(args),
    acquireProbe: (key) => {
      asked.push(key);
      return control.grant();
    },
  };
  return { store, asked, records, control };
}
const never = (): Promise<never> => new Promise(() => {});

/**
 * One layer on a `durableObjectStore` (and a `make` for another isolate on the same namespace): b.example is
 * tripped and its open ran out (half-open, one probe slot); a.example redirects to b.example/hop; a chain "c"
 * is b then z.
 */
async function halfOpenOnObject(extra: Record<string, unknown> = {}) {
  const clock = new TestClock(T0);
  const namespace = new FakeNamespace(clock);
  const state: { b: Handler } = { b: () => new Response("down", { status: 503 }) };
  const t = hostFetch({
    "a.example": () => new Response(null, { status: 307, headers: { location: "https://b.example/hop" } }),
    "b.example": (r) => state.b(r),
  });
  const make = () =>
    createResilience({
      clock,
      fetch: t.fetch,
      retry: false,
      store: durableObjectStore(namespace, { clock }),
      breaker,
      ...extra,
    });
  const one = make();
  const outcome = outcomeAt(clock);
  expect(await outcome(one.fetch("https://b.example/trip"))).toBe("503 down");
  await flush();
  await clock.advance(1000);
  await flush();
  expect(one.health().breakers["b.example"]?.state).toBe("half_open");
  const events: string[] = [];
  one.on("breaker", (e) => events.push(`${e.from}->${e.to} ${e.reason}`));
  return { clock, namespace, t, one, state, outcome, events };
}

describe("a probe holding the Durable Object's lease, then aborted", () => {
  // docs/breakers.md: "a caller's abort is neither, and so is an attempt cut by `timeout.total`"; docs/retry.md:
  // "A caller's abort is never a failure". Observed: the next call is refused (CircuitOpenError b.example +30000)
  // and 30 s after the abort the object re-opens b: "half_open->open shared: probe lease expired", the call then
  // CircuitOpenError b.example +1000, with b healthy.
  for (const how of ["the caller's abort", "timeout.total"] as const) {
    it(`1. ${how} during a probe holding the object's lease is no failure: b is not re-opened`, async () => {
      const total = how === "timeout.total";
      const { clock, t, one, state, outcome, events } = await halfOpenOnObject(
        total ? { timeout: { total: 100 } } : {},
      );
      state.b = hang;
      const controller = new AbortController();
      const probe = outcome(one.fetch("https://b.example/probe", { signal: controller.signal }));
      await flush();
      expect(t.log.map((r) => r.url).at(-1)).toBe("https://b.example/probe");
      if (total) await clock.advance(100);
      else controller.abort(new Error("gone"));
      expect(await probe).toBe(total ? "TimeoutError" : "Error");
      state.b = () => new Response("ok");
      await clock.advance(30_000);
      await flush();
      expect(await outcome(one.fetch("https://b.example/later"))).toBe("200 ok");
      expect(events.filter((e) => e.includes("probe lease expired"))).toEqual([]);
    });
  }

  // Same sentences, through the Worker proxy: the client of isolate one disconnects during its probe. Observed:
  // 30 s later isolate two answers 503 {"error":"upstream circuit open"} (the object re-opened b), nothing sent.
  it("1b. two proxies: a client's disconnect during a probe does not re-open b for the other isolate", async () => {
    const clock = new TestClock(T0);
    const namespace = new FakeNamespace(clock);
    const state: { b: Handler } = { b: () => new Response("ok") };
    const t = hostFetch({ "b.example": (r) => state.b(r) });
    const isolate = () => {
      const ctx = fakeCtx();
      const proxy = resilientProxy({
        routes: [{ path: "/", upstream: "https://b.example" }],
        resilience: { clock, retry: false, breaker, fetch: t.fetch },
        store: () => durableObjectStore(namespace, { clock }),
      });
      const call = async (path: string, signal?: AbortSignal) => {
        try {
          const res = await proxy.fetch(new Request(`https://proxy.example${path}`, signal ? { signal } : {}), {}, ctx);
          return `${res.status} ${await res.text()}`;
        } catch (error) {
          return `threw ${(error as Error).message}`;
        }
      };
      return { call, settle: () => clock.run(ctx.settle()) };
    };
    const one = isolate();
    const two = isolate();
    expect([await one.call("/0"), await two.call("/0")]).toEqual(["200 ok", "200 ok"]);
    await one.settle();
    await two.settle();
    await clock.advance(10);
    state.b = () => new Response("down", { status: 500 });
    expect(await one.call("/trip")).toBe("500 down");
    await one.settle();
    await clock.advance(1000);
    state.b = hang;
    const client = new AbortController();
    const probe = one.call("/probe", client.signal);
    await flush();
    expect(t.log.map((r) => r.url).at(-1)).toBe("https://b.example/probe");
    client.abort(new Error("client gone"));
    expect(await probe).toBe("threw client gone");
    await one.settle();
    state.b = () => new Response("ok");
    await clock.advance(30_000);
    // Isolate two reads the object (its health route refreshes what it knows of b), then calls b.
    await two.call("/__resilience/health");
    await two.settle();
    expect(await two.call("/later")).toBe("200 ok");
  });
});

describe("a redirect's hop and the Durable Object's lease", () => {
  // docs/retry.md ("Redirects"): "the caller's abort, or `timeout.total`, frees the slot at once, whatever the
  // transport does". Observed: the hop held the object's lease; right after the abort a direct call to b is
  // refused, CircuitOpenError b.example +30000 (and 30 s later the object re-opens b: "probe lease expired").
  it("2. the caller's abort of a hop holding the object's lease frees b's slot at once", async () => {
    const { t, one, state, outcome } = await halfOpenOnObject();
    state.b = hang;
    const controller = new AbortController();
    const call = outcome(one.fetch("https://a.example/x", { signal: controller.signal }));
    await flush();
    expect(t.log.map((r) => r.url).at(-1)).toBe("https://b.example/hop");
    controller.abort(new Error("gone"));
    expect(await call).toBe("Error");
    state.b = () => new Response("ok");
    expect(await outcome(one.fetch("https://b.example/direct"))).toBe("200 ok");
  });

  // docs/retry.md ("Redirects"): "the caller's abort while it waits for the lease frees the slot at once, and
  // the hop is not sent". Observed: the object grants the lease after the abort (within its 250 ms): nothing
  // reports it; the next direct call is refused, CircuitOpenError b.example +30000, and 30 s later the object
  // re-opens b ("half_open->open shared: probe lease expired").
  it("3. a lease the object grants after the caller aborted the hop's wait is not kept from b", async () => {
    const { clock, namespace, t, one, state, outcome, events } = await halfOpenOnObject();
    let letThrough: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      letThrough = resolve;
    });
    namespace.answer = async (request) => {
      if (new URL(request.url).pathname === "/probe") {
        await held;
        namespace.answer = undefined;
      }
      const entry = namespace.object("cb:default:b.example");
      await entry.state.ready;
      return entry.object.fetch(request);
    };
    state.b = () => new Response("ok");
    const controller = new AbortController();
    const call = outcome(one.fetch("https://a.example/x", { signal: controller.signal }));
    await flush();
    controller.abort(new Error("gone"));
    expect(await call).toBe("Error");
    letThrough();
    await flush();
    expect(t.log.map((r) => r.url)).not.toContain("https://b.example/hop");
    const direct = await outcome(one.fetch("https://b.example/direct"));
    await clock.advance(30_000);
    await flush();
    const later = await outcome(one.fetch("https://b.example/later"));
    expect({ direct, later, reopened: events.filter((e) => e.includes("probe lease expired")) }).toEqual({
      direct: "200 ok",
      later: "200 ok",
      reopened: [],
    });
  });
});

/** A layer with a coordinating store and a chain "c" (a then z): a.example tripped and half-open. */
async function chainHalfOpen(store: BreakerStore, extra: Record<string, unknown> = {}) {
  const clock = new TestClock(T0);
  const state: { a: Handler } = { a: () => new Response("down", { status: 503 }) };
  const t = hostFetch({ "a.example": (r) => state.a(r), "z.example": () => new Response("z") });
  const { hedge, ...options } = extra as { hedge?: number };
  const layer = createResilience({
    clock,
    fetch: t.fetch,
    retry: false,
    store,
    breaker,
    ...options,
    fallback: fallback([
      {
        name: "c",
        ...(hedge ? { hedge: { delay: hedge } } : {}),
        endpoints: [
          { name: "a", url: "https://a.example/v1" },
          { name: "z", url: "https://z.example/v1" },
        ],
      },
    ]),
  });
  const outcome = outcomeAt(clock);
  expect(await outcome(layer.fetch("https://a.example/open"))).toBe("503 down");
  await clock.advance(1000);
  state.a = () => new Response("a");
  t.log.length = 0;
  return { clock, t, layer, outcome };
}

describe("held: probes and coordinating stores on every path", () => {
  it("a chain's refused endpoint: a POST goes on, the refusal named; a direct refusal is not retried", async () => {
    const { store, control } = coordinator();
    const { t, layer, outcome } = await chainHalfOpen(store, {
      retry: { maxAttempts: 3, initialDelay: 10, jitter: "none" },
    });
    control.grant = async () => false;
    const seen: string[] = [];
    layer.on("fallback", (e) => seen.push(`fallback ${e.from} ${String(e.reason).split(":")[0]} ${e.next}`));
    layer.on("retry", (e) => seen.push(`retry ${e.key}`));
    expect(await outcome(layer.fetch("https://a.example/v1/x", { method: "POST", body: "{}" }))).toBe("200 z");
    expect(t.log.map((r) => r.url)).toEqual(["https://z.example/v1/x"]);
    // Refused at its send (the store granted no probe lease): passed over since the forty-eighth session,
    // "circuit open" as for an open endpoint (it read the raw CircuitOpenError before).
    expect(seen).toEqual(["fallback a circuit open z"]);
    expect(await outcome(layer.fetch("https://a.example/direct"))).toBe("CircuitOpenError a.example +30000");
    expect(seen).toHaveLength(1);
    expect(layer.health().breakers["a.example"]?.state).toBe("half_open");
  });

  for (const how of ["abort", "timeout.total"] as const) {
    it(`a chain's endpoint waiting for the lease: ${how} ends the call, nothing counted, the slot freed`, async () => {
      const { store, control } = coordinator();
      const { clock, t, layer, outcome } = await chainHalfOpen(
        store,
        how === "timeout.total" ? { timeout: { total: 100 } } : {},
      );
      control.grant = never;
      const controller = new AbortController();
      const call = outcome(layer.fetch("https://a.example/v1/x", { signal: controller.signal }));
      await flush();
      if (how === "abort") controller.abort(new Error("gone"));
      else await clock.advance(100);
      expect(await call).toBe(how === "abort" ? "Error" : "TimeoutError");
      expect(t.log).toEqual([]);
      const { fallbacks } = layer.fallback.chain("c").statistics();
      expect([fallbacks.a?.calls, fallbacks.z?.calls]).toEqual([0, 0]);
      control.grant = async () => "L";
      expect(await outcome(layer.fetch("https://a.example/direct"))).toBe("200 a");
    });
  }

  it("a hedge whose primary waits for the lease: the hedge wins, the primary's slot is freed", async () => {
    const { store, control, asked, records } = coordinator();
    const { clock, t, layer, outcome } = await chainHalfOpen(store, { hedge: 100 });
    control.grant = never;
    const call = outcome(layer.fetch("https://a.example/v1/x"));
    await flush();
    await clock.advance(100);
    expect(await call).toBe("200 z");
    expect(t.log.map((r) => r.url)).toEqual(["https://z.example/v1/x"]);
    control.grant = async () => "L";
    records.length = 0;
    expect(await outcome(layer.fetch("https://a.example/direct"))).toBe("200 a");
    expect(asked).toEqual(["a.example", "a.example"]);
    expect(records).toEqual([["a.example", false, T0 + 1100, "L"]]);
  });

  it("timeout.attempt does not run during the lease wait: the attempt leaves after the grant", async () => {
    const { store, control } = coordinator();
    let grant: (lease: string) => void = () => {};
    control.grant = () =>
      new Promise((resolve) => {
        grant = resolve;
      });
    const { clock, t, layer, outcome } = await chainHalfOpen(store, { timeout: { attempt: 100 } });
    let settled = "";
    const call = outcome(layer.fetch("https://a.example/x")).then((s) => (settled = s));
    await flush();
    await clock.advance(150);
    await flush();
    expect(settled).toBe("");
    grant("L");
    expect(await call).toBe("200 a");
    expect(t.log.map((r) => r.url)).toEqual(["https://a.example/x"]);
  });

  it("a store whose acquireProbe resolves true: the probe goes, record gets no lease, the host closes", async () => {
    const { store, control, records } = coordinator();
    control.grant = async () => true;
    const { layer, outcome } = await chainHalfOpen(store);
    records.length = 0;
    expect(await outcome(layer.fetch("https://a.example/x"))).toBe("200 a");
    expect(records).toEqual([["a.example", false, T0 + 1000, undefined]]);
    expect(layer.health().breakers["a.example"]?.state).toBe("closed");
  });

  it("the ky client: the caller's abort during the lease wait rejects, nothing sent, the slot freed", async () => {
    const { store, control } = coordinator();
    const clock = new TestClock(T0);
    let down = true;
    const t = hostFetch({ "a.example": () => (down ? new Response("down", { status: 503 }) : new Response("a")) });
    const ky = createClient({ resilience: { clock, fetch: t.fetch, retry: false, store, breaker } });
    await ky.get("https://a.example/open").catch(() => undefined);
    await clock.advance(1000);
    down = false;
    t.log.length = 0;
    control.grant = never;
    const controller = new AbortController();
    const call = ky.get("https://a.example/x", { signal: controller.signal }).then(
      () => "resolved",
      (e: Error) => e.message,
    );
    await flush();
    controller.abort(new Error("gone"));
    expect(await call).toBe("gone");
    expect(t.log).toEqual([]);
    control.grant = async () => "L";
    expect(await ky.get("https://a.example/y").text()).toBe("a");
  });

  it("two proxies: while one isolate's probe holds the object's only lease, the other answers 503", async () => {
    const clock = new TestClock(T0);
    const namespace = new FakeNamespace(clock);
    const state: { b: Handler } = { b: () => new Response("ok") };
    const t = hostFetch({ "b.example": (r) => state.b(r) });
    const isolate = () => {
      const ctx = fakeCtx();
      const proxy = resilientProxy({
        routes: [{ path: "/", upstream: "https://b.example" }],
        resilience: { clock, retry: false, breaker, fetch: t.fetch },
        store: () => durableObjectStore(namespace, { clock }),
      });
      const call = (path: string) => proxy.fetch(new Request(`https://proxy.example${path}`), {}, ctx);
      return { call, settle: () => clock.run(ctx.settle()) };
    };
    const one = isolate();
    const two = isolate();
    await (await one.call("/0")).text();
    await (await two.call("/0")).text();
    await one.settle();
    await two.settle();
    await clock.advance(10);
    state.b = () => new Response("down", { status: 500 });
    expect((await one.call("/trip")).status).toBe(500);
    await one.settle();
    // Past b's open (1 s) and isolate two's cached closed verdict (`verdictTtl`, 5 s).
    await clock.advance(5000);
    // Isolate two reads the object: b is half-open there too.
    await two.call("/__resilience/health");
    await two.settle();
    const health = await (await two.call("/__resilience/health")).json();
    expect(health.breakers["b.example"].state).toBe("half_open");
    let answer: (response: Response) => void = () => {};
    state.b = () =>
      new Promise((resolve) => {
        answer = resolve;
      });
    const probe = one.call("/probe");
    await flush();
    const sent = t.log.length;
    const refused = await two.call("/direct");
    expect([refused.status, refused.headers.get("retry-after")]).toEqual([503, "30"]);
    expect(t.log.length).toBe(sent);
    answer(new Response("ok"));
    expect((await probe).status).toBe(200);
  });
});
