/**
 * `deno task config:docs`: rewrites the configuration table in README.md from
 * the config schema (shared/config.ts), so the two never drift apart.
 *
 * @module
 */
import { renderConfigTable } from "../shared/config.ts";

const START = "<!-- config-table:start -->";
const END = "<!-- config-table:end -->";

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url);
  const readme = await Deno.readTextFile(path);
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) {
    console.error(`README.md has no ${START} … ${END} section`);
    Deno.exit(1);
  }
  const next = readme.slice(0, start + START.length) + "\n" + renderConfigTable() + "\n" +
    readme.slice(end);
  await Deno.writeTextFile(path, next);
  // Keep the file as `deno fmt` wants it (padded table), so fmt --check stays green.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path.pathname] }).output();
  console.error("README.md configuration table updated");
}
