import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { AnalyticsTierMissingError, bucketSql, bucketStart, readTier } from "./tier.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

Deno.test("readTier() reports a database that was not migrated", async () => {
  const missing = { code: "42P01", message: 'relation "analytics_tier" does not exist' };
  const fake = { query: () => Promise.reject(missing) } as unknown as Parameters<
    typeof readTier
  >[0];
  await assert.rejects(readTier(fake), AnalyticsTierMissingError);
});

Deno.test("bucketSql() uses date_bin with time_bucket's origin on tier 3 only", () => {
  assert.equal(
    bucketSql(3, "1h", "t"),
    "date_bin(interval '1 hour', t, timestamptz '2000-01-03 00:00:00+00')",
  );
  assert.equal(bucketSql(2, "1d", "t"), "time_bucket(interval '1 day', t)");
  assert.equal(
    bucketStart(Date.parse("2031-01-01T13:59:59.999Z"), "1h"),
    Date.parse("2031-01-01T13:00:00Z"),
  );
  assert.equal(
    bucketStart(Date.parse("2031-01-01T00:00:00Z"), "1d"),
    Date.parse("2031-01-01T00:00:00Z"),
  );
});

// Last in the file: the stack's Neon Pool leaves socket timers that would fire
// during a later, sanitized test of this file.
Deno.test({
  name: "readTier() says tier 3 on plain PostgreSQL and lists every feature once",
  ...noSanitizers,
  async fn() {
    await using stack = await useTestStack();
    const { sql } = stack.makeDeps();
    const info = await readTier(sql);
    if (info.details.timescaledb_version !== undefined) {
      console.log("The test stack's PostgreSQL has TimescaleDB: tier-3 expectations skipped");
      return;
    }
    assert.equal(info.tier, 3);
    assert.equal(info.name, "postgresql");
    assert.match(String(info.details.server_version), /^\d+/);
    assert.deepEqual(Object.keys(info.native), []);
    assert.deepEqual(Object.keys(info.emulated).sort(), [
      "bucketing",
      "compression",
      "daily_rollup",
      "hourly_rollup",
      "partitioning",
      "real_time",
      "refresh",
      "retention",
    ]);
    // lead_events stayed a plain table with the analytics indexes.
    const { rows } = await sql.query<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'lead_events' ORDER BY 1`,
    );
    // A B-tree since migration 018 (a BRIN range is read whole until autovacuum summarises it).
    assert.match(
      rows.find((r) => r.indexname === "lead_events_ingest_xid_idx")?.indexdef ?? "",
      /USING btree \(ingest_xid\)/,
    );
    assert.ok(rows.some((r) => r.indexname === "lead_events_time_idx"));
  },
});
