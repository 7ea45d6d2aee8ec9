/**
 * Outside-in attack on SECURITY.md as an attacker would drive it (session fiftyfour): a client steering
 * `resilientProxy`, hostile upstreams (Retry-After, redirects, broken HTTP), hostile KV and Durable Object state,
 * prototype keys in bodies, names and options, keys in headers and endpoint URLs, bodies past `maxReplayBytes`.
 *
 * Docs: (SECURITY.md, the guarantees table)
 * - "Server-supplied times are bounded | `Retry-After` counts only as delay-seconds or an RFC 9110 date; a host is
 *   held open for at most 24 hours whatever a header says".
 * - "Credentials never follow a redirect to another origin | … 20 hops at most, http(s) only, a `Location` with
 *   `user:pass@` refused without quoting it".
 * - "A paid request is never processed twice | … never after a 500, a reset, …".
 * - "Property keys from users are data | rewrite paths may not name `__proto__`, `constructor` or `prototype` …;
 *   rewriting and `adjust()` walk and copy own properties only".
 * - "No secret in events, errors, `health()` or `debugInfo()` | URLs lose their userinfo …, query string and
 *   fragment … request headers are never recorded".
 * - "Remote state is validated, never trusted | KV metadata and Durable Object requests and answers go through
 *   strict zod schemas; a foreign, corrupt or hostile value (extra keys such as `__proto__` included) is ignored
 *   with a `store` event".
 * - "Buffered bodies are bounded | … a larger one (with a `replay` event), or a stream, is sent once on every path
 *   (chain, rewrite, hedge)".
 * - docs/cloudflare.md: "A route serves its path and everything below it (the path below goes onto the upstream's
 *   path …)" (the proxy as a possible open proxy).
 *
 * How: `createResilience`, (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy`, `kvStore`, `durableObjectStore` (./cloudflare), `TestClock`
 * (./testing); two node:http servers on 127.0.0.1, each its own origin, some answers written raw to the socket;
 * a fake KV namespace whose metadata is hostile; a fake Durable Object namespace whose stub answers hostile
 * verdicts.
 *
 * Paths: plain call, `Request` input, redirect (loops, foreign schemes, userinfo), fallback chain, hedge,
 * degradation rewrite, ky client, `resilientProxy` (upstream, catch-all and chain routes, health endpoint),
 * kvStore and durableObjectStore read back.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found.
 *
 * Held (plain `it`):
 * - The proxy is no open proxy: `//host`, `/v1//host`, backslashes, `/..//host`, `@host`, `%40`, `%2F%2F`,
 *   `..%2F`, `?url=`, spoofed `host`/`x-forwarded-host`/`forwarded` and a Request addressed to another host all
 *   reach the configured upstream only (upstream, catch-all and chain routes).
 * - Retry-After `1e3`, `-1`, `+5`, `5.5`, `0x10`, `Infinity`, `NaN`, `5, 5`, an ISO date, `Mon 2`: the computed
 *   delay, `retryAfter: false`. 400 nines, 20 nines, year 9999 and RFC 850 dates: the call settles at once and the
 *   host is held ≤ 24 h on the plain, chain, ky and proxy paths, then reopens.
 * - Redirect loops stop (≤ 21 sends per endpoint); `data:`, `file:`, `javascript:` and `user:pass@` Locations are
 *   not followed, on plain, `Request`, chain, hedge, ky and proxy; nothing leaks into events or errors.
 * - A keyless POST answered with a 64 KB header, a NUL in a header, no HTTP status line or a short body is sent
 *   once and never to the next endpoint (plain, chain, ky).
 * - `__proto__`/`constructor` keys in a JSON body under a degraded level: rewritten in place, prototype intact,
 *   the nested `__proto__.steps` left as data (plain, `Request`, chain, ky); names `__proto__` (chain, endpoint,
 *   named breaker, breaker key) are own entries; options from JSON with an own `__proto__` change nothing.
 * - An Idempotency-Key, cookie, authorization, crossOriginHeaders value, endpoint URL keys, `set-cookie` and a
 *   keyed `location` appear in no event, error, `health()` or `debugInfo()` (plain, chain, hedge, ky, degradation).
 * - KV metadata with an own `__proto__`, an extra key, gen 2^53, a 5,000-char reason, a throwing getter, a
 *   throwing Proxy, a NaN hold: ignored with a `store` event, the call goes on; a valid open to 1e300 quoting a
 *   keyed URL: held ≤ 24 h, reason cut. Durable Object verdicts with an own `__proto__` or a bad state: rejected
 *   with a `store` event; an open to 1e300: held ≤ 24 h, nothing leaked.
 * - A keyed POST past `maxReplayBytes` meeting a 503 is sent once (plain, `Request`, chain, hedge, degradation,
 *   ky, proxy), with a `replay` event; the chain does not move it on and no hedge starts.
 *
 * Docs-silent (not pinned):
 * - A hostile store value's error text that quotes no URL (a Proxy trap's own message) goes whole into the
 *   `store` event's `detail`: only URLs are promised cut.
 */
