/**
 * Attack on the newest fix (4ce401d, `CircuitBreaker.isOpen()`): a half-open
 * probe that outlived its `probeTimeout` lease used to shut its host out
 * behind a bulkhead or in a chain, since both read `breaker.state` ("open")
 * without the step that re-opens the circuit. Attacked from outside through
 * the public entries only (root, `./fallback`, `./ky`, `./cloudflare`,
 * `./policies`, `./testing`) and the fakes of test/cloudflare: a TestClock,
 * a scripted transport whose "hang" answers only when the test says so (or
 * rejects when its signal aborts). One trip opens (`failureThreshold` 1),
 * `timeout` 10 s, `probeTimeout` 5 s, one probe, one success closes. Each
 * path: trip, let the timeout pass, start a probe that hangs, let its lease
 * run out, then the next call; checked: refusal and its `retryAt`, the
 * `breaker` events (`from→to reason`, `gen`, `openUntil`), `health()`
 * before and after (reading it applies no time and emits nothing), the hung
 * probe's late answer, and recovery after the new timeout. Paths: plain
 * calls with and without a bulkhead, string and `Request` inputs; chains
 * (not hedged and hedged, the expired endpoint first, second, the only
 * one); ky's client; `resilientProxy` in Node with an empty env; named
 * breakers (`breaker(name).execute`, `execute(fn, { breaker })`); the
 * generic `CircuitBreaker` of `./policies`; `probeTimeout` shorter and
 * longer than `timeout.attempt`; an aborted probe; `halfOpenMaxCalls` 2 with
 * one lease expired and one alive; two layers on one `memoryStore()`;
 * `kvStore` (KV `put`s counted) with one and two isolates;
 * `durableObjectStore` with two isolates on one fake object.
 *
 * Defects pinned (first `it.fails` asserting the promise, on the code they
 * were written against; both fixed since, so plain `it`: a closed circuit
 * ignores an outcome that carries a probe's lease, and a probe the store
 * refuses reads the store before naming `retryAt`):
 * 1. A hung probe's late 503 re-opens a later generation. Plain call, no
 *    bulkhead: the probe (gen 2) hangs past its lease; the next call
 *    re-opens ("probe lease expired", gen 3), which docs/breakers.md counts
 *    as the probe's failure; after the new timeout a fresh probe closes the
 *    circuit (gen 5); then the hung probe answers 503 and the closed circuit
 *    opens again, "closed→open 1 failure in a row (last: status 503)".
 *    `failure()` honours the permit's generation while half-open (a past
 *    generation's outcome is ignored there) but not while closed, so one
 *    attempt is counted twice, the second time against a generation it was
 *    never admitted to (with the default threshold it is one extra failure
 *    in a new run; the same through a chain's only endpoint).
 * 2. `durableObjectStore`: a probe the object refuses because the host is
 *    open there carries the local probe's lease as `retryAt`, not the
 *    object's open-until. Two isolates, `probeTimeout` 1 s, `timeout` 10 s:
 *    X's probe fails and the object re-opens until now + 10 s; Y, half-open
 *    locally, is refused by the object with `retryAt` now + 1 s
 *    (1,011,000 against 1,020,000); Y's next call names the object's time.
 *    Through `resilientProxy` that is a `Retry-After: 1` for a host open
 *    10 s (docs/cloudflare.md: 503 with Retry-After when the circuit is
 *    open; docs/fallback.md: an open breaker's `CircuitOpenError` with its
 *    `retryAt`). src/http/send/send-attempt.ts assumes a refusal means a
 *    probe held elsewhere.
 *
 * Held (plain `it`): every path above refuses the call after the expired
 * lease with `retryAt` = now + `timeout`, sends nothing, emits exactly one
 * "half_open→open probe lease expired" (gen +1, `openUntil` = now +
 * `timeout`), and probes and closes after the new timeout; `health()` reads
 * "open" and `unhealthy` before the re-open without emitting anything; the
 * hung probe's late success (and a late 503 while the later generation is
 * open or half-open) changes nothing; the hedged chain passes over the
 * primary too; the proxy answers 503 with `Retry-After: 10`; ky rejects
 * with `CircuitOpenError`; `isOpen()` twice is one event and takes no slot;
 * an aborted probe frees its slot with no failure; the attempt timeout of a
 * past generation's probe counts nothing; the other `memoryStore` layer
 * adopts the re-open ("shared: probe lease expired") and refuses before its
 * bulkhead with that `retryAt`, both close after one probe; a host another
 * layer holds open is refused with every bulkhead slot taken and nothing
 * queued; over KV the re-open is one `put` (no more than a failed probe's),
 * five refused calls and a `health()` add none, and a second isolate
 * refuses with the writer's `openUntil`.
 *
 * Suspicious, not pinned: (a) a hung probe's late success in the SAME
 * generation (no call came in between, so nothing applied the expired
 * lease) still counts and can close the circuit, though `health()` read
 * "open" a moment before and the event then says `half_open→closed`:
 * whether a lease's expiry counts depends on whether a call happened to
 * look (test/policies/breaker-model.test.ts models it this way, so it is
 * taken as intended). (b) With `bulkhead.maxConcurrent` 1, a hung probe
 * keeps its bulkhead slot after its lease ran out (no `timeout.attempt`):
 * calls made half-open queue behind it until it settles; the docs promise
 * only that an open breaker refuses before queueing. (c) `health()` of a
 * breaker that reads "open" because of an expired lease shows `openUntil:
 * null` and the half-open reason ("timeout elapsed").
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerOptions,
  CircuitOpenError,
  createResilience,
  FallbackExhaustedError,
  memoryStore,
  type Resilience,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeNamespace, fakeCtx } from "../cloudflare/fake-durable-object.ts";
import { FakeKv } from "../cloudflare/fake-kv.ts";

const T0 = 1_000_000;
const TIMEOUT = 10_000;
const PROBE = 5_000;
const HOST = "https://api.example/v1/jobs";
const SPARE = "https://spare.example/v1/jobs";

/** One trip opens; one probe at a time; one success closes. */
const BREAKER: BreakerOptions = {
  failureThreshold: 1,
  successThreshold: 1,
  timeout: TIMEOUT,
  probeTimeout: PROBE,
  halfOpenMaxCalls: 1,
  failureRate: undefined,
};

