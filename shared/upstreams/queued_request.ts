/**
 * A write to an upstream that arrived while its breaker was open, stored as
 * a task payload (`forward_request.<upstream>`) and replayed by a worker
 * once the breaker closes. One task type per upstream so the catalog entry
 * can name that upstream's breaker: workers leave the tasks queued while it
 * is open instead of burning attempts.
 *
 * @module
 */
import { z } from "zod";
import { task, type TaskCatalog } from "../tasks/catalog.ts";
import { forwardTaskType, type Upstream } from "./upstream.ts";

/**
 * The stored request. Headers were filtered by `upstreamRequestHeaders` when
 * stored, and are filtered again when replayed.
 */
export const QueuedRequestSchema = z.object({
  method: z.enum(["POST", "PUT", "PATCH", "DELETE"]),
  /** The path below the upstream's prefix, with the query string. */
  path: z.string().max(8192),
  headers: z.array(z.tuple([z.string().max(256), z.string().max(8192)])).max(200),
  /** Request body, base64; null for none. */
  body_b64: z.string().nullable(),
  /** Sent upstream as `Idempotency-Key` on every attempt, so a redelivered task is deduplicated there. */
  idempotency_key: z.string().min(1).max(300),
  queued_at: z.string(),
  /**
   * The caller the gateway authorised and its address, sent again as
   * `X-Principal` / `X-Forwarded-For`: the replay rebuilds its headers through
   * the live proxy's filter, which drops those names from stored headers.
   */
  principal: z.string().max(255).optional(),
  client_ip: z.string().max(64).optional(),
}).strict();

/** A queued upstream write. */
export type QueuedRequest = z.infer<typeof QueuedRequestSchema>;

/** Catalog entries for the configured upstreams (merged into the platform catalog). */
export function upstreamTaskCatalog(upstreams: readonly Upstream[]): TaskCatalog {
  return Object.fromEntries(upstreams.map((u) => [
    forwardTaskType(u.name),
    task(QueuedRequestSchema, {
      // Headers plus a little for the response; the breaker's own timeout bounds the call.
      timeoutMs: u.timeoutMs + 2_000,
      // Outages longer than a few tries are covered by breaker-aware claiming;
      // attempts are spent only on calls that reached the upstream and failed.
      maxAttempts: 8,
      backoff: { baseMs: 5_000, factor: 2, maxMs: 600_000, jitter: 0.2 },
      breaker: u.breaker,
    }),
  ]));
}
