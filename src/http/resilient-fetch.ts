import { errorName } from "../core/error-detail.ts";
import {
  isBulkheadRejectedError,
  isCircuitOpenError,
  isTimeoutError,
  ResilienceError,
  RetryExhaustedError,
  unlessThrows,
} from "../core/errors.ts";
import { isBlob, isListenableSignal } from "../core/kind-of.ts";
import { pageBase } from "../core/page-base.ts";
import { platformSignal } from "../core/platform-signal.ts";
import { redactErrorChain, redactUrl, redactUrlsIn } from "../core/redact-url.ts";
import { type Deadline, startDeadline } from "../policies/deadline.ts";
import { isStoreFailure } from "../stores/unawaited-store.ts";
import { corsHint } from "./cors-hint.ts";
import type { PipelineParts } from "./pipeline-parts.ts";
import { type CallRequest, isStream } from "./request/call-request.ts";
import { normalizeMethod } from "./request/check-request.ts";
import { copyHeaders } from "./request/headers.ts";
import { checkInput, normalizeRequest, refuseOverQuota, refuseReadBody } from "./request/normalize-request.ts";
import { plainInit } from "./request/plain-init.ts";
import { bodyReadError } from "./request/replay-body.ts";
import type { FetchLike } from "./resilience-options.ts";
import { isServiceFailureStatus } from "./send/classify.ts";
import { discardBody } from "./send/discard-body.ts";
import { attachInfo } from "./send/resilience-info.ts";
import { type CallState, sendWithRetries } from "./send/send-with-retries.ts";
import type { ChainMatch, Served } from "./stages.ts";

/**
 * Builds `resilience.fetch`. A call is normalised once into its
 * {@link CallRequest}, rewritten for the degradation level (when the
 * degradation stage joined), then sent down its fallback chain if its URL
 * selects one (the fallback stage), else to its host with retries
 * (`sendWithRetries`). Resolves with a Response whenever it has one to
 * give (the last attempt's, or a chain's last answer; even a 503, as fetch
 * would); rejects when it has none, or on an abort or `timeout.total`. The caller's mistakes (a bad URL, method or header) reject at
 * once, before the deadline starts or any breaker hears of them.
 */
export function createResilientFetch(parts: PipelineParts): FetchLike {
  return function resilientFetch(input, given) {
    let started: number;
    let call: Call | undefined;
    try {
      // Read inside the `try`: what a clock of yours throws rejects the call, never throws.
      started = parts.clock.now();
      const init = plainInit(given);
      call = startCall(parts, input, init, started);
      // A `data:` or `blob:` URL reads no network (the OpenAI SDK probes
      // `fetch("data:,")`): fetch gets it as it is, with no breaker, retry,
      // timeout or event.
      if (!call) return Promise.resolve(parts.platform()(input, init));
    } catch (error) {
      return Promise.reject(error);
    }
    return send(parts, call, started);
  };
}

/**
 * A URL of a scheme that reads no network, as the URL parser reads it: past
 * leading controls and spaces, with tabs and newlines anywhere skipped.
 */
const LOCAL_URL = /^[\0-\x20]*(?:d[\t\n\r]*a[\t\n\r]*t[\t\n\r]*a|b[\t\n\r]*l[\t\n\r]*o[\t\n\r]*b)[\t\n\r]*:/i;

/** A call as it starts: its request (read or being read), breaker key, route, deadline and the caller's signal. */
interface Call {
  pending: CallRequest | Promise<CallRequest>;
  /** What the failure of a call whose `Request` body is still being read names. */
  url: string;
  method: string;
  key: string;
  route: ChainMatch | undefined;
  deadline: Deadline | undefined;
  callerSignal: AbortSignal | undefined;
}

/**
 * Checks and normalises the input; throws on bad input with nothing started
 * (no timer left running). `undefined` for a URL that reads no network.
 */
