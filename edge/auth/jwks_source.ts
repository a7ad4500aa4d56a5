/**
 * Public keys from a JWKS URL (RS256, ES256, EdDSA), with a last-good key set
 * that outlives an identity-provider outage.
 *
 * jose's `createRemoteJWKSet` does the fetching: timeout, no redirects, JWKS
 * validation, one fetch at a time. This module decides WHEN to fetch, because
 * jose's timing reads the wall clock and has no stale-if-error: once its cache
 * is older than 10 minutes and a refetch fails, every verification fails
 * (docs/reference/jose-jwt.md §1). Here the last good set keeps verifying for the grace
 * period, and time comes from an injected clock so tests need no sleeps.
 *
 * Fetch rules:
 * - set older than `maxAgeMs` → refetch before selecting a key;
 * - after a failed fetch, the next attempt waits `cooldownMs`, so an outage
 *   costs one slow request per cooldown, not every request;
 * - an unknown `kid` triggers at most one refetch per `cooldownMs` (a rotated
 *   key is picked up; a flood of invented kids does not flood the provider);
 * - the set is usable while younger than `maxAgeMs`, or, when refreshing
 *   fails, while younger than `graceMs` (measured from the last good fetch).
 *
 * @module
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type CryptoKey as JoseCryptoKey,
  customFetch,
  type FetchImplementation,
  type JWSHeaderParameters,
} from "jose";
import type { Logger } from "../../shared/log.ts";
import { InvalidTokenError } from "./errors.ts";
import type { KeyResolver } from "./keyring.ts";

/** The algorithms accepted from the JWKS. */
export const JWKS_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const;

/** Options for {@linkcode createJwksSource}. */
export interface JwksSourceOptions {
  /** Keep using the last good set this long after it was fetched, while refetching fails. */
  graceMs: number;
  /** Minimum time between refetches after a failure, and between unknown-`kid` refetches. */
  cooldownMs: number;
  /** Refetch when the set is older than this. @default 600000 (jose's cacheMaxAge) */
  maxAgeMs?: number;
  /** Timeout of one fetch. @default 5000 */
  timeoutMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number;
  /** Receives refetch failures and recoveries. */
  log: Logger;
}

/** A JWKS-backed key resolver. */
export interface JwksSource {
  /** Resolves the key for a token header; throws jose errors or InvalidTokenError. */
  resolve: KeyResolver;
  /** Age of the key set in use and whether the last refetch failed (for readiness/metrics). */
  status(): { ageMs: number | null; failing: boolean };
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new TypeError(`JWKS source option "${name}" must be a positive number, got ${value}`);
  }
  return value;
}

/**
 * jose rejects a non-200 answer without reading it. An unread body keeps the
 * connection busy (and trips Deno's resource sanitizer), so cancel it here.
 */
function drainingFetch(fetchImpl: typeof fetch): FetchImplementation {
  return async function jwksFetch(url, init) {
    const res = await fetchImpl(url, init);
    if (res.status === 200) return res;
    await res.body?.cancel();
    return new Response(null, { status: res.status });
  };
}

/** Creates the JWKS key source for `url`. Does no I/O until the first token arrives. */
export function createJwksSource(url: string, options: JwksSourceOptions): JwksSource {
  const target = new URL(url);
  if (target.protocol !== "https:" && target.protocol !== "http:") {
    throw new TypeError(`JWKS URL must be http(s), got ${target.protocol}`);
  }
  const graceMs = positive("graceMs", options.graceMs);
  const cooldownMs = positive("cooldownMs", options.cooldownMs);
  const maxAgeMs = positive("maxAgeMs", options.maxAgeMs ?? 600_000);
  const timeoutMs = positive("timeoutMs", options.timeoutMs ?? 5_000);
  const now = options.now ?? Date.now;
  const log = options.log;

  const remote = createRemoteJWKSet(target, {
    timeoutDuration: Math.ceil(timeoutMs),
    // Infinite on purpose: jose must never refetch on its own; every fetch
    // goes through refresh() below, which follows the injected clock.
    cacheMaxAge: Infinity,
    cooldownDuration: Infinity,
    [customFetch]: drainingFetch(options.fetch ?? fetch),
  });

  type KeySet = { at: number; select: ReturnType<typeof createLocalJWKSet> };
  let current: KeySet | null = null;
  let inflight: Promise<boolean> | null = null;
  let lastFailure: { at: number; err: unknown } | null = null;
  let lastKidRefetchAt: number | null = null;

  function refresh(why: "initial" | "stale" | "unknown-kid"): Promise<boolean> {
    if (inflight) return inflight;
    if (lastFailure && now() - lastFailure.at < cooldownMs) return Promise.resolve(false);
    inflight = (async () => {
      try {
        await remote.reload();
        const jwks = remote.jwks();
        if (!jwks) throw new Error("JWKS reload succeeded but returned no key set");
        current = { at: now(), select: createLocalJWKSet(jwks) };
        if (lastFailure) log.info("jwks refresh recovered", { jwks_url: target.href });
        lastFailure = null;
        return true;
      } catch (err) {
        lastFailure = { at: now(), err };
        log.warn("jwks refresh failed", {
          jwks_url: target.href,
          why,
          err,
          // null: nothing to fall back on; otherwise the grace clock is running.
          key_set_age_ms: current ? now() - current.at : null,
          grace_ms: graceMs,
        });
        return false;
      } finally {
        inflight = null;
      }
    })();
    return inflight;
  }

  function usable(): KeySet {
    if (current === null) {
      throw new InvalidTokenError("jwks-unavailable", { cause: lastFailure?.err });
    }
    const age = now() - current.at;
    if (age >= maxAgeMs && age > graceMs) {
      throw new InvalidTokenError("jwks-unavailable", { cause: lastFailure?.err });
    }
    return current;
  }

  async function refetchForUnknownKid(): Promise<boolean> {
    // Someone is already fetching: their result is as new as ours would be.
    if (inflight) return await inflight;
    const t = now();
    if (lastKidRefetchAt !== null && t - lastKidRefetchAt < cooldownMs) return false;
    lastKidRefetchAt = t;
    return await refresh("unknown-kid");
  }

  // jose's own CryptoKey type: it follows whichever WebCrypto typings are
  // loaded (Deno's, or node's when an npm package pulls in @types/node).
  async function resolveJwksKey(header: JWSHeaderParameters): Promise<JoseCryptoKey> {
    if (current === null || now() - current.at >= maxAgeMs) {
      await refresh(current === null ? "initial" : "stale");
    }
    try {
      return await usable().select(header);
    } catch (err) {
      if ((err as { code?: unknown })?.code !== "ERR_JWKS_NO_MATCHING_KEY") throw err;
      if (!(await refetchForUnknownKid())) throw err;
      return await usable().select(header);
    }
  }

  return {
    resolve: resolveJwksKey,
    status: () => ({ ageMs: current ? now() - current.at : null, failing: lastFailure !== null }),
  };
}
