/**
 * Outreach effects end to end: `deno run -A bench/outreach.ts`
 * (`deno task bench:outreach`). The real handlers (`createHandlers` of
 * workers/tasks/registry.ts, the `file` email provider in a temp directory,
 * the email breaker) run in worker PROCESSES built like workers/main.ts
 * (this module re-run with `--worker`), against a local stack (dev/stack.ts:
 * redis-server behind the Upstash REST bridge, PostgreSQL behind the Neon
 * WebSocket proxy; bridge and proxy run in THIS process, as in `deno task
 * dev`). JSON lines on stdout (see report.ts), one per scenario:
 *
 * - `send_email`: 10,000 leads (one batched unnest INSERT, source unique per
 *   run, emails under .example), then 10,000 send_email tasks (`intro`),
 *   timed from the first enqueue to the last ack (the queue's own counter).
 *   Checked afterwards: .eml files, `email_messages` rows, committed sends
 *   (ledger `attempts`), provider calls (counted by the workers),
 *   `email_sent` events and task results, each against the 10,000 tasks;
 *   `duplicates` is everything beyond one per task. Then the same 10,000
 *   payloads again under new task ids (`rerun_*`): every result must be
 *   `already_sent`, with no new file and no provider call. New ids need
 *   idempotency keys of their own: under the queue's default key (a hash of
 *   type + payload) the repeat enqueue creates nothing
 *   (`rerun_default_key_new_tasks`).
 * - `book_appointment`: N bookings for N other leads. The confirmation
 *   send_email each booking enqueues goes to a SEPARATE queue namespace
 *   (the handlers' `queue` in the worker), so the booking line times
 *   bookings only; those N confirmations are then drained by fresh workers
 *   and reported as `book_appointment_confirmations` (.eml files with the
 *   .ics invite, ledger rows, duplicates).
 *
 * Before the timed runs the workers open their pool connections and handle
 * a warm-up batch (JIT, breaker state, script cache), whose files are removed.
 *
 * CPU fields: µs per task of this process (producer, poller, the REST bridge
 * and the Neon proxy), of the worker processes, of redis-server and of the
 * PostgreSQL server (all its processes); `cpu_busy_pct` is the whole
 * machine's busy share over the run (100 = every core busy). `limit`
 * explains, from those numbers, what stops the run short of the target.
 *
 * What limits send_email on the 2-core machine is CPU (the `limit` field
 * recomputes it per run); the measured split per process is in
 * docs/benchmarks.md (bench:outreach). A send holds no pool connection
 * across the provider call: a worker's sends share batched statements
 * (workers/tasks/send_email.ts), a few connections in use at once, so two
 * worker processes fit the local PostgreSQL with `--pool=20` each.
 *
 * Flags: `--workers=1 --concurrency=50` (per worker) `--pool=50` (DB_POOL_MAX
 * per worker) `--n=10000 --book-n=5000 --outbox-parent=DIR` (where the .eml
 * temp directories go; /dev/shm takes the disk's fsync out) `--worker-cpu-prof=DIR`
 * (each worker process writes a V8 CPU profile there when it exits: warm-up,
 * timed run and rerun together). Always a local
 * stack: the bench writes 16,000 leads, so it never runs against configured
 * services.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { Pool, PoolClient } from "@neondatabase/serverless";
import type { Redis } from "@upstash/redis";
import { forEachLine } from "../dev/lines.ts";
import { migrateStack } from "../dev/migrate_stack.ts";
import { settingsToEnv, type Stack, startStack } from "../dev/stack.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import { parseConfig, readEnvironment } from "../shared/config/mod.ts";
import { poolFor } from "../shared/db/pool.ts";
import { closeDeps, createRedis, type Deps, makeDeps } from "../shared/deps.ts";
import { emailProviderFromConfig } from "../shared/email/from_config.ts";
import type { EmailProvider } from "../shared/email/provider.ts";
import { createLogger } from "../shared/log.ts";
import { platformCatalog } from "../shared/queue/from_config.ts";
import { createQueue, type EnqueueItem, type TaskQueue } from "../shared/queue/queue.ts";
import { TASK_CATALOG } from "../shared/tasks/catalog.ts";
import { TcpScriptTransport } from "../shared/redis/tcp_scripts.ts";
import { Runner } from "../workers/runner.ts";
import { createHandlers } from "../workers/tasks/registry.ts";
import { type CpuSnapshot, cpuSnapshot as snapshotOf, cpuSplit } from "./lib/cpu.ts";
import { runModes, spawnMode } from "./lib/child.ts";
import { type BenchLine, percentile, round3, runScenario } from "./lib/report.ts";

const BENCH = "outreach";
/** The target for send_email on this 2-core machine. */
const TARGET_EMAILS_PER_S = 2_000;
const WARMUP = 500;
/** Tasks per `enqueueMany` call, and how many calls are in flight at once (as bench/queue.ts). */
const ENQUEUE_BATCH = 500;
const ENQUEUE_IN_FLIGHT = 4;
/** Longest a timed phase may take before the bench gives up. */
const PHASE_TIMEOUT_MS = 90_000;
/** Env var that carries a worker's {@linkcode WorkerSpec} (worker mode). */
const SPEC_VAR = "OUTREACH_BENCH_WORKER";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Worker mode: this module as a worker process (`--worker`).

