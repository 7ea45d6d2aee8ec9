/**
 * Outside-in attack on the newest fixes (bed7cb0..HEAD, d6fe9e9): a linked signal kept alive by the response it
 * answered (`keepWhile`), percent-encoded URLs cut after any character and with raw slashes, header values stored
 * trimmed.
 * Docs: docs/retry.md ("the signal such a call hands its transport follows yours after the call settled, as fetch's
 * own does, so aborting then still cancels a body being read, and it costs no memory per call on a signal that lives
 * long"; "Neither bounds reading the body of the response you get"; "the spaces, tabs and line breaks around a value
 * are no part of it: fetch trims them"; ky: "A header value no request can carry is a `TypeError` naming the header,
 * never quoting the value, as the layer's own: in a call's `headers` when the call is made …, in the `headers` of
 * `createClient`, `extend` or `create` at once"); SECURITY.md ("a URL percent-encoded into text, `https%3A%2F%2F…`,
 * is cut as a plain one, up to three times encoded"; "without an `Idempotency-Key` (an empty one is none)"; "a header
 * with CR/LF/NUL inside its value (around it, fetch trims them, and so does the layer)"); src/core/redact-url.ts
 * ("It may follow anything", "linear time on any text").
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `resilientProxy` (./cloudflare), `TestClock` (./testing); in-process transports (the `fetch` option) whose bodies
 * follow their signal through an abort listener only; `gc` (through `v8.setFlagsFromString("--expose-gc")`) and
 * `WeakRef`s; a real HTTP server on 127.0.0.1 with the global fetch; error text thrown by a transport; 1 MB hostile
 * strings timed against 256 KB ones.
 * Paths: plain call, `timeout.total`, `timeout.attempt`, both, retries, a chain, a hedge, a redirect followed, a
 * degradation rewrite, a `Request` input, the ky client (`createClient`, `extend`, a call), the proxy.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a response keeps every linked signal it was read under, and the proxy's answer keeps its response's; any word with an encoded colon is read as plain text; the ky client reads a Map of headers as pairs):
 * 1. docs/retry.md "the signal such a call hands its transport follows yours after the call settled, as fetch's own
 *    does, so aborting then still cancels a body being read". Observed: on a hedged chain with `timeout.attempt`
 *    (alone or with `timeout.total`; after a retry, a followed redirect or a degradation rewrite too), a body that
 *    follows its signal through an abort listener hangs for good when the caller aborts after a gc. The attempt's
 *    signal is linked (src/http/send/send-attempt.ts `timedTransportCall`) to the hedge's own linked signal
 *    (src/policies/fallback-chain.ts `#hedged`); `timedTransportCall` keeps it with `keepWhile(response,
 *    [attemptSignal])`, then `sendAttempt` calls `keepWhile(response, [signal])` with the hedge's signal, and
 *    `keepWhile` (src/core/linked-signal.ts) does `keptBy.set(owner, linked)`: the second call replaces the first,
 *    so the attempt's signal is kept by nothing and collected (merging the two lists makes every path here hold).
 * 2. docs/retry.md, the same sentence, through `resilientProxy` run outside workerd (Node; a Deno or Bun server
 *    calling the handler): with `timeout.total` or `timeout.attempt`, the client's abort after the proxy answered
 *    no longer cancels the upstream body the proxy streams on (without a timeout it does). The proxy answers
 *    `new Response(response.body, response)` (src/cloudflare/resilient-proxy.ts `serve`) and drops the layer's
 *    response, the one object `keepWhile` keeps the linked signal alive by. (In workerd `linkedSignal` is
 *    `AbortSignal.any`, which holds.)
 * 3. SECURITY.md "a URL percent-encoded into text, `https%3A%2F%2F…`, is cut as a plain one". Observed: the plain
 *    `https:u:pw@h.example/x?key=…` (a special scheme without slashes, which `URL_IN_TEXT` reads) is cut to
 *    `https:h.example/x`, but its encoding `https%3Au%3Apw%40h.example%2Fx%3Fkey%3D…` (what `encodeURIComponent`
 *    makes of it) keeps password and key: `ENCODED_URL` (src/core/redact-url.ts) needs two slashes after the colon.
 * 4. SECURITY.md, the same sentence. Observed: the plain JSON-escaped `https:\/\/u:pw@h.example\/x?key=…` is cut,
 *    but encoded (`https%3A%5C%2F%5C%2Fu%3Apw%40…`, a JSON body with escaped slashes quoted in a query or a log)
 *    it keeps password and key: `ENCODED_URL` takes `%2F` or `/` after the colon, never `%5C`.
 * 5. docs/retry.md (ky) "A header value no request can carry is a `TypeError` naming the header, never quoting the
 *    value, as the layer's own: … in the `headers` of `createClient`, `extend` or `create` at once". Observed: with
 *    headers given as a `Map` (pairs, as fetch and the layer itself read them), `createClient`, `extend` and a call
 *    throw the platform's `TypeError: Headers.append: "Bearer sk-…\nX" is an invalid header value.`, quoting the
 *    key: `badHeaderName` (src/ky/header-values.ts) reads only a `Headers` or an array as pairs and any other object
 *    through `Object.entries`, which a `Map` has none of. The layer takes the same `Map` and names the header.
 *
 * Held (plain `it`):
 * - A caller's abort after the call settled and a gc cancels the body read with `timeout.total`, `timeout.attempt`,
 *   both, on a chain with either, on a hedge with `timeout.total` only, after a redirect under `timeout.total`, a
 *   degradation rewrite under `timeout.attempt`; with its reason.
 * - A `Request` input carrying the signal: the layer does as fetch's own does (the global fetch over a real server
 *   and the layer both leave the read pending once the `Request` is collected: undici's `Request` signal follows
 *   its source only while the `Request` lives).
 * - After the call settled, neither `timeout.total` nor `timeout.attempt` firing cuts the body (plain, hedged).
 * - 300 calls on one long-lived signal, per path (`timeout.total`, `timeout.attempt`, a hedge, a hedge with both),
 *   responses read or dropped unread: the signals handed to the transport and the responses are collected.
 * - Abort order on a hedge with `timeout.attempt`: the attempts' timeouts first keep their `TimeoutError`s when the
 *   caller aborts later; the caller first rejects with the caller's reason.
 * - Encoded text that only looks like a URL stays as written (prose with `%3A`, a Windows path, `mailto:`, a data
 *   URL and a URL with nothing to cut); encoded secrets go after an escape, `_`, a digit, a long word, with raw
 *   slashes, in lower case, two and three times encoded; the punctuation around stays.
 * - Linear time: 1 MB hostile strings (an encoded escape chain broken by spaces, `//a:` with spaces) take about four
 *   times what 256 KB take.
 * - Header values: a whitespace-only `Idempotency-Key` (record, pairs, `Headers`, `Map`) is none (a POST answered 500
 *   is not sent again); a `Map`'s value is trimmed for the transport, and one with a LF inside is refused naming
 *   the header; a value a ky `beforeRequest` hook sets with a control character is refused naming the header; ky's
 *   `createClient` headers arrive trimmed.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** A full collection, with turns between for finalizers and weak cells to clear. */
