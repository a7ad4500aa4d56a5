/**
 * The task queue through the production client path: `deno run -A
 * bench/queue.ts` (`deno task bench:queue`). `@upstash/redis` → the Upstash
 * REST bridge → a real redis-server (AOF everysec), the same `Runner` and Lua
 * scripts the workers use. JSON lines on stdout (see report.ts), one per
 * scenario, N no-op tasks and one Runner of concurrency 50 unless stated:
 *
 * - `enqueue`: N tasks through `enqueueMany` in batches, a few batches in
 *   flight at once (`concurrency` = batches in flight);
 * - `drain`: a pre-filled queue of N tasks processed by the Runner;
 * - `drain_without_task_events`: the same with `taskFeed: null`, i.e. without
 *   the live feed's task status messages (QUEUE_TASK_EVENTS=false): the
 *   difference is what publishing every status change costs;
 * - `end_to_end`: a producer enqueueing N tasks while the Runner works;
 * - `paced`: 500 single enqueues per second for 10 s; p50/p99 are enqueue
 *   call → handler start (the timestamp travels in the payload);
 * - `retry`: N pre-filled tasks, every tenth fails on its first attempt;
 *   `total_s` until all succeeded, and each task's effect counted once;
 * - `dead_letter`: N pre-filled tasks, one in a hundred always fails
 *   (3 attempts); `dlq` is the dead-letter count;
 * - `drain_tcp`, `end_to_end_tcp`, `paced_tcp`: `drain`, `end_to_end` and
 *   `paced` with the queue's scripts over TCP straight to redis-server
 *   (REDIS_TCP_URL, docs/queue.md "Transports"; the producer in this process
 *   uses it too). Every line's `transport` says which one ran.
 *
 * Retries back off a fixed 50 ms (`backoff_ms`), so `total_s` measures the
 * queue rather than the policy. A run ends when the queue's own counters say
 * every task finished; checking each task's state comes after the clock stops.
 *
 * `lost` counts tasks that did not reach their expected end state;
 * `duplicates` counts successful handler runs beyond the first per task.
 * `cpu_us_per_op` is CPU per task of this process (producer, Runner, SDK and
 * the bridge, which runs in this process as in `dev/stack.ts`) plus
 * redis-server, split into `deno_cpu_us_per_op` and `redis_cpu_us_per_op`.
 *
 * `--only=drain,paced` runs just the named scenarios (bench:peers does).
 *
 * Every scenario uses its own key namespace and deletes it afterwards. With
 * UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN and DATABASE_URL set, those
 * services are used and nothing is started (`startStack`); the Redis CPU
 * split is then not measurable.
 *
 * @module
 */
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { parseConfig, readEnvironment } from "../shared/config/mod.ts";
import { poolFor } from "../shared/db/pool.ts";
import { createRedis, type Deps } from "../shared/deps.ts";
import { createLogger } from "../shared/log.ts";
import {
  createQueue,
  type EnqueueItem,
  type QueueSettings,
  type TaskQueue,
} from "../shared/queue/queue.ts";
import { task } from "../shared/tasks/catalog.ts";
import { TcpScriptTransport } from "../shared/redis/tcp_scripts.ts";
import { settingsToEnv, type Stack, startStack } from "../dev/stack.ts";
import { type Handler, Runner } from "../workers/runner.ts";
import { cpuMicros, processCpuMicros } from "./lib/cpu.ts";
import {
  type BenchLine,
  percentile,
  round3,
  runScenario,
  selectedScenarios,
} from "./lib/report.ts";
import { createMetrics } from "../shared/metrics/metrics.ts";

const BENCH = "queue";
const N = 20_000;
const CONCURRENCY = 50;
/** Tasks per `enqueueMany` call, and how many calls are in flight at once. */
const ENQUEUE_BATCH = 500;
const ENQUEUE_IN_FLIGHT = 4;
const PACED_RATE = 500;
const PACED_SECONDS = 10;
/** Backoff of the retry scenarios: short and fixed, so `total_s` measures the queue. */
const BACKOFF = { baseMs: 50, factor: 2, maxMs: 1_000, jitter: 0 };

/** The bench's one task type: `i` numbers the task, `t` is the enqueue time (paced). */
const CATALOG = {
  bench: task(z.object({ i: z.number().int(), t: z.number().optional() }).strict(), {
    timeoutMs: 30_000,
    maxAttempts: 3,
    backoff: BACKOFF,
  }),
};

