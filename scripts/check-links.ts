/**
 * Checks that every relative link and image in README.md and docs/*.md
 * points at a file of the repository (and, with a #fragment into a Markdown
 * file, at one of its headings), so the guides never send a reader nowhere.
 * Absolute URLs are left alone (this runs offline), except those of this
 * repository's own files, which must exist here.
 *
 * Run: node scripts/check-links.ts [files…]   (npm run test:links)
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(import.meta.dirname, "..");
const LINK = /!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g;
/** Absolute URLs of this repository's own files (the README's images, for the registry's page). */
const OWN =
  /^https:\/\/(?:raw\.githubusercontent\.com\/storycore\/resilient-fetch\/main|github\.com\/storycore\/resilient-fetch\/(?:blob|raw)\/main)\//;

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The link targets of a Markdown text outside code blocks, with their lines. */
export function linksOf(markdown: string): Array<{ line: number; target: string }> {
  const links: Array<{ line: number; target: string }> = [];
  let fenced = false;
  markdown.split("\n").forEach((text, i) => {
    if (/^```/.test(text)) fenced = !fenced;
    if (fenced) return;
    for (const match of text.replace(/`[^`]*`/g, "").matchAll(LINK))
      links.push({ line: i + 1, target: match[1] as string });
  });
  return links;
}

/** One message per broken relative link of `file` (relative to the repository). */
export function brokenLinks(file: string, root: string = ROOT): string[] {
  const path = resolve(root, file);
  const errors: string[] = [];
  for (const { line, target } of linksOf(readFileSync(path, "utf8"))) {
    const own = OWN.exec(target);
    if (!own && (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//"))) continue;
    const [pathPart = "", fragment] = (own ? target.slice(own[0].length) : target).split("#", 2);
    const base = own ? resolve(root, "x") : path;
    const resolved = pathPart === "" ? path : resolve(dirname(base), decodeURIComponent(pathPart));
    if (!existsSync(resolved)) {
      errors.push(`${file}:${line}: ${target}: no such file`);
      continue;
    }
    if (fragment && resolved.endsWith(".md")) {
      const anchors = readFileSync(resolved, "utf8")
        .split("\n")
        .filter((l) => /^#{1,6} /.test(l))
        .map((l) => anchorOf(l.replace(/^#+ /, "")));
      if (!anchors.includes(fragment)) errors.push(`${file}:${line}: ${target}: no heading #${fragment}`);
    }
  }
  return errors;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const docs = readdirSync(resolve(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`);
  const files =
    process.argv.length > 2
      ? process.argv.slice(2).map((f) => relative(ROOT, resolve(f)))
      : ["README.md", ...docs.sort()];
  const errors = files.flatMap((f) => brokenLinks(f));
  for (const error of errors) console.error(error);
  console.log(`links in ${files.length} files: ${errors.length === 0 ? "all resolve" : `${errors.length} broken`}`);
  process.exitCode = errors.length === 0 ? 0 : 1;
}