async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const settle = <T>(p: Promise<T>): Promise<T | unknown> => p.then(undefined, (error: unknown) => error);

/** A body of one chunk that stays open, errored when `signal` aborts (a listener is all that holds it). */
function listeningBody(signal: AbortSignal | null | undefined): ReadableStream<Uint8Array> {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      c.enqueue(new Uint8Array([97]));
    },
  });
  signal?.addEventListener("abort", () => controller.error(signal.reason), { once: true });
  return body;
}

/**
 * A transport whose bodies follow their signal through a listener only; its first answer is a plain body (the
 * first link to a caller's signal), and `before` may answer a call first (a 503, a redirect).
 */
function listeningTransport(before?: () => Response | undefined) {
  let warm = true;
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    if (warm) {
      warm = false;
      return new Response("warm");
    }
    const first = before?.();
    if (first) return first;
    return new Response(listeningBody(init?.signal ?? (input instanceof Request ? input.signal : undefined)));
  };
}

/** Whether `read` settled within a few turns, and how. */
async function outcomeOf(read: Promise<unknown>): Promise<string> {
  let outcome = "still pending";
  read.then(
    () => {
      outcome = "done";
    },
    (error: unknown) => {
      outcome = `rejected: ${(error as Error).message}`;
    },
  );
  for (let i = 0; i < 5; i++) await flush();
  return outcome;
}

const endpoints = [
  { name: "a", url: "https://a.example/v1" },
  { name: "b", url: "https://b.example/v1" },
];
const hedge = () => ({ fallback: fallback([{ name: "c", endpoints, hedge: { delay: 10 } }]) });
const chain = () => ({ fallback: fallback([{ name: "c", endpoints }]) });

