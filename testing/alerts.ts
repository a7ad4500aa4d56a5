/**
 * Fixtures of the alert webhook: a loopback receiver that records
 * every call and answers with the status a test chooses (per call number).
 *
 * @module
 */
import { TASK_CATALOG, type TaskCatalog } from "../shared/tasks/catalog.ts";
import { TEST_CATALOG } from "./queue.ts";
import { waitUntil } from "./wait.ts";

/** One recorded call. */
export interface ReceivedAlert {
  path: string;
  idempotencyKey: string | null;
  authorization: string | null;
  contentType: string | null;
  body: Record<string, unknown>;
}

/** A running receiver; `await using` stops it. */
export interface AlertReceiver extends AsyncDisposable {
  url: string;
  calls: ReceivedAlert[];
  /** Resolves once `n` calls were received (polls; no timing assertion). */
  waitForCalls(n: number, timeoutMs?: number): Promise<ReceivedAlert[]>;
}

/** What the receiver answers one call with. */
type Answer = number | Response;

/**
 * Starts a receiver on 127.0.0.1; `status(n)` answers the n-th call
 * (1-based), and may hold it by returning a promise. @default 200
 */
export function startAlertReceiver(
  status: (n: number, path: string) => Answer | Promise<Answer> = () => 200,
): AlertReceiver {
  const calls: ReceivedAlert[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const text = await req.text();
    const path = new URL(req.url).pathname;
    calls.push({
      path,
      idempotencyKey: req.headers.get("idempotency-key"),
      authorization: req.headers.get("authorization"),
      contentType: req.headers.get("content-type"),
      body: text ? JSON.parse(text) : {},
    });
    const answer = await status(calls.length, path);
    return answer instanceof Response ? answer : new Response(null, { status: answer });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    calls,
    async waitForCalls(n, timeoutMs = 60_000) {
      await waitUntil(() => calls.length >= n, {
        timeoutMs,
        everyMs: 20,
        what: `${n} alert calls`,
        detail: () => `the receiver got ${calls.length}`,
      });
      return calls;
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/** The queue test catalog plus `deliver_alert` with short backoffs. */
export const ALERT_TEST_CATALOG: TaskCatalog = {
  ...TEST_CATALOG,
  deliver_alert: {
    ...TASK_CATALOG.deliver_alert,
    maxAttempts: 4,
    backoff: { baseMs: 50, factor: 1, maxMs: 100, jitter: 0 },
  },
};
