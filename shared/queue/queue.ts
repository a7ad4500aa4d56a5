/**
 * The queue client: enqueue side (edge and workers) and task inspection.
 * Every write is one Lua script call; see shared/redis/scripts/*.lua.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { context, propagation } from "@opentelemetry/api";
import {
  liveFeedKeys,
  PRIORITIES,
  type Priority,
  type QueueKeys,
  queueKeys,
} from "../redis/keys.ts";
import { type LoadedScript, loadScripts, type ScriptName } from "../redis/scripts.ts";
import type { TcpScriptTransport } from "../redis/tcp_scripts.ts";
import type { TaskCatalog } from "../tasks/catalog.ts";
import { canonicalJson, NotSerializableError } from "./canonical_json.ts";
import { sha256Hex } from "../hash.ts";
import {
  type FieldProblem,
  PayloadTooLargeError,
  TaskValidationError,
  UnknownTaskTypeError,
} from "./errors.ts";
import { ENQUEUE } from "../redis/script_codes.ts";

/** Queue-wide settings (see shared/config/queue.ts for their variables). */
export interface QueueSettings {
  /** Key namespace. @default "pc" */
  namespace: string;
  /** A repeated idempotency key within this window returns the first task. @default 3_600_000 */
  idempotencyWindowMs: number;
  /** Serialised payload limit. @default 262_144 */
  maxPayloadBytes: number;
  /** Finished tasks expire after this. @default 86_400_000 */
  keepFinishedMs: number;
  /** Dead-letter retention. @default 604_800_000 */
  dlqRetentionMs: number;
  /** Dead-letter cap; beyond it the oldest entries are evicted WITH an alert. @default 10_000 */
  dlqCap: number;
  /**
   * Task status changes on the live feed's `tasks` topic, published by the
   * queue's scripts in the same step as each change; `null` turns that off.
   */
  taskFeed: TaskFeedSettings | null;
  /**
   * Every dead-lettered task also queues a {@linkcode DEAD_LETTER_ALERT_TYPE}
   * task in the same script step (shared/alerts/); needs that type in the
   * catalog. @default false
   */
  deadLetterAlerts: boolean;
}

/** How the queue's scripts publish task status changes (shared/ws/ reads them). */
export interface TaskFeedSettings {
  /** Recorded as each message's `origin` (diagnostics). */
  origin: string;
  /** Entries kept in the topic's history; the same for every publisher of the topic. */
  historyMaxLen: number;
  /** History entries older than this are trimmed, ms. */
  historyMaxAgeMs: number;
}

/** Defaults for {@linkcode QueueSettings}. */
export const DEFAULT_QUEUE_SETTINGS: QueueSettings = {
  namespace: "pc",
  idempotencyWindowMs: 3_600_000,
  maxPayloadBytes: 256 * 1024,
  keepFinishedMs: 86_400_000,
  dlqRetentionMs: 7 * 86_400_000,
  dlqCap: 10_000,
  taskFeed: { origin: "queue", historyMaxLen: 10_000, historyMaxAgeMs: 120_000 },
  deadLetterAlerts: false,
};

/** The task type that delivers alerts (workers/tasks/deliver_alert.ts). */
export const DEAD_LETTER_ALERT_TYPE = "deliver_alert";

/**
 * The JSON spec the scripts' `alert_open()` reads
 * (includes/dead_letter_alert.lua); "" when dead-letter alerts are off.
 */
export function deadLetterAlertSpec(
  keys: QueueKeys,
  catalog: TaskCatalog,
  settings: Pick<QueueSettings, "deadLetterAlerts" | "idempotencyWindowMs">,
): string {
  if (!settings.deadLetterAlerts) return "";
  const def = Object.hasOwn(catalog, DEAD_LETTER_ALERT_TYPE)
    ? catalog[DEAD_LETTER_ALERT_TYPE]
    : undefined;
  if (!def) {
    throw new TypeError(`deadLetterAlerts needs "${DEAD_LETTER_ALERT_TYPE}" in the catalog`);
  }
  return JSON.stringify({
    type: DEAD_LETTER_ALERT_TYPE,
    priority: def.priority,
    ready: keys.ready(def.priority),
    notify: keys.notifyChannel,
    window_ms: settings.idempotencyWindowMs,
    max_attempts: def.maxAttempts,
    timeout_ms: def.timeoutMs,
  });
}

