/**
 * `value` with its plain objects and arrays copied all the way down, taken
 * once the options are checked: a caller that edits its options afterwards
 * changes neither what was checked nor what runs (`createResilience` keeps
 * resolved copies the same way). Anything else (a function, a clock, a
 * schema, a stage, a `Headers`) is kept as it is; an object met twice is
 * copied once. Symbol keys are kept too (ky's `replaceOption` marks an
 * object with one).
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
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const copy: Record<string, unknown> = Object.create(proto as object | null);
  seen.set(value, copy);
  for (const key of Reflect.ownKeys(value)) {
    if (!Object.prototype.propertyIsEnumerable.call(value, key)) continue;
    // Defined, not assigned: a key such as `__proto__` stays a key.
    Object.defineProperty(copy, key, {
      value: plainCopy((value as Record<PropertyKey, unknown>)[key], seen),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy as T;
}
