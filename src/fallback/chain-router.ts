import type { Clock } from "../core/clock.ts";
import { trimmedEnds } from "../core/trimmed-ends.ts";
import { queryStart, restAfter, UrlPrefixes } from "../http/request/url-prefix.ts";
import { configured, FallbackChain, type FallbackFn } from "../policies/fallback-chain.ts";
import type { FallbackChainOptions, FallbackEndpoint } from "./fallback-options.ts";

/** A fallback chain configured for `resilience.fetch`; `I` is what one call hands its entries. */
export interface HttpRoute<I> {
  readonly options: FallbackChainOptions;
  readonly chain: FallbackChain<I, Response>;
  /** The first endpoint's URL before its query, as the URL parser writes it: requests under it use this chain. */
  readonly prefix: string;
  /**
   * The first endpoint's own query parameters (`key=K`), each as a form
   * and as a URL decodes it (see `readings`): none when it has no query.
   */
  readonly ownParameters: ReadonlySet<string>;
  /** The same, pair by pair: each pair as written, then its readings. */
  readonly ownPairs: readonly (readonly [string, string[]])[];
  /** Whether another chain starts at the same URL (their first endpoints' queries tell them apart). */
  shared: boolean;
  readonly endpoints: ReadonlyMap<string, FallbackEndpoint>;
}

/** A URL's chain: its name (the call's breaker key), route and the URL after the prefix. */
export interface RouteMatch<I> {
  readonly name: string;
  readonly route: HttpRoute<I>;
  readonly rest: string;
}

/** A chain chosen by name, with the path below its prefix (and query) that each endpoint gets. */
export interface ChosenChain {
  readonly name: string;
  readonly rest: string;
}

/**
 * Chains chosen for a `Request` by the code that made it, over the one its
 * URL selects: the Worker proxy's routes pick a chain by the incoming path,
 * and two routes' chains may start at one URL (or one route's upstream lie
 * under another's chain). The route knows the path below it too, which a
 * URL cannot always say (`…/v1/` and `…/v1` + `/` are one URL). `null`: no
 * chain (a route with one upstream).
 */
export const chosenChains: WeakMap<Request, ChosenChain | null> = new WeakMap();

/**
 * Finds the chain a request URL selects: the longest matching prefix. Every
 * entry of every chain is the same function, `tryEndpoint`: what differs
 * per endpoint is read from its name, and what differs per call comes in as
 * the chain's input, so nothing per call lives in the chain.
 */
export class ChainRouter<I> {
  readonly routes: readonly HttpRoute<I>[];
  readonly #urls = new UrlPrefixes();

  constructor(chains: readonly FallbackChainOptions[], clock: Clock, tryEndpoint: FallbackFn<I, Response>) {
    this.routes = chains
      .map((options) => {
        const chain = new FallbackChain<I, Response>(options.name, { order: options.order, clock });
        for (const endpoint of options.endpoints) {
          chain.add(tryEndpoint, { name: endpoint.name, expectedQuality: endpoint.expectedQuality ?? 1 });
        }
        configured(chain);
        const url = String(options.endpoints[0]?.url);
        const head = chainPrefix(options);
        const query = url.slice(head.length + 1);
        // An empty piece (`?a=1&`) is no parameter.
        const ownPairs = query
          .split("&")
          .filter((pair) => pair !== "")
          .map((pair) => [pair, readings(pair)] as const);
        return {
          options,
          chain,
          prefix: this.#urls.head(head) ?? head,
          ownParameters: new Set(ownPairs.flatMap(([, read]) => read)),
          ownPairs,
          shared: false,
          endpoints: new Map(options.endpoints.map((e) => [e.name, e])),
        };
      })
      .sort((a, b) => b.prefix.length - a.prefix.length);
    for (const route of this.routes) route.shared = this.routes.some((r) => r !== route && r.prefix === route.prefix);
  }

