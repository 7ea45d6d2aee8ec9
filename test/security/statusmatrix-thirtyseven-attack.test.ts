/**
 * Outside-in attack on the matrix of response statuses × methods × `Retry-After` forms and the retry decisions,
 * with the docs as the oracle (written down below as `DOC_*` tables and `docExpected`).
 * Docs: docs/retry.md "Retried by default: network errors, attempt timeouts and statuses 408, 425, 429, 500, 502,
 * 503, 504", "The delay before retry n is `min(maxDelay, initialDelay × exponentialBase^(n−1))`, then jittered",
 * "`maxAttempts` counts all attempts, the first included", "A `Retry-After` header on 429/503, in one of the forms
 * RFC 9110 allows (delay-seconds, or an HTTP date …), replaces the computed delay and is never jittered; anything
 * else (`Mon 2`, `1.5`, an ISO date …) falls back to the computed delay", "A `Retry-After` longer than
 * `maxRetryAfter` is not slept through: the call resolves with that response at once (in a fallback chain, the
 * next endpoint is tried instead, as after any 503), and the host is held open until then, for at most 24 hours
 * whatever the header says", "GET, HEAD, OPTIONS, PUT and DELETE retry freely. A POST or PATCH without an
 * `Idempotency-Key` … is sent again … only … on 429 and 503", "After a 500, a reset connection … it is not sent
 * again", "An empty bucket means no retry, never a wait", "earned tokens alone (`minPerSecond: 0`) let at most 1.1
 * requests a call reach it", "When the last attempt produced a Response, the call resolves with it, even a 503";
 * docs/options.md (`retryOn.statuses` "statuses to retry", `retryOn.methods` "methods retried on any retryable
 * outcome", `retryOn.error` "predicate over thrown errors", `maxRetryAfter` "longest `Retry-After` slept through");
 * docs/breakers.md "Network errors, attempt timeouts, 5xx and 429 are failures; other 4xx are the caller's fault and
 * count as successes", "A 429/503 whose `Retry-After` exceeds `maxRetryAfter` holds the host open until then";
 * docs/fallback.md "An endpoint is left for the next one on a network error, a timeout, a 5xx, 429 or 408 …; any
 * other status … ends the chain. Moving on follows the rule of a retry", "When every endpoint failed, the call
 * resolves with the last response any endpoint gave"; docs/health-and-events.md (`retry` before each wait with
 * `delay` and `retryAfter`, `request` once per call, `breaker` "one answer that both trips the breaker and holds it
 * open is one event, until the later time", `open` → `open` for a hold from an answer in flight, the hold's reason
 * "Retry-After 3600 s on status 503"); README.md (`resilience.fetch` "resolves with a response, even a 503"); the
 * ky section of docs/retry.md (ky's retry off, retries happen once).
 * How: `createResilience`, `getResilienceInfo`, events and `health()` (root); `fallback` (./fallback);
 * `createClient` (./ky); `TestClock` (./testing) driven from the `retry` events (each wait advanced once its timer
 * is set, so nothing sleeps for real); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) answering
 * each status with the `Retry-After` form of the cell.
 * Paths: plain call (41 statuses 200–599, 2xx/3xx/4xx/5xx and odd ones 299, 399, 499, 599, 520–524, 529 × GET,
 * HEAD, OPTIONS, PUT, DELETE, POST, POST with a key, PATCH; × 12 `Retry-After` forms on 429, 503, 500, 502, 504,
 * 408, 425, 200, 404), a fallback chain [p, q] (q answering 200 or the same status), the ky client; holds longer
 * than `maxRetryAfter` (seconds, huge, the three date forms, year 9999, custom cap, `retry: false`, 503 left out of
 * `retryOn.statuses`) on each path; custom `retryOn` statuses, methods and error predicates; the budget running out.
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - Every cell of status × method (1 attempt or 3, the exact waits 1000/2000 with `jitter: "none"`, the response
 *   given, `getResilienceInfo` attempts and `durationMs` on the injected clock, the server's count, `retry` events
 *   with key, query-less url, attempt and `status N` reason, one `request` event, no `breaker` event, the breaker's
 *   consecutive failures: 5xx and 429 only, 408/425 not).
 * - Every `Retry-After` form: seconds, `0` (retried at once) and past dates (0 ms) replace the delay with
 *   `retryAfter: true`; a future date counts from the layer's clock ([7000, 0]); `-3`, `1.5`, `soon`, an ISO date,
 *   two header lines (`2, 3` and `2, 2`) fall back to the computed delay; exactly `maxRetryAfter` is slept through;
 *   a header on 500/502/504/408/425/200/404 is ignored; not jittered under full jitter.
 * - A `Retry-After` beyond the cap: resolves at once with that answer (1 attempt, no wait), one `breaker` event
 *   closed → open with `openUntil` at the hold (24 h at most: huge seconds, year 9999), `CircuitOpenError.retryAt`
 *   at it, the host refused 1 ms before and probed at it; also with `retry: false`, a custom cap, 503 not in
 *   `retryOn.statuses`, a keyless POST, `maxRetryAfter: 0`; a chain moves on at once and skips the held endpoint
 *   ("circuit open") on the next call; ky throws `HTTPError` at once; a hold on the second attempt settles there.
 * - The hold against the breaker's own opening: one event until the later time (either way); a half-open probe's
 *   503 hold re-opens until the hold with its reason; an answer in flight when the host opened gives open → open.
 * - Chain: p runs its own retries, moves to q only on 5xx/429/408 and, for a keyless POST/PATCH, on 429/503 only;
 *   425 ends the chain; both failing gives q's answer with attempts summed and one `request` event.
 * - ky: the same attempts and waits, `HTTPError` outside 2xx with `getResilienceInfo(error.response)`.
 * - `retryOn`: listed 409/599/2xx/3xx retried (for a keyless POST/PATCH only 429/503), unlisted 503/429 not; a
 *   method left out of `retryOn.methods` is not retried on 500/502 (a keyless POST still on 503), a listed POST
 *   is; `retryOn.error` false gives `RetryExhaustedError` after 1 attempt, true retries a reset GET but never a
 *   reset keyless POST.
 * - Budget: `ratio 0.1, minPerSecond 0` gives no retry and no wait for the first 9 calls, at most 1.1 requests a
 *   call, `retriesDenied` counted; a 503 with `Retry-After: 2` and no token resolves at once.
 */
