import assert from "node:assert/strict";
import { parseConfig } from "../shared/config/mod.ts";
import { poolFor } from "../shared/db/pool.ts";
import { createRedis } from "../shared/deps.ts";
import { createQueue } from "../shared/queue/queue.ts";
import { settingsToEnv, startStack } from "../dev/stack.ts";
import {
  countEffects,
  EFFECT_CATALOG,
  effectsTableDdl,
  type EffectWorkerFlags,
} from "./fixtures/effect_worker.ts";
import { EffectWorkerProcess } from "./fixtures/effect_worker_process.ts";
import { getTasks } from "../testing/queue.ts";
import { waitUntil } from "../testing/wait.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { testNamespace } from "../testing/namespace.ts";

const TASKS = 5000;

Deno.test({
  name: "redis-server restarted twice under 5,000 tasks (a clean stop, then SIGKILL; AOF " +
    "appendfsync always): none lost, every task succeeds, each effect exactly once",
  // The test's pool is a Neon Pool, whose sockets close asynchronously after end().
  ...noSanitizers,
  async fn() {
    // A private stack: this test takes its Redis away.
    const stack = await startStack({ appendfsync: "always" });
    const env = { ...settingsToEnv(stack.settings), APP_ENV: "test", LOG_LEVEL: "info" };
    const config = parseConfig(env);
    const redis = createRedis(config.redis);
    const sql = poolFor(config.database, { max: 2, onError: () => {} });
    const table = "queue_effects";
    const namespace = testNamespace("rr");
    const queue = createQueue(redis, EFFECT_CATALOG, { namespace });
    const flags: EffectWorkerFlags = {
      namespace,
      table,
      concurrency: 25,
      leaseMs: 2000,
      // Slow enough that a task picked up within a second came by notification.
      pollMs: 2000,
      // Keeps the run long enough (a few seconds) to restart Redis twice in it.
      holdMs: 10,
    };
    const workers: EffectWorkerProcess[] = [];
    try {
      await sql.query(effectsTableDdl(table));
      const ids: string[] = [];
      for (let from = 0; from < TASKS; from += 500) {
        const batch = Array.from({ length: 500 }, (_, k) => ({
          type: "effect",
          payload: { n: from + k },
        }));
        ids.push(...(await queue.enqueueMany(batch)).map((r) => r.id));
      }
      workers.push(new EffectWorkerProcess(flags, env), new EffectWorkerProcess(flags, env));
      await Promise.all(workers.map((w) => w.waitForLog("effect worker ready")));

      const succeeded = async () => Number((await queue.stats()).succeeded ?? 0);
      const redisServer = stack.redisServer!;
      const restarts: { at: number; downMs: number; kind: string }[] = [];

      // 1. A clean stop (SIGTERM: Redis writes the AOF and exits), then a start.
      await waitUntil(async () => (await succeeded()) >= 1000, {
        timeoutMs: 30_000,
        what: "1,000 tasks to succeed",
      });
      let t0 = Date.now();
      let at = await succeeded();
      await redisServer.stop();
      await new Promise((r) => setTimeout(r, 300));
      await redisServer.restart();
      restarts.push({ at, downMs: Date.now() - t0, kind: "SIGTERM" });

      // 2. A crash: nothing is flushed at exit, the AOF has what was fsynced.
      await waitUntil(async () => (await succeeded()) >= at + 1500, {
        timeoutMs: 30_000,
        what: "1,500 more tasks to succeed after the first restart",
        detail: async () => JSON.stringify(await queue.stats()),
      });
      t0 = Date.now();
      at = await succeeded();
      Deno.kill(redisServer.pid!, "SIGKILL");
      await redisServer.stop(); // reaps the killed process
      await new Promise((r) => setTimeout(r, 300));
      await redisServer.restart();
      restarts.push({ at, downMs: Date.now() - t0, kind: "SIGKILL" });
      assert.ok(at < TASKS, `the run was over before the second restart (${at} succeeded)`);

      await waitUntil(async () => (await succeeded()) >= TASKS, {
        timeoutMs: 40_000,
        what: "all 5,000 tasks to succeed",
        detail: async () => JSON.stringify(await queue.stats()),
      });
      // Both restarts ended the workers' notification streams (at the bridge);
      // they must have reopened them: idle workers pick new work up at once.
      const pickups: number[] = [];
      for (let n = TASKS; n < TASKS + 5; n++) {
        const { id } = await queue.enqueue("effect", { n });
        ids.push(id);
        await waitUntil(async () => (await queue.getTask(id))?.status === "succeeded", {
          timeoutMs: 10_000,
          what: `task ${n} after the restarts`,
        });
        const info = (await queue.getTask(id))!;
        pickups.push(info.startedAt! - info.createdAt);
      }
      assert.ok(pickups.every((ms) => ms < 1000), `pickup after the restarts: ${pickups} ms`);
      for (const w of workers) {
        assert.ok(w.logsWith("reopening the notification stream").length > 0, "stream reopened");
      }

      const stopped = await Promise.all(workers.map((w) => w.stop("SIGTERM")));
      for (const s of stopped) assert.equal(s.status.code, 0, s.stderr);

      const infos = await getTasks(queue, ids);
      assert.deepEqual(
        infos.filter((t) => t?.status !== "succeeded").map((t) => [t?.id, t?.status]),
        [],
      );
      assert.deepEqual(await countEffects(sql, table), { rows: ids.length, distinct: ids.length });
      const stats = await queue.stats();
      assert.equal(stats.succeeded, ids.length);
      assert.equal(stats.dead ?? 0, 0);
      const reruns = infos.filter((t) => t!.attempts > 1).length;
      const lostReports = workers.flatMap((w) =>
        w.logsWith("reporting task outcomes failed; leases will expire and tasks rerun")
      ).reduce((sum, l) => sum + Number(l.count), 0);
      console.log(
        `restarts ${JSON.stringify(restarts)}; ${reruns} tasks ran again ` +
          `(${lostReports} outcome reports failed while Redis was away); ` +
          `${ids.length} effects, no duplicate; pickup after the restarts ${pickups} ms`,
      );
    } finally {
      await Promise.all(workers.map((w) => w.kill()));
      await sql.end();
      await stack.stop();
    }
  },
});
