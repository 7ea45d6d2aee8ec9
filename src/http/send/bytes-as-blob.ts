import { bodyKind } from "../../core/kind-of.ts";
import type { FetchLike } from "../resilience-options.ts";

/**
 * The platform's fetch, sent a body of bytes as a `Blob` of them. Node's
 * (undici) cannot send bytes again when it follows a 307 or 308 itself (its
 * first send detaches their buffer: "Cannot perform
 * ArrayBuffer.prototype.slice on a detached ArrayBuffer"), but can a `Blob`;
 * and the layer reads a `Request`'s body into bytes to keep it for retries.
 * Used where the platform follows redirects outside browsers
 * (`redirects: "platform"`) and the fetch is the global one: a `fetch` of
 * your own gets the body as the layer holds it. The `Blob` has no type: the
 * headers carry the request's `Content-Type`.
 */
export function bytesAsBlob(fetch: FetchLike): FetchLike {
  return (input, init) => {
    const body = init?.body;
    return ArrayBuffer.isView(body) || bodyKind(body) === "ArrayBuffer"
      ? fetch(input, { ...init, body: new Blob([body as BlobPart]) })
      : fetch(input, init);
  };
}
