import { bodyKind, kindOf } from "../../core/kind-of.ts";

/** Bodies that can be sent again as they are; a stream is consumed by one send. */
export function isReplayable(body: BodyInit | null | undefined): boolean {
  return (
    body == null ||
    typeof body === "string" ||
    ArrayBuffer.isView(body) ||
    /^(Blob|File|ArrayBuffer|URLSearchParams|FormData)$/.test(bodyKind(body))
  );
}

/**
 * A replayable body as it is now, as fetch takes it when called: bytes, a
 * form or search params the caller may edit (for its next call) are copied;
 * a string or a Blob cannot change. A form's files are Blobs: their entries
 * are copied, not their bytes.
 */
export function snapshotBody(body: BodyInit): BodyInit {
  const buffer = ArrayBuffer.isView(body) ? body.buffer : body;
  // Bytes fetch does not take (a WebIDL `BufferSource` is neither shared nor
  // resizable): refused at once, as fetch refuses them, never sent as a copy.
  if ((buffer as { resizable?: boolean }).resizable || kindOf(buffer) === "SharedArrayBuffer") {
    throw new TypeError("resilience.fetch: fetch refuses shared or resizable bytes as a body");
  }
  const kind = bodyKind(body);
  if (kind === "ArrayBuffer") return (body as ArrayBuffer).slice(0);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength).slice();
  // Copies made in this realm: fetch takes them as it takes the caller's.
  if (kind === "URLSearchParams") return new URLSearchParams(body as URLSearchParams);
  if (kind === "FormData") {
    const copy = new FormData();
    for (const [name, value] of body as FormData) copy.append(name, value);
    return copy;
  }
  return body;
}

/**
 * A replayable body's size in bytes, as far as the limit needs it. A string
 * is only encoded when its length leaves the answer open: UTF-8 takes 1 to 3
 * bytes per UTF-16 unit. A FormData counts its names, values and files (not
 * the multipart framing around them, a few dozen bytes a field).
 */
export function byteSize(body: BodyInit, limit: number): number {
  if (typeof body === "string") {
    return body.length > limit || body.length * 3 <= limit ? body.length : utf8Length(body);
  }
  // (A URLSearchParams' `size` counts its entries, not bytes.)
  if (bodyKind(body) === "URLSearchParams") return body.toString().length;
  // Bytes, or a Blob.
  const size = (body as ArrayBuffer).byteLength ?? (body as Blob).size;
  if (size !== undefined) return size;
  let formSize = 0;
  // The one replayable body left: a FormData. Its strings are measured
  // exactly: lengths under the limit one by one could add up past it in bytes.
  for (const [name, value] of body as FormData) {
    formSize += utf8Length(name) + (typeof value === "string" ? utf8Length(value) : value.size);
  }
  return formSize;
}

/** A string's size in UTF-8 bytes, as it is sent. */
export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}

/** A stream read for replay: all of it, or the part read before it passed the limit and the stream to send once. */
export type ReadForReplay = { bytes: Uint8Array<ArrayBuffer> } | { stream: ReadableStream<Uint8Array>; read: number };

/**
 * Reads a `Request`'s body so it can be replayed, but never more than
 * `limit` bytes: past that, the chunks read so far and the rest of the
 * stream become one stream, sent once (an endless upload is not buffered).
 * Each read races `signal`, so the caller's abort and `timeout.total` end
 * the call even while the body trickles in.
 */
export async function readForReplay(
  source: ReadableStream<Uint8Array>,
  limit: number,
  signal: AbortSignal | undefined,
): Promise<ReadForReplay> {
  const reader = source.getReader();
  // An aborted read errors the stream: its `closed` rejects, heard here (see discardBody).
  reader.closed.catch(() => {});
  const chunks: Uint8Array[] = [];
  let read = 0;
  for (;;) {
    const { done, value } = await abortable(
      reader.read().catch((error: unknown) => {
        throw bodyReadError(error);
      }),
      signal,
      reader,
    );
    if (done) return { bytes: concat(chunks, read) };
    // Counted and joined as bytes: a chunk that is no Uint8Array (a string, a
    // Uint16Array, a DataView) is refused at once, as a `Request` refuses it
    // when read, not buffered without a bound or joined element by element.
    if (kindOf(value) !== "Uint8Array") {
      reader.cancel().catch(() => {});
      const kind = typeof value === "object" && value !== null ? (value.constructor?.name ?? "object") : typeof value;
      throw new TypeError(`resilience.fetch: a request body stream must yield bytes (Uint8Array), got ${kind}`);
    }
    chunks.push(value);
    read += value.byteLength;
    if (read > limit) return { stream: resume(chunks, reader), read };
  }
}

function abortable<T>(
  pending: Promise<T>,
  signal: AbortSignal | undefined,
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<T> {
  if (!signal) return pending;
  if (signal.aborted) {
    reader.cancel(signal.reason).catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reader.cancel(signal.reason).catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/**
 * A body stream that failed while it was read ahead: a `TypeError`, as
 * fetch's would be, whatever the source threw (a `TypeError` of its own too),
 * its `cause` what the source threw.
 */
export function bodyReadError(cause: unknown): TypeError {
  const error = new TypeError("resilience.fetch: the request body could not be read", { cause });
  readAheadFailures.add(error);
  return error;
}

/** The errors {@link bodyReadError} made: the caller's body failed, nothing was sent. */
const readAheadFailures = new WeakSet<object>();

/** Whether `error` is one {@link bodyReadError} made (the caller's failure, not a host's). */
export const isBodyReadError = (error: unknown): boolean => readAheadFailures.has(error as object);

/** The chunks joined into bytes of the layer's own: even one chunk is copied, since its source may reuse it. */
function concat(chunks: readonly Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/**
 * Streams whose source failed while they were sent (the caller's body, not
 * the host, failed that attempt), each to what its source threw, boxed (a
 * source may throw `undefined`).
 */
const failedSources = new WeakMap<object, { error: unknown }>();

/** What the source of `body`, a stream made by {@link readForReplay}, threw while it was sent; `undefined` if it did not fail. */
export const sourceFailure = (body: unknown): { error: unknown } | undefined => failedSources.get(body as object);

/** The chunks already read, then whatever `reader` still yields; its source's failure is told by {@link sourceFailure}. */
function resume(chunks: Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
  const stream: ReadableStream<Uint8Array> = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const head = chunks.shift();
      if (head) return controller.enqueue(head);
      const { done, value } = await reader.read().catch((error: unknown) => {
        failedSources.set(stream, { error });
        throw error;
      });
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return stream;
}
