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
import { onShutdownSignal, warnAboutDevSecrets } from "../shared/lifecycle.ts";
import { readEnvironment } from "../shared/config.ts";
import { loadConfigAndSecretsOrExit, watchSecrets } from "../shared/secrets/source.ts";
import { secretApplier } from "../shared/secrets/apply.ts";
import { queueFromConfig } from "../shared/queue/from_config.ts";
import { Runner } from "./runner.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import { createHandlers } from "./tasks/registry.ts";
import { emailProviderFromConfig } from "../shared/email/from_config.ts";
import { Scheduler } from "../shared/schedules/scheduler.ts";
import { ChampionWatcher } from "../shared/scoring/champion.ts";

/** Waits until both stores answer, or `stop` resolves; returns false when stopped first. */
async function waitForDependencies(deps: Deps, stop: Promise<void>): Promise<boolean> {
  // In a rolling deploy the worker may start before Redis/Postgres answer.
  for (let attempt = 1;; attempt++) {
    try {
      const [pong] = await Promise.all([deps.redis.ping(), deps.sql.query("SELECT 1")]);
      if (pong !== "PONG") throw new Error(`unexpected PING reply ${pong}`);
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
  });

  let runner: Runner | null = null;
  const scorer = new ChampionWatcher({
    sql: deps.sql,
    log: deps.log,
    intervalMs: config.ml.championCheckMs,
  });
  let scheduler: Scheduler | null = null;
  const breakers = createBreakerRegistry({
    redis: deps.redis,
    policies: config.breakerPolicies,
    log: deps.log,
    now: deps.now,
  });
  if (await waitForDependencies(deps, stop.promise)) {
    // Never throws: without Redis the breakers start in local mode and re-sync later.
    await breakers.start();
    await scorer.start();
    const queue = queueFromConfig(deps.redis, config);
    const handlers = createHandlers({
      config,
      queue,
      breakers,
      scorer,
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
    // Every worker runs it: each slot is enqueued once however many do (shared/schedules/).
    scheduler = new Scheduler({
      queue,
      schedules: config.schedules,
      log: deps.log,
      now: deps.now,
    });
    scheduler.start();
    deps.log.info("worker ready", {
      worker_id: runner.workerId,
      concurrency: config.worker.concurrency,
      task_types: Object.keys(handlers),
    });
  }

  await stop.promise;
  await scheduler?.stop();
  await runner?.stop();
  await breakers.stop().catch((err) => deps.log.warn("stopping breakers failed", { err }));
  await reloader.stop();
  secrets.close();
  await scorer[Symbol.asyncDispose]();
  await closeDeps(deps);
  deps.log.info("worker stopped");
  Deno.exit(0);
}
