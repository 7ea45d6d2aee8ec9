/**
 * Outside-in attack on the latest fixes (ecdf1a6..HEAD): `redactUrlsIn` (a
 * URL in text runs to the next space, keeping a query's closing
 * punctuation) and `redactErrorChain` (messages, stacks, causes; an error
 * whose message cannot be set replaced); the classifier's `URL_IN_TEXT`; the
 * `data:`/`blob:` pass-through; a hedged chain's `fallback` event `next`;
 * `CircuitBreaker.execute` with a signal aborted already; the kit's
 * `corsPreflight(…).respond` (credentials, methods as written, forbidden
 * headers ignored). Public entries only; time moves only on a `TestClock`
 * (the one real-time measure is the redaction's CPU time). Each `it.fails`
 * asserts the documented behaviour and fails while the defect exists.
 *
 * Defects found (each an `it.fails` on the code it was written against; 1–4
 * fixed; 5 and 6 are MSW's limits in Node, now documented and pinned as such):
 * 1. ReDoS (regression): the new query rule `\S*?([)'",.;:\]]*)(?=\s|$)` is
 *    quadratic: a hostile endpoint's body echoed by `validate` into a
 *    `fallback` reason (`https://x/?` + 40 KB of dots + `a`) blocks the event
 *    loop for seconds (the old `[^\s)'"]*` was linear; 100 KB takes ~10 s).
 * 2. A `data:` URL the URL parser reads with a leading C0 control or an inner
 *    tab (`"\x01data:,hi"`, `"da\tta:,hi"`) still gets a breaker keyed "" in
 *    `health()` and a `request` event (LOCAL_URL only skips `\s`).
 * 3. ky's refusal of `https:user:pass@host/?api_key=…` (no slashes, which the
 *    URL parser and Node read as https) quotes user, password and key whole:
 *    `redactUrlsIn` only knows `scheme://`.
 * 4. A URL whose password holds `@` (`https://proxy:p@ss@proxy.example/`)
 *    keeps the password's tail (`ss@`) in a `RetryExhaustedError`'s cause
 *    and in ky's refusal: the userinfo rule stops at the first `@`.
 * 5. `corsPreflight(…).respond` does not refuse `credentials: "include"` in
 *    Node (MSW hands it a Request whose `credentials` is "same-origin"),
 *    though the docs say it judges so "in any environment".
 * 6. `corsPreflight(…).respond` and `upstream("PATCH", …)`: a `patch`
 *    request never reaches the upstream (MSW's `http.patch` does not match
 *    it), so `count()` leaves out the refused request the docs say it counts.
 *
 * Questionable, not pinned:
 * - `redactErrorChain` replaces a frozen cause by a plain `Error`: its
 *   `instanceof TypeError` and own stack frames are lost (documented). Its
 *   `code` (`ECONNREFUSED`) was lost too; it is now kept.
 * - A stack frame whose URL has a query (Vite's `app.ts?t=123:10:5`) loses
 *   its line and column along with the query.
 * - docs/testing.md says a delay past 2^31 − 1 ms "waits that long, as
 *   `setTimeout`'s does": `setTimeout` fires such a timer at once (Node and
 *   browsers); the library's own `systemClock` clamps, as the TestClock now
 *   does; the kit's `latency()` without a clock uses raw `setTimeout`.
 * - `json(body, { status: 204 })` passed the builder's check and failed
 *   inside MSW (a null-body status with a body); now refused when built.
 * - `respond` refuses `credentials: "include"` even for a same-origin page
 *   request (it knows no origin), where a browser needs no CORS at all.
 * - In a hedged run whose newer hedge fails first, `next` names the primary
 *   still running (an endpoint that started before `from`).
 */
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type RequestEvent, type StandardSchemaLike } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker, FallbackChain, type ResolvedBreakerPolicy } from "../../src/policies/index.ts";
import { corsPreflight, json, TestClock, upstream } from "../../src/testing/index.ts";
import { useMswServer } from "../helpers/msw.ts";

const server = useMswServer();

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

function rejectingTransport(make: () => unknown) {
  return async (_input: RequestInfo | URL, _init?: RequestInit): Promise<Response> => {
    throw make();
  };
}

/** A validator that echoes the value it refused, as valibot's and zod's literal messages do. */
const doneLiteral = {
  "~standard": {
    version: 1,
    vendor: "attack",
    validate: (value: unknown) => {
      const status = (value as { status?: unknown }).status;
      return status === "done"
        ? { value }
        : { issues: [{ message: `Invalid type: Expected "done" but received "${String(status)}"`, path: ["status"] }] };
    },
  },
} as unknown as StandardSchemaLike;

