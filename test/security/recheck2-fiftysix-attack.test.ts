/**
 * Outside-in attack on three fixes of the fifty-sixth session: URL redaction reading each field of an error on its
 * own (src/core/redact-url.ts), `describe()` making a message that is no text inside its guard (src/core/errors.ts),
 * and `order: "adaptive"` ranking ties from the best score of their run (src/policies/endpoint-stats.ts). Aimed at
 * what errortext-fiftysix, policiesdoc-fiftysix and test/policies/adaptive-order.test.ts did not drive.
 *
 * Docs:
 * - SECURITY.md "No secret in events, errors, `health()` or `debugInfo()`": "URLs lose their userinfo …, query
 *   string and fragment … before they reach any of them (an error's causes included, an `AggregateError`'s errors,
 *   an error's own string and `URL` fields …)"; Limits: "a thrown object that is no error (no string `message` or
 *   `stack`), kept as the `cause`: the message that quotes it is cut, its own `toString()` is not"; "Through a
 *   layer, `resilience.execute(fn)` and `resilience.fallback.chain(name)` cut them."
 * - src/core/redact-url.ts JSDoc of `redactErrorChain`: "An error whose message or stack cannot be set (… a frozen
 *   one) is replaced by a plain `Error` of the same name, `code`, `errors` and URL fields …"; "one whose properties
 *   throw when read is left as it is, and the rest of the chain is cut all the same". CHANGELOG: "Each field is
 *   now read, and cut, on its own."
 * - docs/fallback.md: "`order: \"adaptive\"` ranks endpoints by a decaying recent success rate minus a latency
 *   penalty (60 s of latency costs 10 points), scores within 0.05 (0.05 included) of the best score of their run
 *   counting as a tie broken by `expectedQuality`, then by configured order (ties do not chain …)"; "A failing
 *   endpoint's recent failures fade with a 60 s half-life".
 *
 * How: `createResilience` and the errors (root), `fallback` (./fallback), `createClient` (./ky), `FallbackChain`
 * and `retry` (./policies), `TestClock` (./testing). One node:http server on 127.0.0.1 (test/helpers/http-upstream.ts);
 * a `fetch` transport of the test's own that sends with the real fetch, then throws a hostile error quoting the URL
 * with `user:pw@` and `?key=` (or, for adaptive order, waits an endpoint's latency on the TestClock first).
 *
 * Paths: plain GET, `execute(fn)`, a two-endpoint chain of the fallback stage, the ky client, `resilience.fallback
 * .chain(name).execute`, `retry(fn)`, `new FallbackChain().execute`; adaptive order through `FallbackChain` (all
 * 120 configured orders of five entries) and `createResilience({ fallback })` with the real server.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-sixth session, so plain `it`):
 * 1. SECURITY.md "an error's causes included"; JSDoc "the rest of the chain is cut all the same". Observed: a
 *    transport's (or work's) error with an own field holding a revoked Proxy (`request: revoked`) reaches the
 *    caller as the `RetryExhaustedError`'s `cause` (and a chain's `errors.a`) with its message and stack quoting
 *    `user:pw@…?key=…`, on the plain call, `execute`, the fallback stage and ky. Cause: `urlFields` asks
 *    `value instanceof URL` of each own field outside any guard; the revoked Proxy throws there and `redactLink`
 *    leaves the whole link uncut, though no property throws when read (its message was read, and its `cause` cut).
 * 2. Same sentence, "an `AggregateError`'s errors". Observed: an item of `errors` defined not enumerable keeps the
 *    key (message and stack) on all four paths. Cause: `cutList` walks `Object.keys`.
 * 3. Same sentence. Observed: a `cause` getter that makes a new error on each read, or an `errors` Proxy whose get
 *    trap does, hands the caller an uncut error: the redaction cut the one it read, in place, found nothing
 *    changed, and left the getter to make a fresh one (all four paths).
 * 4. SECURITY.md Limits "Through a layer, … `resilience.fallback.chain(name)` cut them" and "a thrown object that is
 *    no error …: the message that quotes it is cut". Observed: a layer chain whose work throws an `Error` whose
 *    `message` is a Symbol quoting the URL, or a plain object whose `toString()` quotes it, rejects with a
 *    `FallbackExhaustedError` whose message holds `user:pw@` and the key. Cause: `FallbackChain.execute` builds
 *    the message with `describe()` (now `String(symbol)`) after `redactEach`, which cuts only text and URLs, and
 *    nothing cuts the message then (the fallback stage's error is cut again by `resilience.fetch`; this one is not).
 *
 * Held (plain `it`):
 * - Several hostile fields at once (Symbol name + `url` field + throwing `cause` getter), `errors` with holes and a
 *   sparse tail, a frozen array of frozen errors, an `Array` subclass, a frozen error with Symbol name, `code`,
 *   `cause` and `errors`: no key on the plain call, `execute`, the fallback stage, ky.
 * - A frozen error's copy: same `name`, `code`, cut message; its (writable) `cause` cut in place and kept; `errors`
 *   cut, non-error items kept.
 * - Nothing to cut, nothing replaced: a frozen error, `url`/`URL` fields without secrets, an AggregateError (its
 *   `errors` the same list), a `String` message: the `cause` is the thrown object itself (plain call and execute).
 * - `describe()`: `retry(fn)` and `FallbackChain` messages read `Symbol(gpu busy)`, `42`, `Symbol(Odd)` (empty
 *   message, Symbol name), and the name for a `0` message; a Symbol message or name quoting the URL leaves no key in
 *   the layer's error text (plain, execute, ky, fallback stage).
 * - Adaptive: five entries whose scores chain pairwise (1, 0.953, 0.930, 0.892, 0.869) rank e2, e5 | e1, e4 | e3
 *   for all 120 configured orders; equal scores (fresh, and all failed at once) rank by quality then configured
 *   order for 3–5 entries; the layer with the real server gives the same order for three configured orders, and
 *   its next call goes in that order.
 *
 * Docs-silent (not pinned):
 * - An `errors` record's Symbol-keyed entry is not cut (a `FallbackExhaustedError`'s `errors` is keyed by names).
 * - A cut `errors` list is a plain `Array`: an `Array` subclass loses its class; trailing holes are dropped
 *   (`length` 5 becomes 2).
 */
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, FallbackExhaustedError, RetryExhaustedError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain, retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const SECRET = "sk-live-recheck2-0123456789";
const up = httpUpstream();
serveDuringFile(up);