type Layer = ReturnType<typeof createResilience>;

/** Reads the second body on one caller's signal, collects, aborts the caller, says what the read did. */
async function abortAfterSettle(
  options: Partial<ResilienceOptions>,
  before?: () => Response | undefined,
  call: (layer: Layer, signal: AbortSignal) => Promise<Response> = (layer, signal) =>
    layer.fetch("https://a.example/v1/x", { signal }),
): Promise<string> {
  const layer = createResilience({ fetch: listeningTransport(before), ...options });
  const app = new AbortController();
  await (await layer.fetch("https://a.example/v1/x", { signal: app.signal })).text();
  const response = await call(layer, app.signal);
  const reader = response.body?.getReader();
  await reader?.read();
  await collect();
  app.abort(new Error("app shutdown"));
  return reader ? outcomeOf(reader.read()) : "no body";
}

/** A transport's first answer after the warm one. */
const firstThen = (make: () => Response) => {
  let n = 0;
  return () => (n++ === 0 ? make() : undefined);
};
const busy = () => new Response("busy", { status: 503 });
const moved = () => new Response(null, { status: 302, headers: { location: "https://a.example/v1/y" } });

describe("a body read after the call settled hears the caller's abort (src/core/linked-signal.ts `keepWhile`)", () => {
  it("on a hedge with timeout.attempt (alone, with total, after a retry, a redirect, a rewrite)", async () => {
    const attempt = { timeout: { attempt: 30_000 } };
    const outcomes = {
      hedgeAttempt: await abortAfterSettle({ ...hedge(), ...attempt }),
      hedgeBoth: await abortAfterSettle({ ...hedge(), timeout: { total: 60_000, attempt: 30_000 } }),
      retried: await abortAfterSettle({ ...hedge(), ...attempt }, firstThen(busy)),
      redirected: await abortAfterSettle({ ...hedge(), ...attempt }, firstThen(moved)),
      rewritten: await abortAfterSettle({
        ...hedge(),
        ...attempt,
        degradation: degradation({ levelHeader: "x-quality" }),
      }),
    };
    expect(outcomes).toEqual({
      hedgeAttempt: "rejected: app shutdown",
      hedgeBoth: "rejected: app shutdown",
      retried: "rejected: app shutdown",
      redirected: "rejected: app shutdown",
      rewritten: "rejected: app shutdown",
    });
  });

  it("with timeouts, on a chain, a hedge under timeout.total, a redirect and a rewrite: cancelled, with its reason", async () => {
    const outcomes = {
      total: await abortAfterSettle({ timeout: { total: 60_000 } }),
      attempt: await abortAfterSettle({ timeout: { attempt: 30_000 } }),
      both: await abortAfterSettle({ timeout: { total: 60_000, attempt: 30_000 } }),
      chainTotal: await abortAfterSettle({ ...chain(), timeout: { total: 60_000 } }),
      chainAttempt: await abortAfterSettle({ ...chain(), timeout: { attempt: 30_000 } }),
      hedgeTotal: await abortAfterSettle({ ...hedge(), timeout: { total: 60_000 } }),
      retriedTotal: await abortAfterSettle({ timeout: { total: 60_000 } }, firstThen(busy)),
      redirectedTotal: await abortAfterSettle({ timeout: { total: 60_000 } }, firstThen(moved)),
      rewritten: await abortAfterSettle({
        timeout: { attempt: 30_000 },
        degradation: degradation({ levelHeader: "x-quality" }),
      }),
    };
    for (const outcome of Object.values(outcomes)) expect(outcome).toBe("rejected: app shutdown");
  });

  /** The proxy, run as a Node server would: the client's request stays alive (the server holds it). */
  async function proxyAbort(resilience: Record<string, unknown>): Promise<string> {
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: "https://a.example/v1" }],
      resilience: { fetch: listeningTransport(), ...resilience },
    });
    const ctx = { waitUntil: () => {} };
    const client = new AbortController();
    await (await proxy.fetch(new Request("https://proxy.example/v1/x", { signal: client.signal }), {}, ctx)).text();
    const incoming = new Request("https://proxy.example/v1/x", { signal: client.signal });
    const response = await proxy.fetch(incoming, {}, ctx);
    const reader = response.body?.getReader();
    await reader?.read();
    await collect();
    client.abort(new Error("client gone"));
    const outcome = reader ? await outcomeOf(reader.read()) : "no body";
    expect(incoming.signal.aborted).toBe(true); // the client's request lived on
    return outcome;
  }

  it("through resilientProxy (outside workerd) with timeout.total or timeout.attempt", async () => {
    expect({
      total: await proxyAbort({ timeout: { total: 60_000 } }),
      attempt: await proxyAbort({ timeout: { attempt: 60_000 } }),
    }).toEqual({ total: "rejected: client gone", attempt: "rejected: client gone" });
  });

  it("control: through resilientProxy without a timeout, the client's abort cancels the body", async () => {
    expect(await proxyAbort({})).toBe("rejected: client gone");
  });

  it("a Request input carrying the signal: the layer does as the global fetch does", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200);
      res.write("a");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const outcome = async (make: (signal: AbortSignal) => Promise<Response>) => {
        const app = new AbortController();
        const reader = (await make(app.signal)).body?.getReader();
        await reader?.read();
        await collect();
        app.abort(new Error("app shutdown"));
        const read = reader?.read();
        let got = "still pending";
        read?.then(
          () => {
            got = "done";
          },
          (error: unknown) => {
            got = `rejected: ${(error as Error).message}`;
          },
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
        return got;
      };
      const layer = createResilience({ timeout: { total: 60_000 } });
      const byInit = await outcome((signal) => fetch(url, { signal }));
      const byRequest = await outcome((signal) => fetch(new Request(url, { signal })));
      const layerByInit = await outcome((signal) => layer.fetch(url, { signal }));
      const layerByRequest = await outcome((signal) => layer.fetch(new Request(url, { signal })));
      expect({ byInit, layerByInit }).toEqual({
        byInit: "rejected: app shutdown",
        layerByInit: "rejected: app shutdown",
      });
      expect(layerByRequest).toBe(byRequest);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("after the call settled, neither timeout firing cuts the body (plain, hedged)", async () => {
    for (const hedged of [false, true]) {
      const clock = new TestClock();
      const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
        const signal = init?.signal;
        // Hedged: the first endpoint never answers, the second wins.
        if (hedged && String(input).startsWith("https://a."))
          return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
        return Promise.resolve(new Response(listeningBody(signal)));
      };
      const layer = createResilience({
        clock,
        fetch,
        timeout: { total: 1_000, attempt: 800 },
        ...(hedged ? hedge() : {}),
      });
      const pending = layer.fetch("https://a.example/v1/x", { signal: new AbortController().signal });
      await clock.advance(20);
      const reader = (await pending).body?.getReader();
      expect((await reader?.read())?.value).toEqual(new Uint8Array([97]));
      await clock.advance(5_000);
      expect(await outcomeOf(reader?.read() ?? Promise.resolve())).toBe("still pending");
    }
  });

  it("300 calls on one long-lived signal: the signals handed on and the responses, read or not, are collected", async () => {
    const paths: Record<string, Partial<ResilienceOptions>> = {
      total: { timeout: { total: 60_000 } },
      attempt: { timeout: { attempt: 60_000 } },
      hedge: hedge(),
      hedgeBoth: { ...hedge(), timeout: { total: 60_000, attempt: 30_000 } },
    };
    const alive: Record<string, number> = {};
    for (const [name, options] of Object.entries(paths)) {
      for (const read of [false, true]) {
        const refs: WeakRef<object>[] = [];
        const fetch = async (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
          const signal = init?.signal;
          if (signal) refs.push(new WeakRef(signal));
          const body = read ? "a" : listeningBody(signal);
          const response = new Response(body);
          refs.push(new WeakRef(response));
          return response;
        };
        const layer = createResilience({ fetch, ...options });
        const app = new AbortController();
        for (let i = 0; i < 300; i++) {
          const response = await layer.fetch("https://a.example/v1/x", { signal: app.signal });
          if (read) await response.text();
        }
        await collect();
        expect(refs.length).toBe(600);
        alive[`${name}/${read ? "read" : "unread"}`] = refs.filter((ref) => ref.deref() !== undefined).length;
      }
    }
    for (const count of Object.values(alive)) expect(count).toBeLessThan(10);
  });

  it("abort order on a hedge with timeout.attempt: the attempt's timeout first, or the caller first", async () => {
    const clock = new TestClock();
    const deaf = (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
      new Promise<Response>((_, reject) =>
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason), { once: true }),
      );
    const layer = createResilience({ clock, fetch: deaf, retry: false, timeout: { attempt: 100 }, ...hedge() });
    const late = new AbortController();
    const timedOut = settle(layer.fetch("https://a.example/v1/x", { signal: late.signal }));
    await clock.advance(200);
    late.abort(new Error("late"));
    // Both endpoints timed out (the hedge's too) before the caller aborted: each error is a TimeoutError.
    const exhausted = (await timedOut) as Error & { errors?: Record<string, Error> };
    expect(exhausted.name).toBe("FallbackExhaustedError");
    expect(Object.values(exhausted.errors ?? {}).map((e) => e.name)).toEqual(["TimeoutError", "TimeoutError"]);
    const early = new AbortController();
    const aborted = settle(layer.fetch("https://a.example/v1/x", { signal: early.signal }));
    await clock.advance(20);
    early.abort(new Error("caller first"));
    expect(((await aborted) as Error).message).toBe("caller first");
  });
});

