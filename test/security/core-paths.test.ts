/**
 * Outside-in checks of the root entry's own promises (README, SECURITY.md,
 * docs/retry.md, docs/breakers.md, docs/health-and-events.md,
 * docs/options.md) on the paths of one host: request bodies and their
 * replay, per-host breaker keys, the bulkhead, timeouts against headers and
 * bodies, retry decisions (Retry-After, methods, the budget) and events.
 * Public API only, against real `node:http` servers on 127.0.0.1 (or a stub
 * transport where the host name itself is under test). Time moves only on a
 * `TestClock`; nothing sleeps for real.
 */
import { once } from "node:events";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  BulkheadRejectedError,
  CircuitOpenError,
  createResilience,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isFallbackExhaustedError,
  isResilienceError,
  isRetryExhaustedError,
  isTimeoutError,
  type ReplayEvent,
  type RequestEvent,
  type ResilienceOptions,
  type RetryEvent,
  type RetryExhaustedError,
  type TimeoutError,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Handler, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const P = httpUpstream();
const Q = httpUpstream(); // another port on the same address: another host key
let REFUSED = "";

serveDuringFile(P, Q);
beforeAll(async () => {
  REFUSED = await refusedOrigin();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const status =
  (code: number, headers: Record<string, string> = {}): Handler =>
  (hit) => {
    hit.res.writeHead(code, headers);
    hit.res.end(`${code} #${hit.n}`);
  };
/** Answers the nth request with the nth handler (the last one from then on). */
const seq =
  (...handlers: Handler[]): Handler =>
  (hit) =>
    (handlers[hit.n - 1] ?? (handlers[handlers.length - 1] as Handler))(hit);
const ok = status(200);
const reset: Handler = (hit) => hit.req.socket.destroy();
const hang: Handler = () => {};

/** A layer on the real network: no jitter, 100 ms backoff, its own TestClock. */
function layer(options: ResilienceOptions = {}, start = 0) {
  const clock = new TestClock(start);
  const resilience = createResilience({
    clock,
    redirects: "library",
    ...options,
    retry: options.retry === false ? false : { jitter: "none", initialDelay: 100, ...options.retry },
  });
  const events: Array<[string, unknown]> = [];
  for (const name of ["retry", "request", "breaker", "replay", "redirect"] as const) {
    resilience.on(name, (e: unknown) => events.push([name, e]));
  }
  const of = <T>(name: string): T[] => events.filter(([n]) => n === name).map(([, e]) => e as T);
  return { clock, resilience, events, of };
}

/** A stream of the given text chunks, recording whether it was cancelled. */
function streamOf(parts: string[], { endless = false } = {}) {
  const encoder = new TextEncoder();
  let i = 0;
  const state = { cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < parts.length) controller.enqueue(encoder.encode(parts[i++]));
      else if (!endless) controller.close();
      else return new Promise<void>(() => {}); // never another chunk
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: unknown) => error,
  );

/** A stub transport answering every call with `answer` and recording each URL it was asked for. */
function stub(answer: () => Response | Promise<Response> = () => new Response("down", { status: 503 })) {
  const urls: string[] = [];
  const fetch = (input: RequestInfo | URL, _init?: RequestInit): Promise<Response> => {
    urls.push(input instanceof Request ? input.url : String(input));
    return Promise.resolve(answer());
  };
  return { urls, fetch };
}

/**
 * A stub transport whose calls stay pending until the test settles them. An
 * abort rejects at once, unless `honourAbort` is false: then the call only
 * notes it and waits for `fail` (a transport slow to give up).
 */
function gate({ honourAbort = true } = {}) {
  const calls: Array<{
    url: string;
    answer: (status?: number) => void;
    fail: (error: unknown) => void;
    aborted: boolean;
  }> = [];
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
    new Promise<Response>((resolve, reject) => {
      const call = {
        url: input instanceof Request ? input.url : String(input),
        answer: (code = 200) => resolve(new Response(`${code}`, { status: code })),
        fail: reject,
        aborted: false,
      };
      calls.push(call);
      const signal = init?.signal;
      signal?.addEventListener("abort", () => {
        call.aborted = true;
        if (honourAbort) reject(signal.reason);
      });
    });
  return { calls, fetch };
}

/** Lets pending promise callbacks and a few I/O turns run (no clock time passes). */
async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

// ---------------------------------------------------------------------------

describe("request bodies and replay (docs/retry.md: Bodies)", () => {
  it("re-sends string, bytes, Blob and URLSearchParams bodies whole, byte for byte, on a retry", async () => {
    const cases: Array<[string, () => BodyInit, string]> = [
      ["string", () => "héllo wörld €", "héllo wörld €"],
      ["Uint8Array", () => new TextEncoder().encode("bytes-123"), "bytes-123"],
      ["ArrayBuffer", () => new TextEncoder().encode("buffer-9").buffer as ArrayBuffer, "buffer-9"],
      ["Blob", () => new Blob(["blob-", "456"]), "blob-456"],
      ["URLSearchParams", () => new URLSearchParams({ a: "1", b: "two words" }), "a=1&b=two+words"],
    ];
    for (const [name, body, expected] of cases) {
      P.reset();
      P.on(seq(status(503), ok));
      const { clock, resilience } = layer();
      const res = await clock.run(resilience.fetch(`${P.base}/b`, { method: "PUT", body: body() }));
      expect([name, res.status]).toEqual([name, 200]);
      expect([name, ...P.hits.map((h) => h.body)]).toEqual([name, expected, expected]);
    }
  });

  it("re-sends a FormData body with its fields and file on a retry", async () => {
    P.on(seq(status(503), ok));
    const { clock, resilience } = layer();
    const form = new FormData();
    form.append("prompt", "a cat");
    form.append("image", new Blob(["PNGDATA"]), "cat.png");
    const res = await clock.run(resilience.fetch(`${P.base}/f`, { method: "PUT", body: form }));
    expect(res.status).toBe(200);
    expect(P.hits).toHaveLength(2);
    for (const hit of P.hits) {
      expect(hit.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
      expect(hit.body).toContain('name="prompt"\r\n\r\na cat');
      expect(hit.body).toContain("PNGDATA");
    }
  });

  it("sends a ReadableStream body (duplex: half) once, whole, and settles with the 503 instead of retrying", async () => {
    P.on(status(503));
    const { clock, resilience, of } = layer();
    const { stream } = streamOf(["one-", "two-", "three"]);
    const res = await clock.run(
      resilience.fetch(`${P.base}/s`, { method: "PUT", body: stream, duplex: "half" } as RequestInit),
    );
    expect(res.status).toBe(503);
    expect(P.hits.map((h) => h.body)).toEqual(["one-two-three"]);
    expect(of("retry")).toEqual([]);
  });

  it("adds duplex: half to a stream body the caller sent without it (URL input)", async () => {
    P.on(ok);
    const { clock, resilience } = layer();
    const { stream } = streamOf(["no-", "duplex"]);
    const res = await clock.run(resilience.fetch(`${P.base}/s`, { method: "POST", body: stream }));
    expect(res.status).toBe(200);
    expect(P.hits.map((h) => h.body)).toEqual(["no-duplex"]);
  });

  // Was a defect, fixed: the Request path passed [input, init] on as given, and the platform refused the stream.
  it("adds duplex: half to a stream init.body a Request input was given without it (docs/retry.md)", async () => {
    P.on(ok);
    const { clock, resilience } = layer();
    const { stream } = streamOf(["req-", "stream"]);
    const request = new Request(`${P.base}/rs`, { method: "PUT" });
    const res = await clock.run(resilience.fetch(request, { body: stream }));
    expect(res.status).toBe(200);
    expect(P.hits.map((h) => h.body)).toEqual(["req-stream"]);
  });

  it("reads a Request input's body once and replays the same bytes on a retry", async () => {
    P.on(seq(status(503), ok));
    const { clock, resilience } = layer();
    const request = new Request(`${P.base}/r`, { method: "PUT", body: "request-body" });
    const res = await clock.run(resilience.fetch(request));
    expect(res.status).toBe(200);
    expect(P.hits.map((h) => [h.method, h.body])).toEqual([
      ["PUT", "request-body"],
      ["PUT", "request-body"],
    ]);
  });

  it("replays a Request input whose body is a stream under maxReplayBytes", async () => {
    P.on(seq(status(503), ok));
    const { clock, resilience } = layer();
    const { stream } = streamOf(["ab", "cd", "ef"]);
    const request = new Request(`${P.base}/r`, { method: "PUT", body: stream, duplex: "half" } as RequestInit);
    const res = await clock.run(resilience.fetch(request));
    expect(res.status).toBe(200);
    expect(P.hits.map((h) => h.body)).toEqual(["abcdef", "abcdef"]);
  });

  it("sends a Request stream past maxReplayBytes once, untruncated (read part + rest), with a replay event", async () => {
    P.on(status(503));
    const { clock, resilience, of } = layer({ maxReplayBytes: 4 });
    const { stream } = streamOf(["aaa", "bbb", "ccc"]);
    const request = new Request(`${P.base}/r?key=sk-x`, {
      method: "PUT",
      body: stream,
      duplex: "half",
    } as RequestInit);
    const res = await clock.run(resilience.fetch(request));
    expect(res.status).toBe(503);
    expect(P.hits.map((h) => h.body)).toEqual(["aaabbbccc"]);
    expect(of<ReplayEvent>("replay")).toEqual([{ url: `${P.base}/r`, bytes: 6, limit: 4 }]);
  });

  it("sends a string and a Blob over maxReplayBytes once, whole, each with a replay event", async () => {
    for (const body of ["x".repeat(101), new Blob(["y".repeat(150)])]) {
      P.reset();
      P.on(seq(status(503), ok));
      const { clock, resilience, of } = layer({ maxReplayBytes: 100 });
      const res = await clock.run(resilience.fetch(`${P.base}/big`, { method: "PUT", body }));
      expect(res.status).toBe(503);
      expect(P.hits).toHaveLength(1);
      expect(P.hits[0]?.bytes.byteLength).toBe(typeof body === "string" ? 101 : 150);
      expect(of<ReplayEvent>("replay")).toEqual([
        { url: `${P.base}/big`, bytes: typeof body === "string" ? 101 : 150, limit: 100 },
      ]);
    }
  });

  // Was a defect, fixed: a FormData's size was never told, so it always counted as replayable.
  it("sends a FormData larger than maxReplayBytes once, with a replay event (docs/retry.md)", async () => {
    P.on(seq(status(503), ok));
    const { clock, resilience, of } = layer({ maxReplayBytes: 100 });
    const form = new FormData();
    form.append("file", new Blob(["z".repeat(1_000)]), "big.bin");
    await clock.run(resilience.fetch(`${P.base}/form`, { method: "PUT", body: form }));
    expect(P.hits).toHaveLength(1);
    expect(of<ReplayEvent>("replay")).toHaveLength(1);
  });

  // Was a defect, fixed: the Request path never measured an init.body.
  it("sends a large init.body given with a Request input once, with a replay event (docs/retry.md)", async () => {
    P.on(seq(status(503), ok));
    const { clock, resilience, of } = layer({ maxReplayBytes: 100 });
    const request = new Request(`${P.base}/req`, { method: "PUT" });
    await clock.run(resilience.fetch(request, { body: "w".repeat(1_000) }));
    expect(P.hits).toHaveLength(1);
    expect(of<ReplayEvent>("replay")).toHaveLength(1);
  });

  it("treats maxReplayBytes: 0 as 'keep nothing': a one-byte body goes once, with a replay event", async () => {
    P.on(seq(status(503), ok));
    const { clock, resilience, of } = layer({ maxReplayBytes: 0 });
    const res = await clock.run(resilience.fetch(`${P.base}/z`, { method: "PUT", body: "a" }));
    expect(res.status).toBe(503);
    expect(P.hits.map((h) => h.body)).toEqual(["a"]);
    expect(of<ReplayEvent>("replay")).toEqual([{ url: `${P.base}/z`, bytes: 1, limit: 0 }]);
  });

  // Was a defect, fixed: it rejected with RetryExhaustedError after 0 attempts ("ReadableStream is locked").
  it("refuses a Request whose body was already read at once with a TypeError, as fetch does", async () => {
    const { clock, resilience } = layer();
    const request = new Request(`${P.base}/used`, { method: "PUT", body: "once" });
    await request.text();
    const error = await rejection(clock.run(resilience.fetch(request)));
    expect(P.hits).toHaveLength(0);
    expect(isResilienceError(error)).toBe(false);
    expect(error).toBeInstanceOf(TypeError);
  });

  it("never re-sends a POST without a key after a 500 or a reset, but does after 429 and 503 (with its body)", async () => {
    const cases: Array<[string, Handler, number]> = [
      ["500", seq(status(500), ok), 1],
      ["reset", seq(reset, ok), 1],
      ["429", seq(status(429), ok), 2],
      ["503", seq(status(503), ok), 2],
    ];
    for (const [name, handler, sends] of cases) {
      P.reset();
      P.on(handler);
      const { clock, resilience } = layer();
      await clock.run(resilience.fetch(`${P.base}/pay`, { method: "POST", body: "paid" })).catch(() => undefined);
      expect([name, P.hits.map((h) => h.body)]).toEqual([name, Array(sends).fill("paid")]);
    }
  });

  it("re-sends a POST whose connection was refused (it never reached the server)", async () => {
    const { clock, resilience, of } = layer();
    const error = await rejection(clock.run(resilience.fetch(`${REFUSED}/x`, { method: "POST", body: "b" })));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as RetryExhaustedError).attempts).toBe(3);
    expect(of<RetryEvent>("retry").map((e) => e.reason)).toEqual(["connection refused", "connection refused"]);
  });

  it("ends a call whose Request body trickles past timeout.total with a total TimeoutError, sends nothing, and cancels the body", async () => {
    const { clock, resilience } = layer({ timeout: { total: 1_000 } });
    const { stream, state } = streamOf(["first"], { endless: true });
    const request = new Request(`${P.base}/slow-upload`, {
      method: "PUT",
      body: stream,
      duplex: "half",
    } as RequestInit);
    const error = await rejection(clock.run(resilience.fetch(request)));
    expect(isTimeoutError(error)).toBe(true);
    expect((error as TimeoutError).phase).toBe("total");
    expect(P.hits).toHaveLength(0);
    expect(clock.pending()).toBe(0);
    await settle();
    expect(state.cancelled).toBe(true);
  });
});

