/**
 * Outside-in attack on README.md, read again with fresh eyes for what earlier runs (readme-paths-attack,
 * readme-twenty-attack, test/tooling/newcomer.test.ts) did not try: the Worker quick start's own words ("breaker
 * state shared between isolates through KV", its `upstream` route), the benchmark row about a dead API with
 * defaults on every path, the quick start's catch comment (`retry: { idempotencyKey: true }` moves a dropped
 * POST on to the backup) on every path including the proxy, "in a chain the last answer any endpoint gave"
 * when the last endpoint gives none for each reason a chain can have, the 0.1 migration refusal through the
 * ky client and the proxy, and "an entry of its own that you import only if you use it" on the root's graph.
 * Public entries only; stub transports (test/helpers/host-fetch.ts) on a TestClock or with zero delays, and
 * real servers on 127.0.0.1 (test/helpers/http-upstream.ts) for the Worker sample pasted as written.
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour): none. Every promise tried held.
 *
 * Held (plain `it`):
 * - "a proxy with a fallback chain, breaker state shared between isolates through KV": the Worker sample
 *   (URLs on local servers, zero backoff), premium answering 503: the first isolate stops calling premium
 *   after 4 calls (12 requests) and writes one KV key; a second isolate on the same KV sends premium at
 *   most its first call (one request here: KV is read in the background), then none, every call served by standard with the key from its binding;
 * - the sample's `{ path: "/v1/text", upstream: "https://text.example/v1" }` sends `/v1/text/complete?x=1` to
 *   `…/v1/complete?x=1`;
 * - the benchmark row "dead API, one call at a time: calls sent before the breaker refuses: 4" (defaults):
 *   4 calls, 12 requests (the "3-attempt ceiling"), then `CircuitOpenError` unsent: plain, `Request`, ky, a
 *   followed 307, a keyed POST and an unkeyed one;
 * - "set `retry: { idempotencyKey: true }`" (quick start's catch comment): a dropped connection moves on to the
 *   backup, the same key on every request: plain, `Request`, ky, a degradation stage, a followed 307, a
 *   hedged chain; the Worker proxy with the option, and with the client's own key;
 * - "in a chain the last answer any endpoint gave": the primary's 503 when the backup was skipped by its
 *   open breaker, timed out, or was refused by its bulkhead; the backup's 200 that failed `validate` on a GET;
 *   the proxy answers premium's 503 (`x-resilience-endpoint: premium`) when standard refuses the connection
 *   (when it drops one, see the test's note);
 * - "No response at all: every endpoint failed, was skipped by its open breaker, or timed out": each rejects
 *   with an error `isResilienceError` recognises, so the catch wraps it;
 * - 0.1-style `fallback` / `degradation` options are a `ConfigError` naming the entry to import, through
 *   `createClient({ resilience })` and `resilientProxy({ resilience })` too;
 * - the root entry's and the ky entry's module graphs hold nothing of `src/fallback`, `src/degradation` or zod.
 *
 * Suspicious, not pinned (no README sentence promises otherwise):
 * - a plain call whose first attempt got a 503 and whose retries all failed on the network rejects with
 *   `RetryExhaustedError` (the 503 is not given): the README's "(the last attempt's, …)" and
 *   docs/retry.md's "When the last attempt produced a Response" say exactly that;
 * - `resilientProxy({ resilience: { fallback: […] } })` (0.1 style) was refused with "expected fallback(…) from
 *   …/fallback", but a `fallback(…)` given there (outside its type) was ignored silently: the proxy's chains come
 *   from `routes`, which the message did not say. Changed since: both are refused with where chains go
 *   (checked in the migration case below).
 */
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  type ExecutionContextLike,
  type KvNamespaceLike,
  kvStore,
  resilientProxy,
} from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isConfigError,
  isResilienceError,
  type Resilience,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Answer, header, hostFetch } from "../helpers/host-fetch.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { FAST, outcome } from "../helpers/platform-layer.ts";

const PREMIUM = httpUpstream();
const STANDARD = httpUpstream();
serveDuringFile(PREMIUM, STANDARD);