describe("percent-encoded URLs in error text (src/core/redact-url.ts)", () => {
  /** What a failing transport's error text becomes: its message as the call's error's cause shows it. */
  async function shown(text: string): Promise<string> {
    const layer = createResilience({
      breaker: false,
      retry: { maxAttempts: 1 },
      fetch: async () => {
        throw new TypeError(text);
      },
    });
    const error = (await settle(layer.fetch("https://a.example/x"))) as Error & { cause?: Error };
    return [error.message, error.cause?.message].join(" | ");
  }

  it("an encoded special-scheme URL without slashes (`https%3Au%3Apw%40…`) is cut as the plain one is", async () => {
    expect(await shown("x https:u:pw0@h.example/x?key=SECRET0")).not.toMatch(/pw0|SECRET0/); // the plain one
    expect(await shown(`x ${encodeURIComponent("https:u:pw1@h.example/x?key=SECRET1")}`)).not.toMatch(/pw1|SECRET1/);
  });

  it("an encoded URL with JSON-escaped slashes (`https%3A%5C%2F%5C%2F…`) is cut as the plain one is", async () => {
    expect(await shown("x https:\\/\\/u:pw0@h.example\\/x?key=SECRET0")).not.toMatch(/pw0|SECRET0/); // the plain one
    expect(await shown(`x ${encodeURIComponent("https:\\/\\/u:pw1@h.example\\/x?key=SECRET1")}`)).not.toMatch(
      /pw1|SECRET1/,
    );
  });

  it("text that only looks encoded stays as written; the punctuation around a cut URL stays", async () => {
    const kept = [
      "progress 50%3A done, ratio a%3A//b",
      "path C%3A%5CUsers%5Cme%5Cfile.txt",
      "mailto%3Aops%40h.example",
      "data:text/plain,hello%3A%2F%2Fworld",
      "x=https%3A%2F%2Fh.example%2Fok%2C%20fine%3B%20see%20docs",
      "value%3A%2F%2Fnot-a-url%20at%20all and 10%3A%2F%2F",
    ];
    for (const text of kept) expect(await shown(text)).toContain(text);
    expect(await shown("(https%3A%2F%2Fh.example%2Fx%3Fkey%3DSECRET1).")).toContain("(https%3A%2F%2Fh.example%2Fx).");
    expect(await shown("see https%3A%2F%2Fh.example%2Fx%3Fkey%3DSECRET2, then 100% sure")).toContain(
      "see https%3A%2F%2Fh.example%2Fx, then 100% sure",
    );
  });

  it("secrets go after any character, with raw slashes, in lower case, encoded two and three times", async () => {
    const texts = [
      "_https%3A%2F%2Fu%3Apw1%40h.example%2Fx%3Fkey%3DSECRET1",
      "%22https%3A%2F%2Fu%3Apw2%40h.example%2Fx%3Fkey%3DSECRET2%22",
      "42https%3A%2F%2Fu%3Apw3%40h.example%3Fkey%3DSECRET3",
      `${"z".repeat(40)}https%3A%2F%2Fu%3Apw4%40h.example%3Fkey%3DSECRET4`,
      "https%3A//u%3Apw5%40h.example/a/b%3Fkey%3DSECRET5",
      "https%3a%2f%2fu%3apw6%40h.example%2fx%3fkey%3dSECRET6",
      "https%253A%252F%252Fu%253Apw7%2540h.example%252Fx%253Fkey%253DSECRET7",
      "https%25253A%25252F%25252Fu%25253Apw8%252540h.example%25252Fx%25253Fkey%25253DSECRET8",
    ];
    for (const text of texts) expect(await shown(`x ${text} y`)).not.toMatch(/pw\d|SECRET\d/);
  });

  it("linear time: 1 MB of hostile text takes about four times what 256 KB takes", async () => {
    const units = ["%20https%3A%2F%2Fx ", "//a:b c d e f g h i j k l m n o p q "];
    const timed = async (text: string) => {
      const start = performance.now();
      await shown(text);
      return performance.now() - start;
    };
    for (const unit of units) {
      const small = unit.repeat(Math.ceil((256 * 1024) / unit.length));
      await timed(small.slice(0, 16 * 1024)); // warm
      const quarter = await timed(small);
      const whole = await timed(small.repeat(4));
      expect(whole / quarter).toBeLessThan(10);
    }
  });
});

