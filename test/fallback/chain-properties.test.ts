/**
 * Seeded property test of fallback chains, hedged or not, through the public
 * API only (`createResilience`, `fallback([...])`, `degradation()`,
 * `TestClock`, `seededRandom`). It grew out of a property test of hedged
 * chains alone (random latencies, statuses, network errors, sync and async
 * transforms, `validate` with late bodies, `timeout.total`), whose one
 * finding is pinned below (seed 13), and adds non-hedged chains, `respond`
 * endpoints (local answers), a caller
 * `AbortSignal` aborted at a random time, `timeout: { attempt }` besides
 * `total`, POST callers with and without an `Idempotency-Key` (and
 * `retry: { idempotencyKey: true }`), and `degradation()` at a random level.
 *
 * Invariants (docs/fallback.md, docs/retry.md#idempotency):
 *  1. the call settles, at or before its abort / `timeout.total` deadline
 *     (on the clock), no request is sent after it settled, and no timer of
 *     the library is left; an aborted call rejects with the caller's reason;
 *  2. a POST without an Idempotency-Key is never in flight beside another
 *     request of the same call;
 *  3. such a POST that may have been processed (anything but 429, 503, a
 *     refused connection) is never followed by a request to another endpoint;
 *  4. no endpoint receives more requests than retries allow;
 *  5. `statistics()` counts one call for each endpoint that was sent
 *     something or whose `respond` was called, or whose `transform` was cut
 *     by `timeout.attempt`, none for the others (runs the
 *     caller aborted or `timeout.total` ended are not counted, per the docs,
 *     so they are not checked);
 *  6. `FallbackExhaustedError.errors` names only endpoints that were tried
 *     (or skipped for an open breaker, with its `CircuitOpenError`).
 * Some seeds open a later endpoint's host breaker before the call.
 */
import { describe, expect, it } from "vitest";
import { degradation, type LevelName } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { seededRandom, TestClock } from "../../src/testing/index.ts";

type Outcome = 200 | 500 | 503 | 429 | "reset" | "refused";
type TransformKind = "none" | "sync-keep" | "sync-post" | "async-keep" | "async-post";
type CallerMethod = "GET" | "PUT" | "POST" | "POST-key";
type RespondKind = "sync" | "async";

