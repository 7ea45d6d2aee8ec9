import {
  CircuitOpenError,
  FallbackExhaustedError,
  isCircuitOpenError,
  TimeoutError,
  unlessThrows,
} from "../core/errors.ts";
import { redactEach, redactErrorChain, redactUrlsIn } from "../core/redact-url.ts";
import type { FallbackEvent } from "../core/resilience-events.ts";
import { untilAborted } from "../core/until-aborted.ts";
import { untilTimeout } from "../core/until-timeout.ts";
import type { PipelineParts } from "../http/pipeline-parts.ts";
import { type CallRequest, canSendBody, deriveRequest } from "../http/request/call-request.ts";
import { hasIdempotencyKey } from "../http/request/headers.ts";
import type { JsonBody } from "../http/request/json-body.ts";
import { dropsKey, keyedHeaders } from "../http/request/normalize-request.ts";
import { answerOf } from "../http/send/answer-of.ts";
import { isServiceFailureStatus, maySendAgain } from "../http/send/classify.ts";
import { discardBody } from "../http/send/discard-body.ts";
import { isCallersFailure } from "../http/send/failure-reason.ts";
import { isAfterRedirect } from "../http/send/follow-redirects.ts";
import { type CallState, sendWithRetries } from "../http/send/send-with-retries.ts";
import type { Served } from "../http/stages.ts";
import type { CircuitBreaker } from "../policies/circuit-breaker.ts";
import { type ChainResult, runConfigured } from "../policies/fallback-chain.ts";
import { isStoreFailure, markStoreFailure } from "../stores/unawaited-store.ts";
import { endpointsFor, type HttpRoute, type RouteMatch, restOf } from "./chain-router.ts";
import { endpointRequest, endpointView, jsonOnce, rebase } from "./endpoint-request.ts";
import type { FallbackEndpoint } from "./fallback-options.ts";
import { HedgeLedger, isHeldBack, neverSent, notSent } from "./hedge-ledger.ts";
import { answerToGive, releaseAnswer, validateResponse } from "./validate-response.ts";

/** One call going down a chain: what every entry of the chain receives. */
export interface ChainCall {
  parts: PipelineParts;
  route: HttpRoute<ChainCall>;
  request: CallRequest;
  /** The endpoints by name; the first one's own parameters that a degradation rule rewrote carry the rewritten values (see `endpointsFor`). */
  endpoints: ReadonlyMap<string, FallbackEndpoint>;
  /** The caller's URL after the chain's prefix, rebased onto each endpoint. */
  rest: string;
  /**
   * The same before a degradation rule rewrote its query: breaker keys are
   * taken from the URL the caller asked for, as a plain call's is.
   */
  keyRest: string;
  state: CallState;
  /** The caller's JSON body, parsed at most once for all endpoints. */
  json: () => Promise<JsonBody | undefined>;
  /** The last endpoint URL whose breaker key `skipReason` found, and that key: the send reuses it. */
  keyedUrl: string | undefined;
  key: string | undefined;
  /** What each endpoint was sent (after `transform`) when it may not be sent twice: moving on is judged on that. */
  sent: Map<string, CallRequest> | undefined;
  /** What a hedged call has out; none when the chain does not hedge it (the caller's body could be sent only once). */
  hedge: HedgeLedger | undefined;
}

/**
 * Tries `request` on `route`'s endpoints in the chain's order, until one
 * gives an acceptable answer. Moving to the next endpoint follows the same
 * rule as a retry (`maySendAgain`): a POST without an idempotency key moves
 * on only when it surely was not processed, and a body that could not be
 * kept for replay is sent to one endpoint only.
 */
