/**
 * How long a chaos run's verification waits for acknowledged work to land,
 * and what an acknowledged write that has not landed by then is.
 *
 * The drain waits `baseMs`; past it, it keeps waiting while the work still
 * outstanding shrinks (at least one more item landed within the last
 * `stallMs`), up to `baseMs + extendMs`. A platform that is still applying
 * queued writes (a breaker that recovered late, a starved machine) is given
 * that time; one that has stopped making progress is judged at once.
 *
 * An acknowledged lead write not in the database at the end is:
 * - **late** when it was queued (202) and its `apply_lead_write` task is
 *   still alive (pending, running or retrying): durable, not applied yet —
 *   not lost, but the run did not converge in time, which fails it too;
 * - **lost** otherwise: answered 201 without a row, or its task is dead,
 *   succeeded without a row, or missing.
 *
 * docs/reliability.md (Verification) states the same rules.
 *
 * @module
 */
import type { TaskInfo } from "../../shared/queue/queue.ts";
import type { DoneLine } from "./load.ts";

/** The drain's bounds, ms. */
export interface DrainBounds {
  /** Always waited (unless everything landed). */
  baseMs: number;
  /** Longest extension past `baseMs` while work keeps landing. */
  extendMs: number;
  /** The extension ends when nothing landed for this long. */
  stallMs: number;
}

/** The campaign's bounds: 90 s, then up to 120 s more while something lands every 30 s. */
export const DRAIN: DrainBounds = { baseMs: 90_000, extendMs: 120_000, stallMs: 30_000 };

/** Tracks the outstanding work of a drain and decides whether to keep waiting. */
export class Drain {
  readonly #bounds: DrainBounds;
  readonly #started: number;
  #least = Infinity;
  #lastProgress: number;

  constructor(bounds: DrainBounds, now: number) {
    this.#bounds = bounds;
    this.#started = now;
    this.#lastProgress = now;
  }

  /**
   * Records how much is still outstanding at `now`; true while the drain
   * should wait and look again.
   */
  observe(outstanding: number, now: number): boolean {
    if (outstanding < this.#least) {
      this.#least = outstanding;
      this.#lastProgress = now;
    }
    if (outstanding === 0) return false;
    const elapsed = now - this.#started;
    if (elapsed < this.#bounds.baseMs) return true;
    return elapsed < this.#bounds.baseMs + this.#bounds.extendMs &&
      now - this.#lastProgress < this.#bounds.stallMs;
  }

  /** Time waited past `baseMs` at `now` (0 when the drain ended before). */
  extendedMs(now: number): number {
    return Math.max(0, now - this.#started - this.#bounds.baseMs);
  }
}

const ALIVE = new Set<TaskInfo["status"]>(["pending", "running", "retrying"]);

/**
 * Judges an acknowledged lead write that is not in the database: "late" or
 * "lost", with a description naming its answer and its tasks' states.
 */
export function unappliedWrite(
  d: Pick<DoneLine, "op" | "status">,
  tasks: readonly (TaskInfo | null)[],
): { verdict: "late" | "lost"; description: string } {
  const found = tasks.filter((t) => t !== null);
  const states = found.map((t) =>
    `task ${t.status}, attempt ${t.attempts}/${t.maxAttempts}` +
    (t.lastError ? `, last error ${JSON.stringify(t.lastError.slice(0, 120))}` : "")
  );
  const late = d.status === 202 && found.some((t) => ALIVE.has(t.status));
  return {
    verdict: late ? "late" : "lost",
    description: `${d.op} (answered ${d.status}${
      states.length ? `; ${states.join("; ")}` : d.status === 202 ? "; no task" : ""
    })`,
  };
}
