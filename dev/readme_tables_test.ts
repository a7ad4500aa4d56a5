import assert from "node:assert/strict";
import { GENERATED_SECTIONS, sectionText } from "./config_docs.ts";

// Compare cells, not spacing: `deno fmt` pads Markdown tables.
function cells(text: string): string[][] {
  // Only table rows: `deno fmt` also re-wraps the prose under a table.
  return text.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("|")).map((l) =>
    l.split("|").map((c) => c.trim()).map((c) => (/^-+$/.test(c) ? "---" : c))
  );
}

Deno.test("README's generated tables match the code (run `deno task config:docs` when stale)", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  for (const [name, render] of Object.entries(GENERATED_SECTIONS)) {
    assert.deepEqual(cells(sectionText(readme, name)), cells(render()), `${name} is stale`);
  }
});
