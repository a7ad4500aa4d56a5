/**
 * The last good answer of each breaker-guarded read, kept in Redis with the
 * time it was stored, so a read whose downstream breaker is open can still be
 * answered (marked degraded) by any edge instance.
 *
 * Bounded, because every distinct query would otherwise stay in the Redis
 * that also holds the queue, limits and feed: each entry expires after
 * `ttlMs` (short: minutes, not a day), bodies above `maxBytes` are not kept,
 * and each breaker keeps at most `maxEntries` answers — storing one more
 * evicts the least recently stored (put_answer.lua, one script call). Callers
 * key answers by the canonical form of a request (validated query, sorted
 * parameters), so spellings of one query share one entry. Cache I/O never
 * fails a request: errors are logged and treated as a miss.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { sha256Hex } from "../../shared/hash.ts";
import type { Logger } from "../../shared/log.ts";
import { degradedCacheKeys } from "../../shared/redis/keys.ts";
import { bindScript } from "../../shared/redis/scripts.ts";
import putAnswer from "./put_answer.lua" with { type: "text" };

/** One cached answer. */
export interface CachedAnswer {
  /** Epoch ms when it was stored. */
  storedAt: number;
  contentType: string;
  /** The body as text (only text and JSON bodies are cached). */
  body: string;
}

/** Options of {@linkcode createResponseCache}. */
export interface ResponseCacheOptions {
  redis: Redis;
  ttlMs: number;
  /** Larger bodies are not cached. @default 262_144 */
  maxBytes?: number;
  /** Answers kept per breaker; the least recently stored go first. @default 1000 */
  maxEntries?: number;
  namespace?: string;
  /**
   * A key written less than this long ago by this process is not written
   * again: a busy read would otherwise add one Redis write per request for
   * an answer that changes little. @default 1000
   */
  minRewriteMs?: number;
  log?: Logger;
  now?: () => number;
}

/** Where one answer lives: its entry and its breaker's index. */
export interface CacheKey {
  entry: string;
  index: string;
}

/** Stores and reads last good answers. */
export interface ResponseCache {
  readonly maxBytes: number;
  /** The cache key of a request identity (breaker + any parts that select the answer). */
  key(breaker: string, ...identity: string[]): Promise<CacheKey>;
  put(key: CacheKey, answer: Omit<CachedAnswer, "storedAt">): Promise<void>;
  get(key: CacheKey): Promise<CachedAnswer | null>;
}

/** True for content types whose body is stored as text. */
export function isCacheableType(contentType: string | null): boolean {
  const t = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return t === "application/json" || /^application\/[\w.+-]+\+json$/.test(t) ||
    t.startsWith("text/");
}

/** Builds the cache; validates options once. */
export function createResponseCache(o: ResponseCacheOptions): ResponseCache {
  if (!Number.isInteger(o.ttlMs) || o.ttlMs <= 0) {
    throw new RangeError(`ResponseCache ttlMs must be a positive integer, got ${o.ttlMs}`);
  }
  const maxBytes = o.maxBytes ?? 262_144;
  const maxEntries = o.maxEntries ?? 1000;
  if (!Number.isInteger(maxEntries) || maxEntries <= 0) {
    throw new RangeError(`ResponseCache maxEntries must be a positive integer, got ${maxEntries}`);
  }
  const keys = degradedCacheKeys(o.namespace);
  const script = bindScript(o.redis, putAnswer, { name: "degraded_put_answer" });

  const now = o.now ?? Date.now;
  const minRewriteMs = o.minRewriteMs ?? 1000;
  /** Key → when this process last wrote it (bounded: cleared when large). */
  const written = new Map<string, number>();
  return {
    maxBytes,
    key: async (breaker, ...identity) => ({
      entry: keys.entry(breaker, await sha256Hex(JSON.stringify(identity))),
      index: keys.index(breaker),
    }),
    async put(key, answer) {
      const t = now();
      const last = written.get(key.entry);
      if (last !== undefined && t - last < minRewriteMs) return;
      if (new TextEncoder().encode(answer.body).byteLength > maxBytes) return;
      if (written.size >= 10_000) written.clear();
      written.set(key.entry, t);
      const value = JSON.stringify({ ...answer, storedAt: t });
      try {
        await script.run([key.entry, key.index], [value, o.ttlMs, maxEntries]);
      } catch (err) {
        o.log?.warn("degraded cache write failed", { err });
      }
    },
    async get(key) {
      try {
        const raw = await o.redis.get<string>(key.entry);
        if (typeof raw !== "string") return null;
        const v = JSON.parse(raw) as Partial<CachedAnswer>;
        if (
          typeof v.storedAt !== "number" || typeof v.body !== "string" ||
          typeof v.contentType !== "string"
        ) return null;
        return { storedAt: v.storedAt, contentType: v.contentType, body: v.body };
      } catch (err) {
        o.log?.warn("degraded cache read failed", { err });
        return null;
      }
    },
  };
}
