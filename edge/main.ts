/**
 * Edge composition root: config → deps → `createApp(deps)` → `Deno.serve`.
 * SIGTERM stops accepting connections, lets in-flight requests finish (up to
 * SHUTDOWN_TIMEOUT_MS), closes the pools and exits 0.
 *
 * @module
 */
import { closeDeps, makeDeps } from "../shared/deps.ts";
import { onShutdownSignal, warnAboutDevSecrets } from "../shared/lifecycle.ts";
import { readEnvironment } from "../shared/config.ts";
import { loadConfigAndSecretsOrExit, watchSecrets } from "../shared/secrets/source.ts";
import { secretApplier } from "../shared/secrets/apply.ts";
import { createApp } from "./app.ts";
import { ChampionWatcher } from "../shared/scoring/champion.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import { createLiveHub } from "./ws/hub.ts";
import { relayBreakerTransitions, relayDeadLetters } from "./ws/relays.ts";
import { relayLeadEvents } from "./ws/lead_events_relay.ts";

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
  const { leadEventsPollMs, ...hubSettings } = config.liveFeed;
  const live = createLiveHub({ redis: deps.redis, log: deps.log, now: deps.now, ...hubSettings });
  const relays = [
    relayBreakerTransitions(breakers, { hub: live, log: deps.log }),
    relayDeadLetters({ redis: deps.redis, hub: live, log: deps.log }),
    relayLeadEvents({
      redis: deps.redis,
      sql: deps.sql,
      hub: live,
      pollMs: leadEventsPollMs,
      log: deps.log,
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
  const app = createApp(deps, { breakers, live, scorer });
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
    await breakers.stop().catch((err) => deps.log.warn("stopping breakers failed", { err }));
    await reloader.stop();
    secrets.close();
    await scorer[Symbol.asyncDispose]();
    await closeDeps(deps);
    deps.log.info("edge stopped");
    Deno.exit(0);
  });
}
