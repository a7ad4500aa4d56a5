/**
 * Builds the `@neondatabase/serverless` Pool that edge and workers share, with
 * the Neon socket settings applied to this pool only (not to the global
 * `neonConfig`), so a local pool and a Neon pool can coexist in one process.
 *
 * @module
 */
import { Client, type ClientConfig, Pool } from "@neondatabase/serverless";
import { WebSocket as NodeWebSocket } from "ws";
import type { DatabaseTarget } from "../config/mod.ts";
import { bindPoolContext, type DbErrorClass, traceQueries } from "./query_spans.ts";

/** Settings for {@linkcode createPool}. */
export interface PoolSettings {
  /** `postgresql://user:password@host:port/database`; Neon's `?sslmode=require` suffix is fine. */
  databaseUrl: string;
  /**
   * WebSocket proxy in the string form `host:port/path` (the driver appends
   * `?address=host:port`). Set it locally (`dev/neon_proxy.ts`); leave it
   * null/undefined for real Neon, whose endpoint is the driver's default.
   * @default undefined
   */
  wsProxy?: string | null;
  /** `wss:` when true, `ws:` when false. @default true; false for a local plain proxy */
  useSecureWebSocket?: boolean;
  /**
   * `"password"` sends startup, cleartext password and first query together
   * (saves round trips on Neon). Local PostgreSQL with scram-sha-256 rejects it
   * ("invalid SASL authentication mechanism"), so use `false` locally.
   * @default "password"
   */
  pipelineConnect?: "password" | false;
  /** Maximum number of connections. @default 10 (node-postgres) */
  max?: number;
  /** How long `connect()`/`query()` wait for a connection before failing. @default 0 (forever) */
  connectionTimeoutMillis?: number;
  /**
   * Called when an idle pooled connection fails (the pool drops it). Neon
   * closes idle connections when a compute suspends, and after `pool.end()` an
   * idle client reports "Failed to send frame", so this is routine.
   * @default logs a warning with console.warn
   */
  onError?: (error: Error) => void;
  /**
   * Called once per failed call, by class: a statement (`query`), a
   * transaction-control statement (`transaction`) or opening a connection
   * (`connect`). Feeds `postgres_errors_total` (shared/deps.ts).
   * @default none
   */
  onCallError?: (errorClass: DbErrorClass) => void;
}

type Connect = (callback?: (err?: Error) => void) => unknown;

/**
 * Opening a connection failed without an Error: the driver rejects a failed
 * WebSocket with the socket's `ErrorEvent` itself (`JSON.stringify` gives
 * `{}`, `String` gives `[object Object]`), which reached the DLQ as "Non-Error
 * thrown: {}" (found by `deno task chaos` under CPU starvation, 2026-12-07).
 * The event is kept as `cause`.
 */
export class DatabaseConnectionError extends Error {
  override name = "DatabaseConnectionError";
}

/** `err` as an Error: a non-Error (an ErrorEvent) becomes a DatabaseConnectionError naming it. */
export function connectionError(err: unknown): Error {
  if (err instanceof Error) return err;
  const detail = typeof err === "object" && err !== null
    ? [(err as { type?: unknown }).type, (err as { message?: unknown }).message]
      .filter((v) => typeof v === "string" && v !== "").join(": ")
    : String(err);
  const kind = typeof err === "object" && err !== null
    ? err.constructor?.name ?? "object"
    : typeof err;
  return new DatabaseConnectionError(
    `Cannot connect to the database: the driver failed with a ${kind}${
      detail ? ` (${detail})` : ""
    }`,
    { cause: err },
  );
}

/** Wraps `client.connect` so that it only ever fails with an Error (see connectionError). */
function normalizeConnectErrors(client: { connect: Connect }): void {
  const original = client.connect.bind(client);
  client.connect = function normalizedConnect(callback?: (err?: Error) => void) {
    if (typeof callback === "function") {
      return original((err?: Error) => callback(err ? connectionError(err) : err));
    }
    return (original() as Promise<void>).catch((err: unknown) => {
      throw connectionError(err);
    });
  };
}

/** Wraps `client.connect` (callback style, as the pool uses it, or promise style). */
function countConnectErrors(
  client: { connect: Connect },
  onCallError: (errorClass: DbErrorClass) => void,
): void {
  const original = client.connect.bind(client);
  client.connect = function countedConnect(callback?: (err?: Error) => void) {
    if (typeof callback === "function") {
      return original((err?: Error) => {
        if (err) onCallError("connect");
        callback(err);
      });
    }
    return (original() as Promise<void>).catch((err: unknown) => {
      onCallError("connect");
      throw err;
    });
  };
}

function warnIdleError(error: Error): void {
  console.warn(`Idle database connection failed and was dropped: ${error.message}`);
}

