/**
 * Who decides a rate-limit check: the in-process cache of blocked identities,
 * the shared store (`@upstash/ratelimit` over Redis), or, while the store is
 * unreachable, the policy's `on_store_error` choice (a local limiter, or
 * "unavailable").
 *
 * @module
 */
import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis";
import type { RateLimitPolicy } from "../../shared/config/mod.ts";
import type { Logger } from "../../shared/log.ts";
import { rateLimitKeys } from "../../shared/redis/keys.ts";
import { createLocalLimiter, type LimitDecision, type LocalLimiter } from "./local_limiter.ts";

/** Counters of one rate-limit middleware; plain numbers so any exporter can read them. */
export interface RateLimitMetrics {
  /** Requests let through (by the store or the local limiter). */
  allowed: number;
  /** Requests answered 429 (by the store, the blocked cache or the local limiter). */
  limited: number;
  /** 429s answered from the in-process blocked cache, without a store call. */
  cacheBlocked: number;
  /** Store calls that failed or timed out. */
  storeErrors: number;
  /** Decisions made by the local limiter because the store was unreachable (fail_open). */
  fallbackDecisions: number;
  /** 503s because the store was unreachable and the policy fails closed. */
  unavailable: number;
  /**
   * The same decisions per policy name (names come from configuration, so the
   * map is bounded): allowed, limited, unavailable, and fail_open (decided by
   * the local limiter; also counted in allowed or limited).
   */
  byPolicy: Map<string, PolicyDecisionCounts>;
}

/** Decisions of one policy (see {@linkcode RateLimitMetrics.byPolicy}). */
export interface PolicyDecisionCounts {
  allowed: number;
  limited: number;
  unavailable: number;
  fail_open: number;
}

/** Counts one decision of `policy` in `metrics.byPolicy`. */
export function countPolicyDecision(
  metrics: RateLimitMetrics,
  policy: string,
  outcome: keyof PolicyDecisionCounts,
): void {
  let counts = metrics.byPolicy.get(policy);
  if (!counts) {
    counts = { allowed: 0, limited: 0, unavailable: 0, fail_open: 0 };
    metrics.byPolicy.set(policy, counts);
  }
  counts[outcome]++;
}

/** Zeroed {@linkcode RateLimitMetrics}. */
export function createRateLimitMetrics(): RateLimitMetrics {
  return {
    allowed: 0,
    limited: 0,
    cacheBlocked: 0,
    storeErrors: 0,
    fallbackDecisions: 0,
    unavailable: 0,
    byPolicy: new Map(),
  };
}

/** Where a decision came from. */
export type Decision =
  | (LimitDecision & { source: "store" | "cache" | "local" })
  | { source: "unavailable" };

/** Settings shared by every policy of one middleware. */
export interface DeciderOptions {
  redis: Redis;
  /** Key namespace. */
  namespace: string;
  /** Ratelimit `timeout`: slower store answers count as "unreachable". */
  timeoutMs: number;
  /** After a store failure, decide without the store for this long. */
  storeRetryMs: number;
  /** Blocked identities remembered per policy at most. */
  maxCacheEntries: number;
  now: () => number;
  log: Logger;
  metrics: RateLimitMetrics;
}

/** Decides checks for every configured policy. */
export interface Decider {
  decide(group: string, identity: string): Promise<Decision>;
}

interface PolicyState {
  name: string;
  policy: RateLimitPolicy;
  ratelimit: Ratelimit;
  local: LocalLimiter;
  /** identity → epoch ms until which the store said "blocked". */
  blocked: Map<string, number>;
}

function algorithmFor(policy: RateLimitPolicy) {
  const window = `${Math.round(policy.window_s * 1000)} ms` as const;
  switch (policy.algorithm) {
    case "token_bucket":
      return Ratelimit.tokenBucket(policy.refill ?? policy.limit, window, policy.limit);
    case "fixed_window":
      return Ratelimit.fixedWindow(policy.limit, window);
    case "sliding_window":
      return Ratelimit.slidingWindow(policy.limit, window);
  }
}

/** Builds one `Ratelimit` (and one local limiter) per policy. */
export function createDecider(
  policies: Record<string, RateLimitPolicy>,
  options: DeciderOptions,
): Decider {
  const { now, log, metrics } = options;
  const keys = rateLimitKeys(options.namespace);
  const states = new Map<string, PolicyState>();
  for (const [name, policy] of Object.entries(policies)) {
    states.set(name, {
      name,
      policy,
      ratelimit: new Ratelimit({
        redis: options.redis,
        limiter: algorithmFor(policy),
        prefix: keys.prefix(name),
        timeout: options.timeoutMs,
        // Our own cache instead: it reads the injected clock, is bounded, and
        // is consulted even while the store is skipped after a failure.
        ephemeralCache: false,
        analytics: false,
        enableTelemetry: false,
      }),
      local: createLocalLimiter(policy),
      blocked: new Map(),
    });
  }

  // While the store is down every request would otherwise wait `timeoutMs`
  // (or a failing round trip) before the fallback; skipping it for a moment
  // keeps the latency of an outage flat. The first request after the pause
  // probes the store again.
  let skipStoreUntil = 0;
  let storeDown = false;

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

  async function decide(group: string, identity: string): Promise<Decision> {
    const state = states.get(group)!;
    const until = state.blocked.get(identity);
    if (until !== undefined) {
      if (until > now()) return { source: "cache", success: false, remaining: 0, reset: until };
      state.blocked.delete(identity);
    }
    if (now() < skipStoreUntil) return withoutStore(state, identity);
    let result: Awaited<ReturnType<Ratelimit["limit"]>>;
    try {
      result = await state.ratelimit.limit(keys.identifier(identity));
    } catch (err) {
      storeFailed(state, err);
      return withoutStore(state, identity);
    }
    // The library gives up after `timeout` and answers "success" with
    // reason "timeout": that is an unreachable store, not an admission.
    if (result.reason === "timeout") {
      storeFailed(
        state,
        new Error(`Rate-limit store did not answer within ${options.timeoutMs} ms`),
      );
      return withoutStore(state, identity);
    }
    if (storeDown) {
      storeDown = false;
      log.info("rate-limit store reachable again", { group: state.name });
    }
    if (!result.success) remember(state, identity, result.reset);
    return {
      source: "store",
      success: result.success,
      remaining: result.remaining,
      reset: result.reset,
    };
  }

  return { decide };
}
