/**
 * A hop of a redirect the library follows, to a half-open host with a free
 * probe slot, takes that slot: the hop is the host's probe (docs/retry.md,
 * "Redirects"), and its own outcome settles the slot. A 5xx or 429 answer,
 * or an error, re-opens the host; any other answer, a redirect onward
 * included, is the probe's success; the caller's abort frees the slot.
 * (Until the twentieth session the hop was sent without a slot and its
 * outcome reached nothing but the first host's breaker.)
 */
import { describe, expect, it } from "vitest";
import { createResilience, isCircuitOpenError, type ResilienceOptions } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Answer, hostFetch } from "../helpers/host-fetch.ts";

const redirectTo =
  (location: string, code = 307): Answer =>
  () =>
    new Response(null, { status: code, headers: { location } });

/** A layer over stub hosts, with retries off; b's breaker opens at one failure and lets one probe through after 1 s. */
async function withHalfOpenB(answers: Record<string, Answer>, extra: ResilienceOptions = {}) {
  const clock = new TestClock(0);
  let bDown = true;
  const t = hostFetch({
    "a.example": redirectTo("https://b.example/x"),
    ...answers,
    "b.example": (request, n) =>
      bDown ? new Response("down", { status: 503 }) : (answers["b.example"]?.(request, n) ?? new Response("b")),
  });
  const layer = createResilience({
    clock,
    fetch: t.fetch,
    retry: false,
    breaker: { failureThreshold: 1, timeout: 1000, halfOpenMaxCalls: 1, successThreshold: 1 },
    ...extra,
  });
  await layer.fetch("https://b.example/open");
  expect(layer.health().breakers["b.example"]?.state).toBe("open");
  await clock.advance(1000);
  bDown = false;
  t.log.length = 0;
  const stateOf = (host: string) => layer.health().breakers[host]?.state;
  const outcome = (call: Promise<Response>) =>
    call.then(
      async (r) => `${r.status} ${await r.text()}`,
      (e: unknown) => (isCircuitOpenError(e) ? `CircuitOpenError ${e.key}` : (e as Error).name),
    );
  return { clock, t, layer, stateOf, outcome };
}

