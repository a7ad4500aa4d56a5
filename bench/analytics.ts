/**
 * Analytics ingest and lead-metrics queries: `deno run -A bench/analytics.ts`
 * (`deno task bench:analytics`). Always its own local stack (dev/stack.ts:
 * PostgreSQL behind the Neon WebSocket proxy, redis-server behind the Upstash
 * REST bridge; proxy and bridge run in THIS process, as in `deno task dev`):
 * the bench writes millions of events. JSON lines on stdout (see report.ts),
 * one per scenario:
 *
 * - `ingest_internal`: `--ingest-events` (1,000,000) events through
 *   `ingestEvents()` (shared/analytics/ingest.ts) in batches of `--batch`
 *   (1,000), `--ingest-concurrency` (8) batches in flight on a pool of as
 *   many connections. Events are built before the clock starts; each one is
 *   validated, its lead checked and the batch inserted, as in production.
 * - `ingest_api`: `--api-events` (1,000,000) events through `POST /v1/events`
 *   of a real edge process (edge/main.ts, LOG_LEVEL=warn, rate limit far
 *   above the load) in bodies of `--batch` events, `--api-connections` (8)
 *   requests in flight, sent by a SEPARATE load process (this module with
 *   `--api-load`) that serialises every body before its clock starts. Every
 *   answer is read and its per-event outcome counted.
 * - `query_rollup`: `leadMetrics()` over 30 days at 1h (shared/analytics/
 *   queries.ts: rollup plus the not yet refreshed tail, one read-only
 *   snapshot), `--rollup-runs` (200) times, on `--query-events` (10,000,000)
 *   events over `--query-days` (30) days in a database of their own, after
 *   ONE full `refreshLeadMetrics()` (timed: `refresh_full_ms`). Then a
 *   minute of new events at 1,000/s (`--tail-events`, 60,000) is inserted
 *   and the query timed again with that unrefreshed tail (`tail_p50_ms`,
 *   `tail_p95_ms`), and the incremental refresh that absorbs it is timed
 *   (`refresh_incremental_ms`). What a read is made of: `round_trip_p50_ms`
 *   (`SELECT 1`), `rows_only_p50_ms` (the rollup rows alone, one statement)
 *   and the CPU per query of this process and of PostgreSQL.
 * - `query_raw`: the same answer from a direct GROUP BY over the raw events
 *   (`count(*)`, `count(DISTINCT lead_id)` per hour and type), `--raw-runs`
 *   (5) times; `ratio` is raw p50 ÷ rollup p50 (`ratio_p95` likewise), and
 *   `matches` says whether both returned the same rows.
 *
 * The query data is generated server-side (INSERT … SELECT generate_series,
 * in statements of 1,000,000 rows, times in insertion order as events
 * arrive), then `VACUUM ANALYZE`d, which is what autovacuum does to a table
 * that grew (statistics and the visibility map). The events of the ingest
 * scenarios are vacuumed the same way before the queries, so that
 * autovacuum does not run during them.
 *
 * `--postgres-shared-buffers` (16MB, the local stack's) sizes PostgreSQL's
 * page cache; each line says which (`postgres_shared_buffers`).
 *
 * `--scenarios=ingest_internal,ingest_api,query_rollup,query_raw` picks
 * scenarios (`query_raw` runs `query_rollup` too: they share the data and
 * `ratio` needs both). The lines with a target carry `target_*` and `met`; a
 * missed target adds `limit`, from the CPU split: µs per event (or per
 * query) of this process (the ingest code and the Neon proxy; in
 * `ingest_api` only the proxy and bridge), the edge, the load client and
 * PostgreSQL (all its processes), the machine's busy share, and
 * `cpu_other_*`: busy time of processes outside the bench (the machine may
 * be shared). Human text goes to stderr.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { Pool } from "@neondatabase/serverless";
import { forEachLine } from "../dev/lines.ts";
import { migrateStack } from "../dev/migrate_stack.ts";
import { settingsToEnv, type Stack, startStack } from "../dev/stack.ts";
import { mintDevToken } from "../dev/token.ts";
import { INGEST_EVENT_TYPES, ingestEvents } from "../shared/analytics/ingest.ts";
import { leadMetrics, type LeadMetricsRow } from "../shared/analytics/queries.ts";
import { refreshLeadMetrics } from "../shared/analytics/rollup.ts";
import { bucketSql, bucketStart } from "../shared/analytics/tier.ts";
import { parseConfig } from "../shared/config/mod.ts";
import { loadMigrations, migrate, MIGRATIONS_DIR } from "../shared/db/migrate.ts";
import { poolFor } from "../shared/db/pool.ts";
import { startEdge } from "../testing/process.ts";
import { type CpuSnapshot, cpuSnapshot, cpuSplit } from "./lib/cpu.ts";
import { runModes, spawnMode } from "./lib/child.ts";
import {
  type BenchLine,
  percentile,
  round3,
  runScenario,
  UNLIMITED_RATE_LIMITS,
} from "./lib/report.ts";

const BENCH = "analytics";
/** The targets on a 2-core machine. */
const TARGET_INTERNAL_EVENTS_PER_S = 50_000;
const TARGET_API_EVENTS_PER_S = 25_000;
const TARGET_ROLLUP_P95_MS = 20;
const SCENARIOS = ["ingest_internal", "ingest_api", "query_rollup", "query_raw"] as const;
/** Env var carrying the load process's {@linkcode LoadSpec}. */
const LOAD_VAR = "ANALYTICS_BENCH_LOAD";
const DAY = 86_400_000;
const HOUR = 3_600_000;
/** Event types of the generated traffic (all accepted by ingest). */
const TYPES = [
  "email_sent",
  "email_delivered",
  "email_opened",
  "email_clicked",
  "page_view",
  "form_submitted",
  "call_logged",
  "status_changed",
].filter((t) => INGEST_EVENT_TYPES.includes(t));