const ctx = { waitUntil() {} };
const drop: Answer = () => {
  throw new TypeError("fetch failed", {
    cause: Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }),
  });
};
const busy: Answer = () => new Response("busy", { status: 503 });
const ok: Answer = () => new Response("ok");
const AB = [
  { name: "a", url: "http://a.test/v1" },
  { name: "b", url: "http://b.test/v1" },
];

/** A KV namespace in memory, as two isolates would share one. */
function memoryKv(): KvNamespaceLike & { puts: string[] } {
  const data = new Map<string, { value: string; metadata: unknown }>();
  const puts: string[] = [];
  return {
    puts,
    async getWithMetadata<M>(key: string) {
      const entry = data.get(key);
      return { value: entry?.value ?? null, metadata: (entry?.metadata ?? null) as M | null };
    },
    async put(key: string, value: string, options?: { metadata?: unknown }) {
      puts.push(key);
      data.set(key, { value, metadata: options?.metadata });
    },
  };
}

interface Env {
  BREAKERS: KvNamespaceLike;
  STANDARD_KEY: string;
}

/** The README's Worker module, pasted: one per isolate (its module-scope `proxy`). */
function workerModule() {
  let proxy: ReturnType<typeof resilientProxy<Env>> | undefined;
  return {
    fetch(request: Request, env: Env, ctx: ExecutionContextLike): Promise<Response> {
      proxy ??= resilientProxy<Env>({
        routes: [
          {
            path: "/v1/video",
            chain: {
              name: "video",
              endpoints: [
                { name: "premium", url: `${PREMIUM.base}/v1/video` },
                {
                  name: "standard",
                  url: `${STANDARD.base}/v2/video`,
                  headers: { authorization: `Bearer ${env.STANDARD_KEY}` },
                },
              ],
            },
          },
          { path: "/v1/text", upstream: `${STANDARD.base}/v1` },
        ],
        store: (env) => kvStore(env.BREAKERS),
        resilience: { retry: FAST }, // the only change: no real backoff in a test
      });
      return proxy.fetch(request, env, ctx);
    },
  };
}

describe("README, Worker quick start: 'breaker state shared between isolates through KV'", () => {
  it("a second isolate on the same KV stops calling the premium provider the first one found down", async () => {
    PREMIUM.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    const kv = memoryKv();
    const env: Env = { BREAKERS: kv, STANDARD_KEY: "sk-1" };
    const pending: Promise<unknown>[] = [];
    const waiting = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    const video = () => new Request("https://worker.example/v1/video", { method: "POST", body: "{}" });

    const first = workerModule();
    for (let i = 0; i < 6; i++) {
      const res = await first.fetch(video(), env, waiting);
      expect([res.status, res.headers.get("x-resilience-endpoint")]).toEqual([200, "standard"]);
    }
    expect(PREMIUM.hits.length).toBe(12);
    await Promise.all(pending);
    expect(kv.puts).toEqual([`cb:v1:default:${PREMIUM.host}`]);

    const second = workerModule();
    const reached: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = PREMIUM.hits.length;
      const res = await second.fetch(video(), env, waiting);
      expect(res.status).toBe(200);
      reached.push(PREMIUM.hits.length - before);
      await Promise.all(pending);
    }
    // Its first call may reach premium (KV is read in the background, never awaited by a request).
    expect(reached[0]).toBeLessThanOrEqual(3);
    expect(reached.slice(1)).toEqual([0, 0]);
    expect(STANDARD.hits.every((hit) => hit.headers.authorization === "Bearer sk-1")).toBe(true);
  });

  it("the `upstream` route rebases the rest of the path and the query onto the upstream", async () => {
    const res = await workerModule().fetch(
      new Request("https://worker.example/v1/text/complete?x=1"),
      { BREAKERS: memoryKv(), STANDARD_KEY: "k" },
      ctx,
    );
    expect(res.status).toBe(200);
    expect(STANDARD.hits.map((hit) => hit.path)).toEqual(["/v1/complete?x=1"]);
  });
});

