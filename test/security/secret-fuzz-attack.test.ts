/**
 * Secret fuzz: can a key reach anything a user or an operator sees?
 * Public entries only (root, fallback, degradation, ky, cloudflare, testing);
 * a stub transport on a `TestClock`, no real sleeps, no servers.
 *
 * Promise attacked (SECURITY.md "No secret in events, errors, `health()` or
 * `debugInfo()`"; docs/retry.md "Messages never show the URL's userinfo,
 * query or fragment"; docs/health-and-events.md "URLs without their query
 * string"): URLs lose userinfo, query and fragment before they reach errors
 * (causes, an AggregateError's errors included), events, `health()`,
 * `debugInfo()`, `ConfigError`s; header values are never quoted. The path is
 * documented as shown (only userinfo, query and fragment are cut), so a
 * secret in a path segment (`/v1%3Fkey=…` included) is not counted.
 *
 * The fuzz (400 seeded cases, mulberry32): a fresh `S3CRET<hex>` per case,
 * placed in userinfo (user, password, both, raw `@`, `:`, `%40`, unicode,
 * spaces, 2,000 characters), the query (`?key=`, `&api_key=`, repeated,
 * percent-encoded neighbours, `+`, a bare `?secret`, an encoded value), the
 * fragment, a header value (Authorization, x-api-key, custom) or a JSON body
 * field; URL shapes https, http with port, ws, ftp, without `//`, IPv6 with
 * port, `Request` and `URL` inputs, relative; routes: a plain call, a chain
 * (the caller's URL, endpoints whose own `url` holds the key, a `transform`
 * adding it to query and fragment), a degradation rewrite (query and header
 * rules, level low), the ky client (`prefix` and `searchParams` holding it),
 * `resilientProxy` (upstream with its own `?key=`, the client's query and
 * Authorization; failure responses' headers and body, the health endpoint),
 * a 3xx whose `Location` carries it (absolute, scheme-relative, with
 * userinfo, ftp, unparsable; `redirects: "library"` and `"platform"`); calls
 * ending in success, 503, a network error whose cause quotes the full URL
 * (undici-shaped), an AggregateError of mirrors, attempt timeouts, an open
 * breaker, a full bulkhead, a reset keyless POST. Observed: the rejection's
 * message, stack, String(), JSON, every own property and the cause/errors
 * chain recursively, every payload of the eight events, `health()` and
 * `debugInfo()` as JSON, console.log/info/warn/error/debug. All of those
 * shapes hold. Not counted: the response the server sent (a `platform`
 * redirect's 302 reaches the caller with its `Location`, as fetch gives it),
 * the caller's own abort reason, and ky's `request`/`response`/`options`
 * (ky's own, documented).
 * A seeded ConfigError run (absolute URLs with userinfo/query/fragment in
 * `fetch`, `retry`, `timeout.attempt`, `crossOriginHeaders`, a fallback url
 * with a fragment or a duplicate name) holds too.
 *
 * Shapes that leaked (each pinned by an `it.fails` on the code it was written
 * against, which asserts the documented behaviour; all fixed):
 * 1. ConfigError quotes a string that is not an absolute URL verbatim: a
 *    fallback endpoint `url` of `//api.example/v1?key=…`, `/v1?key=…` or
 *    ` https://…?key=…` (a leading space from an env var), or the same string
 *    given as `fetch` or `timeout.attempt`, shows `?key=…` (SECURITY.md "an
 *    option's `ConfigError` included").
 * 2. A platform error's own `path` property (Bun's fetch errors carry the
 *    URL there; likewise `url`, `address`, `hostname`) keeps the full URL in
 *    the RetryExhaustedError's `cause` and in FallbackExhaustedError's
 *    `errors` (SECURITY.md "an error's causes included"): only message,
 *    stack, cause and errors are rewritten.
 * 3. `execute(fn)`'s RetryExhaustedError quotes its fn's error message
 *    whole: `gave up after 2 attempts: GET https://…?api_key=… returned 503`
 *    (and keeps the key in its `cause` chain), where `resilience.fetch`'s
 *    cuts it (SECURITY.md "No secret in events, errors…").
 *
 * Questionable, not pinned: a header *name* is quoted (`resilience.fetch`'s
 * "invalid header name \"x-api-key: S3CRET…\"", a degradation rule's
 * `{ header: "x S3CRET…" }`): names, not values, as the docs word it
 * (`resilientProxy`'s route path `v1?key=…` was quoted whole too; it is cut
 * now, tested below); a named breaker given a URL as its name
 * (`resilience.breaker("https://…?key=…")`) is listed under that name in
 * `health()` (the user's own key, docs/breakers.md asks for names that are
 * not hosts); `breaker.execute(fn)` rethrows fn's own error untouched.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type FetchLike, type Resilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";

// ---------------------------------------------------------------- PRNG

/** mulberry32: a small seeded PRNG, so every run draws the same cases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
const hex = (rand: () => number, n: number): string =>
  Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join("");

// ---------------------------------------------------------------- collecting what is observable

const EVENTS = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;

/** Every string reachable from `value`: messages, stacks, String(), JSON, own properties, causes, errors. */
function observe(value: unknown, out: string[], seen = new Set<unknown>(), depth = 0): void {
  if (depth > 12) return;
  if (value === null || value === undefined) return;
  if (typeof value === "string") {
    out.push(value);
    return;
  }
  if (typeof value !== "object" && typeof value !== "function") {
    out.push(String(value));
    return;
  }
  if (seen.has(value)) return;
  seen.add(value);
  // ky's `request`/`response` are ky's own (documented); a Response's url is what went on the wire.
  if (value instanceof Request || value instanceof Response) return;
  const kyError = "request" in value && "options" in value;
  if (value instanceof Headers) {
    for (const [k, v] of value) out.push(`${k}: ${v}`);
    return;
  }
  try {
    out.push(String(value));
  } catch {}
  try {
    const { options: _kyOwn, ...rest } = value as Record<string, unknown>;
    out.push(JSON.stringify(kyError ? rest : value) ?? "");
  } catch {}
  for (const key of ["message", "stack", "name", "cause", "errors", "code"]) {
    try {
      observe((value as Record<string, unknown>)[key], out, seen, depth + 1);
    } catch {}
  }
  for (const key of Reflect.ownKeys(value)) {
    if (typeof key === "symbol") continue;
    // ky's errors carry ky's own normalized `options` (the caller's prefix and searchParams), as ky documents them.
    if (kyError && key === "options") continue;
    let v: unknown;
    try {
      v = (value as Record<string, unknown>)[key];
    } catch {
      continue;
    }
    if (typeof v === "function") continue;
    observe(v, out, seen, depth + 1);
  }
}