import { HTTPError } from "ky";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  type CircuitOpenError,
  createResilience,
  type FallbackEvent,
  getResilienceInfo,
  isCircuitOpenError,
  isRetryExhaustedError,
  type RequestEvent,
  type Resilience,
  type RetryEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

// ---------------------------------------------------------------------------------------------------------------
// The oracle: what README.md, docs/retry.md, docs/breakers.md, docs/options.md and docs/fallback.md say, as a table.
// ---------------------------------------------------------------------------------------------------------------

/** docs/options.md `retry.retryOn.statuses` default; docs/retry.md "Retried by default: … 408, 425, 429, 500, 502, 503, 504". */
const DOC_RETRIED_STATUSES = new Set([408, 425, 429, 500, 502, 503, 504]);
/** docs/options.md `retry.retryOn.methods` default; docs/retry.md "GET, HEAD, OPTIONS, PUT and DELETE retry freely". */
const DOC_FREE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
/** docs/retry.md "A POST or PATCH without an `Idempotency-Key` … is sent again … only … on 429 and 503". */
const DOC_DECLINED = new Set([429, 503]);
/** docs/retry.md "A `Retry-After` header on 429/503 … replaces the computed delay". */
const DOC_RETRY_AFTER_STATUSES = DOC_DECLINED;

/** docs/breakers.md "Network errors, attempt timeouts, 5xx and 429 are failures; other 4xx … count as successes". */
const docBreakerFailure = (status: number): boolean => status >= 500 || status === 429;
/**
 * docs/fallback.md "An endpoint is left for the next one on a network error, a timeout, a 5xx, 429 or 408 …;
 * any other status (a 400, a 404) is the caller's answer and ends the chain. Moving on follows the rule of a retry".
 */
const docLeavesEndpoint = (status: number): boolean => status >= 500 || status === 429 || status === 408;

const METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "POST+key", "PATCH"] as const;
type MethodCase = (typeof METHODS)[number];
const STATUSES = [
  200, 201, 204, 206, 299, 300, 301, 302, 303, 304, 307, 308, 399, 400, 401, 403, 404, 405, 408, 409, 410, 413, 422,
  425, 429, 451, 499, 500, 501, 502, 503, 504, 505, 507, 520, 521, 522, 523, 524, 529, 599,
];

const idempotent = (m: MethodCase): boolean => DOC_FREE_METHODS.has(m) || m === "POST+key";
/** docs/retry.md: retried when the status is in `retryOn.statuses` and the method may be sent again. */
const docRetried = (status: number, m: MethodCase): boolean =>
  DOC_RETRIED_STATUSES.has(status) && (idempotent(m) || DOC_DECLINED.has(status));
/** docs/fallback.md: "Moving on follows the rule of a retry". */
const docMovesOn = (status: number, m: MethodCase): boolean =>
  docLeavesEndpoint(status) && (idempotent(m) || DOC_DECLINED.has(status));

const START = Date.UTC(2030, 0, 1, 0, 0, 0);
const MAX_ATTEMPTS = 3;
/** `jitter: "none"`: docs/retry.md "The delay before retry n is min(maxDelay, initialDelay × exponentialBase^(n−1))". */
const RETRY = {
  maxAttempts: MAX_ATTEMPTS,
  initialDelay: 1000,
  maxDelay: 60_000,
  exponentialBase: 2,
  jitter: "none",
} as const;
const computed = (n: number): number => Math.min(RETRY.maxDelay, RETRY.initialDelay * RETRY.exponentialBase ** (n - 1));
const DAY = 24 * 3600 * 1000;

/** The `Retry-After` forms of the brief, each with what the docs say it gives (ms from `now`, or "computed"). */
interface RaForm {
  name: string;
  header: string | string[] | undefined;
  /** The wait the docs promise before retry n at clock time `now`; `undefined`: the computed delay. */
  wait: (now: number) => number | undefined;
}
const httpDate = (ms: number): string => new Date(ms).toUTCString();
const RA_FORMS: RaForm[] = [
  { name: "absent", header: undefined, wait: () => undefined },
  { name: "seconds 2", header: "2", wait: () => 2000 },
  { name: "0", header: "0", wait: () => 0 },
  // docs/retry.md: "anything else (`Mon 2`, `1.5`, …) falls back to the computed delay".
  { name: "negative -3", header: "-3", wait: () => undefined },
  { name: "fractional 1.5", header: "1.5", wait: () => undefined },
  { name: "garbage", header: "soon", wait: () => undefined },
  { name: "ISO date", header: new Date(START + 5000).toISOString(), wait: () => undefined },
  // Two header lines: fetch joins them ("2, 3"), which is no form RFC 9110 allows.
  { name: "twice 2 and 3", header: ["2", "3"], wait: () => undefined },
  { name: "twice 2 and 2", header: ["2", "2"], wait: () => undefined },
  // An HTTP date: the wait is the date minus the layer's clock, never negative.
  { name: "HTTP-date past", header: httpDate(START - 3600_000), wait: () => 0 },
  { name: "HTTP-date future +7 s", header: httpDate(START + 7000), wait: (now) => Math.max(0, START + 7000 - now) },
  { name: "exactly maxRetryAfter (60)", header: "60", wait: () => 60_000 },
];

