/**
 * A script calling a generation API through `createClient` (ky on
 * `resilience.fetch`), with a fallback provider and a zod-validated answer.
 * It starts two local fake providers itself, so it runs offline.
 * Run: node examples/node/generate-with-ky.ts (after `npm run build`).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createResilience, getResilienceInfo } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { createClient } from "@storycore/resilient-fetch/ky";
import * as z from "zod";

const Job = z.object({ id: z.string(), status: z.enum(["queued", "running", "done"]), provider: z.string() });

async function provider(name: string, answer: (n: number) => number): Promise<{ url: string; server: Server }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const status = answer(++n);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(status === 200 ? JSON.stringify({ id: `${name}-${n}`, status: "queued", provider: name }) : "{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const primary = await provider("primary", () => 503); // down today
const backup = await provider("backup", () => 200);

const resilience = createResilience({
  retry: { maxAttempts: 2, initialDelay: 100, idempotencyKey: true },
  fallback: fallback([
    {
      name: "images",
      endpoints: [
        { name: "primary", url: `${primary.url}/v1`, validate: Job },
        { name: "backup", url: `${backup.url}/v1`, validate: Job },
      ],
    },
  ]),
});
resilience.on("fallback", (e) => console.log(`fallback: ${e.from} → ${e.next} (${e.reason})`));

const api = createClient({ prefix: `${primary.url}/v1`, resilience });
const response = await api.post("images", { json: { prompt: "a lighthouse at dusk", steps: 30 } });
const job = Job.parse(await response.clone().json());
console.log(job, getResilienceInfo(response));
primary.server.close();
backup.server.close();
