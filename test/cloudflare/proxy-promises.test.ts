import { describe, expect, it, vi } from "vitest";
import { type ProxyRoute, type ResilientProxyOptions, resilientProxy } from "../../src/cloudflare/index.ts";
import type { FallbackEndpointCommon } from "../../src/fallback/index.ts";
import type { StandardResult, StandardSchemaLike } from "../../src/index.ts";
import { TestClock } from "../../src/testing/clock.ts";

/**
 * Outside-in: promises of the README, docs/fallback.md, docs/retry.md and
 * docs/cloudflare.md checked through `resilientProxy` alone (the public
 * `…/cloudflare` entry), where they were checked through
 * `createResilience().fetch` before. The proxy's own contract for a call
 * that rejects: it rethrows when the incoming request's signal aborted (the
 * client went away), answers 504 on a timeout, 503 with Retry-After on an
 * open circuit, 502 otherwise. Upstreams are stubs given as the `fetch`
 * option; time is a TestClock, never real waiting.
 */

const PRIMARY = "https://primary.example/v1/video";
const SPARE = "https://spare.example/v2/video";
const ctx = { waitUntil: () => {} };
const encode = (text: string) => new TextEncoder().encode(text);
/** One real event-loop turn (no time passes on any clock of the layer). */
const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await turn();
}

/** A body that records whether anyone read it to its end or cancelled it. */
function trackedBody(text: string): { body: ReadableStream<Uint8Array>; released: () => boolean } {
  let released = false;
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        controller.enqueue(encode(text));
        controller.close();
        released = true;
      },
      cancel() {
        released = true;
      },
    },
    // Nothing is pulled until a reader asks: a pull means the body is being read.
    { highWaterMark: 0 },
  );
  return { body, released: () => released };
}

