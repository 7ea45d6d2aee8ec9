/**
 * Seeded property test of hedged fallback chains, through the public API only
 * (`createResilience`, `fallback([...])`, `TestClock`, `seededRandom`).
 *
 * For each seed a chain of 2–3 endpoints is generated: random latencies
 * (0–3000 ms), random outcomes per attempt (200, 500, 503, 429, a reset, a
 * refused connection), optionally a sync or async `transform` that keeps the
 * caller's method or turns it into a POST without an Idempotency-Key,
 * optionally a `validate` that rejects `{ ok: false }` and a body that arrives
 * late, a hedge delay of 100–1500 ms, a caller method of GET or PUT, retries
 * off or default, and sometimes `timeout: { total }`. A stub `fetch` on the
 * `TestClock` records every request (order, time, method, endpoint, end).
 *
 * Invariants (docs/fallback.md, the hedge bullet and the moving-on rules;
 * CHANGELOG "Unreleased → Fixed", hedged chains):
 *  1. the call settles within a bound of advanced time, no request is sent
 *     after it settled, and no timer of the library is left;
 *  2. a POST without an Idempotency-Key is never in flight beside another
 *     request of the same call;
 *  3. such a POST that may have been processed (any answer but 429/503, a
 *     reset) is never followed by a request to another endpoint;
 *  4. no endpoint receives more requests than retries allow;
 *  5. `statistics()` counts one call for each endpoint that was sent
 *     something, none for one that was not (runs `timeout.total` ended are
 *     not counted, per the docs, so they are not checked).
 * Found when written: invariant 5 failed for 17 of 300 seeds (smallest 13,
 * pinned as an `it.fails`): a hedge stopped before its async `transform`
 * resolved was counted. Fixed; every invariant now holds for every seed.
 * Invariants 1-4 hold for every seed.
 */
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { seededRandom, TestClock } from "../../src/testing/index.ts";

type Outcome = 200 | 500 | 503 | 429 | "reset" | "refused";
type TransformKind = "none" | "sync-keep" | "sync-post" | "async-keep" | "async-post";

interface EndpointSpec {
  name: string;
  url: string;
  latencies: number[];
  outcomes: Outcome[];
  transform: TransformKind;
  transformDelay: number;
  validate: boolean;
  okBody: boolean[];
  bodyDelay: number;
}

interface Scenario {
  seed: number;
  endpoints: EndpointSpec[];
  hedgeDelay: number;
  method: "GET" | "PUT";
  total: number | undefined;
  retry: boolean;
}

interface Sent {
  seq: number;
  endSeq: number | undefined;
  at: number;
  endpoint: string;
  method: string;
  unsafe: boolean;
  outcome: Outcome | "aborted" | undefined;
}

const OUTCOMES: Outcome[] = [200, 500, 503, 429, "reset", "refused"];
const TRANSFORMS: TransformKind[] = ["none", "none", "sync-keep", "sync-post", "async-keep", "async-post"];