interface Watch {
  out: string[];
  stop(): void;
}
function watch(resilience: Resilience): Watch {
  const out: string[] = [];
  const offs = EVENTS.map((name) =>
    resilience.on(name, (event: unknown) => {
      out.push(`event:${name}`);
      observe(event, out);
    }),
  );
  return {
    out,
    stop() {
      for (const off of offs) off();
      try {
        out.push(JSON.stringify(resilience.health()));
        out.push(JSON.stringify(resilience.debugInfo()));
      } catch (e) {
        observe(e, out);
      }
    },
  };
}

let consoleOut: string[] = [];
beforeEach(() => {
  consoleOut = [];
  for (const m of ["log", "warn", "error", "info", "debug"] as const) {
    vi.spyOn(console, m).mockImplementation((...args: unknown[]) => {
      for (const a of args) observe(a, consoleOut);
    });
  }
});
afterEach(() => {
  vi.restoreAllMocks();
});

function leaks(secret: string, texts: readonly string[]): string[] {
  const lower = secret.toLowerCase();
  return texts.filter((t) => t.toLowerCase().includes(lower));
}

// ---------------------------------------------------------------- transports

type Ending = "ok" | "503" | "net" | "aggregate" | "hang" | "reset-post" | "bun";
/** A stub transport: records what it was sent; ends as `ending` says, quoting the URL it got as Node and undici do. */
function transport(ending: Ending, sent: string[]): FetchLike {
  return (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    sent.push(url);
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    switch (ending) {
      case "ok":
        return Promise.resolve(new Response("{}", { status: 200 }));
      case "503":
        return Promise.resolve(new Response("busy", { status: 503 }));
      case "net":
        return Promise.reject(
          new TypeError("fetch failed", {
            cause: Object.assign(new Error(`connect ECONNREFUSED ${url}`), {
              code: "ECONNREFUSED",
            }),
          }),
        );
      case "aggregate":
        return Promise.reject(
          new TypeError("fetch failed", {
            cause: Object.assign(
              new AggregateError(
                [
                  Object.assign(new Error(`connect ECONNREFUSED ${url}`), { code: "ECONNREFUSED" }),
                  Object.assign(new Error(`getaddrinfo ENOTFOUND ${url}`), { code: "ENOTFOUND" }),
                ],
                `all mirrors failed for ${url}`,
              ),
              { code: "ECONNREFUSED" },
            ),
          }),
        );
      case "bun":
        // Bun's fetch errors carry the URL in an own `path` property.
        return Promise.reject(
          Object.assign(new Error("Unable to connect. Is the computer able to access the url?"), {
            code: "ConnectionRefused",
            path: url,
            errno: 0,
          }),
        );
      case "reset-post":
        return Promise.reject(
          new TypeError("fetch failed", {
            cause: Object.assign(new Error(`read ECONNRESET ${url}`), { code: "ECONNRESET" }),
          }),
        );
      case "hang":
        return new Promise((_, reject) => {
          signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
        });
    }
  };
}

