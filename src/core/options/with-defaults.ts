/**
 * The one way defaults are applied: every key of `defaults`, taken from
 * `options` where the caller set it. `undefined` never wipes a default; any
 * other value (a wrong one too) is kept, for the option checker to refuse.
 * Keys `defaults` does not have are left out.
 */
export function withDefaults<T extends object>(defaults: T, options: { [K in keyof T]?: T[K] | undefined }): T {
  const resolved = { ...defaults };
  for (const key in defaults) {
    const value = options[key];
    if (value !== undefined) resolved[key] = value as T[typeof key];
  }
  return resolved;
}