/** A `String` object, asked without `instanceof` (a revoked Proxy throws on it). */
const kindOfString = (v: object): boolean => {
  try {
    return v instanceof String;
  } catch {
    return false;
  }
};

/** Where a secret lies in `value`: the paths of every string holding the key or the password, read by guarded walks. */
function secretPaths(value: unknown): string[] {
  const found: string[] = [];
  const seen = new Set<object>();
  const read = (from: object, key: PropertyKey): unknown => {
    try {
      return (from as Record<PropertyKey, unknown>)[key];
    } catch {
      return undefined;
    }
  };
  const walk = (v: unknown, path: string, depth: number): void => {
    if (typeof v === "symbol") v = v.description ?? "";
    const boxed = typeof v === "object" && v !== null && kindOfString(v);
    if (typeof v === "string" || boxed) {
      if (String(v).includes(SECRET) || String(v).includes(":pw@")) found.push(path);
      return;
    }
    if (typeof v !== "object" || v === null || depth > 8 || seen.has(v)) return;
    seen.add(v);
    let keys: PropertyKey[];
    try {
      keys = Reflect.ownKeys(v);
    } catch {
      return;
    }
    for (const key of new Set<PropertyKey>([...keys, "message", "stack", "cause", "errors", "name"]))
      walk(read(v, key), `${path}.${String(key)}`, depth + 1);
  };
  walk(value, "error", 0);
  return [...new Set(found)];
}

const quoted = (href: string): string => href.replace("http://", "http://user:pw@");
const hrefOf = (input: RequestInfo | URL): string =>
  typeof input === "string" ? input : input instanceof URL ? input.href : input.url;

/** Sends with the real fetch (the server sees the request), then throws `make`'s error for the URL it was given. */
function throwingTransport(make: (href: string) => unknown) {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const res = await fetch(input, init);
    await res.body?.cancel();
    throw make(quoted(hrefOf(input)));
  };
}

const one = { maxAttempts: 1 } as const;
/** Pinned as `it.fails` when found; fixed in the same session, so plain `it`. */
const pinned = it;

