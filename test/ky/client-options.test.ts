import { readFileSync } from "node:fs";
import ky from "ky";
import { describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** `createClient`'s own reading of its options: what is a layer, and what cannot be read. */
function refusal(make: () => unknown): string | undefined {
  try {
    make();
  } catch (error) {
    return `${error instanceof ConfigError ? "ConfigError" : "other"}: ${(error as Error).message}`;
  }
  return undefined;
}

describe("createClient: its options", () => {
  it("names the option that cannot be read, past the ones that are merely unset", () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(refusal(() => createClient({ searchParams: undefined, timeout: null, headers: proxy } as never))).toBe(
      "ConfigError: headers: expected a value that can be read, received a value that cannot be read",
    );
  });

  it("takes as a layer only an object with fetch() and health(); anything else is options for one", async () => {
    // A function is no options object, even one carrying fetch and health.
    const fn = Object.assign(() => {}, { fetch: async () => new Response(), health() {} });
    expect(refusal(() => createClient({ resilience: fn } as never))).toBe(
      "ConfigError: resilience: expected object, received a function",
    );
    // health() alone: options, with an unknown key.
    expect(refusal(() => createClient({ resilience: { health() {} } } as never))).toBe(
      'ConfigError: resilience: unknown option "health"',
    );
    // fetch alone is the `fetch` option of a new layer: its 503 is retried.
    let calls = 0;
    const fetch = async () => new Response(null, { status: ++calls === 1 ? 503 : 200 });
    const clock = new TestClock(0);
    const api = createClient({ resilience: { fetch, clock } });
    const response = await clock.run(api.get("https://a.example/x"));
    expect([response.status, calls]).toEqual([200, 2]);
  });
});

describe("createClient: extend with nothing", () => {
  it("extends with nothing as ky does: no options, or a function that returns none", async () => {
    const client = createClient({
      prefix: "https://api.example/",
      resilience: {
        retry: false,
        fetch: async (input) => new Response(input instanceof Request ? input.url : String(input)),
      },
    });
    const bare = (client.extend as (options?: unknown) => typeof client)();
    expect(await bare.get("a").text()).toBe("https://api.example/a");
    const none = client.extend(() => undefined as never);
    expect(await none.get("b").text()).toBe("https://api.example/b");
  });

  it("refuses options that are no object as ky does, naming what they are: extend, a function's result, create, a call", () => {
    const client = createClient({ resilience: { retry: false, fetch: async () => new Response("sent") } });
    const kyClient = ky.create({ fetch: async () => new Response("sent") });
    const message = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return `${(error as Error).name}: ${(error as Error).message}`;
      }
      return "accepted";
    };
    const cases: Array<[string, (k: typeof client) => unknown]> = [
      ["a number", (k) => k.extend(5 as never)],
      ["what a function returns", (k) => k.extend(() => 5 as never)],
      ["an array", (k) => k.extend([] as never)],
      ["null to create", (k) => k.create(null as never)],
      ["a string to create", (k) => k.create("x" as never)],
    ];
    for (const [what, run] of cases) {
      expect(
        message(() => run(kyClient)),
        what,
      ).toBe("TypeError: The `options` argument must be an object");
      expect(
        message(() => run(client)),
        what,
      ).toMatch(/^TypeError: ky: the `options` argument must be an object, got /);
    }
    expect(message(() => client.extend(5 as never))).toBe(
      "TypeError: ky: the `options` argument must be an object, got number",
    );
    expect(message(() => client.create(null as never))).toBe(
      "TypeError: ky: the `options` argument must be an object, got null",
    );
    // A call's, at once, as ky throws it.
    expect(message(() => kyClient.get("https://api.example/x", null as never))).toBe(
      "TypeError: The `options` argument must be an object",
    );
    expect(message(() => client.get("https://api.example/x", null as never))).toBe(
      "TypeError: ky: the `options` argument must be an object, got null",
    );
  });
});

