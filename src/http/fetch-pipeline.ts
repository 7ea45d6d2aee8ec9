import {
  isBulkheadRejectedError,
  isCircuitOpenError,
  isFallbackExhaustedError,
  isTimeoutError,
  RetryExhaustedError,
} from "../core/errors.ts";
import type { FetchLike } from "../core/options/resilience-options.ts";
import { type Deadline, startDeadline } from "../policies/deadline.ts";
import { isServiceFailureStatus } from "./classify.ts";
import type { PipelineParts } from "./pipeline-parts.ts";
import { type PreparedCall, prepareCall } from "./prepare-call.ts";
import { redactUrl } from "./redact-url.ts";
import { attachInfo } from "./resilience-info.ts";
import { rewriteRequest } from "./rewrite-request.ts";
import { runChain } from "./run-chain.ts";
import { runEndpoint, type Tally } from "./run-endpoint.ts";

export type { PipelineParts } from "./pipeline-parts.ts";

/** What served a call. */
export interface Served {
  response: Response;
  endpoint: string;
  fromFallback: boolean;
}

/**
 * Builds `resilience.fetch`: normalise the call once; send it down its
 * fallback chain if its URL selects one, else through one endpoint's retry
 * loop. Resolves with the last Response when there is one (even a 503, as
 * fetch would); rejects only when there is none.
 */
export function createFetchPipeline(parts: PipelineParts): FetchLike {
  return async function resilientFetch(input, init) {
    const started = parts.clock.now();
    const prepared = prepareCall(input, init, parts.retry, parts.maxReplayBytes);
    let call = prepared instanceof Promise ? await prepared : prepared;
    if (call.oversize !== undefined && parts.events.has("replay")) {
      parts.events.emit("replay", { url: redactUrl(call.url), bytes: call.oversize, limit: parts.maxReplayBytes });
    }
    const level = parts.degradation.levelName();
    // At `full` with no level header there is nothing to rewrite: skip the await.
    if (level !== "full" || parts.degradationConfig.levelHeader) {
      call = await rewriteRequest(call, level, parts.degradation.settings(), parts.degradationConfig);
    }
    return runCall(parts, call, started, level);
  };
}

async function runCall(
  parts: PipelineParts,
  original: PreparedCall,
  started: number,
  level: string,
): Promise<Response> {
  const { clock } = parts;
  parts.budget?.deposit();
  const route = parts.router.match(original.url);
  const deadline =
    parts.timeout.total === undefined ? undefined : startDeadline(clock, parts.timeout.total, original.signal);
  const call = deadline ? { ...original, signal: deadline.signal } : original;
  const key = route ? route.route.options.name : parts.keyOf(call.url);
  const tally: Tally = { attempts: 0 };
  try {
    const served: Served = route
      ? await runChain(parts, route, call, deadline, tally)
      : { response: await runEndpoint(parts, call, key, deadline, tally), endpoint: key, fromFallback: false };
    const { response } = served;
    const durationMs = clock.now() - started;
    parts.analytics.record(key, call.url, response.status, undefined, durationMs);
    parts.degradation.observe(durationMs, isServiceFailureStatus(response.status));
    attachInfo(response, {
      attempts: tally.attempts,
      endpoint: served.endpoint,
      fromFallback: served.fromFallback,
      degradationLevel: level,
      durationMs,
    });
    if (parts.events.has("request")) {
      parts.events.emit("request", {
        key,
        url: redactUrl(call.url),
        method: call.method,
        status: response.status,
        error: undefined,
        attempts: tally.attempts,
        durationMs,
        outcome: "response",
      });
    }
    return response;
  } catch (cause) {
    const error = settleError(original, deadline, cause, tally.attempts);
    const aborted = original.signal?.aborted === true && error === original.signal.reason;
    const durationMs = clock.now() - started;
    if (!aborted) {
      parts.analytics.record(key, call.url, undefined, error, durationMs);
      parts.degradation.observe(durationMs, true);
    }
    if (parts.events.has("request")) {
      parts.events.emit("request", {
        key,
        url: redactUrl(call.url),
        method: call.method,
        status: undefined,
        error: error instanceof Error ? error.name : typeof error,
        attempts: tally.attempts,
        durationMs,
        outcome: aborted ? "aborted" : "error",
      });
    }
    throw error;
  } finally {
    deadline?.cancel();
  }
}

/** The error a call rejects with when it has no Response to give. */
function settleError(call: PreparedCall, deadline: Deadline | undefined, cause: unknown, attempts: number): unknown {
  if (call.signal?.aborted) return call.signal.reason;
  if (deadline?.fired()) {
    const error = deadline.error();
    error.attempts = attempts;
    return error;
  }
  if (isCircuitOpenError(cause) || isBulkheadRejectedError(cause)) return cause;
  if (isFallbackExhaustedError(cause)) return cause;
  if (isTimeoutError(cause)) {
    cause.attempts = attempts;
    return cause;
  }
  return new RetryExhaustedError(attempts, cause);
}