interface Settings {
  scenarios: Set<string>;
  ingestEvents: number;
  batch: number;
  ingestConcurrency: number;
  apiEvents: number;
  apiConnections: number;
  queryEvents: number;
  queryDays: number;
  rollupRuns: number;
  rawRuns: number;
  tailEvents: number;
  leads: number;
  /** shared_buffers of the bench's PostgreSQL (the local stack's 16MB unless given). */
  sharedBuffers: string;
}

// ---------------------------------------------------------------------------
/** µs per event by process since `a`, and the machine's busy share. */
function cpuFields(a: CpuSnapshot, b: CpuSnapshot, events: number): Record<string, unknown> {
  const split = cpuSplit(a, b, events);
  return {
    cpu_us_per_event: split.totalPerUnit,
    cpu_split_us_per_event: split.perUnit,
    // Busy time of the whole machine not spent by the processes above: other
    // work sharing the cores during the run (another bench, a test run).
    cpu_other_us_per_event: split.otherPerUnit,
    cpu_busy_pct: split.busyPct,
    cores: navigator.hardwareConcurrency,
  };
}

/** Why a throughput target was missed, from the CPU split. */
function throughputLimit(cpu: Record<string, unknown>, target: number): string {
  const split = cpu.cpu_split_us_per_event as Record<string, number>;
  const total = cpu.cpu_us_per_event as number;
  const cores = cpu.cores as number;
  const parts = Object.entries(split).filter(([, us]) => Number.isFinite(us))
    .sort((x, y) => y[1] - x[1]).map(([name, us]) => `${name} ${us}`).join(", ");
  const needed = round3((cores * 1_000_000) / target);
  return `CPU: machine ${cpu.cpu_busy_pct}% busy, ${cpu.cpu_other_us_per_event} µs per event ` +
    `of it other processes; ${total} CPU-µs per event (${parts}) caps ${cores} cores at ` +
    `~${Math.round((cores * 1_000_000) / total)} events/s; the target needs <= ${needed} µs ` +
    "per event";
}

// ---------------------------------------------------------------------------
// Data.

