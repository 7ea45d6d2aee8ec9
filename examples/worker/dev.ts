/**
 * `npm run dev:worker`: two fake generation providers on 127.0.0.1:9101 and
 * :9102, and the example Worker under `wrangler dev` on :8787 (no account).
 * Ctrl-C, or a SIGTERM to this process alone (a process manager's), stops
 * all three (exit 0). A wrangler that stops on its own ends it with
 * wrangler's code, 1 when a signal killed it. Set PREMIUM_FAIL_RATE=0.5 to
 * make the premium one flaky.
 */
import { spawn } from "node:child_process";
import { type FakeApi, startFakeApi } from "../../demo/fake-api.ts";
import { seededRandom } from "../../src/testing/index.ts";

/** A bad setting or a taken port: said in one line, with no stack. */
function refuse(message: string): never {
  process.stderr.write(`dev:worker: ${message}\n`);
  process.exit(1);
}

const rate = process.env.PREMIUM_FAIL_RATE ?? "0";
const failRate = /^(?:0(?:\.\d+)?|1(?:\.0+)?|\.\d+)$/.test(rate) ? Number(rate) : Number.NaN;
if (Number.isNaN(failRate)) refuse(`PREMIUM_FAIL_RATE: expected a number from 0 to 1, got ${JSON.stringify(rate)}`);

async function provider(name: string, seed: number, port: number): Promise<FakeApi> {
  try {
    return await startFakeApi(name, seededRandom(seed), port);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    refuse(`cannot listen on 127.0.0.1:${port} for the ${name} provider (${String(code ?? error)})`);
  }
}
const premium = await provider("premium", 1, 9101);
const standard = await provider("standard", 2, 9102);
premium.behaviour.failRate = failRate;
console.log(`fake providers: premium ${premium.url} (fail rate ${failRate}), standard ${standard.url}`);

// In its own process group, so that a stop reaches wrangler and the workerd processes it starts, not only `npx`.
const wrangler = spawn("npx", ["wrangler", "dev", "--port", "8787", "--ip", "127.0.0.1"], {
  stdio: "inherit",
  detached: true,
});
const closeProviders = () => Promise.all([premium.close(), standard.close()]);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  try {
    if (wrangler.pid !== undefined) process.kill(-wrangler.pid, "SIGINT");
  } catch {}
  // Wrangler exits on its own within a few seconds; the `exit` handler below then ends this process.
  setTimeout(() => {
    try {
      if (wrangler.pid !== undefined) process.kill(-wrangler.pid, "SIGKILL");
    } catch {}
  }, 5_000).unref();
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
// No `npx` on PATH: said in one line, as a taken port is, not as an unhandled `spawn npx ENOENT`.
wrangler.on("error", (error) => {
  const code = (error as { code?: unknown }).code;
  void closeProviders().then(() => refuse(`cannot start wrangler with npx (${String(code ?? error)})`));
});
wrangler.on("exit", (code, signal) => {
  // Killed by a signal this process did not send (the OOM killer, a SIGKILL): a failure, not a clean stop.
  if (!stopping && code === null) process.stderr.write(`dev:worker: wrangler was killed by ${signal}\n`);
  void closeProviders().then(() => process.exit(stopping ? 0 : (code ?? 1)));
});
