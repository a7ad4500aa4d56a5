/**
 * Dead-letter queue operations: list (newest first, by type), inspect,
 * replay (one, or all of a type at a bounded rate), purge, expire. Replays
 * keep the task's id and idempotency key and reset its attempts.
 *
 * Retention (`dlqRetentionMs`, 7 days by default): listings and lookups never
 * show an entry older than it, even before {@linkcode expireDead} (run on a
 * schedule by every worker, shared/queue/dlq_expiry.ts) has removed it.
 *
 * @module
 */
import type { QueueContext, TaskInfo, TaskQueue } from "./queue.ts";
import { DLQ_PURGE, DLQ_REPLAY } from "../redis/script_codes.ts";

/** One page of dead tasks. */
export interface DeadPage {
  tasks: TaskInfo[];
  /** Pass as `offset` for the next page; null at the end. */
  nextOffset: number | null;
  /** Entries in the listed set (all types, or the given type). */
  total: number;
}

/** Options for {@linkcode listDead}. */
export interface ListDeadOptions {
  type?: string;
  /** @default 50 */
  limit?: number;
  /** @default 0 */
  offset?: number;
  /** The clock (ms) that decides which entries are past the retention. @default Date.now() */
  now?: number;
}

function dlqKey(ctx: QueueContext, type?: string): string {
  return type ? ctx.keys.dlqByType(type) : ctx.keys.dlq;
}

/** The exclusive lower score bound of entries still within the retention at `now`. */
function retainedFrom(ctx: QueueContext, now = Date.now()): `(${number}` {
  return `(${now - ctx.settings.dlqRetentionMs}`;
}

/** Lists dead tasks, newest first. */
export async function listDead(queue: TaskQueue, options: ListDeadOptions = {}): Promise<DeadPage> {
  const ctx = queue.ctx;
  const limit = Math.min(Math.max(1, options.limit ?? 50), 1000);
  const offset = Math.max(0, options.offset ?? 0);
  const key = dlqKey(ctx, options.type);
  const from = retainedFrom(ctx, options.now);
  const [ids, total] = await Promise.all([
    ctx.redis.zrange<string[]>(key, "+inf", from, {
      byScore: true,
      rev: true,
      offset,
      count: limit,
    }),
    ctx.redis.zcount(key, from, "+inf"),
  ]);
  const infos = await Promise.all(ids.map((id) => queue.getTask(String(id))));
  const tasks = infos.filter((t): t is TaskInfo => t !== null);
  return { tasks, total, nextOffset: offset + ids.length < total ? offset + ids.length : null };
}

/** Where {@linkcode pageDead} resumes: just after this entry. */
export interface DeadCursor {
  /** DLQ score (failed_at, ms) of the last entry returned. */
  score: number;
  /** That entry's task id. */
  id: string;
  /** Entries returned so far with exactly `score` (how many ties to read past). */
  ties: number;
}

/** One page of {@linkcode pageDead}. */
export interface DeadCursorPage {
  tasks: TaskInfo[];
  /** Pass as `after` for the next page; null at the end. */
  next: DeadCursor | null;
  /** Entries in the listed set (all types, or the given type). */
  total: number;
}

/** Options for {@linkcode pageDead}. */
export interface PageDeadOptions {
  type?: string;
  /** @default 50 */
  limit?: number;
  /** @default the newest entry */
  after?: DeadCursor;
  /** The clock (ms) that decides which entries are past the retention. @default Date.now() */
  now?: number;
}

/**
 * Lists dead tasks newest first from a cursor (keyset paging): unlike an
 * offset, tasks dying, replayed or purged between two pages neither repeat
 * nor skip entries of the next page.
 */
export async function pageDead(
  queue: TaskQueue,
  options: PageDeadOptions = {},
): Promise<DeadCursorPage> {
  const ctx = queue.ctx;
  const limit = Math.min(Math.max(1, options.limit ?? 50), 1000);
  const after = options.after;
  const key = dlqKey(ctx, options.type);
  // Members sharing a score come in reverse lexical order. A batch dead-lettered
  // by one script call shares one score, so the ties already returned are read
  // again and dropped by value (a count would shift when one of them is replayed).
  const count = limit + (after?.ties ?? 0) + 1;
  const from = retainedFrom(ctx, options.now);
  const [flat, total] = await Promise.all([
    ctx.redis.zrange<string[]>(key, after?.score ?? "+inf", from, {
      byScore: true,
      rev: true,
      withScores: true,
      offset: 0,
      count,
    }),
    ctx.redis.zcount(key, from, "+inf"),
  ]);
  const read: { id: string; score: number }[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    read.push({ id: String(flat[i]), score: Number(flat[i + 1]) });
  }
  const fresh = after ? read.filter((e) => e.score < after.score || e.id < after.id) : read;
  const entries = fresh.slice(0, limit);
  const more = fresh.length > limit || read.length === count;
  const last = entries.at(-1);
  let next: DeadCursor | null = null;
  if (more && last) {
    const ties = entries.filter((e) => e.score === last.score).length;
    next = {
      score: last.score,
      id: last.id,
      ties: ties + (after?.score === last.score ? after.ties : 0),
    };
  } else if (more && after) {
    // Only ties were read (more arrived at that exact score): read further past them.
    next = { ...after, ties: after.ties + limit };
  }
  const infos = await Promise.all(entries.map((e) => queue.getTask(e.id)));
  const tasks = infos.filter((t): t is TaskInfo => t !== null);
  return { tasks, next, total };
}

