import { describe, expect, it } from "vitest";
import { type CallRequest, canSendBody, deriveRequest, fetchArguments } from "../../src/http/request/call-request.ts";

const URL_A = "https://a.example/v1";

/** A call's request value as the entry would build it, with `overrides`. */
function callRequest(overrides: Partial<CallRequest> = {}): CallRequest {
  const init: RequestInit = { method: "POST", headers: { "x-a": "1" }, body: "payload", cache: "no-store" };
  return {
    url: URL_A,
    method: "POST",
    headers: { "x-a": "1" },
    body: "payload",
    init,
    signal: undefined,
    replay: { allowed: true, oversize: undefined, sends: 0 },
    idempotent: false,
    callerUrl: URL_A,
    original: [URL_A, init],
    ...overrides,
  };
}

describe("deriveRequest: a copy keeps the caller's own (input, init) only while nothing that is sent changed", () => {
  it("keeps it when only the signal changes, or a field is 'changed' to the value it has", () => {
    const request = callRequest();
    const signal = new AbortController().signal;
    const same = [
      deriveRequest(request, {}),
      deriveRequest(request, { signal }),
      deriveRequest(request, { url: request.url }),
      deriveRequest(request, { method: request.method }),
      deriveRequest(request, { headers: request.headers }),
      deriveRequest(request, { body: request.body }),
      deriveRequest(request, { url: request.url, method: "POST", headers: request.headers, body: "payload", signal }),
    ];
    for (const copy of same) expect(copy.original).toBe(request.original);
    expect(same[1]?.signal).toBe(signal);
  });

  it.each([
    ["url", { url: "https://b.example/v1" }],
    ["method", { method: "PUT" }],
    ["headers (another object, even with the same entries)", { headers: { "x-a": "1" } }],
    ["headers (removed)", { headers: undefined }],
    ["body", { body: "other" }],
    ["body (removed)", { body: null }],
  ])("drops it when the %s changes, and carries the change and every other field", (_what, changes) => {
    const request = callRequest();
    const copy = deriveRequest(request, changes);
    expect(copy.original).toBeUndefined();
    expect(copy).toEqual({ ...request, ...changes, original: undefined });
    // The replay state is shared, not copied: a send through the copy counts for the call.
    expect(copy.replay).toBe(request.replay);
  });

  it("a copy of a request that was already changed stays changed", () => {
    const changed = callRequest({ original: undefined });
    expect(deriveRequest(changed, {}).original).toBeUndefined();
  });
});

describe("canSendBody: a body goes out again only if it can be replayed or was never sent", () => {
  it.each([
    ["replayable, sent before", { allowed: true, sends: 3 }, "payload", true],
    ["not replayable, never sent", { allowed: false, sends: 0 }, "payload", true],
    ["not replayable, sent once", { allowed: false, sends: 1 }, "payload", false],
    ["not replayable, sent once, no body (null)", { allowed: false, sends: 1 }, null, true],
    ["not replayable, sent once, no body (undefined)", { allowed: false, sends: 1 }, undefined, true],
  ])("%s → %s", (_what, replay, body, expected) => {
    const request = callRequest({ body, replay: { oversize: undefined, ...replay } });
    expect(canSendBody(request)).toBe(expected);
  });
});

