import assert from "node:assert/strict";
import type { Pool } from "@neondatabase/serverless";
import { startTestDatabase } from "../../testing/database.ts";
import { recordLeadEvents } from "../leads/events.ts";
import { leadMetrics } from "./queries.ts";
import { applyRetention } from "./retention.ts";
import { refreshLeadMetrics } from "./rollup.ts";
import {
  DAY,
  directMetrics,
  insertEvents,
  leadIds,
  migratedDatabase,
  prng,
  randomEvents,
  rollupTable,
} from "../../testing/analytics.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// 12:34 so that "now − 90 days" is not a midnight: the raw cutoff rounds down to one.
const NOW = Date.parse("2031-06-01T12:34:00Z");
const TYPES = ["email_sent", "status_changed"];

async function count(sql: Pool, where: string, params: unknown[] = []): Promise<number> {
  const { rows } = await sql.query(
    `SELECT count(*)::int AS n FROM lead_events WHERE ${where}`,
    params,
  );
  return rows[0].n;
}

/** Events over the 100 days before NOW, some exactly on the rounded cutoff. */
async function fill(sql: Pool, cutoff: number): Promise<void> {
  const random = prng(7);
  const leads = leadIds(20);
  await insertEvents(
    sql,
    randomEvents(random, {
      count: 1500,
      start: NOW - 100 * DAY,
      hours: 100 * 24,
      leads,
      types: TYPES,
    }),
  );
  await recordLeadEvents(sql, [
    { lead_id: leads[0]!, event_type: "email_sent", source: "t", time: new Date(cutoff) },
    { lead_id: leads[1]!, event_type: "email_sent", source: "t", time: new Date(cutoff - 1) },
  ]);
}

Deno.test({
  name: "applyRetention() on plain Postgres",
  ...noSanitizers,
  async fn(t) {
    await using db = await startTestDatabase();
    const cutoff = Date.parse("2031-03-03T00:00:00Z"); // midnight at or before NOW − 90 days
    const iso = (ms: number) => new Date(ms).toISOString();

    await t.step("deletes only events before the cutoff's midnight, in batches", async () => {
      const sql = await migratedDatabase(db);
      await fill(sql, cutoff);
      await refreshLeadMetrics(sql, { now: NOW });
      const old = await count(sql, "time < $1", [iso(cutoff)]);
      const kept = await count(sql, "time >= $1", [iso(cutoff)]);
      assert.ok(old > 100 && kept > 100, `${old} old, ${kept} kept`);
      const r = await applyRetention(sql, { now: NOW, olderThanMs: 90 * DAY, batchSize: 50 });
      assert.equal(r.mode, "delete");
      assert.equal(r.retainedFrom, iso(cutoff));
      assert.equal(r.deletedEvents, old);
      assert.equal(r.batches, Math.floor(old / 50) + 1);
      assert.equal(r.done, true);
      assert.equal(await count(sql, "time < $1", [iso(cutoff)]), 0);
      assert.equal(await count(sql, "time >= $1", [iso(cutoff)]), kept);
      // Rollups were trimmed at the same instant and still match the raw rows.
      for (const bucket of ["1h", "1d"] as const) {
        const all = { from: new Date(NOW - 200 * DAY), to: new Date(NOW + DAY), bucket };
        assert.deepEqual(await rollupTable(sql, bucket), await directMetrics(sql, all));
        assert.deepEqual(await leadMetrics(sql, all), await directMetrics(sql, all));
      }
      const again = await applyRetention(sql, { now: NOW, olderThanMs: 90 * DAY });
      assert.deepEqual([again.deletedEvents, again.deletedRollupRows], [0, 0]);
    });

    await t.step("stops after maxBatches and says rows are left", async () => {
      const sql = await migratedDatabase(db);
      await fill(sql, cutoff);
      const r = await applyRetention(sql, {
        now: NOW,
        olderThanMs: 90 * DAY,
        batchSize: 10,
        maxBatches: 3,
      });
      assert.deepEqual([r.deletedEvents, r.batches, r.done], [30, 3, false]);
    });

    await t.step("rollups kept longer than raw events stay final", async () => {
      const sql = await migratedDatabase(db);
      await fill(sql, cutoff);
      const range = { from: new Date(NOW - 120 * DAY), to: new Date(NOW), bucket: "1h" as const };
      await refreshLeadMetrics(sql, { now: NOW });
      const before = await directMetrics(sql, range);
      const r = await applyRetention(sql, {
        now: NOW,
        olderThanMs: 90 * DAY,
        rollupOlderThanMs: 95 * DAY,
      });
      const rollupCutoff = Date.parse("2031-02-26T00:00:00Z");
      assert.equal(r.rollupCutoff, iso(rollupCutoff));
      const expected = before.filter((row) => Date.parse(row.bucket) >= rollupCutoff);
      assert.deepEqual(await leadMetrics(sql, range), expected);
      // A late event before the raw cutoff does not reopen a final bucket.
      await recordLeadEvents(sql, [{
        lead_id: crypto.randomUUID(),
        event_type: "email_sent",
        source: "t",
        time: new Date(cutoff - DAY),
      }]);
      assert.deepEqual(await leadMetrics(sql, range), expected);
      await refreshLeadMetrics(sql, { now: NOW });
      assert.deepEqual(await leadMetrics(sql, range), expected);
    });

    await t.step("refuses a rollup retention shorter than the raw one", async () => {
      const sql = await migratedDatabase(db);
      await assert.rejects(
        applyRetention(sql, { now: NOW, olderThanMs: 90 * DAY, rollupOlderThanMs: DAY }),
        RangeError,
      );
    });
  },
});
