/**
 * `deno task migrate`: applies pending SQL migrations to DATABASE_URL.
 * Safe to run twice or from several processes at once (advisory lock).
 *
 * @module
 */
import { closeDeps, makeDeps } from "../shared/deps.ts";
import { readToolEnvironment } from "../shared/config/dev_env_file.ts";
import { loadConfigAndSecretsOrExit } from "../shared/secrets/source.ts";
import { loadMigrations, migrate, MigrationError, MIGRATIONS_DIR } from "../shared/db/migrate.ts";

if (import.meta.main) {
  // SECRETS_SOURCE=aws works here too (a migration needs DATABASE_URL).
  // Without a target, the running `deno task dev` stack (shared/config/dev_env_file.ts).
  const { config, secrets } = await loadConfigAndSecretsOrExit(
    readToolEnvironment().env,
    "migrate",
  );
  secrets.close();
  const deps = makeDeps(config, "migrate");
  let exitCode = 0;
  try {
    const applied = await migrate(deps.sql, await loadMigrations(MIGRATIONS_DIR), {
      onApplied: (m) => deps.log.info("migration applied", { migration: m.name }),
    });
    deps.log.info("migrations current", { applied: applied.length });
  } catch (err) {
    if (!(err instanceof MigrationError)) throw err;
    console.error(err.message);
    exitCode = 1;
  } finally {
    await closeDeps(deps);
  }
  if (exitCode !== 0) Deno.exit(exitCode);
}
