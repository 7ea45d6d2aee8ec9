/**
 * Outside-in attack on the twenty-first session's five later fixes: an aborted half-open probe gives a
 * coordinating store's lease back (`releaseProbe`); a chain's `validate` that throws fails the body, a
 * `transform`'s URL with `user:pass@` moves the chain on; a `Request` body stream chunk that is no bytes is
 * refused; `crossOriginHeaders` refuses an entry that is no header name; degradation edits each value of a header
 * target sent twice, `restoreAfter: 0` steps up at once, `minSamples` above 256 is a `ConfigError`. Each fix tried
 * on the paths its commit did not test and at its edges, and checked for what it broke nearby. How: public
 * entries only (root, `./degradation`, `./fallback`, `./cloudflare`, `./testing`'s TestClock); `hostFetch` records
 * each request as the platform builds it; "isolates" over one `FakeNamespace` of real `BreakerStateObject`s;
 * time moves only on the TestClock.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the store keeps every lease its probes hold; a header value is read whole
 * before it is read as values sent twice; a chunk that is no Uint8Array is refused):
 * 1. docs/breakers.md: "A probe aborted by its caller, `timeout.total` or a hedge that won frees its slot at
 *    once, and gives back a coordinating store's lease (`releaseProbe`)"; docs/cloudflare.md: the object "takes
 *    back at once the lease of a probe that was aborted". Observed with `durableObjectStore` and
 *    `halfOpenMaxCalls: 2` (the default is 3): two probes of one isolate each hold one of the object's leases;
 *    the first is aborted by its caller and no `/report` gives its lease back (the store keeps one lease per host,
 *    the second probe's, so `releaseProbe` with the first's id matches nothing). The object keeps both slots
 *    taken: the isolate's next probe, its local slot free, is refused (`CircuitOpenError`, retryAt +30 s).
 * 2. docs/degradation.md: "A rule that puts `model` in a header needs `models` a header can carry (Latin-1, no
 *    control character but a tab): another name is a `ConfigError` when the stage is made" with "`model` moved
 *    `model step` rungs down each ladder in `models`". Observed: a ladder `["large, v2", "small"]` is accepted
 *    for a header rule, but at `medium` `x-model: large, v2` goes out unmoved: the new split of a header "sent
 *    twice" reads it as `large` and `v2`, neither on the ladder. The same name in a query or a JSON body, and
 *    `adjust`, move it to `small`.
 * 3. docs/retry.md: "a `Request` input's body is read into bytes once and replayed"; CHANGELOG.md: "A chunk that
 *    is not bytes is now refused at once with a `TypeError` naming it, as fetch refuses it." Observed: a body
 *    stream yielding `Uint16Array` or `DataView` chunks passes the new check (`ArrayBuffer.isView`) and is sent
 *    corrupted: `Uint16Array [0x4241, 0x4443]` + `[0x4645]` goes out as bytes 65,67,0,0,69,0 (each element cut to
 *    one byte, the rest zeros), two `DataView`s of "AB" and "C" as 0,0,0. Neither refused nor sent as yielded.
 *
 * Held (plain `it`): a hedge whose both sides' `validate` throws resolves with a 2xx answer, named; a hedge
 * spare whose `transform` adds `user:pass@` sends nothing and the primary's answer serves; a body stream with
 * empty `Uint8Array` chunks is sent exactly; a custom store without `releaseProbe` survives an aborted probe (the
 * slot freed, nothing unhandled); `minSamples: 256` is accepted, 257 is a `ConfigError` at
 * `degradation.minSamples`, `configureTriggers` takes no `minSamples`; `restoreAfter: 0` steps up once per
 * evaluation from `minimal` to `full`; `crossOriginHeaders: ["X-Api-Key"]` (upper case) is a header name and
 * lets it cross, a pasted `"x-api-key: sk-…"` is a `ConfigError` that does not quote it; a header target's single
 * value `20.0, 50` is edited per value (`20.0, 30`), a `features` header is one list.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerStore, ConfigError, createResilience, getResilienceInfo } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeNamespace } from "../cloudflare/fake-durable-object.ts";
import { flush } from "../helpers/flush.ts";
import { type Answer, header, hostFetch } from "../helpers/host-fetch.ts";
import { outcomeAt } from "../helpers/outcome.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

const T0 = 1_000_000;

/** Lets pending promise steps run (one real macrotask, no sleep). */
/** A request that hangs until its signal aborts. */
const hang: Answer = (request) =>
  new Promise((_, reject) => request.signal.addEventListener("abort", () => reject(request.signal.reason)));

