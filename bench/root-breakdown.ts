import { gzipSync } from "node:zlib";
import { build } from "esbuild";

/**
 * Where the root entry's bytes go: `import { createResilience }` bundled for
 * the browser as size-limit bundles it, split by source file and grouped by
 * concept, each group's cost the gzip bytes the bundle loses without it.
 *
 * The split needs esbuild's `// src/…` markers, which only an output with
 * whitespace kept has; the groups' costs are measured on that output and
 * scaled to the fully minified bundle's gzip size. They are estimates, and
 * they add up to less than the whole: text repeated across groups (names,
 * message fragments) costs gzip once, so it is counted under no group.
 *
 * Run: `node bench/root-breakdown.ts` (prints a Markdown table).
 */

const groups: Array<[string, RegExp]> = [
  ["option checking (messages, rules, defaults)", /^src\/core\/options\/|^src\/http\/resolve-options/],
  ["request model (inputs, headers, replayable bodies)", /^src\/http\/request\//],
  ["URL redaction", /^src\/core\/redact-url/],
  ["breaker state machine and breaker", /^src\/policies\/(breaker-state|circuit-breaker)|^src\/core\/breaker-snapshot/],
  ["per-host registry, bulkhead, LRU", /^src\/policies\/(breaker-registry|bulkhead)|^src\/core\/lru-map/],
  [
    "retry: backoff, budget, Retry-After, decisions",
    /^src\/policies\/(retry|backoff|rolling-window)|^src\/http\/send\/(retry-|classify|failure-reason)/,
  ],
  ["fetch and layer wiring", /^src\/http\/(resilient-fetch|create-resilience|send\/resilience-info)/],
  [
    "sending: attempts, timeouts, bodies, redirects",
    /^src\/http\/send\/|^src\/policies\/deadline|^src\/core\/(sleep|until-aborted)/,
  ],
  ["health, debugInfo, analytics", /^src\/http\/(health|analytics)/],
  ["CORS hint", /cors-/],
  ["execute and named breakers", /^src\/http\/(execute|named-breakers)/],
  ["errors, events, clock, the rest", /./],
];

const define = { "globalThis.__RESILIENT_FETCH_BROWSER__": "true" };
const entry = {
  contents: 'export { createResilience } from "./src/index.ts";',
  resolveDir: process.cwd(),
  loader: "ts" as const,
};

async function bundle(minifyWhitespace: boolean): Promise<string> {
  const result = await build({
    stdin: entry,
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    minifyIdentifiers: true,
    minifySyntax: true,
    minifyWhitespace,
    define,
  });
  return (result.outputFiles[0] as { text: string }).text;
}

const gzip = (text: string): number => gzipSync(text, { level: 9 }).length;

const minified = await bundle(true);
const marked = await bundle(false);
// Chunks of the marked output, each under the file its `// src/…` comment names.
const chunks = marked.split(/^(?=\/\/ src\/)/m).map((text) => ({ file: /^\/\/ (\S+)/.exec(text)?.[1] ?? "", text }));
const groupOf = (file: string): string => (groups.find(([, test]) => test.test(file)) as [string, RegExp])[0];
const whole = gzip(marked);
const scale = gzip(minified) / whole;

console.log(`root { createResilience }, browser build: ${gzip(minified)} bytes min+gzip\n`);
console.log("| group | files | bytes min+gzip (estimate) |");
console.log("| --- | --- | --- |");
for (const [name] of groups) {
  const files = chunks.filter((c) => c.file && groupOf(c.file) === name);
  const without = chunks
    .filter((c) => !files.includes(c))
    .map((c) => c.text)
    .join("");
  const cost = Math.round((whole - gzip(without)) * scale);
  console.log(`| ${name} | ${files.length} | ${cost.toLocaleString("en")} |`);
}
