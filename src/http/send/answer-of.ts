/**
 * A transport's answer that came after the attempt was given up: its body is
 * released. Nothing waits on this: what a broken answer throws (a `body`
 * getter) has nowhere to go and must not be an unhandled rejection.
 */
export function dropLate(response: Response): void {
  try {
    response?.body?.cancel().catch(() => {});
  } catch {}
}

/**
 * The transport's answer as fetch gives one: a Response with a status and
 * headers to read. Anything else fails the attempt as a network error
 * would (retried as one, a failure for the host's breaker, a chain's cue to
 * move on): no Response at all, a `Response.error()` (fetch rejects where
 * that would stand), one whose headers cannot be read (its body released).
 * `from` names who answered in the error (a chain's `respond` is checked too).
 */
export function answerOf(answer: Response, from = "the transport"): Response {
  try {
    // `type` is read only for a status 0 (`Response.error()`'s, or an opaque answer's, which stays
    // an answer): no other Response can have one, and each getter costs on every attempt.
    const status = answer?.status;
    if (
      typeof status === "number" &&
      (status !== 0 || answer.type !== "error") &&
      typeof answer.headers?.get === "function" &&
      isResponseShaped(answer)
    )
      return answer;
  } catch {}
  dropLate(answer);
  throw new TypeError(`network error: ${from} answered with no Response fetch would give`);
}

/**
 * A Response of any realm or copy of fetch (undici's own, a polyfill's, an
 * iframe's), known by what the library and its callers read of one besides
 * its status and headers: its body, `clone()` and the readers every copy of
 * fetch has (`formData()` and `bytes()` are left out: polyfills and older
 * runtimes lack them). An object with only a status, headers and `text()` is
 * no Response.
 */
function isResponseShaped(answer: Response): boolean {
  // Named reads, not a loop over names: each is then a monomorphic load of
  // the Response prototype's method, and nothing is allocated per attempt.
  return (
    "body" in answer &&
    typeof answer.clone === "function" &&
    typeof answer.text === "function" &&
    typeof answer.json === "function" &&
    typeof answer.arrayBuffer === "function" &&
    typeof answer.blob === "function"
  );
}