/** What a worker process consumes and where its bookings enqueue confirmations. */
interface WorkerSpec {
  /** Queue namespace the Runner claims from. */
  namespace: string;
  /** Namespace book_appointment enqueues its confirmation emails into. */
  enqueueNamespace: string;
}

/** One reply line of a worker on stdout. */
interface WorkerReply {
  outreach_worker: "ready" | "started" | "stats" | "stopped";
  provider_calls: number;
  db_queries: number;
  log_lines: number;
}

/**
 * The worker composition root of workers/main.ts (config → deps → breakers →
 * queue → createHandlers → Runner) with the bench's namespaces, a provider
 * wrapper that counts calls, and logs on stderr. Commands on stdin, one per
 * line: `start` (the Runner starts claiming), `stats`, `stop`.
 */
async function workerMain(): Promise<void> {
  const spec = JSON.parse(Deno.env.get(SPEC_VAR)!) as WorkerSpec;
  const config = parseConfig(readEnvironment());
  let logLines = 0;
  const encoder = new TextEncoder();
  const deps: Deps = {
    ...makeDeps(config, "worker"),
    log: createLogger({
      level: config.logLevel,
      fields: { service: "worker" },
      write: (line) => {
        if (++logLines <= 20) Deno.stderr.writeSync(encoder.encode(line + "\n"));
      },
    }),
  };
  // Statements sent to Postgres (BEGIN/COMMIT included): every query of the
  // pool and of checked-out clients goes through a client's query().
  let dbQueries = 0;
  deps.sql.on("connect", (client: PoolClient) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
      dbQueries++;
      return query(...args);
    };
  });
  const breakers = createBreakerRegistry({
    redis: deps.redis,
    policies: config.breakerPolicies,
    log: deps.log,
    now: deps.now,
    namespace: spec.namespace,
  });
  await breakers.start();
  const catalog = platformCatalog(config);
  // The queue's scripts over TCP when REDIS_TCP_URL is set, as workers/main.ts
  // does (the local stack sets it): claims and acks do not go through the
  // REST bridge in this process (docs/queue.md, Transports).
  const tcp = config.redis.tcpUrl === null ? null : new TcpScriptTransport({
    url: config.redis.tcpUrl,
    connectTimeoutMs: config.readyTimeoutMs,
  });
  const queueIn = (namespace: string) =>
    createQueue(deps.redis, catalog, { ...config.queue, namespace }, tcp ?? undefined);
  const queue = queueIn(spec.namespace);
  const enqueueQueue = spec.enqueueNamespace === spec.namespace
    ? queue
    : queueIn(spec.enqueueNamespace);
  const provider = emailProviderFromConfig(config.email, breakers.get("email"));
  let providerCalls = 0;
  const email: EmailProvider = {
    name: provider.name,
    send(msg, opts) {
      providerCalls++;
      return provider.send(msg, opts);
    },
  };
  const runner = new Runner({
    breakers,
    queue,
    handlers: createHandlers({ config, queue: enqueueQueue, breakers, email }),
    deps,
    concurrency: config.worker.concurrency,
    leaseMs: config.worker.leaseMs,
    pollMs: config.worker.pollMs,
    shutdownGraceMs: config.worker.shutdownGraceMs,
  });
  // A long-running worker has its connections open: open the pool's now.
  await Promise.all(
    Array.from({ length: config.database.poolMax }, () => deps.sql.query("SELECT 1")),
  );
  const reply = (kind: WorkerReply["outreach_worker"]) => {
    const line: WorkerReply = {
      outreach_worker: kind,
      provider_calls: providerCalls,
      db_queries: dbQueries,
      log_lines: logLines,
    };
    Deno.stdout.writeSync(encoder.encode(JSON.stringify(line) + "\n"));
  };
  await tcp?.ping();
  reply("ready");
  let stopped = false;
  await forEachLine(Deno.stdin.readable, (command) => {
    if (stopped) return;
    if (command === "start") {
      runner.start();
      reply("started");
    } else if (command === "stats") {
      reply("stats");
    } else if (command === "stop") {
      stopped = true;
    }
  }).catch(() => {});
  await runner.stop();
  await breakers.stop().catch(() => {});
  await tcp?.close();
  await closeDeps(deps);
  reply("stopped");
  Deno.exit(0);
}

// ---------------------------------------------------------------------------
// Bench side.

/** A worker process driven through its stdin (see {@linkcode workerMain}). */
class WorkerProcess {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #replies: WorkerReply[] = [];
  readonly #output: Promise<void>;
  #exited = false;

