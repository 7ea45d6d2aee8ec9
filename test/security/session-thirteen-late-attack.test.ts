/**
 * Outside-in attack on the thirteenth session's late fixes: 1d8a7d7 (a
 * `Location` read as each runtime's follower reads it, identical ones are
 * one; a password holding spaces is cut from text), 023ad89 (one deadline
 * timer that no longer wakes during a backoff and is brought forward when an
 * attempt starts; the proxy, FallbackChain and retry(fn) check more
 * options), b801aed and deaf97d. Public entries only: `createResilience`,
 * `fallback`, `createClient` of ./ky, `resilientProxy`/`kvStore` of
 * ./cloudflare, `FallbackChain`/`retry` of ./policies, the redaction as
 * errors reach callers, a stub `fetch` or a server on 127.0.0.1, and the
 * `TestClock` (a wrapping clock steps its reading, as an NTP step would);
 * nothing sleeps for real.
 *
 * Defects pinned (first `it.fails` asserting the promise, on the code they
 * were written against; five fixed since and plain `it`, two written down
 * instead, as a limit in SECURITY.md and a sentence in docs/retry.md, their
 * tests now pinning what those say):
 * 1. A wall clock set back during a backoff makes `timeout.total` fire late
 *    (the attempt that starts re-arms the timer from the clock's reading).
 * 2. A wall clock moved ahead during a backoff makes the next attempt's
 *    timeout fire late (170 ms for a 100 ms timeout).
 * 3. A wall clock set back during a backoff makes the next attempt's
 *    timeout fire early (70 ms for a 100 ms timeout).
 * 4. A `timeout.total` past 2^31 - 1 ms fires at 2^31 - 1 ms (early).
 * 5. A spaced password written without slashes (`https:admin:hunter 2@host`,
 *    which the URL parser reads as userinfo) stays in an error's message.
 * 6. A port followed by punctuation (`http://127.0.0.1:3000, … ops@example.com`)
 *    is read as a spaced password: the message names another host.
 * 7. One `Location` header whose text holds ", " (`/q?x=a, /q?x=a`) is cut
 *    to its first half, where Node's own follower follows it whole.
 *
 * Held (plain `it`): attempt and total timeouts fire when due after a
 * backoff, a Retry-After wait, a bulkhead wait, in fallback and hedged
 * chains, over library redirects, through ky, with no timer left; tabs,
 * newlines, escaped `\/\/` JSON and other characters in spaced passwords
 * are cut; ports before a space are kept; 100 KB crafted texts run in well
 * under 100 ms; FallbackChain `{ order, clock }`, the proxy with every
 * option; union paths; retry(fn) maxAttempts up to 2^53 - 1; BOM, overlong
 * UTF-8 and surrogates in a `Location` read as Node's follower reads them.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain, retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/clock.ts";
import type { FakeKv } from "../cloudflare/fake-kv.ts";
import { attemptDurations, fixedBackoff, scriptedFetch, steppedClock } from "../helpers/scripted-fetch.ts";

describe("defects: a wall clock stepped during a call (docs/retry.md#timeouts)", () => {
  // docs/retry.md: "it counts time by its own timer, not by the wall clock: a clock set back
  // or moved ahead during a call (an NTP step, a resumed VM) moves neither."
  it("a clock set back 500 ms during a backoff: timeout.total (980 ms) still fires at 980 ms", async () => {
    const tc = new TestClock();
    const clock = steppedClock(tc);
    const log: string[] = [];
    const layer = createResilience({
      clock,
      breaker: false,
      budget: false,
      timeout: { attempt: 100, total: 980 },
      retry: fixedBackoff(150),
      fetch: scriptedFetch(tc, log, ["503"]),
    });
    const call = layer.fetch("https://a.example/x").catch((e: unknown) => e);
    // The timer woke at 100 with no attempt out and was armed for the deadline; the clock is then set back.
    await tc.advance(120);
    clock.step(-500);
    const error = (await tc.run(call)) as Error;
    // Today: the attempt that starts at 150 re-arms from the clock's reading, 50 ms of the
    // deadline are lost, and the call settles at 1000 with an attempt timeout, total never fired.
    expect([error.message, tc.now()]).toEqual(["total timeout of 980 ms exceeded", 980]);
  });

  it("a clock moved ahead 500 ms during a backoff: the next attempt still times out after 100 ms", async () => {
    const tc = new TestClock();
    const clock = steppedClock(tc);
    const log: string[] = [];
    const layer = createResilience({
      clock,
      breaker: false,
      budget: false,
      timeout: { attempt: 100, total: 1000 },
      retry: fixedBackoff(30, 2),
      fetch: scriptedFetch(tc, log, ["503"]),
    });
    const call = layer.fetch("https://a.example/x").catch((e: unknown) => e);
    await tc.advance(10);
    clock.step(500);
    await tc.run(call);
    // Today: started at 30, aborted at 200 (170 ms).
    expect(attemptDurations(log)).toEqual([100]);
  });

  it("a clock set back 500 ms during a backoff: the next attempt still times out after 100 ms", async () => {
    const tc = new TestClock();
    const clock = steppedClock(tc);
    const log: string[] = [];
    const layer = createResilience({
      clock,
      breaker: false,
      budget: false,
      timeout: { attempt: 100, total: 1000 },
      retry: fixedBackoff(30, 2),
      fetch: scriptedFetch(tc, log, ["503"]),
    });
    const call = layer.fetch("https://a.example/x").catch((e: unknown) => e);
    await tc.advance(10);
    clock.step(-500);
    await tc.run(call);
    // Today: started at 30, aborted at 100 (70 ms).
    expect(attemptDurations(log)).toEqual([100]);
  });
});

describe("defect: a timeout.total past 2^31 - 1 ms (docs/options.md: `timeout.total` ms for the whole call)", () => {
  it("timeout.total 3e9 ms fires at 3e9 ms, not at 2^31 - 1 ms", async () => {
    const tc = new TestClock();
    const log: string[] = [];
    const layer = createResilience({
      clock: tc,
      breaker: false,
      retry: false,
      timeout: { total: 3e9 },
      fetch: scriptedFetch(tc, log, ["hang"]),
    });
    const error = (await tc.run(layer.fetch("https://a.example/x").catch((e: unknown) => e))) as Error;
    expect(error.message).toBe("total timeout of 3000000000 ms exceeded");
    // Today: 2147483647, the clock's clamp read as the whole delay gone.
    expect(tc.now()).toBe(3e9);
  });
});

describe("held: timeouts fire when due on every path, no timer left", () => {
  const base = { breaker: false as const, budget: false as const, timeout: { attempt: 100, total: 1000 } };

  it("after backoffs longer than the attempt timeout: every attempt 100 ms, total at 1000", async () => {
    const tc = new TestClock();
    const log: string[] = [];
    const layer = createResilience({
      ...base,
      clock: tc,
      retry: fixedBackoff(150),
      fetch: scriptedFetch(tc, log, ["503"]),
    });
    const error = (await tc.run(layer.fetch("https://a.example/").catch((e: unknown) => e))) as Error;
    expect(attemptDurations(log)).toEqual([100, 100, 100]);
    expect(log.at(-1)).toBe("abort 4 @1000 total timeout of 1000 ms exceeded");
    expect([error.message, tc.pending()]).toEqual(["total timeout of 1000 ms exceeded", 0]);
  });

  it("an attempt that starts exactly when the timer wakes, and total at its time", async () => {
    const tc = new TestClock();
    const log: string[] = [];
    const layer = createResilience({
      ...base,
      clock: tc,
      retry: fixedBackoff(0),
      fetch: scriptedFetch(tc, log, ["503"]),
    });
    const error = (await tc.run(layer.fetch("https://a.example/").catch((e: unknown) => e))) as Error;
    expect(attemptDurations(log).every((d) => d === 100)).toBe(true);
    expect([error.message, tc.now(), tc.pending()]).toEqual(["total timeout of 1000 ms exceeded", 1000, 0]);
  });

  it("library redirects: the hops of one attempt share its 100 ms; total at 1000", async () => {
    const tc = new TestClock();
    const log: string[] = [];
    const layer = createResilience({
      ...base,
      redirects: "library",
      clock: tc,
      retry: fixedBackoff(150),
      fetch: scriptedFetch(tc, log, ["503", "302", "hang", "302"]),
    });
    const error = (await tc.run(layer.fetch("https://a.example/").catch((e: unknown) => e))) as Error;
    expect(log.filter((l) => l.startsWith("abort"))).toEqual([
      "abort 2 @250 attempt timeout of 100 ms exceeded",
      "abort 4 @500 attempt timeout of 100 ms exceeded",
      "abort 5 @750 attempt timeout of 100 ms exceeded",
      "abort 6 @1000 total timeout of 1000 ms exceeded",
    ]);
    expect([error.message, tc.pending()]).toEqual(["total timeout of 1000 ms exceeded", 0]);
  });

  it("a fallback chain: an endpoint after a failed one, after a backoff, each attempt 100 ms", async () => {
    const tc = new TestClock();
    const log: string[] = [];
    const layer = createResilience({
      ...base,
      clock: tc,
      retry: { maxAttempts: 2, initialDelay: 150, jitter: "none" },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example" },
            { name: "b", url: "https://b.example" },
            { name: "c", url: "https://c.example" },
          ],
        },
      ]),
      fetch: scriptedFetch(tc, log, ["503", "hang", "fail", "503", "hang"]),
    });
    await tc.run(layer.fetch("https://a.example/").catch((e: unknown) => e));
    expect(attemptDurations(log)).toEqual([100, 100, 100]);
    expect(tc.pending()).toBe(0);
  });

  it("a hedged chain: hedges and the attempts after them each time out after 100 ms", async () => {
    const tc = new TestClock();
    const log: string[] = [];
    const layer = createResilience({
      ...base,
      clock: tc,
      retry: { maxAttempts: 2, initialDelay: 150, jitter: "none" },
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 40 },
          endpoints: [
            { name: "a", url: "https://a.example" },
            { name: "b", url: "https://b.example" },
            { name: "c", url: "https://c.example" },
          ],
        },
      ]),
      fetch: scriptedFetch(tc, log, ["503"]),
    });
    await tc.run(layer.fetch("https://a.example/").catch((e: unknown) => e));
    const durations = attemptDurations(log);
    expect(durations.length).toBe(5);
    expect(durations.every((d) => d === 100)).toBe(true);
    expect(tc.pending()).toBe(0);
  });

  it("a bulkhead wait: the waiting call's attempt gets its full 100 ms", async () => {
    const tc = new TestClock();
    const log: string[] = [];
    const layer = createResilience({
      ...base,
      breaker: {},
      bulkhead: { maxConcurrent: 1, maxQueue: 5 },
      retry: false,
      clock: tc,
      fetch: scriptedFetch(tc, log, ["hang", "hang"]),
    });
    const one = layer.fetch("https://a.example/1").catch((e: unknown) => e);
    const two = layer.fetch("https://a.example/2").catch((e: unknown) => e);
    await tc.run(Promise.all([one, two]));
    expect(attemptDurations(log)).toEqual([100, 100]);
    expect(tc.pending()).toBe(0);
  });

  it("through ky: the same timings as the layer", async () => {
    const tc = new TestClock();
    const log: string[] = [];
    const layer = createResilience({
      ...base,
      clock: tc,
      retry: fixedBackoff(150),
      fetch: scriptedFetch(tc, log, ["503"]),
    });
    const api = createClient({ resilience: layer });
    await tc.run(api.get("https://a.example/").then(String, String));
    expect(attemptDurations(log)).toEqual([100, 100, 100]);
    expect(log.at(-1)).toBe("abort 4 @1000 total timeout of 1000 ms exceeded");
    expect(tc.pending()).toBe(0);
  });
});

/** An error's message as it reaches callers: thrown by the transport, through the layer. */
async function shown(text: string): Promise<string> {
  const layer = createResilience({
    retry: false,
    breaker: false,
    fetch: () => Promise.reject(new TypeError(text)),
  });
  const error = (await layer.fetch("https://a.example/").catch((e: unknown) => e)) as Error;
  return error.message.replace(/^gave up after 1 attempt to a\.example: /, "");
}