/** The JSON spec the scripts' `feed_open()` reads (includes/feed.lua); "" when off. */
export function taskFeedSpec(namespace: string, feed: TaskFeedSettings | null): string {
  if (feed === null) return "";
  const keys = liveFeedKeys(namespace);
  return JSON.stringify({
    history: keys.history("tasks"),
    meta: keys.historyMeta("tasks"),
    channel: keys.channel,
    topic: "tasks",
    origin: feed.origin,
    max_len: feed.historyMaxLen,
    max_age_ms: feed.historyMaxAgeMs,
  });
}

/** Options of one enqueue. */
export interface EnqueueOptions {
  priority?: Priority;
  /** Explicit key; default: SHA-256 of type + canonical JSON of the payload. */
  idempotencyKey?: string;
  delayMs?: number;
  /** Absolute run time (Date or epoch ms). */
  runAt?: Date | number;
  /** @default the type's maxAttempts (3) */
  maxAttempts?: number;
  /** @default the type's timeoutMs */
  timeoutMs?: number;
  /**
   * Who asked for the task (a principal's `sub`), recorded on it: only that
   * principal and admins see its `result` and `last_error` through the API.
   * @default none (system tasks: schedules, handlers)
   */
  principal?: string;
}

/** Result of an enqueue: `created` is false when the idempotency key was already used. */
export interface EnqueueResult {
  id: string;
  created: boolean;
}

/** Task status. */
export type TaskStatus = "pending" | "running" | "retrying" | "succeeded" | "dead";

/** What `getTask` returns. */
export interface TaskInfo {
  id: string;
  type: string;
  status: TaskStatus;
  payload: unknown;
  priority: Priority;
  attempts: number;
  maxAttempts: number;
  timeoutMs: number;
  idempotencyKey: string;
  createdAt: number;
  updatedAt: number;
  runAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  failedAt: number | null;
  lastError: string | null;
  dlqReason: string | null;
  result: unknown;
  /** The enqueuing principal ({@linkcode EnqueueOptions.principal}), if any. */
  principal: string | null;
  traceparent: string | null;
  replays: number;
}

/** Everything the queue functions share. */
export interface QueueContext {
  redis: Redis;
  keys: QueueKeys;
  scripts: Record<ScriptName, LoadedScript>;
  /** The TCP transport the scripts use, if any (the runner subscribes over it too). */
  tcp: TcpScriptTransport | null;
  catalog: TaskCatalog;
  settings: QueueSettings;
  /** Last ARGV of every status-changing script: see {@linkcode taskFeedSpec}. */
  feedSpec: string;
  /** ARGV of the scripts that dead-letter: see {@linkcode deadLetterAlertSpec}. */
  alertSpec: string;
}

/** One item of {@linkcode TaskQueue.enqueueMany}. */
export interface EnqueueItem {
  type: string;
  payload: unknown;
  options?: EnqueueOptions;
}

const IDEM_KEY = /^[\x21-\x7e]{1,200}$/;

function problemsFromZod(issues: { path: PropertyKey[]; message: string }[]): FieldProblem[] {
  return issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
}

/**
 * Validates one item and builds the task as enqueue.lua takes it (its new id
 * included); throws the typed validation errors before anything is written.
 */
