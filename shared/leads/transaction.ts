/**
 * What the lead functions run their SQL on, and a transaction helper.
 *
 * @module
 */
import type { Pool, PoolClient } from "@neondatabase/serverless";
import { type LoopLag, netTimer, NO_LAG } from "../loop_lag.ts";

/**
 * Anything with `.query`: the Pool (each call autocommits) or a client
 * checked out of it, possibly inside the caller's transaction.
 */
export type Queryable = Pick<PoolClient, "query">;

/** Options of {@linkcode withTransaction}. */
export interface TransactionOptions {
  /**
   * Client-side deadline of the transaction (after the connection is checked
   * out), ms. Past it the connection is destroyed, never reused, and the
   * call rejects with {@linkcode TransactionDeadlineError}. Only for writes
   * fenced in the database (shared/leads/idempotent_write.ts) or otherwise
   * safe to retry: the server may still commit what it already received.
   * @default undefined (no deadline)
   */
  deadlineMs?: number;
  /**
   * This process's event-loop stall (shared/loop_lag.ts): the deadline counts
   * time net of it, so a CPU-starved process does not destroy a connection
   * that was answering. @default none (wall time)
   */
  lag?: LoopLag;
}

/**
 * The transaction did not finish within its deadline: the connection
 * stopped answering (a partition without a reset) or the server is stuck.
 * Whether the server committed is unknown; it is a database failure.
 */
export class TransactionDeadlineError extends Error {
  override name = "TransactionDeadlineError";
  constructor(deadlineMs: number, options: { cause?: unknown } = {}) {
    super(`The database transaction did not finish within ${deadlineMs} ms`, options);
  }
}

/**
 * Closes the client's socket at once. `client.end()` would send a Terminate
 * message and wait for a WebSocket close handshake that a silent peer never
 * answers; `ws`'s terminate() destroys the TCP socket, which fails the
 * client's pending queries ("Connection terminated unexpectedly").
 */
function destroyConnection(client: PoolClient): void {
  const stream = (client as unknown as {
    connection?: { stream?: { ws?: { terminate?: () => void }; destroy?: () => void } };
  }).connection?.stream;
  if (typeof stream?.ws?.terminate === "function") stream.ws.terminate();
  else stream?.destroy?.();
}

/**
 * Runs `fn` inside BEGIN … COMMIT on one pooled connection; ROLLBACK when it
 * throws. A connection whose ROLLBACK fails, or that passed its deadline, is
 * destroyed instead of being returned to the pool in an unknown state.
 */
export async function withTransaction<T>(
  pool: Pool,
  fn: (client: PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const { deadlineMs } = options;
  if (deadlineMs !== undefined && !(Number.isInteger(deadlineMs) && deadlineMs > 0)) {
    throw new RangeError(`Cannot run a transaction: deadlineMs must be > 0, got ${deadlineMs}`);
  }
  const client = await pool.connect();
  let broken: Error | undefined;
  let expired = false;
  let cancel = () => {};
  const deadline = deadlineMs === undefined ? null : new Promise<never>((_, reject) => {
    cancel = netTimer(deadlineMs, () => performance.now(), options.lag ?? NO_LAG, () => {
      expired = true;
      reject(new TransactionDeadlineError(deadlineMs));
      destroyConnection(client);
    });
  });
  const run = async () => {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  };
  try {
    if (deadline === null) return await run();
    const work = run();
    // Settles after the deadline (the destroyed socket fails it): already answered.
    work.catch(() => {});
    return await Promise.race([work, deadline]);
  } catch (err) {
    if (expired) {
      broken = err instanceof Error ? err : new TransactionDeadlineError(deadlineMs!);
      throw err instanceof TransactionDeadlineError
        ? err
        : new TransactionDeadlineError(deadlineMs!, { cause: err });
    }
    try {
      await client.query("ROLLBACK");
    } catch (rollbackErr) {
      broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
    }
    throw err;
  } finally {
    cancel();
    client.release(broken);
  }
}