type Step = number | "hang";

/** A request that hangs until the test answers it, or until its signal aborts. */
interface Hung {
  url: string;
  answer: (status: number) => void;
}

/**
 * A scripted transport: each call takes the next step for its host (a
 * status, or "hang"); once a host's script is used up it answers 200.
 */
function scripted(script: Record<string, Step[]> = {}) {
  const sent: string[] = [];
  const hung: Hung[] = [];
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    sent.push(url);
    const host = new URL(url).host;
    const step = script[host]?.shift() ?? 200;
    if (step !== "hang") return Promise.resolve(new Response(`answer ${step}`, { status: step }));
    return new Promise<Response>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      hung.push({ url, answer: (status) => resolve(new Response(`late ${status}`, { status })) });
    });
  };
  return { fetch, sent, hung };
}

/** A few real turns: a started call reaches its transport (no clock time passes). */
async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setTimeout(resolve, 0));
}

/** `breaker` events as "from→to reason". */
function breakerLog(resilience: Resilience) {
  const log: string[] = [];
  const full: { from: string; to: string; reason: string | null; gen: number; openUntil: number | null }[] = [];
  resilience.on("breaker", (e) => {
    log.push(`${e.from}→${e.to} ${e.reason}`);
    full.push({ from: e.from, to: e.to, reason: e.reason, gen: e.gen, openUntil: e.openUntil });
  });
  return { log, full };
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

function layer(clock: TestClock, fetch: ResilienceOptions["fetch"], extra: Partial<ResilienceOptions> = {}) {
  return createResilience({ clock, retry: false, breaker: BREAKER, fetch, ...extra });
}

/**
 * Trips the host (one 503), lets the timeout pass and starts a probe that
 * hangs; returns it. The layer's transport must be `up.fetch` with the
 * host's script starting [503, "hang", …].
 */
async function hungProbe(
  clock: TestClock,
  resilience: Resilience,
  up: ReturnType<typeof scripted>,
  url = HOST,
): Promise<{ probe: Promise<Response> }> {
  const first = await clock.run(resilience.fetch(url));
  expect(first.status).toBe(503);
  await clock.advance(TIMEOUT);
  const probe = resilience.fetch(url);
  probe.catch(() => {});
  await turns();
  expect(up.hung).toHaveLength(1);
  // Wrapped: an async function returning the promise itself would wait for it.
  return { probe };
}

describe("plain calls: a probe that outlived its lease re-opens the circuit, and the host recovers", () => {
  for (const bulkhead of [false, true]) {
    for (const input of ["string", "Request"] as const) {
      it(`${bulkhead ? "with" : "without"} a bulkhead, ${input} input`, async () => {
        const clock = new TestClock(T0);
        const up = scripted({ "api.example": [503, "hang"] });
        const resilience = layer(clock, up.fetch, bulkhead ? { bulkhead: { maxConcurrent: 4, maxQueue: 4 } } : {});
        const events = breakerLog(resilience);
        const target = () => (input === "string" ? HOST : new Request(HOST));
        const { probe } = await hungProbe(clock, resilience, up);
        expect(events.log).toEqual([
          "closed→open 1 failure in a row (last: status 503)",
          "open→half_open timeout elapsed",
        ]);
        await clock.advance(PROBE);
        // Reading health() applies no time: the state reads open, no event.
        const before = resilience.health().breakers["api.example"];
        expect(before?.state).toBe("open");
        expect(resilience.health().status).toBe("unhealthy");
        expect(events.log).toHaveLength(2);
        // The next call re-opens the circuit and is refused at once, with the new opening's time.
        const refused = await errorOf(clock.run(resilience.fetch(target())));
        expect(refused).toBeInstanceOf(CircuitOpenError);
        expect((refused as CircuitOpenError).retryAt).toBe(clock.now() + TIMEOUT);
        expect(up.sent).toHaveLength(2);
        expect(events.full.at(-1)).toEqual({
          from: "half_open",
          to: "open",
          reason: "probe lease expired",
          gen: 3,
          openUntil: clock.now() + TIMEOUT,
        });
        const after = resilience.health().breakers["api.example"];
        expect([after?.state, after?.gen, after?.openUntil, after?.reason]).toEqual([
          "open",
          3,
          clock.now() + TIMEOUT,
          "probe lease expired",
        ]);
        // The hung probe answers now: its generation is gone, nothing changes.
        up.hung[0]?.answer(200);
        expect((await clock.run(probe)).status).toBe(200);
        expect(events.log).toHaveLength(3);
        expect(resilience.health().breakers["api.example"]?.gen).toBe(3);
        // After the new timeout, a fresh probe goes and closes the circuit.
        await clock.advance(TIMEOUT);
        expect((await clock.run(resilience.fetch(target()))).status).toBe(200);
        expect(events.log.slice(3)).toEqual(["open→half_open timeout elapsed", "half_open→closed 1 successful probe"]);
        expect(up.sent).toHaveLength(3);
      });
    }
  }

  it("a hung probe's late success does not close the circuit of a later open (the lease ran out, a call re-opened it)", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, "hang", "hang"] });
    const resilience = layer(clock, up.fetch, { bulkhead: { maxConcurrent: 4, maxQueue: 4 } });
    const events = breakerLog(resilience);
    const { probe: first } = await hungProbe(clock, resilience, up);
    await clock.advance(PROBE);
    await errorOf(clock.run(resilience.fetch(HOST))); // re-opens
    await clock.advance(TIMEOUT);
    const second = resilience.fetch(HOST); // the later generation's probe, hung too
    second.catch(() => {});
    await turns();
    expect(up.hung).toHaveLength(2);
    up.hung[0]?.answer(200);
    await clock.run(first);
    expect(resilience.health().breakers["api.example"]?.state).toBe("half_open");
    up.hung[0]?.answer(503); // settled already: no effect
    expect(events.log.at(-1)).toBe("open→half_open timeout elapsed");
    up.hung[1]?.answer(200);
    await clock.run(second);
    expect(events.log.at(-1)).toBe("half_open→closed 1 successful probe");
  });

  it("probeTimeout shorter than timeout.attempt: the lease runs out first, the attempt's own timeout later counts nothing", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, "hang"] });
    const resilience = layer(clock, up.fetch, {
      timeout: { attempt: PROBE * 2 },
      bulkhead: { maxConcurrent: 4, maxQueue: 4 },
    });
    const events = breakerLog(resilience);
    const { probe } = await hungProbe(clock, resilience, up);
    await clock.advance(PROBE);
    await errorOf(clock.run(resilience.fetch(HOST)));
    expect(events.log.at(-1)).toBe("half_open→open probe lease expired");
    await clock.advance(PROBE); // the attempt timeout fires: a failure of a past generation
    expect((await errorOf(probe)) as Error).toMatchObject({ name: "TimeoutError" });
    expect(events.log).toHaveLength(3);
    expect(resilience.health().breakers["api.example"]?.openUntil).toBe(T0 + TIMEOUT + PROBE + TIMEOUT);
  });

  it("probeTimeout longer than timeout.attempt: the attempt times out first and re-opens as a probe failure", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, "hang"] });
    const resilience = layer(clock, up.fetch, {
      timeout: { attempt: PROBE / 2 },
      bulkhead: { maxConcurrent: 4, maxQueue: 4 },
    });
    const events = breakerLog(resilience);
    const { probe } = await hungProbe(clock, resilience, up);
    await clock.advance(PROBE / 2);
    expect((await errorOf(probe)) as Error).toMatchObject({ name: "TimeoutError" });
    expect(events.log.at(-1)).toBe("half_open→open probe failed: attempt timeout");
    await clock.advance(PROBE / 2);
    await errorOf(clock.run(resilience.fetch(HOST)));
    expect(events.log).toHaveLength(3);
  });

  it("an aborted probe frees its slot without a failure: the next call probes at once", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, "hang"] });
    const resilience = layer(clock, up.fetch, { bulkhead: { maxConcurrent: 4, maxQueue: 4 } });
    const events = breakerLog(resilience);
    await clock.run(resilience.fetch(HOST));
    await clock.advance(TIMEOUT);
    const caller = new AbortController();
    const probe = resilience.fetch(HOST, { signal: caller.signal });
    probe.catch(() => {});
    await turns();
    caller.abort(new Error("gone"));
    await errorOf(probe);
    await clock.advance(PROBE);
    expect(resilience.health().breakers["api.example"]?.state).toBe("half_open");
    expect((await clock.run(resilience.fetch(HOST))).status).toBe(200);
    expect(events.log.slice(2)).toEqual(["half_open→closed 1 successful probe"]);
  });

  it("halfOpenMaxCalls 2, one lease expired and one alive: the next call re-opens; the live probe's success counts nothing", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, "hang", "hang"] });
    const resilience = layer(clock, up.fetch, {
      breaker: { ...BREAKER, halfOpenMaxCalls: 2 },
      bulkhead: { maxConcurrent: 4, maxQueue: 4 },
    });
    const events = breakerLog(resilience);
    const { probe: first } = await hungProbe(clock, resilience, up);
    await clock.advance(PROBE / 2);
    const second = resilience.fetch(HOST);
    second.catch(() => {});
    await turns();
    expect(up.hung).toHaveLength(2);
    await clock.advance(PROBE / 2);
    const refused = await errorOf(clock.run(resilience.fetch(HOST)));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(events.log.at(-1)).toBe("half_open→open probe lease expired");
    up.hung[1]?.answer(200);
    await clock.run(second);
    up.hung[0]?.answer(200);
    await clock.run(first);
    expect(events.log).toHaveLength(3);
    expect(resilience.health().breakers["api.example"]?.state).toBe("open");
  });

  it("a hung probe's late 503, after its lease ran out and the circuit closed again, does not re-open the later generation", async () => {
    // The expired lease already counted as the probe's failure (it re-opened
    // the circuit); its answer is of a generation two transitions gone.
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, "hang"] });
    const resilience = layer(clock, up.fetch);
    const events = breakerLog(resilience);
    const { probe } = await hungProbe(clock, resilience, up);
    await clock.advance(PROBE);
    await errorOf(clock.run(resilience.fetch(HOST))); // probe lease expired: re-opened (gen 3)
    await clock.advance(TIMEOUT);
    expect((await clock.run(resilience.fetch(HOST))).status).toBe(200); // gen 4 half-open, gen 5 closed
    expect(resilience.health().breakers["api.example"]?.state).toBe("closed");
    up.hung[0]?.answer(503);
    await clock.run(probe);
    expect(events.log.at(-1)).toBe("half_open→closed 1 successful probe");
    expect(resilience.health().breakers["api.example"]?.state).toBe("closed");
  });
});

