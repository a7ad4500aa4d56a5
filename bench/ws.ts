/**
 * The live feed across two edge instances: `deno run -A bench/ws.ts`
 * (`deno task bench:ws`). Starts a stack (or uses the configured services),
 * runs two REAL edges (`edge/main.ts`) as child processes, and drives them
 * from a SEPARATE load process (`bench/ws_load.ts`): WebSocket clients split
 * over both edges, broadcasts published straight into the feed (as a worker
 * would). JSON lines on stdout (see report.ts), one per scenario:
 *
 * - `burst`: 200 clients, 2,000 broadcasts as fast as 64 concurrent
 *   publishes go → deliveries/s (first publish to last delivery), p50/p99
 *   publish→delivery latency, lost, duplicated (per client and message);
 * - `paced`: 200 clients, 200 broadcasts/s for 10 s → p50/p99 latency from
 *   each message's due time, and the edges' CPU per delivery;
 * - `idle`: 10,000 idle connections on one edge → its resident memory per
 *   connection;
 * - `lead_events`: 20,000 lead events inserted into Postgres as fast as they
 *   go → how fast the edges' relay publishes them on `leads`
 *   (ws_lead_events.ts);
 * - `lead_events_paced`: the same at 5,000 events/s → the relay's lag p99
 *   (issue 21: ≤ 500 ms).
 *
 * `--only=burst,paced` runs just the named scenarios (bench:peers does);
 * `--send-queue-max-messages=N` changes the edges' slow-consumer bound.
 *
 * Targets on 2 cores (issue 8): burst ≥ 200,000 deliveries/s with 0 lost,
 * paced p99 ≤ 20 ms, idle ≤ 20 KiB per connection; met/missed goes to stderr.
 * The load process, the bridge, redis-server and both edges share the cores.
 *
 * @module
 */
import { parseConfig, readEnvironment } from "../shared/config/mod.ts";
import { mintDevToken } from "../dev/token.ts";
import { settingsToEnv, startStack } from "../dev/stack.ts";
import { migrateStack } from "../dev/migrate_stack.ts";
import { AppProcess } from "../testing/process.ts";
import { createRedis } from "../shared/deps.ts";
import { poolFor } from "../shared/db/pool.ts";
import { type BenchLine, runScenario, selectedScenarios } from "./lib/report.ts";
import { runJsonChild } from "./lib/child.ts";
import { leadEventsScenario } from "./ws_lead_events.ts";

const BENCH = "ws";
const LOAD = new URL("./ws_load.ts", import.meta.url).pathname;

async function runLoad(flags: Record<string, string | number>): Promise<Record<string, unknown>> {
  // -A: the load process reads the edges' /proc/<pid>/stat and status.
  const args = ["run", "-A", LOAD, ...Object.entries(flags).map(([k, v]) => `--${k}=${v}`)];
  return await runJsonChild<Record<string, unknown>>(args, "ws_load");
}

/**
 * `--send-queue-max-messages=N`: the edges' WS_SEND_QUEUE_MAX_MESSAGES (the
 * frames a slow client may have waiting before it is closed with 4008).
 * bench:peers raises it to hold a whole burst, as Socket.IO, which buffers
 * without a bound, does; the default keeps the production setting.
 */
const sendQueueMaxMessages = Deno.args.find((a) => a.startsWith("--send-queue-max-messages="))
  ?.split("=")[1];

