/**
 * A fake image-generation API on 127.0.0.1 that a page on another origin can
 * call: it answers CORS preflights the way a correct API does (the headers
 * the library may add are allowed, `Retry-After` is exposed), and it can be
 * told to be flaky, slow or down, by the page's buttons or by a test.
 *
 *   POST /v1/images   { prompt, steps?, resolution? } → { id, provider, prompt, steps, resolution }
 *   POST /__mode      { mode: "ok" | "flaky" | "slow" | "down" }  → { mode }
 *   GET  /__mode      → { mode, requests }
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const MODES = ["ok", "flaky", "slow", "down"] as const;
export type Mode = (typeof MODES)[number];

export interface FakeImageApi {
  readonly name: string;
  readonly url: string;
  mode: Mode;
  /** Generation requests received (preflights and mode changes not counted). */
  requests: number;
  close(): Promise<void>;
}

/** Milliseconds per requested step in "slow" mode: fewer steps, a faster answer. */
const SLOW_MS_PER_STEP = 40;

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
  // What the library may add to a request: an Idempotency-Key (retry.idempotencyKey)
  // and the degradation level header (degradation.levelHeader).
  "access-control-allow-headers": "content-type, idempotency-key, x-degradation-level",
  // Without this a page cannot read Retry-After, and the library falls back to its own backoff.
  "access-control-expose-headers": "retry-after",
  "access-control-max-age": "600",
};

export async function startFakeImageApi(name: string, port = 0): Promise<FakeImageApi> {
  let flakyTurn = 0;
  const api: FakeImageApi = {
    name,
    url: "",
    mode: "ok",
    requests: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { ...CORS, "content-type": "application/json", ...headers }).end(JSON.stringify(body));
  };
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (req.method === "OPTIONS") {
      // A real outage takes the preflight down too.
      if (api.mode === "down" && path === "/v1/images") return void req.socket.destroy();
      return void res.writeHead(204, CORS).end();
    }
    const text = await readBody(req);
    if (path === "/__mode") {
      if (req.method === "GET") return send(res, 200, { mode: api.mode, requests: api.requests });
      const mode = parse(text)?.mode;
      if (!MODES.includes(mode as Mode)) return send(res, 400, { error: `mode must be one of ${MODES.join(", ")}` });
      api.mode = mode as Mode;
      return send(res, 200, { mode: api.mode });
    }
    if (path !== "/v1/images" || req.method !== "POST") return send(res, 404, { error: "not found" });
    api.requests++;
    if (api.mode === "down") return void req.socket.destroy();
    const body = parse(text);
    if (!body || typeof body.prompt !== "string") return send(res, 400, { error: "expected JSON with a prompt" });
    const steps = Number(body.steps ?? 50);
    const resolution = String(body.resolution ?? "1080p");
    // Flaky: every other request is refused, as an overloaded provider does.
    if (api.mode === "flaky" && flakyTurn++ % 2 === 0)
      return send(res, 503, { error: "overloaded" }, { "retry-after": "1" });
    if (api.mode === "slow") await new Promise((r) => setTimeout(r, SLOW_MS_PER_STEP * steps));
    send(res, 200, { id: `${name}-${api.requests}`, provider: name, prompt: body.prompt, steps, resolution });
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  (api as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function parse(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
