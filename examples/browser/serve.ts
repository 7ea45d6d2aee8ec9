/**
 * `npm run example:browser`: the fake image API (two providers, CORS-correct)
 * and the page under Vite's dev server, all on 127.0.0.1. Prints the URL to
 * open; Ctrl-C stops everything. Ports: PAGE_PORT (5173), PRIMARY_PORT (9201),
 * BACKUP_PORT (9202). The page imports the built package (`npm run build`,
 * which the npm script runs first), as an app would.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "vite";
import { type FakeImageApi, startFakeImageApi } from "./fake-image-api.ts";

export interface BrowserExample {
  /** The page alone: it calls the providers on their default ports. */
  page: string;
  /** The page, with the providers' URLs in its query. */
  url: string;
  primary: FakeImageApi;
  backup: FakeImageApi;
  close(): Promise<void>;
}

const DIST = resolve(import.meta.dirname, "../../dist/browser/index.js");

export async function startBrowserExample(
  ports: { page?: number; primary?: number; backup?: number } = {},
): Promise<BrowserExample> {
  if (!existsSync(DIST))
    throw new Error(`the page imports the built package: run \`npm run build\` first (${DIST} is missing)`);
  const primary = await startFakeImageApi("primary", ports.primary ?? 0);
  const backup = await startFakeImageApi("backup", ports.backup ?? 0);
  const vite = await createServer({
    configFile: resolve(import.meta.dirname, "vite.config.ts"),
    server: { host: "127.0.0.1", port: ports.page ?? 0, strictPort: ports.page !== undefined && ports.page !== 0 },
    logLevel: "warn",
  });
  await vite.listen();
  const base = vite.resolvedUrls?.local[0] ?? "";
  const query = new URLSearchParams({ primary: primary.url, backup: backup.url });
  return {
    page: base,
    url: `${base}?${query}`,
    primary,
    backup,
    close: async () => {
      await vite.close();
      await Promise.all([primary.close(), backup.close()]);
    },
  };
}

/** A bad setting, a taken port or a missing build: said in one line, with no stack. */
function refuse(message: string): never {
  process.stderr.write(`example:browser: ${message}\n`);
  process.exit(1);
}

/** A port from the environment: digits, 0 to 65535 (0 picks a free one). */
function portFrom(name: string, fallback: number): number {
  const given = process.env[name];
  if (given === undefined) return fallback;
  const port = /^\d{1,5}$/.test(given) ? Number(given) : Number.NaN;
  if (!(port <= 65_535)) refuse(`${name}: expected a port from 0 to 65535, got ${JSON.stringify(given)}`);
  return port;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const ports = {
    page: portFrom("PAGE_PORT", 5173),
    primary: portFrom("PRIMARY_PORT", 9201),
    backup: portFrom("BACKUP_PORT", 9202),
  };
  const example = await startBrowserExample(ports).catch((error: unknown) =>
    // Node's "listen EADDRINUSE: address already in use 127.0.0.1:9201", Vite's "Port 5173 is already in use".
    refuse(error instanceof Error ? error.message : String(error)),
  );
  console.log(
    `fake image API: primary ${example.primary.url}, backup ${example.backup.url} (CORS allowed from any origin)`,
  );
  const defaults = example.primary.url.endsWith(":9201") && example.backup.url.endsWith(":9202");
  console.log(`open ${defaults ? example.page : example.url}`);
  console.log("Ctrl-C stops it.");
  const stop = () => void example.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
