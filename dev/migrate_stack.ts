/**
 * Applies the repository's migrations to a stack's database (dev and test
 * start-up); `deno task migrate` is the production path to the same code.
 *
 * @module
 */
import { poolFor } from "../shared/db/pool.ts";
import { loadMigrations, migrate, MIGRATIONS_DIR } from "../shared/db/migrate.ts";
import type { StackSettings } from "./stack.ts";

/** Migrates `settings.database`; returns the names of the files applied now. */
export async function migrateStack(settings: StackSettings): Promise<string[]> {
  const pool = poolFor(settings.database, { max: 1 });
  try {
    return await migrate(pool, await loadMigrations(MIGRATIONS_DIR));
  } finally {
    await pool.end();
  }
}