export function tryEndpoints(
  parts: PipelineParts,
  match: RouteMatch<ChainCall>,
  request: CallRequest,
  state: CallState,
): Promise<Served> {
  const { route } = match;
  const call: ChainCall = {
    parts,
    route,
    request,
    endpoints: endpointsFor(match, request.url, request.callerUrl),
    rest: restOf(match, request.url, request.callerUrl),
    keyRest: restOf(match, match.rest),
    state,
    json: jsonOnce(request),
    keyedUrl: undefined,
    key: undefined,
    sent: undefined,
    // Judged on what each endpoint is sent (a `transform` may key a keyless POST): the ledger holds back
    // a request that may not be sent twice, and starts nothing beside it.
    hedge: request.replay.allowed && route.options.hedge !== undefined ? new HedgeLedger() : undefined,
  };
  // The callbacks are module functions that read the call from their last
  // argument: nothing is built for them per call.
  return runConfigured(route.chain, call, {
    signal: request.signal,
    skip: skipReason,
    passedOver: passedOverReason,
    accept: rejection,
    moveOn: mayMoveOn,
    hedgeDelay: call.hedge ? route.options.hedge?.delay : undefined,
    mayHedge,
    heldBack: isHeldBack,
    uncounted: isCallersFailure,
    started: wasTried,
    discard: releaseAnswer,
    // Asked at each pass, not once per run: a listener added while the chain runs hears what follows.
    onFallback: (event) => emitFallback(parts, event),
  }).then((result) => served(result, call));
}

/** A `fallback` event, its reason's URLs cut (a platform's message may quote one, query and all). */
export function emitFallback(parts: PipelineParts, event: FallbackEvent): void {
  if (parts.events.has("fallback")) parts.events.emit("fallback", { ...event, reason: redactUrlsIn(event.reason) });
}

/** What the chain's result gives the caller. */
function served(result: ChainResult<Response>, call: ChainCall): Served {
  const { route } = call;
  const signal = call.request.signal;
  const local = (name: string) => call.endpoints.get(name)?.respond !== undefined;
  if (result.ok)
    return { response: result.value, endpoint: result.name, fromFallback: !result.primary, local: local(result.name) };
  const last = result.lastRejected;
  // An aborted call rejects, as fetch does, even with an answer turned down earlier: that one is released.
  if (signal?.aborted) {
    if (last) releaseAnswer(last);
    throw signal.reason;
  }
  const stoppedAt = result.lastTried as string;
  // The platform refused every request the chain made (a header Node's fetch will not send), or
  // the caller's body stream failed while sent: the caller's mistake, rejected as a plain call
  // rejects it, with fetch's TypeError. Endpoints passed over (their breakers open) sent nothing.
  if (!last) {
    const errors = Object.values(result.errors);
    const refusal = errors.find(isCallersFailure);
    if (refusal && errors.every((error) => isCallersFailure(error) || passedOver.has(error as object)))
      throw redactErrorChain(refusal);
  }
  // Read before the redaction, which may replace an error by a copy.
  const storeFailed = isStoreFailure(result.errors[stoppedAt]);
  // An endpoint tried after the last answer failed where the request may have been processed (a reset
  // after a keyless POST went out): that earlier answer, a 503 say, would tell the caller (or a layer
  // around this one) that the work was declined and may be sent again.
  const processed =
    last !== undefined &&
    stoppedAt !== result.lastRejectedBy &&
    !mayMoveOn({ error: result.errors[stoppedAt] }, call, stoppedAt);
  // Nothing acceptable: answer with the last response any endpoint gave (named with it), as fetch would;
  // unless a breaker store of one's own threw, which fails the call whatever the endpoints answered.
  if (last && !storeFailed && !processed) {
    const endpoint = result.lastRejectedBy as string;
    return {
      response: answerToGive(last, signal ?? undefined),
      endpoint,
      fromFallback: endpoint !== route.options.endpoints[0]?.name,
      local: local(endpoint),
    };
  }
  if (last) releaseAnswer(last);
  redactEach(result.errors);
  // Known as the store's still (`failureResponse` answers 502 for it), if the redaction copied it.
  if (storeFailed) markStoreFailure(result.errors[stoppedAt]);
  const error = new FallbackExhaustedError(route.options.name, result.errors, result.tried);
  // Endpoints left untried (the chain stopped where moving on was not safe), its breaker store failed, or
  // an earlier answer is held back: the message says where it stopped and why.
  if (Object.keys(result.errors).length < route.options.endpoints.length || storeFailed || processed) {
    // What the stopping endpoint was sent: a keyed request stops only for a body it could send once,
    // and a body sent once stops any request, one that was surely not processed too.
    const sent = call.sent?.get(stoppedAt) ?? call.request;
    const why = processed
      ? `the answer "${result.lastRejectedBy}" gave before it is not returned, as it would have the request sent again`
      : sent.idempotent || !canSendBody(sent)
        ? "its body could be sent only once"
        : "only one with an Idempotency-Key moves on";
    // The head rewritten by its length: names are text, whatever quotes or `$` patterns they hold.
    const chain = `fallback chain "${route.options.name}"`;
    const head = `every endpoint of ${chain} failed`;
    error.message =
      (storeFailed
        ? `${chain} stopped after "${stoppedAt}": the breaker store threw`
        : `${chain} stopped after "${stoppedAt}", which may have processed the request (${why})`) +
      error.message.slice(head.length);
  }
  error.message = redactUrlsIn(error.message);
  throw error;
}

