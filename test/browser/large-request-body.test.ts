import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type LibraryPage, openLibraryPage } from "../helpers/library-page.ts";

/**
 * A `Request` input whose body passes `maxReplayBytes`, in a real Chromium
 * page on the browser build, against an HTTP/1.1 server (node:http). The
 * layer used to send the part it had read ahead and the rest as one stream
 * of its making, which Chromium refuses over HTTP/1.1 ("Failed to fetch"):
 * an upload past the limit through ky (which hands its transport a
 * `Request`) failed against any `http://` or HTTP/1.1 API. The browser build
 * now reads the body whole, as it reads a keepalive one, and sends those
 * bytes, still once (docs/retry.md, "Bodies").
 */
type Lib = typeof import("../../src/index.ts");
interface Received {
  path: string;
  method: string;
  bytes: number;
  length: string | undefined;
  chunked: boolean;
}
const received: Received[] = [];
let opened: LibraryPage;
let page: Page;

beforeAll(async () => {
  opened = await openLibraryPage(async (req, res) => {
    let bytes = 0;
    for await (const chunk of req) bytes += (chunk as Buffer).byteLength;
    const path = (req.url ?? "/").split("?")[0] as string;
    received.push({
      path,
      method: req.method ?? "",
      bytes,
      length: req.headers["content-length"],
      chunked: req.headers["transfer-encoding"] === "chunked",
    });
    res.writeHead(path === "/declines" ? 503 : 200, { "content-type": "text/plain" }).end(String(bytes));
  });
  page = opened.page;
}, 60_000);

afterAll(async () => {
  await opened?.close();
});

const sentTo = (path: string) => received.filter((r) => r.path === path);

it("Chromium sends the Request as given, and the layer sends it whole too: its bytes, with their length, once", async () => {
  const results = await page.evaluate(async () => {
    const { createResilience, getResilienceInfo } = (window as unknown as { lib: Lib }).lib;
    const resilience = createResilience({
      maxReplayBytes: 1024,
      retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 2, jitter: "none" },
    });
    const outcome = (p: Promise<Response>) =>
      p.then(
        async (r) => `${r.status} ${await r.text()} attempts ${getResilienceInfo(r)?.attempts}`,
        (e: Error) => `${e.name}: ${e.message}`,
      );
    const text = "x".repeat(4096);
    return {
      plainFetch: await outcome(fetch(new Request("/plain", { method: "PUT", body: text }))),
      string: await outcome(resilience.fetch(new Request("/string", { method: "PUT", body: text }))),
      blob: await outcome(resilience.fetch(new Request("/blob", { method: "PUT", body: new Blob([text, "yz"]) }))),
      bytes: await outcome(resilience.fetch(new Request("/bytes", { method: "PUT", body: new Uint8Array(5000) }))),
      // Past the limit, a body is sent once: a 503 is the answer, not retried.
      declines: await outcome(resilience.fetch(new Request("/declines", { method: "PUT", body: text }))),
      // Within the limit, read into bytes and replayed, as before.
      small: await outcome(resilience.fetch(new Request("/declines", { method: "PUT", body: "s".repeat(100) }))),
      failures: Object.values(resilience.health().breakers).map((b) => b.failureCount),
    };
  });
  expect(results.plainFetch).toBe("200 4096 attempts undefined");
  expect(results.string).toBe("200 4096 attempts 1");
  expect(results.blob).toBe("200 4098 attempts 1");
  expect(results.bytes).toBe("200 5000 attempts 1");
  expect(results.declines).toBe("503 4096 attempts 1");
  expect(results.small).toBe("503 100 attempts 3");
  for (const [path, bytes] of [
    ["/string", 4096],
    ["/blob", 4098],
    ["/bytes", 5000],
  ] as const) {
    expect(sentTo(path)).toEqual([{ path, method: "PUT", bytes, length: String(bytes), chunked: false }]);
  }
  expect(sentTo("/declines").map((r) => r.bytes)).toEqual([4096, 100, 100, 100]);
});

it("a caller's abort while the body is read whole rejects with its reason and cancels the source, nothing sent", async () => {
  const result = await page.evaluate(async () => {
    const { createResilience } = (window as unknown as { lib: Lib }).lib;
    const resilience = createResilience({ maxReplayBytes: 1024 });
    const controller = new AbortController();
    const reason = new Error("left the page");
    // A stream body past the limit that then stalls: the read ahead passes the limit, the rest never comes.
    let pulls = 0;
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      cancel() {
        cancelled = true;
      },
      pull(c) {
        if (pulls++ < 2) c.enqueue(new Uint8Array(800));
        else return new Promise<void>(() => {});
      },
    });
    const pending = resilience.fetch(
      new Request("/aborted", { method: "PUT", body, duplex: "half" } as RequestInit & { duplex: string }),
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(reason), 50);
    const settled = await pending.then(
      () => "resolved",
      (e: unknown) => (e === reason ? "its reason" : String(e)),
    );
    return { settled, cancelled };
  });
  expect(result).toEqual({ settled: "its reason", cancelled: true });
  expect(sentTo("/aborted")).toEqual([]);
});
