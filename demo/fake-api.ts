import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** How the fake provider behaves right now; the demo script changes it as the day goes on. */
export interface Behaviour {
  /** Share of requests answered with 503 (0..1). */
  failRate: number;
  /** `Retry-After` seconds sent with those 503s, if any. */
  retryAfter?: number;
  /** Milliseconds before headers. */
  latencyMs: number;
  /** Drop the connection instead of answering. */
  down: boolean;
}

export interface FakeApi {
  url: string;
  behaviour: Behaviour;
  /** Requests that reached the server, by outcome. */
  stats: { requests: number; ok: number; failed: number; reset: number; bodies: unknown[] };
  close(): Promise<void>;
}

/**
 * A scripted image-generation API on 127.0.0.1: answers `POST /v1/images`
 * with a JSON job, or with the faults its `behaviour` asks for.
 */
export async function startFakeApi(name: string, random: () => number, port = 0): Promise<FakeApi> {
  const api: FakeApi = {
    url: "",
    behaviour: { failRate: 0, latencyMs: 5, down: false },
    stats: { requests: 0, ok: 0, failed: 0, reset: 0, bodies: [] },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    api.stats.requests++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    if (text) api.stats.bodies.push(JSON.parse(text));
    const b = api.behaviour;
    if (b.down) {
      api.stats.reset++;
      req.socket.destroy();
      return;
    }
    await new Promise((r) => setTimeout(r, b.latencyMs));
    if (random() < b.failRate) {
      api.stats.failed++;
      res.writeHead(503, b.retryAfter === undefined ? {} : { "retry-after": String(b.retryAfter) });
      res.end(JSON.stringify({ error: "overloaded" }));
      return;
    }
    api.stats.ok++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ provider: name, id: `img_${api.stats.ok}`, status: "done" }));
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}
