/**
 * Every Redis key and channel name the platform uses is built here, and only
 * here. Queue keys share the hash tag `{q}`, so every key one script touches
 * lands in one cluster slot.
 *
 * @module
 */

/** Task priorities, highest first; claim order is strict. */
export const PRIORITIES = ["high", "normal", "low"] as const;
/** A task priority. */
export type Priority = (typeof PRIORITIES)[number];

/** Key builders for one queue namespace (default "pc"). */
export function queueKeys(namespace = "pc") {
  const base = `${namespace}:{q}:`;
  return {
    /** Prefix of per-task keys; scripts append the id (and "idem:"/"dlq:type:" parts). */
    prefix: base,
    task: (id: string) => `${base}task:${id}`,
    ready: (priority: Priority) => `${base}ready:${priority}`,
    /** Sorted set: tasks waiting for their run time (new delayed tasks and retries), score = due ms. */
    delayed: `${base}delayed`,
    /** Sorted set: running tasks, score = lease expiry ms. */
    leases: `${base}leases`,
    idempotency: (key: string) => `${base}idem:${key}`,
    /** Sorted set of dead task ids, score = failed_at ms. */
    dlq: `${base}dlq`,
    dlqByType: (type: string) => `${base}dlq:type:${type}`,
    /** Hash of counters (enqueued, succeeded, retried, dead, dlq_evicted, …). */
    stats: `${base}stats`,
    /** Pub/sub: "work is ready" wake-ups for idle workers. */
    notifyChannel: `${namespace}:q:notify`,
    /** Pub/sub: dead-letter alerts (entry added, cap reached). */
    dlqChannel: `${namespace}:q:dlq`,
  };
}

/** The queue key set. */
export type QueueKeys = ReturnType<typeof queueKeys>;
