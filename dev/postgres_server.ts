/**
 * A throwaway PostgreSQL server for tests and the local stack: initdb into a
 * directory the caller owns, listen on a free loopback port with scram-sha-256
 * password authentication, and create an application role and database. It can
 * be stopped and started again on the same port and data; with `persistent`,
 * a later process starts the same cluster again (`deno task dev --data-dir`).
 *
 * @module
 */
import { findPostgresBinaries } from "./binaries.ts";
import { startWithPortRetry } from "./ports.ts";
import { runCommand, ServerProcess, waitUntilReady } from "./server_process.ts";
import { timescaleSettings } from "./timescale_library.ts";

/** Options for {@linkcode PostgresServer.start}. */
export interface PostgresServerOptions {
  /** Parent directory the caller owns and removes; the data and socket directories go inside it. */
  dir: string;
  /** Database created for the application role. @default "pleasant_cove" */
  database?: string;
  /** Application role (LOGIN, random scram-sha-256 password). @default "app" */
  appUser?: string;
  /**
   * Trade durability for speed (fsync, synchronous_commit and full_page_writes
   * off, initdb --no-sync). Not crash-safe: with synchronous_commit off a
   * COMMIT is answered before its WAL is written, so even a `kill -9` of the
   * server (not only of the machine) loses transactions already acknowledged,
   * and a client's 201 (and its stored Idempotency-Key replay) then points at
   * a row that does not exist. Only benchmarks opt in, and say so.
   * @default false
   */
  fast?: boolean;
  /**
   * Keep the data for a later start: the credentials are written to
   * `<dir>/pg-credentials.json` (mode 0600), and a `dir` that already holds
   * an initialised cluster and that file is started as it is (no initdb, no
   * role creation), on a new free port. @default false
   */
  persistent?: boolean;
  /**
   * `shared_buffers`, PostgreSQL's own page cache. Small by default, so that
   * the many servers of a test run stay light; a benchmark may size it like a
   * real database's (`bench:analytics --postgres-shared-buffers`).
   * @default "16MB"
   */
  sharedBuffers?: string;
}

/** The passwords and names of a persistent cluster, so that a later start can log in. */
interface Credentials {
  superPassword: string;
  appPassword: string;
  appUser: string;
  database: string;
}

/** PostgreSQL could not be initialised, started or set up; the message carries its output. */
export class PostgresServerError extends Error {
  override name = "PostgresServerError";
}

/** Superuser created by initdb; named explicitly so it does not depend on who runs initdb. */
const SUPERUSER = "postgres";
/** initdb and postgres refuse to run as uid 0; as root we run them as this system user. */
const SYSTEM_USER = "postgres";

interface SystemUser {
  name: string;
  uid: number;
  gid: number;
}

interface Layout {
  dataDir: string;
  socketDir: string;
  /** Present when we are root and the server runs as another user. */
  runAs: SystemUser | null;
}

async function lookupSystemUser(name: string): Promise<SystemUser> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("getent", { args: ["passwd", name], stdout: "piped" }).output();
  } catch (err) {
    throw new PostgresServerError(`Cannot look up the "${name}" system user: getent failed`, {
      cause: err,
    });
  }
  const fields = new TextDecoder().decode(out.stdout).trim().split(":");
  if (!out.success || fields.length < 4) {
    throw new PostgresServerError(
      `Cannot run PostgreSQL as root: initdb and postgres refuse uid 0 and there is no "${name}" ` +
        `system user to run them as. Install the postgresql package (it creates the user), ` +
        `create it with "useradd --system --user-group ${name}", or run as a non-root user`,
    );
  }
  return { name, uid: Number(fields[2]), gid: Number(fields[3]) };
}

/**
 * The credentials of a cluster kept in `dir` by an earlier persistent start,
 * or null when there is none yet. A cluster without its credentials file
 * (or the reverse) cannot be logged into: refused with what to do.
 */
