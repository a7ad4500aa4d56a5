/**
 * `noop`: a diagnostic task that proves enqueue → claim → ack end to end
 * (and gives benchmarks a handler with no cost of its own).
 *
 * @module
 */
import type { TaskContext } from "../runner.ts";

/** Returns the echo, if any. */
export function handle(payload: { echo?: string }, _ctx: TaskContext): { echo: string | null } {
  return { echo: payload.echo ?? null };
}
