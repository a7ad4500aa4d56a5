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
import { OUTREACH_STATUSES } from "../leads/status.ts";
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

/**
 * The request a caller must be allowed by the access policy (edge/auth/policy.ts)
 * to enqueue a public task type through `POST /v1/tasks`: enqueueing such a
 * task is worth the same as making that request.
 */
export interface TaskPermission {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
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
  /**
   * Whether any caller may enqueue this type through the generic
   * `POST /v1/tasks` (with {@linkcode TaskDefinition.permission}). Internal
   * types are enqueued only by the code that owns them (a route that checks
   * its own rules first, a schedule, a handler), never with a caller's
   * payload as is. @default false
   */
  public?: boolean;
  /** Required of a public type: see {@linkcode TaskPermission}. */
  permission?: TaskPermission;
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
    ...(policy.public ? { public: true, permission: policy.permission } : {}),
  };
}

/** Public types must name their permission; throws a TypeError listing those that do not. */
export function validateCatalog(catalog: TaskCatalog): void {
  const bad = Object.entries(catalog).filter(([, d]) => d.public === true && !d.permission);
  if (bad.length > 0) {
    throw new TypeError(
      `Public task types need a permission: ${bad.map(([name]) => name).join(", ")}`,
    );
  }
}

/** The types of `catalog` that `POST /v1/tasks` may enqueue, sorted. */
export function publicTaskTypes(catalog: TaskCatalog): string[] {
  return Object.keys(catalog).filter((t) => catalog[t]!.public === true).sort();
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

const uuid = z.uuid();
const email = z.email().max(254);

/** `send_email`: one templated email to a lead (workers/tasks/send_email.ts). */
export const SendEmailPayload = z.object({
  lead_id: uuid,
  template: z.string().min(1).max(64),
  variables: z.record(z.string(), z.union([z.string().max(2000), z.number()])).default({}),
  /** Recipient; @default the lead's email. */
  to: email.optional(),
  /** meeting_confirmation: the appointment whose .ics invite is attached. */
  appointment_id: uuid.optional(),
}).strict();

/** `book_appointment`: one meeting with a lead (workers/tasks/book_appointment.ts). */
export const BookAppointmentPayload = z.object({
  lead_id: uuid,
  starts_at: z.iso.datetime({ offset: true }),
  duration_min: z.number().int().min(5).max(480),
  attendee_email: email,
  /** Variables for the confirmation email (sender_name, meeting_url, …). */
  confirmation: z.record(z.string(), z.union([z.string().max(2000), z.number()])).default({}),
}).strict();

/** `scrape_leads`: find leads with a provider (workers/tasks/scrape_leads.ts). */
export const ScrapeLeadsPayload = z.discriminatedUnion("provider", [
  z.object({
    provider: z.literal("places"),
    query: z.string().min(1).max(200),
    location: z.string().min(1).max(200).optional(),
    max_pages: z.number().int().min(1).max(10).default(3),
  }).strict(),
  z.object({
    provider: z.literal("file"),
    format: z.enum(["csv", "json"]),
    /** The uploaded file's text (bounded by QUEUE_MAX_PAYLOAD_BYTES). */
    content: z.string(),
    filename: z.string().max(255).optional(),
  }).strict(),
]);

// Postgres text cannot hold NUL: refused at enqueue, not retried into the DLQ.
const pgText = (max: number) =>
  z.string().max(max).refine((s) => !s.includes("\0"), "must not contain NUL characters");

/** Lead fields a queued create or update may set (the limits of POST/PATCH /v1/leads). */
const leadWriteFields = {
  category: pgText(200).nullable().optional(),
  city: pgText(200).nullable().optional(),
  rating: z.number().min(0).max(5).nullable().optional(),
  reviews: z.number().int().min(0).max(2_147_483_647).optional(),
  has_website: z.boolean().optional(),
  phone: pgText(50).nullable().optional(),
  phone_valid: z.boolean().nullable().optional(),
  email: z.email().max(320).nullable().optional(),
  email_confidence_score: z.number().min(0).max(1).nullable().optional(),
  lead_score: z.number().min(0).max(100).nullable().optional(),
  last_contacted: z.iso.datetime({ offset: true }).nullable().optional(),
  response_time_hours: z.number().min(0).max(1_000_000).nullable().optional(),
};

/**
 * The request's Idempotency-Key as the database records it
 * (shared/leads/idempotent_write.ts): a queued write applies under the same
 * key as the request, so it and a late commit of that request apply once.
 */
const LeadWriteKey = z.object({
  scope: pgText(1000).min(1),
  key: pgText(255).min(1),
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
}).strict();

/**
 * `apply_lead_write`: a POST or PATCH /v1/leads accepted (202) while the
 * database breaker refused it (workers/tasks/lead_write.ts). `source` is who
 * asked (`api:<principal>`), recorded on the lead's events.
 */
export const ApplyLeadWritePayload = z.discriminatedUnion("op", [
  z.object({
    op: z.literal("create"),
    input: z.object({
      name: pgText(500).trim().min(1),
      ...leadWriteFields,
      source: pgText(100).min(1),
      external_id: pgText(200).min(1).nullable().optional(),
    }).strict(),
    source: pgText(1000).min(1),
    write_key: LeadWriteKey.optional(),
  }).strict(),
  z.object({
    op: z.literal("update"),
    lead_id: uuid,
    patch: z.object({
      name: pgText(500).trim().min(1).optional(),
      ...leadWriteFields,
      outreach_status: z.enum(OUTREACH_STATUSES).optional(),
    }).strict().refine((p) => Object.keys(p).length > 0, "at least one field is required"),
    source: pgText(1000).min(1),
    write_key: LeadWriteKey.optional(),
  }).strict(),
]);

/**
 * `refresh_lead_metrics` and `apply_retention` (workers/tasks/): the analytics
 * maintenance the default schedules run (shared/schedules/schedule.ts). No
 * parameters: everything comes from configuration, so every slot's task is
 * the same and a rerun is harmless.
 */
export const AnalyticsMaintenancePayload = z.object({}).strict();

/**
 * `retrain_lead_model` (workers/tasks/retrain_lead_model.ts): one training
 * run of the lead-scoring model (shared/scoring/pipeline.ts), from the
 * weekly schedule or `POST /v1/models/retrain`. Everything else comes from
 * configuration; `actor` is who asked (recorded on an activation).
 */
export const RetrainLeadModelPayload = z.object({
  trigger: z.enum(["schedule", "api"]).default("schedule"),
  actor: pgText(300).min(1).optional(),
}).strict();

/** `rescore_leads`: rescoring open leads after the champion switch `activation_id`. */
export const RescoreLeadsPayload = z.object({
  activation_id: z.number().int().positive(),
}).strict();

/**
 * `deliver_alert` (workers/tasks/deliver_alert.ts): one alert event for the
 * alert webhook (shared/alerts/). `event_id` names the event (the DLQ arrival,
 * the breaker opening, the deployment): the idempotency key of the task and
 * the `Idempotency-Key` the receiver gets. The DLQ's scripts write this
 * payload themselves (includes/dead_letter_alert.lua).
 */
export const DeliverAlertPayload = z.object({
  event_id: z.string().regex(/^[\x21-\x7e]{1,180}$/),
  alert: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,99}$/),
  severity: z.enum(["page", "ticket", "info"]),
  summary: z.string().min(1).max(1000),
  description: z.string().max(4000).optional(),
  labels: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,99}$/), z.string().max(500)),
  /** When the event happened, epoch ms. */
  at_ms: z.number().int().nonnegative(),
});

