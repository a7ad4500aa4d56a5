/**
 * What the gateway answers when a downstream's breaker refuses a call (the
 * seed's graceful degradation):
 *
 * - a read with a cached last good answer → 200 `{"status":"degraded", …,
 *   "cached_data"}` with `X-Degraded: true`, `Warning` and `Age`;
 * - a read without one → 503 problem+json with `Retry-After` = time until the
 *   breaker's next probe;
 * - a write → 202 `{"status":"queued", …, "task_id"}`: the request is durably
 *   enqueued as a task whose type names the breaker, so workers apply it once
 *   the breaker closes (they do not claim it while it is open).
 *
 * @module
 */
import type { Context } from "hono";
import type { AppEnv } from "../app_env.ts";
import type { Breaker } from "../../shared/breakers/breaker.ts";
import { BreakerOpenError } from "../../shared/breakers/errors.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import { problem } from "../problem.ts";
import type { CachedAnswer, ResponseCache } from "./response_cache.ts";

/** Retry hint when an operator forced the breaker open (no probe is scheduled). */
const FORCED_OPEN_RETRY_S = 30;

/** Seconds a caller should wait before retrying, from the breaker's refusal. */
export function retryAfterSeconds(err: BreakerOpenError): number {
  return err.retryAfterMs === null
    ? FORCED_OPEN_RETRY_S
    : Math.max(1, Math.ceil(err.retryAfterMs / 1000));
}

function label(breaker: string): string {
  const words = breaker.replace(/[_-]+/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function cachedData(answer: CachedAnswer): unknown {
  if (!answer.contentType.includes("json")) return answer.body;
  try {
    return JSON.parse(answer.body);
  } catch {
    return answer.body;
  }
}

/** The degraded 200 from a cached answer, or the 503 when there is none. */
export function degradedRead(
  c: Context,
  err: BreakerOpenError,
  answer: CachedAnswer | null,
  now: number,
): Response {
  const retryAfter = retryAfterSeconds(err);
  if (answer === null) {
    return problem(c, {
      code: "downstream-unavailable",
      status: 503,
      title: `${label(err.breaker)} temporarily unavailable`,
      detail:
        `The ${err.breaker} circuit breaker is ${err.state} and no cached answer is available`,
      breaker: err.breaker,
      retry_after: retryAfter,
    }, { "Retry-After": String(retryAfter) });
  }
  const age = Math.max(0, Math.floor((now - answer.storedAt) / 1000));
  return c.json(
    {
      status: "degraded",
      message: `${label(err.breaker)} temporarily unavailable`,
      cached_data: cachedData(answer),
      cached_at: new Date(answer.storedAt).toISOString(),
      age_s: age,
      retry_after: retryAfter,
    },
    200,
    {
      "X-Degraded": "true",
      // Warning is obsolete in RFC 9111 but still what many clients look for;
      // X-Degraded is the header to branch on.
      "Warning": '110 - "Response is Stale"',
      "Age": String(age),
      "Cache-Control": "no-store",
    },
  );
}

/** Options of {@linkcode guardedRead}. */
export interface GuardedReadOptions {
  breaker: Breaker;
  cache: ResponseCache;
  /** Parts that select the answer (path, query, and the principal if answers differ per caller). */
  identity: string[];
  now: () => number;
  /** Per-call timeout. @default the breaker policy's */
  timeoutMs?: number;
}

/**
 * A JSON read through `breaker` with the degraded fallback: on success the
 * answer is cached (in the background) and returned; while the breaker
 * refuses, the cached answer or 503.
 */
export async function guardedRead(
  c: Context,
  o: GuardedReadOptions,
  read: (signal: AbortSignal | undefined) => Promise<unknown>,
): Promise<Response> {
  const key = await o.cache.key(o.breaker.name, ...o.identity);
  let value: unknown;
  try {
    value = await o.breaker.call(read, {
      timeoutMs: o.timeoutMs ?? o.breaker.policy.timeout_ms,
      signal: c.req.raw.signal,
    });
  } catch (err) {
    if (err instanceof BreakerOpenError) {
      return degradedRead(c, err, await o.cache.get(key), o.now());
    }
    throw err;
  }
  const body = JSON.stringify(value);
  void o.cache.put(key, { contentType: "application/json", body });
  return c.body(body, 200, { "Content-Type": "application/json" });
}

/** Options of {@linkcode queuedWrite}. */
export interface QueuedWriteOptions {
  queue: TaskQueue;
  /** Task type whose catalog entry names the refusing breaker. */
  type: string;
  payload: Record<string, unknown>;
  /** Makes a retried request enqueue once (e.g. scoped Idempotency-Key or request id). */
  idempotencyKey: string;
}

/** The 202 for a write accepted while its downstream is open. */
export async function queuedWrite(
  c: Context,
  err: BreakerOpenError,
  o: QueuedWriteOptions,
): Promise<Response> {
  const principal = (c.get("principal") as { sub?: string } | undefined)?.sub;
  const task = await o.queue.enqueue(o.type, o.payload, {
    idempotencyKey: o.idempotencyKey,
    ...(principal === undefined ? {} : { principal }),
  });
  const retryAfter = retryAfterSeconds(err);
  const statusUrl = `/v1/tasks/${task.id}`;
  (c as Context<AppEnv>).set("idempotencyTaskId", task.id);
  return c.json(
    {
      status: "queued",
      message: "Request queued for processing",
      retry_after: retryAfter,
      task_id: task.id,
      status_url: statusUrl,
      breaker: err.breaker,
    },
    202,
    { "Location": statusUrl, "Retry-After": String(retryAfter) },
  );
}
