import { describe, expect, it } from "vitest";
import { failureReason } from "../../src/http/send/failure-reason.ts";
import {
  BulkheadRejectedError,
  CircuitOpenError,
  FallbackExhaustedError,
  RetryExhaustedError,
  TimeoutError,
} from "../../src/index.ts";

const withCause = (code: string, message = "fetch failed") =>
  new TypeError(message, { cause: Object.assign(new Error(`syscall ${code}`), { code }) });

describe("failureReason: what people call a failed attempt, and whether it can have been processed", () => {
  it.each([
    ["undici ECONNREFUSED", withCause("ECONNREFUSED"), "connection refused", true],
    [
      "Bun ConnectionRefused",
      Object.assign(new Error("Unable to connect"), { code: "ConnectionRefused" }),
      "connection refused",
      true,
    ],
    ["undici ENOTFOUND", withCause("ENOTFOUND"), "DNS lookup failed", true],
    ["EAI_AGAIN", withCause("EAI_AGAIN"), "DNS lookup failed", true],
    ["connect timeout", withCause("UND_ERR_CONNECT_TIMEOUT"), "connect timeout", true],
    ["TLS", withCause("ERR_TLS_CERT_ALTNAME_INVALID"), "TLS failure", true],
    ["self-signed", withCause("DEPTH_ZERO_SELF_SIGNED_CERT"), "TLS failure", true],
    ["undici ECONNRESET", withCause("ECONNRESET"), "connection reset", false],
    ["undici socket", withCause("UND_ERR_SOCKET"), "connection reset", false],
    ["headers timeout", withCause("UND_ERR_HEADERS_TIMEOUT"), "response timeout", false],
    [
      "Deno refused",
      new TypeError("error sending request: Connection refused (os error 111)"),
      "connection refused",
      true,
    ],
    ["Deno DNS", new TypeError("dns error: failed to lookup address information"), "DNS lookup failed", true],
    ["workerd lost", new TypeError("Network connection lost."), "connection reset", false],
    ["Chromium", new TypeError("Failed to fetch"), "network error", false],
    [
      "AggregateError of addresses",
      new TypeError("fetch failed", {
        cause: new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })]),
      }),
      "connection refused",
      true,
    ],
    ["attempt timeout", new TimeoutError("attempt", 100), "attempt timeout", false],
    ["open breaker", new CircuitOpenError("a.example", 0), "circuit open", true],
    ["full bulkhead", new BulkheadRejectedError("a.example"), "bulkhead full", true],
  ])("%s", (_, error, reason, notSent) => {
    expect(failureReason(error)).toEqual({ reason, notSent });
  });
});

/** `error` wrapped in `depth` TypeErrors, each the `cause` of the next. */
function wrapped(error: unknown, depth: number): unknown {
  let current = error;
  for (let i = 0; i < depth; i++) current = new TypeError("fetch failed", { cause: current });
  return current;
}

