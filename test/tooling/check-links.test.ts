import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { anchorOf, brokenLinks, linksOf } from "../../scripts/check-links.ts";

describe("scripts/check-links.ts", () => {
  it("makes GitHub's anchors", () => {
    expect(anchorOf("How it compares (measured)")).toBe("how-it-compares-measured");
    expect(anchorOf("Retry, timeouts and errors")).toBe("retry-timeouts-and-errors");
    expect(anchorOf("`transform(req)`")).toBe("transformreq");
  });

  it("finds links and images outside code, with their lines", () => {
    const text = [
      "[a](a.md) and ![b](img/b.png)",
      "`[not](code.md)`",
      "```",
      "[no](fenced.md)",
      "```",
      '[c](c.md#x "t")',
    ];
    expect(linksOf(text.join("\n"))).toEqual([
      { line: 1, target: "a.md" },
      { line: 1, target: "img/b.png" },
      { line: 6, target: "c.md#x" },
    ]);
  });

  const root = mkdtempSync(join(tmpdir(), "links-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("reports missing files and headings, and leaves URLs alone", () => {
    mkdirSync(join(root, "docs"));
    writeFileSync(join(root, "docs/guide.md"), "# Guide\n\n## Two words\n");
    writeFileSync(
      join(root, "README.md"),
      [
        "[ok](docs/guide.md) [ok](docs/guide.md#two-words) [ok](#top-title)",
        "[gone](docs/gone.md) [bad](docs/guide.md#nope)",
        "[web](https://example.com/x.md) [mail](mailto:a@b.c)",
        "![own](https://raw.githubusercontent.com/storycore/resilient-fetch/main/docs/guide.md) ![own](https://raw.githubusercontent.com/storycore/resilient-fetch/main/docs/shot.png)",
        "# Top title",
      ].join("\n"),
    );
    expect(brokenLinks("README.md", root)).toEqual([
      "README.md:2: docs/gone.md: no such file",
      "README.md:2: docs/guide.md#nope: no heading #nope",
      "README.md:4: https://raw.githubusercontent.com/storycore/resilient-fetch/main/docs/shot.png: no such file",
    ]);
  });
});
