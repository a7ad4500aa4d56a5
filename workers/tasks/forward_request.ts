/**
 * `forward_request.<upstream>`: replays a write the gateway accepted (202
 * queued) while the upstream's breaker was open. Workers do not claim these
 * tasks while that breaker is open, so this runs once it is closed or
 * half-open (the task may be the probe).
 *
 * The replay rebuilds its headers through the live proxy's filter and
 * refuses (dead-letters) a path that is not a canonical path below the
 * upstream's base (shared/upstreams/upstream_path.ts).
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
import { upstreamRequestHeaders } from "../../shared/upstreams/forward.ts";
import { UnsafePathError, upstreamTarget } from "../../shared/upstreams/upstream_path.ts";
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
/** A request id worth keeping for correlation; anything else is replaced by the task id. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

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
  let target: URL;
  try {
    target = upstreamTarget(u.baseUrl, p.path);
  } catch (err) {
    if (err instanceof UnsafePathError) {
      throw new PermanentTaskError(`${u.name}: refused ${p.method} ${p.path}: ${err.message}`, {
        cause: err,
      });
    }
    throw err;
  }
  // The stored headers are data: they pass the live proxy's filter again, so
  // a payload cannot add what the gateway would not have forwarded.
  const stored = new Headers(p.headers);
  const requestId = stored.get("x-request-id");
  const headers = upstreamRequestHeaders(stored, {
    requestId: requestId !== null && REQUEST_ID.test(requestId) ? requestId : ctx.taskId,
    forwardAuthorization: u.forwardAuthorization,
    extraHeaders: u.forwardHeaders,
    principal: p.principal,
    clientIp: p.client_ip,
  });
  headers.set("idempotency-key", p.idempotency_key);
  const res = await breakers.get(u.breaker).fetch(target, {
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
