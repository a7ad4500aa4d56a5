// BullMQ on the workloads of bench/queue.ts (`drain`, `end_to_end`, `paced`),
// run by bench/peers.ts under Node against a redis-server the project's dev
// code started. One JSON line per scenario on stdout, with `peer: "bullmq"`;
// the same fields as ours: ops_per_s, p50_ms/p99_ms (paced: add → processor
// start), lost, duplicates, and CPU per task of this process and of
// redis-server (read from /proc, like bench/lib/cpu.ts).
//
// BullMQ runs with its defaults (completed jobs kept, its events stream on),
// as our queue runs with task events on: `drain` compares defaults.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { Queue, Worker } from "bullmq";

const args = parseArgs({
  options: {
    port: { type: "string" },
    "redis-pid": { type: "string" },
    n: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "50" },
    rate: { type: "string", default: "500" },
    seconds: { type: "string", default: "10" },
    only: { type: "string", default: "drain,end_to_end,paced" },
  },
}).values;

const N = Number(args.n);
const CONCURRENCY = Number(args.concurrency);
const BATCH = 500;
const IN_FLIGHT = 4;
// The password comes from the environment (bench/peers.ts sets it).
const connection = {
  host: "127.0.0.1",
  port: Number(args.port),
  password: process.env.REDIS_PASSWORD,
  maxRetriesPerRequest: null,
};
const redisPid = Number(args["redis-pid"]);
const TICK_US = 10_000;

function procCpuUs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

function cpuMeter() {
  const node0 = process.cpuUsage();
  const redis0 = procCpuUs(redisPid);
  return (n) => {
    const d = process.cpuUsage(node0);
    const node = (d.user + d.system) / n;
    const redis = (procCpuUs(redisPid) - redis0) / n;
    return {
      node_cpu_us_per_op: round3(node),
      redis_cpu_us_per_op: round3(redis),
      cpu_us_per_op: round3(node + redis),
    };
  };
}

const round3 = (x) => Math.round(x * 1000) / 1000;

function percentile(samples, p) {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

function load1() {
  return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
}

let queueNo = 0;
function freshQueue() {
  return new Queue(`peer${process.pid}_${queueNo++}`, { connection });
}

/** Handler runs per task index; `all` resolves when every task's completion was acknowledged. */
function effects(n) {
  const counts = new Uint16Array(n);
  let resolve;
  const all = new Promise((r) => resolve = r);
  let completed = 0;
  return {
    counts,
    all,
    ran(i) {
      counts[i]++;
    },
    completed() {
      if (++completed === n) resolve();
    },
    duplicates() {
      let d = 0;
      for (const c of counts) if (c > 1) d += c - 1;
      return d;
    },
  };
}

async function fill(queue, n) {
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < n) {
      const from = next;
      const to = Math.min(n, from + BATCH);
      next = to;
      const jobs = [];
      for (let i = from; i < to; i++) jobs.push({ name: "bench", data: { i } });
      await queue.addBulk(jobs);
    }
  }));
}

function worker(queue, fx, onJob, autorun) {
  // BullMQ awaits the processor; a plain function returning nothing is a no-op task.
  const w = new Worker(queue.name, (job) => {
    onJob?.(job);
    fx.ran(job.data.i);
  }, { connection, concurrency: CONCURRENCY, autorun });
  w.on("completed", () => fx.completed());
  return w;
}

async function lostOf(queue, fx, n) {
  const counts = await queue.getJobCounts("completed");
  let notRun = 0;
  for (const c of fx.counts) if (c === 0) notRun++;
  return Math.max(notRun, n - counts.completed);
}

async function finish(queue, w) {
  await w.close();
  await queue.obliterate({ force: true });
  await queue.close();
}

async function drain() {
  const queue = freshQueue();
  await fill(queue, N);
  const fx = effects(N);
  const w = worker(queue, fx, null, false);
  await w.waitUntilReady();
  const cpu = cpuMeter();
  const t0 = performance.now();
  w.run();
  await fx.all;
  const s = (performance.now() - t0) / 1000;
  const usage = cpu(N);
  const lost = await lostOf(queue, fx, N);
  await finish(queue, w);
  return {
    scenario: "drain",
    ops_per_s: Math.round(N / s),
    ...usage,
    lost,
    duplicates: fx.duplicates(),
    n: N,
    concurrency: CONCURRENCY,
  };
}

async function endToEnd() {
  const queue = freshQueue();
  const fx = effects(N);
  const w = worker(queue, fx, null, true);
  await w.waitUntilReady();
  await new Promise((r) => setTimeout(r, 100));
  const cpu = cpuMeter();
  const t0 = performance.now();
  await fill(queue, N);
  await fx.all;
  const s = (performance.now() - t0) / 1000;
  const usage = cpu(N);
  const lost = await lostOf(queue, fx, N);
  await finish(queue, w);
  return {
    scenario: "end_to_end",
    ops_per_s: Math.round(N / s),
    ...usage,
    lost,
    duplicates: fx.duplicates(),
    n: N,
    concurrency: CONCURRENCY,
    producer_batches_in_flight: IN_FLIGHT,
    batch: BATCH,
  };
}

async function paced() {
  const rate = Number(args.rate);
  const n = rate * Number(args.seconds);
  const queue = freshQueue();
  const fx = effects(n);
  const latencies = new Float64Array(n);
  const w = worker(queue, fx, (job) => {
    latencies[job.data.i] = performance.now() - job.data.t;
  }, true);
  await w.waitUntilReady();
  await new Promise((r) => setTimeout(r, 200));
  const cpu = cpuMeter();
  const pending = [];
  const t0 = performance.now();
  const interval = 1000 / rate;
  let sent = 0;
  while (sent < n) {
    // Every add whose time has come goes out now (timers are not exact), as in bench/queue.ts.
    const due = Math.min(n, Math.floor((performance.now() - t0) / interval) + 1);
    for (; sent < due; sent++) pending.push(queue.add("bench", { i: sent, t: performance.now() }));
    if (sent < n) {
      await new Promise((r) =>
        setTimeout(r, Math.max(0, t0 + sent * interval - performance.now()))
      );
    }
  }
  await Promise.all(pending);
  await fx.all;
  const s = (performance.now() - t0) / 1000;
  const usage = cpu(n);
  const lost = await lostOf(queue, fx, n);
  await finish(queue, w);
  const samples = Array.from(latencies).filter((_, i) => fx.counts[i] > 0);
  return {
    scenario: "paced",
    ops_per_s: Math.round(n / s),
    p50_ms: round3(percentile(samples, 50)),
    p99_ms: round3(percentile(samples, 99)),
    max_ms: round3(Math.max(...samples)),
    ...usage,
    lost,
    duplicates: fx.duplicates(),
    n,
    concurrency: CONCURRENCY,
    rate_per_s: rate,
  };
}

const SCENARIOS = { drain, end_to_end: endToEnd, paced };
const version =
  JSON.parse(readFileSync(new URL("./node_modules/bullmq/package.json", import.meta.url), "utf8"))
    .version;
// Warm-up: JIT, connections, script loading.
{
  const queue = freshQueue();
  const fx = effects(2000);
  const w = worker(queue, fx, null, true);
  await fill(queue, 2000);
  await fx.all;
  await finish(queue, w);
}
for (const name of args.only.split(",")) {
  const load1_start = load1();
  const line = await SCENARIOS[name]();
  console.log(
    JSON.stringify({
      bench: "queue",
      peer: "bullmq",
      peer_version: version,
      ...line,
      load1_start,
      load1_end: load1(),
    }),
  );
}
