/**
 * Our numbers next to the peers', in one command and the same minute:
 * `deno run -A bench/peers.ts` (`deno task bench:peers`). For each area it
 * runs OUR matching scenarios (the existing benchmarks with `--only`), then
 * the peer on the same workload, each against a fresh redis-server started by
 * the project's dev code, and prints every line in the JSON-lines convention
 * (report.ts); the peers' lines carry `peer` and `peer_version`. A closing
 * `bench: "peers"` line per comparison gives `ours`, `peer_value` and
 * `ratio`, so nobody has to pair lines by hand. Ratios are what count: the
 * two runs share the machine with whatever else runs on it (`load1_*`).
 *
 * - `queue`: bench/queue.ts `drain`, `end_to_end`, `paced` vs BullMQ 5 under
 *   Node (bench/peers/node/bullmq.mjs): 20,000 no-op tasks, concurrency 50;
 *   paced 500/s, add → processor start.
 * - `ws`: bench/ws.ts `burst` vs Socket.IO 4 with @socket.io/redis-adapter
 *   (bench/peers/node/sio_*.mjs): 2 instances, 200 clients, 2,000 broadcasts
 *   published straight into Redis (redis-emitter), 64 in flight.
 * - `http`: `GET /health` on the real edge vs bare Hono on Deno
 *   (bench/peers/hono_health.ts), both driven by wrk (64 connections, 10 s):
 *   scenario `health_wrk` of bench `gateway`. `loadgen_cpu_us_per_op` is
 *   wrk's CPU per request, to show the load generator is not the bottleneck.
 *
 * `--only=queue,ws,http` picks areas. Needs `node` and `wrk` on PATH and the
 * peers installed: `npm ci --prefix bench/peers/node` (versions pinned by
 * bench/peers/node/package-lock.json; docs/benchmarks.md).
 *
 * @module
 */
import { parseConfig, readEnvironment } from "../shared/config/mod.ts";
import { migrateStack } from "../dev/migrate_stack.ts";
import { RedisServer } from "../dev/redis_server.ts";
import { settingsToEnv, startStack } from "../dev/stack.ts";
import { AppProcess, startEdge } from "../testing/process.ts";
import { processTable, TICK_US, treeCpuMicros } from "./lib/cpu.ts";
import { runWrk } from "./peers/wrk.ts";
import {
  type BenchLine,
  load1,
  round3,
  runScenario,
  selectedScenarios,
  UNLIMITED_RATE_LIMITS,
} from "./lib/report.ts";

/** Broadcasts of the ws burst (bench/ws.ts and bench/peers/node/sio_load.mjs default). */
const WS_BURST = 2000;
const PEERS = new URL("./peers/node/", import.meta.url);
const here = (name: string) => new URL(name, import.meta.url).pathname;
const peer = (name: string) => new URL(name, PEERS).pathname;

