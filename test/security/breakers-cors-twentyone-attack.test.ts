/**
 * Outside-in attack on docs/breakers.md (the two trip rules at their edges, named breakers and their events,
 * bulkheads and their queue) and docs/browsers-and-cors.md (which headers the CORS hint names), driven on paths
 * earlier attack files did not take: a `Blob` request body whose type fetch turns into a `content-type` header, a
 * hedge whose spare waits in a full bulkhead queue when the primary wins, a chain endpoint cut by `timeout.total`,
 * the ky client against an open breaker, a full bulkhead with slow retries, the rate rule's 50% boundary and its
 * window's edge. How: public entries only (root, `./fallback`, `./ky`, `./testing`'s TestClock); `hostFetch` and
 * hand-written stub transports; the page is modelled in Node by stubbing `document` and `location` (what
 * `resilience.fetch` reads to decide it runs in a page); time moves only on the TestClock.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the hint counts the `content-type` fetch takes from a `Blob` body):
 * 1. docs/browsers-and-cors.md: "the error's message ends with a hint that CORS is the likely cause, naming the
 *    request headers the preflight must allow (every one sent but `accept`, `accept-language`,
 *    `content-language`, `content-type` and `range` with safelisted values, as above)". A cross-origin POST
 *    whose body is a `Blob` of type `application/json` goes out with `content-type: application/json` (fetch
 *    derives it from the Blob, as the Fetch standard's `Request` constructor does; the stub transport records
 *    it), which is not safelisted and needs the preflight's permission; the hint names no request header at
 *    all ("must allow the origin https://app.example in its preflight"). The hint is built from the call's
 *    own headers (`copyHeaders(request.headers)` in src/http/resilient-fetch.ts), not from what fetch sends.
 *    The same body in a `Request` input is named (its headers carry the derived type).
 *
 * Held (plain `it`):
 * - the hint for a `Request` input with the same Blob body names `content-type`;
 * - a hedge's spare queued in its host's full bulkhead leaves the queue when the primary wins (health() `queued`
 *   0) and is never sent once the slot frees;
 * - a chain endpoint cut by `timeout.total` counts nothing against its host (closed, 0 failures; the spare never
 *   got a breaker);
 * - the ky client against an open breaker rejects with `CircuitOpenError`, nothing sent;
 * - a full bulkhead (`maxQueue` 0) rejects the next call with `BulkheadRejectedError` before any backoff, even
 *   with a 1 s retry delay;
 * - the rate rule: 50 failures then 50 successes stay closed and open at the next failure; exactly 50% of 100
 *   opens at the 100th; 100 attempts 29,999 ms apart count together, 50 successes 30 s old do not;
 * - a named breaker whose name is a URL keeps its query in its `breaker` events, `health()` and its
 *   `CircuitOpenError`; `reset()` of an open one emits `open` → `closed`, reason "reset".
 *
 * Not pinned: the rate window drops attempts up to one bucket (3 s of 30 s) early when the first outcome did not
 * fall on a bucket's start; docs/options.md names the window "rolling window of the failure rate (10 buckets)",
 * so the approximation is documented.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { header, hostFetch, status } from "../helpers/host-fetch.ts";
import { FAST, outcome } from "../helpers/platform-layer.ts";

/** Lets pending promise steps and the stub transports' own steps run (one real macrotask, no sleep). */
/** A page at https://app.example, as `resilience.fetch` tells one (`document` defined, `location.origin`). */
function inPage(): void {
  vi.stubGlobal("document", {});
  vi.stubGlobal("location", { origin: "https://app.example", href: "https://app.example/" });
}

/** The header names a CORS hint asks the preflight to allow, or `undefined` when it names none. */
const namedHeaders = (error: unknown): string | undefined =>
  /and the request headers (.*?) in its preflight/.exec((error as Error).message)?.[1];

