import { ConfigError } from "../errors.ts";
import { redactUrl, redactUrlsIn } from "../redact-url.ts";
import { optionKeys } from "./option-keys.ts";

/**
 * The option checker: one generic walker over rule tables (see
 * `option-rules.ts`). Options are code the caller wrote, not data from the
 * network, so a small walker of our own does the job zod/mini did, and the
 * root entry's bundle carries no zod. Its reports are worded as the
 * zod-based check worded them, save "an object" where zod/mini wrote "a
 * object" (test/core/option-messages.test.ts pins each).
 */

/** A number: `int` or `num` (finite), a lower bound (`>=` or `>`), an optional `<=` upper bound. */
export type NumberRule = `${"int" | "num"}${">=" | ">"}${number}${"" | `<=${number}`}`;

/** `fn`: a function; `str+`: a non-empty string. */
export type Leaf = "fn" | "bool" | "null" | "str" | "str+" | NumberRule;

/**
 * A check the shape alone cannot say: `test` passes or the value is refused
 * with "expected `expected`". `at` points below the value (e.g. the endpoint a
 * chain-level rule is about). Refinements run only when the shape was right.
 */
export type Refine = readonly [test: (value: never) => boolean, expected: string, at?: readonly PropertyKey[]];

/** How one value is checked. Object keys are optional unless listed in `need`. */
export type Rule =
  | Leaf
  | { readonly is: Leaf; readonly ok: readonly Refine[] }
  /** A type of its own (a Standard Schema): `test` or "expected `expected`". */
  | { readonly type: (value: unknown) => boolean; readonly expected: string }
  | { readonly oneOf: readonly unknown[] }
  | { readonly list: Rule; readonly min?: number; readonly ok?: readonly Refine[] }
  | {
      readonly obj: Table;
      readonly need?: readonly string[] | undefined;
      /** Extra keys allowed (a store or clock is the caller's own object). */
      readonly loose?: boolean;
      readonly ok?: readonly Refine[];
    }
  | { readonly rec: Rule }
  | { readonly or: readonly Rule[] }
  /** A value that may be a credential (a header value): its problems never quote it. */
  | { readonly secret: Rule };

/** The rules of one options object, key by key. */
export type Table = Readonly<Record<string, Rule>>;

/**
 * One problem. `go` marks a problem that leaves the value's shape intact (a
 * range, an unknown key, a refinement): refinements above it still run and,
 * in an `or`, the branch still counts as the one the caller meant.
 */
interface Issue {
  path: readonly PropertyKey[];
  expected?: string;
  unknown?: string[];
  go: boolean;
  /** Found inside a `secret` rule: the value is described, never quoted. */
  secret?: boolean;
  /** Said after an unknown key's name: the option that replaced it. */
  hint?: string;
}

const NUMBER = /^(int|num)(>=?)(-?[\d.]+)(?:<=(-?[\d.]+))?$/;

/**
 * Checks the options object `value` against its table; throws a
 * {@link ConfigError} naming the path of the first problem and listing all.
 * `root` prefixes every path (`execute.retry`, `breaker("gpu")`); the keys in
 * `need` must be present.
 */
export function checkOptions(rules: Table, value: unknown, root: string, need?: readonly string[]): void {
  const issues: Issue[] = [];
  walk({ obj: rules, need }, value, [], issues);
  const first = issues[0];
  if (!first) return;
  const error = new ConfigError(pathOf(root, first.path), describe(first, value));
  if (issues.length > 1)
    error.message = issues.map((issue) => `${pathOf(root, issue.path)}: ${describe(issue, value)}`).join("; ");
  throw error;
}

function walk(rule: Rule, v: unknown, path: readonly PropertyKey[], out: Issue[]): void {
  const start = out.length;
  const fail: Fail = (expected, go = false, at = path) => {
    out.push({ path: at, expected, go });
  };
  try {
    walkRule(rule, v, path, out, start, fail);
  } catch {
    // The caller's value threw as it was read (a revoked Proxy, a getter that throws).
    fail("a value that can be read");
  }
}

/**
 * Walks `v[key]`, read here so that a getter that throws (or a revoked
 * Proxy) is named by its own path, not its container's; `optional`: an
 * `undefined` value is not walked.
 */
function walkAt(
  rule: Rule,
  v: object,
  key: PropertyKey,
  path: readonly PropertyKey[],
  out: Issue[],
  optional?: boolean,
): void {
  let x: unknown;
  try {
    x = (v as Record<PropertyKey, unknown>)[key];
  } catch {
    out.push({ path, expected: "a value that can be read", go: false });
    return;
  }
  if (x !== undefined || !optional) walk(rule, x, path, out);
}

