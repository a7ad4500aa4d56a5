/**
 * `memoRouter(inner)`: Hono's router with its answers remembered per method
 * and path. Matching the edge's ~100 routes (Hono's SmartRouter falls back to
 * its trie router for them) is a visible share of a cheap request's CPU
 * (docs/benchmarks.md, issue 21), and the answer for a given method and path
 * never changes once the routes are registered: Hono only reads it.
 *
 * Bounded: at `maxEntries` remembered paths the memo starts over, so paths
 * with ids in them (`/v1/leads/<uuid>`) cost a lookup and an insert, never
 * unbounded memory. Adding a route clears it (Hono's own routers refuse
 * routes after the first match anyway).
 *
 * @module
 */
import type { Result, Router } from "hono/router";

/** Remembered paths before the memo starts over. */
export const MEMO_MAX_ENTRIES = 1024;

/** Wraps `inner` with a bounded memo of `match()`. */
export function memoRouter<T>(inner: Router<T>, maxEntries = MEMO_MAX_ENTRIES): Router<T> {
  const memo = new Map<string, Result<T>>();
  return {
    name: `memo(${inner.name})`,
    add(method, path, handler) {
      memo.clear();
      inner.add(method, path, handler);
    },
    match(method, path) {
      const key = `${method} ${path}`;
      let result = memo.get(key);
      if (result === undefined) {
        result = inner.match(method, path);
        if (memo.size >= maxEntries) memo.clear();
        memo.set(key, result);
      }
      return result;
    },
  };
}