  constructor(env: Record<string, string>, denoFlags: string[]) {
    this.#child = spawnMode(import.meta.url, "worker", {
      env,
      clearEnv: true,
      stdin: "piped",
      denoFlags,
    });
    this.#stdin = this.#child.stdin.getWriter();
    this.#child.status.then(() => this.#exited = true);
    this.#output = forEachLine(this.#child.stdout, (line) => {
      try {
        const parsed = JSON.parse(line);
        if (parsed && typeof parsed === "object" && "outreach_worker" in parsed) {
          this.#replies.push(parsed as WorkerReply);
        }
      } catch {
        // not a reply line
      }
    });
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** The next reply of `kind` (replies are consumed in order). */
  async #reply(kind: WorkerReply["outreach_worker"], timeoutMs = 30_000): Promise<WorkerReply> {
    const deadline = performance.now() + timeoutMs;
    while (true) {
      const i = this.#replies.findIndex((r) => r.outreach_worker === kind);
      if (i >= 0) return this.#replies.splice(i, 1)[0]!;
      if (this.#exited) await this.#output;
      if (this.#exited && !this.#replies.some((r) => r.outreach_worker === kind)) {
        throw new Error(`worker ${this.pid} exited before its "${kind}" reply`);
      }
      if (performance.now() > deadline) throw new Error(`no "${kind}" from worker ${this.pid}`);
      await sleep(2);
    }
  }

  async #send(command: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(command + "\n"));
  }

  ready(): Promise<WorkerReply> {
    return this.#reply("ready");
  }

  async start(): Promise<void> {
    await this.#send("start");
    await this.#reply("started");
  }

  async stats(): Promise<WorkerReply> {
    await this.#send("stats");
    return await this.#reply("stats");
  }

  /** Graceful stop; the final counters. */
  async stop(): Promise<WorkerReply> {
    await this.#send("stop");
    await this.#stdin.close().catch(() => {});
    const last = await this.#reply("stopped");
    await this.#child.status;
    return last;
  }

  /** Error path: kill it if it still runs. */
  async kill(): Promise<void> {
    if (this.#exited) return;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.#child.status;
    await this.#output.catch(() => {});
  }
}

interface Settings {
  workers: number;
  /** Runner concurrency per worker process. */
  concurrency: number;
  /** DB_POOL_MAX per worker process. */
  pool: number;
  n: number;
  bookN: number;
  /** Where the outbox temp directories go. @default the system temp directory */
  outboxParent: string | undefined;
  /** Scenarios to run (`--only`); the confirmations need the bookings. @default all */
  only: ReadonlySet<string>;
  /** Where each worker writes a V8 CPU profile (`--cpu-prof`) when it exits. @default none */
  workerCpuProf: string | undefined;
}

const SCENARIOS = ["send_email", "book_appointment", "book_appointment_confirmations"];

/** A set of worker processes sharing one spec. */
class WorkerGroup {
  readonly procs: WorkerProcess[];

  private constructor(procs: WorkerProcess[]) {
    this.procs = procs;
  }

  static async spawn(
    stack: Stack,
    s: Settings,
    spec: WorkerSpec,
    emailDir: string,
  ): Promise<WorkerGroup> {
    const env = {
      ...settingsToEnv(stack.settings),
      APP_ENV: "development",
      LOG_LEVEL: "warn",
      EMAIL_PROVIDER: "file",
      EMAIL_DIR: emailDir,
      DB_POOL_MAX: String(s.pool),
      WORKER_CONCURRENCY: String(s.concurrency),
      [SPEC_VAR]: JSON.stringify(spec),
    };
    const denoFlags = s.workerCpuProf ? ["--cpu-prof", `--cpu-prof-dir=${s.workerCpuProf}`] : [];
    const procs = Array.from({ length: s.workers }, () => new WorkerProcess(env, denoFlags));
    const group = new WorkerGroup(procs);
    try {
      await Promise.all(procs.map((p) => p.ready()));
    } catch (err) {
      await group.kill();
      throw err;
    }
    return group;
  }

  get pids(): number[] {
    return this.procs.map((p) => p.pid);
  }

  async start(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.start()));
  }

  /** Provider calls, DB statements and log lines so far, summed. */
  async stats(): Promise<GroupStats> {
    const replies = await Promise.all(this.procs.map((p) => p.stats()));
    return sum(replies);
  }

  async stop(): Promise<GroupStats> {
    const replies = await Promise.all(this.procs.map((p) => p.stop()));
    return sum(replies);
  }

  async kill(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill()));
  }
}

/** Counters summed over a group's workers. */
interface GroupStats {
  providerCalls: number;
  dbQueries: number;
  logLines: number;
}

function sum(replies: WorkerReply[]): GroupStats {
  return {
    providerCalls: replies.reduce((a, r) => a + r.provider_calls, 0),
    dbQueries: replies.reduce((a, r) => a + r.db_queries, 0),
    logLines: replies.reduce((a, r) => a + r.log_lines, 0),
  };
}

/** CPU so far of this process, the workers, redis-server and PostgreSQL. */
function cpuSnapshot(stack: Stack, workerPids: number[]): CpuSnapshot {
  return snapshotOf({
    workers: workerPids,
    redis: stack.redisServer?.pid ?? null,
    postgres: stack.postgres?.pid ?? null,
  });
}

/** CPU µs per task by process since `a`, and the machine's busy share. */
function cpuFields(a: CpuSnapshot, b: CpuSnapshot, n: number): Record<string, number> {
  const split = cpuSplit(a, b, n);
  const per = split.perUnit;
  const out = {
    bench_cpu_us_per_task: per.bench!,
    worker_cpu_us_per_task: per.workers!,
    redis_cpu_us_per_task: per.redis!,
    postgres_cpu_us_per_task: per.postgres!,
    cpu_busy_pct: split.busyPct,
  };
  return {
    ...out,
    cpu_us_per_task: round3(
      out.bench_cpu_us_per_task + out.worker_cpu_us_per_task + out.redis_cpu_us_per_task +
        out.postgres_cpu_us_per_task,
    ),
    // Waiting on the disk (the file provider fsyncs every message) and taken by the hypervisor.
    cpu_iowait_pct: split.iowaitPct,
    cpu_steal_pct: split.stealPct,
  };
}