// ---------------------------------------------------------------- the case generator

const USERINFO: ReadonlyArray<(s: string) => string> = [
  (s) => s,
  (s) => `u:${s}`,
  (s) => `${s}:${s}`,
  (s) => `u:p@${s}`,
  (s) => `u:${s}:more`,
  (s) => `u:p%40${s}`,
  (s) => `\u00fc:${s}\u00df`,
  (s) => `u:a b ${s}`,
  (s) => `u:${"x".repeat(2000)}${s}`,
];
const QUERY: ReadonlyArray<(s: string) => string> = [
  (s) => `?key=${s}`,
  (s) => `?a=1&api_key=${s}`,
  (s) => `?key=${s}&key=${s}`,
  (s) => `?key=%2F${s}%3D`,
  (s) => `?key=a+${s}+b`,
  (s) => `?${s}`,
  (s) => `?q=${encodeURIComponent(`x y ${s}`)}`,
  (s) => `?key=${s}#${s}`,
];
const FRAGMENT: ReadonlyArray<(s: string) => string> = [(s) => `#${s}`, (s) => `#access_token=${s}&x=1`];
type Placement = "userinfo" | "query" | "fragment" | "header" | "body";
type Shape = "https" | "http-port" | "ws" | "ftp" | "no-slashes" | "ipv6" | "request" | "url" | "relative";

interface Case {
  name: string;
  secret: string;
  texts: string[];
}

/** The caller's URL for a shape, the secret placed as `placement` says. */
function callerUrl(rand: () => number, shape: Shape, placement: Placement, secret: string): string {
  const ui = placement === "userinfo" ? `${pick(rand, USERINFO)(secret)}@` : "";
  const tail =
    placement === "query" ? pick(rand, QUERY)(secret) : placement === "fragment" ? pick(rand, FRAGMENT)(secret) : "";
  switch (shape) {
    case "https":
    case "request":
    case "url":
      return `https://${ui}api.example/v1/jobs${tail}`;
    case "http-port":
      return `http://${ui}api.example:8080/v1/jobs${tail}`;
    case "ws":
      return `ws://${ui}api.example/v1/jobs${tail}`;
    case "ftp":
      return `ftp://${ui}api.example/v1/jobs${tail}`;
    case "no-slashes":
      return `https:${ui}api.example/v1/jobs${tail}`;
    case "ipv6":
      return `http://${ui}[2001:db8::1]:8443/v1/jobs${tail}`;
    case "relative":
      return `/v1/jobs${tail}`;
  }
}

function toInput(shape: Shape, url: string): RequestInfo | URL {
  try {
    if (shape === "request") return new Request(url);
    if (shape === "url") return new URL(url);
  } catch {
    // Request refuses credentials itself: the caller then has only the string.
  }
  return url;
}

const ctx = { waitUntil(): void {} };