/** Rejects with the signal's reason once it aborts; never answers otherwise. */
function hangUntilAborted(signal: AbortSignal | null | undefined): Promise<Response> {
  return new Promise((_resolve, reject) => {
    if (signal?.aborted) reject(signal.reason);
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

interface Sent {
  url: string;
  headers: Headers;
  signal: AbortSignal | undefined;
}

/** A stub transport: records each request and answers with `answer`. */
function transport(answer: (sent: Sent, n: number) => Response | Promise<Response>) {
  const sent: Sent[] = [];
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const entry = { url: request.url, headers: request.headers, signal: init?.signal ?? undefined };
    sent.push(entry);
    return Promise.resolve().then(() => answer(entry, sent.length));
  };
  return { sent, fetch };
}

function chainRoute(
  primary: Partial<FallbackEndpointCommon> = {},
  spare: Partial<FallbackEndpointCommon> = {},
): ProxyRoute {
  return {
    path: "/v1/video",
    chain: {
      name: "video",
      endpoints: [
        { name: "primary", url: PRIMARY, ...primary },
        { name: "spare", url: SPARE, ...spare },
      ],
    },
  };
}

function proxyOf(route: ProxyRoute, resilience: NonNullable<ResilientProxyOptions<object>["resilience"]>) {
  const proxy = resilientProxy({ routes: [route], resilience });
  return (path: string, init?: RequestInit) => proxy.fetch(new Request(`https://proxy.example${path}`, init), {}, ctx);
}

/** The primary answers 503 with a tracked body; the spare hangs until its request is aborted. */
function busyThenHanging() {
  const busy = trackedBody("busy");
  const up = transport((s) =>
    s.url.startsWith(PRIMARY) ? new Response(busy.body, { status: 503 }) : hangUntilAborted(s.signal),
  );
  return { ...up, busy };
}

/** A Standard Schema whose validate returns a promise the test settles; `calls` counts validations. */
function slowSchema() {
  let settle: ((result: StandardResult) => void) | undefined;
  let calls = 0;
  const schema: StandardSchemaLike = {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: () => {
        calls++;
        return new Promise<StandardResult>((resolve) => {
          settle = resolve;
        });
      },
    },
  };
  return { schema, calls: () => calls, settle: (result: StandardResult) => settle?.(result) };
}

/** Observes a promise's settling without awaiting it. */
function watch<T>(promise: Promise<T>): { settled: () => boolean; result: Promise<T> } {
  let settled = false;
  const result = promise.finally(() => {
    settled = true;
  });
  result.catch(() => {});
  return { settled: () => settled, result };
}

describe("through the proxy: a chain call ended after an answer was turned down", () => {
  it("the client going away rejects the handler with its reason (not the turned-down 503), and releases the 503's body", async () => {
    const up = busyThenHanging();
    const call = proxyOf(chainRoute(), { retry: false, fetch: up.fetch });
    const client = new AbortController();
    const pending = watch(call("/v1/video/jobs", { signal: client.signal }));
    while (up.sent.length < 2) await turn();
    expect(up.sent.map((s) => s.url)).toEqual([`${PRIMARY}/jobs`, `${SPARE}/jobs`]);
    const reason = new Error("client gone");
    client.abort(reason);
    await expect(pending.result).rejects.toBe(reason);
    await turns(3);
    expect(up.busy.released()).toBe(true);
  });

  it("timeout.total passing answers 504 at the deadline (not the turned-down 503), and releases the 503's body", async () => {
    const up = busyThenHanging();
    const clock = new TestClock();
    const call = proxyOf(chainRoute(), { clock, retry: false, timeout: { total: 5_000 }, fetch: up.fetch });
    const res = await clock.run(call("/v1/video/jobs"));
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ error: "upstream timed out" });
    expect(clock.now()).toBe(5_000);
    expect(up.sent).toHaveLength(2);
    await turns(3);
    expect(up.busy.released()).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("without an abort or a timeout, the last answer is passed through: the spare's 503, status and body, named in x-resilience-endpoint", async () => {
    const up = transport((s) => new Response(`down at ${new URL(s.url).host}`, { status: 503 }));
    const call = proxyOf(chainRoute(), { retry: false, fetch: up.fetch });
    const res = await call("/v1/video/jobs");
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("down at spare.example");
    expect(res.headers.get("x-resilience-endpoint")).toBe("spare");
    expect(res.headers.get("retry-after")).toBeNull(); // the upstream's answer, not the proxy's circuit-open one
  });
});

describe("through the proxy: an asynchronous validate schema", () => {
  it("the client going away while the schema runs rejects the handler at once, and releases the answer", async () => {
    const slow = slowSchema();
    const answered: Response[] = [];
    const up = transport(() => {
      const response = Response.json({ job: "1" });
      answered.push(response);
      return response;
    });
    const call = proxyOf(chainRoute({ validate: slow.schema }), { retry: false, fetch: up.fetch });
    const client = new AbortController();
    const pending = watch(call("/v1/video/jobs", { signal: client.signal }));
    while (slow.calls() === 0) await turn();
    const reason = new Error("client gone mid-validate");
    client.abort(reason);
    await turns();
    // Settled while the schema still runs: the abort did not wait for it.
    expect(pending.settled()).toBe(true);
    await expect(pending.result).rejects.toBe(reason);
    // validate read a clone; the answer itself, never returned, is drained (its reader holds it).
    await turns(3);
    expect(answered[0]?.body?.locked).toBe(true);
    expect(up.sent).toHaveLength(1); // never sent to the spare
    slow.settle({ value: {} });
  });

  it("timeout.total passing while the schema runs answers 504 at the deadline, not when the schema settles", async () => {
    const slow = slowSchema();
    const up = transport(() => Response.json({ job: "1" }));
    const clock = new TestClock();
    const call = proxyOf(chainRoute({ validate: slow.schema }), {
      clock,
      retry: false,
      timeout: { total: 5_000 },
      fetch: up.fetch,
    });
    const pending = watch(call("/v1/video/jobs"));
    while (slow.calls() === 0) await turn();
    await clock.advance(5_000);
    await turns();
    expect(pending.settled()).toBe(true);
    const res = await pending.result;
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ error: "upstream timed out" });
    expect(up.sent).toHaveLength(1);
    expect(clock.pending()).toBe(0);
    slow.settle({ value: {} });
  });
});

