/**
 * A bounded cache of verified tokens (token → principal) in front of a
 * verifier. Verifying an HS256 JWT (WebCrypto key import + HMAC through the
 * thread pool) costs tens of µs of CPU per request (docs/benchmarks.md,
 * design measurements); clients reuse one token for many requests, so a hit
 * skips all of it.
 *
 * Only successes are cached, each until the token's `exp` (minus the clock
 * tolerance, so a cached token never outlives the verifier's own decision)
 * or `ttlMs`, whichever is sooner. `ttlMs` bounds how long a key removed from
 * the configuration keeps working in a running instance.
 *
 * @module
 */
import { decodeJwt } from "jose";
import type { Principal } from "./principal.ts";
import type { Verifier } from "./verify.ts";

/** Options for {@linkcode cacheVerifiedTokens}. */
export interface VerifiedCacheOptions {
  /** Entries kept; the oldest is dropped beyond it. @default 10_000 */
  max?: number;
  /** Longest time a verification is reused. @default 60_000 */
  ttlMs?: number;
  /** @default Date.now */
  now?: () => number;
  /**
   * The keys in force; when it returns something new (a rotated
   * JWT_HS256_KEYS, shared/secrets/) every entry is dropped, so a removed kid
   * stops working at once instead of after `ttlMs`. @default never changes
   */
  keys?: () => unknown;
}

/** Wraps `verifier` with the cache; `jwksStatus` passes through. */
export function cacheVerifiedTokens(
  verifier: Verifier,
  options: VerifiedCacheOptions = {},
): Verifier {
  const max = options.max ?? 10_000;
  const ttlMs = options.ttlMs ?? 60_000;
  const now = options.now ?? Date.now;
  if (!Number.isInteger(max) || max < 1) {
    throw new RangeError(`max must be a positive integer, got ${max}`);
  }
  if (!(ttlMs > 0)) throw new RangeError(`ttlMs must be positive, got ${ttlMs}`);
  // A Map keeps insertion order: deleting + re-inserting on a hit makes it an LRU.
  const entries = new Map<string, { principal: Principal; until: number }>();
  let keysInForce = options.keys?.();

  return {
    jwksStatus: () => verifier.jwksStatus(),
    async verify(token) {
      if (options.keys && options.keys() !== keysInForce) {
        keysInForce = options.keys();
        entries.clear();
      }
      const t = now();
      const hit = entries.get(token);
      if (hit) {
        entries.delete(token);
        if (hit.until > t) {
          entries.set(token, hit);
          return hit.principal;
        }
      }
      const principal = await verifier.verify(token);
      // verify() succeeded, so the payload decodes and exp is a number.
      const exp = decodeJwt(token).exp!;
      const until = Math.min(exp * 1000, t + ttlMs);
      if (until > t) {
        entries.set(token, { principal, until });
        if (entries.size > max) entries.delete(entries.keys().next().value!);
      }
      return principal;
    },
  };
}