interface EndpointSpec {
  name: string;
  url: string;
  /** A local answer instead of the network. */
  respond: RespondKind | undefined;
  respondStatus: 200 | 500 | 503;
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
  hedgeDelay: number | undefined;
  method: CallerMethod;
  idempotencyKey: boolean;
  total: number | undefined;
  attempt: number | undefined;
  abortAt: number | undefined;
  level: LevelName | undefined;
  retry: boolean;
  /** A later network endpoint whose host breaker is opened before the call (then `failureThreshold: 1`). */
  openBreaker: string | undefined;
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
const METHODS: CallerMethod[] = ["GET", "PUT", "POST", "POST-key"];
const LEVELS: LevelName[] = ["full", "high", "medium", "low", "minimal"];

function scenario(seed: number): Scenario {
  const random = seededRandom(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;
  const count = 2 + int(2);
  const endpoints: EndpointSpec[] = [];
  for (let i = 0; i < count; i++) {
    // The first endpoint routes the call: always a network one.
    const respond: RespondKind | undefined = i > 0 && random() < 0.3 ? pick(["sync", "async"] as const) : undefined;
    endpoints.push({
      name: `e${i}`,
      url: `https://e${i}.example/v1`,
      respond,
      respondStatus: pick([200, 200, 500, 503] as const),
      latencies: [int(3001), int(3001), int(3001)],
      outcomes: [pick(OUTCOMES), pick(OUTCOMES), pick(OUTCOMES)],
      transform: respond ? "none" : pick(TRANSFORMS),
      transformDelay: int(3001),
      validate: random() < 0.5,
      okBody: [random() < 0.6, random() < 0.6, random() < 0.6],
      bodyDelay: random() < 0.5 ? 0 : int(3001),
    });
  }
  return {
    seed,
    endpoints,
    hedgeDelay: random() < 0.5 ? 100 + int(1401) : undefined,
    method: pick(METHODS),
    idempotencyKey: random() < 0.3,
    total: random() < 0.3 ? 500 + int(6000) : undefined,
    attempt: random() < 0.3 ? 200 + int(2500) : undefined,
    abortAt: random() < 0.3 ? int(6000) : undefined,
    level: random() < 0.4 ? pick(LEVELS) : undefined,
    retry: random() < 0.5,
    openBreaker: random() < 0.25 ? endpoints.slice(1).find((e) => !e.respond)?.name : undefined,
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
  responded: string[];
  settledAt: number | undefined;
  outcome: string;
  violations: string[];
}

type Req = { method: string; url: string; headers: Headers; body: unknown };

async function runScenario(s: Scenario): Promise<RunResult> {
  const clock = new TestClock();
  const sent: Sent[] = [];
  const responded: string[] = [];
  const cutTransforms: { name: string; due: number }[] = [];
  const violations: string[] = [];
  let seq = 0;
  let settled = false;
  /** Timers of the test itself (transforms and `respond` get no signal, bodies, the abort). */
  let ownTimers = 0;
  const attempts = new Map<string, number>();
  let warming = false;

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
    if (warming) return Promise.resolve(new Response("down", { status: 500 }));
    if (spec.respond) violations.push(`respond endpoint ${spec.name} was sent a request`);
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
                ownTimers++;
                const cancelBody = clock.setTimer(() => {
                  ownTimers--;
                  deliver();
                  done();
                }, spec.bodyDelay);
                stop = () => {
                  ownTimers--;
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

  const later = <T>(ms: number, value: () => T): Promise<T> =>
    new Promise<T>((resolve) => {
      ownTimers++;
      clock.setTimer(() => {
        ownTimers--;
        resolve(value());
      }, ms);
    });

  const transformOf = (spec: EndpointSpec) => {
    if (spec.transform === "none") return undefined;
    const post = spec.transform.endsWith("post");
    const shape = (req: Req) => {
      if (!post) return { ...req };
      const headers = new Headers(req.headers);
      headers.delete("idempotency-key");
      return { ...req, method: "POST", headers };
    };
    if (spec.transform.startsWith("sync")) return shape;
    return (req: Req) => {
      // One slower than `timeout.attempt` fails its endpoint when that time is up (docs/fallback.md).
      if (s.attempt !== undefined && spec.transformDelay > s.attempt)
        cutTransforms.push({ name: spec.name, due: clock.now() + s.attempt });
      return later(spec.transformDelay, () => shape(req));
    };
  };

  const respondOf = (spec: EndpointSpec) => {
    const answer = () =>
      new Response(JSON.stringify({ ok: true, local: spec.name }), {
        status: spec.respondStatus,
        headers: { "content-type": "application/json" },
      });
    return (_req: Req) => {
      if (settled) violations.push(`1: respond of ${spec.name} called after the call settled`);
      responded.push(spec.name);
      return spec.respond === "sync" ? answer() : later(spec.transformDelay, answer);
    };
  };

  const resilience = createResilience({
    clock,
    fetch,
    random: seededRandom(s.seed ^ 0x5eed),
    retry: s.retry ? (s.idempotencyKey ? { idempotencyKey: true } : undefined) : false,
    timeout:
      s.total === undefined && s.attempt === undefined
        ? undefined
        : {
            ...(s.total !== undefined ? { total: s.total } : {}),
            ...(s.attempt !== undefined ? { attempt: s.attempt } : {}),
          },
    ...(s.level ? { degradation: degradation() } : {}),
    ...(s.openBreaker ? { breaker: { failureThreshold: 1 } } : {}),
    fallback: fallback([
      {
        name: "c",
        ...(s.hedgeDelay !== undefined ? { hedge: { delay: s.hedgeDelay } } : {}),
        endpoints: s.endpoints.map((e) => {
          if (e.respond) return { name: e.name, respond: respondOf(e) };
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
  if (s.level) resilience.degradation?.setLevel(s.level, "test");
  const opened = s.endpoints.find((e) => e.name === s.openBreaker);
  if (opened) {
    // Not the chain's first endpoint: a call to its URL goes straight to its host, and opens its breaker.
    warming = true;
    await clock.run(resilience.fetch(`${opened.url}/warm`)).catch(() => undefined);
    await clock.run(resilience.fetch(`${opened.url}/warm`)).catch(() => undefined);
    warming = false;
  }
  const startedAt = clock.now();

  const BOUND_MS = 120_000;
  const jsonBody = JSON.stringify({ prompt: "x", quality: 1, resolution: "1080p", steps: 50, model: "premium" });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (s.method === "POST-key") headers["idempotency-key"] = `key-${s.seed}`;
  const controller = new AbortController();
  let cancelAbort: (() => void) | undefined;
  if (s.abortAt !== undefined) {
    ownTimers++;
    const cancel = clock.setTimer(() => {
      ownTimers--;
      cancelAbort = undefined;
      controller.abort(new Error("caller abort"));
    }, s.abortAt);
    cancelAbort = () => {
      ownTimers--;
      cancel();
    };
  }
  const init: RequestInit =
    s.method === "GET"
      ? { method: "GET", signal: controller.signal }
      : { method: s.method === "PUT" ? "PUT" : "POST", body: jsonBody, headers, signal: controller.signal };
  let outcome: { response: Response } | { error: unknown };
  let settledAt: number | undefined;
  const call = resilience.fetch(`${s.endpoints[0]?.url}/jobs`, init);
  call.then(
    () => {
      settledAt = clock.now();
    },
    () => {
      settledAt = clock.now();
    },
  );
  try {
    const response = await clock.run(call);
    outcome = { response };
  } catch (error) {
    outcome = { error };
  }
  settled = true;
  cancelAbort?.();
  if (settledAt === undefined) violations.push("1: the call never settled");
  if (clock.now() - startedAt > BOUND_MS) violations.push(`1: settled only after ${clock.now()} ms`);
  const deadlines = [s.abortAt, s.total].filter((d): d is number => d !== undefined).map((d) => d + startedAt);
  const deadline = deadlines.length > 0 ? Math.min(...deadlines) : undefined;
  if (settledAt !== undefined && deadline !== undefined && settledAt > deadline) {
    violations.push(`1: settled at ${settledAt} ms, after its deadline ${deadline} ms`);
  }
  const aborted = s.abortAt !== undefined && settledAt !== undefined && s.abortAt + startedAt <= settledAt;
  if (aborted && !("error" in outcome && (outcome.error as Error | undefined)?.message === "caller abort")) {
    violations.push("1: the call settled after the caller's abort without the caller's reason");
  }
  if ("response" in outcome) await clock.run(outcome.response.text().catch(() => ""));
  if (clock.pending() !== ownTimers) {
    violations.push(`1: ${clock.pending() - ownTimers} timer(s) left after the call settled`);
  }
  // Late transforms and answers resolve now: nothing may be sent after the call.
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
  // A `transform` cut by `timeout.attempt` before the call settled: its endpoint was tried, and failed.
  const cut = cutTransforms.filter((t) => settledAt !== undefined && t.due <= settledAt).map((t) => t.name);
  const tried = new Set([...attempts.keys(), ...responded, ...cut]);
  // 5: statistics count the endpoints that were sent something or answered locally.
  const error = "error" in outcome ? (outcome.error as { name?: string; errors?: unknown } | undefined) : undefined;
  const timedOut = error?.name === "TimeoutError";
  if (!timedOut && !aborted) {
    const stats = resilience.fallback.chain("c")?.statistics().fallbacks ?? {};
    for (const e of s.endpoints) {
      const expected = tried.has(e.name) ? 1 : 0;
      const calls = stats[e.name]?.calls ?? 0;
      if (calls !== expected) {
        violations.push(
          `5: statistics count ${calls} call(s) for ${e.name}, which was ${expected ? "tried" : "not tried"}`,
        );
      }
    }
  }
  // 6: FallbackExhaustedError names only endpoints that were tried.
  if (error?.name === "FallbackExhaustedError") {
    const errors = (error.errors ?? {}) as Record<string, unknown>;
    for (const name of Object.keys(errors)) {
      // docs/fallback.md: an endpoint skipped for its open breaker has that breaker's CircuitOpenError there.
      const skipped = name === s.openBreaker && (errors[name] as Error | undefined)?.name === "CircuitOpenError";
      if (!tried.has(name) && !skipped)
        violations.push(`6: FallbackExhaustedError.errors names ${name}, which was not tried`);
    }
  }
  const outcomeText =
    "response" in outcome
      ? `response ${outcome.response.status}`
      : `${error?.name ?? "error"}: ${String((outcome.error as Error | undefined)?.message ?? outcome.error).slice(0, 160)}`;
  return { scenario: s, sent, responded, settledAt, outcome: outcomeText, violations };
}

function describeScenario(s: Scenario): string {
  const eps = s.endpoints
    .map((e) =>
      e.respond
        ? `${e.name}{respond ${e.respond}${e.respond === "async" ? `@${e.transformDelay}` : ""} ${e.respondStatus}}`
        : `${e.name}{lat ${e.latencies.join("/")}, ${e.outcomes.join("/")}, transform ${e.transform}${e.transform.startsWith("async") ? `@${e.transformDelay}` : ""}${e.validate ? `, validate ok=${e.okBody.join("/")} body@${e.bodyDelay}` : ""}}`,
    )
    .join(" ");
  const opts = [
    s.method,
    s.hedgeDelay !== undefined ? `hedge ${s.hedgeDelay} ms` : "no hedge",
    `retry ${s.retry ? (s.idempotencyKey ? "idempotencyKey" : "default") : "off"}`,
    s.total !== undefined ? `total ${s.total}` : "",
    s.attempt !== undefined ? `attempt ${s.attempt}` : "",
    s.abortAt !== undefined ? `abort@${s.abortAt}` : "",
    s.level ? `level ${s.level}` : "",
    s.openBreaker ? `breaker of ${s.openBreaker} open` : "",
  ].filter(Boolean);
  return `seed ${s.seed}: ${opts.join(", ")}; ${eps}`;
}

const SEEDS = Array.from({ length: 300 }, (_, i) => i + 1);

function report(seed: number, result: RunResult): string {
  const sent = result.sent.map((r) => `#${r.seq}-${r.endSeq} ${r.at}ms ${r.method} ${r.endpoint} ${String(r.outcome)}`);
  return `${describeScenario(result.scenario)}\n  ${result.violations.join("\n  ")}\n  sent: ${sent.join("; ")}; respond: ${result.responded.join(",")}; settled@${result.settledAt} with ${result.outcome} (seed ${seed})`;
}

describe("fallback chains, seeded properties", () => {
  it("keep invariants 1-6 for 300 seeds", async () => {
    const failing: string[] = [];
    for (const seed of SEEDS) {
      const result = await runScenario(scenario(seed));
      if (result.violations.length > 0) failing.push(report(seed, result));
    }
    if (failing.length > 0) console.log(failing.join("\n"));
    expect(failing).toEqual([]);
  }, 30_000);

  // Found by the hedged-chain property test, seed 13, reduced: e0 answers 200
  // after 1000 ms; the hedge starts e1 at 300 ms, whose async transform
  // resolves only at 2300 ms. e0 wins at 1000 ms and e1 is stopped before
  // anything was sent, yet statistics() counted a call for e1 (17 of 300
  // seeds did so). Fixed: a losing hedge counts only when it was sent something.
  it("5: a hedge stopped before its async transform resolved is not counted as a call", async () => {
    const spec = (name: string, overrides: Partial<EndpointSpec>): EndpointSpec => ({
      name,
      url: `https://${name}.example/v1`,
      respond: undefined,
      respondStatus: 200,
      latencies: [0, 0, 0],
      outcomes: [200, 200, 200],
      transform: "none",
      transformDelay: 0,
      validate: false,
      okBody: [true, true, true],
      bodyDelay: 0,
      ...overrides,
    });
    const { violations } = await runScenario({
      seed: 13,
      method: "GET",
      hedgeDelay: 300,
      idempotencyKey: false,
      retry: false,
      total: undefined,
      attempt: undefined,
      abortAt: undefined,
      level: undefined,
      openBreaker: undefined,
      endpoints: [
        spec("e0", { latencies: [1000, 0, 0] }),
        spec("e1", { transform: "async-keep", transformDelay: 2000 }),
      ],
    });
    expect(violations).toEqual([]);
  });
});