describe("through the proxy: timeouts count their own time when the wall clock steps", () => {
  /** The layer's clock: the fake timers' time plus an offset the test steps, as an NTP step would. */
  function steppingClock() {
    const timers = new TestClock();
    let offset = 0;
    return {
      timers,
      clock: { now: () => timers.now() + offset, setTimer: timers.setTimer.bind(timers) },
      step: (ms: number) => {
        offset += ms;
      },
    };
  }

  // Attempts of 150 ms, 10 ms apart. With a total of 600 ms: attempts at 0,
  // 160, 320 and 480 ms, the last cut by the total at 600. With three
  // attempts and no total: from 0, 160 and 320 ms, each cut 150 ms after it started.
  const cases = [
    ["timeout.total and timeout.attempt", { attempt: 150, total: 600 }, 1_000, 4, 600],
    ["timeout.attempt alone", { attempt: 150 }, 3, 3, 470],
  ] as const;
  it.each(
    cases.flatMap(([name, timeout, maxAttempts, sent, endsAt]) =>
      [-10_000, 1_000].map((step) => ({ name, timeout, maxAttempts, sent, endsAt, step })),
    ),
  )(
    "wall clock stepped by $step ms, $name: each keeps its own time, the proxy answers 504 at $endsAt ms",
    async ({ timeout, maxAttempts, sent, endsAt, step }) => {
      const { timers, clock, step: stepBy } = steppingClock();
      const up = transport((s) => hangUntilAborted(s.signal));
      const call = proxyOf(
        { path: "/v1/text", upstream: "https://text.example/v1" },
        {
          clock,
          breaker: false,
          budget: false,
          timeout,
          retry: { maxAttempts, initialDelay: 10, exponentialBase: 1, jitter: "none" },
          fetch: up.fetch,
        },
      );
      const pending = call("/v1/text/complete");
      await timers.advance(50);
      stepBy(step);
      const res = await timers.run(pending);
      expect(res.status).toBe(504);
      expect(await res.json()).toEqual({ error: "upstream timed out" });
      expect(up.sent).toHaveLength(sent);
      expect(timers.now()).toBe(endsAt);
      expect(timers.pending()).toBe(0);
    },
  );
});

