/**
 * Outside-in attack on the sixty-first session's fixes (git diff e77f626..HEAD): a store of your own's `peek`
 * (`null`, snapshots the breaker cannot merge, events handed over through `connect`), the testing kit's refusals, the
 * health endpoint's token and recipes.md's three new sentences.
 *
 * Docs:
 * - docs/breakers.md: "`null` is nothing seen, as `undefined` is (a missing key read back as JSON). A value the breaker
 *   cannot merge is no snapshot either, with a `read` event (outcome `skipped`, "peek returned no snapshot the breaker
 *   can merge") on every read: another version than `v: 1`, an unknown `state`, a `gen` or `changedAt` that is no
 *   finite number, an open state without a numeric `openUntil`, a `reason` or `trip.lastError` that is not text. A
 *   `store` event your store hands the layer through `connect` reaches listeners with the URLs in its `detail` cut, as
 *   the layer's own."; "what they throw fails the call, which `health()` counts as a failed call".
 * - SECURITY.md "Remote state is validated, never trusted": "what a store of your own's `peek` answers is checked
 *   field by field (version, state, `gen` and times that are numbers, words that are text), and one the breaker cannot
 *   merge is no snapshot, with a `store` event too"; "No secret in events, errors, `health()` or `debugInfo()`: URLs
 *   lose their userinfo …, query string and fragment … before they reach any of them"; health row: "any other value
 *   keeps it closed; unset or the empty string, the endpoint is open".
 * - docs/cloudflare.md: "`GET /__resilience/health` returns `health()` as JSON"; "Without a token it is open: the env
 *   var `RESILIENCE_HEALTH_TOKEN` unset, or set to the empty string … any other value … keeps the endpoint closed".
 * - docs/testing.md: "a wait, interval, `flaky` rate or `outage` window given as text" is refused; "The kit's messages
 *   quote a value given as text (`got "2"`), so it is not read as the number". CHANGELOG.md: "A symbol or an object
 *   without a prototype given as a status, a wait or a count is named in the message too".
 * - docs/recipes.md: "An `Idempotency-Key` header you set yourself counts too; the SDK's own `idempotencyKey` request
 *   option does not, as openai sends no header for it"; "(under `redirects: "platform"`, Node's follower carries
 *   `x-api-key` there …)"; "after a chain's spare served the first page, the client itself addresses the spare's
 *   origin, so your own `authorization` goes there".
 *
 * How: `createResilience`, `memoryStore` (root), `fallback` (./fallback), `createClient` (./ky), `resilientProxy`
 * (./cloudflare), the kit (./testing: `TestClock`, builders, `recordEvents`, `corsPreflight`); stores written here from
 * the `BreakerStore` contract; the openai, @anthropic-ai/sdk and replicate clients; two node:http servers on 127.0.0.1.
 *
 * Paths: plain call, `Request` input, ky client, chain, hedge, redirect hop, `health()`, `debugInfo()`, two layers over
 * one `memoryStore`, `resilientProxy` routes and health endpoint with a custom `store`, the three SDKs.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-first session 1, 2, 3 and 5 were
 * fixed, the snapshot read once into a copy whose trip counts are checked, and 4 answered by the docs, which now name
 * `null` with unset, so plain `it`; since the fix 2's route is served, a BigInt count making the snapshot none):
 * 1. SECURITY.md "checked field by field" / "No secret in … `health()` or `debugInfo()`". Observed: a trip's counts
 *    (`consecutive`, `failures`, `calls`, `rate`) are not checked: an open snapshot whose trip came back from a Redis
 *    hash as text ({ failures: "2" }) is merged, and `health()` and `debugInfo()` report `failureCount: "2"` where the
 *    type says a number; text holding a URL (`https://u:pw@h/?api_key=SECRET`) reaches both with key and password.
 *    Test "defect 1: …".
 * 2. cloudflare.md "`GET /__resilience/health` returns `health()` as JSON". Observed: the same unchecked trip count as a
 *    BigInt is merged; `JSON.stringify(health())` throws and the proxy's health request rejects with the engine's
 *    "Do not know how to serialize a BigInt" (its routes still answer). Test "defect 2: …".
 * 3. breakers.md "a `reason` … that is not text" is no snapshot, "with a `read` event … on every read". Observed: a
 *    snapshot whose `reason` a Proxy (or getter) answers as text when checked and as a number when merged fails the
 *    call with the bare engine `TypeError: text.replace is not a function`, uncounted (`debugInfo().totals.calls` 0),
 *    and the open state is then ignored for good: the next call is sent, no event. The check reads the live object,
 *    the merge reads it again. Test "defect 3: …".
 * 4. SECURITY.md "any other value keeps it closed; unset or the empty string, the endpoint is open" (cloudflare.md
 *    alike). Observed: `RESILIENCE_HEALTH_TOKEN: null` (set, neither unset nor "") opens the endpoint: `GET` without a
 *    token answers 200 with `health()`. Test "defect 4: …".
 * 5. testing.md "The kit's messages quote a value given as text (`got "2"`), so it is not read as the number".
 *    Observed: text boxed as a `String` object (`new String("5")`, what `Object("5")` gives) is refused, but quoted as
 *    the number: `latency(ms): expected ms >= 0, got 5`, `waitForTimers … got 2`. Test "defect 5: …".
 *
 * Held (plain `it`):
 * - `null` from `peek` is nothing seen on every path (plain, `Request`, ky, chain, hedge, redirect hop, `health()`,
 *   `debugInfo()`): sent, no `store` event, nothing counted as failed.
 * - 22 values the breaker cannot merge (v 2 or "1", an unknown or upper-case state, `gen` "9"/NaN/Infinity,
 *   `changedAt` -Infinity, an open state whose `openUntil` is missing, text or NaN, a numeric `reason` or
 *   `trip.lastError`, an array, 0, text, `true`, a symbol, a function, a class instance or Proxy saying v 2) are no
 *   snapshot: the call goes, one `read`/`skipped` event with the documented words per read, `health()`'s reads too.
 * - Odd values the breaker can merge hold as open: frozen, without a prototype, with every field on its prototype, a Proxy,
 *   extra keys (a JSON `"__proto__"` key pollutes nothing), `gen` -0, negative or `Number.MAX_VALUE`; "until Infinity"
 *   holds a day; "until -Infinity" is an open spell that ran out: the calls go as probes and close it.
 * - On every path the skipped event comes per read and the call goes: `Request`, ky, chain, hedge, redirect hop.
 * - A trip getter that throws fails the first call with `RetryExhaustedError` (cause the getter's error), counted.
 * - Two layers over one `memoryStore`: trips and closes cross, never a skipped event.
 * - `resilientProxy` with a custom `store`: `null` or an unmergeable value lets the route through, an open one is 503.
 * - `connect`: `detail` cut as a string, `URL`, `Error`, percent-encoded, a getter on a class instance, in a frozen event or a
 *   Proxy; a `detail` with no text is "an error that cannot be shown as text"; two layers each get the cut copy.
 * - The kit: every refusal of text quotes it; symbols and objects without a prototype are named; numbers still work.
 * - Health token: unset, `undefined`, "" open; " ", NaN, `false`, `{}` closed; `0` is the token "0".
 * - The recipes: openai's `idempotencyKey` option sends no header and a 500 is not retried, the caller's own header
 *   is and it is; under `redirects: "platform"` an `x-api-key` set by hand (and `anthropic-version`) cross to the
 *   other origin, the SDK's `authorization` does not; under the library's redirects none does; Replicate's `paginate` after a chain's
 *   spare sends `authorization` to the spare on page 2, not on page 1.
 *
 * Docs-silent (not pinned; the sixty-first session wrote the first into breakers.md, which now names every time and a
 * trip's counts, so an array as `trip` is none too; the second is gone with the copy made in the store's view, a getter
 * that throws failing each read; the fourth corrected recipes.md; the fifth quotes the value):
 * - Stricter than breakers.md's list: a half-open snapshot whose `openUntil` is text, and a `lastFailureTime` that is
 *   text, are skipped too; a `trip` that is an array is merged (`health()` then has no `lastError` key).
 * - A snapshot whose trip getter threw once is remembered as merged: later reads of it are silent, the host unheld.
 * - `connect` cuts `detail` only: the event's other fields, extra keys and an event that is a bare string reach
 *   listeners as the store gave them.
 * - recipes.md's Anthropic paragraph reads as if the SDK sent its key as `x-api-key`: @anthropic-ai/sdk 1.14.0 sends
 *   `apiKey` as `Authorization: Bearer` (an `x-api-key` only when set by hand, beside it), so under
 *   `redirects: "platform"` the recipe's key stays home; the parenthetical is true only of a hand-set `x-api-key`.
 * - `sequence(f, { then: Symbol() })` says `got undefined`; `then: 1n` throws the engine's "Do not know how to
 *   serialize a BigInt".
 */
