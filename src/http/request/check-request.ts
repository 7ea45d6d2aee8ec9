import type { BrowserBuild } from "../../core/browser-build.ts";
import { isHttpToken } from "../../core/http-token.ts";
import { redactErrorChain } from "../../core/redact-url.ts";
import { shownValue, withValuesShown } from "../../core/shown-name.ts";
import { trimHeaderValue } from "../../core/trim.ts";
import { copyHeaders } from "./headers.ts";

/**
 * What no header value may hold (RFC 9110 §5.5): a control character other
 * than a tab (a CR or LF would split the request; Node's fetch refuses every
 * one of them), or a character above U+00FF (not a byte).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const BAD_VALUE = /[\0-\x08\n-\x1f\x7f\u0100-\uffff]/;

/**
 * The caller's own mistakes, found before anything is sent: a method that is
 * not a token, a header that is not valid, a port out of range. They throw a
 * `TypeError` at once; they are never retried and never count against the
 * host's breaker, which must hear only about the host.
 */
export function checkMethod(method: unknown): string {
  if (typeof method !== "string" || !isHttpToken(method)) {
    throw new TypeError(`resilience.fetch: init.method must be an HTTP method name, got ${shownValue(method)}`);
  }
  if (/^(?:connect|trace|track)$/i.test(method)) {
    throw new TypeError(`resilience.fetch: init.method ${shownValue(method)} is one fetch forbids`);
  }
  return normalizeMethod(method);
}

/**
 * A method as fetch normalises it: the six it knows upper-cased, any other
 * kept as written (`patch` goes as `patch`, which most servers refuse), on
 * every path alike.
 */
export function normalizeMethod(method: string): string {
  return /^(?:delete|get|head|options|post|put)$/i.test(method) ? method.toUpperCase() : method;
}

/**
 * The headers as they are when the call is made, as fetch takes them: the
 * caller may edit its `Headers`, record or pairs for its next call while
 * this one still retries. A record or pairs are checked name by name (the
 * message names the header, never its value) and copied as pairs; a
 * `Headers` (checked when it was built) is copied.
 */
export function snapshotHeaders(headers: HeadersInit | null | undefined): HeadersInit | undefined {
  if (headers === undefined) return undefined;
  // fetch refuses `null`, a string, a number: named by kind (a string may be a token).
  if (headers === null || Object(headers) !== headers) {
    throw new TypeError(
      `resilience.fetch: headers must be a Headers, a record or [name, value] pairs, got ${headers === null ? "null" : typeof headers}`,
    );
  }
  // A `Headers` took no CR, LF or NUL, but it takes other control characters.
  if (headers instanceof Headers) {
    const copy = copyHeaders(headers);
    for (const [name, value] of copy) checkValue(name, value);
    return copy;
  }
  const pairs: Array<[string, string]> = [];
  // Any iterable (an array, a Map) is a list of pairs, as fetch reads it; any other object a record.
  const list: Iterable<unknown> = Symbol.iterator in headers ? headers : recordEntries(headers);
  for (const item of list) {
    const pair = Array.isArray(item)
      ? item
      : Object(item) === item && Symbol.iterator in (item as object)
        ? [...(item as Iterable<unknown>)]
        : null;
    if (!pair) throw new TypeError(`resilience.fetch: a header must be a [name, value] pair, got ${typeof item}`);
    const [name, value] = pair as [unknown, unknown];
    if (typeof name !== "string" || !isHttpToken(name)) {
      throw new TypeError(
        `resilience.fetch: invalid header name ${typeof name === "string" ? badName(name) : shownKind(name)}`,
      );
    }
    if (pair.length !== 2) {
      throw new TypeError(`resilience.fetch: header "${name}" must be a [name, value] pair`);
    }
    // As fetch sends it: a transport of one's own (a signer, a logger) sees the same value.
    const text = trimHeaderValue(`${value}`);
    checkValue(name, text);
    pairs.push([name, text]);
  }
  return pairs;
}

/** Whether `value` holds nothing a header may not (see `BAD_VALUE`), as it stands. */
export const isBareHeaderValue = (value: string): boolean => !BAD_VALUE.test(value);

/** Whether fetch sends `value` as a header's: only what is inside it once trimmed counts. */
export const isHeaderValue = (value: string): boolean => isBareHeaderValue(trimHeaderValue(value));

/** Refuses a value no header may hold, naming the header, never quoting the value. */
function checkValue(name: string, value: string): void {
  if (!isHeaderValue(value)) {
    throw new TypeError(
      `resilience.fetch: header "${name}" has a control character (CR, LF, NUL…) or a character above U+00FF in its value`,
    );
  }
}

