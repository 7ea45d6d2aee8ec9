import { hasSignalShape } from "./kind-of.ts";
import { isStandardSchema } from "./standard-schema.ts";

/**
 * `value` with its plain objects and arrays copied all the way down, taken
 * once the options are checked: a caller that edits its options afterwards
 * changes neither what was checked nor what runs (`createResilience` keeps
 * resolved copies the same way). Anything else (a function, a clock, a
 * schema, a stage, a `Headers`, a polyfill's signal made as a plain object)
 * is kept as it is, a Standard Schema written as a plain object too (its
 * `~standard` holds a `validate`); an object met twice is
 * copied once. Symbol keys are kept too (ky's `replaceOption` marks an
 * object with one), and keys defined not enumerable (read by name, they
 * were checked), still not enumerable: what JSON, a spread or a header
 * record leaves out of the given object, it leaves out of the copy. A
 * plain object of another realm (a `node:vm` context, an iframe), which
 * the option checker takes as plain, is copied as one of this realm.
 */
export function plainCopy<T>(value: T, seen: Map<object, unknown> = new Map()): T {
  if (typeof value !== "object" || value === null) return value;
  const known = seen.get(value);
  if (known !== undefined) return known as T;
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    seen.set(value, copy);
    for (const item of value) copy.push(plainCopy(item, seen));
    return copy as T;
  }
  // A polyfill's signal may be a plain object: it is alive, and a copy would freeze its `aborted`. A
  // Standard Schema written as one is the caller's too: its `validate` may read `this`.
  if (!isPlain(value) || hasSignalShape(value) || isStandardSchema(value)) return value;
  const copy: Record<string, unknown> = Object.getPrototypeOf(value) === null ? Object.create(null) : {};
  seen.set(value, copy);
  for (const key of Reflect.ownKeys(value)) {
    // Defined, not assigned: a key such as `__proto__` stays a key.
    Object.defineProperty(copy, key, {
      value: plainCopy((value as Record<PropertyKey, unknown>)[key], seen),
      enumerable: Object.prototype.propertyIsEnumerable.call(value, key),
      writable: true,
      configurable: true,
    });
  }
  return copy as T;
}

/** Whether `value` is an array or a plain object (of any realm: its prototype is an `Object.prototype`, or none). */
export function isPlain(value: object): boolean {
  if (Array.isArray(value)) return true;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || Object.hasOwn(proto as object, "isPrototypeOf");
}

/**
 * `value`'s own keys, one level deep, in a new object to edit, with the
 * ones defined not enumerable still so (a spread or rest would drop them,
 * and ky reads its options by name), less `omit`. Every key is writable
 * in the copy, even one of a frozen object; a getter is read once.
 */
export function shallowCopy<T extends object>(value: T, omit?: PropertyKey): T {
  const copy: Record<PropertyKey, unknown> = {};
  for (const key of Reflect.ownKeys(value)) {
    if (key === omit) continue;
    Object.defineProperty(copy, key, {
      value: (value as Record<PropertyKey, unknown>)[key],
      enumerable: Object.prototype.propertyIsEnumerable.call(value, key),
      writable: true,
      configurable: true,
    });
  }
  return copy as T;
}