interface Expected {
  attempts: number;
  waits: number[];
  retryAfterFlags: boolean[];
  breakerFailures: number;
}

/** The table's cell: attempts, waits, whether each came from Retry-After, and what the breaker counts. */
function docExpected(status: number, m: MethodCase, ra: RaForm): Expected {
  const retried = docRetried(status, m);
  const attempts = retried ? MAX_ATTEMPTS : 1;
  const waits: number[] = [];
  const flags: boolean[] = [];
  let now = START;
  for (let n = 1; n < attempts; n++) {
    const fromHeader = DOC_RETRY_AFTER_STATUSES.has(status) ? ra.wait(now) : undefined;
    const wait = fromHeader ?? computed(n);
    waits.push(wait);
    flags.push(fromHeader !== undefined);
    now += wait;
  }
  return {
    attempts,
    waits,
    retryAfterFlags: flags,
    breakerFailures: docBreakerFailure(status) ? attempts : 0,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Driving the layer on a TestClock against a real server: each `retry` event's wait is advanced once its timer is
// set (the layer's backoff is the only timer on this clock), so nothing sleeps for real.
// ---------------------------------------------------------------------------------------------------------------

interface Observed {
  attempts: number;
  waits: number[];
  retryAfterFlags: boolean[];
  retryReasons: string[];
  requests: RequestEvent[];
  breakers: BreakerEvent[];
  fallbacks: FallbackEvent[];
  elapsed: number;
}

const realTick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1));

async function drive<T>(layer: Resilience, clock: TestClock, call: () => Promise<T>) {
  const retries: RetryEvent[] = [];
  const requests: RequestEvent[] = [];
  const breakers: BreakerEvent[] = [];
  const fallbacks: FallbackEvent[] = [];
  const advancing: Promise<void>[] = [];
  const offs = [
    layer.on("retry", (e) => {
      retries.push(e);
      if (e.delay <= 0) return;
      advancing.push(
        (async () => {
          for (let i = 0; i < 500 && clock.pending() === 0; i++) await realTick();
          await clock.advance(e.delay);
        })(),
      );
    }),
    layer.on("request", (e) => requests.push(e)),
    layer.on("breaker", (e) => breakers.push(e)),
    layer.on("fallback", (e) => fallbacks.push(e)),
  ];
  const t0 = clock.now();
  let value: T | undefined;
  let error: unknown;
  try {
    value = await call();
  } catch (e) {
    error = e;
  }
  await Promise.all(advancing);
  for (const off of offs) off();
  return {
    value,
    error,
    retries,
    obs: {
      attempts: 0,
      waits: retries.map((r) => r.delay),
      retryAfterFlags: retries.map((r) => r.retryAfter),
      retryReasons: retries.map((r) => r.reason),
      requests,
      breakers,
      fallbacks,
      elapsed: clock.now() - t0,
    } satisfies Observed,
  };
}

function answer(status: number, ra: RaForm["header"]) {
  return (h: Hit) => {
    h.res.statusCode = status;
    if (ra !== undefined) h.res.setHeader("retry-after", ra);
    h.res.end(h.method === "HEAD" ? undefined : `status ${status}`);
  };
}

function init(m: MethodCase): RequestInit {
  const method = m === "POST+key" ? "POST" : m;
  const withBody = method === "PUT" || method === "POST" || method === "PATCH";
  return {
    method,
    ...(withBody ? { body: '{"job":1}', headers: { "content-type": "application/json" } } : {}),
    ...(m === "POST+key" ? { headers: { "content-type": "application/json", "idempotency-key": "job-1" } } : {}),
  };
}

function layerOn(clock: TestClock, extra: Parameters<typeof createResilience>[0] = {}) {
  return createResilience({ clock, retry: RETRY, budget: false, ...extra });
}

function failuresOf(layer: Resilience, host: string): number {
  return layer.health().breakers[host]?.consecutiveFailures ?? 0;
}

const cell = (status: number, m: MethodCase, ra = "absent") => `${status} ${m} Retry-After ${ra}`;

// ---------------------------------------------------------------------------------------------------------------

async function plainCell(
  status: number,
  m: MethodCase,
  ra: RaForm,
  extra: Parameters<typeof createResilience>[0] = {},
) {
  a.reset();
  a.on(answer(status, ra.header));
  const clock = new TestClock(START);
  const layer = layerOn(clock, extra);
  const { value, error, retries, obs } = await drive(layer, clock, () =>
    layer.fetch(`${a.base}/v1/x?key=s3cret`, init(m)),
  );
  const res = value as Response | undefined;
  await res?.body?.cancel();
  return {
    layer,
    clock,
    got: {
      error: error ? String(error) : undefined,
      status: res?.status,
      infoAttempts: res ? getResilienceInfo(res)?.attempts : undefined,
      infoDuration: res ? getResilienceInfo(res)?.durationMs : undefined,
      serverHits: a.hits.length,
      waits: obs.waits,
      flags: obs.retryAfterFlags,
      retryEvents: retries.map((r) => `${r.key} ${r.url} #${r.attempt} ${r.reason}`),
      elapsed: obs.elapsed,
      requestEvents: obs.requests.map((r) => `${r.status}/${r.attempts}/${r.outcome}`),
      breakerEvents: obs.breakers.map((e) => `${e.from}>${e.to}`),
      failures: failuresOf(layer, a.host),
    },
  };
}

