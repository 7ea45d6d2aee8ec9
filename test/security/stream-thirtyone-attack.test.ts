/**
 * Outside-in attack on streaming generation APIs: text answered as SSE / NDJSON that trickles, stalls, resets or
 * runs huge, video-sized bodies, and streamed request bodies, through plain calls, chains, hedges, validate, the
 * Worker proxy and the ky client.
 * Docs: docs/retry.md ("Neither bounds reading the body of the response you get: that read is yours, under your
 * own signal"; "the signal such a call hands its transport follows yours after the call settled, as fetch's own
 * does, so aborting then still cancels a body being read"; "Response bodies are never buffered or cloned: a
 * streamed (SSE, chunked video) response reaches you chunk by chunk"; "A `ReadableStream` body, or one larger than
 * `maxReplayBytes`, is sent once on every path"; a `Request`'s body "is read into bytes once and replayed", "at
 * most `maxReplayBytes` are read ahead, under the caller's signal and `timeout.total`", "a call that ends without
 * sending it ... cancels it"); docs/options.md (`timeout.attempt` "ms to response headers", `timeout.total` "for
 * the whole call up to its response headers"); docs/fallback.md ("`validate` reads at most `maxReplayBytes` of
 * the body, within `timeout.attempt` (else what is left of `timeout.total`, else 30 s): a body that stalls or never
 * ends fails validation"; "An abort, or `timeout.total` passing, rejects the call with the caller's reason or the
 * `TimeoutError` even when an earlier endpoint's answer was turned down ...; that answer, like every answer not
 * returned (a losing hedge, a body that failed `validate`), is released"; hedge: "the first acceptable answer wins
 * and the others are aborted (their upstreams see the connection closed)"); SECURITY.md ("a larger one, or a
 * stream, is sent once on every path (chain, rewrite, hedge), with a `replay` event"; "Nothing outlives its call":
 * "every timer is cleared when its call settles, but housekeeping, under `unref`'d timers"); README.md
 * (`resilience.fetch` "rejects when it has none, or when the call is aborted or its `timeout.total` passes";
 * "never buffers your streamed responses"); docs/cloudflare.md ("The client's body goes on as a stream").
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `resilientProxy` (./cloudflare, run
 * in Node over plain fetch), `createClient` (./ky); node:http servers on 127.0.0.1 that trickle, stall, reset or
 * pump an endless body, counting their sockets and watching each exchange's close; `watchUnhandled`
 * (test/helpers/unhandled.ts); `process.getActiveResourcesInfo()` for ref'd timers.
 * Paths: plain call, retried call, chain (first endpoint, after a fallback), hedged chain (loser before headers,
 * loser mid-`validate`, winner streaming), `validate` (trickling, stalled, reset, huge, total-only), the Worker
 * proxy (upstream route, chain route, streamed upload), the ky client (`signal`, `onDownloadProgress`), streamed
 * request bodies (`ReadableStream` init body, `Request` on a stream within and past `maxReplayBytes`, one that
 * stalls during the read-ahead).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * since, plain `it`: 1 fixed, an answer whose body `validate` stopped reading keeps its clone until both halves go,
 * so an abort leaves no unhandled rejection; 2 made exact in SECURITY.md):
 * 1. docs/fallback.md "An abort, or `timeout.total` passing, rejects the call with the caller's reason or the
 *    `TimeoutError` even when an earlier endpoint's answer was turned down ...; that answer, like every answer not
 *    returned (..., a body that failed `validate`), is released" (with README.md: the call "rejects when ... the
 *    call is aborted or its `timeout.total` passes"). Observed: the call does reject with the right reason and the
 *    turned-down answer's connection does close, but the same reason ALSO surfaces as an unhandled rejection (a
 *    crash under Node's default `--unhandled-rejections=throw`). Deterministic on three paths: (a) a caller's abort
 *    while the chain waits on the next endpoint after `validate` turned an answer down; (b) `timeout.total`
 *    passing there; (c) a single-endpoint chain that resolves with the turned-down answer (the "last response"),
 *    whose caller aborts before reading it. Also seen intermittently with `timeout.total` alone when the validate
 *    bound (what is left of the total) fires just before the deadline and the next endpoint is tried.
 *    Mechanism: `validateResponse` reads `response.clone()` (src/fallback/validate-response.ts:27), so the answer's
 *    body becomes one branch of a tee, and on failure cancels the clone's branch (line 89); the answer kept for
 *    the caller (or as `lastRejected`) is the other branch, unlocked. When the call's signal then aborts, Node's
 *    undici `abortFetch` runs `response.body.stream.cancel(reason).catch(err => { if (err.code ===
 *    "ERR_INVALID_STATE") return; throw err; })`: with the sibling branch already cancelled, the branch's cancel
 *    cancels the errored source and rejects with the reason, which undici rethrows into a promise nobody handles.
 *    Reproduced with plain fetch (`res.clone()`, cancel the clone, abort the signal with the original unread):
 *    same unhandled rejection; without the clone, none. A body being read (locked) is not affected.
 * 2. SECURITY.md "a larger one, or a stream, is sent once on every path (chain, rewrite, hedge), with a `replay`
 *    event". Observed: a `ReadableStream` init body is sent once (held), but no `replay` event fires; the event is
 *    emitted only for a body measured past `maxReplayBytes` (`request.replay.oversize`, src/http/resilient-fetch.ts:132),
 *    as docs/health-and-events.md says ("`replay` when a body was too large to keep for retries"): the two docs
 *    disagree.
 *
 * Held (plain `it`):
 * - A body trickling past `timeout.attempt` and `timeout.total` is read whole (plain call; after a retry and a
 *   fallback); a body that stalls after the headers is not cut by the timeouts (the read stays pending 200 ms past
 *   the total) until the caller aborts, which rejects the read with the caller's own reason and closes the
 *   upstream connection.
 * - A caller's abort mid-body rejects the pending read with its reason (same object) and the server sees the
 *   connection closed: plain, with timeouts (linked signal), chain, chain after a fallback, hedged chain.
 * - `validate`: a valid JSON body trickling in within `timeout.attempt` passes and reaches the caller whole; one
 *   that stalls fails at `timeout.attempt` (chain moves on, the stalled connection closes within the 1 s drain);
 *   one whose connection resets fails at once; an endless body fails past `maxReplayBytes` (4 KiB) and its
 *   connection closes with under 8 MiB pumped; with only `timeout.total` a stalled body ends the call with a
 *   `TimeoutError` at the deadline.
 * - Hedge (delay 50 ms): a loser with no headers yet, and a loser whose body `validate` was still reading, are
 *   closed at their server; the winner's stream keeps flowing chunk by chunk after the loser was aborted.
 * - An answer turned down by `validate` and returned as the last answer: a caller's abort mid-read rejects the
 *   read with its reason, closes the upstream, nothing unhandled.
 * - Worker proxy (Node, plain fetch): upstream and chain routes stream chunk by chunk past `timeout.total`; the
 *   client's abort closes the upstream connection; a 64 KiB streamed upload reaches the upstream whole.
 * - ky client: chunks arrive before the body ends (no buffering) past the layer's timeouts; a ky `signal` abort
 *   mid-body rejects the read with its reason and closes the upstream; `onDownloadProgress` sees the trickle.
 * - Request bodies: a `ReadableStream` init body goes once (a 503 not retried, even with an `Idempotency-Key`);
 *   a `Request` on a stream within `maxReplayBytes` is read once and replayed on retry; one past it goes once,
 *   whole and in order, with a `replay` event; one that stalls during the read-ahead ends at `timeout.total`
 *   (`TimeoutError`), its source cancelled, nothing sent.
 * - No ref'd timer outlives streamed calls (read, aborted after settling, failed validation); a stalled body a
 *   chain dropped is closed at its server within the drain bound.
 *
 * Not a defect (undici's, seen with plain fetch too): after a body is cancelled mid-stream, undici opens a fresh
 *   idle connection to the same origin; the tests close those between tests.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type StandardSchemaLike } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { rejection } from "../helpers/settled.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

// ---------------------------------------------------------------------------
// A node:http server per origin, counting its open sockets; each test sets a handler.

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

interface Origin {
  base: string;
  /** Sockets open right now on the server side. */
  open(): number;
  hits: Array<{ path: string; method: string; body: Buffer; res: ServerResponse; closed: Promise<void> }>;
  on(handler: Handler): void;
  /** Resolves with the `n`th request (1-based) once its body arrived. */
  nth(n: number): Promise<Origin["hits"][number]>;
  start(): Promise<void>;
  stop(): void;
  reset(): void;
}

