/**
 * Outside-in attack on the twelfth session's last fixes: f974d46 (a chain
 * with a shared store creates a breaker only for a host the store holds
 * open; `retry(fn)` names a refused function or symbol by its kind; a
 * multipart label mentioning JSON in a parameter is replaced by
 * application/json; a scheme-relative URL is cut after `{`, `,` and `;`
 * too), 769c250 (a half-open breaker adopts a remote open that still runs,
 * whenever it started) and ae22835 (`retry(fn)` writes that rule inline).
 * Public entries only: `createResilience`, `fallback`, `retry` of
 * ./policies, `createClient` of ./ky, `resilientProxy`/`kvStore` of
 * ./cloudflare with the fakes of test/cloudflare, a stub `fetch`,
 * `TestClock`; nothing sleeps for real.
 *
 * Defects pinned (first an `it.fails` on the code it was written against,
 * asserting the promise; fixed since, so plain `it`):
 * 1. `retry(fn)` of ./policies quotes an unknown option's name whole: a
 *    misspelt option that is a URL keeps its `?key=` in the ConfigError
 *    (the fix names refused values by kind, not unknown names).
 * 2. The layer's option checker (`createResilience`, hence the ky client
 *    and the Worker proxy's `resilience` options) does the same, userinfo
 *    and key included. SECURITY.md: "No secret in … errors …, an option's
 *    `ConfigError` included".
 *
 * Held (plain `it`): chains with a shared store (plain, hedged, ky, the
 * Worker proxy with kvStore) create no breaker for a host a transform never
 * calls, and pass over a host another layer opened with one breaker event,
 * one fallback event and health() right; `retry(fn)` names a function, a
 * class, a symbol and a URL string by kind; a transform's JSON goes as
 * application/json after a FormData `Request`, a multipart label naming
 * JSON in a parameter (plain, hedged, ky) while a JSON media type with a
 * parameter is kept; a scheme-relative URL with a raw `#` password is cut
 * after each promised lead in a plain call, `execute`, fallback and hedged
 * chains (errors and fallback events) and ky; a half-open breaker with a
 * probe out adopts a remote open that started earlier and still runs.
 */
import { describe, expect, it } from "vitest";
import { kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerStore, createResilience, memoryStore } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/clock.ts";
import { FakeKv } from "../cloudflare/fake-kv.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const SECRET = "sk_live_TOPSECRET";

/** Every text an error shows, its causes and their messages and stacks included. */
function allText(error: unknown, depth = 0): string {
  if (depth > 6 || error === null || error === undefined) return "";
  if (typeof error !== "object") return String(error);
  const e = error as { message?: unknown; stack?: unknown; cause?: unknown; errors?: unknown };
  const parts = [String(e.message ?? ""), String(e.stack ?? ""), allText(e.cause, depth + 1)];
  if (e.errors && typeof e.errors === "object") {
    for (const inner of Object.values(e.errors as Record<string, unknown>)) parts.push(allText(inner, depth + 1));
  }
  return parts.join("\n");
}

const urlOf = (input: unknown) => String(input instanceof Request ? input.url : input);

function movedEndpoint(name = "moved") {
  return {
    name,
    url: "https://placeholder.example",
    transform: (req: { method: string; url: string; headers: Headers }) => ({
      ...req,
      url: req.url.replace("placeholder.example", "real.example"),
    }),
  };
}

