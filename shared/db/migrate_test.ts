import assert from "node:assert/strict";
import type { Pool } from "@neondatabase/serverless";
import { startTestDatabase, type TestDatabase } from "../../testing/database.ts";
import { loadMigrations, migrate, MigrationError, MIGRATIONS_DIR } from "./migrate.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The Neon Pool keeps WebSocket ops alive between queries and reports idle
// errors after end() asynchronously (docs/reference/neon-local.md §5), so these tests run
// with the op and resource sanitizers off.
const opts = noSanitizers;

async function schemaSnapshot(pool: Pool): Promise<string[]> {
  const { rows } = await pool.query<{ d: string }>(
    `SELECT table_name || '.' || column_name || ':' || data_type || ':' || is_nullable AS d
       FROM information_schema.columns WHERE table_schema = 'public'
     UNION ALL
     SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = 'public'
     ORDER BY 1`,
  );
  return rows.map((r) => r.d);
}

async function ledger(pool: Pool): Promise<{ version: string; name: string }[]> {
  const { rows } = await pool.query<{ version: string; name: string }>(
    "SELECT version, name FROM schema_migrations ORDER BY version",
  );
  return rows;
}

async function withTempMigrations(
  files: Record<string, string>,
  fn: (dir: URL) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "pcove-migrations-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    await fn(new URL(`file://${dir}/`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadMigrations() rejects a file that does not follow NNN_verb_object.sql", async () => {
  await withTempMigrations({ "1_bad.sql": "SELECT 1;" }, async (dir) => {
    await assert.rejects(loadMigrations(dir), /"1_bad\.sql" does not match NNN_verb_object\.sql/);
  });
});

