import assert from "node:assert/strict";
import { findPostgresBinaries } from "../dev/binaries.ts";
import { runCommand } from "../dev/server_process.ts";
import { settingsToEnv, startStack } from "../dev/stack.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("deno task dev stops cleanly, with the migration's name, when a migration ends its session", async () => {
  await using stack = await startStack({});
  // Every DDL statement now ends its own session, as TimescaleDB's FATAL
  // "must be preloaded" does at CREATE EXTENSION: the connection is closed
  // under the migration runner. (Event triggers need the superuser.)
  await runCommand(findPostgresBinaries().psql, [
    ...["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", stack.postgres!.adminUrl],
    ...[
      "-c",
      `CREATE FUNCTION end_session() RETURNS event_trigger LANGUAGE plpgsql
       AS $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); END $$`,
    ],
    ...[
      "-c",
      `CREATE EVENT TRIGGER end_session_on_ddl ON ddl_command_start
       EXECUTE FUNCTION end_session()`,
    ],
  ]);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "dev/dev.ts"],
    cwd: ROOT,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      NO_COLOR: "1",
      EDGE_PORT: "0",
      ...settingsToEnv(stack.settings),
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, stderr);
  assert.match(stderr, /Migration 001_create_businesses\.sql failed: /);
  assert.match(stderr, /\[dev\] stopped/);
  // The lost connection is reported through the error above, not as an uncaught error event.
  assert.doesNotMatch(stderr, /Uncaught/);
});
