import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import type { StandardSchemaLike } from "../../src/core/standard-schema.ts";
import {
  answerToGive,
  type ReadBounds,
  releaseAnswer,
  validateResponse,
} from "../../src/fallback/validate-response.ts";
import { TestClock } from "../../src/testing/index.ts";

const encode = (text: string) => new TextEncoder().encode(text);

/** A schema that keeps what it was given and answers `issues`. */
function recordingSchema(issues?: ReadonlyArray<{ message: string; path?: ReadonlyArray<unknown> }>) {
  const seen: unknown[] = [];
  const schema = {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: (value: unknown) => {
        seen.push(value);
        return issues ? { issues } : { value };
      },
    },
  } as unknown as StandardSchemaLike;
  return { schema, seen };
}

/** A body that sends `chunks`, then ends, stalls or fails; says whether it was cancelled. */
function body(chunks: Uint8Array[], end: "close" | "stall" | Error = "close") {
  let sent = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent < chunks.length) {
        controller.enqueue(chunks[sent++] as Uint8Array);
        return;
      }
      if (end === "close") controller.close();
      else if (end === "stall") return new Promise<void>(() => {});
      else controller.error(end);
    },
    cancel() {
      cancelled = true;
    },
  });
  return {
    response: new Response(stream, { headers: { "content-type": "application/json" } }),
    cancelled: () => cancelled,
  };
}

function bounds(overrides: Partial<ReadBounds> = {}): ReadBounds & { clock: TestClock } {
  return { clock: new TestClock(0), timeout: 1000, maxBytes: 1000, signal: undefined, ...overrides } as ReadBounds & {
    clock: TestClock;
  };
}