describe("chains: an endpoint whose probe outlived its lease is passed over, then probed again", () => {
  const chain = (hedge: boolean) =>
    fallback([
      {
        name: "gen",
        ...(hedge ? { hedge: { delay: 1_000 } } : {}),
        endpoints: [
          { name: "primary", url: HOST },
          { name: "spare", url: SPARE },
        ],
      },
    ]);

  for (const hedge of [false, true]) {
    it(`expired endpoint first (${hedge ? "hedged" : "not hedged"}): the call goes to the spare, and the primary recovers after the new timeout`, async () => {
      const clock = new TestClock(T0);
      // Hedged, the spare hangs too, so the hung probe is not aborted by a winning hedge.
      const up = scripted({ "api.example": [503, "hang"], "spare.example": hedge ? [200, "hang"] : [] });
      const resilience = layer(clock, up.fetch, {
        fallback: chain(hedge),
        bulkhead: { maxConcurrent: 4, maxQueue: 4 },
      });
      const events = breakerLog(resilience);
      const fallbacks: string[] = [];
      resilience.on("fallback", (e) => fallbacks.push(`${e.from} ${e.reason}`));
      // The primary trips (the spare answers), then the timeout passes and a probe to it hangs.
      expect((await clock.run(resilience.fetch(HOST))).status).toBe(200);
      await clock.advance(TIMEOUT);
      const probe = resilience.fetch(HOST);
      probe.catch(() => {});
      await turns();
      expect(up.hung).toHaveLength(1);
      if (hedge) {
        await clock.advance(1_000); // the hedge starts the spare, which hangs as well
        expect(up.hung.map((h) => h.url)).toEqual([HOST, SPARE]);
        await clock.advance(PROBE - 1_000);
      } else await clock.advance(PROBE);
      const sentBefore = up.sent.length;
      const res = await clock.run(resilience.fetch(HOST));
      expect(res.status).toBe(200);
      expect(up.sent.slice(sentBefore)).toEqual([SPARE]);
      expect(fallbacks.at(-1)).toBe("primary circuit open");
      expect(events.log.at(-1)).toBe("half_open→open probe lease expired");
      await clock.advance(TIMEOUT);
      const back = up.sent.length;
      expect((await clock.run(resilience.fetch(HOST))).status).toBe(200);
      expect(up.sent.slice(back)).toEqual([HOST]);
      expect(resilience.health().breakers["api.example"]?.state).toBe("closed");
      // The hung probe answers last: the closed circuit stays closed.
      up.hung[0]?.answer(200);
      up.hung[1]?.answer(200);
      expect((await clock.run(probe)).status).toBe(200);
      expect(resilience.health().breakers["api.example"]?.state).toBe("closed");
      expect(events.log.at(-1)).toBe("half_open→closed 1 successful probe");
    });
  }

  it("expired endpoint second: the primary is open, the spare's probe outlived its lease; both skipped with retryAt", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, 503], "spare.example": [503, "hang"] });
    const resilience = layer(clock, up.fetch, { fallback: chain(false) });
    // Both trip on the first call (its answer is the spare's 503).
    expect((await clock.run(resilience.fetch(HOST))).status).toBe(503);
    await clock.advance(TIMEOUT);
    // The primary's probe fails (re-opens it), the spare's hangs.
    const hung = resilience.fetch(HOST);
    hung.catch(() => {});
    await turns();
    expect(up.hung.map((h) => h.url)).toEqual([SPARE]);
    await clock.advance(PROBE);
    const error = await errorOf(clock.run(resilience.fetch(HOST)));
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    const errors = (error as FallbackExhaustedError).errors;
    expect((errors.primary as CircuitOpenError).retryAt).toBe(T0 + TIMEOUT + TIMEOUT);
    expect((errors.spare as CircuitOpenError).retryAt).toBe(clock.now() + TIMEOUT);
  });

  it("the only endpoint: refused with its breaker's CircuitOpenError, and probed after the new timeout", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, "hang"] });
    const resilience = layer(clock, up.fetch, {
      fallback: fallback([{ name: "one", endpoints: [{ name: "only", url: HOST }] }]),
    });
    const { probe } = await hungProbe(clock, resilience, up);
    await clock.advance(PROBE);
    const error = await errorOf(clock.run(resilience.fetch(HOST)));
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(((error as FallbackExhaustedError).errors.only as CircuitOpenError).retryAt).toBe(clock.now() + TIMEOUT);
    await clock.advance(TIMEOUT);
    expect((await clock.run(resilience.fetch(HOST))).status).toBe(200);
    up.hung[0]?.answer(200);
    await clock.run(probe);
    expect(resilience.health().breakers["api.example"]?.state).toBe("closed");
  });
});

