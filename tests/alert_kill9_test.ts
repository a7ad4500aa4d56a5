/**
 * The alert webhook across a worker kill -9 (docs/observability.md, Alert
 * webhook): DLQ arrivals made while no worker or edge runs are queued as
 * `deliver_alert` tasks by the dead-lettering script itself; a real worker
 * delivers them to a loopback receiver and is SIGKILLed while the receiver
 * holds one call; a second worker delivers the rest. Every event reaches the
 * receiver; the only event it sees twice is the one in flight at the kill,
 * and its second call carries the same Idempotency-Key.
 */
import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { startAlertReceiver } from "../testing/alerts.ts";
import { parseConfig } from "../shared/config/mod.ts";
import { createRedis } from "../shared/deps.ts";
import { claim } from "../shared/queue/leases.ts";
import { queueFromConfig } from "../shared/queue/from_config.ts";
import { alertKeys } from "../shared/redis/keys.ts";
import { AppProcess, privateRedis } from "../testing/process.ts";
import { waitUntil } from "../testing/wait.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

const EVENTS = 12;
/** Calls the receiver accepts before it holds one (the worker is killed then). */
const ACCEPTED_BEFORE_KILL = 5;

Deno.test({
  name: "alerts made with no process running are delivered once per event across a worker kill -9",
  // The stack's deps hold a Neon Pool (async socket teardown).
  ...noSanitizers,
  async fn() {
    await using stack = await useTestStack();
    const redis = await privateRedis();
    let release = () => {};
    const held = new Promise<void>((r) => release = r);
    // Call ACCEPTED_BEFORE_KILL + 1 is held until the first worker is dead.
    await using receiver = startAlertReceiver(async (n) => {
      if (n === ACCEPTED_BEFORE_KILL + 1) await held;
      return 200;
    });
    const workers: AppProcess[] = [];
    try {
      const env = {
        ...stack.env(),
        ...redis.env,
        APP_ENV: "test",
        LOG_LEVEL: "info",
        WORKER_CONCURRENCY: "1",
        WORKER_LEASE_MS: "2000",
        WORKER_POLL_MS: "100",
        WORKER_SHUTDOWN_GRACE_MS: "2000",
        ALERT_WEBHOOK_URL: receiver.url,
        ALERT_WEBHOOK_FORMAT: "alertmanager",
        SCHEDULES: JSON.stringify({
          refresh_lead_metrics: { enabled: false },
          apply_retention: { enabled: false },
          retrain_lead_model: { enabled: false },
        }),
      };
      const config = parseConfig(env);
      const queueRedis = createRedis(config.redis);
      const queue = queueFromConfig(queueRedis, config);
      assert.equal(queue.settings.deadLetterAlerts, true);

      // EVENTS tasks of one attempt, claimed and abandoned (lease 1 ms): the
      // next claim's housekeeping dead-letters them, queuing their alerts.
      const dead = await queue.enqueueMany(
        Array.from({ length: EVENTS }, (_, n) => ({
          type: "noop",
          payload: { echo: `k9-${n}` },
          options: { maxAttempts: 1 },
        })),
      );
      const claimed = await claim(queue.ctx, { max: EVENTS, leaseMs: 1, workerId: "abandoned" });
      assert.equal(claimed.tasks.length, EVENTS);
      await waitUntil(async () => {
        await claim(queue.ctx, { max: 0, leaseMs: 1, workerId: "housekeeping" });
        return Number((await queue.stats()).dead ?? 0) === EVENTS;
      }, { timeoutMs: 20_000, what: "every abandoned task to be dead-lettered" });
      // Queued by the script, with nobody running: one deliver_alert per arrival.
      assert.equal(Number((await queue.stats()).enqueued), 2 * EVENTS);

      try {
        const first = new AppProcess("workers/main.ts", env);
        workers.push(first);
        await first.waitForLog("worker ready", 30_000);
        await receiver.waitForCalls(ACCEPTED_BEFORE_KILL + 1);
        const keys = alertKeys();
        // The accepted calls are marked delivered before the kill.
        await waitUntil(async () => {
          const marks = await Promise.all(
            receiver.calls.slice(0, ACCEPTED_BEFORE_KILL).map((c) =>
              queueRedis.exists(keys.delivered(c.idempotencyKey!))
            ),
          );
          return marks.every((m) => m === 1);
        }, { timeoutMs: 20_000, what: "the accepted calls to be marked delivered" });
        const killed = await first.stop("SIGKILL");
        assert.equal(killed.status.signal, "SIGKILL");
        release();

        const second = new AppProcess("workers/main.ts", env);
        workers.push(second);
        await waitUntil(
          async () => Number((await queue.stats()).succeeded ?? 0) === EVENTS,
          {
            timeoutMs: 60_000,
            what: "every alert to be delivered by the second worker",
            detail: async () => JSON.stringify(await queue.stats()),
          },
        );
        const stopped = await second.stop("SIGTERM");
        assert.equal(stopped.status.code, 0, stopped.stderr);

        const expected = new Set(
          await Promise.all(dead.map(async (d) => {
            const t = await queue.getTask(d.id);
            return `dlq:${d.id}:${t!.failedAt}`;
          })),
        );
        const seen = receiver.calls.map((c) => c.idempotencyKey!);
        assert.deepEqual(new Set(seen), expected);
        // Once per event, except the call in flight at the kill: sent again
        // with the same key (the receiver recognises it).
        const inFlight = seen[ACCEPTED_BEFORE_KILL]!;
        assert.equal(seen.length, EVENTS + 1);
        assert.deepEqual(seen.filter((k) => k === inFlight).length, 2);
        for (const key of expected) {
          if (key !== inFlight) assert.equal(seen.filter((k) => k === key).length, 1, key);
          assert.equal(await queueRedis.exists(keys.delivered(key)), 1, key);
        }
      } finally {
        release();
      }
    } finally {
      await Promise.all(workers.map((w) => w.kill()));
      await redis.close();
    }
  },
});
