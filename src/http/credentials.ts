/** Always dropped across origins, with the user's `sensitiveHeaders`. */
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

/**
 * Removes every credential header (the standard three and the user's
 * `sensitiveHeaders`, lower-cased) from `headers`, in place. Returns the
 * names it removed, so callers can report them without their values.
 */
export function dropCredentials(headers: Headers, sensitive: readonly string[]): string[] {
  const dropped: string[] = [];
  for (const name of CREDENTIAL_HEADERS.concat(sensitive)) {
    if (headers.has(name)) {
      headers.delete(name);
      dropped.push(name);
    }
  }
  return dropped;
}
