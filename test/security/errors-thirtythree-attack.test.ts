/**
 * Outside-in attack on the errors a caller catches, on every path, and what they show of a URL's secrets.
 * Docs: docs/retry.md ("It rejects only when there is no Response to give, with a `ResilienceError` subclass
 * whose `cause` is the underlying error", the table: `RetryExhaustedError` `attempts`, `endpoint` (the breaker's
 * key), `cause`; `TimeoutError` `phase`, `timeout`, `attempts` ("the call's; in a chain's `errors`, that
 * endpoint's"); `CircuitOpenError` `key`, `retryAt`; `BulkheadRejectedError` `key`; `FallbackExhaustedError`
 * `chain`, `errors`; `ConfigError` `path`; "Each class has a cross-realm guard … that works across bundles";
 * "Messages never show the URL's userinfo, query or fragment"; redirects: "the call rejects … with a
 * `RetryExhaustedError` whose `cause` is that failure (the follower's `TypeError` among them)"; "A `Retry-After`
 * longer than `maxRetryAfter` … the host is held open until then"; execute: "reject with `RetryExhaustedError`
 * when attempts run out"; ky: "ky's own errors … name the URL in their message without its query, userinfo and
 * fragment"), docs/fallback.md ("rejects with `FallbackExhaustedError` (`errors` per endpoint; its message lists
 * them in the order they failed, its `cause` is the last one's error)", "an endpoint skipped for its open
 * breaker has that breaker's `CircuitOpenError` there, with `retryAt`", "an endpoint's own query, `?key=…`,
 * stays on it"), docs/options.md ("throws `ConfigError` naming the path", "A value that cannot be read … is a
 * `ConfigError` naming its path too", "`createClient({ resilience })` and `resilientProxy({ resilience })` name
 * these options as their callers wrote them"), SECURITY.md ("No secret in events, errors …: URLs lose their
 * userinfo …, query string and fragment … (an error's causes included …, and `execute`'s `RetryExhaustedError`
 * when its work's error names a URL), an option's `ConfigError` included … a URL percent-encoded into text … is
 * cut as a plain one"), src/core/errors.ts JSDoc ("Each `isX()` guard checks the stable `name` too, so it works
 * across realms and duplicated copies of the package where `instanceof` does not").
 * How: `createResilience`, the error classes and guards (root), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky), `retry` (./policies), `resilientProxy` (./cloudflare); node:http
 * servers on 127.0.0.1 that answer 500, 429 with `Retry-After`, reset the connection, hang, or redirect badly
 * (to `ftp:`, to an invalid `Location`, to a `user:pass@` URL, in a loop, to a refused origin, to a URL
 * percent-encoded into the path); a second copy of the library (`vi.resetModules()` and a fresh import).
 * Secrets: userinfo password, `?key=`, `token=`, and a URL percent-encoded into a path, searched in each error's
 * message, stack, every own field (non-enumerable and symbols too), `cause` and `errors` chains, `String(err)`
 * and `JSON.stringify(err)`.
 * Paths: plain call, `Request` input, ky client, fallback chain (fixed and hedged), redirect followed by the
 * library, degradation rewrite, `execute(fn)`, `retry(fn)`, two copies of the library (an outer layer of one over
 * an inner layer of the other).
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - (The scan itself finds a secret in a hidden field, a deep cause, an `AggregateError`'s list and an encoded URL.)
 * - Plain call, `Request` input and ky client against a server that resets (`RetryExhaustedError`, `attempts`
 *   2, `endpoint` the host:port, `cause` the platform's `TypeError`), hangs (`TimeoutError` `attempt`, 100,
 *   `attempts` 2) and redirects badly (ftp, invalid `Location`, credentials, a loop past 20 hops, a refused
 *   origin with a key in its query, an encoded URL in the path): each a `RetryExhaustedError` whose cause is the
 *   follower's `TypeError` or the network failure, and no secret anywhere in the error, its string or JSON.
 * - 500 and 429 every time: the call resolves with that response (fetch semantics); ky's `HTTPError` message
 *   carries no query (its `request`/`response` are ky's, as SECURITY.md says).
 * - Chains whose endpoints carry their own `?key=`/`token=`: `FallbackExhaustedError` with `chain`, `errors`
 *   per endpoint, the message in the order they failed and `cause` the last one's error (fixed and hedged);
 *   each endpoint's `TimeoutError` counts its own attempts; no secret anywhere.
 * - A `Retry-After` beyond `maxRetryAfter`: the 429 is given, then `CircuitOpenError` with `key` and `retryAt`
 *   the server's time (delay-seconds and HTTP date); in a chain, the skipped endpoint's `CircuitOpenError`.
 * - A full bulkhead: `BulkheadRejectedError` with `key`; `timeout.total`: phase `total`, `attempts` 2.
 * - A degradation rewrite over a refused origin: `RetryExhaustedError`, no secret.
 * - `execute(fn)` whose work's error (or thrown string) names a URL with userinfo and a key: message, cause,
 *   stack, `String` and JSON cut, `attempts` 3, no `endpoint`.
 * - A second copy of the library: the root's guards recognise its errors (each class, a chain's entries), its
 *   `instanceof` does not; an outer layer of one copy over an inner layer of the other keeps the inner
 *   `TimeoutError` with the outer call's attempts and wraps the inner chain's error.
 * - `ConfigError` names the path (field `path` too, in `JSON.stringify`) through `createResilience`,
 *   `execute`, `breaker(name)`, `configureTriggers`, `retry(fn)`, ky, the proxy, `fallback` and `degradation`
 *   (a getter that throws too), with the URL's query, fragment and userinfo cut.
 */
