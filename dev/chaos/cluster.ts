/**
 * The platform under test: its own local stack (never a configured one),
 * TCP fault proxies between the processes and Redis (the Upstash bridge) and
 * Postgres (the Neon proxy), and two edges and two workers as separate,
 * supervised processes (dev/supervisor.ts restarts them after a kill).
 *
 * @module
 */
import { readEnvironment } from "../../shared/config/mod.ts";
import { denoRunArgs } from "../app_permissions.ts";
import { forEachLine } from "../lines.ts";
import { freePort } from "../ports.ts";
import { settingsToEnv, type Stack, startStack } from "../stack.ts";
import { migrateStack } from "../migrate_stack.ts";
import { supervise, type Supervised } from "../supervisor.ts";
import { type FaultProxy, startFaultProxy } from "./fault_proxy.ts";
import type { PROCESSES } from "./scenario.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A running cluster. */
export interface Cluster {
  stack: Stack;
  redisProxy: FaultProxy;
  /** Between the workers and redis-server itself (their queue scripts over TCP: REDIS_TCP_URL). */
  redisTcpProxy: FaultProxy;
  postgresProxy: FaultProxy;
  edges: string[];
  processes: Record<(typeof PROCESSES)[number], Supervised>;
  /** Where the file email provider writes. */
  outbox: string;
  /** Environment the children run with (what shared/config/ reads). */
  env: Record<string, string>;
  /** Process log lines with "error" level (kept for the report). */
  errors: string[];
  stop(): Promise<void>;
}

/**
 * Refuses any URL that is not loopback: the campaign kills and corrupts what
 * it targets, so it only ever runs against the stack it started itself.
 */
export function assertLoopback(url: string): void {
  const host = new URL(url.includes("://") ? url : `tcp://${url}`).hostname;
  if (["127.0.0.1", "localhost", "[::1]", "::1"].includes(host)) return;
  throw new RangeError(`Refusing to run chaos against ${host}: only loopback targets`);
}

/** Starts everything; `say` gets progress lines. */
export async function startCluster(say: (m: string) => void): Promise<Cluster> {
  const stack = await startStack({ onProgress: say });
  const children: Supervised[] = [];
  const proxies: FaultProxy[] = [];
  const errors: string[] = [];
  const stop = async () => {
    await Promise.allSettled(children.map((c) => c.stop()));
    await Promise.allSettled(proxies.map((p) => p.close()));
    await stack.stop();
  };
  try {
    await migrateStack(stack.settings);
    const base = settingsToEnv(stack.settings);
    assertLoopback(base.UPSTASH_REDIS_REST_URL!);
    assertLoopback(base.DATABASE_URL!);
    const bridgePort = Number(new URL(base.UPSTASH_REDIS_REST_URL!).port);
    const neonPort = Number(/:(\d+)\//.exec(stack.settings.database.wsProxy ?? "")?.[1]);
    const redisProxy = await startFaultProxy({ upstreamPort: bridgePort });
    const redisTcpProxy = await startFaultProxy({ upstreamPort: stack.redisServer!.port });
    const postgresProxy = await startFaultProxy({ upstreamPort: neonPort });
    proxies.push(redisProxy, redisTcpProxy, postgresProxy);
    const redisTcpUrl = new URL(stack.redisServer!.url);
    redisTcpUrl.port = String(redisTcpProxy.port);
    const outbox = await Deno.makeTempDir({ prefix: "chaos_outbox_" });
    const inherited = readEnvironment();
    const env: Record<string, string> = {
      // The caller's environment (DENO_DIR, HOME…); the services are always this stack's.
      ...inherited,
      ...base,
      UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${redisProxy.port}`,
      REDIS_TCP_URL: redisTcpUrl.href,
      NEON_WS_PROXY: `127.0.0.1:${postgresProxy.port}/v1`,
      APP_ENV: "development",
      LOG_LEVEL: "warn",
      RATE_LIMITS: JSON.stringify({ default: { limit: 100_000_000, window_s: 60 } }),
      EMAIL_PROVIDER: "file",
      EMAIL_DIR: outbox,
      WORKER_CONCURRENCY: "8",
    };
    const ports = [freePort(), freePort()];
    // Each process its own admin listener (metrics, health): the defaults would collide.
    const admin = () => ({ EDGE_ADMIN_PORT: "0", WORKER_ADMIN_PORT: "0" });
    const spawn =
      (name: string, entry: string, extra: Record<string, string>, write: string[]) => () => {
        const child = new Deno.Command(Deno.execPath(), {
          args: denoRunArgs(entry, [
            // Where an uncaught error was thrown, for the report (Deno prints only its value).
            "--preload=dev/chaos/uncaught_location.ts",
            ...write.map((w) => `--allow-write=${w}`),
          ]),
          cwd: ROOT,
          env: { ...env, ...extra },
          clearEnv: true,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const keep = (line: string) => {
          if (/"level":"(error|fatal)"/.test(line)) errors.push(`${name}: ${line.slice(0, 1500)}`);
        };
        forEachLine(child.stdout, keep).catch(() => {});
        // An uncaught exception is printed as plain text ("error: Uncaught …").
        forEachLine(child.stderr, (line) => {
          if (/^error: |Uncaught/.test(line)) errors.push(`${name}: ${line.slice(0, 1500)}`);
          else keep(line);
        }).catch(() => {});
        return child;
      };
    const log = (m: string) => say(`[supervisor] ${m}`);
    const processes = {
      "edge-1": supervise({
        name: "edge-1",
        spawn: spawn("edge-1", "edge/main.ts", { ...admin(), EDGE_PORT: String(ports[0]) }, []),
        log,
        baseMs: 200,
      }),
      "edge-2": supervise({
        name: "edge-2",
        spawn: spawn("edge-2", "edge/main.ts", { ...admin(), EDGE_PORT: String(ports[1]) }, []),
        log,
        baseMs: 200,
      }),
      "worker-1": supervise({
        name: "worker-1",
        spawn: spawn("worker-1", "workers/main.ts", admin(), [outbox]),
        log,
        baseMs: 200,
      }),
      "worker-2": supervise({
        name: "worker-2",
        spawn: spawn("worker-2", "workers/main.ts", admin(), [outbox]),
        log,
        baseMs: 200,
      }),
    };
    children.push(...Object.values(processes));
    const edges = ports.map((p) => `http://127.0.0.1:${p}`);
    await waitReady(edges);
    say(`edges ${edges.join(" ")}, 2 workers`);
    return {
      stack,
      redisProxy,
      redisTcpProxy,
      postgresProxy,
      edges,
      processes,
      outbox,
      env,
      errors,
      async stop() {
        await stop();
        await Deno.remove(outbox, { recursive: true }).catch(() => {});
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits until every edge answers /ready with 200 (the edges wait for Redis and Postgres). */
export async function waitReady(edges: string[], timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const edge of edges) {
    for (;;) {
      try {
        const res = await fetch(`${edge}/ready`);
        await res.body?.cancel();
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${edge} not ready after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
