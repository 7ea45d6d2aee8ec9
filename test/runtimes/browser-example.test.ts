import { copyFileSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type BrowserExample, startBrowserExample } from "../../examples/browser/serve.ts";
import { launchChromium } from "./chromium.ts";

/**
 * examples/browser as `npm run example:browser` starts it (the fake image API
 * and the page under Vite, the page on another origin than the API, so CORS
 * applies), driven in real Chromium through its own buttons. The screenshot
 * lands in examples/browser/dist/ (git-ignored); UPDATE_SCREENSHOT=1 copies
 * it to docs/browser-example.png, which the README shows.
 */
const ROOT = resolve(import.meta.dirname, "../..");
const SHOT = resolve(ROOT, "examples/browser/dist/browser-example.png");
/** Real waits: backoffs and a one-second Retry-After happen in the page. */
const POLL = { timeout: 20_000 };
let example: BrowserExample;

beforeAll(async () => {
  example = await startBrowserExample();
}, 60_000);

afterAll(async () => {
  await example?.close();
});

it("generates images through retries, degradation, fallback and open breakers in Chromium", async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(example.url);
    const cards = page.locator("#gallery .card");
    const newest = cards.first();
    const settled = async (n: number) =>
      expect.poll(() => page.locator("#gallery .card[data-ok]").count(), POLL).toBe(n);
    const caption = () => newest.locator("figcaption").textContent();
    const canvas = () =>
      newest.locator("canvas").evaluate((c: HTMLCanvasElement) => [c.width, c.height, c.dataset.steps]);
    const log = () => page.locator("#log li").allTextContents();

    // Healthy: one attempt, full quality, drawn at a twentieth of 1080p.
    await page.click("#generate");
    await settled(1);
    expect(await caption()).toBe("50 steps · 1080pprimary1 attempt(s) · level full");
    expect(await canvas()).toEqual([96, 54, "50"]);

    // Flaky: the 503's Retry-After is readable across origins, so the library waits for it.
    await page.click('button[data-provider="primary"][data-mode="flaky"]');
    await expect.poll(() => example.primary.mode).toBe("flaky");
    await page.click("#generate");
    await settled(2);
    expect(await caption()).toBe("50 steps · 1080pprimary2 attempt(s) · level full");
    expect(await log()).toContainEqual(
      expect.stringMatching(/retry.*primary: attempt 1 failed \(status 503\); next in 1000 ms.*\(Retry-After\)/),
    );

    // Degraded twice: the provider receives 30 steps at 720p, and the image shows it.
    await page.click("#degrade");
    await page.click("#degrade");
    await expect.poll(() => page.textContent("#level")).toBe("medium");
    await page.click('button[data-provider="primary"][data-mode="ok"]');
    await expect.poll(() => example.primary.mode).toBe("ok");
    await page.click("#generate");
    await settled(3);
    expect(await caption()).toBe("30 steps · 720pprimary1 attempt(s) · level medium");
    expect(await canvas()).toEqual([64, 36, "30"]);

    // Primary down: its breaker opens and the backup serves.
    await page.click('button[data-provider="primary"][data-mode="down"]');
    await expect.poll(() => example.primary.mode).toBe("down");
    await page.click("#generate");
    await settled(4);
    expect(await caption()).toMatch(/^30 steps · 720pbackup\d attempt\(s\) · level medium$/);
    await expect.poll(() => page.getAttribute('[data-breaker="primary"]', "data-state"), POLL).toBe("open");
    expect((await log()).some((l) => l.includes("fallbackprimary passed over"))).toBe(true);
    expect((await log()).some((l) => l.includes("breakerprimary: closed → open"))).toBe(true);
    const backupRequests = example.backup.requests;
    await page.click("#generate");
    await settled(5);
    expect(await caption()).toBe("30 steps · 720pbackup1 attempt(s) · level medium"); // primary skipped, nothing sent to it
    expect(example.backup.requests).toBe(backupRequests + 1);
    mkdirSync(resolve(SHOT, ".."), { recursive: true });
    await page.screenshot({ path: SHOT });
    if (process.env.UPDATE_SCREENSHOT === "1") copyFileSync(SHOT, resolve(ROOT, "docs/browser-example.png"));

    // Both down: the call fails, then the next one is not even sent.
    await page.click('button[data-provider="backup"][data-mode="down"]');
    await expect.poll(() => example.backup.mode).toBe("down");
    await page.click("#generate");
    await settled(6);
    expect(await caption()).toBe("failed: no provider answered");
    await expect.poll(() => page.getAttribute('[data-breaker="backup"]', "data-state"), POLL).toBe("open");
    const sent = example.primary.requests + example.backup.requests;
    await page.click("#generate");
    await settled(7);
    expect(await caption()).toBe("not sent: every provider's breaker is open");
    expect(example.primary.requests + example.backup.requests).toBe(sent);
    expect(await cards.count()).toBe(7);
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
}, 120_000);

it("steps the quality down by itself when the provider turns slow, and asks it for less", async () => {
  example.primary.mode = "ok";
  example.backup.mode = "ok";
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(example.url);
    await page.click('button[data-provider="primary"][data-mode="slow"]');
    await expect.poll(() => example.primary.mode).toBe("slow");
    // 40 ms per step: 50 steps take 2 s, above the page's 1.5 s response-time trigger.
    const steps: number[] = [];
    // Four slow answers fill the trigger's sample; each further one may step a level down (2 s apart).
    for (let n = 1; n <= 10 && !steps.some((k) => k < 50); n++) {
      await page.click("#generate");
      await expect.poll(() => page.locator("#gallery .card[data-ok]").count(), POLL).toBe(n);
      steps.push(Number(await page.locator("#gallery .card canvas").first().getAttribute("data-steps")));
    }
    expect(await page.textContent("#level")).not.toBe("full");
    expect(steps[0]).toBe(50);
    expect(Math.min(...steps)).toBeLessThan(50);
    expect(await page.locator("#log li.log-level").count()).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
}, 120_000);