/** `make`'s error through the plain call, `execute`, a fallback chain of the layer and the ky client: where keys remain. */
async function leaksOnEveryPath(make: (href: string) => unknown): Promise<Record<string, string[]>> {
  const url = `${up.base}/jobs?key=${SECRET}`;
  const layer = createResilience({ budget: false, retry: one, fetch: throwingTransport(make) });
  const plain = secretPaths(await rejection(layer.fetch(url)));
  const exec = secretPaths(
    await rejection(
      createResilience({ budget: false, retry: one }).execute(() => {
        throw make(quoted(url));
      }),
    ),
  );
  const chained = createResilience({
    budget: false,
    retry: one,
    fetch: throwingTransport(make),
    fallback: fallback([
      {
        name: "m",
        endpoints: [
          { name: "a", url: `${up.base}/a` },
          { name: "b", url: `${up.base}/b` },
        ],
      },
    ]),
  });
  const chain = secretPaths(await rejection(chained.fetch(`${up.base}/a/jobs?key=${SECRET}`)));
  const api = createClient({ resilience: { budget: false, retry: one, fetch: throwingTransport(make) } });
  const ky = secretPaths(await rejection(api.get(url)));
  return { plain, exec, chain, ky };
}
const none = { plain: [], exec: [], chain: [], ky: [] };

const revokedProxy = (): object => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
};

describe("URL redaction, each field on its own", () => {
  it("several hostile fields at once (Symbol name, throwing cause getter, holes, frozen, subclass, Proxy errors): all cut", async () => {
    class Mirrors extends Array<unknown> {}
    const makers: Record<string, (href: string) => unknown> = {
      "Symbol name + cause getter + stack getter": (href) => {
        const e = Object.assign(new Error(`request to ${href} failed`), { name: Symbol("x"), url: href });
        Object.defineProperty(e, "cause", {
          get() {
            throw new Error("no cause");
          },
        });
        return e;
      },
      "errors with holes and a sparse tail": (href) => {
        const list: unknown[] = [];
        list[1] = new Error(`mirror ${href}`);
        list[7] = `plain ${href}`;
        list.length = 12;
        return Object.assign(new AggregateError([], `mirrors of ${href}`), { errors: list });
      },
      "a frozen errors array of frozen errors": (href) =>
        new AggregateError(
          Object.freeze([Object.freeze(new Error(`mirror ${href}`)), Object.freeze(new TypeError(`x ${href}`))]),
          `mirrors of ${href}`,
        ),
      "an Array subclass": (href) => {
        const list = new Mirrors();
        list.push(new Error(`mirror ${href}`));
        return Object.assign(new AggregateError([], "m"), { errors: list });
      },
      "a frozen error with Symbol name, code, cause and errors": (href) =>
        Object.freeze(
          Object.assign(new Error(`request to ${href} failed`, { cause: new Error(`inner ${href}`) }), {
            name: Symbol("odd"),
            code: "ECONNRESET",
            errors: [new Error(`m ${href}`)],
          }),
        ),
    };
    for (const [kind, make] of Object.entries(makers)) expect(await leaksOnEveryPath(make), kind).toEqual(none);
  });

  it("a frozen error is replaced by a copy with its name, code, cut cause and cut errors", async () => {
    const href = quoted(`${up.base}/jobs?key=${SECRET}`);
    const inner = new Error(`inner ${href}`);
    const original = Object.freeze(
      Object.assign(new Error(`request to ${href} failed`, { cause: inner }), {
        name: "UpstreamError",
        code: "ECONNRESET",
        errors: [new Error(`mirror ${href}`), "ok"],
      }),
    );
    const layer = createResilience({ budget: false, retry: one, fetch: throwingTransport(() => original) });
    const error = (await rejection(layer.fetch(`${up.base}/jobs`))) as RetryExhaustedError;
    const copy = error.cause as Error & { code?: unknown; errors?: unknown[] };
    expect(copy).not.toBe(original);
    expect([copy.name, copy.code, copy.message]).toEqual([
      "UpstreamError",
      "ECONNRESET",
      `request to ${up.base}/jobs failed`,
    ]);
    expect(copy.cause).toBe(inner); // not frozen: cut in place
    expect(inner.message).toBe(`inner ${up.base}/jobs`);
    expect(copy.errors?.map((e) => (e instanceof Error ? e.message : e))).toEqual([`mirror ${up.base}/jobs`, "ok"]);
    expect(secretPaths(error)).toEqual([]);
  });

  it("an error with nothing to cut stays the same object (frozen, URL fields without secrets, errors list, String message)", async () => {
    const clean: Record<string, () => unknown> = {
      frozen: () => Object.freeze(new Error("socket hang up")),
      "url field": () => Object.assign(new Error("refused"), { url: `${up.base}/jobs`, where: new URL(up.base) }),
      aggregate: () => new AggregateError([new Error("a"), Object.freeze(new Error("b"))], "both"),
      "String message": () => Object.assign(new Error("x"), { message: new String("boxed") }),
    };
    for (const [kind, make] of Object.entries(clean)) {
      const thrown = make();
      const layer = createResilience({ budget: false, retry: one, fetch: throwingTransport(() => thrown) });
      const error = (await rejection(layer.fetch(`${up.base}/jobs`))) as RetryExhaustedError;
      expect(error.cause, kind).toBe(thrown);
      const lists = (thrown as { errors?: unknown }).errors;
      if (lists) expect((error.cause as { errors: unknown }).errors, kind).toBe(lists);
      const viaExec = await rejection(
        createResilience({ budget: false, retry: one }).execute(() => {
          throw thrown;
        }),
      );
      expect((viaExec as RetryExhaustedError).cause, kind).toBe(thrown);
    }
  });

  pinned("an own field holding a revoked Proxy does not keep the key in the error's message and cause", async () => {
    // SECURITY.md: "(an error's causes included …)"; JSDoc: "one whose properties throw when read is left as
    // it is, and the rest of the chain is cut all the same". Here no property throws when read: the value
    // held does, when asked whether it is a URL.
    const leaks = await leaksOnEveryPath((href) =>
      Object.assign(new Error(`request to ${href} failed`, { cause: new Error(`inner ${href}`) }), {
        request: revokedProxy(),
      }),
    );
    expect(leaks).toEqual(none);
  });

  pinned("an AggregateError's errors item defined not enumerable is cut as the others are", async () => {
    // SECURITY.md: "(an error's causes included, an `AggregateError`'s errors, …)".
    const leaks = await leaksOnEveryPath((href) => {
      const list: unknown[] = [new Error("first mirror refused")];
      Object.defineProperty(list, 1, { value: new Error(`mirror ${href} refused`), enumerable: false });
      return Object.assign(new AggregateError([], "mirrors failed"), { errors: list });
    });
    expect(leaks).toEqual(none);
  });

  pinned(
    "a cause getter or an errors Proxy that gives a new error on each read: the caller reads none uncut",
    async () => {
      const getter = await leaksOnEveryPath((href) =>
        Object.defineProperty(new Error("request failed"), "cause", {
          get: () => new Error(`socket to ${href} closed`),
        }),
      );
      const proxy = await leaksOnEveryPath((href) =>
        Object.assign(new AggregateError([], "mirrors failed"), {
          errors: new Proxy([new Error("a")], {
            get: (target, key) => (key === "0" ? new Error(`via ${href}`) : Reflect.get(target, key)),
          }),
        }),
      );
      expect({ getter, proxy }).toEqual({ getter: none, proxy: none });
    },
  );
});

