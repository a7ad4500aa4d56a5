import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

/** Columns of businesses that are not history (migrations 010 and 013). */
const NOT_HISTORY = ["id", "created_at", "updated_at", "lead_score_factors"];

Deno.test({
  name:
    "the generated lead-history function compares every column of businesses (a migration that changes the table must regenerate it)",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const { sql } = stack.makeDeps();
    const { rows: cols } = await sql.query<{ name: string }>(
      `SELECT attname AS name FROM pg_attribute
        WHERE attrelid = 'businesses'::regclass AND attnum > 0 AND NOT attisdropped`,
    );
    const { rows: fn } = await sql.query<{ src: string }>(
      "SELECT prosrc AS src FROM pg_proc WHERE proname = 'record_lead_history'",
    );
    assert.equal(fn.length, 1);
    const src = fn[0]!.src;
    const recorded = cols.map((c) => c.name).filter((c) => !NOT_HISTORY.includes(c));
    assert.ok(recorded.length > 10, "the table's columns were read");
    const quote = (c: string) => /^[a-z_][a-z0-9_]*$/.test(c) ? c : `"${c}"`;
    const missing = recorded.filter((c) => !src.includes(`NEW.${quote(c)} IS DISTINCT FROM`));
    assert.deepEqual(
      missing,
      [],
      "columns without a history comparison: run regenerate_lead_history_function()",
    );
    for (const c of NOT_HISTORY) {
      assert.ok(!src.includes(`NEW.${c} IS DISTINCT FROM`), `${c} is not history`);
    }
  },
});
