/**
 * Releases the connection behind a response nobody will read (one retried
 * past, a redirect followed, a fallback answer rejected or a hedge lost). A
 * body already locked or errored has nothing left to release.
 */
export function discardBody(response: Response): void {
  response.body?.cancel().catch(() => {});
}
