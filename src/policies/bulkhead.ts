import { BulkheadRejectedError } from "../core/errors.ts";
import { checkOptions } from "../core/options/check-options.ts";
import { bulkheadRules } from "../core/options/option-rules.ts";

/**
 * Limits attempts in flight for one key, with a bounded FIFO queue. A full
 * queue rejects at once; a queued caller that aborts leaves the queue.
 */
export class Bulkhead {
  readonly key: string;
  readonly #max: number;
  readonly #maxQueue: number;
  #active = 0;
  readonly #queue: Array<{ grant: () => void }> = [];

  constructor(key: string, maxConcurrent: number, maxQueue: number) {
    checkOptions(bulkheadRules, { maxConcurrent, maxQueue }, "Bulkhead", ["maxConcurrent", "maxQueue"]);
    this.key = key;
    this.#max = maxConcurrent;
    this.#maxQueue = maxQueue;
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Resolves with a release function once a slot is free. */
  acquire(signal?: AbortSignal): Promise<() => void> | (() => void) {
    // A caller that has gone gets no slot, free or queued: nothing would use it.
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#active < this.#max) {
      this.#active++;
      return this.#releaser();
    }
    if (this.#queue.length >= this.#maxQueue) return Promise.reject(new BulkheadRejectedError(this.key));
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          this.#active++;
          resolve(this.#releaser());
        },
      };
      const onAbort = (): void => {
        const index = this.#queue.indexOf(entry);
        if (index >= 0) this.#queue.splice(index, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(entry);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
      this.#queue.shift()?.grant();
    };
  }
}