/**
 * A record's entries as fetch reads them: its own enumerable keys, symbols
 * too (refused as names, where `Object.entries` would drop them).
 */
function recordEntries(record: object): Array<[PropertyKey, unknown]> {
  return Reflect.ownKeys(record)
    .filter((key) => Object.prototype.propertyIsEnumerable.call(record, key))
    .map((key) => [key, (record as Record<PropertyKey, unknown>)[key]]);
}

/**
 * An invalid name, described, never quoted: pairs written the wrong way round
 * hold the value (`Bearer …`) where the name goes. Its first character that
 * no name may hold says what is wrong.
 */
export function badName(name: string): string {
  const bad = /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/.exec(name);
  return bad ? `(${JSON.stringify(bad[0])} at ${bad.index})` : '""';
}

/**
 * The fields whose values a `Request` checks (an unknown one it ignores, as
 * its fetch does), `redirect` among them; the ky client names them too when
 * the platform refuses one.
 */
export const CHECKED_FIELDS = [
  "cache",
  "mode",
  "credentials",
  "referrer",
  "referrerPolicy",
  "priority",
  "duplex",
  "window",
  "redirect",
] as const;

/**
 * A field the runtime's fetch refuses whatever the server answers: a value
 * no `Request` takes (`cache: "bogus"`, `mode: "navigate"`, `only-if-cached`
 * outside `same-origin`, `redirect: "bogus"`, a `referrer` that is no URL,
 * `duplex: "full"`, a `window` but `null`), or one the runtime does not implement (workerd
 * refuses `redirect: "error"`, any `integrity`, `mode`, `credentials`). The
 * runtime's own `Request` constructor says so, so the call fails at once,
 * never retried nor counted against a healthy host's breaker (fetch would
 * reject it as it rejects an unreachable host). `integrity` is not the
 * runtime's to judge when the library follows the call's redirects (it
 * checks the final answer itself). Built only when one of these fields is
 * set: a `Request` costs microseconds. A value no runtime takes for an
 * enumerated field (text that is no plain word, or no text) is refused
 * first, by the layer, in a page's build too, which leaves the rest to the
 * browser.
 */
export function checkPlatformFields(init: RequestInit | undefined, follows: boolean | undefined, method: string): void {
  // A call without `init` (the most common) has nothing to check.
  if (!init) return;
  const fields: Record<string, unknown> = {};
  for (const name of CHECKED_FIELDS) {
    const value = (init as Record<string, unknown>)[name];
    if (value === undefined) continue;
    // Every value fetch takes for a field but these two is a plain word: text that is not one (a key pasted as
    // `mode`), or no text at all, is refused here, in every build, before a runtime's message quotes it.
    if (name !== "referrer" && name !== "window" && (typeof value !== "string" || shownValue(value) === "a string")) {
      throw new TypeError(`resilience.fetch: init.${name} is no value fetch takes, got ${shownValue(value)}`);
    }
    fields[name] = value;
  }
  // A page's build leaves the rest out: its bytes count there, and browsers take `redirect` and `integrity`.
  if ((globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__) return;
  const redirect = fields.redirect as RequestRedirect | undefined;
  const integrity = follows && (redirect ?? "follow") === "follow" ? "" : (init.integrity ?? "");
  delete fields.redirect;
  // Without a global `Request` (a runtime given its `fetch` as an option) there is nothing to ask.
  // Any `redirect` but "follow" is checked too: "error" is refused by workerd, and a value fetch does not know by all.
  if (
    ((redirect ?? "follow") === "follow" && !integrity && Object.keys(fields).length === 0) ||
    typeof Request !== "function"
  )
    return;
  try {
    new Request("http://localhost/", { ...fields, method, redirect: redirect ?? "follow", integrity });
  } catch (error) {
    // The platform's message may quote a field's value (a referrer, a key pasted as `mode`): each is shown
    // as the layer's own refusals show values, and URLs are cut as in every message. Its error is no `cause`:
    // that one quotes the value whole.
    const values = [method, redirect, integrity, ...Object.values(fields)];
    throw redactErrorChain(
      new TypeError(
        `resilience.fetch: this runtime refuses the call: ${withValuesShown(String((error as Error).message), values)}`,
      ),
    );
  }
}

/** A header name that is no string, by its kind (`null` as itself). */
function shownKind(value: unknown): string {
  return value === null ? "null" : typeof value;
}
