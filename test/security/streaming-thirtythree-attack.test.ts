/**
 * Outside-in attack on streaming: Server-Sent Events for text tokens, progress streams and large binary bodies in
 * answers, and streamed request bodies, as generation APIs use them, on every path.
 * Docs: README.md ("never buffers your streamed responses"); docs/retry.md ("Neither bounds reading the body of the
 * response you get: that read is yours, under your own signal"; "Response bodies are never buffered or cloned: a
 * streamed (SSE, chunked video) response reaches you chunk by chunk"; "The body of a response nobody will read (one
 * the layer retries past, a redirect it follows, a fallback answer it rejects, a hedge that lost) is drained in the
 * background when it is small (up to 64 KiB, within 1 s), so the connection goes back to the keep-alive pool, and
 * cancelled otherwise"; "when the layer itself refuses the retry (the host's breaker opened during the wait ...),
 * the call settles with that response, body intact (one too large or too slow to keep is not: the call then rejects
 * with the refusal)"; "A `ReadableStream` body, or one larger than `maxReplayBytes`, is sent once on every path: no
 * retry, no next endpoint, no hedge, no 307/308, whatever rules or a `transform` rewrite it"; "past the limit, what
 * was read and the rest of the stream are sent once, as one stream (an endless upload is never buffered)";
 * "`duplex: "half"` is added for stream bodies where the caller left it out"; "303 turns anything but GET/HEAD into
 * a GET (body and its headers dropped)"; "the signal such a call hands its transport follows yours after the call
 * settled ... so aborting then still cancels a body being read"; ky: "every body sent through ky, which hands its
 * transport a `Request`, is measured in the bytes it sends", "`onDownloadProgress` a new response around the
 * layer's body"); docs/fallback.md ("`validate` reads at most `maxReplayBytes` of the body, within
 * `timeout.attempt`"; a keyless POST's 2xx that fails `validate`: "the call resolves with that answer as it is";
 * "A body sent once (a stream, or larger than `maxReplayBytes`) goes to one endpoint only"; hedge: "the others are
 * aborted"); docs/degradation.md (a stream body "goes once, as it is, unread"); docs/breakers.md ("a slot is held
 * until response headers arrive (a streamed body does not hold it)"); docs/health-and-events.md (`request` "fires
 * once per call ... when it settles"; `replay` "when a body was too large to keep for retries"); SECURITY.md
 * ("Buffered bodies are bounded": "a larger one (with a `replay` event), or a stream, is sent once on every path
 * (chain, rewrite, hedge)").
 * How: `createResilience`, `getResilienceInfo`, `on`, `health`, `execute` (root), `fallback` (./fallback), including
 * `validate`, `hedge`, `transform` and `respond`, `degradation` (./degradation), `createClient` (./ky); node:http
 * servers on 127.0.0.1 whose handlers run when a request's headers arrive: answers in lockstep (event `i + 1` is
 * written only once the client read event `i`, so a layer holding the body back would deadlock), answers trickling
 * 40 ms apart with write and arrival times taken on `performance.now()`, a firehose counting the bytes it got
 * written while the client stops reading (backpressure; plain `fetch` as the baseline: about 4-6 MiB of socket and
 * undici buffers), endless bodies, and uploads in lockstep (the client's stream hands over chunk `i + 1` only once
 * the server received chunk `i`); each exchange's close watched on the server.
 * Paths: plain call; retried call under both timeouts; chain (first endpoint, after a fallback, whose other
 * endpoint validates); hedged chain (hedge wins; first endpoint wins after the hedge started); an answer `validate`
 * turned down, given as it is; redirect followed by the library; degradation rewrite; `Request` input; `execute`;
 * ky client (plain and with `onDownloadProgress`); a `respond` endpoint; streamed uploads (init `ReadableStream` with
 * and without `duplex`, `Request` on a stream past `maxReplayBytes`, ky upload) through plain calls, a hedged chain
 * with a rewrite, `transform`, 303 and 307 redirects.
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - On all 14 response paths, each SSE event reaches the caller while the server holds the next one back
 *   (lockstep); with events 40 ms apart and `timeout: { attempt: 100, total: 120 }`, every event arrives before the
 *   server writes the next and the body is read whole past both timeouts. The one documented exception: on the
 *   answer `validate` turned down, the events `validate` read (up to `timeout.attempt`) arrive together when it
 *   stops; the later ones arrive as sent.
 * - Backpressure on all 14 paths: once the caller stops reading, the server stalls at the same ~4 MiB of buffers as
 *   plain fetch (no path adds buffering; on the turned-down `validate` answer the tee holds at most
 *   `maxReplayBytes` more, as documented, 64 KiB in the test).
 * - Cancelling the reader closes the server's exchange on all 14 paths; the caller's abort mid-body rejects the
 *   pending read with the caller's own reason and closes the exchange on all 14 (ky and `execute` included).
 * - Bodies nobody reads: a retried-past 503 whose body never ends does not delay the retry and its connection closes
 *   within the 1 s drain bound; one with a large body closes at once; a small one is drained and the retry reuses
 *   its connection (one socket on a fresh origin); a redirect's endless body and a chain's endless 503 close within
 *   the bound. A 1 KiB 503 kept while the breaker opens during the wait is given with its body intact; a 100 KiB one
 *   is not (the call rejects).
 * - Uploads: an init `ReadableStream` (with or without `duplex`) reaches the server chunk by chunk, also through a
 *   hedged chain with a rewrite and timeouts (to one endpoint, no hedge); a `Request` on a stream past
 *   `maxReplayBytes` goes as one stream chunk by chunk, with one `replay` event. Both kinds are sent once: a 503 is
 *   not retried even with an `Idempotency-Key` (no `retry` event, `attempts` 1, the server got all 4,096 bytes), a
 *   hedged chain neither hedges nor moves on after a timeout, a 307 rejects with a `TypeError` cause and nothing
 *   reaches its target; a `transform` that replaces a stream body leaves it sent once (no next endpoint); a 303 is
 *   followed as a GET without the body. A caller's abort or `timeout.total` mid-upload rejects with the reason (or
 *   `TimeoutError` of phase `total`) and closes the connection on plain and chain paths.
 * - ky uploads: a `ReadableStream` body goes as a `Request`'s, read ahead within `maxReplayBytes` and replayed on a
 *   503 with a key; past the limit it goes once.
 * - Events and health: the `request` event fires at the headers (status 200, attempts 1) while the server has
 *   written only the first event; a body that breaks mid-stream or that the caller cancels counts as the success
 *   its headers were (health `healthy`, error rate 0, breaker closed with no failure); a bulkhead of one slot lets
 *   a second call run while the first still streams (`active` 0).
 * - A `respond` endpoint's stream reaches the caller chunk by chunk, and the caller's cancel reaches its source with
 *   the caller's reason.
 *
 * Not the layer's (seen with plain fetch too, so not asserted): when an upload is cut mid-way by an abort, Node's
 * undici closes the connection but never calls the body stream's `cancel`, so the source of a `ReadableStream` upload
 * stays open until collected. The docs' "cancels it, so the stream's source closes" covers only calls that end
 * without sending the body.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  type RequestEvent,
  type ResilienceOptions,
  type StandardSchemaLike,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { rejection } from "../helpers/settled.ts";

// ---------------------------------------------------------------------------
// Servers: a node:http server per origin whose handler runs when a request's headers arrive (so an upload can be
// watched as it streams), counting open sockets and each exchange's close.

interface Exchange {
  n: number;
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  req: IncomingMessage;
  res: ServerResponse;
  /** Settles when this exchange's connection closes (or its response ended and the socket went away). */
  closed: Promise<void>;
  isClosed(): boolean;
  /** The request body, read whole. */
  body(): Promise<Buffer>;
}

