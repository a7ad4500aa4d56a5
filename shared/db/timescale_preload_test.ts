import assert from "node:assert/strict";
import { startTestDatabase } from "../../testing/database.ts";
import {
  preloadedLibraries,
  probeTimescale,
  timescaleNotPreloaded,
  type TimescaleProbe,
} from "./timescale_preload.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

const base: TimescaleProbe = {
  available: true,
  installed: false,
  loaderSettings: false,
  preloadLibraries: "",
};

Deno.test("preloadedLibraries() reads shared_preload_libraries as the server writes it", () => {
  assert.deepEqual(preloadedLibraries(""), []);
  assert.deepEqual(preloadedLibraries("timescaledb"), ["timescaledb"]);
  assert.deepEqual(
    preloadedLibraries(`pg_stat_statements, "$libdir/timescaledb.so" ,auto_explain`),
    ["pg_stat_statements", "timescaledb", "auto_explain"],
  );
});

Deno.test("timescaleNotPreloaded() is true only when CREATE EXTENSION would end the session", () => {
  assert.equal(timescaleNotPreloaded(base), true, "installed, preload list without it");
  assert.equal(timescaleNotPreloaded({ ...base, preloadLibraries: null }), true, "list unreadable");
  assert.equal(timescaleNotPreloaded({ ...base, available: false }), false, "not installed");
  assert.equal(timescaleNotPreloaded({ ...base, installed: true }), false, "already created");
  assert.equal(timescaleNotPreloaded({ ...base, loaderSettings: true }), false, "loader loaded");
  assert.equal(
    timescaleNotPreloaded({ ...base, preloadLibraries: "pg_stat_statements,timescaledb" }),
    false,
    "in the preload list",
  );
});

Deno.test({
  name: "probeTimescale() reads the server's state as the application role",
  // The Neon Pool keeps WebSocket ops alive (docs/reference/neon-local.md §5).
  ...noSanitizers,
  async fn() {
    await using db = await startTestDatabase();
    const pool = db.pool({ database: await db.createDatabase() });
    const probe = await probeTimescale(pool);
    const { rows } = await pool.query(
      "SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'timescaledb'",
    );
    assert.equal(probe.available, rows[0].n === 1);
    assert.equal(probe.installed, false, "a fresh database has no extensions created");
    // The application role is no superuser: shared_preload_libraries is hidden from it.
    assert.equal(probe.preloadLibraries, null);
    // The local stack preloads TimescaleDB whenever it is installed, so migrating is safe.
    assert.equal(timescaleNotPreloaded(probe), false);
  },
});