import { afterAll, describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type Resilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const held: Hit[] = [];
afterAll(() => {
  for (const hit of held.splice(0)) hit.res.destroy();
});

const DAY = 86_400_000;
const LEAK = /SECRET|hunter2|FRAGX/;
const ctx = { waitUntil() {}, passThroughOnException() {} };
const turns = async (n = 10) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

function listen(resilience: Resilience) {
  const events: Array<{ name: string } & Record<string, unknown>> = [];
  for (const name of [
    "retry",
    "request",
    "breaker",
    "fallback",
    "redirect",
    "replay",
    "store",
    "degradation",
  ] as const) {
    resilience.on(name, (event) => {
      events.push({ name, ...(event as object) });
    });
  }
  return events;
}

describe("resilientProxy is no open proxy: a client cannot steer it to another host", () => {
  const attacks = (bHost: string) => [
    `//${bHost}/x`,
    `/v1//${bHost}/x`,
    `/\\\\${bHost}/x`,
    `/v1/..//${bHost}/x`,
    `/v1@${bHost}/x`,
    `/v1%40${bHost}/x`,
    `/%2F%2F${bHost}/x`,
    `/v1/%2F%2F${bHost}/x`,
    `/v1/..%2F..%2F${bHost}`,
    `/v1/x?url=http://${bHost}/&redirect=http://${bHost}/`,
  ];

  it("no path, `@`, backslash, encoded slash or query a client sends reaches another host (upstream and catch-all routes)", async () => {
    B.on((hit) => hit.res.end("b"));
    const proxy = resilientProxy({
      routes: [
        { path: "/v1", upstream: A.base },
        { path: "/", upstream: `${A.base}/root` },
      ],
      resilience: { retry: { maxAttempts: 1 } },
    });
    const seen: string[] = [];
    for (const path of attacks(B.host)) {
      const before = A.hits.length;
      const answer = await proxy.fetch(
        new Request(`https://worker.example${path}`, {
          headers: { host: B.host, "x-forwarded-host": B.host, forwarded: `host=${B.host}` },
        }),
        {},
        ctx,
      );
      await answer.arrayBuffer();
      seen.push(`${path} -> ${answer.status} ${A.hits.length - before}`);
    }
    // A Request addressed to another host entirely: the proxy reads its path only.
    const other = await proxy.fetch(new Request(`http://${B.host}/v1/x`), {}, ctx);
    await other.arrayBuffer();
    expect(B.hits.map((hit) => hit.path)).toEqual([]);
    for (const hit of A.hits) expect(hit.headers.host).toBe(A.host);
    // Each went to A, once, under A's own host.
    expect(seen.every((line) => line.endsWith(" 1"))).toBe(true);
    expect(A.hits).toHaveLength(11);
  });

  it("a chain route: the same paths stay on the chain's endpoints", async () => {
    A.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "open",
            endpoints: [
              { name: "a", url: `${A.base}/p` },
              { name: "a2", url: `${A.base}/q` },
            ],
          },
        },
      ],
      resilience: { clock, retry: { maxAttempts: 1 }, breaker: false },
    });
    for (const path of attacks(B.host)) {
      const answer = await proxy.fetch(new Request(`https://worker.example${path}`), {}, ctx);
      await answer.arrayBuffer();
    }
    expect(B.hits).toHaveLength(0);
    expect(A.hits.length).toBeGreaterThan(0);
  });
});