/**
 * One entry of every HTTP chain: shapes the call for the endpoint named
 * `name`, then answers locally (`respond`) or sends it behind the
 * endpoint's own host breaker, with its own retries.
 */
export function tryEndpoint(
  call: ChainCall,
  { signal, name }: { signal: AbortSignal | undefined; name: string },
): Promise<Response> {
  // The router adds one entry per endpoint, under its name, and a user's own
  // entries (`chain.add`) never run this function: the endpoint exists.
  const endpoint = call.endpoints.get(name) as FallbackEndpoint;
  const request = signal === call.request.signal ? call.request : deriveRequest(call.request, { signal });
  if (endpoint.respond) {
    // An endpoint that answers itself has no `url` (the options refuse both): it sees the caller's.
    const respond = endpoint.respond;
    call.hedge?.answering(name);
    // One that throws sent nothing anywhere: the call may move on, whatever its method. So does one
    // that answers with no Response fetch would give (`undefined`, a cache's miss; `Response.error()`;
    // a value that throws when looked at, whose `then` is not read by a promise here).
    const answer = endpointView(request, endpoint, request.url, call.json).then(async (view) => {
      const answered: unknown = respond(view);
      const later = unlessThrows(() => typeof (answered as Partial<Promise<unknown>>).then === "function", false);
      const response = (later ? await answered : answered) as Response;
      // Nor does fetch give a body read already or locked (one Response a cache hands out twice, one
      // read to log it): nobody could read this answer, so the call moves on as after a miss.
      const unread = !unlessThrows(() => response?.bodyUsed || response?.body?.locked, true);
      return answerOf((unread ? response : undefined) as Response, `fallback endpoint "${name}": respond`);
    });
    return ownWork(answer, call, signal, discardBody).catch((error: unknown) => {
      call.hedge?.settled(name);
      return notSent(error, name, "respond");
    });
  }
  // Only a `transform` makes shaping asynchronous; otherwise the request goes at once.
  const shaped = endpointRequest(request, endpoint, call.rest, call.parts.crossOriginHeaders, call.json);
  if (!(shaped instanceof Promise)) return sendToEndpoint(call, name, shaped, false);
  return ownWork(shaped, call, signal).then(
    (r) => sendToEndpoint(call, name, r, true),
    (error: unknown) => notSent(error, name),
  );
}

/**
 * An endpoint's own code (`respond`, `transform`) under the call's signal and
 * `timeout.attempt`, as a send is: the call settles at the abort, and one
 * that hangs fails the endpoint with the attempt's `TimeoutError`, nothing
 * sent; a late answer is released.
 */
function ownWork<T>(
  work: Promise<T>,
  { parts }: ChainCall,
  signal: AbortSignal | undefined,
  drop?: (late: T) => void,
): Promise<T> {
  const ms = parts.timeout.attempt;
  if (ms === undefined) return untilAborted(work, signal, drop);
  return untilTimeout(
    work,
    parts.clock,
    ms,
    () => {
      throw new TimeoutError("attempt", ms);
    },
    signal,
    drop,
  );
}

