import assert from "node:assert/strict";
import { findCycles, type ImportGraph, repositoryImportGraph } from "./import_cycles.ts";

function graph(edges: Record<string, string[]>): ImportGraph {
  return new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));
}

Deno.test("findCycles() reports one path per cycle and nothing for a tree", () => {
  assert.deepEqual(findCycles(graph({ a: ["b", "c"], b: ["c"], c: [] })), []);
  assert.deepEqual(findCycles(graph({ a: ["b"], b: ["c"], c: ["a"], d: ["a"] })), [[
    "a",
    "b",
    "c",
    "a",
  ]]);
  assert.deepEqual(findCycles(graph({ s: ["s"] })), [["s", "s"]]);
  // Two separate cycles are two reports.
  assert.equal(findCycles(graph({ a: ["b"], b: ["a"], x: ["y"], y: ["x"] })).length, 2);
});

Deno.test("the repository has no import cycles, type-only imports included (`deno task cycles`)", async () => {
  const modules = await repositoryImportGraph();
  // The graph really is the repository's: the edge's root and a type-only import are in it.
  assert.ok(modules.get("edge/main.ts")?.has("edge/app.ts"), "edge/main.ts → edge/app.ts");
  assert.ok(modules.get("edge/routes/me.ts")?.has("edge/app_env.ts"), "type-only edge counted");
  assert.deepEqual(findCycles(modules).map((c) => c.join(" → ")), []);
});
