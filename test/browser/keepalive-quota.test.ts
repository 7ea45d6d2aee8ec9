import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type LibraryPage, openLibraryPage } from "../helpers/library-page.ts";

/**
 * A keepalive request whose body passes 64 KiB, in a real Chromium page on
 * the browser build, same origin (so no CORS rule is involved): Chromium
 * refuses it with the bare "Failed to fetch" a CORS refusal gives, which the
 * layer used to count against the host and hint as CORS. The browser build
 * now refuses it at once, naming the limit, with nothing sent
 * (docs/retry.md, "Bodies").
 */
type Lib = typeof import("../../src/index.ts");
const received: Array<{ path: string; bytes: number }> = [];
let opened: LibraryPage;
let page: Page;

beforeAll(async () => {
  opened = await openLibraryPage(async (req, res) => {
    let bytes = 0;
    for await (const chunk of req) bytes += (chunk as Buffer).byteLength;
    received.push({ path: (req.url ?? "/").split("?")[0] as string, bytes });
    res.writeHead(200, { "content-type": "text/plain" }).end(String(bytes));
  });
  page = opened.page;
}, 60_000);

afterAll(async () => {
  await opened?.close();
});

it("Chromium itself refuses a keepalive body over 64 KiB as it refuses CORS: 'Failed to fetch', nothing sent", async () => {
  const result = await page.evaluate(async () => {
    try {
      await fetch("/plain", { method: "POST", keepalive: true, body: "x".repeat(70_000) });
      return "sent";
    } catch (error) {
      return `${(error as Error).name}: ${(error as Error).message}`;
    }
  });
  expect(result).toMatch(/^TypeError: Failed to fetch/);
  expect(received.filter((r) => r.path === "/plain")).toEqual([]);
});

it("the browser build refuses it at once, naming the limit, blaming no host, on a plain call and a Request input", async () => {
  const results = await page.evaluate(async () => {
    const { createResilience } = (window as unknown as { lib: Lib }).lib;
    const resilience = createResilience();
    const big = "x".repeat(70_000);
    const outcome = (p: Promise<Response>) =>
      p.then(
        (r) => `status ${r.status}`,
        (e: Error) => `${e.name}: ${e.message}`,
      );
    return {
      string: await outcome(resilience.fetch("/string", { method: "POST", keepalive: true, body: big })),
      bytes: await outcome(
        resilience.fetch("/bytes", { method: "POST", keepalive: true, body: new Uint8Array(65_537) }),
      ),
      request: await outcome(resilience.fetch(new Request("/request", { method: "POST", keepalive: true, body: big }))),
      // Two-byte characters: 40,000 of them are 80,000 bytes, though the string's length is under the cap.
      utf8: await outcome(resilience.fetch("/utf8", { method: "POST", keepalive: true, body: "é".repeat(40_000) })),
      atCap: await outcome(
        resilience.fetch("/at-cap", { method: "POST", keepalive: true, body: new Uint8Array(65_536) }),
      ),
      notKeepalive: await outcome(resilience.fetch("/not-keepalive", { method: "POST", body: big })),
      failures: Object.values(resilience.health().breakers).map((b) => b.failureCount),
    };
  });
  const refused =
    /^TypeError: resilience\.fetch: browsers send a keepalive request body of 64 KiB at most, got (\d+) bytes$/;
  expect(results.string).toMatch(refused);
  expect(results.string).toContain("got 70000 bytes");
  expect(results.bytes).toContain("got 65537 bytes");
  expect(results.request).toContain("got 70000 bytes");
  expect(results.utf8).toContain("got 80000 bytes");
  expect(results.atCap).toBe("status 200");
  expect(results.notKeepalive).toBe("status 200");
  expect(results.failures.every((n) => n === 0)).toBe(true);
  expect(
    received
      .map((r) => r.path)
      .filter((p) => p !== "/favicon.ico")
      .sort(),
  ).toEqual(["/at-cap", "/not-keepalive"]);
});
