import assert from "node:assert/strict";
import { startTestDatabase } from "../../testing/database.ts";
import { useTestStack } from "../../testing/stack.ts";
import {
  DAY,
  insertEvents,
  leadIds,
  migratedDatabase,
  prng,
  randomEvents,
} from "../../testing/analytics.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { createBreakerRegistry } from "../../shared/breakers/registry.ts";
import { parseConfig } from "../../shared/config/mod.ts";
import { emailProviderFromConfig } from "../../shared/email/from_config.ts";
import { platformCatalog } from "../../shared/queue/from_config.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { Scheduler } from "../../shared/schedules/scheduler.ts";
import { dropNamespace, waitForTasks } from "../../testing/queue.ts";
import { Runner } from "../runner.ts";
import { createHandlers } from "./registry.ts";
import { testNamespace } from "../../testing/namespace.ts";

const NOW = Date.parse("2031-06-01T12:34:00Z");

Deno.test({
  name:
    "the default schedules enqueue refresh_lead_metrics, apply_retention and retrain_lead_model and a worker runs them",
  // A private database (retention deletes across the whole table); the Neon
  // Pool and the runner's subscription end asynchronously: sanitizers off.
  ...noSanitizers,
  async fn() {
    await using db = await startTestDatabase();
    await using stack = await useTestStack();
    // The production defaults: SCHEDULES unset, analytics windows unset.
    // (stack.env() disables retention for child workers; this test runs it in a private database.)
    const config = parseConfig({ ...stack.env(), APP_ENV: "test", SCHEDULES: "{}" });
    const base = stack.makeDeps();
    const deps = { ...base, config, sql: await migratedDatabase(db), now: () => NOW };
    const namespace = testNamespace("rg");
    const queue = createQueue(deps.redis, platformCatalog(config), {
      ...config.queue,
      namespace,
    });
    const breakers = createBreakerRegistry({ redis: deps.redis, namespace, now: deps.now });
    await breakers.start();
    const runner = new Runner({
      queue,
      deps,
      breakers,
      handlers: createHandlers({
        config,
        queue,
        breakers,
        email: emailProviderFromConfig(config.email),
      }),
      pollMs: 100,
    });
    try {
      await insertEvents(
        deps.sql,
        randomEvents(prng(31), {
          count: 1000,
          start: NOW - 100 * DAY,
          hours: 100 * 24,
          leads: leadIds(10),
          types: ["email_sent", "status_changed"],
        }),
      );
      const { rows } = await deps.sql.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM lead_events WHERE time < $1",
        ["2031-03-03T00:00:00Z"],
      );
      const old = rows[0]!.n;
      assert.ok(old > 0);

      const scheduler = new Scheduler({
        queue,
        schedules: config.schedules,
        log: deps.log,
        now: deps.now,
      });
      assert.deepEqual(scheduler.invalid, [], "every default schedule can run");
      assert.deepEqual(scheduler.schedules, [
        "refresh_lead_metrics",
        "apply_retention",
        "retrain_lead_model",
      ]);
      const outcomes = await scheduler.tick();
      assert.deepEqual(outcomes.map((o) => [o.schedule, o.enqueued]), [
        ["refresh_lead_metrics", true],
        ["apply_retention", true],
        ["retrain_lead_model", true],
      ]);

      runner.start();
      const ids = outcomes.map((o) => o.taskId);
      const infos = await waitForTasks(
        queue,
        ids,
        (t) => t.status === "succeeded" || t.status === "dead",
        { timeoutMs: 15_000, everyMs: 50 },
      );
      assert.deepEqual(infos.map((t) => t?.status), ["succeeded", "succeeded", "succeeded"]);
      const [refresh, retention, training] = infos.map((t) => t!.result as Record<string, unknown>);
      // No labelled leads in this database: each population's run is recorded as refused.
      const runs = training!.runs as { population: string; status: string; reason: string }[];
      assert.deepEqual(runs.map((r) => [r.population, r.status]), [
        ["pre_reply", "rejected"],
        ["replied", "rejected"],
      ]);
      for (const run of runs) assert.match(run.reason, /^refused: 0 labelled leads/);
      assert.equal(refresh!.tier, 3);
      // The first refresh rebuilds everything, unless retention's own refresh held the watermark.
      assert.ok(refresh!.full === true || refresh!.skipped === true, JSON.stringify(refresh));
      assert.equal(retention!.mode, "delete");
      assert.equal(retention!.deletedEvents, old);
      assert.equal(retention!.retainedFrom, "2031-03-03T00:00:00.000Z");
      assert.equal(retention!.continuation_task_id, null);
    } finally {
      await runner.stop();
      await breakers.stop();
      await dropNamespace(queue);
    }
  },
});