/** Inserts `n` leads in one statement; returns their ids. */
async function insertLeads(sql: Pool, n: number): Promise<string[]> {
  const { rows } = await sql.query<{ id: string }>(
    `INSERT INTO businesses (name, city, source, external_id)
     SELECT 'Bench Lead ' || g, 'Portland', 'bench:analytics', 'bench-' || g
       FROM generate_series(1, $1::int) g
     RETURNING id`,
    [n],
  );
  return rows.map((r) => r.id);
}

/** One client event as POST /v1/events takes it, at a random time of the last 30 days. */
function clientEvent(leads: readonly string[], now: number, i: number) {
  return {
    id: crypto.randomUUID(),
    time: new Date(now - 60_000 - Math.floor(Math.random() * 30 * DAY)).toISOString(),
    lead_id: leads[i % leads.length]!,
    event_type: TYPES[i % TYPES.length]!,
    event_data: { campaign: "bench", n: i },
  };
}

function batches<T>(n: number, size: number, make: (i: number) => T): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < n; start += size) {
    out.push(Array.from({ length: Math.min(size, n - start) }, (_, j) => make(start + j)));
  }
  return out;
}

async function countSource(sql: Pool, source: string): Promise<number> {
  const { rows } = await sql.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM lead_events WHERE source = $1",
    [source],
  );
  return rows[0]!.n;
}

// ---------------------------------------------------------------------------
// ingest_internal