describe("Server-supplied times are bounded: hostile Retry-After on every path", () => {
  // Not delay-seconds or an RFC 9110 date: each falls back to the computed delay (100 ms, no jitter).
  const MALFORMED = ["1e3", "-1", "+5", "5.5", "0x10", "Infinity", "NaN", "5, 5", "2099-01-01T00:00:00Z", "Mon 2"];
  // Valid forms asking for far more than a day: the host is held at most 24 hours.
  const HUGE = [
    "9".repeat(400),
    "99999999999999999999",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Friday, 31-Dec-99 23:59:59 GMT",
  ];

  for (const value of MALFORMED) {
    it(`plain call: Retry-After ${JSON.stringify(value)} counts for nothing (the computed 100 ms backoff)`, async () => {
      const clock = new TestClock();
      A.on((hit) => {
        hit.res.writeHead(hit.n === 1 ? 503 : 200, { "retry-after": value });
        hit.res.end("x");
      });
      const layer = createResilience({ clock, retry: { maxAttempts: 2, initialDelay: 100, jitter: "none" } });
      const events = listen(layer);
      const call = layer.fetch(`${A.base}/r`);
      await A.nth(1);
      await clock.waitForTimers(1);
      await clock.advance(100);
      const answer = await call;
      expect(answer.status).toBe(200);
      const retry = events.find((e) => e.name === "retry");
      expect(retry?.delay).toBe(100);
      expect(retry?.retryAfter).toBe(false);
    });
  }

  for (const value of HUGE) {
    for (const path of ["plain", "chain", "ky", "proxy"] as const) {
      it(`${path}: Retry-After ${value.slice(0, 30)} holds the host at most 24 hours, settled at once`, async () => {
        const clock = new TestClock();
        A.on((hit) => {
          hit.res.writeHead(503, { "retry-after": value });
          hit.res.end("busy");
        });
        B.on((hit) => hit.res.end("b"));
        const options = { clock, retry: { maxAttempts: 3, initialDelay: 100 } };
        const start = clock.now();
        let layer: Resilience;
        if (path === "proxy") {
          const proxy = resilientProxy({
            routes: [{ path: "/", upstream: A.base }],
            resilience: options,
          });
          const env = { RESILIENCE_HEALTH_TOKEN: "t" };
          const answer = await proxy.fetch(new Request("https://w.example/r"), env, ctx);
          await answer.arrayBuffer();
          expect(answer.status).toBe(503);
          const health = await proxy.fetch(
            new Request("https://w.example/__resilience/health", { headers: { authorization: "Bearer t" } }),
            env,
            ctx,
          );
          const json = (await health.json()) as { breakers: Record<string, { state: string; openUntil: number }> };
          const breaker = json.breakers[A.host];
          expect(breaker?.state).toBe("open");
          expect(breaker?.openUntil).toBeLessThanOrEqual(start + DAY);
          expect(A.hits).toHaveLength(1);
          return;
        }
        if (path === "chain") {
          layer = createResilience({
            ...options,
            fallback: fallback([
              {
                name: "c",
                endpoints: [
                  { name: "a", url: `${A.base}/v1` },
                  { name: "b", url: `${B.base}/v1` },
                ],
              },
            ]),
          });
          const answer = await layer.fetch(`${A.base}/v1/r`);
          expect(await answer.text()).toBe("b");
        } else if (path === "ky") {
          layer = createResilience(options);
          const api = createClient({ resilience: layer, throwHttpErrors: false });
          const answer = await api.get(`${A.base}/r`);
          expect(answer.status).toBe(503);
        } else {
          layer = createResilience(options);
          const answer = await layer.fetch(`${A.base}/r`);
          expect(answer.status).toBe(503);
        }
        expect(A.hits).toHaveLength(1);
        const breaker = layer.health().breakers[A.host];
        expect(breaker?.state).toBe("open");
        expect(breaker?.openUntil).toBeGreaterThan(start);
        expect(breaker?.openUntil).toBeLessThanOrEqual(start + DAY);
        await clock.advance(DAY);
        expect(layer.health().breakers[A.host]?.state).not.toBe("open");
      });
    }
  }
});