import { readFileSync } from "node:fs";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import Replicate from "replicate";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerSnapshot,
  type BreakerStore,
  createResilience,
  isCircuitOpenError,
  isRetryExhaustedError,
  memoryStore,
  type StoreEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  corsPreflight,
  flaky,
  json,
  latency,
  outage,
  recordEvents,
  sequence,
  status,
  stream,
  TestClock,
} from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const primary = httpUpstream();
const spare = httpUpstream();
serveDuringFile(primary, spare);

const T0 = 1_700_000_000_000;
const DAY = 86_400_000;
const SKIPPED = "read/skipped peek returned no snapshot the breaker can merge";
const SECRET_URL = "https://u:pw@h.example/p?api_key=SECRET";
const ctx = { waitUntil() {}, passThroughOnException() {} } as never;

const snap = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  v: 1,
  state: "open",
  gen: 1,
  failures: [],
  window: null,
  lastFailureTime: null,
  openUntil: T0 + 60_000,
  leases: [],
  successes: 0,
  reason: "held",
  changedAt: T0,
  ...over,
});

/** A store of one's own whose every `peek` answers `value()`. */
const own = (value: () => unknown, extra: Partial<BreakerStore> = {}): BreakerStore => ({
  name: "own",
  publish() {},
  peek: () => value() as BreakerSnapshot,
  ...extra,
});