async function ingestInternal(stack: Stack, s: Settings, leads: string[]): Promise<BenchLine> {
  const sql = poolFor(stack.settings.database, { max: s.ingestConcurrency, onError: () => {} });
  try {
    const now = Date.now();
    const source = "bench:internal";
    const work = batches(s.ingestEvents, s.batch, (i) => clientEvent(leads, now, i));
    await Promise.all(Array.from({ length: s.ingestConcurrency }, () => sql.query("SELECT 1")));
    // Warm-up (JIT, statement plans): a few batches of their own, not counted.
    for (const b of batches(5 * s.batch, s.batch, (i) => clientEvent(leads, now, i))) {
      await ingestEvents(sql, b, { now: Date.now(), source: "bench:warmup" });
    }
    const latencies: number[] = [];
    const counts = { stored: 0, duplicates: 0, rejected: 0 };
    let next = 0;
    const pids = { postgres: stack.postgres?.pid ?? null };
    const a = cpuSnapshot(pids);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: s.ingestConcurrency }, async () => {
      while (next < work.length) {
        const batch = work[next++]!;
        const t = performance.now();
        const r = await ingestEvents(sql, batch, { now: Date.now(), source });
        latencies.push(performance.now() - t);
        counts.stored += r.stored.length;
        counts.duplicates += r.duplicates.length;
        counts.rejected += r.rejected.length;
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuFields(a, cpuSnapshot(pids), s.ingestEvents);
    const inDb = await countSource(sql, source);
    const eventsPerS = Math.round(s.ingestEvents / seconds);
    const met = eventsPerS >= TARGET_INTERNAL_EVENTS_PER_S;
    return {
      bench: BENCH,
      scenario: "ingest_internal",
      n: s.ingestEvents,
      batch: s.batch,
      concurrency: s.ingestConcurrency,
      postgres_shared_buffers: s.sharedBuffers,
      ops_per_s: eventsPerS,
      events_per_s: eventsPerS,
      total_s: round3(seconds),
      batch_p50_ms: round3(percentile(latencies, 50)),
      batch_p99_ms: round3(percentile(latencies, 99)),
      ...counts,
      lost: s.ingestEvents - inDb,
      ...cpu,
      target_events_per_s: TARGET_INTERNAL_EVENTS_PER_S,
      met,
      ...(met ? {} : { limit: throughputLimit(cpu, TARGET_INTERNAL_EVENTS_PER_S) }),
    };
  } finally {
    await sql.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------
// ingest_api

/** What the load process needs. */
interface LoadSpec {
  url: string;
  token: string;
  leads: string[];
  events: number;
  batch: number;
  connections: number;
  warmupRequests: number;
}

/** The load process's summary (its last stdout line). */
interface LoadResult {
  requests: number;
  events: number;
  stored: number;
  duplicates: number;
  rejected: number;
  errors: Record<string, number>;
  seconds: number;
  p50_ms: number;
  p99_ms: number;
  first_error?: string;
}

/** Load-process mode: serialises every body, says `ready`, sends them, prints a summary. */
async function loadMain(): Promise<void> {
  const spec = JSON.parse(Deno.env.get(LOAD_VAR)!) as LoadSpec;
  const now = Date.now();
  const body = (events: unknown[]) => JSON.stringify({ events });
  const bodies = batches(spec.events, spec.batch, (i) => clientEvent(spec.leads, now, i)).map(body);
  const headers = { Authorization: `Bearer ${spec.token}`, "Content-Type": "application/json" };
  const post = (b: string) => fetch(`${spec.url}/v1/events`, { method: "POST", headers, body: b });
  for (let i = 0; i < spec.warmupRequests; i++) {
    const res = await post(body([clientEvent(spec.leads, now, i)]));
    await res.body?.cancel();
  }
  const out: LoadResult = {
    requests: 0,
    events: spec.events,
    stored: 0,
    duplicates: 0,
    rejected: 0,
    errors: {},
    seconds: 0,
    p50_ms: 0,
    p99_ms: 0,
  };
  const latencies: number[] = [];
  let next = 0;
  console.log(JSON.stringify({ phase: "ready" }));

  const t0 = performance.now();
  await Promise.all(Array.from({ length: spec.connections }, async () => {
    while (next < bodies.length) {
      const b = bodies[next++]!;
      const t = performance.now();
      try {
        const res = await post(b);
        const text = await res.text();
        out.requests++;
        if (res.status !== 200) {
          out.errors[res.status] = (out.errors[res.status] ?? 0) + 1;
          out.first_error ??= `${res.status} ${text.slice(0, 300)}`;
          continue;
        }
        const r = JSON.parse(text) as Record<"stored" | "duplicates" | "rejected", unknown[]>;
        out.stored += r.stored.length;
        out.duplicates += r.duplicates.length;
        out.rejected += r.rejected.length;
      } catch (err) {
        out.errors.network = (out.errors.network ?? 0) + 1;
        out.first_error ??= String(err);
      } finally {
        latencies.push(performance.now() - t);
      }
    }
  }));
  out.seconds = (performance.now() - t0) / 1000;
  out.p50_ms = round3(percentile(latencies, 50));
  out.p99_ms = round3(percentile(latencies, 99));
  console.log(JSON.stringify(out));
}

async function ingestApi(stack: Stack, s: Settings, leads: string[]): Promise<BenchLine> {
  const env = {
    ...settingsToEnv(stack.settings),
    EDGE_HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    RATE_LIMITS: UNLIMITED_RATE_LIMITS,
  };
  const { edge, url } = await startEdge(env);
  const sql = poolFor(stack.settings.database, { max: 1, onError: () => {} });
  try {
    const sub = "sa:minerva";
    const token = await mintDevToken(parseConfig(env).auth, { sub, ttlS: 3_600 });
    const smoke = await fetch(`${url}/v1/events`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ events: [clientEvent(leads, Date.now(), 0)] }),
    });
    const smokeBody = await smoke.text();
    if (smoke.status !== 200 || JSON.parse(smokeBody).stored?.length !== 1) {
      throw new Error(`POST /v1/events smoke test: ${smoke.status} ${smokeBody}`);
    }
    const before = await countSource(sql, `api:${sub}`);
    const spec: LoadSpec = {
      url,
      token,
      leads,
      events: s.apiEvents,
      batch: s.batch,
      connections: s.apiConnections,
      warmupRequests: 50,
    };
    const child = spawnMode(import.meta.url, "api-load", {
      env: { [LOAD_VAR]: JSON.stringify(spec) },
    });
    const pids = {
      edge: edge.child.pid,
      load_client: child.pid,
      postgres: stack.postgres?.pid ?? null,
    };
    let a: CpuSnapshot | null = null;
    let b: CpuSnapshot | null = null;
    let result: LoadResult | null = null;
    await forEachLine(child.stdout, (line) => {
      const msg = JSON.parse(line);
      if (msg.phase === "ready") a = cpuSnapshot(pids);
      else {
        b = cpuSnapshot(pids);
        result = msg as LoadResult;
      }
    });
    const status = await child.status;
    if (!status.success || !result || !a || !b) {
      throw new Error(`the load process failed (exit code ${status.code})`);
    }
    const r = result as LoadResult;
    const cpu = cpuFields(a, b, s.apiEvents);
    const after = await countSource(sql, `api:${sub}`);
    const eventsPerS = Math.round(r.stored / r.seconds);
    const met = eventsPerS >= TARGET_API_EVENTS_PER_S;
    const errors = Object.values(r.errors).reduce((x, y) => x + y, 0);
    return {
      bench: BENCH,
      scenario: "ingest_api",
      n: s.apiEvents,
      batch: s.batch,
      concurrency: s.apiConnections,
      postgres_shared_buffers: s.sharedBuffers,
      requests: r.requests,
      ops_per_s: eventsPerS,
      events_per_s: eventsPerS,
      req_per_s: round3(r.requests / r.seconds),
      total_s: round3(r.seconds),
      p50_ms: r.p50_ms,
      p99_ms: r.p99_ms,
      stored: r.stored,
      duplicates: r.duplicates,
      rejected: r.rejected,
      errors,
      errors_by_status: r.errors,
      ...(r.first_error ? { first_error: r.first_error } : {}),
      // Stored by the timed run (the warm-up requests' events excluded) vs answered stored.
      lost: r.stored - (after - before - spec.warmupRequests),
      ...cpu,
      target_events_per_s: TARGET_API_EVENTS_PER_S,
      met,
      ...(met ? {} : { limit: throughputLimit(cpu, TARGET_API_EVENTS_PER_S) }),
    };
  } finally {
    await sql.end().catch(() => {});
    try {
      edge.child.kill("SIGTERM");
    } catch {
      // exited
    }
    const { code, stderr } = await edge.finished();
    if (code !== 0) console.error(`[analytics] edge exited with ${code}\n${stderr}`);
  }
}