  /**
   * The route for `url` (and its name) and the rest of the URL after its
   * prefix. `url` is read as the URL parser reads it (`HTTP://A.example`,
   * `/v1/../v10` and a default port are what they stand for); a URL it cannot
   * parse takes no chain (the call refuses it). `only`: the one chain to
   * consider (see {@link chosenChains}); `null`, none.
   */
  match(url: string, only?: ChosenChain | null): RouteMatch<I> | undefined {
    const canonical = only === null ? undefined : this.#urls.canonical(url);
    if (canonical === undefined) return undefined;
    if (only) {
      const route = this.routes.find((r) => r.options.name === only.name);
      return route && { name: only.name, route, rest: only.rest };
    }
    let found: RouteMatch<I> | undefined;
    let carried = -1;
    for (const route of this.routes) {
      // Sorted by length only: chains at one URL may have others of its length between them.
      if (found && route.prefix !== found.route.prefix) {
        if (route.prefix.length < found.route.prefix.length) break;
        continue;
      }
      const after = restAfter(canonical, route.prefix);
      if (after === undefined) continue;
      // A prefix's closing `/` (the one the parser adds to a bare origin
      // too) is also the first of a path below it that starts with `/`:
      // `…/v1/` then `/x` is the path `//x` below `…/v1`, as fetch sends it.
      const rest = after[0] === "/" && route.prefix.endsWith("/") ? `/${after}` : after;
      if (!route.shared) return { name: route.options.name, route, rest };
      // Chains that start at one URL: the one whose first endpoint's every
      // query parameter the call carries, the most of them; else the first declared.
      const count = carriedPairs(route, canonical);
      if (!found || count > carried) {
        found = { name: route.options.name, route, rest };
        carried = count;
      }
    }
    return found;
  }
}

/**
 * The rest of a call's URL that each endpoint gets: the path after the
 * chain's prefix (from the match), then the query and fragment of `url` as
 * the call now stands (a degradation rule may have edited its query). The
 * first endpoint's own parameters (`key=K`) are left out wherever the caller
 * wrote them (a call to that endpoint's URL, with more parameters before or
 * after, or a path under it): `rebase` puts them back for that endpoint
 * once, and another endpoint must not get them. `before`: the URL before a
 * rule rewrote values in it (pair for pair, in place); a pair goes when the
 * one at its place there was the endpoint's own, so a rewritten own
 * parameter goes too (see `endpointsFor`).
 */
export function restOf<I>(match: RouteMatch<I>, url: string, before?: string): string {
  const cut = queryStart(match.rest);
  const at = queryStart(url);
  const rest = (cut < 0 ? match.rest : match.rest.slice(0, cut)) + (at < 0 ? "" : url.slice(at));
  const own = match.route.ownParameters;
  const start = rest.indexOf("?");
  if (own.size === 0 || start < 0) return rest;
  const hash = rest.indexOf("#");
  const end = hash < 0 ? rest.length : hash;
  // Each of the endpoint's parameters, compared by what it decodes to: the
  // caller may have it re-encoded (`URLSearchParams` writes `/` as `%2F`, and
  // `+` as `%2B` where a form reads `+` as a space): a pair goes when either
  // reading of it is one of the endpoint's.
  // Compared as the URL parser reads them (fetch sends them so), at their places before a rewrite;
  // sent as written.
  const pairs = rest.slice(start + 1, end).split("&");
  const read = queryOf(asParsed(url)).split("&");
  const places = before === undefined || before === url ? read : placesIn(before, read);
  const kept = pairs.filter((_, i) => !readings(places[i] as string).some((reading) => own.has(reading)));
  if (kept.length === pairs.length) return rest;
  return rest.slice(0, start) + (kept.length > 0 ? `?${kept.join("&")}` : "") + rest.slice(end);
}

/**
 * The query pairs of `before`, as the URL parser reads them, when they stand
 * pair for pair with `pairs` (a rule rewrites values in place); else `pairs`.
 */
