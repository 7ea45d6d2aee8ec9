import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  CircuitOpenError,
  ConfigError,
  createResilience,
  FallbackExhaustedError,
  type ResilienceOptions,
  type RetryEvent,
  TimeoutError,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch, type Sent } from "../helpers/recording-fetch.ts";

const PRIMARY = "https://primary.example/v1";
const SPARE = "https://spare.example/v1";

/** A layer whose fallback chain goes from PRIMARY to SPARE, over a recording transport. */
function chained(answer: (sent: Sent, n: number) => Response | Promise<Response>, options: ResilienceOptions = {}) {
  const { fetch, sent } = recordingFetch(answer);
  const clock = new TestClock(0);
  const resilience = createResilience({
    fetch,
    clock,
    retry: { maxAttempts: 3, jitter: "none", initialDelay: 10 },
    fallback: fallback([
      {
        name: "gen",
        endpoints: [
          { name: "primary", url: PRIMARY },
          { name: "spare", url: SPARE },
        ],
      },
    ]),
    ...options,
  });
  return { resilience, clock, sent, hosts: () => sent.map((s) => new URL(s.url).host) };
}

const refused = (): TypeError =>
  new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) });
const reset = (): TypeError =>
  new TypeError("fetch failed", { cause: Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }) });

/** A body that yields `first` (if any) and then nothing, ever. */
function stalled(first?: string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      if (first !== undefined) controller.enqueue(new TextEncoder().encode(first));
    },
  });
}

describe("a Request whose body is a stream", () => {
  let server: ReturnType<typeof createServer>;
  let base: string;
  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      // /early answers at once, as an API that rejects or accepts before the
      // upload ends; /digest reads everything and answers its size and hash.
      if (req.url === "/early") return res.end("accepted");
      const hash = createHash("sha256");
      let bytes = 0;
      req.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      req.on("end", () => res.end(`${bytes}:${hash.digest("hex")}`));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  /** `total` bytes in 1 KiB chunks, each filled with its index. */
  const upload = (total: number) => {
    let pulled = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= total) return controller.close();
        controller.enqueue(new Uint8Array(1024).fill(pulled / 1024));
        pulled += 1024;
      },
    });
  };
  const post = (url: string, body: ReadableStream<Uint8Array>) =>
    new Request(url, { method: "POST", body, duplex: "half" } as RequestInit);

  it("is read at most maxReplayBytes ahead, then sent once as a stream: a huge upload gets its early answer", async () => {
    const resilience = createResilience({ maxReplayBytes: 64 * 1024, timeout: { total: 10_000 } });
    const replays: number[] = [];
    resilience.on("replay", (e) => replays.push(e.bytes));
    const res = await resilience.fetch(post(`${base}/early`, upload(64 * 1024 * 1024)), {
      signal: new AbortController().signal,
    });
    expect([res.status, await res.text()]).toEqual([200, "accepted"]);
    // It stopped buffering one chunk past the limit and streamed the rest.
    expect(replays).toEqual([65 * 1024]);
  });

  it("sends the part read ahead and the rest as one body, every byte in order", async () => {
    const total = 1024 * 1024;
    const expected = createHash("sha256");
    for (let i = 0; i < total / 1024; i++) expected.update(new Uint8Array(1024).fill(i));
    const resilience = createResilience({ maxReplayBytes: 64 * 1024 });
    const res = await resilience.fetch(post(`${base}/digest`, upload(total)));
    expect(await res.text()).toBe(`${total}:${expected.digest("hex")}`);
  });

  it("ends with timeout.total or the caller's abort while its body is still being read", async () => {
    const { fetch, sent } = recordingFetch();
    const clock = new TestClock(0);
    const resilience = createResilience({ fetch, clock, timeout: { total: 400 } });
    const call = resilience.fetch(
      new Request("https://a.example/", { method: "POST", body: stalled("{"), duplex: "half" } as RequestInit),
    );
    const timedOut = expect(call).rejects.toBeInstanceOf(TimeoutError);
    await clock.advance(400);
    await timedOut;
    const controller = new AbortController();
    const reason = new Error("left the page");
    const aborted = resilience.fetch(
      new Request("https://a.example/", { method: "POST", body: stalled(), duplex: "half" } as RequestInit),
      { signal: controller.signal },
    );
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    expect([sent.length, clock.pending()]).toEqual([0, 0]);
  });
});

