import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

/** One request as the fake API received it. */
export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * An answer: a status with a JSON (or text) body; "drop" closes the
 * connection without one; "hang" never answers (until the client gives up or
 * the server closes).
 */
export type Answer =
  | { status: number; json?: unknown; text?: string; headers?: Record<string, string> }
  | "drop"
  | "hang";

/** A fake API on 127.0.0.1 answering with `answer(request, n)`; n counts that route's requests from 1. */
export interface FakeApi {
  url: string;
  requests: Received[];
  /** Requests to `METHOD /path` (query ignored). */
  count(route: string): number;
  close(): Promise<void>;
}

export async function startFakeApi(answer: (request: Received, n: number) => Answer): Promise<FakeApi> {
  const requests: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const path = (req.url ?? "/").split("?")[0] as string;
      const received = {
        method: req.method ?? "GET",
        path,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      requests.push(received);
      const n = requests.filter((r) => r.method === received.method && r.path === path).length;
      const reply = answer(received, n);
      if (reply === "drop") {
        req.socket.destroy();
        return;
      }
      if (reply === "hang") return;
      const body = reply.json !== undefined ? JSON.stringify(reply.json) : (reply.text ?? "");
      const type = reply.json !== undefined ? "application/json" : "text/plain";
      res.writeHead(reply.status, { "content-type": type, ...reply.headers }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    count: (route) => requests.filter((r) => `${r.method} ${r.path}` === route).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
