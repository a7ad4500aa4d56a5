import assert from "node:assert/strict";
import { startTestDatabase } from "../../dev/test_database.ts";
import { setPoolDatabaseUrl } from "./pool.ts";

Deno.test("setPoolDatabaseUrl(): new connections use the rotated URL; open ones keep working", async () => {
  await using db = await startTestDatabase();
  const pool = db.pool({ max: 4 });
  const rotated = await db.createDatabase();
  const held = await pool.connect();
  try {
    const before = await held.query<{ db: string }>("SELECT current_database() AS db");
    const url = new URL(
      (pool as unknown as { options: { connectionString: string } }).options
        .connectionString,
    );
    url.pathname = `/${rotated}`;
    setPoolDatabaseUrl(pool, url.toString());
    // `held` is checked out, so the pool must open a new connection for this one.
    const fresh = await pool.connect();
    try {
      const after = await fresh.query<{ db: string }>("SELECT current_database() AS db");
      assert.equal(after.rows[0]!.db, rotated);
    } finally {
      fresh.release();
    }
    const still = await held.query<{ db: string }>("SELECT current_database() AS db");
    assert.equal(still.rows[0]!.db, before.rows[0]!.db, "the open connection is untouched");
    assert.notEqual(before.rows[0]!.db, rotated);
  } finally {
    held.release();
  }
  assert.throws(() => setPoolDatabaseUrl(pool, "mysql://x"), TypeError);
});