function origin(): Origin {
  const sockets = new Set<Socket>();
  let handler: Handler = (_req, res) => res.end("ok");
  const waiters: Array<() => void> = [];
  let server: Server;
  const self: Origin = {
    base: "",
    hits: [],
    open: () => sockets.size,
    on(next) {
      handler = next;
    },
    nth(n) {
      return new Promise((resolve) => {
        const check = (): void => {
          const hit = self.hits[n - 1];
          if (hit) resolve(hit);
          else waiters.push(check);
        };
        check();
      });
    },
    async start() {
      server = createServer((req, res) => {
        const closed = once(res, "close").then(() => undefined);
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const body = Buffer.concat(chunks);
          self.hits.push({ path: req.url ?? "", method: req.method ?? "", body, res, closed });
          for (const w of waiters.splice(0)) w();
          handler(req, res, body);
        });
      });
      server.on("connection", (socket: Socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
      });
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      self.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    stop() {
      server.closeAllConnections();
      server.close();
    },
    reset() {
      self.hits.length = 0;
      waiters.length = 0;
      handler = (_req, res) => res.end("ok");
      // Each test starts with no pooled connection, so counts are its own.
      server.closeAllConnections();
    },
  };
  return self;
}

const a = origin();
const b = origin();
const c = origin();
beforeAll(async () => {
  await Promise.all([a.start(), b.start(), c.start()]);
});
afterAll(() => {
  for (const o of [a, b, c]) o.stop();
});
beforeEach(async () => {
  for (const o of [a, b, c]) o.reset();
  // undici opens a fresh idle connection after a cancelled body: close those too.
  await until(() => {
    for (const o of [a, b, c]) o.reset();
    return a.open() + b.open() + c.open() === 0;
  });
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `test` every 5 ms for up to `ms`; true once it held. */
async function until(test: () => boolean, ms = 1_500): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (test()) return true;
    await sleep(5);
  }
  return test();
}

