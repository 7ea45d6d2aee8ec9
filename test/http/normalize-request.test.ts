import { describe, expect, it } from "vitest";
import { resolveRetry } from "../../src/core/options/retry-options.ts";
import type { CallRequest } from "../../src/http/request/call-request.ts";
import { type NormalizeOptions, normalizeRequest } from "../../src/http/request/normalize-request.ts";
import { createResilience, type ReplayEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

const options = (retry = resolveRetry(undefined), maxReplayBytes = 10): NormalizeOptions => ({
  idempotentMethods: retry.methods,
  addIdempotencyKey: retry.idempotencyKey,
  maxReplayBytes,
});
const prepare = async (input: string | URL | Request, init?: RequestInit, limit = 10): Promise<CallRequest> =>
  await normalizeRequest(input, init, options(undefined, limit), undefined);

describe("normalizeRequest: one request value per call", () => {
  it("takes a string or a URL object, with the method upper-cased", async () => {
    const fromUrl = await prepare(new URL("https://a.example/x?y=1"), { method: "put" });
    expect([fromUrl.url, fromUrl.method, typeof fromUrl.url]).toEqual(["https://a.example/x?y=1", "PUT", "string"]);
    expect((await prepare("https://a.example/")).method).toBe("GET");
  });

  it("measures every replayable body kind against maxReplayBytes, at the boundary too", async () => {
    const ten = "x".repeat(10);
    const cases: [string, BodyInit, number | undefined][] = [
      ["string at the limit", ten, undefined],
      ["string over", `${ten}x`, 11],
      ["multi-byte string over", "é".repeat(6), 12], // 6 units, 12 bytes: must be encoded to know
      ["multi-byte string under", "é".repeat(5), undefined],
      ["3-byte characters over", "€".repeat(4), 12],
      ["ArrayBuffer over", new ArrayBuffer(11), 11],
      ["Uint8Array at the limit", new Uint8Array(10), undefined],
      ["Uint8Array over", new Uint8Array(11), 11],
      ["Blob over", new Blob([`${ten}xx`]), 12],
      ["URLSearchParams over", new URLSearchParams({ key: "0123456789" }), 14],
    ];
    for (const [what, body, oversize] of cases) {
      const call = await prepare("https://a.example/", { method: "PUT", body });
      expect([what, call.replay.oversize, call.replay.allowed]).toEqual([what, oversize, oversize === undefined]);
    }
    const form = new FormData();
    form.set("file", "x".repeat(6));
    expect((await prepare("https://a.example/", { method: "POST", body: form })).replay).toMatchObject({
      allowed: true,
      oversize: undefined,
    }); // 4 + 6 bytes: at the limit
    form.set("file", "x".repeat(7));
    expect((await prepare("https://a.example/", { method: "POST", body: form })).replay).toMatchObject({
      allowed: false,
      oversize: 11,
    });
  });

  it("reads a Request's body once, into bytes, unless it announces more than the limit", async () => {
    const small = await prepare(new Request("https://a.example/", { method: "POST", body: "0123456789" }));
    expect([small.replay.allowed, small.replay.oversize, small.body instanceof Uint8Array]).toEqual([
      true,
      undefined,
      true,
    ]);
    const big = await prepare(new Request("https://a.example/", { method: "POST", body: "0123456789x" }));
    expect([big.replay.allowed, big.replay.oversize]).toEqual([false, 11]);
    const announced = new Request("https://a.example/", {
      method: "POST",
      body: "short",
      headers: { "content-length": "11" },
    });
    const declared = await prepare(announced);
    expect([declared.replay.allowed, declared.replay.oversize, announced.bodyUsed]).toEqual([false, 11, false]);
    const atLimit = new Request("https://a.example/", {
      method: "POST",
      body: "0123456789",
      headers: { "content-length": "10" },
    });
    expect((await prepare(atLimit)).replay.allowed).toBe(true);
  });

  it("prefers init's signal, headers and body over the Request's own", async () => {
    const own = new AbortController();
    const given = new AbortController();
    const request = new Request("https://a.example/", {
      method: "POST",
      body: "from-request",
      headers: { a: "request" },
      signal: own.signal,
    });
    const call = await prepare(request, { signal: given.signal, headers: { a: "init" }, body: "from-init" });
    expect([call.signal === given.signal, call.body, new Headers(call.headers).get("a")]).toEqual([
      true,
      "from-init",
      "init",
    ]);
    const bare = await prepare(new Request("https://a.example/", { headers: { a: "request" }, signal: own.signal }));
    own.abort();
    expect([bare.signal?.aborted, new Headers(bare.headers).get("a"), bare.body]).toEqual([true, "request", null]);
  });

  it("leaves a Request's signal behind when init says signal: null, as fetch does", async () => {
    const own = new AbortController();
    const request = new Request("https://a.example/", { signal: own.signal });
    own.abort();
    const { fetch, sent } = recordingFetch();
    const resilience = createResilience({ fetch, clock: new TestClock(0) });
    await resilience.fetch(request, { signal: null });
    expect(sent.length).toBe(1);
    await expect(resilience.fetch(request)).rejects.toBe(own.signal.reason);
    expect(sent.length).toBe(1);
  });

  it("refuses a no-cors call with a stream body at once, as fetch does everywhere; nothing sent, nothing counted", async () => {
    const { fetch, sent } = recordingFetch();
    const resilience = createResilience({ fetch, clock: new TestClock(0) });
    const body = new ReadableStream({ start: (c) => c.close() });
    await expect(
      resilience.fetch("https://a.example/", { method: "POST", mode: "no-cors", body, duplex: "half" } as RequestInit),
    ).rejects.toThrow(new TypeError("resilience.fetch: a no-cors request cannot have a stream body"));
    expect(sent.length).toBe(0);
    expect(resilience.debugInfo().totals.failures).toBe(0);
    // `cors` and `same-origin` take a stream body.
    const streamed = new ReadableStream({ start: (c) => c.close() });
    await resilience.fetch("https://a.example/", {
      method: "POST",
      mode: "cors",
      body: streamed,
      duplex: "half",
    } as RequestInit);
    expect(sent.length).toBe(1);
  });

  it("refuses a keepalive call with a stream body at once, as fetch does, and reads a keepalive Request's body whole", async () => {
    const stream = new ReadableStream({ start: (c) => c.close() });
    await expect(
      (async () =>
        prepare("https://a.example/", { method: "POST", keepalive: true, body: stream, duplex: "half" } as never))(),
    ).rejects.toThrow("resilience.fetch: a keepalive request cannot have a stream body");
    const big = new Request("https://a.example/", { method: "POST", keepalive: true, body: "x".repeat(25) });
    const call = await prepare(big, undefined, 10);
    expect([call.body instanceof Uint8Array, (call.body as Uint8Array).byteLength, call.replay]).toEqual([
      true,
      25,
      { allowed: false, oversize: 25, sends: 0 },
    ]);
  });

  it("refuses shared or resizable bytes at once, as fetch refuses them, and sends nothing", async () => {
    const message = "resilience.fetch: fetch refuses shared or resizable bytes as a body";
    // Typed as the bytes fetch takes: the types refuse them too, a caller's cast does not.
    const resizable = () => new (ArrayBuffer as new (n: number, o: object) => ArrayBuffer)(4, { maxByteLength: 8 });
    const bodies = [
      ["a view of a SharedArrayBuffer", new Uint8Array(new SharedArrayBuffer(4))],
      ["a DataView of a SharedArrayBuffer", new DataView(new SharedArrayBuffer(4))],
      ["a resizable ArrayBuffer", resizable()],
      ["a view of a resizable ArrayBuffer", new Uint8Array(resizable())],
    ] as unknown as Array<[string, BodyInit]>;
    for (const [what, body] of bodies) {
      // The platform's own fetch refuses each of them.
      expect(() => new Request("https://a.example/", { method: "POST", body }), what).toThrow(TypeError);
      const { fetch, sent } = recordingFetch();
      const resilience = createResilience({ fetch, retry: { initialDelay: 0 } });
      await expect(resilience.fetch("https://a.example/", { method: "POST", body }), what).rejects.toThrow(
        new TypeError(message),
      );
      expect([sent.length, resilience.health().breakers], what).toEqual([0, {}]);
    }
    // A fixed-length buffer and views of it go as before.
    const call = await prepare("https://a.example/", { method: "POST", body: new Uint8Array([1, 2]) });
    expect(call.body).toEqual(new Uint8Array([1, 2]));
  });

  it("sees an Idempotency-Key only where it matters, and adds one to POST and PATCH when asked", async () => {
    expect((await prepare("https://a.example/", { method: "POST" })).idempotent).toBe(false);
    expect(
      (await prepare("https://a.example/", { method: "POST", headers: { "Idempotency-Key": "k" } })).idempotent,
    ).toBe(true);
    const keyed = resolveRetry({ idempotencyKey: true });
    for (const method of ["POST", "PATCH"]) {
      const call = await normalizeRequest("https://a.example/", { method }, options(keyed), undefined);
      expect([method, call.idempotent, new Headers(call.headers).get("idempotency-key")?.length]).toEqual([
        method,
        true,
        36,
      ]);
    }
    const get = await normalizeRequest("https://a.example/", {}, options(keyed), undefined);
    expect([get.idempotent, get.headers]).toEqual([true, undefined]);
  });

  it("names the input it cannot use", async () => {
    const resilience = createResilience({ fetch: async () => new Response("never") });
    const bad = (input: unknown) => resilience.fetch(input as string);
    await expect(bad(42)).rejects.toThrow(/expected a URL string, URL or Request, got number/);
    await expect(bad(null)).rejects.toThrow(/got null/);
    await expect(bad({ url: "https://a.example/" })).rejects.toThrow(/got Object/);
    // One that cannot become text at all: the runtime's TypeError, as fetch's.
    await expect(bad(Object.create(null))).rejects.toThrow(TypeError);
    const used = new Request("https://a.example/", { method: "PUT", body: "once" });
    await used.text();
    await expect(resilience.fetch(used)).rejects.toThrow(
      new TypeError("resilience.fetch: the Request's body was already read (bodyUsed)"),
    );
  });
});

describe("replay limit through resilience.fetch", () => {
  it("retries a body within the limit and says nothing; sends a larger one once with a replay event", async () => {
    const { fetch, sent } = recordingFetch(() => new Response(null, { status: 503 }));
    const clock = new TestClock(0);
    const resilience = createResilience({ fetch, clock, maxReplayBytes: 10, retry: { maxAttempts: 2 } });
    const events: ReplayEvent[] = [];
    resilience.on("replay", (e) => events.push(e));
    await clock.run(resilience.fetch("https://a.example/x?k=secret", { method: "PUT", body: "0123456789" }));
    expect([sent.length, events.length]).toEqual([2, 0]);
    await clock.run(resilience.fetch("https://a.example/x?k=secret", { method: "PUT", body: "0123456789x" }));
    expect(sent.length).toBe(3);
    expect(events).toEqual([{ url: "https://a.example/x", bytes: 11, limit: 10 }]);
  });
});

describe("a Request input's own properties", () => {
  it("are carried when the call is sent elsewhere (only those that differ from the defaults)", async () => {
    const request = new Request("https://a.example/x", {
      method: "POST",
      body: "b",
      credentials: "include",
      cache: "no-store",
      redirect: "manual",
      integrity: "sha256-abc",
      keepalive: true,
      referrerPolicy: "no-referrer",
    });
    const call = await prepare(request);
    expect(call.init).toMatchObject({
      credentials: "include",
      cache: "no-store",
      redirect: "manual",
      integrity: "sha256-abc",
      keepalive: true,
      referrerPolicy: "no-referrer",
    });
    const plain = await prepare(new Request("https://a.example/x"));
    for (const key of ["credentials", "cache", "redirect", "integrity", "keepalive", "referrerPolicy", "mode"]) {
      expect([key, key in (plain.init ?? {})]).toEqual([key, false]);
    }
  });

  it("a stream body given without duplex is sent with it (the platform would refuse it)", async () => {
    const body = new ReadableStream({
      start(c) {
        c.close();
      },
    });
    const withoutDuplex = await prepare("https://a.example/", { method: "PUT", body });
    expect([withoutDuplex.original, withoutDuplex.replay.allowed]).toEqual([undefined, false]);
    const withDuplex = await prepare("https://a.example/", { method: "PUT", body, duplex: "half" } as RequestInit);
    expect(withDuplex.original?.[0]).toBe("https://a.example/");
  });
});
