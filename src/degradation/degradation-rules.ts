import { isHttpToken } from "../core/http-token.ts";
import type { Rule, Table } from "../core/options/check-options.ts";
import { parsesAsPrefix, prefixChecks } from "../core/options/url-prefix-rules.ts";
import { isBareHeaderValue } from "../http/request/check-request.ts";

/** The rules `degradation(options)` checks its options against (see `checkOptions`). */

export const triggerRules: Table = {
  errorRate: "num>=0<=1",
  responseTime: "num>0",
  memoryUsage: "num>=0<=1",
  cpuUsage: "num>=0<=1",
};

const isSafePath = (p: string): boolean =>
  p.split(".").every((s) => s !== "" && s !== "__proto__" && s !== "constructor" && s !== "prototype");
const safePath: Rule = {
  is: "str+",
  ok: [[isSafePath, "a dotted path without empty, __proto__, constructor or prototype segments"]],
};
// A header name is an HTTP token: anything else would make every rewritten call fail. Described,
// never quoted: a header pasted whole (`Authorization: Bearer …`) holds its secret.
const headerName: Rule = {
  secret: {
    is: "str",
    ok: [[isHttpToken, "an HTTP header name (a token)"]],
  },
};
const location: Rule = {
  or: [
    safePath,
    { obj: { body: safePath }, need: ["body"] },
    { obj: { query: "str+" }, need: ["query"] },
    { obj: { header: headerName }, need: ["header"] },
  ],
};

/**
 * Whether a rule's body parameters stand at paths apart: two edits of one
 * value, or of a value and one inside it, would splice text the other
 * already moved.
 */
function apartInBody(params: Record<string, unknown>): boolean {
  const paths = Object.values(params)
    .map((at) => (typeof at === "string" ? at : (at as { body?: unknown }).body))
    .filter((at): at is string => typeof at === "string")
    .map((at) => `${at}.`);
  return paths.every((a, i) => paths.every((b, j) => i === j || !b.startsWith(a)));
}

export const levelRules: Table = {
  percentage: "num>=0<=100",
  qualityMultiplier: "num>0<=1",
  resolutionScale: "num>0<=1",
  maxSteps: { or: ["null", "int>=1"] },
  features: { list: "str" },
  modelStep: "int>=0",
};

const level: Rule = { obj: levelRules };

/**
 * A model a rule puts in a header is sent there: each name of the `models`
 * ladders must be one a header can carry (fetch refuses a control character
 * or a character above U+00FF), or every degraded call would fail.
 */
export const modelHeaderCheck: [(o: object) => boolean, string] = [
  (o: { rules?: Array<{ params?: { model?: unknown } }>; models?: string[][] }) =>
    !o.rules?.some((r) => {
      const model = r.params?.model;
      return Object(model) === model && "header" in (model as object);
    }) || (o.models ?? []).every((ladder) => ladder.every(isBareHeaderValue)),
  "`models` a header can carry (a rule puts the model in one)",
];

export const degradationRules: Table = {
  levels: { obj: { full: level, high: level, medium: level, low: level, minimal: level } },
  triggers: { obj: triggerRules },
  rules: {
    list: {
      obj: {
        // Compared with a request's URL as a chain's prefix is (relative ones against a page's address).
        match: { is: "str+", ok: [parsesAsPrefix, ...prefixChecks] },
        params: {
          obj: { quality: location, resolution: location, steps: location, model: location, features: location },
          ok: [[apartInBody, "body paths apart (none at or inside another's)"]],
        },
      },
      need: ["params"],
    },
  },
  resolutions: { list: { is: "str", ok: [[(s: string) => /^\d+p$/i.test(s), 'a resolution such as "720p"']] }, min: 1 },
  sizeMultiple: "int>=1",
  // A name twice in one ladder has no one rung: the model would move "down" to a better one.
  models: { list: { list: "str+", min: 1, ok: [[(l: string[]) => new Set(l).size === l.length, "each name once"]] } },
  window: "num>0",
  // The window holds at most 256 calls: more samples than that could never be met.
  minSamples: "int>=1<=256",
  stepInterval: "num>=0",
  restoreAfter: "num>=0",
  levelHeader: headerName,
  browserSignals: "bool",
};
