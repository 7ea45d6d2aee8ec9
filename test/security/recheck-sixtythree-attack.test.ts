/**
 * Outside-in attack on the sixty-third session's fixes and new doc sentences: the ky client's misspelt-`resilience`
 * refusal and `URLSearchParams` copy, the testing kit's `outage` clock readings and refusal messages, and the new
 * sentences of health-and-events, breakers, fallback, recipes, testing and retry.
 *
 * Docs:
 * - docs/options.md: "A call, `extend` and `create` refuse such a key too (it would go on to `fetch` unread), and
 *   `resilience` itself: they run on the client's layer."; "an edit to your objects afterwards changes nothing
 *   (plain objects and arrays are copied, a `URLSearchParams` the ky client is given too; functions, clocks,
 *   schemas, a Standard Schema written as a plain object included, and other objects are kept as given)".
 * - CHANGELOG.md: "The ky client kept a `URLSearchParams` given as `searchParams` to `createClient` or `create` by
 *   reference, so an edit to it afterwards changed every later call, … it is now copied when given, as the docs
 *   say of options."
 * - docs/testing.md: "`outage` checks each reading, so one that is no finite number (NaN, text) fails the request
 *   as a network error (`HttpResponse.error()` …) and reports the `TypeError` naming it (`clock.now() must answer
 *   a finite number, got NaN`) with `console.error`"; "The kit's messages show a refused value as the layer's own
 *   refusals do: text in quotes (`got "2"`), so it is not read as the number (text that is no plain word as `a
 *   string`), an object or a symbol by its kind."; "an `upstream` method it does not know, or a URL that is no
 *   text"; "`recordEvents` given anything but a layer (a ky instance, `undefined`) is a `TypeError` too."; "A
 *   hedged chain starts no hedge for a POST without an `Idempotency-Key` …, so under `run` such a POST waits out
 *   the first endpoint's `latency` where a keyed one moves on at the hedge's delay".
 * - docs/health-and-events.md: "after redirects the layer followed, where the attempt began (its hops are one
 *   attempt, each in a `redirect` event)"; "An event a listener sets off (a `breaker(name).reset()` from a
 *   `breaker` listener) is heard out at once, as `EventTarget` nests it: the listeners after that one hear the
 *   later event first, so the last event a listener heard need not be the state now".
 * - docs/breakers.md: "a `configure` that throws makes `createResilience` throw that error as it is, and no layer
 *   is made".
 * - docs/fallback.md: "while an endpoint that had ended stays counted as it ended (one a `fallback` listener heard
 *   fail, then aborted the call for, counts as failed)".
 * - docs/recipes.md: "a chain's `hedge` never starts a second endpoint for a POST without one, so under these SDKs
 *   a hedged chain hedges only with `retry: { idempotencyKey: true }` (or a key you set)."
 * - docs/retry.md: "the final status counts against the first host's breaker, as for hops the library follows."
 *
 * How: root, ./fallback, ./ky (on a stub transport and on the layer; plain ky 2 to compare), ./testing under MSW 3
 * `setupServer` ("msw/node", `console.error` spied); two node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts).
 *
 * Paths: ky call, every method, `Request` input, `extend` (object, function, chained), `create`, `create` of an
 * `extend`; plain call, chain, hedge, ky call under MSW; library-followed redirects (307 across origins) on plain,
 * `Request`, ky and chain; named breaker events; fallback chain with and without hedge under the caller's abort.
 * Not driven: docs/browsers-and-cors.md's new sentences (CORS refusals, credentials against `*`) and SECURITY.md's
 * "Cookies the browser adds": browser-only.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-third session both were fixed,
 * so plain `it`: `copied` puts a class instance's keys on a copy before copying its `URLSearchParams`, and
 * `ownClock` shows a reading as the layer's refusals show a value, `got "2"`, `got an object`):
 * 1. options.md "an edit to your objects afterwards changes nothing (… a `URLSearchParams` the ky client is given
 *    too …)". Observed: a class-instance options object given to `extend` or `create` keeps its `URLSearchParams`
 *    by reference: `api.extend(new Opts(params))`, then `params.set("a", "99")`, and every later call sends
 *    `?a=99`. `createClient` given the same class instance copies it (its `shallowCopy` makes a plain object
 *    first); src/ky/index.ts `copied` skips it on purpose ("A class instance's options are the caller's own"),
 *    though ky has merged the instance's fields already, so nothing else of it is kept. Test "defect 1: …".
 * 2. testing.md "reports the `TypeError` naming it" with "The kit's messages show a refused value as the layer's
 *    own refusals do: text in quotes (`got "2"`) …, an object or a symbol by its kind". Observed: an `outage`
 *    clock reading `"2"` is reported as "clock.now() must answer a finite number, got type string", a `Date` as
 *    "got type object": the reading is not named, text not quoted (src/core/clock.ts `ownClock` writes
 *    `type ${typeof time}`; the layer's own clock refusal, options.md "refused as a `TypeError` naming it (…)",
 *    says the same). Test "defect 2: …".
 *
 * Held (plain `it`):
 * - `resilence` is a `ConfigError` naming it at once on a call, every method (`query` too), a `Request` input,
 *   `extend`, `extend(fn)` spreading the parent, an `extend` of an `extend`, `create`, `create` of an `extend` and
 *   a call of a `create`; written as a class field or getter, frozen, in a Proxy, hidden (not enumerable), on a
 *   null prototype; `resilienceX`, `Resilience`, `RESILIENCE`, `resilient`, `silience` too; nothing sent. Every
 *   ky 2 / RequestInit / platform key (`cf`, `next`, `dispatcher`, `priority`, `duplex` …), `r`, `re` and
 *   `reliance` pass. A call with 1,000 keys costs about what plain ky costs.
 * - A `URLSearchParams` (or a subclass) given through `extend(fn)`, a frozen object (extend and create), a Proxy,
 *   a null-prototype object, down an `extend` chain, and a class instance to `createClient`: copied.
 * - `outage` under MSW: a NaN reading is a network error on the plain call (`RetryExhaustedError`, cause
 *   `TypeError`), a chain and a hedge (q serves) and a ky call, never MSW's 500; one `console.error` per request
 *   naming the reading; Infinity too; a `now()` that throws: a network error, its own error reported as it is.
 * - `upstream` with a `URL`, a RegExp or a number: `TypeError` naming it (`an object`, `5`); swapped arguments
 *   never quote the URL; `recordEvents` of a ky instance, `undefined`, `null`, `{}`, text: `TypeError` naming it.
 * - Under `run`, a hedged keyless POST waits out p's 5 s latency, a keyed one is served by q at 500; on real
 *   servers the same, through the layer and ky (`retry.idempotencyKey` decides).
 * - A `retry` event after a 307 to another origin names the URL the attempt began at, query cut (plain,
 *   `Request`, ky; in a chain the endpoint's URL), each hop a `redirect` event; the final 503 opens the first
 *   host's breaker (`CircuitOpenError`, nothing sent).
 * - A breaker listener's `reset()` nests its event: the second listener hears `open>closed` before `closed>open`.
 * - A store whose `configure` throws: `createResilience` and `createClient` throw that very value (an Error or
 *   text); `breaker: false` makes the layer.
 * - A chain whose `fallback` listener aborts after p's 503 (at once, or later with q in flight, with and without
 *   hedge): p counted 1 call 0 successes, q not counted.
 *
 * Docs-silent (not pinned; the first and the edit-distance cost were acted on in the sixty-third session: an `init`
 * hook's `resilience` or near miss is refused when the call is made, which retry.md says, and a key whose length is
 * more than two from the word's is not measured):
 * - An `init` hook that sets `options.resilence` is not refused (retry.md names only `retry` and `fetch` for
 *   hooks): the call is sent, and ky hands unknown keys on to the layer's `fetch` init.
 * - ky 2 itself is quadratic in a call's key count (2,000 keys ≈ 0.5 s, 20,000 ≈ 95 s through the client, plain
 *   ky alike); the client adds little. A 5,000,000-character key costs ~0.3 s in the edit-distance check (no early
 *   exit on length).
 * - `extend(fn)`'s `parent` is the parent instance's live options (ky's own): a function that edits
 *   `parent.searchParams` changes the parent client's later calls.
 */
