/**
 * What the lead functions run their SQL on, and a transaction helper.
 *
 * @module
 */
import type { Pool, PoolClient } from "@neondatabase/serverless";

/**
 * Anything with `.query`: the Pool (each call autocommits) or a client
 * checked out of it, possibly inside the caller's transaction.
 */
export type Queryable = Pick<PoolClient, "query">;

/**
 * Runs `fn` inside BEGIN … COMMIT on one pooled connection; ROLLBACK when it
 * throws. A connection whose ROLLBACK fails is destroyed instead of being
 * returned to the pool in an unknown state.
 */
export async function withTransaction<T>(
  pool: Pool,
  fn: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    try {
      await client.query("ROLLBACK");
    } catch (rollbackErr) {
      broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
    }
    throw err;
  } finally {
    client.release(broken);
  }
}