/** Runs one case through the public API, returning every observable text. */
async function runCase(seed: number): Promise<Case> {
  const rand = prng(seed);
  const secret = `S3CRET${hex(rand, 16)}`;
  const placement = pick(rand, ["userinfo", "query", "query", "fragment", "header", "body"] as const);
  const shape = pick(rand, [
    "https",
    "https",
    "http-port",
    "ws",
    "ftp",
    "no-slashes",
    "ipv6",
    "request",
    "url",
    "relative",
  ] as const);
  const route = pick(rand, [
    "plain",
    "plain",
    "chain",
    "chain-endpoint-key",
    "transform",
    "degradation",
    "ky",
    "proxy",
    "redirect",
  ] as const);
  const end = pick(rand, ["ok", "503", "net", "net", "aggregate", "hang", "open", "bulkhead", "reset-post"] as const);
  const redirects = pick(rand, ["library", "platform"] as const);
  const name = `#${seed} ${placement}/${shape}/${route}/${end}${route === "redirect" ? `/${redirects}` : ""}`;
  const texts: string[] = [];
  const url = callerUrl(rand, shape, placement, secret);
  const headerName = pick(rand, ["authorization", "x-api-key", "x-my-token"] as const);
  const headers: Record<string, string> =
    placement === "header" ? { [headerName]: headerName === "authorization" ? `Bearer ${secret}` : secret } : {};
  const post = end === "reset-post" || placement === "body" || route === "degradation";
  const init: RequestInit = post
    ? {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify({ prompt: "x", steps: 50, api_key: placement === "body" ? secret : "none" }),
      }
    : { headers };
  const clock = new TestClock();
  const sent: string[] = [];
  const base = transport(
    end === "open" ? "net" : end === "bulkhead" ? "hang" : end === "reset-post" ? "reset-post" : end,
    sent,
  );
  const fetchImpl: FetchLike =
    route === "redirect"
      ? (input, i) => {
          const target = input instanceof Request ? input.url : String(input);
          if (!target.includes("other.example")) {
            const location = pick(rand, [
              `https://other.example/v2${pick(rand, QUERY)(secret)}`,
              `//other.example/v2${pick(rand, FRAGMENT)(secret)}`,
              `https://${pick(rand, USERINFO)(secret)}@other.example/v2`,
              `ftp://other.example/?key=${secret}`,
              `https://oth er.example/?key=${secret}`,
            ]);
            sent.push(target);
            return Promise.resolve(new Response(null, { status: 302, headers: { location } }));
          }
          return base(input, i);
        }
      : base;
  const options: ResilienceOptions = {
    clock,
    fetch: fetchImpl,
    retry: { maxAttempts: 2 },
    timeout: { attempt: 500, total: 5_000 },
    redirects,
    ...(end === "open" ? { breaker: { failureThreshold: 1 }, retry: false as const } : {}),
    ...(end === "bulkhead" ? { bulkhead: { maxConcurrent: 1 } } : {}),
  };
  if (route === "chain" || route === "chain-endpoint-key" || route === "transform") {
    options.fallback = fallback([
      {
        name: "gen",
        endpoints: [
          {
            name: "a",
            url: route === "chain-endpoint-key" ? `https://api.example/v1?key=${secret}` : "https://api.example/v1",
          },
          {
            name: "b",
            url: route === "chain-endpoint-key" ? `https://b.example/v2?api_key=${secret}` : "https://b.example/v2",
            headers: { "x-api-key": secret },
          },
          {
            name: "c",
            url: "https://c.example/v3",
            transform: (req) => ({
              ...req,
              url: route === "transform" ? `${req.url.split("?")[0]}?token=${secret}#${secret}` : req.url,
            }),
          },
        ],
      },
    ]);
  }
  if (route === "degradation") {
    options.degradation = degradation({
      rules: [{ match: "https://api.example/v1", params: { steps: { query: "steps" }, model: { header: "x-model" } } }],
    });
  }

  const settle = async (p: Promise<unknown>): Promise<void> => {
    try {
      await clock.run(p);
      // A response is what the server sent: not the layer's to redact.
    } catch (error) {
      observe(error, texts);
    }
  };

  if (route === "proxy") {
    const incoming = `https://worker.example/v1/jobs${placement === "query" ? pick(rand, QUERY)(secret) : ""}`;
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `https://a.example/v1?key=${secret}` }],
      resilience: { ...options, redirects: undefined },
    });
    const ask = () =>
      proxy.fetch(
        new Request(incoming, { ...init, headers: { ...headers, authorization: `Bearer ${secret}` } }),
        {},
        ctx,
      );
    const rounds = end === "open" ? 2 : 1;
    for (let i = 0; i < rounds; i++) {
      const pending = ask();
      pending.catch(() => {});
      if (end === "bulkhead") {
        const second = ask();
        await clock.run(second).then(async (res) => {
          for (const [k, v] of res.headers) texts.push(`${k}: ${v}`);
          texts.push(await res.text());
        });
      }
      try {
        const res = await clock.run(pending);
        if (res.status >= 500) {
          for (const [k, v] of res.headers) texts.push(`${k}: ${v}`);
          texts.push(await res.text());
        }
      } catch (error) {
        observe(error, texts);
      }
    }
    const health = await proxy.fetch(new Request("https://worker.example/__resilience/health"), {}, ctx);
    texts.push(await health.text());
    return { name, secret, texts };
  }

  let resilience: Resilience;
  try {
    resilience = createResilience(options);
  } catch (error) {
    observe(error, texts);
    return { name, secret, texts };
  }
  const w = watch(resilience);
  const call = (): Promise<unknown> => {
    try {
      return callOnce();
    } catch (error) {
      return Promise.reject(error);
    }
  };
  const callOnce = (): Promise<unknown> => {
    if (route === "ky") {
      const prefix =
        typeof url === "string" && !url.startsWith("/")
          ? url.replace(/\/jobs(?=[?#]|$)/, "")
          : `https://api.example/v1?key=${secret}`;
      const api = createClient({ prefix, searchParams: { api_key: secret }, resilience, headers });
      return api(post ? "jobs" : "jobs", { ...init, searchParams: { token: secret } } as never).then((r) => r);
    }
    return resilience.fetch(toInput(shape, url), init);
  };
  const rounds = end === "open" ? 2 : 1;
  for (let i = 0; i < rounds; i++) {
    const first = call();
    first.catch(() => {});
    if (end === "bulkhead") await settle(call());
    await settle(first);
  }
  w.stop();
  texts.push(...w.out);
  return { name, secret, texts: [...texts, ...consoleOut] };
}

// ---------------------------------------------------------------- the tests

const CASES = 400;

describe("a secret placed anywhere a user puts a key", () => {
  it(`appears in no error, event, health(), debugInfo(), console line or proxy failure (${CASES} seeded cases)`, async () => {
    const leaked: string[] = [];
    const shapes = new Set<string>();
    for (let seed = 1; seed <= CASES; seed++) {
      const c = await runCase(seed);
      shapes.add(c.name.replace(/^#\d+ /, ""));
      const found = leaks(c.secret, c.texts);
      if (found.length > 0) leaked.push(`${c.name}: ${found[0]?.slice(0, 300)}`);
    }
    expect(leaked).toEqual([]);
    expect(shapes.size).toBeGreaterThan(150);
  }, 60_000);
});

describe("options that are wrong while a URL with a secret is in them", () => {
  it("ConfigError cuts userinfo, query and fragment of an absolute URL wherever it is quoted (seeded)", () => {
    const rand = prng(7);
    const messages: string[] = [];
    for (let i = 0; i < 120; i++) {
      const secret = `S3CRET${hex(rand, 16)}`;
      const host = pick(rand, ["api.example", "[2001:db8::1]:8443", "api.example:8080"]);
      const scheme = pick(rand, ["https://", "http://", "HTTPS://", "https:", "ftp://", "ws://"]);
      const ui = rand() < 0.5 ? `${pick(rand, USERINFO)(secret)}@` : "";
      const url = `${scheme}${ui}${host}/v1${pick(rand, QUERY)(secret)}${rand() < 0.3 ? pick(rand, FRAGMENT)(secret) : ""}`;
      const make = pick(rand, [
        () => createResilience({ fetch: url as never }),
        () => createResilience({ retry: url as never }),
        () => createResilience({ timeout: { attempt: url as never } }),
        () => createResilience({ crossOriginHeaders: url as never }),
        () => fallback([{ name: "c", endpoints: [{ name: "a", url: `${url}#frag` }] }]),
        () =>
          fallback([
            {
              name: "c",
              endpoints: [
                { name: "a", url },
                { name: "a", url },
              ],
            },
          ]),
        () =>
          createResilience({
            crossOriginHeaders: 5 as never,
            fetch: transport("ok", []),
            retry: { maxAttempts: url as never },
          }),
      ]);
      try {
        make();
      } catch (error) {
        const texts: string[] = [];
        observe(error, texts);
        messages.push(...leaks(secret, texts));
      }
    }
    expect(messages).toEqual([]);
  });

  it("ConfigError does not quote the query of a URL that is not absolute (`//host/…?key=`, `/v1?key=`, a leading space)", () => {
    const secret = "S3CRET0a1b2c3d4e5f6071";
    for (const url of [
      `//api.example/v1?key=${secret}`,
      `/v1?key=${secret}`,
      ` https://api.example/v1?key=${secret}`,
    ]) {
      let message = "";
      try {
        fallback([{ name: "c", endpoints: [{ name: "a", url }] }]);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/fallback\.0\.endpoints\.0\.url/);
      expect(message).not.toContain(secret);
    }
  });
});

describe("leaks found by the fuzz, fixed", () => {
  it("a platform error's own `path` property (Bun's fetch errors carry the URL there) loses its query too", async () => {
    const secret = "S3CRETfeedface0000beef";
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, fetch: transport("bun", []) });
    const error = await clock
      .run(resilience.fetch(`https://api.example/v1/jobs?key=${secret}`))
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe("RetryExhaustedError");
    expect((error as Error).message).not.toContain(secret); // holds: the message is the layer's
    expect(String((error as { cause: { path: string } }).cause.path)).not.toContain(secret);
  });

  it("a cause's fields that are no URLs (an address, a colour, a code) are left as they are", async () => {
    const secret = "S3CRETf1e1d5f1e1d5f1e1";
    const clock = new TestClock();
    const cause = Object.assign(new Error("refused"), {
      code: "ConnectionRefused",
      contact: "ops@api.example",
      colour: "#ff8800",
      route: `/v1/jobs?key=${secret}`,
    });
    const resilience = createResilience({ clock, retry: false, fetch: () => Promise.reject(cause) });
    const error = await clock.run(resilience.fetch("https://api.example/v1/jobs")).catch((e: unknown) => e);
    expect((error as Error).cause).toMatchObject({
      code: "ConnectionRefused",
      contact: "ops@api.example",
      colour: "#ff8800",
      route: "/v1/jobs",
    });
  });

  it("a chain's FallbackExhaustedError lists errors whose `path` property has lost its query too", async () => {
    const secret = "S3CRETc0ffee00c0ffee00";
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: transport("bun", []),
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: `https://a.example/v1?key=${secret}` },
            { name: "b", url: `https://b.example/v1?key=${secret}` },
          ],
        },
      ]),
    });
    const error = await clock.run(resilience.fetch("https://a.example/v1/jobs")).catch((e: unknown) => e);
    expect((error as Error).name).toBe("FallbackExhaustedError");
    const seen = JSON.stringify((error as { errors: unknown[] }).errors, (_key, value: unknown) =>
      value instanceof Error ? { ...value, message: value.message, cause: value.cause } : value,
    );
    expect(seen).toContain("a.example");
    expect(seen).not.toContain(secret);
  });

  it("resilientProxy's refusal of a route does not quote a query in its path", () => {
    const secret = "S3CRETbadc0de0badc0de0";
    const refusal = (routes: unknown): string => {
      try {
        resilientProxy({ routes } as Parameters<typeof resilientProxy>[0]);
      } catch (error) {
        return (error as Error).message;
      }
      return "accepted";
    };
    const messages = [
      refusal([{ path: `v1?key=${secret}`, upstream: "https://api.example" }]),
      refusal([{ path: `/v1?key=${secret}` }]),
      refusal([{ path: `/v1?key=${secret}`, upstream: "ftp://api.example" }]),
    ];
    expect(messages[0]).toMatch(/route path must start with/);
    expect(messages[1]).toMatch(/needs an upstream or a chain/);
    expect(messages[2]).toMatch(/needs an absolute http\(s\) upstream URL/);
    for (const message of messages) expect(message).not.toContain(secret);
  });

  it("execute's RetryExhaustedError does not quote the query of a URL its fn's error names", async () => {
    const secret = "S3CRET0123456789abcdef";
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const error = await clock
      .run(
        resilience.execute(
          () => {
            // e.g. an SDK whose errors quote the request line
            throw new Error(`GET https://api.example/v1/jobs?api_key=${secret} returned 503`);
          },
          { retry: { maxAttempts: 2 } },
        ),
      )
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe("RetryExhaustedError");
    expect((error as Error).message).not.toContain(secret);
  });
});
