/**
 * Outside-in attack on docs/testing.md and the `./testing` entry (`TestClock`, the fault kit, `upstream`,
 * `recordEvents`, `corsPreflight`), as a user's own vitest project drives them with MSW 3 (`setupServer` from
 * "msw/node"), aimed at what the earlier testingdoc and kit runs (24, 26, 32, 48, 50, 52, 55, 58, 59, and
 * test/testing/kit-clocks.test.ts) left: a clock of yours read by `outage` under MSW rather than a stub `fetch`, the
 * kit's refusal messages for every argument, streamed bodies under the caller's abort on every path, concurrent
 * `run`s, and MSW's `server.close()`.
 *
 * Docs:
 * - docs/testing.md: "A clock of yours given to `latency`, `stream` or `outage` is read as the layer reads one: …
 *   and `outage` checks each reading, so one that is no finite number (NaN, text) fails the request with a
 *   `TypeError` naming it (`clock.now() must answer a finite number, got NaN`), which the layer sees as a network
 *   error, instead of leaving the outage never to start."; "The kit's messages show a refused value as the layer's
 *   own refusals do: text in quotes (`got "2"`), so it is not read as the number (text that is no plain word as `a
 *   string`), an object or a symbol by its kind."; "Each builder refuses a bad argument at once with a `TypeError`
 *   (…), so a mistake fails the test, not a handler inside MSW."; "with Node's fetch a streamed body its reader
 *   cancels stops waiting for its next chunk, on any clock"; "`run` fires the next timer after three real turns …
 *   Use a stub or MSW with a `TestClock`"; "`upstream(method, url, fault)` wraps a fault into an MSW handler that
 *   records every request: `count()`, `requests`, `bodies`"; "`server.close()` puts back what was global at
 *   `listen()`: an install made while MSW listened is undone with it."; "One MSW quirk … a `Headers` made before
 *   `server.listen()` keeps only what was set on it after."
 * - src/testing/upstream.ts JSDoc: `requests` "Every request that reached the handler, in order (clones: their
 *   bodies are readable)".
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback`, `degradation`, `createClient` (./ky), the
 * ./testing kit; MSW 3.0.5 `setupServer` (`console.error` muted where MSW prints a handler's exception);
 * `TestClock` for every layer's time; real timers counted with `process.getActiveResourcesInfo()` (ref'd ones).
 *
 * Paths: plain call, `Request` input, library redirect (307), degradation rewrite (`medium`), fallback chain (p 503
 * → q), hedged chain (keyed POST, q at 500), ky client; plain platform `fetch` under MSW.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-third session all 3 were fixed,
 * so plain `it`: `outage` answers a bad reading with `HttpResponse.error()` and reports the `TypeError` with
 * `console.error`, which testing.md now says, and every refusal of the kit shows its value with `shownValue`, a
 * `corsPreflight` list its bad entry and where):
 * 1. "`outage` checks each reading, so one that is no finite number (NaN, text) fails the request with a
 *    `TypeError` naming it …, which the layer sees as a network error". Observed under MSW (where the kit's faults
 *    run): the fault throws inside the handler, MSW emits `unhandledException` and answers a 500 whose JSON body is
 *    the TypeError (name, message, stack); platform `fetch` resolves 500, and the layer sees an API's 500, not a
 *    network error: a GET resolves 500 after its retries (3 requests), so a test asserting a served call can pass.
 *    The stub-`fetch` test in test/testing/kit-clocks.test.ts calls the fault itself, where a throw is a rejected
 *    fetch. Cause: src/testing/faults.ts `outage` lets `ownClock(…).now()` throw out of the fault (`latency`
 *    answers `HttpResponse.error()` for a failed wait, `upstream` for an aborted body read). Test "defect 1".
 * 2. "The kit's messages show a refused value as the layer's own refusals do: text in quotes …, (text that is no
 *    plain word as `a string`), an object or a symbol by its kind." Observed: `upstream(method)` and
 *    `corsPreflight({ allowHeaders | exposeHeaders })` write the value with `JSON.stringify`: arguments swapped,
 *    `upstream("https://gen.example/v1?key=sk-9", "POST", f)` shows the whole URL with its key; an object shows
 *    its JSON (`got {"a":1}`), a symbol shows as `got undefined`, and a BigInt fails with the engine's "Do not
 *    know how to serialize a BigInt" (no argument named); `upstream(Symbol(), url, "x")` fails with "Cannot
 *    convert a Symbol value to a string"; `json(body, { statusText: Symbol() })` shows `got "Symbol(s)"`, a symbol
 *    as text. Every other value refusal of the kit uses `shownValue` (held below). Test "defect 2".
 * 3. Same sentence, "text in quotes (`got "2"`)". Observed: refusals that check a kind write `typeof` of the
 *    value: `status(503, "2")`, `json({}, "2")`, `latency(1, f, "2")`, `stream(["a"], "2")`,
 *    `sequence([f], "2")` say `expected an object, got string`; `sequence([f, "2"])` `got string at 1`; `flaky`'s
 *    `fail` and `outage`'s `during` `got string`; `clock.run("2")` `expected a promise, got string`: text named by
 *    its type, never in quotes. Test "defect 3".
 *
 * Held (plain `it`):
 * - `outage` under MSW reads the clock per request: 1 000 inside the window answers its 503, 9 000 after it the
 *   200, a NaN reading neither (the outage is not left never to start).
 * - The other refusals show text as `"2"`, text that is no plain word as `a string`, objects and symbols by kind,
 *   a BigInt as its digits (by its kind, `a bigint`, since the recheck2 run): `status` code and `retryAfter`, `json` status, `latency` ms, `stream` interval and
 *   stallAfter, `sequence` then, `flaky` rate and seed, `outage` from, `new TestClock`,
 *   `advance`, `waitForTimers`, `expectRetries`.
 * - A `stream` read through the layer, the caller aborting mid-body: on plain, `Request`, redirect, degradation,
 *   chain, hedge and ky paths the pending read rejects with the caller's reason within a few turns, the fault's
 *   next-chunk timer leaves the `TestClock` (nothing pending), a stalled one too; on real timers the fault's
 *   60 s timer is cleared (no ref'd timer left), with the layer and with platform `fetch`.
 * - Eight calls at once, each under its own `clock.run` or all under one, POSTing to MSW with a 10 s attempt timer
 *   pending: none jumps to the timer (`now()` 0).
 * - `upstream.requests` of a keyed POST to `hang()` that the attempt timeout cut: every clone readable, equal to
 *   `bodies`, `count()` the attempts, nothing pending.
 * - A kit `json` whose `init.headers` is a `Headers` made at module scope, before `server.listen()`: every header
 *   reaches the client (the kit is not bitten by the quirk the guide names).
 * - `server.close()` puts back the fetch that was global at `listen()` after the layer was installed meanwhile.
 *
 * Docs-silent (not pinned):
 * - A clock of yours whose `setTimer` throws: the layer rejects the call with that error as its cause (no retry);
 *   a `latency` on that clock answers every request as a network error and drops the error (the layer retries it
 *   and reports "fetch failed"); a `stream` on it fails the fetch ("SocketError: closed").
 * - `upstream("GET", url)` with a url that is no string fails with engine errors (`url.endsWith is not a
 *   function`); `recordEvents(x)` with no layer (a ky instance, undefined) fails with `resilience.on is not a
 *   function`; `json(body, { statusText: "a\nb" })` shows its text in quotes though it is no plain word.
 * - A keyless POST is not hedged, so under `run` a hedged chain's POST waits out p's `latency` (at 5 000) rather
 *   than q at the hedge delay: as docs/fallback.md says, but a first test of the kit's hedge reads as a jump.
 */
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  corsPreflight,
  type Fault,
  flaky,
  hang,
  json,
  latency,
  outage,
  recordEvents,
  sequence,
  status,
  stream,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";

