import assert from "node:assert/strict";
import { findPostgresBinaries } from "./binaries.ts";
import { poolFor } from "../shared/db/pool.ts";
import { loadMigrations, migrate, MIGRATIONS_DIR } from "../shared/db/migrate.ts";
import { readTier } from "../shared/analytics/tier.ts";
import { PostgresServer } from "./postgres_server.ts";
import { startNeonProxy } from "./neon_proxy.ts";
import { hasTimescaleLibrary, packageLibraryDir, timescaleSettings } from "./timescale_library.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

const { postgres } = findPostgresBinaries();
const libraryDir = await packageLibraryDir(postgres);
const installed = hasTimescaleLibrary(libraryDir);

Deno.test("packageLibraryDir() finds the installation's library directory", () => {
  assert.ok(Deno.statSync(libraryDir).isDirectory, libraryDir);
  // Every installation ships plpgsql's library there.
  assert.ok(Deno.statSync(`${libraryDir}/plpgsql.so`).isFile, `no plpgsql.so in ${libraryDir}`);
});

Deno.test("timescaleSettings() preloads TimescaleDB exactly when its library is installed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pcove-tslib-" });
  try {
    assert.equal(hasTimescaleLibrary(dir), false);
    await Deno.writeFile(`${dir}/timescaledb.so`, new Uint8Array());
    assert.equal(hasTimescaleLibrary(dir), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(
    await timescaleSettings(postgres),
    installed
      ? { shared_preload_libraries: "timescaledb", "timescaledb.telemetry_level": "off" }
      : {},
  );
});

Deno.test({
  name: installed
    ? "with TimescaleDB installed, the stack's PostgreSQL preloads it and the migrations reach tier 1"
    : "with TimescaleDB installed, the stack's PostgreSQL preloads it and the migrations reach tier 1 " +
      `(SKIPPED: TimescaleDB is not installed here, no timescaledb.so in ${libraryDir})`,
  ignore: !installed,
  // The Neon Pool keeps WebSocket ops alive (docs/reference/neon-local.md §5).
  ...noSanitizers,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pcove-ts-" });
    const server = await PostgresServer.start({ dir });
    const proxy = await startNeonProxy({ allow: [`127.0.0.1:${server.port}`] });
    const pool = poolFor({
      url: server.databaseUrl,
      wsProxy: proxy.wsProxy,
      useSecureWebSocket: false,
      pipelineConnect: false,
    }, { max: 1 });
    try {
      await migrate(pool, await loadMigrations(MIGRATIONS_DIR));
      const tier = await readTier(pool);
      assert.equal(tier.tier, 1, JSON.stringify(tier.details));
      assert.equal(typeof tier.details.timescaledb_version, "string");
    } finally {
      await pool.end();
      await proxy.close();
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