interface Payload {
  i: number;
  t?: number;
}

/** CPU time of `pid` in µs, NaN when there is none (Redis not started here). */
function cpuMicrosOf(pid: number | null): number {
  return pid === null ? NaN : processCpuMicros(pid);
}

/** CPU meter for this process and redis-server. */
function cpuMeter(redisPid: number | null) {
  const deno0 = cpuMicros();
  const redis0 = cpuMicrosOf(redisPid);
  return (n: number) => {
    const deno = (cpuMicros() - deno0) / n;
    const redis = (cpuMicrosOf(redisPid) - redis0) / n;
    const out: Record<string, number> = { deno_cpu_us_per_op: round3(deno) };
    if (Number.isFinite(redis)) {
      out.redis_cpu_us_per_op = round3(redis);
      out.cpu_us_per_op = round3(deno + redis);
    } else {
      out.cpu_us_per_op = round3(deno);
    }
    return out;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class Bench {
  readonly #redis: Redis;
  /** Redis over TCP for the `_tcp` scenarios; null when the stack has no TCP URL. */
  readonly #tcp: TcpScriptTransport | null;
  /** Where the queue's scripts go: the workers' REST default, or TCP (docs/queue.md). */
  transport: "rest" | "tcp" = "rest";
  readonly #deps: Deps;
  readonly #redisPid: () => number | null;
  /** Task-level log lines (failures are expected in two scenarios), counted, not printed. */
  logLines = 0;

  constructor(stack: Stack) {
    const config = parseConfig({ ...settingsToEnv(stack.settings), LOG_LEVEL: "warn" });
    this.#redis = createRedis(config.redis);
    this.#redisPid = () => stack.redisServer?.pid ?? null;
    this.#tcp = config.redis.tcpUrl === null
      ? null
      : new TcpScriptTransport({ url: config.redis.tcpUrl });
    this.#deps = {
      config,
      redis: this.#redis,
      // The Runner's deps carry a pool; no-op tasks never query it, so it never connects.
      sql: poolFor(config.database, { max: 1, onError: () => {} }),
      log: createLogger({ level: "warn", write: () => void this.logLines++ }),
      now: Date.now,
      metrics: createMetrics(),
    };
  }

  /** Runs `fn` with the queue's scripts over TCP (skipped without a TCP URL). */
  async overTcp<T>(fn: () => Promise<T>): Promise<T | null> {
    if (this.#tcp === null) return null;
    this.transport = "tcp";
    try {
      return await fn();
    } finally {
      this.transport = "rest";
    }
  }

  async close(): Promise<void> {
    await this.#tcp?.close();
    await this.#deps.sql.end();
  }

  queue(settings: Partial<QueueSettings> = {}): TaskQueue {
    return createQueue(this.#redis, CATALOG, {
      namespace: `bench${crypto.randomUUID().slice(0, 8)}`,
      ...settings,
    }, this.transport === "tcp" ? this.#tcp ?? undefined : undefined);
  }

  runner(q: TaskQueue, handler: Handler): Runner {
    return new Runner({
      queue: q,
      deps: this.#deps,
      handlers: { bench: handler },
      concurrency: CONCURRENCY,
    });
  }

  cpu() {
    return cpuMeter(this.#redisPid());
  }

  /** Enqueues tasks 0…n-1 in batches, `inFlight` calls at once; returns their ids in order. */
  async fill(q: TaskQueue, n: number, inFlight = ENQUEUE_IN_FLIGHT): Promise<string[]> {
    const ids = new Array<string>(n);
    let next = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < n) {
          const from = next;
          const to = Math.min(n, from + ENQUEUE_BATCH);
          next = to;
          const items: EnqueueItem[] = [];
          for (let i = from; i < to; i++) items.push({ type: "bench", payload: { i } });
          const res = await q.enqueueMany(items);
          for (let k = 0; k < res.length; k++) ids[from + k] = res[k]!.id;
        }
      }),
    );
    return ids;
  }

  /**
   * Resolves once the queue's `succeeded` + `dead` counters reach `n`. Polls
   * only after `handled` (the handlers' own count) resolved, so the polling
   * does not load the run it measures; the last acks land a round trip later.
   */
  async settled(q: TaskQueue, n: number, handled: Promise<void>, timeoutMs = 120_000) {
    const deadline = performance.now() + timeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"timeout">((r) =>
      timer = setTimeout(() => r("timeout"), timeoutMs)
    );
    const first = await Promise.race([handled.then(() => "handled" as const), expired]);
    clearTimeout(timer);
    while (true) {
      const s = await q.stats();
      if ((s.succeeded ?? 0) + (s.dead ?? 0) >= n) return;
      if (first === "timeout" || performance.now() > deadline) {
        throw new Error(`queue did not settle in ${timeoutMs} ms: ${JSON.stringify(s)}`);
      }
      await sleep(1);
    }
  }

  /** Status and attempts of each task (pipelined, outside the timed part). */
  async states(q: TaskQueue, ids: string[]): Promise<{ status: string; attempts: number }[]> {
    const out: { status: string; attempts: number }[] = [];
    for (let from = 0; from < ids.length; from += 1000) {
      const p = this.#redis.pipeline();
      for (const id of ids.slice(from, from + 1000)) {
        p.hmget(q.ctx.keys.task(id), "status", "attempts");
      }
      const replies = await p.exec<unknown[]>();
      for (const reply of replies) {
        const [status, attempts] = Array.isArray(reply) ? reply : [
          (reply as Record<string, unknown>)?.status,
          (reply as Record<string, unknown>)
            ?.attempts,
        ];
        out.push({ status: String(status), attempts: Number(attempts) });
      }
    }
    return out;
  }

  /** Deletes every key of the queue's namespace. */
  async drop(q: TaskQueue): Promise<void> {
    let cursor = "0";
    do {
      const [next, keys] = await this.#redis.scan(cursor, {
        match: `${q.ctx.keys.prefix}*`,
        count: 5000,
      });
      cursor = String(next);
      if (keys.length > 0) await this.#redis.del(...keys);
    } while (cursor !== "0");
  }
}