describe("other clients of the breakers", () => {
  it("ky's client: refused with CircuitOpenError after the lease ran out, then recovers", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, "hang"] });
    const resilience = layer(clock, up.fetch, { bulkhead: { maxConcurrent: 4, maxQueue: 4 } });
    const api = createClient({ resilience });
    await errorOf(clock.run(api.get(HOST)));
    await clock.advance(TIMEOUT);
    const probe = api.get(HOST);
    probe.catch(() => {});
    await turns();
    await clock.advance(PROBE);
    const refused = await errorOf(clock.run(api.get(HOST)));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    await clock.advance(TIMEOUT);
    expect((await clock.run(api.get(HOST))).status).toBe(200);
  });

  it("the proxy (Node, empty env): 503 with Retry-After of the new opening, then recovers", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, "hang"] });
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: "https://api.example/v1" }],
      resilience: {
        clock,
        retry: false,
        breaker: BREAKER,
        fetch: up.fetch,
        bulkhead: { maxConcurrent: 4, maxQueue: 4 },
      },
    });
    const ctx = { waitUntil: () => {} };
    const call = () => proxy.fetch(new Request("https://proxy.example/v1/jobs"), {}, ctx);
    expect((await clock.run(call())).status).toBe(503);
    await clock.advance(TIMEOUT);
    const probe = call();
    probe.catch(() => {});
    await turns();
    expect(up.hung).toHaveLength(1);
    await clock.advance(PROBE);
    const refused = await clock.run(call());
    expect([refused.status, refused.headers.get("retry-after")]).toEqual([503, String(TIMEOUT / 1000)]);
    expect(up.sent).toHaveLength(2);
    await clock.advance(TIMEOUT);
    expect((await clock.run(call())).status).toBe(200);
  });

  it("named breakers: execute(fn, { breaker }) and breaker(name).execute re-open on the expired lease and recover", async () => {
    const clock = new TestClock(T0);
    const resilience = layer(clock, scripted().fetch);
    const events = breakerLog(resilience);
    const named = resilience.breaker("upscaler", BREAKER);
    await errorOf(named.execute(() => Promise.reject(new Error("down"))));
    await clock.advance(TIMEOUT);
    let finish: (value: string) => void = () => {};
    const hung = named.execute(() => new Promise<string>((resolve) => (finish = resolve)));
    await clock.advance(PROBE);
    // execute(fn, { breaker }) settles with the breaker's refusal as its cause.
    const refused = await errorOf(clock.run(resilience.execute(() => "work", { breaker: "upscaler", retry: false })));
    const cause = refused instanceof CircuitOpenError ? refused : (refused as Error).cause;
    expect(cause).toBeInstanceOf(CircuitOpenError);
    expect((cause as CircuitOpenError).retryAt).toBe(clock.now() + TIMEOUT);
    expect(await errorOf(named.execute(() => "work"))).toBeInstanceOf(CircuitOpenError);
    expect(events.log.at(-1)).toBe("half_open→open probe lease expired");
    finish("late");
    expect(await hung).toBe("late");
    expect(named.toJSON().state).toBe("open");
    await clock.advance(TIMEOUT);
    expect(await clock.run(resilience.execute(() => "work", { breaker: "upscaler" }))).toBe("work");
    expect(named.state).toBe("closed");
  });

  it("./policies CircuitBreaker: isOpen() applies time, takes no slot, and a past generation's permit changes nothing", async () => {
    const clock = new TestClock(T0);
    const changes: string[] = [];
    const policy = {
      failureThreshold: 1,
      successThreshold: 1,
      timeout: TIMEOUT,
      halfOpenMaxCalls: 1,
      timeWindow: 30_000,
      probeTimeout: PROBE,
      minimumCalls: 100,
      failureRate: undefined,
    };
    const breaker = new CircuitBreaker("k", policy, clock, {
      onChange: (c) => changes.push(`${c.from}→${c.to} ${c.reason} ${c.gen}`),
    });
    breaker.failure(breaker.acquire(), "status 503");
    expect(breaker.isOpen()).toBe(true);
    await clock.advance(TIMEOUT);
    expect(breaker.isOpen()).toBe(false);
    expect(breaker.isOpen()).toBe(false); // twice: one event
    const old = breaker.acquire();
    expect(breaker.tryAcquire()).toBeUndefined();
    await clock.advance(PROBE);
    expect(breaker.state).toBe("open");
    expect(changes).toHaveLength(2);
    expect(breaker.isOpen()).toBe(true);
    expect(breaker.isOpen()).toBe(true);
    expect(changes.at(-1)).toBe("half_open→open probe lease expired 3");
    expect(breaker.retryAt()).toBe(clock.now() + TIMEOUT);
    breaker.success(old);
    expect(breaker.toJSON().gen).toBe(3);
    await clock.advance(TIMEOUT);
    expect(breaker.isOpen()).toBe(false);
    const fresh = breaker.acquire();
    breaker.failure(old, "late");
    breaker.release(old);
    expect(breaker.toJSON()).toMatchObject({ state: "half_open", gen: 4, leases: [fresh.lease] });
    breaker.success(fresh);
    expect(changes.at(-1)).toBe("half_open→closed 1 successful probe 5");
  });
});

