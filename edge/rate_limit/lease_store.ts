/**
 * The Redis side of rate-limit leasing: one call of
 * shared/redis/scripts/rate_limit_lease.lua gives back an earlier lease's
 * unused tokens and takes new ones, with the store deadline applied here
 * (a late answer counts as an unreachable store).
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { RateLimitPolicy } from "../../shared/config/mod.ts";
import { rateLimitKeys } from "../../shared/redis/keys.ts";
import { RATE_LIMIT_LEASE } from "../../shared/redis/script_codes.ts";
import { bindScript } from "../../shared/redis/scripts.ts";
import leaseScript from "../../shared/redis/scripts/rate_limit_lease.lua" with { type: "text" };

/** What one call asks for. */
export interface LeaseRequest {
  /** Tokens for requests waiting now; 0 only gives back. */
  need: number;
  /** Tokens one grant may hold at most, `need` included (0: exactly `need`, no lease). */
  spare: number;
  /** Share of the available budget one lease may take, split over the edges seen. */
  fraction: number;
  /** Longest lease life in ms. */
  ttlMs: number;
  /** Unused tokens of an earlier lease, and the window they were counted in. */
  giveBack?: { tokens: number; window: number };
}

/** The store's answer (times are Redis epoch ms, except `ttlMs`). */
export interface LeaseGrant {
  granted: number;
  /** Budget left in Redis after the grant. */
  remaining: number;
  reset: number;
  ttlMs: number;
  window: number;
}

/** Thrown when the store does not answer within the deadline. */
export class LeaseTimeoutError extends Error {
  override name = "LeaseTimeoutError";
}

/** Options for {@linkcode createLeaseStore}. */
export interface LeaseStoreOptions {
  /** Key namespace. */
  namespace: string;
  /** Answers slower than this reject with {@linkcode LeaseTimeoutError}. */
  timeoutMs: number;
  /** This edge's id in the budget's edge set. */
  edgeId: string;
}

/** Leases budget from Redis. */
export interface LeaseStore {
  lease(
    group: string,
    policy: RateLimitPolicy,
    identity: string,
    request: LeaseRequest,
  ): Promise<LeaseGrant>;
}

/** Binds the lease script to `redis`. */
export function createLeaseStore(redis: Redis, options: LeaseStoreOptions): LeaseStore {
  const keys = rateLimitKeys(options.namespace);
  const script = bindScript(redis, leaseScript, { name: "rateLimitLease" });

  async function lease(
    group: string,
    policy: RateLimitPolicy,
    identity: string,
    request: LeaseRequest,
  ): Promise<LeaseGrant> {
    const call = script.run<number[]>(
      [keys.budget(group, identity), keys.leaseEdges(group, identity)],
      [
        policy.algorithm,
        policy.limit,
        Math.round(policy.window_s * 1000),
        policy.refill ?? policy.limit,
        request.need,
        request.spare,
        request.fraction,
        request.ttlMs,
        options.edgeId,
        request.giveBack?.tokens ?? 0,
        request.giveBack?.window ?? 0,
      ],
    );
    // After the deadline nobody awaits the call; its late failure is moot.
    call.catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new LeaseTimeoutError(
              `Rate-limit store did not answer within ${options.timeoutMs} ms`,
            ),
          ),
        options.timeoutMs,
      );
    });
    try {
      const [code, granted, remaining, reset, ttlMs, window] = await Promise.race([
        call,
        deadline,
      ]);
      if (
        code !== RATE_LIMIT_LEASE.granted && code !== RATE_LIMIT_LEASE.exhausted &&
        code !== RATE_LIMIT_LEASE.returned
      ) {
        throw new TypeError(`Unexpected reply from rate_limit_lease.lua: code ${code}`);
      }
      return {
        granted: granted!,
        remaining: remaining!,
        reset: reset!,
        ttlMs: ttlMs!,
        window: window!,
      };
    } finally {
      clearTimeout(timer);
    }
  }

  return { lease };
}