// ---------------------------------------------------------------------------

describe("per-host breakers and their keys (docs/breakers.md)", () => {
  const opts = (fetch: NonNullable<ResilienceOptions["fetch"]>, extra: ResilienceOptions = {}): ResilienceOptions => ({
    retry: false,
    breaker: { failureThreshold: 2 },
    fetch,
    ...extra,
  });

  it("gives one breaker to one host written in other case, with its default port, or a trailing path/query", async () => {
    const t = stub();
    const { clock, resilience } = layer(opts(t.fetch));
    await clock.run(resilience.fetch("HTTP://API.Example.COM/a?x=1"));
    await clock.run(resilience.fetch("http://api.example.com:80/b"));
    const error = await rejection(clock.run(resilience.fetch("http://api.example.com/c")));
    expect(isCircuitOpenError(error)).toBe(true);
    expect((error as CircuitOpenError).key).toBe("api.example.com");
    expect(Object.keys(resilience.health().breakers)).toEqual(["api.example.com"]);
    expect(t.urls).toHaveLength(2);
  });

  it("gives one breaker to an IPv6 literal written two ways", async () => {
    const t = stub();
    const { clock, resilience } = layer(opts(t.fetch));
    await clock.run(resilience.fetch("http://[0:0:0:0:0:0:0:1]:8080/a"));
    await clock.run(resilience.fetch("http://[::1]:8080/b"));
    const error = await rejection(clock.run(resilience.fetch("http://[::0001]:8080/c")));
    expect((error as CircuitOpenError).key).toBe("[::1]:8080");
    expect(Object.keys(resilience.health().breakers)).toEqual(["[::1]:8080"]);
  });

  it("gives one breaker to an IDN host in Unicode, upper case and Punycode", async () => {
    const t = stub();
    const { clock, resilience } = layer(opts(t.fetch));
    await clock.run(resilience.fetch("http://bücher.example/a"));
    await clock.run(resilience.fetch("http://XN--BCHER-KVA.example/b"));
    const error = await rejection(clock.run(resilience.fetch("http://BÜCHER.example/c")));
    expect((error as CircuitOpenError).key).toBe("xn--bcher-kva.example");
    expect(Object.keys(resilience.health().breakers)).toEqual(["xn--bcher-kva.example"]);
  });

  it("keys a trailing-dot host as url.host does, case-insensitively, apart from the name without the dot", async () => {
    const t = stub();
    const { clock, resilience } = layer(opts(t.fetch));
    await clock.run(resilience.fetch("http://Gen.Example./a"));
    await clock.run(resilience.fetch("http://gen.example./b"));
    expect(resilience.health().breakers["gen.example."]?.state).toBe("open");
    const res = await clock.run(resilience.fetch("http://gen.example/c"));
    expect(res.status).toBe(503);
    expect(resilience.health().breakers["gen.example"]?.state).toBe("closed");
  });

  it("never lets one port's failures open another port's breaker on the same address", async () => {
    P.on(status(503));
    Q.on(ok);
    const { clock, resilience } = layer({ retry: false, breaker: { failureThreshold: 2 } });
    await clock.run(resilience.fetch(`${P.base}/a`));
    await clock.run(resilience.fetch(`${P.base}/a`));
    const res = await clock.run(resilience.fetch(`${Q.base}/a`));
    expect(res.status).toBe(200);
    const { breakers, status: overall } = resilience.health();
    expect(breakers[`127.0.0.1:${P.port}`]?.state).toBe("open");
    expect(breakers[`127.0.0.1:${Q.port}`]).toMatchObject({ state: "closed", consecutiveFailures: 0 });
    expect(overall).toBe("unhealthy");
    await expect(clock.run(resilience.fetch(`${P.base}/a`))).rejects.toBeInstanceOf(CircuitOpenError);
    expect(P.hits).toHaveLength(2);
  });

  it("refuses user:pass@ (and user@) URLs at once with a TypeError: nothing sent, no breaker, no credentials in the message", async () => {
    const t = stub();
    const { clock, resilience } = layer(opts(t.fetch));
    for (const url of [
      "http://user:pw-secret@api.example/x",
      "HTTP://u:pw-secret@API.example:8080/x",
      "http://pw-secret@api.example/x",
      "http://u:pw-secret@[::1]/x",
      new URL("http://u:pw-secret@api.example/x"),
    ]) {
      const error = await rejection(clock.run(resilience.fetch(url)));
      expect(error).toBeInstanceOf(TypeError);
      expect(String((error as Error).message)).not.toContain("pw-secret");
    }
    expect(t.urls).toEqual([]);
    expect(resilience.health().breakers).toEqual({});
  });

  it("refuses an invalid Punycode host written in lower case at once (TypeError, nothing counted)", async () => {
    const { clock, resilience } = layer({ breaker: { failureThreshold: 2 } });
    const error = await rejection(clock.run(resilience.fetch("http://xn--a.example/?api_key=sk-lower")));
    expect(error).toBeInstanceOf(TypeError);
    expect(isResilienceError(error)).toBe(false);
    expect(resilience.health().breakers).toEqual({});
  });

  // Was a defect, fixed: the quick host path looked for "xn--" in lower case only, so XN--A.example skipped the parser.
  it("refuses an invalid Punycode host written in upper case (XN--A.example) at once too: TypeError, never retried nor counted", async () => {
    const { clock, resilience } = layer({ breaker: { failureThreshold: 2 } });
    const error = await rejection(clock.run(resilience.fetch("http://XN--A.example/v1")));
    expect(isResilienceError(error)).toBe(false);
    expect(error).toBeInstanceOf(TypeError);
    expect(resilience.health().breakers).toEqual({});
  });

  // Was a defect, fixed with the one above (the platform's parse error quoted the URL, query and all).
  it("no URL query reaches errors: the rejection for an upper-case invalid Punycode host has no ?api_key=… (SECURITY.md)", async () => {
    const { clock, resilience } = layer({ retry: false });
    const error = await rejection(clock.run(resilience.fetch("http://XN--A.example/v1?api_key=sk-leak")));
    expect(String((error as Error).message)).not.toContain("sk-leak");
  });

  it("no URL query reaches our errors when the platform's message names the URL, query and all (as Deno's does)", async () => {
    const denoLike = () =>
      Promise.reject(
        new TypeError(
          "error sending request for url (http://api.example/v1?api_key=sk-deno#frag): client error (Connect)",
        ),
      );
    const { clock, resilience } = layer({ fetch: denoLike, retry: { maxAttempts: 2 } });
    const error = await rejection(clock.run(resilience.fetch("http://api.example/v1?api_key=sk-deno")));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as Error).message).toBe(
      "gave up after 2 attempts to api.example: error sending request for url (http://api.example/v1): client error (Connect)",
    );
  });

  it("nor when every endpoint of a chain failed that way: FallbackExhaustedError's message has no query", async () => {
    const denoLike = (input: RequestInfo | URL) =>
      Promise.reject(new TypeError(`error sending request for url (${String(input)}?api_key=sk-deno): client error`));
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      fetch: denoLike as typeof fetch,
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "http://a.example" },
            { name: "b", url: "http://b.example" },
          ],
        },
      ]),
    });
    const error = await rejection(clock.run(resilience.fetch("http://a.example/v1")));
    expect(isFallbackExhaustedError(error)).toBe(true);
    expect((error as Error).message).not.toContain("sk-deno");
    expect((error as Error).message).toContain("http://b.example/v1");
  });

  // Was a doc defect, fixed in the docs: SECURITY.md said an invalid port rejects at once, never retried nor
  // counted; a port fetch will not dial (6000, a Fetch "bad port") is valid to the URL parser and is refused by
  // the platform, as a network error. docs/retry.md now says so, and this pins what it says.
  it("a port the platform will not dial (6000, a Fetch 'bad port') is its network error: retried and counted, as docs/retry.md says", async () => {
    const { clock, resilience, of } = layer({ breaker: { failureThreshold: 2 } });
    const error = await rejection(clock.run(resilience.fetch("http://127.0.0.1:6000/x")));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect(of("retry")).toHaveLength(1);
    expect(resilience.health().breakers["127.0.0.1:6000"]?.state).toBe("open");
  });

  // Was a defect, fixed: the 503 was discarded before the wait, and the refused retry's CircuitOpenError settled the call.
  it("when the breaker opens during a call's backoff, the call settles with the response it has, body intact (docs/breakers.md)", async () => {
    P.on(status(503));
    const { clock, resilience } = layer({ breaker: { failureThreshold: 2 } });
    const first = resilience.fetch(`${P.base}/a`).then(
      async (r) => `${r.status} ${await r.text()}`,
      (e: Error) => e.name,
    );
    await clock.waitForTimers(1); // the first call got its 503 and waits to retry
    await resilience.fetch(`${P.base}/b`, { method: "POST" }); // a second 503 opens the breaker
    expect(resilience.health().breakers[`127.0.0.1:${P.port}`]?.state).toBe("open");
    expect(await clock.run(first)).toBe("503 503 #1");
    expect(P.hits).toHaveLength(2);
  });

  it("a response retried past is read at once (its connection freed), kept only while small, and nothing outlives an abort", async () => {
    const answered: Response[] = [];
    const fetch = (): Promise<Response> => {
      const response = new Response(`busy ${answered.length}`, { status: 503 });
      answered.push(response);
      return Promise.resolve(response);
    };
    const { clock, resilience } = layer({ fetch, retry: { maxAttempts: 3 } });
    const controller = new AbortController();
    const call = rejection(resilience.fetch("http://api.example/a", { signal: controller.signal }));
    await clock.waitForTimers(1);
    expect(answered[0]?.body?.locked).toBe(true); // read during the backoff, not held open
    controller.abort(new Error("left"));
    expect(await call).toMatchObject({ message: "left" });
    expect(clock.pending()).toBe(0);
  });

  it("a streamed 503 without end is cancelled after 64 KiB while the retry waits: memory stays bounded", async () => {
    let pulled = 0;
    let cancelled = false;
    let n = 0;
    const fetch = (): Promise<Response> => {
      n++;
      if (n > 1) return Promise.resolve(new Response("ok"));
      const endless = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled += 1024;
          controller.enqueue(new Uint8Array(1024));
        },
        cancel() {
          cancelled = true;
        },
      });
      return Promise.resolve(new Response(endless, { status: 503 }));
    };
    const { clock, resilience } = layer({ fetch });
    const res = await clock.run(resilience.fetch("http://api.example/a"));
    expect(res.status).toBe(200);
    expect(cancelled).toBe(true);
    expect(pulled).toBeLessThan(80 * 1024);
  });

  it("half-open: admits at most halfOpenMaxCalls probes, and a probe unreported for probeTimeout re-opens it", async () => {
    let n = 0;
    const waiting: Array<(r: Response) => void> = [];
    const fetch = (): Promise<Response> => {
      n++;
      if (n === 1) return Promise.resolve(new Response("down", { status: 503 }));
      return new Promise((resolve) => waiting.push(resolve));
    };
    const { clock, resilience, of } = layer(
      opts(fetch, { breaker: { failureThreshold: 1, timeout: 1_000, probeTimeout: 500, halfOpenMaxCalls: 2 } }),
    );
    await resilience.fetch("http://api.example/x");
    await clock.advance(1_000);
    const probes = [resilience.fetch("http://api.example/p1"), resilience.fetch("http://api.example/p2")];
    const third = await rejection(resilience.fetch("http://api.example/p3"));
    expect(isCircuitOpenError(third)).toBe(true);
    expect(n).toBe(3);
    await clock.advance(500);
    await expect(resilience.fetch("http://api.example/p4")).rejects.toBeInstanceOf(CircuitOpenError);
    expect(n).toBe(3);
    expect(resilience.health().breakers["api.example"]?.state).toBe("open");
    expect(of<BreakerEvent>("breaker").map((e) => [e.from, e.to, e.gen])).toEqual([
      ["closed", "open", 1],
      ["open", "half_open", 2],
      ["half_open", "open", 3],
    ]);
    for (const resolve of waiting) resolve(new Response("late"));
    await Promise.allSettled(probes);
  });

  it("keeps at most maxHosts breakers (the most recently used), in health() and debugInfo()", async () => {
    const t = stub(() => new Response("ok"));
    const { clock, resilience } = layer(opts(t.fetch, { breaker: { maxHosts: 3 } }));
    for (let i = 0; i < 10; i++) await clock.run(resilience.fetch(`http://h${i}.example/`));
    expect(Object.keys(resilience.health().breakers).sort()).toEqual(["h7.example", "h8.example", "h9.example"]);
    expect(resilience.debugInfo().breakerCount).toBe(3);
  });

  // Was a defect, fixed: maxHosts evicted the busy host's entry, and its next call got a fresh bulkhead.
  it("the bulkhead limits attempts in flight per host even past maxHosts: a busy host's entry is never evicted (docs/breakers.md)", async () => {
    const g = gate();
    const { resilience } = layer({
      retry: false,
      fetch: g.fetch,
      breaker: { maxHosts: 1 },
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
    });
    const first = resilience.fetch("http://a.example/1");
    await settle();
    const other = resilience.fetch("http://b.example/1");
    await settle();
    const second = rejection(resilience.fetch("http://a.example/2"));
    await settle();
    const inFlightAtA = g.calls.filter((c) => c.url.startsWith("http://a.example")).length;
    for (const c of g.calls) c.answer();
    await Promise.allSettled([first, other, second]);
    expect(inFlightAtA).toBe(1);
    expect(isBulkheadRejectedError(await second)).toBe(true);
    // Once idle, entries are evicted again down to maxHosts.
    const third = resilience.fetch("http://c.example/1");
    await settle();
    for (const c of g.calls) c.answer();
    await third;
    expect(resilience.debugInfo().breakerCount).toBeLessThanOrEqual(2);
  });
});

