/**
 * Whether the PostgreSQL installation the local stack runs has the
 * TimescaleDB library. When it does, the stack's server preloads it
 * (`shared_preload_libraries = 'timescaledb'`), so a developer who installs
 * TimescaleDB gets tier 1 analytics locally instead of a migration that ends
 * its session (docs/reference/timescale-tiers.md §5–6).
 *
 * @module
 */

/** The library directory of the installation whose `postgres` binary is `postgresBinary`. */
export async function packageLibraryDir(postgresBinary: string): Promise<string> {
  // Through symlinks (e.g. /usr/local/bin/postgres → /usr/lib/postgresql/15/bin/postgres):
  // pg_config and the libraries sit beside the real binary.
  const real = await Deno.realPath(postgresBinary);
  const binDir = real.slice(0, real.lastIndexOf("/"));
  try {
    const out = await new Deno.Command(`${binDir}/pg_config`, {
      args: ["--pkglibdir"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const dir = new TextDecoder().decode(out.stdout).trim();
    if (out.success && dir !== "") return dir;
  } catch {
    // no pg_config next to postgres: fall back to the Debian layout
  }
  return `${binDir.slice(0, binDir.lastIndexOf("/"))}/lib`;
}

/** True when `timescaledb.so` (the loader library) is in `libraryDir`. */
export function hasTimescaleLibrary(libraryDir: string): boolean {
  try {
    return Deno.statSync(`${libraryDir}/timescaledb.so`).isFile;
  } catch {
    return false;
  }
}

/**
 * Server settings that load TimescaleDB when the installation has it (with
 * telemetry off: a local server must not phone home); none otherwise.
 */
export async function timescaleSettings(postgresBinary: string): Promise<Record<string, string>> {
  if (!hasTimescaleLibrary(await packageLibraryDir(postgresBinary))) return {};
  return { shared_preload_libraries: "timescaledb", "timescaledb.telemetry_level": "off" };
}
