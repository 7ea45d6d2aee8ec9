/**
 * A value as the kit's refusals quote it: text in quotes, so `"2"` given
 * for a count is not read as the number 2; anything else as `String`
 * writes it, or by its type when it cannot be written (a symbol in a
 * template, an object without a prototype), so building the message never
 * throws an engine error of its own.
 */
export function shownValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  try {
    return String(value);
  } catch {
    return typeof value;
  }
}
