/**
 * Append-only SQL migrations from `sql/migrations/NNN_verb_object.sql`.
 *
 * Each pending file runs inside its own transaction that first takes a
 * transaction-scoped advisory lock, then re-reads the ledger: two processes
 * migrating at once serialise on the lock and the second finds the work done.
 * A file whose header says `-- migrate:no-transaction` (e.g. CREATE INDEX
 * CONCURRENTLY) runs statement by statement under a session advisory lock.
 * The ledger stores each file's SHA-256, so an edited, already-applied file is
 * reported instead of silently ignored.
 *
 * A server with TimescaleDB installed but not preloaded would end the session
 * at `CREATE EXTENSION timescaledb` (a FATAL error no SQL can catch; see
 * timescale_preload.ts). Merged migrations are never edited, so the runner
 * checks that first and, while it runs the files, hides such an extension from
 * `pg_available_extensions` with a temporary view of the same name (temporary
 * relations are found before `pg_catalog`): migration 004 then sees no
 * TimescaleDB and records tier 3, as its header intends, and migration 008
 * records why. A connection lost in the middle of a file is a MigrationError,
 * never an unhandled error event.
 *
 * @module
 */
import type { Pool, PoolClient } from "@neondatabase/serverless";
import { sha256Hex } from "../hash.ts";
import { probeTimescale, timescaleNotPreloaded } from "./timescale_preload.ts";

/** One migration file. */
export interface Migration {
  /** "001" */
  version: string;
  /** "001_create_businesses.sql" */
  name: string;
  sql: string;
  /** hex SHA-256 of the file text */
  checksum: string;
  /** false when the header says `-- migrate:no-transaction` */
  transactional: boolean;
}

/** A migration failed or the ledger disagrees with the files. */
export class MigrationError extends Error {
  override name = "MigrationError";
}

// Arbitrary constant shared by every runner of this schema; advisory locks are
// database-wide, so it only has to differ from other lock users.
const LOCK_KEY = 7_426_531_001;
const FILE_PATTERN = /^(\d{3})_[a-z0-9_]+\.sql$/;

const LEDGER_DDL = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version text PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/** Reads and orders the migration files of `dir`; rejects misnamed or duplicate versions. */
export async function loadMigrations(dir: URL): Promise<Migration[]> {
  const out: Migration[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".sql")) continue;
    const match = FILE_PATTERN.exec(entry.name);
    if (!match) {
      throw new MigrationError(
        `Migration file name "${entry.name}" does not match NNN_verb_object.sql`,
      );
    }
    const sql = await Deno.readTextFile(new URL(entry.name, dir));
    out.push({
      version: match[1]!,
      name: entry.name,
      sql,
      checksum: await sha256Hex(sql),
      transactional: !/^--\s*migrate:no-transaction\b/m.test(
        sql.split("\n").slice(0, 10).join("\n"),
      ),
    });
  }
  out.sort((a, b) => a.version.localeCompare(b.version));
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.version === out[i - 1]!.version) {
      throw new MigrationError(
        `Two migrations share version ${out[i]!.version}: ${out[i - 1]!.name}, ${out[i]!.name}`,
      );
    }
  }
  return out;
}

async function ledgerChecksum(client: PoolClient, version: string): Promise<string | null> {
  const res = await client.query<{ checksum: string }>(
    "SELECT checksum FROM schema_migrations WHERE version = $1",
    [version],
  );
  return res.rows[0]?.checksum ?? null;
}

function assertUnchanged(m: Migration, recorded: string): void {
  if (recorded !== m.checksum) {
    throw new MigrationError(
      `Migration ${m.name} was edited after it was applied (ledger checksum ${
        recorded.slice(0, 12)
      }…, file ${m.checksum.slice(0, 12)}…); add a new migration instead`,
    );
  }
}

/** Splits a no-transaction file into statements: each ends with `;` at the end of a line. */
function statements(sql: string): string[] {
  return sql.split(/;\s*$/m).map((s) => s.replace(/^\s*--.*$/gm, "").trim()).filter(Boolean);
}

/**
 * While it exists (this session only), `pg_available_extensions` without
 * `hidden`. Names are quoted as SQL literals (a view cannot take parameters).
 */
