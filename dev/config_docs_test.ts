import assert from "node:assert/strict";
import { GENERATED_SECTIONS, repoFile, sectionText } from "./config_docs.ts";

// Compare words, not layout: `deno fmt` pads Markdown tables and re-wraps list items.
function words(text: string): string[] {
  return text.split(/[\s|]+/).map((w) => (/^-{3,}$/.test(w) ? "---" : w)).filter((w) => w !== "");
}

for (const [name, { file, render }] of Object.entries(GENERATED_SECTIONS)) {
  Deno.test(`${file}: the generated ${name} matches the code (run \`deno task config:docs\` when stale)`, async () => {
    const text = await Deno.readTextFile(repoFile(file));
    assert.deepEqual(
      words(sectionText(text, name)),
      words(render()),
      `${name} in ${file} is stale`,
    );
  });
}