import ky from "ky";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { json, latency, outage, recordEvents, status, TestClock, upstream } from "../../src/testing/index.ts";
import { type Handler, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const U = "https://a.example/x";
/** The message a call refuses with at once, "promise" when it returned one. */
function refusal(make: () => unknown): string {
  try {
    const value = make();
    if (value instanceof Promise) value.catch(() => {});
    return "accepted";
  } catch (error) {
    return `${error instanceof ConfigError ? "ConfigError" : (error as Error).name}: ${(error as Error).message}`;
  }
}
const typoMessage = (key: string) => `ConfigError: ${key}: unknown option "${key}", did you mean "resilience"?`;
/** A client on a stub transport that counts what it is sent and records each URL's query. */
function stubClient() {
  const sent: string[] = [];
  const fetch = async (input: RequestInfo | URL) => {
    sent.push(new URL(input instanceof Request ? input.url : String(input)).search);
    return new Response("{}");
  };
  return { sent, fetch, api: createClient({ resilience: { retry: false, fetch } }) };
}

/** A chain "c": p, then q, hedged after `hedge` ms when given. */
const chain = (p: string, q: string, hedge?: number) =>
  fallback([
    {
      name: "c",
      ...(hedge ? { hedge: { delay: hedge } } : {}),
      endpoints: [
        { name: "p", url: p },
        { name: "q", url: q },
      ],
    },
  ]);

// ---------------------------------------------------------------------------

describe("ky client: a key one or two letters from `resilience`, on every way in", () => {
  it("held: refused at once on a call, every method, a Request input, extend (object, function, chained) and create, nothing sent", () => {
    const { api, sent } = stubClient();
    const typo = { resilence: { retry: false } } as never;
    const ways: Array<[string, () => unknown]> = [
      ["call", () => api(U, typo)],
      ["Request input", () => api(new Request(U, { method: "POST", body: "x" }), typo)],
      ...["get", "post", "put", "patch", "head", "delete", "query"].map((m): [string, () => unknown] => {
        const method = (api as unknown as Record<string, (u: string, o: never) => unknown>)[m];
        return [m, () => method?.(U, typo)];
      }),
      ["extend", () => api.extend(typo)],
      ["extend(fn) spreading the parent", () => api.extend((parent) => ({ ...parent, ...(typo as object) }))],
      ["extend of an extend", () => api.extend({ prefix: "https://a.example/" }).extend(typo)],
      ["create", () => api.create(typo)],
      ["create of an extend", () => api.extend({}).create(typo)],
      ["a call of a create", () => api.create({}).get(U, typo)],
    ];
    for (const [way, run] of ways) expect(refusal(run), way).toBe(typoMessage("resilence"));
    expect(sent).toEqual([]);
  });

  it("held: written any way an options object can carry it: class field or getter, frozen, Proxy, hidden, null prototype", () => {
    const { api, sent } = stubClient();
    class Field {
      resilence = { retry: false };
    }
    class Getter {
      get resilence() {
        return { retry: false };
      }
    }
    const hidden = Object.defineProperty({}, "resilence", { value: {} });
    const shapes: unknown[] = [
      new Field(),
      new Getter(),
      Object.freeze({ resilence: {} }),
      new Proxy({ resilence: {} }, {}),
      hidden,
      Object.assign(Object.create(null), { resilence: {} }),
    ];
    const ways = [(o: never) => api.get(U, o), (o: never) => api.extend(o), (o: never) => api.create(o)];
    const seen = shapes.flatMap((shape) => ways.map((way) => refusal(() => way(shape as never))));
    expect(seen).toEqual(Array(18).fill(typoMessage("resilence")));
    expect(sent).toEqual([]);
  });

  it("held: near spellings and case are refused; short keys and every real ky / fetch / platform option pass", async () => {
    const { api, sent } = stubClient();
    for (const key of ["resilienceX", "Resilience", "RESILIENCE", "resiliance", "resilient", "silience", "Resilience "])
      expect(
        refusal(() => api.get(U, { [key]: 1 } as never)),
        key,
      ).toBe(typoMessage(key));
    const legit = (
      "r re res json searchParams prefix baseUrl timeout throwHttpErrors hooks parseJson stringifyJson " +
      "onDownloadProgress onUploadProgress context method headers body mode credentials cache redirect referrer " +
      "referrerPolicy integrity keepalive signal window duplex priority dispatcher cf next agent reliance"
    ).split(" ");
    // Each key alone, with a value ky and fetch accept or ignore: none is refused as a misspelt layer.
    for (const key of legit) {
      const message = refusal(() => api.extend({ [key]: undefined } as never));
      expect(message, key).toBe("accepted");
    }
    const res = await api.get(U, { r: 1, cf: { cacheTtl: 5 }, next: { revalidate: 1 }, priority: "high" } as never);
    expect(res.status).toBe(200);
    expect(sent).toHaveLength(1);
  });

  it("held: a call with hundreds, then a thousand, keys costs about what plain ky costs (the check is no quadratic of its own)", async () => {
    const fetch = async () => new Response("{}");
    const api = createClient({ resilience: { retry: false, fetch } });
    const plain = ky.create({ fetch, retry: 0 });
    const many: Record<string, number> = {};
    for (let i = 0; i < 1_000; i++) many[`k${i}`] = i;
    const time = async (run: () => Promise<unknown>) => {
      const t0 = performance.now();
      await run();
      return performance.now() - t0;
    };
    await plain.get(U, many as never);
    await api.get(U, many as never);
    const kyMs = await time(() => plain.get(U, many as never));
    const clientMs = await time(() => api.get(U, many as never));
    // ky itself is quadratic in a call's keys (its merge): the client adds its checks on top, no worse.
    expect(clientMs).toBeLessThan(kyMs * 3 + 100);
  });
});

// ---------------------------------------------------------------------------

describe("ky client: a URLSearchParams given as searchParams", () => {
  it("held: copied through extend(fn), a frozen object, a Proxy, a null prototype, a subclass, an extend chain, a class instance to createClient", async () => {
    const { api, sent, fetch } = stubClient();
    class Sub extends URLSearchParams {}
    class Opts {
      searchParams: URLSearchParams;
      constructor(params: URLSearchParams) {
        this.searchParams = params;
      }
    }
    const ways: Array<(p: URLSearchParams) => ReturnType<typeof createClient>> = [
      (p) => api.extend(() => ({ searchParams: p })),
      (p) => api.extend(Object.freeze({ searchParams: p })),
      (p) => api.create(Object.freeze({ searchParams: p })),
      (p) => api.extend(new Proxy({ searchParams: p }, {})),
      (p) => api.extend(Object.assign(Object.create(null), { searchParams: p })),
      (p) => api.extend({ searchParams: p }).extend({ prefix: "https://a.example/" }),
      (p) => createClient(Object.assign(new Opts(p), { resilience: { retry: false, fetch } }) as never),
    ];
    for (const [i, make] of ways.entries()) {
      for (const params of [new URLSearchParams({ a: "1" }), new Sub({ a: "1" })]) {
        sent.length = 0;
        const client = make(params);
        await client.get(U);
        params.set("a", "99");
        params.append("b", "2");
        await client.get(U);
        expect(sent, `way ${i}`).toEqual(["?a=1", "?a=1"]);
      }
    }
  });

  it("defect 1: a class-instance options object to extend or create: an edit to its URLSearchParams afterwards changes nothing", async () => {
    const { api, sent } = stubClient();
    class Opts {
      searchParams: URLSearchParams;
      constructor(params: URLSearchParams) {
        this.searchParams = params;
      }
    }
    const forExtend = new URLSearchParams({ a: "1" });
    const forCreate = new URLSearchParams({ a: "1" });
    const extended = api.extend(new Opts(forExtend) as never);
    const created = api.create(new Opts(forCreate) as never);
    forExtend.set("a", "99");
    forCreate.set("a", "99");
    await extended.get(U);
    await created.get(U);
    expect(sent).toEqual(["?a=1", "?a=1"]);
  });
});

// ---------------------------------------------------------------------------

describe("testing kit under MSW 3: outage's clock readings, upstream and recordEvents refusals", () => {
  const server = setupServer();
  beforeAll(() => server.listen());
  afterEach(() => server.resetHandlers());
  afterAll(() => server.close());

  /** An outage on a clock of yours whose readings the test sets; console.error recorded (MSW and the kit print there). */
  function broken(reading: unknown, read = () => reading as number) {
    const time = new TestClock();
    const clock = { now: read, setTimer: time.setTimer.bind(time) };
    const fault = outage({ from: 0, until: 5_000, clock }, status(503), json({ from: "p" }));
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    return { time, fault, errors };
  }
  const reported = (errors: ReturnType<typeof broken>["errors"]) =>
    errors.mock.calls.map(([e]) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e)));

  type Path = "plain" | "chain" | "hedge" | "ky";
  it("held: a NaN reading is a network error on the plain call, a chain, a hedge and a ky call; the TypeError reported", async () => {
    for (const path of ["plain", "chain", "hedge", "ky"] as Path[]) {
      const { time, fault, errors } = broken(Number.NaN);
      try {
        const P = `https://nan-${path}-p.example/v1`;
        const Q = `https://nan-${path}-q.example/v1`;
        const p = upstream("POST", `${P}/x`, fault);
        const q = upstream("POST", `${Q}/x`, json({ from: "q" }));
        server.use(p.handler, q.handler);
        const options: ResilienceOptions = {
          clock: time,
          retry: { maxAttempts: 2, idempotencyKey: true, initialDelay: 1, jitter: "none" },
        };
        if (path === "chain" || path === "hedge") options.fallback = chain(P, Q, path === "hedge" ? 500 : undefined);
        const layer = createResilience(options);
        const call =
          path === "ky"
            ? createClient({ resilience: layer }).post(`${P}/x`, { body: "{}" })
            : layer.fetch(`${P}/x`, { method: "POST", body: "{}" });
        const outcome = await time.run(call).then(
          async (res) => `${res.status} ${await res.text()} ${getResilienceInfo(res)?.endpoint}`,
          (e: Error) => `${e.name} ${(e.cause as Error | undefined)?.name}`,
        );
        if (path === "chain" || path === "hedge") expect(outcome, path).toBe('200 {"from":"q"} q');
        else expect(outcome, path).toBe("RetryExhaustedError TypeError");
        // Never the 500 MSW makes of a handler's throw: p was asked, and each ask reported the reading.
        expect(p.count(), path).toBeGreaterThanOrEqual(1);
        const named = reported(errors).filter(
          (m) => m === "TypeError: clock.now() must answer a finite number, got NaN",
        );
        expect(named.length, path).toBe(p.count());
      } finally {
        errors.mockRestore();
      }
    }
  });

  it("held: Infinity is a network error shown as itself, a now() that throws one with its own error, -0.5 a time", async () => {
    const broke = new Error("clock broke");
    const cases: Array<[() => number, unknown[] | undefined]> = [
      [() => Number.POSITIVE_INFINITY, ["TypeError: clock.now() must answer a finite number, got Infinity"]],
      [
        () => {
          throw broke;
        },
        [broke],
      ],
      [() => -0.5, undefined],
    ];
    for (const [read, expected] of cases) {
      const { fault, errors } = broken(undefined, read);
      try {
        const res = await fault(new Request(U), { attempt: 1 });
        const said = errors.mock.calls.map(([e]) =>
          e === broke ? e : `${(e as Error).name}: ${(e as Error).message}`,
        );
        if (expected) expect([res.type, said]).toEqual(["error", expected]);
        else expect([res.status, said]).toEqual([200, []]);
      } finally {
        errors.mockRestore();
      }
    }
  });

  it('defect 2: a reading given as text ("2") or a Date is reported showing it as the kit shows values (got "2", an object)', async () => {
    const seen: string[] = [];
    for (const reading of ["2", new Date(2)]) {
      const { fault, errors } = broken(reading);
      try {
        const res = await fault(new Request(U), { attempt: 1 });
        expect(res.type).toBe("error");
        seen.push(...reported(errors));
      } finally {
        errors.mockRestore();
      }
    }
    expect(seen).toEqual([
      'TypeError: clock.now() must answer a finite number, got "2"',
      "TypeError: clock.now() must answer a finite number, got an object",
    ]);
  });

  it("held: upstream refuses a URL that is no text, recordEvents what is no layer, each naming the value", async () => {
    const api = createClient({ resilience: { retry: false } });
    const shown = (make: () => unknown) => refusal(make);
    const noText = "TypeError: upstream(method, url): expected a URL as text, got";
    expect(shown(() => upstream("GET", new URL(U) as never, status(200)))).toBe(`${noText} an object`);
    expect(shown(() => upstream("GET", /a\.example/ as never, status(200)))).toBe(`${noText} an object`);
    expect(shown(() => upstream("GET", 5 as never, status(200)))).toBe(`${noText} 5`);
    // The method is read first: swapped arguments name the method, never quoting the URL with its key.
    expect(shown(() => upstream("https://a.example/?key=sk-1" as never, "GET", status(200)))).toBe(
      "TypeError: upstream(method): expected an HTTP method, got a string",
    );
    for (const [value, kind] of [
      [api, "a function"],
      [undefined, "undefined"],
      [null, "null"],
      [{}, "an object"],
      ["layer", '"layer"'],
    ] as const)
      expect(shown(() => recordEvents(value as never))).toBe(
        `TypeError: recordEvents(resilience): expected a layer from createResilience, got ${kind}`,
      );
  });

  it("held: docs/testing.md's hedged keyless POST under run waits out p's latency; a keyed one moves on at the delay", async () => {
    const results: string[] = [];
    for (const keyed of [false, true]) {
      const clock = new TestClock();
      const P = `https://hedge-${keyed}-p.example/v1`;
      const Q = `https://hedge-${keyed}-q.example/v1`;
      const p = upstream("POST", `${P}/x`, latency(5_000, json({ from: "p" }), { clock }));
      const q = upstream("POST", `${Q}/x`, json({ from: "q" }));
      server.use(p.handler, q.handler);
      const layer = createResilience({
        clock,
        retry: { idempotencyKey: keyed },
        fallback: chain(P, Q, 500),
      });
      const res = await clock.run(layer.fetch(`${P}/x`, { method: "POST", body: "{}" }));
      results.push(`${await res.text()} at ${clock.now()} q=${q.count()}`);
    }
    expect(results).toEqual(['{"from":"p"} at 5000 q=0', '{"from":"q"} at 500 q=1']);
  });
});

