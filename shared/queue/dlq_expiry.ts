/**
 * The DLQ's retention on a schedule: every worker sweeps entries older than
 * `dlqRetentionMs` out of the dead-letter queue at a fixed interval (the
 * sweep is one idempotent script call per batch, so several workers sweeping
 * at once only repeat a no-op). Without it, expired entries stayed until the
 * next task died, which on a healthy queue may be never.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { expireDead } from "./dlq.ts";
import type { TaskQueue } from "./queue.ts";

/** Options of {@linkcode startDlqExpiry}. */
export interface DlqExpiryOptions {
  /** Time between sweeps. @default 300_000 (5 minutes) */
  everyMs?: number;
  /** The clock that decides what is past the retention (ms). @default Date.now */
  now?: () => number;
  log?: Logger;
}

/** A running sweeper. */
export interface DlqExpiry {
  /** Resolves after the first sweep (or its failure). */
  readonly firstSweep: Promise<void>;
  stop(): Promise<void>;
}

/** Sweeps once now, then every `everyMs`. */
export function startDlqExpiry(queue: TaskQueue, options: DlqExpiryOptions = {}): DlqExpiry {
  const everyMs = options.everyMs ?? 300_000;
  if (!Number.isSafeInteger(everyMs) || everyMs <= 0) {
    throw new RangeError(
      `Cannot start DLQ expiry as everyMs must be a positive integer: ${everyMs}`,
    );
  }
  const now = options.now ?? Date.now;
  let sweeping = Promise.resolve();
  const sweep = () => {
    sweeping = sweeping.then(async () => {
      try {
        const removed = await expireDead(queue, now());
        if (removed > 0) options.log?.info("expired dead-letter entries", { removed });
      } catch (err) {
        // Redis away: the next sweep catches up; listings hide expired entries meanwhile.
        options.log?.warn("dead-letter expiry failed", { err });
      }
    });
    return sweeping;
  };
  const firstSweep = sweep();
  const timer = setInterval(sweep, everyMs);
  return {
    firstSweep,
    async stop() {
      clearInterval(timer);
      await sweeping;
    },
  };
}