function startCall(
  parts: PipelineParts,
  input: RequestInfo | URL,
  init: RequestInit | undefined,
  started: number,
): Call | undefined {
  // fetch takes a `Request` as it is and makes text of anything else, once.
  // (A runtime may have no global `Request`: a call with `fetch` given as an option works there.)
  const given = typeof Request !== "undefined" && input instanceof Request ? input : undefined;
  const text = typeof input === "string" ? input : given ? given.url : ownText(input);
  // A `Request` of another realm (a same-origin iframe's), which fetch takes like
  // any other: copied into one of this realm, with the body `init` gives in place
  // of its own (a used one refused unless replaced, as fetch refuses it).
  const request =
    text === "[object Request]"
      ? new Request(
          input as Request,
          init?.body == null ? undefined : ({ method: init.method, body: init.body } as RequestInit),
        )
      : given;
  const callerSignal = (init?.signal !== undefined ? init.signal : request?.signal) ?? undefined;
  // Read by its shape, as fetch reads one: a signal of another realm is one.
  if (callerSignal !== undefined && !isListenableSignal(callerSignal)) {
    throw new TypeError(`resilience.fetch: init.signal is no AbortSignal, got ${typeName(callerSignal)}`);
  }
  const url = request ? request.url : resolvedOnce(text);
  if (url === undefined) {
    throw new TypeError(`resilience.fetch(input): expected a URL string, URL or Request, got ${typeName(input)}`);
  }
  parts.transport();
  const local = LOCAL_URL.test(url);
  // The breaker key (the host, unless a chain's name) is found first: finding
  // it refuses an invalid URL, port or `user:pass@` before anything starts.
  const route = local ? undefined : parts.chains?.match(url, request);
  const key = local ? "" : route ? route.name : parts.keyOf(url);
  if (callerSignal?.aborted) {
    // fetch builds its Request before it looks at the signal: the caller's
    // mistakes (a bad URL above, a bad method or header, a read body) are
    // refused first.
    checkInput(request ?? url, init, parts.normalize.follows);
    // A `Request`'s own body, unless `init.body` replaces it (then fetch leaves it alone; `null` does not).
    const body = init?.body == null ? request?.body : undefined;
    if (request && body !== undefined) refuseReadBody(request, body?.locked === true);
    // Nothing is sent: the body is cancelled, as fetch cancels it, so its source closes.
    body?.cancel(callerSignal.reason).catch(() => {});
    throw callerSignal.reason;
  }
  if (local) return undefined;
  const signal = callerSignal && platformSignal(callerSignal);
  const { total, attempt } = parts.timeout;
  const deadline = total === undefined ? undefined : startDeadline(parts.clock, started, total, signal, attempt);
  try {
    const pending = normalizeRequest(request ?? url, init, parts.normalize, deadline?.signal ?? signal);
    // Checked by now: a method `init` gives is a valid one.
    const method = init?.method === undefined ? (request?.method ?? "GET") : normalizeMethod(init.method);
    // The caller's own signal settles the call: its `reason` as given, even `undefined` (a polyfill's may set none).
    return { pending, url, method, key, route, deadline, callerSignal };
  } catch (error) {
    deadline?.cancel();
    throw error;
  }
}

