// biome-ignore-all lint/suspicious/noVar: this file is ES5 on purpose, so that any old Node can parse it and explain itself.
// biome-ignore-all lint/complexity/useArrowFunction: ES5 has no arrow functions.
// biome-ignore-all lint/style/useTemplate: ES5 has no template literals.
/*
 * Refuses, in one line, to develop on a Node older than the project needs.
 * Run by npm before `npm run demo`, `npm test` and the examples' scripts: without it an
 * old Node fails deep inside a dependency (`Unknown file extension ".ts"`,
 * `Map.groupBy is not a function`) and says nothing about the real cause.
 * It is ES5 CommonJS so that the oldest Node still parses it.
 */
"use strict";

// The first release of each line that runs TypeScript files without a flag (the demo, benchmarks and
// examples are .ts): 22.18 and 23.6; every later major does. MSW 3 needs 22.12 (ky 2 needs 22).
var REQUIRED = [22, 18, 0];
var LINES = { 22: [22, 18, 0], 23: [23, 6, 0] };

/** Whether `parts` ("22.17.1" split) is at least `least`, part by part. */
function atLeast(parts, least) {
  var have, i;
  for (i = 0; i < least.length; i++) {
    have = parseInt(parts[i], 10) || 0;
    if (have !== least[i]) return have > least[i];
  }
  return true;
}

/** The one-line refusal for `version` ("20.20.2" or "v20.20.2"), or null when it is new enough. */
function checkNode(version, execPath) {
  var shown = String(version).replace(/^v/, "");
  var parts = shown.split(".");
  var least = LINES[parseInt(parts[0], 10)] || REQUIRED;
  if (atLeast(parts, least)) return null;
  return (
    "@storycore/resilient-fetch needs Node >= " +
    REQUIRED.join(".") +
    " (on Node 23, >= 23.6.0) for development; this is Node " +
    shown +
    (execPath ? " (" + execPath + ")" : "") +
    ". Get Node 22 with `nvm install 22`, `fnm install 22` or from https://nodejs.org/en/download, then run the command again."
  );
}

module.exports = { checkNode: checkNode, REQUIRED: REQUIRED };

var refusal = require.main === module ? checkNode(process.versions.node, process.execPath) : null;
if (refusal) {
  process.stderr.write(refusal + "\n");
  process.exit(1);
}