describe("shared state", () => {
  it("memoryStore: the instance whose probe outlived its lease re-opens; the other adopts it and refuses before its bulkhead with that retryAt", async () => {
    const clock = new TestClock(T0);
    const store = memoryStore();
    const upA = scripted({ "api.example": [503, "hang"] });
    const upB = scripted();
    const a = layer(clock, upA.fetch, { store, bulkhead: { maxConcurrent: 4, maxQueue: 4 } });
    const b = layer(clock, upB.fetch, { store, bulkhead: { maxConcurrent: 1, maxQueue: 4 } });
    const eventsB = breakerLog(b);
    const { probe } = await hungProbe(clock, a, upA);
    await clock.advance(PROBE);
    // A re-opens on its next call; B has never called the host.
    await errorOf(clock.run(a.fetch(HOST)));
    const openUntil = clock.now() + TIMEOUT;
    const refused = await errorOf(clock.run(b.fetch(HOST)));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect((refused as CircuitOpenError).retryAt).toBe(openUntil);
    expect(upB.sent).toHaveLength(0);
    expect(eventsB.full.at(-1)).toMatchObject({ to: "open", reason: "shared: probe lease expired", openUntil });
    // The hung probe's late answer changes neither.
    upA.hung[0]?.answer(200);
    await clock.run(probe);
    expect(a.health().breakers["api.example"]?.state).toBe("open");
    expect(b.health().breakers["api.example"]?.state).toBe("open");
    // Both recover after the new timeout: B's probe closes B, and A adopts the close.
    await clock.advance(TIMEOUT);
    expect((await clock.run(b.fetch(HOST))).status).toBe(200);
    expect(b.health().breakers["api.example"]?.state).toBe("closed");
    expect(a.health().breakers["api.example"]?.state).toBe("closed");
    expect((await clock.run(a.fetch(HOST))).status).toBe(200);
  });

  it("memoryStore: a host the other instance holds open is refused before the bulkhead queue, even with every slot taken", async () => {
    const clock = new TestClock(T0);
    const store = memoryStore();
    const upA = scripted({ "api.example": [503] });
    const upB = scripted({ "api.example": ["hang"] });
    const a = layer(clock, upA.fetch, { store });
    const b = layer(clock, upB.fetch, { store, bulkhead: { maxConcurrent: 1, maxQueue: 4 } });
    const busy = b.fetch(HOST); // takes B's only slot, hangs
    busy.catch(() => {});
    await turns();
    await clock.run(a.fetch(HOST)); // A trips
    const refused = await errorOf(clock.run(b.fetch(HOST)));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect((refused as CircuitOpenError).retryAt).toBe(T0 + TIMEOUT);
    expect(b.health().breakers["api.example"]?.queued).toBe(0);
    upB.hung[0]?.answer(200);
    await clock.run(busy);
  });

  it("kvStore: the expired lease's re-open is one write, as a failed probe's would be", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    const up = scripted({ "api.example": [503, "hang"] });
    const resilience = layer(clock, up.fetch, {
      store: kvStore(kv.location(), { ctx, clock, random: () => 0, publishJitter: 0 }),
      bulkhead: { maxConcurrent: 4, maxQueue: 4 },
    });
    const settle = () => clock.run(Promise.all(pending.splice(0)));
    await hungProbe(clock, resilience, up);
    await settle();
    expect(kv.attempts.map((w) => w.state)).toEqual(["open"]);
    await clock.advance(PROBE);
    for (let i = 0; i < 5; i++) await errorOf(clock.run(resilience.fetch(HOST)));
    resilience.health();
    await settle();
    expect(kv.attempts.map((w) => w.state)).toEqual(["open", "open"]);
    expect(kv.maxWritesPerKeyPerSecond("attempted")).toBe(1);
  });

  it("kvStore, two isolates: the other isolate adopts the expired lease's re-open and refuses before its bulkhead", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    const upA = scripted({ "api.example": [503, "hang"] });
    const upB = scripted();
    const opts = { ctx, clock, random: () => 0, publishJitter: 0, refreshInterval: 1_000 };
    const a = layer(clock, upA.fetch, { store: kvStore(kv.location(), opts) });
    const b = layer(clock, upB.fetch, {
      store: kvStore(kv.location(), opts),
      bulkhead: { maxConcurrent: 4, maxQueue: 4 },
    });
    const settle = () => clock.run(Promise.all(pending.splice(0)));
    await hungProbe(clock, a, upA);
    await clock.advance(PROBE);
    await errorOf(clock.run(a.fetch(HOST)));
    await settle();
    const openUntil = clock.now() + TIMEOUT;
    // B's first call starts its read; the call after it refuses on what it read.
    await clock.run(b.fetch(HOST));
    await settle();
    const refused = await errorOf(clock.run(b.fetch(HOST)));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect((refused as CircuitOpenError).retryAt).toBe(openUntil);
    expect(upB.sent).toHaveLength(1);
  });

  it("durableObjectStore: a probe the object refuses because the host is open there names the object's open-until as retryAt", async () => {
    // Two isolates on one object; probeTimeout (1 s) much shorter than timeout (10 s).
    const clock = new TestClock(T0);
    const namespace = new FakeNamespace(clock);
    const breaker = { ...BREAKER, probeTimeout: 1_000 };
    const isolate = (script: Record<string, Step[]>) => {
      const ctx = fakeCtx();
      const up = scripted(script);
      const resilience = layer(clock, up.fetch, {
        store: durableObjectStore(namespace, { ctx, clock }),
        breaker,
      });
      return { ctx, up, resilience, settle: () => clock.run(ctx.settle()) };
    };
    const x = isolate({ "api.example": [503, 503] });
    const y = isolate({ "api.example": [503] });
    // Both trip; the object too.
    await clock.run(x.resilience.fetch(HOST));
    await clock.run(y.resilience.fetch(HOST));
    await x.settle();
    await y.settle();
    await clock.advance(TIMEOUT);
    // Y reads the object's verdict while nothing has changed there (half-open by time).
    y.resilience.health();
    await y.settle();
    // X probes and fails: the object re-opens for 10 s.
    expect((await clock.run(x.resilience.fetch(HOST))).status).toBe(503);
    await x.settle();
    const openThere = clock.now() + TIMEOUT;
    // Y, half-open locally, asks the object for a probe and is refused: the host is open there.
    const refused = await errorOf(clock.run(y.resilience.fetch(HOST)));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(y.up.sent).toHaveLength(1);
    // Y's next call, on the verdict that refusal cached, names the object's time.
    const next = await errorOf(clock.run(y.resilience.fetch(HOST)));
    expect((next as CircuitOpenError).retryAt).toBe(openThere);
    // The refusal itself names the local probe's lease (1 s), a ninth of the wait.
    expect((refused as CircuitOpenError).retryAt).toBe(openThere);
  });
});
