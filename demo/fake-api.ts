import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** How a fake provider behaves right now; the scenario changes it as the day goes on. */
export interface Behaviour {
  /** Share of requests answered with 503 (0..1). */
  failRate: number;
  /** `Retry-After` seconds sent with those 503s, if any. */
  retryAfter?: number;
  /** Milliseconds before headers, plus `msPerStep` for each requested step. */
  latencyMs: number;
  msPerStep: number;
  /** Extra random latency up to this many ms ("slow headers"). */
  jitterMs: number;
  /** Drop the connection instead of answering. */
  down: boolean;
}

/** What reached a provider. */
export interface ProviderStats {
  requests: number;
  ok: number;
  failed: number;
  reset: number;
  /** The last request's steps and resolution, as the upstream saw them. */
  lastSteps: number | undefined;
  lastResolution: string | undefined;
}

export interface FakeApi {
  name: string;
  url: string;
  behaviour: Behaviour;
  stats: ProviderStats;
  close(): Promise<void>;
}

export type BodyShape = "premium" | "standard";

/**
 * A scripted video-generation API on 127.0.0.1. The "premium" shape takes
 * `{ prompt, quality, resolution, steps, model }`; the "standard" shape takes
 * `{ input: { prompt }, parameters: { size, steps, model } }`. Latency grows
 * with the requested steps, so a degraded request is a faster one.
 */
export async function startFakeApi(
  name: string,
  random: () => number,
  port = 0,
  shape: BodyShape = "premium",
): Promise<FakeApi> {
  const api: FakeApi = {
    name,
    url: "",
    behaviour: { failRate: 0, latencyMs: 20, msPerStep: 0, jitterMs: 0, down: false },
    stats: { requests: 0, ok: 0, failed: 0, reset: 0, lastSteps: undefined, lastResolution: undefined },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    api.stats.requests++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const b = api.behaviour;
    if (b.down) {
      api.stats.reset++;
      req.socket.destroy();
      return;
    }
    let steps = 50;
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
      const params = shape === "premium" ? body : (body.parameters ?? {});
      steps = Number(params.steps ?? 50);
      api.stats.lastSteps = steps;
      api.stats.lastResolution = String(shape === "premium" ? params.resolution : params.size);
    } catch {
      // not JSON: answer anyway, with default steps
    }
    await new Promise((r) => setTimeout(r, b.latencyMs + b.msPerStep * steps + random() * b.jitterMs));
    if (random() < b.failRate) {
      api.stats.failed++;
      res.writeHead(503, b.retryAfter === undefined ? {} : { "retry-after": String(b.retryAfter) });
      res.end(JSON.stringify({ error: "overloaded" }));
      return;
    }
    api.stats.ok++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ provider: name, id: `${name}_${api.stats.ok}`, status: "done", steps }));
  });
  server.keepAliveTimeout = 1_000;
  // A port already taken rejects here (the caller says so), rather than as an unheard 'error' event.
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}
