/**
 * Memory and scale, in its own process with --expose-gc: `calls` calls over
 * `hosts` distinct hosts through one instance; heap after a forced GC at
 * every fifth of the run; then ns/op for 10, 1k and `hosts` hosts.
 */
import { createResilience } from "../src/index.ts";

const [callsArg = "1000000", hostsArg = "100000"] = process.argv.slice(2);
const calls = Number(callsArg);
const hosts = Number(hostsArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");
const stub = () => Promise.resolve(new Response(null));
const heap = () => {
  gc();
  return process.memoryUsage().heapUsed;
};

const resilience = createResilience({ fetch: stub });
const heapMb: number[] = [heap() / 2 ** 20];
for (let i = 0; i < calls; i++) {
  await resilience.fetch(`https://h${i % hosts}.example/gen`);
  if ((i + 1) % (calls / 5) === 0) heapMb.push(heap() / 2 ** 20);
}
const breakers = resilience.debugInfo().breakerCount;

const perCall: Record<string, number> = {};
for (const n of [10, 1_000, hosts]) {
  const r = createResilience({ fetch: stub });
  const sample = Math.min(calls, 200_000);
  for (let i = 0; i < 20_000; i++) await r.fetch(`https://h${i % n}.example/gen`);
  const start = process.hrtime.bigint();
  for (let i = 0; i < sample; i++) await r.fetch(`https://h${i % n}.example/gen`);
  perCall[String(n)] = Number(process.hrtime.bigint() - start) / sample;
}
console.log(JSON.stringify({ calls, hosts, heapMb, breakers, nsPerCallByHosts: perCall }));