function hideExtensionsSql(hidden: string[]): string {
  const names = hidden.map((n) => `'${n.replaceAll("'", "''")}'`).join(", ");
  return `CREATE TEMP VIEW pg_available_extensions AS
    SELECT * FROM pg_catalog.pg_available_extensions WHERE name <> ALL (ARRAY[${names}])`;
}

const SHOW_EXTENSIONS_SQL = "DROP VIEW IF EXISTS pg_temp.pg_available_extensions";

async function applyTransactional(
  client: PoolClient,
  m: Migration,
  hidden: string[],
): Promise<boolean> {
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEY]);
    await client.query(LEDGER_DDL);
    const recorded = await ledgerChecksum(client, m.version);
    if (recorded !== null) {
      assertUnchanged(m, recorded);
      await client.query("COMMIT");
      return false;
    }
    if (hidden.length > 0) await client.query(hideExtensionsSql(hidden));
    await client.query(m.sql);
    if (hidden.length > 0) await client.query(SHOW_EXTENSIONS_SQL);
    await client.query(
      "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
      [m.version, m.name, m.checksum],
    );
    await client.query("COMMIT");
    return true;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  }
}

async function applyOutsideTransaction(
  client: PoolClient,
  m: Migration,
  hidden: string[],
): Promise<boolean> {
  await client.query("SELECT pg_advisory_lock($1)", [LOCK_KEY]);
  try {
    await client.query(LEDGER_DDL);
    const recorded = await ledgerChecksum(client, m.version);
    if (recorded !== null) {
      assertUnchanged(m, recorded);
      return false;
    }
    if (hidden.length > 0) await client.query(hideExtensionsSql(hidden));
    try {
      for (const statement of statements(m.sql)) await client.query(statement);
    } finally {
      if (hidden.length > 0) await client.query(SHOW_EXTENSIONS_SQL).catch(() => {});
    }
    await client.query(
      "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
      [m.version, m.name, m.checksum],
    );
    return true;
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [LOCK_KEY]);
  }
}

/** Options for {@linkcode migrate}. */
export interface MigrateOptions {
  /** Called after each file is applied. */
  onApplied?: (m: Migration) => void;
  /**
   * Extensions the files must not see in `pg_available_extensions`.
   * @default `["timescaledb"]` when the server has it installed but not preloaded, else none
   */
  hiddenExtensions?: string[];
}

/**
 * Applies every pending migration in order; returns the names applied by this
 * call (empty when the schema was already current).
 */
export async function migrate(
  pool: Pool,
  migrations: Migration[],
  options: MigrateOptions = {},
): Promise<string[]> {
  const applied: string[] = [];
  const client = await pool.connect();
  // A checked-out client reports a lost connection (a FATAL error ends the
  // session) as an "error" event besides rejecting the query; without a
  // listener that event is an uncaught error that kills the process.
  let lost: unknown = null;
  const onError = (err: unknown) => lost ??= err;
  client.on("error", onError);
  let failed = false;
  try {
    const hidden = options.hiddenExtensions ??
      (timescaleNotPreloaded(await probeTimescale(client)) ? ["timescaledb"] : []);
    for (const m of migrations) {
      let done: boolean;
      try {
        done = m.transactional
          ? await applyTransactional(client, m, hidden)
          : await applyOutsideTransaction(client, m, hidden);
      } catch (err) {
        failed = true;
        if (err instanceof MigrationError) throw err;
        const cause = lost ?? err;
        const message = cause instanceof Error ? cause.message : String(cause);
        throw new MigrationError(`Migration ${m.name} failed: ${message}`, { cause });
      }
      if (done) {
        applied.push(m.name);
        options.onApplied?.(m);
      }
    }
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    if (failed || lost !== null) {
      // It may have lost its connection: destroy it (the listener stays, so a
      // late "error" event of the dead connection is still handled).
      client.release(true);
    } else {
      client.off("error", onError);
      client.release();
    }
  }
  return applied;
}

/** The repository's migrations directory. */
export const MIGRATIONS_DIR = new URL("../../sql/migrations/", import.meta.url);
