/**
 * Rate limiting per route group and caller, shared by every edge process
 * through Redis (the counts of `@upstash/ratelimit`, leased to each edge in
 * slices: edge/rate_limit/decider.ts, docs/gateway.md).
 *
 * Every answer carries the draft-11 `RateLimit-Policy` and `RateLimit`
 * headers; a limited request gets a 429 `quota-exceeded` problem with a
 * jittered `Retry-After`. Identities the store has blocked are remembered in
 * process until their window resets, so a flood costs no Redis calls; most
 * admissions are spent from a lease and cost none either. When the
 * store is unreachable (error, or no answer within `timeoutMs`) each policy
 * either falls back to an in-process limiter with the same numbers
 * (`fail_open`, counted in `metrics.fallbackDecisions`) or answers 503
 * `rate-limit-unavailable` (`fail_closed`); it is never silently unlimited.
 *
 * @example
 * ```ts
 * app.use("/v1/*", authenticate(deps));
 * app.use("/v1/*", rateLimit({
 *   redis: deps.redis,
 *   policies: deps.config.rateLimits,
 *   group: (c) => c.get("principal") ? "default" : "anonymous",
 *   log: deps.log,
 * }));
 * ```
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Redis } from "@upstash/redis";
import { DEFAULT_RATE_LIMIT_TIMEOUT_MS, type RateLimitPolicy } from "../../shared/config/mod.ts";
import type { Logger } from "../../shared/log.ts";
import type { AppEnv } from "../app_env.ts";
import { addressBucket, clientAddressOf } from "../client_address.ts";
import { problem } from "../problem.ts";
import { setHeadersAfter } from "./set_headers.ts";
import {
  countPolicyDecision,
  createDecider,
  createRateLimitMetrics,
  type RateLimitMetrics,
} from "../rate_limit/decider.ts";
import { formatPolicy, formatState, retryAfterSeconds } from "../rate_limit/headers.ts";

export type { RateLimitMetrics } from "../rate_limit/decider.ts";
export { createRateLimitMetrics } from "../rate_limit/decider.ts";

/** Options for {@linkcode rateLimit}. */
export interface RateLimitOptions {
  /** Upstash client; build it with bounded retries (`createRedis`). */
  redis: Redis;
  /** Policies by route group (`Config.rateLimits`); `default` is required. */
  policies: Record<string, RateLimitPolicy>;
  /** Route group of a request; an unconfigured name uses `default`. @default () => "default" */
  group?: (c: Context<AppEnv>) => string;
  /**
   * Caller identity. @default `p:<principal sub>` when authenticated, else
   * `ip:<address bucket>` of the client address (edge/client_address.ts: the
   * trusted-proxy setting decides it; IPv6 is keyed by its /64)
   */
  identify?: (c: Context<AppEnv>) => string;
  /** Counters to update (e.g. shared with a metrics route). @default fresh counters */
  metrics?: RateLimitMetrics;
  /**
   * Clock for everything this module computes (headers, local limiter, blocked
   * cache). `@upstash/ratelimit` reads `Date.now` itself, so a fake clock must
   * stay near real time while the store decides. @default Date.now
   */
  now?: () => number;
  /** Store outages and recoveries are logged here. @default no logging */
  log?: Logger;
  /**
   * Store answers slower than this count as "unreachable".
   * @default DEFAULT_RATE_LIMIT_TIMEOUT_MS (RATE_LIMIT_TIMEOUT_MS's default)
   */
  timeoutMs?: number;
  /** After a store failure, decide without it for this long. @default 1000 */
  storeRetryMs?: number;
  /** Redis key namespace. @default "pc" */
  namespace?: string;
  /** Blocked identities remembered per policy. @default 10_000 */
  maxCacheEntries?: number;
  /** Source of `Retry-After` jitter, in [0, 1). @default Math.random */
  random?: () => number;
  /** This edge in the store's lease bookkeeping. @default a random UUID */
  edgeId?: string;
}

/** The middleware, with its counters. */
export type RateLimitMiddleware = MiddlewareHandler<AppEnv> & {
  readonly metrics: RateLimitMetrics;
  /** Gives leased, unused budget back to the store (shutdown; best effort). */
  close(): Promise<void>;
};

const GROUP_NAME = /^[a-z][a-z0-9_]*$/;
const ALGORITHMS = ["sliding_window", "token_bucket", "fixed_window"];

