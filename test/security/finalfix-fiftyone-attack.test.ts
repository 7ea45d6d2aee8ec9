/**
 * Outside-in attack on the newest fixes on main (CHANGELOG.md "### Fixed", top two entries; `git log` b9058b8,
 * f7a5960): (a) in a page every string URL is resolved with the URL parser against the page's base once, when the
 * call is made; (b) `plainCopy` (createClient/ky options, chains, degradation, `resilientProxy`) keeps an object
 * with `addEventListener` as it is; (c) a breaker's `toJSON()` and `debugInfo().recentErrors` are copies; (d) ky
 * `createClient({ signal })`, `extend({ signal })` and `create({ signal })` get a platform signal that follows a
 * polyfill's.
 *
 * Docs:
 * - docs/browsers-and-cors.md: "A relative URL … is read where fetch reads it … its host's breaker, the events and
 *   the CORS hint are those of the origin the browser sends it to. It is read once, when the call is made … and a
 *   `fetch` of your own given as the option gets the absolute URL." CHANGELOG: "every URL is now resolved against
 *   the base when there is one".
 * - docs/options.md: "`createResilience`, `fallback([…])`, `degradation({…})`, the ky client and `resilientProxy`
 *   check their options when they are made and keep what they read then, so an edit to your objects afterwards
 *   changes nothing (plain objects and arrays are copied; functions, clocks, schemas and other objects are kept as
 *   given)." src/ky/index.ts: "Kept as read now: ky keeps a plain `searchParams` or `json` by reference."
 * - src/policies/circuit-breaker.ts `toJSON` JSDoc: "Plain serialisable state … a copy (editing it moves no
 *   breaker)". CHANGELOG: "`debugInfo().recentErrors` … and a breaker's `toJSON()` … Both are copies now."
 *   docs/health-and-events.md: "`debugInfo()` adds … the last 50 failures (URLs without their query string …)".
 * - docs/retry.md: "(a `createClient` call's `signal` too, before ky joins it to its timeout with
 *   `AbortSignal.any`, which never hears a polyfill's abort)"; CHANGELOG: "ky gets a platform signal for the
 *   instance, `extend` and `create` too".
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `createClient` (./ky),
 * `CircuitBreaker` (./policies), `TestClock`, `recordEvents` (./testing), `memoryStore` (root). Two node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts). A fake page in Node (`globalThis.document = { baseURI }`,
 * `globalThis.location`), as test/security/late-thirtytwo-attack.test.ts does, with a transport that records what
 * the layer handed it.
 *
 * Paths: plain call (absolute URLs written oddly, `data:`), `Request` input, fallback chain (prefix selection,
 * absolute and relative), ky client (instance `json`; instance, `extend` object and function
 * form, `create` signals; a signal aborted before the call), named breaker, `CircuitBreaker`, `memoryStore`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-first session, so plain
 * `it`):
 * 1. docs/options.md "an edit to your objects afterwards changes nothing (plain objects and arrays are copied …)"
 *    with the ky client's own comment "Kept as read now: ky keeps a plain `searchParams` or `json` by reference".
 *    Observed: an instance-wide `json` that is a plain object literal which happens to carry an
 *    `addEventListener` method (an observable model written as a literal) is kept by reference: edited after
 *    `createClient`, the next call sends the edited body. Source: src/core/plain-copy.ts `plainCopy` returns any
 *    object with a function `addEventListener` as it is, at any depth, not only where a signal is read.
 *
 * Held (plain `it`):
 * - Fake page: absolute URLs written with leading/trailing spaces, upper-case scheme and host, `.`/`..` segments,
 *   a space in path and query, backslashes: the transport gets the parser's href on every attempt; the server gets
 *   the same path; the breaker key is the host, the same as in Node without a page; events and
 *   `getResilienceInfo(res).endpoint` name the host; the event URL has no query. A `Request` input reaches the
 *   transport as the same `Request`. A `data:` URL is handed on as the parser writes it.
 * - A chain selected by its prefix from an oddly written absolute URL and from a relative one, in the page: both
 *   fall back to the spare with the same path.
 * - `toJSON()` of a named breaker and of a `CircuitBreaker` is a copy: `state = "closed"` on it leaves the circuit
 *   open; `debugInfo().recentErrors` records edited change no later read; `health()` and `debugInfo()` survive a
 *   JSON round trip unchanged.
 * - ky: a polyfill's signal given to `extend({ signal })`, to `extend(() => ({ signal }))` and to
 *   `create({ signal })`, aborted during the backoff, ends the call with its reason, nothing more sent; one aborted
 *   before the call rejects with its reason and sends nothing.
 *
 * Docs-silent (not pinned):
 * - `CircuitBreaker`'s `onChange(change, snapshot)` gets the breaker's live state (and the layer's store `publish`
 *   gets the same object): a hook or a store of one's own that edits it (`snapshot.state = "closed"`, a compacting
 *   store that deletes fields) moves the breaker unheard, the defect `toJSON()` was just fixed for. `initial` is
 *   kept by reference too until the first transition.
 * - In a page an absolute URL reaches a `fetch` of one's own normalised (`HTTP://H/a b` → `http://h/a%20b`),
 *   in Node as written: a stub transport comparing `String(input)` to the text it was given matches in Node and
 *   not in a page (or the reverse).
 */
