/** An HTTP token (RFC 9110 §5.6.2): what a method or a header name must be. */
export function isHttpToken(text: string): boolean {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(text);
}
