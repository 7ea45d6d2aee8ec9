/**
 * Type-checks every ```ts block of README.md and docs/*.md, so a snippet a
 * user copies compiles as written (against the package's source, strict).
 *
 * Each block becomes a module in `.snippets/` (git-ignored) and the lot is
 * compiled with tsconfig.test.json's options. Errors are reported at the
 * Markdown file and line. An HTML comment on the line right before a block
 * changes how it is checked:
 *
 *   <!-- snippet: skip -->                       not compiled (say why in the text)
 *   <!-- snippet: declare const body: string; -->  code compiled before the block, unseen by readers
 *
 * Run: node scripts/check-snippets.ts [files…]   (npm run test:snippets)
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

export interface Snippet {
  /** The Markdown file, relative to the repository. */
  source: string;
  /** 1-based line of the block's first code line in the Markdown file. */
  line: number;
  /** Hidden code compiled before the block (from a `snippet:` comment). */
  prelude: string;
  code: string;
}

const ROOT = resolve(import.meta.dirname, "..");
const OUT = resolve(ROOT, ".snippets");
const FENCE = /^```(ts|typescript)\s*$/;
const DIRECTIVE = /^<!--\s*snippet:\s*([\s\S]*?)\s*-->$/;

/** The ```ts blocks of one Markdown text, minus the skipped ones. */
export function extractSnippets(markdown: string, source: string): Snippet[] {
  const lines = markdown.split("\n");
  const snippets: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!FENCE.test(lines[i] ?? "")) continue;
    const directive = DIRECTIVE.exec((lines[i - 1] ?? "").trim())?.[1];
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end] ?? "")) end++;
    if (end === lines.length) throw new Error(`${source}:${i + 1}: a \`\`\`ts block is never closed`);
    if (directive !== "skip") {
      snippets.push({ source, line: start + 1, prelude: directive ?? "", code: lines.slice(start, end).join("\n") });
    }
    i = end;
  }
  return snippets;
}

/** The module written for a snippet: the prelude on line 1, the code from line 2, always a module. */
export function moduleText(snippet: Snippet): string {
  return `${snippet.prelude}\n${snippet.code}\nexport {};\n`;
}

/** Compiles the snippets; returns one message per error, located in the Markdown. */
export function checkSnippets(snippets: Snippet[], outDir: string = OUT): string[] {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const byFile = new Map<string, Snippet>();
  snippets.forEach((snippet, n) => {
    const name = `${snippet.source.replace(/[^a-z0-9]+/gi, "-")}-${String(n).padStart(3, "0")}.ts`;
    const file = resolve(outDir, name);
    writeFileSync(file, moduleText(snippet));
    byFile.set(file, snippet);
  });
  const config = ts.getParsedCommandLineOfConfigFile(
    resolve(ROOT, "tsconfig.test.json"),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    },
  );
  if (!config) throw new Error("tsconfig.test.json could not be read");
  const program = ts.createProgram([...byFile.keys()], { ...config.options, noEmit: true });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    const snippet = d.file ? byFile.get(resolve(d.file.fileName)) : undefined;
    if (!d.file || d.start === undefined || !snippet) return `error TS${d.code}: ${text}`;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    // Line 0 of the module is the prelude; line n ≥ 1 is the block's line n - 1.
    const where =
      line === 0
        ? `${snippet.source}:${snippet.line - 2} (snippet: prelude)`
        : `${snippet.source}:${snippet.line + line - 1}`;
    return `${where}: error TS${d.code}: ${text}`;
  });
}

/** README.md and the guides in docs/ (not the generated API reference). */
function defaultFiles(): string[] {
  const docs = readdirSync(resolve(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`);
  return ["README.md", ...docs];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = process.argv.length > 2 ? process.argv.slice(2) : defaultFiles();
  const snippets = files.flatMap((f) =>
    extractSnippets(readFileSync(resolve(ROOT, f), "utf8"), relative(ROOT, resolve(ROOT, f))),
  );
  const errors = checkSnippets(snippets);
  for (const error of errors) console.error(error);
  console.log(
    `${snippets.length} snippets in ${files.length} files: ${errors.length === 0 ? "all compile" : `${errors.length} errors`}`,
  );
  process.exitCode = errors.length === 0 ? 0 : 1;
}
