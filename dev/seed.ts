/**
 * `deno task seed [--seed N] [--leads 5000] [--reset] [--source seed] [--now ISO]`
 *
 * Fills the configured database (DATABASE_URL and the NEON_* settings, read
 * by shared/config/) with the demo set of dev/seed_data.ts and prints one
 * JSON line with the counts and the elapsed time. Usage and setup errors are
 * one line on stderr (exit 2), database errors too (exit 1).
 *
 * Everything happens in ONE transaction, serialised per source by an advisory
 * lock, with multi-row `unnest` inserts of up to 1,000 rows each:
 *
 * - Without `--reset` a rerun is idempotent: businesses are inserted with
 *   `ON CONFLICT (source, external_id) DO NOTHING`, and events, emails,
 *   appointments and suppressions are written only for the leads inserted
 *   now. A larger `--leads` adds the missing leads; existing ones are kept.
 * - `--reset` first deletes the rows this source owns: its businesses, every
 *   row that references them (email_messages, appointments, lead_events) and
 *   the suppressions whose reason starts with `<source>:`. Nothing else is
 *   touched, so the same seed then gives the same rows again (ids included).
 *
 * Sources must be `seed` or `seed_<suffix>`, so that a reset can never delete
 * leads that a real source (a scraper) found.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { Pool, PoolClient } from "@neondatabase/serverless";
import { parseConfig } from "../shared/config/mod.ts";
import { readToolEnvironment } from "../shared/config/dev_env_file.ts";
import { ConfigError } from "../shared/errors.ts";
import { poolFor } from "../shared/db/pool.ts";
import { generateLeads, type OutreachStatus, type SeedLead } from "./seed_data.ts";

/** A usage or setup error: printed as one line, exit code 2. */
export class SeedUsageError extends Error {
  override name = "SeedUsageError";
}

/** Row counts per seeded table. */
export interface TableCounts {
  businesses: number;
  lead_events: number;
  email_messages: number;
  appointments: number;
  email_suppressions: number;
}

/** Options for {@linkcode seedDatabase}. */
export interface SeedOptions {
  /** PRNG seed, an unsigned 32-bit integer. */
  seed: number;
  /** Number of leads in the set. */
  leads: number;
  /** End of the generated history, epoch ms. */
  now: number;
  /** Delete this source's rows first. @default false */
  reset?: boolean;
  /** `seed` or `seed_<suffix>`. @default "seed" */
  source?: string;
  /** Rows per INSERT statement. @default 1000 */
  batchSize?: number;
}

/** What {@linkcode seedDatabase} did; printed as one JSON line by the CLI. */
export interface SeedSummary {
  seed: number;
  source: string;
  leads: number;
  now: string;
  reset: boolean;
  /** Rows deleted by `--reset`; null without it. */
  deleted: TableCounts | null;
  inserted: TableCounts;
  /** Leads of the set that were already in the database (kept as they are). */
  existing: number;
  /** outreach_status of the inserted leads. */
  statuses: Partial<Record<OutreachStatus, number>>;
  elapsed_ms: number;
}

const SOURCE = /^seed(_[a-z0-9_]{1,40})?$/;
const MAX_LEADS = 200_000;

function checkSource(source: string): string {
  if (!SOURCE.test(source)) {
    throw new SeedUsageError(
      `--source must be "seed" or "seed_<suffix>" (lowercase letters, digits, _), got "${source}"`,
    );
  }
  return source;
}

function iso(t: number | null): string | null {
  return t === null ? null : new Date(t).toISOString();
}

/**
 * Deletes everything `source` owns (see the module doc); returns the counts.
 * Runs on the caller's client so that it can share a transaction.
 */
