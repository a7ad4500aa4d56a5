import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { enqueueAlert } from "../../shared/alerts/producers.ts";
import { ALERT_TEST_CATALOG, startAlertReceiver } from "../../testing/alerts.ts";
import type { AlertEvent } from "../../shared/alerts/body.ts";
import type { Config } from "../../shared/config/mod.ts";
import type { Deps } from "../../shared/deps.ts";
import { renderMetrics } from "../../shared/metrics/metrics.ts";
import { PermanentTaskError } from "../../shared/queue/errors.ts";
import type { TaskInfo, TaskQueue } from "../../shared/queue/queue.ts";
import { testQueue, waitForTasks } from "../../testing/queue.ts";
import { Runner } from "../runner.ts";
import { deliverAlertHandler } from "./deliver_alert.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool and the runner a subscription (see runner_test.ts).
const opts = noSanitizers;

type Alerts = Config["alerts"];

function alertsConfig(url: string, more: Partial<Alerts> = {}) {
  const alerts: Alerts = {
    webhookUrl: url,
    format: "alertmanager",
    authorization: null,
    timeoutMs: 10_000,
    ...more,
  };
  return () => ({ env: "test" as const, publicBaseUrl: "http://127.0.0.1:1", alerts });
}

function startRunner(deps: Deps, q: TaskQueue, config: ReturnType<typeof alertsConfig>) {
  const runner = new Runner({
    queue: q,
    deps,
    pollMs: 100,
    handlers: {
      echo: () => {
        throw new PermanentTaskError("bad input");
      },
      deliver_alert: deliverAlertHandler({ config, namespace: q.settings.namespace }),
    },
  });
  runner.start();
  return runner;
}

async function settled(q: TaskQueue, id: string): Promise<TaskInfo> {
  const [t] = await waitForTasks(q, [id], (t) => t.status === "succeeded" || t.status === "dead", {
    timeoutMs: 60_000,
    everyMs: 25,
    what: `task ${id} to settle`,
  });
  return t!;
}

const event = (id: string): AlertEvent => ({
  event_id: id,
  alert: "BreakerOpened",
  severity: "page",
  summary: "Circuit breaker email opened",
  labels: { breaker: "email" },
  at_ms: 1_765_000_000_000,
});

Deno.test({
  name: "a dead-lettered task queues its alert in the same step; delivered once per event",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    await using receiver = startAlertReceiver();
    const q = testQueue(deps.redis, { deadLetterAlerts: true }, ALERT_TEST_CATALOG);
    // Queued by the script that dead-letters, before any worker runs deliver_alert.
    const dead = await q.enqueue("echo", { n: 1 });
    const runner = startRunner(
      deps,
      q,
      alertsConfig(receiver.url, { authorization: "Bearer t0k" }),
    );
    try {
      const [call] = await receiver.waitForCalls(1);
      const info = await settled(q, dead.id);
      assert.equal(info.status, "dead");
      assert.equal(call!.idempotencyKey, `dlq:${dead.id}:${info.failedAt}`);
      assert.equal(call!.authorization, "Bearer t0k");
      assert.equal(call!.contentType, "application/json");
      assert.equal(call!.body.version, "4");
      const [alert] = call!.body.alerts as { labels: Record<string, string> }[];
      assert.deepEqual(alert!.labels, {
        alertname: "TaskDeadLettered",
        severity: "ticket",
        task_type: "echo",
        task_id: dead.id,
      });
      const alertId = await deps.redis.get<string>(
        q.ctx.keys.idempotency(`alert:${call!.idempotencyKey}`),
      );
      assert.match(String(alertId), /^[0-9a-f-]{36}$/);
      const delivered = await settled(q, String(alertId));
      assert.equal(delivered.type, "deliver_alert");
      assert.deepEqual(delivered.result, { status: "delivered", http_status: 200 });

      // Another task of the same event (a replay) finds it delivered and calls nobody.
      const payload = delivered.payload as AlertEvent;
      const again = await q.enqueue("deliver_alert", payload, { idempotencyKey: "replay-1" });
      assert.deepEqual((await settled(q, again.id)).result, { status: "already_delivered" });
      assert.equal(receiver.calls.length, 1);
      const text = await renderMetrics(deps.metrics);
      assert.match(text, /alert_deliveries_total\{outcome="delivered"\} 1\n/);
      assert.match(text, /alert_deliveries_total\{outcome="already_delivered"\} 1\n/);
    } finally {
      await runner.stop();
    }
  },
});

