import { afterEach, describe, expect, it, vi } from "vitest";
import { createResilience, type RequestEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

// A layer installed as the global fetch (`globalThis.fetch = resilience.fetch`,
// the drop-in) sends through the fetch that was global when it was made: it
// never calls itself, nor a layer that calls it back.

const original = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = original;
});

/** A stub platform fetch, installed as the global one, that counts what it is sent. */
function platform(): { sent: string[] } {
  const sent: string[] = [];
  globalThis.fetch = vi.fn(async (input: RequestInfo | URL) => {
    sent.push(String(input instanceof Request ? input.url : input));
    return new Response("ok");
  }) as typeof fetch;
  return { sent };
}

const layer = (options: Parameters<typeof createResilience>[0] = {}) => {
  const resilience = createResilience({ clock: new TestClock(0), ...options });
  const events: RequestEvent[] = [];
  resilience.on("request", (event) => events.push(event));
  return { resilience, events };
};

describe("a layer installed as the global fetch", () => {
  it("sends through the fetch that was global when it was made, once per call", async () => {
    const { sent } = platform();
    const { resilience, events } = layer();
    globalThis.fetch = resilience.fetch;
    const res = await fetch("https://a.example/v1");
    expect(await res.text()).toBe("ok");
    expect(sent).toEqual(["https://a.example/v1"]);
    expect(events).toHaveLength(1);
  });

  it("with the library's redirect follower too", async () => {
    const { sent } = platform();
    const { resilience } = layer({ redirects: "library" });
    globalThis.fetch = resilience.fetch;
    expect((await fetch("https://a.example/v1")).status).toBe(200);
    expect(sent).toHaveLength(1);
  });

  it("a layer made while another is installed, then installed over it (a module run again), goes through neither", async () => {
    const { sent } = platform();
    const first = layer();
    globalThis.fetch = first.resilience.fetch;
    const second = layer();
    globalThis.fetch = second.resilience.fetch;
    await fetch("https://a.example/v1");
    // The first one, installed again, does the same.
    globalThis.fetch = first.resilience.fetch;
    await fetch("https://a.example/v2");
    expect(sent).toEqual(["https://a.example/v1", "https://a.example/v2"]);
    expect(second.events).toHaveLength(1);
    expect(first.events).toHaveLength(1);
  });

  it("a layer with the default transport passes an installed layer over; one given it as `fetch` goes through it", async () => {
    const { sent } = platform();
    const installed = layer();
    globalThis.fetch = installed.resilience.fetch;
    const beside = layer();
    await beside.resilience.fetch("https://a.example/beside");
    expect(installed.events).toHaveLength(0);
    const stacked = layer({ fetch: installed.resilience.fetch });
    await stacked.resilience.fetch("https://a.example/stacked");
    expect(installed.events).toHaveLength(1);
    expect(sent).toEqual(["https://a.example/beside", "https://a.example/stacked"]);
  });

  it("a fetch patched over the installed layer (MSW, a polyfill) is used as found", async () => {
    platform();
    const { resilience } = layer();
    globalThis.fetch = resilience.fetch;
    const patched = vi.fn(async () => new Response("patched"));
    globalThis.fetch = patched as typeof fetch;
    expect(await (await resilience.fetch("https://a.example/v1")).text()).toBe("patched");
    expect(patched).toHaveBeenCalledTimes(1);
  });

  it("made where no fetch was global: once installed, a call is refused with the usual TypeError", async () => {
    globalThis.fetch = undefined as unknown as typeof fetch;
    const { resilience } = layer();
    globalThis.fetch = resilience.fetch;
    await expect(resilience.fetch("https://a.example/v1")).rejects.toThrow(/no global fetch in this runtime/);
  });
});
