/**
 * Worker composition root: config → deps → queue → Runner and Scheduler
 * (recurring tasks, shared/schedules/). Waits for Redis and Postgres before
 * it claims anything; SIGTERM/SIGINT stops claiming, lets in-flight tasks
 * finish within WORKER_SHUTDOWN_GRACE_MS, releases the rest to the front of
 * their queue, closes the pools and exits 0.
 *
 * @module
 */
import { closeDeps, type Deps, makeDeps } from "../shared/deps.ts";
import { onShutdownSignal, SHUTDOWN_CLEANUP_MS, warnAboutDevSecrets } from "../shared/lifecycle.ts";
import { readEnvironment } from "../shared/config/mod.ts";
import { loadConfigAndSecretsOrExit, watchSecrets } from "../shared/secrets/source.ts";
import { secretApplier } from "../shared/secrets/apply.ts";
import { queueFromConfig } from "../shared/queue/from_config.ts";
import { alertOnBreakerOpen, deploymentAlertSender } from "../shared/alerts/producers.ts";
import { Runner } from "./runner.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import { createHandlers } from "./tasks/registry.ts";
import { emailProviderFromConfig } from "../shared/email/from_config.ts";
import { Scheduler } from "../shared/schedules/scheduler.ts";
import { ChampionWatcher } from "../shared/scoring/champion.ts";
import { serveAdmin } from "../shared/metrics/admin_server.ts";
import { observeBreakers } from "../shared/metrics/breakers.ts";
import { collectQueueDepth } from "../shared/metrics/queue_depth.ts";
import { sameRedis, TcpScriptTransport } from "../shared/redis/tcp_scripts.ts";

/** PING over REST, and over TCP when the queue's scripts use it. */
function pingRedis(deps: Deps, tcp: TcpScriptTransport | null): Promise<boolean> {
  return Promise.all([deps.redis.ping(), tcp?.ping() ?? "PONG"])
    .then(([rest, direct]) => rest === "PONG" && direct === "PONG");
}

/** True when both stores answer within READY_TIMEOUT_MS. */
async function dependenciesAnswer(deps: Deps, tcp: TcpScriptTransport | null): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      Promise.all([pingRedis(deps, tcp), deps.sql.query("SELECT 1")]).then(([ok]) => ok),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), deps.config.readyTimeoutMs)),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
import { type BackgroundProbe, startDatabaseProbe } from "../shared/breakers/background_probe.ts";
import { type DlqExpiry, startDlqExpiry } from "../shared/queue/dlq_expiry.ts";

/** Waits until both stores answer, or `stop` resolves; returns false when stopped first. */
async function waitForDependencies(
  deps: Deps,
  tcp: TcpScriptTransport | null,
  stop: Promise<void>,
): Promise<boolean> {
  // In a rolling deploy the worker may start before Redis/Postgres answer.
  for (let attempt = 1;; attempt++) {
    try {
      const [pong] = await Promise.all([pingRedis(deps, tcp), deps.sql.query("SELECT 1")]);
      if (!pong) throw new Error("unexpected PING reply");
      return true;
    } catch (err) {
      deps.log.warn("worker waiting for dependencies", { attempt, err });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const next = await Promise.race([
        stop.then(() => "stopped"),
        new Promise((r) => timer = setTimeout(() => r("retry"), Math.min(5000, 250 * attempt))),
      ]);
      clearTimeout(timer);
      if (next === "stopped") return false;
    }
  }
}