describe("defects: passwords with spaces in text (SECURITY.md)", () => {
  // Found here, then written down as a limit (SECURITY.md, Limits: "A password holding spaces,
  // written without `//`"): no runtime writes a URL so, and reading a run of words after every
  // bare `https:` would cost time on crafted text. Pinned so a change shows.
  it("`https:admin:hunter 2@host/` (no slashes) keeps its password, a documented limit; with `//` it goes", async () => {
    expect(new URL("https:admin:hunter 2@host/").password).toBe("hunter%202");
    expect(await shown("fetch failed for https:admin:hunter 2@host.example/v1")).toContain("hunter 2@");
    expect(await shown("fetch failed for https://admin:hunter 2@host.example/v1")).not.toContain("hunter");
  });

  // CHANGELOG (1d8a7d7): "after `//` and a `user:`, the userinfo is now cut up to its `@` over up
  // to 16 spaces (a port before a space is no password)"; src/core/redact-url.ts: "`host:8080 and
  // bob@x` is no userinfo". A port before a comma is no password either.
  it("`http://127.0.0.1:3000, retry or mail ops@example.com`: the host and port stay, no other host named", async () => {
    const message = await shown("connect ECONNREFUSED http://127.0.0.1:3000, retry or mail ops@example.com");
    // Today: "connect ECONNREFUSED http://example.com", a host the error never named.
    expect(message).toContain("127.0.0.1:3000");
  });
});