/** Runs a command to completion; returns the JSON lines of its stdout (stderr passes through). */
async function jsonLines(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<BenchLine[]> {
  const out = await new Deno.Command(cmd, {
    args,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} exited with ${out.code}: ${text}`);
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

/** Our benchmark module `name` with `--only=<scenarios>`; its lines are printed as they are. */
async function ours(name: string, scenarios: string, flags: string[] = []): Promise<BenchLine[]> {
  const lines = await jsonLines(Deno.execPath(), [
    "run",
    "-A",
    here(name),
    `--only=${scenarios}`,
    ...flags,
  ]);
  for (const line of lines) console.log(JSON.stringify(line));
  return lines;
}

/**
 * The peer's environment: the redis-server the dev code starts requires a
 * password (docs/security.md), which the Node scripts read from
 * `REDIS_PASSWORD` (an environment variable, not an argument `ps` would show).
 */
const peerEnv = (redis: RedisServer) => ({ REDIS_PASSWORD: redis.password });

/** A fresh redis-server (AOF everysec, like the stack's) for one peer run. */
async function withRedis<T>(fn: (redis: RedisServer) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "pcs-peer-" });
  const redis = await RedisServer.start({ dir });
  try {
    return await fn(redis);
  } finally {
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Prints the comparison line of `field` between our line and the peer's. */
function ratio(
  area: string,
  field: string,
  our?: BenchLine,
  their?: BenchLine,
  lowerIsBetter = false,
) {
  const a = our?.[field] as number | undefined;
  const b = their?.[field] as number | undefined;
  if (a === undefined || b === undefined) return;
  console.log(JSON.stringify({
    bench: "peers",
    scenario: `${area}.${our!.scenario}.${field}`,
    ours: a,
    peer: their!.peer,
    peer_value: b,
    // ours ÷ peer; for latencies (lower is better) peer ÷ ours, so > 1 always means we are ahead.
    ratio: round3(lowerIsBetter ? b / a : a / b),
    lost: (our!.lost as number ?? 0) + (their!.lost as number ?? 0),
    duplicates: (our!.duplicates as number ?? 0) + (their!.duplicates as number ?? 0),
  }));
}

async function queueArea(): Promise<void> {
  // Ours twice: the queue's scripts over REST (the bridge) and over TCP
  // (REDIS_TCP_URL, the workers' transport in the dev stack; docs/queue.md).
  const mine = await ours(
    "./queue.ts",
    "drain,end_to_end,paced,drain_tcp,end_to_end_tcp,paced_tcp",
  );
  const theirs = await withRedis((redis) =>
    jsonLines(
      "node",
      [peer("bullmq.mjs"), `--port=${redis.port}`, `--redis-pid=${redis.pid}`],
      peerEnv(redis),
    )
  );
  for (const line of theirs) console.log(JSON.stringify(line));
  const find = (lines: BenchLine[], s: string) => lines.find((l) => l.scenario === s);
  for (const suffix of ["", "_tcp"]) {
    for (const s of ["drain", "end_to_end"]) {
      ratio("queue", "ops_per_s", find(mine, s + suffix), find(theirs, s));
    }
    ratio("queue", "p50_ms", find(mine, "paced" + suffix), find(theirs, "paced"), true);
    ratio("queue", "p99_ms", find(mine, "paced" + suffix), find(theirs, "paced"), true);
  }
}

/** Starts one Socket.IO instance; resolves with it and its URL. */
async function sioServer(redis: RedisServer): Promise<{ child: Deno.ChildProcess; url: string }> {
  const child = new Deno.Command("node", {
    args: [peer("sio_server.mjs"), `--redis-port=${redis.port}`],
    env: peerEnv(redis),
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`socket.io server exited: ${text}`);
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const { port } = JSON.parse(text) as { port: number };
  return { child, url: `http://127.0.0.1:${port}` };
}

async function wsArea(): Promise<void> {
  // Twice: with the production slow-consumer bound (a client more than 1,000
  // frames behind is closed with 4008; on a loaded machine the load process
  // is that client), and with the bound raised to hold the whole burst, as
  // Socket.IO buffers without a bound. The ratio uses the second.
  await ours("./ws.ts", "burst");
  const [mine] = await ours("./ws.ts", "burst", [`--send-queue-max-messages=${WS_BURST + 1000}`]);
  const version = JSON.parse(await Deno.readTextFile(peer("node_modules/socket.io/package.json")))
    .version as string;
  const theirs = await withRedis(async (redis) => {
    const servers = [await sioServer(redis), await sioServer(redis)];
    try {
      return await runScenario(async () => {
        const [s] = await jsonLines("node", [
          peer("sio_load.mjs"),
          `--urls=${servers.map((x) => x.url).join(",")}`,
          `--redis-port=${redis.port}`,
        ], peerEnv(redis));
        return {
          bench: "ws",
          scenario: "burst",
          peer: "socket.io",
          peer_version: version,
          ops_per_s: s!.deliveries_per_s as number,
          p50_ms: s!.p50_ms as number,
          p99_ms: s!.p99_ms as number,
          lost: s!.lost as number,
          duplicates: s!.duplicates as number,
          n: s!.n as number,
          concurrency: 64,
          clients: s!.clients,
          instances: 2,
          deliveries: s!.deliveries,
          publish_per_s: s!.publish_per_s,
        };
      });
    } finally {
      for (const s of servers) {
        s.child.kill("SIGTERM");
        await s.child.status;
      }
    }
  });
  ratio("ws", "ops_per_s", mine, theirs);
}

/** CPU µs of this process's reaped children so far (wrk, once it has exited). */
function reapedChildrenMicros(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[13]) + Number(f[14])) * TICK_US;
}