if (import.meta.main) {
  const { config, secrets } = await loadConfigAndSecretsOrExit(readEnvironment(), "worker");
  const deps = makeDeps(config, "worker");
  // The queue's scripts over TCP when configured (docs/queue.md, Transports).
  const tcp = config.redis.tcpUrl === null ? null : new TcpScriptTransport({
    url: config.redis.tcpUrl,
    connectTimeoutMs: config.readyTimeoutMs,
  });
  warnAboutDevSecrets(config, deps.log);
  // Rotated secrets apply in place: the next task reads the new value.
  const reloader = watchSecrets(
    config,
    secrets,
    secretApplier(config, deps.sql, deps.log),
    deps.log,
  );
  const stop = Promise.withResolvers<void>();
  onShutdownSignal(async (signal) => {
    deps.log.info("worker stopping", { signal });
    stop.resolve();
    await Promise.resolve();
  }, {
    // In-flight tasks get WORKER_SHUTDOWN_GRACE_MS (then they are released); the rest is cleanup.
    deadlineMs: config.worker.shutdownGraceMs + SHUTDOWN_CLEANUP_MS,
    onDeadline: (ms) =>
      deps.log.error("worker shutdown deadline passed; exiting", { after_ms: ms }),
  });

  let runner: Runner | null = null;
  const scorer = new ChampionWatcher({
    sql: deps.sql,
    log: deps.log,
    intervalMs: config.ml.championCheckMs,
  });
  let scheduler: Scheduler | null = null;
  let dlqExpiry: DlqExpiry | null = null;
  let databaseProbe: BackgroundProbe | null = null;
  let stopBreakerAlerts: (() => void) | null = null;
  const breakers = createBreakerRegistry({
    redis: deps.redis,
    policies: config.breakerPolicies,
    log: deps.log,
    now: deps.now,
  });
  const { metricsEnabled, workerAdmin } = config.observability;
  // Up before the dependencies: /health answers while the worker waits for
  // them, /ready only once it claims work and both stores answer.
  const admin = await serveAdmin({
    hostname: workerAdmin.host,
    port: workerAdmin.port,
    metrics: metricsEnabled ? deps.metrics : null,
    ready: async () => {
      if (runner === null) return { ready: false, detail: "waiting for dependencies" };
      const ok = await dependenciesAnswer(deps, tcp);
      return { ready: ok, detail: ok ? undefined : "redis or postgres unreachable" };
    },
    log: deps.log,
    name: "worker admin",
  });
  if (await waitForDependencies(deps, tcp, stop.promise)) {
    if (tcp !== null && !(await sameRedis(deps.redis, tcp))) {
      deps.log.error(
        "REDIS_TCP_URL does not reach the Redis behind UPSTASH_REDIS_REST_URL: the worker would " +
          "claim from another queue than the edge fills; fix one of them (docs/queue.md, Transports)",
      );
      await tcp.close();
      await closeDeps(deps);
      Deno.exit(1);
    }
    // Never throws: without Redis the breakers start in local mode and re-sync later.
    await breakers.start();
    await scorer.start();
    // Half-opens the database breaker as soon as Postgres answers, so parked types resume.
    databaseProbe = startDatabaseProbe(breakers, config.breakerPolicies, deps.sql, deps.log);
    const queue = queueFromConfig(deps.redis, config, undefined, tcp ?? undefined);
    // The alert webhook (docs/observability.md): breaker openings this worker
    // observes and the deployments its training runs make are queued for it
    // (DLQ arrivals are queued by the queue's scripts themselves).
    const alerting = config.alerts.webhookUrl !== null;
    if (alerting) stopBreakerAlerts = alertOnBreakerOpen(breakers, queue, deps.log);
    const handlers = createHandlers({
      config,
      queue,
      breakers,
      scorer,
      ...(alerting ? { sendDeploymentAlert: deploymentAlertSender(queue, deps.now) } : {}),
      email: emailProviderFromConfig(config.email, breakers.get("email")),
    });
    runner = new Runner({
      breakers,
      queue,
      handlers,
      deps,
      concurrency: config.worker.concurrency,
      leaseMs: config.worker.leaseMs,
      pollMs: config.worker.pollMs,
      shutdownGraceMs: config.worker.shutdownGraceMs,
    });
    runner.start();
    if (metricsEnabled) {
      const started = runner;
      deps.metrics.collectors.push(() => deps.metrics.tasksInFlight.set(started.inFlight));
      observeBreakers(deps.metrics, breakers, { policies: config.breakerPolicies, now: deps.now });
      collectQueueDepth(deps.metrics, queue);
    }
    // Every worker runs it: each slot is enqueued once however many do (shared/schedules/).
    scheduler = new Scheduler({
      queue,
      schedules: config.schedules,
      log: deps.log,
      now: deps.now,
    });
    scheduler.start();
    // The DLQ's retention, on time even when no task dies (shared/queue/dlq_expiry.ts).
    dlqExpiry = startDlqExpiry(queue, { now: deps.now, log: deps.log });
    deps.log.info("worker ready", {
      worker_id: runner.workerId,
      concurrency: config.worker.concurrency,
      task_types: Object.keys(handlers),
    });
  }

  await stop.promise;
  await scheduler?.stop();
  await dlqExpiry?.stop();
  await databaseProbe?.stop();
  await runner?.stop();
  stopBreakerAlerts?.();
  await breakers.stop().catch((err) => deps.log.warn("stopping breakers failed", { err }));
  await reloader.stop();
  secrets.close();
  await scorer[Symbol.asyncDispose]();
  await admin.shutdown().catch((err) =>
    deps.log.warn("stopping the admin listener failed", { err })
  );
  await tcp?.close();
  await closeDeps(deps);
  deps.log.info("worker stopped");
  Deno.exit(0);
}
