/**
 * `forward_request.<upstream>`: replays a write the gateway accepted (202
 * queued) while the upstream's breaker was open. Workers do not claim these
 * tasks while that breaker is open, so this runs once it is closed or
 * half-open (the task may be the probe).
 *
 * Every attempt carries the same `Idempotency-Key` (the client's, or the
 * original request id), so an upstream that honours it applies the write
 * once even when the task is delivered twice (lease expiry, crash).
 * 2xx/3xx → done; 4xx other than 408/429 → dead-lettered at once with the
 * upstream's answer (retrying cannot fix it); 5xx, timeouts, connection
 * errors and breaker refusals → retried with backoff.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { BreakerRegistry } from "../../shared/breakers/registry.ts";
import { PermanentTaskError } from "../../shared/queue/errors.ts";
import { upstreamUrl } from "../../shared/upstreams/forward.ts";
import type { QueuedRequest } from "../../shared/upstreams/queued_request.ts";
import { forwardTaskType, type Upstream } from "../../shared/upstreams/upstream.ts";
import type { Handler, TaskContext } from "../runner.ts";

/** What a replayed request records as its task result. */
export interface ForwardResult {
  status: number;
  /** At most 4 KiB of the upstream's answer, for operators. */
  body: string;
}

const RESULT_BODY_CHARS = 4096;

/** One handler per upstream, keyed by its task type. */
export function forwardRequestHandlers(
  upstreams: readonly Upstream[],
  breakers: BreakerRegistry,
): Record<string, Handler> {
  return Object.fromEntries(upstreams.map((u) => [
    forwardTaskType(u.name),
    (payload: QueuedRequest, ctx: TaskContext) => replay(u, breakers, payload, ctx),
  ]));
}

async function replay(
  u: Upstream,
  breakers: BreakerRegistry,
  p: QueuedRequest,
  ctx: TaskContext,
): Promise<ForwardResult> {
  const headers = new Headers(p.headers);
  headers.set("idempotency-key", p.idempotency_key);
  const res = await breakers.get(u.breaker).fetch(upstreamUrl(u.baseUrl, p.path), {
    method: p.method,
    headers,
    body: p.body_b64 === null ? undefined : Buffer.from(p.body_b64, "base64"),
    redirect: "manual",
    timeoutMs: u.timeoutMs,
    signal: ctx.signal,
  });
  const text = (await res.text()).slice(0, RESULT_BODY_CHARS);
  if (res.status < 400) return { status: res.status, body: text };
  const message = `${u.name} answered ${res.status} to ${p.method} ${p.path}: ${text}`;
  if (res.status < 500 && res.status !== 408 && res.status !== 429) {
    throw new PermanentTaskError(message);
  }
  throw new Error(message);
}
