/**
 * Dotted paths into parsed JSON ("parameters.num_inference_steps"). Property
 * keys from users are data: a path may not name `__proto__`, `constructor`
 * or `prototype`, and walking reads own properties only, so no path can
 * reach or change an object prototype.
 */
const FORBIDDEN = new Set(["__proto__", "constructor", "prototype"]);

/** Splits and checks a path; throws a TypeError naming the bad segment. */
export function splitPath(path: string): string[] {
  const segments = path.split(".");
  for (const segment of segments) {
    if (segment === "") throw new TypeError(`path "${path}": empty segment`);
    if (FORBIDDEN.has(segment)) throw new TypeError(`path "${path}": segment "${segment}" is not allowed`);
  }
  return segments;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/** The value at `segments`, following own properties only; `undefined` when absent. */
export function getPath(root: unknown, segments: readonly string[]): unknown {
  let current: unknown = root;
  for (const segment of segments) {
    if (!isObject(current) || !Object.hasOwn(current, segment)) return undefined;
    current = current[segment];
  }
  return current;
}