// Made at module scope, before `server.listen()`.
const early = new Headers({ "x-early": "1", "retry-after": "2" });
const earlyJson = json({ ok: 1 }, { headers: early });

const server = setupServer();
beforeAll(() => server.listen());
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

/** Ref'd timers alive now: what would keep a Node process from exiting. */
const refTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
const tick = (): Promise<unknown> => new Promise((r) => setTimeout(r, 0));
const ticks = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await tick();
};

/** The message a kit call refuses with (sync or async), or "accepted". */
async function refusal(make: () => unknown): Promise<string> {
  try {
    await make();
    return "accepted";
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

// ---------------------------------------------------------------------------

describe("outage reads a clock of yours under MSW", () => {
  function mount(path: string) {
    const time = new TestClock();
    const state = { reading: Number.NaN as unknown };
    const clock = { now: () => state.reading as number, setTimer: time.setTimer.bind(time) };
    const api = upstream(
      "GET",
      `https://outage.example/${path}`,
      outage({ from: 0, until: 5_000, clock }, status(503), json({ ok: 1 })),
    );
    server.use(api.handler);
    // MSW prints the handler's exception with console.error: kept out of the run's output.
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    return { time, api, state, off: () => quiet.mockRestore() };
  }

  it("defect 1: a NaN reading fails the request (fetch rejects), which the layer sees as a network error", async () => {
    const { time, api, off } = mount("a");
    const reported = vi.mocked(console.error);
    try {
      const plain = await fetch("https://outage.example/a").then(
        (res) => `answered ${res.status}`,
        (error: Error) => error.name,
      );
      const layer = createResilience({ clock: time, retry: false });
      const viaLayer = await time.run(layer.fetch("https://outage.example/a")).then(
        (res) => `answered ${res.status}`,
        (error: Error) => error.name,
      );
      expect(plain).toBe("TypeError");
      // A network error: the call rejects (no answer), not the API's 500.
      expect(viaLayer).toBe("RetryExhaustedError");
      expect(api.count()).toBe(2);
      // The error naming the reading is reported, once per request, as MSW reports a handler's exception.
      const named = reported.mock.calls.filter(
        ([error]) => String(error) === "TypeError: clock.now() must answer a finite number, got NaN",
      );
      expect(named).toHaveLength(2);
    } finally {
      off();
    }
  });

  it("held: each request reads the clock: 1 000 is in the window (503), NaN never starts the outage", async () => {
    const { time, state, off } = mount("b");
    try {
      const layer = createResilience({ clock: time, retry: false });
      const outcome = async () => {
        const res = await time.run(layer.fetch("https://outage.example/b")).catch(() => undefined);
        await res?.body?.cancel();
        return res?.status ?? "rejected";
      };
      state.reading = 1_000;
      const inside = await outcome();
      state.reading = Number.NaN;
      const unread = await outcome();
      state.reading = 9_000;
      const after = await outcome();
      expect([inside, after]).toEqual([503, 200]);
      expect([503, 200]).not.toContain(unread);
    } finally {
      off();
    }
  });
});

// ---------------------------------------------------------------------------

describe("the kit's refusal messages", () => {
  const url = "https://a.example/v1?key=sk-9";

  it("defect 2: upstream(method), corsPreflight's header lists and json's statusText show a value as the layer does", async () => {
    const seen = {
      swapped: await refusal(() => upstream(url as never, "POST" as never, status(200))),
      object: await refusal(() => upstream({ a: 1 } as never, "https://a.example/x", status(200))),
      symbol: await refusal(() => upstream(Symbol("GET") as never, "https://a.example/x", status(200))),
      bigint: await refusal(() => upstream(2n as never, "https://a.example/x", status(200))),
      symbolBadFault: await refusal(() => upstream(Symbol("GET") as never, "https://a.example/x", "x" as never)),
      corsUrl: await refusal(() => corsPreflight({ allowHeaders: url as never })),
      corsObject: await refusal(() => corsPreflight({ exposeHeaders: { a: 1 } as never })),
      corsSymbol: await refusal(() => corsPreflight({ allowHeaders: Symbol("h") as never })),
      corsBigint: await refusal(() => corsPreflight({ allowHeaders: 2n as never })),
      statusText: await refusal(() => json({}, { statusText: Symbol("s") as never })),
    };
    expect(seen.swapped).toMatch(/^TypeError: upstream\(method\): .*got a string$/);
    expect(seen.swapped).not.toContain("sk-9");
    expect(seen.object).toMatch(/^TypeError: upstream\(method\): .*got an object$/);
    expect(seen.symbol).toMatch(/^TypeError: upstream\(method\): .*got a symbol$/);
    // A BigInt by its kind since the sixty-third session's recheck2 run (its digits read as a number).
    expect(seen.bigint).toMatch(/^TypeError: upstream\(method\): .*got a bigint$/);
    expect(seen.symbolBadFault).toMatch(/^TypeError: upstream\(/);
    expect(seen.corsUrl).toMatch(/got a string$/);
    expect(seen.corsUrl).not.toContain("sk-9");
    expect(seen.corsObject).toMatch(/got an object$/);
    expect(seen.corsSymbol).toMatch(/got a symbol$/);
    expect(seen.corsBigint).toMatch(/^TypeError: corsPreflight\(\{ allowHeaders \}\): .*got a bigint$/);
    expect(seen.statusText).toMatch(/got a symbol$/);
  });

  it('defect 3: refusals of options, faults and run(promise) show text in quotes (got "2"), not its type', async () => {
    const f = status(200);
    const clock = new TestClock();
    const seen = [
      await refusal(() => status(503, "2" as never)),
      await refusal(() => json({}, "2" as never)),
      await refusal(() => latency(1, f, "2" as never)),
      await refusal(() => stream(["a"], "2" as never)),
      await refusal(() => sequence([f], "2" as never)),
      await refusal(() => sequence([f, "2" as never])),
      await refusal(() => flaky(0.5, { seed: 1, fail: "2" as never })),
      await refusal(() => outage({ from: 0, until: 1, clock }, "2" as never, f)),
      await refusal(() => clock.run("2" as never)),
    ];
    for (const message of seen) expect(message).toMatch(/^TypeError: .*got "2"/);
  });

  it("held: every other value refusal shows text quoted, other text as `a string`, objects and symbols by kind", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock });
    const makers: Record<string, (v: never) => unknown> = {
      "status(code)": (v) => status(v),
      "status(code, { retryAfter })": (v) => status(503, { retryAfter: v }),
      "json(body, { status })": (v) => json({}, { status: v }),
      "latency(ms)": (v) => latency(v, status(200)),
      "stream(chunks, { interval })": (v) => stream(["a"], { interval: v }),
      "stream(chunks, { stallAfter })": (v) => stream(["a"], { stallAfter: v }),
      // biome-ignore lint/suspicious/noThenProperty: the kit's documented option name
      "sequence(faults, { then })": (v) => sequence([status(200)], { then: v }),
      "flaky(rate)": (v) => flaky(v, { seed: 1 }),
      "flaky(rate, { seed })": (v) => flaky(0.5, { seed: v }),
      "outage({ from, until })": (v) => outage({ from: v, until: 5, clock }, status(503), status(200)),
      "new TestClock(start)": (v) => new TestClock(v),
      "TestClock.advance(ms)": (v) => clock.advance(v),
      "TestClock.waitForTimers(count)": (v) => clock.waitForTimers(v),
      "expectRetries(count)": (v) => recordEvents(layer).expectRetries(v),
    };
    const values: unknown[] = ["2", url, { a: 1 }, Symbol("s"), 2n];
    for (const [name, make] of Object.entries(makers)) {
      const shown: string[] = [];
      for (const value of values) {
        const message = await refusal(() => make(value as never));
        expect(message, name).toContain(name);
        expect(message.startsWith("TypeError: "), name).toBe(true);
        shown.push((message.match(/got ("2"|a string|an object|a symbol|a bigint)( and 5)?$/) ?? ["?"])[1] ?? "?");
      }
      // A BigInt by its kind since the sixty-third session's recheck2 run (its digits read as a number).
      expect(shown, name).toEqual(['"2"', "a string", "an object", "a symbol", "a bigint"]);
    }
  });
});