describe("README, benchmarks: 'dead API, one call at a time: calls sent before the breaker refuses: 4' (defaults)", () => {
  const paths: Array<[string, (layer: Resilience) => Promise<unknown>, boolean, boolean]> = [
    ["plain GET", (l) => l.fetch("http://a.test/x"), false, false],
    ["a Request", (l) => l.fetch(new Request("http://a.test/x")), false, false],
    ["ky", (l) => createClient({ resilience: l, throwHttpErrors: false }).get("http://a.test/x"), false, false],
    ["a followed 307", (l) => l.fetch("http://a.test/x"), true, false],
    ["a keyed POST", (l) => l.fetch("http://a.test/x", { method: "POST", body: "{}" }), false, true],
    ["an unkeyed POST", (l) => l.fetch("http://a.test/x", { method: "POST", body: "{}" }), false, false],
  ];
  it("4 calls of 3 attempts each, then CircuitOpenError unsent, on every path", async () => {
    for (const [name, call, redirect, keyed] of paths) {
      const clock = new TestClock();
      const up = hostFetch({
        "a.test": (r) =>
          redirect && new URL(r.url).pathname === "/x"
            ? new Response(null, { status: 307, headers: { location: "/y" } })
            : new Response("down", { status: 503 }),
      });
      const layer = createResilience({ clock, fetch: up.fetch, ...(keyed ? { retry: { idempotencyKey: true } } : {}) });
      let sent = 0;
      let refusal = "";
      for (let i = 0; i < 30 && refusal === ""; i++) {
        const before = up.state.entered;
        const ended = await clock.run(
          call(layer).then(
            () => "",
            (e: unknown) => (e as Error).name,
          ),
        );
        if (up.state.entered > before) sent++;
        else refusal = ended;
        await clock.advance(1000);
      }
      const finals = redirect ? up.log.filter((r) => r.url.endsWith("/y")).length : up.state.entered;
      expect([name, sent, finals, refusal]).toEqual([name, 4, 12, "CircuitOpenError"]);
    }
  });
});

