/**
 * `url` without the spaces and control characters at its ends, which the
 * URL parser drops there. A loop, not a trailing-trim pattern, which is
 * quadratic on a long inner run.
 */
export function trimmedEnds(url: string): string {
  let start = 0;
  let end = url.length;
  while (url.charCodeAt(start) <= 32) start++;
  while (end > start && url.charCodeAt(end - 1) <= 32) end--;
  return url.slice(start, end);
}
