import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { poolFor } from "../shared/db/pool.ts";
import { findBinary, MissingBinaryError } from "./binaries.ts";
import { isAlive, processesUsing, waitForExit } from "./leftovers.ts";
import { startStack } from "./stack.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("startStack() uses configured services and starts nothing", async () => {
  const stack = await startStack({
    env: {
      UPSTASH_REDIS_REST_URL: "https://eu1-fine-cat.upstash.io",
      UPSTASH_REDIS_REST_TOKEN: "tok",
      DATABASE_URL: "postgresql://u:p@ep-x.eu-central-1.aws.neon.tech/db?sslmode=require",
    },
  });
  assert.equal(stack.settings.local, false);
  assert.equal(stack.redisServer, null);
  assert.equal(stack.dir, null);
  assert.deepEqual(stack.settings.database, {
    url: "postgresql://u:p@ep-x.eu-central-1.aws.neon.tech/db?sslmode=require",
    wsProxy: null,
    useSecureWebSocket: true,
    pipelineConnect: "password",
  });
  await stack.stop();
});

Deno.test("startStack() refuses a half-configured environment", async () => {
  await assert.rejects(
    startStack({ env: { DATABASE_URL: "postgresql://u:p@h/db" } }),
    /UPSTASH_REDIS_REST_URL: missing \(set all of/,
  );
});

Deno.test("findBinary() names the missing binary and how to install it", () => {
  assert.throws(() => findBinary("redis-server", { path: "", extraDirs: [] }), (e: Error) => {
    assert.ok(e instanceof MissingBinaryError);
    assert.equal(
      e.message,
      'Cannot start the local stack: "redis-server" was not found on PATH. Install it with ' +
        '"apt-get install redis-server" (Debian/Ubuntu) or "brew install redis" (Homebrew)',
    );
    return true;
  });
});

Deno.test("a stack whose startup fails halfway prints one message and leaves nothing behind", async () => {
  // redis-server is missing from PATH while Postgres (found in /usr/lib/postgresql)
  // starts in parallel: the failure happens with a half-started stack.
  const tmp = await Deno.makeTempDir({ prefix: "pch-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "dev/dev.ts"],
      cwd: ROOT,
      env: { PATH: `${tmp}/empty-bin`, TMPDIR: tmp, NO_COLOR: "1" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, stderr);
    assert.match(
      stderr,
      /"redis-server" was not found on PATH\. Install it with "apt-get install redis-server"/,
    );
    assert.doesNotMatch(stderr, /\n\s+at /);
    assert.deepEqual([...Deno.readDirSync(tmp)], []);
    assert.deepEqual(processesUsing(tmp), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("servers die with their parent even when it is SIGKILLed", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "pco-" });
  await Deno.chmod(tmp, 0o755); // the postgres user traverses it
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { startStack } from "${ROOT}dev/stack.ts";
       const s = await startStack();
       console.log(JSON.stringify([s.redisServer.pid, s.postgres.pid]));
       await new Promise(() => {});`,
    ],
    cwd: ROOT,
    env: { TMPDIR: tmp, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const pids: number[] = JSON.parse(text);
    assert.ok(pids.every(isAlive));
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    assert.deepEqual(await waitForExit(pids, 10_000), [], "servers outlived their parent");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already dead
    }
    await child.status;
    await Deno.remove(tmp, { recursive: true });
  }
});

// Last in the file: the Neon Pool this test used leaves socket timers that would
// fire during a later, sanitized test of this file.
Deno.test({
  name: "startStack() serves the production clients and stop() leaves no process or directory",
  // The Neon Pool's socket ops outlive the query by design (docs/reference/neon-local.md §5).
  ...noSanitizers,
  async fn() {
    const stack = await startStack();
    const pids = [stack.redisServer!.pid!, stack.postgres!.pid!];
    const dir = stack.dir!;
    try {
      assert.equal(stack.settings.local, true);
      const redis = new Redis({ ...stack.settings.redis, enableTelemetry: false });
      await redis.set("stack:k", "v");
      assert.equal(await redis.get("stack:k"), "v");
      const pool = poolFor(stack.settings.database, { onError: () => {} });
      const { rows } = await pool.query("SELECT current_user AS u");
      assert.equal(rows[0].u, "app");
      await pool.end();
      assert.ok(pids.every(isAlive));
    } finally {
      await stack.stop();
    }
    assert.deepEqual(await waitForExit(pids, 1000), []);
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
    assert.deepEqual(processesUsing(dir), []);
  },
});

Deno.test({
  name: "startStack({ dataDir }) keeps Redis and PostgreSQL data across a stop and a new start",
  // The Neon Pool's socket ops outlive the query by design (docs/reference/neon-local.md §5).
  ...noSanitizers,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "pcd-" });
    await Deno.chmod(tmp, 0o755); // the postgres user traverses it
    const dataDir = `${tmp}/data`;
    const use = async (fn: (s: Awaited<ReturnType<typeof startStack>>) => Promise<void>) => {
      const stack = await startStack({ dataDir });
      const pids = [stack.redisServer!.pid!, stack.postgres!.pid!];
      try {
        assert.equal(stack.dir, await Deno.realPath(dataDir));
        await fn(stack);
      } finally {
        await stack.stop();
      }
      assert.deepEqual(await waitForExit(pids, 1000), []);
    };
    try {
      await use(async (stack) => {
        const redis = new Redis({ ...stack.settings.redis, enableTelemetry: false });
        await redis.set("kept:k", "across restarts");
        const pool = poolFor(stack.settings.database, { onError: () => {} });
        await pool.query("CREATE TABLE kept (v text NOT NULL)");
        await pool.query("INSERT INTO kept VALUES ('committed')");
        await pool.end();
      });
      // Stopped: the directory and its data stay; nothing runs in it.
      assert.ok((await Deno.stat(`${dataDir}/pg/data/PG_VERSION`)).isFile);
      assert.deepEqual(processesUsing(dataDir), []);
      await use(async (stack) => {
        const redis = new Redis({ ...stack.settings.redis, enableTelemetry: false });
        assert.equal(await redis.get("kept:k"), "across restarts");
        const pool = poolFor(stack.settings.database, { onError: () => {} });
        const { rows } = await pool.query("SELECT v, current_user AS u FROM kept");
        await pool.end();
        assert.deepEqual(rows, [{ v: "committed", u: "app" }]);
      });
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