/** The platform's task types (upstream forwards are added per configuration in queue/from_config.ts). */
// Only `noop` is public. The others are internal: `send_email`, `book_appointment`
// and `scrape_leads` have routes that check more than the payload schema
// (template, recipient and once-a-day key; a time in the future; the file's
// format), `apply_lead_write` is the lead routes' queued write (its audit
// `source` is the route's principal), and the analytics maintenance belongs to
// the schedules. `forward_request.*` types (shared/upstreams/) are internal too.
export const TASK_CATALOG = {
  /** Diagnostic no-op: proves the enqueue → claim → ack path end to end. */
  noop: task(z.object({ echo: z.string().max(1000).optional() }).strict(), {
    timeoutMs: 5_000,
    public: true,
    permission: { method: "POST", path: "/v1/tasks" },
  }),
  // Weekly (default schedule) or on demand; internal: only the schedule and
  // the admin route enqueue it. Training 50,000 leads takes under a minute
  // (bench:ml); one retry, since the next run redoes the same work.
  retrain_lead_model: task(RetrainLeadModelPayload, {
    timeoutMs: 600_000,
    maxAttempts: 2,
    priority: "low",
    breaker: "database",
  }),
  // Queued by every champion switch. Resumable: a retry (after a timeout or a
  // crash) continues after the last committed chunk.
  rescore_leads: task(RescoreLeadsPayload, {
    timeoutMs: 600_000,
    maxAttempts: 5,
    priority: "low",
    breaker: "database",
  }),
  send_email: task(SendEmailPayload, { timeoutMs: 30_000, maxAttempts: 5, breaker: "email" }),
  // The booking is a database write; the calendar provider is not called yet.
  book_appointment: task(BookAppointmentPayload, {
    timeoutMs: 15_000,
    maxAttempts: 5,
    breaker: "database",
  }),
  // No catalog breaker: file imports need no provider. Places calls go through
  // the places breaker inside the handler; a refusal gives the attempt back.
  scrape_leads: task(ScrapeLeadsPayload, { timeoutMs: 300_000, maxAttempts: 3, priority: "low" }),
  // Parked while the database breaker is open, so attempts are spent only on
  // real failures; 8 attempts back off for about 4 minutes before the DLQ.
  apply_lead_write: task(ApplyLeadWritePayload, {
    timeoutMs: 15_000,
    maxAttempts: 8,
    breaker: "database",
  }),
  // Every minute (default schedule). Parked while the database breaker is
  // open (Postgres is its only downstream; its outcomes are not counted
  // toward that breaker, which guards request-path writes). One retry only:
  // the next slot does the same work, and a slot that fails twice is worth a
  // DLQ entry. An incremental refresh takes a fraction of a second, a full
  // rebuild of a large table seconds (docs/benchmarks.md, design
  // measurements). The timeout stays under the interval; a refresh still running
  // at the timeout finishes in the background (the statement is not
  // cancelled), and refreshes that overlap it return `skipped`.
  refresh_lead_metrics: task(AnalyticsMaintenancePayload, {
    timeoutMs: 50_000,
    maxAttempts: 2,
    backoff: { baseMs: 5_000, factor: 2, maxMs: 30_000, jitter: 0.2 },
    breaker: "database",
  }),
  // Daily at 03:00 UTC (default schedule), low priority. On plain Postgres a
  // task deletes at most ANALYTICS_RETENTION_BATCH × ANALYTICS_RETENTION_MAX_BATCHES
  // rows (10,000,000 by default; batched deletes ran at ~1,000,000 rows/s
  // locally) and, when old rows remain (`done: false`), enqueues its own
  // continuation under the key `apply_retention:after:<task id>`, so a
  // backlog drains in bounded tasks the same night instead of one slot a day.
  // The timeout also covers the full refresh it may wait for first.
  apply_retention: task(AnalyticsMaintenancePayload, {
    timeoutMs: 120_000,
    maxAttempts: 3,
    backoff: { baseMs: 30_000, factor: 2, maxMs: 600_000, jitter: 0.2 },
    priority: "low",
    breaker: "database",
  }),
  // Queued by the DLQ's scripts, breaker openings and model deployments
  // (shared/alerts/). High priority: an alert that waits behind a backlog
  // comes late. 8 attempts back off for about 4 minutes; a receiver down
  // longer dead-letters the alert (which raises no alert of its own).
  deliver_alert: task(DeliverAlertPayload, {
    timeoutMs: 30_000,
    maxAttempts: 8,
    priority: "high",
  }),
} satisfies TaskCatalog;
