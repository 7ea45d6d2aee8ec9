import { trimHeaderValue } from "../../core/trim.ts";

/**
 * Reads one header from any `HeadersInit` without building a `Headers`, as
 * `Headers#get` would: a name given twice (two pairs, or two keys of a
 * record in different cases) is one header on the wire, its values joined
 * by ", ", each without the spaces around it.
 */
export function headerOf(headers: HeadersInit | undefined, name: string): string | null {
  if (!headers) return null;
  if (headers instanceof Headers) return headers.get(name);
  const wanted = name.toLowerCase();
  let value: string | null = null;
  for (const [key, v] of Array.isArray(headers) ? headers : Object.entries(headers)) {
    if (key?.toLowerCase() !== wanted) continue;
    const trimmed = trimHeaderValue(String(v));
    value = value === null ? trimmed : `${value}, ${trimmed}`;
  }
  return value;
}

/**
 * A mutable copy of any `HeadersInit`. A `Headers` is copied through its
 * iterator rather than handed to the constructor: MSW 3 in Node wraps that
 * constructor and, given a `Headers`, copies the raw headers it recorded,
 * which miss those a `Request` was built with when it also added a
 * content-type (a test suite would see credentials and other headers vanish).
 */
export function copyHeaders(init: HeadersInit | undefined): Headers {
  return new Headers(init instanceof Headers ? [...init] : init);
}

/**
 * What a copy of `response` with another body is made with: its status, and
 * its headers as the list their iterator gives. Handed the response itself,
 * MSW 3's `Response` in Node takes the raw headers it recorded of it, none
 * for one fetch made, and the copy's headers then read as empty to a
 * `new Headers(copy.headers)` (a route that passes an answer on).
 */
export function sameStatusAndHeaders(response: Response): ResponseInit {
  // A reason phrase fetch decoded beyond Latin-1 (`200 ОК`) is one no `Response` may be made with: dropped.
  const { statusText } = response;
  return {
    status: response.status,
    statusText: /^[\t\x20-\x7e\x80-\xff]*$/.test(statusText) ? statusText : "",
    headers: [...response.headers],
  };
}

/**
 * Whether a request carries an `Idempotency-Key` with a value: an empty one
 * (or one of spaces) is none, as a server reads it, so it does not make a
 * POST safe to send again. Spaces as HTTP reads them (space, tab, CR, LF):
 * a no-break space is a byte of a key on the wire, not space around it.
 */
export function hasIdempotencyKey(headers: HeadersInit | undefined): boolean {
  const key = headerOf(headers, "idempotency-key");
  return key !== null && /[^ \t\r\n]/.test(String(key));
}
