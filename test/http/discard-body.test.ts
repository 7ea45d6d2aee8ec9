import { afterEach, describe, expect, it, vi } from "vitest";
import { measure } from "../../bench/connections.ts";
import { DRAIN_MAX_BYTES, DRAIN_MAX_MS, discardBody, keepBody } from "../../src/http/send/discard-body.ts";
import { createResilience } from "../../src/index.ts";

/** A body that sends `chunks` (then closes, or stalls) and says how it ended. */
function source(chunks: Uint8Array[], options: { stall?: boolean; headers?: HeadersInit } = {}) {
  let sent = 0;
  let resolveEnd: (how: "read to the end" | "cancelled") => void = () => {};
  const ended = new Promise<"read to the end" | "cancelled">((resolve) => {
    resolveEnd = resolve;
  });
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent < chunks.length) {
        controller.enqueue(chunks[sent++] as Uint8Array);
        return;
      }
      if (options.stall) return new Promise<void>(() => {});
      controller.close();
      resolveEnd("read to the end");
    },
    cancel() {
      resolveEnd("cancelled");
    },
  });
  return { response: new Response(stream, { status: 503, headers: options.headers ?? {} }), ended, pulled: () => sent };
}

const kib = (n: number) => new Uint8Array(n * 1024);

afterEach(() => {
  vi.useRealTimers();
});

describe("discardBody", () => {
  it("reads a small body to its end instead of cancelling it", async () => {
    const body = source([kib(16), kib(16), kib(32)]);
    discardBody(body.response);
    expect(await body.ended).toBe("read to the end");
    expect(body.pulled()).toBe(3);
  });

  it("cancels at once a body whose Content-Length is over the bound, without reading it", async () => {
    const body = source([kib(16)], { headers: { "content-length": String(DRAIN_MAX_BYTES + 1) } });
    discardBody(body.response);
    expect(await body.ended).toBe("cancelled");
    expect(body.response.body?.locked).toBe(false);
  });

  it("cancels a body without a length once more than the bound has arrived", async () => {
    const body = source([kib(40), kib(40), kib(40), kib(40)]);
    discardBody(body.response);
    expect(await body.ended).toBe("cancelled");
    expect(body.pulled()).toBeLessThan(4);
  });

  it("cancels a body that stalls, after the time bound, on a timer that is cleared otherwise", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const body = source([kib(1)], { stall: true });
    discardBody(body.response);
    let ended: string | undefined;
    void body.ended.then((how) => {
      ended = how;
    });
    await vi.advanceTimersByTimeAsync(DRAIN_MAX_MS - 1);
    expect(ended).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(ended).toBe("cancelled");
    expect(vi.getTimerCount()).toBe(0);

    const quick = source([kib(1)]);
    discardBody(quick.response);
    await quick.ended;
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("drains a body whose Content-Length is exactly the bound", async () => {
    const body = source([kib(32), kib(32)], { headers: { "content-length": String(DRAIN_MAX_BYTES) } });
    discardBody(body.response);
    expect(await body.ended).toBe("read to the end");
    expect(body.pulled()).toBe(2);
  });

  it("its drain timer never keeps a Node process alive", async () => {
    const realSetTimeout = globalThis.setTimeout;
    const handles: NodeJS.Timeout[] = [];
    const spy = vi.spyOn(globalThis, "setTimeout").mockImplementation(((callback: () => void, ms?: number) => {
      const handle = realSetTimeout(callback, ms);
      handles.push(handle);
      return handle;
    }) as typeof setTimeout);
    let finish: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await gate;
        controller.close();
      },
    });
    try {
      discardBody(new Response(stream));
      await Promise.resolve();
      expect(handles.length).toBe(1);
      expect(handles[0]?.hasRef()).toBe(false);
    } finally {
      spy.mockRestore();
      finish();
    }
  });

  describe("on runtimes whose timers are numbers (Deno, browsers, workerd)", () => {
    const deno = (globalThis as { Deno?: unknown }).Deno;
    afterEach(() => {
      vi.restoreAllMocks();
      (globalThis as { Deno?: unknown }).Deno = deno;
    });

    function numberTimers(handle: unknown) {
      const cleared: unknown[] = [];
      vi.spyOn(globalThis, "setTimeout").mockImplementation((() => handle) as unknown as typeof setTimeout);
      vi.spyOn(globalThis, "clearTimeout").mockImplementation(((id: unknown) => {
        cleared.push(id);
      }) as typeof clearTimeout);
      return cleared;
    }

    it("asks Deno to unref the timer, drains the body and clears the timer", async () => {
      const cleared = numberTimers(42);
      const unrefTimer = vi.fn();
      (globalThis as { Deno?: unknown }).Deno = { unrefTimer };
      const body = source([kib(1)]);
      discardBody(body.response);
      expect(await body.ended).toBe("read to the end");
      await new Promise((resolve) => setImmediate(resolve));
      expect(unrefTimer.mock.calls).toEqual([[42]]);
      expect(cleared).toEqual([42]);
    });

    it.each([
      ["no Deno (a browser)", undefined],
      ["a Deno without unrefTimer", {}],
    ])("still drains the body with %s", async (_what, denoGlobal) => {
      const cleared = numberTimers(7);
      (globalThis as { Deno?: unknown }).Deno = denoGlobal;
      const body = source([kib(1), kib(1)]);
      discardBody(body.response);
      expect(await body.ended).toBe("read to the end");
      await new Promise((resolve) => setImmediate(resolve));
      expect(cleared).toEqual([7]);
    });

    it("leaves a timer handle of another shape alone and still drains the body", async () => {
      const handle = { id: 1 };
      const cleared = numberTimers(handle);
      const unrefTimer = vi.fn();
      (globalThis as { Deno?: unknown }).Deno = { unrefTimer };
      const body = source([kib(1)]);
      discardBody(body.response);
      expect(await body.ended).toBe("read to the end");
      await new Promise((resolve) => setImmediate(resolve));
      expect(unrefTimer).not.toHaveBeenCalled();
      expect(cleared).toEqual([handle]);
    });
  });

  it("leaves alone a body that is locked or absent, and never throws", async () => {
    const locked = source([kib(1)]);
    const reader = locked.response.body?.getReader();
    expect(() => discardBody(locked.response)).not.toThrow();
    expect((await reader?.read())?.value?.byteLength).toBe(1024);
    expect(() => discardBody(new Response(null, { status: 503 }))).not.toThrow();
  });

  it("swallows a body that fails while it drains", async () => {
    const failing = new Response(
      new ReadableStream({
        pull(controller) {
          controller.error(new TypeError("terminated"));
        },
      }),
    );
    const unhandled = vi.fn();
    process.on("unhandledRejection", unhandled);
    try {
      discardBody(failing);
      // Two macrotask turns: enough for a rejected drain to be reported.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off("unhandledRejection", unhandled);
    }
  });
});

