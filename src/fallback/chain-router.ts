import type { Clock } from "../core/clock.ts";
import { LruMap } from "../core/lru-map.ts";
import { configured, FallbackChain, type FallbackFn } from "../policies/fallback-chain.ts";
import type { FallbackChainOptions, FallbackEndpoint } from "./fallback-options.ts";

/** A fallback chain configured for `resilience.fetch`; `I` is what one call hands its entries. */
export interface HttpRoute<I> {
  readonly options: FallbackChainOptions;
  readonly chain: FallbackChain<I, Response>;
  /** The first endpoint's URL before its query, as the URL parser writes it: requests under it use this chain. */
  readonly prefix: string;
  /**
   * The first endpoint's own query (`key=K`) as written and as the URL
   * parser writes it (a `Request` of it carries `K'1` as `K%271`); none
   * when it has no query.
   */
  readonly query: readonly string[];
  readonly endpoints: ReadonlyMap<string, FallbackEndpoint>;
}

/** A URL's chain: its name (the call's breaker key), route and the URL after the prefix. */
export interface RouteMatch<I> {
  readonly name: string;
  readonly route: HttpRoute<I>;
  readonly rest: string;
}

/**
 * Finds the chain a request URL selects: the longest matching prefix. Every
 * entry of every chain is the same function, `tryEndpoint`: what differs
 * per endpoint is read from its name, and what differs per call comes in as
 * the chain's input, so nothing per call lives in the chain.
 */
export class ChainRouter<I> {
  readonly routes: readonly HttpRoute<I>[];
  /** Absolute URLs before their query, as the parser writes them: parsing costs about 0.4 µs a call. */
  readonly #canonical = new LruMap<string, string>(256);

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
        return {
          options,
          chain,
          prefix: this.#canonicalHead(head) ?? head,
          query: query === "" ? [] : [query, new URL(url).search.slice(1)],
          endpoints: new Map(options.endpoints.map((e) => [e.name, e])),
        };
      })
      .sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /**
   * The route for `url` (and its name) and the rest of the URL after its
   * prefix. `url` is read as the URL parser reads it (`HTTP://A.example`,
   * `/v1/../v10` and a default port are what they stand for); a URL it cannot
   * parse takes no chain (the call refuses it).
   */
  match(url: string): RouteMatch<I> | undefined {
    const cut = queryStart(url);
    const head = this.#canonicalHead(cut < 0 ? url : url.slice(0, cut));
    if (head === undefined) return undefined;
    const canonical = cut < 0 ? head : head + url.slice(cut);
    for (const route of this.routes) {
      if (!canonical.startsWith(route.prefix)) continue;
      const rest = canonical.slice(route.prefix.length);
      // "https://a.example/v1" must not capture "https://a.example/v10" or "…/v1.evil".
      if (rest === "" || route.prefix.endsWith("/") || "/?#".includes(rest[0] as string))
        return { name: route.options.name, route, rest };
    }
    return undefined;
  }

  /**
   * `head` (a URL before its query) as the URL parser writes it; `undefined`
   * when it cannot parse it or it is of another scheme than http(s) (no
   * chain can take it: a `data:` URL is never parsed here).
   */
  #canonicalHead(head: string): string | undefined {
    const known = this.#canonical.get(head);
    if (known !== undefined) return known;
    const scheme = /^([a-z][a-z\d+.-]*):/i.exec(head)?.[1]?.toLowerCase();
    if (scheme !== undefined && scheme !== "http" && scheme !== "https") return undefined;
    const base = (globalThis as { location?: { href?: string } }).location?.href;
    if (!URL.canParse(head, base)) return undefined;
    const href = new URL(head, base).href;
    // Only a head with its authority (`http://…`) means the same on every
    // call: any other (`/v1`, even `http:/v1`) is read against the page's
    // address, which may change. Long heads are not kept (memory).
    if (/^https?:\/\//i.test(head) && head.length <= 2048) this.#canonical.set(head, href);
    return href;
  }
}

/**
 * The rest of a call's URL that each endpoint gets: the path after the
 * chain's prefix (from the match), then the query and fragment of `url` as
 * the call now stands (a degradation rule may have edited its query). The
 * first endpoint's own query is left out when the caller wrote it (a call
 * to that endpoint's whole URL): `rebase` puts it back for that endpoint,
 * and another endpoint must not get it.
 */
export function restOf<I>(match: RouteMatch<I>, url: string): string {
  const cut = queryStart(match.rest);
  const at = queryStart(url);
  const rest = (cut < 0 ? match.rest : match.rest.slice(0, cut)) + (at < 0 ? "" : url.slice(at));
  for (const query of match.route.query) {
    const own = `?${query}`;
    if (!rest.startsWith(own)) continue;
    const after = rest.slice(own.length);
    if (after === "" || after[0] === "#") return after;
    if (after[0] === "&") return `?${after.slice(1)}`;
  }
  return rest;
}

/** Where `url`'s query or fragment starts (-1: neither). Two `indexOf`s cost less than a regular expression per call. */
function queryStart(url: string): number {
  const query = url.indexOf("?");
  const hash = url.indexOf("#");
  return query < 0 ? hash : hash < 0 ? query : Math.min(query, hash);
}

/**
 * The URL prefix that selects `chain`: its first endpoint's URL before the
 * query (an endpoint's own `?key=` is put back onto each request by `rebase`).
 */
export function chainPrefix(chain: FallbackChainOptions): string {
  return String(chain.endpoints[0]?.url).split("?")[0] as string;
}
