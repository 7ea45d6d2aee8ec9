import { describe, expect, it, vi } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { TestClock } from "../../src/testing/test-clock.ts";

const PRIMARY = "https://primary.example/v1";
const BACKUP = "https://backup.example/v1";

/** A schema that accepts `{ ok: true }` only. */
const okSchema = {
  "~standard": {
    version: 1 as const,
    vendor: "test",
    validate: (value: unknown) =>
      typeof value === "object" && value !== null && (value as { ok?: unknown }).ok === true
        ? { value }
        : { issues: [{ message: "not ok" }] },
  },
};

describe("trying a chain's endpoints", () => {
  it("moves on from a 408 to the next endpoint", async () => {
    const clock = new TestClock();
    const fetch = async (input: RequestInfo | URL) =>
      String(input).startsWith(PRIMARY) ? new Response("slow", { status: 408 }) : new Response("backup");
    const resilience = createResilience({
      clock,
      fetch,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "primary", url: PRIMARY },
            { name: "backup", url: BACKUP },
          ],
        },
      ]),
    });
    const response = await clock.run(resilience.fetch(`${PRIMARY}/x`));
    expect([response.status, await response.text(), getResilienceInfo(response)?.endpoint]).toEqual([
      200,
      "backup",
      "backup",
    ]);
  });

  it("reads a body to validate for as long as the call's total timeout leaves", async () => {
    const clock = new TestClock();
    const slowOk = () =>
      new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            clock.setTimer(() => {
              controller.enqueue(new TextEncoder().encode('{"ok":true}'));
              controller.close();
            }, 100);
          },
        }),
      );
    const fetch = async (input: RequestInfo | URL) =>
      String(input).startsWith(PRIMARY) ? slowOk() : new Response('{"ok":true,"from":"backup"}');
    const resilience = createResilience({
      clock,
      fetch,
      retry: false,
      timeout: { total: 5_000 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "primary", url: PRIMARY, validate: okSchema },
            { name: "backup", url: BACKUP, validate: okSchema },
          ],
        },
      ]),
    });
    const response = await clock.run(resilience.fetch(`${PRIMARY}/x`));
    expect([await response.text(), getResilienceInfo(response)?.endpoint]).toEqual(['{"ok":true}', "primary"]);
  });
});

describe("an entry the caller would add to a configured chain", () => {
  it("is refused at once (it would receive the layer's own call); an endpoint with `respond` answers locally", async () => {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      fetch: async () => new Response(null, { status: 503 }),
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "primary", url: PRIMARY },
            { name: "mine", respond: () => new Response("mine") },
          ],
        },
      ]),
    });
    expect(() => resilience.fallback.chain<unknown, Response>("c").add(() => new Response("x"), { name: "x" })).toThrow(
      TypeError,
    );
    const response = await clock.run(resilience.fetch(`${PRIMARY}/x`));
    expect([response.status, await response.text(), getResilienceInfo(response)?.endpoint]).toEqual([
      200,
      "mine",
      "mine",
    ]);
  });
});

describe("an endpoint's breaker key", () => {
  it("is found once per endpoint tried: the skip check's key serves the send", async () => {
    const keyed: string[] = [];
    const resilience = createResilience({
      fetch: async (input: RequestInfo | URL) =>
        new Response(null, { status: String(input).startsWith(PRIMARY) ? 503 : 200 }),
      retry: false,
      breaker: {
        key: (url) => {
          keyed.push(url.href);
          return url.host;
        },
      },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "primary", url: PRIMARY },
            { name: "backup", url: BACKUP },
          ],
        },
      ]),
    });
    const response = await resilience.fetch(`${PRIMARY}/x`);
    expect(response.status).toBe(200);
    expect(keyed).toEqual([`${PRIMARY}/x`, `${BACKUP}/x`]);
  });

  it("follows the URL a transform sends to, not the endpoint's own", async () => {
    const sent: string[] = [];
    const opened: string[] = [];
    const resilience = createResilience({
      fetch: async (input: RequestInfo | URL) => {
        sent.push(String(input));
        return new Response(null, { status: 503 });
      },
      retry: false,
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "moved", url: PRIMARY, transform: (r) => ({ ...r, url: "https://elsewhere.example/v2" }) },
          ],
        },
      ]),
    });
    resilience.on("breaker", (e) => opened.push(e.key));
    await resilience.fetch(`${PRIMARY}/x`);
    expect(sent).toEqual(["https://elsewhere.example/v2"]);
    expect(opened).toEqual(["elsewhere.example"]);
  });
});

