/**
 * The Prometheus metrics of one process, built once in its composition root
 * ({@linkcode createMetrics}) and passed down in `deps.metrics`. Every metric
 * lives in the process's own `Registry` (never prom-client's global one), so
 * two apps built in one test process never share a series.
 *
 * Label values come from closed sets only (route templates, task types from
 * the catalog, breaker and policy names from configuration, fixed outcome
 * words): the number of series is bounded by construction. Never label by an
 * id, an e-mail address or a raw path. docs/observability.md lists every
 * metric with its meaning.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { DB_ERROR_CLASSES } from "../db/query_spans.ts";

/**
 * Request-latency buckets (seconds). 0.2 is the latency SLO's threshold: the
 * SLO rules count `le="0.2"` as "fast enough", so it must stay a bucket bound.
 */
export const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10];
/** Task run and queue-wait buckets (seconds): tasks run from milliseconds to minutes. */
export const TASK_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** Outcomes of `appointment_bookings_total` (workers/tasks/booking_outcomes.ts). */
export const BOOKING_STATUSES = [
  "success",
  "duplicate_prevented",
  "rejected",
  "deferred",
  "failed",
] as const;

/** Outcomes of `analytics_ingest_rows_total` (shared/analytics/ingest.ts). */
export const INGEST_OUTCOMES = ["stored", "duplicate", "rejected"] as const;

/** Every metric of one process (edge and worker build the same set; each fills its part). */
export interface Metrics {
  readonly registry: Registry;
  /**
   * Reads run before each scrape (queue depth, mirrored counters). A failing
   * one is counted in `store_errors_total` by its owner and must not fail the
   * scrape: the other metrics are still worth having.
   */
  readonly collectors: Array<() => void | Promise<void>>;
  readonly httpDuration: Histogram<"method" | "route" | "status">;
  readonly httpRequests: Counter<"method" | "route" | "status">;
  readonly bookings: Counter<"status">;
  readonly queueSize: Gauge<"priority" | "state">;
  readonly dlqSize: Gauge<"type">;
  readonly tasksClaimed: Counter<"type">;
  readonly taskOutcomes: Counter<"type" | "outcome">;
  readonly taskRunDuration: Histogram<"type">;
  readonly taskQueueWait: Histogram<"type">;
  readonly tasksInFlight: Gauge;
  readonly breakerState: Gauge<"breaker">;
  readonly breakerStateSince: Gauge<"breaker">;
  readonly breakerResetTimeout: Gauge<"breaker">;
  readonly breakerTransitions: Counter<"breaker" | "to">;
  readonly rateLimitDecisions: Counter<"outcome">;
  readonly rateLimitPolicyDecisions: Counter<"policy" | "outcome">;
  readonly rateLimitLeases: Counter<"event">;
  readonly wsConnections: Gauge;
  readonly wsEvents: Counter<"event">;
  readonly wsRefusals: Counter<"code">;
  readonly wsDropped: Counter<"reason">;
  readonly storeErrors: Counter<"store" | "component">;
  readonly postgresErrors: Counter<"operation">;
  readonly ingestRows: Counter<"outcome">;
  /**
   * Seconds since each rollup's last successful refresh in this process,
   * computed at scrape time from {@linkcode Metrics.rollupsRefreshedAt}.
   */
  readonly rollupRefreshLag: Gauge<"rollup">;
  /** Epoch ms of each rollup's last successful refresh here (set by refresh_lead_metrics). */
  readonly rollupsRefreshedAt: Map<string, number>;
  readonly relayCaughtUp: Gauge;
  readonly idempotencyOutcomes: Counter<"outcome">;
  readonly emails: Counter<"provider" | "outcome">;
  readonly alertDeliveries: Counter<"outcome">;
}