/** The task when it is in the dead-letter queue (and within the retention at `now`), else null. */
export async function getDead(
  queue: TaskQueue,
  id: string,
  now = Date.now(),
): Promise<TaskInfo | null> {
  const [score, task] = await Promise.all([
    queue.ctx.redis.zscore(queue.ctx.keys.dlq, id),
    queue.getTask(id),
  ]);
  if (score === null || task === null) return null;
  return Number(score) > now - queue.ctx.settings.dlqRetentionMs ? task : null;
}

/** Entries removed per script call by {@linkcode expireDead}. */
const EXPIRE_BATCH = 500;

/**
 * Removes every entry older than the retention at `now` (with its task
 * hash), in batches of one script call each; returns how many.
 */
export async function expireDead(queue: TaskQueue, now = Date.now()): Promise<number> {
  const ctx = queue.ctx;
  let total = 0;
  for (;;) {
    const removed = Number(
      await ctx.scripts.dlqExpire.run<number>(
        [ctx.keys.dlq, ctx.keys.stats],
        [ctx.keys.prefix, now, ctx.settings.dlqRetentionMs, EXPIRE_BATCH],
      ),
    );
    total += removed;
    if (removed < EXPIRE_BATCH) return total;
  }
}

/** Replays the given dead tasks; returns the ids that were in the DLQ and are queued again. */
export async function replayDead(queue: TaskQueue, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const ctx = queue.ctx;
  const k = ctx.keys;
  const codes = await ctx.scripts.dlqReplay.run<number[]>(
    [k.ready("high"), k.ready("normal"), k.ready("low"), k.dlq, k.stats],
    [
      k.prefix,
      k.notifyChannel,
      ctx.settings.idempotencyWindowMs,
      JSON.stringify(ids),
      ctx.feedSpec,
    ],
  );
  return ids.filter((_, i) => Number(codes[i]) === DLQ_REPLAY.replayed);
}

/** Options for {@linkcode replayDeadByType}. */
export interface ReplayByTypeOptions {
  /** Tasks replayed per second, so a replay does not flood a recovering downstream. @default 100 */
  perSecond?: number;
  /** Stop after this many. @default all */
  max?: number;
  signal?: AbortSignal;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Replays the dead tasks of `type` that were in the DLQ when the call started,
 * oldest first, at a bounded rate; returns how many. A task that dies again
 * during the call re-enters the DLQ with a later score (its new failure time)
 * and is not replayed a second time: the call reads only up to the newest
 * score it saw at the start, and never replays an id twice.
 */
export async function replayDeadByType(
  queue: TaskQueue,
  type: string,
  options: ReplayByTypeOptions = {},
): Promise<number> {
  const perSecond = options.perSecond ?? 100;
  if (!(perSecond > 0)) throw new RangeError(`perSecond must be positive, got ${perSecond}`);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const batch = Math.max(1, Math.min(500, Math.ceil(perSecond / 10)));
  const max = options.max ?? Infinity;
  const key = queue.ctx.keys.dlqByType(type);
  const newest = await queue.ctx.redis.zrange<(string | number)[]>(key, 0, 0, {
    rev: true,
    withScores: true,
  });
  if (newest.length < 2) return 0;
  const cutoff = Number(newest[1]);
  const seen = new Set<string>();
  let done = 0;
  while (done < max && !options.signal?.aborted) {
    // Past the ids already replayed that died again with the cutoff's exact score.
    const read = await queue.ctx.redis.zrange<string[]>(key, "-inf", cutoff, {
      byScore: true,
      offset: 0,
      count: Math.min(batch, max - done) + seen.size,
    });
    const ids = read.map(String).filter((id) => !seen.has(id)).slice(
      0,
      Math.min(batch, max - done),
    );
    if (ids.length === 0) break;
    const started = Date.now();
    const replayed = await replayDead(queue, ids);
    for (const id of ids) seen.add(id);
    done += replayed.length;
    if (replayed.length === 0) break; // entries vanished under us (purged elsewhere)
    const budget = (replayed.length / perSecond) * 1000;
    const wait = budget - (Date.now() - started);
    if (wait > 0) await sleep(wait);
  }
  return done;
}

/** Deletes the given dead tasks; returns the ids that were purged. */
export async function purgeDead(queue: TaskQueue, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const ctx = queue.ctx;
  const codes = await ctx.scripts.dlqPurge.run<number[]>(
    [ctx.keys.dlq, ctx.keys.stats],
    [ctx.keys.prefix, JSON.stringify(ids)],
  );
  return ids.filter((_, i) => Number(codes[i]) === DLQ_PURGE.purged);
}

/** How many tasks are dead-lettered (of `type` when given). */
export async function countDead(queue: TaskQueue, type?: string): Promise<number> {
  return Number(await queue.ctx.redis.zcard(dlqKey(queue.ctx, type)));
}

/** Deletes every dead task (of `type` when given); returns how many. */
export async function purgeAllDead(queue: TaskQueue, type?: string): Promise<number> {
  let total = 0;
  while (true) {
    const ids = await queue.ctx.redis.zrange<string[]>(dlqKey(queue.ctx, type), 0, 499);
    if (ids.length === 0) return total;
    total += (await purgeDead(queue, ids.map(String))).length;
  }
}
