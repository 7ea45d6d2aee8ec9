/**
 * Every type an entry's declarations import from a shared chunk is one the
 * package exports from some entry. A type the declarations reach that no
 * entry exports (the degradation entry's once reached the layer's internal
 * `Emitter` and `ResolvedTriggers`, through `GracefulDegradation`'s
 * constructor) makes tsup warn on every build, and a user's declaration emit
 * can fail on it (TS2742: the inferred type cannot be named). Reads the
 * built declarations (`npm test` builds before its unit tests).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  exports: Record<string, string | { types?: string }>;
};
const typeFiles = Object.values(pkg.exports).flatMap((target) =>
  typeof target === "object" && target.types ? [join(root, target.types)] : [],
);

/** The names a declaration file exports (`export { a as B, type C }`, `export declare class D`). */
function exportedNames(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(/export\s*\{([^}]*)\}/g)) {
    for (const part of (m[1] as string).split(",")) {
      const name = part
        .trim()
        .replace(/^type\s+/, "")
        .split(/\s+as\s+/)
        .pop();
      if (name) names.push(name);
    }
  }
  for (const m of text.matchAll(/export\s+(?:declare\s+)?(?:class|interface|type|function|const|enum)\s+(\w+)/g)) {
    names.push(m[1] as string);
  }
  return names;
}

/** The local names a declaration file imports from the package's own chunks (`import { x as Name } from '../c.js'`). */
function importedNames(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*["'](\.[^"']*)["']/g)) {
    for (const part of (m[1] as string).split(",")) {
      const name = part
        .trim()
        .replace(/^type\s+/, "")
        .split(/\s+as\s+/)
        .pop();
      if (name) names.push(name);
    }
  }
  return names;
}

describe("the public entries' declarations", () => {
  it("name only types some entry exports", () => {
    if (!existsSync(join(root, "dist/index.d.ts"))) {
      throw new Error("test/tooling/public-types.test.ts needs the built package: run `npm run build` first");
    }
    expect(typeFiles.length).toBe(8);
    const texts = new Map(typeFiles.map((file) => [file, readFileSync(file, "utf8")]));
    const exported = new Set([...texts.values()].flatMap(exportedNames));
    // The check can see something: the root exports the layer, the degradation entry imports shared types.
    expect(exported.has("createResilience")).toBe(true);
    expect(importedNames(texts.get(join(root, "dist/degradation/index.d.ts")) as string).length).toBeGreaterThan(0);
    const unexported = [...texts].flatMap(([file, text]) =>
      importedNames(text)
        .filter((name) => !exported.has(name))
        .map((name) => `${file.slice(root.length + 1)}: ${name}`),
    );
    expect(unexported).toEqual([]);
  });
});