async function main(): Promise<void> {
  const stack = await startStack({
    env: readEnvironment(),
    // Throughput of the app, not of fsync: a benchmark's data is throwaway (docs/reliability.md).
    postgresDurability: "fast",
    onProgress: (m) => console.error(`[ws] ${m}`),
  });
  const edges: AppProcess[] = [];
  try {
    // The edges' lead-events relay reads lead_events (the lead_events scenario).
    await migrateStack(stack.settings);
    const env = {
      ...settingsToEnv(stack.settings),
      EDGE_HOST: "127.0.0.1",
      EDGE_PORT: "0",
      LOG_LEVEL: "info",
      // One bench principal opens every socket (10,000 in the memory scenario):
      // the per-principal caps that protect production would refuse it.
      WS_MAX_SOCKETS_PER_SUB: "20000",
      WS_UPGRADES_PER_MINUTE: "100000",
      ...(sendQueueMaxMessages ? { WS_SEND_QUEUE_MAX_MESSAGES: sendQueueMaxMessages } : {}),
    };
    const config = parseConfig(env);
    edges.push(new AppProcess("edge/main.ts", env), new AppProcess("edge/main.ts", env));
    const urls = await Promise.all(
      edges.map(async (e) => (await e.waitForLog("edge listening", 30_000)).url as string),
    );
    const token = await mintDevToken(config.auth, { sub: "bench", roles: ["viewer"], ttlS: 3600 });
    const common = {
      urls: urls.join(","),
      token,
      "redis-url": stack.settings.redis.url,
      "redis-token": stack.settings.redis.token,
      "edge-pids": edges.map((e) => e.child.pid).join(","),
      // The bridge runs in this process when the stack is local.
      "other-pids": [
        ...(stack.settings.local ? [`bench=${Deno.pid}`] : []),
        ...(stack.redisServer?.pid ? [`redis=${stack.redisServer.pid}`] : []),
      ].join(","),
    };
    const lines: BenchLine[] = [];
    const selected = selectedScenarios();
    if (selected("burst")) {
      lines.push(
        await runScenario(async () => {
          const s = await runLoad({ ...common, scenario: "burst", clients: 200, n: 2000 });
          return {
            bench: BENCH,
            scenario: "burst",
            ops_per_s: s.deliveries_per_s as number,
            p50_ms: s.p50_ms as number,
            p99_ms: s.p99_ms as number,
            lost: s.lost as number,
            duplicates: s.duplicates as number,
            n: s.n as number,
            concurrency: 64,
            clients: s.clients,
            instances: 2,
            deliveries: s.deliveries,
            publish_per_s: s.publish_per_s,
            load_cpu_pct: s.load_cpu_pct,
            edge_cpu_pct: s.edge_cpu_pct,
            other_cpu_pct: s.other_cpu_pct,
            cpu_split_us_per_delivery: s.cpu_split_us_per_delivery,
            closed_by_server: s.closed_by_server,
            ...(sendQueueMaxMessages
              ? { send_queue_max_messages: Number(sendQueueMaxMessages) }
              : {}),
          };
        }),
      );
    }
    if (selected("paced")) {
      lines.push(
        await runScenario(async () => {
          const s = await runLoad({
            ...common,
            scenario: "paced",
            clients: 200,
            rate: 200,
            duration: 10,
          });
          return {
            bench: BENCH,
            scenario: "paced",
            p50_ms: s.p50_ms as number,
            p99_ms: s.p99_ms as number,
            max_ms: s.max_ms,
            cpu_us_per_op: s.cpu_us_per_delivery as number,
            lost: s.lost as number,
            duplicates: s.duplicates as number,
            n: s.n as number,
            rate: s.rate,
            clients: s.clients,
            instances: 2,
            deliveries: s.deliveries,
            send_lag_p99_ms: s.send_lag_p99_ms,
            publish_p99_ms: s.publish_p99_ms,
            fan_out_p50_ms: s.fan_out_p50_ms,
            fan_out_p99_ms: s.fan_out_p99_ms,
            load_loop_lag_p99_ms: s.load_loop_lag_p99_ms,
            closed_by_server: s.closed_by_server,
          };
        }),
      );
    }
    if (selected("idle")) {
      // The runtime's own share first, in a fresh process (ws_bare_server.ts).
      const bare = new AppProcess("bench/ws_bare_server.ts", {});
      let floor: Record<string, unknown>;
      try {
        const url = (await bare.waitForLog("edge listening", 30_000)).url as string;
        floor = await runLoad({
          ...common,
          urls: url,
          "edge-pids": String(bare.child.pid),
          scenario: "idle",
          clients: 10_000,
        });
      } finally {
        await bare.stop("SIGTERM");
      }
      lines.push(
        await runScenario(async () => {
          const s = await runLoad({
            ...common,
            urls: urls[0]!,
            "edge-pids": String(edges[0]!.child.pid),
            scenario: "idle",
            clients: 10_000,
          });
          return {
            bench: BENCH,
            scenario: "idle",
            n: s.clients as number,
            bytes_per_connection: s.bytes_per_connection,
            rss_before_mib: s.rss_before_mib,
            rss_after_mib: s.rss_after_mib,
            // The same 10,000 sockets on bare Deno.serve (no hub): the runtime's floor.
            runtime_bytes_per_connection: floor.bytes_per_connection,
            closed_by_server: s.closed_by_server,
          };
        }),
      );
    }
    for (
      const [scenario, rate] of [["lead_events", undefined], ["lead_events_paced", 5000]] as const
    ) {
      if (!selected(scenario)) continue;
      const sql = poolFor(config.database, { max: 4 });
      try {
        lines.push(
          await runScenario(async () => ({
            bench: BENCH,
            scenario,
            ...(await leadEventsScenario(createRedis(config.redis), sql, 20_000, rate)),
          })),
        );
      } finally {
        await sql.end();
      }
    }
    const byName = (name: string) => lines.find((l) => l.scenario === name);
    const [burst, paced, idle] = [byName("burst"), byName("paced"), byName("idle")];
    const checks: [string, boolean][] = [];
    if (burst) {
      checks.push([
        `burst: ${burst.ops_per_s} deliveries/s, ${burst.lost} lost (target >= 200000, 0 lost)`,
        burst.ops_per_s! >= 200_000 && burst.lost === 0,
      ]);
    }
    if (paced) {
      checks.push([`paced: p99 ${paced.p99_ms} ms (target <= 20 ms)`, paced.p99_ms! <= 20]);
    }
    if (idle) {
      checks.push([
        `idle: ${idle.bytes_per_connection} bytes per connection (target <= 20480)`,
        (idle.bytes_per_connection as number) <= 20_480,
      ]);
    }
    const leadPaced = byName("lead_events_paced");
    if (leadPaced) {
      checks.push([
        `lead_events_paced: lag p99 ${leadPaced.p99_ms} ms at 5000 events/s, ${leadPaced.lost} lost (target <= 500 ms, 0 lost)`,
        leadPaced.p99_ms! <= 500 && leadPaced.lost === 0,
      ]);
    }
    for (const [text, met] of checks) console.error(`[ws] ${met ? "met" : "MISSED"}: ${text}`);
  } finally {
    await Promise.all(edges.map((e) => e.stop("SIGTERM")));
    await stack.stop();
  }
}

if (import.meta.main) await main();