async function send(parts: PipelineParts, call: Call, started: number): Promise<Response> {
  const { key, route, deadline, callerSignal } = call;
  const state: CallState = { deadline, attempts: 0 };
  const { chains, levels } = parts;
  const level = levels ? levels.levelName() : "full";
  let request: CallRequest | undefined;
  let deposited: number | undefined;
  // The answer in hand, once there is one: a throw after it (a clock of yours reading NaN) lets its body go.
  let answer: Response | undefined;
  try {
    request = call.pending instanceof Promise ? await call.pending : call.pending;
    // One logical request, once its body could be read (taken back below if it was none).
    deposited = parts.budget?.deposit();
    if (request.replay.oversize !== undefined && parts.events.has("replay")) {
      parts.events.emit("replay", {
        url: redactUrl(request.url),
        bytes: request.replay.oversize,
        limit: parts.maxReplayBytes,
      });
    }
    const rewritten = levels?.rewrite(request, level);
    if (rewritten) {
      request = await rewritten;
      refuseOverQuota(request.body, request.init);
    }
    // A chain says which endpoint served; a host call needs no object for it.
    const served: Served | undefined = route && chains ? await chains.send(route, request, state) : undefined;
    const response = served ? served.response : await sendWithRetries(parts, request, key, state);
    answer = response;
    // An abort heard as the answer came (a listener's, on the breaker or the level it moved) rejects, as
    // fetch would, counted nowhere: its body is let go below, as after any throw with the answer in hand.
    const heardAbort = () => {
      if (callerSignal?.aborted) throw callerSignal.reason;
    };
    heardAbort();
    const ended = parts.clock.now();
    // A clock set back during the call measures less than nothing: none.
    const durationMs = Math.max(0, ended - started);
    levels?.observe(durationMs, isServiceFailureStatus(response.status));
    heardAbort();
    parts.analytics.record(key, request.url, response.status, undefined, durationMs, ended);
    attachInfo(
      response,
      {
        attempts: state.attempts,
        endpoint: served ? served.endpoint : key,
        fromFallback: served ? served.fromFallback : false,
        degradationLevel: level,
        durationMs,
      },
      state.attempts > (served?.local ? 0 : 1),
    );
    if (parts.events.has("request")) {
      parts.events.emit("request", {
        key,
        url: redactUrl(request.url),
        method: request.method,
        status: response.status,
        error: undefined,
        attempts: state.attempts,
        durationMs,
        outcome: "response",
      });
    }
    return response;
  } catch (cause) {
    if (answer) discardBody(answer);
    const error = settleError(callerSignal, deadline, cause, state.attempts, request, key);
    const aborted = callerSignal?.aborted === true && error === callerSignal.reason;
    const ended = parts.clock.now();
    const durationMs = Math.max(0, ended - started);
    const url = request?.url ?? call.url;
    // Nor is a call that sent nothing because of its own request (a body
    // that could not be read): the caller's, like the mistakes refused at once.
    // A store's failure is no fault of the request: it counts. Nor is an
    // abort such a failure, whatever its reason (a caller may abort with a `TypeError`).
    const callers =
      !aborted &&
      state.attempts === 0 &&
      unlessThrows(() => error instanceof TypeError, false) &&
      !isStoreFailure(cause);
    if (!aborted && !callers) {
      parts.analytics.record(key, url, undefined, error, durationMs, ended);
      levels?.observe(durationMs, true);
    }
    // Nor does it earn the retry budget a token (one refused by its platform had deposited).
    if (callers && deposited) parts.budget?.deposit(-deposited);
    if (parts.events.has("request")) {
      parts.events.emit("request", {
        key,
        url: redactUrl(url),
        method: request?.method ?? call.method,
        status: undefined,
        error: errorName(error),
        attempts: state.attempts,
        durationMs,
        outcome: aborted ? "aborted" : "error",
      });
    }
    throw error;
  } finally {
    deadline?.cancel();
    // A stream the layer holds and never sent (refused, aborted, answered
    // without sending, replaced by a `transform`) is cancelled, as fetch's
    // abort cancels a body: the caller's source closes now, not when the
    // collector finds it. One handed to the transport is no longer held.
    request?.replay.held?.cancel().catch(() => {});
  }
}