const configError = (f: () => unknown): { path: string; message: string } | string => {
  try {
    f();
  } catch (error) {
    return error instanceof ConfigError ? { path: error.path, message: error.message } : `other: ${String(error)}`;
  }
  return "accepted";
};

describe("1. releaseProbe: an aborted probe's lease, with another probe of the same isolate out", () => {
  // docs/breakers.md: "A probe aborted by its caller, `timeout.total` or a hedge that won frees its slot at once,
  // and gives back a coordinating store's lease (`releaseProbe`)". Observed: no /report with `ok: null` after the
  // abort, and the next probe is "CircuitOpenError b.example +30000" (the object still counts both leases out).
  it("the first of two probes, aborted, gives its lease back: the next probe goes", async () => {
    const clock = new TestClock(T0);
    const namespace = new FakeNamespace(clock);
    const state: { b: Answer } = { b: () => new Response("down", { status: 503 }) };
    const t = hostFetch({ "b.example": (r, n) => state.b(r, n) });
    const layer = createResilience({
      clock,
      fetch: t.fetch,
      retry: false,
      store: durableObjectStore(namespace, { clock }),
      breaker: { failureThreshold: 1, timeout: 1000, halfOpenMaxCalls: 2, successThreshold: 2, failureRate: undefined },
    });
    const outcome = outcomeAt(clock);
    expect(await outcome(layer.fetch("https://b.example/trip"))).toBe("503 down");
    await flush();
    await clock.advance(1000);
    await flush();
    expect(layer.health().breakers["b.example"]?.state).toBe("half_open");
    state.b = hang;
    const first = new AbortController();
    const p1 = outcome(layer.fetch("https://b.example/p1", { signal: first.signal }));
    await flush();
    const second = new AbortController();
    const p2 = outcome(layer.fetch("https://b.example/p2", { signal: second.signal }));
    await flush();
    expect(t.log.map((r) => r.url)).toEqual(["https://b.example/trip", "https://b.example/p1", "https://b.example/p2"]);
    first.abort(new Error("gone"));
    expect(await p1).toBe("Error");
    await flush();
    // The first probe's lease given back to the object (a /report whose probe has `ok: null`).
    const releasedAfterFirstAbort = namespace.requests.filter(
      (r) => r.path === "/report" && (r.body.probe as { ok?: unknown } | undefined)?.ok === null,
    ).length;
    state.b = () => new Response("ok");
    const p3 = await outcome(layer.fetch("https://b.example/p3"));
    second.abort(new Error("gone"));
    await p2;
    await flush();
    expect({ releasedAfterFirstAbort, p3 }).toEqual({ releasedAfterFirstAbort: 1, p3: "200 ok" });
  });

  it("held: a custom store without releaseProbe survives an aborted probe; the slot is freed", async () => {
    const { unhandled } = await watchUnhandled(async () => {
      const clock = new TestClock(T0);
      const state: { b: Answer } = { b: () => new Response("down", { status: 503 }) };
      const t = hostFetch({ "b.example": (r, n) => state.b(r, n) });
      const records: unknown[][] = [];
      const store: BreakerStore = {
        name: "no-release",
        publish() {},
        peek: () => undefined,
        record: (...args: unknown[]) => void records.push(args),
        acquireProbe: async () => "L1",
      };
      const layer = createResilience({
        clock,
        fetch: t.fetch,
        retry: false,
        store,
        breaker: {
          failureThreshold: 1,
          timeout: 1000,
          halfOpenMaxCalls: 1,
          successThreshold: 1,
          failureRate: undefined,
        },
      });
      const outcome = outcomeAt(clock);
      expect(await outcome(layer.fetch("https://b.example/trip"))).toBe("503 down");
      await clock.advance(1000);
      state.b = hang;
      const controller = new AbortController();
      const probe = outcome(layer.fetch("https://b.example/p", { signal: controller.signal }));
      await flush();
      controller.abort(new Error("gone"));
      expect(await probe).toBe("Error");
      state.b = () => new Response("ok");
      expect(await outcome(layer.fetch("https://b.example/next"))).toBe("200 ok");
      await flush();
      expect(records.at(-1)?.[3]).toBe("L1");
    });
    expect(unhandled).toEqual([]);
  });
});

