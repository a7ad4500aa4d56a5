/**
 * `deno task config:docs`: rewrites the generated tables in README.md — the
 * configuration table (from shared/config.ts) and the authorization rule
 * table (from edge/auth/policy.ts) — so docs and code never drift apart.
 * Tests (shared/config_test.ts, dev/readme_tables_test.ts) fail when stale.
 *
 * @module
 */
import { renderConfigTable } from "../shared/config.ts";
import { renderPolicyTable } from "../edge/auth/policy.ts";

/** Generated README sections: marker name → renderer. */
export const GENERATED_SECTIONS: Record<string, () => string> = {
  "config-table": renderConfigTable,
  "policy-table": renderPolicyTable,
};

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->`. */
export function replaceSection(readme: string, name: string, body: string): string {
  const startMarker = `<!-- ${name}:start -->`;
  const endMarker = `<!-- ${name}:end -->`;
  const start = readme.indexOf(startMarker);
  const end = readme.indexOf(endMarker);
  if (start < 0 || end < start) {
    throw new Error(`README.md has no ${startMarker} … ${endMarker} section`);
  }
  return readme.slice(0, start + startMarker.length) + "\n" + body + "\n" + readme.slice(end);
}

/** The text between a section's markers. */
export function sectionText(readme: string, name: string): string {
  const startMarker = `<!-- ${name}:start -->`;
  const start = readme.indexOf(startMarker);
  const end = readme.indexOf(`<!-- ${name}:end -->`);
  if (start < 0 || end < start) throw new Error(`README.md lacks the ${name} markers`);
  return readme.slice(start + startMarker.length, end);
}

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url);
  let readme = await Deno.readTextFile(path);
  try {
    for (const [name, render] of Object.entries(GENERATED_SECTIONS)) {
      readme = replaceSection(readme, name, render());
    }
  } catch (err) {
    console.error((err as Error).message);
    Deno.exit(1);
  }
  await Deno.writeTextFile(path, readme);
  // Keep the file as `deno fmt` wants it (padded tables), so fmt --check stays green.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path.pathname] }).output();
  console.error("README.md generated tables updated");
}