/**
 * Creates a Pool whose connections use `settings`. An `error` listener is
 * always attached, to the pool and to every client: without one, an idle
 * client's error (e.g. after `pool.end()`), or a checked-out client's lost
 * connection, is an uncaught exception that kills the process.
 *
 * @example Local pool through dev/neon_proxy.ts
 * ```ts
 * const pool = createPool({ databaseUrl, wsProxy: "127.0.0.1:8080/v1",
 *   useSecureWebSocket: false, pipelineConnect: false });
 * const { rows } = await pool.query("select $1::int + $2::int as sum", [1, 2]);
 * await pool.end();
 * ```
 */
export function createPool(settings: PoolSettings): Pool {
  if (!/^postgres(ql)?:\/\//.test(settings.databaseUrl)) {
    throw new TypeError("Cannot create a pool: databaseUrl must start with postgresql://");
  }
  if (settings.max !== undefined && !(Number.isInteger(settings.max) && settings.max > 0)) {
    throw new RangeError(
      `Cannot create a pool: max must be a positive integer, got ${settings.max}`,
    );
  }
  const { wsProxy } = settings;
  const useSecureWebSocket = settings.useSecureWebSocket ?? true;
  const pipelineConnect = settings.pipelineConnect ?? "password";
  const { onCallError } = settings;

  // Per-pool rather than global neonConfig: each Client has its own socket
  // object (`client.neonConfig`, an instance of the neonConfig class) whose
  // setters store instance overrides that win over the static (global) values
  // in 1.2.0, and the Pool builds its clients with `new pool.Client(options)`.
  // Passing a `stream` in the pool options would share ONE socket between all
  // clients, and the `Client` pool option is overwritten by NeonPool's own
  // field, so the subclass is installed on the pool instance instead.
  class ConfiguredClient extends Client {
    constructor(config?: string | ClientConfig) {
      super(config);
      const socket = this.neonConfig;
      if (wsProxy != null) socket.wsProxy = wsProxy;
      socket.useSecureWebSocket = useSecureWebSocket;
      socket.pipelineConnect = pipelineConnect;
      // The `ws` package rather than Deno's built-in WebSocket: Deno's client
      // leaves Nagle's algorithm on and writes a frame's header and payload
      // separately, so every query message over ~1 KB waited for the peer's
      // delayed ACK (tens of ms per INSERT; `ws` sets TCP_NODELAY; figures in
      // docs/benchmarks.md, design measurements).
      socket.webSocketConstructor = NodeWebSocket as unknown as typeof WebSocket;
      // Pool queries go through a client's query() too: one span per statement.
      traceQueries(this as unknown as { query: (...args: unknown[]) => unknown }, onCallError);
      normalizeConnectErrors(this as unknown as { connect: Connect });
      if (onCallError) countConnectErrors(this as unknown as { connect: Connect }, onCallError);
      // A connection that dies while the client is checked out (Postgres shutting down sends
      // 57P01 "terminating connection due to administrator command", a socket breaks) is told to
      // the caller twice: the statement in flight (or the next one) rejects, which the caller
      // handles, AND the client emits "error", which without a listener is an uncaught
      // exception that kills the process (found by `deno task chaos`: an edge died while
      // Postgres was stopped). The rejection is the one that matters; the pool's own listener
      // still drops idle clients that fail.
      (this as unknown as { on(event: "error", fn: () => void): void }).on("error", () => {});
    }
  }

  const pool = new Pool({
    connectionString: settings.databaseUrl,
    ...(settings.max !== undefined ? { max: settings.max } : {}),
    ...(settings.connectionTimeoutMillis !== undefined
      ? { connectionTimeoutMillis: settings.connectionTimeoutMillis }
      : {}),
  });
  pool.Client = ConfiguredClient;
  bindPoolContext(pool as unknown as Parameters<typeof bindPoolContext>[0]);
  pool.on("error", settings.onError ?? warnIdleError);
  return pool;
}

/** Pool options other than the target's own settings. */
export type PoolOptions = Omit<
  PoolSettings,
  "databaseUrl" | "wsProxy" | "useSecureWebSocket" | "pipelineConnect"
>;

/** {@linkcode createPool} for a configured (or dev-stack) database target. */
export function poolFor(target: DatabaseTarget, options: PoolOptions = {}): Pool {
  return createPool({
    databaseUrl: target.url,
    wsProxy: target.wsProxy,
    useSecureWebSocket: target.useSecureWebSocket,
    pipelineConnect: target.pipelineConnect,
    ...options,
  });
}

/**
 * Points the pool's NEW connections at `databaseUrl` (a rotated password or
 * host). Connections already open keep serving until they close; node-postgres
 * builds each new client from `pool.options`.
 */
export function setPoolDatabaseUrl(pool: Pool, databaseUrl: string): void {
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new TypeError("Cannot repoint the pool: databaseUrl must start with postgresql://");
  }
  (pool as unknown as { options: { connectionString: string } }).options.connectionString =
    databaseUrl;
}
