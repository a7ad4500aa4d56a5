/**
 * Worker-side queue operations: claim (with promotion of due tasks and
 * recovery of expired leases), ack, fail, heartbeat and release. Each is ONE
 * script call for a whole batch; every completion is fenced by lease token.
 *
 * @module
 */
import type { QueueContext } from "./queue.ts";

/** A task handed to a worker. */
export interface ClaimedTask {
  id: string;
  leaseToken: string;
  type: string;
  /** Canonical JSON text of the payload. */
  payloadJson: string;
  attempt: number;
  maxAttempts: number;
  timeoutMs: number;
  traceparent: string | null;
  createdAt: number;
}

/** Result of one claim call. */
export interface ClaimResult {
  tasks: ClaimedTask[];
  /** Earliest delayed due time (ms, Redis clock), or null. */
  nextDueAt: number | null;
  /** Expired leases put back to ready by this call. */
  recovered: number;
  /** Expired leases that were the task's last attempt (now in the DLQ). */
  dead: number;
  /** Tasks of paused types set aside by this call (they wait, attempts untouched). */
  parked: number;
}

/** Options for {@linkcode claim}. */
export interface ClaimOptions {
  max: number;
  leaseMs: number;
  workerId: string;
  /**
   * Task types not to claim now (their downstream breaker is open): they are
   * parked and return to the front of their queue on a claim that no longer
   * lists them. @default []
   */
  pausedTypes?: readonly string[];
}

/** Claims up to `max` tasks in strict priority order. `max` 0 only does housekeeping. */
export async function claim(ctx: QueueContext, options: ClaimOptions): Promise<ClaimResult> {
  const k = ctx.keys;
  const s = ctx.settings;
  const tokenBase = crypto.randomUUID();
  const out = await ctx.scripts.claim.run<(string | number)[]>(
    [k.ready("high"), k.ready("normal"), k.ready("low"), k.delayed, k.leases, k.stats, k.dlq],
    [
      k.prefix,
      options.max,
      options.leaseMs,
      tokenBase,
      options.workerId,
      s.dlqRetentionMs,
      s.dlqCap,
      k.dlqChannel,
      JSON.stringify(options.pausedTypes ?? []),
      ctx.feedSpec,
      ctx.alertSpec,
    ],
  );
  const tasks: ClaimedTask[] = [];
  for (let i = 4; i + 8 < out.length + 1; i += 9) {
    tasks.push({
      id: String(out[i]),
      leaseToken: String(out[i + 1]),
      type: String(out[i + 2]),
      payloadJson: String(out[i + 3]),
      attempt: Number(out[i + 4]),
      maxAttempts: Number(out[i + 5]),
      timeoutMs: Number(out[i + 6]),
      traceparent: out[i + 7] ? String(out[i + 7]) : null,
      createdAt: Number(out[i + 8]),
    });
  }
  const nextDue = Number(out[0]);
  return {
    tasks,
    nextDueAt: nextDue >= 0 ? nextDue : null,
    recovered: Number(out[1]),
    dead: Number(out[2]),
    parked: Number(out[3]),
  };
}

/** One successful completion. */
export interface Completion {
  id: string;
  leaseToken: string;
  /** JSON text of the handler's result. */
  resultJson: string;
}

/** Acks a batch; returns 1 (done) or -1 (stale token) per entry. */
export async function ack(ctx: QueueContext, entries: Completion[]): Promise<number[]> {
  if (entries.length === 0) return [];
  return await ctx.scripts.ack.run<number[]>(
    [ctx.keys.leases, ctx.keys.stats],
    [
      ctx.keys.prefix,
      ctx.settings.keepFinishedMs,
      JSON.stringify(entries.map((e) => [e.id, e.leaseToken, e.resultJson])),
      ctx.feedSpec,
    ],
  );
}

/** One failed attempt. */
export interface Failure {
  id: string;
  leaseToken: string;
  error: string;
  permanent: boolean;
  backoffMs: number;
  /**
   * A circuit breaker refused the handler's call: the downstream was never
   * reached, so the attempt is given back (not counted toward max attempts).
   */
  refused?: boolean;
}

/** Records failures; returns 1 (retry), 2 (dead), 3 (dead, cap evicted older), -1 (stale). */
export async function fail(ctx: QueueContext, entries: Failure[]): Promise<number[]> {
  if (entries.length === 0) return [];
  const k = ctx.keys;
  return await ctx.scripts.fail.run<number[]>(
    [k.leases, k.delayed, k.dlq, k.stats],
    [
      k.prefix,
      JSON.stringify(
        entries.map((e) => [
          e.id,
          e.leaseToken,
          e.error,
          e.permanent ? 1 : 0,
          e.backoffMs,
          e.refused ? 1 : 0,
        ]),
      ),
      ctx.settings.dlqRetentionMs,
      ctx.settings.dlqCap,
      k.dlqChannel,
      ctx.feedSpec,
      ctx.alertSpec,
    ],
  );
}

/** A held lease. */
export interface LeaseRef {
  id: string;
  leaseToken: string;
}

/** Renews leases; returns 1 (renewed) or -1 (lost) per entry. */
export async function extendLeases(
  ctx: QueueContext,
  entries: LeaseRef[],
  leaseMs: number,
): Promise<number[]> {
  if (entries.length === 0) return [];
  return await ctx.scripts.extendLeases.run<number[]>(
    [ctx.keys.leases],
    [ctx.keys.prefix, leaseMs, JSON.stringify(entries.map((e) => [e.id, e.leaseToken]))],
  );
}

/** Hands tasks back to the front of their ready lists, attempt not counted. */
export async function release(ctx: QueueContext, entries: LeaseRef[]): Promise<number[]> {
  if (entries.length === 0) return [];
  const k = ctx.keys;
  return await ctx.scripts.release.run<number[]>(
    [k.ready("high"), k.ready("normal"), k.ready("low"), k.leases],
    [
      k.prefix,
      k.notifyChannel,
      JSON.stringify(entries.map((e) => [e.id, e.leaseToken])),
      ctx.feedSpec,
    ],
  );
}