/** The error a call rejects with when it has no Response to give. */
function settleError(
  callerSignal: AbortSignal | undefined,
  deadline: Deadline | undefined,
  cause: unknown,
  attempts: number,
  request: CallRequest | undefined,
  key: string,
): unknown {
  if (callerSignal?.aborted) return callerSignal.reason;
  if (deadline?.fired()) {
    const error = deadline.error();
    error.attempts = attempts;
    return error;
  }
  // A breaker store of one's own that threw fails the call whatever it threw
  // (one of this library's classes too: a named breaker guarding its Redis):
  // never the call's own open circuit or timeout.
  const storeFailed = isStoreFailure(cause);
  if (!storeFailed && (isCircuitOpenError(cause) || isBulkheadRejectedError(cause))) return cause;
  // A chain's own error (made by this copy of the library: checked by name, so
  // the root bundle does not carry the fallback entry's error class). One a
  // transport threw (a generic `FallbackChain` over mirrors) was cut by no one.
  if (
    !storeFailed &&
    unlessThrows(() => cause instanceof ResilienceError && cause.name === "FallbackExhaustedError", false)
  )
    return redactErrorChain(cause);
  if (!storeFailed && isTimeoutError(cause)) {
    cause.attempts = attempts;
    return cause;
  }
  // Nothing was sent, so no attempt gave up: the request could not be read (a
  // `Request`'s body stream failed, see bodyReadError) or made (a value a
  // header cannot carry). A TypeError, as fetch's would be.
  if (attempts === 0 && !storeFailed) {
    const isTypeError = unlessThrows(() => cause instanceof TypeError, false);
    if (isTypeError) return redactErrorChain(cause);
    // Whatever else failed while the body was read ahead (a chunk whose class cannot be told).
    if (request === undefined) return bodyReadError(redactErrorChain(cause));
  }
  const error = new RetryExhaustedError(attempts, redactErrorChain(cause), key);
  error.message = redactUrlsIn(error.message);
  // In a browser, "Failed to fetch" across origins is most often CORS: say so
  // (a `no-cors` call has no CORS check to fail).
  const hint =
    request && typeof document !== "undefined" && request.init?.mode !== "no-cors"
      ? corsHint(cause, request.url, { headers: sentHeaders(request), stream: isStream(request.body) })
      : undefined;
  if (hint) error.message += ` (${hint})`;
  return error;
}

/**
 * The headers fetch sends for `request`: its own, and the `content-type` fetch
 * takes from a `Blob` body's type when none is set (the other bodies' types
 * are safelisted, so they never ask a preflight).
 */
function sentHeaders(request: CallRequest): Headers {
  const headers = copyHeaders(request.headers);
  const { body } = request;
  if (isBlob(body) && body.type && !headers.has("content-type")) headers.set("content-type", body.type);
  return headers;
}

/**
 * A URL resolved once, where fetch resolves it (a page's `document.baseURI`,
 * a worker's address), so every attempt goes where the first went: a page
 * may move its base while a call waits to retry (`history.pushState`, a
 * `<base href>` changed). Any text is read against the base, as the URL
 * parser reads it (`http:jobs` is relative to an `http:` page); one that
 * does not resolve is left as written, for the key below to refuse by name.
 */
function resolvedOnce(text: string | undefined): string | undefined {
  if (text === undefined) return text;
  let base: string | undefined;
  try {
    base = pageBase();
  } catch (error) {
    // A base that cannot be read: an absolute URL needs none, a relative one fails as fetch fails it.
    if (URL.canParse(text)) return text;
    throw error;
  }
  if (base === undefined) return text;
  try {
    return new URL(text, base).href;
  } catch {
    return text;
  }
}

/**
 * The text fetch makes of an input that is no string or `Request`: a `URL`'s
 * (its `toString`, a subclass's own too), a `String`'s, a URL of another
 * realm or library, any object that makes text of itself (its `toString`,
 * `valueOf` or `Symbol.toPrimitive`; one that throws, or cannot become text
 * at all, `Object.create(null)`, rejects the call with the error fetch's
 * does). A number, a boolean, `null`, or an object whose text would be
 * `[object Object]` (a `{ url }` taken for a `Request`) has none: refused,
 * naming what it is. `[object Request]` is a `Request` of another realm.
 */
function ownText(input: unknown): string | undefined {
  if (typeof input !== "object" || input === null) return undefined;
  const text = String(input);
  return /^\[object (?!Request\])\w+\]$/.test(text) ? undefined : text;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  // A `constructor` getter that throws still gets the caller a TypeError naming the kind.
  return typeof value === "object" ? unlessThrows(() => value.constructor?.name ?? "object", "object") : typeof value;
}
