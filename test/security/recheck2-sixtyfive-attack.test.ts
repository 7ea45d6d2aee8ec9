/**
 * Outside-in attack on the sixty-fifth session's fixes, rechecked on every path: `on(name)` with a name that is no
 * string, the init-field values refused at once, the naming of non-plain values in the runtime's refusals (layer and
 * ky client), a chain transform's `set` then `append`, and symbol keys in options.
 *
 * Docs:
 * - docs/health-and-events.md (Events): "A name that is not one of the eight below (a typo, or anything but a
 *   string: it is never converted, so an object whose `toString` says `"retry"` is refused) is a `TypeError` at
 *   once, which lists them."
 * - docs/retry.md: "every value fetch takes for `cache`, `mode`, `credentials`, `redirect`, `referrerPolicy`,
 *   `priority` and `duplex` is a plain word, so text that is not one (letters, digits, spaces and `_.,+-`; a key
 *   pasted there) or no text at all is refused at once in every build, a `TypeError` naming it by its kind
 *   (`init.mode is no value fetch takes, got a string`), before a runtime's message could quote it."; (ky) "a value
 *   that is no plain word is named `a string` there too". SECURITY.md table, "The caller's mistakes never trip a
 *   breaker": "… reject at once with a `TypeError`: never retried, never counted, no timer left".
 * - SECURITY.md, Limits, "A key given as an option's value": "… and the runtime's own for an `init` field or method
 *   its `Request` refuses, `mode: "sk_live_…"`, on the ky client's calls too). A URL in it is cut (and outside the
 *   layer's options, text that is no plain word, letters, digits, spaces and `_.,+-`, is named `a string`)".
 *   CHANGELOG (Fixed): "Through the ky client, which builds the `Request` itself, the platform's refusal of a method
 *   or one of those fields quoted the value the same way; it is now told the same way."
 * - docs/fallback.md: "An endpoint's own `headers`, and a header the `transform` writes with `headers.set` on the
 *   request it is given, are the endpoint's and are sent, whatever the value (…), as long as it is sent as it was
 *   set: one the transform then `append`s to is judged as any other header below."; "Under another name
 *   (`append`ed, or in a `Headers` of the transform's own, such as `x-goog-api-key` holding the caller's
 *   `x-api-key`; …) it stays home when it holds one of those values or parts of 8 characters or more".
 * - docs/options.md: "(a key that is a symbol names no option: it is never read, so never refused …)";
 *   "`createResilience`, `fallback([…])`, `degradation({…})`, the ky client and `resilientProxy` check their
 *   options"; "A value that cannot be read (a getter that throws, a revoked `Proxy`) is a `ConfigError`".
 *
 * How: root (`createResilience`), ./fallback, ./degradation, ./ky (`createClient`, call, `extend`, `create`, `init`
 * hook), ./cloudflare (`resilientProxy`, its `fetch` called as a plain function in node); two node:http servers on
 * 127.0.0.1 (httpUpstream). No clock: nothing here waits (retries are refused before any wait, or off).
 *
 * Paths: plain call, `Request` input (valid own `mode`/`credentials`/`cache`, `init` overriding), chain (plain and
 * `Request` input), keyed hedge, degradation rewrite (JSON POST at level `low`), ky client (call, top-level options,
 * `extend` object and function, `create`, `init` hook), `resilientProxy` (upstream route).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-fifth session 1 to 3 were
 * fixed, so plain `it`, and 4 was answered by the docs: options.md now says those entries copy symbol keys, a getter
 * read as they copy it, so its tests assert that):
 * 1. SECURITY Limits "text that is no plain word … is named `a string`". Observed: values are replaced in the
 *    message one after another, so a shorter non-plain value given beside the key, found inside it, is replaced
 *    first and the rest of the key no longer matches: `{ method: "!", referrer: "sk!live+SECRET" }` rejects with
 *    `Referrer "ska stringlive+SECRET" is not a valid URL.` (also `integrity: "/"` with `redirect: "manual"`);
 *    through ky, `{ cache: "/", mode: "sk/live+SECRET==" }` throws `Request constructor: ska stringlive+SECRET== is
 *    not an accepted type…`. Test "defect 1: …".
 * 2. CHANGELOG "it is now told the same way" / retry.md (ky) "a value that is no plain word is named `a string`
 *    there too". Observed: only the call's own options are looked at: a `mode`, `method`, `credentials` or
 *    `referrerPolicy` given to `createClient`, `extend` (object or function), `create`, or set by an `init` hook
 *    reaches the caller quoted whole (`Request constructor: sk/live+SECRET== is not an accepted type…`,
 *    `'sk/live+SECRET==' is not a valid HTTP method.`). Test "defect 2: …".
 * 3. fallback.md "as long as it is sent as it was set: one the transform then `append`s to is judged as any other
 *    header"; "in a `Headers` of the transform's own, such as `x-goog-api-key` holding the caller's `x-api-key` … it
 *    stays home". Observed: a name in the endpoint's own `headers` is never judged: a transform that `append`s the
 *    caller's `x-api-key` to it (`mine, sk-ant-SECRET-42`), deletes and re-appends it, or returns a new `Headers`
 *    with the caller's key under it (`x-goog-api-key`, the docs' own example, when the endpoint names that header)
 *    sends the key to the other origin. Test "defect 3: …".
 * 4. options.md "a key that is a symbol names no option: it is never read, so never refused". Observed: a symbol
 *    key is read (and a getter's throw escapes raw, no `ConfigError`) in a `fallback([…])` chain and endpoint, in
 *    `degradation({…})` (top level, a rule, a rule's `params`) and in `resilientProxy`'s options (top level and
 *    `resilience`, read and its throw swallowed; a route, a route's chain and its endpoints, read twice, throw
 *    raw). `createResilience`'s nested stages and `createClient({ resilience })`
 *    never read one. Tests "defect 4: …".
 *
 * Held (plain `it`):
 * - `on(name)`: a `String` object, an array, a number, `null`, `undefined`, a BigInt, a function, an object with
 *   spying `toString`/`valueOf`/`Symbol.toPrimitive`, a `Proxy` and a URL are refused with the eight names, none of
 *   them converted or touched (no spy ran, no trap fired), the URL named `a string`.
 * - Each of the seven fields, given a key, `/`, `é`, `cors\n`, a `String` object, an array, 5, `null`, `true`, a
 *   BigInt, a symbol or an object, is refused at once with the documented message (kind only), no cause, nothing
 *   sent, no `request`/`retry` event, `debugInfo().totals.calls` 0, no breaker; on a `Request` input whose own
 *   fields are valid, a chain (plain and `Request`), a keyed hedge and a degradation rewrite too. Every value fetch
 *   takes (`""` and `strict-origin-when-cross-origin` for `referrerPolicy`, `half`, …) is sent; `referrer` and
 *   `window` are not judged by that rule. An `init` getter is read once (one that turns into a key after the first
 *   read never reaches fetch). A chain transform returning `mode: <key>` is ignored (the call is sent). The proxy
 *   forwards a client `Request` with every field set.
 * - Messages: the layer's `referrer: <key>` and ky's `mode` as a `String` object, an array, a nested array, unicode,
 *   `:` (colliding with the message's own text) and `method: <key>` name it `a string`, no cause.
 * - Transform headers: `set` then `delete` then `append`, `set` under another case then `append`, `set` of the
 *   caller's value then `append`, `set` of the caller's own name then `append`, a new `Headers` copy appended to, and
 *   `Headers.prototype.set.call` keep the key home; a `set` of the caller's value is sent, as documented.
 *
 * Docs-silent (not pinned):
 * - A transform that `set`s the caller's value and returns a new `Headers` holding that same value sends it (it is
 *   sent as it was set). A transform's extra `mode`/`credentials` keys are ignored without a word.
 * - ky's own options (`createClient`'s top level, `extend`, `create`) read a symbol key, as ky's spread does;
 *   `createClient` names a throwing one `Symbol(kytop)` in a ConfigError, `extend`/`create` let the throw escape.
 * - A ky `beforeRequest` hook that builds `new Request(req, { mode: key })` itself rejects with the platform's
 *   message quoting the key (the hook's own code threw).
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection, thrown } from "../helpers/settled.ts";

/** A key that is no URL and no plain word. */
const K = "sk/live+SECRET==";
const KEY = "sk-ant-SECRET-42";
const NAMES = "retry, request, breaker, fallback, degradation, replay, redirect, store";
const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const says = (e: unknown): string => {
  const parts: string[] = [];
  for (let at = e as { message?: unknown; stack?: unknown; cause?: unknown } | undefined, i = 0; at && i < 8; i++) {
    parts.push(String(at.message), String(at.stack));
    at = at.cause as typeof at;
  }
  return parts.join("\n");
};
/** What a ky call did: thrown at once, rejected, or resolved. */
const kyOutcome = async (call: () => Promise<Response>): Promise<unknown> => {
  try {
    return await call().then(
      (res) => res.status,
      (error: unknown) => error,
    );
  } catch (error) {
    return error;
  }
};
const FIELDS = ["cache", "mode", "credentials", "redirect", "referrerPolicy", "priority", "duplex"] as const;
const BAD: Array<[unknown, string]> = [
  [K, "a string"],
  ["/", "a string"],
  ["é", "a string"],
  ["cors\n", "a string"],
  [new String("cors"), "an object"],
  [["cors"], "an object"],
  [5, "5"],
  [null, "null"],
  [true, "true"],
  [10n, "a bigint"],
  [Symbol("cors"), "a symbol"],
  [{}, "an object"],
];
const refusal = (field: string, shown: string) =>
  new TypeError(`resilience.fetch: init.${field} is no value fetch takes, got ${shown}`);
