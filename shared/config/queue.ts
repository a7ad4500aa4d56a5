/**
 * The queue area: task retention and limits, the workers, and the recurring
 * tasks (shared/queue/, workers/, shared/schedules/).
 *
 * @module
 */
import { z } from "zod";
import { parseSchedules } from "../schedules/schedule.ts";
import { liveFeed } from "./live_feed.ts";
import { observability } from "./observability.ts";
import { bool, defineArea, positiveInt } from "./spec.ts";

// Checked against the task catalog by the scheduler, which logs and skips what cannot run.
const schedulesJson = z.string().transform((text, ctx) => {
  const parsed = parseSchedules(text);
  if ("problems" in parsed) {
    ctx.addIssue({ code: "custom", message: parsed.problems.join("; ") });
    return z.NEVER;
  }
  return parsed.schedules;
});

/** Queue, workers and schedules; the task feed reuses the live feed's history limits. */
export const queue = defineArea(
  "Queue and workers",
  {
    QUEUE_IDEMPOTENCY_WINDOW_MS: {
      description: "A repeated enqueue idempotency key within this window returns the first task",
      default: "3600000",
      schema: positiveInt,
    },
    QUEUE_MAX_PAYLOAD_BYTES: {
      description: "Largest serialised task payload accepted at enqueue",
      default: "262144",
      schema: positiveInt,
    },
    QUEUE_KEEP_FINISHED_MS: {
      description: "How long succeeded tasks stay readable before they expire",
      default: "86400000",
      schema: positiveInt,
    },
    QUEUE_DLQ_RETENTION_MS: {
      description: "How long dead-lettered tasks are kept",
      default: "604800000",
      schema: positiveInt,
    },
    QUEUE_DLQ_CAP: {
      description: "Dead-letter cap; beyond it the oldest entries are evicted with an alert",
      default: "10000",
      schema: positiveInt,
    },
    QUEUE_TASK_EVENTS: {
      description:
        "Publish every task status change on the live feed's `tasks` topic, in the queue's own scripts (its cost is in docs/benchmarks.md; `false` turns it off)",
      default: "true",
      schema: bool,
    },
    WORKER_CONCURRENCY: {
      description: "Tasks one worker process runs at once",
      default: "10",
      schema: positiveInt,
    },
    WORKER_LEASE_MS: {
      description: "Task lease (visibility timeout); renewed by heartbeat while a task runs",
      default: "30000",
      schema: positiveInt,
    },
    WORKER_POLL_MS: {
      description: "Safety-net poll interval of an idle worker (pub/sub wakes it sooner)",
      default: "1000",
      schema: positiveInt,
    },
    WORKER_SHUTDOWN_GRACE_MS: {
      description: "On SIGTERM, how long in-flight tasks may finish before they are released",
      default: "25000",
      schema: positiveInt,
    },
    SCHEDULES: {
      description:
        'Recurring tasks as JSON, merged per name over the defaults in shared/schedules/schedule.ts (`refresh_lead_metrics` every 60 s, `apply_retention` daily at 03:00 UTC, `retrain_lead_model` weekly on Sundays at 04:00 UTC), e.g. `{"apply_retention":{"enabled":false},"ping":{"task_type":"noop","every_ms":300000}}`; fields task_type, payload, every_ms, offset_ms (slots are aligned to the epoch), enabled',
      default: "{}",
      schema: schedulesJson,
    },
  },
  [liveFeed, observability],
  (v) => ({
    queue: {
      idempotencyWindowMs: v.QUEUE_IDEMPOTENCY_WINDOW_MS,
      maxPayloadBytes: v.QUEUE_MAX_PAYLOAD_BYTES,
      keepFinishedMs: v.QUEUE_KEEP_FINISHED_MS,
      dlqRetentionMs: v.QUEUE_DLQ_RETENTION_MS,
      dlqCap: v.QUEUE_DLQ_CAP,
      /** Dead-lettered tasks queue an alert (on when the alert webhook is set). */
      deadLetterAlerts: v.ALERT_WEBHOOK_URL !== undefined,
      /** Task status changes on the live feed (see shared/queue/queue.ts). */
      taskFeed: v.QUEUE_TASK_EVENTS
        ? {
          origin: "queue",
          historyMaxLen: v.WS_HISTORY_MAX_LEN,
          historyMaxAgeMs: v.WS_HISTORY_MAX_AGE_MS,
        }
        : null,
    },
    worker: {
      concurrency: v.WORKER_CONCURRENCY,
      leaseMs: v.WORKER_LEASE_MS,
      pollMs: v.WORKER_POLL_MS,
      shutdownGraceMs: v.WORKER_SHUTDOWN_GRACE_MS,
    },
    /** Recurring tasks (shared/schedules/); every worker runs the scheduler. */
    schedules: v.SCHEDULES,
  }),
);
