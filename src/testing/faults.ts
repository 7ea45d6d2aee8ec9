import { HttpResponse } from "msw";
import type { Clock } from "../core/clock.ts";
import { ownClock, ownTimer, realTimer } from "../core/clock.ts";
import { optionKeys } from "../core/options/option-keys.ts";
import { seededRandom } from "../core/random.ts";
import { shownValue } from "../core/shown-name.ts";

/**
 * How an upstream answers one request: a function of the request and of the
 * attempt number at that handler (1 for the first request it sees).
 */
export type Fault = (request: Request, info: { attempt: number }) => Response | Promise<Response>;

/** Where waiting faults take their time from: an injected clock, or real timers. */
export interface TimeSource {
  clock?: Clock;
}

function wait(ms: number, source: TimeSource, signal?: AbortSignal): Promise<void> {
  // A request aborted already (while its body was read) waits for nothing.
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    // Real timers clamp as the library's do: `setTimeout` fires a delay past 2^31 - 1 ms at once.
    // A clock of yours as the layer sees one: the wait an abort cancels does nothing, even without a cancel function.
    const cancel = source.clock ? ownTimer(source.clock)(resolve, ms) : realTimer(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        cancel();
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/**
 * A response with `code`; `retryAfter` in seconds or as a date sets `Retry-After`.
 * @example status(503, { retryAfter: 2 })
 */
export function status(
  code: number,
  options: { retryAfter?: number | Date; body?: string; headers?: Record<string, string> } = {},
): Fault {
  checkStatus("status(code)", code);
  options = checkOptionsObject("status(code, options)", options, ["retryAfter", "body", "headers"]);
  const given = listedHeaders("status(code, { headers })", options.headers);
  // A body the status cannot carry would be dropped without a word, and the test would check a body never sent.
  if (options.body !== undefined && NULL_BODY.includes(code))
    throw new TypeError(`status(code, { body }): a ${code} carries no body`);
  const { retryAfter } = options;
  // Only what a `Retry-After` can say (RFC 9110): digits (`String` writes 1e21 and
  // up with an exponent; past 2^53 the seconds are not exact anyway) or an
  // IMF-fixdate, whose year has four digits.
  if (
    retryAfter !== undefined &&
    !(retryAfter instanceof Date
      ? retryAfter.getUTCFullYear() >= 0 && retryAfter.getUTCFullYear() <= 9999
      : Number.isSafeInteger(retryAfter) && retryAfter >= 0)
  ) {
    throw new TypeError(
      `status(code, { retryAfter }): expected whole seconds >= 0 (below 2^53) or a valid Date (years 0-9999), got ${retryAfter instanceof Date ? String(retryAfter) : shownValue(retryAfter)}`,
    );
  }
  return () => {
    const headers = new Headers(given);
    if (options.retryAfter !== undefined) {
      headers.set(
        "retry-after",
        options.retryAfter instanceof Date ? options.retryAfter.toUTCString() : String(options.retryAfter),
      );
    }
    const body = NULL_BODY.includes(code) ? null : (options.body ?? `status ${code}`);
    return new HttpResponse(body, { status: code, headers });
  };
}

/** A JSON response (200 unless `init.status` says otherwise). */
export function json(body: unknown, init: ResponseInit = {}): Fault {
  init = checkOptionsObject("json(body, init)", init, ["status", "statusText", "headers"]);
  if (init.status !== undefined) checkStatus("json(body, { status })", init.status);
  if (NULL_BODY.includes(init.status ?? 200))
    throw new TypeError(`json(body, { status }): a ${init.status} carries no body; use status(${init.status})`);
  const given = listedHeaders("json(body, { headers })", init.headers);
  if (init.statusText !== undefined) {
    try {
      new Response(null, { statusText: init.statusText });
    } catch {
      throw new TypeError(
        `json(body, { statusText }): expected a reason phrase a Response can carry (no line break or control character), got ${shownValue(init.statusText)}`,
      );
    }
  }
  let written: string | undefined;
  try {
    written = JSON.stringify(body);
  } catch (error) {
    throw new TypeError(`json(body): expected a value JSON can write (${(error as Error).message})`);
  }
  // `undefined`, a function or a symbol: JSON writes nothing, and the answer would be an empty body.
  if (written === undefined)
    throw new TypeError(`json(body): expected a value JSON can write, got ${shownValue(body)}`);
  // The body as written now: an edit made to it afterwards changes no answer.
  return () => HttpResponse.json(JSON.parse(written as string), { ...init, headers: new Headers(given) });
}

/** Statuses whose responses carry no body (a Response with one throws). */
const NULL_BODY = [204, 205, 304];

/**
 * Refuses options that are no object (`null`, a number): reading them would
 * fail with no argument named; and a key it does not know (`retryAfer`), which
 * would leave the fault on its default and the test proving nothing. Returns
 * the known keys as read now: a builder reads its options once, when it is
 * called, so an edit made to them afterwards changes no answer.
 */
export function checkOptionsObject<T>(what: string, options: T, known: readonly string[]): T {
  if (typeof options !== "object" || options === null)
    throw new TypeError(`${what}: expected an object, got ${shownValue(options)}`);
  // Every name the builder could read it by (a class's getter, a hidden or inherited key), as the layer's options.
  const unknown = optionKeys(options).find((key) => !known.includes(key));
  if (unknown !== undefined)
    throw new TypeError(`${what}: unknown option ${shownValue(unknown)}, expected one of ${known.join(", ")}`);
  return Object.fromEntries(known.map((key) => [key, (options as Record<string, unknown>)[key]])) as T;
}

/** What a Response can carry: refused when the fault is built, not as a RangeError inside MSW. */
function checkStatus(what: string, code: number): void {
  if (!(Number.isInteger(code) && code >= 200 && code <= 599))
    throw new TypeError(`${what}: expected a status from 200 to 599, got ${shownValue(code)}`);
}

/**
 * Headers as a list of pairs, read now. Refuses, when the fault is built, headers no `Headers` can carry (a bad
 * name, a line break in a value). The platform's message quotes the name or value, which may hold a key (a pair
 * written the wrong way round): it is not passed on, as the layer never quotes a header it refuses.
 */
function listedHeaders(what: string, headers: HeadersInit | undefined): [string, string][] {
  try {
    return [...new Headers(headers)];
  } catch {
    throw new TypeError(
      `${what}: expected headers a Response can carry (names that are HTTP tokens, values without a line break or control character)`,
    );
  }
}

/** Refuses a clock given without `setTimer`: the waits would fail only inside MSW. */
function checkClock(what: string, source: TimeSource): void {
  if (source.clock !== undefined && typeof source.clock?.setTimer !== "function")
    throw new TypeError(`${what}: expected a clock (a TestClock, or { now(), setTimer() })`);
}

/** Refuses, when the fault is built, a fault that is no function (it would fail only inside MSW). */
function checkFault(what: string, fault: unknown): void {
  if (typeof fault !== "function")
    throw new TypeError(`${what}: expected a fault (a function), got ${shownValue(fault)}`);
}

/**
 * Refuses any argument given to a builder that takes none (`hang({ timeout: 100 })`): it would leave the fault on
 * its default and the test proving nothing, as an unknown option does.
 */
function checkNoArguments(what: string, given: number): void {
  if (given > 0) throw new TypeError(`${what}: takes no arguments, got ${given}`);
}

/** A 200 with a JSON content type and a body that is not JSON. */
export function malformedJson(...none: []): Fault {
  checkNoArguments("malformedJson()", none.length);
  return () =>
    new HttpResponse('{"id": "job_1", "status": ', { status: 200, headers: { "content-type": "application/json" } });
}

/** The connection fails: fetch rejects with a `TypeError`. */
export function networkError(...none: []): Fault {
  checkNoArguments("networkError()", none.length);
  return () => HttpResponse.error();
}

/** Waits `ms` before headers, then answers with `then`. An abort ends the wait as a network error. */
export function latency(ms: number, then: Fault, source: TimeSource = {}): Fault {
  if (!(typeof ms === "number" && ms >= 0 && ms < Number.POSITIVE_INFINITY))
    throw new TypeError(`latency(ms): expected ms >= 0, got ${shownValue(ms)}`);
  if (typeof then !== "function") throw new TypeError("latency(ms, then): then must be a fault (a function)");
  source = checkOptionsObject("latency(ms, then, source)", source, ["clock"]);
  checkClock("latency(ms, then, { clock })", source);
  return async (request, info) => {
    try {
      await wait(ms, source, request.signal);
    } catch (error) {
      // An abort is the client's; anything else is your clock's `setTimer` failing, reported as `outage` reports a reading.
      if (!request.signal.aborted) console.error(error);
      return HttpResponse.error();
    }
    return then(request, info);
  };
}

/** Never answers; when the client aborts, the connection just closes. */
export function hang(...none: []): Fault {
  checkNoArguments("hang()", none.length);
  return (request) =>
    new Promise<Response>((resolve) => {
      if (request.signal.aborted) resolve(HttpResponse.error());
      request.signal.addEventListener("abort", () => resolve(HttpResponse.error()), { once: true });
    });
}

/**
 * A streamed 200: `chunks` one after the other (`interval` ms apart). With
 * `stallAfter: n` it sends n chunks and then nothing; with `breakAfter: n` it
 * sends n chunks and then, `interval` (default 10 ms) later,
 * fails mid-body. Its waits are on `clock` when one is given (advance it to
 * see the break), else real time.
 */
export function stream(
  chunks: string[],
  options: TimeSource & { interval?: number; stallAfter?: number; breakAfter?: number; contentType?: string } = {},
): Fault {
  // Read by index per request, encoded as text: anything else would fail only inside MSW.
  if (!Array.isArray(chunks) || !Array.from(chunks).every((chunk) => typeof chunk === "string"))
    throw new TypeError("stream(chunks): expected an array of strings");
  chunks = Array.from(chunks);
  options = checkOptionsObject("stream(chunks, options)", options, [
    "interval",
    "stallAfter",
    "breakAfter",
    "contentType",
    "clock",
  ]);
  if (
    options.interval !== undefined &&
    !(typeof options.interval === "number" && options.interval >= 0 && options.interval < Number.POSITIVE_INFINITY)
  )
    throw new TypeError(`stream(chunks, { interval }): expected ms >= 0, got ${shownValue(options.interval)}`);
  checkClock("stream(chunks, { clock })", options);
  listedHeaders("stream(chunks, { contentType })", { "content-type": options.contentType ?? "text/event-stream" });
  // A break after the last chunk would be no break: the client would read a whole body.
  const { stallAfter } = options;
  if (stallAfter !== undefined && !(Number.isInteger(stallAfter) && stallAfter >= 0 && stallAfter <= chunks.length)) {
    throw new TypeError(
      `stream(chunks, { stallAfter }): expected 0..${chunks.length} (chunks sent first), got ${shownValue(stallAfter)}`,
    );
  }
  const { breakAfter } = options;
  if (breakAfter !== undefined && !(Number.isInteger(breakAfter) && breakAfter >= 0 && breakAfter < chunks.length)) {
    throw new TypeError(
      `stream(chunks, { breakAfter }): expected 0..${chunks.length - 1} (fewer than the chunks), got ${shownValue(breakAfter)}`,
    );
  }
  return () => {
    const encoder = new TextEncoder();
    let sent = 0;
    let opened = false;
    // A reader that cancels the body (an abort, a dropped response) ends the
    // wait for the next chunk too: no timer is left behind it.
    const cancelled = new AbortController();
    const body = new ReadableStream<Uint8Array>({
      cancel() {
        cancelled.abort();
      },
      async pull(controller) {
        if (options.breakAfter !== undefined && sent >= options.breakAfter) {
          // With nothing sent yet, an empty chunk first (see the stall below):
          // `breakAfter: 0` breaks the body, not the headers.
          if (sent === 0 && !opened) {
            opened = true;
            controller.enqueue(new Uint8Array(0));
            return;
          }
          // Break a moment later, so headers and the first chunks reach the client first.
          await wait(options.interval ?? 10, options, cancelled.signal);
          controller.error(new TypeError("upstream connection broke mid-body"));
          return;
        }
        if (options.stallAfter !== undefined && sent >= options.stallAfter) {
          // With nothing sent yet, an empty chunk first: MSW hands a mocked
          // response to fetch only once its body yields, and the stall is
          // meant for the body, not the headers.
          if (sent === 0) controller.enqueue(new Uint8Array(0));
          return new Promise<void>(() => {});
        }
        if (sent >= chunks.length) {
          controller.close();
          return;
        }
        if (sent > 0 && options.interval) await wait(options.interval, options, cancelled.signal);
        controller.enqueue(encoder.encode(chunks[sent++] as string));
      },
    });
    const headers = new Headers({ "content-type": options.contentType ?? "text/event-stream" });
    // A broken stream announces its full length, as a real truncated response
    // does: the client then sees the early end as an error, not a short body.
    if (options.breakAfter !== undefined) {
      headers.set("content-length", String(chunks.reduce((n, c) => n + encoder.encode(c).byteLength, 0)));
    }
    return new HttpResponse(body, { headers });
  };
}

/** Answers with each fault in turn; after the last, repeats it (or cycles). */
export function sequence(faults: Fault[], options: { then?: "repeat-last" | "cycle" } = {}): Fault {
  if (!Array.isArray(faults) || faults.length === 0)
    throw new TypeError("sequence(faults): expected at least one fault");
  // A loop, not `some`: `some` skips the holes of a sparse array.
  for (let i = 0; i < faults.length; i++) {
    if (typeof faults[i] !== "function")
      throw new TypeError(
        `sequence(faults): every entry must be a fault (a function), got ${shownValue(faults[i])} at ${i}`,
      );
  }
  faults = Array.from(faults);
  options = checkOptionsObject("sequence(faults, options)", options, ["then"]);
  if (options.then !== undefined && options.then !== "repeat-last" && options.then !== "cycle")
    throw new TypeError(
      `sequence(faults, { then }): expected "repeat-last" or "cycle", got ${shownValue(options.then)}`,
    );
  return (request, info) => {
    const i = info.attempt - 1;
    const index = options.then === "cycle" ? i % faults.length : Math.min(i, faults.length - 1);
    return (faults[index] as Fault)(request, info);
  };
}

/**
 * Fails a share `rate` of requests at random, reproducibly for a `seed`.
 * @example flaky(0.3, { seed: 1 }) // 30% 503s, else a JSON 200
 */
export function flaky(rate: number, options: { seed: number; fail?: Fault; ok?: Fault }): Fault {
  if (!(typeof rate === "number" && rate >= 0 && rate <= 1))
    throw new TypeError(`flaky(rate): expected 0..1, got ${shownValue(rate)}`);
  if (typeof options === "object" && options !== null)
    checkOptionsObject("flaky(rate, options)", options, ["seed", "fail", "ok"]);
  const seed = options?.seed;
  if (typeof seed !== "number" || !Number.isFinite(seed))
    throw new TypeError(
      `flaky(rate, { seed }): expected a number (the draws repeat for a seed), got ${shownValue(seed)}`,
    );
  if (options.fail !== undefined) checkFault("flaky(rate, { fail })", options.fail);
  if (options.ok !== undefined) checkFault("flaky(rate, { ok })", options.ok);
  const random = seededRandom(seed);
  const draws: number[] = [];
  const fail = options.fail ?? status(503);
  const ok = options.ok ?? json({ ok: true });
  // The n-th request at the handler always gets the n-th draw: after `upstream.reset()`
  // (or inside a `sequence`) the answers start over, as a `sequence`'s do.
  return (request, info) => {
    while (draws.length < info.attempt) draws.push(random());
    return (draws[info.attempt - 1] as number) < rate ? fail(request, info) : ok(request, info);
  };
}

/** Answers with `during` while `clock.now()` is in [from, until), else with `otherwise`. */
export function outage(window: { from: number; until: number; clock: Clock }, during: Fault, otherwise: Fault): Fault {
  if (typeof window?.clock?.now !== "function")
    throw new TypeError("outage({ from, until, clock }): expected a clock (a TestClock, or { now(), setTimer() })");
  if (!(typeof window.from === "number" && typeof window.until === "number" && window.from <= window.until))
    throw new TypeError(
      `outage({ from, until }): expected from <= until, got ${shownValue(window.from)} and ${shownValue(window.until)}`,
    );
  window = checkOptionsObject("outage(window)", window, ["from", "until", "clock"]);
  checkFault("outage(window, during)", during);
  checkFault("outage(window, during, otherwise)", otherwise);
  // Each reading checked as the layer checks a clock of yours: NaN would keep the outage from ever starting.
  const clock = ownClock(window.clock);
  return (request, info) => {
    let now: number;
    try {
      now = clock.now();
    } catch (error) {
      // MSW answers a handler's throw as a 500, which the layer would take for the API's own answer: the
      // request fails as a network error instead, the error naming the reading reported as MSW reports one.
      console.error(error);
      return HttpResponse.error();
    }
    return now >= window.from && now < window.until ? during(request, info) : otherwise(request, info);
  };
}
