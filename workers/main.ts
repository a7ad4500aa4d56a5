/**
 * Worker composition root. For now it connects, checks both stores, logs
 * readiness and waits; the queue runtime (next issue) plugs in here.
 * SIGTERM/SIGINT → stop, close pools, exit 0.
 *
 * @module
 */
import { closeDeps, makeDeps } from "../shared/deps.ts";
import { loadConfigOrExit, onShutdownSignal } from "../shared/lifecycle.ts";

if (import.meta.main) {
  const config = loadConfigOrExit();
  const deps = makeDeps(config, "worker");
  const stop = Promise.withResolvers<void>();
  onShutdownSignal(async (signal) => {
    deps.log.info("worker stopping", { signal });
    stop.resolve();
    await Promise.resolve();
  });

  // Connect with retries: in a rolling deploy the worker may start before
  // Redis/Postgres answer; it keeps trying until they do or it is stopped.
  let attempt = 0;
  while (true) {
    attempt++;
    try {
      const [pong] = await Promise.all([deps.redis.ping(), deps.sql.query("SELECT 1")]);
      if (pong !== "PONG") throw new Error(`unexpected PING reply ${pong}`);
      deps.log.info("worker ready", { attempt });
      break;
    } catch (err) {
      deps.log.warn("worker waiting for dependencies", { attempt, err });
      const waited = await Promise.race([
        stop.promise.then(() => "stopped"),
        new Promise((r) => setTimeout(() => r("retry"), Math.min(5000, 250 * attempt))),
      ]);
      if (waited === "stopped") break;
    }
  }

  await stop.promise;
  await closeDeps(deps);
  deps.log.info("worker stopped");
  Deno.exit(0);
}
