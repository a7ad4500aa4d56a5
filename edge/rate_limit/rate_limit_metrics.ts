/**
 * The rate limiter's counters: plain numbers the hot path increments, read
 * by the metrics exporter at scrape time (edge/edge_metrics.ts).
 *
 * @module
 */

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
  /** Store calls that granted a lease: tokens beyond the request that asked. */
  leaseGrants: number;
  /** Requests admitted from a lease this edge held, without a store call. */
  localDecisions: number;
  /** Unused leased tokens given back to the store. */
  leaseTokensReturned: number;
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
    leaseGrants: 0,
    localDecisions: 0,
    leaseTokensReturned: 0,
    byPolicy: new Map(),
  };
}
