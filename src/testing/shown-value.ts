/**
 * A value as the kit's refusals quote it: text in quotes, so `"2"` given
 * for a count is not read as the number 2; anything else as `String`
 * writes it, or by its type when it cannot be written (a symbol in a
 * template, an object without a prototype), so building the message never
 * throws an engine error of its own.
 */
export function shownValue(value: unknown): string {
  // Text boxed as a `String` object too: `Object("2")` is no more the number than "2" is.
  if (typeof value === "string" || value instanceof String) return JSON.stringify(String(value));
  try {
    return String(value);
  } catch {
    return typeof value;
  }
}
