/**
 * Ingest of externally reported lead events (`POST /v1/events`, and internal
 * code that records batches of events carrying their own ids): each event is
 * checked on its own and the batch answers which events were stored, which
 * were duplicates and which were rejected and why.
 *
 * An event is rejected (with every reason that applies) when it is not the
 * {@linkcode IngestEvent} shape, its `time` lies more than `maxFutureMs`
 * ahead of `now` or before the raw events retention has kept
 * (`lead_metrics_state.retained_from`, tiers 2–3: such a row would land in a
 * bucket that is final and be deleted by the next retention run), its type
 * is not in {@linkcode INGEST_EVENT_TYPES} (platform-owned types are refused
 * with a reason saying so), its `event_data` is over
 * {@linkcode MAX_EVENT_DATA_BYTES} or holds text Postgres cannot store (NUL,
 * lone surrogates), or its lead does not exist.
 *
 * Duplicates by client event id are ignored, never updated: a later event of
 * the batch with an id an earlier accepted one has; and an id already stored
 * with the same time (the primary key (id, time), race-free) or with a time
 * within `duplicateWindowMs` of it (checked in the insert statement against
 * committed rows). Known limits, both from the hypertable primary key, which
 * must contain `time`: an id stored with a time further away than the window
 * is stored again, and two concurrent batches carrying one id with different
 * times can both store it.
 *
 * Round trips: ONE query checks every lead id (and reads the retention
 * start), ONE statement inserts the batch (`insertLeadEvents`, the insert
 * `recordLeadEvents` uses too). `lead_events` has no foreign key, so a lead
 * deleted between the two keeps the events just stored for it.
 *
 * Tier 1 records no retention start (its policies drop chunks): an event
 * older than the retention is accepted there and goes with the next policy
 * run, and one older than the aggregates' refresh windows shows in
 * lead-metrics after the next `refreshLeadMetrics()` (7 days back).
 *
 * @module
 */
import { z } from "zod";
import {
  EVENT_TYPE_PATTERN,
  insertLeadEvents,
  LEAD_EVENT_TYPES,
  type NewLeadEvent,
} from "../leads/events.ts";
import type { Queryable } from "../leads/transaction.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { plainIssues } from "../plain_issues.ts";
import { DEFAULT_MAX_JSON_DEPTH } from "../json_depth.ts";

/**
 * Event types only ingest reports (engagement that happens outside the
 * platform, told by mail providers' webhooks, the website or the CRM):
 *
 * - `email_delivered`, `email_opened`, `email_clicked`, `email_bounced`:
 *   the provider's delivery and engagement events for an outreach email;
 * - `page_view`: the lead visited a page of its preview site;
 * - `form_submitted`: the lead submitted a form there (a contact request);
 * - `call_logged`: an operator logged a phone call with the lead.
 */
export const ANALYTICS_EVENT_TYPES = [
  "email_delivered",
  "email_opened",
  "email_clicked",
  "email_bounced",
  "page_view",
  "form_submitted",
  "call_logged",
] as const;

/**
 * Every type ingest accepts: things that happen outside the platform and are
 * reported to it — `email_replied` (Minerva reads the inbox) and
 * {@linkcode ANALYTICS_EVENT_TYPES}. The platform's own types
 * ({@linkcode PLATFORM_EVENT_TYPES}: `status_changed`, `email_sent`,
 * `appointment_booked`, …) are written only by the code that makes the
 * change, so a client cannot forge the funnel.
 */
export const INGEST_EVENT_TYPES: readonly string[] = [
  "email_replied",
  ...ANALYTICS_EVENT_TYPES,
];

/** The event types only the platform records (refused by ingest with a reason saying so). */
export const PLATFORM_EVENT_TYPES: readonly string[] = LEAD_EVENT_TYPES.filter(
  (t) => !INGEST_EVENT_TYPES.includes(t),
);

/** Most events `POST /v1/events` takes in one batch. */
export const MAX_INGEST_BATCH = 1000;
/** Largest `event_data`, as UTF-8 JSON. */
export const MAX_EVENT_DATA_BYTES = 8192;
/** Longest `source` an event may name. */
export const MAX_SOURCE_LENGTH = 100;

/** An event as a client reports it. */
export interface IngestEvent {
  /** The client's event id (uuid): an event sent twice is stored once. */
  id: string;
  /** When it happened: ISO 8601 with offset (`Z` or `+02:00`). */
  time: string;
  /** The lead (`businesses.id`). */
  lead_id: string;
  /** One of {@linkcode INGEST_EVENT_TYPES}. */
  event_type: string;
  /** A JSON object of at most {@linkcode MAX_EVENT_DATA_BYTES}. @default {} */
  event_data?: Record<string, unknown>;
  /** The client's own label, appended to the ingesting source (`api:sa:minerva:webhook`). */
  source?: string;
}

