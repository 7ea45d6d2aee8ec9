import type { BrowserBuild } from "../../core/browser-build.ts";
import {
  isBulkheadRejectedError,
  isCircuitOpenError,
  isFallbackExhaustedError,
  isResilienceError,
  isRetryExhaustedError,
  isTimeoutError,
  unlessThrows,
} from "../../core/errors.ts";
import { URL_IN_TEXT } from "../../core/redact-url.ts";
import { isBodyReadError } from "../request/replay-body.ts";
import { isAfterRedirect } from "./follow-redirects.ts";

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
  // Bun says "The TLS handshake failed" under `EPROTO` for any TLS error, one after the request went too.
  [/^EPROTO$/, "TLS failure", false],
  [/^(UND_ERR_HEADERS_TIMEOUT|UND_ERR_BODY_TIMEOUT)$/, "response timeout", false],
];

/**
 * The same, read from messages where a runtime gives no code (Deno,
 * workerd). A closed connection is looked for first: a message that names
 * both (Deno's "peer closed connection without sending TLS close_notify",
 * after the handshake) may have been sent, and a wrong "not sent" could
 * have a paid job processed twice.
 */
const MESSAGES: ReadonlyArray<[RegExp, string, boolean]> = [
  [
    /connection reset|ECONNRESET|socket hang up|other side closed|connection lost|connection closed|peer closed|close_notify|broken pipe/i,
    "connection reset",
    false,
  ],
  [/connection refused|ECONNREFUSED/i, "connection refused", true],
  [/dns error|failed to lookup|getaddrinfo|name or service not known|ENOTFOUND/i, "DNS lookup failed", true],
  // rustls's words for a peer that speaks no TLS ("received corrupt message of type
  // InvalidContentType", "peer is incompatible", "peer misbehaved") come after the request went
  // as well (a record broken mid-answer): surely unsent only where Deno names the connect phase.
  [/\(Connect\).*(?:received corrupt message|peer is incompatible|peer misbehaved)/i, "TLS failure", true],
  [/received corrupt message|peer is incompatible|peer misbehaved/i, "TLS failure", false],
  // A word of its own: `tls-gateway`, `my-ssl-proxy`, `certificate-store` are names, not failures.
  // Deno names a failed handshake by its alert alone ("received fatal alert: HandshakeFailure").
  [/(?<![\w-])(?:certificates?|tls|ssl)(?![\w-])|(?<![\w-])handshake(?!-)/i, "TLS failure", true],
];

/**
 * A host name or address in a message (`ssl.gen.example:443`, or a service
 * name with its port, `tls-gateway:8443`), which says nothing of the
 * failure. It starts only where a name can (linear time).
 */
const HOST_IN_TEXT = /(?<![\w-])[a-z\d-]+(?:(?:\.[a-z\d-]+)+(?::\d+)?|:\d+)/gi;

/**
 * Names a failed attempt's cause from the platform's error codes where the
 * runtime exposes them (walking `cause` and an `AggregateError`'s first
 * error), else from its message. Browsers say only "Failed to fetch": that
 * stays a "network error", which may have been sent (the browser build
 * leaves the codes out).
 */
export function failureReason(error: unknown, depth = 0): FailureReason {
  // A value that throws when looked at (a revoked Proxy, a getter that throws) says nothing: it may have gone.
  return unlessThrows(() => reasonOf(error, depth), NOT_KNOWN);
}