describe("failureReason: the edges of what it recognises", () => {
  it.each([
    ["a code with something before it", "XECONNREFUSED"],
    ["a code with something after it", "ECONNREFUSED_LATER"],
    ["a DNS code with a suffix", "ENOTFOUND2"],
    ["a connect timeout code with a prefix", "NOT_ETIMEDOUT"],
    ["a TLS code that does not start the code", "UND_ERR_TLSX"],
    ["a reset code with a suffix", "ECONNRESETX"],
    ["a response timeout code with a prefix", "XUND_ERR_BODY_TIMEOUT"],
  ])("matches whole platform codes only: %s is a plain network error", (_what, code) => {
    expect(failureReason(Object.assign(new Error("failed"), { code }))).toEqual({
      reason: "network error",
      notSent: false,
    });
  });

  it.each([
    ["Bun ConnectionRefused", "ConnectionRefused", "connection refused", true],
    ["EAI_NONAME", "EAI_NONAME", "DNS lookup failed", true],
    ["EAI_FAIL", "EAI_FAIL", "DNS lookup failed", true],
    ["Bun DNSException", "DNSException", "DNS lookup failed", true],
    ["ETIMEDOUT", "ETIMEDOUT", "connect timeout", true],
    ["Bun ConnectionTimeout", "ConnectionTimeout", "connect timeout", true],
    ["ERR_SSL_…", "ERR_SSL_WRONG_VERSION_NUMBER", "TLS failure", true],
    ["CERT_…", "CERT_HAS_EXPIRED", "TLS failure", true],
    ["UNABLE_TO_…", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "TLS failure", true],
    ["SELF_SIGNED_…", "SELF_SIGNED_CERT_IN_CHAIN", "TLS failure", true],
    ["Bun TLS…", "TLSHandshakeFailed", "TLS failure", true],
    // Bun's `EPROTO` ("The TLS handshake failed") comes after the request went too.
    ["Bun's EPROTO", "EPROTO", "TLS failure", false],
    ["EPIPE", "EPIPE", "connection reset", false],
    ["Bun ConnectionClosed", "ConnectionClosed", "connection reset", false],
    ["ECONNABORTED", "ECONNABORTED", "connection reset", false],
    ["body timeout", "UND_ERR_BODY_TIMEOUT", "response timeout", false],
  ])("code %s", (_what, code, reason, notSent) => {
    expect(failureReason(Object.assign(new Error("failed"), { code }))).toEqual({ reason, notSent });
  });

  it.each([
    ["getaddrinfo", "getaddrinfo EAI_AGAIN api.example", "DNS lookup failed", true],
    ["name or service not known", "Name or service not known", "DNS lookup failed", true],
    ["a message naming ENOTFOUND", "request failed: ENOTFOUND", "DNS lookup failed", true],
    ["a message naming ECONNREFUSED", "request failed: ECONNREFUSED", "connection refused", true],
    ["a certificate", "invalid peer certificate: UnknownIssuer", "TLS failure", true],
    ["the word TLS", "error sending request: TLS handshake eof", "TLS failure", true],
    ["the word SSL", "SSL routines failed", "TLS failure", true],
    // rustls's words for a peer that speaks no TLS: before the request only where Deno names the connect phase.
    [
      "rustls in the connect phase",
      "error sending request for url (https://api.example/): client error (Connect): received corrupt message of type InvalidContentType",
      "TLS failure",
      true,
    ],
    [
      "rustls mid-answer",
      "error reading a body: received corrupt message of type InvalidContentType",
      "TLS failure",
      false,
    ],
    ["rustls's peer misbehaved, no phase", "peer misbehaved: UnexpectedMessage", "TLS failure", false],
    ["a word that only contains tls", "outlsider closed", "network error", false],
    ["a word that only contains ssl", "glassless pane", "network error", false],
    ["connection reset", "Connection reset by peer (os error 104)", "connection reset", false],
    ["socket hang up", "socket hang up", "connection reset", false],
    ["other side closed", "other side closed", "connection reset", false],
    ["broken pipe", "Broken pipe (os error 32)", "connection reset", false],
    ["a message naming ECONNRESET", "read ECONNRESET", "connection reset", false],
    // A URL in the message is no evidence: a host or path may read like a cause.
    [
      "a URL's words only",
      "error sending request for url (https://ssl.example/v1/certificates)",
      "network error",
      false,
    ],
    [
      "a cause after a URL",
      "error sending request for url (https://tls.example/): connection refused",
      "connection refused",
      true,
    ],
    ["a cause before a URL", "TLS handshake eof for http://api.example/", "TLS failure", true],
    ["a host's words only", "request to ssl.gen.example:443 failed", "network error", false],
    ["a reset naming a host that reads as TLS", "socket hang up (ssl.gen.example:443)", "connection reset", false],
    [
      "a close after the handshake",
      "peer closed connection without sending TLS close_notify",
      "connection reset",
      false,
    ],
  ])("message: %s", (_what, message, reason, notSent) => {
    expect(failureReason(new TypeError(message))).toEqual({ reason, notSent });
  });

  it("a code anywhere in the chain is read before any message (a wrapper's words never outrank it)", () => {
    const wrapped = new TypeError("request to tls.example failed: TLS error", {
      cause: Object.assign(new Error("read"), { code: "ECONNRESET" }),
    });
    expect(failureReason(wrapped)).toEqual({ reason: "connection reset", notSent: false });
  });

  it("a code is read before the message of the same error, and a string code only", () => {
    const both = Object.assign(new TypeError("Connection reset by peer"), { code: "ECONNREFUSED" });
    expect(failureReason(both).reason).toBe("connection refused");
    const numeric = Object.assign(new TypeError("connection refused"), { code: 111 });
    expect(failureReason(numeric).reason).toBe("connection refused");
  });

  it("walks five levels of causes, no more", () => {
    const refused = Object.assign(new Error("x"), { code: "ECONNREFUSED" });
    expect(failureReason(wrapped(refused, 4))).toEqual({ reason: "connection refused", notSent: true });
    expect(failureReason(wrapped(refused, 5))).toEqual({ reason: "network error", notSent: false });
  });

  it("reads an AggregateError's first error only, and a cause before the errors", () => {
    const reset = Object.assign(new Error("x"), { code: "ECONNRESET" });
    const refused = Object.assign(new Error("y"), { code: "ECONNREFUSED" });
    expect(failureReason(new AggregateError([reset, refused])).reason).toBe("connection reset");
    const both = Object.assign(new AggregateError([reset], "fetch failed"), { cause: refused });
    expect(failureReason(both).reason).toBe("connection refused");
    // `errors` that is not an array is not read.
    expect(failureReason(Object.assign(new Error("fetch failed"), { errors: { 0: refused } })).reason).toBe(
      "network error",
    );
  });

  it("an abort is 'aborted'; values that are not errors are network errors", () => {
    expect(failureReason(new DOMException("The operation was aborted.", "AbortError"))).toEqual({
      reason: "aborted",
      notSent: false,
    });
    expect(failureReason(wrapped(new DOMException("x", "AbortError"), 1)).reason).toBe("network error");
    expect(failureReason({ name: "AbortError", message: "x" }).reason).toBe("network error");
    for (const value of [null, undefined, "ECONNREFUSED", 42]) {
      expect(failureReason(value)).toEqual({ reason: "network error", notSent: false });
    }
  });

  it("names a total timeout by its phase", () => {
    expect(failureReason(new TimeoutError("total", 5000))).toEqual({ reason: "total timeout", notSent: false });
  });

  it("reads a long hostile message in linear time, and still finds the words past its URLs", () => {
    // Runs of `a-` or `a.` once made the URL and host patterns backtrack at
    // every position (40 KB took over a second); a linear pass takes well under 50 ms.
    for (const junk of ["a-".repeat(20_000), "a.".repeat(20_000), `https://h.example/?${".".repeat(40_000)}a`]) {
      const started = performance.now();
      expect(failureReason(new TypeError(`${junk} connection refused`))).toEqual({
        reason: "connection refused",
        notSent: true,
      });
      expect(performance.now() - started).toBeLessThan(250);
    }
  });
});