function plainWant(status: number, m: MethodCase, ra: RaForm) {
  const want = docExpected(status, m, ra);
  return {
    error: undefined,
    status,
    infoAttempts: want.attempts,
    infoDuration: want.waits.reduce((s, w) => s + w, 0),
    serverHits: want.attempts,
    waits: want.waits,
    flags: want.retryAfterFlags,
    retryEvents: want.waits.map((_, i) => `${a.host} ${a.base}/v1/x #${i + 1} status ${status}`),
    elapsed: want.waits.reduce((s, w) => s + w, 0),
    requestEvents: [`${status}/${want.attempts}/response`],
    breakerEvents: [] as string[],
    failures: want.breakerFailures,
  };
}

describe("status × method on a plain call (Retry-After absent)", () => {
  it("every cell matches the docs: attempts, waits, the response given, breaker failures, events", async () => {
    const mismatches: string[] = [];
    const ra = RA_FORMS[0] as RaForm;
    for (const status of STATUSES) {
      for (const m of METHODS) {
        const { got } = await plainCell(status, m, ra);
        const exp = plainWant(status, m, ra);
        if (JSON.stringify(got) !== JSON.stringify(exp))
          mismatches.push(`${cell(status, m)}: got ${JSON.stringify(got)} want ${JSON.stringify(exp)}`);
      }
    }
    expect(mismatches).toEqual([]);
  }, 60_000);
});