// ---------------------------------------------------------------------------
// query_rollup, query_raw

/** A migrated database of its own for the query data; returns a pool on it. */
async function queryDatabase(stack: Stack): Promise<Pool> {
  const name = `bench_query_${crypto.randomUUID().slice(0, 8)}`;
  const target = stack.settings.database;
  const admin = poolFor({ ...target, url: stack.postgres!.adminUrl }, { max: 1 });
  try {
    await admin.query(`CREATE DATABASE ${name} OWNER app`);
  } finally {
    await admin.end().catch(() => {});
  }
  const url = new URL(target.url);
  url.pathname = `/${name}`;
  const sql = poolFor({ ...target, url: url.toString() }, { max: 2, onError: () => {} });
  await migrate(sql, await loadMigrations(MIGRATIONS_DIR));
  return sql;
}

/**
 * `n` events over `[from, to)`, in insertion order of time (as events
 * arrive), types and leads spread pseudo-randomly, server-side, in
 * statements of 1,000,000 rows. With `rebuildIndexes` the indexes of
 * lead_events are dropped first and built again afterwards from their own
 * definitions (a sorted build instead of 10 million random B-tree inserts;
 * the schema ends up the same).
 */
async function generate(
  sql: Pool,
  o: { n: number; from: number; to: number; leads: number; rebuildIndexes: boolean },
): Promise<void> {
  const client = await sql.connect();
  try {
    let indexes: string[] = [];
    if (o.rebuildIndexes) {
      await client.query("SET maintenance_work_mem = '512MB'");
      const { rows } = await client.query<{ name: string; def: string }>(
        `SELECT indexname AS name, indexdef AS def FROM pg_indexes
          WHERE schemaname = 'public' AND tablename = 'lead_events'
            AND indexname <> 'lead_events_pkey'`,
      );
      indexes = rows.map((r) => r.def);
      for (const r of rows) await client.query(`DROP INDEX ${r.name}`);
      await client.query("ALTER TABLE lead_events DROP CONSTRAINT lead_events_pkey");
    }
    const chunk = 1_000_000;
    const span = o.to - o.from;
    for (let start = 0; start < o.n; start += chunk) {
      const count = Math.min(chunk, o.n - start);
      await client.query(
        `INSERT INTO lead_events (time, lead_id, event_type, source)
         SELECT $1::timestamptz + make_interval(secs => (g::float8 / $3) * $4 / 1000.0),
                md5((floor(random() * $5))::text)::uuid,
                ($6::text[])[1 + floor(random() * cardinality($6::text[]))::int],
                'bench:query'
           FROM generate_series($2::bigint, $2::bigint + $7 - 1) g`,
        [new Date(o.from).toISOString(), start, o.n, span, o.leads, TYPES, count],
      );
      console.error(`[analytics] generated ${start + count} of ${o.n} events`);
    }
    if (o.rebuildIndexes) {
      await client.query("ALTER TABLE lead_events ADD PRIMARY KEY (id, time)");
      for (const def of indexes) await client.query(def);
      console.error(`[analytics] rebuilt the primary key and ${indexes.length} indexes`);
    }
  } finally {
    client.release();
  }
}

