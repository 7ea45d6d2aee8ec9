import { isHeaderValue } from "../http/request/check-request.ts";

/**
 * The error ky threw while building its `Headers` (before any hook, at a
 * call or at `create`/`extend`), told as the layer tells it: the platform's
 * refusal of a header value quotes it (Node's "Headers.append: "Bearer
 * sk-…\r\n" is an invalid header value"), and a header value is often a
 * credential. When one of `headers` holds a value no request can carry (a
 * CR, LF, NUL or other control character inside it, a character above
 * U+00FF), a `TypeError` naming that header, never quoting its value, takes
 * the error's place; any other error is returned as it is.
 */
export function namingBadHeader(error: unknown, headers: unknown): unknown {
  const name = error instanceof TypeError ? badHeaderName(headers) : undefined;
  return name === undefined ? error : refusal(name);
}

/**
 * Refuses at once the headers of an instance (`createClient`, `extend`,
 * `create`) that hold a value no request can carry, as {@link namingBadHeader}
 * names it: ky would merge them into every call, each refused.
 */
export function refuseBadHeaders<T>(headers: T): T {
  const name = badHeaderName(headers);
  if (name !== undefined) throw refusal(name);
  return headers;
}

const refusal = (name: string): TypeError =>
  new TypeError(`ky: header "${name}" has a control character (CR, LF, NUL…) or a character above U+00FF in its value`);

/** The name of the first header in `headers` whose value no request can carry. */
function badHeaderName(given: unknown): string | undefined {
  if (Object(given) !== given) return undefined;
  // Inside ky's `replaceOption(…)` marker (a symbol of its own, the headers in `value`).
  const marked = Object.getOwnPropertySymbols(given).some((key) => key.description === "replaceOption");
  const headers = marked ? (given as { value?: unknown }).value : given;
  if (Object(headers) !== headers) return undefined;
  // Any iterable (a `Headers`, pairs, a `Map`) is a list of pairs, as fetch reads it; any other object a record.
  const entries: Iterable<unknown> =
    Symbol.iterator in (headers as object) ? (headers as Iterable<unknown>) : Object.entries(headers as object);
  for (const entry of entries) {
    if (!Array.isArray(entry)) continue;
    const [name, value] = entry as [unknown, unknown];
    // `undefined` is ky's way to remove a header.
    if (value !== undefined && !isHeaderValue(String(value))) return String(name);
  }
  return undefined;
}

/**
 * `headers` as ky should get them: a `Headers` as the list of pairs its
 * iterator gives. ky copies headers with `new Headers(…)`, which MSW 3 in
 * Node answers, given a `Headers`, with the raw list it recorded: what was
 * set on it before `server.listen()` would be lost.
 */
export function listedHeaders<T>(headers: T): T | [string, string][] {
  return headers instanceof Headers ? [...headers] : headers;
}
