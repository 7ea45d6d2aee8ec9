import type { ResilienceEvents } from "../core/resilience-events.ts";
import { shownValue } from "../core/shown-name.ts";
import type { Resilience } from "../http/create-resilience.ts";

/** One recorded event: its type and its payload. */
export type RecordedEvent = {
  [K in keyof ResilienceEvents]: { type: K } & ResilienceEvents[K];
}[keyof ResilienceEvents];

/** What a {@link recordEvents} recorder offers. Assertions throw plain Errors, so any test runner works. */
export interface EventRecorder {
  /** Every event, in the order emitted. */
  readonly events: RecordedEvent[];
  /** The payloads of one event type. */
  of<K extends keyof ResilienceEvents>(type: K): ResilienceEvents[K][];
  /** Throws unless the breaker for `key` opened. */
  expectBreakerOpened(key: string): void;
  /** Throws unless the breaker for `key` closed again after opening. */
  expectBreakerClosed(key: string): void;
  /** Throws unless exactly `count` retries happened (for `key`, if given). */
  expectRetries(count: number, key?: string): void;
  /** Throws unless a chain passed over `from` (to `next`, if given). */
  expectFallback(from: string, next?: string): void;
  /** Throws unless the level became `level`. */
  expectDegradedTo(level: string): void;
  /** Stops recording. */
  stop(): void;
}

const TYPES: Array<keyof ResilienceEvents> = [
  "retry",
  "request",
  "breaker",
  "fallback",
  "degradation",
  "store",
  "replay",
  "redirect",
];

/**
 * Records a `Resilience` instance's events, in order, for assertions.
 *
 * @example
 * const recorder = recordEvents(resilience);
 * await resilience.fetch(url);
 * recorder.expectBreakerOpened("api.example");
 */
export function recordEvents(resilience: Resilience): EventRecorder {
  // A ky instance or nothing passed in its place would fail with `resilience.on is not a function`.
  if (typeof (resilience as Partial<Resilience> | null | undefined)?.on !== "function")
    throw new TypeError(
      `recordEvents(resilience): expected a layer from createResilience, got ${shownValue(resilience)}`,
    );
  const events: RecordedEvent[] = [];
  const stops = TYPES.map((type) =>
    resilience.on(type, (payload) => events.push({ type, ...payload } as RecordedEvent)),
  );
  const of = <K extends keyof ResilienceEvents>(type: K): ResilienceEvents[K][] =>
    events.filter((e) => e.type === type).map(({ type: _type, ...rest }) => rest as unknown as ResilienceEvents[K]);
  const fail = (message: string): never => {
    const seen = events.map((e) => e.type).join(", ") || "no events";
    throw new Error(`${message} (recorded: ${seen})`);
  };
  return {
    events,
    of,
    expectBreakerOpened: (key) => {
      if (!of("breaker").some((e) => e.key === key && e.to === "open"))
        fail(`expected the breaker for "${key}" to open`);
    },
    expectBreakerClosed: (key) => {
      const changes = of("breaker").filter((e) => e.key === key);
      const opened = changes.findIndex((e) => e.to === "open");
      if (opened < 0 || !changes.slice(opened).some((e) => e.to === "closed"))
        fail(`expected the breaker for "${key}" to open and close again`);
    },
    expectRetries: (count, key) => {
      // A count no run can reach (-1, NaN, 1.5) would only ever read as a miss.
      if (!(Number.isInteger(count) && count >= 0))
        throw new TypeError(`expectRetries(count): expected a whole number >= 0, got ${shownValue(count)}`);
      const retries = of("retry").filter((e) => key === undefined || e.key === key).length;
      if (retries !== count)
        fail(`expected ${count} retr${count === 1 ? "y" : "ies"}${key ? ` for "${key}"` : ""}, saw ${retries}`);
    },
    expectFallback: (from, next) => {
      if (!of("fallback").some((e) => e.from === from && (next === undefined || e.next === next))) {
        fail(`expected a fallback from "${from}"${next ? ` to "${next}"` : ""}`);
      }
    },
    expectDegradedTo: (level) => {
      if (!of("degradation").some((e) => e.to === level)) fail(`expected the degradation level to become "${level}"`);
    },
    stop: () => {
      for (const stop of stops) stop();
    },
  };
}
