import { trimOws } from "./trim.ts";

/**
 * The Fetch standard's CORS-safelisted request headers, judged by name and
 * value: a browser sends these cross-origin without asking a preflight.
 * `accept` without the bytes the standard calls unsafe, the two language
 * headers in letters, digits and ` *,-.;=`, `content-type` of a form or text
 * without unsafe bytes, `range` as one byte range; each at most 128 bytes.
 * (The standard's 1,024-byte cap on the safelisted values together cannot be
 * reached by these values of at most 128 bytes.)
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the standard's unsafe bytes are control bytes.
const NO_UNSAFE_BYTES = /^[^\0-\x08\n-\x1f"():<>?@[\\\]{}\x7f]*$/;
const LANGUAGE = /^[\dA-Za-z *,.;=-]*$/;
const SAFELISTED = new Map([
  ["accept", NO_UNSAFE_BYTES],
  ["accept-language", LANGUAGE],
  ["content-language", LANGUAGE],
  ["content-type", NO_UNSAFE_BYTES],
  ["range", /^bytes=\d+-\d*$/],
]);
const FORM_OR_TEXT = ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"];

/** Whether a browser sends header `name` (lower case) with `value` cross-origin without a preflight. */
export function isCorsSafelisted(name: string, value: string): boolean {
  if (value.length > 128 || !SAFELISTED.get(name)?.test(value)) return false;
  // The type is read as the MIME parser reads it: only tabs and spaces around it go (`trim` would
  // also drop a no-break space, which makes the type one no form or text is, and asks a preflight).
  if (name === "content-type") return FORM_OR_TEXT.includes(trimOws(value.split(";")[0] ?? "").toLowerCase());
  // `bytes=5-3` is no simple range: the last byte, when given, is not before the first
  // (compared as digits: past 2^53 a Number would round both to one value).
  const [first = "", last] = name === "range" ? value.slice(6).split("-") : [];
  return !last || notAfter(first, last);
}

/** Whether the whole number written `a` is at most `b`'s, at any length. */
function notAfter(a: string, b: string): boolean {
  const x = a.replace(/^0+(?=\d)/, "");
  const y = b.replace(/^0+(?=\d)/, "");
  return x.length !== y.length ? x.length < y.length : x <= y;
}
