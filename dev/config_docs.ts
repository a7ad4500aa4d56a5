/**
 * `deno task config:docs`: rewrites the generated sections of the guides in
 * docs/ — the configuration reference (from shared/config/) and the
 * authorization rule table (from edge/auth/policy.ts) — so docs and code never
 * drift apart. dev/config_docs_test.ts fails when a section is stale.
 *
 * @module
 */
import { renderConfigReference } from "../shared/config/mod.ts";
import { renderPolicyTable } from "../edge/auth/policy.ts";

/** One generated section: the file it lives in (from the repository root) and its renderer. */
export interface GeneratedSection {
  file: string;
  render: () => string;
}

/**
 * The policy table of edge/auth/policy.ts made narrow enough to read: the
 * grants (group, methods, who) stay a table, and each group's paths, which
 * made every row several hundred characters wide, become one list entry.
 */
export function renderPolicyReference(): string {
  const lines = renderPolicyTable().split("\n");
  const rows = lines.filter((l) => l.startsWith("|")).slice(2) // header and separator
    .map((l) => l.slice(1, -1).split(" | ").map((c) => c.trim()));
  const notes = lines.filter((l) => l !== "" && !l.startsWith("|"));
  // One entry per group and path set (a group name could come with two path sets).
  const paths = new Set(rows.map(([group, groupPaths]) => `- ${group}: ${groupPaths}`));
  return [
    "| group | methods | allowed |",
    "| --- | --- | --- |",
    ...rows.map(([group, , methods, who]) => `| ${group} | ${methods} | ${who} |`),
    "",
    "The paths of each group:",
    "",
    ...paths,
    "",
    ...notes,
  ].join("\n");
}

/** Generated sections: marker name → where it lives and how it is rendered. */
export const GENERATED_SECTIONS: Record<string, GeneratedSection> = {
  "config-reference": { file: "docs/configuration.md", render: renderConfigReference },
  "policy-table": { file: "docs/gateway.md", render: renderPolicyReference },
};

/** A path from the repository root as a file URL. */
export function repoFile(path: string): URL {
  return new URL(`../${path}`, import.meta.url);
}

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->`. */
export function replaceSection(text: string, name: string, body: string): string {
  const startMarker = `<!-- ${name}:start -->`;
  const endMarker = `<!-- ${name}:end -->`;
  const start = text.indexOf(startMarker);
  const end = text.indexOf(endMarker);
  if (start < 0 || end < start) {
    throw new Error(`Cannot find the ${startMarker} … ${endMarker} section`);
  }
  return text.slice(0, start + startMarker.length) + "\n\n" + body + "\n\n" + text.slice(end);
}

/** The text between a section's markers. */
export function sectionText(text: string, name: string): string {
  const startMarker = `<!-- ${name}:start -->`;
  const start = text.indexOf(startMarker);
  const end = text.indexOf(`<!-- ${name}:end -->`);
  if (start < 0 || end < start) throw new Error(`Cannot find the ${name} markers`);
  return text.slice(start + startMarker.length, end);
}

if (import.meta.main) {
  const written = new Set<string>();
  try {
    for (const [name, { file, render }] of Object.entries(GENERATED_SECTIONS)) {
      const path = repoFile(file);
      const text = await Deno.readTextFile(path);
      await Deno.writeTextFile(path, replaceSection(text, name, render()));
      written.add(path.pathname);
    }
  } catch (err) {
    console.error((err as Error).message);
    Deno.exit(1);
  }
  // Keep the files as `deno fmt` wants them (padded tables, wrapped prose), so fmt --check stays green.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", ...written] }).output();
  console.error(`updated: ${[...written].map((p) => p.split("/").slice(-2).join("/")).join(", ")}`);
}