type Handler = (ex: Exchange) => void | Promise<void>;

function origin() {
  const sockets = new Set<Socket>();
  const hits: Exchange[] = [];
  let handler: Handler = (ex) => void ex.body().then(() => ex.res.end("ok"));
  const server = createServer((req, res) => {
    let closedNow = false;
    // A response whose body the client cancels: the socket closes (undici destroys it), `res` emits close.
    const closed = once(res, "close").then(() => {
      closedNow = true;
    });
    let read: Promise<Buffer> | undefined;
    const ex: Exchange = {
      n: hits.length + 1,
      method: req.method ?? "",
      path: req.url ?? "",
      headers: req.headers,
      req,
      res,
      closed,
      isClosed: () => closedNow,
      body() {
        read ??= new Promise<Buffer>((resolve) => {
          const chunks: Buffer[] = [];
          req.on("data", (c: Buffer) => chunks.push(c));
          req.on("end", () => resolve(Buffer.concat(chunks)));
          req.on("error", () => resolve(Buffer.concat(chunks)));
        });
        return read;
      },
    };
    hits.push(ex);
    void handler(ex);
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  const self = {
    hits,
    base: "",
    open: () => sockets.size,
    on(next: Handler) {
      handler = next;
    },
    reset() {
      hits.length = 0;
      handler = (ex) => void ex.body().then(() => ex.res.end("ok"));
    },
    async start() {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      self.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    stop() {
      server.closeAllConnections();
      server.close();
    },
  };
  return self;
}

const a = origin();
const b = origin();
beforeAll(async () => {
  await Promise.all([a.start(), b.start()]);
});
afterAll(() => {
  a.stop();
  b.stop();
});
beforeEach(() => {
  a.reset();
  b.reset();
});

// ---------------------------------------------------------------------------
// Tools.

/** `promise`, or a rejection naming `what` after `ms` (the timer cleared either way). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A server answer in lockstep: it writes event `i + 1` only once the client said it got event `i`. A layer that
 * held the body back until its end would never hand the client its first event.
 */
function lockstep(n = 4) {
  let written = 0;
  let allowed = 1;
  let wake: (() => void) | undefined;
  const self = {
    written: () => written,
    allow() {
      allowed++;
      wake?.();
    },
    async serve(ex: Exchange) {
      await ex.body();
      void ex.closed.then(() => wake?.());
      ex.res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      for (let i = 1; i <= n; i++) {
        while (allowed < i) {
          if (ex.isClosed()) return;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
        if (ex.isClosed()) return;
        ex.res.write(`data: ${i}\n\n`);
        written = i;
      }
      ex.res.end();
    },
  };
  return self;
}

/** Reads `res` in lockstep with `step`: each event must arrive while the server holds the next one back. */
async function readInLockstep(body: ReadableStream<Uint8Array> | null, step: ReturnType<typeof lockstep>, n = 4) {
  const reader = (body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const seen: Array<{ text: string; serverWritten: number }> = [];
  for (let i = 1; i <= n; i++) {
    const next = await within(reader.read(), 2_000, `event ${i}`);
    if (next.done) throw new Error(`ended before event ${i}`);
    seen.push({ text: decoder.decode(next.value), serverWritten: step.written() });
    step.allow();
  }
  const end = await within(reader.read(), 2_000, "end");
  expect(end.done).toBe(true);
  return seen;
}

const inLockstep = (n = 4) =>
  Array.from({ length: n }, (_, i) => ({ text: `data: ${i + 1}\n\n`, serverWritten: i + 1 }));

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };

/** A schema that takes anything (a passing `validate`). */
const anything: StandardSchemaLike = {
  "~standard": { version: 1, vendor: "test", validate: (value: unknown) => ({ value }) },
};

// ---------------------------------------------------------------------------
// Every path a streamed answer can take. `serve` answers with the stream; `run` makes the call and says which
// origin streamed.

type Origin = ReturnType<typeof origin>;
interface Called {
  body: ReadableStream<Uint8Array> | null;
  from: Origin;
  response: Response;
}
interface Path {
  name: string;
  run(serve: Handler, extra?: ResilienceOptions, signal?: AbortSignal): Promise<Called>;
}

const sent = (ex: Exchange) => void ex.body().then(() => ex.res.end());
const answer503 = (ex: Exchange) =>
  void ex.body().then(() => {
    ex.res.writeHead(503);
    ex.res.end("busy");
  });
const stall = (ex: Exchange) => void ex.body();

const chainOf = (...endpoints: Array<Record<string, unknown>>) =>
  fallback([{ name: "gen", endpoints: endpoints as never }]);

const paths: Path[] = [
  {
    name: "plain call",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(serve);
      const response = await createResilience(extra).fetch(`${a.base}/v1/stream`, { signal });
      return { body: response.body, from: a, response };
    },
  },
  {
    name: "retried call under both timeouts",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on((ex) => (ex.n === 1 ? answer503(ex) : serve(ex)));
      const layer = createResilience({ retry: fast, timeout: { attempt: 1_000, total: 1_500 }, ...extra });
      const response = await layer.fetch(`${a.base}/v1/stream`, { signal });
      return { body: response.body, from: a, response };
    },
  },
  {
    name: "chain, first endpoint",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(serve);
      const layer = createResilience({
        ...extra,
        fallback: chainOf({ name: "p", url: `${a.base}/v1` }, { name: "q", url: `${b.base}/v1` }),
      });
      const response = await layer.fetch(`${a.base}/v1/stream`, { signal });
      return { body: response.body, from: a, response };
    },
  },
  {
    name: "chain after a fallback",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(answer503);
      b.on(serve);
      const layer = createResilience({
        ...extra,
        retry: false,
        fallback: chainOf({ name: "p", url: `${a.base}/v1` }, { name: "q", url: `${b.base}/v1` }),
      });
      const response = await layer.fetch(`${a.base}/v1/stream`, { signal });
      return { body: response.body, from: b, response };
    },
  },
  {
    name: "hedged chain (the hedge wins)",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(stall);
      b.on(serve);
      const layer = createResilience({
        ...extra,
        fallback: fallback([
          {
            name: "gen",
            hedge: { delay: 20 },
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              { name: "q", url: `${b.base}/v1` },
            ],
          },
        ]),
      });
      const response = await layer.fetch(`${a.base}/v1/stream`, { signal });
      return { body: response.body, from: b, response };
    },
  },
  {
    name: "hedged chain (the first endpoint wins after the hedge started)",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(async (ex) => {
        await delay(40);
        await serve(ex);
      });
      b.on(stall);
      const layer = createResilience({
        ...extra,
        fallback: fallback([
          {
            name: "gen",
            hedge: { delay: 10 },
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              { name: "q", url: `${b.base}/v1` },
            ],
          },
        ]),
      });
      const response = await layer.fetch(`${a.base}/v1/stream`, { signal });
      expect(b.hits).toHaveLength(1);
      return { body: response.body, from: a, response };
    },
  },
  {
    name: "chain whose other endpoint validates",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(serve);
      const layer = createResilience({
        ...extra,
        fallback: chainOf({ name: "p", url: `${a.base}/v1` }, { name: "q", url: `${b.base}/v1`, validate: anything }),
      });
      const response = await layer.fetch(`${a.base}/v1/stream`, { signal });
      return { body: response.body, from: a, response };
    },
  },
  {
    // docs/fallback.md: a keyless POST's 2xx that fails `validate` ends the chain, "the call resolves with that
    // answer as it is"; validate stops reading at `timeout.attempt` (the server holds event 2 back).
    name: "answer validate turned down, given as it is",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(serve);
      const layer = createResilience({
        maxReplayBytes: 64 * 1024,
        ...extra,
        timeout: { attempt: 60, ...extra.timeout },
        fallback: chainOf({ name: "p", url: `${a.base}/v1`, validate: anything }, { name: "q", url: `${b.base}/v1` }),
      });
      const response = await layer.fetch(`${a.base}/v1/stream`, { method: "POST", body: "{}", signal });
      expect(b.hits).toHaveLength(0);
      return { body: response.body, from: a, response };
    },
  },
  {
    name: "redirect followed by the library",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(
        (ex) =>
          void ex.body().then(() => {
            ex.res.writeHead(302, { location: `${b.base}/v1/stream` });
            ex.res.end();
          }),
      );
      b.on(serve);
      const response = await createResilience(extra).fetch(`${a.base}/v1/start`, { signal });
      expect(response.redirected).toBe(true);
      return { body: response.body, from: b, response };
    },
  },
  {
    name: "degradation rewrite",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(async (ex) => {
        const sentBody = JSON.parse((await ex.body()).toString()) as { steps: number };
        expect(sentBody.steps).toBe(20);
        await serve(ex);
      });
      const layer = createResilience({ ...extra, degradation: degradation({}) });
      layer.degradation.setLevel("low");
      const response = await layer.fetch(`${a.base}/v1/stream`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "x", steps: 50 }),
        signal,
      });
      expect(getResilienceInfo(response)?.degradationLevel).toBe("low");
      return { body: response.body, from: a, response };
    },
  },
  {
    name: "Request input",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(serve);
      const response = await createResilience(extra).fetch(
        new Request(`${a.base}/v1/stream`, { method: "POST", body: '{"prompt":"x"}', signal }),
      );
      return { body: response.body, from: a, response };
    },
  },
  {
    name: "execute",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(serve);
      const layer = createResilience(extra);
      const response = await layer.execute(() => layer.fetch(`${a.base}/v1/stream`, { signal }), { signal });
      return { body: response.body, from: a, response };
    },
  },
  {
    name: "ky client",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(serve);
      const api = createClient({ resilience: createResilience(extra) });
      const response = await api.get(`${a.base}/v1/stream`, { signal });
      return { body: response.body, from: a, response };
    },
  },
  {
    name: "ky client with onDownloadProgress",
    async run(serve, extra = {}, signal = new AbortController().signal) {
      a.on(serve);
      const api = createClient({ resilience: createResilience(extra) });
      const response = await api.get(`${a.base}/v1/stream`, { signal, onDownloadProgress: () => {} });
      return { body: response.body, from: a, response };
    },
  },
];