describe("fetchArguments: what the transport receives", () => {
  it("an unchanged request passes the caller's own input and init object when the signal is theirs", () => {
    const signal = new AbortController().signal;
    const init: RequestInit = { method: "POST", body: "x", signal };
    const input = new Request(URL_A, { method: "POST", body: "y" });
    const [sentInput, sentInit] = fetchArguments(callRequest({ original: [input, init] }), signal);
    expect(sentInput).toBe(input);
    expect(sentInit).toBe(init);

    // No init at all, and no signal: nothing is made up.
    expect(fetchArguments(callRequest({ original: [URL_A, undefined] }), undefined)).toEqual([URL_A, undefined]);
    expect(fetchArguments(callRequest({ original: [URL_A, undefined] }), undefined)[1]).toBeUndefined();

    // A `signal: null` in the caller's init is no signal.
    const withNull: RequestInit = { method: "GET", signal: null };
    expect(fetchArguments(callRequest({ original: [URL_A, withNull] }), undefined)[1]).toBe(withNull);
  });

  it("an unchanged request under another signal gets a copy of the init with that signal, the rest kept", () => {
    const callerSignal = new AbortController().signal;
    const attemptSignal = new AbortController().signal;
    const init: RequestInit = { method: "PATCH", body: "x", cache: "no-store", signal: callerSignal };
    const [input, sentInit] = fetchArguments(callRequest({ original: [URL_A, init] }), attemptSignal);
    expect(input).toBe(URL_A);
    expect(sentInit).not.toBe(init);
    expect(sentInit).toEqual({ method: "PATCH", body: "x", cache: "no-store", signal: attemptSignal });
    expect(init.signal).toBe(callerSignal);

    // No attempt signal while the caller gave one: the copy says so with null.
    const [, cleared] = fetchArguments(callRequest({ original: [URL_A, init] }), undefined);
    expect(cleared).toEqual({ method: "PATCH", body: "x", cache: "no-store", signal: null });
    // No init and an attempt signal.
    const [, added] = fetchArguments(callRequest({ original: [URL_A, undefined] }), attemptSignal);
    expect(added).toEqual({ signal: attemptSignal });
  });

  it("a changed request is rebuilt from its own fields over the caller's other options", () => {
    const signal = new AbortController().signal;
    const request = callRequest({
      url: "https://b.example/v2",
      method: "PUT",
      headers: { "x-b": "2" },
      body: "changed",
      init: { method: "POST", headers: { "x-a": "1" }, body: "payload", cache: "no-store", credentials: "omit" },
      original: undefined,
    });
    const [input, init] = fetchArguments(request, signal);
    expect(input).toBe("https://b.example/v2");
    expect(init).toEqual({
      method: "PUT",
      headers: { "x-b": "2" },
      body: "changed",
      cache: "no-store",
      credentials: "omit",
      signal,
    });
    expect(init && "duplex" in init).toBe(false);
  });

  it("a changed request without headers or signal sends empty headers and a null signal", () => {
    const [, init] = fetchArguments(
      callRequest({ headers: undefined, init: undefined, original: undefined }),
      undefined,
    );
    expect(init).toEqual({ method: "POST", headers: {}, body: "payload", signal: null });
  });

  it.each(["GET", "HEAD"])("a %s never carries a body, even one that a step left on the request", (method) => {
    const [, init] = fetchArguments(
      callRequest({ method, body: new ReadableStream(), init: undefined, original: undefined }),
      undefined,
    );
    expect(init?.body).toBeNull();
    expect(init && "duplex" in init).toBe(false);
  });

  it("a stream body is sent with duplex half, and a request without a body sends null", async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("streamed"));
        controller.close();
      },
    });
    const [url, init] = fetchArguments(callRequest({ body: stream, init: undefined, original: undefined }), undefined);
    expect(init).toMatchObject({ method: "POST", body: stream, duplex: "half" });
    // What a platform fetch would do with these arguments: it needs the duplex to accept the stream.
    expect(await new Request(url, init).text()).toBe("streamed");

    const [, empty] = fetchArguments(callRequest({ body: undefined, init: undefined, original: undefined }), undefined);
    expect(empty?.body).toBeNull();
    expect(empty && "duplex" in empty).toBe(false);
  });
});

describe("deriveRequest: another body drops the old content-length", () => {
  it("removes content-length, whatever its case or the headers' form, only when the body changes", () => {
    for (const headers of [
      { "Content-Length": "5", "x-a": "1" },
      [
        ["content-length", "5"],
        ["x-a", "1"],
      ] as [string, string][],
      new Headers({ "content-length": "5", "x-a": "1" }),
    ]) {
      const request = callRequest({ body: "12345", headers });
      const rewritten = deriveRequest(request, { body: "1234" });
      expect([...new Headers(rewritten.headers)]).toEqual([["x-a", "1"]]);
      expect(headers instanceof Headers ? headers.get("content-length") : "kept").not.toBeNull(); // never edited in place
      expect(deriveRequest(request, { url: "https://b.example/" }).headers).toBe(headers);
      expect(deriveRequest(request, { body: "12345" }).headers).toBe(headers);
    }
  });
});