async function timeRuns<T>(runs: number, fn: () => Promise<T>): Promise<{ ms: number[]; last: T }> {
  let last = await fn(); // warm-up: plans, caches, connection
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    last = await fn();
    ms.push(performance.now() - t);
  }
  return { ms, last };
}

const p = (ms: number[], q: number) => round3(percentile(ms, q));

async function queryScenarios(stack: Stack, s: Settings): Promise<void> {
  const sql = await queryDatabase(stack);
  try {
    const now = Date.now();
    const to = bucketStart(now, "1h") + HOUR;
    const from = to - s.queryDays * DAY;
    const t0 = performance.now();
    await generate(sql, {
      n: s.queryEvents,
      from,
      to: now - 60_000,
      leads: 10_000,
      rebuildIndexes: true,
    });
    const generateS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    await sql.query("VACUUM ANALYZE lead_events");
    const vacuumS = (performance.now() - t1) / 1000;
    console.error(
      `[analytics] ${s.queryEvents} events in ${round3(generateS)} s, VACUUM ANALYZE ${
        round3(vacuumS)
      } s`,
    );
    const range = { from: new Date(from), to: new Date(to), bucket: "1h" as const };

    const t2 = performance.now();
    const full = await refreshLeadMetrics(sql, { now: Date.now() });
    const refreshFullMs = performance.now() - t2;
    const pids = { postgres: stack.postgres?.pid ?? null };
    const a = cpuSnapshot(pids);
    const rollup = await timeRuns(s.rollupRuns, () => leadMetrics(sql, range));
    const cpu = cpuFields(a, cpuSnapshot(pids), s.rollupRuns + 1);
    // What the read is made of: one round trip, and the rollup rows alone in one statement.
    const roundTrip = await timeRuns(50, () => sql.query("SELECT 1"));
    const rowsOnly = await timeRuns(50, () =>
      sql.query(
        `SELECT hour AS bucket, event_type, event_count::int, unique_leads::int
           FROM lead_metrics_hourly WHERE hour >= $1 AND hour < $2 ORDER BY 1, 2`,
        [range.from.toISOString(), range.to.toISOString()],
      ));

    // A minute of new events at 1,000/s that no refresh has seen yet.
    await generate(sql, {
      n: s.tailEvents,
      from: now - 60_000,
      to: now,
      leads: 10_000,
      rebuildIndexes: false,
    });
    const tail = await timeRuns(Math.min(50, s.rollupRuns), () => leadMetrics(sql, range));
    const t3 = performance.now();
    const incremental = await refreshLeadMetrics(sql, { now: Date.now() });
    const refreshIncrementalMs = performance.now() - t3;

    const rollupLine = await runScenario(() => {
      const p95 = p(rollup.ms, 95);
      const met = p95 <= TARGET_ROLLUP_P95_MS;
      return Promise.resolve({
        bench: BENCH,
        scenario: "query_rollup",
        n: s.rollupRuns,
        events: s.queryEvents,
        days: s.queryDays,
        bucket: "1h",
        postgres_shared_buffers: s.sharedBuffers,
        rows: rollup.last.length,
        p50_ms: p(rollup.ms, 50),
        p95_ms: p95,
        p99_ms: p(rollup.ms, 99),
        max_ms: p(rollup.ms, 100),
        // CPU per query (the fields say "event" in the ingest lines).
        cpu_us_per_query: cpu.cpu_us_per_event,
        cpu_split_us_per_query: cpu.cpu_split_us_per_event,
        cpu_other_us_per_query: cpu.cpu_other_us_per_event,
        cpu_busy_pct: cpu.cpu_busy_pct,
        round_trip_p50_ms: p(roundTrip.ms, 50),
        rows_only_p50_ms: p(rowsOnly.ms, 50),
        tail_events: s.tailEvents,
        tail_p50_ms: p(tail.ms, 50),
        tail_p95_ms: p(tail.ms, 95),
        refresh_full_ms: Math.round(refreshFullMs),
        refresh_full_hours: full.hours,
        refresh_incremental_ms: round3(refreshIncrementalMs),
        refresh_incremental_hours: incremental.hours,
        generate_s: round3(generateS),
        vacuum_analyze_s: round3(vacuumS),
        target_p95_ms: TARGET_ROLLUP_P95_MS,
        met,
        ...(met ? {} : {
          limit: (() => {
            const split = cpu.cpu_split_us_per_event as Record<string, number>;
            const ms = (us: number | undefined) => round3((us ?? NaN) / 1000);
            const side = (split.bench ?? 0) > (split.postgres ?? 0) ? "client" : "database";
            return `mostly the ${side} side: per query ${ms(split.bench)} ms CPU ` +
              `in this process (parsing the ${rollup.last.length} rows' text answer, the ` +
              `in-process proxy) vs ${ms(split.postgres)} ms in PostgreSQL (the query and ` +
              `building that text); one statement, a round trip of ` +
              `${p(roundTrip.ms, 50)} ms (SELECT 1); the rows alone ` +
              `take ${p(rowsOnly.ms, 50)} ms in one statement; other processes used ` +
              `${ms(cpu.cpu_other_us_per_event as number)} ms CPU per query meanwhile`;
          })(),
        }),
      });
    });

    if (!s.scenarios.has("query_raw")) return;
    const b = (col: string) => bucketSql(3, "1h", col);
    const rawSql = `
      SELECT ${b("time")} AS bucket, event_type, count(*)::int AS event_count,
             count(DISTINCT lead_id)::int AS unique_leads
        FROM lead_events
       WHERE time >= $1::timestamptz AND time < $2::timestamptz
       GROUP BY 1, 2 ORDER BY 1, 2`;
    const raw = await timeRuns(
      s.rawRuns,
      async () =>
        (await sql.query<LeadMetricsRow & { bucket: Date }>(rawSql, [
          range.from.toISOString(),
          range.to.toISOString(),
        ])).rows.map((r) => ({ ...r, bucket: new Date(r.bucket).toISOString() })),
    );
    const latest = await leadMetrics(sql, range);
    await runScenario(() =>
      Promise.resolve({
        bench: BENCH,
        scenario: "query_raw",
        n: s.rawRuns,
        events: s.queryEvents + s.tailEvents,
        days: s.queryDays,
        bucket: "1h",
        rows: raw.last.length,
        p50_ms: p(raw.ms, 50),
        p95_ms: p(raw.ms, 95),
        max_ms: p(raw.ms, 100),
        ratio: round3(p(raw.ms, 50) / (rollupLine.p50_ms as number)),
        ratio_p95: round3(p(raw.ms, 95) / (rollupLine.p95_ms as number)),
        matches: JSON.stringify(raw.last) === JSON.stringify(latest),
      })
    );
  } finally {
    await sql.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------

function settingsFromArgs(): Settings {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scenarios: { type: "string", default: SCENARIOS.join(",") },
      "ingest-events": { type: "string", default: "1000000" },
      batch: { type: "string", default: "1000" },
      "ingest-concurrency": { type: "string", default: "8" },
      "api-events": { type: "string", default: "1000000" },
      "api-connections": { type: "string", default: "8" },
      "query-events": { type: "string", default: "10000000" },
      "query-days": { type: "string", default: "30" },
      "rollup-runs": { type: "string", default: "200" },
      "raw-runs": { type: "string", default: "5" },
      "tail-events": { type: "string", default: "60000" },
      leads: { type: "string", default: "1000" },
      "postgres-shared-buffers": { type: "string", default: "16MB" },
    },
  });
  const int = (name: keyof typeof values) => {
    const x = Number(values[name]);
    if (!Number.isInteger(x) || x < 1) throw new RangeError(`--${name} must be a positive integer`);
    return x;
  };
  const scenarios = new Set(values.scenarios.split(",").map((x) => x.trim()).filter(Boolean));
  const unknown = [...scenarios].filter((x) => !(SCENARIOS as readonly string[]).includes(x));
  if (unknown.length > 0) throw new RangeError(`unknown scenario(s): ${unknown.join(", ")}`);
  const batch = int("batch");
  if (batch > 1000) throw new RangeError("--batch must be at most 1000 (POST /v1/events limit)");
  return {
    scenarios,
    ingestEvents: int("ingest-events"),
    batch,
    ingestConcurrency: int("ingest-concurrency"),
    apiEvents: int("api-events"),
    apiConnections: int("api-connections"),
    queryEvents: int("query-events"),
    queryDays: int("query-days"),
    rollupRuns: int("rollup-runs"),
    rawRuns: int("raw-runs"),
    tailEvents: int("tail-events"),
    leads: int("leads"),
    sharedBuffers: values["postgres-shared-buffers"],
  };
}