describe("fix 1: a chain with a shared store creates a breaker only for a host the store holds open", () => {
  it("hedged chain under breaker.maxHosts: the host a transform sends to still opens after failureThreshold failures, and health() lists it alone", async () => {
    const clock = new TestClock();
    let sent = 0;
    const resilience = createResilience({
      clock,
      store: memoryStore(),
      retry: { maxAttempts: 1 },
      breaker: { maxHosts: 1, failureThreshold: 2 },
      fetch: async () => {
        sent++;
        return new Response("down", { status: 500 });
      },
      fallback: fallback([{ name: "c", hedge: { delay: 10 }, endpoints: [movedEndpoint()] }]),
    });
    for (let i = 0; i < 5; i++) {
      const r = await clock.run(resilience.fetch("https://placeholder.example/x")).catch((e: unknown) => e);
      if (r instanceof Response) await r.body?.cancel();
    }
    expect(sent).toBe(2);
    expect(Object.keys(resilience.health().breakers)).toEqual(["real.example"]);
    expect(resilience.health().breakers["real.example"]?.state).toBe("open");
  });

  it("a host another layer opened is passed over without a request: one breaker event, one fallback event, health() lists it open", async () => {
    const clock = new TestClock();
    const store = memoryStore();
    const a = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      fetch: async () => new Response("x", { status: 503 }),
    });
    await (await clock.run(a.fetch("https://down.example/x"))).body?.cancel();
    const urls: string[] = [];
    const b = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      fetch: async (input) => {
        urls.push(urlOf(input));
        return new Response("ok");
      },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://down.example" },
            { name: "s", url: "https://up.example" },
          ],
        },
      ]),
    });
    const breakerEvents: Array<{ key: string; to: string }> = [];
    const fallbackEvents: Array<{ reason: string }> = [];
    b.on("breaker", (e) => breakerEvents.push(e));
    b.on("fallback", (e) => fallbackEvents.push(e));
    const r = await clock.run(b.fetch("https://down.example/x"));
    expect(await r.text()).toBe("ok");
    expect(urls).toEqual(["https://up.example/x"]);
    expect(breakerEvents.map((e) => `${e.key}:${e.to}`)).toEqual(["down.example:open"]);
    expect(fallbackEvents.map((e) => e.reason)).toEqual(["circuit open"]);
    expect(b.health().breakers["down.example"]?.state).toBe("open");
    expect(b.health().breakers["up.example"]?.state).toBe("closed");
  });

  it("the ky client over a chain with a shared store passes over a host another layer opened", async () => {
    const clock = new TestClock();
    const store = memoryStore();
    const a = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      fetch: async () => new Response("x", { status: 503 }),
    });
    await (await clock.run(a.fetch("https://down.example/x"))).body?.cancel();
    const urls: string[] = [];
    const api = createClient({
      resilience: {
        clock,
        store,
        retry: { maxAttempts: 1 },
        fetch: async (input) => {
          urls.push(urlOf(input));
          return Response.json({ ok: true });
        },
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "p", url: "https://down.example" },
              { name: "s", url: "https://up.example" },
            ],
          },
        ]),
      },
    });
    expect(await clock.run(api.post("https://down.example/x", { json: { a: 1 } }).json())).toEqual({ ok: true });
    expect(urls).toEqual(["https://up.example/x"]);
  });

  it("the Worker proxy with kvStore: a chain's transform that moves the call creates no breaker for the configured host (health lists only the host called)", async () => {
    const clock = new TestClock();
    const kv = new FakeKv(clock, { propagation: 0 });
    const urls: string[] = [];
    const proxy = resilientProxy<{ KV: ReturnType<FakeKv["location"]> }>({
      routes: [{ path: "/v1", chain: { name: "c", endpoints: [movedEndpoint()] } }],
      store: (env) => kvStore(env.KV, { clock }),
      resilience: {
        clock,
        retry: { maxAttempts: 1 },
        fetch: async (input) => {
          urls.push(urlOf(input));
          return new Response("ok");
        },
      },
    });
    const env = { KV: kv.location() };
    const ctx = { waitUntil: () => {} };
    const res = await clock.run(proxy.fetch(new Request("https://proxy.example/v1/x"), env, ctx));
    expect(await res.text()).toBe("ok");
    expect(urls).toEqual(["https://real.example/x"]);
    const health = await clock.run(proxy.fetch(new Request("https://proxy.example/__resilience/health"), env, ctx));
    const body = (await health.json()) as { breakers: Record<string, unknown> };
    expect(Object.keys(body.breakers)).toEqual(["real.example"]);
  });
});