export async function prepareTask(ctx: QueueContext, item: EnqueueItem) {
  const { type, options = {} } = item;
  // Own properties only: "toString" and friends are not task types.
  const def = Object.hasOwn(ctx.catalog, type) ? ctx.catalog[type] : undefined;
  if (!def) throw new UnknownTaskTypeError(type, Object.keys(ctx.catalog));
  const optionProblems: FieldProblem[] = [];
  const checkInt = (name: keyof EnqueueOptions, v: unknown, min: number) => {
    if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= min)) {
      optionProblems.push({ path: name, message: `must be an integer ≥ ${min}` });
    }
  };
  checkInt("delayMs", options.delayMs, 0);
  checkInt("maxAttempts", options.maxAttempts, 1);
  checkInt("timeoutMs", options.timeoutMs, 1);
  if (options.priority !== undefined && !PRIORITIES.includes(options.priority)) {
    optionProblems.push({ path: "priority", message: `must be one of ${PRIORITIES.join(", ")}` });
  }
  if (options.idempotencyKey !== undefined && !IDEM_KEY.test(options.idempotencyKey)) {
    optionProblems.push({
      path: "idempotencyKey",
      message: "must be 1-200 printable ASCII characters without spaces",
    });
  }
  let runAt: number | null = null;
  if (options.runAt !== undefined) {
    runAt = options.runAt instanceof Date ? options.runAt.getTime() : options.runAt;
    if (!Number.isFinite(runAt)) {
      optionProblems.push({ path: "runAt", message: "must be a valid time" });
    }
  }
  if (optionProblems.length > 0) throw new TaskValidationError(type, optionProblems, "options");

  const parsed = def.schema.safeParse(item.payload);
  if (!parsed.success) throw new TaskValidationError(type, problemsFromZod(parsed.error.issues));
  let payload: string;
  try {
    payload = canonicalJson(parsed.data);
  } catch (err) {
    if (err instanceof NotSerializableError) {
      throw new TaskValidationError(type, [{ path: err.path, message: err.reason }]);
    }
    throw err;
  }
  const bytes = new TextEncoder().encode(payload).length;
  if (bytes > ctx.settings.maxPayloadBytes) {
    throw new PayloadTooLargeError(type, bytes, ctx.settings.maxPayloadBytes);
  }
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return {
    id: crypto.randomUUID(),
    type,
    payload,
    priority: options.priority ?? def.priority,
    idem: options.idempotencyKey ?? `sha256:${await sha256Hex(`${type}\n${payload}`)}`,
    delay_ms: options.delayMs ?? 0,
    run_at: runAt,
    max_attempts: options.maxAttempts ?? def.maxAttempts,
    timeout_ms: options.timeoutMs ?? def.timeoutMs,
    traceparent: carrier.traceparent ?? null,
    principal: options.principal ?? null,
  };
}

/** A task as enqueue.lua takes it (one item of its ARGV[4]). */
export type PreparedTask = Awaited<ReturnType<typeof prepareTask>>;

/**
 * KEYS and ARGV of one enqueue.lua call; also the first five of each of the
 * scripts that inline it (enqueue_slot.lua, the edge's enqueue_keyed.lua).
 */
export function enqueueCall(
  ctx: QueueContext,
  tasks: PreparedTask[],
): { keys: string[]; args: (string | number)[] } {
  const k = ctx.keys;
  return {
    keys: [k.ready("high"), k.ready("normal"), k.ready("low"), k.delayed, k.stats],
    args: [
      k.prefix,
      ctx.settings.idempotencyWindowMs,
      k.notifyChannel,
      JSON.stringify(tasks),
      ctx.feedSpec,
    ],
  };
}

/**
 * HGETALL as an object. With `automaticDeserialization: false` (shared/deps.ts)
 * the SDK hands back Redis's flat [field, value, …] array; with it on, an object.
 */
