import { ConfigError } from "../core/errors.ts";
import { queryStart, restAfter, UrlPrefixes } from "../http/request/url-prefix.ts";
import type { DegradationRule } from "./degradation-options.ts";

/** The rule for a request URL (`undefined`: none applies). */
export type RulePicker = (url: string) => DegradationRule | undefined;

/**
 * Picks a call's rule: the longest `match` that prefixes its URL, read as a
 * fallback chain's prefix is (both as the URL parser reads them, whole path
 * segments only: `…/v1` does not take `…/v1beta`), else the first rule
 * without `match`. Each `match` is read once, here. One rule applies to a
 * call, so a second without `match`, or with the same one, would never
 * apply: it is a `ConfigError` when the stage is made.
 */
export function rulePicker(rules: readonly DegradationRule[]): RulePicker {
  const urls = new UrlPrefixes();
  // The query too as the parser writes it (`?model=café` is `?model=caf%C3%A9`, as a `Request`'s
  // URL reads): parsed again only when it holds what the parser encodes.
  const read = (url: string): string | undefined => {
    const canonical = urls.canonical(url);
    const cut = canonical === undefined ? -1 : queryStart(canonical);
    return cut < 0 || !UNENCODED.test((canonical as string).slice(cut)) ? canonical : new URL(canonical as string).href;
  };
  const global = rules.find((rule) => rule.match === undefined);
  // Longest first; of two as long, the first written (the sort is stable).
  const scoped = rules
    .flatMap((rule) => (rule.match === undefined ? [] : [{ rule, prefix: read(rule.match) ?? rule.match }]))
    .sort((a, b) => b.prefix.length - a.prefix.length);
  const unmatched = rules.length - scoped.length;
  if (unmatched > 1 || new Set(scoped.map((s) => s.prefix)).size < scoped.length)
    throw new ConfigError(
      "degradation.rules",
      "expected one rule per `match` (a second never applies), received an array",
    );
  if (scoped.length === 0) return () => global;
  return (url) => {
    // A URL the parser refuses is compared as written (the call itself refuses it).
    const canonical = read(url) ?? url;
    for (const { rule, prefix } of scoped) if (restAfter(canonical, prefix) !== undefined) return rule;
    return global;
  };
}

/** A character the URL parser percent-encodes in a query or fragment (a space, a quote, `<>`, non-ASCII). */
const UNENCODED = /[^!#-&(-;=?-_a-~]/;