/** `shapedLater`: a `transform` ran, awaited, since `skipReason` asked the declared host's breaker. */
function sendToEndpoint(call: ChainCall, name: string, shaped: CallRequest, shapedLater: boolean): Promise<Response> {
  let key: string;
  try {
    // The key `skipReason` found for this URL; else, unless a `transform` sent it elsewhere, the
    // caller's query's (a hedge's next endpoint may have been keyed since): the endpoint's URL as
    // declared, with the query the caller asked for, whatever a degradation rule rewrote.
    const endpointUrl = call.endpoints.get(name)?.url;
    key =
      shaped.url === call.keyedUrl
        ? (call.key as string)
        : call.parts.keyOf(
            !endpointUrl
              ? shaped.url
              : shaped.url === rebase(endpointUrl, call.rest)
                ? keyUrl(call, name)
                : withAskedQuery(shaped.url, rebase(endpointUrl, call.rest), keyUrl(call, name)),
          );
  } catch (error) {
    // A URL no request can go to (a `transform`'s, with `user:pass@`): refused, nothing sent.
    notSent(error, name);
  }
  // Keyed anew (a `transform` sent the call to another host), or after a
  // `transform` that took its time (the host may have opened meanwhile, and
  // in a hedge the key `skipReason` left may be another endpoint's): one
  // whose breaker is open passes the endpoint over, as `skipReason` passes
  // over one whose declared host is open, not counted and with nothing sent.
  if (shapedLater || shaped.url !== call.keyedUrl) {
    const refusal = openRefusal(call.parts, key);
    if (refusal) return Promise.reject(refusal);
  }
  const request = asSent(call, shaped);
  if (request.idempotent !== call.request.idempotent) {
    call.sent ??= new Map();
    call.sent.set(name, request);
  }
  const { hedge } = call;
  if (!hedge) return sendWithRetries(call.parts, request, key, call.state);
  const held = hedge.send(name, !request.idempotent);
  if (held) return Promise.reject(held);
  // Out until judged: a failure now, an answer once `rejection` has judged it.
  return sendWithRetries(call.parts, request, key, call.state).catch((error: unknown) => {
    hedge.settled(name);
    throw error;
  });
}

/** See {@link HedgeLedger.mayHedge}. */
function mayHedge(call: ChainCall): boolean {
  return call.hedge?.mayHedge() !== false;
}

/** See {@link HedgeLedger.tried}. */
function wasTried(name: string, call: ChainCall): boolean {
  return call.hedge?.tried(name) !== false;
}

/**
 * `shaped` with whether it is safe to send twice judged on what goes out: a
 * `transform` that turns a PUT into a POST, or drops the caller's
 * `Idempotency-Key`, makes a request that is not (it is then neither
 * retried nor passed on after a 500, as the caller's own POST would not be).
 * With `retry.idempotencyKey`, a POST or PATCH that a `transform` made of
 * another method gets a key of its own, as the caller's would have; a key
 * the `transform` dropped stays dropped.
 */
function asSent(call: ChainCall, shaped: CallRequest): CallRequest {
  if (shaped.method === call.request.method && shaped.headers === call.request.headers) return shaped;
  const options = call.parts.normalize;
  const name = shaped.method.toUpperCase();
  const dropped = dropsKey(shaped.init);
  const own = !dropped && hasIdempotencyKey(shaped.headers);
  const idempotent = own || options.idempotentMethods.has(name);
  // A key the caller's request had (its own or the one added for it) and the transform dropped stays dropped.
  const keyed =
    dropped || own || shaped.method === call.request.method || hasIdempotencyKey(call.request.headers)
      ? undefined
      : keyedHeaders(shaped.headers, name, options);
  if (keyed) return { ...shaped, headers: keyed, idempotent: true, original: undefined };
  return idempotent === shaped.idempotent ? shaped : { ...shaped, idempotent };
}

/** Whether the call may go on to the next endpoint after `failure` (the rule of a retry), judged on what that endpoint was sent. */
function mayMoveOn(failure: { value: Response } | { error: unknown }, call: ChainCall, name: string): boolean {
  // What a breaker store threw fails the call: it says nothing of the endpoint.
  if ("error" in failure && isStoreFailure(failure.error)) return false;
  if ("error" in failure && neverSent(failure.error)) return true;
  return maySendAgain(call.sent?.get(name) ?? call.request, failure);
}

/** The refusals of endpoints passed over, their breakers open: no endpoint's failure (see `served`). */
const passedOver = new WeakSet<object>();