import { afterEach, describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type FetchLike, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker } from "../../src/policies/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 2));
}

const busy = (hit: Hit): void => {
  hit.res.writeHead(503, { "content-type": "text/plain" }).end("busy");
};
const busyOnce = (hit: Hit): void => {
  if (hit.n === 1) busy(hit);
  else hit.res.end("ok");
};

// ---------------------------------------------------------------------------
// A fake page.

type Scope = { document?: { baseURI: unknown }; location?: { href: string; origin: string } };
const scope = globalThis as Scope;

function page(href: string): void {
  const url = new URL(href);
  scope.location = { href: url.href, origin: url.origin };
  scope.document = { baseURI: url.href };
}

afterEach(() => {
  delete scope.document;
  delete scope.location;
  A.reset();
  B.reset();
});

function recording() {
  const seen: unknown[] = [];
  const transport: FetchLike = (input, init) => {
    seen.push(input instanceof Request ? input : String(input));
    const base = scope.document?.baseURI;
    return fetch(input instanceof Request ? input : new URL(String(input), base as string | undefined), init);
  };
  return { seen, transport };
}

type Options = Omit<ResilienceOptions, "clock" | "fetch">;

function layerOf(options: Options = {}) {
  const clock = new TestClock(0);
  const { seen, transport } = recording();
  const layer = createResilience({
    retry: { maxAttempts: 2, initialDelay: 100, jitter: "none" },
    ...options,
    clock,
    fetch: transport,
  });
  return { clock, layer, seen, recorder: recordEvents(layer) };
}

describe("(a) absolute URLs in a page, resolved by the URL parser once", () => {
  it("held: oddly written absolute URLs reach the transport as the parser's href, keyed as in Node", async () => {
    const forms = (port: number): Array<[string, string, string]> => [
      [
        `  HTTP://127.0.0.1:${port}/A b/./c/../D?q=x y#f `,
        `http://127.0.0.1:${port}/A%20b/D?q=x%20y#f`,
        "/A%20b/D?q=x%20y",
      ],
      [`http:\\\\127.0.0.1:${port}\\back\\slash`, `http://127.0.0.1:${port}/back/slash`, "/back/slash"],
      [`hTtP://127.0.0.1:${port}/%7Euser/%2e%2e/x`, `http://127.0.0.1:${port}/x`, "/x"],
    ];
    for (const [given, href, path] of forms(A.port)) {
      A.reset();
      A.on(busyOnce);
      page(`${B.base}/app/page`);
      const { clock, layer, seen, recorder } = layerOf();
      const response = await clock.run(layer.fetch(given));
      expect([given, response.status]).toEqual([given, 200]);
      await response.text();
      expect([given, seen]).toEqual([given, [href, href]]);
      expect(A.hits.map((h) => h.path)).toEqual([path, path]);
      expect(Object.keys(layer.health().breakers)).toEqual([A.host]);
      expect(getResilienceInfo(response)?.endpoint).toBe(A.host);
      const retryUrl = recorder.of("retry")[0]?.url ?? "";
      expect(retryUrl).not.toContain("?");
      expect(retryUrl.startsWith(`http://127.0.0.1:${A.port}/`)).toBe(true);
      // The same key in Node, without a page.
      delete scope.document;
      delete scope.location;
      A.reset();
      const node = layerOf();
      const again = await node.clock.run(node.layer.fetch(given));
      await again.text();
      expect(Object.keys(node.layer.health().breakers)).toEqual([A.host]);
    }
  });

  it("held: a Request input reaches the transport as that Request", async () => {
    page(`${B.base}/app/`);
    const { clock, layer, seen } = layerOf();
    const request = new Request(`${A.base}/req?x=1`);
    const response = await clock.run(layer.fetch(request));
    await response.text();
    expect(seen).toHaveLength(1);
    expect((seen[0] as Request).url).toBe(`${A.base}/req?x=1`);
    expect(A.hits.map((h) => h.path)).toEqual(["/req?x=1"]);
  });

  it("held: a data: URL is handed on as the parser writes it", async () => {
    page(`${A.base}/app/`);
    const seen: string[] = [];
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      fetch: (input) => {
        seen.push(String(input));
        return Promise.resolve(new Response("d"));
      },
    });
    const outcome = await clock.run(
      layer.fetch("data:text/plain,hello world").then(
        (r) => r.status,
        (e: unknown) => (e as Error).name,
      ),
    );
    expect(seen).toEqual(outcome === 200 ? [new URL("data:text/plain,hello world").href] : []);
  });

  it("held: a chain is selected by prefix from an oddly written absolute URL and from a relative one", async () => {
    A.on(busy);
    page(`${A.base}/app/page`);
    for (const given of [`HTTP://127.0.0.1:${A.port}/v1/../v1/jobs?s=1`, "/v1/jobs?s=1"]) {
      A.reset();
      A.on(busy);
      B.reset();
      const { clock, layer } = layerOf({
        retry: { maxAttempts: 1 },
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "first", url: `${A.base}/v1` },
              { name: "spare", url: `${B.base}/v1` },
            ],
          },
        ]),
      });
      const response = await clock.run(layer.fetch(given));
      expect([given, response.status, await response.text()]).toEqual([given, 200, "ok"]);
      expect(getResilienceInfo(response)?.endpoint).toBe("spare");
      expect(B.hits.map((h) => h.path)).toEqual(["/v1/jobs?s=1"]);
    }
  });
});

