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
    /**
     * The Idempotency-Key record of a request whose effect is an enqueue
     * (`POST /v1/tasks`), named like {@linkcode httpIdempotencyKeys}' records
     * but in the queue's slot: one script (edge/idempotency/enqueue_keyed.lua)
     * writes it together with the task.
     */
    httpIdempotencyRecord: (digest: string) => `${base}http_idem:${digest}`,
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

/**
 * Rate-limit key parts for one namespace (default "pc"). `@upstash/ratelimit`
 * builds the final keys as `<prefix>:<identifier>:<window>`, so the
 * identifier is wrapped in a hash tag: the current and previous sliding-window
 * keys, which one script reads together, land in one cluster slot.
 */
export function rateLimitKeys(namespace = "pc") {
  return {
    /** Ratelimit `prefix` of a route group's policy. */
    prefix: (group: string) => `${namespace}:rl:${group}`,
    /** Ratelimit identifier for a caller identity such as `p:<sub>` or `ip:<address>`. */
    identifier: (identity: string) => `{${identity}}`,
    /**
     * The budget of one caller under one policy, as `@upstash/ratelimit`
     * names it: the token bucket's hash, or the prefix its window counters
     * append `:<window index>` to (rate_limit_lease.lua builds those).
     */
    budget: (group: string, identity: string) => `${namespace}:rl:${group}:{${identity}}`,
    /** Sorted set: the edges that leased this budget lately (rate_limit_lease.lua). */
    leaseEdges: (group: string, identity: string) =>
      `${namespace}:rl:${group}:{${identity}}:lease_edges`,
  };
}

/** Keys of the HTTP Idempotency-Key records (edge/middleware/idempotency.ts). */
export function httpIdempotencyKeys(namespace = "pc") {
  return {
    /**
     * One hash per (scope, key), named by the SHA-256 of both so arbitrary
     * principals and client keys never appear in key names.
     */
    record: (digest: string) => `${namespace}:http_idem:${digest}`,
  };
}

/** Keys of the alert webhook (shared/alerts/). */
export function alertKeys(namespace = "pc") {
  return {
    /**
     * String: set once the receiver accepted the event (its 2xx), so a
     * later attempt of the same event does not call it again.
     */
    delivered: (eventId: string) => `${namespace}:alerts:delivered:${eventId}`,
  };
}

/**
 * Key builders for the circuit breakers of one namespace (shared/breakers/).
 * Both keys of a breaker share the hash tag `{br:<name>}`, so every script
 * touches one cluster slot.
 */
export function breakerKeys(namespace = "pc") {
  return {
    /** Hash: state, epoch, open_until, probe lease, counters (see shared/breakers/scripts/). */
    state: (name: string) => `${namespace}:{br:${name}}:state`,
    /** Hash of failure-rate buckets `n:<bucket>` / `f:<bucket>` (calls, failures). */
    window: (name: string) => `${namespace}:{br:${name}}:window`,
    /** Pub/sub: transitions, probe-lease changes and instance heartbeats (JSON). */
    channel: `${namespace}:breakers:events`,
  };
}

/** The breaker key set. */
export type BreakerKeys = ReturnType<typeof breakerKeys>;

/** Keys of the last good answers served while a breaker is open (edge/degraded/). */
export function degradedCacheKeys(namespace = "pc") {
  return {
    /**
     * One string per cached answer, named by breaker and the SHA-256 of its
     * request identity; the breaker is the hash tag its index shares.
     */
    entry: (breaker: string, digest: string) => `${namespace}:degraded:{${breaker}}:${digest}`,
    /** Sorted set of a breaker's entries by store time (put_answer.lua caps it). */
    index: (breaker: string) => `${namespace}:degraded:{${breaker}}:index`,
  };
}

/**
 * Keys of the recurring schedules (shared/schedules/). They carry the queue's
 * hash tag `{q}`: one script (enqueue_slot.lua) advances a schedule and
 * enqueues its task, so its keys must share the queue's cluster slot.
 */
export function scheduleKeys(namespace = "pc") {
  return {
    /** Hash per schedule: last_slot, last_slot_at, last_task_id, next_run_at, … */
    state: (name: string) => `${namespace}:{q}:schedule:${name}`,
  };
}

/**
 * Keys of the WebSocket live feed (shared/ws/). A topic's history stream and
 * its publish dedupe markers share one hash tag: the publish script touches
 * them together. That tag is `{ws:<topic>}`, except for `tasks`: task status
 * changes are published by the queue's own scripts in the same step as the
 * change (shared/redis/scripts/includes/task_events.lua), so that topic's
 * keys carry the queue's tag `{q}`. The client registry's two keys share
 * `{ws:clients}`.
 */
export function liveFeedKeys(namespace = "pc") {
  const tag = (topic: string) => topic === "tasks" ? `{q}:ws:tasks` : `{ws:${topic}}`;
  return {
    /** Stream per topic: the last messages; the stream id is a message's `offset`. */
    history: (topic: string) => `${namespace}:${tag(topic)}:history`,
    /** Hash per topic: `created` (first offset of the history), `trimmed` (newest trimmed). */
    historyMeta: (topic: string) => `${namespace}:${tag(topic)}:history_meta`,
    /** String per (topic, publisher-chosen id): set once, holds the first offset. */
    dedupe: (topic: string, id: string) => `${namespace}:${tag(topic)}:dedupe:${id}`,
    /** Pub/sub: every feed message of every topic, plus instance heartbeats (JSON). */
    channel: `${namespace}:ws:feed`,
    /** Sorted set: client id → expiry (ms); refreshed by each instance's heartbeat. */
    clientExpiry: `${namespace}:{ws:clients}:expiry`,
    /** Hash: client id → JSON `{instance, user, connected_at}`. */
    clientInfo: `${namespace}:{ws:clients}:info`,
  };
}

/** The live-feed key set. */
export type LiveFeedKeys = ReturnType<typeof liveFeedKeys>;

/**
 * Keys of the relay that publishes committed `lead_events` rows on the live
 * feed's `leads` topic (edge/ws/lead_events_relay.ts). Both keys share the
 * hash tag `{lead_feed}`: one script (lead_events_relay.lua) touches them
 * together.
 */
export function leadFeedKeys(namespace = "pc") {
  return {
    /** String: the token of the one relay that publishes; expires unless renewed. */
    lease: `${namespace}:{lead_feed}:lease`,
    /** Hash: `progress` (JSON: the published horizon), `at` (ms it was written), `by`. */
    state: `${namespace}:{lead_feed}:state`,
  };
}

/**
 * The probe key a worker writes over TCP and reads over REST at start-up, to
 * prove both transports reach the same Redis (shared/redis/tcp_scripts.ts).
 */
export function transportCheckKey(namespace = "pc"): string {
  return `${namespace}:transport_check:${crypto.randomUUID()}`;
}
