/**
 * Process lifecycle helpers for the entry points: config errors as one
 * readable message (no stack trace) and SIGTERM/SIGINT handling.
 *
 * @module
 */
import { activeDevSecrets, type Config, loadConfig, parseConfig } from "./config/mod.ts";
import type { Logger } from "./log.ts";
import { ConfigError } from "./errors.ts";

/** Loads the config (from `env` when given); on error prints the list of problems and exits 2. */
export function loadConfigOrExit(env?: Record<string, string>): Config {
  try {
    return env === undefined ? loadConfig() : parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      Deno.exit(2);
    }
    throw err;
  }
}

/**
 * Logs ONE loud warning while `config` runs with published development
 * secrets (only possible with APP_ENV=development|test); returns whether it did.
 */
export function warnAboutDevSecrets(config: Config, log: Logger): boolean {
  const active = activeDevSecrets(config);
  if (active.length === 0) return false;
  log.warn(
    `DEVELOPMENT SECRETS ACTIVE (${active.join(", ")}): published in the repository; ` +
      `anyone can mint tokens or unsubscribe links. Never expose this process.`,
    { app_env: config.env, dev_secrets: active },
  );
  return true;
}

/**
 * Runs `shutdown` once on the first SIGTERM or SIGINT; a second signal exits
 * at once with 130 (the operator insists). Returns a function that removes the
 * listeners.
 */
export function onShutdownSignal(shutdown: (signal: Deno.Signal) => Promise<void>): () => void {
  let started = false;
  const handler = (signal: Deno.Signal) => () => {
    if (started) Deno.exit(130);
    started = true;
    shutdown(signal).catch((err) => {
      console.error("shutdown failed", err);
      Deno.exit(1);
    });
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGTERM", "SIGINT"];
  const listeners = signals.map((s) => [s, handler(s)] as const);
  for (const [s, l] of listeners) Deno.addSignalListener(s, l);
  return () => {
    for (const [s, l] of listeners) Deno.removeSignalListener(s, l);
  };
}