/** Options of {@linkcode ingestEvents}. */
export interface IngestOptions {
  /** The clock (epoch ms). */
  now: number;
  /** How far ahead of `now` an event's time may lie. @default 5 minutes */
  maxFutureMs?: number;
  /**
   * An id already stored with a time at most this far from the event's is a
   * duplicate (on a hypertable a wider window probes more chunks).
   * @default 1 day
   */
  duplicateWindowMs?: number;
  /** Who ingests, stored as the events' `source` (`<source>:<event source>` when one is given). @default "ingest" */
  source?: string;
  /**
   * Counts the batch's rows by outcome in `analytics_ingest_rows_total` once
   * the insert returned (inside a caller's transaction: before its commit).
   * @default not counted
   */
  metrics?: Pick<Metrics, "ingestRows">;
}

/** An event stored, or a duplicate of one stored before. */
export interface IngestedEvent {
  /** Position in the batch. */
  index: number;
  /** The event id (lower case). */
  id: string;
}

/** An event not stored, with every reason. */
export interface RejectedEvent {
  index: number;
  /** The event id, when it was a uuid. */
  id?: string;
  /** `field: why`, e.g. `lead_id: no lead has this id`. */
  reasons: string[];
}

/** What {@linkcode ingestEvents} did with each event, each list in batch order. */
export interface IngestResult {
  stored: IngestedEvent[];
  duplicates: IngestedEvent[];
  rejected: RejectedEvent[];
}

const MINUTE = 60_000;
const DAY = 86_400_000;
const KNOWN_TYPES: ReadonlySet<string> = new Set(INGEST_EVENT_TYPES);
const PLATFORM_TYPES: ReadonlySet<string> = new Set(PLATFORM_EVENT_TYPES);
const encoder = new TextEncoder();

/**
 * Why `value` cannot be stored as jsonb, or null: NUL and lone surrogates are
 * refused by Postgres. Iterative (an explicit stack), so a caller's deeply
 * nested value cannot overflow the call stack; nesting beyond the JSON depth
 * limit is itself a reason.
 */
function unstorableText(value: unknown): string | null {
  const check = (s: string) =>
    s.includes("\0")
      ? "must not contain NUL characters"
      : s.isWellFormed()
      ? null
      : "must not contain unpaired surrogates";
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v === "string") {
      const bad = check(v);
      if (bad !== null) return bad;
      continue;
    }
    if (typeof v !== "object" || v === null) continue;
    if (depth >= DEFAULT_MAX_JSON_DEPTH) {
      return `must not nest deeper than ${DEFAULT_MAX_JSON_DEPTH} levels`;
    }
    for (const [k, child] of Object.entries(v)) {
      const bad = check(k);
      if (bad !== null) return bad;
      stack.push([child, depth + 1]);
    }
  }
  return null;
}

/** The per-event schema; its issues are the rejection reasons. */
export function eventSchema(now: number, maxFutureMs: number) {
  return z.object({
    id: Uuid,
    time: z.iso.datetime({ offset: true }).refine(
      (t) => Date.parse(t) <= now + maxFutureMs,
      `must not be more than ${maxFutureMs / 1000} s in the future`,
    ),
    lead_id: Uuid,
    event_type: z.string().regex(EVENT_TYPE_PATTERN, "must be lower snake_case").refine(
      (t) => KNOWN_TYPES.has(t),
      {
        error: (issue) =>
          PLATFORM_TYPES.has(issue.input as string)
            ? `"${issue.input}" is recorded by the platform only; report one of ${
              INGEST_EVENT_TYPES.join(", ")
            }`
            : `unknown event type "${issue.input}"`,
      },
    ),
    event_data: z.record(z.string(), z.unknown()).optional().superRefine((data, ctx) => {
      if (data === undefined) return;
      for (const message of eventDataProblems(data)) ctx.addIssue({ code: "custom", message });
    }),
    source: z.string().min(1).max(MAX_SOURCE_LENGTH).refine(
      sourceIsText,
      "must not contain NUL characters or unpaired surrogates",
    ).refine(
      // Stored as `<server source>:<this>`: without a colon here, the part
      // before the last colon is always the server's (the principal), so a
      // caller named `sa` cannot pass `minerva:x` for sa:minerva's `x`.
      (s) => !s.includes(":"),
      "must not contain ':' (the stored source is prefixed with the caller's identity)",
    ).optional(),
  }).strict();
}

