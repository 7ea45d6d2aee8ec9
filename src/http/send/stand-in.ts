/**
 * `copy` answering for the response it stands in for: the `url`,
 * `redirected` and `type` fetch would report (which `new Response` cannot
 * set: it says `"default"` where a page's fetch says `"cors"`; and a
 * redirect the layer followed itself changes), on the copy and on every
 * `clone()` of it, as a fetched response's clones keep them (ky hands its
 * `afterResponse` hooks a clone).
 */
export function standIn(copy: Response, url: string, redirected: boolean, type: ResponseType = copy.type): Response {
  // Already so (a transport's own, perhaps fixed, `url`): its clones are the transport's business.
  if (copy.url === url && copy.redirected === redirected && copy.type === type) return copy;
  const own = (value: unknown): PropertyDescriptor => ({ value, configurable: true });
  // Its own `clone`: a transport's `Response` may be of another realm or class.
  const clone = copy.clone;
  if (copy.url !== url) Object.defineProperty(copy, "url", own(url));
  if (copy.redirected !== redirected) Object.defineProperty(copy, "redirected", own(redirected));
  if (copy.type !== type) Object.defineProperty(copy, "type", own(type));
  Object.defineProperty(
    copy,
    "clone",
    own(() => standIn(clone.call(copy), url, redirected, type)),
  );
  return copy;
}