describe("failureReason: a layer's own error, heard by a layer around it", () => {
  const refused = withCause("ECONNREFUSED");
  const timedOut = new TimeoutError("attempt", 60, 1);

  it("is judged by the failure it ended on, not by its message's words", () => {
    const stopped = new FallbackExhaustedError("certificates", { primary: refused, backup: timedOut }, [
      "primary",
      "backup",
    ]);
    expect(failureReason(stopped)).toEqual({ reason: "attempt timeout", notSent: false });
    const allRefused = new FallbackExhaustedError("images", { a: refused, b: refused }, ["a", "b"]);
    expect(failureReason(allRefused)).toEqual({ reason: "connection refused", notSent: true });
    // An earlier endpoint that may have had it (the inner layer moved on under a key of its own): not "not sent".
    const earlierTimedOut = new FallbackExhaustedError("images", { a: timedOut, b: refused }, ["a", "b"]);
    expect(failureReason(earlierTimedOut)).toEqual({ reason: "connection refused", notSent: false });
    expect(failureReason(new RetryExhaustedError(1, refused))).toEqual({ reason: "connection refused", notSent: true });
    // More than one attempt: an earlier one may have gone out under the inner layer's own key.
    expect(failureReason(new RetryExhaustedError(3, refused))).toEqual({
      reason: "connection refused",
      notSent: false,
    });
    expect(failureReason(new RetryExhaustedError(1, new CircuitOpenError("tls.example", 0)))).toEqual({
      reason: "circuit open",
      notSent: true,
    });
  });

  it("a look-alike by name without `errors` or `attempts` (another copy of the package) may have gone", () => {
    const refusedCause = { cause: withCause("ECONNREFUSED") };
    const chainLike = Object.assign(new Error("every endpoint failed", refusedCause), {
      name: "FallbackExhaustedError",
    });
    expect(failureReason(chainLike)).toEqual({ reason: "connection refused", notSent: false });
    const retryLike = Object.assign(new Error("gave up", refusedCause), { name: "RetryExhaustedError" });
    expect(failureReason(retryLike)).toEqual({ reason: "connection refused", notSent: false });
  });

  it("wrapped by a transport, its message is not read either", () => {
    const inner = new FallbackExhaustedError("ssl", { backup: new Error("peer closed") }, ["backup"]);
    const wrapped = new TypeError("upstream layer failed", { cause: inner });
    expect(failureReason(wrapped)).toEqual({ reason: "connection reset", notSent: false });
    const named = new TypeError("upstream layer failed", {
      cause: new FallbackExhaustedError("certificates", { x: new Error("boom") }, ["x"]),
    });
    expect(failureReason(named)).toEqual({ reason: "network error", notSent: false });
  });
});