describe("header values: trimmed around, refused inside, never quoted", () => {
  it("ky: a Map of headers with a LF inside a value is refused naming the header, never quoting it", async () => {
    const resilience = createResilience({ fetch: async () => new Response("ok") });
    const bad = () => new Map([["authorization", "Bearer sk-SECRET\nX"]]) as unknown as Record<string, string>;
    const errors = [
      await settle((async () => createClient({ resilience, headers: bad() }))()),
      await settle((async () => createClient({ resilience }).extend({ headers: bad() }).get("https://a.example/x"))()),
      // ky may throw while the call is made, before any promise: caught as well.
      await settle((async () => createClient({ resilience }).get("https://a.example/x", { headers: bad() }))()),
    ];
    for (const error of errors) {
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toContain('"authorization"');
      expect((error as Error).message).not.toContain("SECRET");
    }
  });

  it("the layer: a Map's value trimmed, one with a LF inside refused naming the header; ky trims and names", async () => {
    const seen: string[] = [];
    const resilience = createResilience({
      fetch: async (input, init) => {
        const headers = new Headers(input instanceof Request ? input.headers : init?.headers);
        seen.push(`${headers.get("authorization")}`);
        return new Response("ok");
      },
    });
    await resilience.fetch("https://a.example/x", {
      headers: new Map([["authorization", " Bearer k1\r\n"]]) as unknown as Record<string, string>,
    });
    const refused = await settle(
      resilience.fetch("https://a.example/x", {
        headers: new Map([["authorization", "Bearer sk-SECRET\nX"]]) as unknown as Record<string, string>,
      }),
    );
    expect((refused as Error).message).toContain('"authorization"');
    expect((refused as Error).message).not.toContain("SECRET");
    await createClient({ resilience, headers: { authorization: "\tBearer k2\n" } })
      .get("https://a.example/x")
      .text();
    const hooked = await settle(
      createClient({
        resilience,
        hooks: {
          beforeRequest: [
            ({ request }) => {
              request.headers.set("authorization", "Bearer sk-SECRET\u0001X");
            },
          ],
        },
      }).get("https://a.example/x"),
    );
    expect((hooked as Error).message).toContain('"authorization"');
    expect((hooked as Error).message).not.toContain("SECRET");
    expect(seen).toEqual(["Bearer k1", "Bearer k2"]);
  });

  it("a whitespace-only Idempotency-Key is none: a POST answered 500 is not sent again", async () => {
    const given = [
      { "Idempotency-Key": " \t" },
      [["Idempotency-Key", "\n"]],
      new Headers({ "Idempotency-Key": " " }),
      new Map([["idempotency-key", " \r\n"]]),
    ];
    const sends: number[] = [];
    for (const headers of [...given, { "Idempotency-Key": "k" }]) {
      let n = 0;
      const clock = new TestClock();
      const layer = createResilience({
        clock,
        retry: { maxAttempts: 3 },
        fetch: async () => {
          n++;
          return new Response("x", { status: 500 });
        },
      });
      const call = settle(
        layer.fetch("https://a.example/x", { method: "POST", body: "{}", headers: headers as never }),
      );
      for (let i = 0; i < 20; i++) await clock.advance(1_000);
      await call;
      sends.push(n);
    }
    expect(sends).toEqual([1, 1, 1, 1, 3]);
  });
});
