/**
 * Lists tasks by the queue's own indexes, newest first, one Lua call per page
 * (shared/redis/scripts/list_tasks.lua): no KEYS or SCAN of the keyspace and
 * no index written for it, so enqueue, claim, ack and fail cost what they did.
 *
 * The listable states are the indexes that exist (docs/queue.md#listing-tasks):
 * `ready` (the three priority lists, claim order), `delayed` (new delayed
 * tasks and retries, by due time), `running` (the leases, by lease expiry)
 * and `dead` (the DLQ, by failure time, within its retention). Succeeded
 * tasks are not indexed (each hash only expires after `keepFinishedMs`), so
 * they cannot be listed without scanning and are not offered.
 *
 * @module
 */
import { PRIORITIES, type Priority } from "../redis/keys.ts";
import type { TaskQueue, TaskStatus } from "./queue.ts";

/** The states {@linkcode listTasks} can list: one per queue index. */
export const LISTABLE_STATES = ["ready", "delayed", "running", "dead"] as const;
/** A listable state. */
export type ListableState = (typeof LISTABLE_STATES)[number];

/**
 * Index entries one page inspects at most when a type filter skips others:
 * pages stay bounded, so a filtered page may hold fewer than `limit` tasks
 * (even none) and still have a next page.
 */
export const TYPE_FILTER_BUDGET = 1000;

/** Where a page resumes: after entry `id` (score `score`) of index `key` (1-based). */
export interface TaskCursor {
  key: number;
  id: string;
  score: number;
}

/** A task as a listing shows it: no payload, result or errors. */
export interface TaskSummary {
  id: string;
  type: string;
  status: TaskStatus;
  priority: Priority;
  attempts: number;
  maxAttempts: number;
  createdAt: number;
  updatedAt: number;
  runAt: number | null;
  failedAt: number | null;
  /** The enqueuing principal's `sub`, if any. */
  principal: string | null;
}

/** Options of {@linkcode listTasks}. */
export interface ListTasksOptions {
  state: ListableState;
  /** Only this ready list (state `ready` only). */
  priority?: Priority;
  type?: string;
  /** @default 50 (1..500) */
  limit?: number;
  after?: TaskCursor;
  /** The clock (ms) that decides which DLQ entries are past the retention. @default Date.now() */
  now?: number;
}

/** One page of {@linkcode listTasks}. */
export interface TaskPage {
  tasks: TaskSummary[];
  /** Pass as `after` for the next page; null at the end. */
  next: TaskCursor | null;
  /** Entries in the listed indexes; null when a type filter makes it a count of the whole set. */
  total: number | null;
}

const ROW_LENGTH = 11;

const num = (v: unknown) => (v === "" || v === null || v === undefined ? null : Number(v));

function indexKeys(queue: TaskQueue, options: ListTasksOptions): string[] {
  const keys = queue.ctx.keys;
  switch (options.state) {
    case "ready":
      return (options.priority ? [options.priority] : PRIORITIES).map((p) => keys.ready(p));
    case "delayed":
      return [keys.delayed];
    case "running":
      return [keys.leases];
    case "dead":
      // The DLQ keeps a per-type index: a type filter reads it instead of skipping.
      return [options.type ? keys.dlqByType(options.type) : keys.dlq];
  }
}

/** Lists one page of tasks in `options.state`, newest first. */
export async function listTasks(queue: TaskQueue, options: ListTasksOptions): Promise<TaskPage> {
  const ctx = queue.ctx;
  const limit = Math.min(Math.max(1, Math.trunc(options.limit ?? 50)), 500);
  const keys = indexKeys(queue, options);
  const filterType = options.type !== undefined && options.state !== "dead" ? options.type : "";
  const minScore = options.state === "dead"
    ? `(${(options.now ?? Date.now()) - ctx.settings.dlqRetentionMs}`
    : "-inf";
  const after = options.after;
  if (after !== undefined && (after.key < 1 || after.key > keys.length)) {
    throw new RangeError(`Cursor key ${after.key} is outside 1..${keys.length}`);
  }
  const reply = await ctx.scripts.listTasks.run<unknown[]>(keys, [
    ctx.keys.prefix,
    options.state === "ready" ? "list" : "zset",
    limit,
    filterType === "" ? limit : Math.max(limit, TYPE_FILTER_BUDGET),
    filterType,
    after?.key ?? 0,
    after?.id ?? "",
    after?.score ?? 0,
    minScore,
  ]);
  const [nextKey, nextId, nextScore, total] = reply;
  const tasks: TaskSummary[] = [];
  for (let i = 4; i + ROW_LENGTH <= reply.length; i += ROW_LENGTH) {
    const r = reply.slice(i, i + ROW_LENGTH).map((v) => String(v));
    tasks.push({
      id: r[0]!,
      type: r[1]!,
      status: r[2]! as TaskStatus,
      priority: r[3]! as Priority,
      attempts: Number(r[4] || 0),
      maxAttempts: Number(r[5] || 0),
      createdAt: Number(r[6]),
      updatedAt: Number(r[7]),
      runAt: num(r[8]),
      failedAt: num(r[9]),
      principal: r[10] === "" ? null : r[10]!,
    });
  }
  return {
    tasks,
    next: Number(nextKey) === 0
      ? null
      : { key: Number(nextKey), id: String(nextId), score: Number(nextScore) },
    total: filterType === "" ? Number(total) : null,
  };
}