describe("held: the spaced-password cut", () => {
  it.each([
    ["x https://admin:hunter 2@host.example/", "x https://host.example/"],
    ["x https://admin:hunter 2!x@host.example/", "x https://host.example/"],
    ["x https://admin:hunter\t2@host.example/", "x https://host.example/"],
    ["x https://admin:hunter\n2@host.example/", "x https://host.example/"],
    ["x https://admin:hunter 2 @host.example/", "x https://host.example/"],
    ["x https://admin: hunter2@host.example/", "x https://host.example/"],
    ["x //admin:hunter 2@host.example/", "x //host.example/"],
    ['x {"u":"https:\\/\\/admin:hunter 2@host.example\\/"}', 'x {"u":"https:\\/\\/host.example\\/"}'],
    ["x https://admin:hunter 2@host.example:8080/", "x https://host.example:8080/"],
  ])("%j is cut", async (text, expected) => {
    expect(await shown(text)).toBe(expected);
  });

  it.each([
    "GET http://host.example:8080 failed; mail bob@x.example",
    "url http://localhost:3000 and admin@example.com",
    "Failed: https://example.com/a (reason: http://proxy:3128 refused, contact ops@example.com)",
    "error http://api.example/v1 : see docs@example",
  ])("ordinary text with a port before a space is kept: %j", async (text) => {
    expect(await shown(text)).toBe(text);
  });

  it("100 KB crafted texts take well under a second each (a quadratic pass takes many)", async () => {
    const texts = [
      `//a:${"b ".repeat(50_000)}@`,
      `//a:${"b ".repeat(20)}`.repeat(4_000),
      `https://x:${" ".repeat(100_000)}`,
      `${"//a:a:a: x".repeat(10_000)}`,
      "\\/\\/a:b c ".repeat(10_000),
      `http:a:${" b".repeat(50_000)}`,
      "//:0 ".repeat(20_000),
      `//a:b${" c".repeat(16)} `.repeat(3_000),
    ].map((text) => text.slice(0, 100_000));
    for (const text of texts) {
      const started = performance.now();
      await shown(text);
      expect(performance.now() - started).toBeLessThan(1_000);
    }
  });
});

