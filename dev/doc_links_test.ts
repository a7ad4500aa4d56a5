import assert from "node:assert/strict";
import {
  anchorsOf,
  brokenCodeCitations,
  brokenDocLinks,
  citedDocuments,
  headingAnchor,
  linkTargets,
} from "./doc_links.ts";

Deno.test("headingAnchor() follows GitHub's rules for the headings the guides use", () => {
  assert.equal(headingAnchor("Dead-letter operations"), "dead-letter-operations");
  assert.equal(headingAnchor("Live feed (WebSocket)"), "live-feed-websocket");
  assert.equal(
    headingAnchor("Circuit breakers, degraded answers"),
    "circuit-breakers-degraded-answers",
  );
});

Deno.test("linkTargets() skips links inside code blocks and code spans", () => {
  const md = "[a](a.md) `[b](b.md)`\n```\n[c](c.md)\n```\n[d](d.md#x)";
  assert.deepEqual(linkTargets(md), ["a.md", "d.md#x"]);
  assert.deepEqual([...anchorsOf("# Top\n```\n# not a heading\n```\n## Sub part")], [
    "top",
    "sub-part",
  ]);
});

Deno.test("every relative link in README.md and docs/ points to an existing file and heading", async () => {
  const broken = await brokenDocLinks();
  assert.deepEqual(
    broken.map((b) => `${b.file}: ${b.target} (${b.reason})`),
    [],
    "broken documentation links",
  );
});

Deno.test("citedDocuments() finds .md names in comments only", () => {
  const ts = [
    "/** See docs/reference/neon-local.md §5. */",
    'const x = "not-a-comment.md";',
    "  // timescale-tiers.md and docs/queue.md",
    " * continued docs/a_b.md",
  ].join("\n");
  assert.deepEqual(citedDocuments(ts, "ts"), [
    "docs/reference/neon-local.md",
    "timescale-tiers.md",
    "docs/queue.md",
    "docs/a_b.md",
  ]);
  assert.deepEqual(citedDocuments("SELECT 1; -- see timescale-tiers.md", "sql"), [
    "timescale-tiers.md",
  ]);
});

Deno.test("every document a code comment cites is in the repository", async () => {
  const broken = await brokenCodeCitations();
  assert.deepEqual(
    broken.map((b) => `${b.file}: ${b.target}`),
    [],
    "comments cite documents that are not in the repository",
  );
});
