/**
 * Outside-in attack on the shared breaker state through Cloudflare KV
 * (`kvStore`). Docs: docs/cloudflare.md ("The local breaker stays
 * authoritative", the stores' table, the `kvStore` write and read rules),
 * SECURITY.md ("Remote state is validated, never trusted", "A store cannot
 * break or stall a request"), docs/breakers.md "Shared breaker state".
 * How: `./cloudflare` (`kvStore`, `resilientProxy`), `./fallback`, the repo's
 * `FakeKv` (one shared namespace, a location per isolate), `TestClock` from
 * `./testing`, several layers each with its own `kvStore`, `ctx.waitUntil`
 * collected and awaited. Paths: plain call, a fallback chain over two hosts,
 * the proxy.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: `kvStore` takes a value it read before as no news):
 * 1. docs/cloudflare.md: "A hold read from KV is cut to 24 hours at most."
 *    (and SECURITY.md: "Remote state is validated, never trusted"). Observed:
 *    one stored value whose `w` (time its state began) lies in the future
 *    and whose `u` is far ahead holds the host open for good: each 30 s
 *    refresh re-reads it with `w` clamped to the read's time, so it counts as
 *    a new change and its hold is cut to 24 h from that read again; the host
 *    is never probed (checked over 26 h of calls every 30 min). With `w` in
 *    the past the same value is probed after 24 h (hostile-state.test.ts).
 *
 * Held (plain `it`):
 * - control for 1: the same value with a `w` in the past is probed after 24 h;
 * - the stores' table bound at its edge: an isolate whose read comes 1 ms
 *   before another's trip shows at its location adopts it between
 *   `refreshInterval` + propagation - 1 ms and + 1 s (its next call) after
 *   the write;
 * - "+ up to 6 s for a trip soon after the isolate's last write": a trip in
 *   the previous write's jitter (0.999 s) reaches KV at most 6 s later;
 * - a failure storm through a fallback chain over two hosts, 4 isolates:
 *   no isolate attempts two writes of one key within `minPublishInterval`,
 *   no key takes two accepted writes within a second, no 429 reaches a
 *   caller;
 * - a KV whose `put` and `getWithMetadata` never settle, and the proxy
 *   given no `ctx`: every call answered under the local breaker, the trip
 *   still written;
 * - odd hosts (IPv6 with a port written two ways, an IDN) are one key each,
 *   `cb:v1:<scope>:<url.host>` (Punycode), and shared between isolates.
 *
 * Undocumented (not pinned): the key is `cb:v1:<scope>:<host>` with no
 * length cut, and the URL parser takes hosts far past 512 bytes (KV's key
 * limit): such a host (or a long `breaker.key`) cannot be shared; the fake
 * KV does not model the limit, so this is not pinned. A hostile `closed`
 * value with a future `w` counts as a close at each read's time and so
 * closes a locally tripped breaker every `refreshInterval`: read literally,
 * "toward closed only when it closed after the local breaker last changed"
 * is met. With the default breaker `timeout` (30 s) shorter than the table's
 * KV staleness (up to 96 s), another isolate often sees a trip only once
 * its hold ran out (as half-open, not open); the table does not say so.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type KvNamespaceLike, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { CircuitOpenError, createResilience, type StoreEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeKv } from "./fake-kv.ts";

const START = Date.parse("2026-03-01T00:00:00Z");
const DAY = 86_400_000;

let cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

interface IsolateOptions {
  namespace: KvNamespaceLike;
  clock: TestClock;
  pending: Promise<unknown>[];
  up: (url: string) => boolean;
  random?: () => number;
  refreshInterval?: number;
  breaker?: Record<string, unknown>;
  chain?: boolean;
}

/** One isolate: its own `kvStore` over `namespace`, one layer, its background work collected in `pending`. */
function isolate(o: IsolateOptions) {
  const ctx = { waitUntil: (p: Promise<unknown>) => void o.pending.push(p) };
  const store = kvStore(o.namespace, {
    ctx,
    clock: o.clock,
    random: o.random ?? (() => 0),
    ...(o.refreshInterval ? { refreshInterval: o.refreshInterval } : {}),
  });
  const sent: string[] = [];
  const resilience = createResilience({
    clock: o.clock,
    retry: false,
    store,
    breaker: { failureThreshold: 1, timeout: 30_000, ...o.breaker },
    ...(o.chain
      ? {
          fallback: fallback([
            {
              name: "c",
              endpoints: [
                { name: "a", url: "https://a.example/v1" },
                { name: "b", url: "https://b.example/v1" },
              ],
            },
          ]),
        }
      : {}),
    fetch: async (input: RequestInfo | URL) => {
      const url = input instanceof Request ? input.url : String(input);
      sent.push(url);
      return new Response(null, { status: o.up(url) ? 200 : 503 });
    },
  });
  const storeEvents: StoreEvent[] = [];
  resilience.on("store", (e) => storeEvents.push(e));
  const errors: unknown[] = [];
  /** One call to its end, then the background work it started: the status or the error's name. */
  const call = async (url: string): Promise<string> => {
    const outcome = await o.clock.run(
      resilience.fetch(url).then(
        async (r) => {
          await r.body?.cancel();
          return String(r.status);
        },
        (e: unknown) => {
          errors.push(e);
          return e instanceof Error ? e.name : String(e);
        },
      ),
    );
    await o.clock.run(Promise.all(o.pending.splice(0)));
    return outcome;
  };
  return { resilience, store, call, sent, storeEvents, errors };
}

