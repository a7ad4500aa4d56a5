/**
 * Bounded waits. Every wait on a store that may be away (a Redis call, a
 * subscription confirmation, a Postgres page) rejects once its time is over,
 * so an unreachable dependency is noticed and the caller can fall back
 * (breakers decide locally, relays retry) instead of hanging with its callers.
 *
 * @module
 */

/** Races `p` against a timer that rejects with `onTimeout()` after `ms`; the timer is cleared either way. */
export function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** {@linkcode withDeadline} with the error "`what` took longer than `ms`ms". */
export function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return withDeadline(p, ms, () => new Error(`${what} took longer than ${ms}ms`));
}
