/**
 * The background probe of a breaker: while it is OPEN, a cheap health check
 * of its downstream (for the database, `SELECT 1`) runs every `everyMs`; the
 * first one that answers half-opens the breaker (BreakerRegistry.halfOpen)
 * so the next real call is its probe. Recovery then takes about `everyMs`
 * after the downstream is back instead of the whole reset timeout, which
 * stays the upper bound (the seed's policy). A FORCED_OPEN breaker is the
 * operator's and is left alone. In local mode (Redis away) it half-opens the
 * local breaker the same way: a Redis outage no longer stretches a database
 * recovery to the whole reset timeout.
 *
 * @example
 * ```ts
 * const probe = startBackgroundProbe({
 *   registry, name: "database", check: () => deps.sql.query("SELECT 1"),
 * });
 * await probe.stop();
 * ```
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { BreakerRegistry } from "./registry.ts";
import { netTimer } from "../loop_lag.ts";

/**
 * The database breaker's probe (`SELECT 1` on the pool), or null when no
 * `database` policy is configured. Started by the edge and the workers.
 */
export function startDatabaseProbe(
  registry: BackgroundProbeOptions["registry"],
  policies: Readonly<Record<string, unknown>>,
  sql: { query(text: string): Promise<unknown> },
  log?: Logger,
): BackgroundProbe | null {
  if (!("database" in policies)) return null;
  return startBackgroundProbe({
    registry,
    name: "database",
    check: () => sql.query("SELECT 1"),
    log,
  });
}

/** Options of {@linkcode startBackgroundProbe}. */
export interface BackgroundProbeOptions {
  registry: Pick<BreakerRegistry, "get" | "halfOpen" | "loopLag">;
  /** The breaker's name. */
  name: string;
  /** The health check: resolves when the downstream answers. */
  check: () => Promise<unknown>;
  /** Time between checks while OPEN. @default 1_000 */
  everyMs?: number;
  /**
   * A check slower than this, net of this process's own event-loop stall
   * (the registry's `loopLag`), failed. @default 2_000
   */
  timeoutMs?: number;
  log?: Logger;
}

/** A running background probe. */
export interface BackgroundProbe {
  /** Health checks run so far. */
  readonly checks: number;
  stop(): Promise<void>;
}

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new RangeError(
      `Cannot start a background probe as ${name} must be a positive integer: ${v}`,
    );
  }
  return v;
}

/** Starts checking; the breaker's name is validated now (RangeError when unknown). */
export function startBackgroundProbe(o: BackgroundProbeOptions): BackgroundProbe {
  const everyMs = positive("everyMs", o.everyMs ?? 1_000);
  const timeoutMs = positive("timeoutMs", o.timeoutMs ?? 2_000);
  const breaker = o.registry.get(o.name);
  let checks = 0;
  let running: Promise<void> | null = null;

  async function once(): Promise<void> {
    if (breaker.state !== "open") return;
    checks++;
    let cancel = () => {};
    const late = new Promise<never>((_, reject) => {
      // A starved process answers its own checks late: that is not the downstream's.
      cancel = netTimer(
        timeoutMs,
        () => performance.now(),
        o.registry.loopLag,
        () => reject(new Error(`health check over ${timeoutMs} ms`)),
      );
    });
    try {
      await Promise.race([o.check(), late]);
    } catch {
      return; // still down: the next tick checks again
    } finally {
      cancel();
    }
    try {
      const snap = await o.registry.halfOpen(o.name);
      o.log?.info("downstream answered its health check", { breaker: o.name, state: snap.state });
    } catch (err) {
      o.log?.warn("could not half-open the breaker", { breaker: o.name, err });
    }
  }

  const timer = setInterval(() => {
    // One check at a time: a hanging one holds the next back (it ends at its timeout).
    running ??= once().finally(() => running = null);
  }, everyMs);
  return {
    get checks() {
      return checks;
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
