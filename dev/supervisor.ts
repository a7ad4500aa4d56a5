/**
 * Supervision of `deno task dev`'s children (edge, worker): a child that
 * exits while the stack runs is restarted with exponential backoff (reset
 * once it stayed up for `stableAfterMs`), and each exit and restart is
 * logged. The stack (Redis, Postgres and their data) is not touched, so
 * tasks answered 202 before a worker crash still run after its restart.
 *
 * @module
 */

/** Options of {@linkcode supervise}. */
export interface SuperviseOptions {
  name: string;
  /** Starts one incarnation of the child. */
  spawn: () => Deno.ChildProcess;
  /** Progress and restart messages. */
  log: (message: string) => void;
  /** First restart delay, doubled per quick exit. @default 500 */
  baseMs?: number;
  /** Longest restart delay. @default 30_000 */
  maxMs?: number;
  /** A child up this long resets the backoff. @default 30_000 */
  stableAfterMs?: number;
  /** After `stop()`'s SIGTERM, SIGKILL when the child is still running this much later. @default 15_000 */
  killAfterMs?: number;
}

/** A supervised child. */
export interface Supervised {
  /** Restarts so far. */
  readonly restarts: number;
  /** Process id of the current incarnation, null between incarnations. */
  readonly pid: number | null;
  /** SIGTERM to the current child, no more restarts; resolves when it exited. */
  stop(): Promise<void>;
}

/** The delay before restart number `attempt` (0-based) of a child that keeps exiting quickly. */
export function restartDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
}

/** Runs `spawn()` and keeps it running until `stop()`. */
export function supervise(o: SuperviseOptions): Supervised {
  const baseMs = o.baseMs ?? 500;
  const maxMs = o.maxMs ?? 30_000;
  const stableAfterMs = o.stableAfterMs ?? 30_000;
  let child: Deno.ChildProcess | null = null;
  let stopping = false;
  let restarts = 0;
  let quickExits = 0;
  let wake: (() => void) | null = null;

  const loop = (async () => {
    while (!stopping) {
      const started = performance.now();
      try {
        child = o.spawn();
      } catch (err) {
        o.log(`${o.name} could not start: ${(err as Error).message}`);
        child = null;
      }
      const status = child ? await child.status : null;
      child = null;
      if (stopping) break;
      quickExits = performance.now() - started >= stableAfterMs ? 0 : quickExits + 1;
      // A child that stayed up starts the backoff over at baseMs.
      const delay = restartDelay(Math.max(0, quickExits - 1), baseMs, maxMs);
      const how = status === null
        ? "failed to start"
        : status.signal
        ? `was killed by ${status.signal}`
        : `exited with code ${status.code}`;
      o.log(`${o.name} ${how}; restarting in ${delay} ms (restart #${restarts + 1})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
      if (stopping) break;
      restarts++;
    }
  })();

  return {
    get restarts() {
      return restarts;
    },
    get pid() {
      return child?.pid ?? null;
    },
    async stop() {
      stopping = true;
      (wake as (() => void) | null)?.();
      const current = child;
      try {
        current?.kill("SIGTERM");
      } catch {
        // exited meanwhile
      }
      // A child whose graceful stop hangs (found by the chaos campaign: an edge
      // draining a request stuck on a dead connection) must not hold ours.
      const timer = setTimeout(() => {
        try {
          current?.kill("SIGKILL");
        } catch {
          // exited meanwhile
        }
      }, o.killAfterMs ?? 15_000);
      await loop;
      clearTimeout(timer);
    },
  };
}
