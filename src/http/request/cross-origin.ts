import { pageBase } from "../../core/page-base.ts";
import { copyHeaders } from "./headers.ts";

/**
 * The only request headers that go to another origin: they describe the
 * representation, not who is asking. Everything else (`Authorization`,
 * `Cookie`, `api-key`, `x-api-key`, `x-goog-api-key`, `openai-organization`,
 * any header a provider SDK invents next) stays with the origin the caller
 * addressed, unless the user names it in `crossOriginHeaders`.
 */
export const CROSS_ORIGIN_HEADERS: readonly string[] = [
  "accept",
  "accept-language",
  "content-language",
  "content-type",
  "idempotency-key",
  "user-agent",
];

/**
 * A copy of `headers` for another origin: the allowlisted headers and those
 * in `extra` (lower-cased) are kept; `dropped` names the rest (never their
 * values), for events.
 */
export function headersForOrigin(
  headers: HeadersInit | undefined,
  extra: readonly string[],
): { headers: Headers; dropped: string[] } {
  const kept = new Headers();
  const dropped: string[] = [];
  for (const [name, value] of copyHeaders(headers)) {
    if (CROSS_ORIGIN_HEADERS.includes(name) || extra.includes(name)) kept.append(name, value);
    else dropped.push(name);
  }
  return { headers: kept, dropped };
}

/** `scheme://host:port` of an absolute URL (relative ones resolve against the page). */
export function originOf(url: string): string {
  const base = pageBase();
  return new URL(url, base).origin;
}