/** Counts successful handler runs per task index; `all` resolves when every task reached its end. */
class Effects {
  readonly counts: Uint16Array;
  readonly #done = Promise.withResolvers<void>();
  #ended = 0;

  constructor(readonly n: number) {
    this.counts = new Uint16Array(n);
  }

  /** Task `i`'s handler succeeded (its effect happened). */
  succeeded(i: number): void {
    const before = this.counts[i]!;
    this.counts[i] = before + 1;
    if (before === 0) this.#end();
  }

  /** Task `i` failed its last attempt. */
  gaveUp(): void {
    this.#end();
  }

  #end(): void {
    if (++this.#ended === this.n) this.#done.resolve();
  }

  get all(): Promise<void> {
    return this.#done.promise;
  }

  /** Successful runs beyond the first, over all tasks. */
  get duplicates(): number {
    let d = 0;
    for (const c of this.counts) if (c > 1) d += c - 1;
    return d;
  }
}

function base(scenario: string, n: number, concurrency: number, b?: Bench): BenchLine {
  return { bench: BENCH, scenario, n, concurrency, ...(b ? { transport: b.transport } : {}) };
}

async function enqueueScenario(b: Bench): Promise<BenchLine> {
  const q = b.queue();
  try {
    const cpu = b.cpu();
    const t0 = performance.now();
    const ids = await b.fill(q, N);
    const s = (performance.now() - t0) / 1000;
    const usage = cpu(N);
    const states = await b.states(q, ids);
    const lost = states.filter((x) => x.status !== "pending").length;
    const unique = new Set(ids).size;
    return {
      ...base("enqueue", N, ENQUEUE_IN_FLIGHT),
      ops_per_s: Math.round(N / s),
      ...usage,
      lost,
      duplicates: N - unique,
      batch: ENQUEUE_BATCH,
    };
  } finally {
    await b.drop(q);
  }
}

/** Starts `runner` on a pre-filled queue and times it until `done`; stops it. */
async function timedDrain(
  b: Bench,
  q: TaskQueue,
  runner: Runner,
  done: Parameters<Bench["settled"]>[2],
): Promise<{ s: number; usage: ReturnType<ReturnType<Bench["cpu"]>> }> {
  const cpu = b.cpu();
  const t0 = performance.now();
  runner.start();
  await b.settled(q, N, done);
  const s = (performance.now() - t0) / 1000;
  const usage = cpu(N);
  await runner.stop();
  return { s, usage };
}

