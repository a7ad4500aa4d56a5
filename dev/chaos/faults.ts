/**
 * Applying one fault of a scenario to a running cluster. Each returns when
 * the fault is over (the process was killed, the pause lifted, the server
 * restarted), so the orchestrator knows when recovery starts.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { queueKeys } from "../../shared/redis/keys.ts";
import type { Cluster } from "./cluster.ts";
import type { FaultSpec } from "./scenario.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signal(cluster: Cluster, target: keyof Cluster["processes"], sig: Deno.Signal): void {
  const pid = cluster.processes[target].pid;
  if (pid === null) throw new Error(`${target} is not running (restarting?)`);
  Deno.kill(pid, sig);
}

/**
 * Restarts a stopped server, again until it is up (60 s at most): on a loaded
 * machine one start may miss its readiness deadline, and a server left down
 * would turn the rest of the campaign into one long outage.
 */
async function restartUntilUp(restart: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await restart();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
}

/** A one-line description of `f` for the report. */
export function describeFault(f: FaultSpec): string {
  switch (f.kind) {
    case "kill9":
      return `kill -9 ${f.target}`;
    case "sigterm":
      return `SIGTERM ${f.target}`;
    case "pause":
      return `SIGSTOP ${f.target} for ${f.for_s} s`;
    case "redis_down":
      return `redis-server down for ${f.for_s} s`;
    case "postgres_down":
      return `PostgreSQL down for ${f.for_s} s`;
    case "network":
      return `${f.fault}${
        f.fault === "latency" ? ` ${f.latency_ms ?? 200} ms` : ""
      } to ${f.target} for ${f.for_s} s`;
    case "expire_leases":
      return "expire every lease";
    case "flood":
      return `flood ${f.target} ${f.route} at ${f.rps}/s for ${f.for_s} s`;
  }
}

/** Runs `f`; `redis` is a direct client (not through the fault proxy). */
export async function applyFault(
  cluster: Cluster,
  f: FaultSpec,
  redis: Redis,
  token: string,
): Promise<void> {
  switch (f.kind) {
    case "kill9":
      return signal(cluster, f.target, "SIGKILL");
    case "sigterm":
      return signal(cluster, f.target, "SIGTERM");
    case "pause": {
      signal(cluster, f.target, "SIGSTOP");
      await sleep(f.for_s * 1000);
      const pid = cluster.processes[f.target].pid;
      if (pid !== null) Deno.kill(pid, "SIGCONT");
      return;
    }
    case "redis_down": {
      const server = cluster.stack.redisServer!;
      await server.stop();
      await sleep(f.for_s * 1000);
      await restartUntilUp(() => server.restart());
      return;
    }
    case "postgres_down": {
      const server = cluster.stack.postgres!;
      await server.stop();
      await sleep(f.for_s * 1000);
      await restartUntilUp(() => server.restart());
      return;
    }
    case "network": {
      // Redis is reached two ways: REST through the bridge, and TCP (the workers' queue scripts).
      const proxies = f.target === "redis"
        ? [cluster.redisProxy, cluster.redisTcpProxy]
        : [cluster.postgresProxy];
      const fault = f.fault === "latency"
        ? { kind: "latency" as const, ms: f.latency_ms ?? 200 }
        : { kind: f.fault };
      for (const proxy of proxies) proxy.setFault(fault);
      await sleep(f.for_s * 1000);
      for (const proxy of proxies) proxy.setFault({ kind: "pass" });
      return;
    }
    case "expire_leases": {
      const key = queueKeys().leases;
      const held = await redis.zrange<string[]>(key, 0, -1);
      for (const id of held) await redis.zadd(key, { xx: true }, { score: 0, member: id });
      return;
    }
    case "flood": {
      const edge = cluster.edges[f.target === "edge-1" ? 0 : 1]!;
      const end = Date.now() + f.for_s * 1000;
      const inflight = new Set<Promise<void>>();
      while (Date.now() < end) {
        for (let i = 0; i < f.rps / 10; i++) {
          const p = fetch(`${edge}${f.route}?limit=5`, {
            headers: { authorization: `Bearer ${token}` },
          }).then((r) => r.body?.cancel()).catch(() => {}).finally(() => inflight.delete(p));
          inflight.add(p);
        }
        await sleep(100);
      }
      await Promise.all(inflight);
      return;
    }
  }
}
