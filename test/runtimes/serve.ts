import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, resolve } from "node:path";
import { conformanceUpstream } from "./upstream-logic.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const STATIC: Record<string, string> = {
  "/dist/": "dist/",
  "/node_modules/zod/": "node_modules/zod/",
  "/runtimes/": "test/runtimes/",
};
const TYPES: Record<string, string> = { ".js": "text/javascript", ".html": "text/html", ".json": "application/json" };

/** Serves `conformanceUpstream` over node:http, plus the built files a browser page needs. */
async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?")[0] as string;
  const prefix = Object.keys(STATIC).find((p) => path.startsWith(p));
  if (prefix) {
    const file = resolve(ROOT, (STATIC[prefix] as string) + path.slice(prefix.length));
    if (!file.startsWith(ROOT)) return void res.writeHead(403).end();
    try {
      res
        .writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" })
        .end(await readFile(file));
    } catch {
      res.writeHead(404).end();
    }
    return;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = chunks.length > 0 && req.method !== "GET" && req.method !== "HEAD" ? Buffer.concat(chunks) : undefined;
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
  const response = await conformanceUpstream(
    new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method ?? "GET",
      headers,
      ...(body ? { body } : {}),
    }),
  );
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (!response.body) return void res.end();
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    res.write(value);
  }
  res.end();
}

async function listen(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Two origins on 127.0.0.1 (two ports): the API and an alternate for the fallback check. */
export async function startConformanceServers(): Promise<{ api: string; alt: string; close: () => Promise<void> }> {
  const [api, alt] = await Promise.all([listen(), listen()]);
  return {
    api: api.url,
    alt: alt.url,
    close: async () => {
      for (const s of [api.server, alt.server]) s.closeAllConnections();
      await Promise.all([api.server, alt.server].map((s) => new Promise((r) => s.close(r))));
    },
  };
}