const FAST = { retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 1, jitter: "none" as const } };
/** A layer and what it heard. */
const watched = (options: Parameters<typeof createResilience>[0]) => {
  const resilience = createResilience(options);
  const heard: string[] = [];
  for (const name of ["request", "retry", "fallback", "breaker"] as const) resilience.on(name, () => heard.push(name));
  return { resilience, heard };
};
const chainOf = (hedge?: { delay: number }) =>
  fallback([
    {
      name: "gen",
      ...(hedge ? { hedge } : {}),
      endpoints: [
        { name: "p", url: `${a.base}/p` },
        { name: "q", url: `${b.base}/q` },
      ],
    },
  ]);

describe("on(name) with a name that is no string", () => {
  it("is refused with the eight names, never converted nor touched", () => {
    const { resilience } = watched({ retry: false });
    const touched: string[] = [];
    const touch = (what: string): string => {
      touched.push(what);
      return "retry";
    };
    const spy = {
      toString: () => touch("toString"),
      valueOf: () => touch("valueOf"),
      [Symbol.toPrimitive]: () => touch("toPrimitive"),
    };
    const trap = new Proxy({}, { get: (_t, key) => touch(`get ${String(key)}`) });
    const cases: Array<[unknown, string]> = [
      [new String("retry"), "an object"],
      [["retry"], "an object"],
      [5, "5"],
      [null, "null"],
      [undefined, "undefined"],
      [10n, "a bigint"],
      [() => "retry", "a function"],
      [spy, "an object"],
      [trap, "an object"],
      ["https://api.example/v1?key=sk_live_123", "a string"],
    ];
    for (const [name, shown] of cases) {
      expect(thrown(() => resilience.on(name as never, () => {}))).toEqual(
        new TypeError(`on(${shown}, listener): unknown event, expected one of ${NAMES}`),
      );
    }
    expect(touched).toEqual([]);
  });
});