describe("2. a degradation header target after the `50, 50` fix", () => {
  // docs/degradation.md: "A rule that puts `model` in a header needs `models` a header can carry (Latin-1, no
  // control character but a tab)" and "`model` moved `model step` rungs down each ladder in `models`". Observed:
  // `x-model: large, v2` goes out unmoved at medium; query `m=large, v2`, a JSON body and `adjust` give `small`.
  it("a model name with a comma, accepted for a header rule, is moved down in the header", async () => {
    const net = hostFetch({ "g.test": () => new Response("ok") });
    const stage = degradation({
      models: [["large, v2", "small"]],
      rules: [
        { params: { model: { header: "x-model" } } },
        { match: "https://g.test/q", params: { model: { query: "m" } } },
      ],
    });
    const layer = createResilience({ fetch: net.fetch, retry: false, degradation: stage });
    layer.degradation.setLevel("medium");
    expect(layer.degradation.adjust({ model: "large, v2" })).toEqual({ model: "small" });
    await layer.fetch("https://g.test/q?m=large%2C%20v2");
    expect(net.log[0]?.url).toBe("https://g.test/q?m=small");
    await layer.fetch("https://g.test/gen", { headers: { "x-model": "large, v2" } });
    expect(header(net.log[1], "x-model")).toBe("small");
  });

  it("held: each value of a header target is edited from its own text; a features header is one list", async () => {
    const net = hostFetch({ "g.test": () => new Response("ok") });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      degradation: degradation({
        rules: [{ params: { steps: { header: "x-steps" }, features: { header: "x-features" } } }],
      }),
    });
    layer.degradation.setLevel("medium");
    const headers = new Headers();
    headers.append("x-steps", "20.0");
    headers.append("x-steps", "50");
    headers.append("x-features", "core, enhancements");
    headers.append("x-features", "core");
    await layer.fetch(new Request("https://g.test/gen", { headers }));
    expect(header(net.log[0], "x-steps")).toBe("20.0, 30");
    expect(header(net.log[0], "x-features")).toBe("core,core");
  });
});

describe("3. a Request body stream whose chunks are views other than Uint8Array", () => {
  const expected = (chunks: ArrayBufferView[]): number[] =>
    chunks.flatMap((c) => [...new Uint8Array(c.buffer, c.byteOffset, c.byteLength)]);

  const send = async (chunks: ArrayBufferView[]) => {
    const net = hostFetch({ "g.test": () => new Response("ok") });
    const layer = createResilience({ fetch: net.fetch, retry: false });
    const body = new ReadableStream<ArrayBufferView>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk);
        controller.close();
      },
    });
    const request = new Request("https://g.test/up", { method: "POST", body, duplex: "half" } as RequestInit);
    const result = await layer.fetch(request).then(
      () => "sent",
      (e: unknown) => (e instanceof TypeError ? "TypeError" : String(e)),
    );
    return { result, sent: net.log.map((r) => [...(r.bytes ?? [])]) };
  };

  // docs/retry.md: "a `Request` input's body is read into bytes once and replayed"; CHANGELOG.md: "A chunk that is
  // not bytes is now refused at once with a `TypeError` naming it, as fetch refuses it." Observed: sent as
  // 65,67,0,0,69,0 (Uint16Array) and 0,0,0 (DataView): neither refused nor the bytes the stream yielded.
  for (const [kind, chunks] of [
    ["Uint16Array", [new Uint16Array([0x4241, 0x4443]), new Uint16Array([0x4645])]],
    ["DataView", [new DataView(new Uint8Array([65, 66]).buffer), new DataView(new Uint8Array([67]).buffer)]],
  ] as const) {
    it(`${kind} chunks are refused with a TypeError or sent as the bytes they hold`, async () => {
      const { result, sent } = await send([...chunks]);
      if (result === "TypeError") expect(sent).toEqual([]);
      else expect({ result, sent }).toEqual({ result: "sent", sent: [expected([...chunks])] });
    });
  }

  it("held: empty Uint8Array chunks around the bytes: sent exactly", async () => {
    const { result, sent } = await send([new Uint8Array(0), new TextEncoder().encode("AB"), new Uint8Array(0)]);
    expect({ result, sent }).toEqual({ result: "sent", sent: [[65, 66]] });
  });
});

