/**
 * Response headers of draft-ietf-httpapi-ratelimit-headers-11: `RateLimit-Policy`
 * and `RateLimit` as RFC 8941 structured-field lists with one member each, plus
 * a jittered `Retry-After`.
 *
 * @module
 */
import type { RateLimitPolicy } from "../../shared/config/mod.ts";

/**
 * `"<name>";q=<limit>;w=<window_s>`. The draft's `w` is an integer, so a
 * sub-second or fractional window is rounded up. For a token bucket `q` is the
 * capacity (`limit`), the largest burst a client can send.
 */
export function formatPolicy(name: string, policy: RateLimitPolicy): string {
  return `"${name}";q=${policy.limit};w=${Math.ceil(policy.window_s)}`;
}

/** `"<name>";r=<remaining>;t=<seconds until reset, rounded up>`. */
export function formatState(name: string, remaining: number, resetMs: number, now: number): string {
  return `"${name}";r=${Math.max(0, remaining)};t=${secondsUntil(resetMs, now)}`;
}

/** Whole seconds until `resetMs`, rounded up, never negative. */
export function secondsUntil(resetMs: number, now: number): number {
  return Math.max(0, Math.ceil((resetMs - now) / 1000));
}

/**
 * `Retry-After` in seconds: never before the window allows another request
 * (rounded up, at least 1), plus up to 10 % of the window (1 to 30 s) of
 * jitter so that clients limited together do not come back together
 * (draft §8.5).
 */
export function retryAfterSeconds(
  resetMs: number,
  now: number,
  windowS: number,
  random: () => number,
): number {
  const earliest = Math.max(1, secondsUntil(resetMs, now));
  const maxJitter = Math.min(30, Math.max(1, Math.ceil(windowS * 0.1)));
  return earliest + Math.floor(random() * (maxJitter + 1));
}