import { inspect } from "node:util";
import { describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  BulkheadRejectedError,
  type CircuitOpenError,
  createResilience,
  FallbackExhaustedError,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isConfigError,
  isFallbackExhaustedError,
  isResilienceError,
  isRetryExhaustedError,
  isTimeoutError,
  RetryExhaustedError,
  TimeoutError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { retry } from "../../src/policies/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const up = httpUpstream();
serveDuringFile(up);

const SECRETS = ["SECRETKEY1", "TOKENVAL2", "PASSWD3"];
const QUERY = "?key=SECRETKEY1&token=TOKENVAL2";
const ENCODED = "https%3A%2F%2Fu%3APASSWD3%40h.example%2Fx%3Fkey%3DSECRETKEY1";
const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };

/** Every string an error shows: message, stack, own fields (any kind of key), causes and `errors`, deep. */
function shown(value: unknown, out: string[] = [], seen = new Set<unknown>(), depth = 0): string[] {
  if (typeof value === "string") out.push(value);
  else if (value instanceof URL) out.push(value.href);
  if (typeof value !== "object" || value === null || seen.has(value) || depth > 8) return out;
  seen.add(value);
  // ky's own `request`/`response` are ky's (SECURITY.md): their URL is theirs to show.
  if (value instanceof Request || value instanceof Response) return out;
  for (const key of Reflect.ownKeys(value)) {
    let field: unknown;
    try {
      field = (value as Record<PropertyKey, unknown>)[key];
    } catch {
      continue;
    }
    shown(field, out, seen, depth + 1);
  }
  if (value instanceof Error) {
    shown(value.stack, out, seen, depth + 1);
    shown(value.message, out, seen, depth + 1);
    shown(value.cause, out, seen, depth + 1);
  }
  return out;
}

/** The texts of `error` (its parts, `String`, JSON) that hold a secret. */
function leaks(error: unknown): string[] {
  const texts = [...shown(error), String(error), JSON.stringify(error) ?? ""];
  return texts.filter((text) => SECRETS.some((secret) => text.includes(secret)));
}

/** What `call` rejects with; a response is a failure of the test, named by its status. */
async function failure(call: Promise<Response> | PromiseLike<unknown>): Promise<unknown> {
  return rejection(
    Promise.resolve(call).then((res) => {
      throw new Error(`resolved with ${(res as Response).status}`);
    }),
  );
}

type Mode = "reset" | "hang" | "ftp" | "invalid" | "credentials" | "loop" | "refused" | "encoded";
let refused = "";

