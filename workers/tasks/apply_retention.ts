/**
 * `apply_retention`: removes lead events and rollup buckets past their
 * retention (shared/analytics/retention.ts), daily at 03:00 UTC by default
 * schedule. Windows and batch sizes come from configuration
 * (`ANALYTICS_RETENTION_DAYS`, `ANALYTICS_ROLLUP_RETENTION_DAYS`,
 * `ANALYTICS_RETENTION_BATCH`, `ANALYTICS_RETENTION_MAX_BATCHES`).
 *
 * - Idempotent: a second run finds nothing older than the cutoff (the data
 *   layer deletes by time, refreshes the rollups before freezing them, and
 *   only moves `retained_from` forward).
 * - Bounded: on plain Postgres one task deletes at most batch × max batches
 *   rows. When rows remain (`done: false`) it enqueues its continuation with
 *   the key `apply_retention:after:<task id>`, so a redelivery of this task
 *   enqueues the same continuation, not a second one; each link deletes at
 *   least one batch, so the chain ends. Waiting for the next daily slot
 *   instead would let a backlog larger than one task's share grow by a day's
 *   worth of events every day.
 *
 * It also expires the Idempotency-Keys the database recorded for lead
 * writes (sql/migrations/006) after {@linkcode WRITE_KEY_RETENTION_MS}.
 *
 * @module
 */
import type { z } from "zod";
import { expireWriteKeys, WRITE_KEY_RETENTION_MS } from "../../shared/leads/idempotent_write.ts";
import { applyRetention, type RetentionResult } from "../../shared/analytics/retention.ts";
import type { Config } from "../../shared/config/mod.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import type { AnalyticsMaintenancePayload } from "../../shared/tasks/catalog.ts";
import type { TaskContext } from "../runner.ts";

/** What apply_retention needs besides the task context. */
export interface ApplyRetentionServices {
  /** Enqueues the continuation when old rows remain. */
  queue: Pick<TaskQueue, "enqueue">;
  analytics: Pick<
    Config["analytics"],
    "retentionMs" | "rollupRetentionMs" | "retentionBatchSize" | "retentionMaxBatches"
  >;
}

/** The task result: the retention summary and the continuation, if one was needed. */
export interface ApplyRetentionResult extends RetentionResult {
  /** The task that goes on deleting (when `done` is false), else null. */
  continuation_task_id: string | null;
  /** Idempotency-Keys of lead writes removed (older than WRITE_KEY_RETENTION_MS). */
  expired_write_keys: number;
}

/** The idempotency key of the task that continues `taskId`'s deletion. */
export function continuationKey(taskId: string): string {
  return `apply_retention:after:${taskId}`;
}

/** Builds the handler. */
export function applyRetentionHandler(s: ApplyRetentionServices) {
  return async function applyRetentionTask(
    _p: z.output<typeof AnalyticsMaintenancePayload>,
    ctx: TaskContext,
  ): Promise<ApplyRetentionResult> {
    const result = await applyRetention(ctx.deps.sql, {
      now: ctx.deps.now(),
      olderThanMs: s.analytics.retentionMs,
      rollupOlderThanMs: s.analytics.rollupRetentionMs,
      batchSize: s.analytics.retentionBatchSize,
      maxBatches: s.analytics.retentionMaxBatches,
    });
    const expiredWriteKeys = await expireWriteKeys(
      ctx.deps.sql,
      new Date(ctx.deps.now() - WRITE_KEY_RETENTION_MS),
    );
    let continuation: string | null = null;
    if (!result.done) {
      continuation = (await s.queue.enqueue("apply_retention", {}, {
        idempotencyKey: continuationKey(ctx.taskId),
      })).id;
      ctx.log.info("retention continues in another task", {
        deleted_events: result.deletedEvents,
        batches: result.batches,
        continuation_task_id: continuation,
      });
    }
    return {
      ...result,
      continuation_task_id: continuation,
      expired_write_keys: expiredWriteKeys,
    };
  };
}
