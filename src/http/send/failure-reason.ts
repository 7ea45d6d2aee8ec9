import type { BrowserBuild } from "../../core/browser-build.ts";
import { isBulkheadRejectedError, isCircuitOpenError, isTimeoutError } from "../../core/errors.ts";
import { URL_IN_TEXT } from "../../core/redact-url.ts";

/** Why an attempt failed, as people say it, and whether the server can have seen the request. */
export interface FailureReason {
  /** "connection refused", "connection reset", "DNS lookup failed", "TLS failure", "connect timeout", "attempt timeout", "network error"… */
  reason: string;
  /**
   * True when the request surely never reached the server (refused, no such
   * host, TLS handshake failed, never sent by the library): the only
   * failures after which a non-idempotent request may be sent again.
   */
  notSent: boolean;
}

/** Platform error codes (Node/undici, Bun, Deno's messages) by what they mean. */
const CODES: ReadonlyArray<[RegExp, string, boolean]> = [
  [/^(ECONNREFUSED|ConnectionRefused)$/, "connection refused", true],
  [/^(ENOTFOUND|EAI_AGAIN|EAI_NONAME|EAI_FAIL|DNSException)$/, "DNS lookup failed", true],
  [/^(UND_ERR_CONNECT_TIMEOUT|ETIMEDOUT|ConnectionTimeout)$/, "connect timeout", true],
  [/^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|TLS)/, "TLS failure", true],
  [/^(ECONNRESET|EPIPE|UND_ERR_SOCKET|ConnectionClosed|ECONNABORTED)$/, "connection reset", false],
  [/^(UND_ERR_HEADERS_TIMEOUT|UND_ERR_BODY_TIMEOUT)$/, "response timeout", false],
];

/** The same, read from messages where a runtime gives no code (Deno, workerd). */
const MESSAGES: ReadonlyArray<[RegExp, string, boolean]> = [
  [/connection refused|ECONNREFUSED/i, "connection refused", true],
  [/dns error|failed to lookup|getaddrinfo|name or service not known|ENOTFOUND/i, "DNS lookup failed", true],
  [/certificate|\btls\b|\bssl\b/i, "TLS failure", true],
  [
    /connection reset|ECONNRESET|socket hang up|other side closed|connection lost|broken pipe/i,
    "connection reset",
    false,
  ],
];

/**
 * Names a failed attempt's cause from the platform's error codes where the
 * runtime exposes them (walking `cause` and an `AggregateError`'s first
 * error), else from its message. Browsers say only "Failed to fetch": that
 * stays a "network error", which may have been sent (the browser build
 * leaves the codes out).
 */
export function failureReason(error: unknown): FailureReason {
  if (isCircuitOpenError(error)) return { reason: "circuit open", notSent: true };
  if (isBulkheadRejectedError(error)) return { reason: "bulkhead full", notSent: true };
  if (isTimeoutError(error)) return { reason: `${error.phase} timeout`, notSent: false };
  if (!(globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__) {
    const named = platformReason(error);
    if (named) return named;
  }
  if (error instanceof Error && error.name === "AbortError") return { reason: "aborted", notSent: false };
  return { reason: "network error", notSent: false };
}

/** The reason the platform's codes or messages give, if any. */
function platformReason(error: unknown): FailureReason | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const { code, message, cause, errors } = current as {
      code?: unknown;
      message?: unknown;
      cause?: unknown;
      errors?: unknown;
    };
    if (typeof code === "string") {
      for (const [pattern, reason, notSent] of CODES) if (pattern.test(code)) return { reason, notSent };
    }
    if (typeof message === "string") {
      // URLs out first: a host `ssl.example` or a path `/v1/certificates` says nothing of the failure.
      const text = message.replace(URL_IN_TEXT, "");
      for (const [pattern, reason, notSent] of MESSAGES) if (pattern.test(text)) return { reason, notSent };
    }
    current = cause ?? (Array.isArray(errors) ? errors[0] : undefined);
  }
  return undefined;
}