function serve(mode: Mode): void {
  up.on((hit: Hit) => {
    const { res } = hit;
    const redirect = (to: string) => {
      res.statusCode = 302;
      res.setHeader("location", to);
      res.end();
    };
    if (mode === "reset") hit.req.socket.destroy();
    else if (mode === "hang") return;
    else if (mode === "ftp") redirect(`ftp://x.example/a${QUERY}`);
    else if (mode === "invalid") redirect(`http://[::1${QUERY}`);
    else if (mode === "credentials") redirect(`http://u:PASSWD3@${up.host}/b${QUERY}`);
    else if (mode === "loop") redirect(`/loop${QUERY}`);
    else if (mode === "refused") redirect(`${refused}/x${QUERY}`);
    else redirect(`/cb/${ENCODED}`);
  });
}

describe("one call's error, on the plain, Request and ky paths", () => {
  it("the scan finds a secret in a hidden field, a deep cause, an error list and the encoded form", () => {
    const hidden = new Error("x");
    Object.defineProperty(hidden, "url", { value: "https://h.example/?token=TOKENVAL2", enumerable: false });
    expect(leaks(hidden)).toHaveLength(1);
    expect(leaks(new Error("a", { cause: new Error("b", { cause: `/cb/${ENCODED}` }) }))).not.toEqual([]);
    expect(leaks(new AggregateError([new Error("https://u:PASSWD3@h.example/")]))).not.toEqual([]);
    expect(leaks(new Error("clean"))).toEqual([]);
  });

  const modes: Mode[] = ["reset", "hang", "ftp", "invalid", "credentials", "loop", "refused", "encoded"];
  for (const mode of modes) {
    it(`${mode}: the documented class and fields, no secret`, async () => {
      refused ||= await refusedOrigin();
      serve(mode);
      // 100 ms ends a hang; the others get room for 20 redirects on a loaded machine.
      const options = { retry: { ...fast, maxAttempts: 2 }, timeout: { attempt: mode === "hang" ? 100 : 5_000 } };
      const resilience = createResilience(options);
      const url = `${up.base}/v1/x${QUERY}`;
      const errors = [
        await failure(resilience.fetch(url)),
        await failure(resilience.fetch(new Request(url, { method: "PUT", body: "x" }))),
        await failure(createClient({ resilience: options }).get(url).text()),
      ];
      for (const error of errors) {
        expect(leaks(error)).toEqual([]);
        expect(isResilienceError(error)).toBe(true);
        if (mode === "hang") {
          expect(error).toBeInstanceOf(TimeoutError);
          expect(error).toMatchObject({ phase: "attempt", timeout: 100, attempts: 2 });
          continue;
        }
        expect(error).toBeInstanceOf(RetryExhaustedError);
        expect(error).toMatchObject({ attempts: 2, endpoint: up.host });
        const cause = (error as Error).cause;
        expect(cause).toBeInstanceOf(TypeError);
        if (mode === "reset" || mode === "refused") expect((cause as Error).message).toBe("fetch failed");
        else expect((cause as Error).message).toMatch(/^resilience\.fetch: (a redirect from|more than 20)/);
        expect(String(error)).toBe(`RetryExhaustedError: ${(error as Error).message}`);
        expect(JSON.parse(JSON.stringify(error))).toEqual({
          name: "RetryExhaustedError",
          attempts: 2,
          endpoint: up.host,
        });
      }
    });
  }

  it("resolves with a 500 or 429 as fetch would; ky's HTTPError message has no query", async () => {
    for (const status of [500, 429]) {
      up.on((hit) => {
        hit.res.statusCode = status;
        if (status === 429) hit.res.setHeader("retry-after", "0");
        hit.res.end("no");
      });
      const options = { retry: { ...fast, maxAttempts: 2 } };
      const res = await createResilience(options).fetch(`${up.base}/v1/x${QUERY}`);
      expect(res.status).toBe(status);
      await res.body?.cancel();
      const error = await rejection(createClient({ resilience: options }).get(`${up.base}/v1/x${QUERY}`).text());
      expect(error).toMatchObject({ name: "HTTPError" });
      expect((error as Error).message).toBe(
        `Request failed with status code ${status} ${status === 500 ? "Internal Server Error" : "Too Many Requests"}: GET ${up.base}/v1/x`,
      );
      expect(leaks(error)).toEqual([]);
      // What a logger prints of the error itself (its `request` shown without its URL by Node).
      expect(inspect(error).split("\n")[0]).not.toMatch(/SECRETKEY1|TOKENVAL2/);
    }
  });

  it("a degradation rewrite over a refused origin: RetryExhaustedError, no secret", async () => {
    refused ||= await refusedOrigin();
    const resilience = createResilience({ retry: { ...fast, maxAttempts: 2 }, degradation: degradation({}) });
    resilience.degradation.setLevel("medium");
    const error = await failure(
      resilience.fetch(`${refused}/v1/jobs${QUERY}`, { method: "POST", body: JSON.stringify({ steps: 50 }) }),
    );
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(error).toMatchObject({ attempts: 2, endpoint: new URL(refused).host });
    expect(leaks(error)).toEqual([]);
  });
});

