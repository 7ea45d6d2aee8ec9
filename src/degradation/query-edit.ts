import { trimmedEnds } from "../core/trimmed-ends.ts";

/**
 * `url` with the value of every query parameter named `name` replaced by
 * `edit(value)`, and every other byte as the caller wrote it: no other
 * parameter is re-encoded (`a/b` stays `a/b`, `flag` stays without `=`), a
 * repeated parameter keeps each of its places, and a value `edit` leaves
 * as it was keeps its own spelling. Each pair is read by `URLSearchParams`
 * (`+` is a space, a bad `%` escape is kept), so names match as it reads them.
 */
export function editQuery(url: string, name: string, edit: (value: string) => string): string {
  // The URL as the parser reads it at its ends.
  const trimmed = trimmedEnds(url);
  // The query: from the first `?` to the fragment, when no `#` comes before it.
  const edited = trimmed.replace(/^([^?#]*)\?([^#]*)/, (_, head: string, query: string) => {
    const pairs = query.split("&").map((pair) => {
      // After a `&`, so that a leading `?` stays in the name, as the whole query reads it;
      // without tabs and newlines, which the URL parser drops wherever they stand.
      const [entry] = new URLSearchParams(`&${pair.replace(/[\t\n\r]/g, "")}`);
      if (entry?.[0] !== name) return pair;
      const next = edit(entry[1]);
      // A lone surrogate (a model name may hold one) as the URL parser writes it, U+FFFD: it has no UTF-8.
      return next === entry[1]
        ? pair
        : `${pair.split("=")[0]}=${encodeURIComponent(next.replace(/\p{Cs}/gu, "\ufffd"))}`;
    });
    return `${head}?${pairs.join("&")}`;
  });
  // Nothing edited: the URL as the caller wrote it, so no new request is made for it.
  return edited === trimmed ? url : edited;
}
