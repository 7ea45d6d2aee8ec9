import { isBulkheadRejectedError, isCircuitOpenError } from "../core/errors.ts";
import { sleep } from "../core/sleep.ts";
import type { Deadline } from "../policies/deadline.ts";
import { runRetryLoop } from "../policies/retry-loop.ts";
import { discardBody } from "./discard-body.ts";
import type { PipelineParts } from "./pipeline-parts.ts";
import type { PreparedCall } from "./prepare-call.ts";
import { redactUrl } from "./redact-url.ts";
import { decideRetry } from "./retry-decision.ts";
import { runAttempt } from "./run-attempt.ts";

/** Attempts made by one logical call, across all its endpoints. */
export interface Tally {
  attempts: number;
}

/**
 * One endpoint's retry loop behind its host's breaker: resolves with the
 * last Response (whatever its status) or throws the last attempt's error.
 * Mapping errors for the caller is the pipeline's business.
 */
export async function runEndpoint(
  parts: PipelineParts,
  call: PreparedCall,
  key: string,
  deadline: Deadline | undefined,
  tally: Tally,
): Promise<Response> {
  const { clock, retry } = parts;
  const entry = parts.registry?.entry(key);
  const signal = call.signal;
  let previousDelay: number | undefined;
  const scope = {
    transport: parts.transport(),
    clock,
    attemptTimeout: parts.timeout.attempt,
    entry,
    signal,
    onSent: () => {
      tally.attempts++;
    },
    store: parts.store,
    deadline,
  };
  const { outcome } = await runRetryLoop<Response>({
    maxAttempts: call.replayable ? retry.maxAttempts : 1,
    attempt: () => runAttempt(call, scope),
    next: (outcome, n) => {
      if (!outcome.ok && (isCircuitOpenError(outcome.error) || isBulkheadRejectedError(outcome.error)))
        return undefined;
      const decision = decideRetry(parts, call, outcome, n, previousDelay, deadline, entry);
      if (decision === undefined) return undefined;
      if (!decision.retryAfter) previousDelay = decision.delay;
      if (outcome.ok) discardBody(outcome.value);
      if (parts.events.has("retry"))
        parts.events.emit("retry", { key, url: redactUrl(call.url), attempt: n, ...decision });
      return decision.delay;
    },
    wait: (ms) => sleep(clock, ms, signal),
  });
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