describe("keepBody", () => {
  it("keeps a response without a body as it was, status and headers too", async () => {
    const kept = await keepBody(new Response(null, { status: 204, headers: { etag: '"v1"' } }));
    expect([kept?.status, kept?.body, kept?.headers.get("etag")]).toEqual([204, null, '"v1"']);
  });

  it("keeps a small body in memory, and answers for the response it replaces (url, redirected)", async () => {
    const original = source([kib(1), kib(2)]).response;
    Object.defineProperty(original, "url", { value: "https://a.example/final" });
    Object.defineProperty(original, "redirected", { value: true });
    const kept = await keepBody(original);
    expect([kept?.status, kept?.url, kept?.redirected]).toEqual([503, "https://a.example/final", true]);
    expect((await kept?.arrayBuffer())?.byteLength).toBe(3 * 1024);
  });

  it("keeps nothing of a body over the bound, by Content-Length or as it arrives", async () => {
    const declared = source([kib(1)], { headers: { "content-length": String(DRAIN_MAX_BYTES + 1) } });
    expect(await keepBody(declared.response)).toBeUndefined();
    expect(await declared.ended).toBe("cancelled");
    const streamed = source([kib(40), kib(40)]);
    expect(await keepBody(streamed.response)).toBeUndefined();
  });

  it("keeps nothing of a body that stalls past the time bound (not the part that arrived)", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const body = source([kib(1)], { stall: true });
    const kept = keepBody(body.response);
    await vi.advanceTimersByTimeAsync(DRAIN_MAX_MS);
    expect(await kept).toBeUndefined();
    expect(await body.ended).toBe("cancelled");
  });
});

describe("connections kept across retries (node:http on 127.0.0.1)", () => {
  const calls = 30;

  it("retries past a 503 with a 64 KiB body on the same few connections", async () => {
    const resilience = createResilience({
      retry: { maxAttempts: 2, initialDelay: 0, maxDelay: 0, jitter: "none" },
      breaker: false,
      budget: false,
    });
    const result = await measure("resilient", calls, async (url) => {
      const response = await resilience.fetch(url);
      expect(response.status).toBe(200);
      await response.text();
    });
    expect(result.requests).toBe(2 * calls);
    expect(result.connections).toBeLessThanOrEqual(4);
  });

  it("the same count tells cancelled bodies apart: one new connection per cancel", async () => {
    const result = await measure("plain-cancel", calls, async (url) => {
      const first = await fetch(url);
      await first.body?.cancel();
      await (await fetch(url)).text();
    });
    expect(result.connections).toBeGreaterThanOrEqual(calls);
  });
});
