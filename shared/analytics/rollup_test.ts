import assert from "node:assert/strict";
import type { Pool } from "@neondatabase/serverless";
import { startTestDatabase } from "../../testing/database.ts";
import { recordLeadEvents } from "../leads/events.ts";
import { leadMetrics } from "./queries.ts";
import { invalidateLeadMetrics, refreshLeadMetrics } from "./rollup.ts";
import {
  allEvents,
  DAY,
  directMetrics,
  HOUR,
  insertEvents,
  leadIds,
  migratedDatabase,
  prng,
  randomEvents,
  rollupTable,
} from "../../testing/analytics.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

const T0 = Date.parse("2031-03-10T00:00:00Z");
const TYPES = ["email_sent", "status_changed", "email_replied", "lead_created"];
const NOW = T0 + 5 * DAY;

/** leadMetrics() and the rollup tables against the direct GROUP BY, for several ranges. */
async function assertCurrent(sql: Pool, label: string): Promise<void> {
  const ranges: [number, number][] = [
    [T0 - 10 * DAY, T0 + 10 * DAY],
    [T0 + 7 * HOUR + 1234, T0 + 30 * HOUR], // unaligned from: its bucket is included whole
    [T0 + 24 * HOUR, T0 + 25 * HOUR], // exactly one hour
  ];
  for (const [f, t] of ranges) {
    for (const bucket of ["1h", "1d"] as const) {
      const o = { from: new Date(f), to: new Date(t), bucket };
      assert.deepEqual(
        await leadMetrics(sql, o),
        await directMetrics(sql, o),
        `${label}: ${bucket} ${o.from.toISOString()}..${o.to.toISOString()}`,
      );
      const one = { ...o, eventType: "email_sent" };
      assert.deepEqual(
        await leadMetrics(sql, one),
        await directMetrics(sql, { ...o, types: ["email_sent"] }),
        `${label}: ${bucket} email_sent only`,
      );
    }
  }
}

async function assertRollupsExact(sql: Pool, label: string): Promise<void> {
  for (const bucket of ["1h", "1d"] as const) {
    assert.deepEqual(
      await rollupTable(sql, bucket),
      await directMetrics(sql, allEvents(bucket)),
      `${label}: rollup ${bucket}`,
    );
  }
}

