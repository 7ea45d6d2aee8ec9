/** Reads one header from any `HeadersInit` without building a `Headers`. */
export function headerOf(headers: HeadersInit | undefined, name: string): string | null {
  if (!headers) return null;
  if (headers instanceof Headers) return headers.get(name);
  const wanted = name.toLowerCase();
  if (Array.isArray(headers)) {
    for (const pair of headers) if (pair[0]?.toLowerCase() === wanted) return pair[1] ?? null;
    return null;
  }
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === wanted) return (headers as Record<string, string>)[key] ?? null;
  }
  return null;
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
 * Whether a request carries an `Idempotency-Key` with a value: an empty one
 * (or one of spaces) is none, as a server reads it, so it does not make a
 * POST safe to send again. Spaces as HTTP reads them (space, tab, CR, LF):
 * a no-break space is a byte of a key on the wire, not space around it.
 */
export function hasIdempotencyKey(headers: HeadersInit | undefined): boolean {
  const key = headerOf(headers, "idempotency-key");
  return key !== null && /[^ \t\r\n]/.test(String(key));
}