describe("held: option checking", () => {
  it("FallbackChain takes { order, clock } with a TestClock or any clock, and refuses a misspelt option by name", () => {
    const clock = new TestClock();
    expect(new FallbackChain("x", { order: "adaptive", clock }).order).toBe("adaptive");
    expect(new FallbackChain("x", { clock: { now: () => 1, setTimer: () => () => {} } }).order).toBe("fixed");
    expect(new FallbackChain("x", { order: undefined, clock: undefined }).order).toBe("fixed");
    expect(() => new FallbackChain("x", { ordr: "fixed" } as never)).toThrow('FallbackChain: unknown option "ordr"');
    const secret = "https://a:pw@h.example/?key=SECRET";
    expect(() => new FallbackChain("x", { [secret]: 1 } as never)).toThrow(/^(?!.*(?:SECRET|pw)).*unknown option/);
    expect(() => new FallbackChain("x", { order: secret } as never)).toThrow(
      /^(?!.*(?:SECRET|pw)).*FallbackChain\.order/,
    );
  });

  it("the proxy takes every documented option; refuses a bad one naming its key or route, never quoting a secret", () => {
    const clock = new TestClock();
    const proxy = resilientProxy<{ KV: ReturnType<FakeKv["location"]> }>({
      routes: [
        {
          path: "/v1/video",
          chain: {
            name: "video",
            hedge: { delay: 10 },
            order: "adaptive",
            endpoints: [
              { name: "p", url: "https://p.example/v1" },
              { name: "s", url: "https://s.example/v2", headers: { authorization: "Bearer x" } },
            ],
          },
        },
        { path: "/v1/text", upstream: "https://text.example/v1" },
      ],
      store: (env) => kvStore(env.KV),
      healthPath: "/health",
      healthTokenVar: "TOKEN",
      resilience: { clock, retry: { maxAttempts: 2 }, timeout: { attempt: 1, total: 2 } },
    });
    expect(typeof proxy.fetch).toBe("function");
    const routes = [{ path: "/", upstream: "https://a.example" }];
    const secret = "https://u:pw@h.example/?key=SECRET";
    expect(() => resilientProxy({ routes, storre: 1 } as never)).toThrow('unknown option "storre"');
    expect(() => resilientProxy({ routes, healthPath: secret } as never)).toThrow(/^(?!.*(?:SECRET|pw)).*healthPath/);
    expect(() => resilientProxy({ routes, healthTokenVar: "" } as never)).toThrow(/healthTokenVar/);
    expect(() => resilientProxy({ routes, store: 1 } as never)).toThrow(/store/);
    const bad = [...routes, { path: "/b", chain: { name: "c", endpoints: [{ name: "e", url: secret }] } }];
    expect(() => resilientProxy({ routes: bad } as never)).toThrow(
      /^(?!.*(?:SECRET|pw))routes\.1\.chain\.endpoints\.0\.url/,
    );
  });

  it("union paths name the key written (retry, breaker, endpoints url | respond)", () => {
    expect(() => createResilience({ retry: { maxAtempts: 2 } as never })).toThrow('retry: unknown option "maxAtempts"');
    expect(() => createResilience({ retry: true as never })).toThrow(/^retry: /);
    expect(() => createResilience({ breaker: { key: 3 } as never })).toThrow(/^breaker\.key: /);
    expect(() => fallback([{ name: "c", endpoints: [{ name: "e", url: 3 }] }] as never)).toThrow(
      /^fallback\.0\.endpoints\.0\.url: /,
    );
    expect(() =>
      fallback([
        {
          name: "c",
          endpoints: [
            { name: "e", url: "https://a.example" },
            { name: "f", respond: 3 },
          ],
        },
      ] as never),
    ).toThrow(/fallback\.0\.endpoints\.1\.respond: /);
    expect(() =>
      fallback([{ name: "c", endpoints: [{ name: "e", url: "https://a.example", headres: {} }] }] as never),
    ).toThrow('fallback.0.endpoints.0: unknown option "headres"');
  });

  it("retry(fn) takes maxAttempts up to 2^53 - 1 and refuses 2^53, 1e300 and Infinity", async () => {
    expect(await retry(async () => 1, { maxAttempts: Number.MAX_SAFE_INTEGER })).toBe(1);
    for (const maxAttempts of [2 ** 53, 1e300, Number.POSITIVE_INFINITY]) {
      await expect(retry(async () => 1, { maxAttempts })).rejects.toThrow(
        /retry\.maxAttempts: expected an integer >= 1/,
      );
    }
  });
});