Deno.test({
  name: "refreshLeadMetrics() on plain Postgres",
  ...noSanitizers,
  async fn(t) {
    await using db = await startTestDatabase();
    const sql = await migratedDatabase(db, 6);
    const seed = Date.now() % 100_000;
    const random = prng(seed);
    const leads = leadIds(40);
    const label = `seed ${seed}`;

    await t.step("before the first refresh leadMetrics() is computed from raw events", async () => {
      await insertEvents(
        sql,
        randomEvents(random, { count: 3000, start: T0, hours: 72, leads, types: TYPES }),
      );
      assert.deepEqual(await rollupTable(sql, "1h"), []);
      await assertCurrent(sql, label);
    });

    await t.step(
      "the first refresh builds both rollups exactly; a second changes nothing",
      async () => {
        const first = await refreshLeadMetrics(sql, { now: NOW });
        assert.equal(first.full, true);
        assert.equal(first.tier, 3);
        assert.ok(first.hours > 0 && first.days >= 3, JSON.stringify(first));
        await assertRollupsExact(sql, label);
        const again = await refreshLeadMetrics(sql, { now: NOW });
        assert.deepEqual(
          {
            full: again.full,
            hours: again.hours,
            upserted: again.upserted,
            deleted: again.deleted,
          },
          { full: false, hours: 0, upserted: 0, deleted: 0 },
        );
        await assertCurrent(sql, label);
      },
    );

    await t.step(
      "late events dirty their old buckets; the tail is current before a refresh",
      async () => {
        const late = randomEvents(random, {
          count: 400,
          start: T0 - 2 * DAY,
          hours: 48,
          leads,
          types: TYPES,
        });
        const recent = randomEvents(random, {
          count: 400,
          start: T0 + 24 * HOUR,
          hours: 48,
          leads,
          types: [...TYPES, "appointment_booked"],
        });
        await insertEvents(sql, [...late, ...recent]);
        await assertCurrent(sql, `${label}, unrefreshed`);
        const r = await refreshLeadMetrics(sql, { now: NOW });
        assert.equal(r.full, false);
        assert.ok(r.hours > 0 && r.hours <= 96, JSON.stringify(r));
        await assertRollupsExact(sql, label);
        await assertCurrent(sql, `${label}, refreshed`);
      },
    );

    await t.step(
      "a row whose transaction commits after a refresh's snapshot is not missed",
      async () => {
        const client = await sql.connect();
        try {
          await client.query("BEGIN");
          await recordLeadEvents(client, [{
            lead_id: leads[0]!,
            event_type: "email_failed",
            source: "test:analytics",
            time: new Date(T0 - 5 * DAY),
          }]);
          // Newer work commits and is refreshed while the old transaction is open.
          await recordLeadEvents(sql, [{
            lead_id: leads[1]!,
            event_type: "email_failed",
            source: "test:analytics",
            time: new Date(T0 + 3 * HOUR),
          }]);
          const r = await refreshLeadMetrics(sql, { now: NOW, wait: true });
          assert.equal(r.skipped, false);
          await client.query("COMMIT");
        } finally {
          client.release();
        }
        await assertCurrent(sql, `${label}, slow writer unrefreshed`);
        await refreshLeadMetrics(sql, { now: NOW });
        await assertRollupsExact(sql, `${label}, slow writer`);
      },
    );

    await t.step("an invalidated bucket whose rows were deleted becomes empty", async () => {
      const hour = T0 + 10 * HOUR;
      await sql.query(
        "DELETE FROM lead_events WHERE time >= $1 AND time < $2 AND event_type = 'email_sent'",
        [new Date(hour).toISOString(), new Date(hour + HOUR).toISOString()],
      );
      await invalidateLeadMetrics(sql, { from: new Date(hour), to: new Date(hour + HOUR) });
      await assertCurrent(sql, `${label}, invalidated`);
      const r = await refreshLeadMetrics(sql, { now: NOW });
      assert.ok(r.deleted >= 1, JSON.stringify(r));
      await assertRollupsExact(sql, `${label}, invalidated`);
      const { rows } = await sql.query("SELECT count(*)::int AS n FROM lead_metrics_invalidations");
      assert.equal(rows[0].n, 0);
    });

    await t.step("two concurrent refreshers give the same table", async () => {
      const other = db.pool({
        database: (await sql.query("SELECT current_database() AS d")).rows[0].d,
      });
      await insertEvents(
        sql,
        randomEvents(random, { count: 600, start: T0 - DAY, hours: 96, leads, types: TYPES }),
      );
      const [a, b] = await Promise.all([
        refreshLeadMetrics(sql, { now: NOW, wait: true }),
        refreshLeadMetrics(other, { now: NOW, wait: true }),
      ]);
      assert.equal(a.skipped || b.skipped, false);
      await assertRollupsExact(sql, `${label}, two waiting refreshers`);
      // Without wait, the loser returns at once and the winner does the work.
      await insertEvents(
        sql,
        randomEvents(random, { count: 300, start: T0, hours: 24, leads, types: TYPES }),
      );
      const both = await Promise.all([
        refreshLeadMetrics(sql, { now: NOW }),
        refreshLeadMetrics(other, { now: NOW }),
      ]);
      assert.ok(both.some((r) => !r.skipped));
      await refreshLeadMetrics(sql, { now: NOW, wait: true });
      await assertRollupsExact(sql, `${label}, skipping refreshers`);
    });

    await t.step("refreshers racing with writers converge on the exact rollup", async () => {
      const other = db.pool({
        database: (await sql.query("SELECT current_database() AS d")).rows[0].d,
      });
      let writing = true;
      const writers = [0, 1, 2].map(async (w) => {
        const r = prng(seed + w + 1);
        for (let i = 0; i < 15; i++) {
          await insertEvents(
            sql,
            randomEvents(r, { count: 40, start: T0 - 3 * DAY, hours: 144, leads, types: TYPES }),
          );
        }
      });
      const refreshers = [sql, other].map(async (pool) => {
        while (writing) await refreshLeadMetrics(pool, { now: NOW, wait: true });
      });
      await Promise.all(writers);
      writing = false;
      await Promise.all(refreshers);
      await assertCurrent(sql, `${label}, after the race`);
      await refreshLeadMetrics(sql, { now: NOW });
      await assertRollupsExact(sql, `${label}, after the race`);
    });
  },
});
