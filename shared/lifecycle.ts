/**
 * Process lifecycle helpers for the entry points: config errors as one
 * readable message (no stack trace) and SIGTERM/SIGINT handling.
 *
 * @module
 */
import { type Config, loadConfig } from "./config.ts";
import { ConfigError } from "./errors.ts";

/** Loads the config; on error prints the list of problems and exits 2. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      Deno.exit(2);
    }
    throw err;
  }
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
