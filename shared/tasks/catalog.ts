/**
 * The task catalog: task type → payload schema and operating policy
 * (timeout, attempts, backoff, default priority). The edge validates enqueues
 * against it; workers pair each type with a handler in workers/tasks/.
 *
 * Task names are stable snake_case; an incompatible payload change gets a new
 * name with `_v2`, compatible additions are optional fields.
 *
 * @module
 */
import { z } from "zod";
import type { Priority } from "../redis/keys.ts";

/** Retry delay policy: `baseMs * factor^(attempt-1)`, capped, with ± jitter. */
export interface BackoffPolicy {
  /** Delay after the first failure. @default 2000 (2^1 s) */
  baseMs: number;
  /** Growth per attempt. @default 2 */
  factor: number;
  /** Upper bound. @default 3_600_000 */
  maxMs: number;
  /** Fraction of the delay randomised, 0..1 (full jitter would be 1). @default 0.2 */
  jitter: number;
}

/** One task type's definition. */
export interface TaskDefinition<S extends z.ZodType = z.ZodType> {
  schema: S;
  /** Handler time budget; the handler's signal aborts then. */
  timeoutMs: number;
  /** Attempts before the DLQ. @default 3 */
  maxAttempts: number;
  backoff: BackoffPolicy;
  /** @default "normal" */
  priority: Priority;
  /**
   * The circuit breaker of this type's downstream (shared/breakers). While it
   * is open, workers leave these tasks queued instead of burning attempts.
   */
  breaker?: string;
}

/** A catalog: type name → definition. */
export type TaskCatalog = Record<string, TaskDefinition>;

/** The default backoff: 2^attempt seconds (2 s, 4 s, 8 s, …) with 20 % jitter, capped at 1 h. */
export const DEFAULT_BACKOFF: BackoffPolicy = {
  baseMs: 2000,
  factor: 2,
  maxMs: 3_600_000,
  jitter: 0.2,
};

/** Fills in defaults for a definition. */
export function task<S extends z.ZodType>(
  schema: S,
  policy: Partial<Omit<TaskDefinition<S>, "schema">> = {},
): TaskDefinition<S> {
  return {
    schema,
    timeoutMs: policy.timeoutMs ?? 30_000,
    maxAttempts: policy.maxAttempts ?? 3,
    backoff: { ...DEFAULT_BACKOFF, ...policy.backoff },
    priority: policy.priority ?? "normal",
    ...(policy.breaker ? { breaker: policy.breaker } : {}),
  };
}

/**
 * Delay before the next attempt after `attempt` failed attempts (1-based),
 * with jitter from `random` (0..1).
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random = Math.random): number {
  const raw = Math.min(policy.maxMs, policy.baseMs * policy.factor ** Math.max(0, attempt - 1));
  const spread = raw * policy.jitter;
  return Math.max(0, Math.round(raw - spread + random() * 2 * spread));
}

/** The platform's task types. Domain executors (send_email, …) arrive with their issue. */
export const TASK_CATALOG = {
  /** Diagnostic no-op: proves the enqueue → claim → ack path end to end. */
  noop: task(z.object({ echo: z.string().max(1000).optional() }).strict(), { timeoutMs: 5_000 }),
} satisfies TaskCatalog;