describe("validateResponse reads a bounded clone of the body", () => {
  it("decodes a character split across chunks, and leaves the caller's body unread", async () => {
    const bytes = encode(JSON.stringify({ name: "café ✓" }));
    // Split inside the two-byte "é" and the three-byte "✓".
    const eAt = bytes.indexOf(0xc3) + 1;
    const checkAt = bytes.indexOf(0xe2) + 2;
    const source = body([bytes.slice(0, eAt), bytes.slice(eAt, checkAt), bytes.slice(checkAt)]);
    const { schema, seen } = recordingSchema();
    const b = bounds();
    expect(await validateResponse(source.response, schema, b)).toBeUndefined();
    expect(seen).toEqual([{ name: "café ✓" }]);
    expect(await source.response.json()).toEqual({ name: "café ✓" });
    expect(b.clock.pending()).toBe(0);
  });

  it("accepts a body of exactly maxBytes and calls one byte more invalid, clearing its timer either way", async () => {
    const text = JSON.stringify({ pad: "x".repeat(40) });
    const size = encode(text).byteLength;
    const { schema } = recordingSchema();
    const exact = bounds({ maxBytes: size });
    expect(await validateResponse(body([encode(text)]).response, schema, exact)).toBeUndefined();
    expect(exact.clock.pending()).toBe(0);

    const over = bounds({ maxBytes: size - 1, timeout: 250 });
    // More is still to come after the bound: the source is not finished when the read stops.
    const source = body([encode(text.slice(0, 10)), encode(text.slice(10))], "stall");
    expect(await validateResponse(source.response, schema, over)).toBe(
      `invalid body: not read within 250 ms and ${size - 1} bytes`,
    );
    expect(over.clock.pending()).toBe(0);
    // Changed in the thirty-first session: the clone is kept until the answer is released (cancelling one
    // half of a tee alone made undici's later cancel of the other reject unheard); then the source goes.
    source.response.body?.cancel().catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(source.cancelled()).toBe(false);
    releaseAnswer(source.response);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(source.cancelled()).toBe(true);
  });

  it("a body that stalls is invalid once the timeout passes, not before, and its read is cancelled", async () => {
    const source = body([encode('{"a":')], "stall");
    const b = bounds({ timeout: 500, maxBytes: 64 });
    let verdict: string | undefined | null = null;
    void validateResponse(source.response, recordingSchema().schema, b).then((v) => {
      verdict = v;
    });
    await b.clock.advance(499);
    expect(verdict).toBeNull();
    await b.clock.advance(1);
    expect(verdict).toBe("invalid body: not read within 500 ms and 64 bytes");
    expect(b.clock.pending()).toBe(0);
    // Changed in the thirty-first session: released with the answer (see the test above).
    releaseAnswer(source.response);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(source.cancelled()).toBe(true);
  });

  it("an answer whose read stopped is given piped on, as the same answer, its clone cancelled", async () => {
    const text = '{"a": 1, "pad": "xxxxxxxxxxxxxxxxxxxx"}';
    const source = body([encode(text.slice(0, 12)), encode(text.slice(12))]);
    Object.defineProperty(source.response, "url", { value: "https://api.example/v1/x" });
    const b = bounds({ maxBytes: 8 });
    expect(await validateResponse(source.response, recordingSchema().schema, b)).toMatch(/^invalid body: not read/);
    const given = answerToGive(source.response);
    expect(given).not.toBe(source.response);
    expect([given.status, given.url, given.redirected, given.headers.get("content-type")]).toEqual([
      200,
      "https://api.example/v1/x",
      false,
      "application/json",
    ]);
    // A new Response (docs/fallback.md): its headers can be changed, the endpoint's stay as they were.
    given.headers.set("x-seen", "1");
    expect([given.headers.get("x-seen"), source.response.headers.get("x-seen")]).toEqual(["1", null]);
    // The caller's copy is locked by the pipe: a cancel of it (undici's at an abort) is refused, and heard.
    expect(source.response.body?.locked).toBe(true);
    expect(await given.text()).toBe(text);
    expect(source.cancelled()).toBe(false);
    // An answer read to its end, or not read by validate at all, is given as it is.
    const whole = body([encode(text)]);
    expect(await validateResponse(whole.response, recordingSchema().schema, bounds())).toBeUndefined();
    expect(answerToGive(whole.response)).toBe(whole.response);
  });

  it("an abort while the body stalls rejects with the caller's reason at once, and leaves no listener", async () => {
    const controller = new AbortController();
    const b = bounds({ signal: controller.signal });
    const pending = validateResponse(body([encode("[1,")], "stall").response, recordingSchema().schema, b);
    await new Promise((resolve) => setTimeout(resolve, 0));
    const reason = new Error("caller gave up");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(b.clock.pending()).toBe(0);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("a signal that aborted before the read began rejects with its reason at once, not after the timeout", async () => {
    const reason = new Error("caller gave up earlier");
    const b = bounds({ signal: AbortSignal.abort(reason), timeout: 30_000 });
    const stalled = body([encode("[1,")], "stall");
    await expect(validateResponse(stalled.response, recordingSchema().schema, b)).rejects.toBe(reason);
    expect(b.clock.pending()).toBe(0);
  });

  it("an abort while an asynchronous schema runs rejects at once with the caller's reason, and leaves no listener", async () => {
    const controller = new AbortController();
    const b = bounds({ signal: controller.signal });
    const slowSchema = {
      "~standard": {
        version: 1 as const,
        vendor: "test",
        // Never settles: only the abort can end the wait.
        validate: () => new Promise<{ value: unknown }>(() => {}),
      },
    };
    const pending = validateResponse(body([encode("{}")]).response, slowSchema, b);
    await new Promise((resolve) => setTimeout(resolve, 0));
    const reason = new Error("caller gave up mid-validate");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("a read that ends normally removes its abort listener from a long-lived signal", async () => {
    const controller = new AbortController();
    const b = bounds({ signal: controller.signal });
    for (let i = 0; i < 3; i++) {
      expect(await validateResponse(Response.json({ i }), recordingSchema().schema, b)).toBeUndefined();
    }
    expect(await validateResponse(new Response("nope"), recordingSchema().schema, b)).toBe("invalid body: not JSON");
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("a body that fails while read is invalid, with the failure named; an empty body is not JSON", async () => {
    const failing = body([encode("{")], new TypeError("terminated"));
    expect(await validateResponse(failing.response, recordingSchema().schema, bounds())).toBe(
      "invalid body: TypeError: terminated",
    );
    expect(await validateResponse(new Response(null), recordingSchema().schema, bounds())).toBe(
      "invalid body: not JSON",
    );
  });
});

describe("validateResponse names the first issue", () => {
  it.each([
    ["no path", [{ message: "m" }], "invalid body: m"],
    ["an empty path", [{ message: "m", path: [] }], "invalid body: m"],
    ["keys and indexes", [{ message: "m", path: ["items", 2, { key: "id" }] }], "invalid body at items.2.id: m"],
    ["only the first of several", [{ message: "first" }, { message: "second", path: ["x"] }], "invalid body: first"],
  ])("%s", async (_what, issues, expected) => {
    expect(await validateResponse(Response.json({}), recordingSchema(issues).schema, bounds())).toBe(expected);
  });

  it("waits for an asynchronous schema", async () => {
    const schema = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: async (value: unknown) =>
          (value as { ok?: boolean }).ok ? { value } : { issues: [{ message: "not ok", path: ["ok"] }] },
      },
    } as unknown as StandardSchemaLike;
    expect(await validateResponse(Response.json({ ok: true }), schema, bounds())).toBeUndefined();
    expect(await validateResponse(Response.json({ ok: false }), schema, bounds())).toBe("invalid body at ok: not ok");
  });
});

describe("validateResponse times only a verdict that can hang", () => {
  /** Bounds whose clock counts the timers set. */
  function countingBounds() {
    const b = bounds();
    const setTimer = b.clock.setTimer.bind(b.clock);
    let set = 0;
    b.clock.setTimer = (callback, ms) => {
      set++;
      return setTimer(callback, ms);
    };
    return { b, set: () => set };
  }

  it("sets no timer for a synchronous verdict beyond the read's own", async () => {
    const { b, set } = countingBounds();
    expect(await validateResponse(Response.json({}), recordingSchema().schema, b)).toBeUndefined();
    expect(set()).toBe(1);
    expect(b.clock.pending()).toBe(0);
  });

  it("bounds an asynchronous verdict with a timer of its own, cleared once it settles", async () => {
    const { b, set } = countingBounds();
    const schema = {
      "~standard": { version: 1, vendor: "test", validate: async (value: unknown) => ({ value }) },
    } as unknown as StandardSchemaLike;
    expect(await validateResponse(Response.json({}), schema, b)).toBeUndefined();
    expect(set()).toBe(2);
    expect(b.clock.pending()).toBe(0);
  });
});