export async function deleteSeeded(
  client: Pool | PoolClient,
  source: string,
): Promise<TableCounts> {
  checkSource(source);
  const owned = "SELECT id FROM businesses WHERE source = $1";
  const run = async (sql: string) => (await client.query(sql, [source])).rowCount ?? 0;
  const email_messages = await run(`DELETE FROM email_messages WHERE business_id IN (${owned})`);
  const appointments = await run(`DELETE FROM appointments WHERE business_id IN (${owned})`);
  const lead_events = await run(`DELETE FROM lead_events WHERE lead_id IN (${owned})`);
  // left() rather than LIKE: "_" in a source would be a LIKE wildcard.
  const email_suppressions = await run(
    "DELETE FROM email_suppressions WHERE left(reason, length($1) + 1) = $1 || ':'",
  );
  const businesses = await run("DELETE FROM businesses WHERE source = $1");
  return { businesses, lead_events, email_messages, appointments, email_suppressions };
}

/** Runs `sql` (whose parameters are one array per column) once per batch of rows. */
async function insertBatches<T>(
  client: PoolClient,
  sql: string,
  rows: readonly T[],
  columns: readonly ((row: T) => unknown)[],
  batchSize: number,
): Promise<{ count: number; returned: Record<string, unknown>[] }> {
  let count = 0;
  const returned: Record<string, unknown>[] = [];
  for (let start = 0; start < rows.length; start += batchSize) {
    const batch = rows.slice(start, start + batchSize);
    const result = await client.query(sql, columns.map((column) => batch.map(column)));
    count += result.rowCount ?? 0;
    returned.push(...result.rows);
  }
  return { count, returned };
}

const INSERT_BUSINESSES = `
  INSERT INTO businesses (id, name, category, city, rating, reviews, has_website, phone,
    phone_valid, email, email_confidence_score, outreach_status, last_contacted,
    response_time_hours, lead_score, source, external_id, created_at, updated_at)
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::int[],
    $7::boolean[], $8::text[], $9::boolean[], $10::text[], $11::real[], $12::text[],
    $13::timestamptz[], $14::real[], $15::real[], $16::text[], $17::text[], $18::timestamptz[],
    $19::timestamptz[])
  ON CONFLICT (source, external_id) DO NOTHING
  RETURNING id`;

const INSERT_EVENTS = `
  INSERT INTO lead_events (id, time, lead_id, event_type, event_data, source)
  SELECT id, time, lead_id, event_type, event_data::jsonb, source
    FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::text[], $5::text[], $6::text[])
      AS e(id, time, lead_id, event_type, event_data, source)`;

const INSERT_EMAILS = `
  INSERT INTO email_messages (id, business_id, to_address, template, send_day, subject, provider,
    message_id, status, attempts, created_at, sent_at)
  SELECT id, business_id, to_address, template, send_day, subject, 'seed', message_id, 'sent', 1,
      sent_at, sent_at
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::date[], $6::text[],
      $7::text[], $8::timestamptz[])
      AS m(id, business_id, to_address, template, send_day, subject, message_id, sent_at)`;

const INSERT_APPOINTMENTS = `
  INSERT INTO appointments (id, business_id, starts_at, duration_min, attendee_email, day, status,
    created_at)
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::int[], $5::text[],
    $6::date[], $7::text[], $8::timestamptz[])`;

// Another source (or a real unsubscribe) may already hold the address: theirs wins.
const INSERT_SUPPRESSIONS = `
  INSERT INTO email_suppressions (address, reason, created_at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
  ON CONFLICT (address) DO NOTHING`;

