/**
 * Connection reuse across retries, measured: a node:http server on 127.0.0.1
 * answers each call's first request with a 503 carrying a 64 KiB body and its
 * second with a 200, and counts the TCP connections it accepts. Compared:
 * plain fetch that reads the 503's body before asking again, plain fetch that
 * cancels it (what the library did before it drained), and resilient fetch.
 *
 *   node bench/connections.ts [calls=2000]
 *
 * Prints one line per variant and a JSON summary. Takes a few seconds.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createResilience } from "../src/index.ts";

const FAILED_BODY = "x".repeat(64 * 1024);

interface Measured {
  variant: string;
  calls: number;
  requests: number;
  connections: number;
  ms: number;
}

/** A server whose answer depends on how many times it saw the path: 503 first, 200 after. */
function startServer(): Promise<{ server: Server; url: string; counts: { requests: number; connections: number } }> {
  const counts = { requests: 0, connections: 0 };
  const seen = new Map<string, number>();
  const server = createServer((req, res) => {
    counts.requests++;
    const path = req.url ?? "/";
    const n = (seen.get(path) ?? 0) + 1;
    seen.set(path, n);
    req.resume();
    if (n === 1) res.writeHead(503, { "content-type": "text/plain" }).end(FAILED_BODY);
    else res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  });
  server.on("connection", () => counts.connections++);
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}`, counts });
    });
  });
}

/** Runs `calls` sequential calls of `call` against a fresh server. */
export async function measure(variant: string, calls: number, call: (url: string) => Promise<void>): Promise<Measured> {
  const { server, url, counts } = await startServer();
  const started = performance.now();
  try {
    for (let i = 0; i < calls; i++) await call(`${url}/call/${variant}/${i}`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  return { variant, calls, ...counts, ms: Math.round(performance.now() - started) };
}

async function plain(url: string, onFailed: (response: Response) => Promise<void>): Promise<void> {
  const first = await fetch(url);
  if (first.status !== 503) throw new Error(`expected 503, got ${first.status}`);
  await onFailed(first);
  const second = await fetch(url);
  if (second.status !== 200) throw new Error(`expected 200, got ${second.status}`);
  await second.text();
}

/** The three variants, each on its own server. */
export async function runConnections(calls: number): Promise<Measured[]> {
  // Retries without waiting and no breaker: this measures connections, not policy.
  const resilience = createResilience({
    retry: { maxAttempts: 2, initialDelay: 0, maxDelay: 0, jitter: "none" },
    breaker: false,
    budget: false,
  });
  return [
    await measure("plain-read", calls, (url) =>
      plain(url, async (r) => {
        await r.arrayBuffer();
      }),
    ),
    await measure("plain-cancel", calls, (url) => plain(url, (r) => r.body?.cancel() ?? Promise.resolve())),
    await measure("resilient", calls, async (url) => {
      const response = await resilience.fetch(url);
      if (response.status !== 200) throw new Error(`expected 200, got ${response.status}`);
      await response.text();
    }),
  ];
}

if (import.meta.main) {
  const calls = Number(process.argv[2] ?? 2000);
  if (!Number.isInteger(calls) || calls < 1)
    throw new TypeError(`calls: expected a positive integer, got ${process.argv[2]}`);
  const results = await runConnections(calls);
  for (const r of results) {
    console.log(`${r.variant.padEnd(13)} ${r.requests} requests over ${r.connections} connections (${r.ms} ms)`);
  }
  console.log(JSON.stringify(results));
}
