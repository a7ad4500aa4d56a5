/**
 * An in-process limiter with the same three algorithms and the same
 * arithmetic as the `@upstash/ratelimit` Lua scripts. The rate-limit
 * middleware decides with it while the shared store is unreachable and the
 * policy fails open, so an outage degrades to "limited per process" instead
 * of "unlimited".
 *
 * @module
 */
import type { RateLimitPolicy } from "../../shared/config/mod.ts";

/** One decision. */
export interface LimitDecision {
  success: boolean;
  /** Requests (tokens) left after this one, never negative. */
  remaining: number;
  /** Epoch ms when the window ends (token bucket: when the next refill lands). */
  reset: number;
}

/** Options for {@linkcode createLocalLimiter}. */
export interface LocalLimiterOptions {
  /**
   * Identities tracked at most; past this, expired entries are swept and then
   * the oldest are forgotten (forgetting only ever admits more). @default 10_000
   */
  maxEntries?: number;
}

/** A per-process limiter for one policy. */
export interface LocalLimiter {
  limit(identity: string, now: number): LimitDecision;
  /** Identities currently tracked. */
  readonly size: number;
}

type State =
  | { kind: "window"; window: number; current: number; previous: number }
  | { kind: "bucket"; refilledAt: number; tokens: number };

/** Builds an in-memory limiter for `policy`; the caller supplies the clock on each call. */
export function createLocalLimiter(
  policy: RateLimitPolicy,
  options: LocalLimiterOptions = {},
): LocalLimiter {
  const maxEntries = options.maxEntries ?? 10_000;
  const windowMs = Math.round(policy.window_s * 1000);
  const limit = policy.limit;
  const refill = policy.refill ?? policy.limit;
  const states = new Map<string, State>();

  // An entry is dead once nothing it holds can affect a decision: two windows
  // for the sliding window (the previous one is weighted in), one for the
  // fixed window, a full refill for the bucket.
  function expired(state: State, now: number): boolean {
    if (state.kind === "bucket") {
      return now >= state.refilledAt + Math.ceil((limit - state.tokens) / refill) * windowMs;
    }
    const span = policy.algorithm === "sliding_window" ? 2 : 1;
    return Math.floor(now / windowMs) >= state.window + span;
  }

  function makeRoom(now: number): void {
    if (states.size < maxEntries) return;
    for (const [id, state] of states) if (expired(state, now)) states.delete(id);
    // Map iteration is insertion order: the first keys are the oldest.
    for (const id of states.keys()) {
      if (states.size < maxEntries) break;
      states.delete(id);
    }
  }

  function windowed(identity: string, now: number): LimitDecision {
    const window = Math.floor(now / windowMs);
    const reset = (window + 1) * windowMs;
    let state = states.get(identity);
    if (state?.kind !== "window") {
      makeRoom(now);
      state = { kind: "window", window, current: 0, previous: 0 };
      states.set(identity, state);
    }
    if (state.window !== window) {
      state.previous = state.window === window - 1 ? state.current : 0;
      state.current = 0;
      state.window = window;
    }
    // Same weighting (and flooring) as the sliding-window script.
    const weighted = policy.algorithm === "sliding_window"
      ? Math.floor((1 - (now % windowMs) / windowMs) * state.previous)
      : 0;
    if (weighted + state.current >= limit) return { success: false, remaining: 0, reset };
    state.current += 1;
    return { success: true, remaining: limit - (weighted + state.current), reset };
  }

  function bucket(identity: string, now: number): LimitDecision {
    let state = states.get(identity);
    if (state?.kind !== "bucket") {
      makeRoom(now);
      state = { kind: "bucket", refilledAt: now, tokens: limit };
      states.set(identity, state);
    }
    if (now >= state.refilledAt + windowMs) {
      const refills = Math.floor((now - state.refilledAt) / windowMs);
      state.tokens = Math.min(limit, state.tokens + refills * refill);
      state.refilledAt += refills * windowMs;
    }
    const reset = state.refilledAt + windowMs;
    if (state.tokens < 1) return { success: false, remaining: 0, reset };
    state.tokens -= 1;
    return { success: true, remaining: state.tokens, reset };
  }

  return {
    limit: (identity, now) =>
      policy.algorithm === "token_bucket" ? bucket(identity, now) : windowed(identity, now),
    get size() {
      return states.size;
    },
  };
}