describe("fix 2: retry(fn) names a refused string, function or symbol by its kind", () => {
  it("a function, a symbol and a URL string are named by kind, never quoted (plain call of retry(fn))", async () => {
    const url = `https://admin:pw@a.example/v1?key=${SECRET}`;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ maxAttempts: () => url }, "retry.maxAttempts: expected an integer >= 1, received a function"],
      [{ initialDelay: Symbol(url) }, "retry.initialDelay: expected a number >= 0, received a symbol"],
      [{ jitter: url }, 'retry.jitter: expected one of "full", "equal", "decorrelated", "none", received a string'],
      [{ onRetry: url }, "retry.onRetry: expected a function, received a string"],
      [{ signal: class K {} }, "retry.signal: expected an AbortSignal, received a function"],
    ];
    for (const [options, message] of cases) {
      const error = await rejection(retry(async () => 1, options as never));
      expect((error as Error).message).toBe(message);
      expect(allText(error)).not.toContain(SECRET);
    }
  });

  // SECURITY.md, "No secret in events, errors, health() or debugInfo()":
  // "... an option's `ConfigError` included". The fix covers refused values
  // only: a misspelt option whose name is a URL (an object of headers or
  // endpoints spread into the options by mistake) is quoted whole.
  it("retry(fn) of ./policies: an unknown option named by a URL with a key is not quoted with its key (SECURITY.md: an option's ConfigError included)", async () => {
    const error = await rejection(retry(async () => 1, { [`https://a.example/v1?key=${SECRET}`]: 1 } as never));
    expect((error as Error).name).toBe("ConfigError");
    // Today: 'retry: unknown option "https://a.example/v1?key=sk_live_TOPSECRET"'.
    expect(allText(error)).not.toContain(SECRET);
  });

  it("createResilience: an unknown option named by a URL with a password or key is not quoted with them (SECURITY.md: an option's ConfigError included)", () => {
    const error = thrown(() =>
      createResilience({ retry: { [`//admin:hunter2@a.example/?key=${SECRET}`]: 1 } as never }),
    );
    expect((error as Error).name).toBe("ConfigError");
    // Today: 'retry: unknown option "//admin:hunter2@a.example/?key=sk_live_TOPSECRET"'.
    expect(allText(error)).not.toContain(SECRET);
    expect(allText(error)).not.toContain("hunter2");
  });

  // Found while fixing the two above: the same holds for a misspelt key under
  // `retryOn`, a misspelt key of ky's and the proxy's `resilience` options,
  // and a record's key (a header name) shown in a refused value's path.
  it("the same, under retry(fn)'s retryOn, through ky and the proxy, and as a header name in a path", async () => {
    const url = `//admin:hunter2@a.example/?key=${SECRET}`;
    const errors = [
      await rejection(retry(async () => 1, { retryOn: { [url]: 1 } } as never)),
      thrown(() => createClient({ resilience: { breaker: { [url]: 1 } } as never })),
      thrown(() =>
        resilientProxy({
          routes: [{ path: "/", upstream: "https://up.example" }],
          resilience: { timeout: { [url]: 1 } } as never,
        }),
      ),
      thrown(() =>
        fallback([{ name: "c", endpoints: [{ name: "a", url: "https://a.example/", headers: { [url]: "a\nb" } }] }]),
      ),
    ];
    expect((errors[0] as Error).message).toBe("retry.retryOn: unknown option (its name not shown)");
    for (const error of errors) {
      expect((error as Error).name).toBe("ConfigError");
      expect(allText(error)).not.toContain(SECRET);
      expect(allText(error)).not.toContain("hunter2");
    }
    // A password holding spaces inside text (found in the runtimes run,
    // test/runtimes/session-thirteen-runtimes.test.ts): cut after `//` and
    // `user:` up to its `@`, over up to 16 spaces; a port is no password.
    for (const [text, shown] of [
      [`x https://admin:hunter 2@a.example/?key=${SECRET}`, "x https://a.example/"],
      [`x //admin:hunter 2@a.example/?key=${SECRET}`, "x //a.example/"],
      ["x \\/\\/admin:a b c@a.example/", "x \\/\\/a.example/"],
      [`https://a:${"w ".repeat(16)}@h/`, "https://h/"],
      ["see https://host:8080 and mail bob@x.com", "see https://host:8080 and mail bob@x.com"],
    ] as const) {
      const error = thrown(() => createResilience({ retry: { [text]: 1 } as never })) as Error;
      expect(error.message).toBe(
        `retry: unknown option ${JSON.stringify(shown)}${shown === text ? "" : " (credentials, query and fragment cut)"}`,
      );
    }
    // A plain misspelt name is still named.
    expect((thrown(() => createResilience({ retry: { maxAttempt: 2 } as never })) as Error).message).toBe(
      'retry: unknown option "maxAttempt"',
    );
  });
});