async function main(): Promise<void> {
  const s = settingsFromArgs();
  const started = performance.now();
  // Never the configured services: the bench writes millions of rows.
  const stack = await startStack({
    // Throughput of the app, not of fsync: a benchmark's data is throwaway (docs/reliability.md).
    postgresDurability: "fast",
    postgresSharedBuffers: s.sharedBuffers,
    onProgress: (m) => console.error(`[analytics] ${m}`),
  });
  try {
    await migrateStack(stack.settings);
    const sql = poolFor(stack.settings.database, { max: 1, onError: () => {} });
    const leads = await insertLeads(sql, s.leads).finally(() => sql.end().catch(() => {}));
    console.error(
      `[analytics] ${navigator.hardwareConcurrency} cores shared by this process (ingest, ` +
        `Neon proxy, Upstash bridge), PostgreSQL, redis-server, the edge and its load client`,
    );
    if (s.scenarios.has("ingest_internal")) {
      await runScenario(() => ingestInternal(stack, s, leads));
    }
    if (s.scenarios.has("ingest_api")) await runScenario(() => ingestApi(stack, s, leads));
    if (s.scenarios.has("query_rollup") || s.scenarios.has("query_raw")) {
      // What autovacuum would soon do to the events just ingested, done now so
      // that it does not run during the timed queries.
      const main = poolFor(stack.settings.database, { max: 1, onError: () => {} });
      await main.query("VACUUM ANALYZE lead_events").finally(() => main.end().catch(() => {}));
      await queryScenarios(stack, s);
    }
  } finally {
    await stack.stop();
    console.error(`[analytics] done in ${round3((performance.now() - started) / 1000)} s`);
  }
}

if (import.meta.main) await runModes(main, { "api-load": loadMain });