// ---------------------------------------------------------------------------

type Path = "plain" | "request" | "redirect" | "degrade" | "chain" | "hedge" | "ky";
const PATHS: Path[] = ["plain", "request", "redirect", "degrade", "chain", "hedge", "ky"];

describe("a streamed body and the caller's abort mid-body, on every path", () => {
  async function drive(path: Path, body: (clock: TestClock) => Fault) {
    const clock = new TestClock();
    const h = `ab-${path}`;
    const A = `https://${h}-a.example/v1`;
    const B = `https://${h}-b.example/v1`;
    const streamed = body(clock);
    const first: Fault =
      path === "chain"
        ? status(503, { retryAfter: 1 })
        : path === "hedge"
          ? latency(5_000, json({ from: "p" }), { clock })
          : streamed;
    server.use(
      upstream("POST", `${A}/x`, first).handler,
      upstream("POST", `${A}/r`, status(307, { headers: { location: "/v1/x" } })).handler,
      upstream("POST", `${B}/x`, streamed).handler,
    );
    const options: ResilienceOptions = { clock, retry: { idempotencyKey: true }, timeout: { attempt: 10_000 } };
    if (path === "chain" || path === "hedge") {
      options.fallback = fallback([
        {
          name: "gen",
          ...(path === "hedge" ? { hedge: { delay: 500 } } : {}),
          endpoints: [
            { name: "p", url: A },
            { name: "q", url: B },
          ],
        },
      ]);
    }
    if (path === "degrade") options.degradation = degradation({});
    const layer = createResilience(options);
    layer.degradation?.setLevel("medium");
    const stop = new AbortController();
    const url = `${A}/${path === "redirect" ? "r" : "x"}`;
    const init = { method: "POST", body: '{"quality":1}', signal: stop.signal };
    const call =
      path === "ky"
        ? createClient({ resilience: layer }).post(url, { body: init.body, signal: stop.signal })
        : path === "request"
          ? layer.fetch(new Request(url, init))
          : layer.fetch(url, init);
    const res = await clock.run(call);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const head = new TextDecoder().decode((await reader.read()).value);
    let rest = "pending";
    void reader.read().then(
      (r) => {
        rest = r.done ? "done" : "chunk";
      },
      (e: unknown) => {
        rest = String(e);
      },
    );
    await ticks(3);
    const waiting = clock.pending();
    stop.abort(new Error("left the page"));
    await ticks(5);
    return { head, waiting, rest, pending: clock.pending(), endpoint: getResilienceInfo(res)?.endpoint ?? null };
  }

  it("an interval stream on the clock: the read rejects with the caller's reason, the next-chunk timer leaves the clock", async () => {
    const seen: Record<string, unknown> = {};
    for (const path of PATHS) {
      const r = await drive(path, (clock) => stream(["a", "b", "c"], { interval: 60_000, clock }));
      seen[path] = [r.head, r.waiting, r.rest, r.pending];
      if (path === "chain" || path === "hedge") expect(r.endpoint, path).toBe("q");
    }
    expect(seen).toEqual(Object.fromEntries(PATHS.map((p) => [p, ["a", 1, "Error: left the page", 0]])));
  });

  it("a stalled stream: the read rejects with the caller's reason, nothing pending", async () => {
    const seen: Record<string, unknown> = {};
    for (const path of PATHS) {
      const r = await drive(path, (clock) => stream(["a", "b"], { stallAfter: 1, clock }));
      seen[path] = [r.head, r.rest, r.pending];
    }
    expect(seen).toEqual(Object.fromEntries(PATHS.map((p) => [p, ["a", "Error: left the page", 0]])));
  });

  it("on real timers: the fault's 60 s next-chunk timer is cleared by the abort (layer and platform fetch)", async () => {
    server.use(
      upstream("GET", "https://rt.example/v1/s", stream(["a", "b", "c"], { interval: 60_000 })).handler,
      upstream("GET", "https://rt.example/v1/t", stream(["a", "b", "c"], { interval: 60_000 })).handler,
    );
    const seen: number[][] = [];
    for (const via of ["layer", "platform"] as const) {
      const before = refTimers();
      const stop = new AbortController();
      const res =
        via === "layer"
          ? await createResilience().fetch("https://rt.example/v1/s", { signal: stop.signal })
          : await fetch("https://rt.example/v1/t", { signal: stop.signal });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      for (let i = 0; i < 10 && refTimers() === before; i++) await tick();
      const during = refTimers() - before;
      stop.abort(new Error("gone"));
      const rest = await reader.read().then(
        () => "read",
        (e: unknown) => String(e),
      );
      expect(rest).toBe("Error: gone");
      for (let i = 0; i < 10 && refTimers() !== before; i++) await tick();
      seen.push([during, refTimers() - before]);
    }
    expect(seen).toEqual([
      [1, 0],
      [1, 0],
    ]);
  });
});