describe("README quick start: 'set `retry: { idempotencyKey: true }`' moves a dropped POST on to the backup", () => {
  const keyed = { retry: { ...FAST, idempotencyKey: true } };
  const post = (l: Resilience) =>
    l.fetch("http://a.test/v1/x", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  const paths: Array<
    [string, Record<string, Answer>, Partial<ResilienceOptions>, (l: Resilience) => Promise<Response>]
  > = [
    ["plain", { "a.test": drop, "b.test": ok }, { fallback: fallback([{ name: "c", endpoints: AB }]) }, post],
    [
      "a Request",
      { "a.test": drop, "b.test": ok },
      { fallback: fallback([{ name: "c", endpoints: AB }]) },
      (l) => l.fetch(new Request("http://a.test/v1/x", { method: "POST", body: "{}" })),
    ],
    [
      "ky",
      { "a.test": drop, "b.test": ok },
      { fallback: fallback([{ name: "c", endpoints: AB }]) },
      (l) => createClient({ resilience: l }).post("http://a.test/v1/x", { json: { a: 1 } }),
    ],
    [
      "a degradation stage",
      { "a.test": drop, "b.test": ok },
      { fallback: fallback([{ name: "c", endpoints: AB }]), degradation: degradation({}) },
      post,
    ],
    [
      "a followed 307",
      {
        "a.test": (r, n) =>
          new URL(r.url).pathname === "/v1/x"
            ? new Response(null, { status: 307, headers: { location: "/v1/y" } })
            : drop(r, n),
        "b.test": ok,
      },
      { fallback: fallback([{ name: "c", endpoints: AB }]) },
      post,
    ],
    [
      "a hedged chain",
      { "a.test": drop, "b.test": ok },
      { fallback: fallback([{ name: "c", endpoints: AB, hedge: { delay: 100 } }]) },
      post,
    ],
  ];
  it("plain, Request, ky, degradation, a followed 307, a hedge: the backup answers, one key throughout", async () => {
    for (const [name, answers, options, call] of paths) {
      const clock = new TestClock();
      const up = hostFetch(answers);
      const layer = createResilience({ clock, fetch: up.fetch, ...keyed, ...options } as ResilienceOptions);
      const res = await clock.run(call(layer));
      expect([name, res.status, await res.text(), getResilienceInfo(res)?.endpoint]).toEqual([name, 200, "ok", "b"]);
      expect([name, up.log.at(-1)?.url]).toEqual([name, "http://b.test/v1/x"]);
      const keys = new Set(up.log.map((r) => header(r, "idempotency-key")));
      expect([name, keys.size, [...keys][0]]).toEqual([name, 1, expect.stringMatching(/^[0-9a-f-]{36}$/)]);
    }
  });

  it("the Worker proxy: with the option, and with the client's own key", async () => {
    for (const [name, retry, headers] of [
      ["the option", { ...FAST, idempotencyKey: true }, {}],
      ["the client's key", FAST, { "idempotency-key": "job-1" }],
    ] as const) {
      const up = hostFetch({ "premium.example": drop, "standard.example": ok });
      const proxy = resilientProxy<object>({
        routes: [
          {
            path: "/v1/video",
            chain: {
              name: "video",
              endpoints: [
                { name: "premium", url: "https://premium.example/v1/video" },
                { name: "standard", url: "https://standard.example/v2/video" },
              ],
            },
          },
        ],
        resilience: { fetch: up.fetch, retry },
      });
      const res = await proxy.fetch(
        new Request("https://worker.example/v1/video", { method: "POST", body: "{}", headers }),
        {},
        ctx,
      );
      expect([name, res.status, res.headers.get("x-resilience-endpoint")]).toEqual([name, 200, "standard"]);
      expect(new Set(up.log.map((r) => header(r, "idempotency-key"))).size).toBe(1);
    }
  });
});

describe("README: 'resolves with … in a chain the last answer any endpoint gave'; rejects only with none", () => {
  const run = async (
    answers: Record<string, Answer>,
    options: Partial<ResilienceOptions>,
    before?: (l: Resilience) => Promise<unknown>,
  ) => {
    const clock = new TestClock();
    const up = hostFetch(answers);
    const layer = createResilience({ clock, fetch: up.fetch, retry: FAST, ...options } as ResilienceOptions);
    if (before) await clock.run(before(layer).catch(() => undefined));
    return clock.run(outcome(layer.fetch("http://a.test/v1/x")));
  };
  const chain = fallback([{ name: "c", endpoints: AB }]);
  it("the backup skipped by its open breaker, timed out, refused by its bulkhead, or failing validate", async () => {
    const skipped = await run(
      { "a.test": busy, "b.test": busy },
      { fallback: chain, breaker: { failureThreshold: 1 } },
      (l) => l.fetch("http://b.test/v1/z"),
    );
    const timedOut = await run(
      { "a.test": busy, "b.test": () => new Promise<Response>(() => {}) },
      { fallback: chain, timeout: { attempt: 1000 } },
    );
    const full = await run(
      { "a.test": busy, "b.test": () => new Promise<Response>(() => {}) },
      { fallback: chain, bulkhead: { maxConcurrent: 1, maxQueue: 0 } },
      async (l) => {
        void l.fetch("http://b.test/v1/z").catch(() => undefined);
      },
    );
    const invalid = await run(
      { "a.test": busy, "b.test": () => Response.json({ ok: false }) },
      {
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              AB[0] as (typeof AB)[0],
              { ...(AB[1] as (typeof AB)[1]), validate: z.object({ ok: z.literal(true) }) },
            ],
          },
        ]),
      },
    );
    expect([skipped, timedOut, full, invalid]).toEqual(["503 busy", "503 busy", "503 busy", '200 {"ok":false}']);
  });

  // Changed in the thirty-first session: a keyless POST that standard may have processed (its connection
  // dropped once the request went out) no longer gets premium's 503, which would tell the client to send the
  // job again; the chain rejects, and the proxy answers with its failure response (502).
  it("the proxy answers premium's 503 when standard refused the POST, and no 503 when standard may have processed it", async () => {
    const refused: Answer = () => {
      throw new TypeError("fetch failed", {
        cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
      });
    };
    const answers: unknown[] = [];
    for (const standard of [refused, drop]) {
      const up = hostFetch({ "premium.example": busy, "standard.example": standard });
      const proxy = resilientProxy<object>({
        routes: [
          {
            path: "/v1/video",
            chain: {
              name: "video",
              endpoints: [
                { name: "premium", url: "https://premium.example/v1/video" },
                { name: "standard", url: "https://standard.example/v2/video" },
              ],
            },
          },
        ],
        resilience: { fetch: up.fetch, retry: FAST },
      });
      const res = await proxy.fetch(
        new Request("https://worker.example/v1/video", { method: "POST", body: "{}" }),
        {},
        ctx,
      );
      answers.push([res.status, res.headers.get("x-resilience-endpoint"), up.log.length]);
    }
    // Requests: premium's three 503s, then standard three times when refused, once when dropped.
    expect(answers).toEqual([
      [503, "premium", 6],
      [502, null, 4],
    ]);
  });

  it("no response at all (every endpoint failed, skipped by its open breaker, or timed out): a ResilienceError", async () => {
    const errors: unknown[] = [];
    for (const [answers, options] of [
      [{ "a.test": drop, "b.test": drop }, { fallback: chain }],
      [{}, { fallback: chain, breaker: { failureThreshold: 1 } }],
      [
        { "a.test": () => new Promise<Response>(() => {}), "b.test": () => new Promise<Response>(() => {}) },
        { fallback: chain, timeout: { attempt: 500 } },
      ],
    ] as Array<[Record<string, Answer>, Partial<ResilienceOptions>]>) {
      const clock = new TestClock();
      const layer = createResilience({
        clock,
        fetch: hostFetch(answers).fetch,
        retry: FAST,
        ...options,
      } as ResilienceOptions);
      await clock.run(layer.fetch("http://a.test/v1/x").catch(() => undefined)); // opens both breakers in the 2nd case
      errors.push(
        await clock.run(
          layer.fetch("http://a.test/v1/x").then(
            () => undefined,
            (e: unknown) => e,
          ),
        ),
      );
    }
    expect(errors.map((e) => isResilienceError(e))).toEqual([true, true, true]);
  });
});