describe("fix 3: a transform's JSON goes as application/json unless the media type names JSON", () => {
  const recorder = () => {
    const seen: Array<[string | null, string]> = [];
    const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      seen.push([req.headers.get("content-type"), await req.text()]);
      return new Response("ok");
    };
    return { seen, fetch };
  };
  const changing = (hedge?: { delay: number }) =>
    fallback([
      {
        name: "c",
        ...(hedge ? { hedge } : {}),
        endpoints: [
          {
            name: "e",
            url: "https://api.example",
            transform: (r: { method: string; url: string; headers: Headers }) => ({ ...r, body: { a: 2 } }),
          },
        ],
      },
    ]);

  it("plain and hedged chains, a Request with a FormData body, a multipart label naming JSON in a parameter, a JSON media type with a parameter", async () => {
    for (const hedge of [undefined, { delay: 5 }]) {
      const clock = new TestClock();
      const { seen, fetch } = recorder();
      const resilience = createResilience({ clock, fetch, fallback: changing(hedge) });
      const form = new FormData();
      form.set("f", "json");
      const headers = { "idempotency-key": "k1" };
      await clock.run(resilience.fetch(new Request("https://api.example/x", { method: "POST", body: form, headers })));
      await clock.run(
        resilience.fetch("https://api.example/x", {
          method: "POST",
          body: '{"a":1}',
          headers: { ...headers, "content-type": 'multipart/related; type="application/json"; boundary=b' },
        }),
      );
      await clock.run(
        resilience.fetch("https://api.example/x", {
          method: "PUT",
          body: '{"a":1}',
          headers: { "content-type": "Application/VND.api+JSON; charset=utf-8" },
        }),
      );
      expect(seen).toEqual([
        ["application/json", '{"a":2}'],
        ["application/json", '{"a":2}'],
        ["Application/VND.api+JSON; charset=utf-8", '{"a":2}'],
      ]);
    }
  });

  it("the ky client's FormData body, changed by a transform, goes as application/json", async () => {
    const clock = new TestClock();
    const { seen, fetch } = recorder();
    const api = createClient({ resilience: { clock, fetch, fallback: changing() } });
    const form = new FormData();
    form.set("f", "application/json");
    await clock.run(api.post("https://api.example/x", { body: form }).text());
    expect(seen).toEqual([["application/json", '{"a":2}']]);
  });
});

