import assert from "node:assert/strict";
import { z } from "zod";
import { plainIssues } from "./plain_issues.ts";

Deno.test("plainIssues() words zod's type errors as a person would fix them", () => {
  const schema = z.object({ name: z.string(), n: z.number(), tags: z.array(z.string()) }).strict();
  const parsed = schema.safeParse({ n: "7", tags: "a", extra: 1, other: 2 });
  assert.ok(!parsed.success);
  const out = parsed.error.issues.flatMap(plainIssues).map((i) =>
    `${i.path.join(".")}: ${i.message}`
  )
    .sort();
  assert.deepEqual(out, [
    "extra: unknown field",
    "n: must be a number (got string)",
    "name: required",
    "other: unknown field",
    "tags: must be an array (got string)",
  ]);
});

Deno.test("plainIssues() keeps messages it has no better words for", () => {
  const parsed = z.object({ n: z.number().min(5) }).safeParse({ n: 1 });
  assert.ok(!parsed.success);
  assert.deepEqual(parsed.error.issues.flatMap(plainIssues), [
    { path: ["n"], message: parsed.error.issues[0]!.message },
  ]);
});
