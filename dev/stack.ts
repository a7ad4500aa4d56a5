/**
 * The self-provisioning local stack. Every entry point (dev task, tests,
 * benches) calls {@linkcode startStack} and gets one typed settings object.
 *
 * Locally it starts, on free loopback ports in one temp directory (or a
 * persistent one, `dataDir`, whose data a later stack finds again):
 * redis-server (AOF on) → the Upstash REST bridge in front of it → PostgreSQL
 * (scram app role) → the Neon WebSocket proxy in front of it. When the
 * Upstash/DATABASE_URL variables are configured, nothing is started and those
 * services are used.
 *
 * Teardown is layered: `stop()` for the normal path; an `unload` listener that
 * kills the children and removes the directory when the process exits without
 * calling it; and PR_SET_PDEATHSIG on every server so even a SIGKILLed parent
 * leaves no server behind.
 *
 * @module
 */
import { configuredServices, type DatabaseTarget } from "../shared/config/mod.ts";
import { RedisServer } from "./redis_server.ts";
import { PostgresServer } from "./postgres_server.ts";
import { startUpstashBridge, type UpstashBridge } from "./upstash_bridge.ts";
import { type NeonProxy, startNeonProxy } from "./neon_proxy.ts";

/** Connection settings for the app, local or configured. */
export interface StackSettings {
  /** `tcpUrl`: Redis itself over TCP, for the workers' queue scripts (docs/queue.md); null: REST only. */
  redis: { url: string; token: string; tcpUrl: string | null };
  database: DatabaseTarget;
  /** True when this stack started the services itself. */
  local: boolean;
}

/** Options for {@linkcode startStack}. */
export interface StackOptions {
  /** Environment to look for configured services in; local services when omitted. */
  env?: Record<string, string | undefined>;
  /** AOF fsync policy of the local redis-server. @default "everysec" */
  appendfsync?: "everysec" | "always";
  /** Progress messages (to stderr in the CLIs). */
  onProgress?: (message: string) => void;
  /**
   * Durability of the local PostgreSQL. `"crash-safe"`: fsync and
   * synchronous_commit on, so an answered write survives a kill of the
   * server. `"fast"` (benchmarks only; they say so on stderr): both off, see
   * `fast` in dev/postgres_server.ts. @default "crash-safe"
   */
  postgresDurability?: "crash-safe" | "fast";
  /** `shared_buffers` of the local PostgreSQL (`sharedBuffers` in dev/postgres_server.ts). @default "16MB" */
  postgresSharedBuffers?: string;
  /**
   * Keep Redis's and PostgreSQL's data in this directory (created when
   * missing) instead of a temp directory removed at the end: a later stack
   * started with the same directory has the same data (`deno task dev
   * --data-dir`, docs/operations.md). @default a temp directory
   */
  dataDir?: string;
}

/** A running stack. */
export interface Stack extends AsyncDisposable {
  readonly settings: StackSettings;
  /** Local servers, for tests that stop and restart them; null when configured. */
  readonly redisServer: RedisServer | null;
  readonly postgres: PostgresServer | null;
  /** Directory holding all local data (temp, or `dataDir`); null when configured. */
  readonly dir: string | null;
  stop(): Promise<void>;
}

/** The environment variables that point the app (shared/config/) at `settings`. */
export function settingsToEnv(settings: StackSettings): Record<string, string> {
  const env: Record<string, string> = {
    UPSTASH_REDIS_REST_URL: settings.redis.url,
    UPSTASH_REDIS_REST_TOKEN: settings.redis.token,
    ...(settings.redis.tcpUrl === null ? {} : { REDIS_TCP_URL: settings.redis.tcpUrl }),
    DATABASE_URL: settings.database.url,
    NEON_USE_SECURE_WEBSOCKET: String(settings.database.useSecureWebSocket),
    NEON_PIPELINE_CONNECT: settings.database.pipelineConnect === false ? "false" : "password",
  };
  if (settings.database.wsProxy) env.NEON_WS_PROXY = settings.database.wsProxy;
  return env;
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, "");
}

/** Starts (or, when configured, connects to) the stack. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const configured = options.env ? configuredServices(options.env) : null;
  if (configured) {
    const settings: StackSettings = {
      redis: configured.redis,
      // NEON_WS_PROXY and friends apply to configured services too (real Neon
      // by default; a local PostgreSQL behind a proxy when set).
      database: configured.database,
      local: false,
    };
    return {
      settings,
      redisServer: null,
      postgres: null,
      dir: null,
      stop: () => Promise.resolve(),
      [Symbol.asyncDispose]: () => Promise.resolve(),
    };
  }
  return await startLocalStack(options);
}

/** Creates `path` when missing; its absolute path. Refuses a file or a symlink loop. */
async function ensureDataDir(path: string): Promise<string> {
  await Deno.mkdir(path, { recursive: true, mode: 0o755 });
  const real = await Deno.realPath(path);
  if (!(await Deno.stat(real)).isDirectory) {
    throw new Deno.errors.NotADirectory(`Cannot keep data in "${path}": not a directory`);
  }
  return real;
}