/** Calls to a host whose KV key says open until 1e300 since `w`, every 30 min for 26 h: how many reached it. */
async function heldFor26Hours(w: number): Promise<{ first: string[]; sent: number }> {
  const clock = new TestClock(START);
  const kv = new FakeKv(clock, { propagation: 0 });
  // One value, never rewritten.
  kv.plant("cb:v1:default:gen.example", { v: 1, s: "open", g: 1, u: 1e300, w, r: "held" });
  const pending: Promise<unknown>[] = [];
  const iso = isolate({ namespace: kv.location(), clock, pending, up: () => true });
  const first = [await iso.call("https://gen.example/x"), await iso.call("https://gen.example/x")];
  for (let t = 0; t < 52; t++) {
    await clock.advance(30 * 60_000);
    await iso.call("https://gen.example/x");
  }
  return { first, sent: iso.sent.length };
}

describe("the default breaker timeout against KV's staleness", () => {
  it("another isolate learns of a 30 s trip after it ran out: it goes half-open and probes, never refusing", async () => {
    const clock = new TestClock(START);
    const kv = new FakeKv(clock, { propagation: 60_000 });
    const pending: Promise<unknown>[] = [];
    const a = isolate({ namespace: kv.location(), clock, pending, up: () => false });
    const b = isolate({ namespace: kv.location(), clock, pending, up: () => true });
    const changes: string[] = [];
    b.resilience.on("breaker", (e) => changes.push(`${e.from}→${e.to}`));
    const url = "https://gen.example/x";
    expect(await b.call(url)).toBe("200"); // B's first read, before the trip
    expect(await a.call(url)).toBe("503"); // A trips: open for 30 s, written at once
    const seen: string[] = [];
    for (let t = 0; t < 12; t++) {
      await clock.advance(10_000);
      seen.push(await b.call(url));
    }
    expect(seen).toEqual(Array(12).fill("200"));
    expect(changes).toEqual(["closed→half_open", "half_open→closed"]);
  });
});

describe("defects", () => {
  it('docs/cloudflare.md: "A hold read from KV is cut to 24 hours at most." — not for a stored value whose `w` lies ahead', async () => {
    // Dated within the clocks' drift (4 minutes ahead): held, then tried once its 24 hours have passed.
    const { first, sent } = await heldFor26Hours(START + 4 * 60_000);
    expect(first).toEqual(["200", "CircuitOpenError"]); // the first read goes in the background
    expect(sent).toBeGreaterThan(1); // documented: the hold ends after 24 h and the host is tried
    // A hostile value, or a foreign writer's time in microseconds: ten years ahead, held 24 h from its first read.
    const far = await heldFor26Hours(START + 10 * 365 * DAY);
    expect(far.first).toEqual(["200", "CircuitOpenError"]);
    expect(far.sent).toBeGreaterThan(1);
  });
});