describe("the caller's init through a chain", () => {
  it("reaches the transport whole: redirect, credentials, cache, keepalive, referrerPolicy, integrity, priority", async () => {
    const { resilience, clock, sent } = chained(
      (s) =>
        new Response(s.url.includes("primary") ? null : "ok", {
          status: s.url.includes("primary") ? 503 : 200,
        }),
    );
    const init = {
      redirect: "error",
      credentials: "include",
      cache: "no-store",
      keepalive: true,
      referrerPolicy: "no-referrer",
      integrity: "sha256-abc",
      priority: "high",
    } as RequestInit;
    await clock.run(resilience.fetch(`${PRIMARY}/images`, init));
    for (const s of sent) {
      expect(s.init).toMatchObject(init);
    }
    expect(sent.at(-1)?.url).toBe(`${SPARE}/images`);
  });

  it("sends a stream body through a chain, once, with duplex", async () => {
    const { resilience, clock, sent } = chained(() => new Response("ok"));
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("streamed"));
        c.close();
      },
    });
    const res = await clock.run(resilience.fetch(`${PRIMARY}/up`, { method: "PUT", body }));
    expect([res.status, sent.map((s) => s.body), (sent[0]?.init as { duplex?: string } | undefined)?.duplex]).toEqual([
      200,
      ["streamed"],
      "half",
    ]);
  });

  it("keeps a Request input's own properties when a chain sends it elsewhere", async () => {
    const { resilience, clock, sent } = chained(
      (s) => new Response(null, { status: s.url.includes("primary") ? 503 : 200 }),
    );
    const request = new Request(`${PRIMARY}/x`, { method: "PUT", body: "b", redirect: "manual", cache: "no-cache" });
    await clock.run(resilience.fetch(request));
    expect(sent.map((s) => [s.method, s.body, s.init?.redirect, s.init?.cache])).toEqual([
      ["PUT", "b", "manual", "no-cache"],
      ["PUT", "b", "manual", "no-cache"],
      ["PUT", "b", "manual", "no-cache"],
      ["PUT", "b", "manual", "no-cache"],
    ]);
  });
});

describe("a POST without an idempotency key is never processed twice", () => {
  const post = { method: "POST", body: '{"prompt":"a cat"}' };

  it("stays with the endpoint that may have processed it: a 500, a reset, an attempt timeout", async () => {
    const after500 = chained(() => new Response(null, { status: 500 }));
    const res = await after500.clock.run(after500.resilience.fetch(`${PRIMARY}/jobs`, post));
    expect([res.status, after500.hosts()]).toEqual([500, ["primary.example"]]);

    const afterReset = chained(() => Promise.reject(reset()));
    await expect(afterReset.clock.run(afterReset.resilience.fetch(`${PRIMARY}/jobs`, post))).rejects.toBeInstanceOf(
      FallbackExhaustedError,
    );
    expect(afterReset.hosts()).toEqual(["primary.example"]);

    const plain = recordingFetch(() => Promise.reject(reset()));
    const single = createResilience({ fetch: plain.fetch, clock: new TestClock(0) });
    await expect(single.fetch(`${PRIMARY}/jobs`, post)).rejects.toThrow(/gave up after 1 attempt/);
    expect(plain.sent.length).toBe(1);
  });

  it("moves on (retry and fallback alike) when it surely was not processed: refused, 429, 503", async () => {
    const whenRefused = chained((s) => (s.url.includes("primary") ? Promise.reject(refused()) : new Response("ok")));
    const events: RetryEvent[] = [];
    whenRefused.resilience.on("retry", (e) => events.push(e));
    const res = await whenRefused.clock.run(whenRefused.resilience.fetch(`${PRIMARY}/jobs`, post));
    expect([res.status, whenRefused.hosts()]).toEqual([
      200,
      ["primary.example", "primary.example", "primary.example", "spare.example"],
    ]);
    expect(events.map((e) => e.reason)).toEqual(["connection refused", "connection refused"]);

    for (const status of [429, 503]) {
      const declined = chained((s) => new Response(null, { status: s.url.includes("primary") ? status : 200 }));
      const ok = await declined.clock.run(declined.resilience.fetch(`${PRIMARY}/jobs`, post));
      expect([status, ok.status, declined.hosts().at(-1)]).toEqual([status, 200, "spare.example"]);
    }
  });

  it("with a key moves on after a 500 as before", async () => {
    const keyed = chained((s) => new Response(null, { status: s.url.includes("primary") ? 500 : 200 }));
    const res = await keyed.clock.run(
      keyed.resilience.fetch(`${PRIMARY}/jobs`, { ...post, headers: { "Idempotency-Key": "job-1" } }),
    );
    expect([res.status, keyed.hosts().at(-1)]).toEqual([200, "spare.example"]);
  });
});