function layer(store: BreakerStore, more: Record<string, unknown> = {}) {
  const clock = new TestClock(T0);
  const r = createResilience({ store, clock, retry: false, ...more });
  const events: string[] = [];
  r.on("store", (e: StoreEvent) => events.push(`${e.operation}/${e.outcome} ${e.detail}`));
  return { r, events, clock };
}

async function outcome(call: Promise<Response>): Promise<string> {
  try {
    const res = await call;
    return `${res.status} ${await res.text()}`;
  } catch (error) {
    return isCircuitOpenError(error) ? "circuit open" : `error ${(error as Error)?.name}: ${(error as Error)?.message}`;
  }
}

const chains = () =>
  fallback([
    {
      name: "c",
      endpoints: [
        { name: "s", url: `${spare.base}/c` },
        { name: "p", url: `${primary.base}/c` },
      ],
    },
    {
      name: "h",
      hedge: { delay: 5 },
      endpoints: [
        { name: "s", url: `${spare.base}/h` },
        { name: "p", url: `${primary.base}/h` },
      ],
    },
  ]);
const redirecting = () =>
  primary.on((hit) =>
    hit.path === "/r" ? hit.res.writeHead(302, { location: `${spare.base}/t` }).end() : hit.res.end("primary"),
  );

/** Every path a call can take to the spare's host: plain, Request, ky, chain, hedge, a redirect's hop. */
async function everyPath(r: ReturnType<typeof createResilience>): Promise<string[]> {
  return [
    await outcome(r.fetch(`${spare.base}/x`)),
    await outcome(r.fetch(new Request(`${spare.base}/q`, { method: "POST", body: "job" }))),
    await outcome(createClient({ resilience: r }).get(`${spare.base}/k`)),
    await outcome(r.fetch(`${spare.base}/c`)),
    await outcome(r.fetch(`${spare.base}/h`)),
    await outcome(r.fetch(`${primary.base}/r`)),
  ];
}

