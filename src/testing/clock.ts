/**
 * `@storycore/resilient-fetch/testing/clock`: the test clock and seeded
 * random alone, without MSW, for tests (or pages) that fake time but not the
 * network.
 */
export { seededRandom } from "../core/random.ts";
export { TestClock } from "./test-clock.ts";