async function readCredentials(dir: string, file: string): Promise<Credentials | null> {
  const initialised = await Deno.stat(`${dir}/pg/data/PG_VERSION`).then(() => true, () => false);
  let text: string | null = null;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (!initialised && text === null) return null;
  const parsed = text === null ? null : JSON.parse(text) as Partial<Credentials>;
  if (
    !initialised || typeof parsed?.superPassword !== "string" ||
    typeof parsed.appPassword !== "string" || typeof parsed.appUser !== "string" ||
    typeof parsed.database !== "string"
  ) {
    throw new PostgresServerError(
      `Cannot reuse "${dir}": it holds ${
        initialised ? "a PostgreSQL cluster without a readable" : "no cluster but a"
      } ${file}; remove the directory to start afresh`,
    );
  }
  return parsed as Credentials;
}

/** 144 random bits as hex: URL-safe, so it goes into connection strings unescaped. */
function randomPassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function checkIdentifier(what: string, value: string): void {
  if (value.length === 0 || new TextEncoder().encode(value).length > 63) {
    throw new RangeError(`Cannot use ${what} "${value}": it must have 1 to 63 bytes`);
  }
}

async function prepareLayout(dir: string, existing: boolean): Promise<Layout> {
  const runAs = Deno.uid() === 0 ? await lookupSystemUser(SYSTEM_USER) : null;
  const base = `${dir}/pg`;
  const layout = { dataDir: `${base}/data`, socketDir: `${base}/s`, runAs };
  // The socket dir is private: `--auth-local=trust` is only safe when nobody
  // else can reach the socket. The path must fit in sun_path (108 bytes).
  if (`${layout.socketDir}/.s.PGSQL.65535.lock`.length > 107) {
    throw new PostgresServerError(`Cannot use "${dir}": the unix socket path would be too long`);
  }
  try {
    if (!existing) {
      await Deno.mkdir(base, { mode: 0o700 });
      await Deno.mkdir(layout.socketDir, { mode: 0o700 });
    }
    if (runAs) {
      await Deno.chown(base, runAs.uid, runAs.gid);
      await Deno.chown(layout.socketDir, runAs.uid, runAs.gid);
      // Deno.makeTempDir() creates 0700 directories; the postgres user needs to
      // traverse (not list) the caller's directory to reach its own.
      const mode = (await Deno.stat(dir)).mode ?? 0o700;
      await Deno.chmod(dir, (mode & 0o7777) | 0o011);
    }
  } catch (err) {
    throw new PostgresServerError(`Cannot prepare "${base}" for PostgreSQL: ${err}`, {
      cause: err,
    });
  }
  return layout;
}

async function initdb(
  binary: string,
  layout: Layout,
  superPassword: string,
  fast: boolean,
): Promise<void> {
  const pwfile = `${layout.dataDir}.pw`;
  await Deno.writeTextFile(pwfile, superPassword + "\n", { mode: 0o600 });
  try {
    if (layout.runAs) await Deno.chown(pwfile, layout.runAs.uid, layout.runAs.gid);
    await runCommand(binary, [
      "-D",
      layout.dataDir,
      `--username=${SUPERUSER}`,
      `--pwfile=${pwfile}`,
      "--auth-host=scram-sha-256",
      // Trust is limited to the private socket dir; setup uses it, clients use TCP + scram.
      "--auth-local=trust",
      "--encoding=UTF8",
      "--locale=C",
      "--no-instructions",
      ...(fast ? ["--no-sync"] : []),
    ], { user: layout.runAs?.name });
  } catch (err) {
    throw new PostgresServerError(`Cannot initialise PostgreSQL in "${layout.dataDir}": ${err}`, {
      cause: err,
    });
  } finally {
    await Deno.remove(pwfile).catch(() => {});
  }
}

function startupMessage(user: string, database: string): Uint8Array {
  const body = new TextEncoder().encode(`user\0${user}\0database\0${database}\0\0`);
  const message = new Uint8Array(8 + body.length);
  const view = new DataView(message.buffer);
  view.setInt32(0, message.length);
  view.setInt32(4, 196608); // protocol 3.0
  message.set(body, 8);
  return message;
}

