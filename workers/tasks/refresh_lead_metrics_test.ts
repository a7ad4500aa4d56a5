import assert from "node:assert/strict";
import { startTestDatabase } from "../../testing/database.ts";
import { useTestStack } from "../../testing/stack.ts";
import {
  allEvents,
  DAY,
  directMetrics,
  HOUR,
  insertEvents,
  leadIds,
  migratedDatabase,
  prng,
  randomEvents,
  rollupTable,
} from "../../testing/analytics.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { recordLeadEvents } from "../../shared/leads/events.ts";
import { createMetrics, renderMetrics } from "../../shared/metrics/metrics.ts";
import { AnalyticsMaintenancePayload } from "../../shared/tasks/catalog.ts";
import type { TaskContext } from "../runner.ts";
import { refreshLeadMetricsHandler } from "./refresh_lead_metrics.ts";
import { taskContext } from "../../testing/tasks.ts";

const NOW = Date.parse("2031-06-01T12:34:00Z");

Deno.test({
  name: "refresh_lead_metrics keeps the rollups equal to a GROUP BY over raw events",
  // A private database: a refresh recomputes whole tables (noSanitizers: the Neon Pool).
  ...noSanitizers,
  async fn(t) {
    await using db = await startTestDatabase();
    await using stack = await useTestStack();
    const refresh = refreshLeadMetricsHandler({ lateWindowMs: 7 * DAY });
    const payload = AnalyticsMaintenancePayload.parse({});
    const contextOn = async () => {
      const deps = {
        ...stack.makeDeps(),
        sql: await migratedDatabase(db),
        now: () => NOW,
        // Scrapes happen 90 s after the task's clock: the lag gauge reads 90.
        metrics: createMetrics({ now: () => NOW + 90_000 }),
      };
      return (taskId = crypto.randomUUID()): TaskContext => taskContext(deps, taskId);
    };
    const leads = leadIds(15);
    const events = (seed: number, count: number) =>
      randomEvents(prng(seed), {
        count,
        start: NOW - 3 * DAY,
        hours: 72,
        leads,
        types: ["email_sent", "status_changed", "email_replied"],
      });
    const matches = async (ctx: TaskContext) => {
      for (const bucket of ["1h", "1d"] as const) {
        assert.deepEqual(
          await rollupTable(ctx.deps.sql, bucket),
          await directMetrics(ctx.deps.sql, allEvents(bucket)),
          `${bucket} rollup`,
        );
      }
    };

    await t.step("the first run rebuilds everything; a second run changes nothing", async () => {
      const ctx = await contextOn();
      await insertEvents(ctx().deps.sql, events(11, 800));
      const lag = async () =>
        (await renderMetrics(ctx().deps.metrics)).split("\n").filter((l) =>
          l.startsWith("lead_metrics_refresh_lag_seconds{")
        );
      assert.deepEqual(await lag(), [], "no lag series before this process refreshed");
      const first = await refresh(payload, ctx());
      assert.deepEqual(await lag(), [
        'lead_metrics_refresh_lag_seconds{rollup="lead_metrics_hourly"} 90',
        'lead_metrics_refresh_lag_seconds{rollup="lead_metrics_daily"} 90',
      ]);
      assert.equal(first.tier, 3);
      assert.equal(first.full, true);
      assert.equal(first.skipped, false);
      assert.ok(first.upserted > 0 && first.hours > 0 && first.days > 0, JSON.stringify(first));
      await matches(ctx());
      // The same slot's task delivered again (crash before the ack), then the next slot.
      for (const taskId of [crypto.randomUUID(), crypto.randomUUID()]) {
        const again = await refresh(payload, ctx(taskId));
        assert.deepEqual(
          [again.full, again.skipped, again.hours, again.days, again.upserted, again.deleted],
          [false, false, 0, 0, 0, 0],
        );
      }
      await matches(ctx());
      // The result is what the queue stores: plain JSON.
      assert.deepEqual(JSON.parse(JSON.stringify(first)), first);
    });

    await t.step("a late event recomputes only its own hour and day", async () => {
      const ctx = await contextOn();
      await insertEvents(ctx().deps.sql, events(12, 500));
      await refresh(payload, ctx());
      await recordLeadEvents(ctx().deps.sql, [{
        lead_id: leads[0]!,
        event_type: "email_sent",
        source: "test",
        time: new Date(NOW - 2 * DAY - 5 * HOUR),
      }]);
      const r = await refresh(payload, ctx());
      assert.deepEqual([r.full, r.hours, r.days], [false, 1, 1]);
      assert.equal(r.upserted, 2, "one hourly and one daily row changed");
      await matches(ctx());
    });

    await t.step("two workers refreshing at once leave the same tables", async () => {
      const ctx = await contextOn();
      await insertEvents(ctx().deps.sql, events(13, 600));
      await refresh(payload, ctx());
      await insertEvents(ctx().deps.sql, events(14, 300));
      const [a, b] = await Promise.all([refresh(payload, ctx()), refresh(payload, ctx())]);
      // Either the second found the watermark locked (skipped) or it ran after the first.
      assert.ok(a.skipped || b.skipped || a.hours === 0 || b.hours === 0, JSON.stringify([a, b]));
      await matches(ctx());
    });
  },
});