describe("status × method × Retry-After form on a plain call", () => {
  it("every cell matches the docs (Retry-After read on 429/503 only, never jittered, bad forms computed)", async () => {
    const mismatches: string[] = [];
    for (const status of [429, 503, 500, 502, 504, 408, 425, 200, 404]) {
      for (const m of METHODS) {
        for (const ra of RA_FORMS) {
          const { got } = await plainCell(status, m, ra);
          const exp = plainWant(status, m, ra);
          if (JSON.stringify(got) !== JSON.stringify(exp))
            mismatches.push(`${cell(status, m, ra.name)}: got ${JSON.stringify(got)} want ${JSON.stringify(exp)}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  }, 120_000);

  it("a Retry-After is not jittered: full jitter with random 0.5 still waits the header's seconds", async () => {
    a.on(answer(503, "4"));
    const clock = new TestClock(START);
    const layer = createResilience({ clock, retry: { ...RETRY, jitter: "full" }, budget: false, random: () => 0.5 });
    const { obs } = await drive(layer, clock, () => layer.fetch(`${a.base}/j`));
    expect(obs.waits).toEqual([4000, 4000]);
    a.reset();
    a.on(answer(503, undefined));
    const second = await drive(layer, clock, () => layer.fetch(`${a.base}/j`));
    // The computed delays are jittered: full jitter of 1000 and 2000 at 0.5.
    expect(second.obs.waits.every((w, i) => w < computed(i + 1))).toBe(true);
  });
});

function chainLayer(clock: TestClock, extra: Parameters<typeof createResilience>[0] = {}) {
  return createResilience({
    clock,
    retry: RETRY,
    budget: false,
    ...extra,
    fallback: fallback([
      {
        name: "gen",
        endpoints: [
          { name: "p", url: `${a.base}/v1` },
          { name: "q", url: `${b.base}/v1` },
        ],
      },
    ]),
  });
}

describe("status × method through a fallback chain [p (the status), q (200 or the same status)]", () => {
  it("every cell matches the docs: p's own retries, then on to q only where a retry would be allowed", async () => {
    const mismatches: string[] = [];
    const forms = [RA_FORMS[0], RA_FORMS[1], RA_FORMS[4]] as RaForm[];
    for (const status of STATUSES) {
      for (const m of METHODS) {
        for (const [ra, qStatus] of (status === 429 || status === 503 ? forms : forms.slice(0, 1)).flatMap(
          (f) =>
            [
              [f, 200],
              [f, status],
            ] as Array<[RaForm, number]>,
        )) {
          a.reset();
          b.reset();
          a.on(answer(status, ra.header));
          b.on(answer(qStatus, ra.header));
          const clock = new TestClock(START);
          const layer = chainLayer(clock);
          const { value, error, obs } = await drive(layer, clock, () => layer.fetch(`${a.base}/v1/x`, init(m)));
          const res = value as Response | undefined;
          await res?.body?.cancel();
          const info = res ? getResilienceInfo(res) : undefined;
          const want = docExpected(status, m, ra);
          const moves = docMovesOn(status, m);
          // q's own loop, when it is reached: the same table (its answer is the same status, or a 200).
          const wantQ = moves ? docExpected(qStatus, m, ra) : undefined;
          const got = {
            error: error ? String(error) : undefined,
            status: res?.status,
            fromFallback: info?.fromFallback,
            endpoint: info?.endpoint,
            infoAttempts: info?.attempts,
            hitsP: a.hits.length,
            hitsQ: b.hits.length,
            waits: obs.waits,
            flags: obs.retryAfterFlags,
            fallbackEvents: obs.fallbacks.slice(0, 1).map((f) => `${f.from}>${f.next}:${f.reason}`),
            requestEvents: obs.requests.map((r) => `${r.status}/${r.attempts}`),
            failuresP: failuresOf(layer, a.host),
            failuresQ: failuresOf(layer, b.host),
          };
          const attempts = want.attempts + (wantQ?.attempts ?? 0);
          const finalStatus = moves ? qStatus : status;
          const exp = {
            error: undefined,
            status: finalStatus,
            fromFallback: moves,
            endpoint: moves ? "q" : "p",
            infoAttempts: attempts,
            hitsP: want.attempts,
            hitsQ: wantQ?.attempts ?? 0,
            waits: [...want.waits, ...(wantQ?.waits ?? [])],
            flags: [...want.retryAfterFlags, ...(wantQ?.retryAfterFlags ?? [])],
            fallbackEvents: moves ? [`p>q:status ${status}`] : [],
            requestEvents: [`${finalStatus}/${attempts}`],
            failuresP: want.breakerFailures,
            failuresQ: wantQ?.breakerFailures ?? 0,
          };
          if (JSON.stringify(got) !== JSON.stringify(exp))
            mismatches.push(
              `${cell(status, m, ra.name)} q ${qStatus}: got ${JSON.stringify(got)} want ${JSON.stringify(exp)}`,
            );
        }
      }
    }
    expect(mismatches).toEqual([]);
  }, 120_000);
});

describe("status × method through the ky client", () => {
  it("every cell matches the docs: the layer's retries once (ky's off), HTTPError outside 2xx with the layer's info", async () => {
    const mismatches: string[] = [];
    const forms = [RA_FORMS[0], RA_FORMS[1], RA_FORMS[4], RA_FORMS[10]] as RaForm[];
    for (const status of STATUSES) {
      for (const m of METHODS) {
        for (const ra of status === 429 || status === 503 ? forms : forms.slice(0, 1)) {
          a.reset();
          a.on(answer(status, ra.header));
          const clock = new TestClock(START);
          const layer = layerOn(clock);
          const api = createClient({ resilience: layer });
          const { method, body, headers } = init(m);
          const { value, error, obs } = await drive(layer, clock, () =>
            api(`${a.base}/v1/x`, {
              method: method as string,
              ...(body === undefined ? {} : { body: body as string }),
              ...(headers === undefined ? {} : { headers: headers as Record<string, string> }),
            }),
          );
          const res = (value as Response | undefined) ?? (error instanceof HTTPError ? error.response : undefined);
          await res?.body?.cancel().catch(() => undefined);
          const want = docExpected(status, m, ra);
          const ok = status >= 200 && status <= 299;
          const got = {
            kind: value ? "response" : error instanceof HTTPError ? "HTTPError" : String(error),
            status: res?.status,
            infoAttempts: res ? getResilienceInfo(res)?.attempts : undefined,
            serverHits: a.hits.length,
            waits: obs.waits,
            flags: obs.retryAfterFlags,
            failures: failuresOf(layer, a.host),
          };
          const exp = {
            kind: ok ? "response" : "HTTPError",
            status,
            infoAttempts: want.attempts,
            serverHits: want.attempts,
            waits: want.waits,
            flags: want.retryAfterFlags,
            failures: want.breakerFailures,
          };
          if (JSON.stringify(got) !== JSON.stringify(exp))
            mismatches.push(`${cell(status, m, ra.name)}: got ${JSON.stringify(got)} want ${JSON.stringify(exp)}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  }, 120_000);
});

/** A Retry-After longer than `maxRetryAfter`: resolved at once with that answer, the host held until then (≤ 24 h). */
interface HoldCase {
  name: string;
  status: number;
  m: MethodCase;
  header: string;
  /** When the docs say the host opens until (ms after START). */
  holdFor: number;
  extra?: Parameters<typeof createResilience>[0];
}
const HOLDS: HoldCase[] = [
  { name: "GET 503 seconds 120", status: 503, m: "GET", header: "120", holdFor: 120_000 },
  { name: "GET 503 seconds 61", status: 503, m: "GET", header: "61", holdFor: 61_000 },
  { name: "PATCH 429 seconds 3600", status: 429, m: "PATCH", header: "3600", holdFor: 3600_000 },
  { name: "POST 503 huge seconds", status: 503, m: "POST", header: "99999999999999999999", holdFor: DAY },
  { name: "HEAD 429 date +2 h", status: 429, m: "HEAD", header: httpDate(START + 7200_000), holdFor: 7200_000 },
  { name: "PUT 503 date in year 9999", status: 503, m: "PUT", header: "Fri, 31 Dec 9999 23:59:59 GMT", holdFor: DAY },
  {
    name: "POST+key 503 RFC 850 date +2 h",
    status: 503,
    m: "POST+key",
    header: "Tuesday, 01-Jan-30 02:00:00 GMT",
    holdFor: 7200_000,
  },
  { name: "DELETE 503 asctime +2 h", status: 503, m: "DELETE", header: "Tue Jan  1 02:00:00 2030", holdFor: 7200_000 },
  {
    name: "GET 503 seconds 6 over maxRetryAfter 5000",
    status: 503,
    m: "GET",
    header: "6",
    holdFor: 6000,
    extra: { retry: { ...RETRY, maxRetryAfter: 5000 } },
  },
  {
    name: "GET 503 seconds 120 with retry: false",
    status: 503,
    m: "GET",
    header: "120",
    holdFor: 120_000,
    extra: { retry: false },
  },
  {
    name: "GET 503 seconds 120 with 503 left out of retryOn.statuses",
    status: 503,
    m: "GET",
    header: "120",
    holdFor: 120_000,
    extra: { retry: { ...RETRY, retryOn: { statuses: [500] } } },
  },
];

describe("a Retry-After longer than maxRetryAfter", () => {
  for (const h of HOLDS) {
    it(`${h.name}: resolves at once with that answer, the host held open until then`, async () => {
      a.on(answer(h.status, h.header));
      const clock = new TestClock(START);
      const layer = layerOn(clock, h.extra);
      const { value, obs } = await drive(layer, clock, () => layer.fetch(`${a.base}/hold`, init(h.m)));
      const res = value as Response;
      expect(res.status).toBe(h.status);
      await res.body?.cancel();
      expect(getResilienceInfo(res)?.attempts).toBe(1);
      expect(a.hits.length).toBe(1);
      expect(obs.waits).toEqual([]);
      expect(obs.elapsed).toBe(0);
      expect(obs.breakers.map((e) => [e.from, e.to, e.openUntil])).toEqual([["closed", "open", START + h.holdFor]]);
      const health = layer.health().breakers[a.host];
      expect(health?.state).toBe("open");
      expect(health?.openUntil).toBe(START + h.holdFor);
      expect(health?.reason).toMatch(new RegExp(`^Retry-After \\d+ s on status ${h.status}$`));
      // The next call is refused, nothing sent, until then.
      const refused = (await rejection(layer.fetch(`${a.base}/hold`))) as CircuitOpenError;
      expect(isCircuitOpenError(refused)).toBe(true);
      expect(refused.retryAt).toBe(START + h.holdFor);
      expect(a.hits.length).toBe(1);
      await clock.advance(h.holdFor - 1);
      expect(isCircuitOpenError(await rejection(layer.fetch(`${a.base}/hold`)))).toBe(true);
      await clock.advance(1);
      a.on(answer(200, undefined));
      const probe = await layer.fetch(`${a.base}/hold`);
      expect(probe.status).toBe(200);
      await probe.body?.cancel();
      expect(a.hits.length).toBe(2);
    });
  }

  it("a 500 or 502 with a long Retry-After holds nothing and retries on the computed delays", async () => {
    for (const status of [500, 502, 504, 408]) {
      a.reset();
      a.on(answer(status, "3600"));
      const clock = new TestClock(START);
      const layer = layerOn(clock);
      const { obs } = await drive(layer, clock, () => layer.fetch(`${a.base}/x`));
      expect(obs.waits).toEqual([1000, 2000]);
      expect(obs.breakers).toEqual([]);
      expect(a.hits.length).toBe(3);
    }
  });

  it("through a chain: the next endpoint is tried at once, and the held endpoint is skipped on the next call", async () => {
    a.on(answer(503, "120"));
    b.on(answer(200, undefined));
    const clock = new TestClock(START);
    const layer = chainLayer(clock);
    const first = await drive(layer, clock, () => layer.fetch(`${a.base}/v1/x`, init("POST")));
    const res = first.value as Response;
    expect(res.status).toBe(200);
    await res.body?.cancel();
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "q", fromFallback: true });
    expect([a.hits.length, b.hits.length]).toEqual([1, 1]);
    expect(first.obs.elapsed).toBe(0);
    expect(first.obs.fallbacks.map((f) => [f.from, f.next, f.reason])).toEqual([["p", "q", "status 503"]]);
    const second = await drive(layer, clock, () => layer.fetch(`${a.base}/v1/x`, init("POST")));
    expect((second.value as Response).status).toBe(200);
    await (second.value as Response).body?.cancel();
    expect([a.hits.length, b.hits.length]).toEqual([1, 2]);
    expect(second.obs.fallbacks.map((f) => [f.from, f.next, f.reason])).toEqual([["p", "q", "circuit open"]]);
  });

  it("through the ky client: HTTPError with the 503 at once, the host held", async () => {
    a.on(answer(503, "120"));
    const clock = new TestClock(START);
    const layer = layerOn(clock);
    const api = createClient({ resilience: layer });
    const { error, obs } = await drive(layer, clock, () => api.get(`${a.base}/x`));
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).response.status).toBe(503);
    expect(obs.elapsed).toBe(0);
    expect(a.hits.length).toBe(1);
    expect(layer.health().breakers[a.host]?.openUntil).toBe(START + 120_000);
  });

  it("a Retry-After held on the second attempt settles the call there, with that answer", async () => {
    a.on((h) => answer(h.n === 1 ? 500 : 503, h.n === 1 ? undefined : "300")(h));
    const clock = new TestClock(START);
    const layer = layerOn(clock);
    const { value, obs } = await drive(layer, clock, () => layer.fetch(`${a.base}/x`));
    expect((value as Response).status).toBe(503);
    await (value as Response).body?.cancel();
    expect(obs.waits).toEqual([1000]);
    expect(a.hits.length).toBe(2);
    expect(layer.health().breakers[a.host]?.openUntil).toBe(START + 1000 + 300_000);
  });
});

