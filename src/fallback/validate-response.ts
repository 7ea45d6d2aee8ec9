import { type Clock, setLongTimer } from "../core/clock.ts";
import type { StandardResult, StandardSchemaLike } from "../core/standard-schema.ts";
import { untilAborted } from "../core/until-aborted.ts";

/** How long and how much `validate` may read before it calls a body invalid. */
export interface ReadBounds {
  clock: Clock;
  /** Ms to wait for the whole body. */
  timeout: number;
  maxBytes: number;
  signal: AbortSignal | undefined;
}

/**
 * Checks a 2xx body against a Standard Schema; returns why it fails, or
 * `undefined`. Reads a clone, so the caller still gets an unread body. The
 * read is bounded in time and bytes: a body that stalls after its headers
 * or never ends is "invalid", and the chain moves on.
 */
export async function validateResponse(
  response: Response,
  schema: StandardSchemaLike,
  bounds: ReadBounds,
): Promise<string | undefined> {
  let value: unknown;
  try {
    const text = await readBounded(response.clone(), bounds);
    if (text === undefined) return `invalid body: not read within ${bounds.timeout} ms and ${bounds.maxBytes} bytes`;
    value = JSON.parse(text);
  } catch (error) {
    if (bounds.signal?.aborted) throw bounds.signal.reason;
    return error instanceof SyntaxError ? "invalid body: not JSON" : `invalid body: ${String(error)}`;
  }
  // An asynchronous schema is not waited for once the call is aborted. A
  // schema that throws or rejects fails the body as one that says no does:
  // the answer is kept, not lost as the endpoint's error.
  let result: StandardResult;
  try {
    result = await untilAborted(schema["~standard"].validate(value), bounds.signal);
  } catch (error) {
    if (bounds.signal?.aborted) throw bounds.signal.reason;
    return `invalid body: validate failed (${String(error)})`;
  }
  if (!result.issues) return undefined;
  const first = result.issues[0];
  const where = first?.path?.length
    ? ` at ${first.path.map((p) => (typeof p === "object" && p !== null && "key" in p ? String(p.key) : String(p))).join(".")}`
    : "";
  return `invalid body${where}: ${first?.message ?? "schema mismatch"}`;
}

/** The body as text, or `undefined` when it took too long or was too large (the read is then cancelled). */
async function readBounded(response: Response, bounds: ReadBounds): Promise<string | undefined> {
  const reader = response.body?.getReader();
  if (!reader) return "";
  // A loser's body goes down with its signal: its `closed` rejects, heard here (see discardBody).
  reader.closed.catch(() => {});
  let expired = false;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    expired = true;
    wake?.();
  };
  // What is left of `timeout.total` may be longer than a timer holds.
  const cancelTimer = setLongTimer(bounds.clock, stop, bounds.timeout);
  bounds.signal?.addEventListener("abort", stop, { once: true });
  // A signal that aborted before the read began never fires its event again.
  if (bounds.signal?.aborted) stop();
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  try {
    for (;;) {
      const next = await Promise.race([
        reader.read(),
        new Promise<undefined>((resolve) => {
          wake = () => resolve(undefined);
          if (expired) resolve(undefined);
        }),
      ]);
      if (next === undefined || expired) break;
      if (next.done) return text + decoder.decode();
      bytes += next.value.byteLength;
      if (bytes > bounds.maxBytes) break;
      text += decoder.decode(next.value, { stream: true });
    }
    // Cancelled whatever ended the read, an abort too: a transport whose body
    // does not follow the signal would otherwise keep its source open.
    reader.cancel(bounds.signal?.aborted ? bounds.signal.reason : undefined).catch(() => {});
    if (bounds.signal?.aborted) throw bounds.signal.reason;
    return undefined;
  } finally {
    cancelTimer();
    bounds.signal?.removeEventListener("abort", stop);
  }
}
