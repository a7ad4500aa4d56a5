import assert from "node:assert/strict";
import { startTestDatabase } from "../../testing/database.ts";
import { createMetrics, renderMetrics } from "../metrics/metrics.ts";
import {
  connectionError,
  createPool,
  DatabaseConnectionError,
  setPoolDatabaseUrl,
} from "./pool.ts";
import { freePort } from "../../dev/ports.ts";

Deno.test("setPoolDatabaseUrl(): new connections use the rotated URL; open ones keep working", async () => {
  await using db = await startTestDatabase();
  const pool = db.pool({ max: 4 });
  const rotated = await db.createDatabase();
  const held = await pool.connect();
  try {
    const before = await held.query<{ db: string }>("SELECT current_database() AS db");
    const url = new URL(
      (pool as unknown as { options: { connectionString: string } }).options
        .connectionString,
    );
    url.pathname = `/${rotated}`;
    setPoolDatabaseUrl(pool, url.toString());
    // `held` is checked out, so the pool must open a new connection for this one.
    const fresh = await pool.connect();
    try {
      const after = await fresh.query<{ db: string }>("SELECT current_database() AS db");
      assert.equal(after.rows[0]!.db, rotated);
    } finally {
      fresh.release();
    }
    const still = await held.query<{ db: string }>("SELECT current_database() AS db");
    assert.equal(still.rows[0]!.db, before.rows[0]!.db, "the open connection is untouched");
    assert.notEqual(before.rows[0]!.db, rotated);
  } finally {
    held.release();
  }
  assert.throws(() => setPoolDatabaseUrl(pool, "mysql://x"), TypeError);
});

Deno.test("onCallError counts failed statements, transaction control and connections by class, never by text", async () => {
  await using db = await startTestDatabase();
  const metrics = createMetrics();
  const settings = {
    wsProxy: db.proxy.wsProxy,
    useSecureWebSocket: false,
    pipelineConnect: false as const,
    max: 2,
    onError: () => {},
    onCallError: (operation: "query" | "transaction" | "connect") =>
      metrics.postgresErrors.inc({ operation }),
  };
  const pool = createPool({ databaseUrl: db.server.databaseUrl, ...settings });
  const missing = new URL(db.server.databaseUrl);
  missing.pathname = "/no_such_database";
  const unreachable = createPool({ databaseUrl: missing.toString(), ...settings });
  try {
    assert.equal((await pool.query("SELECT 1 AS one")).rows[0].one, 1);
    await assert.rejects(pool.query("SELECT * FROM no_such_table_secret_word"));
    await assert.rejects(pool.query("SELECT $1::int", ["not a number"]));
    // SAVEPOINT outside a transaction block is an error.
    await assert.rejects(pool.query("SAVEPOINT s1"));
    await assert.rejects(unreachable.query("SELECT 1"));
  } finally {
    await pool.end();
    await unreachable.end().catch(() => {});
  }
  const text = await renderMetrics(metrics);
  const lines = text.split("\n");
  for (
    const line of [
      'postgres_errors_total{operation="query"} 2',
      'postgres_errors_total{operation="transaction"} 1',
      'postgres_errors_total{operation="connect"} 1',
    ]
  ) assert.ok(lines.includes(line), `${line} missing from:\n${text}`);
  assert.ok(!text.includes("no_such"), "no statement text or database name in the output");
});

Deno.test("a checked-out connection that Postgres terminates fails its caller's next statement, not the process", async () => {
  await using db = await startTestDatabase();
  const pool = db.pool({ max: 2 });
  const held = await pool.connect();
  let broken: Error | undefined;
  try {
    const { rows } = await held.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    // What a Postgres shutdown does to every session: FATAL 57P01 while the client sits idle
    // in the caller's hands (between two statements of a transaction, say).
    await pool.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
    // Let the FATAL message arrive: the client emits "error" now, with no statement in flight.
    await new Promise((r) => setTimeout(r, 300));
    await assert.rejects(held.query("SELECT 1"), (err: Error) => {
      broken = err;
      return true;
    });
  } finally {
    held.release(broken ?? true);
  }
  const { rows } = await pool.query<{ ok: number }>("SELECT 1 AS ok");
  assert.equal(rows[0]!.ok, 1, "the pool serves on with a new connection");
});

Deno.test("a connection the WebSocket cannot open fails with an Error naming it, not the socket's ErrorEvent", async () => {
  // Nothing listens on the proxy's port: the driver's WebSocket fails to open.
  const port = await freePort();
  const pool = createPool({
    databaseUrl: "postgresql://app:secret@127.0.0.1:5432/app",
    wsProxy: `127.0.0.1:${port}/v2`,
    useSecureWebSocket: false,
    pipelineConnect: false,
    max: 1,
    onError: () => {},
  });
  try {
    for (const attempt of [() => pool.query("SELECT 1"), () => pool.connect()]) {
      await assert.rejects(attempt(), (err: unknown) => {
        assert.ok(
          err instanceof DatabaseConnectionError,
          `got ${Object.prototype.toString.call(err)}`,
        );
        assert.match(
          err.message,
          /^Cannot connect to the database: the driver failed with a \w*Event/,
        );
        // The `ws` package's ErrorEvent (not the DOM's), kept as the cause.
        assert.match(String((err.cause as object)?.constructor?.name), /Event$/);
        return true;
      });
    }
  } finally {
    await pool.end().catch(() => {});
  }
});

Deno.test("connectionError() keeps Errors and names anything else", () => {
  const e = new Error("x");
  assert.equal(connectionError(e), e);
  assert.equal(
    connectionError(null).message,
    "Cannot connect to the database: the driver failed with a object (null)",
  );
  assert.equal(
    connectionError("boom").message,
    "Cannot connect to the database: the driver failed with a string (boom)",
  );
});
