import { isHttpToken } from "../core/http-token.ts";
import type { Refine, Rule, Table } from "../core/options/check-options.ts";
import { prefixChecks } from "../core/options/url-prefix-rules.ts";
import { isStandardSchema } from "../core/standard-schema.ts";
import { isHeaderValue } from "../http/request/check-request.ts";

/** The rules `fallback(chains)` checks its chains against (see `checkOptions`). */

const isHttpUrl = (u: string): boolean => URL.canParse(u) && /^https?:/i.test(u);

// What fetch can send: a header name is a token, a value Latin-1 without a control character but a tab.
const headerRules: Rule = {
  rec: {
    // A header value is often a credential: a refusal names it, never quotes it.
    secret: {
      is: "str",
      ok: [[isHeaderValue, "a header value (Latin-1, no control character but a tab)"]],
    },
  },
  ok: [[(h: object) => Object.keys(h).every(isHttpToken), "header names that are HTTP tokens"]],
};

export const endpointRules: Table = {
  name: "str+",
  url: {
    is: "str",
    ok: [
      [isHttpUrl, "an absolute http(s) URL"],
      // The caller's path and query go after the endpoint's URL.
      ...prefixChecks,
    ],
  },
  respond: "fn",
  expectedQuality: "num>=0<=1",
  headers: headerRules,
  transform: "fn",
  validate: { type: isStandardSchema, expected: "a Standard Schema (zod, valibot, …)" },
};

/** What a chain's refinements may rely on once its shape passed. */
interface CheckedChain {
  name: string;
  endpoints: Array<{ name: string; url?: string; respond?: unknown }>;
}

const chainRefines: readonly Refine[] = [
  [
    (c: CheckedChain) => typeof c.endpoints[0]?.url === "string",
    "a first endpoint with a `url` (it selects the requests that use the chain)",
    ["endpoints", 0, "url"],
  ],
  [
    (c: CheckedChain) => c.endpoints.every((e) => (e.url === undefined) !== (e.respond === undefined)),
    "each endpoint to have either `url` or `respond`, not both",
    ["endpoints"],
  ],
  [
    (c: CheckedChain) => new Set(c.endpoints.map((e) => e.name)).size === c.endpoints.length,
    "endpoint names to be unique",
    ["endpoints"],
  ],
];

export const chainRules: Table = {
  name: "str+",
  order: { oneOf: ["fixed", "adaptive"] },
  // A hedge's timer can wait no longer than setTimeout keeps (2^31 - 1 ms), as an attempt's.
  hedge: { obj: { delay: "num>=0<=2147483647" }, need: ["delay"] },
  endpoints: {
    list: {
      obj: endpointRules,
      need: ["name"],
      ok: [
        [
          (e: { respond?: unknown; transform?: unknown; headers?: unknown }) =>
            e.respond === undefined || (e.transform === undefined && e.headers === undefined),
          "a `respond` endpoint without `transform` or `headers` (they shape a request sent to a URL)",
        ],
      ],
    },
    min: 1,
  },
};

/** One chain, as `fallback([…])` checks each (the Worker proxy checks its routes' chains one by one). */
export const chainRule: Rule = { obj: chainRules, need: ["name", "endpoints"], ok: chainRefines };

export const fallbackRule: Rule = {
  list: chainRule,
  ok: [
    [(chains: CheckedChain[]) => new Set(chains.map((c) => c.name)).size === chains.length, "chain names to be unique"],
  ],
};
