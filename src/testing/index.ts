/**
 * Test helpers for code that uses `@storycore/resilient-fetch`: a clock that
 * advances without real sleeping and a seeded random source. (The MSW fault
 * builders of issue #7 are not here yet; see the README.)
 */
export { seededRandom } from "../core/random.ts";
export { TestClock } from "./test-clock.ts";