describe("held: the chain fixes on a hedge", () => {
  it("both hedge sides' validate throws: a 2xx answer serves, named; nothing rejects", async () => {
    const clock = new TestClock(T0);
    const net = hostFetch({
      "p.test": async () => {
        await new Promise<void>((resolve) => clock.setTimer(resolve, 50));
        return Response.json({ side: "p" });
      },
      "s.test": () => Response.json({ side: "s" }),
    });
    const throws = {
      "~standard": {
        version: 1 as const,
        vendor: "test",
        validate: (): never => {
          throw new Error("schema broke");
        },
      },
    };
    const layer = createResilience({
      clock,
      fetch: net.fetch,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: "https://p.test/c", validate: throws },
            { name: "s", url: "https://s.test/c", validate: throws },
          ],
        },
      ]),
    });
    const call = layer.fetch("https://p.test/c/x");
    await clock.advance(100);
    const res = await call;
    expect(res.status).toBe(200);
    expect(["p", "s"]).toContain(getResilienceInfo(res)?.endpoint);
  });

  it("a hedge spare whose transform adds user:pass@ sends nothing; the primary serves", async () => {
    const clock = new TestClock(T0);
    const net = hostFetch({
      "p.test": async () => {
        await new Promise<void>((resolve) => clock.setTimer(resolve, 50));
        return new Response("primary");
      },
      "s.test": () => new Response("spare"),
    });
    const layer = createResilience({
      clock,
      fetch: net.fetch,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: "https://p.test/c" },
            { name: "s", url: "https://s.test/c", transform: (r) => ({ ...r, url: "https://u:pw@s.test/c" }) },
          ],
        },
      ]),
    });
    const call = layer.fetch("https://p.test/c/x");
    await clock.advance(100);
    const res = await call;
    expect(await res.text()).toBe("primary");
    expect(net.log.map((r) => r.url)).toEqual(["https://p.test/c/x"]);
  });
});

describe("held: options after the fixes", () => {
  it("minSamples 256 is accepted, 257 is a ConfigError at its path; configureTriggers takes no minSamples", () => {
    expect(configError(() => degradation({ minSamples: 256 }))).toBe("accepted");
    expect(configError(() => degradation({ minSamples: 257 }))).toMatchObject({ path: "degradation.minSamples" });
    const layer = createResilience({ degradation: degradation({}) });
    expect(configError(() => layer.degradation.configureTriggers({ minSamples: 300 } as never))).not.toBe("accepted");
  });

  it("crossOriginHeaders: an upper-case name crosses; a pasted header is refused, unquoted", async () => {
    const pasted = configError(() => createResilience({ crossOriginHeaders: ["x-api-key: sk-secret"] }));
    expect(pasted).toMatchObject({ path: "crossOriginHeaders.0" });
    expect(JSON.stringify(pasted)).not.toContain("sk-secret");
    const net = hostFetch({
      "p.test": () => new Response("down", { status: 503 }),
      "s.test": () => new Response("ok"),
    });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      crossOriginHeaders: ["X-Api-Key"],
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://p.test/c" },
            { name: "s", url: "https://s.test/c" },
          ],
        },
      ]),
    });
    expect(
      await (await layer.fetch("https://p.test/c/x", { headers: { "x-api-key": "k", "x-other": "o" } })).text(),
    ).toBe("ok");
    expect([header(net.log[1], "x-api-key"), header(net.log[1], "x-other")]).toEqual(["k", undefined]);
  });

  it("restoreAfter: 0 steps up one level at each evaluation, a second apart, from minimal to full", async () => {
    const clock = new TestClock(T0);
    const net = hostFetch({ "g.test": () => new Response("ok") });
    const layer = createResilience({
      clock,
      fetch: net.fetch,
      retry: false,
      degradation: degradation({ restoreAfter: 0 }),
    });
    for (let i = 0; i < 4; i++) layer.degradation.degrade("test");
    const seen: string[] = [layer.degradation.currentLevel().name];
    for (let i = 0; i < 5; i++) {
      await clock.advance(1000);
      await layer.fetch("https://g.test/x");
      seen.push(layer.degradation.currentLevel().name);
    }
    expect(seen).toEqual(["minimal", "low", "medium", "high", "full", "full"]);
  });
});