/** An `Error` whose `message` (and perhaps `name`) was set to something that is no string. */
function withMessage(message: unknown, name?: unknown): Error {
  const error = new Error("placeholder");
  (error as { message: unknown }).message = message;
  if (name !== undefined) (error as { name: unknown }).name = name;
  return error;
}

describe("describe(): a message that is no text", () => {
  const cases: [string, () => Error, string][] = [
    ["a Symbol message", () => withMessage(Symbol("gpu busy")), "Symbol(gpu busy)"],
    ["a number message", () => withMessage(42), "42"],
    ["an empty message with a Symbol name", () => withMessage("", Symbol("Odd")), "Symbol(Odd)"],
    ["a zero message", () => withMessage(0, "ZeroError"), "ZeroError"],
  ];

  it("RetryExhaustedError and FallbackExhaustedError say what the error holds (retry(fn), FallbackChain)", async () => {
    for (const [kind, make, says] of cases) {
      const error = make();
      const exhausted = await rejection(
        retry(
          () => {
            throw error;
          },
          { maxAttempts: 1 },
        ),
      );
      expect(exhausted, kind).toBeInstanceOf(RetryExhaustedError);
      expect((exhausted as Error).message, kind).toBe(`gave up after 1 attempt: ${says}`);
      const chain = new FallbackChain<number, number>("c");
      chain
        .add(
          () => {
            throw new Error("first");
          },
          { name: "a" },
        )
        .add(
          () => {
            throw error;
          },
          { name: "b" },
        );
      const failed = await rejection(chain.execute(0));
      expect(failed, kind).toBeInstanceOf(FallbackExhaustedError);
      expect((failed as Error).message, kind).toBe(
        `every endpoint of fallback chain "c" failed (a: first; b: ${says})`,
      );
    }
  });

  it("a Symbol message or name quoting a URL: the layer's RetryExhaustedError text holds no key (fetch, execute, ky, fallback stage)", async () => {
    for (const make of [
      (href: string) => withMessage(Symbol(`request to ${href} failed`)),
      (href: string) => withMessage("", Symbol(`request to ${href} failed`)),
    ]) {
      const url = `${up.base}/jobs?key=${SECRET}`;
      const layer = createResilience({ budget: false, retry: one, fetch: throwingTransport(make) });
      const plain = (await rejection(layer.fetch(url))) as Error;
      const exec = (await rejection(
        createResilience({ budget: false, retry: one }).execute(() => {
          throw make(quoted(url));
        }),
      )) as Error;
      const api = createClient({ resilience: { budget: false, retry: one, fetch: throwingTransport(make) } });
      const ky = (await rejection(api.get(url))) as Error;
      const chained = createResilience({
        budget: false,
        retry: one,
        fetch: throwingTransport(make),
        fallback: fallback([{ name: "m", endpoints: [{ name: "a", url: `${up.base}/a` }] }]),
      });
      const chain = (await rejection(chained.fetch(`${up.base}/a/jobs?key=${SECRET}`))) as Error;
      const texts = [plain, exec, ky, chain].map((e) => `${e.name}: ${e.message}\n${e.stack}`);
      expect(texts.filter((t) => t.includes(SECRET) || t.includes(":pw@"))).toEqual([]);
      expect(plain.message).toContain(`Symbol(request to ${up.base}/jobs`);
    }
  });

  pinned(
    "resilience.fallback.chain(name): a work error whose message is a Symbol quoting a URL leaves no key in the FallbackExhaustedError's message",
    async () => {
      // SECURITY.md Limits: "Through a layer, `resilience.execute(fn)` and `resilience.fallback.chain(name)` cut them."
      const href = quoted(`${up.base}/jobs?key=${SECRET}`);
      const layer = createResilience({ budget: false, retry: one, fallback: fallback([]) });
      const chain = layer.fallback.chain<number, number>("gen");
      chain
        .add(
          () => {
            throw withMessage(Symbol(`request to ${href} failed`));
          },
          { name: "gpu" },
        )
        .add(
          () => {
            throw { toString: () => `offline: ${href}` };
          },
          { name: "cpu" },
        );
      const failed = (await rejection(chain.execute(1))) as FallbackExhaustedError;
      expect(failed).toBeInstanceOf(FallbackExhaustedError);
      expect(failed.message).not.toContain(SECRET);
      expect(failed.message).not.toContain(":pw@");
    },
  );
});

