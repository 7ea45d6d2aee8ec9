import { getEventListeners } from "node:events";
import { describe, expect, it, vi } from "vitest";
import { byteSize, isReplayable, readForReplay } from "../../src/http/request/replay-body.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A source that sends `chunks`, then closes, stalls or fails; records how it was cancelled. */
function source(chunks: string[], end: "close" | "stall" | Error = "close") {
  let sent = 0;
  const cancels: unknown[] = [];
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent < chunks.length) {
        controller.enqueue(encode(chunks[sent++] as string));
        return;
      }
      if (end === "close") controller.close();
      else if (end === "stall") return new Promise<void>(() => {});
      else controller.error(end);
    },
    cancel(reason) {
      cancels.push(reason);
    },
  });
  return { stream, cancels, pulled: () => sent };
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

describe("isReplayable", () => {
  it.each([
    ["null", null, true],
    ["undefined", undefined, true],
    ["a string", "x", true],
    ["an ArrayBuffer", new ArrayBuffer(2), true],
    ["a Uint8Array", new Uint8Array(2), true],
    ["a DataView", new DataView(new ArrayBuffer(2)), true],
    ["URLSearchParams", new URLSearchParams("a=1"), true],
    ["a Blob", new Blob(["x"]), true],
    ["FormData", new FormData(), true],
    ["a stream", new ReadableStream(), false],
  ])("%s → %s", (_what, body, expected) => {
    expect(isReplayable(body as BodyInit | null | undefined)).toBe(expected);
  });
});

describe("byteSize", () => {
  const utf8 = (text: string) => encode(text).byteLength;

  it("tells a string over or within the limit exactly as its UTF-8 size would, for any mix of widths", () => {
    const strings = ["", "abc", "é".repeat(10), "✓".repeat(10), `a${"✓".repeat(5)}é`, "😀".repeat(4), "x".repeat(30)];
    for (const text of strings) {
      for (let limit = 0; limit <= 45; limit++) {
        const size = byteSize(text, limit);
        expect([text, limit, (size as number) > limit]).toEqual([text, limit, utf8(text) > limit]);
      }
    }
  });

  it("encodes a string only when its length leaves the answer open, and then gives the exact size", () => {
    // 10 units, 20 bytes: a limit from 10 to 29 cannot be decided from the length.
    for (const limit of [10, 15, 19, 20, 29]) expect(byteSize("é".repeat(10), limit)).toBe(20);
    // 10 units, 30 bytes.
    expect(byteSize("✓".repeat(10), 25)).toBe(30);
  });

  it("does not encode a string whose length alone decides: over the limit, or within a third of it", () => {
    const encodeSpy = vi.spyOn(TextEncoder.prototype, "encode");
    try {
      // 11 units over a limit of 10, whatever their width; 3 units of at most 3 bytes within 9.
      expect([byteSize("é".repeat(11), 10), byteSize("é".repeat(3), 9), byteSize("abc", 100)]).toEqual([11, 3, 3]);
      expect(encodeSpy).not.toHaveBeenCalled();
      expect(byteSize("é".repeat(4), 10)).toBe(8);
      expect(encodeSpy).toHaveBeenCalledTimes(1);
    } finally {
      encodeSpy.mockRestore();
    }
  });

  it("gives the byte length of buffers and views (not of the buffer under a view), a Blob's size and a form's text", () => {
    const buffer = new ArrayBuffer(16);
    expect(byteSize(buffer, 100)).toBe(16);
    expect(byteSize(new Uint8Array(buffer, 4, 6), 100)).toBe(6);
    expect(byteSize(new DataView(buffer, 2, 3), 100)).toBe(3);
    expect(byteSize(new Blob(["héllo"]), 100)).toBe(6);
    expect(byteSize(new URLSearchParams({ q: "a b", r: "é" }), 100)).toBe("q=a+b&r=%C3%A9".length);
  });

  it("counts a form's names, values and files (UTF-8), not its multipart framing", () => {
    const form = new FormData();
    form.set("a", "1");
    form.append("né", "é");
    form.append("file", new Blob(["12345"]), "f.bin");
    expect(byteSize(form, 100)).toBe(2 + 3 + 2 + 4 + 5);
    expect(byteSize(new FormData(), 100)).toBe(0);
  });
});

describe("readForReplay", () => {
  it("reads a body within the limit whole, from one chunk, several or none", async () => {
    for (const chunks of [["abc"], ["ab", "c", "de"], []]) {
      const body = source(chunks);
      const read = await readForReplay(body.stream, 10, undefined);
      expect("bytes" in read && decode(read.bytes)).toBe(chunks.join(""));
    }
  });

  it("keeps a body of exactly the limit for replay", async () => {
    const read = await readForReplay(source(["12345", "67890"]).stream, 10, undefined);
    expect("bytes" in read && decode(read.bytes)).toBe("1234567890");
  });

  it("past the limit, stops reading and hands back one stream of what was read and the rest", async () => {
    const body = source(["1234", "5678", "9abc", "def"]);
    const read = await readForReplay(body.stream, 6, undefined);
    expect("stream" in read && read.read).toBe(8);
    expect(body.pulled()).toBeLessThanOrEqual(3);
    if (!("stream" in read)) throw new Error("expected a stream");
    expect(await readAll(read.stream)).toBe("123456789abcdef");
    expect(body.cancels).toEqual([]);
  });

  it("cancelling the stream it hands back cancels the source with the reason", async () => {
    const body = source(["1234", "5678"], "stall");
    const read = await readForReplay(body.stream, 3, undefined);
    if (!("stream" in read)) throw new Error("expected a stream");
    const reason = new Error("not sending after all");
    await read.stream.cancel(reason);
    expect(body.cancels).toEqual([reason]);
  });

  it("a signal already aborted rejects with its reason and cancels the source", async () => {
    const controller = new AbortController();
    const reason = new Error("gone");
    controller.abort(reason);
    const body = source(["abc"]);
    await expect(readForReplay(body.stream, 10, controller.signal)).rejects.toBe(reason);
    expect(body.cancels).toEqual([reason]);
  });

  it("an abort while the body trickles rejects at once, cancels the source and leaves no listener", async () => {
    const controller = new AbortController();
    const body = source(["ab"], "stall");
    const pending = readForReplay(body.stream, 10, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 0));
    const reason = new Error("timeout.total");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(body.cancels).toEqual([reason]);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("removes its listener from the signal after every read, whether the body ends or fails", async () => {
    const controller = new AbortController();
    const read = await readForReplay(source(["a", "b", "c"]).stream, 10, controller.signal);
    expect("bytes" in read && decode(read.bytes)).toBe("abc");
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);

    const failure = new TypeError("terminated");
    // The source's failure is told as the documented TypeError, that failure its cause.
    const refused = await readForReplay(source(["a"], failure).stream, 10, controller.signal).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TypeError);
    expect(refused).toMatchObject({ message: "resilience.fetch: the request body could not be read", cause: failure });
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    // A later abort of that signal finds nothing to cancel.
    controller.abort(new Error("late"));
  });
});
