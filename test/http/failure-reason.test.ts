import { describe, expect, it } from "vitest";
import { failureReason } from "../../src/http/failure-reason.ts";
import { BulkheadRejectedError, CircuitOpenError, TimeoutError } from "../../src/index.ts";

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