// ---------------------------------------------------------------------------

describe("secrets never reach events, errors, health or debugInfo (SECURITY.md)", () => {
  it("drops query, fragment and header values everywhere, on responses, refusals, timeouts and open breakers", async () => {
    const headers = { authorization: "Bearer sk-hdr-1", "x-api-key": "sk-hdr-2", cookie: "s=sk-hdr-3" };
    const errors: unknown[] = [];
    // Two 503s (retried), then an open breaker, then a refused connection.
    P.on(status(503));
    const one = layer({ retry: { maxAttempts: 2 }, breaker: { failureThreshold: 2 } });
    await one.clock.run(one.resilience.fetch(`${P.base}/v1?api_key=sk-q-1#sk-frag`, { headers }));
    errors.push(await rejection(one.clock.run(one.resilience.fetch(`${P.base}/v1?api_key=sk-q-2`, { headers }))));
    errors.push(await rejection(one.clock.run(one.resilience.fetch(`${REFUSED}/v1?token=sk-q-3`, { headers }))));
    // An attempt timeout, on a layer of its own (its timer must not race the 503s above).
    Q.on(hang);
    const two = layer({ retry: false, timeout: { attempt: 500 } });
    errors.push(await rejection(two.clock.run(two.resilience.fetch(`${Q.base}/v2?api_key=sk-q-4#sk-f`, { headers }))));
    const text = JSON.stringify([
      one.events,
      two.events,
      [one, two].map((l) => [l.resilience.health(), l.resilience.debugInfo()]),
      errors.map((e) => [String(e), (e as Error).message, JSON.stringify(e)]),
    ]);
    expect(errors.map((e) => (e as Error).name)).toEqual(["CircuitOpenError", "RetryExhaustedError", "TimeoutError"]);
    expect(text).not.toContain("sk-");
    expect(text).toContain(`${P.base}/v1`);
    expect(text).toContain(`${Q.base}/v2`);
  });
});

