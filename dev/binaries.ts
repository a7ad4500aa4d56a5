/**
 * Locates the server binaries the local stack runs: on PATH first, then in the
 * Debian layout `/usr/lib/postgresql/<major>/bin` (Debian keeps initdb and
 * postgres off PATH).
 *
 * @module
 */

/** How to install each binary the stack may need. */
const INSTALL_HINTS: Record<string, { apt: string; brew: string }> = {
  "redis-server": { apt: "redis-server", brew: "redis" },
  initdb: { apt: "postgresql", brew: "postgresql@15" },
  postgres: { apt: "postgresql", brew: "postgresql@15" },
  psql: { apt: "postgresql-client", brew: "postgresql@15" },
  setpriv: { apt: "util-linux", brew: "util-linux" },
};

/** A binary the stack needs is not installed; the message says how to get it. */
export class MissingBinaryError extends Error {
  override name = "MissingBinaryError";
  constructor(readonly binary: string) {
    const hint = INSTALL_HINTS[binary];
    super(
      `Cannot start the local stack: "${binary}" was not found on PATH` +
        (binary === "redis-server" ? "" : " or in /usr/lib/postgresql/*/bin") +
        (hint
          ? `. Install it with "apt-get install ${hint.apt}" (Debian/Ubuntu) or "brew install ${hint.brew}" (Homebrew)`
          : ""),
    );
  }
}

/** Options for {@linkcode findBinary}. */
export interface FindBinaryOptions {
  /** PATH to search. @default Deno.env.get("PATH") */
  path?: string;
  /** Extra directories searched after PATH. @default Postgres directories, newest major first */
  extraDirs?: string[];
}

function isExecutable(file: string): boolean {
  try {
    const info = Deno.statSync(file);
    return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Postgres bin directories on Debian-style systems, newest major version first. */
export function postgresBinDirs(root = "/usr/lib/postgresql"): string[] {
  const majors: number[] = [];
  try {
    for (const entry of Deno.readDirSync(root)) {
      const major = Number(entry.name);
      if (entry.isDirectory && Number.isInteger(major)) majors.push(major);
    }
  } catch {
    return [];
  }
  return majors.sort((a, b) => b - a).map((m) => `${root}/${m}/bin`);
}

/**
 * Returns the absolute path of `name`, or throws {@linkcode MissingBinaryError}.
 */
export function findBinary(name: string, options: FindBinaryOptions = {}): string {
  const pathDirs = (options.path ?? Deno.env.get("PATH") ?? "").split(":").filter(Boolean);
  const dirs = [...pathDirs, ...(options.extraDirs ?? postgresBinDirs())];
  for (const dir of dirs) {
    const candidate = `${dir}/${name}`;
    if (isExecutable(candidate)) return candidate;
  }
  throw new MissingBinaryError(name);
}

/**
 * Finds the Postgres tools in ONE directory, so initdb and postgres always come
 * from the same major version.
 */
export function findPostgresBinaries(options: FindBinaryOptions = {}): {
  initdb: string;
  postgres: string;
  psql: string;
} {
  const initdb = findBinary("initdb", options);
  const dir = initdb.slice(0, initdb.lastIndexOf("/"));
  const sibling = (name: string) => {
    const candidate = `${dir}/${name}`;
    return isExecutable(candidate) ? candidate : findBinary(name, options);
  };
  return { initdb, postgres: sibling("postgres"), psql: sibling("psql") };
}
