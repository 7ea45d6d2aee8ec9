/**
 * Host script for Node, Deno and Bun: imports the BUILT package by its name
 * (through package.json "exports"; Deno through an import map), runs the
 * suite against the URLs given, prints the results as one JSON line, and
 * then must exit on its own.
 */
import * as lib from "@storycore/resilient-fetch";
import * as testing from "@storycore/resilient-fetch/testing/clock";
import { runConformance } from "./conformance.js";

const [runtime = "node", api = "", alt = ""] =
  typeof Deno !== "undefined"
    ? Deno.args
    : (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const results = await runConformance({ lib, testing, api, alt, runtime, canExit: true });
console.log(JSON.stringify({ runtime, results }));

declare const Deno: { args: string[] } | undefined;
