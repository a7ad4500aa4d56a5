/**
 * The dependency bag each process builds ONCE in its composition root
 * (edge/main.ts, workers/main.ts) and passes down explicitly.
 *
 * @module
 */
import { Redis } from "@upstash/redis";
import type { Pool } from "@neondatabase/serverless";
import type { Config } from "./config/mod.ts";
import { createLogger, type Logger } from "./log.ts";
import { poolFor } from "./db/pool.ts";
import { createMetrics, type Metrics } from "./metrics/metrics.ts";

/** What request handlers and tasks get. */
export interface Deps {
  config: Config;
  redis: Redis;
  sql: Pool;
  log: Logger;
  /** Clock in epoch milliseconds; tests inject a fake one. */
  now: () => number;
  /** This process's Prometheus registry and metrics (one per process, never global). */
  metrics: Metrics;
}

/** Builds the Upstash client with bounded retries (the default retries ~4.3 s). */
export function createRedis(config: Pick<Config["redis"], "url" | "token">): Redis {
  return new Redis({
    url: config.url,
    token: config.token,
    // A gateway must fail fast: two quick retries on network errors, then the
    // caller (breaker, readiness check) decides.
    retry: { retries: 2, backoff: (i) => 20 * (i + 1) },
    enableTelemetry: false,
    // Raw strings back: the SDK's default JSON.parse of every string result
    // would turn a stored "123" into a number and payload text into objects.
    automaticDeserialization: false,
    // Every value the platform stores is UTF-8 text (JSON, ids), so the
    // default base64 response encoding only costs CPU on both ends (a large
    // share of queue drain throughput: docs/benchmarks.md, design measurements).
    responseEncoding: false,
  });
}

/** Builds the full dependency bag for one process. */
export function makeDeps(config: Config, service: "edge" | "worker" | "migrate"): Deps {
  const log = createLogger({ level: config.logLevel, fields: { service } });
  // `service` on every series: the rules tell workers from edges without
  // depending on how the deployment names its scrape jobs.
  const metrics = createMetrics({ service });
  const sql = poolFor(config.database, {
    max: config.database.poolMax,
    connectionTimeoutMillis: config.readyTimeoutMs * 5,
    onError: (err) => log.warn("postgres pool error", { err }),
    onCallError: (operation) => metrics.postgresErrors.inc({ operation }),
  });
  return {
    config,
    redis: createRedis(config.redis),
    sql,
    log,
    now: Date.now,
    metrics,
  };
}

/**
 * Releases what {@linkcode makeDeps} opened. Bounded by `timeoutMs`: a pool
 * waiting on a connection attempt to a hung database would otherwise hold
 * shutdown for the whole connection timeout.
 */
export async function closeDeps(deps: Deps, timeoutMs = 2000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ended = await Promise.race([
    deps.sql.end().then(
      () => true,
      (err) => {
        deps.log.warn("closing postgres pool failed", { err });
        return true;
      },
    ),
    new Promise<boolean>((r) => timer = setTimeout(() => r(false), timeoutMs)),
  ]);
  clearTimeout(timer);
  if (!ended) deps.log.warn("postgres pool did not close in time", { timeout_ms: timeoutMs });
}
