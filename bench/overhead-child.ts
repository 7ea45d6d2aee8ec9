/**
 * One variant's success-path cost, in its own process: sequential awaited
 * calls to a stub fetch that resolves a ready Response (body never read).
 * Prints ns/op as JSON.
 */
import { variants } from "./variants.ts";

const [name, callsArg] = process.argv.slice(2);
const make = variants[name as string];
if (!make) throw new Error(`unknown variant ${name}`);
const calls = Number(callsArg ?? 200_000);
const stub = () => Promise.resolve(new Response(null, { status: 200 }));
const call = make(stub, { breakerTimeout: 2_000 });
const url = "http://127.0.0.1:1/gen/x";
for (let i = 0; i < 20_000; i++) await call(url); // warm up the JIT
const start = process.hrtime.bigint();
for (let i = 0; i < calls; i++) await call(url);
const ns = Number(process.hrtime.bigint() - start) / calls;
console.log(JSON.stringify({ name, nsPerOp: ns }));