// ---------------------------------------------------------------------------

describe("TestClock and MSW", () => {
  it("eight calls at once, each under its own run or all under one: none jumps to the pending attempt timer", async () => {
    server.use(upstream("POST", "https://many.example/v1/x", json({ ok: 1 })).handler);
    const seen: Record<string, unknown> = {};
    for (const how of ["each", "all"] as const) {
      const clock = new TestClock();
      const layer = createResilience({ clock, retry: false, timeout: { attempt: 10_000 } });
      const calls = Array.from({ length: 8 }, (_, i) =>
        layer.fetch("https://many.example/v1/x", { method: "POST", body: "x".repeat(1_000 * (i + 1)) }).then(
          (r) => r.status,
          (e: Error) => e.name,
        ),
      );
      const out =
        how === "each" ? await Promise.all(calls.map((c) => clock.run(c))) : await clock.run(Promise.all(calls));
      seen[how] = [out, clock.now(), clock.pending()];
    }
    expect(seen).toEqual({ each: [Array(8).fill(200), 0, 0], all: [Array(8).fill(200), 0, 0] });
  });

  it("upstream.requests of a keyed POST to hang() that the attempt timeout cut: readable clones, equal to bodies", async () => {
    const api = upstream("POST", "https://hung.example/v1/x", hang());
    server.use(api.handler);
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 3, idempotencyKey: true },
      timeout: { attempt: 1_000 },
    });
    const error = await clock.run(layer.fetch("https://hung.example/v1/x", { method: "POST", body: '{"n":1}' })).then(
      () => "resolved",
      (e: Error) => e.name,
    );
    await ticks(3);
    const texts = await Promise.all(api.requests.map((r) => r.text()));
    expect([error, api.count(), texts, api.bodies, clock.pending()]).toEqual([
      "TimeoutError",
      3,
      Array(3).fill('{"n":1}'),
      Array(3).fill('{"n":1}'),
      0,
    ]);
  });

  it("a kit json whose init.headers is a Headers made before server.listen() keeps every header", async () => {
    server.use(upstream("GET", "https://early.example/v1/x", earlyJson).handler);
    const clock = new TestClock();
    const res = await clock.run(createResilience({ clock, retry: false }).fetch("https://early.example/v1/x"));
    expect([res.status, res.headers.get("x-early"), res.headers.get("retry-after"), await res.json()]).toEqual([
      200,
      "1",
      "2",
      { ok: 1 },
    ]);
  });
});

describe("server.close() puts back what was global at listen()", () => {
  beforeAll(() => server.close());
  afterAll(() => server.listen());

  it("a layer installed while MSW listened is undone with it", async () => {
    const platform = globalThis.fetch;
    const own = setupServer(upstream("GET", "https://inst.example/v1/x", json({ via: "msw" })).handler);
    const atListen = globalThis.fetch;
    own.listen();
    expect(globalThis.fetch).not.toBe(atListen); // MSW's patch
    try {
      const layer = createResilience({ retry: false });
      globalThis.fetch = layer.fetch;
      const body = await (await fetch("https://inst.example/v1/x")).json();
      expect(body).toEqual({ via: "msw" });
    } finally {
      own.close();
    }
    const restored = globalThis.fetch;
    globalThis.fetch = platform;
    expect(restored).toBe(atListen);
  });
});