describe("a response whose validation throws", () => {
  it("is released (its body drained) and the chain moves on", async () => {
    const answered: Response[] = [];
    const throwing = {
      "~standard": {
        version: 1 as const,
        vendor: "test",
        validate: (): never => {
          throw new Error("schema bug");
        },
      },
    };
    const resilience = createResilience({
      fetch: async (input: RequestInfo | URL) => {
        const response = new Response(String(input).startsWith(PRIMARY) ? '{"ok":true}' : '{"from":"backup"}');
        answered.push(response);
        return response;
      },
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "primary", url: PRIMARY, validate: throwing },
            { name: "backup", url: BACKUP },
          ],
        },
      ]),
    });
    const response = await resilience.fetch(`${PRIMARY}/x`);
    expect(await response.text()).toBe('{"from":"backup"}');
    expect(answered).toHaveLength(2);
    expect(answered[0]?.body?.locked).toBe(true);
  });

  it("is released too when the caller aborts while its body is validated", async () => {
    const answered: Response[] = [];
    let cancelled = 0;
    // Released means cancelled: by the validation's reader, or, when the abort
    // comes before the answer reached it, by the attempt that dropped the answer.
    const stalled = () => new Response(new ReadableStream<Uint8Array>({ start() {}, cancel: () => void cancelled++ }));
    const resilience = createResilience({
      fetch: async () => {
        const response = stalled();
        answered.push(response);
        return response;
      },
      retry: false,
      fallback: fallback([{ name: "c", endpoints: [{ name: "primary", url: PRIMARY, validate: okSchema }] }]),
    });
    const controller = new AbortController();
    const call = resilience.fetch(`${PRIMARY}/x`, { signal: controller.signal });
    while (answered.length === 0) await new Promise((r) => setTimeout(r, 0));
    const reason = new Error("user left");
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    await new Promise((r) => setTimeout(r, 0));
    expect(cancelled).toBe(1);
  });
});

describe("an abort while validate reads a body", () => {
  it("cancels the body's source, though the transport's body does not follow the signal", async () => {
    let cancelled: unknown = "not cancelled";
    let pulled = 0;
    const resilience = createResilience({
      // A body of the transport's own: one chunk, then nothing, deaf to the signal.
      fetch: async () =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull(controller) {
              if (pulled++ === 0) controller.enqueue(new TextEncoder().encode('{"ok":'));
              else return new Promise(() => {});
            },
            cancel: (reason) => {
              cancelled = reason;
            },
          }),
        ),
      retry: false,
      fallback: fallback([{ name: "c", endpoints: [{ name: "primary", url: PRIMARY, validate: okSchema }] }]),
    });
    // validate reads a clone: the source is cancelled once both branches are,
    // the caller's copy by the layer's drain of a dropped answer (1 s at most).
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const controller = new AbortController();
      const call = resilience.fetch(`${PRIMARY}/x`, { signal: controller.signal });
      while (pulled < 2) await new Promise((r) => setImmediate(r));
      const reason = new Error("user left");
      controller.abort(reason);
      await expect(call).rejects.toBe(reason);
      await vi.advanceTimersByTimeAsync(1_000);
      // A tee's source hears both branches' reasons.
      expect(cancelled).not.toBe("not cancelled");
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("a chain call that ends without an acceptable answer", () => {
  /** The primary answers 503; the backup answers only when its signal aborts (by rejecting). */
  function busyThenHanging() {
    const answered: Response[] = [];
    let backupCalls = 0;
    const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      if (String(input).startsWith(PRIMARY)) {
        const response = new Response("busy", { status: 503 });
        answered.push(response);
        return Promise.resolve(response);
      }
      backupCalls++;
      return new Promise((_resolve, reject) => {
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
      });
    };
    const endpoints = [
      { name: "primary", url: PRIMARY },
      { name: "backup", url: BACKUP },
    ];
    return { fetch, answered, backupCalls: () => backupCalls, chains: fallback([{ name: "c", endpoints }]) };
  }

  it("rejects with the caller's reason when aborted, not with the 503 turned down before, and releases the 503", async () => {
    const { fetch, answered, backupCalls, chains } = busyThenHanging();
    const resilience = createResilience({ fetch, retry: false, fallback: chains });
    const controller = new AbortController();
    const call = resilience.fetch(`${PRIMARY}/x`, { signal: controller.signal });
    while (backupCalls() === 0) await new Promise((r) => setTimeout(r, 0));
    const reason = new Error("user left");
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(answered[0]?.body?.locked).toBe(true);
  });

  it("rejects with the total timeout when it passes, as a call to one host does after a 503", async () => {
    const { fetch, answered, chains } = busyThenHanging();
    const clock = new TestClock();
    const resilience = createResilience({ clock, fetch, retry: false, timeout: { total: 5_000 }, fallback: chains });
    const error = await clock.run(resilience.fetch(`${PRIMARY}/x`)).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "TimeoutError", phase: "total" });
    expect(clock.now()).toBe(5_000);
    expect(answered[0]?.body?.locked).toBe(true);
  });
});