describe("a streamed answer reaches the caller event by event, on every path", () => {
  for (const path of paths) {
    it(`each event arrives while the server holds the next back (${path.name})`, async () => {
      const step = lockstep();
      const { body } = await path.run((ex) => step.serve(ex));
      expect(await readInLockstep(body, step)).toEqual(inLockstep());
    });
  }
});

describe("chunks tens of ms apart: each arrives as it is sent, past both timeouts", () => {
  for (const path of paths) {
    it(`arrival times track the server's writes (${path.name})`, async () => {
      const writes: number[] = [];
      const serve = (ex: Exchange) =>
        void ex.body().then(async () => {
          ex.res.writeHead(200, { "content-type": "text/event-stream" });
          for (let i = 1; i <= 5; i++) {
            if (i > 1) await delay(40);
            writes.push(performance.now());
            ex.res.write(`data: ${i}\n\n`);
          }
          ex.res.end();
        });
      // Both timeouts pass while the body is still arriving (5 events 40 ms apart: 160 ms).
      const { body } = await path.run(serve, { timeout: { attempt: 100, total: 120 } });
      const handedAt = performance.now();
      const reader = (body as ReadableStream<Uint8Array>).getReader();
      const arrivals: number[] = [];
      let text = "";
      for (;;) {
        const next = await within(reader.read(), 2_000, "next chunk");
        if (next.done) break;
        arrivals.push(performance.now());
        text += new TextDecoder().decode(next.value);
      }
      expect(text).toBe([1, 2, 3, 4, 5].map((i) => `data: ${i}\n\n`).join(""));
      expect(arrivals).toHaveLength(5);
      // Each event written once the caller had the response reached it before the server wrote the next one
      // (on the path where `validate` read the body first, the events it read arrive at once when it stopped).
      let checked = 0;
      for (let i = 0; i < 4; i++) {
        if ((writes[i] as number) < handedAt) continue;
        checked++;
        expect(arrivals[i]).toBeLessThan(writes[i + 1] as number);
      }
      expect(checked).toBeGreaterThanOrEqual(path.name.startsWith("answer validate") ? 1 : 3);
    });
  }
});