describe("a body above maxReplayBytes is sent once, on every path", () => {
  const put = { method: "PUT", body: "x".repeat(20) };
  it("through a chain", async () => {
    const { resilience, clock, sent } = chained(() => new Response(null, { status: 503 }), { maxReplayBytes: 10 });
    const res = await clock.run(resilience.fetch(`${PRIMARY}/blob`, put));
    expect([res.status, sent.length]).toEqual([503, 1]);
  });

  it("with a degradation rule or a level header", async () => {
    for (const options of [{ levelHeader: "x-level" }, { rules: [{ params: { steps: "steps" } as const }] }]) {
      const { fetch, sent } = recordingFetch(() => new Response(null, { status: 503 }));
      const resilience = createResilience({
        fetch,
        clock: new TestClock(0),
        maxReplayBytes: 10,
        degradation: degradation(options),
      });
      resilience.degradation.setLevel("medium");
      const body = JSON.stringify({ steps: 50, pad: "0123456789" });
      await resilience.fetch("https://a.example/", { method: "PUT", body });
      expect(sent.length).toBe(1);
    }
  });
});

describe("rewriting changes only the fields a rule touches", () => {
  it("keeps 64-bit seeds, key order and spacing byte for byte", async () => {
    const { fetch, sent } = recordingFetch();
    const resilience = createResilience({
      fetch,
      clock: new TestClock(0),
      degradation: degradation({ rules: [{ params: { steps: "steps" } }] }),
    });
    resilience.degradation.setLevel("medium");
    const body = '{"prompt":"x", "seed":18446744073709551615,"steps":50,"n":{"deep":1e400}}';
    await resilience.fetch("https://a.example/", {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    const sentBody = sent[0]?.body as string;
    const steps = JSON.parse(sentBody).steps as number;
    expect(steps).toBeLessThan(50);
    expect(sentBody).toBe(body.replace('"steps":50', `"steps":${steps}`));
  });
});

describe("validate reads a body within bounds", () => {
  it("moves on when a 2xx body stalls after its headers", async () => {
    const schema = {
      "~standard": { version: 1 as const, vendor: "test", validate: (value: unknown) => ({ value }) },
    };
    const { fetch, sent } = recordingFetch((s) =>
      s.url.includes("primary") ? new Response(stalled('{"url":')) : Response.json({ url: "x" }),
    );
    const clock = new TestClock(0);
    const resilience = createResilience({
      fetch,
      clock,
      retry: false,
      timeout: { attempt: 1000 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: PRIMARY, validate: schema },
            { name: "spare", url: SPARE, validate: schema },
          ],
        },
      ]),
    });
    const call = resilience.fetch(`${PRIMARY}/img`);
    await clock.waitForTimers(1);
    await clock.advance(1000);
    const res = await call;
    expect([await res.json(), sent.map((s) => new URL(s.url).host)]).toEqual([
      { url: "x" },
      ["primary.example", "spare.example"],
    ]);
    expect(clock.pending()).toBe(0);
  });
});