// ---------------------------------------------------------------------------

describe("(b) plainCopy keeps objects with addEventListener", () => {
  it("defect 1: an instance json that is a plain literal with addEventListener, edited afterwards, is sent as read then", async () => {
    const payload = { prompt: "cat", addEventListener() {} };
    const clock = new TestClock(0);
    const api = createClient({
      json: payload,
      resilience: { clock, retry: { maxAttempts: 1 } },
    });
    payload.prompt = "dog";
    await api.post(`${A.base}/j`).text();
    // Observed: {"prompt":"dog"}.
    expect(A.hits.map((h) => h.body)).toEqual(['{"prompt":"cat"}']);
  });

  it("held (control): the same literal without addEventListener is copied", async () => {
    const payload = { prompt: "cat" };
    const clock = new TestClock(0);
    const api = createClient({ json: payload, resilience: { clock, retry: { maxAttempts: 1 } } });
    payload.prompt = "dog";
    await api.post(`${A.base}/j`).text();
    expect(A.hits.map((h) => h.body)).toEqual(['{"prompt":"cat"}']);
  });
});

// ---------------------------------------------------------------------------

describe("(c) toJSON() and recentErrors are copies; health() and debugInfo() plain JSON", () => {
  it("held: editing a named breaker's toJSON() leaves it open; a CircuitBreaker's too", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({ clock });
    const breaker = layer.breaker("up", { failureThreshold: 1 });
    await breaker.execute(() => Promise.reject(new Error("down"))).catch(() => {});
    expect(breaker.state).toBe("open");
    const snap = breaker.toJSON();
    snap.state = "closed";
    snap.openUntil = null;
    expect(breaker.state).toBe("open");
    let ran = false;
    await breaker
      .execute(async () => {
        ran = true;
      })
      .catch(() => {});
    expect(ran).toBe(false);

    const cb = new CircuitBreaker(
      "work",
      {
        failureThreshold: 1,
        successThreshold: 1,
        timeout: 1_000,
        halfOpenMaxCalls: 1,
        timeWindow: 30_000,
        probeTimeout: 30_000,
        failureRate: 0.5,
        minimumCalls: 100,
      },
      clock,
    );
    await cb.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    const s = cb.toJSON();
    s.state = "closed";
    s.failures.push(1);
    expect(cb.state).toBe("open");
    expect(cb.toJSON().failures).not.toContain(1);
  });

  it("held: recentErrors records edited change no later read; health() and debugInfo() survive JSON", async () => {
    A.on(busy);
    const { clock, layer } = layerOf({ retry: { maxAttempts: 1 } });
    const response = await clock.run(layer.fetch(`${A.base}/e?token=s3cret`));
    await response.text();
    const first = layer.debugInfo().recentErrors;
    expect(first.length).toBeGreaterThan(0);
    const before = JSON.stringify(first);
    (first[0] as unknown as Record<string, unknown>).url = "edited";
    first.length = 0;
    expect(JSON.stringify(layer.debugInfo().recentErrors)).toBe(before);
    expect(before).not.toContain("s3cret");
    const health = layer.health();
    expect(JSON.parse(JSON.stringify(health))).toEqual(health);
    const debug = layer.debugInfo();
    expect(JSON.parse(JSON.stringify(debug.recentErrors))).toEqual(debug.recentErrors);
  });
});