function policyProblems(name: string, p: RateLimitPolicy): string[] {
  const out: string[] = [];
  const at = `policy "${name}"`;
  if (!GROUP_NAME.test(name)) out.push(`${at}: name must match ${GROUP_NAME}`);
  if (!ALGORITHMS.includes(p.algorithm)) {
    out.push(`${at}: unknown algorithm ${JSON.stringify(p.algorithm)}`);
  }
  if (!Number.isInteger(p.limit) || p.limit <= 0) {
    out.push(`${at}: limit must be a positive integer (got ${p.limit})`);
  }
  if (!Number.isFinite(p.window_s) || Math.round(p.window_s * 1000) < 1) {
    out.push(`${at}: window_s must be at least 0.001 (got ${p.window_s})`);
  }
  if (p.refill !== undefined && (!Number.isInteger(p.refill) || p.refill <= 0)) {
    out.push(`${at}: refill must be a positive integer (got ${p.refill})`);
  }
  if (p.on_store_error !== "fail_open" && p.on_store_error !== "fail_closed") {
    out.push(`${at}: on_store_error must be fail_open or fail_closed`);
  }
  const lease = p.lease;
  if (lease !== undefined && lease !== false) {
    if (!Number.isInteger(lease.max_tokens) || lease.max_tokens <= 0) {
      out.push(`${at}: lease.max_tokens must be a positive integer (got ${lease.max_tokens})`);
    }
    if (!(lease.fraction > 0 && lease.fraction <= 1)) {
      out.push(`${at}: lease.fraction must be in (0, 1] (got ${lease.fraction})`);
    }
    if (!Number.isInteger(lease.ttl_ms) || lease.ttl_ms <= 0) {
      out.push(`${at}: lease.ttl_ms must be a positive integer (got ${lease.ttl_ms})`);
    }
  }
  return out;
}

function validate(options: RateLimitOptions): void {
  const problems: string[] = [];
  if (!options?.redis) problems.push('"redis" is required');
  const policies = options?.policies ?? {};
  if (!policies.default) problems.push('a "default" policy is required');
  for (const [name, p] of Object.entries(policies)) problems.push(...policyProblems(name, p));
  for (const key of ["timeoutMs", "storeRetryMs", "maxCacheEntries"] as const) {
    const v = options?.[key];
    if (v !== undefined && !(v > 0)) problems.push(`${key} must be positive (got ${v})`);
  }
  if (problems.length > 0) {
    throw new TypeError(`Invalid rate-limit options: ${problems.join("; ")}`);
  }
}

/** Builds the rate-limit middleware; invalid options throw here, not per request. */
export function rateLimit(options: RateLimitOptions): RateLimitMiddleware {
  validate(options);
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const metrics = options.metrics ?? createRateLimitMetrics();
  const policies = options.policies;
  const group = options.group ?? (() => "default");
  const identify = options.identify ?? ((c: Context<AppEnv>) => {
    const principal = c.get("principal");
    return principal ? `p:${principal.sub}` : `ip:${addressBucket(clientAddressOf(c))}`;
  });
  const storeRetryMs = options.storeRetryMs ?? 1000;
  const decider = createDecider(policies, {
    redis: options.redis,
    namespace: options.namespace ?? "pc",
    timeoutMs: options.timeoutMs ?? DEFAULT_RATE_LIMIT_TIMEOUT_MS,
    storeRetryMs,
    maxCacheEntries: options.maxCacheEntries ?? 10_000,
    now,
    log: options.log ?? silent,
    metrics,
    ...(options.edgeId ? { edgeId: options.edgeId } : {}),
  });

  // `RateLimit-Policy` depends on the policy only: built once, not per request.
  const policyHeaders = new Map(
    Object.entries(policies).map(([name, policy]) => [name, formatPolicy(name, policy)]),
  );

  const middleware: MiddlewareHandler<AppEnv> = async function rateLimit(c, next) {
    const wanted = group(c);
    const name = Object.hasOwn(policies, wanted) ? wanted : "default";
    const policy = policies[name]!;
    const policyHeader = policyHeaders.get(name)!;
    const decision = await decider.decide(name, identify(c));

    if (decision.source === "unavailable") {
      metrics.unavailable++;
      countPolicyDecision(metrics, name, "unavailable");
      const t0 = now();
      return problem(c, {
        code: "rate-limit-unavailable",
        status: 503,
        title: "Rate limiting is unavailable",
        detail: `The rate-limit store is unreachable and policy "${name}" fails closed`,
      }, {
        "RateLimit-Policy": policyHeader,
        // The store is probed again after storeRetryMs; earlier retries would fail too.
        "Retry-After": String(
          retryAfterSeconds(t0 + storeRetryMs, t0, storeRetryMs / 1000, random),
        ),
      });
    }

    const t = now();
    const state = formatState(name, decision.remaining, decision.reset, t);
    if (!decision.success) {
      metrics.limited++;
      countPolicyDecision(metrics, name, "limited");
      if (decision.source === "local") countPolicyDecision(metrics, name, "fail_open");
      if (decision.source === "cache") metrics.cacheBlocked++;
      const retryAfter = retryAfterSeconds(decision.reset, t, policy.window_s, random);
      return problem(c, {
        code: "quota-exceeded",
        status: 429,
        title: "Too many requests",
        detail: `Quota of policy "${name}" (${policy.limit} per ${policy.window_s} s) is used up`,
        "violated-policies": [name],
      }, {
        "RateLimit-Policy": policyHeader,
        "RateLimit": state,
        "Retry-After": String(retryAfter),
      });
    }

    metrics.allowed++;
    countPolicyDecision(metrics, name, "allowed");
    if (decision.source === "local") countPolicyDecision(metrics, name, "fail_open");
    await next();
    setHeadersAfter(c, [["RateLimit-Policy", policyHeader], ["RateLimit", state]]);
  };
  return Object.assign(middleware, { metrics, close: () => decider.close() });
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