/** Writes the demo set into `pool`'s database in one transaction; see the module doc. */
export async function seedDatabase(pool: Pool, options: SeedOptions): Promise<SeedSummary> {
  const started = performance.now();
  const source = checkSource(options.source ?? "seed");
  const batchSize = options.batchSize ?? 1000;
  const leads = generateLeads(options.leads, { seed: options.seed, now: options.now, source });
  const client = await pool.connect();
  let deleted: TableCounts | null = null;
  let inserted: TableCounts;
  let fresh: SeedLead[];
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtext('pcove:seed:' || $1))", [source]);
    if (options.reset) deleted = await deleteSeeded(client, source);
    const b = leads.map((l) => l.business);
    const businesses = await insertBatches(client, INSERT_BUSINESSES, b, [
      (r) => r.id,
      (r) => r.name,
      (r) => r.category,
      (r) => r.city,
      (r) => r.rating,
      (r) => r.reviews,
      (r) => r.has_website,
      (r) => r.phone,
      (r) => r.phone_valid,
      (r) => r.email,
      (r) => r.email_confidence_score,
      (r) => r.outreach_status,
      (r) => iso(r.last_contacted),
      (r) => r.response_time_hours,
      (r) => r.lead_score,
      (r) => r.source,
      (r) => r.external_id,
      (r) => iso(r.created_at),
      (r) => iso(r.updated_at),
    ], batchSize);
    const newIds = new Set(businesses.returned.map((row) => row.id as string));
    fresh = leads.filter((l) => newIds.has(l.business.id));
    // lead_events has no foreign key: drop any orphans a manual delete left
    // behind, so a re-inserted lead gets exactly its own history.
    await client.query("DELETE FROM lead_events WHERE lead_id = ANY($1::uuid[]) AND source = $2", [
      [...newIds],
      source,
    ]);
    const events = await insertBatches(client, INSERT_EVENTS, fresh.flatMap((l) => l.events), [
      (e) => e.id,
      (e) => iso(e.time),
      (e) => e.lead_id,
      (e) => e.event_type,
      (e) => JSON.stringify(e.event_data),
      (e) => e.source,
    ], batchSize);
    const emails = await insertBatches(client, INSERT_EMAILS, fresh.flatMap((l) => l.emails), [
      (m) => m.id,
      (m) => m.business_id,
      (m) => m.to_address,
      (m) => m.template,
      (m) => m.send_day,
      (m) => m.subject,
      (m) => m.message_id,
      (m) => iso(m.sent_at),
    ], batchSize);
    const appointments = await insertBatches(
      client,
      INSERT_APPOINTMENTS,
      fresh.flatMap((l) => (l.appointment ? [l.appointment] : [])),
      [
        (a) => a.id,
        (a) => a.business_id,
        (a) => iso(a.starts_at),
        (a) => a.duration_min,
        (a) => a.attendee_email,
        (a) => a.day,
        (a) => a.status,
        (a) => iso(a.created_at),
      ],
      batchSize,
    );
    const suppressions = await insertBatches(
      client,
      INSERT_SUPPRESSIONS,
      fresh.flatMap((l) => (l.suppression ? [l.suppression] : [])),
      [(s) => s.address, (s) => s.reason, (s) => iso(s.created_at)],
      batchSize,
    );
    await client.query("COMMIT");
    inserted = {
      businesses: businesses.count,
      lead_events: events.count,
      email_messages: emails.count,
      appointments: appointments.count,
      email_suppressions: suppressions.count,
    };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
  const statuses: Partial<Record<OutreachStatus, number>> = {};
  for (const { business } of fresh) {
    statuses[business.outreach_status] = (statuses[business.outreach_status] ?? 0) + 1;
  }
  return {
    seed: options.seed,
    source,
    leads: options.leads,
    now: new Date(options.now).toISOString(),
    reset: options.reset ?? false,
    deleted,
    inserted,
    existing: leads.length - fresh.length,
    statuses,
    elapsed_ms: Math.round(performance.now() - started),
  };
}

const USAGE = "usage: deno task seed [--seed N] [--leads 5000] [--reset] [--source seed] " +
  "[--now 2026-06-01T00:00:00Z]";

