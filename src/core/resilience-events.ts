import type { BreakerStateName } from "./breaker-snapshot.ts";
import type { LevelName } from "./levels.ts";

/** Emitted before each wait between attempts (of a call, or of `execute`'s work). */
export interface RetryEvent {
  /** The breaker key (host) of the attempt that failed; for `execute`, its `breaker`'s name, else `"execute"`. */
  key: string;
  /**
   * The URL the failed attempt went to, without its query: in a chain, the
   * endpoint's (after its `transform`), not the caller's; `""` for `execute`.
   */
  url: string;
  /** The attempt that failed (1 for the first). `url` has no query string (it may hold keys). */
  attempt: number;
  /** The wait before the next attempt, in ms. */
  delay: number;
  /**
   * `"status 503"`, or the failure as people name it: `"attempt timeout"`,
   * `"connection refused"`, `"connection reset"`, `"DNS lookup failed"`,
   * `"TLS failure"`, `"connect timeout"`, `"response timeout"` (the
   * transport's own wait for headers or body), `"total timeout"` (a layer
   * below's deadline), else `"network error"` (docs/retry.md);
   * for `execute`, the thrown error's name (`"Error"`), or its kind for a value that is no `Error`.
   */
  reason: string;
  /** True when the delay came from `Retry-After`. */
  retryAfter: boolean;
}

/** Emitted once per settled `resilience.fetch` call. */
export interface RequestEvent {
  key: string;
  url: string;
  method: string;
  /** The final status, when the call resolved with a Response. */
  status: number | undefined;
  /** The error's name (URLs in it cut; a thrown value that is no `Error` by its kind), when the call rejected. */
  error: string | undefined;
  attempts: number;
  durationMs: number;
  outcome: "response" | "error" | "aborted";
}

/** A breaker changed state. */
export interface BreakerEvent {
  key: string;
  from: BreakerStateName;
  to: BreakerStateName;
  /**
   * Why, e.g. "5 failures in a row (last: status 503)" or "failure rate 0.60
   * over 20 calls (last: attempt timeout)".
   */
  reason: string | null;
  gen: number;
  openUntil: number | null;
}

/** A fallback chain passed over an endpoint. */
export interface FallbackEvent {
  chain: string;
  /** The endpoint passed over. */
  from: string;
  /** Why: "status 503", "circuit open", "invalid body: …", an error. */
  reason: string;
  /** The endpoint tried next, if any: one already running (a hedge) that the run carries on with, else the next to start. */
  next: string | undefined;
}

/** The degradation level changed. */
export interface DegradationEvent {
  from: LevelName;
  to: LevelName;
  percentage: number;
  reason: string;
}

/** A request body was too large to keep for replay: the call went once, without retries. */
export interface ReplayEvent {
  url: string;
  bytes: number;
  limit: number;
}

/**
 * The library follows a redirect (only where it follows them itself, see
 * the `redirects` option): told before the next hop's host is asked, so a
 * hop its breaker refuses has one too. URLs have no query string.
 */
export interface RedirectEvent {
  from: string;
  to: string;
  status: number;
  /** The hop changed origin, so every header off the cross-origin allowlist was dropped. */
  crossOrigin: boolean;
  /**
   * Names (never values) of the headers dropped because this hop changed
   * origin: credentials and every other header off the allowlist and
   * `crossOriginHeaders` (the level header degradation adds too). Empty on a
   * hop within the origin; the body headers a 303 (or a 301/302 of a POST)
   * drops with the body are not named here.
   */
  dropped: string[];
}

/** Every event a `Resilience` emits, by name. */
/** Every event name, in the order docs/health-and-events.md lists them. */
export const resilienceEventNames: readonly (keyof ResilienceEvents)[] = [
  "retry",
  "request",
  "breaker",
  "fallback",
  "degradation",
  "replay",
  "redirect",
  "store",
];

export interface ResilienceEvents {
  retry: RetryEvent;
  request: RequestEvent;
  breaker: BreakerEvent;
  fallback: FallbackEvent;
  degradation: DegradationEvent;
  /** A shared breaker store wrote, skipped or failed something (see {@link StoreEvent}'s outcomes). */
  store: StoreEvent;
  replay: ReplayEvent;
  redirect: RedirectEvent;
}

/** Why a store was bypassed or what it did, as the `store` event reports it. */
export interface StoreEvent {
  store: string;
  key: string;
  /** "read", "write", "report", "probe", "validate", "budget", "waitUntil", "background". */
  operation: string;
  /** "ok", "skipped", "failed", "timeout", "rejected". */
  outcome: string;
  detail?: string;
}

export type StoreEventListener = (event: StoreEvent) => void;