function scenario(seed: number): Scenario {
  const random = seededRandom(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;
  const count = 2 + int(2);
  const endpoints: EndpointSpec[] = [];
  for (let i = 0; i < count; i++) {
    endpoints.push({
      name: `e${i}`,
      url: `https://e${i}.example/v1`,
      latencies: [int(3001), int(3001), int(3001)],
      outcomes: [pick(OUTCOMES), pick(OUTCOMES), pick(OUTCOMES)],
      transform: pick(TRANSFORMS),
      transformDelay: int(3001),
      validate: random() < 0.5,
      okBody: [random() < 0.6, random() < 0.6, random() < 0.6],
      bodyDelay: random() < 0.5 ? 0 : int(3001),
    });
  }
  return {
    seed,
    endpoints,
    hedgeDelay: 100 + int(1401),
    method: random() < 0.5 ? "GET" : "PUT",
    total: random() < 0.3 ? 500 + int(6000) : undefined,
    retry: random() < 0.5,
  };
}

/** Accepts `{ ok: true }` only. */
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

function networkError(code: "ECONNRESET" | "ECONNREFUSED"): TypeError {
  const cause = Object.assign(new Error(`connect ${code}`), { code });
  return new TypeError("fetch failed", { cause });
}

function headerOf(input: RequestInfo | URL, init: RequestInit | undefined, name: string): string | null {
  if (init?.headers) return new Headers(init.headers).get(name);
  return input instanceof Request ? input.headers.get(name) : null;
}

interface RunResult {
  scenario: Scenario;
  sent: Sent[];
  violations: string[];
}

async function runScenario(s: Scenario): Promise<RunResult> {
  const clock = new TestClock();
  const sent: Sent[] = [];
  const violations: string[] = [];
  let seq = 0;
  let settled = false;
  /** Transform timers cannot be cancelled (a transform gets no signal): tracked apart from the library's. */
  let transformTimers = 0;
  /** Body timers of the stub's responses (a body may be drained, not cancelled, per the docs): also the stub's. */
  let bodyTimers = 0;
  const attempts = new Map<string, number>();

  const end = (r: Sent, outcome: Sent["outcome"]) => {
    if (r.endSeq !== undefined) return;
    r.endSeq = seq++;
    r.outcome ??= outcome;
  };

  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
    const spec = s.endpoints.find((e) => url.startsWith(e.url));
    if (!spec) return Promise.reject(new Error(`unexpected url ${url}`));
    const n = attempts.get(spec.name) ?? 0;
    attempts.set(spec.name, n + 1);
    const unsafe = method === "POST" && headerOf(input, init, "idempotency-key") === null;
    const r: Sent = {
      seq: seq++,
      endSeq: undefined,
      at: clock.now(),
      endpoint: spec.name,
      method,
      unsafe,
      outcome: undefined,
    };
    if (settled) violations.push(`1: request to ${spec.name} sent after the call settled`);
    const live = sent.filter((o) => o.endSeq === undefined);
    if (live.length > 0 && (unsafe || live.some((o) => o.unsafe))) {
      violations.push(
        `2: ${method} to ${spec.name} at ${r.at} ms sent while ${live.map((o) => `${o.method} ${o.endpoint}`).join(", ")} in flight (a POST without a key among them)`,
      );
    }
    sent.push(r);
    const outcome = spec.outcomes[Math.min(n, 2)] as Outcome;
    const latency = spec.latencies[Math.min(n, 2)] as number;
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    return new Promise<Response>((resolve, reject) => {
      const onAbort = () => {
        cancel();
        end(r, "aborted");
        reject(signal?.reason);
      };
      const cancel = clock.setTimer(() => {
        signal?.removeEventListener("abort", onAbort);
        if (outcome === "reset" || outcome === "refused") {
          end(r, outcome);
          reject(networkError(outcome === "reset" ? "ECONNRESET" : "ECONNREFUSED"));
          return;
        }
        r.outcome = outcome;
        if (outcome !== 200 || !spec.validate) {
          end(r, outcome);
          resolve(new Response(JSON.stringify({ ok: true }), { status: outcome }));
          return;
        }
        // Judged once `validate` has read the body: in flight until it ends.
        const text = JSON.stringify({ ok: spec.okBody[Math.min(n, 2)] });
        let stop: (() => void) | undefined;
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (r.endSeq !== undefined) return;
            const deliver = () => {
              controller.enqueue(new TextEncoder().encode(text));
              controller.close();
              end(r, 200);
            };
            if (spec.bodyDelay === 0) deliver();
            else
              return new Promise<void>((done) => {
                bodyTimers++;
                const cancelBody = clock.setTimer(() => {
                  bodyTimers--;
                  deliver();
                  done();
                }, spec.bodyDelay);
                stop = () => {
                  bodyTimers--;
                  cancelBody();
                };
              });
          },
          cancel() {
            if (r.endSeq === undefined) stop?.();
            end(r, 200);
          },
        });
        resolve(new Response(body, { status: 200, headers: { "content-type": "application/json" } }));
      }, latency);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  };

  const transformOf = (spec: EndpointSpec) => {
    if (spec.transform === "none") return undefined;
    const post = spec.transform.endsWith("post");
    const shape = (req: { method: string; url: string; headers: Headers; body: unknown }) => {
      if (!post) return { ...req };
      const headers = new Headers(req.headers);
      headers.delete("idempotency-key");
      return { ...req, method: "POST", headers };
    };
    if (spec.transform.startsWith("sync")) return shape;
    return (req: { method: string; url: string; headers: Headers; body: unknown }) =>
      new Promise<ReturnType<typeof shape>>((resolve) => {
        transformTimers++;
        clock.setTimer(() => {
          transformTimers--;
          resolve(shape(req));
        }, spec.transformDelay);
      });
  };

  const resilience = createResilience({
    clock,
    fetch,
    random: seededRandom(s.seed ^ 0x5eed),
    retry: s.retry ? undefined : false,
    timeout: s.total === undefined ? undefined : { total: s.total },
    fallback: fallback([
      {
        name: "c",
        hedge: { delay: s.hedgeDelay },
        endpoints: s.endpoints.map((e) => {
          const transform = transformOf(e);
          return {
            name: e.name,
            url: e.url,
            ...(transform ? { transform } : {}),
            ...(e.validate ? { validate: okSchema } : {}),
          };
        }),
      },
    ]),
  });

  const BOUND_MS = 120_000;
  const init: RequestInit =
    s.method === "PUT"
      ? { method: "PUT", body: JSON.stringify({ job: 1 }), headers: { "content-type": "application/json" } }
      : { method: "GET" };
  let outcome: { response: Response } | { error: unknown };
  try {
    const response = await clock.run(resilience.fetch(`${s.endpoints[0]?.url}/jobs`, init));
    outcome = { response };
  } catch (error) {
    outcome = { error };
  }
  settled = true;
  if ("error" in outcome && String(outcome.error).includes("never settled")) {
    violations.push("1: the call never settled");
  }
  if (clock.now() > BOUND_MS) violations.push(`1: settled only after ${clock.now()} ms`);
  if ("response" in outcome) await clock.run(outcome.response.text().catch(() => ""));
  if (clock.pending() !== transformTimers + bodyTimers) {
    violations.push(`1: ${clock.pending() - transformTimers - bodyTimers} timer(s) left after the call settled`);
  }
  // Late transforms resolve now: nothing may be sent after the call.
  await clock.advance(4_000);
  if (clock.pending() !== 0) violations.push(`1: ${clock.pending()} timer(s) left after transforms resolved`);

  // 3: a POST without a key that may have been processed ends the chain.
  for (const r of sent) {
    if (!r.unsafe || r.outcome === 429 || r.outcome === 503 || r.outcome === "refused") continue;
    const after = sent.find((o) => o.seq > r.seq && o.endpoint !== r.endpoint);
    if (after) {
      violations.push(
        `3: POST without a key to ${r.endpoint} ended with ${String(r.outcome)}, then ${after.method} sent to ${after.endpoint} at ${after.at} ms`,
      );
    }
  }
  // 4: retries bound the requests per endpoint.
  const max = s.retry ? 3 : 1;
  for (const [name, n] of attempts) if (n > max) violations.push(`4: ${name} received ${n} requests (max ${max})`);
  // 5: statistics count the endpoints that were sent something.
  const timedOut = "error" in outcome && (outcome.error as { name?: string } | undefined)?.name === "TimeoutError";
  if (!timedOut) {
    const stats = resilience.fallback.chain("c")?.statistics().fallbacks ?? {};
    for (const e of s.endpoints) {
      const expected = attempts.has(e.name) ? 1 : 0;
      const calls = stats[e.name]?.calls ?? 0;
      if (calls !== expected) {
        violations.push(
          `5: statistics count ${calls} call(s) for ${e.name}, which was ${expected ? "sent something" : "sent nothing"}`,
        );
      }
    }
  }
  return { scenario: s, sent, violations };
}

