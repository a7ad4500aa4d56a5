/**
 * The leases one edge holds for one policy: per caller identity, tokens the
 * store already counted and granted to this edge, spent here without a Redis
 * call until they run out or the lease ends. Ended and evicted leases are
 * collected with their unused tokens, to be given back to the store.
 *
 * @module
 */

/** A live lease on one identity's budget. */
export interface Lease {
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
  release(identity: string): GiveBack | null;
  /** Removes ended leases; returns their unused tokens and those of evicted ones. */
  sweep(now: number): GiveBack[];
  /** Removes every lease (shutdown); returns all unused tokens. */
  drain(): GiveBack[];
  /** Leases held. */
  readonly size: number;
}

/** A table holding at most `maxEntries` leases (the oldest are evicted, their tokens given back). */
export function createLeaseTable(maxEntries: number): LeaseTable {
  const leases = new Map<string, Lease>();
  let evicted: GiveBack[] = [];

  function giveBackOf(identity: string, lease: Lease): GiveBack | null {
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
      // Read `evicted` after sweep(): it replaces the array.
      const ended = sweep(now);
      evicted.push(...ended);
      // Map iteration is insertion order: the first keys are the oldest.
      for (const [id, old] of leases) {
        if (leases.size < maxEntries) break;
        leases.delete(id);
        const back = giveBackOf(id, old);
        if (back) evicted.push(back);
      }
    }
    leases.set(identity, lease);
  }

  function release(identity: string): GiveBack | null {
    const lease = leases.get(identity);
    if (!lease) return null;
    leases.delete(identity);
    return giveBackOf(identity, lease);
  }

  function sweep(now: number): GiveBack[] {
    const out = evicted;
    evicted = [];
    for (const [identity, lease] of leases) {
      if (lease.tokens > 0 && now < lease.expiresAt) continue;
      leases.delete(identity);
      const back = giveBackOf(identity, lease);
      if (back) out.push(back);
    }
    return out;
  }

  function drain(): GiveBack[] {
    const out = evicted;
    evicted = [];
    for (const [identity, lease] of leases) {
      const back = giveBackOf(identity, lease);
      if (back) out.push(back);
    }
    leases.clear();
    return out;
  }

  return {
    take,
    put,
    release,
    sweep,
    drain,
    get size() {
      return leases.size;
    },
  };
}
