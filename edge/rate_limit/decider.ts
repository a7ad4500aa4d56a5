/**
 * Who decides a rate-limit check: the in-process cache of blocked identities,
 * a lease of budget this edge already took from the store, the shared store
 * itself (rate_limit_lease.lua over Redis, with @upstash/ratelimit's counts),
 * or, while the store is unreachable, the policy's `on_store_error` choice (a
 * local limiter, or "unavailable").
 *
 * Leasing (docs/gateway.md): when a request finds no live lease, one store
 * call grants it a token plus spare ones for the requests that follow; those
 * are spent here without a network call. The store counts leased tokens as
 * used, so the edges together never admit more than the limit; unused tokens
 * are given back when a lease ends (at the next decision or sweep) or at
 * shutdown, and a give-back that is lost only admits less.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { leaseSettingsOf, type RateLimitPolicy } from "../../shared/config/mod.ts";
import type { Logger } from "../../shared/log.ts";
import { createLeaseStore, type LeaseStore } from "./lease_store.ts";
import { createLeaseTable, type GiveBack, type LeaseTable } from "./leases.ts";
import { createLocalLimiter, type LimitDecision, type LocalLimiter } from "./local_limiter.ts";
import type { RateLimitMetrics } from "./rate_limit_metrics.ts";

export {
  countPolicyDecision,
  createRateLimitMetrics,
  type PolicyDecisionCounts,
  type RateLimitMetrics,
} from "./rate_limit_metrics.ts";

/** Where a decision came from. */
export type Decision =
  | (LimitDecision & { source: "store" | "cache" | "local" | "lease" })
  | { source: "unavailable" };

/** Settings shared by every policy of one middleware. */
export interface DeciderOptions {
  redis: Redis;
  /** Key namespace. */
  namespace: string;
  /** Slower store answers count as "unreachable". */
  timeoutMs: number;
  /** After a store failure, decide without the store for this long. */
  storeRetryMs: number;
  /** Blocked identities (and leases) remembered per policy at most. */
  maxCacheEntries: number;
  now: () => number;
  log: Logger;
  metrics: RateLimitMetrics;
  /** This edge in the store's lease bookkeeping. @default a random UUID */
  edgeId?: string;
}

/** Decides checks for every configured policy. */
export interface Decider {
  decide(group: string, identity: string): Promise<Decision>;
  /** Gives every lease's unused tokens back (best effort; shutdown). */
  close(): Promise<void>;
}

interface PolicyState {
  name: string;
  policy: RateLimitPolicy;
  /** The most one grant may hold (`max_tokens`); 0 when leasing is off. */
  maxTokens: number;
  fraction: number;
  ttlMs: number;
  local: LocalLimiter;
  leases: LeaseTable;
  /** identity → the store call in flight for it (leasing only: requests queue behind it). */
  inFlight: Map<string, Promise<unknown>>;
  /** identity → epoch ms until which the store said "blocked". */
  blocked: Map<string, number>;
}