/** Every ordering of `items`. */
const permutations = <T>(items: readonly T[]): T[][] =>
  items.length <= 1
    ? [[...items]]
    : items.flatMap((item, i) =>
        permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
      );

const sleep = (clock: TestClock, ms: number): Promise<void> =>
  ms > 0 ? new Promise((resolve) => clock.setTimer(resolve, ms)) : Promise.resolve();

/**
 * Five entries; one run at 0 s where e1..e4 (quality 0.9, 0.8, 0.7, 0.6, so tried in that order whatever the
 * configured order) fail after 60 s, 0 s, 56 s and 10 s, and e5 (quality 0.5) serves at once; read 60 s after.
 * By the guide's formula (failures and latency fading with a 60 s half-life, 60 s of latency 10 points) the
 * scores are then e5 1, e2 ≈0.953, e1 ≈0.930, e4 ≈0.892, e3 ≈0.869: runs {e5, e2} (0.047), {e1, e4} (e1 is
 * 0.070 below e5; e4 0.038 below e1), {e3} (0.061 below e1), although each score is within 0.05 of the next.
 * Within runs by quality: e2 (0.8) before e5 (0.5).
 */
const LATENCY: Record<string, number> = { e1: 60_000, e2: 0, e3: 56_000, e4: 10_000 };
const QUALITY: Record<string, number> = { e1: 0.9, e2: 0.8, e3: 0.7, e4: 0.6, e5: 0.5 };
const RANKED = ["e2", "e5", "e1", "e4", "e3"];