function parseCount(flag: string, text: string, min: number, max: number): number {
  const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) {
    throw new SeedUsageError(`--${flag} must be an integer from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

/** The start of the current UTC day: reruns on one day give identical times. */
function startOfUtcDay(t: number): number {
  return Math.floor(t / 86_400_000) * 86_400_000;
}

/** Parses the CLI flags; throws {@linkcode SeedUsageError}. */
export function parseSeedArgs(
  args: string[],
  options: { now?: () => number } = {},
): SeedOptions & { help: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        seed: { type: "string", default: "1" },
        leads: { type: "string", default: "5000" },
        reset: { type: "boolean", default: false },
        source: { type: "string", default: "seed" },
        now: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    throw new SeedUsageError(`${(err as Error).message}; ${USAGE}`, { cause: err });
  }
  let now = startOfUtcDay((options.now ?? Date.now)());
  if (values.now !== undefined) {
    now = Date.parse(values.now);
    if (Number.isNaN(now)) {
      throw new SeedUsageError(`--now must be an ISO date or time, got "${values.now}"`);
    }
  }
  return {
    seed: parseCount("seed", values.seed, 0, 0xffffffff),
    leads: parseCount("leads", values.leads, 1, MAX_LEADS),
    reset: values.reset,
    source: checkSource(values.source),
    now,
    help: values.help,
  };
}

// parseConfig validates the whole environment, but seeding needs only the
// database: inert placeholders stand in for Redis (as in dev/token.ts).
const UNUSED_REDIS: Record<string, string> = {
  UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9",
  UPSTASH_REDIS_REST_TOKEN: "unused-by-seed",
};

/**
 * Runs the CLI against the database `env` names; returns the summary (or
 * null after `--help`). Throws {@linkcode SeedUsageError} or ConfigError for
 * bad flags or environment, and database errors as they come.
 */
export async function runSeedCli(
  args: string[],
  env: Record<string, string | undefined>,
  options: { now?: () => number } = {},
): Promise<SeedSummary | null> {
  const parsed = parseSeedArgs(args, options);
  if (parsed.help) {
    console.error(USAGE);
    return null;
  }
  if (!env.DATABASE_URL && !env.DATABASE_URL_FILE) {
    throw new SeedUsageError(
      "Cannot seed: DATABASE_URL is not set; point it (with NEON_WS_PROXY, " +
        "NEON_USE_SECURE_WEBSOCKET=false and NEON_PIPELINE_CONNECT=false for a local Postgres " +
        "behind dev/neon_proxy.ts) at a database migrated by `deno task migrate`, " +
        "or start the local stack with demo data: `deno task dev --seed`",
    );
  }
  const filled = { ...env };
  for (const [name, value] of Object.entries(UNUSED_REDIS)) {
    if (!filled[name] && !filled[`${name}_FILE`]) filled[name] = value;
  }
  const config = parseConfig(filled);
  if (config.env === "production") {
    throw new SeedUsageError("Refusing to seed demo data with APP_ENV=production");
  }
  const pool = poolFor(config.database, {
    max: 1,
    connectionTimeoutMillis: 10_000,
    onError: () => {},
  });
  try {
    return await seedDatabase(pool, parsed);
  } finally {
    await pool.end().catch(() => {});
  }
}

/** One line for a database error, with a hint for the usual causes. */
function describeDatabaseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = e?.message || String(err);
  if (e?.code === "42P01") {
    return `Cannot seed: ${message}; run \`deno task migrate\` against DATABASE_URL first`;
  }
  return `Cannot seed: ${message.split("\n")[0]}`;
}

if (import.meta.main) {
  try {
    // Without a target, the running `deno task dev` stack (shared/config/dev_env_file.ts).
    const summary = await runSeedCli(Deno.args, readToolEnvironment().env);
    if (summary) console.log(JSON.stringify(summary));
  } catch (err) {
    if (err instanceof SeedUsageError || err instanceof ConfigError) {
      console.error(err.message);
      Deno.exit(2);
    }
    console.error(describeDatabaseError(err));
    Deno.exit(1);
  }
}