describe("a hop to a half-open host is that host's probe", () => {
  it("a 503 from the hop's host re-opens it (a is the redirect's sender: its success)", async () => {
    const { t, layer, stateOf, outcome } = await withHalfOpenB({
      "b.example": () => new Response("busy", { status: 503 }),
    });
    expect(await outcome(layer.fetch("https://a.example/x"))).toBe("503 busy");
    expect(t.log.map((r) => r.url)).toEqual(["https://a.example/x", "https://b.example/x"]);
    expect(stateOf("b.example")).toBe("open");
    // b is open again: the next call to it is refused, nothing sent.
    expect(await outcome(layer.fetch("https://b.example/y"))).toBe("CircuitOpenError b.example");
    expect(t.log).toHaveLength(2);
  });

  it("a network error on the hop re-opens the hop's host", async () => {
    const { layer, stateOf, outcome } = await withHalfOpenB({
      "b.example": () => {
        throw new TypeError("fetch failed");
      },
    });
    expect(await outcome(layer.fetch("https://a.example/x"))).toBe("RetryExhaustedError");
    expect(stateOf("b.example")).toBe("open");
  });

  it("a 2xx closes the hop's host; a 404 is a success too", async () => {
    const ok = await withHalfOpenB({});
    expect(await ok.outcome(ok.layer.fetch("https://a.example/x"))).toBe("200 b");
    expect(ok.stateOf("b.example")).toBe("closed");
    const missing = await withHalfOpenB({ "b.example": () => new Response("no", { status: 404 }) });
    expect(await missing.outcome(missing.layer.fetch("https://a.example/x"))).toBe("404 no");
    expect(missing.stateOf("b.example")).toBe("closed");
  });

  it("a redirect onward from the hop's host is its probe's success", async () => {
    const { t, layer, stateOf, outcome } = await withHalfOpenB({
      "b.example": redirectTo("https://c.example/z"),
      "c.example": () => new Response("c"),
    });
    expect(await outcome(layer.fetch("https://a.example/x"))).toBe("200 c");
    expect(t.log.map((r) => new URL(r.url).host)).toEqual(["a.example", "b.example", "c.example"]);
    expect(stateOf("b.example")).toBe("closed");
  });

  it("a 429 with a Retry-After past maxRetryAfter: the hop's host re-opens and is held until then", async () => {
    const { clock, layer, stateOf, outcome } = await withHalfOpenB(
      { "b.example": () => new Response("slow down", { status: 429, headers: { "retry-after": "120" } }) },
      { retry: { maxAttempts: 1, maxRetryAfter: 1000 } },
    );
    expect(await outcome(layer.fetch("https://a.example/x"))).toBe("429 slow down");
    expect(stateOf("b.example")).toBe("open");
    expect(layer.health().breakers["b.example"]?.openUntil).toBe(clock.now() + 120_000);
  });

  it("while the hop holds the only slot, a call to that host is refused; once it settles, the host closes", async () => {
    let answer: ((r: Response) => void) | undefined;
    const { clock, t, layer, stateOf, outcome } = await withHalfOpenB({
      "b.example": () => new Promise<Response>((resolve) => (answer = resolve)),
    });
    const hop = layer.fetch("https://a.example/x");
    await clock.advance(0);
    expect(t.log.map((r) => r.url)).toEqual(["https://a.example/x", "https://b.example/x"]);
    expect(await outcome(layer.fetch("https://b.example/y"))).toBe("CircuitOpenError b.example");
    expect(t.log).toHaveLength(2);
    answer?.(new Response("late b"));
    expect(await outcome(hop)).toBe("200 late b");
    expect(stateOf("b.example")).toBe("closed");
  });

  it("the caller's abort during the hop frees the slot: the host stays half-open and the next call is its probe", async () => {
    const { clock, t, layer, stateOf, outcome } = await withHalfOpenB({
      // The hop hangs until aborted; a later call to b is answered.
      "b.example": (request) =>
        request.url.endsWith("/y")
          ? new Response("b")
          : new Promise<Response>((_resolve, reject) => {
              request.signal.addEventListener("abort", () => reject(request.signal.reason), { once: true });
            }),
    });
    const controller = new AbortController();
    const hop = layer.fetch("https://a.example/x", { signal: controller.signal });
    await clock.advance(0);
    expect(t.log).toHaveLength(2);
    controller.abort(new Error("user left"));
    await expect(hop).rejects.toThrow("user left");
    await clock.advance(0);
    expect(stateOf("b.example")).toBe("half_open");
    expect(await outcome(layer.fetch("https://b.example/y"))).toBe("200 b");
    expect(t.log.map((r) => r.url).at(-1)).toBe("https://b.example/y");
    expect(stateOf("b.example")).toBe("closed");
  });

  it("with two probe slots, two hops take both and a third call is refused", async () => {
    const answers: Array<(r: Response) => void> = [];
    const { clock, t, layer, outcome } = await withHalfOpenB(
      { "b.example": () => new Promise<Response>((resolve) => answers.push(resolve)) },
      { breaker: { failureThreshold: 1, timeout: 1000, halfOpenMaxCalls: 2, successThreshold: 2 } },
    );
    const first = layer.fetch("https://a.example/1");
    const second = layer.fetch("https://a.example/2");
    await clock.advance(0);
    expect(t.log.filter((r) => r.url.startsWith("https://b.example")).length).toBe(2);
    expect(await outcome(layer.fetch("https://b.example/y"))).toBe("CircuitOpenError b.example");
    for (const answer of answers) answer(new Response("b"));
    expect([await outcome(first), await outcome(second)]).toEqual(["200 b", "200 b"]);
    expect(layer.health().breakers["b.example"]?.state).toBe("closed");
  });
});