describe("the caller's abort mid-body ends the read with its reason and closes the connection, on every path", () => {
  for (const path of paths) {
    it(`rejects the read and the server sees the close (${path.name})`, async () => {
      const step = lockstep(50);
      const controller = new AbortController();
      const { body, from } = await path.run((ex) => step.serve(ex), {}, controller.signal);
      const reader = (body as ReadableStream<Uint8Array>).getReader();
      await within(reader.read(), 2_000, "first event");
      const ex = from.hits.at(-1) as Exchange;
      const reason = new Error("caller gave up");
      controller.abort(reason);
      expect(await within(rejection(reader.read()), 1_000, "the read's end")).toBe(reason);
      await within(ex.closed, 1_500, "server-side close");
    });
  }
});

describe("cancelling the reader closes the connection to the server, on every path", () => {
  for (const path of paths) {
    it(`the server sees its exchange closed (${path.name})`, async () => {
      const step = lockstep(50);
      const { body, from } = await path.run((ex) => step.serve(ex));
      const reader = (body as ReadableStream<Uint8Array>).getReader();
      await within(reader.read(), 2_000, "first event");
      const ex = from.hits.at(-1) as Exchange;
      await reader.cancel();
      await within(ex.closed, 1_500, "server-side close");
      expect(step.written()).toBeLessThan(50);
    });
  }
});

