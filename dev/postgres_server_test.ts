import assert from "node:assert/strict";
import { findPostgresBinaries } from "./binaries.ts";
import { PostgresServer, PostgresServerError } from "./postgres_server.ts";
import { runCommand } from "./server_process.ts";

/** Runs one query with psql over TCP (so scram-sha-256 is what authenticates). */
async function query(url: string, sql: string): Promise<string> {
  const { psql } = findPostgresBinaries();
  const out = await runCommand(psql, [
    "-X",
    "-A",
    "-t",
    "-v",
    "ON_ERROR_STOP=1",
    "-d",
    url,
    "-c",
    sql,
  ]);
  return out.trim();
}

/** Pids of processes whose working directory is inside `dir` (postgres chdirs to its data dir). */
async function processesIn(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if ((await Deno.readLink(`/proc/${entry.name}/cwd`)).startsWith(dir)) {
        pids.push(Number(entry.name));
      }
    } catch {
      // exited meanwhile, or not ours to inspect
    }
  }
  return pids;
}

async function processUid(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
}

Deno.test("PostgresServer runs unprivileged, authenticates with scram and restarts with its data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pg_server_test_" });
  let server: PostgresServer | null = null;
  try {
    server = await PostgresServer.start({ dir });
    console.log(`PostgreSQL startup: ${server.startupMs.toFixed(0)} ms`);
    const pid = server.pid;
    assert.ok(pid !== null && server.running);
    const expectedUid = Deno.uid() === 0
      ? Number(await runCommand("id", ["-u", "postgres"]))
      : Deno.uid();
    assert.equal(await processUid(pid), expectedUid);
    assert.match(
      server.databaseUrl,
      new RegExp(`^postgresql://app:\\w+@127\\.0\\.0\\.1:${server.port}/pleasant_cove$`),
    );

    assert.equal(await query(server.databaseUrl, "SELECT current_user"), "app");
    assert.equal(
      await query(
        server.adminUrl,
        "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'app'",
      ),
      "t",
    );
    assert.equal(
      await query(
        server.adminUrl,
        "SELECT string_agg(DISTINCT auth_method, ',') FROM pg_hba_file_rules WHERE type = 'host'",
      ),
      "scram-sha-256",
    );
    assert.equal(await query(server.adminUrl, "SHOW fsync"), "on");
    const wrong = server.databaseUrl.replace(/:\w+@/, ":wrong@");
    await assert.rejects(query(wrong, "SELECT 1"), /password authentication failed/);

    await query(
      server.databaseUrl,
      "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')",
    );
    const postgresProcesses = await processesIn(dir);
    assert.ok(postgresProcesses.includes(pid) && postgresProcesses.length > 1);

    await server.stop();
    assert.equal(server.running, false);
    assert.equal(server.pid, null);
    await assert.rejects(Deno.stat(`/proc/${pid}`), Deno.errors.NotFound);
    assert.deepEqual(await processesIn(dir), []);

    const port = server.port;
    await server.restart();
    assert.equal(server.port, port);
    assert.notEqual(server.pid, pid);
    assert.equal(await query(server.databaseUrl, "SELECT v FROM kept"), "before");
  } finally {
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PostgresServer.start() stops the server when setup fails halfway", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pg_server_test_" });
  try {
    // template1 always exists, so CREATE DATABASE fails after the server is up.
    const error = await PostgresServer.start({ dir, database: "template1" }).then(
      () => assert.fail("start() should fail"),
      (err: unknown) => err,
    );
    assert.ok(error instanceof PostgresServerError);
    assert.match(error.message, /database "template1" already exists/);
    assert.deepEqual(await processesIn(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PostgresServer is crash-safe by default: answered commits survive kill -9 of every server process", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pg_durable_test_" });
  let server: PostgresServer | null = null;
  try {
    server = await PostgresServer.start({ dir });
    const url = server.databaseUrl;
    assert.equal(await query(url, "SHOW fsync"), "on");
    assert.equal(await query(url, "SHOW synchronous_commit"), "on");

    // Many small transactions, each answered before the next is sent: with
    // synchronous_commit off the last ones live only in WAL buffers in shared
    // memory when the processes die.
    const n = 300;
    await query(url, "CREATE TABLE acked (n int PRIMARY KEY)");
    const { psql } = findPostgresBinaries();
    const inserts = Array.from({ length: n }, (_, i) => `INSERT INTO acked VALUES (${i});`);
    await runCommand(psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"], {
      stdin: inserts.join("\n"),
    });
    for (const pid of await processesIn(dir)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // exited meanwhile
      }
    }
    // Crash recovery replays the WAL on the next start; the processes may take a moment to go.
    for (let attempt = 0;; attempt++) {
      try {
        await server.restart();
        break;
      } catch (err) {
        if (attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    assert.equal(await query(url, "SELECT count(*) FROM acked"), String(n));
  } finally {
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PostgresServer in fast mode turns durability off; shared_buffers as given (benchmarks only)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pg_fast_test_" });
  let server: PostgresServer | null = null;
  try {
    await assert.rejects(PostgresServer.start({ dir, sharedBuffers: "lots" }), RangeError);
    server = await PostgresServer.start({ dir, fast: true, sharedBuffers: "32MB" });
    assert.equal(await query(server.databaseUrl, "SHOW fsync"), "off");
    assert.equal(await query(server.databaseUrl, "SHOW synchronous_commit"), "off");
    assert.equal(await query(server.databaseUrl, "SHOW shared_buffers"), "32MB");
  } finally {
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PostgresServer.start({ persistent }) refuses a cluster whose credentials file is missing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pgp-" });
  try {
    await Deno.mkdir(`${dir}/pg/data`, { recursive: true });
    await Deno.writeTextFile(`${dir}/pg/data/PG_VERSION`, "15\n");
    await assert.rejects(
      PostgresServer.start({ dir, persistent: true }),
      (err: Error) =>
        err instanceof PostgresServerError && /Cannot reuse .*without a readable/.test(err.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