/** Builds a fresh registry and every metric in it. */
export function createMetrics(
  options: { service?: string; now?: () => number } = {},
): Metrics {
  const now = options.now ?? Date.now;
  const registry = new Registry();
  const rollupsRefreshedAt = new Map<string, number>();
  if (options.service) registry.setDefaultLabels({ service: options.service });
  const registers = [registry];
  const metrics: Metrics = {
    registry,
    collectors: [],
    httpDuration: new Histogram({
      name: "api_request_duration_seconds",
      help: "Edge request latency by method, route template and status",
      labelNames: ["method", "route", "status"],
      buckets: HTTP_BUCKETS,
      registers,
    }),
    httpRequests: new Counter({
      name: "api_requests_total",
      help: "Edge requests by method, route template and status",
      labelNames: ["method", "route", "status"],
      registers,
    }),
    bookings: new Counter({
      name: "appointment_bookings_total",
      help:
        "book_appointment attempts by outcome: success, duplicate_prevented, rejected (permanent), deferred (breaker), failed (retried)",
      labelNames: ["status"],
      registers,
    }),
    queueSize: new Gauge({
      name: "task_queue_size",
      help:
        "Tasks by state: ready (per priority), delayed, running, dead; read at scrape time in one Redis round trip",
      labelNames: ["priority", "state"],
      registers,
    }),
    dlqSize: new Gauge({
      name: "task_dlq_size",
      help: "Dead-letter queue entries per task type",
      labelNames: ["type"],
      registers,
    }),
    tasksClaimed: new Counter({
      name: "tasks_claimed_total",
      help: "Tasks claimed by this worker, per type",
      labelNames: ["type"],
      registers,
    }),
    taskOutcomes: new Counter({
      name: "task_outcomes_total",
      help:
        "Reported task outcomes per type: succeeded, retried, deferred, dead_lettered, lease_lost",
      labelNames: ["type", "outcome"],
      registers,
    }),
    taskRunDuration: new Histogram({
      name: "task_run_duration_seconds",
      help: "Handler run time per task type (every attempt)",
      labelNames: ["type"],
      buckets: TASK_BUCKETS,
      registers,
    }),
    taskQueueWait: new Histogram({
      name: "task_queue_wait_seconds",
      help: "Enqueue to first start per task type (first attempts only)",
      labelNames: ["type"],
      buckets: TASK_BUCKETS,
      registers,
    }),
    tasksInFlight: new Gauge({
      name: "worker_tasks_in_flight",
      help: "Tasks this worker is running now",
      registers,
    }),
    breakerState: new Gauge({
      name: "breaker_state",
      help: "Circuit breaker state as this instance sees it: 0 closed, 1 half_open, 2 open, " +
        "3 forced_open, -1 disabled",
      labelNames: ["breaker"],
      registers,
    }),
    breakerStateSince: new Gauge({
      name: "breaker_state_since_timestamp_seconds",
      help: "When the breaker entered its current state (Unix seconds, this instance's clock)",
      labelNames: ["breaker"],
      registers,
    }),
    breakerResetTimeout: new Gauge({
      name: "breaker_reset_timeout_seconds",
      help: "The breaker's configured reset timeout (OPEN → probe)",
      labelNames: ["breaker"],
      registers,
    }),
    breakerTransitions: new Counter({
      name: "breaker_transitions_total",
      help: "Breaker transitions seen by this instance, by target state",
      labelNames: ["breaker", "to"],
      registers,
    }),
    rateLimitDecisions: new Counter({
      name: "rate_limit_decisions_total",
      help:
        "Rate-limit decisions: allowed, limited, fail_open (local limiter, store unreachable), unavailable (fail_closed 503), store_error",
      labelNames: ["outcome"],
      registers,
    }),
    rateLimitPolicyDecisions: new Counter({
      name: "rate_limit_policy_decisions_total",
      help:
        "Rate-limit decisions per configured policy: allowed, limited, unavailable, fail_open (local limiter; also in allowed or limited)",
      labelNames: ["policy", "outcome"],
      registers,
    }),
    rateLimitLeases: new Counter({
      name: "rate_limit_lease_events_total",
      help:
        "Rate-limit leasing: granted (store calls that leased spare tokens), local_decision (admitted from a lease, no Redis call), tokens_returned (unused leased tokens given back)",
      labelNames: ["event"],
      registers,
    }),
    wsConnections: new Gauge({
      name: "ws_connections",
      help: "Open live-feed WebSockets on this edge",
      registers,
    }),
    wsEvents: new Counter({
      name: "ws_events_total",
      help: "Live-feed events: accepted, sent, slow_consumer_close, violation, expired_close",
      labelNames: ["event"],
      registers,
    }),
    wsDropped: new Counter({
      name: "ws_messages_dropped_total",
      help:
        "Live-feed frames that never reached their socket: closed (socket no longer open, or frames still queued when it ended), slow_consumer (discarded with the overflowing queue)",
      labelNames: ["reason"],
      registers,
    }),
    wsRefusals: new Counter({
      name: "ws_upgrades_refused_total",
      help:
        "Live-feed upgrades refused before the upgrade, by problem code: too-many-sockets, too-many-upgrades (429), live-feed-full (503)",
      labelNames: ["code"],
      registers,
    }),
    idempotencyOutcomes: new Counter({
      name: "idempotency_outcomes_total",
      help:
        "Keyed requests by claim outcome: claimed (first run), completed (replayed), in_flight (409), unreplayable (409), mismatch (key reused, 422)",
      labelNames: ["outcome"],
      registers,
    }),
    alertDeliveries: new Counter({
      name: "alert_deliveries_total",
      help:
        "deliver_alert attempts by outcome: delivered, already_delivered (a later attempt of a delivered event), failed (retried: 408/429/5xx, timeout, network), rejected (other status, redirects included), refused (SSRF check, or no webhook configured)",
      labelNames: ["outcome"],
      registers,
    }),
    emails: new Counter({
      name: "emails_total",
      help:
        "send_email attempts per provider by outcome: sent, already_sent, suppressed, lead_not_interested, rejected, deferred, failed",
      labelNames: ["provider", "outcome"],
      registers,
    }),
    relayCaughtUp: new Gauge({
      name: "lead_events_relay_caught_up_timestamp_seconds",
      help:
        "When the lead-events relay last had nothing left to publish (only the leading edge sets it); lag = time() - this",
      registers,
    }),
    ingestRows: new Counter({
      name: "analytics_ingest_rows_total",
      help: "Analytics events ingested, by outcome: stored, duplicate, rejected",
      labelNames: ["outcome"],
      registers,
    }),
    rollupRefreshLag: new Gauge({
      name: "lead_metrics_refresh_lag_seconds",
      help:
        "Seconds since this process last refreshed each lead-metrics rollup successfully (absent until it has)",
      labelNames: ["rollup"],
      registers,
      collect() {
        for (const [rollup, at] of rollupsRefreshedAt) {
          this.set({ rollup }, Math.max(0, (now() - at) / 1000));
        }
      },
    }),
    rollupsRefreshedAt,
    postgresErrors: new Counter({
      name: "postgres_errors_total",
      help:
        "Failed Postgres calls of this process's pool by class: query, transaction (BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE), connect",
      labelNames: ["operation"],
      registers,
    }),
    storeErrors: new Counter({
      name: "store_errors_total",
      help: "Failed Redis/Postgres calls by store and component",
      labelNames: ["store", "component"],
      registers,
    }),
  };
  // Every outcome exported from the start: rate() of a series that appears
  // with its first increment misses that increment, and the booking alert's
  // ratio needs both sides.
  for (const status of BOOKING_STATUSES) metrics.bookings.inc({ status }, 0);
  for (const outcome of INGEST_OUTCOMES) metrics.ingestRows.inc({ outcome }, 0);
  for (const operation of DB_ERROR_CLASSES) metrics.postgresErrors.inc({ operation }, 0);
  return metrics;
}

/**
 * Sets a counter to an absolute value kept elsewhere (the plain-number
 * counters of the rate limiter, breakers and live hub), at scrape time.
 */
export function mirrorCounter<L extends string>(
  counter: Counter<L>,
  labels: Partial<Record<L, string>>,
  value: number,
): void {
  counter.remove(labels);
  counter.inc(labels, value);
}

/** Runs the collectors, then renders the Prometheus text exposition. */
export async function renderMetrics(metrics: Metrics): Promise<string> {
  await Promise.all(metrics.collectors.map(async (collect) => {
    try {
      await collect();
    } catch {
      // Owners count their own failures; a scrape still returns everything else.
    }
  }));
  return await metrics.registry.metrics();
}

/** The exposition's content type. */
export function metricsContentType(metrics: Metrics): string {
  return metrics.registry.contentType;
}
