/**
 * A call's outcome as one comparable string: "status body" for an answer,
 * "CircuitOpenError <key> +<ms until retryAt>" for a refusal (measured on the
 * test's clock), the error's name otherwise. Tests compare whole sequences.
 */
import { isCircuitOpenError } from "../../src/index.ts";
import type { TestClock } from "../../src/testing/index.ts";

export const outcomeAt =
  (clock: TestClock) =>
  (call: Promise<Response>): Promise<string> =>
    call.then(
      async (r) => `${r.status} ${await r.text()}`,
      (e: unknown) =>
        isCircuitOpenError(e) ? `CircuitOpenError ${e.key} +${e.retryAt - clock.now()}` : (e as Error).name,
    );
