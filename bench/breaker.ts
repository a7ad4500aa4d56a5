/**
 * Circuit breakers (shared/breakers/): `deno run -A bench/breaker.ts`. JSON
 * lines on stdout (see report.ts), one per scenario:
 *
 * - `hot_path`: `breaker.call(fn)` on a CLOSED breaker against `fn()` alone,
 *   sequentially; `us_per_call` is the difference per call (target ≤ 5 µs).
 *   It includes the breaker's share of the batched reports (one script call
 *   per 256 outcomes or 50 ms), which run in this process.
 * - `hot_path_slow_call`: the same with a `slow_call_ms` policy (the
 *   database's), whose per-call slow-call timer is measured net of this
 *   process's event-loop stall (shared/loop_lag.ts).
 * - `idle`: this process's CPU per second with the registry started and no
 *   calls (heartbeats, and the loop-lag meter's wake-ups).
 *
 * `--only=hot_path,idle` runs just those scenarios.
 * - `propagation`: instance A (this process) trips a breaker; instance B, a
 *   child process (tests/fixtures/breaker_instance.ts), logs when its cached
 *   state turns OPEN. Latency = B's wall clock at the flip minus A's wall clock
 *   when its last failing call settled (so A's report round trip is included);
 *   p50/p99 over 50 trips (target p99 ≤ 100 ms).
 * - `proxy`: GET requests/s against a loopback upstream (a child process)
 *   through a CLOSED breaker's `fetch`, directly, and directly with the same
 *   timeout (AbortController + timer) the breaker adds; 32 concurrent
 *   callers, interleaved rounds, medians; `ratio` = breaker ÷ direct,
 *   `ratio_to_direct_timeout` = breaker ÷ direct with timeout, and the
 *   process CPU µs per request of each.
 *
 * Redis is a local redis-server behind the Upstash bridge, both in this
 * process as in dev/stack.ts.
 *
 * @module
 */
import process from "node:process";
import { RedisServer } from "../dev/redis_server.ts";
import { startUpstashBridge } from "../dev/upstash_bridge.ts";
import { createRedis } from "../shared/deps.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import type { BreakerPolicyInput } from "../shared/breakers/policy.ts";
import { BreakerProcess } from "../tests/fixtures/breaker_process.ts";
import { wallMs } from "../tests/fixtures/breaker_instance.ts";
import { cpuMicros } from "./lib/cpu.ts";
import { percentile, round3, runScenario, selectedScenarios } from "./lib/report.ts";
import type { BenchLine } from "./lib/report.ts";

const BENCH = "breaker";
const HOT_N = 1_000_000;
const TRIPS = 50;
const PROXY_N = 10_000;
const CONCURRENCY = 32;
const ROUNDS = 5;

const POLICIES: Record<string, BreakerPolicyInput> = {
  hot: { fail_max: 5, reset_timeout_ms: 60_000 },
  hot_slow: { fail_max: 5, reset_timeout_ms: 60_000, slow_call_ms: 5_000 },
  trip: { fail_max: 2, reset_timeout_ms: 60_000 },
  proxy: { fail_max: 5, reset_timeout_ms: 60_000, timeout_ms: 5_000 },
};

type Registry = ReturnType<typeof createBreakerRegistry>;

/**
 * Mean ms per `op` over n sequential calls. Every 10,000 calls the loop yields
 * to the event loop (as real I/O-bound callers do), so the breaker's timers
 * and report round trips run inside the measurement, not after it.
 */
async function timeLoop(n: number, op: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await op();
    if (i % 10_000 === 9_999) await new Promise((r) => setTimeout(r, 0));
  }
  return (performance.now() - t0) / n;
}

async function hotPath(
  registry: Registry,
  scenario = "hot_path",
  name = "hot",
): Promise<BenchLine> {
  const breaker = registry.get(name);
  const fn = () => Promise.resolve(1);
  const through = () => breaker.call(fn);
  await timeLoop(100_000, fn);
  await timeLoop(100_000, through);
  const base: number[] = [];
  const withBreaker: number[] = [];
  const cpu0 = cpuMicros();
  for (let r = 0; r < ROUNDS; r++) {
    base.push(await timeLoop(HOT_N, fn));
    withBreaker.push(await timeLoop(HOT_N, through));
  }
  const cpuUs = cpuMicros() - cpu0;
  const median = (xs: number[]) => percentile(xs, 50);
  return {
    bench: BENCH,
    scenario,
    n: HOT_N,
    rounds: ROUNDS,
    us_per_call: round3((median(withBreaker) - median(base)) * 1000),
    breaker_us_per_call: round3(median(withBreaker) * 1000),
    baseline_us_per_call: round3(median(base) * 1000),
    cpu_us_per_op: round3(cpuUs / (2 * ROUNDS * HOT_N)),
    flushes: registry.metrics.flushes,
    target_us_per_call: 5,
  };
}

/**
 * CPU of this process per second while the started registry sees no call
 * (getrusage through node:process: µs, where /proc's ticks are 10 ms).
 */
async function idle(registry: Registry): Promise<BenchLine> {
  const seconds = 10;
  const flushes0 = registry.metrics.flushes;
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  return {
    bench: BENCH,
    scenario: "idle",
    seconds,
    cpu_us_per_s: round3((cpu.user + cpu.system) / seconds),
    flushes: registry.metrics.flushes - flushes0,
  };
}