describe("Credentials never follow a redirect: endless, foreign-scheme and credentialed Locations", () => {
  for (const path of ["plain", "Request", "chain", "hedge", "ky", "proxy"] as const) {
    it(`${path}: a redirect loop stops after 20 hops; data:, file:, javascript: and user:pass@ Locations are not followed`, async () => {
      const clock = new TestClock();
      const targets = [
        "loop",
        "data:text/plain,SECRET-DATA",
        "file:///etc/passwd",
        "javascript:alert(1)",
        `http://user:hunter2@${B.host}/x`,
      ];
      for (const target of targets) {
        A.reset();
        B.reset();
        A.on((hit) => {
          hit.res.writeHead(302, { location: target === "loop" ? `/loop/${hit.n}?k=SECRET` : target });
          hit.res.end();
        });
        B.on((hit) => hit.res.end("b"));
        const layer = createResilience({
          clock,
          retry: { maxAttempts: 1 },
          fallback: fallback([
            {
              name: "c",
              ...(path === "hedge" ? { hedge: { delay: 5_000 } } : {}),
              endpoints: [
                { name: "a", url: `${A.base}/v1` },
                { name: "a2", url: `${A.base}/v2` },
              ],
            },
          ]),
        });
        const events = listen(layer);
        const url = path === "chain" || path === "hedge" ? `${A.base}/v1/go` : `${A.base}/go`;
        const init = { headers: { authorization: "Bearer SECRET-AUTH" } };
        let outcome: unknown;
        try {
          if (path === "proxy") {
            const proxy = resilientProxy({
              routes: [{ path: "/", upstream: A.base }],
              resilience: { clock, retry: { maxAttempts: 1 } },
            });
            outcome = await proxy.fetch(new Request("https://w.example/go", init), {}, ctx);
          } else if (path === "ky") {
            outcome = await createClient({ resilience: layer, throwHttpErrors: false }).get(url, init);
          } else if (path === "Request") outcome = await layer.fetch(new Request(url, init));
          else outcome = await layer.fetch(url, init);
        } catch (error) {
          outcome = error;
        }
        if (outcome instanceof Response) {
          const text = await outcome.text();
          expect(text).not.toContain("SECRET-DATA");
          expect(text).not.toContain("root:");
        }
        expect(B.hits).toHaveLength(0);
        const endpoints = path === "chain" || path === "hedge" ? 2 : 1;
        expect(A.hits.length).toBeLessThanOrEqual(21 * endpoints);
        if (target === "loop") expect(A.hits.length).toBeGreaterThanOrEqual(2);
        else expect(A.hits.length).toBeLessThanOrEqual(endpoints);
        for (const hit of A.hits) expect(hit.headers.authorization).toBe("Bearer SECRET-AUTH");
        const text = outcome instanceof Error ? `${outcome.message} ${outcome.stack} ${String(outcome.cause)}` : "";
        expect(text + JSON.stringify([events, layer.health(), layer.debugInfo()])).not.toMatch(LEAK);
      }
    });
  }
});