describe("init fields: a value no fetch takes is refused at once, on every path", () => {
  it("plain call: every field, every bad value, refused with its kind; nothing sent, heard or counted", async () => {
    const { resilience, heard } = watched(FAST);
    for (const field of FIELDS) {
      for (const [value, shown] of BAD) {
        const error = await rejection(resilience.fetch(`${a.base}/x`, { [field]: value } as RequestInit));
        expect(error).toEqual(refusal(field, shown));
        expect((error as Error).cause).toBeUndefined();
        expect(says(error)).not.toContain("SECRET");
      }
    }
    expect([a.hits.length, heard, resilience.debugInfo().totals.calls]).toEqual([0, [], 0]);
    expect(resilience.health().breakers).toEqual({});
  });

  it("every value fetch takes is sent; referrer and window are not judged by the plain-word rule", async () => {
    const { resilience } = watched({ retry: false });
    const good: Record<string, string[]> = {
      cache: ["default", "no-store", "reload", "no-cache", "force-cache"],
      mode: ["cors", "no-cors", "same-origin"],
      credentials: ["omit", "same-origin", "include"],
      redirect: ["follow", "manual"],
      referrerPolicy: [
        "",
        "no-referrer",
        "no-referrer-when-downgrade",
        "same-origin",
        "origin",
        "strict-origin",
        "origin-when-cross-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
      ],
      priority: ["high", "low", "auto"],
      duplex: ["half"],
    };
    const sent: string[] = [];
    for (const [field, values] of Object.entries(good)) {
      for (const value of values) {
        const res = await resilience.fetch(`${a.base}/ok`, { [field]: value } as RequestInit);
        sent.push(`${field}=${value}:${res.status}`);
      }
    }
    expect(sent.filter((line) => !line.endsWith(":200"))).toEqual([]);
    // A referrer that is a URL holding `/` and `?` passes; `window: null` too.
    const res = await resilience.fetch(`${a.base}/ok`, { referrer: `${a.base}/from?k=1`, window: null });
    expect(res.status).toBe(200);
    // A referrer that is no URL is the runtime's refusal, not the plain-word rule's.
    const error = await rejection(resilience.fetch(`${a.base}/ok`, { referrer: K }));
    expect((error as Error).message).toBe(
      'resilience.fetch: this runtime refuses the call: Referrer "a string" is not a valid URL.',
    );
  });

  it("an init getter is read once: one that turns into a key after the check never reaches fetch", async () => {
    const { resilience } = watched({ retry: false });
    let reads = 0;
    const init = {
      get mode() {
        reads++;
        return reads === 1 ? "cors" : K;
      },
    };
    expect((await resilience.fetch(`${a.base}/g`, init as RequestInit)).status).toBe(200);
    expect(reads).toBe(1);
    let onRequest = 0;
    const overriding = {
      get credentials() {
        onRequest++;
        return "include";
      },
    };
    expect((await resilience.fetch(new Request(`${a.base}/g`), overriding as RequestInit)).status).toBe(200);
    expect(onRequest).toBe(1);
  });

  it("Request input with valid fields of its own, init overriding with a bad one: refused; valid overrides go", async () => {
    const { resilience, heard } = watched(FAST);
    const own = { mode: "same-origin", credentials: "include", cache: "no-store" } as const;
    for (const field of ["mode", "credentials", "cache"] as const) {
      const error = await rejection(resilience.fetch(new Request(`${a.base}/r`, own), { [field]: K }));
      expect(error).toEqual(refusal(field, "a string"));
    }
    expect([a.hits.length, heard]).toEqual([0, []]);
    const res = await resilience.fetch(new Request(`${a.base}/r`, own), { mode: "cors", credentials: "omit" });
    expect(res.status).toBe(200);
  });

  it("chain, Request into a chain, keyed hedge, degradation rewrite: refused before any endpoint", async () => {
    a.on((hit) => hit.res.writeHead(503).end());
    const chain = watched({ ...FAST, fallback: chainOf() });
    expect(await rejection(chain.resilience.fetch(`${a.base}/p`, { credentials: K } as never))).toEqual(
      refusal("credentials", "a string"),
    );
    const request = new Request(`${a.base}/p`, { mode: "cors", credentials: "include" });
    expect(await rejection(chain.resilience.fetch(request, { cache: ["no-store"] } as never))).toEqual(
      refusal("cache", "an object"),
    );
    const hedge = watched({ ...FAST, retry: { ...FAST.retry, idempotencyKey: true }, fallback: chainOf({ delay: 1 }) });
    const post = { method: "POST", body: "{}", headers: { "idempotency-key": "k-1" } };
    expect(await rejection(hedge.resilience.fetch(`${a.base}/p`, { ...post, duplex: "full\r\n" } as never))).toEqual(
      refusal("duplex", "a string"),
    );
    const rewrite = watched({
      ...FAST,
      degradation: degradation({ rules: [{ match: `${a.base}/d`, params: { steps: "steps" } }] }),
    });
    rewrite.resilience.degradation?.setLevel("low");
    const json = { method: "POST", body: '{"steps":50}', headers: { "content-type": "application/json" } };
    expect(await rejection(rewrite.resilience.fetch(`${a.base}/d`, { ...json, priority: K } as never))).toEqual(
      refusal("priority", "a string"),
    );
    expect([a.hits.length, b.hits.length, chain.heard, hedge.heard, rewrite.heard]).toEqual([0, 0, [], [], []]);
    expect(chain.resilience.health().fallback.gen?.fallbacks).toEqual(
      hedge.resilience.health().fallback.gen?.fallbacks,
    );
    expect(chain.resilience.debugInfo().totals.calls + hedge.resilience.debugInfo().totals.calls).toBe(0);
  });

  it("a chain transform returning mode: <key> is ignored; the proxy forwards a Request with every field set", async () => {
    a.on((hit) => hit.res.writeHead(503).end());
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "t",
          endpoints: [
            { name: "p", url: `${a.base}/p` },
            { name: "q", url: `${b.base}/q`, transform: (req) => ({ ...req, mode: K, credentials: K }) as never },
          ],
        },
      ]),
    });
    expect((await resilience.fetch(`${a.base}/p`, { mode: "cors" })).status).toBe(200);
    expect(b.hits.map((hit) => hit.path)).toEqual(["/q"]);
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${b.base}/v1` }], resilience: { retry: false } });
    const client = new Request("http://worker.example/v1/x", {
      mode: "same-origin",
      credentials: "include",
      cache: "no-store",
      redirect: "manual",
      referrerPolicy: "strict-origin-when-cross-origin",
      priority: "low",
    } as RequestInit);
    const res = await (proxy as unknown as { fetch: (r: Request, e: unknown, c: unknown) => Promise<Response> }).fetch(
      client,
      {},
      { waitUntil() {} },
    );
    expect([res.status, b.hits.map((hit) => hit.path)]).toEqual([200, ["/q", "/v1/x"]]);
  });
});

describe("the runtime's refusal names a value that is no plain word `a string`", () => {
  it("layer and ky call: String objects, arrays, unicode, a colliding `:`, a method, no cause", async () => {
    const api = createClient({ resilience: { retry: false } });
    const cases: Array<Record<string, unknown>> = [
      { mode: new String(K) },
      { mode: [K] },
      { mode: [["sk/x", "y=="]] },
      { mode: "sk/é+Ü==" },
      { mode: ":" },
    ];
    for (const options of cases) {
      const error = await kyOutcome(() => api.get(`${a.base}/k`, options as never));
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toContain("a string");
      expect((error as Error).cause).toBeUndefined();
      expect(says(error)).not.toMatch(/SECRET|sk\/|y==|é|Ü/);
    }
    const method = await kyOutcome(() => api(`${a.base}/k`, { method: K }));
    expect((method as Error).message).toBe("'a string' is not a valid HTTP method.");
    expect(a.hits.length).toBe(0);
  });

  it("defect 1: a shorter non-plain value given beside the key does not take part of it out", async () => {
    const resilience = createResilience({ retry: false });
    const leaks: string[] = [];
    for (const init of [
      { method: "!", referrer: "sk!live+SECRET" },
      { integrity: "/", redirect: "manual", referrer: K },
    ] as RequestInit[]) {
      leaks.push(says(await rejection(resilience.fetch(`${a.base}/x`, init))));
    }
    const api = createClient({ resilience: { retry: false } });
    leaks.push(says(await kyOutcome(() => api.get(`${a.base}/k`, { cache: "/", mode: K } as never))));
    expect(a.hits.length).toBe(0);
    for (const text of leaks) expect(text).not.toContain("live+SECRET");
  });

  it("defect 2: ky: a field or method from createClient, extend, create or an init hook is named too", async () => {
    const base = { resilience: { retry: false } } as const;
    const api = createClient(base);
    const clients = [
      createClient({ ...base, mode: K } as never),
      createClient({ ...base, method: K } as never),
      api.extend({ mode: K } as never),
      api.extend(() => ({ referrerPolicy: K }) as never),
      api.create({ credentials: [K] } as never),
      createClient({
        ...base,
        hooks: {
          init: [
            (options: Record<string, unknown>) => {
              options.mode = K;
            },
          ],
        },
      } as never),
    ];
    const texts: string[] = [];
    for (const client of clients) texts.push(says(await kyOutcome(() => client(`${a.base}/k`))));
    expect(a.hits.length).toBe(0);
    for (const text of texts) {
      expect(text).toMatch(/a string/);
      expect(text).not.toContain(K);
    }
  });
});

type View = { url: string; method: string; headers: Headers; body?: unknown };
/** A chain whose first endpoint (on `a`) answers 503, whose second is on `b`, another origin. */
const sentToB = async (transform: (req: View) => unknown, headers?: Record<string, string>) => {
  b.reset();
  a.on((hit) => hit.res.writeHead(503).end());
  const resilience = createResilience({
    retry: false,
    fallback: fallback([
      {
        name: "h",
        endpoints: [
          { name: "p", url: `${a.base}/p` },
          { name: "q", url: `${b.base}/q`, transform: transform as never, ...(headers ? { headers } : {}) },
        ],
      },
    ]),
  });
  expect((await resilience.fetch(`${a.base}/p`, { headers: { "x-api-key": KEY } })).status).toBe(200);
  const hit = b.hits[0];
  return { meta: hit?.headers["x-meta"], api: hit?.headers["x-api-key"], goog: hit?.headers["x-goog-api-key"] };
};
const callerKey = (req: View): string => req.headers.get("x-api-key") ?? "";
/** A transform that edits the headers it is given and returns the request. */
const edit =
  (change: (headers: Headers) => void) =>
  (req: View): View => {
    change(req.headers);
    return req;
  };

describe("a transform's set then append of the caller's key", () => {
  it("set/delete/append, set in another case, set of the caller's value then append, copies: the key stays home", async () => {
    const cases: Array<(req: View) => unknown> = [
      edit((h) => {
        h.set("x-meta", "mine");
        h.delete("x-meta");
        h.append("x-meta", KEY);
      }),
      edit((h) => {
        h.set("X-Meta", "mine");
        h.append("x-meta", h.get("x-api-key") ?? "");
      }),
      edit((h) => {
        h.set("x-meta", h.get("x-api-key") ?? "");
        h.append("x-meta", "more");
      }),
      edit((h) => {
        h.set("x-api-key", "mine");
        h.append("x-api-key", KEY);
      }),
      (req) => {
        req.headers.set("x-meta", "mine");
        const headers = new Headers(req.headers);
        headers.append("x-meta", callerKey(req));
        return { url: req.url, method: req.method, headers };
      },
      (req) => {
        req.headers.set("x-meta", "mine");
        return { ...req, headers: new Headers({ "x-meta": `mine, ${KEY}` }) };
      },
      edit((h) => {
        Headers.prototype.set.call(h, "x-meta", "mine");
        h.append("x-meta", KEY);
      }),
    ];
    for (const transform of cases) {
      expect(await sentToB(transform)).toEqual({ meta: undefined, api: undefined, goog: undefined });
    }
  });

  it("a set of the caller's value itself is sent, as documented", async () => {
    expect(await sentToB(edit((h) => h.set("x-meta", h.get("x-api-key") ?? "")))).toEqual({
      meta: KEY,
      api: undefined,
      goog: undefined,
    });
  });

  it("defect 3: a name in the endpoint's own headers does not carry the caller's key the transform put there", async () => {
    const seen = [
      await sentToB(
        edit((h) => h.append("x-meta", h.get("x-api-key") ?? "")),
        { "x-meta": "mine" },
      ),
      await sentToB(
        edit((h) => {
          h.delete("x-meta");
          h.append("x-meta", h.get("x-api-key") ?? "");
        }),
        { "x-meta": "mine" },
      ),
      await sentToB((req) => ({ ...req, headers: new Headers({ "x-goog-api-key": callerKey(req) }) }), {
        "x-goog-api-key": "placeholder",
      }),
    ];
    expect(JSON.stringify(seen)).not.toContain(KEY);
  });
});

describe("symbol keys name no option: never read, never refused", () => {
  const reads: string[] = [];
  /** `target` with a symbol key whose getter records the read and throws. */
  const tagged = <O extends object>(target: O, label: string): O =>
    Object.defineProperty(target, Symbol(label), {
      enumerable: true,
      get() {
        reads.push(label);
        throw new Error(`read ${label}`);
      },
    });
  /** The labels `make` read, and whether it threw. */
  const readBy = (make: () => unknown): { reads: string[]; threw: boolean } => {
    reads.length = 0;
    let threw = false;
    try {
      make();
    } catch {
      threw = true;
    }
    return { reads: [...reads], threw };
  };
  const none = { reads: [], threw: false };

  it("createResilience's stages and createClient's resilience", () => {
    expect(readBy(() => createResilience({ retry: tagged({ maxAttempts: 2 }, "retry") }))).toEqual(none);
    expect(readBy(() => createResilience({ breaker: tagged({}, "breaker"), timeout: tagged({}, "t") }))).toEqual(none);
    expect(readBy(() => createResilience({ budget: tagged({}, "budget") }))).toEqual(none);
    expect(readBy(() => createClient({ resilience: tagged({ retry: tagged({}, "r") }, "res") }))).toEqual(none);
  });

  it("defect 4, answered by the docs: fallback([…]) copies symbol keys (a chain, an endpoint), a getter read", () => {
    const endpoints = [{ name: "p", url: "https://p.example/" }];
    const endpoint = tagged({ name: "p", url: "https://p.example/" }, "endpoint");
    const seen = [
      readBy(() => fallback([tagged({ name: "c", endpoints }, "chain")])),
      readBy(() => fallback([{ name: "c", endpoints: [endpoint] }])),
    ];
    for (const one of seen) expect(one.reads.length).toBeGreaterThan(0);
  });

  it("defect 4, answered by the docs: degradation({…}) copies symbol keys (top level, a rule, its params)", () => {
    const rule = (extra = "") => ({ match: `https://p${extra}.example/`, params: { steps: "steps" } });
    const params = { match: "https://p.example/", params: tagged({ steps: "steps" }, "params") };
    const seen = [
      readBy(() => degradation(tagged({ rules: [rule()] }, "top"))),
      readBy(() => degradation({ rules: [tagged(rule(), "rule")] })),
      readBy(() => degradation({ rules: [params] })),
    ];
    for (const one of seen) expect(one.reads.length).toBeGreaterThan(0);
  });

  it("defect 4, answered by the docs: resilientProxy copies symbol keys (options, resilience, a route, its chain)", () => {
    const route = { path: "/v1", upstream: "https://u.example/v1" };
    const endpoints = [{ name: "p", url: "https://p.example/" }];
    const seen = [
      readBy(() => resilientProxy(tagged({ routes: [route] }, "top"))),
      readBy(() => resilientProxy({ routes: [route], resilience: tagged({}, "resilience") })),
      readBy(() => resilientProxy({ routes: [tagged({ ...route }, "route")] })),
      readBy(() => resilientProxy({ routes: [{ path: "/v1", chain: tagged({ name: "c", endpoints }, "chain") }] })),
      readBy(() =>
        resilientProxy({
          routes: [{ path: "/v1", chain: { name: "c", endpoints: [tagged({ ...endpoints[0] }, "ep") as never] } }],
        }),
      ),
    ];
    for (const one of seen) expect(one.reads.length).toBeGreaterThan(0);
  });
});
