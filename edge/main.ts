/**
 * Edge composition root: config → deps → `createApp(deps)` → `Deno.serve`.
 * SIGTERM stops accepting connections, lets in-flight requests finish (up to
 * SHUTDOWN_TIMEOUT_MS), closes the pools and exits 0.
 *
 * @module
 */
import { closeDeps, makeDeps } from "../shared/deps.ts";
import { onShutdownSignal, SHUTDOWN_CLEANUP_MS, warnAboutDevSecrets } from "../shared/lifecycle.ts";
import { readEnvironment } from "../shared/config/mod.ts";
import { loadConfigAndSecretsOrExit, watchSecrets } from "../shared/secrets/source.ts";
import { secretApplier } from "../shared/secrets/apply.ts";
import { createApp } from "./app.ts";
import { ChampionWatcher } from "../shared/scoring/champion.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import { startDatabaseProbe } from "../shared/breakers/background_probe.ts";
import { createLiveHub } from "./ws/hub.ts";
import { relayBreakerTransitions, relayDeadLetters } from "./ws/relays.ts";
import { relayLeadEvents } from "./ws/lead_events_relay.ts";
import { serveAdmin } from "../shared/metrics/admin_server.ts";
import { observeBreakers } from "../shared/metrics/breakers.ts";
import { collectQueueDepth } from "../shared/metrics/queue_depth.ts";
import { alertOnBreakerOpen, deploymentAlertSender } from "../shared/alerts/producers.ts";
import { queueFromConfig } from "../shared/queue/from_config.ts";
import { observeLiveHub } from "./edge_metrics.ts";
import { checkDependencies } from "./routes/health.ts";

if (import.meta.main) {
  const { config, secrets } = await loadConfigAndSecretsOrExit(readEnvironment(), "edge");
  const deps = makeDeps(config, "edge");
  warnAboutDevSecrets(config, deps.log);
  // Rotated secrets apply in place: no restart, requests in flight unaffected.
  const reloader = watchSecrets(
    config,
    secrets,
    secretApplier(config, deps.sql, deps.log),
    deps.log,
  );
  const breakers = createBreakerRegistry({
    redis: deps.redis,
    policies: config.breakerPolicies,
    log: deps.log,
    now: deps.now,
  });
  // Never throws: without Redis the breakers start in local mode and re-sync later.
  await breakers.start();
  // Half-opens the database breaker as soon as Postgres answers again (not after its reset timeout).
  const databaseProbe = startDatabaseProbe(breakers, config.breakerPolicies, deps.sql, deps.log);
  const { leadEventsPollMs, ...hubSettings } = config.liveFeed;
  const live = createLiveHub({
    redis: deps.redis,
    log: deps.log,
    now: deps.now,
    ...hubSettings,
    maxSocketsPerSub: config.perimeter.wsMaxSocketsPerSub,
    maxSocketsPerInstance: config.perimeter.wsMaxSocketsPerInstance,
    upgradesPerMinute: config.perimeter.wsUpgradesPerMinute,
  });
  const relays = [
    relayBreakerTransitions(breakers, { hub: live, log: deps.log }),
    relayDeadLetters({ redis: deps.redis, hub: live, log: deps.log }),
    relayLeadEvents({
      redis: deps.redis,
      sql: deps.sql,
      hub: live,
      pollMs: leadEventsPollMs,
      log: deps.log,
      onCaughtUp: () => deps.metrics.relayCaughtUp.set(deps.now() / 1000),
    }),
  ];
  // Never throw: without Redis the feed bus and the relays keep retrying.
  await Promise.all([live.start(), ...relays.map((r) => r.start())]);
  // Follows the lead-scoring champion (never throws: the heuristic until it loads one).
  const scorer = new ChampionWatcher({
    sql: deps.sql,
    log: deps.log,
    intervalMs: config.ml.championCheckMs,
  });
  await scorer.start();
  const queue = queueFromConfig(deps.redis, config);
  // The alert webhook (docs/observability.md): breaker openings this edge
  // observes and the deployments its model routes make are queued for it.
  const alerting = config.alerts.webhookUrl !== null;
  const stopBreakerAlerts = alerting ? alertOnBreakerOpen(breakers, queue, deps.log) : null;
  const shutdownHooks: (() => Promise<void>)[] = [];
  const app = createApp(deps, {
    onShutdown: (hook) => shutdownHooks.push(hook),
    breakers,
    live,
    scorer,
    queue,
    ...(alerting ? { sendDeploymentAlert: deploymentAlertSender(queue, deps.now) } : {}),
  });
  const { metricsEnabled, edgeAdmin } = config.observability;
  if (metricsEnabled) {
    observeBreakers(deps.metrics, breakers, { policies: config.breakerPolicies, now: deps.now });
    observeLiveHub(deps.metrics, live.metrics);
    collectQueueDepth(deps.metrics, queue);
  }
  // Its own listener: no JWT, bound to EDGE_ADMIN_HOST (docs/observability.md).
  const admin = await serveAdmin({
    hostname: edgeAdmin.host,
    port: edgeAdmin.port,
    metrics: metricsEnabled ? deps.metrics : null,
    ready: async () => {
      const checks = await checkDependencies(deps);
      return { ready: Object.values(checks).every((r) => r.ok), detail: checks };
    },
    log: deps.log,
    name: "edge admin",
  });
  const server = Deno.serve({
    hostname: config.edge.host,
    port: config.edge.port,
    onListen: ({ hostname, port }) => {
      deps.log.info("edge listening", {
        url: `http://${hostname}:${port}`,
        instance: live.instanceId,
      });
    },
  }, app.fetch);

  onShutdownSignal(async (signal) => {
    deps.log.info("edge draining", { signal });
    // Upgraded sockets would hold the drain open: close them first (1001).
    await Promise.all([live, ...relays].map((x) => x.stop())).catch((err) =>
      deps.log.warn("stopping the live feed failed", { err })
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      server.shutdown().then(() => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), config.shutdownTimeoutMs)),
    ]);
    clearTimeout(timer);
    if (!drained) deps.log.warn("drain timed out; exiting with requests in flight");
    // Leased rate-limit budget goes back while Redis is still open.
    await Promise.all(
      shutdownHooks.map((hook) =>
        hook().catch((err) => deps.log.warn("a shutdown hook failed", { err }))
      ),
    );
    await databaseProbe?.stop();
    // Last: Prometheus may still scrape the final counters while the API drains.
    await admin.shutdown().catch((err) =>
      deps.log.warn("stopping the admin listener failed", { err })
    );
    stopBreakerAlerts?.();
    await breakers.stop().catch((err) => deps.log.warn("stopping breakers failed", { err }));
    await reloader.stop();
    secrets.close();
    await scorer[Symbol.asyncDispose]();
    await closeDeps(deps);
    deps.log.info("edge stopped");
    Deno.exit(0);
  }, {
    deadlineMs: config.shutdownTimeoutMs + SHUTDOWN_CLEANUP_MS,
    onDeadline: (ms) => deps.log.error("edge shutdown deadline passed; exiting", { after_ms: ms }),
  });
}