/** Resolves when the server-side response's connection closed; false when it stayed open `ms`. */
const closedWithin = (closed: Promise<void>, ms = 1_500): Promise<boolean> =>
  Promise.race([closed.then(() => true), sleep(ms).then(() => false)]);

/** Headers at once, then `chunks` one by one `every` ms; ends unless `stall`. */
function trickle(chunks: string[], every: number, opts: { stall?: boolean; reset?: boolean; status?: number } = {}) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(opts.status ?? 200, { "content-type": "text/event-stream" });
    res.flushHeaders();
    let i = 0;
    const next = (): void => {
      if (res.destroyed) return;
      if (i < chunks.length) {
        res.write(chunks[i++]);
        setTimeout(next, every);
      } else if (opts.reset) res.destroy();
      else if (!opts.stall) res.end();
    };
    next();
  };
}

const decoder = new TextDecoder();

/** Reads the whole body as text. */
async function readAll(res: Response): Promise<string> {
  return await res.text();
}

/** Ref'd timers now (unref'd housekeeping is not counted by Node). */
const refTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

const events = ["data: 1\n\n", "data: 2\n\n", "data: 3\n\n", "data: 4\n\n", "data: 5\n\n"];

/** A Standard Schema: an object with `ok: true`. */
const okSchema: StandardSchemaLike = {
  "~standard": {
    version: 1,
    vendor: "test",
    validate: (value: unknown) =>
      typeof value === "object" && value !== null && (value as { ok?: unknown }).ok === true
        ? { value }
        : { issues: [{ message: "not ok" }] },
  },
};

// ---------------------------------------------------------------------------

