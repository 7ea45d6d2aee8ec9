import { redactUrl } from "../../core/redact-url.ts";

/** The algorithms of Subresource Integrity, weakest first. */
const ALGORITHMS = ["sha256", "sha384", "sha512"] as const;
const DIGEST_NAMES = { sha256: "SHA-256", sha384: "SHA-384", sha512: "SHA-512" } as const;

/**
 * Checks `integrity` against the final answer of a redirect the library
 * followed, as fetch checks it: the hops went without it (the platform would
 * check each redirect's own empty body), so the body is read here, hashed
 * with the strongest algorithm the metadata names, and taken when any of
 * that algorithm's digests match. Metadata naming no known algorithm checks
 * nothing, as in fetch. A mismatch is fetch's network error: a `TypeError`.
 */
export async function checkIntegrity(response: Response, integrity: string): Promise<Response> {
  const wanted = strongest(integrity);
  if (!wanted) return response;
  // Read from a clone: the caller gets fetch's own answer (its headers immutable, its URL and
  // redirect marks as they are), its body held in memory by the clone's read, as fetch holds it.
  const bytes = await response.clone().arrayBuffer();
  const digest = base64(await crypto.subtle.digest(DIGEST_NAMES[wanted.algorithm], bytes));
  if (!wanted.digests.some((expected) => sameDigest(expected, digest))) {
    response.body?.cancel().catch(() => {});
    throw new TypeError(`resilience.fetch: integrity mismatch for ${redactUrl(response.url)}`);
  }
  return response;
}

/** The strongest algorithm `integrity` names, with its digests (options after `?` dropped). */
function strongest(integrity: string): { algorithm: (typeof ALGORITHMS)[number]; digests: string[] } | undefined {
  const byAlgorithm = new Map<string, string[]>();
  for (const token of integrity.split(/\s+/)) {
    const dash = token.indexOf("-");
    const algorithm = token.slice(0, dash).toLowerCase();
    if (dash < 0 || !(ALGORITHMS as readonly string[]).includes(algorithm)) continue;
    const digests = byAlgorithm.get(algorithm) ?? [];
    digests.push(token.slice(dash + 1).split("?")[0] as string);
    byAlgorithm.set(algorithm, digests);
  }
  for (let i = ALGORITHMS.length - 1; i >= 0; i--) {
    const algorithm = ALGORITHMS[i] as (typeof ALGORITHMS)[number];
    const digests = byAlgorithm.get(algorithm);
    if (digests) return { algorithm, digests };
  }
  return undefined;
}

/** Digests compared as fetch compares them: base64 or base64url, padded or not. */
function sameDigest(expected: string, actual: string): boolean {
  const plain = (text: string) => text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  return plain(expected) === plain(actual);
}

function base64(buffer: ArrayBuffer): string {
  let text = "";
  for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
  return btoa(text);
}