function placesIn(before: string, pairs: string[]): string[] {
  const was = queryOf(asParsed(before)).split("&");
  return was.length === pairs.length ? was : pairs;
}

/**
 * How well `url` carries the route's own query parameters: -1 unless it
 * carries each (as a form or a URL reads it); else one point per parameter,
 * and one more per parameter written exactly so (`a+b` and `a%2Bb` both read
 * as `a+b`, but only one is what the call wrote).
 */
function carriedPairs<I>(route: HttpRoute<I>, url: string): number {
  const written = new Set(queryOf(url).split("&"));
  const present = new Set([...written].flatMap(readings));
  let score = 0;
  for (const [raw, read] of route.ownPairs) {
    if (!read.some((reading) => present.has(reading))) return -1;
    score += written.has(raw) ? 2 : 1;
  }
  return score;
}

/**
 * `url` as the URL parser reads it: its ends trimmed, its tabs and newlines
 * dropped wherever they stand. The pairs compared with the endpoint's own
 * are then the pairs fetch sends (`key=\tK` is `key=K`).
 */
function asParsed(url: string): string {
  return trimmedEnds(url).replace(/[\t\n\r]/g, "");
}

/** `url`'s query, without its `?` and fragment: empty when it has none. */
function queryOf(url: string): string {
  const start = queryStart(url);
  const hash = url.indexOf("#");
  return start < 0 || url[start] === "#" ? "" : url.slice(start + 1, hash < 0 ? url.length : hash);
}

/**
 * The chain's endpoints for a call, by name: as declared, unless a
 * degradation rule rewrote one of the first endpoint's own parameters that
 * the call carried (`model=premium`, now `model=standard`; `before` is the
 * URL before the rule). That endpoint then gets the rewritten value in the
 * place of its own, once, and no other endpoint gets it (`restOf` leaves
 * it out), as with the own value.
 */
export function endpointsFor<I>(
  match: RouteMatch<I>,
  url: string,
  before: string,
): ReadonlyMap<string, FallbackEndpoint> {
  const { route } = match;
  if (route.ownPairs.length === 0 || url === before) return route.endpoints;
  const now = queryOf(asParsed(url)).split("&");
  const was = placesIn(before, now);
  let rewritten = false;
  const own = route.ownPairs.map(([pair, read]) => {
    const i = was.findIndex((p) => readings(p).some((r) => read.includes(r)));
    if (i < 0 || now[i] === was[i]) return pair;
    rewritten = true;
    return now[i] as string;
  });
  if (!rewritten) return route.endpoints;
  const first = route.options.endpoints[0] as FallbackEndpoint & { url: string };
  const endpoints = new Map(route.endpoints);
  endpoints.set(first.name, { ...first, url: `${String(first.url).split("?")[0]}?${own.join("&")}` });
  return endpoints;
}

/** A query parameter (`name=value`) as a form decodes it (`+` a space) and as a URL does (`+` itself). */
function readings(pair: string): string[] {
  const form = [...new URLSearchParams(pair)][0] ?? ["", ""];
  // Split where the pair is written with `=`, then decoded: an encoded `=`
  // (`k%3Dx=1`) is part of the name, as a form reads it.
  const at = pair.indexOf("=");
  const url = at < 0 ? `${decoded(pair)}\0` : `${decoded(pair.slice(0, at))}\0${decoded(pair.slice(at + 1))}`;
  return [`${form[0]}\0${form[1]}`, url];
}

/** `part` with its escapes decoded; one with a malformed escape (`%zz`) as written. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/**
 * The URL prefix that selects `chain`: its first endpoint's URL before the
 * query (an endpoint's own `?key=` is put back onto each request by `rebase`).
 */
export function chainPrefix(chain: FallbackChainOptions): string {
  return String(chain.endpoints[0]?.url).split("?")[0] as string;
}