describe("through the proxy: what docs/cloudflare.md and docs/fallback.md promise", () => {
  it("strips every hop header, host and transfer-encoding included, and keeps the end-to-end ones", async () => {
    const up = transport(() => new Response("ok"));
    const call = proxyOf({ path: "/v1/text", upstream: "https://text.example/v1" }, { retry: false, fetch: up.fetch });
    const hop = [
      "host",
      "connection",
      "keep-alive",
      "transfer-encoding",
      "upgrade",
      "proxy-connection",
      "te",
      "trailer",
    ];
    const headers = new Headers({ accept: "application/json", "x-request-id": "r1" });
    for (const name of hop) headers.set(name, name === "host" ? "proxy.example" : "x");
    expect((await call("/v1/text/a", { headers })).status).toBe(200);
    const [sent] = up.sent as [Sent];
    for (const name of hop) expect(sent.headers.has(name)).toBe(false);
    expect(sent.headers.get("accept")).toBe("application/json");
    expect(sent.headers.get("x-request-id")).toBe("r1");
  });

  it("the client's Authorization reaches the primary's origin only; the spare gets its own, never the client's", async () => {
    const up = transport((s) =>
      s.url.startsWith(PRIMARY) ? new Response("down", { status: 503 }) : new Response("ok"),
    );
    const noOwn = proxyOf(chainRoute(), { retry: false, fetch: up.fetch });
    const headers = { authorization: "Bearer client", cookie: "s=1", "x-api-key": "k", "content-type": "text/plain" };
    expect((await noOwn("/v1/video/jobs", { headers })).status).toBe(200);
    const [toPrimary, toSpare] = up.sent as [Sent, Sent];
    expect(toPrimary.headers.get("authorization")).toBe("Bearer client");
    expect(toSpare.url).toBe(`${SPARE}/jobs`);
    for (const name of ["authorization", "cookie", "x-api-key"]) expect(toSpare.headers.has(name)).toBe(false);
    expect(toSpare.headers.get("content-type")).toBe("text/plain");

    const own = proxyOf(chainRoute({}, { headers: { authorization: "Bearer spare-key" } }), {
      retry: false,
      fetch: up.fetch,
    });
    expect((await own("/v1/video/jobs", { headers })).status).toBe(200);
    expect(up.sent[3]?.headers.get("authorization")).toBe("Bearer spare-key");
  });

  it("passes the upstream's own status, headers and body through, streamed, with the x-resilience headers", async () => {
    const up = transport(() => new Response("not here", { status: 404, headers: { "x-upstream": "1" } }));
    const call = proxyOf(chainRoute(), { retry: false, fetch: up.fetch });
    const res = await call("/v1/video/jobs/9");
    expect(res.status).toBe(404); // a 404 is the caller's answer: the chain ends there
    expect(await res.text()).toBe("not here");
    expect(res.headers.get("x-upstream")).toBe("1");
    expect(res.headers.get("x-resilience-endpoint")).toBe("primary");
    expect(res.headers.get("x-resilience-attempts")).toBe("1");
    expect(res.headers.get("x-degradation-level")).toBe("full");
    expect(up.sent).toHaveLength(1);
  });

  it("follows an upstream's redirect itself whatever the incoming request's redirect mode, the credentials left at the first origin", async () => {
    const up = transport((s) =>
      s.url.startsWith("https://text.example/")
        ? new Response(null, { status: 307, headers: { location: "https://cdn.example/out/a" } })
        : new Response("moved here", { headers: { "x-from": "cdn" } }),
    );
    const call = proxyOf({ path: "/v1/text", upstream: "https://text.example/v1" }, { retry: false, fetch: up.fetch });
    // A Worker's incoming requests say `manual`: the proxy still hands its client where the redirect leads.
    const res = await call("/v1/text/a", { redirect: "manual", headers: { authorization: "Bearer client" } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("moved here");
    expect(res.headers.get("x-from")).toBe("cdn");
    expect(up.sent.map((s) => s.url)).toEqual(["https://text.example/v1/a", "https://cdn.example/out/a"]);
    expect(up.sent[0]?.headers.get("authorization")).toBe("Bearer client");
    expect(up.sent[1]?.headers.has("authorization")).toBe(false);
  });

  it("counts retries in x-resilience-attempts", async () => {
    const up = transport((_, n) => (n < 3 ? new Response("busy", { status: 503 }) : new Response("ok")));
    const clock = new TestClock();
    const call = proxyOf(
      { path: "/v1/text", upstream: "https://text.example/v1" },
      { clock, retry: { maxAttempts: 3, initialDelay: 100, jitter: "none" }, fetch: up.fetch },
    );
    const res = await clock.run(call("/v1/text/a"));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-resilience-attempts")).toBe("3");
  });

  it("answers 502 when no endpoint of a chain answered", async () => {
    const up = transport(() => Promise.reject(new TypeError("fetch failed")));
    const call = proxyOf(chainRoute(), { retry: false, fetch: up.fetch });
    const res = await call("/v1/video/jobs");
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ error: "upstream unavailable" });
    expect(up.sent).toHaveLength(2);
  });

  it("a hedge through the proxy: the spare's answer is served and the hanging primary is aborted", async () => {
    const up = transport((s) => (s.url.startsWith(PRIMARY) ? hangUntilAborted(s.signal) : new Response("spare")));
    const clock = new TestClock();
    const route = chainRoute();
    if ("chain" in route) route.chain.hedge = { delay: 1_000 };
    // The total bounds the test: without the hedge the call would end in a 504 at 10 s.
    const call = proxyOf(route, { clock, retry: false, timeout: { total: 10_000 }, fetch: up.fetch });
    const res = await clock.run(call("/v1/video/jobs"));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("spare");
    expect(res.headers.get("x-resilience-endpoint")).toBe("spare");
    expect(clock.now()).toBe(1_000);
    expect(up.sent[0]?.signal?.aborted).toBe(true);
  });
});

