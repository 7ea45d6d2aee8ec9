import { describe, expect, it } from "vitest";
import { redactErrorChain } from "../../src/core/redact-url.ts";

/**
 * What `redactErrorChain` does with an error it cannot change in place (a
 * frozen one, as a `DOMException`'s read-only message is): a copy, whose
 * message, cause and URL fields are the cut ones. And which string fields it
 * reads as one URL (a scheme or a slash first) rather than as text. Written
 * for the mutation run's survivors of the thirtieth session
 * (docs/mutation.md): each case tells the kept branch from its mutant.
 */
describe("redactErrorChain: the copy of an error that cannot be changed", () => {
  it("keeps a cut cause as the copy's cause", () => {
    const frozen = Object.freeze(new Error("refused", { cause: "https://api.example/v1?key=sk-1" }));
    const copy = redactErrorChain(frozen) as Error;
    expect(copy).not.toBe(frozen);
    expect(copy.cause).toBe("https://api.example/v1");
  });

  it("gives a copy of an error without a cause no `cause` at all", () => {
    const frozen = Object.freeze(new Error("GET https://api.example/v1?key=sk-1 failed"));
    const copy = redactErrorChain(frozen) as Error;
    expect(copy.message).toBe("GET https://api.example/v1 failed");
    expect("cause" in copy).toBe(false);
  });

  it("gives a copy an empty message when the error's is neither text nor a URL", () => {
    const frozen = Object.freeze({ name: "Odd", message: 42, cause: "https://api.example/v1?key=sk-1" });
    const copy = redactErrorChain(frozen) as Error;
    expect(copy).toBeInstanceOf(Error);
    expect(copy.message).toBe("");
    expect(copy.name).toBe("Odd");
    expect(copy.cause).toBe("https://api.example/v1");
  });
});

describe("redactErrorChain: string fields read as one URL", () => {
  it("cuts the query of a field that starts with a slash, even one holding no parameter", () => {
    const error = Object.assign(new Error("failed"), { path: "/v1/jobs?sk-live-token" });
    expect((redactErrorChain(error) as { path: string }).path).toBe("/v1/jobs");
  });

  it("cuts the query of a field that starts with any scheme, digits in it too", () => {
    const error = Object.assign(new Error("failed"), { location: "s3a:bucket/key?sk-live-token" });
    expect((redactErrorChain(error) as { location: string }).location).toBe("s3a:bucket/key");
  });

  it("reads other text as text: a bare `?` ending a phrase stays", () => {
    const error = Object.assign(new Error("failed"), { hint: "did you mean /v1/jobs?" });
    expect((redactErrorChain(error) as { hint: string }).hint).toBe("did you mean /v1/jobs?");
  });
});
