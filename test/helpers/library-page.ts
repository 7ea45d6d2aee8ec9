import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "../runtimes/chromium.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BUILD = resolve(ROOT, "dist/browser");

/** The page: the browser build's root, `./fallback` and `./degradation`, their exports together on `window.lib`. */
const PAGE = `<!doctype html>
<meta charset="utf-8" />
<script type="module">
  import * as root from "/dist/browser/index.js";
  import * as chains from "/dist/browser/fallback/index.js";
  import * as levels from "/dist/browser/degradation/index.js";
  window.lib = { ...root, ...chains, ...levels };
</script>`;

/** What `window.lib` holds in the page, for typing `page.evaluate`'s callbacks. */
export type PageLib = typeof import("../../src/index.ts") &
  typeof import("../../src/fallback/index.ts") &
  typeof import("../../src/degradation/index.ts");

export interface LibraryPage {
  page: Page;
  /** Stops Chromium and the server. */
  close(): Promise<void>;
}

/**
 * A real Chromium page on the browser build (`npm run build` first), served
 * from 127.0.0.1: `/` loads the root, `./fallback` and `./degradation` into
 * `window.lib` (see {@link PageLib}), `/dist/browser/` serves the build, and
 * any other request goes to `handle`, same origin as the page.
 */
export async function openLibraryPage(
  handle: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): Promise<LibraryPage> {
  if (!existsSync(resolve(BUILD, "index.js")))
    throw new Error("run `npm run build` first: the page loads dist/browser/");
  const server = createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0] as string;
    if (path === "/") return void res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
    if (path.startsWith("/dist/browser/")) {
      const file = resolve(ROOT, `.${path}`);
      if (!file.startsWith(BUILD)) return void res.writeHead(404).end();
      return void readFile(file).then(
        (text) => res.writeHead(200, { "content-type": "text/javascript" }).end(text),
        () => res.writeHead(404).end(),
      );
    }
    await handle(req, res);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let browser: Browser | undefined;
  const close = async (): Promise<void> => {
    await browser?.close();
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  };
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => (window as unknown as { lib?: unknown }).lib !== undefined);
    return { page, close };
  } catch (error) {
    await close();
    throw error;
  }
}