/** Why `data` (a plain object) cannot be an event's `event_data`; empty when it can. */
function eventDataProblems(data: Record<string, unknown>): string[] {
  let json: string;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    return [`is not JSON: ${(err as Error).message}`];
  }
  const problems: string[] = [];
  // At most 3 UTF-8 bytes per UTF-16 unit: only a text that might be over is encoded.
  const bytes = json.length * 3 <= MAX_EVENT_DATA_BYTES ? 0 : encoder.encode(json).length;
  if (bytes > MAX_EVENT_DATA_BYTES) {
    problems.push(`is ${bytes} bytes as JSON; at most ${MAX_EVENT_DATA_BYTES}`);
  }
  const bad = unstorableText(data);
  if (bad !== null) problems.push(bad);
  return problems;
}

function sourceIsText(s: string): boolean {
  return !s.includes("\0") && s.isWellFormed();
}

/** The patterns `z.uuid()` and `z.iso.datetime({ offset: true })` check. */
const UUID_PATTERN = z.regexes.uuid();
const TIME_PATTERN = z.regexes.datetime({ offset: true, local: false, precision: null });
const EVENT_FIELDS: ReadonlySet<string> = new Set([
  "id",
  "time",
  "lead_id",
  "event_type",
  "event_data",
  "source",
]);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

/**
 * The common case without zod: `raw` when it passes every check of
 * {@linkcode eventSchema} (the same patterns, limits and refinements), else
 * null, and zod then says why. It accepts only plain JSON objects, so it
 * never accepts what the schema refuses (ingest_test.ts compares the two);
 * zod's parsing per event was most of ingest's own CPU (docs/benchmarks.md,
 * design measurements).
 */
export function plainValidEvent(
  raw: unknown,
  now: number,
  maxFutureMs: number,
): IngestEvent | null {
  if (!isPlainObject(raw)) return null;
  for (const key of Object.keys(raw)) if (!EVENT_FIELDS.has(key)) return null;
  const { id, time, lead_id, event_type, event_data, source } = raw;
  const valid = typeof id === "string" && UUID_PATTERN.test(id) &&
    typeof time === "string" && TIME_PATTERN.test(time) && Date.parse(time) <= now + maxFutureMs &&
    typeof lead_id === "string" && UUID_PATTERN.test(lead_id) &&
    // Every known type matches EVENT_TYPE_PATTERN.
    typeof event_type === "string" && KNOWN_TYPES.has(event_type) &&
    (event_data === undefined ||
      isPlainObject(event_data) && eventDataProblems(event_data).length === 0) &&
    (source === undefined ||
      typeof source === "string" && source.length >= 1 && source.length <= MAX_SOURCE_LENGTH &&
        sourceIsText(source) && !source.includes(":"));
  return valid ? raw as unknown as IngestEvent : null;
}

function reason(path: readonly PropertyKey[], message: string): string {
  return `${path.length === 0 ? "event" : path.map(String).join(".")}: ${message}`;
}

const Uuid = z.uuid();

/** A uuid field of an unvalidated value, lower-cased; undefined when it is not one. */
function uuidField(raw: unknown, field: string): string | undefined {
  const v = typeof raw === "object" && raw !== null
    ? (raw as Record<string, unknown>)[field]
    : null;
  return typeof v === "string" && UUID_PATTERN.test(v) ? v.toLowerCase() : undefined;
}

interface Checked {
  index: number;
  id: string | undefined;
  /** The lead id, lower-cased, when it was a uuid. */
  lead: string | undefined;
  reasons: string[];
  /** Set when the shape was valid. */
  event: IngestEvent | null;
  timeMs: number;
}

/**
 * Validates a batch and stores the valid events that are new (see the module
 * doc). `events` are unvalidated values: anything may be passed, and every
 * problem is reported per event. Pass a client to ingest inside the caller's
 * transaction. No size limit here (the arrays are parameters); batches of
 * about {@linkcode MAX_INGEST_BATCH} keep one statement short.
 */
