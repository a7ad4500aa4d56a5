/**
 * Tiers 1 and 2 against a real TimescaleDB: set TIMESCALE_DATABASE_URL
 * (postgresql://user:password@host:port/db of a server with timescaledb in
 * shared_preload_libraries; its role needs CREATEDB, or the database must be
 * empty) and optionally TIMESCALE_EXPECTED_TIER=1|2 (`timescaledb.license`
 * 'timescale' or 'apache'). Without the URL the test is skipped and says so.
 */
import assert from "node:assert/strict";
import type { Pool } from "@neondatabase/serverless";
import { startNeonProxy } from "../../dev/neon_proxy.ts";
import { readEnvironment } from "../config/mod.ts";
import { loadMigrations, migrate, MIGRATIONS_DIR } from "../db/migrate.ts";
import { createPool } from "../db/pool.ts";
import { leadMetrics } from "./queries.ts";
import { applyRetention } from "./retention.ts";
import { refreshLeadMetrics } from "./rollup.ts";
import { readTier } from "./tier.ts";
import {
  DAY,
  directMetrics,
  HOUR,
  insertEvents,
  leadIds,
  prng,
  randomEvents,
  rollupTable,
} from "../../testing/analytics.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { testNamespace } from "../../testing/namespace.ts";

const env = readEnvironment();
const url = env.TIMESCALE_DATABASE_URL;
if (!url) {
  console.log(
    "timescale_test.ts: tier 1/2 tests skipped: set TIMESCALE_DATABASE_URL to a TimescaleDB server",
  );
}

async function throwawayDatabase(
  base: URL,
  pool: (u: URL) => Pool,
): Promise<{ sql: Pool; drop: () => Promise<void> }> {
  const admin = pool(base);
  const name = testNamespace("pcove_ts_");
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } catch {
    // No CREATEDB: use the given database if it was never migrated.
    const { rows } = await admin.query("SELECT to_regclass('lead_events') AS t");
    if (rows[0].t !== null) {
      throw new Error(
        "TIMESCALE_DATABASE_URL's database is migrated already and CREATE DATABASE failed",
      );
    }
    return { sql: admin, drop: () => Promise.resolve() };
  }
  const u = new URL(base);
  u.pathname = `/${name}`;
  const sql = pool(u);
  return {
    sql,
    drop: async () => {
      await sql.end();
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`).catch(() => {});
    },
  };
}

Deno.test({
  name: "tiers 1–2 on TimescaleDB (TIMESCALE_DATABASE_URL)",
  ignore: !url,
  ...noSanitizers,
  async fn(t) {
    const base = new URL(url!);
    const address = `${base.hostname}:${base.port || "5432"}`;
    await using proxy = await startNeonProxy({ allow: [address] });
    const pools: Pool[] = [];
    const pool = (u: URL) => {
      const p = createPool({
        databaseUrl: u.toString(),
        wsProxy: proxy.wsProxy,
        useSecureWebSocket: false,
        pipelineConnect: false,
        max: 4,
        onError: () => {},
      });
      pools.push(p);
      return p;
    };
    const { sql, drop } = await throwawayDatabase(base, pool);
    try {
      await migrate(sql, await loadMigrations(MIGRATIONS_DIR));
      const info = await readTier(sql);
      const expected = env.TIMESCALE_EXPECTED_TIER;

      await t.step("the tier is detected and lead_events is a hypertable", async () => {
        if (expected) assert.equal(info.tier, Number(expected), JSON.stringify(info.details));
        assert.ok(info.tier === 1 || info.tier === 2, JSON.stringify(info.details));
        const { rows } = await sql.query(
          "SELECT count(*)::int AS n FROM timescaledb_information.hypertables WHERE hypertable_name = 'lead_events'",
        );
        assert.equal(rows[0].n, 1);
      });

      const now = Date.now();
      const start = bucketHour(now - 2 * DAY);
      const random = prng(now % 100_000);
      const leads = leadIds(30);
      const types = ["email_sent", "status_changed", "email_replied"];
      await insertEvents(
        sql,
        randomEvents(random, { count: 2000, start, hours: 47, leads, types }),
      );
      const ranges = [
        { from: new Date(start - DAY), to: new Date(now), bucket: "1h" as const },
        { from: new Date(start - DAY), to: new Date(now), bucket: "1d" as const },
        {
          from: new Date(start + 5 * HOUR + 17),
          to: new Date(start + 9 * HOUR),
          bucket: "1h" as const,
        },
      ];

      await t.step("leadMetrics() equals the raw GROUP BY before and after a refresh", async () => {
        for (const o of ranges) {
          assert.deepEqual(
            await leadMetrics(sql, o),
            await directMetrics(sql, { ...o, tier: info.tier }),
          );
        }
        await refreshLeadMetrics(sql, { now });
        await insertEvents(
          sql,
          randomEvents(random, { count: 300, start, hours: 47, leads, types }),
        );
        // Tier 1's real-time aggregation covers rows after the materialised
        // range only: inserts into refreshed buckets show after a refresh.
        for (const o of info.tier === 2 ? ranges : []) {
          assert.deepEqual(
            await leadMetrics(sql, o),
            await directMetrics(sql, { ...o, tier: info.tier }),
          );
        }
        await refreshLeadMetrics(sql, { now, wait: true });
        for (const o of ranges) {
          assert.deepEqual(
            await leadMetrics(sql, o),
            await directMetrics(sql, { ...o, tier: info.tier }),
          );
        }
        if (info.tier === 2) {
          for (const bucket of ["1h", "1d"] as const) {
            const all: Parameters<typeof directMetrics>[1] = {
              from: new Date(start - 3 * DAY),
              to: new Date(now + DAY),
              bucket,
              tier: info.tier,
            };
            assert.deepEqual(await rollupTable(sql, bucket), await directMetrics(sql, all));
          }
        }
      });

      await t.step(
        "applyRetention() drops chunks (tier 2) or aligns the policies (tier 1)",
        async () => {
          if (info.tier === 2) {
            const r = await applyRetention(sql, { now, olderThanMs: DAY });
            assert.ok(r.droppedChunks >= 1, JSON.stringify(r));
            const { rows } = await sql.query(
              "SELECT count(*)::int AS n FROM lead_events WHERE time < $1",
              [r.retainedFrom],
            );
            assert.equal(rows[0].n, 0);
          } else {
            const r = await applyRetention(sql, { now, olderThanMs: 30 * DAY });
            assert.deepEqual(r.policiesChanged.sort(), [
              "lead_events",
              "lead_metrics_daily",
              "lead_metrics_hourly",
            ]);
            const again = await applyRetention(sql, { now, olderThanMs: 30 * DAY });
            assert.deepEqual(again.policiesChanged, []);
          }
        },
      );
    } finally {
      await drop();
      await Promise.allSettled(pools.map((p) => p.end()));
    }
  },
});

function bucketHour(ms: number): number {
  return Math.floor(ms / HOUR) * HOUR;
}