describe("createClient: ky's own wait for an error body", () => {
  it("throws HTTPError only after ky's 10 s for an error body that never ends, timeout off or not", async () => {
    vi.useFakeTimers();
    try {
      const endless = () => new Response(new ReadableStream({ pull: () => new Promise(() => {}) }), { status: 503 });
      const api = createClient({ resilience: { retry: false, fetch: async () => endless() } });
      let settled: string | undefined;
      const call = api.get("https://gen.example/v1/jobs").then(
        () => "resolved",
        (error: Error) => error.name,
      );
      void call.then((name) => {
        settled = name;
      });
      await vi.advanceTimersByTimeAsync(9_990);
      expect(settled).toBeUndefined();
      await vi.advanceTimersByTimeAsync(20);
      expect(await call).toBe("HTTPError");
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("createClient: a caller's signal that is not the platform's (a polyfill's)", () => {
  it("an abort during the layer's backoff ends the call with its reason; the transport never sees the polyfill", async () => {
    const listeners: Array<() => void> = [];
    const signal = {
      aborted: false,
      reason: undefined as unknown,
      addEventListener: (_: string, listener: () => void) => listeners.push(listener),
      removeEventListener: () => {},
    };
    const seen: unknown[] = [];
    const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
      seen.push(input instanceof Request ? input.signal : init?.signal);
      return new Response(null, { status: 503 });
    };
    const clock = new TestClock(0);
    const api = createClient({ resilience: { fetch, clock, retry: { initialDelay: 60_000, jitter: "none" } } });
    const call = api.get("https://gen.example/v1", { signal: signal as unknown as AbortSignal }).then(
      () => "resolved",
      (error: unknown) => error,
    );
    await clock.waitForTimers(1);
    const reason = new Error("user left");
    signal.aborted = true;
    signal.reason = reason;
    for (const listener of listeners) listener();
    // Before the fix, ky's `AbortSignal.any` took the polyfill without following it: the call waited out the backoff.
    expect(await call).toBe(reason);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(AbortSignal);
    expect(clock.pending()).toBe(0);
  });
});

describe("createClient, extend and create: a URLSearchParams as read when given", () => {
  it("keeps what a URLSearchParams said then: an edit afterwards changes no later call", async () => {
    const options = readFileSync(new URL("../../docs/options.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(options).toContain(
      "keep what they read then, so an edit to your objects afterwards changes nothing (plain objects and arrays are copied, a `URLSearchParams` the ky client is given too;",
    );
    const sent: string[] = [];
    const fetch = async (input: RequestInfo | URL) => {
      sent.push(new URL(input instanceof Request ? input.url : String(input)).search);
      return new Response("{}");
    };
    const given = new URLSearchParams({ page: "1" });
    const api = createClient({ resilience: { fetch, retry: false }, searchParams: given });
    const extendedParams = new URLSearchParams({ tier: "a" });
    const extended = api.extend({ searchParams: extendedParams });
    const createdParams = new URLSearchParams({ page: "7" });
    const created = api.create({ searchParams: createdParams });
    for (const params of [given, extendedParams, createdParams]) params.set("page", "99");
    await api.get("https://a.example/x");
    await extended.get("https://a.example/x");
    await created.get("https://a.example/x");
    expect(sent).toEqual(["?page=1", "?page=1&tier=a", "?page=7"]);
    expect(given.get("page")).toBe("99");
  });
});

/** A client on a layer that answers `{}` without retrying, counting what reached its transport. */
function countingClient() {
  let sent = 0;
  const api = createClient({
    resilience: {
      retry: false,
      fetch: async () => {
        sent++;
        return new Response("{}");
      },
    },
  });
  return { api, sent: () => sent };
}

describe("a call, extend and create: a misspelt `resilience`", () => {
  it("is refused at once, naming the key, as createClient refuses it, and nothing is sent", () => {
    const options = readFileSync(new URL("../../docs/options.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(options).toContain(
      "A call, `extend` and `create` refuse such a key too (it would go on to `fetch` unread), and `resilience` itself: they run on the client's layer.",
    );
    const { api, sent } = countingClient();
    const typo = { resilence: { retry: { maxAttempts: 9 } } } as never;
    const expected = 'ConfigError: resilence: unknown option "resilence", did you mean "resilience"?';
    expect(refusal(() => api.get("https://a.example/x", typo))).toBe(expected);
    expect(refusal(() => api.post("https://a.example/x", typo))).toBe(expected);
    expect(refusal(() => api("https://a.example/x", typo))).toBe(expected);
    expect(refusal(() => api.extend(typo))).toBe(expected);
    expect(refusal(() => api.extend(() => typo))).toBe(expected);
    expect(refusal(() => api.create(typo))).toBe(expected);
    expect(refusal(() => api.get("https://a.example/x", { Resiliance: 1 } as never))).toBe(
      'ConfigError: Resiliance: unknown option "Resiliance", did you mean "resilience"?',
    );
    expect(refusal(() => api.get("https://a.example/x", { resilience: {} } as never))).toBe(
      "ConfigError: resilience: give the layer's options to createClient: its calls, extend and create run on it",
    );
    expect(sent()).toBe(0);
  });

  it("is refused when an init hook sets it, or `resilience` itself, and nothing is sent", async () => {
    const retry = readFileSync(new URL("../../docs/retry.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(retry).toContain(
      "an `init` hook that sets either, or `resilience` or a key one or two letters from it, is refused when the call is made",
    );
    const { api, sent } = countingClient();
    const settle = async (key: string) => {
      try {
        await api.get("https://a.example/x", {
          hooks: {
            init: [
              (options) => {
                (options as Record<string, unknown>)[key] = { retry: false };
              },
            ],
          },
        });
        return "sent";
      } catch (error) {
        return `${error instanceof ConfigError ? "ConfigError" : "other"}: ${(error as Error).message}`;
      }
    };
    expect(await settle("resilence")).toBe(
      'ConfigError: resilence: unknown option "resilence", did you mean "resilience"?',
    );
    expect(await settle("resilience")).toBe(
      "ConfigError: resilience: give the layer's options to createClient: its calls, extend and create run on it",
    );
    expect(sent()).toBe(0);
    expect(await settle("context2")).toBe("sent");
  });
});