describe('order: "adaptive"', () => {
  it("FallbackChain on a TestClock: runs from the best of each run, quality within, the same for all 120 configured orders", async () => {
    const seen = new Set<string>();
    for (const configured of permutations(Object.keys(QUALITY))) {
      const clock = new TestClock(0);
      const chain = new FallbackChain<number, string>("c", { order: "adaptive", clock });
      const tried: string[] = [];
      for (const name of configured)
        chain.add(
          async () => {
            tried.push(name);
            if (name === "e5") return name;
            await sleep(clock, LATENCY[name] as number);
            throw new Error(name);
          },
          { name, expectedQuality: QUALITY[name] },
        );
      expect(chain.ordered()).toEqual(["e1", "e2", "e3", "e4", "e5"]);
      expect(await clock.run(chain.execute(0))).toBe("e5");
      expect(tried).toEqual(["e1", "e2", "e3", "e4", "e5"]);
      await clock.advance(60_000);
      seen.add(chain.ordered().join());
    }
    expect([...seen]).toEqual([RANKED.join()]);
  });

  it("equal scores and quality ties: quality, then configured order (FallbackChain, 3 to 5 entries)", async () => {
    for (const size of [3, 4, 5]) {
      const names = ["p", "q", "r", "s", "t"].slice(0, size);
      const quality: Record<string, number> = { p: 0.5, q: 0.9, r: 0.5, s: 0.9, t: 0.7 };
      for (const configured of permutations(names)) {
        const clock = new TestClock(0);
        const chain = new FallbackChain<number, number>("c", { order: "adaptive", clock });
        for (const name of configured)
          chain.add(
            () => {
              throw new Error(name);
            },
            { name, expectedQuality: quality[name] },
          );
        const fresh = [...configured].sort((a, b) => (quality[b] as number) - (quality[a] as number));
        expect(chain.ordered()).toEqual(fresh);
        // Every entry fails once at the same instant: all score 0.8, still equal.
        await rejection(chain.execute(0));
        expect(chain.ordered()).toEqual(fresh);
      }
    }
  });

  it("createResilience({ fallback }) with real servers: the same order, whatever the configured order", async () => {
    const seen = new Set<string>();
    for (const configured of [
      ["e1", "e2", "e3", "e4", "e5"],
      ["e5", "e4", "e3", "e2", "e1"],
      ["e3", "e5", "e1", "e4", "e2"],
    ]) {
      up.reset();
      up.on((hit) => {
        const name = hit.path.split("/")[1] as string;
        hit.res.writeHead(name === "e5" ? 200 : 503).end(name);
      });
      const clock = new TestClock(0);
      const layer = createResilience({
        clock,
        budget: false,
        breaker: false,
        retry: { maxAttempts: 1 },
        // A transport of the test's own: the endpoint's latency on the layer's clock, then the real server.
        fetch: async (input, init) => {
          await sleep(clock, LATENCY[new URL(hrefOf(input)).pathname.split("/")[1] as string] ?? 0);
          return fetch(input, init);
        },
        fallback: fallback([
          {
            name: "gen",
            order: "adaptive",
            endpoints: configured.map((name) => ({
              name,
              url: `${up.base}/${name}`,
              expectedQuality: QUALITY[name],
            })),
          },
        ]),
      });
      // A call is routed to the chain by its first configured endpoint's URL.
      const call = `${up.base}/${configured[0]}/jobs`;
      const res = await clock.run(layer.fetch(call));
      expect(await res.text()).toBe("e5");
      expect(up.hits.map((h) => h.path)).toEqual(["/e1/jobs", "/e2/jobs", "/e3/jobs", "/e4/jobs", "/e5/jobs"]);
      await clock.advance(60_000);
      seen.add(layer.fallback.chain("gen").ordered().join());
      // The next call goes in that order: e2 now serves.
      up.reset();
      up.on((hit) => hit.res.writeHead(200).end(hit.path));
      const next = await clock.run(layer.fetch(call));
      expect(await next.text()).toBe("/e2/jobs");
    }
    expect([...seen]).toEqual([RANKED.join()]);
  });
});