describe("timeouts while the caller reads a body", () => {
  it("a body that trickles past timeout.attempt and timeout.total is read whole (plain call)", async () => {
    a.on(trickle(events, 40));
    const layer = createResilience({ timeout: { attempt: 60, total: 100 }, retry: false });
    const res = await layer.fetch(`${a.base}/v1/chat`);
    expect(await readAll(res)).toBe(events.join(""));
  });

  it("a body that trickles past both timeouts is read whole after retries and down a chain", async () => {
    let n = 0;
    a.on((req, res, body) => {
      n++;
      if (n === 1) {
        res.writeHead(503).end();
        return;
      }
      trickle(events, 40)(req, res);
      void body;
    });
    const layer = createResilience({
      timeout: { attempt: 80, total: 150 },
      retry: { initialDelay: 1, jitter: "none" },
      fallback: fallback([
        {
          name: "text",
          endpoints: [
            { name: "b", url: `${b.base}/v1` },
            { name: "a", url: `${a.base}/v1` },
          ],
        },
      ]),
    });
    b.on((_req, res) => res.writeHead(503).end());
    const res = await layer.fetch(`${b.base}/v1/chat`);
    expect(getResilienceInfo(res)?.fromFallback).toBe(true);
    expect(await readAll(res)).toBe(events.join(""));
  });

  it("a body that stalls is not cut by timeout.total: the read stays pending until the caller aborts", async () => {
    a.on(trickle(events.slice(0, 1), 10, { stall: true }));
    const caller = new AbortController();
    const layer = createResilience({ timeout: { attempt: 30, total: 60 }, retry: false });
    const res = await layer.fetch(`${a.base}/v1/chat`, { signal: caller.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(decoder.decode((await reader.read()).value)).toBe(events[0]);
    const pending = reader.read();
    const state = await Promise.race([
      pending.then(
        () => "read",
        () => "rejected",
      ),
      sleep(200).then(() => "pending"),
    ]);
    expect(state).toBe("pending");
    const reason = new Error("user closed the tab");
    caller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    const hit = await a.nth(1);
    expect(await closedWithin(hit.closed)).toBe(true);
  });
});

describe("a caller's abort mid-body", () => {
  const paths = {
    plain: () => createResilience({ retry: false }),
    "with timeouts": () => createResilience({ retry: false, timeout: { attempt: 5_000, total: 10_000 } }),
    chain: () =>
      createResilience({
        timeout: { total: 10_000 },
        fallback: fallback([
          {
            name: "t",
            endpoints: [
              { name: "a", url: `${a.base}/v1` },
              { name: "b", url: `${b.base}/v1` },
            ],
          },
        ]),
      }),
    "chain after a fallback": () =>
      createResilience({
        retry: false,
        fallback: fallback([
          {
            name: "t",
            endpoints: [
              { name: "c", url: `${c.base}/v1` },
              { name: "a", url: `${a.base}/v1` },
            ],
          },
        ]),
      }),
    hedge: () =>
      createResilience({
        fallback: fallback([
          {
            name: "t",
            hedge: { delay: 5_000 },
            endpoints: [
              { name: "a", url: `${a.base}/v1` },
              { name: "b", url: `${b.base}/v1` },
            ],
          },
        ]),
      }),
  } as const;
  for (const [name, make] of Object.entries(paths)) {
    it(`rejects the read with the caller's reason and closes the upstream connection (${name})`, async () => {
      c.on((_req, res) => res.writeHead(503).end());
      const stream = trickle(['{"ok": true, "pad": "', "x", "y"], 20, { stall: true });
      a.on(stream);
      const layer = make();
      const caller = new AbortController();
      const url = name === "chain after a fallback" ? `${c.base}/v1/chat` : `${a.base}/v1/chat`;
      const res = await layer.fetch(url, { signal: caller.signal });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      const pending = reader.read();
      const reason = new Error("stop generating");
      caller.abort(reason);
      expect(await rejection(pending)).toBe(reason);
      const hit = await a.nth(1);
      expect(await closedWithin(hit.closed)).toBe(true);
    });
  }
});

describe("validate on a streamed body", () => {
  const chain = (opts: { attempt?: number; total?: number; maxReplayBytes?: number } = {}) =>
    createResilience({
      retry: false,
      ...(opts.maxReplayBytes ? { maxReplayBytes: opts.maxReplayBytes } : {}),
      timeout: {
        ...(opts.attempt ? { attempt: opts.attempt } : {}),
        ...(opts.total ? { total: opts.total } : {}),
      },
      fallback: fallback([
        {
          name: "t",
          endpoints: [
            { name: "a", url: `${a.base}/v1`, validate: okSchema },
            { name: "b", url: `${b.base}/v1` },
          ],
        },
      ]),
    });

  it("a valid JSON body that trickles in within timeout.attempt passes and reaches the caller whole", async () => {
    const parts = ['{"ok":', " true,", ' "text": "', "hello", '"}'];
    a.on(trickle(parts, 20));
    b.on((_req, res) => res.end("spare"));
    const res = await chain({ attempt: 1_000 }).fetch(`${a.base}/v1/chat`);
    expect(getResilienceInfo(res)?.endpoint).toBe("a");
    expect(await res.text()).toBe(parts.join(""));
    expect(b.hits.length).toBe(0);
  });

  it("a body that stalls mid-way fails validation at timeout.attempt; the chain moves on; the stalled connection closes", async () => {
    a.on(trickle(['{"ok": tr'], 10, { stall: true }));
    b.on((_req, res) => res.end("spare"));
    const started = Date.now();
    const res = await chain({ attempt: 100 }).fetch(`${a.base}/v1/chat`);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(await res.text()).toBe("spare");
    expect(await closedWithin((await a.nth(1)).closed)).toBe(true);
  });

  it("a body whose connection resets mid-way fails validation and the chain moves on", async () => {
    a.on(trickle(['{"ok": tr'], 10, { reset: true }));
    b.on((_req, res) => res.end("spare"));
    const started = Date.now();
    const res = await chain({ attempt: 2_000 }).fetch(`${a.base}/v1/chat`);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(await res.text()).toBe("spare");
  });

  it("a huge body fails validation past maxReplayBytes without being read whole; its connection closes", async () => {
    let sent = 0;
    a.on((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"ok": true, "pad": "');
      const pump = (): void => {
        // An endless body: a video endpoint answering on the JSON route.
        while (!res.destroyed && sent < 50 * 1024 * 1024 && res.write("x".repeat(16 * 1024))) sent += 16 * 1024;
        if (!res.destroyed && sent < 50 * 1024 * 1024) res.once("drain", pump);
      };
      pump();
    });
    b.on((_req, res) => res.end("spare"));
    const res = await chain({ attempt: 5_000, maxReplayBytes: 4_096 }).fetch(`${a.base}/v1/chat`);
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(await closedWithin((await a.nth(1)).closed)).toBe(true);
    expect(sent).toBeLessThan(8 * 1024 * 1024);
  });

  it("with timeout.total only, a stalled body is judged within what is left of it: the call rejects with TimeoutError at the deadline", async () => {
    a.on(trickle(['{"ok": tr'], 10, { stall: true }));
    b.on((_req, res) => res.end("spare"));
    const started = Date.now();
    // Caught here, not asserted: when the validate bound (what is left of the total) fires a hair before the
    // deadline, `b` is tried and the deadline's abort can leave an unhandled rejection (pinned deterministically
    // below, "kept while the chain moves on").
    const { value: error } = await watchUnhandled(() => rejection(chain({ total: 150 }).fetch(`${a.base}/v1/chat`)));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect((error as Error).name).toBe("TimeoutError");
    expect(await closedWithin((await a.nth(1)).closed)).toBe(true);
  });
});

describe("hedged chains with streamed answers", () => {
  const hedged = (validate: boolean) =>
    createResilience({
      retry: false,
      timeout: { attempt: 5_000 },
      fallback: fallback([
        {
          name: "t",
          hedge: { delay: 50 },
          endpoints: [
            { name: "a", url: `${a.base}/v1`, ...(validate ? { validate: okSchema } : {}) },
            { name: "b", url: `${b.base}/v1` },
          ],
        },
      ]),
    });

  it("the losing endpoint whose headers never came is aborted: its server sees the connection closed", async () => {
    a.on(() => {}); // never answers
    b.on(trickle(events, 10));
    const res = await hedged(false).fetch(`${a.base}/v1/chat`);
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(await closedWithin((await a.nth(1)).closed)).toBe(true);
    expect(await res.text()).toBe(events.join(""));
  });

  it("the losing endpoint whose body validate was still reading is released: its connection closes", async () => {
    a.on(trickle(['{"ok": tr'], 10, { stall: true }));
    b.on(trickle(events, 10));
    const res = await hedged(true).fetch(`${a.base}/v1/chat`);
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(await closedWithin((await a.nth(1)).closed)).toBe(true);
    expect(await res.text()).toBe(events.join(""));
  });

  it("the winner's stream keeps flowing after the loser was aborted, chunk by chunk", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    a.on(() => {});
    b.on((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(events[0]);
      void gate.then(() => res.end(events[1]));
    });
    const res = await hedged(false).fetch(`${a.base}/v1/chat`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(decoder.decode((await reader.read()).value)).toBe(events[0]);
    await sleep(100);
    release();
    expect(decoder.decode((await reader.read()).value)).toBe(events[1]);
    expect((await reader.read()).done).toBe(true);
  });
});

describe("an answer turned down by validate, kept while the chain moves on, then the call ends", () => {
  // `a` answers 200 with more than maxReplayBytes and then stalls: validate turns it down at once (size), the
  // answer is kept (a chain whose every endpoint failed resolves with the last answer), and `b` hangs.
  for (const how of ["caller abort", "timeout.total"] as const) {
    it(`rejects with the ${how === "caller abort" ? "caller's reason" : "TimeoutError"} and nothing else: no unhandled rejection (${how})`, async () => {
      a.on(trickle(['{"ok": true, "pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'], 10, { stall: true }));
      b.on(() => {});
      const layer = createResilience({
        retry: false,
        maxReplayBytes: 16,
        ...(how === "timeout.total" ? { timeout: { total: 150 } } : {}),
        fallback: fallback([
          {
            name: "t",
            endpoints: [
              { name: "a", url: `${a.base}/v1`, validate: okSchema },
              { name: "b", url: `${b.base}/v1` },
            ],
          },
        ]),
      });
      const caller = new AbortController();
      const reason = new Error("caller gave up");
      const { value: error, unhandled } = await watchUnhandled(async () => {
        const call = rejection(layer.fetch(`${a.base}/v1/chat`, { signal: caller.signal }));
        await b.nth(1);
        if (how === "caller abort") caller.abort(reason);
        return await call;
      });
      if (how === "caller abort") expect(error).toBe(reason);
      else expect((error as Error).name).toBe("TimeoutError");
      expect(await closedWithin((await a.nth(1)).closed)).toBe(true);
      expect(unhandled).toEqual([]);
    });
  }
});

describe("an answer turned down by validate and returned as the last answer", () => {
  for (const reading of [true, false]) {
    it(`a caller's later abort ${reading ? "mid-read" : "before reading"} closes the upstream and leaves no unhandled rejection`, async () => {
      a.on(trickle(['{"ok": true, "pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'], 10, { stall: true }));
      const layer = createResilience({
        retry: false,
        maxReplayBytes: 16,
        fallback: fallback([{ name: "t", endpoints: [{ name: "a", url: `${a.base}/v1`, validate: okSchema }] }]),
      });
      const caller = new AbortController();
      const reason = new Error("caller gave up");
      const { value: read, unhandled } = await watchUnhandled(async () => {
        const res = await layer.fetch(`${a.base}/v1/chat`, { signal: caller.signal });
        expect(getResilienceInfo(res)?.endpoint).toBe("a");
        const pending = reading ? rejection(res.text()) : undefined;
        await sleep(20);
        caller.abort(reason);
        // Unread, the body is cancelled by the abort as plain fetch's is (undici: "Body is unusable").
        return await (pending ?? reason);
      });
      expect(read).toBe(reason);
      expect(await closedWithin((await a.nth(1)).closed)).toBe(true);
      expect(unhandled).toEqual([]);
    });
  }
});

describe("the Worker proxy passing a stream through (in Node, plain fetch)", () => {
  const ctx = { waitUntil: (p: Promise<unknown>) => void p.catch(() => {}) };
  const makeProxy = () =>
    resilientProxy<object>({
      routes: [
        { path: "/v1/text", upstream: `${a.base}/v1` },
        {
          path: "/v1/chain",
          chain: {
            name: "pc",
            endpoints: [
              { name: "c", url: `${c.base}/v1` },
              { name: "a", url: `${a.base}/v1` },
            ],
          },
        },
      ],
      resilience: { retry: false, timeout: { attempt: 60, total: 100 } },
    });

  for (const path of ["/v1/text", "/v1/chain"]) {
    it(`streams chunk by chunk past the timeouts, and a client's disconnect closes the upstream (${path})`, async () => {
      c.on((_req, res) => res.writeHead(503).end());
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      a.on((_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(events[0]);
        void gate.then(() => res.write(events[1]));
      });
      const proxy = makeProxy();
      const client = new AbortController();
      const res = await proxy.fetch(new Request(`https://w.example${path}/chat`, { signal: client.signal }), {}, ctx);
      expect(res.status).toBe(200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      expect(decoder.decode((await reader.read()).value)).toBe(events[0]);
      await sleep(150); // past timeout.total
      release();
      expect(decoder.decode((await reader.read()).value)).toBe(events[1]);
      const pending = reader.read();
      const reason = new Error("client went away");
      client.abort(reason);
      await rejection(pending);
      expect(await closedWithin((await a.nth(1)).closed)).toBe(true);
    });
  }

  it("a client's streamed upload goes on to the upstream whole", async () => {
    a.on((_req, res, body) => res.end(`got ${body.length}`));
    const proxy = makeProxy();
    const size = 64 * 1024;
    let pulled = 0;
    const upload = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= size) return controller.close();
        controller.enqueue(new Uint8Array(8 * 1024).fill(120));
        pulled += 8 * 1024;
      },
    });
    const req = new Request(`https://w.example/v1/text/up`, {
      method: "POST",
      body: upload,
      duplex: "half",
    } as RequestInit);
    const res = await proxy.fetch(req, {}, ctx);
    expect(await res.text()).toBe(`got ${size}`);
  });
});

