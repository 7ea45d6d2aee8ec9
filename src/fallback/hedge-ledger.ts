import { textOf } from "../core/errors.ts";

/**
 * What a hedged call has out: the endpoints sent a request (or running a
 * `respond`) whose answer is not yet judged (`validate` included), each
 * with whether that request may not be sent twice (a `transform`'s POST
 * without a key). Such a request never goes out beside another endpoint's,
 * nor another beside it: the endpoint is held back, never sent, and tried
 * again once nothing runs.
 */
export class HedgeLedger {
  readonly #out = new Map<string, boolean>();
  readonly #tried = new Set<string>();

  /** Whether another endpoint may start now: no request that may not be sent twice is out. */
  mayHedge(): boolean {
    for (const unsafe of this.#out.values()) if (unsafe) return false;
    return true;
  }

  /** Takes `name`'s request out, or returns why it is held back (the error its endpoint fails with). */
  send(name: string, unsafe: boolean): Error | undefined {
    if (!this.mayHedge() || (unsafe && this.#out.size > 0)) {
      const error = new Error(`not sent to "${name}": its request may not be sent beside another endpoint's`);
      heldBack.add(error);
      return error;
    }
    this.#out.set(name, unsafe);
    this.#tried.add(name);
    return undefined;
  }

  /**
   * `name` answers without the network (`respond`): out until judged, as a
   * request is. It is sent nowhere, so nothing holds it back, but a request
   * that may not be sent twice waits for it: the answer may still win.
   */
  answering(name: string): void {
    this.#out.set(name, false);
    this.#tried.add(name);
  }

  /** `name`'s request is no longer out: it failed, or its answer was judged. */
  settled(name: string): void {
    this.#out.delete(name);
  }

  /** Whether `name` was sent something or answered: a losing hedge counts only then. */
  tried(name: string): boolean {
    return this.#tried.has(name);
  }
}

/** Errors of endpoints held back (see {@link HedgeLedger.send}): not the endpoint's failures. */
const heldBack = new WeakSet<object>();

/** Errors of `transform`s and `respond`s that failed: the endpoint was sent nothing. */
const unsent = new WeakSet<object>();

/** Whether `error` is an endpoint held back: tried again once nothing else runs. */
export function isHeldBack(error: unknown): boolean {
  return typeof error === "object" && error !== null && heldBack.has(error);
}

/** Whether the endpoint that failed with `error` was never sent anything (held back, its `transform` or `respond` failed). */
export function neverSent(error: unknown): boolean {
  return typeof error === "object" && error !== null && (heldBack.has(error) || unsent.has(error));
}

/**
 * A failure with nothing sent (a `transform` that threw or returned no valid
 * request, a `respond` that threw: it answers without the network): the
 * endpoint saw nothing, so its breaker hears nothing and the call may move
 * on, whatever its method. A thrown value that is no object is wrapped, to
 * be known again, named as text even where it cannot become any (a
 * function whose `toString` throws, a revoked Proxy of one).
 */
export function notSent(error: unknown, name: string, step = "transform"): never {
  const known =
    typeof error === "object" && error !== null
      ? error
      : new Error(`fallback endpoint "${name}": ${step}(request) threw ${textOf(error)}`, { cause: error });
  unsent.add(known);
  throw known;
}