async function drainScenario(
  b: Bench,
  scenario = "drain",
  settings: Partial<QueueSettings> = {},
): Promise<BenchLine> {
  const q = b.queue(settings);
  try {
    const ids = await b.fill(q, N);
    const effects = new Effects(N);
    const runner = b.runner(q, (p: Payload) => effects.succeeded(p.i));
    const { s, usage } = await timedDrain(b, q, runner, effects.all);
    const states = await b.states(q, ids);
    return {
      ...base(scenario, N, CONCURRENCY, b),
      ops_per_s: Math.round(N / s),
      ...usage,
      lost: states.filter((x, i) => x.status !== "succeeded" || effects.counts[i] === 0).length,
      duplicates: effects.duplicates,
    };
  } finally {
    await b.drop(q);
  }
}

async function endToEndScenario(b: Bench, scenario = "end_to_end"): Promise<BenchLine> {
  const q = b.queue();
  try {
    const effects = new Effects(N);
    const runner = b.runner(q, (p: Payload) => effects.succeeded(p.i));
    runner.start();
    await sleep(100); // subscribed and idle
    const cpu = b.cpu();
    const t0 = performance.now();
    const ids = await b.fill(q, N);
    await b.settled(q, N, effects.all);
    const s = (performance.now() - t0) / 1000;
    const usage = cpu(N);
    await runner.stop();
    const states = await b.states(q, ids);
    return {
      ...base(scenario, N, CONCURRENCY, b),
      ops_per_s: Math.round(N / s),
      ...usage,
      lost: states.filter((x, i) => x.status !== "succeeded" || effects.counts[i] === 0).length,
      duplicates: effects.duplicates,
      producer_batches_in_flight: ENQUEUE_IN_FLIGHT,
      batch: ENQUEUE_BATCH,
    };
  } finally {
    await b.drop(q);
  }
}

async function pacedScenario(b: Bench, scenario = "paced"): Promise<BenchLine> {
  const q = b.queue();
  const n = PACED_RATE * PACED_SECONDS;
  try {
    const effects = new Effects(n);
    const latencies = new Float64Array(n);
    const enqueueMs = new Float64Array(n);
    const runner = b.runner(q, (p: Payload) => {
      latencies[p.i] = performance.now() - p.t!;
      effects.succeeded(p.i);
    });
    runner.start();
    await sleep(200); // subscribed and idle
    const cpu = b.cpu();
    const ids = new Array<string>(n);
    const pending: Promise<void>[] = [];
    const t0 = performance.now();
    const interval = 1000 / PACED_RATE;
    let sent = 0;
    while (sent < n) {
      // Every enqueue whose time has come goes out now (timers are not exact).
      const due = Math.min(n, Math.floor((performance.now() - t0) / interval) + 1);
      for (; sent < due; sent++) {
        const i = sent;
        const t = performance.now();
        pending.push(
          q.enqueue("bench", { i, t }).then((r) => {
            enqueueMs[i] = performance.now() - t;
            ids[i] = r.id;
          }),
        );
      }
      if (sent < n) await sleep(Math.max(0, t0 + sent * interval - performance.now()));
    }
    await Promise.all(pending);
    await b.settled(q, n, effects.all);
    const s = (performance.now() - t0) / 1000;
    const usage = cpu(n);
    await runner.stop();
    const states = await b.states(q, ids);
    const samples = Array.from(latencies).filter((_, i) => effects.counts[i]! > 0);
    const enqueueSamples = Array.from(enqueueMs);
    return {
      ...base(scenario, n, CONCURRENCY, b),
      ops_per_s: Math.round(n / s),
      p50_ms: round3(percentile(samples, 50)),
      p99_ms: round3(percentile(samples, 99)),
      max_ms: round3(Math.max(...samples)),
      // The enqueue call alone (its round trip), part of the latency above.
      enqueue_p50_ms: round3(percentile(enqueueSamples, 50)),
      enqueue_p99_ms: round3(percentile(enqueueSamples, 99)),
      ...usage,
      lost: states.filter((x, i) => x.status !== "succeeded" || effects.counts[i] === 0).length,
      duplicates: effects.duplicates,
      rate_per_s: PACED_RATE,
    };
  } finally {
    await b.drop(q);
  }
}

