/**
 * A refused value as an error message shows it: a primitive as written, an
 * object, a function, a symbol or a BigInt by its kind only (its text could hold
 * anything, a URL with its key among them). `retry(fn)` of `./policies`
 * writes the same rule inline: importing it costs that entry bytes.
 */
export function shownName(name: unknown): string {
  if (typeof name === "string") return JSON.stringify(name);
  // A BigInt by its kind too: its digits alone would read as the number a check asked for (`got 5`).
  if (typeof name === "function" || typeof name === "symbol" || typeof name === "bigint") return `a ${typeof name}`;
  return typeof name === "object" && name !== null ? "an object" : String(name);
}

/**
 * A refused option value (a number expected): as {@link shownName} shows
 * it, save a string that is not a plain word, named by its kind (a URL
 * pasted into the wrong option keeps its key out of the message).
 */
export function shownValue(value: unknown): string {
  return typeof value === "string" && !/^[\w .,+-]*$/.test(value) ? "a string" : shownName(value);
}

/**
 * A runtime's message refusing a value it was given (a `Request` field, a
 * method), with each given value that {@link shownValue} would not quote
 * named `a string` wherever the message quotes it: as given, upper-cased
 * (a method may be), or escaped as JSON escapes it. A one-character value
 * may take text around it too: the message loses some sense, never a key.
 */
export function withValuesShown(message: string, values: readonly unknown[]): string {
  // The longest first: a shorter value found inside a longer one would leave the rest of it behind.
  const strings = values.filter((value): value is string => typeof value === "string");
  for (const value of strings.sort((a, b) => b.length - a.length)) {
    if (shownValue(value) !== "a string") continue;
    for (const written of [value, value.toUpperCase(), JSON.stringify(value).slice(1, -1)]) {
      message = message.split(written).join("a string");
    }
  }
  return message;
}