function chainLayer(bodyOfA: unknown) {
  const fetchImpl = async (input: RequestInfo | URL): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    return url.startsWith("https://a.example") ? Response.json(bodyOfA) : Response.json({ status: "done" });
  };
  return createResilience({
    fetch: fetchImpl,
    clock: new TestClock(0),
    retry: { maxAttempts: 1 },
    fallback: fallback([
      {
        name: "gen",
        endpoints: [
          { name: "a", url: "https://a.example/v1", validate: doneLiteral },
          { name: "b", url: "https://b.example/v1" },
        ],
      },
    ]),
  });
}

describe("redactUrlsIn: what it cuts", () => {
  it("control: several URLs on one line (quotes, brackets, a comma, a parenthesis in the path) all lose their keys, the words stay", async () => {
    const message =
      'failed "https://a.example/x?key=K1", then https://b.example/y?token=K2, (https://c.example/wiki/A_(b)?api_key=K3) and [https://d.example/z?q=a+b&sig=K4] done';
    const resilience = createResilience({
      fetch: rejectingTransport(() => new TypeError(message)),
      retry: { maxAttempts: 1 },
    });
    const error = (await rejection(resilience.fetch("https://h.example/"))) as Error;
    const cause = error.cause as Error;
    for (const text of [error.message, cause.message, String(cause.stack)]) {
      expect(text).not.toMatch(/K1|K2|K3|K4/);
    }
    expect(cause.message).toBe(
      'failed "https://a.example/x", then https://b.example/y, (https://c.example/wiki/A_(b)) and [https://d.example/z] done',
    );
  });

  it("control: a frozen cause is replaced by an Error of the same name, its message cut", async () => {
    const resilience = createResilience({
      fetch: rejectingTransport(() =>
        Object.freeze(
          Object.assign(new TypeError("connect refused for https://h.example/?api_key=K"), { code: "ECONNREFUSED" }),
        ),
      ),
      retry: { maxAttempts: 1 },
    });
    const error = (await rejection(resilience.fetch("https://h.example/"))) as Error;
    const cause = error.cause as Error & { code?: string };
    expect(cause.name).toBe("TypeError");
    expect(cause.message).toBe("connect refused for https://h.example/");
    // A plain Error of the same name and code: the class is gone, the code kept (it was lost when written).
    expect(cause.code).toBe("ECONNREFUSED");
    expect(cause instanceof TypeError).toBe(false);
  });

  // SECURITY.md, "No secret in events, errors…": "URLs lose their userinfo,
  // query string and fragment before they reach any of them (an error's
  // causes included: a platform error that quotes the URL has it cut…)".
  it("a password holding @ is cut whole from a platform error's message (cause)", async () => {
    const resilience = createResilience({
      fetch: rejectingTransport(
        () => new TypeError("error sending request for url (https://proxy:p@ss@proxy.example/): connection refused"),
      ),
      retry: { maxAttempts: 1 },
    });
    const error = (await rejection(resilience.fetch("https://h.example/"))) as Error;
    expect(error.message).not.toContain("ss@");
    // Fails here: the cause reads "…(https://ss@proxy.example/)…".
    expect((error.cause as Error).message).toBe(
      "error sending request for url (https://proxy.example/): connection refused",
    );
  });

  // Regression of 0a67bee: the previous rule (`[?#][^\s)'"]*`) was linear.
  // SECURITY.md: "No secret in events…": the reason is cut; it must not cost
  // the event loop seconds either (a hostile endpoint controls the body).
  it("a hostile endpoint's 40 KB value echoed into a fallback reason is cut in linear time", async () => {
    const resilience = chainLayer({ status: `https://x.example/?${".".repeat(40_000)}a` });
    const reasons: string[] = [];
    resilience.on("fallback", (e) => reasons.push(e.reason));
    const started = performance.now();
    const response = await resilience.fetch("https://a.example/v1/jobs");
    const took = performance.now() - started;
    expect(response.status).toBe(200);
    expect(reasons[0]).toMatch(/^invalid body at status: Invalid type/);
    expect(reasons[0]).not.toContain("....");
    // A linear pass over 40 KB takes well under 5 ms: 500 ms is generous. It takes seconds.
    expect(took).toBeLessThan(500);
  }, 30_000);

  it("control: a short hostile value is cut quickly and the chain moves on", async () => {
    const resilience = chainLayer({ status: "https://x.example/?api_key=K, more" });
    const reasons: string[] = [];
    resilience.on("fallback", (e) => reasons.push(e.reason));
    const response = await resilience.fetch("https://a.example/v1/jobs");
    expect(await response.json()).toEqual({ status: "done" });
    expect(reasons).toEqual([
      'invalid body at status: Invalid type: Expected "done" but received "https://x.example/, more"',
    ]);
  });

  it("control: the classifier reads no TLS failure in a URL running to the next space", async () => {
    // A POST without a key moves on only when surely not sent; `/ssl/(x)` must not read as a TLS failure.
    const seen: string[] = [];
    const resilience = createResilience({
      fetch: async (input) => {
        const url = input instanceof Request ? input.url : String(input);
        seen.push(url);
        if (url.startsWith("https://a.example"))
          throw new TypeError("fetch failed for https://a.example/ssl/(certificate)");
        return new Response("ok");
      },
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    await rejection(resilience.fetch("https://a.example/v1/jobs", { method: "POST", body: "{}" }));
    expect(seen).toEqual(["https://a.example/v1/jobs"]);
  });
});

describe("ky's refusal of a URL with credentials", () => {
  // SECURITY.md: "…and so does the message of ky's own errors through
  // `createClient`…"; CHANGELOG: "and so is the platform's refusal of a URL
  // with `user:pass@` that ky throws at once".
  it("https:user:pass@host (no slashes, read as https) loses user, password and key", async () => {
    const api = createClient({ resilience: { fetch: async () => new Response("ok") } });
    const error = (await rejection(
      Promise.resolve().then(() => api.get("https:user:pass@h.example/x?api_key=S3CR3T")),
    )) as Error;
    expect(error.message).toMatch(/credentials/);
    // Fails: "…includes credentials: https:user:pass@h.example/x?api_key=S3CR3T".
    expect(error.message).not.toMatch(/S3CR3T|user:pass/);
  });

  it("a password holding @ loses its tail too", async () => {
    const api = createClient({ resilience: { fetch: async () => new Response("ok") } });
    const error = (await rejection(
      Promise.resolve().then(() => api.get("https://user:p@ss@h.example/x?api_key=S3CR3T")),
    )) as Error;
    expect(error.message).not.toContain("S3CR3T");
    // Fails: "…includes credentials: https://ss@h.example/x".
    expect(error.message).not.toContain("ss@");
  });

  it("control: an HTTPError's message and stack lose the query", async () => {
    const api = createClient({ resilience: { fetch: async () => new Response("no", { status: 404 }) } });
    const error = (await rejection(
      Promise.resolve().then(() => api.get("https://h.example/x?api_key=S3CR3T").text()),
    )) as Error;
    expect(error.message).not.toContain("S3CR3T");
    expect(String(error.stack)).not.toContain("S3CR3T");
  });
});

describe("data: and blob: URLs go to fetch as they are", () => {
  function layer() {
    const inputs: unknown[] = [];
    const resilience = createResilience({
      fetch: async (input) => {
        inputs.push(input);
        return new Response("hi");
      },
    });
    const events: RequestEvent[] = [];
    resilience.on("request", (e) => events.push(e));
    return { resilience, inputs, events };
  }

  it("control: data:, a URL object, a Request and blob: make no breaker and no event", async () => {
    const { resilience, inputs, events } = layer();
    for (const input of [
      "data:,hi",
      " DATA:,hi",
      new URL("data:,hi"),
      new Request("data:,hi"),
      "blob:https://a.example/1",
    ]) {
      await resilience.fetch(input);
    }
    expect(inputs).toHaveLength(5);
    expect(events).toHaveLength(0);
    expect(Object.keys(resilience.health().breakers)).toEqual([]);
    // A signal aborted already is refused, data: or not.
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    await expect(resilience.fetch("data:,x", { signal: controller.signal })).rejects.toThrow("gone");
  });

  // docs/retry.md: "A `data:` or `blob:` URL reads no network …: it goes to
  // fetch as it is, with no breaker, retry, timeout or event." CHANGELOG: it
  // "got a breaker keyed `""` in `health()` and a `request` event".
  it("a data: URL the URL parser reads past a leading control or an inner tab makes no breaker or event", async () => {
    const { resilience, inputs, events } = layer();
    for (const input of ["\x01data:,hi", "da\tta:,hi"]) {
      expect(new URL(input).protocol).toBe("data:");
      await resilience.fetch(input);
    }
    expect(inputs).toHaveLength(2);
    // Fails here: two `request` events (key ""), and health() lists a breaker keyed "".
    expect(events).toHaveLength(0);
    expect(Object.keys(resilience.health().breakers)).toEqual([]);
  });
});

describe("hedged fallback event next, breaker execute", () => {
  it("control: next names the hedge already running when the primary fails", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<number, string>("c", { clock });
    const later = (ms: number, fail: boolean, signal?: AbortSignal) =>
      new Promise<string>((resolve, reject) => {
        const cancel = clock.setTimer(() => (fail ? reject(new Error("down")) : resolve("ok")), ms);
        signal?.addEventListener("abort", () => {
          cancel();
          reject(signal.reason);
        });
      });
    chain.add((_i, { signal }) => later(100, true, signal), { name: "a" });
    chain.add((_i, { signal }) => later(300, false, signal), { name: "b" });
    chain.add((_i, { signal }) => later(10, false, signal), { name: "c" });
    const events: Array<{ from: string; next: string | undefined }> = [];
    const result = await clock.run(
      chain.run(1, { hedgeDelay: 50, onFallback: (e) => events.push({ from: e.from, next: e.next }) }),
    );
    // a fails at 100 while b (started at 50) runs: the run carries on with b; c starts at 150 and wins.
    expect(events[0]).toEqual({ from: "a", next: "b" });
    expect(result.ok).toBe(true);
  });

  it("control: execute with a signal aborted already leaves a half-open breaker's probe to the next caller", async () => {
    const clock = new TestClock(0);
    const policy: ResolvedBreakerPolicy = {
      failureThreshold: 1,
      successThreshold: 1,
      timeout: 1_000,
      halfOpenMaxCalls: 1,
      timeWindow: 5_000,
      probeTimeout: 700,
      failureRate: undefined,
      minimumCalls: 10,
    };
    const breaker = new CircuitBreaker("k", policy, clock);
    await breaker.execute(() => Promise.reject(new Error("down"))).catch(() => {});
    expect(breaker.state).toBe("open");
    await clock.advance(1_000);
    expect(breaker.state).toBe("half_open");
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    let ran = false;
    await expect(
      breaker.execute(() => {
        ran = true;
        return "x";
      }, controller.signal),
    ).rejects.toThrow("gone");
    expect(ran).toBe(false);
    await expect(breaker.execute(() => "probe")).resolves.toBe("probe");
    expect(breaker.state).toBe("closed");
  });
});

describe("corsPreflight(…).respond in Node", () => {
  // docs/browsers-and-cors.md: "MSW in Node hands over [a request] rebuilt
  // from what went on the wire: it reads `credentials` "same-origin" …, and
  // a lower-case `patch` reaches no handler at all". When written, these
  // asserted the refusals the docs then promised "in any environment"; the
  // promise could not be kept in Node, so the docs now name the limit, and
  // these fail should MSW ever hand more over (time to say so again).
  it('credentials: "include" reaches respond as "same-origin" in Node, so passes', async () => {
    const cors = corsPreflight();
    const api = upstream("GET", "https://cors.example/y", cors.respond(json({ ok: true })));
    server.use(api.handler);
    const outcome = await fetch("https://cors.example/y", { credentials: "include" }).then(
      (r) => r.status,
      (e: unknown) => (e as Error).name,
    );
    expect(outcome).toBe(200);
    expect(api.requests[0]?.credentials).toBe("same-origin");
    // Handed the caller's own request, respond refuses it.
    const direct = await cors.respond(json({ ok: true }))(
      new Request("https://cors.example/y", { credentials: "include" }),
      { attempt: 1 },
    );
    expect(direct.type).toBe("error");
  });

  it("a lower-case patch reaches no handler in Node, upstream('PATCH') records nothing", async () => {
    const cors = corsPreflight();
    const api = upstream("PATCH", "https://cors.example/p", cors.respond(json({ ok: true })));
    server.use(api.handler);
    const outcome = await fetch("https://cors.example/p", { method: "patch" }).then(
      (r) => r.status,
      (e: unknown) => (e as Error).name,
    );
    expect(outcome).toBe("TypeError");
    expect(api.count()).toBe(0);
  });

  it("control: PATCH passes, forbidden headers are ignored, an unlisted header is refused but recorded", async () => {
    const cors = corsPreflight({ allowHeaders: ["content-type"] });
    const api = upstream("PATCH", "https://cors.example/q", cors.respond(json({ ok: true })));
    server.use(api.handler);
    const ok = await fetch("https://cors.example/q", {
      method: "PATCH",
      headers: { cookie: "a=b", "x-http-method-override": "TRACE", "content-type": "application/json" },
      body: "{}",
    });
    expect(ok.status).toBe(200);
    const refused = await fetch("https://cors.example/q", {
      method: "PATCH",
      headers: { "x-http-method-override": "PUT" },
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TypeError);
    expect(api.count()).toBe(2);
  });
});