describe("the retry budget running out", () => {
  it("an empty bucket means no retry, never a wait: earned tokens alone give 1.1 requests a call", async () => {
    a.on(answer(503, undefined));
    const clock = new TestClock(START);
    const layer = createResilience({ clock, retry: RETRY, breaker: false, budget: { ratio: 0.1, minPerSecond: 0 } });
    const perCall: number[] = [];
    for (let i = 0; i < 20; i++) {
      const { value, obs } = await drive(layer, clock, () => layer.fetch(`${a.base}/b`));
      await (value as Response).body?.cancel();
      perCall.push(getResilienceInfo(value as Response)?.attempts ?? -1);
      if ((getResilienceInfo(value as Response)?.attempts ?? 0) === 1) expect(obs.elapsed).toBe(0);
    }
    expect(perCall.slice(0, 9)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(a.hits.length).toBeLessThanOrEqual(22);
    expect(layer.health().budget?.retriesDenied).toBeGreaterThan(0);
  });

  it("a 503 with Retry-After 2 and no token: resolves with that 503 at once", async () => {
    a.on(answer(503, "2"));
    const clock = new TestClock(START);
    const layer = createResilience({ clock, retry: RETRY, budget: { ratio: 0.1, minPerSecond: 0 } });
    const { value, obs } = await drive(layer, clock, () => layer.fetch(`${a.base}/b`));
    expect((value as Response).status).toBe(503);
    await (value as Response).body?.cancel();
    expect(obs.waits).toEqual([]);
    expect(obs.elapsed).toBe(0);
    expect(a.hits.length).toBe(1);
    expect(layer.health().budget?.retriesDenied).toBe(1);
  });
});

describe("retryOn and custom predicates", () => {
  const cases: Array<{
    name: string;
    retryOn: NonNullable<Exclude<Parameters<typeof createResilience>[0], undefined>["retry"]> extends infer R
      ? R extends { retryOn?: infer O }
        ? O
        : never
      : never;
    status: number;
    m: MethodCase;
    attempts: number;
    failures: number;
  }> = [
    // docs/options.md `retry.retryOn.statuses` "statuses to retry"
    { name: "409 listed, GET", retryOn: { statuses: [409] }, status: 409, m: "GET", attempts: 3, failures: 0 },
    {
      name: "409 listed, POST+key",
      retryOn: { statuses: [409] },
      status: 409,
      m: "POST+key",
      attempts: 3,
      failures: 0,
    },
    // docs/retry.md: a keyless POST goes again only on 429 and 503
    {
      name: "409 listed, keyless POST",
      retryOn: { statuses: [409] },
      status: 409,
      m: "POST",
      attempts: 1,
      failures: 0,
    },
    { name: "599 listed, GET", retryOn: { statuses: [599] }, status: 599, m: "GET", attempts: 3, failures: 3 },
    {
      name: "599 listed, keyless PATCH",
      retryOn: { statuses: [599] },
      status: 599,
      m: "PATCH",
      attempts: 1,
      failures: 1,
    },
    { name: "503 not listed, GET", retryOn: { statuses: [500] }, status: 503, m: "GET", attempts: 1, failures: 1 },
    {
      name: "429 not listed, keyless POST",
      retryOn: { statuses: [503] },
      status: 429,
      m: "POST",
      attempts: 1,
      failures: 1,
    },
    { name: "no statuses at all, GET 503", retryOn: { statuses: [] }, status: 503, m: "GET", attempts: 1, failures: 1 },
    // docs/options.md `retry.retryOn.methods` "methods retried on any retryable outcome"
    { name: "methods [GET], PUT 500", retryOn: { methods: ["GET"] }, status: 500, m: "PUT", attempts: 1, failures: 1 },
    {
      name: "methods [GET], DELETE 502",
      retryOn: { methods: ["GET"] },
      status: 502,
      m: "DELETE",
      attempts: 1,
      failures: 1,
    },
    {
      name: "methods [GET, POST], keyless POST 500",
      retryOn: { methods: ["GET", "POST"] },
      status: 500,
      m: "POST",
      attempts: 3,
      failures: 3,
    },
    {
      name: "methods [GET], keyless POST 503",
      retryOn: { methods: ["GET"] },
      status: 503,
      m: "POST",
      attempts: 3,
      failures: 3,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.attempts} attempt(s)`, async () => {
      a.on(answer(c.status, undefined));
      const clock = new TestClock(START);
      const layer = layerOn(clock, { retry: { ...RETRY, retryOn: c.retryOn } });
      const { value } = await drive(layer, clock, () => layer.fetch(`${a.base}/r`, init(c.m)));
      expect((value as Response).status).toBe(c.status);
      await (value as Response).body?.cancel();
      expect(a.hits.length).toBe(c.attempts);
      expect(failuresOf(layer, a.host)).toBe(c.failures);
    });
  }

  const reset = (h: Hit) => h.res.socket?.destroy();

  it("retryOn.error () => false: a reset GET is not retried, rejects with RetryExhaustedError after 1 attempt", async () => {
    a.on(reset);
    const clock = new TestClock(START);
    const layer = layerOn(clock, { retry: { ...RETRY, retryOn: { error: () => false } } });
    const { error } = await drive(layer, clock, () => layer.fetch(`${a.base}/e`));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as { attempts: number }).attempts).toBe(1);
    expect(a.hits.length).toBe(1);
    expect(failuresOf(layer, a.host)).toBe(1);
  });

  it("retryOn.error () => true: a reset GET retried to maxAttempts; a reset keyless POST still sent once", async () => {
    a.on(reset);
    const clock = new TestClock(START);
    const layer = layerOn(clock, { retry: { ...RETRY, retryOn: { error: () => true } } });
    const get = await drive(layer, clock, () => layer.fetch(`${a.base}/e`));
    expect((get.error as { attempts: number }).attempts).toBe(3);
    expect(get.obs.waits).toEqual([1000, 2000]);
    expect(a.hits.length).toBe(3);
    a.reset();
    a.on(reset);
    const post = await drive(layer, clock, () => layer.fetch(`${a.base}/e`, init("POST")));
    expect(isRetryExhaustedError(post.error)).toBe(true);
    expect(a.hits.length).toBe(1);
  });
});

describe("a Retry-After hold meeting the breaker's own opening", () => {
  const open =
    (extra: Parameters<typeof createResilience>[0] = {}) =>
    (clock: TestClock) =>
      createResilience({
        clock,
        retry: false,
        budget: false,
        breaker: { failureThreshold: 1, timeout: 10_000, successThreshold: 1 },
        ...extra,
      });

  it("an answer that both trips the breaker and holds it: one event, until the later time (the hold)", async () => {
    a.on(answer(503, "120"));
    const clock = new TestClock(START);
    const layer = open()(clock);
    const { obs } = await drive(layer, clock, () => layer.fetch(`${a.base}/x`));
    expect(obs.breakers.map((e) => [e.from, e.to, e.openUntil])).toEqual([["closed", "open", START + 120_000]]);
  });

  it("an answer that both trips the breaker and holds it: one event, until the later time (the breaker's)", async () => {
    a.on(answer(503, "5"));
    const clock = new TestClock(START);
    const layer = open({ retry: { maxAttempts: 1, maxRetryAfter: 2000 } })(clock);
    const { obs } = await drive(layer, clock, () => layer.fetch(`${a.base}/x`));
    expect(obs.breakers.map((e) => [e.from, e.to, e.openUntil])).toEqual([["closed", "open", START + 10_000]]);
  });

  it("a half-open probe answered 503 Retry-After 120 re-opens until the hold", async () => {
    a.on(answer(500, undefined));
    const clock = new TestClock(START);
    const layer = open()(clock);
    await (await layer.fetch(`${a.base}/x`)).body?.cancel();
    await clock.advance(10_000);
    a.on(answer(503, "120"));
    const { obs } = await drive(layer, clock, () => layer.fetch(`${a.base}/x`));
    expect(obs.breakers.map((e) => [e.from, e.to, e.openUntil])).toEqual([
      ["open", "half_open", null],
      ["half_open", "open", START + 10_000 + 120_000],
    ]);
    expect(layer.health().breakers[a.host]?.reason).toBe("Retry-After 120 s on status 503");
  });

  it("an answer in flight when the host opened holds it longer: open → open, one event", async () => {
    let release: (() => void) | undefined;
    a.on((h) => {
      if (h.path === "/slow") release = () => answer(503, "120")(h);
      else answer(500, undefined)(h);
    });
    const clock = new TestClock(START);
    const layer = open({ breaker: { failureThreshold: 1, timeout: 10_000 } })(clock);
    const events: BreakerEvent[] = [];
    layer.on("breaker", (e) => events.push(e));
    const slow = layer.fetch(`${a.base}/slow`);
    await a.nth(1);
    const fast = await layer.fetch(`${a.base}/fast`);
    await fast.body?.cancel();
    expect(events.map((e) => [e.from, e.to, e.openUntil])).toEqual([["closed", "open", START + 10_000]]);
    release?.();
    const res = await slow;
    expect(res.status).toBe(503);
    await res.body?.cancel();
    expect(events.map((e) => [e.from, e.to, e.openUntil])).toEqual([
      ["closed", "open", START + 10_000],
      ["open", "open", START + 120_000],
    ]);
    expect(layer.health().status).toBe("unhealthy");
  });
});

describe("odd retryOn settings", () => {
  it("maxRetryAfter 0: any Retry-After above 0 holds the host; `0` is slept through (0 ms)", async () => {
    a.on(answer(503, "1"));
    const clock = new TestClock(START);
    const layer = layerOn(clock, { retry: { ...RETRY, maxRetryAfter: 0 } });
    const held = await drive(layer, clock, () => layer.fetch(`${a.base}/z`));
    await (held.value as Response).body?.cancel();
    expect([a.hits.length, held.obs.elapsed]).toEqual([1, 0]);
    expect(layer.health().breakers[a.host]?.openUntil).toBe(START + 1000);
    a.reset();
    a.on(answer(503, "0"));
    const other = layerOn(clock, { retry: { ...RETRY, maxRetryAfter: 0 } });
    const slept = await drive(other, clock, () => other.fetch(`${a.base}/z`));
    await (slept.value as Response).body?.cancel();
    expect(slept.obs.waits).toEqual([0, 0]);
    expect(a.hits.length).toBe(3);
  });

  it("a 2xx or 3xx listed in retryOn.statuses is retried, and counts as the service's success", async () => {
    for (const status of [200, 299, 304]) {
      a.reset();
      a.on(answer(status, undefined));
      const clock = new TestClock(START);
      const layer = layerOn(clock, { retry: { ...RETRY, retryOn: { statuses: [status] } } });
      const { value, obs } = await drive(layer, clock, () => layer.fetch(`${a.base}/ok`));
      await (value as Response).body?.cancel();
      expect([status, a.hits.length, obs.waits]).toEqual([status, 3, [1000, 2000]]);
      expect(failuresOf(layer, a.host)).toBe(0);
    }
  });
});
