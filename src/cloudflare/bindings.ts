import type { WaitUntilLike } from "../stores/breaker-store.ts";

/**
 * The few parts of Cloudflare's bindings this package uses, typed
 * structurally so users need no Cloudflare type package.
 */

/** A Workers KV namespace. */
export interface KvNamespaceLike {
  getWithMetadata<M = unknown>(
    key: string,
    options?: { type?: "text"; cacheTtl?: number },
  ): Promise<{ value: string | null; metadata: M | null }>;
  put(key: string, value: string, options?: { expirationTtl?: number; metadata?: unknown }): Promise<void>;
}

/** A Workers `ExecutionContext` (the part stores use). */
export type ExecutionContextLike = WaitUntilLike;

/** A Durable Object stub (the `fetch` part). */
export interface DurableObjectStubLike {
  fetch(input: string, init?: RequestInit): Promise<Response>;
}

/** A Durable Object namespace binding. */
export interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown;
  get(id: never): DurableObjectStubLike;
}

/** What a Durable Object class receives as its state. */
export interface DurableObjectStateLike {
  storage: {
    get<T>(key: string): Promise<T | undefined>;
    put(key: string, value: unknown): Promise<void>;
    setAlarm(scheduledTime: number): Promise<void>;
  };
  blockConcurrencyWhile<T>(callback: () => Promise<T>): Promise<T>;
}