// --- Queue helpers -----------------------------------------------------------

/** Enqueues `items` in batches, a few calls in flight; the ids in order, and how many are new. */
async function fill(
  q: TaskQueue,
  items: EnqueueItem[],
): Promise<{ ids: string[]; created: number }> {
  const ids = new Array<string>(items.length);
  let created = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: ENQUEUE_IN_FLIGHT }, async () => {
      while (next < items.length) {
        const from = next;
        const to = Math.min(items.length, from + ENQUEUE_BATCH);
        next = to;
        const res = await q.enqueueMany(items.slice(from, to));
        for (let k = 0; k < res.length; k++) {
          ids[from + k] = res[k]!.id;
          if (res[k]!.created) created++;
        }
      }
    }),
  );
  return { ids, created };
}

/** Finished tasks (succeeded + dead) by the queue's own counters. */
async function finished(q: TaskQueue): Promise<number> {
  const s = await q.stats();
  return (s.succeeded ?? 0) + (s.dead ?? 0);
}

/** Resolves once the counters say `target` tasks finished; polls every few ms. */
async function settled(q: TaskQueue, target: number): Promise<void> {
  const deadline = performance.now() + PHASE_TIMEOUT_MS;
  while (await finished(q) < target) {
    if (performance.now() > deadline) {
      throw new Error(
        `queue did not settle in ${PHASE_TIMEOUT_MS} ms: ${JSON.stringify(await q.stats())}`,
      );
    }
    await sleep(5);
  }
}

interface TaskState {
  status: string;
  attempts: number;
  /** Enqueue → ack and claim → ack, ms (Redis clock). */
  e2eMs: number;
  runMs: number;
  result: Record<string, unknown> | null;
}

/** Each task's state, pipelined (outside the timed part). */
async function states(redis: Redis, q: TaskQueue, ids: string[]): Promise<TaskState[]> {
  const out: TaskState[] = [];
  for (let from = 0; from < ids.length; from += 1000) {
    const p = redis.pipeline();
    for (const id of ids.slice(from, from + 1000)) {
      p.hmget(
        q.ctx.keys.task(id),
        "status",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "result",
      );
    }
    for (const reply of await p.exec<unknown[]>()) {
      const v = Array.isArray(reply)
        ? reply
        : ["status", "attempts", "created_at", "started_at", "finished_at", "result"].map((k) =>
          (reply as Record<string, unknown> | null)?.[k]
        );
      const [status, attempts, created, started, done, result] = v.map((x) =>
        x == null ? null : String(x)
      );
      out.push({
        status: String(status),
        attempts: Number(attempts),
        e2eMs: Number(done) - Number(created),
        runMs: Number(done) - Number(started),
        result: result ? JSON.parse(result) : null,
      });
    }
  }
  return out;
}

