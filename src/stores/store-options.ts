import { optionKeys } from "../core/options/option-keys.ts";
import { shownValue } from "../core/shown-name.ts";

/**
 * A store's options, read once when the store is made, each problem a
 * `TypeError` naming the store: options that are no object, a name the store
 * does not know (a misspelt `maxkeys` would be dropped without a word), a
 * value that cannot be read (a getter that throws, a revoked `Proxy`). Read
 * once, so a getter is not asked again later; the values are checked by the
 * store itself.
 */
export function readStoreOptions<T extends object>(
  store: string,
  options: T | undefined,
  known: readonly (keyof T & string)[],
): Partial<T> {
  if (options === undefined) return {};
  if (typeof options !== "object" || options === null)
    throw new TypeError(`${store}: expected options as an object, got ${shownValue(options)}`);
  let keys: string[];
  let list: boolean;
  try {
    keys = optionKeys(options);
    list = Array.isArray(options);
  } catch {
    throw new TypeError(`${store}: expected options that can be read, got a value that cannot be read`);
  }
  // A list is no options object: `[]` would pass for none.
  if (list) throw new TypeError(`${store}: expected options as an object, got an array`);
  const unknown = keys.find((key) => !(known as readonly string[]).includes(key));
  if (unknown !== undefined)
    throw new TypeError(`${store}: unknown option ${shownValue(unknown)}, expected one of ${known.join(", ")}`);
  const read: Partial<T> = {};
  for (const key of known) {
    try {
      read[key] = options[key];
    } catch {
      throw new TypeError(`${store}: ${key} cannot be read`);
    }
  }
  return read;
}

/** A number of ms or a count at least `min` and finite: a string (as an env var gives it), NaN or ±Infinity is none. */
export function isNumberFrom(value: unknown, min: number): value is number {
  return typeof value === "number" && value >= min && value < Number.POSITIVE_INFINITY;
}

/**
 * A Cloudflare store's `scope` and `ctx`, checked when the store is made: a
 * scope that is no string would name every key `cb:v1:5:…` or `[object
 * Object]`, and a context without `waitUntil` would fail every background
 * write with a `store` event instead of once, here.
 */
export function checkScopeAndContext(store: string, scope: unknown, ctx: unknown): void {
  if (scope !== undefined && typeof scope !== "string")
    throw new TypeError(`${store}: scope must be a string, got ${shownValue(scope)}`);
  if (ctx === undefined) return;
  let ok = false;
  try {
    ok = typeof (ctx as { waitUntil?: unknown } | null)?.waitUntil === "function";
  } catch {
    // A revoked Proxy or a getter that throws: no context either.
  }
  if (!ok) throw new TypeError(`${store}: ctx must be the request's context, with waitUntil, got ${shownValue(ctx)}`);
}
