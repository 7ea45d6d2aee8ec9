/** The parts of `cloudflare:test` these tests use, typed structurally. */
declare module "cloudflare:test" {
  import type { DurableObjectNamespaceLike, DurableObjectStubLike } from "../../src/cloudflare/index.ts";
  import type { Env } from "./worker.ts";

  /** A service binding to another Worker script (see vitest.config.ts). */
  interface ServiceLike {
    fetch(input: string, init?: RequestInit): Promise<Response>;
  }
  export const env: Env & {
    ISOLATE_A: ServiceLike;
    ISOLATE_B: ServiceLike;
    CLOCKED_STATE: DurableObjectNamespaceLike;
  };
  export function createExecutionContext(): {
    waitUntil(promise: Promise<unknown>): void;
    passThroughOnException(): void;
  };
  export function waitOnExecutionContext(ctx: unknown): Promise<void>;
  export function runInDurableObject<O, R>(
    stub: DurableObjectStubLike,
    callback: (
      instance: O,
      state: { storage: { get(key: string): Promise<unknown>; getAlarm(): Promise<number | null> } },
    ) => R | Promise<R>,
  ): Promise<R>;
  export function runDurableObjectAlarm(stub: DurableObjectStubLike): Promise<boolean>;
  export function evictDurableObject(stub: DurableObjectStubLike): Promise<void>;
}