function countBy<T>(xs: T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

function latencyFields(st: TaskState[]): Record<string, number> {
  const run = st.map((s) => s.runMs).filter(Number.isFinite);
  const e2e = st.map((s) => s.e2eMs).filter(Number.isFinite);
  return {
    // claim → ack of each task (handler + the exchange that reports it)
    p50_ms: round3(percentile(run, 50)),
    p99_ms: round3(percentile(run, 99)),
    // enqueue → ack (includes the wait in the backlog of a bulk enqueue)
    e2e_p50_ms: round3(percentile(e2e, 50)),
    e2e_p99_ms: round3(percentile(e2e, 99)),
  };
}

/** Enqueues `items` (workers already claiming) and times it until every one finished. */
async function timedRun(
  q: TaskQueue,
  items: EnqueueItem[],
): Promise<{ ids: string[]; s: number; enqueueS: number }> {
  const base = await finished(q);
  const t0 = performance.now();
  const { ids, created } = await fill(q, items);
  const enqueueS = (performance.now() - t0) / 1000;
  if (created !== items.length) {
    throw new Error(`${items.length - created} of ${items.length} enqueues were deduplicated`);
  }
  await settled(q, base + items.length);
  return { ids, s: (performance.now() - t0) / 1000, enqueueS };
}

// --- Leads and files -----------------------------------------------------------

/** Inserts `n` leads in ONE unnest INSERT; returns their ids in order. */
async function insertLeads(sql: Pool, source: string, part: string, n: number): Promise<string[]> {
  const names: string[] = [];
  const cities: string[] = [];
  const emails: string[] = [];
  const externalIds: string[] = [];
  for (let i = 0; i < n; i++) {
    names.push(`Bench ${part} Bakery ${i}`);
    cities.push(["Portland", "Bangor", "Camden", "Rockland"][i % 4]!);
    emails.push(`owner-${part}-${i}@${source.replaceAll(":", "-")}.example`);
    externalIds.push(`${part}-${i}`);
  }
  const { rows } = await sql.query<{ id: string; external_id: string }>(
    `INSERT INTO businesses (name, city, email, source, external_id)
     SELECT name, city, email, $4, external_id
       FROM unnest($1::text[], $2::text[], $3::text[], $5::text[])
            AS l(name, city, email, external_id)
     RETURNING id, external_id`,
    [names, cities, emails, source, externalIds],
  );
  const byExternal = new Map(rows.map((r) => [r.external_id, r.id]));
  return externalIds.map((e) => byExternal.get(e)!);
}

/** Names of the finished .eml files in `dir` (less those in `except`) and leftover temp files. */
function outbox(
  dir: string,
  except: ReadonlySet<string> = new Set(),
): { eml: Set<string>; tmp: number } {
  const eml = new Set<string>();
  let tmp = 0;
  for (const e of Deno.readDirSync(dir)) {
    if (e.name.endsWith(".tmp")) tmp++;
    else if (e.name.endsWith(".eml") && !except.has(e.name)) eml.add(e.name);
  }
  return { eml, tmp };
}

/** A fresh outbox directory for the file provider. */
async function makeOutbox(s: Settings): Promise<string> {
  return await Deno.makeTempDir({
    prefix: "pco-bench-outbox-",
    ...(s.outboxParent ? { dir: s.outboxParent } : {}),
  });
}

/** The system temp directory (where Deno.makeTempDir puts things by default). */
function tempParent(): string {
  return Deno.env.get("TMPDIR") ?? "/tmp";
}

function sendItem(leadId: string): EnqueueItem {
  return {
    type: "send_email",
    payload: { lead_id: leadId, template: "intro", variables: { sender_name: "Ana Bench" } },
  };
}

// --- Scenarios -----------------------------------------------------------------

interface Ctx {
  stack: Stack;
  redis: Redis;
  sql: Pool;
  run: string;
  source: string;
  s: Settings;
  /** The booking scenarios' email directory (the send scenario has its own). */
  outbox: string;
}

function queueIn(ctx: Ctx, namespace: string): TaskQueue {
  return createQueue(ctx.redis, TASK_CATALOG, { namespace });
}

function base(scenario: string, n: number, ctx: Ctx): BenchLine {
  const { s } = ctx;
  return {
    bench: BENCH,
    scenario,
    n,
    runner: "worker_process",
    // How the workers' queue scripts reach Redis (REDIS_TCP_URL, as workers/main.ts).
    queue_transport: ctx.stack.settings.redis.tcpUrl === null ? "rest" : "tcp",
    workers: s.workers,
    concurrency: s.workers * s.concurrency,
    concurrency_per_worker: s.concurrency,
    db_pool_max_per_worker: s.pool,
    outbox_parent: s.outboxParent ?? tempParent(),
  };
}

/** Why the run stays below the target, from its CPU split and statement count. */
function limitOf(cpu: Record<string, number>, dbQueriesPerTask: number): string {
  const parts = [
    ["postgres", cpu.postgres_cpu_us_per_task],
    ["worker", cpu.worker_cpu_us_per_task],
    ["Neon WS proxy + REST bridge + producer", cpu.bench_cpu_us_per_task],
    ["redis-server", cpu.redis_cpu_us_per_task],
  ] as [string, number][];
  parts.sort((a, b) => b[1] - a[1]);
  const cores = navigator.hardwareConcurrency;
  const total = cpu.cpu_us_per_task ?? NaN;
  const split = parts.map(([name, us]) => `${name} ${Math.round(us)}`).join(", ");
  return `CPU: machine ${cpu.cpu_busy_pct}% busy (iowait ${cpu.cpu_iowait_pct}%); ` +
    `${Math.round(total)} CPU-µs per email (${split}) caps ${cores} cores at ` +
    `~${Math.round((cores * 1_000_000) / total)}/s; ${dbQueriesPerTask} DB round trips per email`;
}

async function sendEmailScenario(ctx: Ctx): Promise<BenchLine> {
  const { s } = ctx;
  const dir = await makeOutbox(s);
  const ns = `ob${ctx.run}mail`;
  const q = queueIn(ctx, ns);
  const workers = await WorkerGroup.spawn(
    ctx.stack,
    s,
    { namespace: ns, enqueueNamespace: ns },
    dir,
  );
  try {
    await workers.start();
    // Warm-up (JIT, breakers, pool statements). Its files stay (the timed run
    // counts only new names): on an ext4 without a journal (this machine's)
    // every new inode is allocated past the inodes deleted in the last 30 s
    // one by one (the kernel's `recently_deleted` check), so removing 500
    // files right before the run made each file of the run cost ≈ 0.4 ms more
    // kernel time (docs/benchmarks.md, bench:outreach, third round).
    const warm = await insertLeads(ctx.sql, ctx.source, "warm", WARMUP);
    await timedRun(q, warm.map(sendItem));
    const warmFiles = outbox(dir).eml;

    const tInsert = performance.now();
    const leads = await insertLeads(ctx.sql, ctx.source, "send", s.n);
    const insertMs = performance.now() - tInsert;
    const items = leads.map(sendItem);
    const w0 = await workers.stats();
    const cpu0 = cpuSnapshot(ctx.stack, workers.pids);
    const { ids, s: secs, enqueueS } = await timedRun(q, items);
    const cpu = cpuFields(cpu0, cpuSnapshot(ctx.stack, workers.pids), s.n);
    const w1 = await workers.stats();

    const st = await states(ctx.redis, q, ids);
    const results = countBy(st, (x) => String(x.result?.status ?? x.status));
    const files = outbox(dir, warmFiles);
    const { rows: [ledger] } = await ctx.sql.query<
      { rows: number; leads: number; sends: number; sent: number }
    >(
      `SELECT count(*)::int AS rows, count(DISTINCT m.business_id)::int AS leads,
              coalesce(sum(m.attempts), 0)::int AS sends,
              (count(*) FILTER (WHERE m.status = 'sent'))::int AS sent
         FROM email_messages m JOIN businesses b ON b.id = m.business_id
        WHERE b.source = $1 AND b.external_id LIKE 'send-%'`,
      [ctx.source],
    );
    const { rows: [events] } = await ctx.sql.query<{ sent: number; contacted: number }>(
      `SELECT (SELECT count(*)::int FROM lead_events e JOIN businesses b ON b.id = e.lead_id
                WHERE b.source = $1 AND b.external_id LIKE 'send-%'
                  AND e.event_type = 'email_sent') AS sent,
              (SELECT count(*)::int FROM businesses
                WHERE source = $1 AND external_id LIKE 'send-%'
                  AND outreach_status = 'contacted') AS contacted`,
      [ctx.source],
    );
    const providerCalls = w1.providerCalls - w0.providerCalls;
    const sentResults = results.sent ?? 0;
    const over = (x: number) => Math.max(0, x - s.n);
    const duplicates = over(files.eml.size) + over(ledger!.rows) + (ledger!.sends - ledger!.rows) +
      over(providerCalls) + over(events!.sent) + over(sentResults);
    const lost = s.n - Math.min(files.eml.size, ledger!.sent, sentResults, events!.sent);

    // The same payloads again. Enqueued as they are, the queue's default idempotency key
    // (a hash of type + payload, QUEUE_IDEMPOTENCY_WINDOW_MS) returns the first tasks; new
    // task ids need keys of their own. Then: all already_sent, nothing written.
    const sameKeys = await fill(q, items);
    const rerunItems = items.map((item, i) => ({
      ...item,
      options: { idempotencyKey: `bench-rerun:${ctx.run}:${i}` },
    }));
    const rerunCpu0 = cpuSnapshot(ctx.stack, workers.pids);
    const rerun = await timedRun(q, rerunItems);
    const rerunCpu = cpuFields(rerunCpu0, cpuSnapshot(ctx.stack, workers.pids), s.n);
    const w2 = await workers.stats();
    const rerunStates = await states(ctx.redis, q, rerun.ids);
    const rerunResults = countBy(rerunStates, (x) => String(x.result?.status ?? x.status));
    const after = outbox(dir, warmFiles);
    const { rows: [ledgerAfter] } = await ctx.sql.query<{ rows: number; sends: number }>(
      `SELECT count(*)::int AS rows, coalesce(sum(m.attempts), 0)::int AS sends
         FROM email_messages m JOIN businesses b ON b.id = m.business_id
        WHERE b.source = $1 AND b.external_id LIKE 'send-%'`,
      [ctx.source],
    );
    const { logLines } = await workers.stop();

    const tasksPerS = Math.round(s.n / secs);
    return {
      ...base("send_email", s.n, ctx),
      tasks_per_s: tasksPerS,
      total_s: round3(secs),
      enqueue_s: round3(enqueueS),
      ...latencyFields(st),
      lost,
      duplicates,
      eml_files: files.eml.size,
      tmp_files_left: files.tmp,
      ledger_rows: ledger!.rows,
      ledger_sent: ledger!.sent,
      ledger_committed_sends: ledger!.sends,
      provider_calls: providerCalls,
      email_sent_events: events!.sent,
      leads_contacted: events!.contacted,
      results,
      retried_tasks: st.filter((x) => x.attempts > 1).length,
      db_queries_per_task: round3((w1.dbQueries - w0.dbQueries) / s.n),
      ...cpu,
      rerun_default_key_new_tasks: sameKeys.created,
      rerun_tasks_per_s: Math.round(s.n / rerun.s),
      rerun_results: rerunResults,
      rerun_already_sent: rerunResults.already_sent ?? 0,
      rerun_new_files: [...after.eml].filter((f) => !files.eml.has(f)).length,
      rerun_provider_calls: w2.providerCalls - w1.providerCalls,
      rerun_db_queries_per_task: round3((w2.dbQueries - w1.dbQueries) / s.n),
      rerun_new_ledger_rows: ledgerAfter!.rows - ledger!.rows,
      rerun_new_committed_sends: ledgerAfter!.sends - ledger!.sends,
      rerun_cpu_us_per_task: rerunCpu.cpu_us_per_task,
      lead_insert_ms: round3(insertMs),
      worker_log_lines: logLines,
      target_tasks_per_s: TARGET_EMAILS_PER_S,
      target_met: tasksPerS >= TARGET_EMAILS_PER_S && duplicates === 0,
      ...(tasksPerS < TARGET_EMAILS_PER_S
        ? { limit: limitOf(cpu, round3((w1.dbQueries - w0.dbQueries) / s.n)) }
        : {}),
    };
  } finally {
    await workers.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The payload of booking `i` for `leadId` (one meeting per lead, two days ahead). */
function bookItem(ctx: Ctx, leadId: string, i: number): EnqueueItem {
  const day = 86_400_000;
  const startsAt = new Date(Math.ceil(Date.now() / day) * day + 2 * day + 15 * 3_600_000);
  return {
    type: "book_appointment",
    payload: {
      lead_id: leadId,
      starts_at: startsAt.toISOString(),
      duration_min: 30,
      attendee_email: `owner-book-${i}@${ctx.source.replaceAll(":", "-")}.example`,
      confirmation: { meeting_url: "https://meet.example/pleasant-cove" },
    },
  };
}

/** Namespaces of the booking scenario and the one its confirmations go to. */
function bookNamespaces(ctx: Ctx): { book: string; confirm: string } {
  return { book: `ob${ctx.run}book`, confirm: `ob${ctx.run}conf` };
}

/**
 * Bookings. Their workers enqueue the confirmation emails into another
 * namespace, where they stay queued for {@linkcode confirmationsScenario}.
 */
async function bookAppointmentScenario(ctx: Ctx): Promise<BenchLine> {
  const { s } = ctx;
  const n = s.bookN;
  const ns = bookNamespaces(ctx);
  const bookQ = queueIn(ctx, ns.book);
  const confirmQ = queueIn(ctx, ns.confirm);
  const workers = await WorkerGroup.spawn(
    ctx.stack,
    s,
    { namespace: ns.book, enqueueNamespace: ns.confirm },
    ctx.outbox,
  );
  try {
    await workers.start();
    const warm = await insertLeads(ctx.sql, ctx.source, "bookwarm", WARMUP);
    await timedRun(bookQ, warm.map((id, i) => bookItem(ctx, id, WARMUP * 1000 + i)));

    const leads = await insertLeads(ctx.sql, ctx.source, "book", n);
    const confirm0 = (await confirmQ.stats()).enqueued ?? 0;
    const w0 = await workers.stats();
    const cpu0 = cpuSnapshot(ctx.stack, workers.pids);
    const { ids, s: secs, enqueueS } = await timedRun(
      bookQ,
      leads.map((id, i) => bookItem(ctx, id, i)),
    );
    const cpu = cpuFields(cpu0, cpuSnapshot(ctx.stack, workers.pids), n);
    const w1 = await workers.stats();
    const st = await states(ctx.redis, bookQ, ids);
    const results = countBy(st, (x) => String(x.result?.status ?? x.status));
    const confirmations = ((await confirmQ.stats()).enqueued ?? 0) - confirm0;
    const { rows: [db] } = await ctx.sql.query<
      { rows: number; leads: number; events: number; scheduled: number }
    >(
      `SELECT (SELECT count(*)::int FROM appointments a JOIN businesses b ON b.id = a.business_id
                WHERE b.source = $1 AND b.external_id LIKE 'book-%') AS rows,
              (SELECT count(DISTINCT a.business_id)::int FROM appointments a
                 JOIN businesses b ON b.id = a.business_id
                WHERE b.source = $1 AND b.external_id LIKE 'book-%') AS leads,
              (SELECT count(*)::int FROM lead_events e JOIN businesses b ON b.id = e.lead_id
                WHERE b.source = $1 AND b.external_id LIKE 'book-%'
                  AND e.event_type = 'appointment_booked') AS events,
              (SELECT count(*)::int FROM businesses WHERE source = $1
                  AND external_id LIKE 'book-%' AND outreach_status = 'meeting_scheduled')
                AS scheduled`,
      [ctx.source],
    );
    const { logLines } = await workers.stop();
    const over = (x: number) => Math.max(0, x - n);
    const booked = results.booked ?? 0;
    return {
      ...base("book_appointment", n, ctx),
      tasks_per_s: Math.round(n / secs),
      total_s: round3(secs),
      enqueue_s: round3(enqueueS),
      ...latencyFields(st),
      lost: n - Math.min(db!.rows, booked, db!.events),
      duplicates: over(db!.rows) + (db!.rows - db!.leads) + over(db!.events) + over(booked) +
        over(confirmations) + (results.duplicate_prevented ?? 0),
      appointment_rows: db!.rows,
      appointment_booked_events: db!.events,
      leads_meeting_scheduled: db!.scheduled,
      results,
      retried_tasks: st.filter((x) => x.attempts > 1).length,
      confirmations_enqueued: confirmations,
      db_queries_per_task: round3((w1.dbQueries - w0.dbQueries) / n),
      confirmations: "enqueued into a separate namespace, left queued; drained next",
      ...cpu,
      worker_log_lines: logLines,
    };
  } finally {
    await workers.kill();
  }
}

/**
 * The bookings' confirmation emails (the warm-up's included): a pre-filled
 * queue drained by fresh workers.
 */
async function confirmationsScenario(ctx: Ctx): Promise<BenchLine> {
  const { s } = ctx;
  const ns = bookNamespaces(ctx).confirm;
  const q = queueIn(ctx, ns);
  const workers = await WorkerGroup.spawn(
    ctx.stack,
    s,
    { namespace: ns, enqueueNamespace: ns },
    ctx.outbox,
  );
  try {
    const expected = (await q.stats()).enqueued ?? 0;
    const w0 = await workers.stats();
    const cpu0 = cpuSnapshot(ctx.stack, workers.pids);
    const t0 = performance.now();
    await workers.start();
    await settled(q, expected);
    const secs = (performance.now() - t0) / 1000;
    const cpu = cpuFields(cpu0, cpuSnapshot(ctx.stack, workers.pids), expected);
    const { providerCalls, dbQueries, logLines } = await workers.stop();
    const queries = dbQueries - w0.dbQueries;
    const files = outbox(ctx.outbox);
    let withInvite = 0;
    for (const name of files.eml) {
      const eml = await Deno.readTextFile(`${ctx.outbox}/${name}`);
      if (eml.includes("Content-Type: text/calendar")) withInvite++;
    }
    const { rows: [ledger] } = await ctx.sql.query<{ rows: number; sends: number }>(
      `SELECT count(*)::int AS rows, coalesce(sum(m.attempts), 0)::int AS sends
         FROM email_messages m JOIN businesses b ON b.id = m.business_id
        WHERE b.source = $1 AND b.external_id LIKE 'book%' AND m.template = 'meeting_confirmation'`,
      [ctx.source],
    );
    const over = (x: number) => Math.max(0, x - expected);
    return {
      ...base("book_appointment_confirmations", expected, ctx),
      tasks_per_s: Math.round(expected / secs),
      total_s: round3(secs),
      drained: `pre-filled queue: the bookings' confirmations, ${WARMUP} of the warm-up's included`,
      lost: expected - Math.min(files.eml.size, ledger!.rows),
      duplicates: over(files.eml.size) + over(ledger!.rows) + (ledger!.sends - ledger!.rows) +
        over(providerCalls),
      eml_files: files.eml.size,
      eml_with_ics: withInvite,
      ledger_rows: ledger!.rows,
      ledger_committed_sends: ledger!.sends,
      provider_calls: providerCalls,
      db_queries_per_task: round3(queries / expected),
      ...cpu,
      worker_log_lines: logLines,
    };
  } finally {
    await workers.kill();
  }
}

function settingsFromArgs(): Settings {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      workers: { type: "string", default: "1" },
      concurrency: { type: "string", default: "50" },
      pool: { type: "string", default: "50" },
      n: { type: "string", default: "10000" },
      "book-n": { type: "string", default: "5000" },
      "outbox-parent": { type: "string" },
      only: { type: "string", default: SCENARIOS.join(",") },
      "worker-cpu-prof": { type: "string" },
    },
  });
  const only = new Set(values.only.split(",").map((x) => x.trim()).filter(Boolean));
  for (const name of only) {
    if (!SCENARIOS.includes(name)) throw new RangeError(`--only: unknown scenario ${name}`);
  }
  if (only.has("book_appointment_confirmations") && !only.has("book_appointment")) {
    throw new RangeError("--only: book_appointment_confirmations drains book_appointment's emails");
  }
  const int = (name: string, v: string) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < 1) throw new RangeError(`--${name} must be a positive integer`);
    return x;
  };
  return {
    workers: int("workers", values.workers),
    concurrency: int("concurrency", values.concurrency),
    pool: int("pool", values.pool),
    n: int("n", values.n),
    bookN: int("book-n", values["book-n"]),
    outboxParent: values["outbox-parent"],
    only,
    workerCpuProf: values["worker-cpu-prof"],
  };
}

