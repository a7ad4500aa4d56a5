import assert from "node:assert/strict";
import { statementOperation } from "./query_spans.ts";

Deno.test("statementOperation names the statement's first keyword, never its values", () => {
  assert.equal(statementOperation("select $1::int"), "SELECT");
  assert.equal(statementOperation("  -- why\n  INSERT INTO t VALUES ($1)"), "INSERT");
  assert.equal(statementOperation("WITH x AS (SELECT 1) SELECT * FROM x"), "WITH");
  assert.equal(statementOperation("alice@example.com"), "OTHER");
  assert.equal(statementOperation(""), "OTHER");
});
