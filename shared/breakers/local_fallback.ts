/**
 * Local mode and the way back. While Redis is unreachable each breaker
 * decides with a local breaker started from its cached view; its
 * transitions are published as local ones, tagged with the shared epoch it
 * took over from. When Redis answers again the registry reads every state,
 * resubscribes, re-reads, and pushes what the reconcile rule keeps of the
 * local states ({@linkcode LocalFallback.reconcilePlan}; summed up in
 * registry.ts).
 *
 * @module
 */
import type { BreakerContext } from "./context.ts";
import { withDeadline } from "../deadline.ts";
import { LocalBreaker } from "./local_breaker.ts";
import type { BreakerPolicy } from "./policy.ts";
import type { BreakerScripts, SharedState } from "./scripts.ts";
import type { BreakerSnapshot, BreakerView } from "./types.ts";
import { BREAKER_REPORT } from "../redis/script_codes.ts";

/** What local mode needs from its breaker. */
export interface FallbackHost {
  readonly name: string;
  readonly policy: BreakerPolicy;
  readonly ctx: BreakerContext;
}

/** One breaker's local mode: the local breaker and the shared epoch it took over from. */
export class LocalFallback {
  readonly breaker: LocalBreaker;
  /** Shared epoch when the local breaker took over. */
  readonly baseEpoch: number;
  readonly #host: FallbackHost;

  /** Starts local mode from `view`, the last shared state this instance knew. */
  constructor(host: FallbackHost, view: BreakerView) {
    this.#host = host;
    this.baseEpoch = view.epoch;
    const { name, ctx } = host;
    this.breaker = new LocalBreaker(host.policy, {
      now: ctx.now,
      initial: view,
      onTransition: (t) =>
        ctx.emit({
          name,
          ...t,
          epoch: this.baseEpoch,
          at: ctx.now(),
          source: "local",
          by: ctx.instanceId,
        }),
    });
  }

  /** The local state as a snapshot. */
  snapshot(): BreakerSnapshot {
    const local = this.breaker;
    return {
      name: this.#host.name,
      state: local.state,
      source: "local",
      epoch: this.baseEpoch,
      openRemainingMs: local.openRemainingMs(),
      probeRemainingMs: local.probeRemainingMs(),
      consecutiveFailures: local.consecutiveFailures,
      trips: 0,
      reason: null,
      by: this.#host.ctx.instanceId,
    };
  }

  /**
   * The reconcile rule, part 1: given the shared state read after Redis came
   * back, what to do with it (see {@linkcode ReconcilePlan}). Only a shared
   * breaker nobody changed meanwhile (same epoch) takes anything from the
   * local one; operator states always win.
   *
   * - A local OPEN/HALF_OPEN over a shared CLOSED is pushed (OPEN for the
   *   local remaining time); a local HALF_OPEN also half-opens it.
   * - A shared OPEN whose local copy left OPEN (HALF_OPEN, or CLOSED after a
   *   probe) half-opens: the local breaker saw the dependency answer (the
   *   background probe) or its reset timeout end, and dropping that would
   *   leave the shared breaker its whole reset timeout, as in the starvation
   *   runs of docs/chaos-report.md, where the instances were local whenever
   *   their probe found the database answering.
   */
  reconcilePlan(shared: SharedState): ReconcilePlan {
    const local = this.breaker;
    const recovered = local.state === "half_open" || local.state === "closed";
    if (shared.epoch !== this.baseEpoch) return { kind: "adopt" };
    if (shared.state === "open") return recovered ? { kind: "half_open" } : { kind: "adopt" };
    if (shared.state !== "closed") return { kind: "adopt" };
    if (local.state !== "open" && local.state !== "half_open") return { kind: "adopt" };
    return {
      kind: "push_trip",
      openMs: local.openRemainingMs() ?? 0,
      halfOpen: local.state === "half_open",
    };
  }
}

/**
 * What a resync does with one breaker's shared state: adopt it; push the
 * local trip (OPEN for `openMs`, then HALF_OPEN when the local breaker
 * already left OPEN); or half-open the shared OPEN.
 */
export type ReconcilePlan =
  | { kind: "adopt" }
  | { kind: "push_trip"; openMs: number; halfOpen: boolean }
  | { kind: "half_open" };

/** What a resync needs from each breaker. */
export interface Reconcilable {
  readonly name: string;
  readonly policy: BreakerPolicy;
  /** See {@linkcode LocalFallback.reconcilePlan}; adopt outside local mode. */
  reconcilePlan(shared: SharedState): ReconcilePlan;
}

/** Options for {@linkcode resyncStates}. */
export interface ResyncOptions {
  scripts: BreakerScripts;
  /** Opens a new event stream; a failure is tolerated (the heartbeat retries). */
  subscribe: () => Promise<void>;
  /** Bound on each round of Redis calls, ms. */
  timeoutMs: number;
}

/**
 * The way back, registry side: the shared state every breaker should adopt,
 * in order, local trips pushed to Redis. Throws when Redis fails or does
 * not answer within `timeoutMs` (local mode then goes on).
 */
export async function resyncStates(
  breakers: readonly Reconcilable[],
  options: ResyncOptions,
): Promise<SharedState[]> {
  const { scripts, subscribe, timeoutMs } = options;
  const bounded = <T>(p: Promise<T>) =>
    withDeadline(p, timeoutMs, () => new Error("Breaker store retry timed out"));
  const readAll = () => bounded(Promise.all(breakers.map((b) => scripts.read(b.name))));
  // A first read proves Redis answers before a new stream is opened.
  await readAll();
  await subscribe().catch(() => {});
  // Re-read after subscribing: nothing published in between is missed.
  const states = await readAll();
  return await bounded(Promise.all(states.map(async (s, i) => {
    const b = breakers[i]!;
    const plan = b.reconcilePlan(s);
    if (plan.kind === "adopt") return s;
    if (plan.kind === "half_open") return await scripts.operate(b.name, "half_open");
    const pushed = await scripts.report(b.name, b.policy, s.epoch, null, {
      adoptOpenMs: plan.openMs,
    });
    // Each change is its own script: the trip is recorded, then half-opened.
    return plan.halfOpen && pushed.code === BREAKER_REPORT.tripped
      ? await scripts.operate(b.name, "half_open")
      : pushed;
  })));
}