describe("fix 4: a scheme-relative URL is cut after ( \" ' ` < [ { = , ;", () => {
  const leads = ["(", '"', "'", "`", "<", "[", "{", "=", ",", ";"];
  const message = (lead: string) => `failed x${lead}//admin:pa#ss@h.example/p?key=${SECRET}`;

  it("plain call and execute: the error never shows the user, the password or the key", async () => {
    const clock = new TestClock();
    for (const lead of leads) {
      const r = createResilience({
        clock,
        retry: { maxAttempts: 1 },
        fetch: async () => {
          throw new TypeError(message(lead));
        },
      });
      const plain = await clock.run(rejection(r.fetch("https://h.example/")));
      const executed = await clock.run(
        rejection(
          r.execute(async () => {
            throw new Error(message(lead));
          }),
        ),
      );
      for (const error of [plain, executed]) {
        const text = allText(error);
        expect(text).toContain(`x${lead}//h.example/p`);
        for (const secret of ["admin", "pa#ss", SECRET]) expect(text).not.toContain(secret);
      }
    }
  });

  it("fallback and hedged chains: the FallbackExhaustedError and each fallback event's reason are cut", async () => {
    for (const hedge of [undefined, { delay: 5 }]) {
      const clock = new TestClock();
      let n = 0;
      const reasons: string[] = [];
      const r = createResilience({
        clock,
        retry: { maxAttempts: 1 },
        fetch: async () => {
          throw new TypeError(message(leads[n++ % leads.length] as string));
        },
        fallback: fallback([
          {
            name: "c",
            ...(hedge ? { hedge } : {}),
            endpoints: [
              { name: "a", url: "https://a.example" },
              { name: "b", url: "https://b.example" },
              { name: "c", url: "https://c.example" },
            ],
          },
        ]),
      });
      r.on("fallback", (e) => reasons.push(e.reason));
      for (let i = 0; i < 4; i++) {
        const error = await clock.run(rejection(r.fetch("https://a.example/x", { method: "GET" })));
        const text = allText(error) + reasons.join("\n");
        for (const secret of ["admin", "pa#ss", SECRET]) expect(text).not.toContain(secret);
      }
      expect(reasons.length).toBeGreaterThan(0);
    }
  });

  it("the ky client's error is cut too", async () => {
    const clock = new TestClock();
    for (const lead of ["{", ",", ";"]) {
      const api = createClient({
        resilience: {
          clock,
          retry: { maxAttempts: 1 },
          fetch: async () => {
            throw new TypeError(message(lead));
          },
        },
      });
      const error = await clock.run(rejection(api.get("https://h.example/x").text()));
      for (const secret of ["admin", "pa#ss", SECRET]) expect(allText(error)).not.toContain(secret);
    }
  });
});

describe("fix 5: a half-open breaker adopts a remote open that still runs, whenever it started", () => {
  it("a probe in flight, then a remote open dated before the half-open: the next call is refused without a request, one breaker event, health() open until the remote end", async () => {
    const clock = new TestClock();
    const published: Array<Parameters<BreakerStore["publish"]>[1]> = [];
    let remote: Parameters<BreakerStore["publish"]>[1] | undefined;
    const store: BreakerStore = {
      name: "hand",
      publish: (_key, snapshot) => published.push(snapshot),
      peek: () => remote,
    };
    let release: ((r: Response) => void) | undefined;
    let sent = 0;
    const r = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
      fetch: async () => {
        sent++;
        if (sent === 1) return new Response("x", { status: 503 });
        return new Promise<Response>((resolve) => {
          release = resolve;
        });
      },
    });
    await (await clock.run(r.fetch("https://h.example/"))).body?.cancel();
    expect(r.health().breakers["h.example"]?.state).toBe("open");
    await clock.advance(1_000);
    const probe = r.fetch("https://h.example/");
    await clock.advance(0);
    expect(sent).toBe(2);
    const opened = published[0];
    expect(opened?.state).toBe("open");
    // Another isolate tripped at 500 (before this breaker went half-open at 1000) and holds the host until 9000.
    remote = { ...(opened as NonNullable<typeof opened>), changedAt: 500, openUntil: 9_000, gen: 4 };
    const events: Array<{ from: string; to: string }> = [];
    r.on("breaker", (e) => events.push(e));
    const refused = await clock.run(rejection(r.fetch("https://h.example/")));
    expect((refused as Error).name).toBe("CircuitOpenError");
    expect((refused as { retryAt: number }).retryAt).toBe(9_000);
    expect(sent).toBe(2);
    expect(events.map((e) => `${e.from}>${e.to}`)).toEqual(["half_open>open"]);
    release?.(new Response("ok"));
    expect(await (await clock.run(probe)).text()).toBe("ok");
    expect(r.health().breakers["h.example"]).toMatchObject({ state: "open", openUntil: 9_000 });
  });
});
