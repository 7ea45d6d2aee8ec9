/** The parts of `cloudflare:test` these tests use, typed structurally. */
declare module "cloudflare:test" {
  import type { Env } from "./worker.ts";
  export const env: Env;
  export function createExecutionContext(): {
    waitUntil(promise: Promise<unknown>): void;
    passThroughOnException(): void;
  };
  export function waitOnExecutionContext(ctx: unknown): Promise<void>;
}
