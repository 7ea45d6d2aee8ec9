/**
 * docs/cloudflare.md: an upstream's `content-encoding` goes back with the
 * body, and workerd encodes the body fetch decoded again on its way out.
 * Only a real HTTP exchange with workerd shows that (inside the Workers test
 * pool a response never leaves the isolate), so the proxy runs here under
 * `wrangler dev` (workerd, locally), the upstream is a Node server sending gzip, and the
 * client reads the raw bytes workerd sends. The same Worker forwards client uploads: what the
 * upstream receives (a `content-length`, or chunks) also shows only over a real socket.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { buildSync } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Unstable_DevWorker, unstable_dev } from "wrangler";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const upstream = httpUpstream();
serveDuringFile(upstream);

const text = "a frame of a generated video, described at length. ".repeat(40);

const worker = buildSync({
  stdin: {
    contents: `import { resilientProxy } from "./src/cloudflare/index.ts";
      let proxy;
      export default { fetch(request, env, ctx) {
        proxy ??= resilientProxy({ routes: [{ path: "/", upstream: env.UPSTREAM }], resilience: { maxReplayBytes: 1000 } });
        return proxy.fetch(request, env, ctx);
      } };`,
    resolveDir: resolve(import.meta.dirname, "../.."),
    loader: "ts",
  },
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  write: false,
  logLevel: "silent",
}).outputFiles[0]?.text as string;

let dir: string;
let dev: Unstable_DevWorker;
let base: URL;
beforeAll(async () => {
  // A directory of its own, with a configuration of its own: the project's
  // wrangler.toml names the example Worker and its bindings.
  dir = mkdtempSync(join(tmpdir(), "resilient-fetch-encoding-"));
  writeFileSync(join(dir, "worker.js"), worker);
  writeFileSync(
    join(dir, "wrangler.toml"),
    'name = "encoding"\nmain = "worker.js"\ncompatibility_date = "2025-09-01"\n',
  );
  dev = await unstable_dev(join(dir, "worker.js"), {
    config: join(dir, "wrangler.toml"),
    vars: { UPSTREAM: upstream.base },
    ip: "127.0.0.1",
    port: 0,
    logLevel: "none",
    experimental: { disableExperimentalWarning: true, disableDevRegistry: true },
  });
  base = new URL(`http://${dev.address}:${dev.port}`);
}, 120_000);
afterAll(async () => {
  await dev?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The raw answer workerd sends, bytes as they came over the socket. The
 * client asks for no encoding, so one that comes is the upstream's passed on
 * (`wrangler dev`, like Cloudflare's edge, compresses for a client that asks).
 */
function rawGet(path: string): Promise<{ headers: Record<string, unknown>; bytes: Buffer }> {
  return new Promise((done, fail) => {
    const req = httpRequest(new URL(path, base), (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => done({ headers: res.headers, bytes: Buffer.concat(chunks) }));
      res.on("error", fail);
    });
    req.on("error", fail);
    req.end();
  });
}

describe("resilientProxy in workerd, over a real socket", () => {
  it("passes a gzip upstream's encoding on, with the body encoded again to match it", async () => {
    upstream.on((hit) => {
      hit.res.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" }).end(gzipSync(text));
    });
    const { headers, bytes } = await rawGet("/v1/x");
    expect(headers["content-encoding"]).toBe("gzip");
    expect(headers["x-resilience-attempts"]).toBe("1");
    expect(gunzipSync(bytes).toString("utf8")).toBe(text);
    expect(bytes.length).toBeLessThan(text.length);
  });

  it("sends an unencoded upstream's body as it came", async () => {
    upstream.on((hit) => hit.res.writeHead(200, { "content-type": "text/plain" }).end(text));
    const { headers, bytes } = await rawGet("/v1/x");
    expect(headers["content-encoding"]).toBeUndefined();
    expect(bytes.toString("utf8")).toBe(text);
  });

  // docs/retry.md: a `Request` body announced larger than `maxReplayBytes` goes to fetch as it is, "so the length
  // goes with the body" (a stream of the library's making would go chunked); one within the limit is read and
  // sent as bytes, with their length.
  it.each([
    ["past maxReplayBytes (1000), unread", 2000],
    ["within it, read for replay", 500],
  ])("forwards a client upload with its content-length, %s", async (_, size) => {
    upstream.on((hit) => hit.res.end("ok"));
    const body = "x".repeat(size);
    const status = await new Promise<number>((done, fail) => {
      const headers = { "content-length": String(size), "content-type": "text/plain" };
      const req = httpRequest(new URL("/v1/upload", base), { method: "POST", headers }, (res) => {
        res.resume();
        res.on("end", () => done(res.statusCode ?? 0));
      });
      req.on("error", fail);
      req.end(body);
    });
    expect(status).toBe(200);
    const hit = upstream.hits.at(-1);
    expect(hit?.headers["content-length"]).toBe(String(size));
    expect(hit?.headers["transfer-encoding"]).toBeUndefined();
    expect(hit?.body).toBe(body);
  });
});
