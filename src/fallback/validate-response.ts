import { type Clock, setLongTimer } from "../core/clock.ts";
import { textOf, unlessThrows } from "../core/errors.ts";
import { keepAsWell } from "../core/linked-signal.ts";
import type { StandardResult, StandardSchemaLike } from "../core/standard-schema.ts";
import { untilAborted } from "../core/until-aborted.ts";
import { untilTimeout } from "../core/until-timeout.ts";
import { sameStatusAndHeaders } from "../http/request/headers.ts";
import { discardBody } from "../http/send/discard-body.ts";
import { sameMark } from "../http/send/resilience-info.ts";
import { standIn } from "../http/send/stand-in.ts";

/** How long and how much `validate` may read before it calls a body invalid. */
export interface ReadBounds {
  clock: Clock;
  /** Ms to wait for the whole body; `undefined`: until `signal` aborts (a deadline's). */
  timeout: number | undefined;
  maxBytes: number;
  signal: AbortSignal | undefined;
}

/**
 * Checks a 2xx body against a Standard Schema; returns why it fails, or
 * `undefined`. Reads a clone, so the caller still gets an unread body. The
 * read is bounded in time and bytes: a body that stalls after its headers
 * or never ends is "invalid", and the chain moves on; with no `timeout`,
 * the read ends only when `signal` (a deadline's) aborts the call.
 */
export async function validateResponse(
  response: Response,
  schema: StandardSchemaLike,
  bounds: ReadBounds,
): Promise<string | undefined> {
  let value: unknown;
  try {
    const text = await readBounded(response, bounds);
    if (text === undefined) {
      const time = bounds.timeout === undefined ? "" : ` ${bounds.timeout} ms and`;
      return `invalid body: not read within${time} ${bounds.maxBytes} bytes`;
    }
    value = JSON.parse(text);
  } catch (error) {
    if (bounds.signal?.aborted) throw bounds.signal.reason;
    return error instanceof SyntaxError ? "invalid body: not JSON" : `invalid body: ${textOf(error)}`;
  }
  // An asynchronous schema is not waited for once the call is aborted, nor
  // past the read's time again. A schema that throws or rejects, or does not
  // settle, fails the body as one that says no does: the answer is kept, not
  // lost as the endpoint's error.
  let result: StandardResult | typeof UNSETTLED;
  try {
    const verdict = schema["~standard"].validate(value);
    const { timeout, signal } = bounds;
    // A synchronous verdict cannot hang: no timer for it.
    result =
      timeout === undefined || typeof (verdict as Partial<PromiseLike<unknown>> | undefined)?.then !== "function"
        ? await untilAborted(verdict, signal)
        : await untilTimeout(Promise.resolve(verdict), bounds.clock, timeout, unsettled, signal);
  } catch (error) {
    if (bounds.signal?.aborted) throw bounds.signal.reason;
    return `invalid body: validate failed (${textOf(error)})`;
  }
  if (result === UNSETTLED) return `invalid body: validate did not settle within ${bounds.timeout} ms`;
  // A result that throws when looked at (a revoked Proxy in its issues) fails the body too: the answer is kept.
  return unlessThrows(() => verdictOf(result), "invalid body: validate gave a result that cannot be read");
}

/** Why a schema's `result` fails the body (its first issue, where it is), or `undefined` when it passes. */
function verdictOf(result: StandardResult): string | undefined {
  // No result at all (not a Standard Schema's): no verdict, so no valid body either.
  if (!result) return "invalid body: validate gave no result";
  if (!result.issues) return undefined;
  const first = result.issues[0];
  const where = first?.path?.length
    ? ` at ${first.path.map((p) => textOf(typeof p === "object" && p !== null && "key" in p ? p.key : p)).join(".")}`
    : "";
  return `invalid body${where}: ${textOf(first?.message ?? "schema mismatch")}`;
}

/**
 * The clone's reader of each answer whose body `validate` stopped reading
 * before its end (too slow, too large), by that answer. The clone is not
 * cancelled there: with one half of a tee cancelled, undici's own cancel of
 * the other half when the call's signal aborts (its fetch does that to an
 * unread body) rejects, and nobody hears it (an unhandled rejection). Both
 * halves go together in {@link releaseAnswer}, or the clone's alone once the
 * answer is piped on in {@link answerToGive}.
 */
const stoppedReads = new WeakMap<Response, ReadableStreamDefaultReader<Uint8Array>>();

/** Releases an answer not given (see `discardBody`), and the half of its body `validate` stopped reading. */
export function releaseAnswer(response: Response): void {
  const reader = stoppedReads.get(response);
  if (!reader) {
    discardBody(response);
    return;
  }
  // Known too slow or too large already: cancelled, not drained; the answer's
  // half first, so the source goes with the clone's cancel, which is heard.
  if (!response.body?.locked) response.body?.cancel().catch(ignore);
  reader.cancel().catch(ignore);
}

const ignore = (): void => {};
const UNSETTLED = Symbol();
const unsettled = (): typeof UNSETTLED => UNSETTLED;

/**
 * The answer to give the caller: `response` itself, or, when `validate`
 * stopped reading its clone, a response that pipes its body on (locked, an
 * abort's cancel of it by undici is refused, and heard) with the clone
 * cancelled, so nothing buffers what the caller reads. The pipe follows
 * the caller's `signal`, as fetch's own body does: an abort then ends the
 * read with its reason.
 */
export function answerToGive(response: Response, signal?: AbortSignal): Response {
  const reader = stoppedReads.get(response);
  if (!reader) return response;
  reader.cancel().catch(ignore);
  let body: ReadableStream<Uint8Array> | null = null;
  if (response.body) {
    // The caller's abort errors the pipe, as fetch's own body errors: the read
    // rejects with its reason, and the pipe cancels the source. (A `pipeTo`
    // signal would do the same, but workerd reports its end as unhandled.)
    let pipe!: TransformStreamDefaultController<Uint8Array>;
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>({
      start(controller) {
        pipe = controller;
      },
    });
    const abort = (): void => pipe.error(signal?.reason);
    signal?.addEventListener("abort", abort, { once: true });
    response.body
      .pipeTo(writable)
      .catch(ignore)
      .finally(() => signal?.removeEventListener("abort", abort));
    body = readable;
  }
  const given = new Response(body, sameStatusAndHeaders(response));
  keepAsWell(given, response);
  // The piped response answers for the one it replaces.
  return standIn(sameMark(response, given), response.url, response.redirected, response.type);
}

/**
 * `response`'s body as text, read from a clone, or `undefined` when it took
 * too long or was too large (the clone then kept, see `stoppedReads`).
 */
async function readBounded(response: Response, bounds: ReadBounds): Promise<string | undefined> {
  const reader = response.clone().body?.getReader();
  if (!reader) return "";
  // A loser's body goes down with its signal: its `closed` rejects, heard here (see discardBody).
  reader.closed.catch(ignore);
  let expired = false;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    expired = true;
    wake?.();
  };
  const cancelTimer = bounds.timeout === undefined ? ignore : setLongTimer(bounds.clock, stop, bounds.timeout);
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
    // Cancelled at an abort: a transport whose body does not follow the
    // signal would otherwise keep its source open. Otherwise cancelled with
    // the answer (see `stoppedReads`).
    if (bounds.signal?.aborted) {
      reader.cancel(bounds.signal.reason).catch(ignore);
      throw bounds.signal.reason;
    }
    stoppedReads.set(response, reader);
    return undefined;
  } finally {
    cancelTimer();
    bounds.signal?.removeEventListener("abort", stop);
  }
}
