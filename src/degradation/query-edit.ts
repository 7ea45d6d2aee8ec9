/**
 * `url` with the value of every query parameter named `name` replaced by
 * `edit(value)`, and every other byte as the caller wrote it: no other
 * parameter is re-encoded (`a/b` stays `a/b`, `flag` stays without `=`), a
 * repeated parameter keeps each of its places, and a value `edit` leaves
 * as it was keeps its own spelling. Names and values are read as
 * `URLSearchParams` reads them (`+` is a space, a bad `%` escape is kept).
 */
export function editQuery(url: string, name: string, edit: (value: string) => string): string {
  const hash = url.indexOf("#");
  const end = hash < 0 ? url.length : hash;
  const start = url.indexOf("?");
  if (start < 0 || start > end) return url;
  const pairs = url.slice(start + 1, end).split("&");
  let changed = false;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i] as string;
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (decode(key) !== name) continue;
    const value = decode(eq < 0 ? "" : pair.slice(eq + 1));
    const next = edit(value);
    if (next === value) continue;
    pairs[i] = `${key}=${encodeURIComponent(next)}`;
    changed = true;
  }
  return changed ? url.slice(0, start + 1) + pairs.join("&") + url.slice(end) : url;
}

function decode(text: string): string {
  const spaced = text.replaceAll("+", " ");
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}
