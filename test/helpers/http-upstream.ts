/**
 * A real HTTP server on 127.0.0.1 for the outside-in tests: it records every
 * request (its body read in full) and answers with the test's handler. Each
 * server is its own origin (its own port), so a few of them stand for a
 * primary, a spare and a CDN.
 */
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach } from "vitest";

/** One request as the server received it. */
export interface Hit {
  /** 1 for the first request since the last reset. */
  n: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The body as UTF-8 text, and as the bytes that arrived. */
  body: string;
  bytes: Buffer;
  req: IncomingMessage;
  res: ServerResponse;
  /** Settles when the connection of this exchange closes (a client that hung up). */
  closed: Promise<void>;
}

export type Handler = (hit: Hit) => void;

export type HttpUpstream = ReturnType<typeof httpUpstream>;

export function httpUpstream() {
  const hits: Hit[] = [];
  const waiters: Array<{ n: number; resolve: (hit: Hit) => void }> = [];
  let handler: Handler = (hit) => hit.res.end("ok");
  const server = createServer((req, res) => {
    const closed = once(res, "close").then(() => undefined);
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const bytes = Buffer.concat(chunks);
      const hit: Hit = {
        n: hits.length + 1,
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: bytes.toString("utf8"),
        bytes,
        req,
        res,
        closed,
      };
      hits.push(hit);
      for (const w of waiters.splice(0)) {
        if (hits.length >= w.n) w.resolve(hits[w.n - 1] as Hit);
        else waiters.push(w);
      }
      handler(hit);
    });
  });
  const self = {
    hits,
    /** `http://127.0.0.1:<port>`, and the `host` and `port` alone, once started. */
    base: "",
    host: "",
    port: 0,
    /** Sets how the server answers. */
    on(next: Handler) {
      handler = next;
    },
    /** Forgets earlier requests and answers "ok" again. Open connections stay (keep-alive sockets a client reuses). */
    reset() {
      hits.length = 0;
      waiters.length = 0;
      handler = (hit) => hit.res.end("ok");
    },
    /** Resolves with the `n`th request (1-based) once it arrived. */
    nth(n: number): Promise<Hit> {
      if (hits.length >= n) return Promise.resolve(hits[n - 1] as Hit);
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    async start() {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      self.port = (server.address() as AddressInfo).port;
      self.host = `127.0.0.1:${self.port}`;
      self.base = `http://${self.host}`;
    },
    stop() {
      server.closeAllConnections();
      server.close();
    },
  };
  return self;
}

/** An origin where nothing listens: connecting to it is refused. */
export async function refusedOrigin(): Promise<string> {
  const closed = createServer();
  closed.listen(0, "127.0.0.1");
  await once(closed, "listening");
  const origin = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  closed.close();
  await once(closed, "close");
  return origin;
}

/**
 * Starts `servers` before a file's tests, forgets their requests before each
 * test, and stops them after the file: the lifecycle every outside-in file
 * shares.
 */
export function serveDuringFile(...servers: HttpUpstream[]): void {
  beforeAll(async () => {
    await Promise.all(servers.map((server) => server.start()));
  });
  afterAll(() => {
    for (const server of servers) server.stop();
  });
  beforeEach(() => {
    for (const server of servers) server.reset();
  });
}
