/**
 * A `Request`'s stream body read past `maxReplayBytes` is held by the layer
 * (its reader locks the caller's stream): when the call ends without sending
 * it (an open breaker, a full bulkhead, an abort before the send), the layer
 * cancels it, so the caller's source closes instead of waiting for the
 * garbage collector. A body that was sent is fetch's, read to its end.
 */
import { describe, expect, it } from "vitest";
import { createResilience, isBulkheadRejectedError, isCircuitOpenError } from "../../src/index.ts";
import { rejection } from "../helpers/settled.ts";

const URL_ = "https://gen.example/v1/videos";

/** A stream of three 4-byte chunks that records whether it was cancelled and how many chunks were pulled. */
function uploadSource() {
  const state = { cancelled: false as boolean, pulled: 0 };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled === 3) return controller.close();
      state.pulled++;
      controller.enqueue(new Uint8Array(4).fill(state.pulled));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { state, request: new Request(URL_, { method: "POST", body: stream, duplex: "half" } as RequestInit) };
}

describe("a stream body the layer holds", () => {
  it("is cancelled when an open breaker refuses the call", async () => {
    const sent: string[] = [];
    const layer = createResilience({
      retry: false,
      maxReplayBytes: 5,
      breaker: { failureThreshold: 1 },
      fetch: async (input) => {
        sent.push(String(input instanceof Request ? input.url : input));
        return new Response("down", { status: 503 });
      },
    });
    await layer.fetch(URL_);
    const { state, request } = uploadSource();
    expect(isCircuitOpenError(await rejection(layer.fetch(request)))).toBe(true);
    expect({ sent: sent.length, cancelled: state.cancelled }).toEqual({ sent: 1, cancelled: true });
  });

  it("is cancelled when a full bulkhead rejects the call", async () => {
    let release = (): void => {};
    const layer = createResilience({
      retry: false,
      maxReplayBytes: 5,
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      fetch: () =>
        new Promise<Response>((resolve) => {
          release = () => resolve(new Response("ok"));
        }),
    });
    const first = layer.fetch(URL_);
    const { state, request } = uploadSource();
    expect(isBulkheadRejectedError(await rejection(layer.fetch(request)))).toBe(true);
    expect(state.cancelled).toBe(true);
    release();
    await first;
  });

  it("is read to its end, not cancelled, when it was sent", async () => {
    const layer = createResilience({
      maxReplayBytes: 5,
      fetch: async (_input, init) => new Response(await new Response(init?.body).arrayBuffer()),
    });
    const { state, request } = uploadSource();
    const response = await layer.fetch(request);
    expect((await response.arrayBuffer()).byteLength).toBe(12);
    expect(state).toEqual({ cancelled: false, pulled: 3 });
  });
});