describe("A paid request is never processed twice: hostile answers to a keyless POST", () => {
  const shapes: Record<string, (hit: Hit) => void> = {
    "a 64 KB header": (hit) => {
      hit.res.writeHead(200, { "x-huge": "h".repeat(64 * 1024) });
      hit.res.end("done");
    },
    "a header line with a NUL": (hit) => {
      hit.res.socket?.end("HTTP/1.1 200 OK\r\nx-bad: a\u0000b\r\ncontent-length: 2\r\n\r\nok");
    },
    "a status line that is no HTTP": (hit) => {
      hit.res.socket?.end("HELLO THERE\r\n\r\n");
    },
    "a body shorter than its content-length": (hit) => {
      hit.res.socket?.end("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort");
    },
  };
  for (const [name, answer] of Object.entries(shapes)) {
    for (const path of ["plain", "chain", "ky"] as const) {
      it(`${path}: ${name} after the server read it: not sent again, nor to the next endpoint`, async () => {
        const clock = new TestClock();
        A.on(answer);
        B.on((hit) => hit.res.end("b"));
        const layer = createResilience({
          clock,
          retry: { maxAttempts: 3, initialDelay: 1, jitter: "none" },
          fallback: fallback([
            {
              name: "c",
              endpoints: [
                { name: "a", url: `${A.base}/v1` },
                { name: "b", url: `${B.base}/v1` },
              ],
            },
          ]),
        });
        const init = { method: "POST", body: '{"job":1}', headers: { "content-type": "application/json" } };
        const url = path === "chain" ? `${A.base}/v1/jobs` : `${A.base}/jobs`;
        const call = (async () => {
          if (path === "ky") {
            const res = await createClient({ resilience: layer, throwHttpErrors: false }).post(url, init);
            return res.text();
          }
          const res = await layer.fetch(url, init);
          return res.text();
        })().catch((error: unknown) => error);
        for (let i = 0; i < 20 && !(await Promise.race([call.then(() => true), turns(5).then(() => false)])); i++)
          await clock.advance(10);
        const got = await call;
        expect(got).toBeInstanceOf(Error);
        expect(A.hits).toHaveLength(1);
        expect(B.hits).toHaveLength(0);
      });
    }
  }
});

describe("Property keys from users are data: hostile JSON bodies and names under a degraded level", () => {
  const HOSTILE =
    '{"__proto__":{"polluted":"yes","steps":99},"constructor":{"prototype":{"polluted":"yes"}},' +
    '"parameters":{"__proto__":{"steps":77}},"steps":50,"n":12345678901234567890}';
  for (const path of ["plain", "Request", "chain", "ky"] as const) {
    it(`${path}: a body with __proto__/constructor keys is rewritten in place; no prototype changes`, async () => {
      const layer = createResilience({
        retry: { maxAttempts: 1 },
        degradation: degradation({
          rules: [{ params: { steps: "steps" } }, { match: `${A.base}/deep`, params: { steps: "parameters.steps" } }],
        }),
        fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: `${A.base}/v1` }] }]),
      });
      layer.degradation?.setLevel("medium");
      const init = { method: "POST", body: HOSTILE, headers: { "content-type": "application/json" } };
      for (const where of ["/v1/top", "/deep"]) {
        const url = `${A.base}${where}`;
        if (path === "ky") await createClient({ resilience: layer }).post(url, init).text();
        else if (path === "Request") await (await layer.fetch(new Request(url, init))).text();
        else await (await layer.fetch(url, init)).text();
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty("steps");
      expect(A.hits[0]?.body).toBe(HOSTILE.replace('"steps":50', '"steps":30'));
      // No own `parameters.steps`: the one under `__proto__` is data, left as sent.
      expect(A.hits[1]?.body).toBe(HOSTILE);
    });
  }

  it("names chosen `__proto__` (chain, endpoint, named breaker, breaker key) are entries, not prototypes", async () => {
    A.on((hit) => {
      hit.res.statusCode = 500;
      hit.res.end("x");
    });
    const layer = createResilience({
      retry: { maxAttempts: 1 },
      breaker: { key: () => "__proto__" },
      fallback: fallback([
        {
          name: "__proto__",
          endpoints: [
            { name: "__proto__", url: `${A.base}/v1` },
            { name: "constructor", url: `${A.base}/v2` },
          ],
        },
      ]),
    });
    await layer.fetch(`${A.base}/v1/x`).catch(() => undefined);
    await layer.breaker("__proto__").execute(async () => 1);
    await layer.execute(async () => 1, { breaker: "__proto__" }).catch(() => undefined);
    const health = layer.health();
    const info = layer.debugInfo();
    expect(Object.hasOwn(health.breakers, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(health.breakers)).toBe(Object.prototype);
    const chains = (info as unknown as { fallback: Record<string, { fallbacks: Record<string, unknown> }> }).fallback;
    expect(Object.hasOwn(chains, "__proto__")).toBe(true);
    const own = Object.getOwnPropertyDescriptor(chains, "__proto__")?.value as { fallbacks: object } | undefined;
    expect(Object.hasOwn(own?.fallbacks ?? {}, "__proto__")).toBe(true);
    expect(JSON.parse(JSON.stringify(info)).fallback).toHaveProperty(["__proto__"]);
    expect(({} as Record<string, unknown>).calls).toBeUndefined();
  });

  it("options parsed from JSON with an own __proto__ key change no prototype and no default", () => {
    const polluted = JSON.parse('{"__proto__":{"retry":{"maxAttempts":99}},"retry":{"maxAttempts":2}}');
    let made: Resilience | undefined;
    try {
      made = createResilience(polluted);
    } catch {
      made = undefined;
    }
    expect(({} as Record<string, unknown>).retry).toBeUndefined();
    if (made) expect(made.debugInfo().retry.maxAttempts).toBe(2);
    expect(createResilience().debugInfo().retry.maxAttempts).toBe(3);
  });
});

