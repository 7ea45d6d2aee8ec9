/**
 * One variant's success path under callgrind: the same stub, calls and read
 * as `overhead-child.ts`, but after the warm-up it asks callgrind (through
 * `callgrind_control`) to zero its counters, makes the measured calls, then
 * to dump them, so the dump holds the measured calls only: no start-up and,
 * with a long enough warm-up, no JIT compilation. The event loop turns once
 * every 1,000 calls (see below).
 *
 *   valgrind --tool=callgrind node bench/instructions-child.ts <variant> <calls> <warmup> <unread|read>
 */
import { execFileSync } from "node:child_process";
import { variants } from "./variants.ts";

const [name, callsArg, warmupArg, mode] = process.argv.slice(2);
const make = variants[name as string];
if (!make) throw new Error(`unknown variant ${name}`);
if (mode !== "read" && mode !== "unread") throw new Error(`mode must be read or unread, got ${mode}`);
const calls = Number(callsArg);
const warmup = Number(warmupArg);
// The same body as overhead-child.ts (a script: importing it would run it).
const STUB_BODY = '{"ok":true}';
const init = { status: 200, headers: { "content-type": "application/json" } };
const stub = () => Promise.resolve(new Response(STUB_BODY, init));
const call = make(stub, { breakerTimeout: 2_000 });
const url = "http://127.0.0.1:1/gen/x";
const once =
  mode === "read"
    ? async () => {
        const r = await call(url);
        if (!(r instanceof Response) || (await r.text()) !== STUB_BODY) throw new Error(`${name}: unexpected result`);
      }
    : () => call(url);
// The stub settles in microtasks, so a loop of calls alone never lets the
// event loop turn and V8's own tasks never run. A real caller's loop turns
// on I/O; here one turn every 1,000 calls, the same for every variant.
const TURN_EVERY = 1_000;
const turn = () => new Promise((resolve) => setImmediate(resolve));
const loop = async (n: number) => {
  for (let i = 1; i <= n; i++) {
    await once();
    if (i % TURN_EVERY === 0) await turn();
  }
};
await loop(warmup);
const control = (flag: string) => execFileSync("callgrind_control", [flag, String(process.pid)], { stdio: "ignore" });
control("-z");
await loop(calls);
control("-d");
