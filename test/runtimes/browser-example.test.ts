import { readFile } from "node:fs/promises";
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, resolve } from "node:path";
import { build } from "vite";
import { afterAll, beforeAll, expect, it } from "vitest";
import { launchChromium } from "./chromium.ts";

/**
 * examples/browser, built with Vite and driven in real Chromium against a
 * fake image API on 127.0.0.1 (another origin, so CORS applies).
 */
const ROOT = resolve(import.meta.dirname, "../..");
const PAGE = resolve(ROOT, "examples/browser/dist");
let mode: "flaky" | "ok" | "down" = "flaky";
let calls = 0;
const servers: Server[] = [];

async function listen(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let site = "";
let api = "";
beforeAll(async () => {
  await build({ configFile: resolve(ROOT, "examples/browser/vite.config.ts"), logLevel: "silent" });
  site = await listen(async (req, res) => {
    const file = resolve(PAGE, `.${req.url === "/" || req.url?.startsWith("/?") ? "/index.html" : req.url}`);
    let content: Buffer;
    try {
      content = await readFile(file);
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": extname(file) === ".js" ? "text/javascript" : "text/html" }).end(content);
  });
  api = await listen((req, res) => {
    const cors = {
      "access-control-allow-origin": "*",
      "access-control-allow-headers": "*",
      "access-control-allow-methods": "POST, OPTIONS",
    };
    if (req.method === "OPTIONS") return void res.writeHead(204, cors).end();
    let body = "";
    req.on("data", (d) => {
      body += d;
    });
    req.on("end", () => {
      calls++;
      if (mode === "down" || (mode === "flaky" && calls <= 2)) return void res.writeHead(503, cors).end();
      const params = JSON.parse(body) as { steps: number; resolution: string };
      res
        .writeHead(200, { ...cors, "content-type": "application/json" })
        .end(JSON.stringify({ id: `img_${calls}`, ...params }));
    });
  });
}, 60_000);

afterAll(async () => {
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

it("generates images, degrades requests and shows an open breaker in Chromium", async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${site}/?api=${encodeURIComponent(api)}`);
    const item = (n: number) => page.locator("#images li").nth(n);

    await page.click("#generate");
    await expect.poll(() => item(0).textContent()).toMatch(/img_3 · 50 steps @ 1080p · 3 attempt\(s\), level full/);

    mode = "ok";
    await page.click("#degrade");
    await page.click("#degrade");
    await expect.poll(() => page.textContent("#level")).toBe("medium");
    await page.click("#generate");
    await expect.poll(() => item(1).textContent()).toMatch(/30 steps @ 720p · 1 attempt\(s\), level medium/);

    mode = "down";
    for (let i = 0; i < 4; i++) {
      await page.click("#generate");
      await expect.poll(() => page.locator("#images li").count()).toBe(3 + i);
    }
    await expect.poll(() => page.locator("#breakers li").first().getAttribute("class")).toBe("state-open");
    expect(await item(5).textContent()).toBe("not sent: the API's breaker is open");
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
}, 90_000);
