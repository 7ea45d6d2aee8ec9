/**
 * A node:http upstream on 127.0.0.1 for the benchmarks, run as a child
 * process. Modes: "ok" always answers 200; "storm" answers 503 between
 * `outageFrom` and `outageTo` ms after the first request of the run;
 * "flaky" fails `rate` of requests at random. It counts requests per 100 ms
 * and serves the counts at GET /__stats.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const [mode = "ok", a = "0", b = "0"] = process.argv.slice(2);
let start: number | undefined;
const buckets: number[] = [];
let total = 0;
let seed = 7;
const random = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
};

const server = createServer((req, res) => {
  if (req.url === "/__stats") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ total, buckets }));
    return;
  }
  if (req.url === "/__start") {
    start = Date.now();
    res.end("ok");
    return;
  }
  const now = Date.now();
  start ??= now;
  const bucket = Math.floor((now - start) / 100);
  buckets[bucket] = (buckets[bucket] ?? 0) + 1;
  total++;
  req.resume();
  const t = now - start;
  const fail = mode === "storm" ? t >= Number(a) && t < Number(b) : mode === "flaky" ? random() < Number(a) : false;
  if (fail) res.writeHead(503).end();
  else res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
});
server.keepAliveTimeout = 5_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on("message", () => server.close(() => process.exit(0)));
process.on("disconnect", () => server.close(() => process.exit(0)));