async function main(): Promise<void> {
  const s = settingsFromArgs();
  const stack = await startStack({
    // Throughput of the app, not of fsync: a benchmark's data is throwaway (docs/reliability.md).
    postgresDurability: "fast",
    onProgress: (m) => console.error(`[outreach] ${m}`),
  });
  let sql: Pool | null = null;
  let bookOutbox: string | null = null;
  try {
    await migrateStack(stack.settings);
    const config = parseConfig({ ...settingsToEnv(stack.settings), LOG_LEVEL: "warn" });
    sql = poolFor(config.database, { max: 2, onError: () => {} });
    const run = crypto.randomUUID().slice(0, 8);
    bookOutbox = await makeOutbox(s);
    const ctx: Ctx = {
      stack,
      redis: createRedis(config.redis),
      sql,
      run,
      source: `bench:outreach:${run}`,
      s,
      outbox: bookOutbox,
    };
    console.error(
      `[outreach] ${s.workers} worker process(es) × concurrency ${s.concurrency}, ` +
        `DB_POOL_MAX ${s.pool}, n ${s.n}, book-n ${s.bookN}`,
    );
    if (s.only.has("send_email")) await runScenario(() => sendEmailScenario(ctx));
    if (s.only.has("book_appointment")) await runScenario(() => bookAppointmentScenario(ctx));
    if (s.only.has("book_appointment_confirmations")) {
      await runScenario(() => confirmationsScenario(ctx));
    }
  } finally {
    if (bookOutbox) await Deno.remove(bookOutbox, { recursive: true }).catch(() => {});
    await sql?.end().catch(() => {});
    await stack.stop();
  }
}

if (import.meta.main) await runModes(main, { worker: workerMain });