describe("a chain that stops before its last endpoint", () => {
  it("says where it stopped and why, not that every endpoint failed", async () => {
    const sent: string[] = [];
    const resilience = createResilience({
      clock: new TestClock(),
      retry: false,
      fetch: async (input: RequestInfo | URL) => {
        sent.push(String(input));
        throw new TypeError("fetch failed"); // a dropped connection: the POST may have been processed
      },
      fallback: fallback([
        {
          name: "images",
          endpoints: [
            { name: "primary", url: PRIMARY },
            { name: "backup", url: BACKUP },
          ],
        },
      ]),
    });
    const error = await resilience.fetch(`${PRIMARY}/x`, { method: "POST", body: "{}" }).catch((e: unknown) => e);
    expect(sent).toHaveLength(1);
    expect((error as Error).message).toBe(
      'fallback chain "images" stopped after "primary", which may have processed the request (only one with an Idempotency-Key moves on) (primary: fetch failed)',
    );
  });

  it("does not answer with an earlier endpoint's 503 after a later one may have processed a keyless POST", async () => {
    // The 503 would say "declined, send it again" to the caller, or to a layer around this one.
    const sent: string[] = [];
    const answers: Response[] = [];
    const chain = fallback([
      {
        name: "images",
        endpoints: [
          { name: "primary", url: PRIMARY },
          { name: "backup", url: BACKUP },
          { name: "third", url: "https://third.example/v1" },
        ],
      },
    ]);
    const resilience = createResilience({
      clock: new TestClock(),
      retry: false,
      fetch: async (input: RequestInfo | URL) => {
        sent.push(String(input));
        if (String(input).startsWith(PRIMARY)) {
          const busy = new Response("busy", { status: 503 });
          answers.push(busy);
          return busy;
        }
        throw new TypeError("fetch failed"); // the connection dropped after the POST went out
      },
      fallback: chain,
    });
    const error = await resilience.fetch(`${PRIMARY}/x`, { method: "POST", body: "{}" }).catch((e: unknown) => e);
    expect(sent).toEqual([`${PRIMARY}/x`, `${BACKUP}/x`]);
    expect(error).toMatchObject({ name: "FallbackExhaustedError" });
    expect((error as Error).message).toBe(
      'fallback chain "images" stopped after "backup", which may have processed the request (the answer "primary" gave before it is not returned, as it would have the request sent again) (primary: status 503; backup: fetch failed)',
    );
    expect(answers[0]?.bodyUsed || answers[0]?.body?.locked).toBe(true); // released
  });

  it("still answers with the earlier 503 when the later endpoint surely got nothing, or the request may go twice", async () => {
    for (const [init, refused] of [
      [{ method: "POST", body: "{}" }, true],
      [{ method: "PUT", body: "{}" }, false],
      [{ method: "POST", body: "{}", headers: { "idempotency-key": "k1" } }, false],
    ] as const) {
      const resilience = createResilience({
        clock: new TestClock(),
        retry: false,
        fetch: async (input: RequestInfo | URL) => {
          if (String(input).startsWith(PRIMARY)) return new Response("busy", { status: 503 });
          // Refused: nothing reached the server. Otherwise a drop after the request went out.
          throw refused
            ? Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } })
            : new TypeError("fetch failed");
        },
        fallback: fallback([
          {
            name: "images",
            endpoints: [
              { name: "primary", url: PRIMARY },
              { name: "backup", url: BACKUP },
            ],
          },
        ]),
      });
      const response = await resilience.fetch(`${PRIMARY}/x`, init);
      expect(response.status).toBe(503);
      expect(getResilienceInfo(response)?.endpoint).toBe("primary");
    }
  });

  it("says the body could go only once when the request had a key", async () => {
    const sent: string[] = [];
    const resilience = createResilience({
      clock: new TestClock(),
      retry: false,
      fetch: async (input: RequestInfo | URL) => {
        sent.push(String(input));
        throw new TypeError("fetch failed");
      },
      fallback: fallback([
        {
          name: "images",
          endpoints: [
            { name: "primary", url: PRIMARY },
            { name: "backup", url: BACKUP },
          ],
        },
      ]),
    });
    const body = new ReadableStream({ start: (c) => c.close() });
    const init = { method: "POST", body, duplex: "half", headers: { "idempotency-key": "k1" } } as RequestInit;
    const error = await resilience.fetch(`${PRIMARY}/x`, init).catch((e: unknown) => e);
    expect(sent).toHaveLength(1);
    expect((error as Error).message).toBe(
      'fallback chain "images" stopped after "primary", which may have processed the request (its body could be sent only once) (primary: fetch failed)',
    );
  });
});