describe("through the proxy: the status mapping on a chain route", () => {
  // A chain route answers as one upstream would when all its endpoints
  // failed alike (docs/cloudflare.md): every circuit open is a 503 with
  // Retry-After, every endpoint timed out (or open) a 504, anything else 502.
  it("answers 503 with Retry-After when every endpoint's circuit is open", async () => {
    const up = transport(() => new Response("down", { status: 503 }));
    const call = proxyOf(chainRoute(), {
      retry: false,
      breaker: { failureThreshold: 1, timeout: 30_000 },
      fetch: up.fetch,
    });
    expect((await call("/v1/video/jobs")).status).toBe(503); // the spare's own 503; both breakers trip
    const refused = await call("/v1/video/jobs");
    expect(up.sent).toHaveLength(2); // nothing sent: both endpoints were skipped
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({ error: "upstream circuit open" });
    const seconds = Number(refused.headers.get("retry-after"));
    expect(seconds).toBeGreaterThanOrEqual(29);
    expect(seconds).toBeLessThanOrEqual(30);
  });

  it("answers 504 when every endpoint of a chain timed out", async () => {
    const up = transport((s) => hangUntilAborted(s.signal));
    const clock = new TestClock();
    const call = proxyOf(chainRoute(), { clock, retry: false, timeout: { attempt: 150 }, fetch: up.fetch });
    const res = await clock.run(call("/v1/video/jobs"));
    expect(up.sent.map((s) => s.url)).toEqual([`${PRIMARY}/jobs`, `${SPARE}/jobs`]);
    expect(clock.now()).toBe(300);
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ error: "upstream timed out" });
  });

  it("reads Retry-After on the layer's clock, from the endpoint that reopens first", async () => {
    const clock = new TestClock(5_000_000);
    // Sends: 1 primary 503, 2 spare 200, 3 spare 503.
    const up = transport((_, n) => new Response(n === 2 ? "spare" : "down", { status: n === 2 ? 200 : 503 }));
    const proxy = resilientProxy({
      routes: [chainRoute()],
      resilience: { clock, retry: false, breaker: { failureThreshold: 1, timeout: 30_000 }, fetch: up.fetch },
    });
    const call = () => proxy.fetch(new Request("https://proxy.example/v1/video/jobs"), {}, ctx);
    await clock.run(call()); // the primary trips at 5,000,000: it reopens at 5,030,000
    await clock.advance(10_000);
    await clock.run(call()); // the spare trips at 5,010,000: it reopens at 5,040,000
    await clock.advance(2_400);
    const refused = await clock.run(call());
    expect(up.sent).toHaveLength(3);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("18"); // the primary, in 17.6 s, rounded up
  });

  it("answers a failure without resilience options too (the system clock, the default policies)", async () => {
    // The transport is the global fetch, looked up per call; an error that is no network failure is not retried.
    vi.stubGlobal("fetch", () => Promise.reject(new RangeError("refused by the runtime")));
    try {
      const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: "https://text.example/v1" }] });
      const res = await proxy.fetch(new Request("https://proxy.example/v1/x"), {}, ctx);
      expect(res.status).toBe(502);
      expect(await res.json()).toEqual({ error: "upstream unavailable" });
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("answers 504 when the endpoints it tried timed out and the others' circuits are open", async () => {
    const clock = new TestClock();
    // Sends: 1 primary 503, 2 spare 200, 3 spare 503, 4 primary hangs.
    const up = transport((s, n) =>
      n === 4 ? hangUntilAborted(s.signal) : new Response(n === 2 ? "spare" : "down", { status: n === 2 ? 200 : 503 }),
    );
    const call = proxyOf(chainRoute(), {
      clock,
      retry: false,
      timeout: { attempt: 150 },
      breaker: { failureThreshold: 1, timeout: 60_000 },
      fetch: up.fetch,
    });
    expect((await clock.run(call("/v1/video/jobs"))).status).toBe(200); // the primary opens until 60 s
    await clock.advance(59_000);
    expect((await clock.run(call("/v1/video/jobs"))).status).toBe(503); // the spare's 503: it opens until 119 s
    await clock.advance(1_000);
    const res = await clock.run(call("/v1/video/jobs")); // the primary's probe times out; the spare is skipped
    expect(up.sent.map((s) => s.url)).toEqual([`${PRIMARY}/jobs`, `${SPARE}/jobs`, `${SPARE}/jobs`, `${PRIMARY}/jobs`]);
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ error: "upstream timed out" });
  });

  it("answers 502 when one endpoint's circuit is open and another could not be reached", async () => {
    const clock = new TestClock();
    const up = transport((s, n) =>
      s.url.startsWith(PRIMARY)
        ? new Response("down", { status: 503 })
        : n === 2
          ? new Response("spare")
          : Promise.reject(new TypeError("fetch failed")),
    );
    const call = proxyOf(chainRoute(), {
      clock,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 60_000 },
      fetch: up.fetch,
    });
    expect((await clock.run(call("/v1/video/jobs"))).status).toBe(200); // the primary trips, the spare serves
    const res = await clock.run(call("/v1/video/jobs")); // the primary is skipped, the spare is unreachable
    expect(up.sent).toHaveLength(3);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ error: "upstream unavailable" });
  });
});