function walkRule(rule: Rule, v: unknown, path: readonly PropertyKey[], out: Issue[], start: number, fail: Fail): void {
  if (typeof rule === "string") checkLeaf(rule, v, fail);
  else if ("oneOf" in rule) {
    const shown = rule.oneOf.map((x) => JSON.stringify(x)).join(", ");
    if (!rule.oneOf.includes(v)) fail(rule.oneOf.length === 1 ? shown : `one of ${shown}`);
  } else if ("type" in rule) {
    if (!rule.type(v)) fail(rule.expected);
  } else if ("or" in rule) checkUnion(rule.or, v, path, out);
  else if ("rec" in rule) {
    if (isPlainObject(v)) {
      // Every own enumerable key, `__proto__` too (JSON.parse makes it an own key, and it is sent as one).
      for (const key of Reflect.ownKeys(v)) {
        if (!Object.prototype.propertyIsEnumerable.call(v, key)) continue;
        if (typeof key === "symbol") fail("a valid value", false, [...path, key]);
        else walkAt(rule.rec, v, key, [...path, key], out);
      }
    } else fail("record");
  } else if ("list" in rule) {
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) walkAt(rule.list, v, i, [...path, i], out);
    else fail("array");
    if (rule.min !== undefined) checkLength(v, rule.min, fail);
  } else if ("obj" in rule) {
    if (typeof v === "object" && v !== null && !Array.isArray(v))
      checkObject(rule, v as Record<string, unknown>, path, out);
    else fail("object");
  } else if ("secret" in rule) {
    walk(rule.secret, v, path, out);
    for (let i = start; i < out.length; i++) (out[i] as Issue).secret = true;
  } else walk(rule.is, v, path, out);
  // Refinements read the value as the rules above shaped it: only when nothing broke that shape.
  if (typeof rule === "object" && "ok" in rule && rule.ok && out.slice(start).every((issue) => issue.go)) {
    for (const [test, expected, at] of rule.ok)
      if (!(test as (value: unknown) => boolean)(v)) fail(expected, true, at ? [...path, ...at] : path);
  }
}

type Fail = (expected: string, go?: boolean, at?: readonly PropertyKey[]) => void;

function checkLeaf(rule: Leaf, v: unknown, fail: Fail): void {
  const number = NUMBER.exec(rule);
  if (number) checkNumber(number, v, fail);
  else if (rule === "fn") {
    if (typeof v !== "function") fail("a function");
  } else if (rule === "bool") {
    if (typeof v !== "boolean") fail("boolean");
  } else if (rule === "null") {
    if (v !== null) fail("null");
  } else {
    // Only a string has a length to judge: one of anything else (a revoked Proxy) is named once.
    if (typeof v !== "string") fail("string");
    else if (rule === "str+") checkLength(v, 1, fail);
  }
}

function checkObject(
  rule: Extract<Rule, { obj: Table }>,
  v: Record<string, unknown>,
  path: readonly PropertyKey[],
  out: Issue[],
): void {
  for (const key in rule.obj) walkAt(rule.obj[key] as Rule, v, key, [...path, key], out, !rule.need?.includes(key));
  if (rule.loose) return;
  const unknown: string[] = [];
  // Every key read by name would answer to: an inherited one, a hidden one and a class's getter are refused too.
  for (const key of optionKeys(v)) if (!Object.hasOwn(rule.obj, key)) unknown.push(key);
  // 0.1's name for the opposite list, where its successor is an option: the way to migrate, said where the upgrade first fails.
  const hint =
    unknown.includes("sensitiveHeaders") && "crossOriginHeaders" in rule.obj
      ? ' (after 0.1.0: "crossOriginHeaders", the headers that may cross)'
      : "";
  if (unknown.length > 0) out.push({ path, unknown, go: true, hint });
}

function checkNumber(rule: RegExpExecArray, v: unknown, fail: Fail): void {
  const [, kind, op, low, high] = rule;
  if (typeof v !== "number" || !Number.isFinite(v)) fail("number");
  else if (kind === "int" && !Number.isInteger(v)) fail("an integer");
  else {
    // An integer past 2^53 is not exact: refused, with zod/mini's wording.
    if (kind === "int" && !Number.isSafeInteger(v))
      fail(v > 0 ? `a value <= ${Number.MAX_SAFE_INTEGER}` : `a value >= ${Number.MIN_SAFE_INTEGER}`, true);
    if (op === ">" ? !(v > Number(low)) : !(v >= Number(low))) fail(`a value ${op} ${low}`, true);
    if (high !== undefined && !(v <= Number(high))) fail(`a value <= ${high}`, true);
  }
}

/** Anything with a `length` (a wrong type too, as zod/mini measured it) must reach `min`. */
function checkLength(v: unknown, min: number, fail: Fail): void {
  const length = v == null ? undefined : (v as { length?: unknown }).length;
  if (typeof length === "number" && length < min) fail(`a value >= ${min}`, true);
}

/**
 * `false | { … }` and the like. When exactly one branch kept the value's
 * shape, its problems are the caller's (a typo inside the object names its
 * own path); otherwise the deepest first problem of any branch, or what
 * each branch expected when none got past the value itself.
 */