/**
 * A server that writes 16 KiB chunks as fast as the connection takes them (waiting for `drain` when its socket
 * buffer is full), up to 256 MiB: what it has written while the client does not read is what sits in buffers
 * between them.
 */
function firehose() {
  let written = 0;
  const chunk = Buffer.alloc(16 * 1024, 97);
  return {
    written: () => written,
    async serve(ex: Exchange) {
      await ex.body();
      ex.res.writeHead(200, { "content-type": "application/octet-stream" });
      while (!ex.isClosed() && written < 256 * 1024 * 1024) {
        written += chunk.length;
        if (!ex.res.write(chunk)) {
          await Promise.race([once(ex.res, "drain"), ex.closed]);
        }
      }
      ex.res.end();
    },
  };
}

const MiB = 1024 * 1024;

describe("backpressure: a caller that stops reading stops the server", () => {
  let baseline = 0;
  it("plain fetch (the baseline)", async () => {
    const hose = firehose();
    a.on((ex) => hose.serve(ex));
    const response = await fetch(`${a.base}/v1/bytes`);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await delay(300);
    const first = hose.written();
    await delay(200);
    baseline = hose.written();
    expect(baseline - first).toBeLessThan(MiB);
    await reader.cancel();
  });
  for (const path of paths) {
    it(`the server stalls once the buffers between fill (${path.name})`, async () => {
      const hose = firehose();
      const { body } = await path.run((ex) => hose.serve(ex));
      const reader = (body as ReadableStream<Uint8Array>).getReader();
      await within(reader.read(), 2_000, "first chunk");
      await delay(300);
      const first = hose.written();
      await delay(200);
      const then = hose.written();
      await reader.cancel();
      expect(then - first).toBeLessThan(MiB);
      expect(then).toBeLessThan(baseline + 4 * MiB);
    });
  }
});

/**
 * An upload in lockstep: the client's stream hands over chunk `i + 1` only once the server received chunk `i`. A
 * layer that read the stream whole before sending it would never send the first chunk.
 */
function uploadLockstep(n = 4, size = 32) {
  let received = 0;
  let enqueued = 0;
  let wake: (() => void) | undefined;
  const arrived = async (bytes: number) => {
    while (received < bytes) {
      await within(
        new Promise<void>((resolve) => {
          wake = resolve;
        }),
        2_000,
        `server receipt of ${bytes} bytes`,
      );
    }
  };
  const self = {
    received: () => received,
    stream: () =>
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (enqueued > 0) await arrived(enqueued * size);
          if (enqueued === n) {
            controller.close();
            return;
          }
          controller.enqueue(new Uint8Array(size).fill(65 + enqueued));
          enqueued++;
        },
      }),
    serve(status = 200) {
      return (ex: Exchange) => {
        ex.req.on("data", (d: Buffer) => {
          received += d.length;
          wake?.();
        });
        ex.req.on("end", () => {
          ex.res.writeHead(status);
          ex.res.end(`got ${received}`);
        });
      };
    },
  };
  return self;
}