describe("the caller's mistakes", () => {
  it("reject at once, leave no timer, are never retried and never count against the host", async () => {
    const { fetch, sent } = recordingFetch();
    const clock = new TestClock(0);
    const resilience = createResilience({ fetch, clock, timeout: { total: 8000 }, breaker: { failureThreshold: 1 } });
    const bad: Array<[string, () => Promise<Response>, RegExp]> = [
      ["not a url", () => resilience.fetch("not a url?key=secret"), /invalid URL "not a url"/],
      ["port 99999", () => resilience.fetch("https://a.example:99999/x"), /invalid URL/],
      ["userinfo", () => resilience.fetch("https://user:secret@a.example/x"), /includes credentials/],
      ["CR/LF in a header", () => resilience.fetch("https://a.example/", { headers: { x: "a\r\nb" } }), /header "x"/],
      [
        "a method that is not a string",
        () => resilience.fetch("https://a.example/", { method: 5 as never }),
        /init\.method/,
      ],
      ["a method with a space", () => resilience.fetch("https://a.example/", { method: "GE T" }), /init\.method/],
    ];
    for (const [what, call, message] of bad) {
      const error = await call().catch((e: unknown) => e);
      expect([what, error instanceof TypeError, String(error)]).toEqual([what, true, expect.stringMatching(message)]);
      expect(String(error)).not.toMatch(/secret/);
    }
    expect([sent.length, clock.pending()]).toEqual([0, 0]);
    const res = await resilience.fetch("https://a.example/");
    expect(res.status).toBe(200);
    expect(resilience.health().breakers["a.example"]?.state).toBe("closed");
  });

  it("a throwing breaker.key leaves no timer either", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      fetch: async () => new Response("ok"),
      clock,
      timeout: { total: 8000 },
      breaker: {
        key: () => {
          throw new Error("no key");
        },
      },
    });
    await expect(resilience.fetch("https://a.example/")).rejects.toThrow("no key");
    expect(clock.pending()).toBe(0);
  });
});

describe("secrets in URLs", () => {
  it("never shows a query in errors, events or debugInfo", async () => {
    const { fetch } = recordingFetch(() => Promise.reject(reset()));
    const clock = new TestClock(0);
    const resilience = createResilience({ fetch, clock, retry: { maxAttempts: 2, jitter: "none" } });
    const seen: unknown[] = [];
    resilience.on("retry", (e) => seen.push(e));
    resilience.on("request", (e) => seen.push(e));
    const error = await clock.run(resilience.fetch("https://a.example/x?key=k1")).catch((e: unknown) => e);
    const shown = JSON.stringify([String(error), seen, resilience.debugInfo()]);
    expect(shown).toContain("https://a.example/x");
    expect(shown).not.toMatch(/pass|k1/);
  });
});

describe("Retry-After", () => {
  it("an absurd one holds the host for at most a day, and the next call gets a CircuitOpenError", async () => {
    const { fetch } = recordingFetch(
      () => new Response(null, { status: 503, headers: { "retry-after": "10000000000000" } }),
    );
    const clock = new TestClock(0);
    const resilience = createResilience({ fetch, clock });
    expect((await resilience.fetch("https://a.example/")).status).toBe(503);
    const error = await resilience.fetch("https://a.example/").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect((error as CircuitOpenError).retryAt).toBe(24 * 60 * 60 * 1000);
  });

  it("only delta-seconds and the RFC 9110 dates count; anything else falls back to the computed delay", async () => {
    for (const header of ["Mon 2", "x 100000", "2001-01-01", "1.5", "Sun, 06 Nov 1994 08:49:37"]) {
      const { fetch } = recordingFetch((_, n) =>
        n === 1 ? new Response(null, { status: 503, headers: { "retry-after": header } }) : new Response("ok"),
      );
      const clock = new TestClock(0);
      const resilience = createResilience({ fetch, clock, retry: { jitter: "none", initialDelay: 100 } });
      const events: RetryEvent[] = [];
      resilience.on("retry", (e) => events.push(e));
      await clock.run(resilience.fetch("https://a.example/"));
      expect([header, events[0]?.delay, events[0]?.retryAfter]).toEqual([header, 100, false]);
    }
    const { fetch } = recordingFetch((_, n) =>
      n === 1
        ? new Response(null, { status: 503, headers: { "retry-after": "Thu, 01 Jan 1970 00:00:02 GMT" } })
        : new Response("ok"),
    );
    const clock = new TestClock(0);
    const resilience = createResilience({ fetch, clock });
    const events: RetryEvent[] = [];
    resilience.on("retry", (e) => events.push(e));
    await clock.run(resilience.fetch("https://a.example/"));
    expect([events[0]?.delay, events[0]?.retryAfter]).toEqual([2000, true]);
  });
});

