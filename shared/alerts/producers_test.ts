import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import type { BreakerTransition } from "../breakers/types.ts";
import { createLogger } from "../log.ts";
import { testQueue } from "../../testing/queue.ts";
import { createModelNotifier } from "../scoring/notify.ts";
import { alertOnBreakerOpen, breakerOpenEvent, deploymentAlertSender } from "./producers.ts";
import { ALERT_TEST_CATALOG } from "../../testing/alerts.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { waitUntil } from "../../testing/wait.ts";

// The stack's deps hold a Neon Pool (async socket teardown).
const opts = noSanitizers;

const opened: BreakerTransition = {
  name: "email",
  from: "closed",
  to: "open",
  epoch: 4,
  at: 1_765_000_000_000,
  reason: "consecutive_failures",
  source: "redis",
  by: "worker-1",
};

Deno.test("a breaker opening is one event per shared epoch; re-openings and local ones are not", () => {
  assert.deepEqual(breakerOpenEvent(opened), {
    event_id: "breaker:email:open:4",
    alert: "BreakerOpened",
    severity: "page",
    summary: "Circuit breaker email opened",
    description: "From closed; reason: consecutive_failures",
    labels: { breaker: "email", to: "open", reason: "consecutive_failures" },
    at_ms: opened.at,
  });
  assert.equal(breakerOpenEvent({ ...opened, to: "forced_open" })?.severity, "ticket");
  assert.equal(breakerOpenEvent({ ...opened, from: "half_open" }), null);
  assert.equal(breakerOpenEvent({ ...opened, source: "local" }), null);
  assert.equal(breakerOpenEvent({ ...opened, from: "open", to: "half_open" }), null);
  assert.equal(breakerOpenEvent({ ...opened, from: "open", to: "closed" }), null);
});

Deno.test({
  name: "every instance observing the same opening queues it, and the queue keeps one task",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const q = testQueue(deps.redis, {}, ALERT_TEST_CATALOG);
    const log = createLogger({ level: "error" });
    const instances = [new EventTarget(), new EventTarget()];
    const stops = instances.map((events) => alertOnBreakerOpen({ events }, q, log));
    try {
      for (const events of instances) {
        events.dispatchEvent(new CustomEvent("transition", { detail: opened }));
        events.dispatchEvent(
          new CustomEvent("transition", { detail: { ...opened, to: "closed" } }),
        );
      }
      const idem = q.ctx.keys.idempotency("alert:breaker:email:open:4");
      await waitUntil(async () => (await q.stats()).enqueued === 1, {
        timeoutMs: 20_000,
        everyMs: 20,
        what: "one deliver_alert task",
      });
      const id = await deps.redis.get<string>(idem);
      const task = await q.getTask(String(id));
      assert.equal(task?.type, "deliver_alert");
      assert.deepEqual(task?.payload, breakerOpenEvent(opened));
      assert.equal((await q.stats()).enqueued, 1);
    } finally {
      for (const stop of stops) stop();
    }
  },
});

Deno.test({
  name: "deployments reach the alert webhook's queue through the notifier; rescoring does not",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const q = testQueue(deps.redis, {}, ALERT_TEST_CATALOG);
    const notify = createModelNotifier({
      log: createLogger({ level: "error" }),
      sendDeploymentAlert: deploymentAlertSender(q, () => 1_765_000_000_000),
    });
    await notify({
      type: "model.activated",
      version: 7,
      population: "pre_reply",
      previous: 6,
      actor: "u-admin",
    });
    await notify({
      type: "model.trained",
      version: 8,
      population: "replied",
      status: "rejected",
      reason: "gate",
      roc_auc: 0.5,
    });
    await notify({ type: "model.rescored", version: 7, rows: 10 });
    const ids = await Promise.all(
      ["model:model.activated:7:1765000000000", "model:trained:8"].map((e) =>
        deps.redis.get<string>(q.ctx.keys.idempotency(`alert:${e}`))
      ),
    );
    const [activated, trained] = await Promise.all(ids.map((id) => q.getTask(String(id))));
    assert.deepEqual(activated?.payload, {
      event_id: "model:model.activated:7:1765000000000",
      alert: "ModelActivated",
      severity: "info",
      summary: "Lead-scoring model activated version 7 (pre_reply leads)",
      description: "Previous champion: 6; by u-admin",
      labels: { version: "7", population: "pre_reply", previous: "6" },
      at_ms: 1_765_000_000_000,
    });
    assert.equal((trained?.payload as { severity: string }).severity, "ticket");
    assert.equal((await q.stats()).enqueued, 2);
  },
});