describe("a streamed upload goes out as it is produced, once", () => {
  it("an init ReadableStream (duplex: half) reaches the server chunk by chunk (plain call)", async () => {
    const up = uploadLockstep();
    a.on(up.serve());
    const res = await createResilience().fetch(`${a.base}/v1/upload`, {
      method: "POST",
      body: up.stream(),
      duplex: "half",
    } as RequestInit);
    expect(await res.text()).toBe("got 128");
  });

  it("an init ReadableStream without duplex goes too: the layer adds duplex: half", async () => {
    const up = uploadLockstep();
    a.on(up.serve());
    const res = await createResilience().fetch(`${a.base}/v1/upload`, { method: "POST", body: up.stream() });
    expect(await res.text()).toBe("got 128");
  });

  it("an init ReadableStream through a hedged chain, a rewrite and timeouts goes chunk by chunk, to one endpoint", async () => {
    const up = uploadLockstep();
    a.on(up.serve());
    const layer = createResilience({
      timeout: { attempt: 2_000, total: 3_000 },
      degradation: degradation({}),
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 5 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    layer.degradation.setLevel("low");
    const res = await layer.fetch(`${a.base}/v1/upload`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": "k1" },
      body: up.stream(),
      duplex: "half",
    } as RequestInit);
    expect(await res.text()).toBe("got 128");
    expect(b.hits).toHaveLength(0);
  });

  it("a Request on a stream past maxReplayBytes: what was read ahead and the rest go as one stream, chunk by chunk", async () => {
    const up = uploadLockstep(4, 32);
    a.on(up.serve());
    const replays: unknown[] = [];
    const layer = createResilience({ maxReplayBytes: 16 });
    layer.on("replay", (e) => replays.push(e));
    const res = await layer.fetch(
      new Request(`${a.base}/v1/upload`, { method: "POST", body: up.stream(), duplex: "half" } as RequestInit),
    );
    expect(await res.text()).toBe("got 128");
    expect(replays).toHaveLength(1);
  });

  const streamBodies = {
    "init ReadableStream": (url: string, headers: Record<string, string>) =>
      [url, { method: "POST", headers, body: new Blob(["x".repeat(4096)]).stream(), duplex: "half" }] as const,
    "Request on a stream past maxReplayBytes": (url: string, headers: Record<string, string>) =>
      [
        new Request(url, {
          method: "POST",
          headers,
          body: new Blob(["x".repeat(4096)]).stream(),
          duplex: "half",
        } as RequestInit),
        undefined,
      ] as const,
  };
  for (const [kind, make] of Object.entries(streamBodies)) {
    it(`${kind}: a 503 is not retried, even with an Idempotency-Key; health counts one call`, async () => {
      a.on(answer503);
      const layer = createResilience({ retry: fast, maxReplayBytes: 1024 });
      const retries: unknown[] = [];
      layer.on("retry", (e) => retries.push(e));
      const [input, init] = make(`${a.base}/v1/upload`, { "idempotency-key": "k2" });
      const res = await layer.fetch(input, init as RequestInit | undefined);
      expect(res.status).toBe(503);
      expect(await res.text()).toBe("busy");
      expect(a.hits).toHaveLength(1);
      expect((await a.hits[0]?.body())?.length).toBe(4096);
      expect(retries).toHaveLength(0);
      expect(getResilienceInfo(res)?.attempts).toBe(1);
    });

    it(`${kind}: a hedged chain neither hedges nor moves on after a timeout`, async () => {
      a.on(stall);
      b.on(sent);
      const hedged = createResilience({
        retry: fast,
        maxReplayBytes: 1024,
        timeout: { attempt: 150 },
        fallback: fallback([
          {
            name: "gen",
            hedge: { delay: 10 },
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              { name: "q", url: `${b.base}/v1` },
            ],
          },
        ]),
      });
      const [input, init] = make(`${a.base}/v1/upload`, { "idempotency-key": "k3" });
      const error = await rejection(hedged.fetch(input, init as RequestInit | undefined));
      expect(String(error)).toMatch(/sent only once|once/);
      expect(a.hits).toHaveLength(1);
      expect(b.hits).toHaveLength(0);
    });

    it(`${kind}: a 307 is not followed (TypeError as the cause), nothing reaches the target`, async () => {
      a.on(
        (ex) =>
          void ex.body().then(() => {
            ex.res.writeHead(307, { location: `${b.base}/v1/upload` });
            ex.res.end();
          }),
      );
      const layer = createResilience({ retry: fast, maxReplayBytes: 1024 });
      const [input, init] = make(`${a.base}/v1/upload`, { "idempotency-key": "k4" });
      const error = (await rejection(layer.fetch(input, init as RequestInit | undefined))) as Error;
      expect(error.cause).toBeInstanceOf(TypeError);
      expect(a.hits).toHaveLength(1);
      expect(b.hits).toHaveLength(0);
    });
  }

  it("a transform that replaces a stream body does not make it replayable: no next endpoint", async () => {
    a.on(answer503);
    b.on(sent);
    const layer = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${a.base}/v1`, transform: (req) => ({ ...req, body: { prompt: "fixed" } }) },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const res = await layer.fetch(`${a.base}/v1/upload`, {
      method: "POST",
      headers: { "idempotency-key": "k5" },
      body: new Blob(["{}"]).stream(),
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(503);
    expect(b.hits).toHaveLength(0);
  });
});

/** A body that trickles forever: a chunk every `every` ms until the client hangs up. */
function endless(status: number, every = 20, headers: Record<string, string> = {}) {
  return (ex: Exchange) =>
    void ex.body().then(async () => {
      ex.res.writeHead(status, headers);
      while (!ex.isClosed()) {
        ex.res.write("tick\n");
        await Promise.race([delay(every), ex.closed]);
      }
    });
}

describe("bodies nobody reads are released", () => {
  it("a 503 whose body never ends: the retry does not wait for it, and its connection closes within the 1 s drain bound", async () => {
    a.on((ex) => (ex.n === 1 ? endless(503)(ex) : sent(ex)));
    const layer = createResilience({ retry: fast });
    const started = performance.now();
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(500);
    const first = a.hits[0] as Exchange;
    await within(first.closed, 1_800, "the retried-past body's close");
  });

  it("a 503 with a large body is cancelled at once (past 64 KiB), not drained", async () => {
    const hose = firehose();
    // The firehose's answer made a 503 (its `writeHead` wrapped).
    a.on((ex) => {
      if (ex.n !== 1) return sent(ex);
      const writeHead = ex.res.writeHead.bind(ex.res);
      (ex.res as { writeHead: unknown }).writeHead = (_: number, h: Record<string, string>) => writeHead(503, h);
      return hose.serve(ex);
    });
    const res = await createResilience({ retry: fast }).fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(200);
    await within((a.hits[0] as Exchange).closed, 500, "the large body's close");
    expect(hose.written()).toBeLessThan(16 * MiB);
  });

  it("a small 503 body is drained: the retry goes out on the same connection", async () => {
    // A fresh origin: the transport's pool for it starts empty, so the connections it opens are this test's.
    const c = origin();
    await c.start();
    try {
      c.on((ex) => (ex.n === 1 ? answer503(ex) : sent(ex)));
      const res = await createResilience({ retry: { ...fast, initialDelay: 30, maxDelay: 30 } }).fetch(
        `${c.base}/v1/x`,
      );
      expect(res.status).toBe(200);
      expect(c.hits).toHaveLength(2);
      expect(c.hits[1]?.req.socket).toBe(c.hits[0]?.req.socket);
    } finally {
      c.stop();
    }
  });

  it("a redirect whose body never ends is released: its connection closes within the drain bound", async () => {
    a.on(endless(302, 20, { location: `${b.base}/v1/y` }));
    b.on(sent);
    const res = await createResilience().fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(200);
    await within((a.hits[0] as Exchange).closed, 1_800, "the redirect body's close");
  });

  for (const [size, intact] of [
    [1024, true],
    [100 * 1024, false],
  ] as const) {
    it(`a ${size}-byte 503 kept when the breaker then refuses the retry: ${intact ? "given, body intact" : "the call rejects"}`, async () => {
      a.on(
        (ex) =>
          void ex.body().then(async () => {
            ex.res.writeHead(503);
            ex.res.write("a".repeat(size / 2));
            await delay(20);
            ex.res.end("b".repeat(size / 2));
          }),
      );
      const layer = createResilience({
        retry: { ...fast, initialDelay: 50, maxDelay: 50 },
        breaker: { failureThreshold: 2 },
      });
      // Another call opens the breaker during the first call's wait.
      const first = layer.fetch(`${a.base}/v1/x`).then(
        async (res) => ({ status: res.status, text: await res.text() }),
        (error: unknown) => ({ error }),
      );
      await delay(25);
      await layer.fetch(`${a.base}/v1/x`, { method: "POST" }).then((r) => r.text());
      const out = await first;
      if (intact) expect(out).toEqual({ status: 503, text: "a".repeat(size / 2) + "b".repeat(size / 2) });
      else expect(out).toHaveProperty("error");
    });
  }
});

describe("what health() and events say of streamed calls", () => {
  it("the request event fires at the headers, before the body ends, with the status", async () => {
    const step = lockstep();
    a.on((ex) => step.serve(ex));
    const layer = createResilience();
    const events: RequestEvent[] = [];
    layer.on("request", (e) => events.push(e));
    const res = await layer.fetch(`${a.base}/v1/stream`);
    await delay(5);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: 200, attempts: 1 });
    expect(step.written()).toBe(1);
    await readInLockstep(res.body, step);
  });

  it("a body that breaks mid-stream, or that the caller cancels, counts as the success its headers were", async () => {
    a.on(
      (ex) =>
        void ex.body().then(async () => {
          ex.res.writeHead(200);
          ex.res.write("data: 1\n\n");
          await delay(20);
          ex.res.destroy();
        }),
    );
    const layer = createResilience({ breaker: { failureThreshold: 1 } });
    const res = await layer.fetch(`${a.base}/v1/stream`);
    expect(await rejection(res.text())).toBeInstanceOf(Error);
    const step = lockstep(10);
    a.on((ex) => step.serve(ex));
    const other = await layer.fetch(`${a.base}/v1/stream`);
    await other.body?.cancel();
    const health = layer.health();
    expect(health.status).toBe("healthy");
    expect(health.errorRate).toBe(0);
    expect(Object.values(health.breakers)[0]).toMatchObject({ state: "closed", failureCount: 0 });
  });

  it("a bulkhead slot is held to the headers only: a second call runs while the first streams", async () => {
    const step = lockstep();
    a.on((ex) => (ex.path.endsWith("stream") ? step.serve(ex) : sent(ex)));
    const layer = createResilience({ bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const res = await layer.fetch(`${a.base}/v1/stream`);
    const second = await layer.fetch(`${a.base}/v1/other`);
    expect(second.status).toBe(200);
    expect(Object.values(layer.health().breakers)[0]).toMatchObject({ active: 0, queued: 0 });
    await readInLockstep(res.body, step);
  });
});

/** An upload that sends one chunk, then never another: `cancelled` settles with the reason its source got. */
function stuckUpload(size = 64) {
  let cancel!: (reason: unknown) => void;
  const cancelled = new Promise<unknown>((resolve) => {
    cancel = resolve;
  });
  let sentFirst = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sentFirst) {
        sentFirst = true;
        controller.enqueue(new Uint8Array(size).fill(66));
        return;
      }
      return new Promise<void>(() => {});
    },
    cancel(reason) {
      cancel(reason);
    },
  });
  return { stream, cancelled };
}

describe("an upload cut mid-way: the caller's abort or timeout.total ends the call and closes the connection", () => {
  const upPaths: Record<
    string,
    (url: string, stream: ReadableStream<Uint8Array>, signal: AbortSignal) => Promise<unknown>
  > = {
    "init stream, plain call": (url, stream, signal) =>
      createResilience().fetch(url, { method: "POST", body: stream, duplex: "half", signal } as RequestInit),
    "init stream, chain with a rewrite": (url, stream, signal) => {
      const layer = createResilience({
        degradation: degradation({}),
        fallback: chainOf({ name: "p", url: `${a.base}/v1` }, { name: "q", url: `${b.base}/v1` }),
      });
      layer.degradation.setLevel("low");
      return layer.fetch(url, { method: "POST", body: stream, duplex: "half", signal } as RequestInit);
    },
    "Request on a stream past maxReplayBytes, plain call": (url, stream, signal) =>
      createResilience({ maxReplayBytes: 16 }).fetch(
        new Request(url, { method: "POST", body: stream, duplex: "half" } as RequestInit),
        { signal },
      ),
    "Request on a stream past maxReplayBytes, chain": (url, stream, signal) =>
      createResilience({
        maxReplayBytes: 16,
        fallback: chainOf({ name: "p", url: `${a.base}/v1` }, { name: "q", url: `${b.base}/v1` }),
      }).fetch(new Request(url, { method: "POST", body: stream, duplex: "half", signal } as RequestInit)),
  };
  for (const [name, call] of Object.entries(upPaths)) {
    it(`the caller's abort rejects with its reason and closes the upload's connection (${name})`, async () => {
      let got!: () => void;
      const gotFirst = new Promise<void>((resolve) => {
        got = resolve;
      });
      a.on((ex) => {
        ex.req.once("data", () => got());
      });
      const up = stuckUpload();
      const controller = new AbortController();
      const settled = call(`${a.base}/v1/upload`, up.stream, controller.signal);
      await within(gotFirst, 2_000, "first upload chunk");
      const reason = new Error("stop uploading");
      controller.abort(reason);
      expect(await within(rejection(settled), 1_000, "the call's end")).toBe(reason);
      await within((a.hits[0] as Exchange).closed, 1_500, "server-side close");
      expect(b.hits).toHaveLength(0);
    });
  }

  it("timeout.total mid-upload rejects with TimeoutError and closes the connection (Request on a stream past maxReplayBytes)", async () => {
    a.on(() => {});
    const up = stuckUpload();
    const layer = createResilience({ maxReplayBytes: 16, timeout: { total: 100 } });
    const error = await rejection(
      layer.fetch(
        new Request(`${a.base}/v1/upload`, { method: "POST", body: up.stream, duplex: "half" } as RequestInit),
      ),
    );
    expect(error).toMatchObject({ name: "TimeoutError", phase: "total" });
    await within((a.hits[0] as Exchange).closed, 1_500, "server-side close");
  });

  it("a 303 after a streamed upload is followed as a GET without the body", async () => {
    a.on(
      (ex) =>
        void ex.body().then(() => {
          ex.res.writeHead(303, { location: `${b.base}/v1/result` });
          ex.res.end();
        }),
    );
    b.on(sent);
    const res = await createResilience().fetch(`${a.base}/v1/upload`, {
      method: "POST",
      body: new Blob(["x".repeat(4096)]).stream(),
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(200);
    expect(b.hits[0]?.method).toBe("GET");
    expect((await b.hits[0]?.body())?.length).toBe(0);
  });

  it("a chain's 503 whose body never ends is released when the chain moves on", async () => {
    a.on(endless(503));
    b.on(sent);
    const layer = createResilience({
      retry: false,
      fallback: chainOf({ name: "p", url: `${a.base}/v1` }, { name: "q", url: `${b.base}/v1` }),
    });
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(200);
    await within((a.hits[0] as Exchange).closed, 1_800, "the declined answer's close");
  });
});

describe("a chain's `respond` endpoint and ky uploads", () => {
  it("a `respond` answer built on a stream reaches the caller chunk by chunk; cancelling reaches its source", async () => {
    a.on(answer503);
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let cancelled: unknown = "not cancelled";
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const layer = createResilience({
      retry: false,
      fallback: chainOf({ name: "p", url: `${a.base}/v1` }, { name: "cached", respond: () => new Response(stream) }),
    });
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "cached", fromFallback: true });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    controller.enqueue(new TextEncoder().encode("data: 1\n\n"));
    expect(new TextDecoder().decode((await within(reader.read(), 1_000, "event 1")).value)).toBe("data: 1\n\n");
    const reason = new Error("enough");
    await reader.cancel(reason);
    expect(cancelled).toBe(reason);
  });

  it("a ky upload of a ReadableStream goes as a Request's body: read ahead within maxReplayBytes and replayed on a 503", async () => {
    a.on((ex) => (ex.n === 1 ? answer503(ex) : void ex.body().then((body) => ex.res.end(`got ${body.length}`))));
    const api = createClient({ resilience: createResilience({ retry: fast }) });
    const text = await api
      .post(`${a.base}/v1/upload`, { body: new Blob(["x".repeat(4096)]).stream(), headers: { "idempotency-key": "k" } })
      .text();
    expect(text).toBe("got 4096");
    expect(a.hits).toHaveLength(2);
  });

  it("a ky upload past maxReplayBytes goes once", async () => {
    a.on(answer503);
    const api = createClient({ resilience: createResilience({ retry: fast, maxReplayBytes: 1024 }) });
    const error = await rejection(
      api.post(`${a.base}/v1/upload`, {
        body: new Blob(["x".repeat(4096)]).stream(),
        headers: { "idempotency-key": "k" },
      }),
    );
    expect(error).toMatchObject({ name: "HTTPError" });
    expect(a.hits).toHaveLength(1);
    expect((await a.hits[0]?.body())?.length).toBe(4096);
  });
});