Deno.test({
  name: "a 5xx receiver is retried until it accepts, with the same idempotency key each time",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    await using receiver = startAlertReceiver((n) => n <= 2 ? 503 : 202);
    const q = testQueue(deps.redis, {}, ALERT_TEST_CATALOG);
    const runner = startRunner(deps, q, alertsConfig(receiver.url, { format: "generic" }));
    try {
      const { id } = await enqueueAlert(q, event("breaker:email:open:7"));
      // The same event again is the same task.
      assert.equal((await enqueueAlert(q, event("breaker:email:open:7"))).id, id);
      const info = await settled(q, id);
      assert.equal(info.status, "succeeded");
      assert.equal(info.attempts, 3);
      assert.equal(receiver.calls.length, 3);
      assert.deepEqual(
        receiver.calls.map((c) => c.idempotencyKey),
        Array(3).fill("breaker:email:open:7"),
      );
      assert.deepEqual(receiver.calls[2]!.body, {
        id: "breaker:email:open:7",
        alert: "BreakerOpened",
        severity: "page",
        summary: "Circuit breaker email opened",
        labels: { breaker: "email" },
        at: new Date(1_765_000_000_000).toISOString(),
      });
      const text = await renderMetrics(deps.metrics);
      assert.match(text, /alert_deliveries_total\{outcome="failed"\} 2\n/);
      assert.match(text, /alert_deliveries_total\{outcome="delivered"\} 1\n/);
    } finally {
      await runner.stop();
    }
  },
});

Deno.test({
  name: "redirects are not followed, and a dead alert raises no alert of its own",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    await using receiver = startAlertReceiver((_, path) =>
      path === "/hook"
        ? new Response(null, { status: 302, headers: { location: "/elsewhere" } })
        : 200
    );
    const q = testQueue(deps.redis, { deadLetterAlerts: true }, ALERT_TEST_CATALOG);
    const runner = startRunner(deps, q, alertsConfig(receiver.url));
    try {
      const { id } = await enqueueAlert(q, event("breaker:email:open:8"));
      const info = await settled(q, id);
      assert.equal(info.status, "dead");
      assert.equal(info.attempts, 1);
      assert.match(String(info.dlqReason), /302 \(redirects are not followed\)/);
      assert.deepEqual(receiver.calls.map((c) => c.path), ["/hook"]);
      const stats = await q.stats();
      assert.equal(stats.enqueued, 1);
      assert.match(
        await renderMetrics(deps.metrics),
        /alert_deliveries_total\{outcome="rejected"\} 1\n/,
      );
    } finally {
      await runner.stop();
    }
  },
});

Deno.test({
  name: "a metadata-address webhook is refused before any call, without the URL in the error",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const q = testQueue(deps.redis, {}, ALERT_TEST_CATALOG);
    const runner = startRunner(
      deps,
      q,
      alertsConfig("http://user:s3cret@169.254.169.254/latest/meta-data/"),
    );
    try {
      const { id } = await enqueueAlert(q, event("breaker:email:open:9"));
      const info = await settled(q, id);
      assert.equal(info.status, "dead");
      assert.equal(info.attempts, 1);
      assert.match(String(info.lastError), /refused: .*linkLocal address/);
      assert.doesNotMatch(`${info.lastError} ${info.dlqReason}`, /169\.254|s3cret|meta-data/);
      assert.match(
        await renderMetrics(deps.metrics),
        /alert_deliveries_total\{outcome="refused"\} 1\n/,
      );
    } finally {
      await runner.stop();
    }
  },
});