async function retryScenario(b: Bench): Promise<BenchLine> {
  const q = b.queue();
  try {
    const ids = await b.fill(q, N);
    const effects = new Effects(N);
    let failures = 0;
    const runner = b.runner(q, (p: Payload, ctx) => {
      if (p.i % 10 === 0 && ctx.attempt === 1) {
        failures++;
        throw new Error("flaky upstream");
      }
      effects.succeeded(p.i);
    });
    const { s, usage } = await timedDrain(b, q, runner, effects.all);
    const states = await b.states(q, ids);
    const wrongAttempts = states.filter((x, i) => x.attempts !== (i % 10 === 0 ? 2 : 1)).length;
    return {
      ...base("retry", N, CONCURRENCY),
      ops_per_s: Math.round(N / s),
      total_s: round3(s),
      ...usage,
      lost: states.filter((x, i) => x.status !== "succeeded" || effects.counts[i] === 0).length,
      duplicates: effects.duplicates,
      failed_once: failures,
      wrong_attempts: wrongAttempts,
      backoff_ms: BACKOFF.baseMs,
    };
  } finally {
    await b.drop(q);
  }
}

async function deadLetterScenario(b: Bench): Promise<BenchLine> {
  const q = b.queue();
  try {
    const ids = await b.fill(q, N);
    const effects = new Effects(N);
    const doomed = (i: number) => i % 100 === 0;
    const runner = b.runner(q, (p: Payload, ctx) => {
      if (doomed(p.i)) {
        if (ctx.attempt === CATALOG.bench.maxAttempts) effects.gaveUp();
        throw new Error("upstream rejects this one");
      }
      effects.succeeded(p.i);
    });
    const { s, usage } = await timedDrain(b, q, runner, effects.all);
    const states = await b.states(q, ids);
    const dlq = await q.ctx.redis.zcard(q.ctx.keys.dlq);
    const expectedDead = ids.filter((_, i) => doomed(i)).length;
    const lost = states.filter((x, i) =>
      doomed(i) ? x.status !== "dead" : x.status !== "succeeded" || effects.counts[i] === 0
    ).length;
    return {
      ...base("dead_letter", N, CONCURRENCY),
      ops_per_s: Math.round(N / s),
      total_s: round3(s),
      ...usage,
      lost: lost + Math.abs(expectedDead - dlq),
      duplicates: effects.duplicates,
      dlq,
      dlq_expected: expectedDead,
      max_attempts: CATALOG.bench.maxAttempts,
      backoff_ms: BACKOFF.baseMs,
    };
  } finally {
    await b.drop(q);
  }
}

async function main(): Promise<void> {
  const stack = await startStack({
    env: readEnvironment(),
    // Throughput of the app, not of fsync: a benchmark's data is throwaway (docs/reliability.md).
    postgresDurability: "fast",
    onProgress: (m) => console.error(`[queue] ${m}`),
  });
  const b = new Bench(stack);
  try {
    console.error(
      `[queue] ${stack.settings.local ? "local stack" : "configured services"}, ` +
        `redis ${stack.settings.redis.url}`,
    );
    // Warm-up: JIT, connections, script cache.
    const warm = b.queue();
    const effects = new Effects(2000);
    const runner = b.runner(warm, (p: Payload) => effects.succeeded(p.i));
    runner.start();
    await b.fill(warm, 2000);
    await b.settled(warm, 2000, effects.all);
    await runner.stop();
    await b.drop(warm);

    const scenarios: [string, (b: Bench) => Promise<BenchLine>][] = [
      ["enqueue", enqueueScenario],
      [
        "drain_without_task_events",
        (b) => drainScenario(b, "drain_without_task_events", { taskFeed: null }),
      ],
      ["drain", drainScenario],
      ["end_to_end", endToEndScenario],
      ["paced", pacedScenario],
      ["retry", retryScenario],
      ["dead_letter", deadLetterScenario],
      // The same with the queue's scripts over TCP (REDIS_TCP_URL, the dev
      // stack's worker default): the producer, sharing the queue in process,
      // uses it too.
      ["drain_tcp", (b) => drainScenario(b, "drain_tcp")],
      ["end_to_end_tcp", (b) => endToEndScenario(b, "end_to_end_tcp")],
      ["paced_tcp", (b) => pacedScenario(b, "paced_tcp")],
    ];
    const selected = selectedScenarios();
    for (const [name, scenario] of scenarios) {
      if (!selected(name)) continue;
      if (name.endsWith("_tcp")) {
        const line = await b.overTcp(() => runScenario(() => scenario(b)));
        if (line === null) console.error(`[queue] ${name} skipped: no REDIS_TCP_URL`);
      } else await runScenario(() => scenario(b));
    }
    if (b.logLines > 0) console.error(`[queue] ${b.logLines} task log lines suppressed`);
  } finally {
    await b.close();
    await stack.stop();
  }
}

if (import.meta.main) {
  await main();
}