describe("the ky client reading a stream", () => {
  it("gets the body chunk by chunk, not buffered, and a ky signal's abort mid-body closes the upstream", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    a.on((_req, res) => {
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.write('{"n":1}\n');
      void gate.then(() => res.write('{"n":2}\n'));
    });
    const api = createClient({ prefix: a.base, resilience: { retry: false, timeout: { attempt: 50, total: 80 } } });
    const caller = new AbortController();
    const res = await api.get("v1/stream", { signal: caller.signal });
    expect(getResilienceInfo(res)?.attempts).toBe(1);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(decoder.decode((await reader.read()).value)).toBe('{"n":1}\n');
    await sleep(120);
    release();
    expect(decoder.decode((await reader.read()).value)).toBe('{"n":2}\n');
    const pending = reader.read();
    const reason = new Error("ky caller gave up");
    caller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    expect(await closedWithin((await a.nth(1)).closed)).toBe(true);
  });

  it("onDownloadProgress sees the chunks of a trickling body", async () => {
    a.on(trickle(events, 20));
    const api = createClient({ prefix: a.base, resilience: { retry: false, timeout: { total: 50 } } });
    const seen: number[] = [];
    const text = await api.get("v1/stream", { onDownloadProgress: (p) => void seen.push(p.transferredBytes) }).text();
    expect(text).toBe(events.join(""));
    expect(seen.filter((n) => n > 0).length).toBeGreaterThanOrEqual(3);
  });
});