// ---------------------------------------------------------------------------

function abortable() {
  const listeners = new Set<(event: unknown) => void>();
  let aborted = false;
  let reason: unknown;
  const self = {
    get aborted() {
      return aborted;
    },
    get reason() {
      return reason;
    },
    addEventListener(_type: string, listener: (event: unknown) => void) {
      listeners.add(listener);
    },
    removeEventListener(_type: string, listener: (event: unknown) => void) {
      listeners.delete(listener);
    },
    abort(why: unknown) {
      aborted = true;
      reason = why;
      for (const listener of [...listeners]) {
        listeners.delete(listener);
        listener.call(self, { type: "abort", target: self });
      }
    },
  };
  return self;
}

type Api = ReturnType<typeof createClient>;

describe("(d) ky: instance, extend and create signals of a polyfill", () => {
  const ways: Array<[string, (api: Api, signal: AbortSignal) => Api]> = [
    ["extend({ signal })", (api, signal) => api.extend({ signal })],
    ["extend(() => ({ signal }))", (api, signal) => api.extend(() => ({ signal }))],
    ["create({ signal })", (api, signal) => api.create({ signal })],
  ];
  for (const [label, make] of ways) {
    it(`held: ${label} aborted during the backoff ends the call with its reason`, async () => {
      A.on(busy);
      const clock = new TestClock(0);
      const base = createClient({
        resilience: { clock, retry: { maxAttempts: 3, initialDelay: 5000, jitter: "none" } },
      });
      const signal = abortable();
      const api = make(base, signal as unknown as AbortSignal);
      let outcome: unknown = "pending";
      const call = api
        .get(`${A.base}/k`)
        .text()
        .then(
          () => {
            outcome = "resolved";
          },
          (error: unknown) => {
            outcome = error;
          },
        );
      await A.nth(1);
      await clock.waitForTimers(1);
      const reason = new Error("shutdown");
      signal.abort(reason);
      await turns();
      const atAbort = outcome;
      await clock.advance(20_000);
      await call;
      expect(atAbort).toBe(reason);
      expect(A.hits).toHaveLength(1);
    });
  }

  it("held: a polyfill signal aborted before the call (createClient, extend) rejects with its reason, nothing sent", async () => {
    const clock = new TestClock(0);
    const reason = new Error("already");
    const signal = abortable();
    signal.abort(reason);
    const api = createClient({ signal: signal as unknown as AbortSignal, resilience: { clock } });
    const error = await api
      .get(`${A.base}/pre`)
      .text()
      .then(
        () => "resolved",
        (e: unknown) => e,
      );
    expect(error).toBe(reason);
    const other = createClient({ resilience: { clock } }).extend({ signal: signal as unknown as AbortSignal });
    const error2 = await other
      .get(`${A.base}/pre`)
      .text()
      .then(
        () => "resolved",
        (e: unknown) => e,
      );
    expect(error2).toBe(reason);
    expect(A.hits).toHaveLength(0);
  });
});

// Added with the fix of the docs-silent `onChange` finding (fifty-first session): the hook's snapshot and the
// `initial` state given are copies too, as `toJSON()` is.
describe("onChange's snapshot and `initial` are copies", () => {
  const policy = {
    failureThreshold: 1,
    successThreshold: 1,
    timeout: 1_000,
    halfOpenMaxCalls: 1,
    timeWindow: 30_000,
    probeTimeout: 30_000,
    failureRate: 0.5,
    minimumCalls: 100,
  };

  it("editing the snapshot onChange got moves no breaker", async () => {
    const clock = new TestClock(0);
    const cb = new CircuitBreaker("work", policy, clock, {
      onChange: (_change, snapshot) => {
        (snapshot as { state: string }).state = "closed";
      },
    });
    await cb.execute(() => Promise.reject(new Error("down"))).catch(() => {});
    expect(cb.state).toBe("open");
    let runs = 0;
    await cb.execute(() => runs++).catch(() => {});
    expect(runs).toBe(0);
  });

  it("editing the `initial` state given moves no breaker", async () => {
    const clock = new TestClock(0);
    const seed = new CircuitBreaker("seed", policy, clock);
    await seed.execute(() => Promise.reject(new Error("down"))).catch(() => {});
    const initial = seed.toJSON();
    const cb = new CircuitBreaker("work", policy, clock, { initial });
    (initial as { state: string }).state = "closed";
    expect(cb.state).toBe("open");
  });
});
