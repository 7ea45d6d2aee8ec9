import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkSnippets, extractSnippets, moduleText, type Snippet } from "../../scripts/check-snippets.ts";

const doc = [
  "# Title", // 1
  "", // 2
  "```ts", // 3
  'import { createResilience } from "@storycore/resilient-fetch";', // 4
  "const resilience = createResilience({ retry: { maxAttempts: 2 } });", // 5
  "```", // 6
  "", // 7
  "<!-- snippet: skip -->", // 8
  "```ts", // 9
  "this is not TypeScript", // 10
  "```", // 11
  "", // 12
  "<!-- snippet: declare const url: string; -->", // 13
  "```ts", // 14
  "const n: number = url.length;", // 15
  "```", // 16
  "```sh", // 17
  "npm test", // 18
  "```", // 19
  "```ts", // 20
  "const a = 1;", // 21
  'const b: string = "x";', // 22
  "const c: number = b;", // 23
  "```", // 24
].join("\n");

describe("scripts/check-snippets.ts", () => {
  const snippets = extractSnippets(doc, "doc.md");

  it("takes every ts block but the skipped ones, with its line and prelude", () => {
    expect(snippets.map((s) => [s.line, s.prelude, s.code.split("\n").length])).toEqual([
      [4, "", 2],
      [15, "declare const url: string;", 1],
      [21, "", 3],
    ]);
  });

  it("refuses a block that is never closed", () => {
    expect(() => extractSnippets("```ts\nconst a = 1;\n", "open.md")).toThrow(
      "open.md:1: a ```ts block is never closed",
    );
  });

  it("writes each snippet as a module with its prelude first", () => {
    expect(moduleText(snippets[1] as Snippet)).toBe(
      "declare const url: string;\nconst n: number = url.length;\nexport {};\n",
    );
  });

  const out = mkdtempSync(join(tmpdir(), "snippets-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it("compiles them against the package and reports errors at the Markdown line", () => {
    expect(checkSnippets(snippets, out)).toEqual([
      "doc.md:23: error TS2322: Type 'string' is not assignable to type 'number'.",
    ]);
  }, 60_000);
});
