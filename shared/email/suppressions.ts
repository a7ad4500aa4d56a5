/**
 * The suppression list (`email_suppressions`) as admins manage it: list,
 * add and remove, each change written together with its audit row
 * (`email_suppression_changes`, migration 011) in ONE statement, so a change
 * without its record (or the reverse) cannot exist. Recipients add
 * themselves through the unsubscribe link (edge/routes/unsubscribe.ts),
 * which leaves `added_by` NULL.
 *
 * @module
 */
import { keysetPage, microsTimestampSql } from "../db/keyset.ts";
import type { Queryable } from "../leads/transaction.ts";

/** A suppressed address. */
export interface Suppression {
  address: string;
  reason: string;
  /** `api:<principal>` for an admin; null for the recipient's own unsubscribe. */
  added_by: string | null;
  created_at: string;
}

/** One audited change of the list. */
export interface SuppressionChange {
  id: string;
  address: string;
  action: "added" | "removed";
  reason: string;
  actor: string;
  at: string;
}

/** A page of rows and, when more follow, the last row's keyset. */
export interface Page<T> {
  rows: T[];
  next: [string, string] | null;
}

type SuppressionRow = Omit<Suppression, "created_at"> & { created_at: Date; cursor_ts: string };
type ChangeRow = Omit<SuppressionChange, "at"> & { at: Date; cursor_ts: string };

function suppressionView({ cursor_ts: _, ...r }: SuppressionRow): Suppression {
  return { ...r, created_at: new Date(r.created_at).toISOString() };
}

function changeView({ cursor_ts: _, ...r }: ChangeRow): SuppressionChange {
  return { ...r, at: new Date(r.at).toISOString() };
}

/** The list, newest first; `address` narrows it to one address. */
export async function listSuppressions(
  sql: Queryable,
  options: { address?: string; after?: readonly [string, string]; limit: number },
): Promise<Page<Suppression>> {
  const { rows } = await sql.query<SuppressionRow>(
    `SELECT address, reason, added_by, created_at, ${microsTimestampSql("created_at")} AS cursor_ts
       FROM email_suppressions
      WHERE ($1::text IS NULL OR address = lower($1::text))
        AND ($2::timestamptz IS NULL OR (created_at, address) < ($2::timestamptz, $3::text))
      ORDER BY created_at DESC, address DESC
      LIMIT $4`,
    [
      options.address ?? null,
      options.after?.[0] ?? null,
      options.after?.[1] ?? null,
      options.limit + 1,
    ],
  );
  const { page, last } = keysetPage(rows, options.limit);
  return { rows: page.map(suppressionView), next: last ? [last.cursor_ts, last.address] : null };
}

/** The audit log, newest first; `address` narrows it to one address. */
export async function listSuppressionChanges(
  sql: Queryable,
  options: { address?: string; after?: readonly [string, string]; limit: number },
): Promise<Page<SuppressionChange>> {
  const { rows } = await sql.query<ChangeRow>(
    `SELECT id, address, action, reason, actor, at, ${microsTimestampSql("at")} AS cursor_ts
       FROM email_suppression_changes
      WHERE ($1::text IS NULL OR address = lower($1::text))
        AND ($2::timestamptz IS NULL OR (at, id) < ($2::timestamptz, $3::uuid))
      ORDER BY at DESC, id DESC
      LIMIT $4`,
    [
      options.address ?? null,
      options.after?.[0] ?? null,
      options.after?.[1] ?? null,
      options.limit + 1,
    ],
  );
  const { page, last } = keysetPage(rows, options.limit);
  return { rows: page.map(changeView), next: last ? [last.cursor_ts, last.id] : null };
}

/** What a change is about: the address (any case), why, and who (`api:<principal>`). */
export interface SuppressionEdit {
  address: string;
  reason: string;
  actor: string;
}

/**
 * Adds `address` with its audit row. An address already on the list is left
 * as it is (no audit row: nothing changed) and returned with `added: false`.
 */
export async function addSuppression(
  sql: Queryable,
  edit: SuppressionEdit,
): Promise<{ added: boolean; suppression: Suppression }> {
  const { rows } = await sql.query<SuppressionRow & { added: boolean }>(
    `WITH inserted AS (
       INSERT INTO email_suppressions (address, reason, added_by)
       VALUES (lower(btrim($1)), $2, $3)
       ON CONFLICT (address) DO NOTHING
       RETURNING address, reason, added_by, created_at
     ), audit AS (
       INSERT INTO email_suppression_changes (address, action, reason, actor)
       SELECT address, 'added', $2, $3 FROM inserted
     )
     SELECT address, reason, added_by, created_at, '' AS cursor_ts, true AS added FROM inserted
     UNION ALL
     SELECT address, reason, added_by, created_at, '' AS cursor_ts, false AS added
       FROM email_suppressions
      WHERE address = lower(btrim($1)) AND NOT EXISTS (SELECT 1 FROM inserted)`,
    [edit.address, edit.reason, edit.actor],
  );
  const row = rows[0];
  // A concurrent add committed between this statement's snapshot and its
  // insert: the row exists now, and the next statement sees it.
  if (!row) return await addSuppression(sql, edit);
  const { added, ...rest } = row;
  return { added, suppression: suppressionView(rest) };
}

/**
 * Removes `address` with its audit row; null when it was not on the list
 * (nothing removed, nothing recorded).
 */
export async function removeSuppression(
  sql: Queryable,
  edit: SuppressionEdit,
): Promise<{ removed: Suppression; change: SuppressionChange } | null> {
  const { rows } = await sql.query<
    SuppressionRow & { change_id: string; change_at: Date }
  >(
    `WITH removed AS (
       DELETE FROM email_suppressions WHERE address = lower(btrim($1))
       RETURNING address, reason, added_by, created_at
     ), audit AS (
       INSERT INTO email_suppression_changes (address, action, reason, actor)
       SELECT address, 'removed', $2, $3 FROM removed
       RETURNING id, at
     )
     SELECT r.address, r.reason, r.added_by, r.created_at, '' AS cursor_ts,
            a.id AS change_id, a.at AS change_at
       FROM removed r, audit a`,
    [edit.address, edit.reason, edit.actor],
  );
  const row = rows[0];
  if (!row) return null;
  const { change_id, change_at, ...rest } = row;
  return {
    removed: suppressionView(rest),
    change: {
      id: change_id,
      address: rest.address,
      action: "removed",
      reason: edit.reason,
      actor: edit.actor,
      at: new Date(change_at).toISOString(),
    },
  };
}