/** The secret stored in `file` (mode 0600), written with a new random one when missing. */
async function keptSecret(file: string): Promise<string> {
  try {
    const kept = (await Deno.readTextFile(file)).trim();
    if (kept !== "") return kept;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const secret = Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await Deno.writeTextFile(file, secret + "\n", { mode: 0o600 });
  return secret;
}

async function startLocalStack(options: StackOptions): Promise<Stack> {
  const progress = options.onProgress ?? (() => {});
  const persistent = options.dataDir !== undefined;
  const dir = persistent
    ? await ensureDataDir(options.dataDir!)
    : await Deno.makeTempDir({ prefix: "pcs-" });
  // Unprivileged postgres must traverse into its data dir inside ours.
  await Deno.chmod(dir, 0o755);
  // A persistent directory is the user's: never removed, only its servers stopped.
  const removeDir = persistent
    ? () => Promise.resolve()
    : () => Deno.remove(dir, { recursive: true });
  let redisServer: RedisServer | null = null;
  let bridge: UpstashBridge | null = null;
  let postgres: PostgresServer | null = null;
  let proxy: NeonProxy | null = null;

  // Last-resort cleanup when the process exits without stop() (uncaught
  // error, Deno.exit): synchronous, because unload handlers cannot await.
  const onUnload = () => {
    for (const pid of [redisServer?.pid, postgres?.pid]) {
      if (pid) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    try {
      if (!persistent) Deno.removeSync(dir, { recursive: true });
    } catch {
      // nothing to remove
    }
  };
  globalThis.addEventListener("unload", onUnload);

  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      const errors: unknown[] = [];
      const attempt = async (fn: () => Promise<void>) => {
        try {
          await fn();
        } catch (err) {
          errors.push(err);
        }
      };
      // Front ends first, so nothing sends traffic into a stopping server.
      await attempt(async () => await proxy?.close());
      await attempt(async () => await bridge?.close());
      await Promise.all([
        attempt(async () => await redisServer?.stop()),
        attempt(async () => await postgres?.stop()),
      ]);
      await attempt(removeDir);
      globalThis.removeEventListener("unload", onUnload);
      if (errors.length > 0) {
        throw new AggregateError(errors, "Stopping the local stack failed");
      }
    })();
    return stopped;
  };

  try {
    const started = performance.now();
    const token = randomToken();
    const redisDir = `${dir}/redis`;
    await Deno.mkdir(redisDir, { recursive: true });
    // Its password must survive too: the AOF is only readable with the same server config.
    const redisPassword = persistent ? await keptSecret(`${dir}/redis-password`) : undefined;
    // Redis and Postgres start in parallel: initdb dominates the startup time.
    const [r, p] = await Promise.allSettled([
      RedisServer.start({
        dir: redisDir,
        appendfsync: options.appendfsync ?? "everysec",
        ...(redisPassword === undefined ? {} : { password: redisPassword }),
      }),
      PostgresServer.start({
        dir,
        fast: options.postgresDurability === "fast",
        persistent,
        ...(options.postgresSharedBuffers ? { sharedBuffers: options.postgresSharedBuffers } : {}),
      }),
    ]);
    if (r.status === "fulfilled") redisServer = r.value;
    if (p.status === "fulfilled") postgres = p.value;
    if (r.status === "rejected") throw r.reason;
    if (p.status === "rejected") throw p.reason;
    progress(
      `redis-server on 127.0.0.1:${redisServer!.port}, postgres on 127.0.0.1:${postgres!.port}`,
    );
    if (options.postgresDurability === "fast") {
      progress("postgres durability: fast (fsync and synchronous_commit off; NOT crash-safe)");
    }

    bridge = await startUpstashBridge({
      redisPort: redisServer!.port,
      redisPassword: redisServer!.password,
      token,
    });
    proxy = await startNeonProxy({ allow: [`127.0.0.1:${postgres!.port}`] });
    progress(`stack ready in ${Math.round(performance.now() - started)} ms`);

    const settings: StackSettings = {
      redis: { url: bridge.url, token, tcpUrl: redisServer!.url },
      database: {
        url: postgres!.databaseUrl,
        wsProxy: proxy.wsProxy,
        useSecureWebSocket: false,
        // Local Postgres asks for scram; the Neon default ("password") would
        // send a cleartext password unasked and be refused.
        pipelineConnect: false,
      },
      local: true,
    };
    return {
      settings,
      redisServer,
      postgres,
      dir,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}
