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
 * @module
 */
import type { Pool, PoolClient } from "@neondatabase/serverless";
import { sha256Hex } from "../hash.ts";

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

async function applyTransactional(client: PoolClient, m: Migration): Promise<boolean> {
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
    await client.query(m.sql);
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

async function applyOutsideTransaction(client: PoolClient, m: Migration): Promise<boolean> {
  await client.query("SELECT pg_advisory_lock($1)", [LOCK_KEY]);
  try {
    await client.query(LEDGER_DDL);
    const recorded = await ledgerChecksum(client, m.version);
    if (recorded !== null) {
      assertUnchanged(m, recorded);
      return false;
    }
    for (const statement of statements(m.sql)) await client.query(statement);
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
  try {
    for (const m of migrations) {
      let done: boolean;
      try {
        done = m.transactional
          ? await applyTransactional(client, m)
          : await applyOutsideTransaction(client, m);
      } catch (err) {
        if (err instanceof MigrationError) throw err;
        const message = err instanceof Error ? err.message : String(err);
        throw new MigrationError(`Migration ${m.name} failed: ${message}`, { cause: err });
      }
      if (done) {
        applied.push(m.name);
        options.onApplied?.(m);
      }
    }
  } finally {
    client.release();
  }
  return applied;
}

/** The repository's migrations directory. */
export const MIGRATIONS_DIR = new URL("../../sql/migrations/", import.meta.url);
