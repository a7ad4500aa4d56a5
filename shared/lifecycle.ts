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
 * What a stop may take after its drain (SHUTDOWN_TIMEOUT_MS): closing the
 * pools, the breakers, the admin listener. Past the drain plus this, the
 * process exits anyway.
 */
export const SHUTDOWN_CLEANUP_MS = 5_000;

/** Options of {@linkcode onShutdownSignal}. */
export interface ShutdownOptions {
  /**
   * Past this long after the signal the process exits with 1 whatever still
   * runs: a request hung on a silent database connection holds the pool's
   * `end()` forever (found by `deno task chaos`, docs/reliability.md).
   * @default no deadline
   */
  deadlineMs?: number;
  /** Told when the deadline passes, before the exit. @default console.error */
  onDeadline?: (deadlineMs: number) => void;
}

/**
 * Runs `shutdown` once on the first SIGTERM or SIGINT; a second signal exits
 * at once with 130 (the operator insists). With `deadlineMs`, a shutdown
 * still running that long after the signal exits with 1. Returns a function
 * that removes the listeners.
 */
export function onShutdownSignal(
  shutdown: (signal: Deno.Signal) => Promise<void>,
  options: ShutdownOptions = {},
): () => void {
  const { deadlineMs } = options;
  if (deadlineMs !== undefined && !(Number.isFinite(deadlineMs) && deadlineMs > 0)) {
    throw new RangeError(`Cannot watch shutdown: deadlineMs must be > 0, got ${deadlineMs}`);
  }
  const onDeadline = options.onDeadline ??
    ((ms: number) => console.error(`shutdown still running after ${ms} ms; exiting`));
  let started = false;
  const handler = (signal: Deno.Signal) => () => {
    if (started) Deno.exit(130);
    started = true;
    if (deadlineMs !== undefined) {
      const timer = setTimeout(() => {
        onDeadline(deadlineMs);
        Deno.exit(1);
      }, deadlineMs);
      // The deadline never keeps an otherwise finished process alive.
      Deno.unrefTimer(timer);
    }
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
