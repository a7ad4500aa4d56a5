/**
 * The rate-limit area: the policy per route group and the store deadline
 * (edge/middleware/rate_limit.ts).
 *
 * @module
 */
import { z } from "zod";
import { defineArea, positiveInt } from "./spec.ts";

/**
 * Leasing (edge/rate_limit/leases.ts): an edge takes a slice of a caller's
 * budget from Redis in one call and spends it locally. The defaults apply
 * when a policy says nothing; `lease: false` decides every request in Redis.
 */
export const DEFAULT_RATE_LIMIT_LEASE = {
  /** Tokens one lease holds at most beyond the request that takes it. */
  max_tokens: 100,
  /** Share of the budget left that one lease may take, split over the edges seen. */
  fraction: 0.5,
  /** Longest life of a lease in ms; a lease also ends with the window it was counted in. */
  ttl_ms: 1000,
} as const;

const rateLimitLease = z.object({
  max_tokens: z.number().int().positive().max(1_000_000).default(
    DEFAULT_RATE_LIMIT_LEASE.max_tokens,
  ),
  fraction: z.number().positive().max(1).default(DEFAULT_RATE_LIMIT_LEASE.fraction),
  ttl_ms: z.number().int().positive().max(60_000).default(DEFAULT_RATE_LIMIT_LEASE.ttl_ms),
}).strict();

/** Lease settings of a policy, defaults applied. */
export type RateLimitLease = z.output<typeof rateLimitLease>;

const rateLimitPolicy = z.object({
  algorithm: z.enum(["sliding_window", "token_bucket", "fixed_window"]).default("sliding_window"),
  /** Requests per window (token bucket: capacity). */
  limit: z.number().int().positive(),
  window_s: z.number().positive().max(86_400),
  /** Token bucket only: tokens added per window. @default limit */
  refill: z.number().int().positive().optional(),
  on_store_error: z.enum(["fail_open", "fail_closed"]).default("fail_open"),
  /** Leasing settings, or false for one Redis call per request. @default DEFAULT_RATE_LIMIT_LEASE */
  lease: z.union([z.literal(false), rateLimitLease]).optional(),
}).strict();

/** A rate-limit policy as configured. */
export type RateLimitPolicy = z.output<typeof rateLimitPolicy>;

/** The lease settings `policy` runs with: its own, the defaults, or null when leasing is off. */
export function leaseSettingsOf(policy: RateLimitPolicy): RateLimitLease | null {
  if (policy.lease === false) return null;
  return { ...DEFAULT_RATE_LIMIT_LEASE, ...policy.lease };
}

const rateLimitPolicies = z.string().transform((text, ctx) => {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    ctx.addIssue({ code: "custom", message: "expected a JSON object of policies" });
    return z.NEVER;
  }
  const parsed = z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), rateLimitPolicy).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    ctx.addIssue({ code: "custom", message: `${issue.path.join(".")}: ${issue.message}` });
    return z.NEVER;
  }
  if (!parsed.data.default) {
    ctx.addIssue({ code: "custom", message: 'a "default" policy is required' });
    return z.NEVER;
  }
  return parsed.data;
});

const DEFAULT_RATE_LIMITS = JSON.stringify({
  default: { limit: 600, window_s: 60 },
  admin: { limit: 120, window_s: 60 },
  anonymous: { limit: 60, window_s: 60 },
  // Its own bucket: a token guesser spending `anonymous` must not block the
  // RFC 8058 one-click unsubscribes behind the same address.
  unsubscribe: { limit: 30, window_s: 60 },
});

/**
 * How long a decision waits for the store, in ms: the declared default of
 * RATE_LIMIT_TIMEOUT_MS and the middleware's default when built without one.
 */
export const DEFAULT_RATE_LIMIT_TIMEOUT_MS = 1500;

/** Rate limits per route group. */
export const rateLimits = defineArea(
  "Rate limits",
  {
    RATE_LIMITS: {
      description:
        'Rate-limit policies per route group as JSON: `{"default":{"limit":600,"window_s":60}, …}`; fields algorithm (`sliding_window`, `token_bucket`, `fixed_window`), limit, window_s, refill, on_store_error (`fail_open`, `fail_closed`), lease (`false`, or `{"max_tokens":100,"fraction":0.5,"ttl_ms":1000}`: how much budget an edge takes from Redis at once, docs/gateway.md)',
      default: DEFAULT_RATE_LIMITS,
      schema: rateLimitPolicies,
    },
    RATE_LIMIT_TIMEOUT_MS: {
      description:
        "How long a rate-limit decision waits for Redis before the policy's on_store_error applies (too low over-admits under load)",
      default: String(DEFAULT_RATE_LIMIT_TIMEOUT_MS),
      schema: positiveInt,
    },
  },
  [],
  (v) => ({
    rateLimits: v.RATE_LIMITS,
    rateLimitTimeoutMs: v.RATE_LIMIT_TIMEOUT_MS,
  }),
);
