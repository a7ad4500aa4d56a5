/**
 * The options of a breaker registry: their defaults and their validation,
 * so that a bad value fails when the registry is built, naming the option,
 * rather than as odd timing later.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { Logger } from "../log.ts";
import type { LoopLag } from "../loop_lag.ts";
import {
  type BreakerPolicy,
  type BreakerPolicyInput,
  DEFAULT_BREAKER_POLICIES,
  resolvePolicies,
} from "./policy.ts";

/** Options for {@linkcode createBreakerRegistry}. */
export interface BreakerRegistryOptions {
  /** Upstash client built with `createRedis` (raw strings, bounded retries). */
  redis: Redis;
  /** Policies by breaker name. @default DEFAULT_BREAKER_POLICIES */
  policies?: Readonly<Record<string, BreakerPolicyInput>>;
  /** Transitions, outages and resyncs are logged here. @default no logging */
  log?: Logger;
  /** Clock, ms. @default Date.now */
  now?: () => number;
  /** Names this instance in Redis and in events. @default "i-" + 8 random hex digits */
  instanceId?: string;
  /** Redis key namespace. @default "pc" */
  namespace?: string;
  /** Longest time an outcome waits before it is reported, ms. @default 50 */
  flushMs?: number;
  /** Outcomes that trigger a report at once. @default 256 */
  flushMax?: number;
  /** Heartbeat (subscription check) and, while Redis is away, retry period, ms. @default 500 */
  heartbeatMs?: number;
  /** Full state re-read every this many heartbeats. @default 10 */
  syncEvery?: number;
  /**
   * A Redis operation slower than this, net of this process's event-loop
   * stall, counts as a failure (the registry switches to local breakers), ms.
   * @default 1000
   */
  storeTimeoutMs?: number;
  /**
   * This process's event-loop stall, which slow calls are judged net of
   * (loop_lag.ts). @default a meter the registry runs from start() to stop()
   */
  loopLag?: LoopLag;
}

/** {@linkcode BreakerRegistryOptions} with every default filled in and every value checked. */
export interface ResolvedRegistryOptions {
  redis: Redis;
  log: Logger | null;
  now: () => number;
  instanceId: string;
  namespace: string;
  heartbeatMs: number;
  syncEvery: number;
  storeTimeoutMs: number;
  flushMs: number;
  flushMax: number;
  policies: Record<string, BreakerPolicy>;
  /** The caller's stall source, or null: the registry runs its own meter. */
  loopLag: LoopLag | null;
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) {
    throw new RangeError(
      `Breaker registry option "${name}" must be positive: current value is ${v}`,
    );
  }
  return v;
}

/** Applies the defaults; throws TypeError without `redis`, RangeError for a bad number or policy. */
export function resolveRegistryOptions(options: BreakerRegistryOptions): ResolvedRegistryOptions {
  if (!options?.redis) throw new TypeError('Breaker registry option "redis" is required');
  return {
    redis: options.redis,
    log: options.log ?? null,
    now: options.now ?? Date.now,
    instanceId: options.instanceId ?? `i-${crypto.randomUUID().slice(0, 8)}`,
    namespace: options.namespace ?? "pc",
    heartbeatMs: positive("heartbeatMs", options.heartbeatMs ?? 500),
    syncEvery: positive("syncEvery", options.syncEvery ?? 10),
    storeTimeoutMs: positive("storeTimeoutMs", options.storeTimeoutMs ?? 1000),
    flushMs: positive("flushMs", options.flushMs ?? 50),
    flushMax: positive("flushMax", options.flushMax ?? 256),
    policies: resolvePolicies(options.policies ?? DEFAULT_BREAKER_POLICIES),
    loopLag: options.loopLag ?? null,
  };
}
