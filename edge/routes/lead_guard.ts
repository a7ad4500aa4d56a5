/**
 * The `database` breaker around the lead routes' queries (edge/routes/leads.ts).
 * Without a {@linkcode Guard} queries run straight; with one:
 *
 * - reads keep their last good answer (`guardedRead`): while the breaker
 *   refuses, that answer marked degraded, or 503 `downstream-unavailable`
 *   with `Retry-After`;
 * - writes the breaker refuses are queued (`queuedWrite`: 202) as
 *   `apply_lead_write` tasks, applied by a worker once it closes
 *   (workers/tasks/lead_write.ts); one task per Idempotency-Key (scoped by
 *   principal), else per request id and body;
 * - a failing query (connection, timeout, server error) is 503
 *   `dependency-unavailable` with `Retry-After`, not a 500. Refusals of the
 *   domain (validation, 404, 409 `lead-exists` / `illegal-transition`) pass
 *   through unchanged and count as successes: the database answered.
 *
 * Writes get no call timeout (only a probe is capped at the breaker's lease):
 * a transaction left running could still commit after a 503, and the
 * client's retry would apply it twice. Reads use the policy's `timeout_ms`.
 * A read's 404 counts as a success only through the policy's
 * `exclude_client_errors` (the `database` default): guardedRead classifies
 * what the read throws.
 *
 * @module
 */
import type { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Breaker } from "../../shared/breakers/breaker.ts";
import { BreakerOpenError } from "../../shared/breakers/errors.ts";
import { sha256Hex } from "../../shared/hash.ts";
import { canonicalJson } from "../../shared/queue/canonical_json.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import type { ApplyLeadWritePayload } from "../../shared/tasks/catalog.ts";
import type { AppEnv } from "../app_env.ts";
import { guardedRead, queuedWrite, retryAfterSeconds } from "../degraded/fallbacks.ts";
import { problem } from "../problem.ts";
import type { ResponseCache } from "../degraded/response_cache.ts";
import { databaseFailed, isDatabaseFailure } from "./database_failure.ts";

type LeadWrite = z.input<typeof ApplyLeadWritePayload>;
type Ctx = Context<AppEnv>;

/** The breaker and the fallbacks' collaborators, when the routes are guarded. */
export interface Guard {
  breaker: Breaker;
  queue: TaskQueue;
  cache: ResponseCache;
  now: () => number;
}

/**
 * A read: through guardedRead when guarded, else straight; failures become
 * 503. `identity` is the cache identity of its answer (guardedRead).
 */
export async function runRead(
  c: Ctx,
  { guard: g, identity }: { guard: Guard | null; identity: string[] },
  fn: () => Promise<unknown>,
): Promise<Response> {
  try {
    if (g === null) return c.json(await fn(), 200);
    return await guardedRead(c, { breaker: g.breaker, cache: g.cache, now: g.now, identity }, fn);
  } catch (err) {
    return databaseFailed(c, err, "The lead store did not answer");
  }
}

/** The queue key of a refused write: one task per client key, else per request. */
async function queueKey(c: Ctx, payload: LeadWrite): Promise<string> {
  const principal = c.get("principal").sub;
  const clientKey = c.req.header("idempotency-key");
  const scope = payload.op === "create" ? "create" : `update:${payload.lead_id}`;
  if (clientKey !== undefined) {
    return `lead_write:key:${await sha256Hex(JSON.stringify([principal, scope, clientKey]))}`;
  }
  // The body is part of it: a client-supplied X-Request-Id may be reused for another write.
  const request = JSON.stringify([principal, c.get("requestId"), canonicalJson(payload)]);
  return `lead_write:req:${await sha256Hex(request)}`;
}

/**
 * A write: through the breaker when guarded (queued while it refuses), else
 * straight; failures become 503. `payload` is the `apply_lead_write` task
 * queued in its place; `null` for writes that are not queued (a transition
 * is decided against the lead's state at the time): 503 with `Retry-After`
 * while the breaker refuses. Domain refusals leave the breaker call as values, so
 * they never count as failures whatever the policy says.
 */
export async function runWrite<T>(
  c: Ctx,
  { guard: g, payload }: { guard: Guard | null; payload: LeadWrite | null },
  fn: () => Promise<T>,
): Promise<T | Response> {
  const call = async (): Promise<{ value: T } | { refusal: unknown }> => {
    try {
      return { value: await fn() };
    } catch (err) {
      if (isDatabaseFailure(err)) throw err;
      return { refusal: err };
    }
  };
  let out;
  try {
    out = g === null ? await call() : await g.breaker.call(call, { signal: c.req.raw.signal });
  } catch (err) {
    if (g === null || !(err instanceof BreakerOpenError)) {
      return databaseFailed(c, err, "The lead store did not answer");
    }
    if (payload === null) {
      const retryAfter = retryAfterSeconds(err);
      return problem(c, {
        code: "downstream-unavailable",
        status: 503,
        title: "Database temporarily unavailable",
        detail:
          `The ${err.breaker} circuit breaker is ${err.state}: nothing was changed; retry after Retry-After`,
        breaker: err.breaker,
        retry_after: retryAfter,
      }, { "Retry-After": String(retryAfter) });
    }
    c.get("log")?.info("lead write queued", { breaker: err.breaker, state: err.state });
    return await queuedWrite(c, err, {
      queue: g.queue,
      type: "apply_lead_write",
      payload,
      idempotencyKey: await queueKey(c, payload),
    });
  }
  if ("refusal" in out) throw out.refusal;
  return out.value;
}