describe("streamed request bodies and maxReplayBytes", () => {
  const streamOf = (parts: string[]): ReadableStream<Uint8Array> => {
    let i = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (i < parts.length) controller.enqueue(new TextEncoder().encode(parts[i++]));
        else controller.close();
      },
    });
  };

  const sendStream = async () => {
    a.on((_req, res) => res.writeHead(503).end());
    const layer = createResilience({ retry: { initialDelay: 1, idempotencyKey: true } });
    const replays: unknown[] = [];
    layer.on("replay", (e) => replays.push(e));
    const res = await layer.fetch(`${a.base}/v1/upload`, {
      method: "PUT",
      body: streamOf(["abc", "def"]),
      duplex: "half",
    } as RequestInit);
    return { status: res.status, replays };
  };

  it("a ReadableStream body is sent once: a 503 is not retried", async () => {
    const { status } = await sendStream();
    expect(status).toBe(503);
    expect(a.hits.map((h) => h.body.toString())).toEqual(["abcdef"]);
  });

  // Made exact in SECURITY.md instead: the `replay` event is for a body measured past `maxReplayBytes`
  // (docs/health-and-events.md); a stream, whose size is not known, goes once without one.
  it("a ReadableStream body is sent once without a `replay` event, which is for a body measured too large", async () => {
    const { replays } = await sendStream();
    expect(replays.length).toBe(0);
  });

  it("a Request built on a stream within maxReplayBytes is read once and replayed on retry", async () => {
    let n = 0;
    a.on((_req, res) => (++n === 1 ? res.writeHead(503).end() : res.end("ok")));
    const layer = createResilience({ retry: { initialDelay: 1, jitter: "none" } });
    const req = new Request(`${a.base}/v1/upload`, {
      method: "PUT",
      body: streamOf(["abc", "def"]),
      duplex: "half",
    } as RequestInit);
    const res = await layer.fetch(req);
    expect(res.status).toBe(200);
    expect(a.hits.map((h) => h.body.toString())).toEqual(["abcdef", "abcdef"]);
  });

  it("a Request built on a stream past maxReplayBytes goes once, whole and in order; a 503 is not retried", async () => {
    a.on((_req, res) => res.writeHead(503).end());
    const layer = createResilience({ maxReplayBytes: 8, retry: { initialDelay: 1 } });
    const replays: Array<{ limit: number }> = [];
    layer.on("replay", (e) => replays.push(e));
    const parts = ["0123456", "789abcd", "efghijk", "lmnop"];
    const req = new Request(`${a.base}/v1/upload`, {
      method: "PUT",
      body: streamOf(parts),
      duplex: "half",
    } as RequestInit);
    const res = await layer.fetch(req);
    expect(res.status).toBe(503);
    expect(a.hits.map((h) => h.body.toString())).toEqual([parts.join("")]);
    expect(replays.map((e) => e.limit)).toEqual([8]);
  });

  it("a Request upload that stalls during the read-ahead ends at timeout.total, its source cancelled, nothing sent", async () => {
    let cancelled = false;
    const stalled = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("abc"));
      },
      cancel() {
        cancelled = true;
      },
    });
    const layer = createResilience({ timeout: { total: 80 } });
    const req = new Request(`${a.base}/v1/upload`, { method: "PUT", body: stalled, duplex: "half" } as RequestInit);
    const started = Date.now();
    const error = await rejection(layer.fetch(req));
    expect((error as Error).name).toBe("TimeoutError");
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await until(() => cancelled, 500)).toBe(true);
    expect(a.hits.length).toBe(0);
  });
});

describe("nothing left running", () => {
  it("no ref'd timer and no server socket outlive streamed calls that were read, aborted or failed validation", async () => {
    const before = refTimers();
    a.on(trickle(events, 5));
    b.on(trickle(['{"ok": tr'], 5, { stall: true }));
    c.on((_req, res) => res.end('{"ok": true}'));
    const layer = createResilience({
      timeout: { attempt: 100, total: 1_000 },
      fallback: fallback([
        {
          name: "v",
          endpoints: [
            { name: "b", url: `${b.base}/v1`, validate: okSchema },
            { name: "c", url: `${c.base}/v1` },
          ],
        },
      ]),
    });
    expect(await (await layer.fetch(`${a.base}/v1/x`)).text()).toBe(events.join(""));
    const caller = new AbortController();
    const res = await layer.fetch(`${b.base}/v1/x`, { signal: caller.signal });
    expect(await res.text()).toBe('{"ok": true}');
    caller.abort();
    expect(await until(() => refTimers() <= before, 500)).toBe(true);
    // b's stalled answer is cancelled within the 1 s drain bound.
    expect(await closedWithin((await b.nth(1)).closed)).toBe(true);
  });
});
