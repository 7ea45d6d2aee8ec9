import { type Browser, chromium } from "playwright-core";
import type { ConformanceResult } from "./conformance.js";

/** The flags that let Debian's Chromium run headless here, offline. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Debian's Chromium, headless, offline (never a downloaded browser). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: FLAGS });
}

/** Runs the conformance page in a real Chromium and returns its results. */
export async function runInChromium(
  api: string,
  alt: string,
): Promise<{ version: string; results: ConformanceResult[] }> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${api}/runtimes/page.html?api=${encodeURIComponent(api)}&alt=${encodeURIComponent(alt)}`);
    await page.waitForFunction(
      () => (window as unknown as { __results?: unknown }).__results !== undefined,
      undefined,
      { timeout: 60_000 },
    );
    const results = (await page.evaluate(
      () => (window as unknown as { __results: unknown }).__results,
    )) as ConformanceResult[];
    if (errors.length > 0) results.push({ check: "page errors", status: "fail", detail: errors.join("\n") });
    return { version: browser.version(), results };
  } finally {
    await browser.close();
  }
}
