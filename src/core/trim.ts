/** What fetch trims around a header's value: spaces, tabs, CRs and LFs. */
const HTTP_SPACE = " \t\r\n";

/**
 * `value` without the characters of `space` at its ends, each end read once:
 * a pattern such as `/[ \t]+$/` is quadratic on a long run of spaces that
 * does not end the text, and an upstream's header can hold 64 KiB of them.
 */
function trimOf(value: string, space: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && space.includes(value.charAt(start))) start++;
  while (end > start && space.includes(value.charAt(end - 1))) end--;
  return value.slice(start, end);
}

/**
 * `value` as fetch sends it: without the spaces, tabs, CRs and LFs around
 * it (a key read from a file ends with a line break).
 */
export const trimHeaderValue = (value: string): string => trimOf(value, HTTP_SPACE);

/**
 * `value` without the spaces and tabs around it: HTTP's optional whitespace
 * around a field's value or a list's element (RFC 9110), not `trim`'s
 * Unicode set (a no-break space is a byte of the value).
 */
export const trimOws = (value: string): string => trimOf(value, " \t");
