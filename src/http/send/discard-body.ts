import { unrefTimer } from "../../core/clock.ts";
import { sameStatusAndHeaders } from "../request/headers.ts";
import { sameMark } from "./resilience-info.ts";
import { standIn } from "./stand-in.ts";

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
  readSmall(response).catch(ignore);
}

/**
 * Like {@link discardBody}, but keeps what a small body held: the response
 * again, its body in memory, or `undefined` when the body was too large or
 * too slow to keep (it was cancelled). The connection goes back to the pool
 * at once, and a response that streams without end costs no more memory
 * than {@link DRAIN_MAX_BYTES}.
 */
export function keepBody(response: Response): Promise<Response | undefined> {
  return readSmall(response, []).then(
    (chunks) => {
      if (!chunks) return undefined;
      try {
        // The rebuilt response answers for the one it replaces.
        const kept = new Response(response.body === null ? null : new Blob(chunks), sameStatusAndHeaders(response));
        return standIn(sameMark(response, kept), response.url, response.redirected, response.type);
      } catch {
        return undefined;
      }
    },
    () => undefined,
  );
}

/**
 * Reads a small body to its end, collecting its chunks into `chunks` when
 * given; `undefined` when it was cancelled for its size or its slowness.
 */
async function readSmall(response: Response, chunks?: Uint8Array<ArrayBuffer>[]): Promise<typeof chunks> {
  const body = response.body;
  if (body === null) return chunks;
  // A body already locked or used has nothing left to release.
  if (body.locked) return undefined;
  if (Number(response.headers.get("content-length") ?? Number.NaN) > DRAIN_MAX_BYTES) {
    body.cancel().catch(ignore);
    return undefined;
  }
  const reader = body.getReader();
  // A body that went down with an aborted call rejects `closed` too, which
  // some runtimes (workerd) report as unhandled unless someone listens.
  reader.closed.catch(ignore);
  let complete = true;
  const stop = unrefTimer(() => {
    // Ends the pending read with `done`, so the loop below finishes.
    complete = false;
    reader.cancel().catch(ignore);
  }, DRAIN_MAX_MS);
  try {
    let received = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return complete ? chunks : undefined;
      received += value.byteLength;
      if (received > DRAIN_MAX_BYTES) {
        await reader.cancel();
        return undefined;
      }
      chunks?.push(value as Uint8Array<ArrayBuffer>);
    }
  } finally {
    stop();
  }
}