describe("docs/browsers-and-cors.md: the headers the hint names", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  const jsonBlob = () => new Blob(['{"prompt":"x"}'], { type: "application/json" });

  it("a Blob body's derived content-type (application/json, not safelisted) is named in the hint", async () => {
    // docs/browsers-and-cors.md: "naming the request headers the preflight must allow (every one sent but
    // `accept`, … `content-type` … with safelisted values)". Observed: fetch sends `content-type:
    // application/json` (recorded below), the hint names no header at all.
    inPage();
    const t = hostFetch({});
    const failing = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      await t.fetch(input, init).catch(() => undefined);
      throw new TypeError("Failed to fetch");
    };
    const layer = createResilience({ retry: FAST, fetch: failing });
    const error = await layer.fetch("https://api.example/v1/images", { method: "POST", body: jsonBlob() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(header(t.log[0], "content-type")).toBe("application/json");
    expect((error as Error).name).toBe("RetryExhaustedError");
    expect((error as Error).message).toContain("probably refused by the browser's CORS rules");
    expect(namedHeaders(error)).toBe("content-type");
  });

  it("held: the same Blob body in a Request input: content-type is named", async () => {
    inPage();
    const layer = createResilience({
      retry: FAST,
      fetch: async () => {
        throw new TypeError("Failed to fetch");
      },
    });
    const request = new Request("https://api.example/v1/images", { method: "POST", body: jsonBlob() });
    const error = await layer.fetch(request).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as Error).name).toBe("RetryExhaustedError");
    expect(namedHeaders(error)).toBe("content-type");
  });
});

describe("docs/breakers.md: bulkheads on a hedge, a full queue, a chain under timeout.total, the ky client", () => {
  it("held: a hedge's spare queued in a full bulkhead leaves the queue when the primary wins, and is never sent", async () => {
    const clock = new TestClock();
    const sent: string[] = [];
    const answer: Record<string, (r: Response) => void> = {};
    const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      const url = new Request(input, init).url;
      sent.push(url);
      return new Promise((resolve) => {
        answer[url] = resolve;
      });
    };
    const layer = createResilience({
      clock,
      fetch,
      retry: false,
      bulkhead: { maxConcurrent: 1, maxQueue: 2 },
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 100 },
          endpoints: [
            { name: "p", url: "https://p.example/v" },
            { name: "s", url: "https://s.example/v" },
          ],
        },
      ]),
    });
    const direct = outcome(layer.fetch("https://s.example/direct"));
    await flush();
    const call = outcome(layer.fetch("https://p.example/v"));
    await flush();
    await clock.advance(100);
    await flush();
    expect(layer.health().breakers["s.example"]?.queued).toBe(1);
    answer["https://p.example/v"]?.(new Response("primary"));
    expect(await call).toBe("200 primary");
    expect(layer.health().breakers["s.example"]?.queued).toBe(0);
    answer["https://s.example/direct"]?.(new Response("direct"));
    expect(await direct).toBe("200 direct");
    await flush();
    expect(sent).toEqual(["https://s.example/direct", "https://p.example/v"]);
    expect(layer.health().breakers["s.example"]?.active).toBe(0);
  });

  it("held: a full bulkhead rejects at once with BulkheadRejectedError, before any backoff", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { initialDelay: 1000, jitter: "none" },
      bulkhead: { maxConcurrent: 1 },
      fetch: () => new Promise<Response>(() => {}),
    });
    void layer.fetch("https://a.example/1");
    let settled = "pending";
    layer.fetch("https://a.example/2").then(
      () => {
        settled = "response";
      },
      (e: unknown) => {
        settled = (e as Error).name;
      },
    );
    await flush();
    expect(settled).toBe("BulkheadRejectedError");
  });

  it("held: a chain endpoint cut by timeout.total counts nothing against its host", async () => {
    const clock = new TestClock();
    const fetch = (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)));
    const layer = createResilience({
      clock,
      fetch,
      retry: false,
      breaker: { failureThreshold: 1 },
      timeout: { total: 1000 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://p.example/v" },
            { name: "s", url: "https://s.example/v" },
          ],
        },
      ]),
    });
    const call = outcome(layer.fetch("https://p.example/v"));
    await flush();
    await clock.advance(1000);
    expect(await call).toBe("TimeoutError");
    const p = layer.health().breakers["p.example"];
    expect([p?.state, p?.failureCount, p?.consecutiveFailures]).toEqual(["closed", 0, 0]);
    expect(layer.health().breakers["s.example"]).toBeUndefined();
  });

  it("held: the ky client meets an open breaker with CircuitOpenError, nothing sent", async () => {
    const t = hostFetch({ "a.example": status(503) });
    const layer = createResilience({
      clock: new TestClock(),
      fetch: t.fetch,
      retry: false,
      breaker: { failureThreshold: 1 },
    });
    const api = createClient({ resilience: layer });
    const first = await api.get("https://a.example/x").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((first as Error).name).toBe("HTTPError");
    const second = await api.get("https://a.example/x").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((second as Error).name).toBe("CircuitOpenError");
    expect(t.log.length).toBe(1);
  });
});

