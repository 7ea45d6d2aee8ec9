/**
 * `npm run dev:worker`: two fake generation providers on 127.0.0.1:9101 and
 * :9102, and the example Worker under `wrangler dev` on :8787 (no account).
 * Ctrl-C stops all three. Set PREMIUM_FAIL_RATE=0.5 to make the premium one flaky.
 */
import { spawn } from "node:child_process";
import { startFakeApi } from "../../demo/fake-api.ts";
import { seededRandom } from "../../src/testing/index.ts";

const premium = await startFakeApi("premium", seededRandom(1), 9101);
const standard = await startFakeApi("standard", seededRandom(2), 9102);
premium.behaviour.failRate = Number(process.env.PREMIUM_FAIL_RATE ?? 0);
console.log(
  `fake providers: premium ${premium.url} (fail rate ${premium.behaviour.failRate}), standard ${standard.url}`,
);

const wrangler = spawn("npx", ["wrangler", "dev", "--port", "8787", "--ip", "127.0.0.1"], { stdio: "inherit" });
const stop = async () => {
  wrangler.kill("SIGINT");
  await Promise.all([premium.close(), standard.close()]);
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
wrangler.on("exit", (code) => {
  void Promise.all([premium.close(), standard.close()]).then(() => process.exit(code ?? 0));
});