describe("chains", () => {
  function chained(hedge: boolean, second: string) {
    return createResilience({
      retry: { ...fast, maxAttempts: 2 },
      timeout: { attempt: 60 },
      fallback: fallback([
        {
          name: "gen",
          ...(hedge ? { hedge: { delay: 5 } } : {}),
          endpoints: [
            { name: "p", url: `${up.base}/v1?key=SECRETKEY1` },
            { name: "q", url: `${second}/v2?token=TOKENVAL2` },
          ],
        },
      ]),
    });
  }

  for (const hedge of [false, true]) {
    it(`${hedge ? "hedged" : "fixed"}: chain, errors per endpoint, order, cause, no secret`, async () => {
      refused ||= await refusedOrigin();
      up.on(() => {}); // p hangs: each attempt times out
      const error = await failure(chained(hedge, refused).fetch(`${up.base}/v1/x${QUERY}`));
      expect(error).toBeInstanceOf(FallbackExhaustedError);
      const { chain, errors, message, cause } = error as FallbackExhaustedError;
      expect(chain).toBe("gen");
      expect(Object.keys(errors).sort()).toEqual(["p", "q"]);
      expect(errors.p).toMatchObject({ name: "TimeoutError", phase: "attempt", timeout: 60, attempts: 2 });
      expect(errors.q).toBeInstanceOf(TypeError); // connection refused, after its own retries
      // The message lists them as they failed, and the cause is the last one's.
      const order = hedge ? ["q", "p"] : ["p", "q"];
      expect(message).toBe(
        `every endpoint of fallback chain "gen" failed (${order
          .map((n) => `${n}: ${(errors[n] as Error).message}`)
          .join("; ")})`,
      );
      expect(cause).toBe(errors[order[1] as string]);
      expect(leaks(error)).toEqual([]);
    });
  }

  it("an endpoint held open by Retry-After is skipped with its CircuitOpenError and retryAt", async () => {
    refused ||= await refusedOrigin();
    up.on((hit) => {
      hit.res.statusCode = 429;
      hit.res.setHeader("retry-after", "90");
      hit.res.end("later");
    });
    const resilience = createResilience({
      retry: { ...fast, maxAttempts: 1, maxRetryAfter: 1_000 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${up.base}/v1?key=SECRETKEY1` },
            { name: "q", url: `${refused}/v2?token=TOKENVAL2` },
          ],
        },
      ]),
    });
    const before = Date.now();
    const first = await resilience.fetch(`${up.base}/v1/x`);
    expect(first.status).toBe(429); // q failed with no response: p's answer is given
    await first.body?.cancel();
    const error = await failure(resilience.fetch(`${up.base}/v1/x`));
    expect(isFallbackExhaustedError(error)).toBe(true);
    const p = (error as FallbackExhaustedError).errors.p as CircuitOpenError;
    expect(isCircuitOpenError(p)).toBe(true);
    expect(p.key).toBe(up.host);
    expect(p.retryAt - before).toBeGreaterThanOrEqual(89_000);
    expect(p.retryAt - Date.now()).toBeLessThanOrEqual(90_000);
    expect(up.hits).toHaveLength(1); // nothing sent to p the second time
    expect(leaks(error)).toEqual([]);
  });
});

describe("the other refusals", () => {
  it("Retry-After beyond maxRetryAfter: the answer, then CircuitOpenError until the server's time", async () => {
    const inAMinute = new Date(Math.ceil((Date.now() + 120_000) / 1000) * 1000);
    up.on((hit) => {
      hit.res.statusCode = 429;
      hit.res.setHeader("retry-after", hit.path.startsWith("/date") ? inAMinute.toUTCString() : "90");
      hit.res.end("later");
    });
    for (const [path, until] of [
      ["/secs", () => Date.now() + 90_000],
      ["/date", () => inAMinute.getTime()],
    ] as const) {
      const resilience = createResilience({ retry: { ...fast, maxRetryAfter: 1_000 } });
      const answer = await resilience.fetch(`${up.base}${path}${QUERY}`);
      expect(answer.status).toBe(429);
      await answer.body?.cancel();
      const error = await failure(resilience.fetch(`${up.base}${path}${QUERY}`));
      expect(isCircuitOpenError(error)).toBe(true);
      expect((error as CircuitOpenError).key).toBe(up.host);
      expect(Math.abs((error as CircuitOpenError).retryAt - until())).toBeLessThan(1_500);
      expect((error as Error).message).toBe(
        `circuit for "${up.host}" is open until ${new Date((error as CircuitOpenError).retryAt).toISOString()}`,
      );
      expect(JSON.parse(JSON.stringify(error))).toEqual({
        name: "CircuitOpenError",
        key: up.host,
        retryAt: (error as CircuitOpenError).retryAt,
      });
    }
  });

  it("a full bulkhead: BulkheadRejectedError with key; timeout.total: phase total with the call's attempts", async () => {
    let n = 0;
    up.on((hit) => {
      n++;
      if (n === 1) {
        hit.res.statusCode = 503;
        hit.res.end("busy");
      } // the second attempt hangs
    });
    const resilience = createResilience({
      retry: { ...fast, maxAttempts: 3 },
      timeout: { total: 150 },
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
    });
    const first = resilience.fetch(`${up.base}/a${QUERY}`);
    await up.nth(1);
    const refusedCall = await failure(resilience.fetch(`${up.base}/b${QUERY}`));
    expect(refusedCall).toBeInstanceOf(BulkheadRejectedError);
    expect(isBulkheadRejectedError(refusedCall)).toBe(true);
    expect(refusedCall).toMatchObject({ key: up.host, message: `bulkhead for "${up.host}" is full` });
    const timedOut = await failure(first);
    expect(timedOut).toMatchObject({ name: "TimeoutError", phase: "total", timeout: 150, attempts: 2 });
    expect(leaks(timedOut)).toEqual([]);
  });

  it("execute(fn): RetryExhaustedError with attempts, no endpoint, the work's URL cut everywhere", async () => {
    const resilience = createResilience({ retry: { ...fast, maxAttempts: 3 } });
    for (const thrown of [
      new Error("GET https://u:PASSWD3@h.example/x?key=SECRETKEY1&token=TOKENVAL2 returned 503"),
      "GET https://h.example/x?key=SECRETKEY1",
      new Error(`callback /cb/${ENCODED} failed`),
    ]) {
      const error = await failure(
        resilience.execute(async () => {
          throw thrown;
        }),
      );
      expect(isRetryExhaustedError(error)).toBe(true);
      expect(error).toMatchObject({ attempts: 3, endpoint: undefined });
      expect((error as Error).message).toMatch(/^gave up after 3 attempts: /);
      expect(leaks(error)).toEqual([]);
    }
  });
});

describe("two copies of the library", () => {
  it("the root's guards know the other copy's errors; instanceof does not", async () => {
    vi.resetModules();
    const other = await import("../../src/index.ts");
    const otherFallback = await import("../../src/fallback/index.ts");
    expect(other.TimeoutError).not.toBe(TimeoutError);
    refused ||= await refusedOrigin();
    up.on(() => {});
    const inner = other.createResilience({
      retry: { ...fast, maxAttempts: 1 },
      timeout: { attempt: 40 },
      breaker: { failureThreshold: 1 },
      fallback: otherFallback.fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${up.base}/v1` },
            { name: "q", url: `${refused}/v2` },
          ],
        },
      ]),
    });
    const chainError = await failure(inner.fetch(`${up.base}/v1/x${QUERY}`));
    expect(chainError).not.toBeInstanceOf(FallbackExhaustedError);
    expect(isFallbackExhaustedError(chainError)).toBe(true);
    expect(isResilienceError(chainError)).toBe(true);
    expect(isTimeoutError((chainError as FallbackExhaustedError).errors.p)).toBe(true);
    // Both hosts are open now (threshold 1).
    const open = await failure(inner.fetch(`${up.base}/z`));
    expect(open).not.toBeInstanceOf(other.TimeoutError);
    expect(isCircuitOpenError(open)).toBe(true);
    const retried = await failure(
      inner.execute(
        async () => {
          throw new Error("no");
        },
        { retry: { maxAttempts: 1 } },
      ),
    );
    expect(isRetryExhaustedError(retried) && !(retried instanceof RetryExhaustedError)).toBe(true);
    expect(isConfigError(rejectionOf(() => other.createResilience({ retry: { maxAttempts: 0 } })))).toBe(true);

    // An outer layer of this copy over the other copy's layer.
    const hanging = other.createResilience({ retry: { ...fast, maxAttempts: 1 }, timeout: { attempt: 30 } });
    const outer = createResilience({ retry: { ...fast, maxAttempts: 2 }, fetch: hanging.fetch });
    const timeout = await failure(outer.fetch(`${up.base}/t${QUERY}`));
    expect(isTimeoutError(timeout)).toBe(true);
    expect(timeout).toMatchObject({ phase: "attempt", timeout: 30, attempts: 2 });
  });
});