describe("a store of your own: what peek answers", () => {
  it("null is nothing seen on every path, health() and debugInfo() too: sent, no event, nothing failed", async () => {
    redirecting();
    const { r, events } = layer(
      own(() => JSON.parse("null")),
      { fallback: chains() },
    );
    expect(await everyPath(r)).toEqual(["200 ok", "200 ok", "200 ok", "200 ok", "200 ok", "200 ok"]);
    expect(r.health().status).toBe("healthy");
    expect(r.debugInfo().totals.failures).toBe(0);
    expect(events).toEqual([]);
  });

  const unmergeable: Record<string, () => unknown> = {
    "v 2": () => snap({ v: 2 }),
    'v "1"': () => snap({ v: "1" }),
    "state OPEN": () => snap({ state: "OPEN" }),
    "state tripped": () => snap({ state: "tripped" }),
    'gen "9"': () => snap({ gen: "9" }),
    "gen NaN": () => snap({ gen: Number.NaN }),
    "gen Infinity": () => snap({ gen: Number.POSITIVE_INFINITY }),
    "changedAt -Infinity": () => snap({ changedAt: Number.NEGATIVE_INFINITY }),
    "open, openUntil missing": () => snap({ openUntil: undefined }),
    "open, openUntil text": () => snap({ openUntil: String(T0 + 60_000) }),
    "open, openUntil NaN": () => snap({ openUntil: Number.NaN }),
    "reason 503": () => snap({ reason: 503 }),
    "trip.lastError 503": () => snap({ trip: { consecutive: 2, failures: 2, calls: 2, rate: 1, lastError: 503 } }),
    array: () => [snap()],
    zero: () => 0,
    text: () => JSON.stringify(snap()),
    true: () => true,
    symbol: () => Symbol("snap"),
    function: () => () => snap(),
    "class instance v 2": () => Object.assign(new (class Snap {})(), snap({ v: 2 })),
    "Proxy saying v 2": () => new Proxy(snap(), { get: (t, k) => (k === "v" ? 2 : Reflect.get(t, k)) }),
    "open, reason an object": () => snap({ reason: { text: "held" } }),
  };
  it("every value the breaker cannot merge is no snapshot: the call goes, one documented event per read", async () => {
    const seen: Record<string, string> = {};
    for (const [name, value] of Object.entries(unmergeable)) {
      const { r, events } = layer(own(value));
      const first = await outcome(r.fetch(`${spare.base}/x`));
      const second = await outcome(r.fetch(`${spare.base}/x`));
      const perCall = events.length / 2;
      r.health();
      seen[name] =
        `${first}, ${second}, ${perCall} per call, health +${events.length - 2 * perCall}, ${[...new Set(events)].join()}`;
    }
    for (const [name, line] of Object.entries(seen))
      expect(`${name}: ${line}`).toBe(`${name}: 200 ok, 200 ok, 1 per call, health +1, ${SKIPPED}`);
  });

  it("odd values the breaker can merge hold the host open, pollute nothing; Infinity holds a day, -Infinity ran out", async () => {
    const mergeable: Record<string, () => unknown> = {
      frozen: () => Object.freeze(snap()),
      "no prototype": () => Object.assign(Object.create(null), snap()),
      "fields on its prototype": () => Object.create(snap()),
      Proxy: () => new Proxy(snap(), {}),
      "extra keys, JSON __proto__": () =>
        JSON.parse(JSON.stringify({ ...snap(), extra: 1 }).replace("{", '{"__proto__":{"polluted":true},')),
      "trip with __proto__": () =>
        snap({ trip: JSON.parse('{"__proto__":{"polluted":true},"consecutive":1,"failures":1,"calls":1,"rate":1}') }),
      "gen -0": () => snap({ gen: -0 }),
      "gen -5": () => snap({ gen: -5 }),
      "gen MAX_VALUE": () => snap({ gen: Number.MAX_VALUE }),
    };
    for (const [name, value] of Object.entries(mergeable)) {
      const { r, events } = layer(own(value));
      expect(`${name}: ${await outcome(r.fetch(`${spare.base}/x`))} ${events.length}`).toBe(`${name}: circuit open 0`);
      expect(r.health().breakers[spare.host]?.state).toBe("open");
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(spare.hits).toEqual([]);

    const forever = layer(own(() => snap({ openUntil: Number.POSITIVE_INFINITY })));
    expect(await outcome(forever.r.fetch(`${spare.base}/x`))).toBe("circuit open");
    expect(forever.r.health().breakers[spare.host]?.openUntil).toBe(T0 + DAY);
    const ranOut = layer(own(() => snap({ openUntil: Number.NEGATIVE_INFINITY })));
    expect(await outcome(ranOut.r.fetch(`${spare.base}/x`))).toBe("200 ok");
    expect(await outcome(ranOut.r.fetch(`${spare.base}/x`))).toBe("200 ok");
    expect(ranOut.r.health().breakers[spare.host]).toMatchObject({ state: "closed", reason: "2 successful probes" });
  });

  it("the skipped event comes on every path, and every path's call goes", async () => {
    redirecting();
    const { r, events } = layer(
      own(() => snap({ v: 2 })),
      { fallback: chains() },
    );
    const counts: number[] = [];
    const results: string[] = [];
    for (const call of [
      () => r.fetch(`${spare.base}/x`),
      () => r.fetch(new Request(`${spare.base}/q`, { method: "POST", body: "job" })),
      () => createClient({ resilience: r }).get(`${spare.base}/k`),
      () => r.fetch(`${spare.base}/c`),
      () => r.fetch(`${spare.base}/h`),
      () => r.fetch(`${primary.base}/r`),
    ]) {
      const before = events.length;
      results.push(await outcome(call()));
      counts.push(events.length - before);
    }
    expect(results).toEqual(["200 ok", "200 ok", "200 ok", "200 ok", "200 ok", "200 ok"]);
    expect(counts.every((n) => n >= 1)).toBe(true);
    expect(new Set(events)).toEqual(new Set([SKIPPED]));
    expect(spare.hits.map((h) => h.path)).toEqual(["/x", "/q", "/k", "/c", "/h", "/t"]);
  });

  it("a trip getter that throws fails the first call as the store's failure: RetryExhaustedError, counted", async () => {
    const boom = new Error("getter boom");
    const { r } = layer(
      own(() =>
        snap({
          trip: Object.defineProperty({ lastError: "e" }, "consecutive", {
            enumerable: true,
            get() {
              throw boom;
            },
          }),
        }),
      ),
    );
    const error = await r.fetch(`${spare.base}/x`).catch((e: unknown) => e);
    expect(isRetryExhaustedError(error) && error.cause === boom && error.attempts === 0).toBe(true);
    expect(r.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
  });

  it("two layers over one memoryStore: a trip and its close cross, never a skipped event", async () => {
    spare.on((hit) => hit.res.writeHead(503).end("down"));
    const store = memoryStore();
    const clock = new TestClock(T0);
    const make = () =>
      createResilience({ store, clock, retry: false, breaker: { failureThreshold: 2, timeout: 1000 } });
    const a = make();
    const b = make();
    const events: string[] = [];
    for (const l of [a, b]) l.on("store", (e) => events.push(`${e.operation}/${e.outcome}`));
    await outcome(a.fetch(`${spare.base}/x`));
    await outcome(a.fetch(`${spare.base}/x`));
    expect(await outcome(b.fetch(`${spare.base}/x`))).toBe("circuit open");
    spare.on((hit) => hit.res.end("back"));
    await clock.advance(1000);
    expect(await outcome(b.fetch(`${spare.base}/x`))).toBe("200 back");
    expect(await outcome(b.fetch(`${spare.base}/x`))).toBe("200 back");
    expect(a.health().breakers[spare.host]?.state).toBe("closed");
    expect(events.filter((e) => e.startsWith("read/skipped"))).toEqual([]);
  });

  it("resilientProxy with a custom store: null or an unmergeable value lets the route through, an open one is 503", async () => {
    const answers: Record<string, unknown> = { null: null, v2: snap({ v: 2 }), open: snap() };
    const seen: string[] = [];
    for (const [name, value] of Object.entries(answers)) {
      const proxy = resilientProxy({
        resilience: { retry: false, clock: new TestClock(T0) },
        store: () => own(() => value),
        routes: [{ path: "/v1", upstream: spare.base }],
      });
      const res = await proxy.fetch(new Request("http://proxy.example/v1/a"), {}, ctx);
      seen.push(`${name} ${res.status}`);
      await res.text();
    }
    expect(seen).toEqual(["null 200", "v2 200", "open 503"]);
  });

  it("defect 1: a trip's counts are not checked: text from a Redis hash, and a URL with its key, reach health() and debugInfo()", async () => {
    const fromHash = layer(
      own(() => snap({ trip: { consecutive: "2", failures: "2", calls: "2", rate: "1", lastError: "status 503" } })),
    );
    await outcome(fromHash.r.fetch(`${spare.base}/x`));
    const hashed = fromHash.r.health().breakers[spare.host];
    const secret = layer(
      own(() => snap({ trip: { consecutive: 1, failures: SECRET_URL, calls: 1, rate: SECRET_URL, lastError: "e" } })),
    );
    await outcome(secret.r.fetch(`${spare.base}/x`));
    const told = JSON.stringify([secret.r.health(), secret.r.debugInfo()]);
    // Documented: numbers are checked ("version, state, `gen` and times that are numbers"); no key in health().
    expect([
      typeof hashed?.failureCount,
      typeof hashed?.consecutiveFailures,
      told.includes("SECRET"),
      told.includes("u:pw@"),
    ]).toEqual(["number", "number", false, false]);
  });

  it("defect 2: a BigInt trip count makes the proxy's health endpoint reject with an engine error", async () => {
    const proxy = resilientProxy({
      resilience: { retry: false, clock: new TestClock(T0) },
      store: () => own(() => snap({ trip: { consecutive: 1n, failures: 1, calls: 1, rate: 1, lastError: "e" } })),
      routes: [{ path: "/v1", upstream: spare.base }],
    });
    const route = await proxy.fetch(new Request("http://proxy.example/v1/a"), {}, ctx);
    // Since the fix, a BigInt count makes the snapshot one the breaker cannot merge: the route is served.
    expect(route.status).toBe(200);
    const health = await proxy.fetch(new Request("http://proxy.example/__resilience/health"), {}, ctx).then(
      async (res) => `${res.status} ${typeof (await res.json()).breakers}`,
      (error: unknown) => `rejected: ${String(error)}`,
    );
    expect(health).toBe("200 object");
  });

  it("defect 3: a reason that is text when checked and a number when merged fails the call with an engine error", async () => {
    let reads = 0;
    const live = snap();
    const { r, events } = layer(
      own(
        () =>
          new Proxy(live, {
            get: (t, k) => (k === "reason" ? (++reads % 2 === 1 ? "held" : 503) : Reflect.get(t, k)),
          }),
      ),
    );
    const first = await outcome(r.fetch(`${spare.base}/x`));
    const second = await outcome(r.fetch(`${spare.base}/x`));
    // Documented: a reason that is not text is no snapshot, with an event on every read (or the store's failure, counted).
    expect(first).not.toMatch(/text\.replace/);
    expect([second, events.length > 0 || r.debugInfo().totals.failures > 0]).toEqual(["circuit open", true]);
  });
});

describe("a store of your own: events handed over through connect", () => {
  it("detail is cut in every form, for every layer that listens", async () => {
    const listeners = new Set<(e: StoreEvent) => void>();
    const store = own(() => undefined, {
      connect(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    });
    const layers = [layer(store), layer(store)];
    const url = "https://admin:pw@redis.example/k?token=SECRET#frag";
    const ev = (detail: unknown) =>
      ({ store: "own", key: "k", operation: "write", outcome: "failed", detail }) as StoreEvent;
    const given: StoreEvent[] = [
      ev(`GET ${url} failed`),
      ev(new URL(url)),
      ev(new Error(`GET ${url} failed`)),
      ev(`a ${encodeURIComponent(url)}`),
      ev(Object.create(null)),
      Object.freeze(ev(url)),
      new Proxy(ev(url), {}),
      Object.defineProperty(Object.assign(new (class Ev {})(), ev("")), "detail", { get: () => url }),
    ];
    for (const e of given) for (const listener of listeners) listener(e);
    expect(listeners.size).toBe(2);
    for (const { events } of layers) {
      expect(events).toEqual([
        "write/failed GET https://redis.example/k failed",
        "write/failed https://redis.example/k",
        "write/failed Error: GET https://redis.example/k failed",
        "write/failed a https%3A%2F%2Fredis.example%2Fk",
        "write/failed an error that cannot be shown as text",
        "write/failed https://redis.example/k",
        "write/failed https://redis.example/k",
        "write/failed https://redis.example/k",
      ]);
    }
  });
});

describe("the testing kit's refusals", () => {
  const message = (build: () => unknown): string => {
    try {
      build();
      return "built";
    } catch (error) {
      return `${(error as Error).name}: ${(error as Error).message}`;
    }
  };
  const ok = json({ ok: true });
  const clock = new TestClock();

  it("text is refused and quoted by every builder; symbols and objects without a prototype are named", async () => {
    const refusals: Array<[() => unknown, string]> = [
      [() => latency("5" as never, ok), 'got "5"'],
      [() => stream(["a"], { interval: "5" as never }), 'got "5"'],
      [() => stream(["a"], { stallAfter: "1" as never }), 'got "1"'],
      [() => stream(["a", "b"], { breakAfter: "0" as never }), 'got "0"'],
      [() => flaky("0.5" as never, { seed: 1 }), 'got "0.5"'],
      [() => flaky(0.5, { seed: "1" as never }), 'got "1"'],
      [() => outage({ from: "0" as never, until: 5, clock }, ok, ok), 'got "0" and 5'],
      [() => outage({ from: 0, until: "5" as never, clock }, ok, ok), 'got 0 and "5"'],
      [() => status("503" as never), 'got "503"'],
      [() => json({}, { status: "200" as never }), 'got "200"'],
      [() => status(503, { retryAfter: "5" as never }), 'got "5"'],
      [() => new TestClock("0" as never), 'got "0"'],
      [() => corsPreflight("all" as never), 'got "all"'],
      [() => recordEvents(createResilience()).expectRetries("1" as never), 'got "1"'],
      [() => latency(Symbol("s") as never, ok), "got a symbol"],
      [() => status(Symbol("s") as never), "got a symbol"],
      [() => flaky(Symbol("s") as never, { seed: 1 }), "got a symbol"],
      [() => recordEvents(createResilience()).expectRetries(Symbol("s") as never), "got a symbol"],
      [() => latency(Object.create(null), ok), "got an object"],
      [() => status(Object.create(null)), "got an object"],
      [
        () => outage({ from: Symbol("f") as never, until: Object.create(null), clock }, ok, ok),
        "got a symbol and an object",
      ],
    ];
    for (const [build, expected] of refusals)
      expect(message(build)).toMatch(new RegExp(`^TypeError: .*${expected.replace(/[()]/g, "\\$&")}$`));
    for (const [wait, expected] of [
      [() => clock.waitForTimers("2" as never), 'got "2"'],
      [() => clock.advance("5" as never), 'got "5"'],
      [() => clock.waitForTimers(Symbol("n") as never), "got a symbol"],
      [() => clock.advance(Object.create(null)), "got an object"],
    ] as const) {
      const error = await wait().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(`${error?.name}: ${error?.message}`).toMatch(
        new RegExp(`^TypeError: .*${expected.replace(/[()]/g, "\\$&")}$`),
      );
    }
    // Numbers are still taken.
    for (const build of [
      () => latency(5, ok),
      () => stream(["a", "b"], { interval: 5, breakAfter: 0 }),
      () => flaky(0.5, { seed: 1 }),
      () => outage({ from: 0, until: 5, clock }, ok, ok),
      () => status(503, { retryAfter: 5 }),
      () => sequence([ok]),
    ])
      expect(message(build)).toBe("built");
  });

  it("defect 5: text boxed as a String object is no longer shown as the number it is not", async () => {
    // Fixed by showing values by the project's one rule (src/core/shown-name.ts): an object is named by its kind.
    const boxed = (text: string) => Object(text) as never;
    expect(message(() => latency(boxed("5"), ok))).toContain("got an object");
    const error = await clock.waitForTimers(boxed("2")).catch((e: unknown) => e as Error);
    expect(error?.message).toContain("got an object");
  });
});

describe("the Worker health endpoint's token", () => {
  const ask = async (env: Record<string, unknown>, auth?: string) => {
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: spare.base }] });
    const headers = auth ? { authorization: auth } : undefined;
    const res = await proxy.fetch(
      new Request("http://proxy.example/__resilience/health", headers ? { headers } : {}),
      env,
      ctx,
    );
    await res.text();
    return res.status;
  };

  it("unset, undefined or empty: open; spaces, NaN, false, an object without get(): closed; 0 is the token 0", async () => {
    const v = "RESILIENCE_HEALTH_TOKEN";
    expect([await ask({}), await ask({ [v]: undefined }), await ask({ [v]: "" })]).toEqual([200, 200, 200]);
    expect([
      await ask({ [v]: "  " }),
      await ask({ [v]: Number.NaN }),
      await ask({ [v]: false }),
      await ask({ [v]: {} }),
    ]).toEqual([401, 401, 401, 401]);
    expect([await ask({ [v]: 0 }), await ask({ [v]: 0 }, "Bearer 0")]).toEqual([401, 200]);
  });

  it("defect 4, answered by the docs: a token var set to null is unset, and both documents now say so", async () => {
    // First pinned as `it.fails` expecting 401; cloudflare.md and SECURITY.md now name `null` with unset.
    expect(await ask({ RESILIENCE_HEALTH_TOKEN: null })).toBe(200);
    const flat = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(flat("SECURITY.md")).toContain("unset, `null` or the empty string, the endpoint is open");
    expect(flat("docs/cloudflare.md")).toContain("unset (`undefined` or `null` in an `env` your code builds)");
  });
});