function describeScenario(s: Scenario): string {
  const eps = s.endpoints
    .map(
      (e) =>
        `${e.name}{lat ${e.latencies.join("/")}, ${e.outcomes.join("/")}, transform ${e.transform}${e.transform.startsWith("async") ? `@${e.transformDelay}` : ""}${e.validate ? `, validate ok=${e.okBody.join("/")} body@${e.bodyDelay}` : ""}}`,
    )
    .join(" ");
  return `seed ${s.seed}: ${s.method}, hedge ${s.hedgeDelay} ms, retry ${s.retry ? "default" : "off"}${s.total ? `, total ${s.total}` : ""}; ${eps}`;
}

const SEEDS = Array.from({ length: 300 }, (_, i) => i + 1);

function endpoint(name: string, spec: Partial<EndpointSpec>): EndpointSpec {
  return {
    name,
    url: `https://${name}.example/v1`,
    latencies: [0, 0, 0],
    outcomes: [200, 200, 200],
    transform: "none",
    transformDelay: 0,
    validate: false,
    okBody: [true, true, true],
    bodyDelay: 0,
    ...spec,
  };
}

function report(seed: number, result: RunResult): string {
  const sent = result.sent.map((r) => `#${r.seq}-${r.endSeq} ${r.at}ms ${r.method} ${r.endpoint} ${String(r.outcome)}`);
  return `${describeScenario(result.scenario)}\n  ${result.violations.join("\n  ")}\n  sent: ${sent.join("; ")} (seed ${seed})`;
}

describe("hedged chains, seeded properties", () => {
  it("keep invariants 1-5 for 300 seeds", async () => {
    const failing: string[] = [];
    for (const seed of SEEDS) {
      const result = await runScenario(scenario(seed));
      if (result.violations.length > 0) failing.push(report(seed, result));
    }
    if (failing.length > 0) console.log(failing.join("\n"));
    expect(failing).toEqual([]);
  }, 30_000);

  // Seed 13, reduced: e0 answers 200 after 1000 ms; the hedge starts e1 at
  // 300 ms, whose async transform resolves only at 2300 ms. e0 wins at
  // 1000 ms, e1 is aborted before anything was sent, yet statistics() counts
  // a call for e1 (17 of the 300 seeds did so when written; fixed: a losing
  // hedge counts only when it was sent something).
  it("5 (seed 13): a hedge aborted before its async transform resolved is not counted as a call", async () => {
    const { violations } = await runScenario({
      seed: 13,
      method: "GET",
      hedgeDelay: 300,
      retry: false,
      total: undefined,
      endpoints: [
        endpoint("e0", { latencies: [1000, 0, 0] }),
        endpoint("e1", { transform: "async-keep", transformDelay: 2000 }),
      ],
    });
    expect(violations).toEqual([]);
  });
});
