import { isHttpToken } from "../core/http-token.ts";
import { badName, isHeaderValue } from "../http/request/check-request.ts";

/**
 * The error ky threw while building its `Headers` (before any hook, at a
 * call or at `create`/`extend`), told as the layer tells it: the platform's
 * refusal of a header value quotes it (Node's "Headers.append: "Bearer
 * sk-…\r\n" is an invalid header value"), and a header value is often a
 * credential, as a name written the wrong way round is. When one of
 * `headers` holds a name or value no request can carry (see `badHeader`),
 * a `TypeError` that quotes neither takes the error's place; any other
 * error is returned as it is.
 */
export function namingBadHeader(error: unknown, headers: unknown): unknown {
  const refused = error instanceof TypeError ? badHeader(headers) : undefined;
  return refused ?? error;
}

/**
 * Headers an `init` hook set (ky builds its `Headers` after those hooks):
 * what the platform would refuse, quoting the value, is thrown named as
 * {@link namingBadHeader} names a call's own. A value the platform takes
 * but no request can carry goes on to the layer, which refuses it as it
 * refuses a call's own (the call rejects).
 */
export function namePlatformRefusal(headers: unknown): void {
  if (!badHeader(headers)) return;
  try {
    new Headers(headers as HeadersInit);
  } catch (error) {
    throw namingBadHeader(error, headers);
  }
}

/**
 * Refuses at once the headers of an instance (`createClient`, `extend`,
 * `create`) that hold a name or value no request can carry, as
 * {@link namingBadHeader} tells it: ky would merge them into every call, each refused.
 */
export function refuseBadHeaders<T>(headers: T): T {
  const refused = badHeader(headers);
  if (refused) throw refused;
  return headers;
}

/**
 * The refusal of the first header in `headers` that no request can carry:
 * a name that is no HTTP token, described by its first bad character and
 * never quoted (pairs written the wrong way round hold the value there, as
 * the layer's own check says), or a value with a control character or a
 * character above U+00FF, named by its header.
 */
function badHeader(given: unknown): TypeError | undefined {
  if (Object(given) !== given) return undefined;
  // Inside ky's `replaceOption(…)` marker.
  const headers = isReplaceOption(given) ? (given as { value?: unknown }).value : given;
  if (Object(headers) !== headers) return undefined;
  // Any iterable (a `Headers`, pairs, a `Map`) is a list of pairs, as fetch reads it; any other object a record.
  const entries: Iterable<unknown> =
    Symbol.iterator in (headers as object) ? (headers as Iterable<unknown>) : Object.entries(headers as object);
  for (const entry of entries) {
    if (!Array.isArray(entry)) continue;
    const [name, value] = entry as [unknown, unknown];
    if (!isHttpToken(String(name))) return new TypeError(`ky: invalid header name ${badName(String(name))}`);
    // `undefined` is ky's way to remove a header.
    if (value !== undefined && !isHeaderValue(String(value))) {
      return new TypeError(
        `ky: header "${String(name)}" has a control character (CR, LF, NUL…) or a character above U+00FF in its value`,
      );
    }
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
  // A generator or any iterator that is its own iterable reads once: listed now, so a check
  // that reads it leaves ky the pairs (ky, as fetch, takes such an iterable of pairs).
  const iterate = (headers as { [Symbol.iterator]?: unknown } | null | undefined)?.[Symbol.iterator];
  if (typeof iterate === "function" && iterate.call(headers) === headers)
    return [...(headers as Iterable<[string, string]>)];
  // Inside ky's `replaceOption(…)` marker too: a copy of the marker, its symbol kept, the list as its `value`.
  if (isReplaceOption(headers)) {
    const { value } = headers as { value?: unknown };
    return value instanceof Headers && listable(value) ? ({ ...headers, value: [...value] } as T) : headers;
  }
  return headers instanceof Headers && listable(headers) ? [...headers] : headers;
}

/** ky reads a `Headers`' `"undefined"` value as "remove this header", a list's as the text: such a one stays a `Headers`. */
const listable = (headers: Headers): boolean => ![...headers.values()].includes("undefined");

/** Whether `given` is ky's `replaceOption(…)` marker (a symbol of its own, the option in `value`). */
function isReplaceOption(given: unknown): boolean {
  return (
    Object(given) === given && Object.getOwnPropertySymbols(given).some((key) => key.description === "replaceOption")
  );
}