export async function hashGetAll(redis: Redis, key: string): Promise<Record<string, string>> {
  const reply = (await redis.hgetall(key)) as unknown;
  if (Array.isArray(reply)) {
    const out: Record<string, string> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
    return out;
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((reply ?? {}) as Record<string, unknown>)) {
    out[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return out;
}

function num(v: unknown): number | null {
  if (v === undefined || v === null || v === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function json(v: unknown): unknown {
  if (typeof v !== "string") return v ?? null;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

/** The queue client. */
export interface TaskQueue {
  /**
   * The queue's internals, for the queue's own modules (leases, DLQ, the
   * runner). Routes and other callers use the methods below and the
   * functions of `dlq.ts` instead.
   */
  readonly ctx: QueueContext;
  /** The task catalog the queue validates against. */
  readonly catalog: TaskCatalog;
  /** The queue's settings (limits, windows). */
  readonly settings: QueueSettings;
  enqueue(type: string, payload: unknown, options?: EnqueueOptions): Promise<EnqueueResult>;
  /** Validates every item first (all or nothing), then writes them in ONE script call. */
  enqueueMany(items: EnqueueItem[]): Promise<EnqueueResult[]>;
  getTask(id: string): Promise<TaskInfo | null>;
  /** Counters kept in Redis (enqueued, succeeded, retried, dead, …). */
  stats(): Promise<Record<string, number>>;
}

/**
 * Builds the queue client over an Upstash Redis client. With `scripts`, every
 * script call (enqueue, claim, ack, fail, leases, DLQ) goes over that TCP
 * transport instead, and only plain reads use `redis` (workers with
 * `REDIS_TCP_URL`: docs/queue.md, "Transports").
 */
export function createQueue(
  redis: Redis,
  catalog: TaskCatalog,
  settings: Partial<QueueSettings> = {},
  scripts?: TcpScriptTransport,
): TaskQueue {
  const full = { ...DEFAULT_QUEUE_SETTINGS, ...settings };
  const ctx: QueueContext = {
    redis,
    keys: queueKeys(full.namespace),
    scripts: loadScripts(scripts ?? redis),
    tcp: scripts ?? null,
    catalog,
    settings: full,
    feedSpec: taskFeedSpec(full.namespace, full.taskFeed),
    alertSpec: deadLetterAlertSpec(queueKeys(full.namespace), catalog, full),
  };
  const k = ctx.keys;

  async function enqueueMany(items: EnqueueItem[]): Promise<EnqueueResult[]> {
    if (items.length === 0) return [];
    const prepared = await Promise.all(items.map((item) => prepareTask(ctx, item)));
    const call = enqueueCall(ctx, prepared);
    const out = await ctx.scripts.enqueue.run<(string | number)[]>(call.keys, call.args);
    const results: EnqueueResult[] = [];
    for (let i = 0; i < out.length; i += 2) {
      results.push({ id: String(out[i]), created: Number(out[i + 1]) === ENQUEUE.created });
    }
    return results;
  }

  return {
    ctx,
    catalog,
    settings: full,
    enqueueMany,
    async enqueue(type, payload, options) {
      const [result] = await enqueueMany([{ type, payload, options }]);
      return result!;
    },
    async getTask(id) {
      const h = await hashGetAll(redis, k.task(id));
      if (!h.id) return null;
      return {
        id: h.id,
        type: h.type!,
        status: h.status as TaskStatus,
        payload: json(h.payload),
        priority: h.priority as Priority,
        attempts: num(h.attempts) ?? 0,
        maxAttempts: num(h.max_attempts) ?? 0,
        timeoutMs: num(h.timeout_ms) ?? 0,
        idempotencyKey: h.idem ?? "",
        createdAt: num(h.created_at) ?? 0,
        updatedAt: num(h.updated_at) ?? 0,
        runAt: num(h.run_at),
        startedAt: num(h.started_at),
        finishedAt: num(h.finished_at),
        failedAt: num(h.failed_at),
        lastError: h.last_error ?? null,
        dlqReason: h.dlq_reason ?? null,
        result: h.result === undefined ? null : json(h.result),
        principal: h.principal ?? null,
        traceparent: h.traceparent ?? null,
        replays: num(h.replays) ?? 0,
      };
    },
    async stats() {
      const h = await hashGetAll(redis, k.stats);
      return Object.fromEntries(Object.entries(h).map(([a, b]) => [a, Number(b)]));
    },
  };
}