// Last in the file: the Neon Pool this test used leaves socket timers that would
// fire during a later, sanitized test of this file.
Deno.test({
  name: "migrate()",
  ...opts,
  async fn(t) {
    let db: TestDatabase | null = null;
    try {
      db = await startTestDatabase();
      const files = await loadMigrations(MIGRATIONS_DIR);
      assert.ok(files.length >= 1);
      assert.equal(files[0]!.name, "001_create_businesses.sql");

      await t.step("twice in a row gives the same schema and one ledger row per file", async () => {
        const pool = db!.pool({ database: await db!.createDatabase() });
        const first = await migrate(pool, files);
        assert.deepEqual(first, files.map((f) => f.name));
        const after1 = await schemaSnapshot(pool);
        assert.ok(after1.includes("businesses.outreach_status:text:NO"), after1.join("\n"));
        assert.ok(after1.includes("index businesses_source_external_id_key"));
        const second = await migrate(pool, files);
        assert.deepEqual(second, []);
        assert.deepEqual(await schemaSnapshot(pool), after1);
        assert.deepEqual(
          (await ledger(pool)).map((r) => r.name),
          files.map((f) => f.name),
        );
      });

      await t.step("two concurrent runners apply each file exactly once", async () => {
        const name = await db!.createDatabase();
        const a = db!.pool({ database: name });
        const b = db!.pool({ database: name });
        const [ra, rb] = await Promise.all([migrate(a, files), migrate(b, files)]);
        assert.deepEqual([...ra, ...rb].sort(), files.map((f) => f.name).sort());
        assert.deepEqual((await ledger(a)).map((r) => r.version), files.map((f) => f.version));
        const fresh = db!.pool({ database: await db!.createDatabase() });
        await migrate(fresh, files);
        assert.deepEqual(await schemaSnapshot(a), await schemaSnapshot(fresh));
      });

      await t.step("the businesses table enforces its constraints", async () => {
        const pool = db!.pool({ database: await db!.createDatabase() });
        await migrate(pool, files);
        const { rows } = await pool.query<{ outreach_status: string; has_website: boolean }>(
          `INSERT INTO businesses (name, source, external_id) VALUES ('Cove Cafe', 'places', 'p1')
           RETURNING outreach_status, has_website`,
        );
        assert.deepEqual(rows[0], { outreach_status: "new", has_website: false });
        await assert.rejects(
          pool.query(
            `INSERT INTO businesses (name, source, external_id) VALUES ('x', 'places', 'p1')`,
          ),
          (e: { code?: string }) => e.code === "23505",
        );
        await assert.rejects(
          pool.query(
            `INSERT INTO businesses (name, source, outreach_status) VALUES ('x', 's', 'bogus')`,
          ),
          (e: { code?: string }) => e.code === "23514",
        );
        const before = await pool.query<{ updated_at: Date }>(
          "SELECT updated_at FROM businesses WHERE external_id = 'p1'",
        );
        await new Promise((r) => setTimeout(r, 5));
        const after = await pool.query<{ updated_at: Date }>(
          "UPDATE businesses SET lead_score = 42 WHERE external_id = 'p1' RETURNING updated_at",
        );
        assert.ok(after.rows[0]!.updated_at > before.rows[0]!.updated_at);
      });

      await t.step(
        "a file that ends its own session is a MigrationError, not a crash",
        async () => {
          // What TimescaleDB's FATAL "must be preloaded" does: the server closes
          // the connection. Before, the client's "error" event went unhandled
          // ("Connection terminated unexpectedly") and killed the process.
          const pool = db!.pool({ database: await db!.createDatabase(), max: 1 });
          await withTempMigrations({
            "001_end_session.sql": "SELECT pg_terminate_backend(pg_backend_pid());",
          }, async (dir) => {
            await assert.rejects(migrate(pool, await loadMigrations(dir)), (e: Error) => {
              assert.ok(e instanceof MigrationError, String(e));
              assert.match(e.message, /^Migration 001_end_session\.sql failed: /);
              return true;
            });
          });
          // The dead connection was destroyed, not returned: the pool still works.
          assert.equal((await pool.query("SELECT 1 AS one")).rows[0].one, 1);
        },
      );

      await t.step(
        "hidden extensions are invisible to the files, in and out of transactions, then back",
        async () => {
          const pool = db!.pool({ database: await db!.createDatabase(), max: 1 });
          const count =
            "SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'plpgsql'";
          await withTempMigrations({
            "001_look.sql": `CREATE TABLE seen_in_tx AS ${count};`,
            "002_look.sql": `-- migrate:no-transaction\nCREATE TABLE seen_outside AS ${count};`,
          }, async (dir) => {
            await migrate(pool, await loadMigrations(dir), { hiddenExtensions: ["plpgsql"] });
          });
          const seen = async (table: string) =>
            (await pool.query(`SELECT n FROM ${table}`)).rows[0].n;
          assert.equal(await seen("seen_in_tx"), 0);
          assert.equal(await seen("seen_outside"), 0);
          // Same (only) connection: the temporary view is gone.
          assert.equal((await pool.query(count)).rows[0].n, 1);
        },
      );

      await t.step(
        "the real chain with TimescaleDB hidden (installed, not preloaded) records tier 3",
        async () => {
          const pool = db!.pool({ database: await db!.createDatabase() });
          await migrate(pool, files, { hiddenExtensions: ["timescaledb"] });
          const { rows } = await pool.query("SELECT tier, details FROM analytics_tier");
          assert.equal(rows[0].tier, 3);
          assert.equal(rows[0].details.create_extension_error, undefined, "nothing was tried");
        },
      );

      await t.step("a failing file rolls back completely and names itself", async () => {
        const pool = db!.pool({ database: await db!.createDatabase() });
        await withTempMigrations({
          "001_create_a.sql": "CREATE TABLE a (id int);",
          "002_create_b.sql": "CREATE TABLE b (id int);\nSELECT * FROM no_such_table;",
        }, async (dir) => {
          const ms = await loadMigrations(dir);
          await assert.rejects(migrate(pool, ms), (e: Error) => {
            assert.ok(e instanceof MigrationError);
            assert.match(
              e.message,
              /002_create_b\.sql failed: relation "no_such_table" does not exist/,
            );
            return true;
          });
        });
        assert.deepEqual((await ledger(pool)).map((r) => r.version), ["001"]);
        const { rows } = await pool.query("SELECT to_regclass('b') AS b");
        assert.equal(rows[0].b, null);
      });

      await t.step("an applied file that was edited is reported, not skipped", async () => {
        const pool = db!.pool({ database: await db!.createDatabase() });
        await withTempMigrations(
          { "001_create_a.sql": "CREATE TABLE a (id int);" },
          async (dir) => {
            await migrate(pool, await loadMigrations(dir));
          },
        );
        await withTempMigrations(
          { "001_create_a.sql": "CREATE TABLE a (id bigint);" },
          async (dir) => {
            await assert.rejects(
              migrate(pool, await loadMigrations(dir)),
              /001_create_a\.sql was edited after it was applied/,
            );
          },
        );
      });

      await t.step("a no-transaction file runs outside a transaction", async () => {
        const pool = db!.pool({ database: await db!.createDatabase() });
        await withTempMigrations({
          "001_create_a.sql": "CREATE TABLE a (id int);",
          "002_add_a_idx.sql":
            "-- migrate:no-transaction (CREATE INDEX CONCURRENTLY cannot run in a transaction)\n" +
            "CREATE INDEX CONCURRENTLY a_id_idx ON a (id);\n",
        }, async (dir) => {
          const ms = await loadMigrations(dir);
          assert.deepEqual(ms.map((m) => m.transactional), [true, false]);
          assert.deepEqual(await migrate(pool, ms), ["001_create_a.sql", "002_add_a_idx.sql"]);
          assert.deepEqual(await migrate(pool, ms), []);
        });
        const { rows } = await pool.query(
          "SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'a_id_idx'",
        );
        assert.equal(rows[0].n, 1);
      });
    } finally {
      await db?.stop();
    }
  },
});
