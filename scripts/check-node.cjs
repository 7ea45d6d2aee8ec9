// biome-ignore-all lint/suspicious/noVar: this file is ES5 on purpose, so that any old Node can parse it and explain itself.
// biome-ignore-all lint/complexity/useArrowFunction: ES5 has no arrow functions.
// biome-ignore-all lint/style/useTemplate: ES5 has no template literals.
/*
 * Refuses, in one line, to develop on a Node older than the project needs.
 * Run by npm before `npm run demo`, `npm test` and the examples: without it an
 * old Node fails deep inside a dependency (`Unknown file extension ".ts"`,
 * `Map.groupBy is not a function`) and says nothing about the real cause.
 * It is ES5 CommonJS so that the oldest Node still parses it.
 */
"use strict";

// 22.18: the first 22 to run TypeScript files without a flag (the demo, benchmarks and examples are .ts); MSW 3 and ky 2 need 22.12.
var REQUIRED = [22, 18, 0];

/** The one-line refusal for `version` ("20.20.2" or "v20.20.2"), or null when it is new enough. */
function checkNode(version, execPath) {
  var parts = String(version).replace(/^v/, "").split(".");
  var have, i;
  for (i = 0; i < REQUIRED.length; i++) {
    have = parseInt(parts[i], 10) || 0;
    if (have > REQUIRED[i]) return null;
    if (have < REQUIRED[i]) {
      return (
        "@storycore/resilient-fetch needs Node >= " +
        REQUIRED.join(".") +
        " for development; this is Node " +
        String(version).replace(/^v/, "") +
        (execPath ? " (" + execPath + ")" : "") +
        ". Get Node 22 with `nvm install 22`, `fnm install 22` or from https://nodejs.org/en/download, then run the command again."
      );
    }
  }
  return null;
}

module.exports = { checkNode: checkNode, REQUIRED: REQUIRED };

var refusal = require.main === module ? checkNode(process.versions.node, process.execPath) : null;
if (refusal) {
  process.stderr.write(refusal + "\n");
  process.exit(1);
}