/** `health_wrk` against `url`: wrk's numbers, the server's CPU and wrk's own CPU per request. */
async function healthWrk(url: string, serverPid: number, extra: Record<string, unknown>) {
  return await runScenario(async () => {
    const server0 = treeCpuMicros(processTable(), serverPid);
    const wrk0 = reapedChildrenMicros();
    const r = await runWrk(`${url}/health`, { connections: 64, threads: 2, seconds: 10 });
    const loadgen = reapedChildrenMicros() - wrk0;
    const server = treeCpuMicros(processTable(), serverPid) - server0;
    return {
      bench: "gateway",
      scenario: "health_wrk",
      ...extra,
      ops_per_s: Math.round(r.reqPerS),
      p50_ms: r.p50Ms,
      p99_ms: r.p99Ms,
      cpu_us_per_op: round3(server / r.requests),
      loadgen_cpu_us_per_op: round3(loadgen / r.requests),
      errors: r.errors,
      n: r.requests,
      concurrency: 64,
    };
  });
}

async function httpArea(): Promise<void> {
  const stack = await startStack({
    env: readEnvironment(),
    postgresDurability: "fast",
    onProgress: (m) => console.error(`[peers] ${m}`),
  });
  let edge: AppProcess | null = null;
  const hono = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", here("./peers/hono_health.ts")],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    await migrateStack(stack.settings);
    const env = {
      ...settingsToEnv(stack.settings),
      EDGE_HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      RATE_LIMITS: UNLIMITED_RATE_LIMITS,
    };
    parseConfig(env);
    let url: string;
    ({ edge, url } = await startEdge(env));
    const reader = hono.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    const honoUrl = (JSON.parse(value!) as { url: string }).url;
    const honoVersion = JSON.parse(
      await Deno.readTextFile(new URL("../deno.lock", import.meta.url)),
    ).specifiers?.["npm:hono@^4.13.0"] as string | undefined;
    // Warm both up (JIT) before measuring.
    await runWrk(`${url}/health`, { connections: 64, threads: 2, seconds: 2 });
    await runWrk(`${honoUrl}/health`, { connections: 64, threads: 2, seconds: 2 });
    const mine = await healthWrk(url, edge.child.pid, {});
    const theirs = await healthWrk(honoUrl, hono.pid, {
      peer: "hono",
      peer_version: honoVersion ?? "unknown",
    });
    ratio("http", "ops_per_s", mine, theirs);
    // Server CPU per request: independent of how much CPU wrk took from the shared cores.
    ratio("http", "cpu_us_per_op", mine, theirs, true);
  } finally {
    hono.kill("SIGTERM");
    await hono.status;
    if (edge) {
      edge.child.kill("SIGTERM");
      await edge.finished();
    }
    await stack.stop();
  }
}

async function main(): Promise<void> {
  const selected = selectedScenarios();
  const needs = [["node", "--version"], ["wrk", "--version"]];
  for (const [cmd, arg] of needs) {
    try {
      await new Deno.Command(cmd!, { args: [arg!], stdout: "null", stderr: "null" }).output();
    } catch {
      throw new Error(`bench:peers needs ${cmd} on PATH (docs/benchmarks.md, "bench:peers")`);
    }
  }
  try {
    await Deno.stat(peer("node_modules/bullmq/package.json"));
  } catch {
    throw new Error("peers not installed: run `npm ci --prefix bench/peers/node` once");
  }
  console.error(`[peers] load average at start: ${load1()}; ratios count, not absolute numbers`);
  if (selected("queue")) await queueArea();
  if (selected("ws")) await wsArea();
  if (selected("http")) await httpArea();
}

if (import.meta.main) await main();