describe("No secret in events, errors, health() or debugInfo(): keys in headers and endpoint URLs", () => {
  for (const path of ["plain", "chain", "hedge", "ky", "degradation"] as const) {
    it(`${path}: an Idempotency-Key, a cookie and an endpoint's own query key appear nowhere`, async () => {
      const clock = new TestClock();
      A.on((hit) => {
        hit.res.writeHead(503, { "set-cookie": "sid=SECRET-SET", location: `${A.base}/?t=SECRET-LOC` });
        hit.res.end("SECRET-BODY");
      });
      B.on((hit) => {
        hit.res.statusCode = 500;
        hit.res.end("SECRET-B");
      });
      const layer = createResilience({
        clock,
        retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" },
        crossOriginHeaders: ["x-trace"],
        ...(path === "degradation" ? { degradation: degradation({ levelHeader: "x-degradation-level" }) } : {}),
        fallback: fallback([
          {
            name: "c",
            ...(path === "hedge" ? { hedge: { delay: 1 } } : {}),
            endpoints: [
              { name: "a", url: `${A.base}/v1?key=SECRET-EP-A` },
              { name: "b", url: `${B.base}/v1?api_key=SECRET-EP-B`, headers: { authorization: "SECRET-EPH" } },
            ],
          },
        ]),
      });
      layer.degradation?.setLevel("low");
      const events = listen(layer);
      const init = {
        method: "POST",
        body: '{"steps":50}',
        headers: {
          "idempotency-key": "SECRET-IDEM",
          cookie: "sid=SECRET-COOKIE",
          authorization: "Bearer SECRET-AUTH",
          "x-trace": "SECRET-TRACE",
          "content-type": "application/json",
        },
      };
      const url = path === "plain" ? `${A.base}/x?token=SECRET-Q` : `${A.base}/v1/x?token=SECRET-Q`;
      const call = (async () => {
        if (path === "ky") return (await createClient({ resilience: layer }).post(url, init)).text();
        return (await layer.fetch(url, init)).text();
      })().catch((error: unknown) => error);
      for (let i = 0; i < 30 && !(await Promise.race([call.then(() => true), turns(5).then(() => false)])); i++)
        await clock.advance(5);
      const outcome = await call;
      const text =
        outcome instanceof Error
          ? `${outcome.message} ${outcome.stack} ${String(outcome.cause)} ${JSON.stringify((outcome as { errors?: unknown }).errors ?? null)}`
          : String(outcome);
      expect(A.hits.length).toBeGreaterThan(0);
      expect(`${text} ${JSON.stringify([events, layer.health(), layer.debugInfo()])}`).not.toMatch(
        /SECRET-(IDEM|COOKIE|AUTH|TRACE|EP|Q|SET|LOC|EPH)|FRAGX/,
      );
    });
  }
});