/**
 * True when the server answers a StartupMessage with an authentication request
 * ('R'). A TCP accept alone is not enough: while starting up or recovering,
 * postgres accepts and then replies 'E' (57P03 "the database system is
 * starting up"). Hanging up before authenticating leaves nothing in the
 * server log (observed with PostgreSQL 15).
 */
async function acceptsLogins(port: number): Promise<boolean> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  // Closing the connection makes a stuck read fail, so one probe cannot outlive the deadline.
  const timer = setTimeout(() => conn.close(), 2_000);
  try {
    const message = startupMessage(SUPERUSER, "postgres");
    for (let written = 0; written < message.length;) {
      written += await conn.write(message.subarray(written));
    }
    const reply = new Uint8Array(1);
    return (await conn.read(reply)) === 1 && reply[0] === 0x52;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // already closed by the timer
    }
  }
}

/** A running (or stopped, restartable) throwaway PostgreSQL server. */
export class PostgresServer {
  /** TCP port on 127.0.0.1; kept across {@linkcode restart}. */
  readonly port: number;
  /** `postgresql://<app>:<pw>@127.0.0.1:<port>/<database>`, scram-sha-256. */
  readonly databaseUrl: string;
  /** Superuser URL for the same database, also scram-sha-256; for tests that need it. */
  readonly adminUrl: string;
  readonly #binary: string;
  readonly #layout: Layout;
  readonly #fast: boolean;
  readonly #sharedBuffers: string;
  #process: ServerProcess | null = null;
  #startupMs = 0;

  private constructor(
    binary: string,
    layout: Layout,
    port: number,
    urls: { databaseUrl: string; adminUrl: string },
    fast: boolean,
    sharedBuffers: string,
  ) {
    this.#binary = binary;
    this.#layout = layout;
    this.port = port;
    this.databaseUrl = urls.databaseUrl;
    this.adminUrl = urls.adminUrl;
    this.#fast = fast;
    this.#sharedBuffers = sharedBuffers;
  }

  /**
   * Initialises a data directory inside `options.dir`, starts the server on a
   * free loopback port (retrying on a port clash) and creates the application
   * role and database. When a step fails, whatever was started is stopped.
   *
   * @throws {MissingBinaryError} initdb, postgres or psql is not installed
   * @throws {PostgresServerError} a step failed; the message carries the output
   */
  static async start(options: PostgresServerOptions): Promise<PostgresServer> {
    const started = performance.now();
    const database = options.database ?? "pleasant_cove";
    const appUser = options.appUser ?? "app";
    checkIdentifier("database", database);
    checkIdentifier("appUser", appUser);
    if (appUser === SUPERUSER) {
      throw new RangeError(`Cannot use appUser "${appUser}": it is the superuser's name`);
    }
    const fast = options.fast ?? false;
    const sharedBuffers = options.sharedBuffers ?? "16MB";
    if (!/^\d+(kB|MB|GB)$/.test(sharedBuffers)) {
      throw new RangeError(
        `Cannot start PostgreSQL: sharedBuffers must be like 128MB, got ${sharedBuffers}`,
      );
    }
    const binaries = findPostgresBinaries();
    const credentialsFile = `${options.dir}/pg-credentials.json`;
    const kept = options.persistent ? await readCredentials(options.dir, credentialsFile) : null;
    if (kept !== null && (kept.appUser !== appUser || kept.database !== database)) {
      throw new PostgresServerError(
        `Cannot reuse "${options.dir}": it holds database "${kept.database}" of role ` +
          `"${kept.appUser}", not "${database}" of "${appUser}"`,
      );
    }
    const layout = await prepareLayout(options.dir, kept !== null);
    const superPassword = kept?.superPassword ?? randomPassword();
    const appPassword = kept?.appPassword ?? randomPassword();
    if (kept === null) await initdb(binaries.initdb, layout, superPassword, fast);

    const [user, db] = [encodeURIComponent(appUser), encodeURIComponent(database)];
    const server = await startWithPortRetry(async (port) => {
      const server = new PostgresServer(
        binaries.postgres,
        layout,
        port,
        {
          databaseUrl: `postgresql://${user}:${appPassword}@127.0.0.1:${port}/${db}`,
          adminUrl: `postgresql://${SUPERUSER}:${superPassword}@127.0.0.1:${port}/${db}`,
        },
        fast,
        sharedBuffers,
      );
      await server.#launch();
      return server;
    });
    if (kept !== null) {
      server.#startupMs = performance.now() - started;
      return server;
    }
    try {
      // psql variables (:"x" identifiers, :'x' literals) do the quoting.
      const sql = [
        "SET password_encryption = 'scram-sha-256';",
        `CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';`,
        `CREATE DATABASE :"app_db" OWNER :"app_user";`,
      ].join("\n");
      await runCommand(binaries.psql, [
        ...["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", layout.socketDir, "-p", String(server.port)],
        ...["-U", SUPERUSER, "-d", "postgres", "-v", `app_user=${appUser}`],
        ...["-v", `app_password=${appPassword}`, "-v", `app_db=${database}`],
      ], { user: layout.runAs?.name, stdin: sql });
    } catch (err) {
      const output = server.#process?.recentOutput() ?? "";
      await server.stop();
      throw new PostgresServerError(
        `Cannot create role "${appUser}" and database "${database}": ${err}\n${output}`,
        { cause: err },
      );
    }
    if (options.persistent) {
      const credentials: Credentials = { superPassword, appPassword, appUser, database };
      await Deno.writeTextFile(credentialsFile, JSON.stringify(credentials), { mode: 0o600 });
    }
    server.#startupMs = performance.now() - started;
    return server;
  }