export async function ingestEvents(
  sql: Queryable,
  events: readonly unknown[],
  options: IngestOptions,
): Promise<IngestResult> {
  const { now, maxFutureMs = 5 * MINUTE, duplicateWindowMs = DAY, source = "ingest" } = options;
  if (!Number.isFinite(now) || !(maxFutureMs >= 0)) {
    throw new RangeError(
      `Cannot ingest events: now (${now}) must be an epoch ms and maxFutureMs (${maxFutureMs}) non-negative`,
    );
  }
  // Built only when an event needs zod (most batches never do).
  let schema: ReturnType<typeof eventSchema> | undefined;
  const checked: Checked[] = events.map((raw, index) => {
    const plain = plainValidEvent(raw, now, maxFutureMs);
    if (plain !== null) {
      return {
        index,
        id: plain.id.toLowerCase(),
        lead: plain.lead_id.toLowerCase(),
        reasons: [],
        event: plain,
        timeMs: Date.parse(plain.time),
      };
    }
    const id = uuidField(raw, "id");
    const lead = uuidField(raw, "lead_id");
    schema ??= eventSchema(now, maxFutureMs);
    const parsed = schema.safeParse(raw);
    const rawTime = typeof raw === "object" && raw !== null
      ? (raw as Record<string, unknown>).time
      : undefined;
    return {
      index,
      id,
      lead,
      reasons: parsed.success
        ? []
        : parsed.error.issues.flatMap((i) => plainIssues(i)).map((i) => reason(i.path, i.message)),
      // The raw event_data is stored, not zod's copy, which drops a "__proto__" key.
      event: parsed.success
        ? { ...parsed.data, event_data: (raw as IngestEvent).event_data }
        : null,
      timeMs: typeof rawTime === "string" ? Date.parse(rawTime) : NaN,
    };
  });
  if (checked.length === 0) return { stored: [], duplicates: [], rejected: [] };
  const result = await storeChecked(sql, checked, { source, duplicateWindowMs });
  const rows = options.metrics?.ingestRows;
  rows?.inc({ outcome: "stored" }, result.stored.length);
  rows?.inc({ outcome: "duplicate" }, result.duplicates.length);
  rows?.inc({ outcome: "rejected" }, result.rejected.length);
  return result;
}

/** The database part of {@linkcode ingestEvents}: lead and retention checks, then the insert. */
async function storeChecked(
  sql: Queryable,
  checked: Checked[],
  { source, duplicateWindowMs }: { source: string; duplicateWindowMs: number },
): Promise<IngestResult> {
  const leadIds = [...new Set(checked.map((c) => c.lead).filter((l) => l !== undefined))];
  // The leads that do NOT exist come back (usually none), not the thousand that do.
  const { rows } = await sql.query<{ missing: string[]; retained_from: Date | null }>(
    `SELECT ARRAY(SELECT l::text FROM unnest($1::uuid[]) l
                   WHERE NOT EXISTS (SELECT 1 FROM businesses b WHERE b.id = l)) AS missing,
            (SELECT retained_from FROM lead_metrics_state) AS retained_from`,
    [leadIds],
  );
  const missing = new Set(rows[0]?.missing ?? leadIds);
  const retainedFrom = rows[0]?.retained_from ? new Date(rows[0].retained_from).getTime() : null;

  const candidates: NewLeadEvent[] = [];
  const firstOf = new Map<string, number>();
  const duplicates: IngestedEvent[] = [];
  for (const c of checked) {
    if (c.lead !== undefined && missing.has(c.lead)) c.reasons.push("lead_id: no lead has this id");
    if (retainedFrom !== null && c.timeMs < retainedFrom) {
      c.reasons.push(
        `time: before ${new Date(retainedFrom).toISOString()}, where retained events start`,
      );
    }
    if (c.reasons.length > 0 || c.event === null) continue;
    const id = c.id!;
    if (firstOf.has(id)) {
      duplicates.push({ index: c.index, id });
      continue;
    }
    firstOf.set(id, c.index);
    const e = c.event;
    candidates.push({
      id,
      lead_id: e.lead_id,
      event_type: e.event_type,
      event_data: e.event_data ?? {},
      source: e.source === undefined ? source : `${source}:${e.source}`,
      time: new Date(c.timeMs),
    });
  }

  const written = new Set(
    candidates.length === 0
      ? []
      : await insertLeadEvents(sql, candidates, { skipDuplicatesWithinMs: duplicateWindowMs }),
  );
  const stored: IngestedEvent[] = [];
  for (const e of candidates) {
    const index = firstOf.get(e.id!)!;
    (written.has(e.id!) ? stored : duplicates).push({ index, id: e.id! });
  }
  duplicates.sort((a, b) => a.index - b.index);
  const rejected = checked.filter((c) => c.reasons.length > 0).map((c): RejectedEvent => ({
    index: c.index,
    ...(c.id === undefined ? {} : { id: c.id }),
    reasons: c.reasons,
  }));
  return { stored, duplicates, rejected };
}