/** Builds the store, a lease table and a local limiter per policy. */
export function createDecider(
  policies: Record<string, RateLimitPolicy>,
  options: DeciderOptions,
): Decider {
  const { now, log, metrics } = options;
  const store: LeaseStore = createLeaseStore(options.redis, {
    namespace: options.namespace,
    timeoutMs: options.timeoutMs,
    edgeId: options.edgeId ?? crypto.randomUUID(),
  });
  const states = new Map<string, PolicyState>();
  let sweepEveryMs = Infinity;
  for (const [name, policy] of Object.entries(policies)) {
    const lease = leaseSettingsOf(policy);
    states.set(name, {
      name,
      policy,
      maxTokens: lease?.max_tokens ?? 0,
      fraction: lease?.fraction ?? 1,
      ttlMs: lease?.ttl_ms ?? 1000,
      local: createLocalLimiter(policy),
      leases: createLeaseTable(options.maxCacheEntries),
      inFlight: new Map(),
      blocked: new Map(),
    });
    if (lease) sweepEveryMs = Math.min(sweepEveryMs, lease.ttl_ms);
  }

  // While the store is down every request would otherwise wait `timeoutMs`
  // (or a failing round trip) before the fallback; skipping it for a moment
  // keeps the latency of an outage flat. The first request after the pause
  // probes the store again.
  let skipStoreUntil = 0;
  let storeDown = false;
  let nextSweepAt = now() + sweepEveryMs;

  function remember(state: PolicyState, identity: string, reset: number): void {
    const t = now();
    if (state.blocked.size >= options.maxCacheEntries) {
      for (const [id, until] of state.blocked) if (until <= t) state.blocked.delete(id);
      for (const id of state.blocked.keys()) {
        if (state.blocked.size < options.maxCacheEntries) break;
        state.blocked.delete(id);
      }
    }
    state.blocked.set(identity, reset);
  }

  function storeFailed(state: PolicyState, cause: unknown): void {
    metrics.storeErrors++;
    skipStoreUntil = now() + options.storeRetryMs;
    if (!storeDown) {
      storeDown = true;
      log.warn("rate-limit store unreachable; deciding without it", {
        group: state.name,
        err: cause,
        retry_in_ms: options.storeRetryMs,
      });
    }
  }

  function withoutStore(state: PolicyState, identity: string): Decision {
    if (state.policy.on_store_error === "fail_closed") return { source: "unavailable" };
    metrics.fallbackDecisions++;
    return { source: "local", ...state.local.limit(identity, now()) };
  }

  /** Gives unused tokens back, one store call each; a failure only loses them (admits less). */
  async function giveBack(state: PolicyState, backs: GiveBack[]): Promise<void> {
    await Promise.all(backs.map(async (back) => {
      try {
        await store.lease(state.name, state.policy, back.identity, {
          need: 0,
          spare: 0,
          fraction: state.fraction,
          ttlMs: state.ttlMs,
          giveBack: back,
        });
        metrics.leaseTokensReturned += back.tokens;
      } catch (err) {
        log.debug("giving back rate-limit lease tokens failed", { group: state.name, err });
      }
    }));
  }

  /** One store call for one request: its token, plus a lease when the policy leases. */
  async function ask(state: PolicyState, identity: string): Promise<Decision> {
    const t0 = now();
    const back = state.leases.release(identity, t0);
    const spare = state.maxTokens === 0
      ? 0
      : state.leases.nextSize(identity, t0, state.ttlMs, state.maxTokens);
    let grant;
    try {
      grant = await store.lease(state.name, state.policy, identity, {
        need: 1,
        spare,
        fraction: state.fraction,
        ttlMs: state.ttlMs,
        ...(back ? { giveBack: back } : {}),
      });
    } catch (err) {
      storeFailed(state, err);
      return withoutStore(state, identity);
    }
    if (back) metrics.leaseTokensReturned += back.tokens;
    if (storeDown) {
      storeDown = false;
      log.info("rate-limit store reachable again", { group: state.name });
    }
    if (grant.granted === 0) {
      remember(state, identity, grant.reset);
      return { source: "store", success: false, remaining: 0, reset: grant.reset };
    }
    if (state.maxTokens > 0) {
      if (grant.granted > 1) metrics.leaseGrants++;
      // Kept even when empty: what it spent sizes the next one. Its end is
      // from before the call: the store's clock started the lease no earlier,
      // so this end is never later than the store's.
      state.leases.put(identity, {
        granted: grant.granted,
        tokens: grant.granted - 1,
        expiresAt: t0 + grant.ttlMs,
        window: grant.window,
        storeRemaining: grant.remaining,
        reset: grant.reset,
      }, t0);
    }
    return {
      source: "store",
      success: true,
      remaining: grant.remaining + grant.granted - 1,
      reset: grant.reset,
    };
  }

  // A sweep gives back at most this many leases per policy in parallel (one
  // round trip); the rest wait for the next sweep or go back with their
  // caller's next store call.
  const SWEEP_BATCH = 64;
  /** Give-backs of sweeps still in flight (close() waits for them). */
  const sweeping = new Set<Promise<void>>();

  /**
   * Started by a request that needs the store, but not waited for: the ended
   * leases leave the table at once (so nothing is given back twice) and their
   * give-back round trip runs beside the request's own store call instead of
   * before it (docs/benchmarks.md, issue 21).
   */
  function sweep(t: number): void {
    nextSweepAt = t + sweepEveryMs;
    const work = Promise.all(
      [...states.values()].map((s) => giveBack(s, s.leases.sweep(t, SWEEP_BATCH))),
    ).then(() => {});
    sweeping.add(work);
    void work.finally(() => sweeping.delete(work));
  }

  async function decide(group: string, identity: string): Promise<Decision> {
    const state = states.get(group)!;
    if (state.maxTokens === 0) return await decideOnce(state, identity);
    for (;;) {
      const until = state.blocked.get(identity);
      if (until !== undefined) {
        if (until > now()) return { source: "cache", success: false, remaining: 0, reset: until };
        state.blocked.delete(identity);
      }
      const local = state.leases.take(identity, now());
      if (local) {
        metrics.localDecisions++;
        return { source: "lease", success: true, ...local };
      }
      if (now() < skipStoreUntil) return withoutStore(state, identity);
      // Requests that arrive while this identity's store call is in flight
      // wait for its lease instead of each calling the store.
      const pending = state.inFlight.get(identity);
      if (pending) {
        await pending;
        continue;
      }
      if (now() >= nextSweepAt) sweep(now());
      const call = ask(state, identity);
      state.inFlight.set(identity, call.then(() => {}, () => {}));
      try {
        return await call;
      } finally {
        state.inFlight.delete(identity);
      }
    }
  }

  /** Leasing off: every request is one store call, as before leasing existed. */
  async function decideOnce(state: PolicyState, identity: string): Promise<Decision> {
    const until = state.blocked.get(identity);
    if (until !== undefined) {
      if (until > now()) return { source: "cache", success: false, remaining: 0, reset: until };
      state.blocked.delete(identity);
    }
    if (now() < skipStoreUntil) return withoutStore(state, identity);
    return await ask(state, identity);
  }

  async function close(): Promise<void> {
    await Promise.all(sweeping);
    for (const state of states.values()) {
      const backs = state.leases.drain();
      // In batches: thousands of callers must not mean thousands of requests at once.
      for (let i = 0; i < backs.length; i += SWEEP_BATCH) {
        await giveBack(state, backs.slice(i, i + SWEEP_BATCH));
      }
    }
  }

  return { decide, close };
}
