/**
 * `@storycore/resilient-fetch/testing`: make an API fail the way generation
 * APIs fail, under MSW, and see what the resilience layer did. Needs `msw`
 * (a peer dependency) for the fault builders and `upstream`.
 */
export { seededRandom } from "../core/random.ts";
export { type CorsPolicy, type CorsPreflight, corsPreflight } from "./cors.ts";
export { type EventRecorder, type RecordedEvent, recordEvents } from "./event-recorder.ts";
export {
  type Fault,
  flaky,
  hang,
  json,
  latency,
  malformedJson,
  networkError,
  outage,
  sequence,
  status,
  stream,
  type TimeSource,
} from "./faults.ts";
export { TestClock } from "./test-clock.ts";
export { type Method, type Upstream, upstream } from "./upstream.ts";