describe("held", () => {
  it("control for defect 1: the same value with a `w` in the past is probed after 24 h", async () => {
    const { first, sent } = await heldFor26Hours(START);
    expect(first).toEqual(["200", "CircuitOpenError"]);
    expect(sent).toBeGreaterThan(1);
  });

  it("the table's staleness bound, at the edge: a read 1 ms before the write shows elsewhere leaves the next isolate blind for refreshInterval more", async () => {
    const clock = new TestClock(START);
    const propagation = 20_000;
    const kv = new FakeKv(clock, { propagation });
    const pending: Promise<unknown>[] = [];
    // A hold longer than the lag: an open whose time ran out only moves B toward half-open.
    const breaker = { failureThreshold: 1, timeout: 120_000 };
    const a = isolate({ namespace: kv.location(), clock, pending, up: () => false, breaker });
    const b = isolate({ namespace: kv.location(), clock, pending, up: () => true, breaker });
    const url = "https://gen.example/x";
    expect(await a.call(url)).toBe("503"); // trip at START; its write lands at once (jitter 0)
    const wroteAt = kv.attempts[0]?.at as number;
    expect(wroteAt).toBe(START);
    await clock.advance(propagation - 1 - (clock.now() - START));
    expect(await b.call(url)).toBe("200"); // B's first read: 1 ms too early to see it
    let adoptedAt: number | undefined;
    while (adoptedAt === undefined && clock.now() < START + 120_000) {
      await clock.advance(1_000);
      if ((await b.call(url)) === "CircuitOpenError") adoptedAt = clock.now();
    }
    const lag = (adoptedAt as number) - wroteAt;
    // Documented: <= refreshInterval (30 s) + propagation (+ 6 s only for a held write).
    expect(lag).toBeGreaterThanOrEqual(30_000 + propagation - 1);
    expect(lag).toBeLessThanOrEqual(30_000 + propagation + 1_000);
  });

  it("\"+ up to 6 s for a trip soon after the isolate's last write\": a trip in the previous write's jitter reaches KV < 6 s later", async () => {
    const clock = new TestClock(START);
    const kv = new FakeKv(clock, { propagation: 0 });
    const pending: Promise<unknown>[] = [];
    let up = false;
    const a = isolate({
      namespace: kv.location(),
      clock,
      pending,
      up: () => up,
      random: () => 0.999,
      breaker: { failureThreshold: 1, timeout: 1_000 },
    });
    const url = "https://gen.example/x";
    // Trip at 0: its write goes after 999 ms of jitter.
    const first = a.resilience.fetch(url).then(
      (r) => r.body?.cancel(),
      () => {},
    );
    await clock.run(first);
    // Don't wait for the background: at 1000 ms the probe closes, at 1001 ms a failure trips again.
    await clock.advance(1_000);
    up = true;
    await clock.run(a.resilience.fetch(url).then((r) => r.body?.cancel()));
    await clock.advance(1);
    up = false;
    await clock.run(a.resilience.fetch(url).then((r) => r.body?.cancel()));
    const trippedAt = clock.now();
    await clock.run(Promise.all(pending.splice(0)));
    const opens = kv.attempts.filter((w) => w.state === "open");
    expect(opens).toHaveLength(2);
    const delay = (opens[1]?.at as number) - trippedAt;
    expect(delay).toBeGreaterThan(0);
    expect(delay).toBeLessThanOrEqual(6_000);
  });

  it("a failure storm down a fallback chain over two hosts, 4 isolates: ≤ 1 attempt per key per isolate per 5 s, ≤ 1 accepted per key per second, no 429 reaches a caller", async () => {
    const clock = new TestClock(START);
    const kv = new FakeKv(clock, { propagation: 5_000 });
    const pending: Promise<unknown>[] = [];
    let n = 0;
    const isos = Array.from({ length: 4 }, (_, i) =>
      isolate({
        namespace: kv.location(),
        clock,
        pending,
        up: () => false,
        random: () => ((n++ * 0.37 + i * 0.11) % 1) as number,
        refreshInterval: 1_000,
        breaker: { failureThreshold: 2, timeout: 2_000 },
        chain: true,
      }),
    );
    for (let t = 0; t < 40; t++) {
      await clock.run(
        Promise.all(
          isos.map((iso) =>
            iso.resilience.fetch("https://a.example/v1/jobs").then(
              (r) => r.body?.cancel(),
              (e: unknown) => void iso.errors.push(e),
            ),
          ),
        ),
      );
      await clock.advance(500); // fires the jitters, held writes and 429 retries on the way
    }
    await clock.advance(20_000);
    await clock.run(Promise.all(pending.splice(0)));
    expect(kv.attempts.length).toBeGreaterThan(4);
    expect(new Set(kv.attempts.map((a) => a.key))).toEqual(
      new Set(["cb:v1:default:a.example", "cb:v1:default:b.example"]),
    );
    expect(kv.maxWritesPerKeyPerSecond()).toBeLessThanOrEqual(1);
    for (let loc = 0; loc < 4; loc++) {
      for (const key of ["cb:v1:default:a.example", "cb:v1:default:b.example"]) {
        const times = kv.attempts.filter((a) => a.location === loc && a.key === key).map((a) => a.at);
        for (let i = 1; i < times.length; i++)
          expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(5_000);
      }
    }
    const errors = isos.flatMap((i) => i.errors);
    expect(JSON.stringify(errors.map(String))).not.toMatch(/429|KV/);
  });

  it("a KV whose put and getWithMetadata never settle: every call answered, none waits", async () => {
    const clock = new TestClock(START);
    const hung: KvNamespaceLike = {
      getWithMetadata: (() => new Promise(() => {})) as never,
      put: () => new Promise(() => {}),
    };
    let up = true;
    const iso = isolate({ namespace: hung, clock, pending: [], up: () => up });
    const outcomes: string[] = [];
    for (let t = 0; t < 6; t++) {
      if (t === 2) up = false;
      outcomes.push(
        await clock.run(
          iso.resilience.fetch("https://gen.example/x").then(
            (r) => String(r.status),
            (e: unknown) => (e instanceof CircuitOpenError ? "open" : String(e)),
          ),
        ),
      );
      await clock.advance(10_000);
    }
    expect(outcomes).toEqual(["200", "200", "503", "open", "open", "503"]);
  });

  it("the proxy without a ctx (undefined): the upstream's 503, then 503 open; the trip is still written", async () => {
    const clock = new TestClock(START);
    const kv = new FakeKv(clock, { propagation: 0 });
    const proxy = resilientProxy<{ KV: KvNamespaceLike }>({
      routes: [{ path: "/v1", upstream: "https://up.example/v1" }],
      resilience: {
        clock,
        retry: false,
        breaker: { failureThreshold: 1 },
        fetch: async () => new Response(null, { status: 503 }),
      } as never,
      store: (env) => kvStore(env.KV, { clock, random: () => 0 }),
    });
    const env = { KV: kv.location() };
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await clock.run(proxy.fetch(new Request("https://worker.example/v1/x"), env, undefined as never));
      statuses.push(res.status);
      await res.body?.cancel();
      await clock.advance(10);
    }
    await clock.advance(2_000);
    expect(statuses).toEqual([503, 503]);
    expect(kv.attempts.map((a) => a.state)).toEqual(["open"]);
  });

  it("odd hosts (IPv6 with a port, an IDN) are one key each, cb:v1:<scope>:<url.host>, shared between isolates", async () => {
    const clock = new TestClock(START);
    const kv = new FakeKv(clock, { propagation: 0 });
    const pending: Promise<unknown>[] = [];
    let aUp = true;
    const a = isolate({ namespace: kv.location(), clock, pending, up: () => aUp, refreshInterval: 1_000 });
    const b = isolate({ namespace: kv.location(), clock, pending, up: () => true, refreshInterval: 1_000 });
    const urls = ["https://[::1]:8443/x", "https://bücher.example/x", "HTTPS://[0:0:0:0:0:0:0:1]:8443/y"];
    aUp = false;
    await a.call(urls[0] as string);
    await a.call(urls[1] as string);
    expect(kv.attempts.map((w) => w.key)).toEqual(["cb:v1:default:[::1]:8443", "cb:v1:default:xn--bcher-kva.example"]);
    await b.call(urls[2] as string); // starts B's read
    await clock.advance(1_000);
    expect(await b.call(urls[2] as string)).toBe("CircuitOpenError");
    await b.call(urls[1] as string);
    await clock.advance(1_000);
    expect(await b.call(urls[1] as string)).toBe("CircuitOpenError");
  });
});