/** What `make()` throws. */
function rejectionOf(make: () => unknown): unknown {
  try {
    make();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

/** What `make()` throws, or what the promise it returns rejects with (`execute` and `retry` check at once). */
async function refusal(make: () => Promise<unknown>): Promise<unknown> {
  try {
    await make();
  } catch (error) {
    return error;
  }
  throw new Error("expected a refusal");
}

describe("ConfigError names the path", () => {
  it("on every entry, the URL's secrets cut", async () => {
    const unreadable = {
      get maxAttempts(): number {
        throw new Error("https://h.example/?key=SECRETKEY1");
      },
    };
    const resilience = createResilience({ degradation: degradation({}) });
    const cases: Array<[string, unknown]> = [
      ["retry.maxAttempts", rejectionOf(() => createResilience({ retry: unreadable }))],
      [
        "execute.retry.maxAttempts",
        await refusal(() => resilience.execute(async () => 1, { retry: { maxAttempts: 0 } })),
      ],
      ["execute.retry.maxAttempts", await refusal(() => resilience.execute(async () => 1, { retry: unreadable }))],
      ['breaker("x").failureThreshold', rejectionOf(() => resilience.breaker("x", { failureThreshold: 0 }))],
      ["degradation.triggers.errorRate", rejectionOf(() => resilience.degradation.configureTriggers({ errorRate: 2 }))],
      ["retry.maxAttempts", await refusal(() => retry(async () => 1, { maxAttempts: 0 }))],
      ["resilience.retry.maxAttempts", rejectionOf(() => createClient({ resilience: { retry: unreadable } }))],
      [
        "resilience.retry.maxAttempts",
        rejectionOf(() =>
          resilientProxy({
            routes: [{ path: "/a", upstream: "https://h.example" }],
            resilience: { retry: { maxAttempts: 0 } },
          }),
        ),
      ],
      [
        "fallback.0.endpoints.0.url",
        rejectionOf(() =>
          fallback([{ name: "c", endpoints: [{ name: "p", url: `https://h.example/v1${QUERY}#frag` }] }]),
        ),
      ],
      [
        "fallback.0.endpoints.0.url",
        rejectionOf(() =>
          fallback([{ name: "c", endpoints: [{ name: "p", url: `https://u:PASSWD3@h.example/v1${QUERY}` }] }]),
        ),
      ],
      [
        "degradation.rules.0.match",
        rejectionOf(() => degradation({ rules: [{ match: `https://h.example/v1${QUERY}#f`, params: {} }] })),
      ],
    ];
    for (const [path, error] of cases) {
      expect(isConfigError(error)).toBe(true);
      expect((error as { path: string }).path).toBe(path);
      expect((error as Error).message.startsWith(`${path}: `)).toBe(true);
      expect(JSON.parse(JSON.stringify(error))).toEqual({ name: "ConfigError", path });
      expect(leaks(error)).toEqual([]);
    }
  });
});
