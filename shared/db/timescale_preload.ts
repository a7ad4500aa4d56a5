/**
 * Whether `CREATE EXTENSION timescaledb` would end the session. TimescaleDB
 * must be loaded through `shared_preload_libraries`; on a server that has the
 * package installed but not preloaded (the normal state right after
 * installing it), CREATE EXTENSION raises a FATAL error, which terminates the
 * connection, so no `EXCEPTION` block in SQL can catch it
 * (docs/reference/timescale-tiers.md §5). The migration runner asks this
 * before running migrations, so tier detection never gets that far.
 *
 * @module
 */

/** What the server reports about TimescaleDB, before anything is created. */
export interface TimescaleProbe {
  /** The extension's files are installed (`pg_available_extensions`). */
  available: boolean;
  /** The extension exists in this database (then it was loaded when created). */
  installed: boolean;
  /**
   * `timescaledb.*` settings exist: its loader, which defines them, is loaded.
   * (A setting only written in the server configuration also shows here; that
   * errs on the side of "preloaded", i.e. of trying the extension.)
   */
  loaderSettings: boolean;
  /** `shared_preload_libraries`, or null when this role may not read it. */
  preloadLibraries: string | null;
}

/** The library names of a `shared_preload_libraries` value (quotes, `$libdir/` and `.so` dropped). */
export function preloadedLibraries(value: string): string[] {
  return value.split(",")
    .map((entry) => entry.trim().replace(/^"(.*)"$/, "$1").replace(/^\$libdir\//, ""))
    .map((entry) => entry.replace(/\.so$/, ""))
    .filter((entry) => entry !== "");
}

/**
 * True when TimescaleDB is installed on the server but not preloaded, so that
 * `CREATE EXTENSION timescaledb` would end the session. False when it is not
 * installed at all, already created, or loaded.
 */
export function timescaleNotPreloaded(probe: TimescaleProbe): boolean {
  if (!probe.available || probe.installed || probe.loaderSettings) return false;
  if (probe.preloadLibraries === null) return true; // unreadable, and no loader settings either
  return !preloadedLibraries(probe.preloadLibraries).includes("timescaledb");
}

/** Something that runs a query (a pool or a checked-out client). */
export interface Queryable {
  query<R extends Record<string, unknown>>(text: string): Promise<{ rows: R[] }>;
}

/** Reads {@linkcode TimescaleProbe} from the server (catalog names qualified, so no view can shadow them). */
export async function probeTimescale(sql: Queryable): Promise<TimescaleProbe> {
  const { rows } = await sql.query<{
    available: boolean;
    installed: boolean;
    loader_settings: boolean;
    preload: string | null;
  }>(
    `SELECT
       EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'timescaledb')
         AS available,
       EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb') AS installed,
       EXISTS (SELECT 1 FROM pg_catalog.pg_settings WHERE name LIKE 'timescaledb.%')
         AS loader_settings,
       (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'shared_preload_libraries')
         AS preload`,
  );
  const r = rows[0]!;
  return {
    available: r.available,
    installed: r.installed,
    loaderSettings: r.loader_settings,
    preloadLibraries: r.preload,
  };
}