describe("options that would do nothing", () => {
  it("a bulkhead without breakers is refused, naming the path", () => {
    expect(() => createResilience({ breaker: false, bulkhead: { maxConcurrent: 2 } })).toThrow(ConfigError);
    expect(() => createResilience({ breaker: false, bulkhead: { maxConcurrent: 2 } })).toThrow(/^bulkhead: /);
  });
});

describe("credentials on the other paths", () => {
  const secret = { authorization: "Bearer caller", "x-api-key": "caller-key", "content-type": "application/json" };

  it("a hedge to another origin carries only the allowlist", async () => {
    const { fetch, sent } = recordingFetch((s) =>
      s.url.includes("primary")
        ? new Promise<Response>((_, reject) =>
            s.init?.signal?.addEventListener("abort", () => reject(s.init?.signal?.reason)),
          )
        : new Response("spare"),
    );
    const clock = new TestClock(0);
    const resilience = createResilience({
      fetch,
      clock,
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 100 },
          endpoints: [
            { name: "primary", url: PRIMARY },
            { name: "spare", url: SPARE },
          ],
        },
      ]),
    });
    const call = resilience.fetch(`${PRIMARY}/img`, { headers: secret });
    await clock.waitForTimers(1);
    await clock.advance(100);
    expect(await (await call).text()).toBe("spare");
    const atSpare = sent.find((s) => s.url.includes("spare"))?.headers;
    expect([atSpare?.get("authorization"), atSpare?.get("x-api-key"), atSpare?.get("content-type")]).toEqual([
      null,
      null,
      "application/json",
    ]);
  });

  it("the ky client (a Request input) through a chain: body kept, credentials home", async () => {
    const { createClient } = await import("../../src/ky/index.ts");
    const { fetch, sent } = recordingFetch(
      (s) => new Response("{}", { status: s.url.includes("primary") ? 503 : 200 }),
    );
    const api = createClient({
      prefix: PRIMARY,
      resilience: {
        fetch,
        clock: new TestClock(0),
        retry: false,
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "primary", url: PRIMARY },
              { name: "spare", url: SPARE },
            ],
          },
        ]),
      },
    });
    await api.put("jobs", { json: { prompt: "p" }, headers: { "x-api-key": "caller-key" } }).json();
    expect(sent.map((s) => [s.url, s.method, s.body, s.headers.get("x-api-key")])).toEqual([
      [`${PRIMARY}/jobs`, "PUT", '{"prompt":"p"}', "caller-key"],
      [`${SPARE}/jobs`, "PUT", '{"prompt":"p"}', null],
    ]);
  });
});

describe("the transport", () => {
  it("is called unbound, as a browser's fetch requires (a method call throws Illegal invocation)", async () => {
    const strictFetch = function (this: unknown): Promise<Response> {
      if (this !== undefined) throw new TypeError("Illegal invocation");
      return Promise.resolve(new Response("ok"));
    };
    for (const timeout of [{}, { attempt: 1000 }]) {
      const resilience = createResilience({ fetch: strictFetch, timeout, redirects: "platform" });
      expect((await resilience.fetch("https://a.example/")).status).toBe(200);
    }
  });
});
