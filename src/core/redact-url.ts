/**
 * What comes before a URL's authority: the scheme (if any) and any slashes
 * (the URL parser also reads `https:user:pass@host` and `https:\\host` as
 * an authority).
 */
const AUTHORITY_LEAD = /^([a-z][a-z\d+.-]*:)?[\\/]*/i;

/**
 * A URL as events, errors and health show it: without its userinfo
 * (`user:pass@`), query string or fragment, which carry credentials and API
 * keys (`?key=…`), and with a URL percent-encoded into it (a callback in its
 * path, `/cb/https%3A%2F%2Fu%3Apw%40host…`) cut as well. Works on text that
 * does not parse as a URL too, so an invalid URL's error message cannot
 * leak them either.
 */
export function redactUrl(url: string): string {
  return withoutEncodedUrls(withoutOwnSecrets(url));
}

/** {@link redactUrl} without the pass for percent-encoded URLs. */
function withoutOwnSecrets(url: string): string {
  // An encoded URL whose colon is raw: its slashes and secrets are all encoded, for the encoded pass.
  if (ENCODED_AFTER_SCHEME.test(url)) return url;
  const [lead = "", scheme] = AUTHORITY_LEAD.exec(url) ?? [];
  // A path (`/npm/@types?key=…`) has no authority: only its query and fragment go.
  if (!scheme && lead.length === 1) return withoutQuery(url);
  const start = lead.length;
  const at = url.lastIndexOf("@");
  if (at >= start && !URL.canParse(url)) {
    // Text no parser reads may hide userinfo anywhere before its last `@`
    // (a key holding `/`, `?` or `#`): all of it goes.
    return url.slice(0, start) + withoutQuery(url.slice(at + 1));
  }
  const head = withoutQuery(url);
  // Parsed, the authority ends at the next slash or backslash.
  const slash = head.slice(start).search(/[\\/]/);
  const end = slash < 0 ? head.length : start + slash;
  const userinfo = head.lastIndexOf("@", end - 1);
  return userinfo < start ? head : head.slice(0, start) + head.slice(userinfo + 1);
}