async function propagation(a: Registry, b: BreakerProcess): Promise<BenchLine> {
  const breaker = a.get("trip");
  const fail = () => Promise.reject(Object.assign(new Error("503"), { status: 503 }));
  const latencies: number[] = [];
  let seen = 0;
  const nextOpen = async (after: number) => {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      for (; seen < b.logs.length; seen++) {
        const l = b.logs[seen]!;
        if (
          l.msg === "breaker event" && l.name === "trip" && l.to === "open" && Number(l.t) >= after
        ) {
          return Number(l.t);
        }
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    throw new Error("Instance B did not see the trip within 5 s");
  };
  for (let i = 0; i < TRIPS; i++) {
    await a.reset("trip");
    while ((await b.control("/state?name=trip")).state !== "closed") {
      await new Promise((r) => setTimeout(r, 2));
    }
    const before = wallMs();
    await breaker.call(fail).catch(() => {});
    await breaker.call(fail).catch(() => {});
    const evidence = wallMs();
    latencies.push((await nextOpen(before)) - evidence);
  }
  return {
    bench: BENCH,
    scenario: "propagation",
    n: TRIPS,
    instances: 2,
    processes: 2,
    p50_ms: round3(percentile(latencies, 50)),
    p99_ms: round3(percentile(latencies, 99)),
    max_ms: round3(Math.max(...latencies)),
    target_p99_ms: 100,
  };
}

/** req/s and process CPU µs per request of `op` from CONCURRENCY callers. */
async function burst(op: () => Promise<unknown>): Promise<{ rps: number; cpuUs: number }> {
  let next = 0;
  const cpu0 = cpuMicros();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next++ < PROXY_N) await op();
  }));
  return {
    rps: PROXY_N / ((performance.now() - t0) / 1000),
    cpuUs: (cpuMicros() - cpu0) / PROXY_N,
  };
}

async function proxy(registry: Registry, upstreamUrl: string): Promise<BenchLine> {
  const breaker = registry.get("proxy");
  const ops: Record<string, () => Promise<unknown>> = {
    direct: async () => {
      const res = await fetch(upstreamUrl);
      await res.arrayBuffer();
    },
    // The same timeout as the breaker's (an AbortController and a timer), without the breaker.
    direct_timeout: async () => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 5_000);
      try {
        const res = await fetch(upstreamUrl, { signal: controller.signal });
        await res.arrayBuffer();
      } finally {
        clearTimeout(timer);
      }
    },
    breaker: async () => {
      const res = await breaker.fetch(upstreamUrl);
      await res.arrayBuffer();
    },
  };
  const results: Record<string, { rps: number; cpuUs: number }[]> = {};
  for (const op of Object.values(ops)) await burst(op); // warm-up
  // Interleaved rounds, so load from elsewhere hits every variant alike.
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, op] of Object.entries(ops)) (results[name] ??= []).push(await burst(op));
  }
  if (breaker.state !== "closed") throw new Error(`Proxy breaker ended ${breaker.state}`);
  const rps = (name: string) => percentile(results[name]!.map((x) => x.rps), 50);
  const cpu = (name: string) => round3(percentile(results[name]!.map((x) => x.cpuUs), 50));
  return {
    bench: BENCH,
    scenario: "proxy",
    n: PROXY_N,
    concurrency: CONCURRENCY,
    rounds: ROUNDS,
    ops_per_s: Math.round(rps("breaker")),
    direct_ops_per_s: Math.round(rps("direct")),
    direct_timeout_ops_per_s: Math.round(rps("direct_timeout")),
    ratio: round3(rps("breaker") / rps("direct")),
    ratio_to_direct_timeout: round3(rps("breaker") / rps("direct_timeout")),
    cpu_us_per_op: cpu("breaker"),
    direct_cpu_us_per_op: cpu("direct"),
    direct_timeout_cpu_us_per_op: cpu("direct_timeout"),
  };
}

/** A loopback HTTP server in its own process, so it does not share this process's CPU. */
async function startUpstreamProcess(): Promise<{ url: string; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) },
        () => new Response("ok"));`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const port = Number(value?.trim());
  return {
    url: `http://127.0.0.1:${port}/`,
    async stop() {
      child.kill("SIGTERM");
      await child.stdout.cancel().catch(() => {});
      await child.status;
    },
  };
}

if (import.meta.main) {
  const dir = await Deno.makeTempDir({ prefix: "bench_breaker_" });
  const redisServer = await RedisServer.start({ dir });
  const bridge = await startUpstashBridge({
    redisPort: redisServer.port,
    redisPassword: redisServer.password,
    token: "bench",
  });
  const settings = { url: bridge.url, token: bridge.token };
  const namespace = `bb${crypto.randomUUID().slice(0, 6)}`;
  const registry = createBreakerRegistry({
    redis: createRedis(settings),
    policies: POLICIES,
    namespace,
    instanceId: "bench-A",
  });
  const upstream = await startUpstreamProcess();
  const b = new BreakerProcess({
    redis: settings,
    namespace,
    policies: POLICIES,
    upstream: upstream.url,
    instanceId: "bench-B",
  });
  try {
    await registry.start();
    await b.url();
    console.error(
      `[breaker] redis ${redisServer.url}, bridge ${bridge.url}, upstream ${upstream.url}`,
    );
    const only = selectedScenarios();
    if (only("hot_path")) await runScenario(() => hotPath(registry));
    if (only("propagation")) await runScenario(() => propagation(registry, b));
    if (only("proxy")) await runScenario(() => proxy(registry, upstream.url));
    if (only("hot_path_slow_call")) {
      await runScenario(() => hotPath(registry, "hot_path_slow_call", "hot_slow"));
    }
    if (only("idle")) await runScenario(() => idle(registry));
  } finally {
    await b.kill();
    await registry.stop();
    await upstream.stop();
    await bridge.close();
    await redisServer.stop();
    await Deno.remove(dir, { recursive: true });
  }
}