  /** Milliseconds {@linkcode start} took: initdb, first start, role and database creation. */
  get startupMs(): number {
    return this.#startupMs;
  }

  /** True while the server process runs. */
  get running(): boolean {
    return this.#process !== null && !this.#process.exited;
  }

  /** Process id of the postmaster, or null when stopped. */
  get pid(): number | null {
    return this.running ? this.#process!.pid : null;
  }

  /** Stops the server if it runs, then starts it again on the same port and data. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#launch();
  }

  /** Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit); SIGKILL after 10 s. */
  async stop(): Promise<void> {
    const proc = this.#process;
    this.#process = null;
    if (proc) await proc.stop("SIGINT", 10_000);
  }

  async #launch(): Promise<void> {
    const settings: Record<string, string> = {
      listen_addresses: "127.0.0.1",
      port: String(this.port),
      unix_socket_directories: this.#layout.socketDir,
      password_encryption: "scram-sha-256",
      shared_buffers: this.#sharedBuffers,
      ...(this.#fast ? { fsync: "off", synchronous_commit: "off", full_page_writes: "off" } : {}),
      // An installation with TimescaleDB gets it preloaded, hence tier 1 analytics.
      ...(await timescaleSettings(this.#binary)),
    };
    const args = ["-D", this.#layout.dataDir];
    for (const [key, value] of Object.entries(settings)) args.push("-c", `${key}=${value}`);
    const proc = new ServerProcess(this.#binary, args, {
      name: "postgres",
      user: this.#layout.runAs?.name,
      cwd: this.#layout.dataDir,
    });
    this.#process = proc;
    try {
      await waitUntilReady(proc, () => acceptsLogins(this.port), 30_000);
    } catch (err) {
      // SIGINT rather than SIGKILL: the postmaster then waits for its children
      // and removes its shared memory, so nothing is left behind.
      await proc.stop("SIGINT", 5_000);
      this.#process = null;
      if (/address already in use/i.test(proc.recentOutput())) {
        throw new Deno.errors.AddrInUse(`Port ${this.port} is in use`, { cause: err });
      }
      throw new PostgresServerError(`Cannot start PostgreSQL on 127.0.0.1:${this.port}: ${err}`, {
        cause: err,
      });
    }
  }
}
