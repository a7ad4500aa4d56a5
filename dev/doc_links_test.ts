import assert from "node:assert/strict";
import { anchorsOf, brokenDocLinks, headingAnchor, linkTargets } from "./doc_links.ts";

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