function checkUnion(rules: readonly Rule[], v: unknown, path: readonly PropertyKey[], out: Issue[]): void {
  const branches: Issue[][] = [];
  for (const rule of rules) {
    const issues: Issue[] = [];
    walk(rule, v, path, issues);
    if (issues.length === 0) return;
    branches.push(issues);
  }
  const kept = branches.filter((issues) => issues.every((issue) => issue.go));
  if (kept.length === 1) {
    out.push(...(kept[0] as Issue[]));
    return;
  }
  // The deepest; of two as deep, one about a key the caller wrote (`{ query: 0 }`
  // is a bad `query`, not a missing `body`).
  let best: Issue | undefined;
  let bestScore = -1;
  for (const [first] of branches) {
    const score = first ? first.path.length * 2 + +(valueAt(v, first.path.slice(path.length)) !== undefined) : -1;
    if (score > bestScore) [best, bestScore] = [first, score];
  }
  // None got past the value itself: what each branch would take (`false or
  // object`); an object branch refused for a key it lacks names its keys.
  const expected = [...new Set(branches.map(([first], i) => first?.expected ?? shapeOf(rules[i])))].join(" or ");
  out.push(best && best.path.length > path.length ? { ...best, go: false } : { path, expected, go: false });
}

/** An object rule as its keys (`{ body }`), for a union's message. */
function shapeOf(rule: Rule | undefined): string {
  return typeof rule === "object" && "obj" in rule ? `{ ${Object.keys(rule.obj).join(", ")} }` : "a valid value";
}

/** zod's test for a record: an object whose prototype chain ends like `Object`'s. */
function isPlainObject(v: unknown): v is Record<PropertyKey, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const ctor: unknown = (v as { constructor?: unknown }).constructor;
  if (typeof ctor !== "function") return true;
  const proto: unknown = ctor.prototype;
  return typeof proto === "object" && proto !== null && Object.hasOwn(proto, "isPrototypeOf");
}

// A record's keys (header names) are the caller's text like its values: cut as values are.
function pathOf(root: string, path: readonly PropertyKey[]): string {
  return [root, ...path.map((key) => cut(String(key)))].filter(Boolean).join(".") || "options";
}

function describe(issue: Issue, root: unknown): string {
  const { unknown } = issue;
  // A misspelt key is text the caller wrote too, and may be a pasted URL.
  if (unknown) return `unknown option${unknown.length > 1 ? "s" : ""} ${unknown.map(quoted).join(", ")}${issue.hint}`;
  return `expected ${issue.expected}, received ${received(root, issue.path, issue.secret)}`;
}

const NOTHING = Symbol();
const UNREADABLE = Symbol();

/** The value at `path` below `value`; `missing` when the path runs through a non-object. */
function valueAt(value: unknown, path: readonly PropertyKey[], missing?: symbol): unknown {
  let current: unknown = value;
  for (const key of path) {
    if (current === null || typeof current !== "object") return missing;
    try {
      current = (current as Record<PropertyKey, unknown>)[key];
    } catch {
      return UNREADABLE; // a getter that throws, a revoked Proxy
    }
  }
  return current;
}

function received(value: unknown, path: readonly PropertyKey[], secret?: boolean): string {
  try {
    const current = valueAt(value, path, NOTHING);
    if (current === NOTHING) return "nothing";
    if (current === UNREADABLE) return "a value that cannot be read";
    if (typeof current === "string") return secret ? "a string" : quoted(current);
    if (typeof current === "number" || typeof current === "boolean" || current == null) return String(current);
    return Array.isArray(current) ? "an array" : typeof current === "object" ? "an object" : `a ${typeof current}`;
  } catch {
    // A revoked Proxy or a getter that throws, on the way to the value or as it is asked what it is.
    return "a value that cannot be read";
  }
}

/**
 * A string as a message quotes it, with a URL it starts with (a scheme or
 * `//`, spaces before it allowed) cut as {@link redactUrl} shows URLs
 * everywhere else: without its credentials, query and fragment (where keys
 * live), parsed or not; any other text as {@link redactUrlsIn} cuts it (a URL
 * inside it, `/v1?key=…`, `api.example?key=…`). A header name such as
 * `x-quality@v2` stays as written.
 */
export function quoted(text: string): string {
  const shown = cut(text);
  return shown === text ? JSON.stringify(text) : `${JSON.stringify(shown)} (credentials, query and fragment cut)`;
}

function cut(text: string): string {
  const url = text.trimStart();
  // A URL read whole when the text starts with one: a password may hold a space.
  return /^(?:[a-z][a-z\d+.-]*:|[\\/]{2})/i.test(url)
    ? text.slice(0, text.length - url.length) + redactUrl(url)
    : redactUrlsIn(text);
}
