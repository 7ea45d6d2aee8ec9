import { sleep } from "../../core/sleep.ts";
import type { Deadline } from "../../policies/deadline.ts";
import { type Outcome, runRetryLoop } from "../../policies/retry-loop.ts";
import type { PipelineParts } from "../pipeline-parts.ts";
import { type CallRequest, canSendBody } from "../request/call-request.ts";
import { redactUrl } from "../request/redact-url.ts";
import { discardBody } from "./discard-body.ts";
import { decideRetry } from "./retry-decision.ts";
import { sendAttempt } from "./send-attempt.ts";

/** What one call carries down every endpoint it tries. */
export interface CallState {
  /** The whole-call deadline (`timeout.total`), when set. */
  deadline: Deadline | undefined;
  /** Attempts that actually left, across all endpoints. */
  attempts: number;
}

/**
 * Sends `request` to one host, behind its breaker, retrying as the retry
 * policy allows: resolves with the last Response (whatever its status) or
 * throws the last attempt's error. Mapping errors for the caller is the
 * entry's business.
 */
export async function sendWithRetries(
  parts: PipelineParts,
  request: CallRequest,
  key: string,
  state: CallState,
): Promise<Response> {
  const { clock, retry } = parts;
  const entry = parts.registry?.entry(key);
  let previousDelay: number | undefined;
  const scope = {
    transport: parts.transport(),
    clock,
    attemptTimeout: parts.timeout.attempt,
    entry,
    sent: state,
    store: parts.store,
    deadline: state.deadline,
  };
  // The first attempt is made before the loop is built: most calls end with
  // it, on a status the policy never retries, and then the loop's plan (its
  // closures, its outcome objects, the retry decision) is not worth its
  // allocations. The loop then starts from this outcome.
  let response: Response | undefined;
  let failed: Outcome<Response> | undefined;
  try {
    response = await sendAttempt(request, scope);
  } catch (error) {
    failed = { ok: false, error };
  }
  if (!failed && !retry.statuses.has((response as Response).status)) return response as Response;
  const first: Outcome<Response> = failed ?? { ok: true, value: response as Response };
  const { outcome } = await runRetryLoop<Response>({
    maxAttempts: retry.maxAttempts,
    attempt: (n) =>
      n > 1 ? sendAttempt(request, scope) : first.ok ? Promise.resolve(first.value) : Promise.reject(first.error),
    next: (outcome, n) => {
      if (!canSendBody(request)) return undefined;
      const decision = decideRetry(parts, request, outcome, n, previousDelay, state.deadline, entry);
      if (decision === undefined) return undefined;
      if (!decision.retryAfter) previousDelay = decision.delay;
      if (outcome.ok) discardBody(outcome.value);
      if (parts.events.has("retry"))
        parts.events.emit("retry", { key, url: redactUrl(request.url), attempt: n, ...decision });
      return decision.delay;
    },
    wait: (ms) => sleep(clock, ms, request.signal),
  });
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
