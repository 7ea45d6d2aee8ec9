import type { StandardSchemaLike } from "../core/standard-schema.ts";

/**
 * Checks a 2xx body against a Standard Schema; returns why it fails, or
 * `undefined`. Reads a clone, so the caller still gets an unread body.
 */
export async function validateResponse(response: Response, schema: StandardSchemaLike): Promise<string | undefined> {
  let value: unknown;
  try {
    value = await response.clone().json();
  } catch {
    return "invalid body: not JSON";
  }
  const result = await schema["~standard"].validate(value);
  if (!result.issues) return undefined;
  const first = result.issues[0];
  const where = first?.path?.length
    ? ` at ${first.path.map((p) => (typeof p === "object" && p !== null && "key" in p ? String(p.key) : String(p))).join(".")}`
    : "";
  return `invalid body${where}: ${first?.message ?? "schema mismatch"}`;
}