/**
 * A `transform`'s URL as it is keyed: each query parameter the `transform`
 * left as it came (its values read the same in `shapedUrl` as in `sentUrl`,
 * however it wrote them: `searchParams.set` re-encodes the whole query)
 * takes the caller's pairs from `askedUrl` again, as the caller wrote them
 * and where the first of them stood, whatever else the `transform` changed
 * (host, path, another parameter). So a rule's rewrite changes no breaker
 * key there, and neither does the level: the key is the same at `full`,
 * where nothing was rewritten. A parameter the `transform` changed is keyed
 * pair by pair: a pair holding a value it was sent (appended again), or the
 * caller's own value (the rewrite undone), is the caller's pair of that
 * place, as written; a pair holding any other value is keyed as the
 * `transform` set it.
 */
function withAskedQuery(shapedUrl: string, sentUrl: string, askedUrl: string): string {
  const shaped = new URL(shapedUrl);
  const sent = new URL(sentUrl).search;
  const asked = new URL(askedUrl).search;
  // The query kept whole: the caller's, as written.
  if (shaped.search === sent) {
    shaped.search = asked;
    return shaped.href;
  }
  let pairs = pairsOf(shaped.search);
  const sentPairs = pairsOf(sent);
  const askedPairs = pairsOf(asked);
  for (const name of new Set([...sentPairs, ...askedPairs].map((pair) => pair.name))) {
    const own = askedPairs.filter((pair) => pair.name === name);
    // Left as it came when its values read the same, however the `transform` wrote them (`searchParams` re-encodes).
    if (valuesOf(pairs, name) === valuesOf(sentPairs, name)) {
      pairs = putBack(pairs, name, own);
      continue;
    }
    // Changed: each pair of it that holds a value it was sent (an `append` of it again), or the caller's own
    // (a rule's rewrite undone), is the caller's pair of that place, as written; any other is the `transform`'s.
    const sentValues = sentPairs.filter((pair) => pair.name === name).map((pair) => pair.value);
    const ownValues = own.map((pair) => pair.value);
    pairs = pairs.map((pair) => {
      if (pair.name !== name) return pair;
      const at = sentValues.indexOf(pair.value);
      return own[at >= 0 && at < own.length ? at : ownValues.indexOf(pair.value)] ?? pair;
    });
  }
  const query = pairs.map((pair) => pair.raw).join("&");
  // Behind a `?` of its own: the setter drops one leading `?`, which a first pair's name may hold (`??model=`).
  shaped.search = query && `?${query}`;
  return shaped.href;
}

/**
 * `pairs` with those named `name` replaced one for one, in their places, by
 * the caller's `own` (more of them go after the last place, or at the end;
 * fewer leave the later places out).
 */
function putBack(pairs: Pair[], name: string, own: Pair[]): Pair[] {
  const places = pairs.filter((pair) => pair.name === name).length;
  const extra = own.slice(places);
  let seen = 0;
  const out = pairs.flatMap((pair) => {
    if (pair.name !== name) return [pair];
    seen++;
    return [...own.slice(seen - 1, seen), ...(seen === places ? extra : [])];
  });
  return places === 0 ? [...out, ...extra] : out;
}

/** A query pair as written (`raw`), and its name and value decoded as `URLSearchParams` decodes them. */
interface Pair {
  raw: string;
  name: string;
  value: string | null;
}

/** A query's pairs (a `URL`'s `search`, its `?` included), each decoded once. */
const pairsOf = (search: string): Pair[] =>
  (search ? search.slice(1).split("&") : []).map((raw) => {
    // Behind a `?` of its own: `URLSearchParams` drops one leading `?`, which the URL parser keeps in a name.
    const [name = "", value = null] = new URLSearchParams(`?${raw}`).entries().next().value ?? [];
    return { raw, name, value };
  });

/** The decoded values of `name` among `pairs`, as one comparable text. */
const valuesOf = (pairs: Pair[], name: string): string =>
  JSON.stringify(pairs.filter((pair) => pair.name === name).map((pair) => pair.value));

/** The URL an endpoint's breaker key is read from: its `url` as declared, the rest as the caller asked for it. */
function keyUrl(call: ChainCall, name: string): string {
  return rebase(call.route.endpoints.get(name)?.url as string, call.keyRest);
}

/**
 * An endpoint whose host breaker is open is passed over without a request;
 * its error is the breaker's refusal, as a request to it would have been.
 */