// ---------------------------------------------------------------------------

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const answer =
  (code: number, body = "x", headers: Record<string, string> = {}): Handler =>
  (h) => {
    h.res.writeHead(code, headers);
    h.res.end(body);
  };

describe("docs/health-and-events.md and docs/retry.md: redirects the layer followed", () => {
  /** A: /start?… and /v1/… 307 to B /end; B: /end 503, /v1/… 200. */
  function wire() {
    A.on((h) =>
      h.path.startsWith("/start") || h.path.startsWith("/v1")
        ? answer(307, "", { location: `${B.base}/end?t=1` })(h)
        : answer(404)(h),
    );
    B.on((h) => (h.path.startsWith("/end") ? answer(503)(h) : answer(200, "spare")(h)));
  }

  it("held: a retry event after followed hops names where the attempt began, its query cut: plain, Request, ky, chain", async () => {
    wire();
    const seen: Record<string, unknown> = {};
    for (const path of ["plain", "request", "ky", "chain"] as const) {
      const layer = createResilience({
        retry: { maxAttempts: 2, ...fast },
        ...(path === "chain"
          ? {
              fallback: chain(`${A.base}/v1`, `${B.base}/v1`),
            }
          : {}),
      });
      const events = recordEvents(layer);
      const url = path === "chain" ? `${A.base}/v1/x?key=sk-1` : `${A.base}/start?key=sk-1`;
      const call =
        path === "ky"
          ? createClient({ resilience: layer }).get(url, { throwHttpErrors: false })
          : layer.fetch(path === "request" ? new Request(url) : url);
      const res = await call;
      await res.body?.cancel();
      seen[path] = {
        status: res.status,
        retries: events.of("retry").map((e) => e.url),
        redirects: events.of("redirect").length,
      };
    }
    const began = { status: 503, retries: [`${A.base}/start`], redirects: 2 };
    expect(seen).toEqual({
      plain: began,
      request: began,
      ky: began,
      chain: { status: 200, retries: [`${A.base}/v1/x`], redirects: 2 },
    });
  });

  it("held: the final status counts against the first host's breaker, for hops the library follows", async () => {
    wire();
    const layer = createResilience({ retry: false, breaker: { failureThreshold: 2 } });
    for (let i = 0; i < 2; i++) await (await layer.fetch(`${A.base}/start`)).body?.cancel();
    const breakers = layer.health().breakers as Record<string, { state: string }>;
    expect(breakers[A.host]?.state).toBe("open");
    const before = A.hits.length;
    const error = await rejection(layer.fetch(`${A.base}/start`));
    expect((error as Error).name).toBe("CircuitOpenError");
    expect(A.hits.length).toBe(before);
  });
});

