import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { createQueue } from "../shared/queue/queue.ts";
import {
  countEffects,
  EFFECT_CATALOG,
  effectsTableDdl,
  type EffectWorkerFlags,
} from "./fixtures/effect_worker.ts";
import { dropNamespace, getTasks } from "../testing/queue.ts";
import { EffectWorkerProcess } from "./fixtures/effect_worker_process.ts";
import { waitUntil } from "../testing/wait.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { runTag } from "../testing/namespace.ts";

const TASKS = 500;
// Long enough that the second worker's lease extensions keep up on a loaded
// machine (at 1,500 ms and load 10, 95 tasks lost their lease twice and were
// dead-lettered), short enough that the killed worker's leases expire soon.
const LEASE_MS = 3_000;

Deno.test({
  name: "a worker SIGKILLed while holding 500 tasks: a second worker completes every one, " +
    "each effect exactly once",
  // The deps hold a Neon Pool, whose sockets close asynchronously after end().
  ...noSanitizers,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const suffix = runTag();
    const table = `queue_effects_${suffix}`;
    const queue = createQueue(deps.redis, EFFECT_CATALOG, { namespace: `k9${suffix}` });
    const env = { ...stack.env(), APP_ENV: "test", LOG_LEVEL: "info" };
    const flags: EffectWorkerFlags = {
      namespace: `k9${suffix}`,
      table,
      concurrency: TASKS,
      leaseMs: LEASE_MS,
      pollMs: 100,
      holdMs: 0,
    };
    const workers: EffectWorkerProcess[] = [];
    await deps.sql.query(effectsTableDdl(table));
    try {
      const ids = (await queue.enqueueMany(
        Array.from({ length: TASKS }, (_, n) => ({ type: "effect", payload: { n } })),
      )).map((r) => r.id);

      // The first worker claims all 500 and stays busy with them: the even
      // half has done its effect (not acked), the odd half has not yet.
      const first = new EffectWorkerProcess({ ...flags, holdMs: 120_000 }, env);
      workers.push(first);
      await first.waitForLog("effect worker ready");
      await waitUntil(
        async () =>
          (await deps.redis.zcard(queue.ctx.keys.leases)) === TASKS &&
          (await countEffects(deps.sql, table)).rows === TASKS / 2,
        {
          timeoutMs: 20_000,
          what: "the first worker to hold every task with half the effects done",
          detail: async () =>
            JSON.stringify({
              leases: await deps.redis.zcard(queue.ctx.keys.leases),
              effects: await countEffects(deps.sql, table),
            }),
        },
      );
      const killed = await first.stop("SIGKILL");
      assert.equal(killed.status.signal, "SIGKILL");

      // The second worker takes the expired leases back and runs every task again.
      const second = new EffectWorkerProcess({ ...flags, concurrency: 50 }, env);
      workers.push(second);
      await waitUntil(async () => Number((await queue.stats()).succeeded ?? 0) >= TASKS, {
        timeoutMs: 30_000,
        what: "every task to succeed on the second worker",
        detail: async () => JSON.stringify(await queue.stats()),
      });
      const stopped = await second.stop("SIGTERM");
      assert.equal(stopped.status.code, 0, stopped.stderr);

      const infos = await getTasks(queue, ids);
      assert.deepEqual(
        infos.filter((t) => t?.status !== "succeeded").map((t) => [t?.id, t?.status]),
        [],
      );
      // Exactly one effect per task although every task ran twice.
      assert.deepEqual(await countEffects(deps.sql, table), { rows: TASKS, distinct: TASKS });
      const { rows } = await deps.sql.query(`SELECT task_id FROM ${table}`);
      assert.deepEqual(rows.map((r) => r.task_id).sort(), [...ids].sort());
      const reruns = infos.filter((t) => t!.attempts > 1).length;
      assert.equal(reruns, TASKS, "every task was delivered again after the kill");
      assert.ok(infos.every((t) => t!.attempts === 2));
      const recovered = second.logsWith("took back expired leases")
        .reduce((sum, l) => sum + Number(l.recovered), 0);
      assert.equal(recovered, TASKS);
      assert.equal(Number((await queue.stats()).dead ?? 0), 0);
      console.log(
        `${reruns} of ${TASKS} tasks ran twice (attempts 2); ${TASKS} effects, no duplicate`,
      );
    } finally {
      await Promise.all(workers.map((w) => w.kill()));
      await deps.sql.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await dropNamespace(queue).catch(() => {});
    }
  },
});