function skipReason(name: string, call: ChainCall): { reason: string; error: CircuitOpenError } | undefined {
  const { parts } = call;
  const endpoint = call.endpoints.get(name);
  if (!endpoint?.url || !parts.registry) return undefined;
  const url = rebase(endpoint.url, call.rest);
  const key = parts.keyOf(keyUrl(call, name));
  // The send that follows usually goes to this URL: it reuses the key.
  call.keyedUrl = url;
  call.key = key;
  const error = openRefusal(parts, key);
  return error && { reason: CIRCUIT_OPEN, error };
}

const CIRCUIT_OPEN = "circuit open";

/**
 * A send refused by the open breaker of the host a `transform` sent it to
 * (see `sendToEndpoint`): a pass-over. So is one its own host's breaker
 * refused before the endpoint sent anything (it opened while the call
 * queued for the bulkhead, or since it was asked): a refusal after the host
 * had a request is marked so, and one thrown by a `respond` or `transform`
 * is theirs.
 */
function passedOverReason(error: unknown): string | undefined {
  if (!passedOver.has(error as object)) {
    if (!isCircuitOpenError(error) || isAfterRedirect(error) || neverSent(error)) return undefined;
    passedOver.add(error);
  }
  return CIRCUIT_OPEN;
}

/** The refusal of the breaker of `key` when it refuses a call (a pass-over, see `passedOver`), else `undefined`. */
function openRefusal(parts: PipelineParts, key: string): CircuitOpenError | undefined {
  if (!parts.registry) return undefined;
  // With a shared store, what it says comes first, as for a send: a host
  // another layer opened is passed over here too (and listed by `health()`,
  // as one this layer opened). A host the store does not hold open gets no
  // breaker here: a `transform` may send the call elsewhere.
  let breaker: CircuitBreaker | undefined;
  try {
    breaker = parts.registry.known(key)?.breaker;
  } catch (error) {
    // A store of one's own whose `peek` threw: not a pass-over. The send
    // meets it again and fails there, as a store's failure fails the call:
    // the chain stops at that endpoint, the answer it moved on from released.
    if (isStoreFailure(error)) return undefined;
    throw error;
  }
  // Half-open with every probe slot taken refuses the call as open does: a pass-over too.
  if (!breaker?.refuses()) return undefined;
  const error = new CircuitOpenError(key, breaker.retryAt());
  passedOver.add(error);
  return error;
}

/**
 * Why a response is not good enough to stop at: a status worth another
 * endpoint (5xx, 429, 408), or a 2xx body that fails `validate` (read within
 * `timeout.attempt`, else 30 s, at most `maxReplayBytes`, under the
 * endpoint's own signal: a hedge that lost stops reading; under
 * `timeout.total` alone the read goes on until the deadline rejects the
 * call). Other statuses (a 404, a 400) are the caller's answer and end the
 * chain.
 */
function rejection(
  response: Response,
  name: string,
  call: ChainCall,
  signal: AbortSignal | undefined,
): string | undefined | Promise<string | undefined> {
  const verdict = judge(response, name, call, signal);
  const { hedge } = call;
  if (!hedge) return verdict;
  if (!(verdict instanceof Promise)) {
    hedge.settled(name);
    return verdict;
  }
  return verdict.finally(() => hedge.settled(name));
}

/** {@link rejection}'s verdict. */
function judge(
  response: Response,
  name: string,
  { parts, route, state }: ChainCall,
  signal: AbortSignal | undefined,
): string | undefined | Promise<string | undefined> {
  if (isServiceFailureStatus(response.status) || response.status === 408) return `status ${response.status}`;
  const schema = route.endpoints.get(name)?.validate;
  if (!schema || !response.ok) return undefined;
  const { clock } = parts;
  return validateResponse(response, schema, {
    clock,
    // Under `timeout.total` alone the read ends with the call's signal, which the deadline aborts:
    // a timer of its own for the time left could fire first (timers fire late, and in no set
    // order) and move the chain on at its deadline.
    timeout: parts.timeout.attempt ?? (state.deadline && signal ? undefined : VALIDATE_TIMEOUT_MS),
    maxBytes: parts.maxReplayBytes,
    signal,
  });
}

/** How long `validate` waits for a body when no timeout is configured. */
const VALIDATE_TIMEOUT_MS = 30_000;