describe("docs/health-and-events.md: an event a listener sets off is heard out at once", () => {
  it("held: a breaker listener's reset() nests its event: the listeners after it hear the later event first", async () => {
    const layer = createResilience({ retry: false });
    const named = layer.breaker("upscaler", { failureThreshold: 1 });
    const first: string[] = [];
    const second: string[] = [];
    layer.on("breaker", (e) => {
      first.push(`${e.from}>${e.to}`);
      if (e.to === "open") layer.breaker("upscaler").reset();
    });
    layer.on("breaker", (e) => second.push(`${e.from}>${e.to}`));
    await rejection(
      named.execute(async () => {
        throw new Error("down");
      }),
    );
    expect(first).toEqual(["closed>open", "open>closed"]);
    expect(second).toEqual(["open>closed", "closed>open"]);
    // The last event the second heard is not the state now: health() is.
    expect(named.state).toBe("closed");
  });
});

describe("docs/breakers.md: a store's configure that throws", () => {
  const store = (thrown: unknown) => ({
    name: "mine",
    publish() {},
    peek: () => undefined,
    configure() {
      throw thrown;
    },
  });

  it("held: createResilience, and createClient through it, throw that error as it is; with breaker: false nothing is asked", () => {
    const mine = new RangeError("store down");
    const caught = (make: () => unknown) => {
      try {
        make();
      } catch (error) {
        return error;
      }
      return "made";
    };
    expect(caught(() => createResilience({ store: store(mine) }))).toBe(mine);
    expect(caught(() => createClient({ resilience: { store: store(mine) } }))).toBe(mine);
    // Not even an Error: still as it is.
    expect(caught(() => createResilience({ store: store("text") }))).toBe("text");
    expect(caught(() => createResilience({ store: store(mine), breaker: false }))).toBe("made");
  });
});

