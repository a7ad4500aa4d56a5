/**
 * The response side of HTTP idempotency: what of a first response is stored,
 * and how a stored 202 hand-off is turned into the task's current status.
 *
 * @module
 */
import type { TaskInfo } from "../../shared/queue/queue.ts";
import type { StoredResponse } from "./store.ts";
import { readCapped } from "../../shared/read_capped.ts";

/**
 * Response headers stored with the body and replayed. Per-request headers
 * (request id, rate-limit state, dates) are left out: a replay gets fresh
 * ones; `set-cookie` is left out so that a replay never re-issues a session.
 */
export const DEFAULT_STORED_HEADERS: readonly string[] = [
  "content-type",
  "content-language",
  "content-location",
  "location",
  "etag",
  "last-modified",
  "link",
  "cache-control",
  "retry-after",
];

function jsonObject(body: Uint8Array, contentType: string | null): Record<string, unknown> | null {
  if (contentType !== null && !/json/i.test(contentType)) return null;
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(body));
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? value as Record<string, unknown>
      : null;
  } catch {
    return null;
  }
}

/**
 * Captures `res` for storage without consuming it (reads a clone, at most
 * `maxBytes`; null above). The task id is only the one a gateway route set
 * (`taskId`, from `c.var.idempotencyTaskId`): a `task_id` in a body may come
 * from an upstream, which must not choose the task a replay reports.
 */
export async function captureResponse(
  res: Response,
  taskId: string | undefined,
  storedHeaders: ReadonlySet<string>,
  maxBytes: number,
): Promise<StoredResponse | null> {
  // A clone, counted as it streams (the edge never holds more than `maxBytes`
  // of it); a tee branch, so its cancel is not awaited.
  const body = await readCapped(res.clone().body, maxBytes, { awaitCancel: false });
  if (body === null) return null;
  const headers = [...res.headers].filter(([name]) => storedHeaders.has(name));
  return { status: res.status, headers, body, taskId: taskId ?? null };
}

/**
 * The replay of a stored 202 hand-off: the stored body (when it is a JSON
 * object) with the task's current state laid over it. The status code is the
 * original one (202), as Stripe replays it: a client tells a replay by the
 * `Idempotency-Replayed` header and reads the task's progress (`status`,
 * `attempts`, `result`) from the body.
 */
export function taskReplay(stored: StoredResponse, task: TaskInfo): StoredResponse {
  const contentType = stored.headers.find(([n]) => n === "content-type")?.[1] ?? null;
  const base = jsonObject(stored.body, contentType) ?? {};
  const finished = task.status === "succeeded" || task.status === "dead";
  const view: Record<string, unknown> = {
    ...base,
    task_id: task.id,
    status: task.status,
    attempts: task.attempts,
  };
  if (task.status === "succeeded") view.result = task.result;
  if (task.lastError !== null && task.status !== "succeeded") view.last_error = task.lastError;
  return {
    status: stored.status,
    headers: [
      // A finished task needs no polling hint.
      ...stored.headers.filter(([n]) => n !== "content-type" && !(finished && n === "retry-after")),
      ["content-type", "application/json"],
    ],
    body: new TextEncoder().encode(JSON.stringify(view)),
    taskId: task.id,
  };
}
