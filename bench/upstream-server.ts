/**
 * A node:http upstream on 127.0.0.1 for the benchmarks, run as a child
 * process. Modes: "ok" always answers 200; "storm" answers 503 between
 * `outageFrom` and `outageTo` ms after the first request of the run;
 * "flaky" answers 503 to `rate` of requests, drawn from `seed`
 * (bench/seeded.ts): a request naming its call (`?call=<i>`) gets draw k of
 * that call's stream for its k-th attempt, so a call meets the same answers
 * whatever the interleaving of clients and backoff delays; any other request
 * gets the next draw of the arrival-order stream. It counts requests per
 * 100 ms, and attempts per call id, and serves them at GET /__stats.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { DEFAULT_SEED, draw, failsAt } from "./seeded.ts";

const [mode = "ok", a = "0", b = String(DEFAULT_SEED)] = process.argv.slice(2);
let start: number | undefined;
const buckets: number[] = [];
let total = 0;
const rate = Number(a);
const seed = Number(b);
let arrivals = 0;
/** Attempts received per call id (flaky mode, requests with `?call=`). */
const perCall: number[] = [];
const flaky = (url: string): boolean => {
  const at = url.indexOf("call=");
  if (at < 0) return draw(seed, 0, arrivals++) < rate;
  const call = Number.parseInt(url.slice(at + 5), 10);
  const attempt = perCall[call] ?? 0;
  perCall[call] = attempt + 1;
  return failsAt(rate, seed, call, attempt);
};

const server = createServer((req, res) => {
  if (req.url === "/__stats") {
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ total, buckets, perCall: Array.from(perCall, (n) => n ?? 0) }));
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
  const fail = mode === "storm" ? t >= Number(a) && t < Number(b) : mode === "flaky" ? flaky(req.url ?? "") : false;
  if (fail) res.writeHead(503).end();
  else res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
});
server.keepAliveTimeout = 5_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on("message", () => server.close(() => process.exit(0)));
process.on("disconnect", () => server.close(() => process.exit(0)));