describe("Remote state is validated, never trusted: hostile KV and Durable Object values read back", () => {
  const REASON = "status 503 at https://user:hunter2@h.example/v1?api_key=SECRET-R#FRAGX";
  const valid = (now: number) => ({ v: 1, s: "open", g: 3, u: 1e300, w: now - 1, r: REASON });
  const withProto = (now: number) =>
    JSON.parse(`{"__proto__":{"polluted":"yes"},${JSON.stringify(valid(now)).slice(1)}`) as unknown;
  const hostile: Record<string, (now: number) => unknown> = {
    "an own __proto__ key": withProto,
    "an extra key": (now) => ({ ...valid(now), extra: 1 }),
    "a generation of 2^53": (now) => ({ ...valid(now), g: 2 ** 53 }),
    "a reason of 5,000 chars": (now) => ({ ...valid(now), r: "x".repeat(5_000) }),
    "a getter that throws": () => ({
      get v(): number {
        throw new Error("getter at https://h.example/?k=SECRET-G");
      },
    }),
    "a Proxy that throws on every trap": () => {
      const trap = () => {
        throw new Error("trap at https://h.example/?k=SECRET-P");
      };
      return new Proxy({}, { get: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, getPrototypeOf: trap });
    },
    "a NaN hold": (now) => ({ ...valid(now), u: Number.NaN }),
  };

  async function twoCalls(store: Parameters<typeof createResilience>[0], clock: TestClock) {
    const layer = createResilience({ ...store, clock, retry: { maxAttempts: 1 } });
    const events = listen(layer);
    const first = await layer.fetch(`${A.base}/one`);
    await first.text();
    await turns(20);
    const second = await layer.fetch(`${A.base}/two`).then(
      async (res) => res.text(),
      (error: unknown) => error,
    );
    await turns(20);
    return { layer, events, second };
  }

  for (const [name, make] of Object.entries(hostile)) {
    it(`kvStore: metadata with ${name} is ignored with a store event; the call goes on; nothing polluted`, async () => {
      const clock = new TestClock();
      const kv = {
        async getWithMetadata() {
          return { value: "", metadata: make(clock.now()) as never };
        },
        async put() {},
      };
      const { layer, events, second } = await twoCalls({ store: kvStore(kv, { ctx, clock }) }, clock);
      expect(second).toBe("ok");
      expect(A.hits).toHaveLength(2);
      expect(events.some((e) => e.name === "store")).toBe(true);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(layer.health().breakers[A.host]?.state ?? "closed").toBe("closed");
      expect(JSON.stringify([events, layer.health(), layer.debugInfo()])).not.toMatch(/SECRET|hunter2/);
    });
  }

  it("kvStore: a valid open value quoting a keyed URL, held until 1e300: at most 24 h, and its reason is cut", async () => {
    const clock = new TestClock();
    const start = clock.now();
    const kv = {
      async getWithMetadata() {
        return { value: "", metadata: valid(start) as never };
      },
      async put() {},
    };
    const { layer, events, second } = await twoCalls({ store: kvStore(kv, { ctx, clock }) }, clock);
    expect(second).toBeInstanceOf(Error);
    expect(A.hits).toHaveLength(1);
    const breaker = layer.health().breakers[A.host];
    expect(breaker?.state).toBe("open");
    expect(breaker?.openUntil).toBeLessThanOrEqual(start + DAY);
    const error = second as Error;
    expect(
      `${error.message} ${error.stack} ${JSON.stringify([events, layer.health(), layer.debugInfo()])}`,
    ).not.toMatch(LEAK);
  });

  const verdicts: Record<string, (now: number) => unknown> = {
    "an own __proto__ key": (now) =>
      JSON.parse(
        `{"__proto__":{"polluted":"yes"},"state":"open","gen":2,"openUntil":${now + 60_000},"reason":"x","changedAt":${now}}`,
      ),
    "an open until 1e300 quoting a keyed URL": (now) => ({
      state: "open",
      gen: 2,
      openUntil: 1e300,
      reason: REASON,
      changedAt: now,
    }),
    "a state that is no state": (now) => ({ state: "opened", gen: 2, openUntil: now + 1, reason: null }),
  };
  for (const [name, make] of Object.entries(verdicts)) {
    it(`durableObjectStore: a verdict with ${name} is ignored or bounded; nothing polluted or leaked`, async () => {
      const clock = new TestClock();
      const start = clock.now();
      const ns = {
        idFromName: (n: string) => n,
        get: () => ({
          async fetch() {
            return Response.json(make(clock.now()));
          },
        }),
      };
      const { layer, events, second } = await twoCalls({ store: durableObjectStore(ns, { ctx, clock }) }, clock);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      const breaker = layer.health().breakers[A.host];
      if (name.startsWith("an open")) {
        expect(second).toBeInstanceOf(Error);
        expect(breaker?.openUntil).toBeLessThanOrEqual(start + DAY);
      } else {
        expect(second).toBe("ok");
        expect(events.some((e) => e.name === "store" && e.outcome === "rejected")).toBe(true);
      }
      const error = second instanceof Error ? `${second.message} ${second.stack}` : "";
      expect(`${error} ${JSON.stringify([events, layer.health(), layer.debugInfo()])}`).not.toMatch(LEAK);
    });
  }
});

