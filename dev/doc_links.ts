/**
 * Finds broken references to documents: relative Markdown links in README.md
 * and docs/ whose file (or `#anchor`) does not exist, and `*.md` documents
 * cited in code comments (TypeScript, Lua, SQL, shell) that are not in the
 * repository. The test beside it fails on any, so a moved guide cannot leave
 * dangling links and no comment can lean on a document the reader cannot open.
 *
 * @module
 */

/** A reference that points nowhere. */
export interface BrokenLink {
  /** File holding the reference, from the repository root. */
  file: string;
  target: string;
  reason: string;
}

import { SOURCE_FOLDERS } from "./import_cycles.ts";

const ROOT = new URL("../", import.meta.url);

/** Markdown files the documentation consists of, from the repository root. */
export async function markdownFiles(): Promise<string[]> {
  const files = ["README.md"];
  async function walk(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(new URL(dir, ROOT))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".md")) files.push(path);
    }
  }
  await walk("docs");
  return files.sort();
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function headingAnchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

/** The anchors a Markdown text defines through its headings (outside code blocks). */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const heading = !fenced && /^#{1,6}\s+(.*)$/.exec(line);
    if (heading) anchors.add(headingAnchor(heading[1]!));
  }
  return anchors;
}

/** Link targets of a Markdown text (`[text](target)`), outside code blocks and code spans. */
export function linkTargets(markdown: string): string[] {
  const targets: string[] = [];
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) {
      fenced = !fenced;
      continue;
    }
    if (fenced) continue;
    const prose = line.replace(/`[^`]*`/g, "");
    for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) targets.push(m[1]!);
  }
  return targets;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(new URL(path, ROOT));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.IsADirectory) return null;
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(new URL(path, ROOT));
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Every relative link of README.md and docs/ whose file or anchor is missing. */
export async function brokenDocLinks(): Promise<BrokenLink[]> {
  const broken: BrokenLink[] = [];
  for (const file of await markdownFiles()) {
    const text = (await readText(file))!;
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/") + 1) : "";
    for (const target of linkTargets(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: …
      const [pathPart, anchor] = target.split("#", 2) as [string, string | undefined];
      const path = pathPart === "" ? file : new URL(pathPart, new URL(dir, "file:///")).pathname
        .slice(1);
      if (!(await exists(path))) {
        broken.push({ file, target, reason: `${path} does not exist` });
        continue;
      }
      if (anchor !== undefined && path.endsWith(".md")) {
        const anchors = anchorsOf((await readText(path)) ?? "");
        if (!anchors.has(anchor)) {
          broken.push({ file, target, reason: `${path} has no #${anchor}` });
        }
      }
    }
  }
  return broken;
}

/** Folders whose source comments are checked for cited documents: every module folder, SQL, CI. */
export const CODE_FOLDERS = [...SOURCE_FOLDERS, "sql", ".ci"];

const COMMENT_MARKERS: Record<string, RegExp> = {
  ts: /\/\/|^\s*\/?\*/,
  lua: /--/,
  sql: /--/,
  sh: /#/,
};

function languageOf(path: string): string | null {
  const ext = /\.([a-z]+)$/.exec(path)?.[1];
  if (ext === "ts" || ext === "lua" || ext === "sql") return ext;
  return path.startsWith(".ci/") ? "sh" : null;
}

/**
 * The `*.md` names cited in the comments of one source text: after a comment
 * marker on the line, or on a JSDoc/block-comment continuation line.
 */
export function citedDocuments(source: string, language: string): string[] {
  const marker = COMMENT_MARKERS[language];
  if (!marker) return [];
  const cited: string[] = [];
  for (const line of source.split("\n")) {
    const m = marker.exec(line);
    if (!m) continue;
    const comment = line.slice(m.index);
    for (const c of comment.matchAll(/[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b/g)) cited.push(c[0]);
  }
  return cited;
}

async function sourceFiles(dir: string, out: string[]): Promise<void> {
  let entries: AsyncIterable<Deno.DirEntry>;
  try {
    entries = Deno.readDir(new URL(dir, ROOT));
  } catch {
    return;
  }
  try {
    for await (const entry of entries) {
      const path = `${dir}/${entry.name}`;
      // Installed packages (git-ignored, e.g. bench/peers/node/node_modules) are not our code.
      if (entry.isDirectory) {
        if (entry.name !== "node_modules") await sourceFiles(path, out);
      } else if (languageOf(path)) out.push(path);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Every document cited in a code comment that does not exist in the repository. */
export async function brokenCodeCitations(): Promise<BrokenLink[]> {
  const docs = await markdownFiles();
  const basenames = new Set(docs.map((d) => d.slice(d.lastIndexOf("/") + 1)));
  const files: string[] = [];
  for (const dir of CODE_FOLDERS) await sourceFiles(dir, files);
  const broken: BrokenLink[] = [];
  for (const file of files.sort()) {
    const text = (await readText(file))!;
    const dir = file.slice(0, file.lastIndexOf("/") + 1);
    for (const target of citedDocuments(text, languageOf(file)!)) {
      // A bare name (as in merged migrations, which are never edited) must name
      // one of the documents; a path is read from the repository root or the file.
      const found = target.includes("/")
        ? (await exists(target)) || (await exists(dir + target))
        : basenames.has(target);
      if (!found) broken.push({ file, target, reason: "cited document is not in the repository" });
    }
  }
  return broken;
}