/** A response's URL, its body released. */
async function urlAfterDrain(response: Response): Promise<string> {
  await response.body?.cancel();
  return response.url;
}

/** Where Node's own follower and the library's go for a Location written as `location` (one header, bytes as Latin-1). */
async function bothFollow(locations: string[]): Promise<Array<[string, string]>> {
  let location = "";
  const server = createServer((request, response) => {
    if (request.url === "/start") {
      response.writeHead(302, { location });
      response.end();
      return;
    }
    response.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const layer = createResilience({ redirects: "library", retry: false });
  const out: Array<[string, string]> = [];
  try {
    for (const one of locations) {
      location = one;
      const platform = await fetch(`${base}/start`).then(urlAfterDrain);
      const library = await layer.fetch(`${base}/start`).then(urlAfterDrain);
      out.push([platform.replace(base, ""), library.replace(base, "")]);
    }
  } finally {
    server.close();
  }
  return out;
}

describe("Location read as Node's own follower reads it (docs/retry.md#redirects)", () => {
  // Found here, then written down (docs/retry.md#redirects): `Headers` joins several headers
  // with ", ", so one whose text is a URL repeated so reads as identical ones. Pinned so a change shows.
  it("ONE Location header whose text is a URL repeated with ', ' reads as that URL, as docs/retry.md says", async () => {
    const [[platform, library]] = (await bothFollow(["/q?x=a, /q?x=a"])) as [[string, string]];
    expect(platform).toBe("/q?x=a,%20/q?x=a");
    expect(library).toBe("/q?x=a");
  });

  it("a BOM, overlong UTF-8, a surrogate's bytes, UTF-8 é and a comma without a space go where Node's follower goes", async () => {
    const results = await bothFollow([
      "\xef\xbb\xbf/bom",
      "/over\xc0\xaf",
      "/sur\xed\xa0\x80",
      "/caf\xc3\xa9",
      "/a,/a",
    ]);
    for (const [platform, library] of results) expect(library).toBe(platform);
    expect(results.map(([, library]) => library)).toEqual([
      "/%EF%BB%BF/bom",
      "/over%EF%BF%BD%EF%BF%BD",
      "/sur%EF%BF%BD%EF%BF%BD%EF%BF%BD",
      "/caf%C3%A9",
      "/a,/a",
    ]);
  });
});