describe("README: entries of their own, and the 0.1 migration on every way in", () => {
  it("0.1-style fallback / degradation options through createClient and resilientProxy: a ConfigError naming the entry", () => {
    const route = [{ path: "/v1", upstream: "https://t.example/v1" }];
    const thrown = (make: () => unknown) => {
      try {
        make();
        return "accepted";
      } catch (e) {
        return isConfigError(e) ? (e as Error).message : String(e);
      }
    };
    expect(thrown(() => createClient({ resilience: { fallback: [] as never } }))).toMatch(
      /fallback\(…\) from "@storycore\/resilient-fetch\/fallback"/,
    );
    expect(thrown(() => createClient({ resilience: { degradation: {} as never } }))).toMatch(
      /degradation\(…\) from "@storycore\/resilient-fetch\/degradation"/,
    );
    expect(
      thrown(() => resilientProxy({ routes: route, resilience: { degradation: { levels: {} } as never } })),
    ).toMatch(/degradation\(…\) from "@storycore\/resilient-fetch\/degradation"/);
    // A proxy's chains go in its routes: a `fallback` in its `resilience`, 0.1-style or not, is refused so.
    for (const stage of [[], fallback([{ name: "c", endpoints: [{ name: "a", url: "https://a.example/v1" }] }])])
      expect(thrown(() => resilientProxy({ routes: route, resilience: { fallback: stage } as never }))).toBe(
        "resilience.fallback: a proxy's chains go in its routes ({ path, chain })",
      );
  });

  it("the root and ky entries' module graphs hold nothing of src/fallback, src/degradation or zod", async () => {
    for (const entry of ["../../src/index.ts", "../../src/ky/index.ts"]) {
      const r = await build({
        entryPoints: [new URL(entry, import.meta.url).pathname],
        bundle: true,
        write: false,
        metafile: true,
        format: "esm",
        platform: "browser",
        external: ["ky"],
        logLevel: "silent",
      });
      expect(Object.keys(r.metafile.inputs).filter((i) => /src\/(fallback|degradation)\/|zod/.test(i))).toEqual([]);
    }
  });
});
