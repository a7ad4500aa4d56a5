/**
 * Local mode and the way back. While Redis is unreachable each breaker
 * decides with a local breaker started from its cached view; its
 * transitions are published as local ones, tagged with the shared epoch it
 * took over from. When Redis answers again the registry reads every state,
 * resubscribes, re-reads, and pushes the local trips the reconcile rule
 * keeps (the rule itself is described in registry.ts).
 *
 * @module
 */
import type { BreakerContext } from "./context.ts";
import { withDeadline } from "../deadline.ts";
import { LocalBreaker } from "./local_breaker.ts";
import type { BreakerPolicy } from "./policy.ts";
import type { BreakerScripts, SharedState } from "./scripts.ts";
import type { BreakerSnapshot, BreakerView } from "./types.ts";

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
   * back, how long the shared breaker should be opened for to adopt this
   * instance's local trip, or null to just adopt the shared state. A local
   * OPEN/HALF_OPEN is pushed only over a shared CLOSED breaker that nobody
   * changed meanwhile (same epoch); operator states always win.
   */
  reconcilePlan(shared: SharedState): number | null {
    const local = this.breaker;
    if (shared.state !== "closed" || shared.epoch !== this.baseEpoch) return null;
    if (local.state !== "open" && local.state !== "half_open") return null;
    return local.openRemainingMs() ?? 0;
  }
}

/** What a resync needs from each breaker. */
export interface Reconcilable {
  readonly name: string;
  readonly policy: BreakerPolicy;
  /** See {@linkcode LocalFallback.reconcilePlan}; null outside local mode. */
  reconcilePlan(shared: SharedState): number | null;
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
  return await bounded(Promise.all(states.map((s, i) => {
    const b = breakers[i]!;
    const adopt = b.reconcilePlan(s);
    if (adopt === null) return Promise.resolve(s);
    return scripts.report(b.name, b.policy, s.epoch, null, { adoptOpenMs: adopt });
  })));
}