describe("Buffered bodies are bounded: a body past maxReplayBytes goes once on every path", () => {
  for (const path of ["plain", "Request", "chain", "hedge", "degradation", "ky", "proxy"] as const) {
    it(`${path}: a keyed 64-byte POST over a 16-byte limit meets a 503: sent once, never replayed`, async () => {
      const clock = new TestClock();
      A.on((hit) => {
        hit.res.statusCode = 503;
        hit.res.end("busy");
      });
      B.on((hit) => hit.res.end("b"));
      const body = JSON.stringify({ steps: 50, pad: "p".repeat(40) });
      const options = {
        clock,
        maxReplayBytes: 16,
        retry: { maxAttempts: 3, initialDelay: 1, jitter: "none" as const },
        ...(path === "degradation" ? { degradation: degradation() } : {}),
      };
      const chain = fallback([
        {
          name: "c",
          ...(path === "hedge" ? { hedge: { delay: 1 } } : {}),
          endpoints: [
            { name: "a", url: `${A.base}/v1` },
            { name: "b", url: `${B.base}/v1` },
          ],
        },
      ]);
      const layer = createResilience({
        ...options,
        ...(path === "chain" || path === "hedge" ? { fallback: chain } : {}),
      });
      layer.degradation?.setLevel("low");
      const events = listen(layer);
      const init = {
        method: "POST",
        body,
        headers: { "idempotency-key": "k-1", "content-type": "application/json" },
      };
      const url = `${A.base}/v1/jobs`;
      const call = (async () => {
        if (path === "proxy") {
          const proxy = resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: options });
          return (await proxy.fetch(new Request("https://w.example/v1/jobs", init), {}, ctx)).status;
        }
        if (path === "ky")
          return (await createClient({ resilience: layer, throwHttpErrors: false }).post(url, init)).status;
        const res = await layer.fetch(path === "Request" ? new Request(url, init) : url, init);
        await res.text();
        return res.status;
      })().catch((error: unknown) => error);
      for (let i = 0; i < 30 && !(await Promise.race([call.then(() => true), turns(5).then(() => false)])); i++)
        await clock.advance(5);
      await call;
      expect(A.hits).toHaveLength(1);
      expect(A.hits[0]?.bytes.length).toBeGreaterThan(16);
      expect(B.hits).toHaveLength(0);
      if (path !== "proxy") expect(events.some((e) => e.name === "replay")).toBe(true);
    });
  }
});
