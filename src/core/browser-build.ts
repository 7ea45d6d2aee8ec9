/**
 * The browser build (`dist/browser`, the package's `browser` export
 * condition) is the same source with `globalThis.__RESILIENT_FETCH_BROWSER__`
 * defined as `true`, so a bundler folds the test and drops what only runs
 * outside browsers: the redirect follower (browsers hide a redirect's
 * `Location` from `redirect: "manual"`, so only they can follow) and the
 * platform error codes (browsers only say "Failed to fetch"), and the check
 * of the request fields workerd refuses. Anywhere else,
 * the source included, the global is `undefined`. Read it as
 * `(globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__` at each use:
 * a bundler folds that expression, not a variable holding it.
 */
export interface BrowserBuild {
  __RESILIENT_FETCH_BROWSER__?: boolean;
}