// ---------------------------------------------------------------------------

describe("bulkhead (docs/breakers.md: Bulkheads)", () => {
  const bulk = (fetch: NonNullable<ResilienceOptions["fetch"]>, extra: ResilienceOptions = {}) =>
    layer({ retry: false, fetch, bulkhead: { maxConcurrent: 1, maxQueue: 1 }, ...extra });

  it("rejects at once with BulkheadRejectedError when the queue is full: nothing sent, not retried, not counted", async () => {
    const g = gate();
    const { resilience, of } = layer({ fetch: g.fetch, bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
    const a = resilience.fetch("http://api.example/a");
    const b = resilience.fetch("http://api.example/b");
    await settle();
    const c = await rejection(resilience.fetch("http://api.example/c"));
    expect(c).toBeInstanceOf(BulkheadRejectedError);
    expect((c as BulkheadRejectedError).key).toBe("api.example");
    expect(resilience.health().breakers["api.example"]).toMatchObject({ active: 1, queued: 1, consecutiveFailures: 0 });
    g.calls[0]?.answer();
    await a;
    await settle();
    g.calls[1]?.answer();
    expect((await b).status).toBe(200);
    expect(g.calls.map((x) => x.url)).toEqual(["http://api.example/a", "http://api.example/b"]);
    expect(of<RetryEvent>("retry")).toEqual([]);
    expect(of<RequestEvent>("request").find((e) => e.url === "http://api.example/c")).toMatchObject({
      outcome: "error",
      error: "BulkheadRejectedError",
      attempts: 0,
    });
    expect(resilience.health().breakers["api.example"]).toMatchObject({ active: 0, queued: 0 });
  });

  it("queues FIFO, and with the default maxQueue (0) refuses the second call at once", async () => {
    const g = gate();
    const fifo = bulk(g.fetch, { bulkhead: { maxConcurrent: 1, maxQueue: 3 } }).resilience;
    const order: string[] = [];
    const calls = ["a", "b", "c", "d"].map((p) =>
      fifo.fetch(`http://api.example/${p}`).then(() => {
        order.push(p);
      }),
    );
    for (let i = 0; i < 4; i++) {
      await settle();
      g.calls[i]?.answer();
    }
    await Promise.all(calls);
    expect(g.calls.map((c) => c.url.slice(-1))).toEqual(["a", "b", "c", "d"]);
    expect(order).toEqual(["a", "b", "c", "d"]);
    const h = gate();
    const strict = layer({ retry: false, fetch: h.fetch, bulkhead: { maxConcurrent: 1 } }).resilience;
    const first = strict.fetch("http://api.example/1");
    await expect(strict.fetch("http://api.example/2")).rejects.toBeInstanceOf(BulkheadRejectedError);
    await settle();
    h.calls[0]?.answer();
    expect((await first).status).toBe(200);
  });

  // Was a defect, fixed: the call rejected with BulkheadRejectedError ("nothing was sent") and its 503 was lost.
  it("when a retry finds the bulkhead full, the call settles with the response it has (README: a response whenever it has one)", async () => {
    let n = 0;
    const waiting: Array<(r: Response) => void> = [];
    const fetch = (): Promise<Response> => {
      n++;
      if (n === 1) return Promise.resolve(new Response("busy", { status: 503 }));
      return new Promise((resolve) => waiting.push(resolve));
    };
    const { clock, resilience } = layer({ fetch, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const first = resilience.fetch("http://api.example/a").then(
      async (r) => `${r.status} ${await r.text()}`,
      (e: Error) => e.name,
    );
    await clock.waitForTimers(1); // its backoff before the retry
    const other = resilience.fetch("http://api.example/b"); // takes the only slot
    await settle();
    await clock.advance(100);
    for (const resolve of waiting) resolve(new Response("ok"));
    await other;
    expect(await first).toBe("503 busy");
    expect(n).toBe(2);
  });

  it("lets a queued caller that aborts leave the queue at once, with its reason, and keeps the slot count right", async () => {
    const g = gate();
    const { resilience } = bulk(g.fetch);
    const a = resilience.fetch("http://api.example/a");
    const controller = new AbortController();
    const b = rejection(resilience.fetch("http://api.example/b", { signal: controller.signal }));
    await settle();
    expect(resilience.health().breakers["api.example"]).toMatchObject({ active: 1, queued: 1 });
    const reason = new Error("user left");
    controller.abort(reason);
    expect(await b).toBe(reason);
    expect(resilience.health().breakers["api.example"]).toMatchObject({ active: 1, queued: 0 });
    g.calls[0]?.answer();
    await a;
    expect(resilience.health().breakers["api.example"]).toMatchObject({ active: 0, queued: 0 });
    const c = resilience.fetch("http://api.example/c");
    await settle();
    g.calls[1]?.answer();
    expect((await c).status).toBe(200);
    expect(g.calls.map((x) => x.url)).toEqual(["http://api.example/a", "http://api.example/c"]);
  });

  it("ends a queued call whose timeout.total expires with a total TimeoutError, out of the queue, nothing sent", async () => {
    // b's retry queues behind a, which started later and holds the slot past
    // b's deadline: b's deadline passes while it still waits in the queue.
    const g = gate();
    const { resilience, clock } = bulk(g.fetch, {
      timeout: { total: 1_000 },
      retry: { maxAttempts: 2, initialDelay: 500, jitter: "none" },
    });
    const b = rejection(resilience.fetch("http://api.example/b"));
    await settle();
    g.calls[0]?.answer(503);
    await settle();
    await clock.advance(100);
    const a = rejection(resilience.fetch("http://api.example/a"));
    await settle();
    await clock.advance(400); // b's backoff ends: its second attempt queues behind a
    await settle();
    expect(resilience.health().breakers["api.example"]).toMatchObject({ active: 1, queued: 1 });
    await clock.advance(500);
    const error = await b;
    expect(isTimeoutError(error)).toBe(true);
    expect((error as TimeoutError).phase).toBe("total");
    expect((error as TimeoutError).attempts).toBe(1);
    expect(resilience.health().breakers["api.example"]).toMatchObject({ active: 1, queued: 0 });
    expect(g.calls.map((c) => c.url)).toEqual(["http://api.example/b", "http://api.example/a"]);
    await clock.advance(100);
    const first = await a;
    expect([isTimeoutError(first), (first as TimeoutError).phase]).toEqual([true, "total"]);
    expect(resilience.health().breakers["api.example"]).toMatchObject({ active: 0, queued: 0 });
    expect(clock.pending()).toBe(0);
  });

  it("releases the slot of an in-flight call the caller aborts, so the queued call goes", async () => {
    const g = gate();
    const { resilience } = bulk(g.fetch);
    const controller = new AbortController();
    const a = rejection(resilience.fetch("http://api.example/a", { signal: controller.signal }));
    const b = resilience.fetch("http://api.example/b");
    await settle();
    controller.abort();
    expect(((await a) as Error).name).toBe("AbortError");
    await settle();
    expect(g.calls.map((c) => c.url)).toEqual(["http://api.example/a", "http://api.example/b"]);
    g.calls[1]?.answer();
    expect((await b).status).toBe(200);
    expect(resilience.health().breakers["api.example"]).toMatchObject({
      active: 0,
      queued: 0,
      consecutiveFailures: 0,
    });
  });

  it("frees the slot when headers arrive: a streamed body does not hold it (real server)", async () => {
    P.on((hit) => {
      hit.res.writeHead(200);
      hit.res.write(`part-${hit.n};`);
    });
    const { resilience } = layer({ retry: false, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const first = await resilience.fetch(`${P.base}/stream`);
    const second = await resilience.fetch(`${P.base}/stream`);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(resilience.health().breakers[`127.0.0.1:${P.port}`]).toMatchObject({ active: 0, queued: 0 });
    for (const hit of P.hits) hit.res.end("end");
    expect(await first.text()).toBe("part-1;end");
    expect(await second.text()).toBe("part-2;end");
  });
});

// ---------------------------------------------------------------------------

describe("timeouts (docs/retry.md: Timeouts)", () => {
  it("rejects with an attempt TimeoutError after every attempt timed out, counting attempts and breaker failures", async () => {
    P.on(hang);
    const { clock, resilience, of } = layer({ timeout: { attempt: 1_000 } });
    const error = await rejection(clock.run(resilience.fetch(`${P.base}/slow`)));
    expect(isTimeoutError(error)).toBe(true);
    expect([(error as TimeoutError).phase, (error as TimeoutError).timeout, (error as TimeoutError).attempts]).toEqual([
      "attempt",
      1_000,
      3,
    ]);
    expect(of<RetryEvent>("retry").map((e) => e.reason)).toEqual(["attempt timeout", "attempt timeout"]);
    expect(resilience.health().breakers[`127.0.0.1:${P.port}`]?.consecutiveFailures).toBe(3);
    expect(clock.pending()).toBe(0);
  });

  it("rejects with a total TimeoutError when headers never come, aborting the request on the wire", async () => {
    P.on(hang);
    const { clock, resilience } = layer({ timeout: { total: 2_000 } });
    const closed = P.nth(1).then((hit) => (hit.res.closed ? undefined : once(hit.res, "close")));
    const error = await rejection(clock.run(resilience.fetch(`${P.base}/slow`)));
    expect(isTimeoutError(error)).toBe(true);
    expect([(error as TimeoutError).phase, (error as TimeoutError).attempts]).toEqual(["total", 1]);
    expect(clock.now()).toBe(2_000);
    await closed; // the server sees the connection go
    expect(clock.pending()).toBe(0);
  });

  it("does not start a wait that would end past timeout.total: settles with the 503 at once", async () => {
    P.on(status(503, { "retry-after": "5" }));
    const { clock, resilience, of } = layer({ timeout: { total: 3_000 } });
    // Awaited without moving the clock: the deadline's timer must not fire while the 503 is on its way.
    const res = await resilience.fetch(`${P.base}/x`);
    expect(res.status).toBe(503);
    expect(P.hits).toHaveLength(1);
    expect(of("retry")).toEqual([]);
    expect(clock.now()).toBe(0);
  });

  it("never cuts a body whose headers came in time, however long it then stalls (no timer left)", async () => {
    P.on((hit) => {
      hit.res.writeHead(200, { "content-type": "text/plain" });
      hit.res.write("head;");
    });
    const { clock, resilience } = layer({ timeout: { attempt: 1_000, total: 2_000 } });
    const res = await resilience.fetch(`${P.base}/video`);
    expect(res.status).toBe(200);
    expect(clock.pending()).toBe(0);
    const reading = res.text();
    await clock.advance(60_000);
    (await P.nth(1)).res.end("tail");
    expect(await reading).toBe("head;tail");
  });

  it("rejects with the caller's reason when the signal was aborted before the call: nothing sent, no timer", async () => {
    const { clock, resilience } = layer({ timeout: { attempt: 1_000, total: 2_000 } });
    const reason = new Error("already gone");
    const error = await rejection(resilience.fetch(`${P.base}/x`, { signal: AbortSignal.abort(reason) }));
    expect(error).toBe(reason);
    await settle();
    expect(P.hits).toHaveLength(0);
    expect(clock.pending()).toBe(0);
  });

  // Was a doc defect, fixed in the docs: docs/health-and-events.md said `request` fires once per settled call;
  // a call refused before it started fires none, and the docs now say so.
  it("fires no request event for a call whose signal was aborted before it started, and counts no call (docs/health-and-events.md)", async () => {
    const { resilience, of } = layer();
    await rejection(resilience.fetch(`${P.base}/x`, { signal: AbortSignal.abort() }));
    expect(of<RequestEvent>("request")).toHaveLength(0);
    expect(resilience.debugInfo().totals.calls).toBe(0);
  });

  it("rejects with the caller's reason when aborted during an attempt: not a timeout, not a breaker failure, event outcome aborted", async () => {
    P.on(hang);
    const { clock, resilience, of } = layer({ timeout: { attempt: 5_000, total: 10_000 } });
    const controller = new AbortController();
    const call = rejection(resilience.fetch(`${P.base}/x`, { signal: controller.signal }));
    await P.nth(1);
    const reason = new Error("cancelled by user");
    controller.abort(reason);
    expect(await call).toBe(reason);
    expect(resilience.health().breakers[`127.0.0.1:${P.port}`]?.consecutiveFailures).toBe(0);
    expect(of<RequestEvent>("request")).toMatchObject([{ outcome: "aborted", attempts: 1, status: undefined }]);
    expect(clock.pending()).toBe(0);
  });

  it("rejects at once with the caller's reason when aborted during a backoff wait", async () => {
    P.on(status(503));
    const { clock, resilience } = layer({ retry: { initialDelay: 10_000 } });
    const controller = new AbortController();
    const call = rejection(resilience.fetch(`${P.base}/x`, { signal: controller.signal }));
    await clock.waitForTimers(1);
    const reason = new Error("stop waiting");
    controller.abort(reason);
    expect(await call).toBe(reason);
    expect(P.hits).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });

  it("honours a Request input's own signal when init has none (aborted during a backoff wait)", async () => {
    P.on(status(503));
    const { clock, resilience } = layer({ retry: { initialDelay: 10_000 } });
    const controller = new AbortController();
    const request = new Request(`${P.base}/x`, { signal: controller.signal });
    const call = rejection(resilience.fetch(request));
    await clock.waitForTimers(1);
    const reason = new Error("request's own");
    controller.abort(reason);
    expect(await call).toBe(reason);
    expect(clock.pending()).toBe(0);
  });

  it("never re-sends a POST whose attempt timed out (the server may have done the work)", async () => {
    P.on(hang);
    const { clock, resilience, of } = layer({ timeout: { attempt: 1_000 } });
    const error = await rejection(clock.run(resilience.fetch(`${P.base}/pay`, { method: "POST", body: "job" })));
    expect([isTimeoutError(error), (error as TimeoutError).phase, (error as TimeoutError).attempts]).toEqual([
      true,
      "attempt",
      1,
    ]);
    expect(P.hits.map((h) => h.body)).toEqual(["job"]);
    expect(of("retry")).toEqual([]);
  });

  // Was a doc defect, fixed in the docs: docs/retry.md said a clock moved ahead moves neither timeout, which
  // holds for when they fire; but a step ahead reads as the armed delay gone in the estimate of the time left,
  // so the call stopped retrying. docs/retry.md now says so; this pins the documented behaviour (the call
  // without the step retries twice and gets its 200, as the other checks of this file show).
  it("a clock step ahead during a call counts as the armed delay gone: the call settles with the response it has, never past the deadline (docs/retry.md)", async () => {
    const test = new TestClock();
    let step = 0;
    const clock = {
      now: () => test.now() + step,
      setTimer: (fn: () => void, ms: number) => test.setTimer(fn, ms),
    };
    let sent = 0;
    const fetch = async (): Promise<Response> => {
      sent++;
      if (sent === 1) step = 3_600_000; // an NTP step forward while the first attempt is out
      return new Response(null, { status: sent < 3 ? 503 : 200 });
    };
    const resilience = createResilience({
      clock,
      fetch,
      retry: { jitter: "none", initialDelay: 100 },
      timeout: { total: 5_000 },
    });
    const res = await test.run(resilience.fetch("http://api.example/x"));
    expect([res.status, sent]).toEqual([503, 1]);
  });

  it("leaves the body under the caller's own signal: an abort after the response ends the read with its reason", async () => {
    P.on((hit) => {
      hit.res.writeHead(200);
      hit.res.write("x");
    });
    const { resilience } = layer({ timeout: { total: 5_000 } });
    const controller = new AbortController();
    const res = await resilience.fetch(`${P.base}/x`, { signal: controller.signal });
    const reason = new Error("enough");
    const reading = rejection(res.text());
    controller.abort(reason);
    expect(await reading).toBe(reason);
  });
});

// ---------------------------------------------------------------------------

describe("retry decisions (docs/retry.md: Retry, Idempotency, Retry budget)", () => {
  const NOW = Date.parse("Wed, 21 Oct 2026 07:28:00 GMT");

  it("sleeps exactly a delay-seconds Retry-After on 503 and 429, unjittered", async () => {
    for (const code of [503, 429]) {
      P.reset();
      P.on(seq(status(code, { "retry-after": "7" }), ok));
      const { clock, resilience, of } = layer({ retry: { jitter: "full" }, random: () => 0.5 });
      const res = await clock.run(resilience.fetch(`${P.base}/x`));
      expect(res.status).toBe(200);
      expect(of<RetryEvent>("retry")).toMatchObject([{ delay: 7_000, retryAfter: true, reason: `status ${code}` }]);
      expect(clock.now()).toBe(7_000);
    }
  });

  it("retries at once on Retry-After: 0 and on a date already past (a Retry-After delay of 0)", async () => {
    for (const value of ["0", "Wed, 21 Oct 2026 07:27:00 GMT"]) {
      P.reset();
      P.on(seq(status(503, { "retry-after": value }), ok));
      const { clock, resilience, of } = layer({}, NOW);
      const res = await clock.run(resilience.fetch(`${P.base}/x`));
      expect(res.status).toBe(200);
      expect([value, of<RetryEvent>("retry")]).toMatchObject([value, [{ delay: 0, retryAfter: true }]]);
    }
  });

  it("reads the three HTTP-date forms of Retry-After relative to now", async () => {
    for (const date of [
      "Wed, 21 Oct 2026 07:28:09 GMT",
      "Wednesday, 21-Oct-26 07:28:09 GMT",
      "Wed Oct 21 07:28:09 2026",
    ]) {
      P.reset();
      P.on(seq(status(503, { "retry-after": date }), ok));
      const { clock, resilience, of } = layer({}, NOW);
      await clock.run(resilience.fetch(`${P.base}/x`));
      expect([date, of<RetryEvent>("retry")[0]?.delay]).toEqual([date, 9_000]);
    }
  });

  it("falls back to the computed delay on a Retry-After it does not accept", async () => {
    for (const value of ["1.5", "Mon 2", "2026-10-21T07:28:09Z", "-3", "soon", "0x10"]) {
      P.reset();
      P.on(seq(status(503, { "retry-after": value }), ok));
      const { clock, resilience, of } = layer({}, NOW);
      await clock.run(resilience.fetch(`${P.base}/x`));
      expect([value, of<RetryEvent>("retry")]).toMatchObject([value, [{ delay: 100, retryAfter: false }]]);
    }
  });

  it("ignores Retry-After on a 500 (only 429/503 carry it)", async () => {
    P.on(seq(status(500, { "retry-after": "30" }), ok));
    const { clock, resilience, of } = layer();
    await clock.run(resilience.fetch(`${P.base}/x`));
    expect(of<RetryEvent>("retry")).toMatchObject([{ delay: 100, retryAfter: false }]);
  });

  it("resolves at once with a 503 whose Retry-After passes maxRetryAfter and holds the host open, for at most 24 h", async () => {
    for (const [value, held] of [
      ["120", 120_000],
      ["99999999999999999999", 86_400_000],
    ] as const) {
      P.reset();
      P.on(status(503, { "retry-after": value }));
      const { clock, resilience, of } = layer({}, 1_000);
      const res = await clock.run(resilience.fetch(`${P.base}/x`));
      expect(res.status).toBe(503);
      expect(clock.now()).toBe(1_000);
      expect(of("retry")).toEqual([]);
      const breaker = resilience.health().breakers[`127.0.0.1:${P.port}`];
      expect([value, breaker?.state, breaker?.openUntil]).toEqual([value, "open", 1_000 + held]);
      const error = await rejection(clock.run(resilience.fetch(`${P.base}/y`)));
      expect((error as CircuitOpenError).retryAt).toBe(1_000 + held);
      expect(P.hits).toHaveLength(1);
    }
  });

  it("retries the methods the docs name on a 500, and not POST/PATCH without a key", async () => {
    const cases: Array<[string, Record<string, string>, number]> = [
      ["GET", {}, 2],
      ["HEAD", {}, 2],
      ["OPTIONS", {}, 2],
      ["PUT", {}, 2],
      ["DELETE", {}, 2],
      ["POST", {}, 1],
      ["PATCH", {}, 1],
      ["POST", { "Idempotency-Key": "k-1" }, 2],
    ];
    for (const [method, headers, sends] of cases) {
      P.reset();
      P.on(seq(status(500), ok));
      const { clock, resilience } = layer();
      await clock.run(resilience.fetch(`${P.base}/m`, { method, headers }));
      expect([method, headers, P.hits.length]).toEqual([method, headers, sends]);
    }
  });

  it("adds one Idempotency-Key per call with retry.idempotencyKey, the same on every retry, and then retries a POST after a 500", async () => {
    P.on(seq(status(500), status(502), ok));
    const { clock, resilience } = layer({ retry: { idempotencyKey: true } });
    const res = await clock.run(resilience.fetch(`${P.base}/pay`, { method: "POST", body: "job" }));
    expect(res.status).toBe(200);
    const keys = P.hits.map((h) => h.headers["idempotency-key"]);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(P.hits.map((h) => h.body)).toEqual(["job", "job", "job"]);
  });

  it("lets concurrent calls against a dead host retry only as far as the budget's free retries allow", async () => {
    P.on(status(503));
    const { clock, resilience } = layer({ budget: { ratio: 0, minPerSecond: 3 }, breaker: false });
    const calls = Array.from({ length: 20 }, () => resilience.fetch(`${P.base}/x`));
    const results = await clock.run(Promise.all(calls));
    expect(results.every((r) => r.status === 503)).toBe(true);
    expect(P.hits).toHaveLength(23);
    expect(resilience.health().budget).toMatchObject({ retriesAllowed: 3 });
  });

  // Was a defect, fixed: ten deposits of 0.1 summed to 0.9999999999999999 and the tenth call's retry was refused.
  it("each call earns ratio (0.1) tokens and a retry spends one: ten calls earn the tenth call's retry (docs/retry.md)", async () => {
    P.on((hit) => (hit.n < 10 ? ok(hit) : status(503)(hit)));
    const { clock, resilience } = layer({ budget: { ratio: 0.1, minPerSecond: 0 } });
    for (let i = 0; i < 10; i++) await clock.run(resilience.fetch(`${P.base}/x`));
    expect(resilience.health().budget).toMatchObject({ retriesAllowed: 1 });
    expect(P.hits).toHaveLength(11);
  });

  it("caps earned tokens at the credit of the last 100 calls: a long healthy spell banks no retry storm", async () => {
    const t = stub(() => new Response("ok"));
    const { resilience } = layer({ fetch: t.fetch, budget: { ratio: 0.5, minPerSecond: 2 } });
    for (let i = 0; i < 1_000; i++) await resilience.fetch("http://api.example/x");
    const tokens = resilience.health().budget?.tokens ?? Number.NaN;
    expect(tokens).toBeGreaterThan(51.9);
    expect(tokens).toBeLessThanOrEqual(52 + 1e-9);
  });

  it("emits retry events before each wait, then a breaker event when the host opens, then one request event", async () => {
    P.on(status(503));
    const { clock, resilience, events } = layer({ retry: { maxAttempts: 3 }, breaker: { failureThreshold: 2 } });
    const res = await clock.run(resilience.fetch(`${P.base}/x?k=sk-1`));
    expect(res.status).toBe(503);
    const key = `127.0.0.1:${P.port}`;
    expect(events).toEqual([
      ["retry", { key, url: `${P.base}/x`, attempt: 1, delay: 100, reason: "status 503", retryAfter: false }],
      [
        "breaker",
        expect.objectContaining({ key, from: "closed", to: "open", gen: expect.any(Number), openUntil: 100 + 30_000 }),
      ],
      [
        "request",
        {
          key,
          url: `${P.base}/x`,
          method: "GET",
          status: 503,
          error: undefined,
          attempts: 2,
          durationMs: 100,
          outcome: "response",
        },
      ],
    ]);
  });
});

// ---------------------------------------------------------------------------

describe("events and listener errors (docs/health-and-events.md)", () => {
  it("reports a throwing listener (console.error in Node) and never breaks the request or the other listeners", async () => {
    P.on(seq(status(503), ok));
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { jitter: "none", initialDelay: 10 } });
    const boom = new Error("listener bug");
    const seen: string[] = [];
    for (const name of ["retry", "request", "breaker"] as const) {
      resilience.on(name, () => {
        throw boom;
      });
    }
    resilience.on("retry", () => seen.push("retry"));
    resilience.on("request", () => seen.push("request"));
    const res = await clock.run(resilience.fetch(`${P.base}/x`));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("200 #2");
    expect(seen).toEqual(["retry", "request"]);
    expect(spy.mock.calls.filter((args) => args.includes(boom))).toHaveLength(2);
  });

  it("does not break a request when a listener throws a non-Error or unsubscribes itself mid-emit", async () => {
    P.on(seq(status(503), status(503), ok));
    vi.spyOn(console, "error").mockImplementation(() => {});
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { jitter: "none", initialDelay: 10 } });
    const seen: string[] = [];
    const off = resilience.on("retry", () => {
      seen.push("self");
      off();
    });
    resilience.on("retry", () => {
      seen.push("next");
      throw "a string";
    });
    const res = await clock.run(resilience.fetch(`${P.base}/x`));
    expect(res.status).toBe(200);
    expect(seen).toEqual(["self", "next", "next"]);
    off(); // idempotent
  });

  it("emits one request event per settled call, also for refusals by an open breaker (attempts 0)", async () => {
    P.on(status(503));
    const { clock, resilience, of } = layer({ retry: false, breaker: { failureThreshold: 1 } });
    await clock.run(resilience.fetch(`${P.base}/x`));
    await rejection(clock.run(resilience.fetch(`${P.base}/x`)));
    expect(of<RequestEvent>("request")).toMatchObject([
      { status: 503, attempts: 1, outcome: "response" },
      { status: undefined, error: "CircuitOpenError", attempts: 0, outcome: "error" },
    ]);
    expect(of<BreakerEvent>("breaker")).toMatchObject([{ from: "closed", to: "open", reason: expect.any(String) }]);
  });

  it("health() turns degraded above a 10% error rate; aborted calls do not count; clearHistory() forgets", async () => {
    P.on((hit) => (hit.n === 1 ? status(500)(hit) : ok(hit)));
    const { clock, resilience } = layer({ retry: false });
    for (let i = 0; i < 5; i++) await clock.run(resilience.fetch(`${P.base}/x?key=sk-${i}`));
    await rejection(resilience.fetch(`${P.base}/x`, { signal: AbortSignal.abort() }));
    expect(resilience.health()).toMatchObject({ status: "degraded", errorRate: 0.2 });
    const debug = resilience.debugInfo();
    expect(debug.totals).toEqual({ calls: 5, failures: 1 });
    expect(debug.recentErrors).toMatchObject([{ key: `127.0.0.1:${P.port}`, url: `${P.base}/x`, status: 500 }]);
    resilience.analytics.clearHistory();
    expect(resilience.health()).toMatchObject({ status: "healthy", errorRate: 0 });
    expect(resilience.debugInfo().recentErrors).toEqual([]);
  });

  it("refuses a listener that is not a function", () => {
    const resilience = createResilience();
    expect(() => resilience.on("retry", 42 as unknown as () => void)).toThrow(TypeError);
  });
});

describe('redirect: "error" against a server that redirects (docs/retry.md, "Redirects")', () => {
  it("is refused by the platform with a network failure's TypeError: retried like one, and counted against the host", async () => {
    P.on((hit) => {
      hit.res.writeHead(302, { location: "/elsewhere" });
      hit.res.end();
    });
    const { clock, resilience, of } = layer({ breaker: { failureThreshold: 3 } });
    const error = await clock.run(rejection(resilience.fetch(`${P.base}/moved`, { redirect: "error" })));
    expect(isRetryExhaustedError(error) && error.attempts).toBe(3);
    expect((error as Error).cause).toBeInstanceOf(TypeError);
    expect(P.hits.map((hit) => hit.path)).toEqual(["/moved", "/moved", "/moved"]);
    expect(of<{ to: string }>("breaker").map((e) => e.to)).toEqual(["open"]);
  });
});
