import type * as z from "zod/mini";
import { ConfigError } from "../errors.ts";

type Issue = z.core.$ZodIssue;

/**
 * Parses `value` with `schema` or throws a {@link ConfigError} naming the path
 * and what was expected. zod/mini ships no messages (that is what keeps it
 * small), so the few issue kinds our schemas produce are worded here.
 */
export function validate<T>(schema: z.ZodMiniType<T>, value: unknown, root: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map(unwrapUnion);
  const first = issues[0] as Issue;
  const path = pathOf(root, first.path);
  const message = issues
    .map((issue) => `${pathOf(root, issue.path) || root}: ${describeIssue(issue, value)}`)
    .join("; ");
  const error = new ConfigError(path, describeIssue(first, value));
  if (issues.length > 1) error.message = message;
  throw error;
}

/**
 * A union such as `false | { … }` fails as a whole; report the branch that got
 * furthest into the value, so a typo inside the object names its own path.
 */
function unwrapUnion(issue: Issue): Issue {
  if (issue.code !== "invalid_union" || issue.errors.length === 0) return issue;
  let best: Issue | undefined;
  for (const branch of issue.errors) {
    const candidate = branch[0];
    if (candidate && (!best || candidate.path.length > best.path.length)) best = candidate;
  }
  if (!best || best.path.length === 0) return issue;
  return unwrapUnion({ ...best, path: [...issue.path, ...best.path] } as Issue);
}

function pathOf(root: string, path: readonly PropertyKey[]): string {
  return [root, ...path.map(String)].filter(Boolean).join(".") || "options";
}

function received(value: unknown, path: readonly PropertyKey[]): string {
  let current: unknown = value;
  for (const key of path) {
    if (current === null || typeof current !== "object") return "nothing";
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  if (typeof current === "string") return JSON.stringify(current);
  if (typeof current === "number" || typeof current === "boolean" || current == null) return String(current);
  return Array.isArray(current) ? "an array" : `a ${typeof current}`;
}

function describeIssue(issue: Issue, root: unknown): string {
  const got = received(root, issue.path);
  switch (issue.code) {
    case "invalid_type":
      return `expected ${issue.expected === "int" ? "an integer" : issue.expected}, received ${got}`;
    case "too_small":
      return `expected a value ${issue.inclusive ? ">=" : ">"} ${String(issue.minimum)}, received ${got}`;
    case "too_big":
      return `expected a value ${issue.inclusive ? "<=" : "<"} ${String(issue.maximum)}, received ${got}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, received ${got}`;
    case "unrecognized_keys":
      return `unknown option${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
    case "invalid_union":
      return `expected ${issue.message && issue.message !== "Invalid input" ? issue.message : "a valid value"}, received ${got}`;
    default:
      return `expected ${issue.message && issue.message !== "Invalid input" ? issue.message : "a valid value"}, received ${got}`;
  }
}
