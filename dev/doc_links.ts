/**
 * Finds broken references in the documentation: relative Markdown links in
 * README.md and docs/ whose file (or `#anchor`) does not exist. The test beside
 * it fails on any, so a moved or renamed guide cannot leave dangling links.
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
