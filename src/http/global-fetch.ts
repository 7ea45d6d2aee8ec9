import { realm } from "../core/realm-shared.ts";
import type { FetchLike } from "./resilience-options.ts";

/*
 * Each layer's `fetch`, with the fetch beneath it (the one that was global
 * when the layer was made, past any layer installed there), is kept in the
 * realm's shared `beneath`, so a layer of another copy of the package (an
 * SDK's) passes an installed one over too. The values are never layers', so
 * an installed layer keeps no older layer alive (a module run again makes a
 * layer while the last one is installed).
 */

/** `fetch`, or the fetch beneath it when it is a layer's (installed as the global fetch). */
function pastLayers(fetch: FetchLike | undefined): FetchLike | undefined {
  const beneath = realm().beneath;
  return fetch && beneath.has(fetch) ? (beneath.get(fetch) as FetchLike | undefined) : fetch;
}

/** How a layer reaches the global fetch when it has no `fetch` of its own (`found`), and is known as a layer (`own`, every layer). */
export interface GlobalFetch {
  /**
   * The global fetch at call time (MSW and polyfills patch it), past a
   * layer installed there; a runtime with none is refused at once.
   */
  found(): FetchLike;
  /**
   * The layer's own `fetch`, recorded as a layer's. A request handed back to
   * it while a layer sends it (a wrapper installed over it, MSW's or a bound
   * copy, that calls it back at once) goes to the fetch beneath it: it would
   * otherwise send it again, or call itself and never send.
   */
  own(fetch: FetchLike): FetchLike;
  /**
   * The `fetch` you passed, noting what the layer hands it: one that reads
   * the global fetch, with this layer installed there, hands it back, which
   * then goes to the fetch beneath (it would run the layer again, each run
   * deeper, until the stack gave out). Another layer installed there runs.
   */
  given(fetch: FetchLike): FetchLike;
}

/*
 * The realm's shared `sending`: the request a layer is handing the global
 * fetch right now (synchronously: what a wrapper installed over a layer
 * calls back at once), whatever layer, of whatever copy, sends it: a layer
 * entered with it goes to the fetch beneath it, and does not send it again
 * through its own pipeline. A call for another URL made meanwhile (a
 * wrapper's beacon) is a call like any other.
 */

/** Whether `input` names the URL of the request being sent: a wrapper may build a new `Request` of it (MSW does). */
function handedBack(input: Parameters<FetchLike>[0], sending: unknown): boolean {
  // Read as fetch reads an input: a `Request`'s `url`, anything else as text (a `String` object, a polyfill's URL).
  const href = (x: Parameters<FetchLike>[0] | undefined): string =>
    new URL(typeof (x as Request | undefined)?.url === "string" ? (x as Request).url : String(x)).href;
  try {
    return sending !== undefined && (input === sending || href(input) === href(sending as Parameters<FetchLike>[0]));
  } catch {
    // A URL that does not parse is not the one being sent (which did).
    return false;
  }
}

/** Made as the layer is: what is global then is what lies beneath it. */
export function globalFetch(): GlobalFetch {
  const beneath = pastLayers(globalThis.fetch);
  let found: FetchLike | undefined;
  let guarded: FetchLike | undefined;
  // What this layer is handing the `fetch` you passed, right now (synchronously).
  let handing: unknown;
  return {
    found() {
      const fetch = pastLayers(globalThis.fetch);
      if (typeof fetch !== "function") throw noFetch();
      if (fetch !== found) {
        found = fetch;
        guarded = (input, init) => {
          const shared = realm();
          const outer = shared.sending;
          shared.sending = input;
          try {
            return fetch(input, init);
          } finally {
            shared.sending = outer;
          }
        };
      }
      return guarded as FetchLike;
    },
    own(fetch) {
      const layer: FetchLike = (input, init) =>
        !handedBack(input, realm().sending) && !handedBack(input, handing)
          ? fetch(input, init)
          : beneath
            ? beneath(input, init)
            : Promise.reject(noFetch());
      realm().beneath.set(layer, beneath);
      return layer;
    },
    given(fetch) {
      return (input, init) => {
        const outer = handing;
        handing = input;
        try {
          return fetch(input, init);
        } finally {
          handing = outer;
        }
      };
    },
  };
}

// (An installed layer made where no fetch was global has none beneath it either.)
const noFetch = (): TypeError =>
  new TypeError("resilience.fetch: no global fetch in this runtime; pass one as the `fetch` option");
