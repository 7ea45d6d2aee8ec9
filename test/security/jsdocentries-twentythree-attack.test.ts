/**
 * Outside-in attack on the JSDoc of the opt-in entries' exports. Docs:
 * `DegradationRule.match` ("URL prefix the rule applies to; omitted, it
 * applies to every request"), docs/degradation.md on rules ("per URL
 * prefix (`match`, the longest wins …) or globally"), the `stream` fault's
 * JSDoc ("default 10 ms of real time"), `adjustParameters`' example, the
 * `EndpointRequest` fields ("a copy per endpoint", "A copy: edit it
 * freely"), `TestClock.advance` ("firing every timer due on the way, in
 * order"), `failureResponse` (its three statuses).
 * How: `createResilience` from the root entry with `degradation(…)` and
 * `fallback(…)`, a recording transport; the testing kit's `stream` fault
 * called directly; `TestClock`; vitest fake timers for real-time waits.
 * Paths: plain call with a JSON body (rewrite by degradation), fallback chain
 * with `transform` and `respond` endpoints, `resilience.degradation.adjust`,
 * the fault builders without MSW, `failureResponse` on a chain's error.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: two rules without `match`, or with the same one, are a `ConfigError`; the JSDoc
 * of `match` now says one rule applies to a request, as docs/degradation.md does, and that of `stream` that its
 * waits are on `clock` when one is given):
 * 1. src/degradation/degradation-options.ts JSDoc of `DegradationRule.match`
 *    "URL prefix the rule applies to; omitted, it applies to every request."
 *    Observed: with two rules without `match` (`{ quality }`, then
 *    `{ steps }`), only the first is ever used: at `medium` a body
 *    `{"quality":1,"steps":50}` goes out as `{"quality":0.8,"steps":50}`,
 *    steps not capped to 30; the second rule applies to no request and no
 *    `ConfigError` says so.
 * 2. Same sentence, against docs/degradation.md's "the longest wins": a rule
 *    without `match` does not apply to a request that a scoped rule matches.
 *    Observed: rules `[{ params: { quality } }, { match: "https://gen.example/v1",
 *    params: { steps } }]` at `medium` send `{"quality":1,"steps":30}` to
 *    `https://gen.example/v1/images`: the global rule's quality is not
 *    rewritten (JSDoc says 0.8), as the docs' one-rule-wins reading says.
 * 3. src/testing/faults.ts JSDoc of `stream` "with `breakAfter: n` it sends n
 *    chunks and then, `interval` (default 10 ms of real time) later, fails
 *    mid-body". Observed: given a `clock` (a `TestClock`), the default break
 *    waits 10 ms on that clock, not real time: after 10 ms (and 1 s) of real
 *    (fake-timer) time the read is still pending and `clock.pending()` is 1.
 *
 * Held (plain `it`):
 * - `adjust` example at `medium` ({ quality: 0.8, resolution: "720p",
 *   steps: 30, model: "standard" }), unknown fields passed through.
 * - `EndpointRequest.body` "a copy per endpoint" and `headers` "A copy": a
 *   `transform` editing both in place leaves the next endpoint's view intact.
 * - `TestClock.advance`: timers due on the way fire in time order (ties in
 *   scheduling order), including one a callback schedules inside the span.
 * - `failureResponse`: a chain whose endpoints all had open circuits is a
 *   503 with `Retry-After` between 1 s and a day.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { failureResponse } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { type EndpointRequest, fallback } from "../../src/fallback/index.ts";
import { CircuitOpenError, createResilience, FallbackExhaustedError } from "../../src/index.ts";
import { stream, TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

const body = JSON.stringify({ quality: 1, steps: 50 });

describe("DegradationRule.match: omitted, it applies to every request", () => {
  it("a second rule without match, or one with the same match, is a ConfigError naming degradation.rules (it would never apply)", () => {
    const twins = [
      [{ params: { quality: "quality" } }, { params: { steps: "steps" } }],
      [
        { match: "https://gen.example/v1", params: { quality: "quality" } },
        { match: "HTTPS://Gen.example/v1", params: { steps: "steps" } },
      ],
    ] as const;
    for (const rules of twins)
      expect(() => degradation({ rules })).toThrow(
        "degradation.rules: expected one rule per `match` (a second never applies)",
      );
    // Another prefix, or a rule without `match` beside scoped ones, is fine.
    expect(() =>
      degradation({
        rules: [
          { params: { quality: "quality" } },
          { match: "https://gen.example/v1", params: { steps: "steps" } },
          { match: "https://gen.example/v2", params: { steps: "steps" } },
        ],
      }),
    ).not.toThrow();
  });

  it("one rule applies to a request: a scoped rule that matches is used alone, the rule without match elsewhere", async () => {
    const { fetch, sent } = recordingFetch();
    const resilience = createResilience({
      fetch,
      degradation: degradation({
        rules: [{ params: { quality: "quality" } }, { match: "https://gen.example/v1", params: { steps: "steps" } }],
      }),
    });
    resilience.degradation.setLevel("medium");
    for (const url of ["https://gen.example/v1/images", "https://gen.example/v2/images"])
      await resilience.fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
    // The JSDoc said a rule without `match` "applies to every request"; it applies where no `match` does.
    expect(sent.map((s) => JSON.parse(s.body as string))).toEqual([
      { quality: 1, steps: 30 },
      { quality: 0.8, steps: 50 },
    ]);
  });

  it("a single rule without match applies to every request (held)", async () => {
    const { fetch, sent } = recordingFetch();
    const resilience = createResilience({
      fetch,
      degradation: degradation({ rules: [{ params: { steps: "steps" } }] }),
    });
    resilience.degradation.setLevel("low");
    for (const url of ["https://gen.example/v1/images", "https://other.example/x?y=1"]) {
      await resilience.fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
    }
    expect(sent.map((s) => JSON.parse(s.body as string))).toEqual([
      { quality: 1, steps: 20 },
      { quality: 1, steps: 20 },
    ]);
  });
});

describe("stream fault: breakAfter breaks `interval` (default 10 ms) later, on `clock` when one is given", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("with a clock given, the break waits on that clock (the JSDoc said real time): none comes in real time, it comes at 10 ms of the clock", async () => {
    vi.useFakeTimers();
    const clock = new TestClock();
    const fault = stream(["a", "b"], { breakAfter: 1, clock });
    const response = await fault(new Request("https://gen.example/v1/stream"), { attempt: 1 });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("a");
    let outcome: "pending" | "broke" | "more" = "pending";
    reader.read().then(
      () => {
        outcome = "more";
      },
      () => {
        outcome = "broke";
      },
    );
    await vi.advanceTimersByTimeAsync(1_000);
    expect({ outcome, waitingOnTestClock: clock.pending() }).toEqual({ outcome: "pending", waitingOnTestClock: 1 });
    // The TestClock's `advance` lets work run between timers on real ones.
    vi.useRealTimers();
    await clock.advance(9);
    expect(outcome).toBe("pending");
    await clock.advance(1);
    await flush();
    expect(outcome).toBe("broke");
  });

  it("without a clock, the default break comes 10 ms of real time later (held)", async () => {
    vi.useFakeTimers();
    const fault = stream(["a", "b"], { breakAfter: 1 });
    const response = await fault(new Request("https://gen.example/v1/stream"), { attempt: 1 });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    let outcome: "pending" | "broke" | "more" = "pending";
    reader.read().then(
      () => {
        outcome = "more";
      },
      () => {
        outcome = "broke";
      },
    );
    await vi.advanceTimersByTimeAsync(9);
    expect(outcome).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome).toBe("broke");
  });
});

describe("held promises", () => {
  it("adjust(params) at medium gives the JSDoc example's values, unknown fields passed through", () => {
    const resilience = createResilience({ fetch: recordingFetch().fetch, degradation: degradation() });
    resilience.degradation.setLevel("medium");
    expect(
      resilience.degradation.adjust({ quality: 1, resolution: "1080p", steps: 50, model: "premium", seed: 7 }),
    ).toEqual({ quality: 0.8, resolution: "720p", steps: 30, model: "standard", seed: 7 });
  });

  it("EndpointRequest body and headers are copies per endpoint: a transform's in-place edits reach no other endpoint", async () => {
    const seen: EndpointRequest[] = [];
    const snapshot: Array<{ body: unknown; auth: string | null }> = [];
    const { fetch } = recordingFetch(() => new Response("down", { status: 503 }));
    const resilience = createResilience({
      fetch,
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            {
              name: "primary",
              url: "https://gen.example/v1",
              transform: (req) => {
                snapshot.push({ body: structuredClone(req.body), auth: req.headers.get("authorization") });
                (req.body as Record<string, unknown>).steps = 999;
                req.headers.set("authorization", "Bearer changed");
                return req;
              },
            },
            {
              name: "cached",
              respond: (req) => {
                seen.push(req);
                snapshot.push({ body: structuredClone(req.body), auth: req.headers.get("authorization") });
                return Response.json({ ok: true });
              },
            },
          ],
        },
      ]),
    });
    const response = await resilience.fetch("https://gen.example/v1/images", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer mine", "idempotency-key": "k1" },
      body,
    });
    expect(await response.json()).toEqual({ ok: true });
    expect(seen).toHaveLength(1);
    expect(snapshot).toEqual([
      { body: { quality: 1, steps: 50 }, auth: "Bearer mine" },
      { body: { quality: 1, steps: 50 }, auth: "Bearer mine" },
    ]);
  });

  it("TestClock.advance fires every timer due on the way, in order, including one scheduled inside the span", async () => {
    const clock = new TestClock(1_000);
    const fired: Array<[string, number]> = [];
    clock.setTimer(() => fired.push(["c", clock.now()]), 30);
    clock.setTimer(() => {
      fired.push(["a", clock.now()]);
      clock.setTimer(() => fired.push(["inner", clock.now()]), 5);
    }, 10);
    clock.setTimer(() => fired.push(["b", clock.now()]), 10);
    clock.setTimer(() => fired.push(["late", clock.now()]), 51);
    await clock.advance(50);
    expect(fired).toEqual([
      ["a", 1_010],
      ["b", 1_010],
      ["inner", 1_015],
      ["c", 1_030],
    ]);
    expect(clock.now()).toBe(1_050);
    expect(clock.pending()).toBe(1);
  });

  it("failureResponse: every endpoint's circuit open is a 503 with Retry-After between 1 s and a day", () => {
    const now = 1_000_000;
    const error = new FallbackExhaustedError("gen", {
      primary: new CircuitOpenError("gen.example", now + 90_500),
      backup: new CircuitOpenError("backup.example", now + 10 * 86_400_000),
    });
    const response = failureResponse(error, now);
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("91");
    const far = failureResponse(
      new FallbackExhaustedError("gen", { primary: new CircuitOpenError("gen.example", now + 10 * 86_400_000) }),
      now,
    );
    expect(far.headers.get("retry-after")).toBe("86400");
  });
});
