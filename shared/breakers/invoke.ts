/**
 * Running one call: the optional timeout (which aborts the signal handed to
 * the call) and the settling of a probe into an outcome.
 *
 * @module
 */
import type { BreakerPolicy } from "./policy.ts";
import { classifyError, type Outcome } from "./classify.ts";
import { BreakerTimeoutError } from "./errors.ts";
import { type LoopLag, netElapsed } from "../loop_lag.ts";

/** Options of {@linkcode Breaker.call}. */
export interface CallOptions {
  /** The caller's signal; an abort by the caller is not a failure of the downstream. */
  signal?: AbortSignal;
  /**
   * Reject with BreakerTimeoutError (a failure) after this many ms, aborting
   * the signal given to `fn`. Probes always time out at the lease.
   * @default no timeout
   */
  timeoutMs?: number;
}

/** Classifies a call's value; null means "any value is a success". */
export type Judge<T> = ((value: T) => Outcome) | null;

/**
 * Calls `fn`; with `timeoutMs`, rejects with BreakerTimeoutError when it is
 * over and aborts the signal `fn` received.
 */
export function invoke<T>(
  breaker: string,
  fn: (signal: AbortSignal | undefined) => Promise<T>,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): Promise<T> {
  if (timeoutMs === undefined) return fn(signal);
  signal?.throwIfAborted();
  const controller = new AbortController();
  const combined = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new BreakerTimeoutError(breaker, timeoutMs);
      controller.abort(err);
      reject(err);
    }, timeoutMs);
  });
  return Promise.race([fn(combined), timeout]).finally(() => clearTimeout(timer));
}

/** A settled probe: its value or error, and what it says about the downstream. */
export interface SettledProbe<T> {
  failed: boolean;
  value?: T;
  error?: unknown;
  outcome: Outcome;
  slow: boolean;
}

/**
 * Runs a probe; it never outlives its lease, so two probes never overlap. It
 * is slow when its duration net of this process's stall (`lag`) is over
 * `slow_call_ms`, as for a counted call.
 */
export async function settleProbe<T>(
  breaker: string,
  policy: BreakerPolicy,
  now: () => number,
  lag: LoopLag,
  fn: (signal: AbortSignal | undefined) => Promise<T>,
  options: CallOptions,
  judge: Judge<T>,
  leaseMs: number,
): Promise<SettledProbe<T>> {
  const timeout = Math.min(options.timeoutMs ?? leaseMs, leaseMs);
  const started = now();
  const stalledAt = lag.stalledMs();
  try {
    const value = await invoke(breaker, fn, options.signal, timeout);
    const slowMs = policy.slow_call_ms;
    const slow = slowMs !== null && netElapsed(now, lag, started, stalledAt) > slowMs;
    return { failed: false, value, outcome: judge === null ? "success" : judge(value), slow };
  } catch (error) {
    const outcome = classifyError(error, policy, options.signal?.aborted === true);
    return { failed: true, error, outcome, slow: false };
  }
}