describe("recipes.md's new sentences, through the SDKs", () => {
  it("openai: the idempotencyKey option sends no header and a 500 is not retried; your own header is retried", async () => {
    primary.on((hit) =>
      hit.n % 2 === 1
        ? hit.res.writeHead(500, { "content-type": "application/json" }).end('{"error":{"message":"x"}}')
        : hit.res.writeHead(200, { "content-type": "application/json" }).end('{"id":"c","choices":[]}'),
    );
    const resilience = createResilience({ retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" } });
    const openai = new OpenAI({
      apiKey: "sk-test",
      baseURL: `${primary.base}/v1`,
      fetch: resilience.fetch,
      maxRetries: 0,
    });
    const body = { model: "m", messages: [{ role: "user" as const, content: "hi" }] };
    const option = await openai.chat.completions.create(body, { idempotencyKey: "opt-1" }).then(
      () => "ok",
      (e: unknown) => (e as { status?: number }).status,
    );
    expect([option, primary.hits.length, primary.hits[0]?.headers["idempotency-key"]]).toEqual([500, 1, undefined]);
    primary.hits.length = 0;
    const own = await openai.chat.completions.create(body, { headers: { "Idempotency-Key": "own-1" } });
    expect(own.id).toBe("c");
    expect(primary.hits.map((h) => h.headers["idempotency-key"])).toEqual(["own-1", "own-1"]);
  });

  it("anthropic: under 'platform' a hand-set x-api-key crosses to the other origin, the SDK's authorization does not", async () => {
    primary.on((hit) => hit.res.writeHead(307, { location: `${spare.base}${hit.path}` }).end());
    spare.on((hit) =>
      hit.res
        .writeHead(200, { "content-type": "application/json" })
        .end('{"id":"m","type":"message","role":"assistant","content":[],"model":"c","stop_reason":"end_turn"}'),
    );
    const seen: string[] = [];
    for (const redirects of ["platform", "library"] as const) {
      for (const handSet of [false, true]) {
        primary.hits.length = 0;
        spare.hits.length = 0;
        const client = new Anthropic({
          apiKey: "sk-ant-KEY",
          baseURL: primary.base,
          fetch: createResilience({ redirects, retry: false }).fetch,
          maxRetries: 0,
          ...(handSet ? { defaultHeaders: { "x-api-key": "sk-ant-HAND" } } : {}),
        });
        await client.messages.create({ model: "c", max_tokens: 1, messages: [{ role: "user", content: "hi" }] });
        const [home, there] = [primary.hits[0]?.headers, spare.hits[0]?.headers];
        const keys = (h: typeof home) =>
          `${h?.authorization ?? "-"} ${h?.["x-api-key"] ?? "-"} ${h?.["anthropic-version"] ? "v" : "-"}`;
        seen.push(`${redirects}${handSet ? "+x-api-key" : ""}: home ${keys(home)} | there ${keys(there)}`);
      }
    }
    expect(seen).toEqual([
      "platform: home Bearer sk-ant-KEY - v | there - - v",
      "platform+x-api-key: home Bearer sk-ant-KEY sk-ant-HAND v | there - sk-ant-HAND v",
      "library: home Bearer sk-ant-KEY - v | there - - -",
      "library+x-api-key: home Bearer sk-ant-KEY sk-ant-HAND v | there - - -",
    ]);
  });

  it("replicate: after a chain's spare served page 1, paginate sends your authorization to the spare on page 2", async () => {
    primary.on((hit) => hit.res.writeHead(503).end("down"));
    spare.on((hit) =>
      hit.res
        .writeHead(200, { "content-type": "application/json" })
        .end(
          JSON.stringify(
            hit.path.includes("cursor")
              ? { results: [{ id: "p2" }], next: null }
              : { results: [{ id: "p1" }], next: `${spare.base}/v1/predictions?cursor=2` },
          ),
        ),
    );
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "r",
          endpoints: [
            { name: "home", url: `${primary.base}/v1` },
            { name: "spare", url: `${spare.base}/v1` },
          ],
        },
      ]),
    });
    const replicate = new Replicate({ auth: "r8_KEY", baseUrl: `${primary.base}/v1`, fetch: resilience.fetch });
    const pages: string[] = [];
    for await (const page of replicate.paginate(() => replicate.predictions.list()))
      pages.push(...page.map((p: { id: string }) => p.id));
    expect(pages).toEqual(["p1", "p2"]);
    expect(spare.hits.map((h) => [h.path, h.headers.authorization])).toEqual([
      ["/v1/predictions", undefined],
      ["/v1/predictions?cursor=2", "Bearer r8_KEY"],
    ]);
  });
});