describe("docs/fallback.md: an endpoint that ended before the caller aborted stays counted", () => {
  it("held: p failed, a fallback listener aborts the call for it: p counts as failed, q (in flight) not at all", async () => {
    A.on(answer(503));
    B.on(() => {}); // hangs: q is what the call waits on when it is aborted
    for (const [hedge, later] of [
      [false, false],
      [false, true],
      [true, true],
    ]) {
      const layer = createResilience({
        retry: false,
        fallback: chain(`${A.base}/v1`, `${B.base}/v1`, hedge ? 5_000 : undefined),
      });
      const stop = new AbortController();
      const abort = () => stop.abort(new Error("caller gave up"));
      layer.on("fallback", () => (later ? setTimeout(abort, 5) : abort()));
      const error = await rejection(layer.fetch(`${A.base}/v1/x`, { signal: stop.signal }));
      expect((error as Error).message).toBe("caller gave up");
      const stats = layer.fallback?.chain("c").statistics();
      const byName = Object.fromEntries(
        Object.entries(stats?.fallbacks ?? {}).map(([k, v]) => [k, [v.calls, v.successes]]),
      );
      expect(byName, `hedge ${hedge} later ${later}`).toMatchObject({ p: [1, 0] });
      expect(byName.q?.[0] ?? 0, `hedge ${hedge} later ${later}`).toBe(0);
    }
  });
});

describe("docs/recipes.md and docs/fallback.md: a hedged chain and a POST's key, on real servers", () => {
  it("held: a keyless POST starts no hedge (plain and ky); with retry.idempotencyKey the spare is hedged in", async () => {
    const rows: string[] = [];
    for (const keyed of [false, true]) {
      for (const way of ["plain", "ky"] as const) {
        A.reset();
        B.reset();
        A.on((h) => setTimeout(() => answer(200, "p")(h), 150));
        B.on(answer(200, "q"));
        const layer = createResilience({
          retry: { idempotencyKey: keyed },
          fallback: chain(`${A.base}/v1`, `${B.base}/v1`, 20),
        });
        const url = `${A.base}/v1/jobs`;
        const res =
          way === "ky"
            ? await createClient({ resilience: layer }).post(url, { json: { prompt: "x" } })
            : await layer.fetch(url, { method: "POST", body: "{}" });
        rows.push(`${keyed ? "keyed" : "keyless"} ${way}: ${await res.text()} q=${B.hits.length}`);
      }
    }
    expect(rows).toEqual(["keyless plain: p q=0", "keyless ky: p q=0", "keyed plain: q q=1", "keyed ky: q q=1"]);
  });
});
