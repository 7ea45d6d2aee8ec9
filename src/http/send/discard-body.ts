/**
 * Bodies up to this many bytes are read to their end and dropped: a body read
 * to its end lets the runtime put the connection back in its keep-alive pool,
 * while a cancelled one makes it close the connection (Node's undici does).
 * Larger bodies are cheaper to reconnect than to download.
 */
export const DRAIN_MAX_BYTES: number = 64 * 1024;

/** A drain that has not finished in this many milliseconds is cancelled (a stalled body holds its connection). */
export const DRAIN_MAX_MS: number = 1_000;

const ignore = (): void => {};

/**
 * Releases the connection behind a response nobody will read (one retried
 * past, a redirect followed, a fallback answer rejected or a hedge lost).
 * A small body is drained in the background so the connection is reused; a
 * large one (by `Content-Length`, or once more than {@link DRAIN_MAX_BYTES}
 * arrived) or a slow one (after {@link DRAIN_MAX_MS}) is cancelled. Never
 * blocks the caller, never throws, and its timer never keeps a process alive.
 * A body already locked or used has nothing left to release.
 */
export function discardBody(response: Response): void {
  const body = response.body;
  if (body === null || body.locked) return;
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > DRAIN_MAX_BYTES) {
    body.cancel().catch(ignore);
    return;
  }
  const reader = body.getReader();
  // A body that went down with an aborted call rejects `closed` too, which
  // some runtimes (workerd) report as unhandled unless someone listens.
  reader.closed.catch(ignore);
  drain(reader).catch(ignore);
}

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  const stop = unrefTimer(() => {
    // Ends the pending read with `done`, so the loop below finishes.
    reader.cancel().catch(ignore);
  }, DRAIN_MAX_MS);
  try {
    let received = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      received += value.byteLength;
      if (received > DRAIN_MAX_BYTES) {
        await reader.cancel();
        return;
      }
    }
  } finally {
    stop();
  }
}

/**
 * A real-time timer that does not keep a process alive: the drain is
 * housekeeping, not the caller's work, so it must never delay an exit.
 * Node and Bun return a handle with `unref`; Deno has `Deno.unrefTimer`;
 * browsers and workerd have no process to keep alive.
 */
function unrefTimer(callback: () => void, ms: number): () => void {
  const handle: unknown = setTimeout(callback, ms);
  if (typeof handle === "object" && handle !== null && "unref" in handle && typeof handle.unref === "function") {
    handle.unref();
  } else if (typeof handle === "number") {
    const deno = (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno;
    deno?.unrefTimer?.(handle);
  }
  return () => clearTimeout(handle as number);
}
