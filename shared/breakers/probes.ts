/**
 * The HALF_OPEN probes of one breaker. In shared mode a probe runs only under
 * the lease acquire_probe.lua hands out, so that one probe runs at a time
 * across every instance, and end_probe.lua takes its outcome; while Redis is
 * unreachable the local breaker hands out the lease. Either way a probe
 * never outlives its lease, so two probes never overlap.
 *
 * @module
 */
import type { BreakerContext } from "./context.ts";
import type { BreakerOpenError } from "./errors.ts";
import { type CallOptions, type Judge, type SettledProbe, settleProbe } from "./invoke.ts";
import type { LocalBreaker } from "./local_breaker.ts";
import type { BreakerPolicy } from "./policy.ts";
import type { ProbeOutcome, SharedState } from "./scripts.ts";
import type { BreakerStateName } from "./types.ts";
import { BREAKER_ACQUIRE_PROBE } from "../redis/script_codes.ts";

/** What the probes need from their breaker. */
export interface ProbeHost {
  readonly name: string;
  readonly policy: BreakerPolicy;
  readonly ctx: BreakerContext;
  /** The local breaker while Redis is unreachable, else null (it changes across awaits). */
  local(): LocalBreaker | null;
  /** Adopts the shared state a script replied with. */
  apply(s: SharedState): void;
  /** Counts a refused call and builds its error. */
  refuse(state: BreakerStateName, retryAfterMs: number | null): BreakerOpenError;
}

/** Probe lease requests and probe runs of one breaker. */
export class Probes {
  readonly #host: ProbeHost;
  #acquiring = false;

  constructor(host: ProbeHost) {
    this.#host = host;
  }

  /** A probe lease request of this instance is in flight (one at a time: others are refused). */
  get acquiring(): boolean {
    return this.#acquiring;
  }

  /**
   * Asks Redis for the probe lease. Resolves to the lease token, or to null
   * when the call should be decided again: no probe is needed (code 2), or
   * Redis went away and the local breaker decides. Throws BreakerOpenError
   * when refused (still OPEN, FORCED_OPEN, or another live lease).
   */
  async acquire(): Promise<string | null> {
    const { name, policy, ctx } = this.#host;
    const token = crypto.randomUUID();
    let s: SharedState;
    this.#acquiring = true;
    try {
      s = await ctx.op(
        "acquire_probe",
        () => ctx.scripts.acquireProbe(name, token, policy.probe_lease_ms),
      );
    } catch (err) {
      // Redis unreachable: the local breaker (if the registry switched) decides.
      if (this.#host.local() !== null) return null;
      throw err;
    } finally {
      this.#acquiring = false;
    }
    this.#host.apply(s);
    if (s.code === BREAKER_ACQUIRE_PROBE.notNeeded || this.#host.local() !== null) return null;
    if (s.code !== BREAKER_ACQUIRE_PROBE.granted) {
      const retry = s.state === "open"
        ? s.openRemainingMs
        : s.state === "half_open"
        ? Math.max(0, s.probeRemainingMs)
        : null;
      throw this.#host.refuse(s.state, retry);
    }
    return token;
  }

  /** Runs `fn` as the shared probe under the lease `token`, then ends the lease with its outcome. */
  async runShared<T>(
    token: string,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    options: CallOptions,
    judge: Judge<T>,
  ): Promise<T> {
    const { name, policy, ctx } = this.#host;
    const settled = await this.#settle(fn, options, judge);
    const outcome: ProbeOutcome = settled.outcome === "ignored"
      ? "release"
      : settled.outcome === "failure" || settled.slow
      ? "failure"
      : "success";
    try {
      const after = await ctx.op(
        "end_probe",
        () => ctx.scripts.endProbe(name, policy, token, outcome),
      );
      this.#host.apply(after);
    } catch {
      // Redis went away during the probe: the local breaker takes its outcome.
      this.#host.local()?.endProbe(settled.outcome, settled.slow);
    }
    if (settled.failed) throw settled.error;
    return settled.value as T;
  }

  /** Runs `fn` as the probe `local` admitted. */
  async runLocal<T>(
    local: LocalBreaker,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    options: CallOptions,
    judge: Judge<T>,
  ): Promise<T> {
    const settled = await this.#settle(fn, options, judge);
    // Redis may be back meanwhile; the shared state then decides.
    if (this.#host.local() === local) local.endProbe(settled.outcome, settled.slow);
    if (settled.failed) throw settled.error;
    return settled.value as T;
  }

  #settle<T>(
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    options: CallOptions,
    judge: Judge<T>,
  ): Promise<SettledProbe<T>> {
    const { name, policy, ctx } = this.#host;
    ctx.metrics.probes++;
    return settleProbe(name, policy, ctx.now, ctx.lag, fn, options, judge, policy.probe_lease_ms);
  }
}
