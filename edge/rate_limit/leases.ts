/**
 * The leases one edge holds for one policy: per caller identity, tokens the
 * store already counted and granted to this edge, spent here without a Redis
 * call until they run out or the lease ends. Ended and evicted leases are
 * collected with their unused tokens, to be given back to the store.
 *
 * The size to ask for follows the caller's demand: a caller without a recent
 * lease asks for its one token only, so a caller sending a request now and
 * then costs one store call per request, as without leasing, and leaves
 * nothing to give back; a caller that ran out of a lease before it ended asks
 * for twice as much next time, up to the policy's `max_tokens`; a lease that
 * ended with tokens left sizes the next one by what it spent in its lifetime.
 *
 * @module
 */

/** A live lease on one identity's budget. */
export interface Lease {
  /** Tokens the store granted, the asking request's included. */
  granted: number;
  /** Tokens left to spend locally. */
  tokens: number;
  /** Local epoch ms after which the lease must not be spent. */
  expiresAt: number;
  /** Window index the tokens were counted in (rate_limit_lease.lua). */
  window: number;
  /** The store's budget left when it granted this lease. */
  storeRemaining: number;
  /** Reset (epoch ms) the store reported with the grant. */
  reset: number;
}

/** Unused tokens to give back for one identity. */
export interface GiveBack {
  identity: string;
  tokens: number;
  window: number;
}

/** One local admission from a lease. */
export interface LocalAdmission {
  /** Approximate: the store's count at the grant plus what this lease still holds. */
  remaining: number;
  reset: number;
}

/** Leases of one policy. */
export interface LeaseTable {
  /** Spends one token of `identity`'s live lease; null when there is none. */
  take(identity: string, now: number): LocalAdmission | null;
  /** Stores a grant's unused tokens (replacing nothing: the caller released first). */
  put(identity: string, lease: Lease, now: number): void;
  /** Removes `identity`'s lease (ended or empty) and returns its unused tokens, if any. */
  release(identity: string, now: number): GiveBack | null;
  /**
   * Removes leases past their end; returns the unused tokens of evicted and
   * ended leases, at most `max` entries (the rest wait for the next sweep or
   * for their caller's next store call). @default max Infinity
   */
  sweep(now: number, max?: number): GiveBack[];
  /** Removes every lease (shutdown); returns all unused tokens. */
  drain(): GiveBack[];
  /**
   * Tokens to ask for when `identity` has no usable lease (at most `max`):
   * one, unless its last lease ended within `ttlMs`; then twice that lease
   * if the caller ran out of it before its end, else what it spent.
   */
  nextSize(identity: string, now: number, ttlMs: number, max: number): number;
  /** Leases held. */
  readonly size: number;
}

/** A table holding at most `maxEntries` leases (the oldest are evicted, their tokens given back). */
export function createLeaseTable(maxEntries: number): LeaseTable {
  const leases = new Map<string, Lease>();
  /** identity → its last lease: size, tokens spent, whether it ran out early, when it ended. */
  const history = new Map<
    string,
    { granted: number; spent: number; ranOut: boolean; endedAt: number }
  >();
  const evicted: GiveBack[] = [];

  /** Removes a lease, remembering what it spent; returns its unused tokens. */
  function end(identity: string, lease: Lease, now: number): GiveBack | null {
    leases.delete(identity);
    history.delete(identity);
    if (history.size >= maxEntries) {
      for (const id of history.keys()) {
        if (history.size < maxEntries) break;
        history.delete(id);
      }
    }
    // An ended lease ended at its expiry, however late the sweep noticed.
    history.set(identity, {
      granted: lease.granted,
      spent: lease.granted - lease.tokens,
      ranOut: lease.tokens === 0 && now < lease.expiresAt,
      endedAt: Math.min(now, lease.expiresAt),
    });
    return lease.tokens > 0 ? { identity, tokens: lease.tokens, window: lease.window } : null;
  }

  function take(identity: string, now: number): LocalAdmission | null {
    const lease = leases.get(identity);
    if (!lease || lease.tokens <= 0 || now >= lease.expiresAt) return null;
    lease.tokens -= 1;
    return { remaining: lease.storeRemaining + lease.tokens, reset: lease.reset };
  }

  function put(identity: string, lease: Lease, now: number): void {
    if (!leases.has(identity) && leases.size >= maxEntries) {
      // Read `evicted` after sweep(): it takes the evicted entries out first.
      const ended = sweep(now);
      evicted.push(...ended);
      // Bounded too: a give-back dropped here only admits less.
      if (evicted.length > maxEntries) evicted.splice(0, evicted.length - maxEntries);
      // Map iteration is insertion order: the first keys are the oldest.
      for (const [id, old] of leases) {
        if (leases.size < maxEntries) break;
        const back = end(id, old, now);
        if (back) evicted.push(back);
      }
    }
    leases.set(identity, lease);
  }

  function release(identity: string, now: number): GiveBack | null {
    const lease = leases.get(identity);
    return lease ? end(identity, lease, now) : null;
  }

  function sweep(now: number, max = Infinity): GiveBack[] {
    const out = evicted.splice(0, max);
    for (const [identity, lease] of leases) {
      // An empty lease still alive stays: whether the caller runs out before
      // its end is what sizes the next one.
      if (now < lease.expiresAt) continue;
      if (lease.tokens > 0 && out.length >= max) continue;
      const back = end(identity, lease, now);
      if (back) out.push(back);
    }
    return out;
  }

  function drain(): GiveBack[] {
    const out = evicted.splice(0);
    for (const [identity, lease] of leases) {
      if (lease.tokens > 0) out.push({ identity, tokens: lease.tokens, window: lease.window });
    }
    leases.clear();
    return out;
  }

  function nextSize(identity: string, now: number, ttlMs: number, max: number): number {
    const last = history.get(identity);
    if (!last || now - last.endedAt > ttlMs) return 1;
    if (last.ranOut) return Math.min(max, 2 * last.granted);
    return Math.max(1, Math.min(max, last.spent));
  }

  return {
    take,
    put,
    release,
    sweep,
    drain,
    nextSize,
    get size() {
      return leases.size;
    },
  };
}
