/**
 * Idempotency-Keys fenced in the database (sql/migrations/006): a write that
 * a key protects inserts the key's row in its own transaction before it
 * writes, and stores what it returned in that row. Two transactions with one
 * key cannot both commit: the second's INSERT waits on the first's row, then
 * finds it and answers the first's result instead of writing again. This is
 * what makes a late commit of a stalled edge (whose Redis lock lapsed) and
 * the client's retry on another edge apply once.
 *
 * @module
 */
import { AppError } from "../errors.ts";
import { sha256Hex } from "../hash.ts";
import { canonicalJson } from "../queue/canonical_json.ts";
import type { Queryable } from "./transaction.ts";

/** One protected write's key: who and where, the client's key, and the write's fingerprint. */
export interface WriteKey {
  /** E.g. `<principal> POST /v1/leads`. */
  scope: string;
  /** The client's Idempotency-Key. */
  key: string;
  /** SHA-256 of the write; the same key with another write is refused. */
  fingerprint: string;
}

/**
 * How long the database keeps a key: well past the edge's replay window
 * (`IDEMPOTENCY_TTL_MS`, a day by default), because a write queued while the
 * database was down may apply days later and must still meet its request's
 * key. Expired by the daily apply_retention task.
 */
export const WRITE_KEY_RETENTION_MS = 7 * 86_400_000;

/** How long an Idempotency-Key row waits for another transaction holding the same key. */
const KEY_LOCK_TIMEOUT = "5s";

/** Builds the key of a write: `write` is everything that makes it this write (op, lead, fields). */
export async function writeKey(scope: string, key: string, write: unknown): Promise<WriteKey> {
  return { scope, key, fingerprint: await sha256Hex(canonicalJson(write)) };
}

/** The same key was used for a different write. */
export class WriteKeyReusedError extends AppError {
  override name = "WriteKeyReusedError";
  constructor() {
    super("idempotency-key-reused", 422, "Idempotency-Key reused", {
      details: {
        detail: "This Idempotency-Key was used for a different request (method, path or body)",
      },
    });
  }
}

/** Another transaction holds the key and has not finished within the lock timeout. */
export class WriteKeyBusyError extends AppError {
  override name = "WriteKeyBusyError";
  constructor(options: { cause?: unknown } = {}) {
    super("idempotency-request-in-progress", 409, "Request in progress", {
      ...options,
      details: {
        detail: "A request with this Idempotency-Key is still being processed; retry later",
      },
    });
  }
}

/** What {@linkcode idempotentWrite} returns: the value and whether an earlier write produced it. */
export interface IdempotentResult<T> {
  value: T;
  replayed: boolean;
}

/**
 * Runs `fn` (the write) on `client`, which must be inside the caller's
 * transaction, at most once per key: the first time it runs and its value
 * is stored; afterwards the stored value comes back through `revive` (JSON
 * has no Date) and `fn` does not run. Without a key `fn` just runs.
 */
export async function idempotentWrite<T>(
  client: Queryable,
  key: WriteKey | undefined,
  revive: (json: unknown) => T,
  fn: () => Promise<T>,
): Promise<IdempotentResult<T>> {
  if (key === undefined) return { value: await fn(), replayed: false };
  let inserted: boolean;
  try {
    // Bounded wait: a stalled holder (a paused edge mid-transaction) must not
    // hang its retry; the retry is told to come back instead.
    await client.query(`SET LOCAL lock_timeout = '${KEY_LOCK_TIMEOUT}'`);
    const res = await client.query(
      `INSERT INTO idempotent_writes (scope, key, fingerprint) VALUES ($1, $2, $3)
       ON CONFLICT (scope, key) DO NOTHING RETURNING 1`,
      [key.scope, key.key, key.fingerprint],
    );
    inserted = res.rows.length > 0;
    await client.query("SET LOCAL lock_timeout TO DEFAULT");
  } catch (err) {
    // 55P03 lock_not_available: the other transaction still holds the key's row.
    if ((err as { code?: unknown }).code === "55P03") throw new WriteKeyBusyError({ cause: err });
    throw err;
  }
  if (!inserted) {
    const { rows } = await client.query<{ fingerprint: string; result: unknown }>(
      "SELECT fingerprint, result FROM idempotent_writes WHERE scope = $1 AND key = $2",
      [key.scope, key.key],
    );
    const row = rows[0];
    // Gone between the two statements only if expired meanwhile: a retry then runs afresh.
    if (row === undefined) throw new WriteKeyBusyError();
    if (row.fingerprint !== key.fingerprint) throw new WriteKeyReusedError();
    return { value: revive(row.result), replayed: true };
  }
  const value = await fn();
  await client.query(
    "UPDATE idempotent_writes SET result = $3 WHERE scope = $1 AND key = $2",
    [key.scope, key.key, JSON.stringify(value)],
  );
  return { value, replayed: false };
}

/** Removes keys recorded before `before`; returns how many. */
export async function expireWriteKeys(sql: Queryable, before: Date): Promise<number> {
  const res = await sql.query("DELETE FROM idempotent_writes WHERE created_at < $1", [before]);
  return res.rowCount ?? 0;
}