function reasonOf(error: unknown, depth: number): FailureReason {
  // A layer used as another's transport (a chain inside a chain): its message
  // quotes names and other endpoints' words, never read for a failure. It is
  // named by the failure it ended on, and surely sent nothing only when
  // nothing it tried may have gone: each endpoint of its chain, and no more
  // than one attempt (it may have moved on under a key of its own).
  // By name too: a wrapper's look-alike without the fields (which the guards ask for) is judged as one, to be safe.
  if (
    isRetryExhaustedError(error) ||
    isFallbackExhaustedError(error) ||
    (error instanceof Error && /^(?:Retry|Fallback)ExhaustedError$/.test(error.name))
  ) {
    const { reason, notSent } = depth < 4 ? failureReason(error.cause, depth + 1) : NOT_KNOWN;
    // A look-alike of another copy of the package may lack `errors` or `attempts`: then it may have gone.
    const { errors } = error as { errors?: unknown };
    const tried = isRetryExhaustedError(error)
      ? error.attempts <= 1
      : typeof errors === "object" &&
        errors !== null &&
        Object.values(errors).every((each) => depth < 4 && failureReason(each, depth + 1).notSent);
    return { reason, notSent: notSent && tried };
  }
  // A refusal after the host had the request (a redirect's later hop, a
  // retry after an answer too large to keep) follows a request that went.
  if (isCircuitOpenError(error)) return { reason: "circuit open", notSent: !isAfterRedirect(error) };
  if (isBulkheadRejectedError(error)) return { reason: "bulkhead full", notSent: !isAfterRedirect(error) };
  if (isTimeoutError(error)) return { reason: `${error.phase} timeout`, notSent: false };
  if (isPlatformRefusal(error)) return { reason: "refused by the platform", notSent: true };
  if (!(globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__) {
    const named = platformReason(error);
    if (named) return named;
  }
  if (error instanceof Error && error.name === "AbortError") return { reason: "aborted", notSent: false };
  return NOT_KNOWN;
}

const NOT_KNOWN: FailureReason = { reason: "network error", notSent: false };

/**
 * The codes undici gives a request it refuses before sending anything: a
 * header it will not send (`keep-alive`, `transfer-encoding`, `upgrade`,
 * `connection: upgrade`, a `content-length` that is no number) or does not
 * support (`expect`).
 */
const REFUSAL_CODES = /^UND_ERR_(?:INVALID_ARG|NOT_SUPPORTED)$/;

/** Errors of attempts whose `Request` body stream failed while it was sent: the caller's, not the host's. */
const callersBodyFailures = new WeakSet<object>();

/** Marks `error` as an attempt's failure its own body caused (see {@link isCallersFailure}). */
export function markBodyFailure(error: unknown): void {
  if (Object(error) === error) callersBodyFailures.add(error as object);
}

/** A failure of the caller's making: refused by the platform, or its body stream failed while read ahead or sent. */
export function isCallersFailure(error: unknown): boolean {
  return isPlatformRefusal(error) || callersBodyFailures.has(error as object) || isBodyReadError(error);
}

/**
 * Whether the transport refused the request before sending it (Node's fetch
 * rejects with a `TypeError` whose cause carries one of undici's refusal
 * codes): the caller's mistake, as a header the `Headers` grammar refuses
 * is, not the host's failure. Browsers drop such headers silently: their
 * build leaves the check out, and knows only the refusals the layer made
 * first for the platform ({@link markPlatformRefusal}).
 */
export function isPlatformRefusal(error: unknown): boolean {
  return (
    refusedFirst.has(error as object) ||
    (!(globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__ &&
      unlessThrows(() => {
        if (!(error instanceof TypeError)) return false;
        const code = (error.cause as { code?: unknown } | null | undefined)?.code;
        return typeof code === "string" && REFUSAL_CODES.test(code);
      }, false))
  );
}

/** Errors the layer threw for a request the platform would refuse unsent, before the platform could. */
const refusedFirst = new WeakSet<object>();

/** Marks `error` as such a refusal: the caller's mistake, as {@link isPlatformRefusal} says. */
export function markPlatformRefusal(error: TypeError): TypeError {
  refusedFirst.add(error);
  return error;
}

/**
 * The reason the platform's codes give anywhere in the error's chain, else
 * the one its messages give: a wrapper's words never outrank a code below
 * it (Node wraps an `ECONNRESET` in "fetch failed").
 */
function platformReason(error: unknown): FailureReason | undefined {
  const chain = causes(error);
  for (const { code, syscall } of chain) {
    if (typeof code !== "string") continue;
    for (const [pattern, reason, notSent] of CODES) {
      if (!pattern.test(code)) continue;
      // On a `read` or `write` the connection was up: the request may have gone (Node's `read ETIMEDOUT`, a TLS record error).
      if (notSent && (syscall === "read" || syscall === "write")) return { reason: "network error", notSent: false };
      return { reason, notSent };
    }
  }
  for (const link of chain) {
    const { message } = link;
    // This library's own errors (a layer's, wrapped by a transport) quote names a caller chose.
    if (typeof message !== "string" || isResilienceError(link)) continue;
    // URLs and host names out first: a host `ssl.example` or a path `/v1/certificates` says nothing of the failure.
    const text = message.replace(URL_IN_TEXT, "").replace(HOST_IN_TEXT, "");
    for (const [pattern, reason, notSent] of MESSAGES) if (pattern.test(text)) return { reason, notSent };
  }
  return undefined;
}

/** What the classifier reads of one error of a chain. */
interface Link {
  code?: unknown;
  syscall?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** The error and its causes (an `AggregateError`'s first error), five deep at most. */
function causes(error: unknown): Link[] {
  const chain: Link[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const link = current as Link;
    chain.push(link);
    current = link.cause ?? (Array.isArray(link.errors) ? link.errors[0] : undefined);
  }
  return chain;
}
