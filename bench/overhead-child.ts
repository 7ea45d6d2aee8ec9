/**
 * One variant's success-path cost, in its own process: sequential awaited
 * calls to a stub fetch that resolves a fresh 200 Response with the same
 * small JSON body for every variant. `unread` drops the Response with its
 * body never read; `read` reads it with `await response.text()`, as a
 * caller of any of these libraries would (each one's result is a standard
 * Response here). Prints wall-clock and CPU ns/op as JSON.
 *
 *   node bench/overhead-child.ts <variant> [calls] [unread|read]
 */
import { variants } from "./variants.ts";

export const STUB_BODY = '{"ok":true}';
const [name, callsArg, modeArg = "unread"] = process.argv.slice(2);
const make = variants[name as string];
if (!make) throw new Error(`unknown variant ${name}`);
if (modeArg !== "read" && modeArg !== "unread") throw new Error(`mode must be read or unread, got ${modeArg}`);
const read = modeArg === "read";
const calls = Number(callsArg ?? 200_000);
const init = { status: 200, headers: { "content-type": "application/json" } };
const stub = () => Promise.resolve(new Response(STUB_BODY, init));
const call = make(stub, { breakerTimeout: 2_000 });
const url = "http://127.0.0.1:1/gen/x";
const once = read
  ? async () => {
      const r = await call(url);
      // Every variant resolves a Response on a 200; anything else is a bug in the variant.
      if (!(r instanceof Response)) throw new Error(`${name} did not resolve a Response`);
      if ((await r.text()) !== STUB_BODY) throw new Error(`${name}: unexpected body`);
    }
  : () => call(url);
for (let i = 0; i < 20_000; i++) await once(); // warm up the JIT
const cpu = process.cpuUsage();
const start = process.hrtime.bigint();
for (let i = 0; i < calls; i++) await once();
const ns = Number(process.hrtime.bigint() - start) / calls;
const used = process.cpuUsage(cpu);
// CPU time of every thread of the process (GC helpers included): less moved
// than wall time by other work on a shared machine.
const cpuNs = ((used.user + used.system) * 1000) / calls;
console.log(JSON.stringify({ name, mode: modeArg, nsPerOp: ns, cpuNsPerOp: cpuNs }));