describe("docs/breakers.md: the rate rule at its edges, named breakers", () => {
  const failing = () => {
    throw new Error("boom");
  };

  it("held: 50 failures then 50 successes open at the next failure; exactly 50% of 100 opens at the 100th", async () => {
    const layer = createResilience({ clock: new TestClock() });
    const a = layer.breaker("a", { failureThreshold: 1000 });
    for (let i = 0; i < 50; i++) await a.execute(failing).catch(() => undefined);
    for (let i = 0; i < 50; i++) await a.execute(() => 1);
    expect(a.state).toBe("closed");
    await a.execute(failing).catch(() => undefined);
    expect(a.state).toBe("open");
    const b = layer.breaker("b", { failureThreshold: 1000 });
    for (let i = 0; i < 50; i++) await b.execute(() => 1);
    for (let i = 0; i < 49; i++) await b.execute(failing).catch(() => undefined);
    expect(b.state).toBe("closed");
    await b.execute(failing).catch(() => undefined);
    expect(b.state).toBe("open");
  });

  it("held: attempts 29,999 ms apart count in one window; 30 s old ones do not", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock });
    const d = layer.breaker("d", { failureThreshold: 1000 });
    const e = layer.breaker("e", { failureThreshold: 1000 });
    for (let i = 0; i < 50; i++) await d.execute(() => 1);
    await clock.advance(29_999);
    for (let i = 0; i < 50; i++) await e.execute(() => 1);
    for (let i = 0; i < 50; i++) await d.execute(failing).catch(() => undefined);
    expect(d.state).toBe("open");
    await clock.advance(30_000);
    for (let i = 0; i < 50; i++) await e.execute(failing).catch(() => undefined);
    expect(e.state).toBe("closed");
  });

  it("held: a URL name keeps its query in events, health() and CircuitOpenError; reset() emits open → closed", async () => {
    const layer = createResilience({ clock: new TestClock() });
    const events: Array<{ key: string; from: string; to: string; reason: string | null }> = [];
    layer.on("breaker", (e) => events.push({ key: e.key, from: e.from, to: e.to, reason: e.reason }));
    const name = "https://api.example/x?token=abc";
    const breaker = layer.breaker(name, { failureThreshold: 1 });
    await breaker.execute(failing).catch(() => undefined);
    const refused = await layer
      .execute(() => 1, { breaker: name })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((refused as Error).name).toBe("CircuitOpenError");
    expect((refused as Error).message).toContain(`"${name}"`);
    expect(Object.keys(layer.health().breakers)).toEqual([name]);
    breaker.reset();
    expect(events).toEqual([
      { key: name, from: "closed", to: "open", reason: expect.stringContaining("1 failure in a row") },
      { key: name, from: "open", to: "closed", reason: "reset" },
    ]);
  });
});
