/**
 * One throwaway PostgreSQL + Neon proxy per test file, with a
 * fresh database per test (CREATE DATABASE is ~50 ms; initdb is seconds).
 * Pools are the production `createPool`, through the proxy.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import { createPool } from "../shared/db/pool.ts";
import { type NeonProxy, startNeonProxy } from "../dev/neon_proxy.ts";
import { PostgresServer } from "../dev/postgres_server.ts";
import { runTag } from "./namespace.ts";

/** A running test database server. */
export interface TestDatabase extends AsyncDisposable {
  readonly server: PostgresServer;
  readonly proxy: NeonProxy;
  /** A pool on the app database, or on `database` when given. */
  pool(options?: { database?: string; max?: number; admin?: boolean }): Pool;
  /** Creates an empty database owned by the app role; returns its name. */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts Postgres and the proxy in a temp dir; `stop()` removes everything. */
export async function startTestDatabase(): Promise<TestDatabase> {
  const dir = await Deno.makeTempDir({ prefix: "pcdb-" });
  await Deno.chmod(dir, 0o755);
  let server: PostgresServer | null = null;
  let proxy: NeonProxy | null = null;
  const pools: Pool[] = [];
  const stop = async () => {
    await Promise.allSettled(pools.map((p) => p.end()));
    await proxy?.close();
    await server?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    server = await PostgresServer.start({ dir });
    proxy = await startNeonProxy({ allow: [`127.0.0.1:${server.port}`] });
  } catch (err) {
    await stop();
    throw err;
  }
  const s = server;
  const p = proxy;
  let counter = 0;
  const pool = (options: { database?: string; max?: number; admin?: boolean } = {}) => {
    const url = new URL(options.admin ? s.adminUrl : s.databaseUrl);
    if (options.database) url.pathname = `/${options.database}`;
    const created = createPool({
      databaseUrl: url.toString(),
      wsProxy: p.wsProxy,
      useSecureWebSocket: false,
      pipelineConnect: false,
      max: options.max ?? 4,
      onError: () => {},
    });
    pools.push(created);
    return created;
  };
  const admin = pool({ admin: true, max: 1 });
  return {
    server: s,
    proxy: p,
    pool,
    async createDatabase() {
      const name = `t${++counter}_${runTag()}`;
      await admin.query(`CREATE DATABASE ${name} OWNER app`);
      return name;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
