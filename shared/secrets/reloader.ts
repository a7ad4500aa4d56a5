/**
 * Picks up rotated secrets without a restart: every `intervalMs` it reads each
 * secret variable's current text (a mounted `NAME_FILE`, or the AWS cache),
 * validates a changed one with the variable's own schema and hands the parsed
 * value to `apply`. An invalid or unreadable new value is logged (by variable
 * name, never by value) and the last good one stays in force.
 *
 * @module
 */
import { type Config, parseSecretValue } from "../config/mod.ts";
import type { Logger } from "../log.ts";

/** Options for {@linkcode startSecretReloader}. */
export interface SecretReloaderOptions {
  /** Current text of a secret variable; undefined when it is not configured. */
  read: (name: string) => Promise<string | undefined>;
  /** Secret variables to watch, with their texts at start (the values in force). */
  initial: Readonly<Record<string, string>>;
  /** Receives each changed, valid value (parsed by its schema in shared/config/). */
  apply: (name: string, value: unknown) => void;
  intervalMs: number;
  /** APP_ENV: production refuses the development keys here as at start. */
  appEnv: Config["env"];
  log: Logger;
}

/** A running reloader. */
export interface SecretReloader {
  /** One round now (the timer also runs them); resolves to the variables applied. */
  check(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Starts polling; the first round runs after `intervalMs`. */
export function startSecretReloader(options: SecretReloaderOptions): SecretReloader {
  if (!(options.intervalMs > 0)) throw new RangeError("intervalMs must be positive");
  const inForce = new Map(Object.entries(options.initial));
  /** Text last refused per variable, so a bad file is reported once, not every round. */
  const refused = new Map<string, string>();
  let round: Promise<string[]> | null = null;
  let stopped = false;

  async function checkOne(name: string): Promise<boolean> {
    let text: string | undefined;
    try {
      text = await options.read(name);
    } catch (err) {
      // A projected volume swaps a symlink: a read between two renames can fail once.
      options.log.warn("secret unreadable; keeping the value in force", {
        variable: name,
        error: err instanceof Error ? err.name : "unknown",
      });
      return false;
    }
    if (text === undefined) return false;
    text = text.replace(/\r?\n$/, "");
    if (text === inForce.get(name) || text === refused.get(name)) return false;
    const parsed = parseSecretValue(name, text, options.appEnv);
    if (!parsed.ok) {
      refused.set(name, text);
      options.log.warn("rotated secret is invalid; keeping the value in force", {
        variable: name,
        problem: parsed.problem,
      });
      return false;
    }
    options.apply(name, parsed.value);
    inForce.set(name, text);
    refused.delete(name);
    options.log.info("secret reloaded", { variable: name });
    return true;
  }

  function check(): Promise<string[]> {
    round ??= (async () => {
      const names = [...inForce.keys()];
      const changed = await Promise.all(names.map(checkOne));
      return names.filter((_, i) => changed[i]);
    })().finally(() => round = null);
    return round;
  }

  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      check().catch((err) => options.log.warn("secret reload round failed", { err }))
        .finally(schedule);
    }, options.intervalMs);
  };
  schedule();

  return {
    check,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await round?.catch(() => {});
    },
  };
}
