import assert from "node:assert/strict";
import { startTestDatabase } from "../../testing/database.ts";
import { useTestStack } from "../../testing/stack.ts";
import {
  allEvents,
  DAY,
  directMetrics,
  insertEvents,
  leadIds,
  migratedDatabase,
  prng,
  randomEvents,
  rollupTable,
} from "../../testing/analytics.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { AnalyticsMaintenancePayload, TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import { dropNamespace } from "../../testing/queue.ts";
import type { TaskContext } from "../runner.ts";
import { applyRetentionHandler, continuationKey } from "./apply_retention.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { taskContext } from "../../testing/tasks.ts";

// 12:34 so that "now − 90 days" is not a midnight: the raw cutoff rounds down to one.
const NOW = Date.parse("2031-06-01T12:34:00Z");
const CUTOFF = Date.parse("2031-03-03T00:00:00Z"); // the midnight at or before NOW − 90 days

Deno.test({
  name: "apply_retention deletes what is past retention in bounded, chained tasks",
  // A private database: retention deletes across the whole table (noSanitizers: the Neon Pool).
  ...noSanitizers,
  async fn(t) {
    await using db = await startTestDatabase();
    await using stack = await useTestStack();
    const payload = AnalyticsMaintenancePayload.parse({});
    const base = stack.makeDeps();
    const queue = createQueue(base.redis, TASK_CATALOG, {
      namespace: testNamespace("ar"),
    });
    const analytics = {
      retentionMs: 90 * DAY,
      rollupRetentionMs: 95 * DAY,
      retentionBatchSize: 10,
      retentionMaxBatches: 3,
    };
    const setup = async () => {
      const deps = { ...base, sql: await migratedDatabase(db), now: () => NOW };
      await insertEvents(
        deps.sql,
        randomEvents(prng(21), {
          count: 2000,
          start: NOW - 100 * DAY,
          hours: 100 * 24,
          leads: leadIds(20),
          types: ["email_sent", "status_changed"],
        }),
      );
      const ctx = (taskId: string = crypto.randomUUID()): TaskContext => taskContext(deps, taskId);
      const count = async (where: string) =>
        (await deps.sql.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM lead_events WHERE ${where}`,
          [new Date(CUTOFF).toISOString()],
        )).rows[0]!.n;
      return { deps, ctx, count };
    };

    try {
      await t.step("a task that stops at its batch limit enqueues one continuation", async () => {
        const { ctx, count } = await setup();
        const old = await count("time < $1");
        assert.ok(old > 3 * 30, `${old} old events: more than one task's share`);
        const apply = applyRetentionHandler({ queue, analytics });
        const taskId = crypto.randomUUID();
        const first = await apply(payload, ctx(taskId));
        assert.deepEqual(
          [first.mode, first.deletedEvents, first.batches, first.done],
          ["delete", 30, 3, false],
        );
        assert.equal(first.retainedFrom, new Date(CUTOFF).toISOString());
        const next = await queue.getTask(first.continuation_task_id!);
        assert.equal(next?.type, "apply_retention");
        assert.deepEqual(next?.payload, {});
        assert.equal(next?.idempotencyKey, continuationKey(taskId));
        assert.equal(next?.priority, "low");

        // The same task delivered again (crash before its ack): it deletes the next
        // share, but enqueues the same continuation, not a second one.
        const again = await apply(payload, ctx(taskId));
        assert.equal(again.continuation_task_id, first.continuation_task_id);

        // The chain: each link under its own task id, until nothing old is left.
        let link = again;
        let linkId = first.continuation_task_id!;
        const ids = new Set([linkId]);
        while (!link.done) {
          link = await apply(payload, ctx(linkId));
          if (link.continuation_task_id) {
            linkId = link.continuation_task_id;
            assert.ok(!ids.has(linkId), "every link enqueues a new task");
            ids.add(linkId);
          }
        }
        assert.equal(link.continuation_task_id, null);
        assert.equal(ids.size, Math.ceil((old - 60) / 30), `${ids.size} continuations`);
        assert.equal(await count("time < $1"), 0);
      });

      await t.step("rollups are trimmed at their own cutoff and still match", async () => {
        const { deps, ctx, count } = await setup();
        const apply = applyRetentionHandler({
          queue,
          analytics: { ...analytics, retentionBatchSize: 10_000, retentionMaxBatches: 100 },
        });
        const kept = await count("time >= $1");
        const r = await apply(payload, ctx());
        assert.deepEqual([r.done, r.continuation_task_id], [true, null]);
        assert.equal(r.rollupCutoff, "2031-02-26T00:00:00.000Z");
        assert.ok(r.deletedRollupRows > 0);
        assert.equal(await count("time < $1"), 0);
        assert.equal(await count("time >= $1"), kept);
        // Raw events before CUTOFF are gone, but their rollups are kept until the rollup cutoff.
        const hourly = await rollupTable(deps.sql, "1h");
        assert.ok(hourly.every((row) => Date.parse(row.bucket) >= Date.parse(r.rollupCutoff!)));
        assert.ok(hourly.some((row) => Date.parse(row.bucket) < CUTOFF));
        const live = await directMetrics(deps.sql, allEvents("1h"));
        assert.deepEqual(hourly.filter((row) => Date.parse(row.bucket) >= CUTOFF), live);

        // Running it again is harmless: nothing left to delete, nothing to enqueue.
        const again = await apply(payload, ctx());
        assert.deepEqual(
          [again.deletedEvents, again.deletedRollupRows, again.done, again.continuation_task_id],
          [0, 0, true, null],
        );
      });
    } finally {
      await dropNamespace(queue);
    }
  },
});
