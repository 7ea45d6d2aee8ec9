/**
 * Edits JSON text in place: each replacement swaps the text of one value for
 * another and leaves every other byte as it was. A parse-and-serialise round
 * trip would not: integers above 2^53 (64-bit seeds are common in generation
 * APIs) would change, and so would key order and spacing in fields no rule
 * touches.
 */
export function spliceJson(
  text: string,
  replacements: ReadonlyArray<{ path: readonly string[]; value: unknown }>,
): string {
  const spans: Array<{ start: number; end: number; text: string }> = [];
  for (const { path, value } of replacements) {
    const span = locate(text, path);
    if (span) spans.push({ ...span, text: JSON.stringify(value) });
  }
  spans.sort((a, b) => b.start - a.start);
  let out = text;
  for (const span of spans) out = out.slice(0, span.start) + span.text + out.slice(span.end);
  return out;
}

/** Where the value at `path` stands in `text` (object keys and array indices), or `undefined`. */
export function locate(text: string, path: readonly string[]): { start: number; end: number } | undefined {
  // A byte-order mark before the value is kept, as every other byte.
  let i = skipSpace(text, text.charCodeAt(0) === 0xfeff ? 1 : 0);
  for (const segment of path) {
    const c = text[i];
    if (c === "{") i = findMember(text, i, segment);
    else if (c === "[" && /^\d+$/.test(segment)) i = findElement(text, i, Number(segment));
    else return undefined;
    if (i < 0) return undefined;
  }
  return { start: i, end: skipValue(text, i) };
}

/** The start of the value of the last member named `key` in the object at `i` (JSON.parse keeps the last), or -1. */
function findMember(text: string, open: number, key: string): number {
  let i = skipSpace(text, open + 1);
  let found = -1;
  if (text[i] === "}") return -1;
  for (;;) {
    const keyEnd = skipString(text, i);
    const name = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipSpace(text, keyEnd);
    i = skipSpace(text, i + 1); // past ':'
    if (name === key) found = i;
    i = skipSpace(text, skipValue(text, i));
    if (text[i] === ",") i = skipSpace(text, i + 1);
    else return found;
  }
}

function findElement(text: string, open: number, index: number): number {
  let i = skipSpace(text, open + 1);
  if (text[i] === "]") return -1;
  for (let n = 0; ; n++) {
    if (n === index) return i;
    i = skipSpace(text, skipValue(text, i));
    if (text[i] !== ",") return -1;
    i = skipSpace(text, i + 1);
  }
}

/** The index just past the value starting at `i` (the text is known to be valid JSON). */
function skipValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return skipString(text, i);
  if (c === "{" || c === "[") {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const d = text[j];
      if (d === '"') j = skipString(text, j) - 1;
      else if (d === "{" || d === "[") depth++;
      else if (d === "}" || d === "]") {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    return text.length;
  }
  let j = i;
  while (j < text.length && !",}] \t\n\r".includes(text[j] as string)) j++;
  return j;
}

function skipString(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j];
    if (c === "\\") j++;
    else if (c === '"') return j + 1;
  }
  return text.length;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && " \t\n\r".includes(text[i] as string)) i++;
  return i;
}
