/**
 * Breaker policies: the failure rules of one downstream, with the seed
 * defaults exported as data.
 *
 * @module
 */

/** Failure-rate rule: trip when `threshold_pct` % of the calls in the window failed. */
export interface FailureRateRule {
  /** Percentage of failed calls (slow calls included) that trips, 1..100. */
  threshold_pct: number;
  /** Sliding time window, ms; kept as 10 buckets of `window_ms / 10`. */
  window_ms: number;
  /** The rule is silent below this many calls in the window. */
  min_calls: number;
}

/** The rules of one breaker. Field names follow the JSON configuration (snake_case). */
export interface BreakerPolicy {
  /** Consecutive failures that trip CLOSED → OPEN. */
  fail_max: number;
  /** Time in OPEN before a probe may run (OPEN → HALF_OPEN), ms. */
  reset_timeout_ms: number;
  /** Probe successes in a row that close a HALF_OPEN breaker. @default 1 */
  success_threshold: number;
  /** Optional failure-rate rule. @default null (off) */
  failure_rate: FailureRateRule | null;
  /** Calls slower than this count as failures (their result is still returned). @default null (off) */
  slow_call_ms: number | null;
  /** Timeout of `breaker.fetch()` (and of `call()` probes), ms. @default 10_000 */
  timeout_ms: number;
  /**
   * How long a probe lease lasts before another instance may probe, ms. A
   * probe's own timeout is capped at this, so two probes never overlap.
   * @default timeout_ms + 1000
   */
  probe_lease_ms: number;
  /**
   * 4xx answers (and errors with a 4xx `status`, Postgres SQLSTATE classes
   * 22, 23, 40, 42) show a working downstream: they count as successes.
   * @default true
   */
  exclude_client_errors: boolean;
}

/** A policy as written in configuration: only `fail_max` and `reset_timeout_ms` are required. */
export type BreakerPolicyInput =
  & Pick<BreakerPolicy, "fail_max" | "reset_timeout_ms">
  & Partial<Omit<BreakerPolicy, "fail_max" | "reset_timeout_ms">>;

/**
 * Seed policies per downstream. Rates follow opossum's 50 %; windows and
 * timeouts follow how each downstream fails (a database hiccup is short, a
 * mail provider's outage long).
 */
export const DEFAULT_BREAKER_POLICIES: Readonly<Record<string, BreakerPolicyInput>> = {
  database: {
    fail_max: 5,
    reset_timeout_ms: 60_000,
    exclude_client_errors: true,
    failure_rate: { threshold_pct: 50, window_ms: 30_000, min_calls: 20 },
    slow_call_ms: 5_000,
    timeout_ms: 10_000,
  },
  control: { fail_max: 3, reset_timeout_ms: 30_000, timeout_ms: 5_000 },
  analytics: {
    fail_max: 10,
    reset_timeout_ms: 120_000,
    failure_rate: { threshold_pct: 50, window_ms: 60_000, min_calls: 50 },
    timeout_ms: 15_000,
  },
  email: {
    fail_max: 5,
    reset_timeout_ms: 120_000,
    failure_rate: { threshold_pct: 50, window_ms: 60_000, min_calls: 10 },
    timeout_ms: 15_000,
  },
  calendar: {
    fail_max: 5,
    reset_timeout_ms: 60_000,
    failure_rate: { threshold_pct: 50, window_ms: 30_000, min_calls: 20 },
    slow_call_ms: 5_000,
    timeout_ms: 10_000,
  },
  places: {
    fail_max: 5,
    reset_timeout_ms: 30_000,
    failure_rate: { threshold_pct: 50, window_ms: 30_000, min_calls: 20 },
    slow_call_ms: 2_000,
    timeout_ms: 5_000,
  },
};

const NAME = /^[a-z][a-z0-9_]*$/;

function positiveInt(out: string[], at: string, field: string, v: unknown): void {
  if (!Number.isInteger(v) || (v as number) <= 0) {
    out.push(`${at}: ${field} must be a positive integer (got ${JSON.stringify(v)})`);
  }
}

/** Fills in the defaults of one policy; pushes its problems onto `out`. */
function complete(name: string, input: BreakerPolicyInput, out: string[]): BreakerPolicy {
  const at = `breaker "${name}"`;
  if (!NAME.test(name)) out.push(`${at}: name must match ${NAME}`);
  const timeout = input.timeout_ms ?? 10_000;
  const policy: BreakerPolicy = {
    fail_max: input.fail_max,
    reset_timeout_ms: input.reset_timeout_ms,
    success_threshold: input.success_threshold ?? 1,
    failure_rate: input.failure_rate ?? null,
    slow_call_ms: input.slow_call_ms ?? null,
    timeout_ms: timeout,
    probe_lease_ms: input.probe_lease_ms ?? timeout + 1000,
    exclude_client_errors: input.exclude_client_errors ?? true,
  };
  positiveInt(out, at, "fail_max", policy.fail_max);
  positiveInt(out, at, "reset_timeout_ms", policy.reset_timeout_ms);
  positiveInt(out, at, "success_threshold", policy.success_threshold);
  positiveInt(out, at, "timeout_ms", policy.timeout_ms);
  positiveInt(out, at, "probe_lease_ms", policy.probe_lease_ms);
  if (policy.slow_call_ms !== null) positiveInt(out, at, "slow_call_ms", policy.slow_call_ms);
  if (typeof policy.exclude_client_errors !== "boolean") {
    out.push(`${at}: exclude_client_errors must be a boolean`);
  }
  const rate = policy.failure_rate;
  if (rate !== null) {
    const pct = rate.threshold_pct;
    if (typeof pct !== "number" || !(pct > 0 && pct <= 100)) {
      out.push(
        `${at}: failure_rate.threshold_pct must be in (0, 100] (got ${JSON.stringify(pct)})`,
      );
    }
    positiveInt(out, at, "failure_rate.window_ms", rate.window_ms);
    positiveInt(out, at, "failure_rate.min_calls", rate.min_calls);
    if (Number.isInteger(rate.window_ms) && rate.window_ms < 10) {
      out.push(`${at}: failure_rate.window_ms must be at least 10 (got ${rate.window_ms})`);
    }
  }
  return policy;
}

/**
 * Fills in the optional fields of every policy and validates them; throws one
 * RangeError listing every problem. To override some defaults, pass
 * `{ ...DEFAULT_BREAKER_POLICIES, ...overrides }`.
 */
export function resolvePolicies(
  inputs: Readonly<Record<string, BreakerPolicyInput>> = DEFAULT_BREAKER_POLICIES,
): Record<string, BreakerPolicy> {
  const problems: string[] = [];
  const out: Record<string, BreakerPolicy> = {};
  for (const [name, input] of Object.entries(inputs)) {
    out[name] = complete(name, input, problems);
  }
  if (problems.length > 0) {
    throw new RangeError(`Invalid breaker policies: ${problems.join("; ")}`);
  }
  return out;
}

/** Width of one failure-rate bucket, ms (the window is 10 buckets). */
export function bucketMs(rule: FailureRateRule): number {
  return Math.max(1, Math.ceil(rule.window_ms / 10));
}