function withoutQuery(url: string): string {
  const cut = url.search(/[?#]/);
  return cut < 0 ? url : url.slice(0, cut);
}

/**
 * A URL quoted in text: from its scheme to the next space. A URL may hold
 * `)` or `'` (`/wiki/A_(b)`, `/o'brien`), so nothing else ends it, even
 * where it ends a parenthesis (Deno's "for url (https://…): …"). A scheme
 * with `//`, or one the URL parser reads without slashes
 * (`https:user:pass@host` is `https://user:pass@host`). A match starts only
 * where a scheme can (no scheme character before it), so text from a
 * hostile endpoint is read in linear time.
 */
export const URL_IN_TEXT: RegExp = /(?<![a-z\d+.-])(?:[a-z\d+.-]+:\/\/|(?:https?|wss?|ftp):)\S*/gi;

/**
 * Userinfo inside a URL's text: a second URL run into the first
 * (`…/p,https://svc:pw@b.example/`, two URLs in a JSON body, its slashes
 * perhaps escaped as `\/\/` or left out after `https:`) has its own, up to
 * its last `@` (a password may hold one). Cut wherever it stands; a path
 * segment that looks like one (`//name@x`) goes too, which costs nothing
 * secret. It starts only after `//`, `\/\/` or a special scheme and reads
 * at most 256 characters from there. A password may hold spaces, which the
 * URL parser takes (`https://admin:hunter 2@host/`): after `//` (or `\/\/`)
 * and a `user:`, the userinfo runs on over up to 16 spaces to an `@` before any
 * `/`, `?` or `#`, unless what follows the `:` is a port (digits, then a
 * space, perhaps after the punctuation that ends a phrase: `host:8080, or
 * bob@x` is no userinfo, `admin:2024! spring@x` is). Runs after two `//` never
 * overlap (a run holds no `/` or `\`), and a run's end is forced (it holds
 * no space, `:` or `@` where one must follow): linear time on any text.
 */
const INNER_USERINFO =
  /(?<=\/\/|\\\/\\\/|(?<![a-z\d+.-])(?:https?|wss?|ftp):)(?!%(?:25)*2f)(?:[^\s/\\?#]{0,256}|(?<=\/)[^\s/\\?#@:]*:(?!\d{1,5}[,.;:)\]}>'"]*\s)[^\s/\\?#@]*(?:\s[^\s/\\?#@]*){1,16})@/gi;

/** A scheme whose colon encoded slashes follow: the start of an encoded URL (see `ENCODED_URL`). */
const ENCODED_AFTER_SCHEME = /^[a-z][a-z\d+.-]*:%(?:25)*2f/i;

/** What may close the text around a URL with a query: kept when the query goes. */
const CLOSING = ")'\",.;:]>}`\u2019\u201d\u00bb";

/**
 * Text that may quote URLs (a platform's error message: Deno's names the URL,
 * query and all; Node's names a URL with credentials it refused), with each
 * URL's userinfo, query and fragment cut, as {@link redactUrl} cuts them,
 * and the userinfo after any `//` (a second URL run into the first, a
 * scheme-relative one). A word with a query or fragment that holds a
 * parameter (`?key=…`, `#access_token=…`) is cut there too, whatever comes
 * before it: a relative URL (Node's "Failed to parse URL from
 * /api/jobs?key=…", workerd's "Invalid URL: v1/jobs?key=…") or a host
 * without its scheme; a bare `?` (a question ending on a path) stays. A
 * query runs to the next space, less the closing punctuation it ends on,
 * kept. Every pass reads the text once: linear time on any input.
 */
export function redactUrlsIn(text: string): string {
  return withoutEncodedUrls(redactPlainUrlsIn(text));
}

/** `text` with each percent-encoded URL in it cut (see `ENCODED_URL`), the punctuation closing it kept as written. */
function withoutEncodedUrls(text: string): string {
  return text.replace(ENCODED_URL, (found) => {
    const after = closing(found, 0);
    return withoutEncodedSecrets(found.slice(0, found.length - after.length), 0) + after;
  });
}

/** {@link redactUrlsIn} without the pass for percent-encoded URLs. */
function redactPlainUrlsIn(text: string): string {
  return text
    .replace(URL_IN_TEXT, (found) => {
      // A colon before encoded slashes (`https:%2F%2Fu:pw@host%2F…`, a path
      // segment's encoding) is an encoded URL, left whole for that pass: cut
      // here as one without slashes, only its userinfo would go.
      if (ENCODED_AFTER_SCHEME.test(found)) return found;
      const url = withoutRawUserinfo(found);
      const query = url.search(/[?#]/);
      return withoutOwnSecrets(query < 0 ? url : url.slice(0, query)) + (query < 0 ? "" : closing(url, query));
    })
    .replace(/\S+/g, (word) => {
      // A scheme-relative URL (`//admin:a#b@host/…`) is read as the others
      // are, at the start of a word or after an opening quote or bracket, a
      // `=` or a list's `,` or `;` (`url=//…`, `{"url":"//…"}`, `{//…}`,
      // `a.example,//…`); one lazy scan, linear time.
      const lead = /^(?:\S*?[("'`<[{=,;])?(?=[\\/]{2})/.exec(word)?.[0];
      return withoutParameters(lead === undefined ? word : lead + withoutRawUserinfo(word.slice(lead.length)));
    })
    .replace(INNER_USERINFO, "");
}

/**
 * A URL percent-encoded into text (`https%3A%2F%2Fu%3Apw%40host%3Fkey%3D…`,
 * as a redirect target or a log line quotes one, or partly,
 * `https%3A//u%3Apw%40host`, its slashes escaped or none): its raw text has
 * no `@`, `?` or `#` for the passes above to find; nor has one encoded twice
 * (`https%253A%252F%252F…`). Any word with an encoded colon, a raw one
 * before encoded slashes (`https:%2F%2Fu:pw@host%2F…`, as a path segment's
 * encoder leaves `:` and `@`), or encoded slashes that start it
 * (`%2F%2Fu%3Apw%40host`, scheme-relative) is decoded and read as plain text
 * is, and left as written when nothing in it is cut. It may follow anything
 * (an escape, `%20https%3A…`): its scheme is read 32 characters at most, so
 * the scan is linear.
 */
const ENCODED_URL = /(?:[a-z][a-z\d+.-]{0,31}(?:%(?:25)*3a|:(?=%(?:25)*2f))|(?:%(?:25)*2f){2})\S*/gi;

/**
 * An encoded URL cut as a plain one is, and encoded again. One encoded
 * twice or more is decoded again, three times at most (each pass reads the
 * text once); one that does not decode, or is encoded deeper, keeps only
 * its scheme.
 */
function withoutEncodedSecrets(found: string, depth: number): string {
  const scheme = /^[a-z][a-z\d+.-]*/i.exec(found)?.[0];
  const schemeOnly = scheme ? `${scheme}%3A%2F%2F` : "%2F%2F";
  let decoded: string;
  try {
    decoded = decodeURIComponent(found);
  } catch {
    return schemeOnly;
  }
  let cut = redactPlainUrlsIn(decoded);
  if (ENCODED_URL.test(cut)) {
    ENCODED_URL.lastIndex = 0;
    if (depth >= 2) return schemeOnly;
    cut = cut.replace(ENCODED_URL, (inner) => withoutEncodedSecrets(inner, depth + 1));
  }
  return cut === decoded ? found : encodeURIComponent(cut);
}

/**
 * A word whose query or fragment holds a parameter (`?key=…`,
 * `#access_token=…`), cut there, whatever comes before it (a relative URL,
 * a host without its scheme); a bare `?` (a question ending on a path) stays.
 */
function withoutParameters(word: string): string {
  const query = word.search(/[?#]/);
  return query < 0 || word.indexOf("=", query) < 0 ? word : word.slice(0, query) + closing(word, query);
}

/**
 * A URL in text whose password holds a raw `?`, `#` or `/`
 * (`https://admin:a#b@host/…`, which no parser reads, but runtimes quote
 * when they refuse it) would be cut at the `?` or `#`, user and half the
 * password left: when the text does not parse and holds `user:` before an
 * `@`, everything from the authority to its last `@` goes first, as
 * {@link redactUrl} reads such text. A URL that parses is left to the parser's
 * reading (an `@` in its query is no userinfo).
 */
function withoutRawUserinfo(url: string): string {
  const start = AUTHORITY_LEAD.exec(url)?.[0].length ?? 0;
  const at = url.lastIndexOf("@");
  if (at < start || !url.slice(start, at).includes(":") || URL.canParse(url)) return url;
  return url.slice(0, start) + url.slice(at + 1);
}

/** The closing punctuation a query from `query` on ends with, kept when the query goes. */
function closing(url: string, query: number): string {
  let end = url.length;
  while (end > query + 1 && CLOSING.includes(url.charAt(end - 1))) end--;
  return url.slice(end);
}

/**
 * `error` with the URLs quoted in its message, stack and causes (five deep,
 * an `AggregateError`'s errors among them) cut, as well as in an error of
 * another realm, an object without a message, or a string thrown in its
 * place: a platform's error (Deno's names the URL, query and all) reaches
 * callers as a cause, and a logger that prints causes must find no key
 * there either. An error whose message or stack cannot be set (a
 * `DOMException`'s, a frozen one) is replaced by a plain `Error` of the same
 * name, `code`, `errors` and URL fields saying the same without the URL. Each object is
 * visited once (an `AggregateError` may list itself), 1,000 at most and 32
 * deep (layers nest: a layer whose transport is another layer, a chain's
 * errors, each wrapping the one below), bounds no real chain reaches that
 * keep a hostile one from costing the stack; one whose properties throw
 * when read is left as it is, and the rest of the chain is cut all the same.
 */
export function redactErrorChain(error: unknown): unknown {
  return redactLink(error, 0, new Set());
}

/** One link of the chain, and those below it; a link whose getters throw is left as it is, the others are cut. */
function redactLink(error: unknown, depth: number, seen: Set<object>): unknown {
  try {
    return redactOne(error, depth, seen);
  } catch {
    // A getter that throws (an odd or hostile error): what cannot be read cannot be cut.
    return error;
  }
}

function redactOne(error: unknown, depth: number, seen: Set<object>): unknown {
  // Read by shape, not `instanceof`: an error of another realm (a `vm`, an iframe) carries URLs too.
  const e = error as ErrorLike | null;
  // A thrown string or Symbol (a cause, an `errors` item) is cut as a message is.
  if (typeof e !== "object" || e === null || isUrl(e)) return cutText(error);
  if (depth >= 32 || seen.has(e) || seen.size >= 1000) return error;
  seen.add(e);
  // Each field read once, on its own: a getter that throws (a `name` that is
  // a Symbol makes V8's `stack` throw) hides that field, not the others.
  const given = CUT_FIELDS.map((key) => fieldOf(e, key));
  // A message set to a `URL` (code that assigns one) is a URL field as any other.
  const cut = given.map((value, i) =>
    i < 2 ? cutText(value) : i < 3 ? redactLink(value, depth + 1, seen) : cutList(value, depth, seen),
  );
  const [message, , cause, errors] = cut;
  const fields = urlFields(e);
  try {
    CUT_FIELDS.forEach((key, i) => {
      if (cut[i] !== given[i]) (e as Record<string, unknown>)[key] = cut[i];
    });
    // Defined, not assigned: a field named `__proto__` is a field too.
    for (const key of fields ? Reflect.ownKeys(fields) : []) Object.defineProperty(e, key, { value: fields?.[key] });
  } catch {
    // Read-only or frozen: replaced below.
  }
  // Read again: a getter that makes a new error at each read gave a copy that was cut, not the one the caller reads.
  if (
    cut.every((value, i) => fieldOf(e, CUT_FIELDS[i] as string) === value) &&
    (!fields || Reflect.ownKeys(fields).every((key) => fieldOf(e, key) === fields[key]))
  )
    return error;
  const copy = new Error(
    typeof message === "string" || isUrl(message) ? String(message) : "",
    cause === undefined ? undefined : { cause },
  );
  // A Symbol message stays one, cut (`new Error` would make it text).
  if (typeof message === "symbol") copy.message = message as unknown as string;
  const name = fieldOf(e, "name");
  copy.name = typeof name === "string" ? name : "Error";
  // The platform's code (`ECONNREFUSED`) is what a logger or a retry rule reads.
  const code = fieldOf(e, "code");
  if (typeof code === "string") Object.assign(copy, { code });
  if (Object(errors) === errors) Object.assign(copy, { errors });
  // And the URL fields, cut (one defined read-only is why a copy is made at all).
  for (const key of fields ? Reflect.ownKeys(fields) : [])
    Object.defineProperty(copy, key, { value: fields?.[key], enumerable: true, writable: true, configurable: true });
  return copy;
}

/** The fields {@link redactOne} cuts itself, in the order it reads them. */
const CUT_FIELDS = ["message", "stack", "cause", "errors"];

/**
 * A text with its URLs cut, a `URL` without its secrets, a Symbol whose
 * description quotes a URL (a message may be one, and `String` prints it
 * whole) made anew, cut; anything else as it is.
 */
const cutText = (value: unknown): unknown =>
  typeof value === "string"
    ? redactUrlsIn(value)
    : typeof value === "symbol"
      ? value.description && redactUrlsIn(value.description) !== value.description
        ? Symbol(redactUrlsIn(value.description))
        : value
      : isUrl(value)
        ? redactedUrlObject(value)
        : value;

/** A `URL`: false for a value `instanceof` cannot look at (a revoked Proxy). */
function isUrl(value: unknown): value is URL {
  try {
    return value instanceof URL;
  } catch {
    return false;
  }
}

/**
 * An `AggregateError`'s errors (a fetch that tried mirrors) are causes as
 * well, and so are a `FallbackExhaustedError`'s, a record by endpoint name
 * (one a transport or a generic chain made): a copy with each cut, or the
 * list itself when none needed it or its keys cannot be read.
 */
function cutList(list: unknown, depth: number, seen: Set<object>): unknown {
  let errors = list;
  try {
    if (Object(list) === list) {
      const copy = (Array.isArray(list) ? [] : {}) as Record<string, unknown>;
      // Every own key, those defined not enumerable too (and an array's `length`, its holes kept).
      for (const name of Reflect.ownKeys(list as object) as string[]) {
        const item = fieldOf(list as object, name);
        copy[name] = redactLink(item, depth + 1, seen);
        // Read again: a Proxy that makes a new error at each read gave a copy that was cut.
        if (copy[name] !== item || fieldOf(list as object, name) !== item) errors = copy;
      }
    }
  } catch {}
  return errors;
}

/** A field of an error (or of its `errors`), or `undefined` when its getter throws. */
function fieldOf(e: object, key: PropertyKey): unknown {
  try {
    return (e as Record<PropertyKey, unknown>)[key];
  } catch {
    return undefined;
  }
}

/**
 * An error's other own fields that quote a URL, cut (`undefined` when none
 * does): Bun's fetch errors carry the URL in `path`, others in `url`, as a
 * string or a `URL`. A string field of one word that starts like a URL (a
 * scheme, or a slash for a relative one) loses its userinfo, query and
 * fragment; any other has the URLs in it cut as {@link redactUrlsIn} cuts
 * them; a `URL` is replaced by one without them. Other objects an error
 * holds (a `Request`, a client's request config) are left as they are.
 */
function urlFields(e: object): Record<PropertyKey, unknown> | undefined {
  let fields: Record<PropertyKey, unknown> | undefined;
  // Own fields, those defined not enumerable and those named by a symbol too.
  for (const key of Reflect.ownKeys(e)) {
    if (CUT_FIELDS.includes(key as string)) continue; // cut by the caller
    const value = fieldOf(e, key); // a getter that throws: nothing to read, nothing to cut
    // One word that starts like a URL (a scheme, a slash) is read as one;
    // other text as text: an address such as `a@b.example` or a colour
    // such as `#fff` is no URL, and stays. A `URL` or a Symbol as a message is.
    const cut =
      typeof value === "string" && /^(?:[a-z][a-z\d+.-]*:|[\\/])\S*$/i.test(value) ? redactUrl(value) : cutText(value);
    if (cut === value) continue;
    // No prototype: a field named `__proto__` is kept as a key.
    fields ??= Object.create(null) as Record<PropertyKey, unknown>;
    fields[key] = cut;
  }
  return fields;
}

/** A `URL` without its userinfo, query and fragment (itself when it has none). */
function redactedUrlObject(url: URL): URL {
  const href = redactUrl(url.href);
  return href === url.href ? url : new URL(href);
}

/** What the redaction reads of an error, of this realm or another. */
interface ErrorLike {
  name?: unknown;
  message?: unknown;
  stack?: unknown;
  cause?: unknown;
  errors?: unknown;
  code?: unknown;
}

/** Each error of `errors` through {@link redactErrorChain}, in place. */
export function redactEach(errors: Record<string, unknown>): void {
  for (const name in errors) errors[name] = redactErrorChain(errors[name]);
}
