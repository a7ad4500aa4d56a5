/**
 * Reading the send ledger (`email_messages`, written by send_email through
 * email_ledger.ts): the emails of one lead or of everyone, newest first, in
 * keyset pages on (created_at, id) (indexes of migration 011).
 *
 * `lead_id` is the `business_id` column and `to` the `to_address` column:
 * one name per concept in results (docs/api.md, "Names").
 *
 * @module
 */
import { keysetPage, microsTimestampSql } from "../db/keyset.ts";
import type { Queryable } from "./transaction.ts";

/** Ledger states: `pending` and `sending` are in flight, `sent` and `failed` final. */
export const SENT_EMAIL_STATUSES = ["pending", "sending", "sent", "failed"] as const;

/** A ledger state. */
export type SentEmailStatus = (typeof SENT_EMAIL_STATUSES)[number];

/** One row of the send ledger as the API shows it. */
export interface SentEmail {
  id: string;
  lead_id: string;
  to: string;
  template: string;
  subject: string;
  status: SentEmailStatus;
  provider: string;
  message_id: string;
  provider_response: string | null;
  task_id: string | null;
  attempts: number;
  /** The once-per-day rule's day (UTC), `YYYY-MM-DD`. */
  send_day: string;
  created_at: string;
  sent_at: string | null;
}

/** Filters of {@linkcode listSentEmails}; every one is optional and they combine with AND. */
export interface SentEmailFilter {
  leadId?: string;
  statuses?: readonly SentEmailStatus[];
  template?: string;
  /** Created at or after (inclusive). */
  from?: Date;
  /** Created before (exclusive). */
  to?: Date;
  /** The last row of the previous page: its created_at with microseconds, and its id. */
  after?: readonly [string, string];
  limit: number;
}

/** A page: the rows and, when more follow, the last row's keyset. */
export interface SentEmailPage {
  rows: SentEmail[];
  /** (created_at with microseconds, id) of the last row when another page follows. */
  next: [string, string] | null;
}

type Row = Omit<SentEmail, "created_at" | "sent_at"> & {
  created_at: Date;
  sent_at: Date | null;
  cursor_ts: string;
};

const COLUMNS = `id, business_id AS lead_id, to_address AS "to", template, subject, status,
  provider, message_id, provider_response, task_id, attempts, send_day::text AS send_day,
  created_at, sent_at,
  ${microsTimestampSql("created_at")} AS cursor_ts`;

function view({ cursor_ts: _, ...r }: Row): SentEmail {
  return {
    ...r,
    created_at: new Date(r.created_at).toISOString(),
    sent_at: r.sent_at === null ? null : new Date(r.sent_at).toISOString(),
  };
}

/** One page of sent emails, newest first. */
export async function listSentEmails(
  sql: Queryable,
  filter: SentEmailFilter,
): Promise<SentEmailPage> {
  const { rows } = await sql.query<Row>(
    `SELECT ${COLUMNS} FROM email_messages
      WHERE ($1::uuid IS NULL OR business_id = $1::uuid)
        AND ($2::text[] IS NULL OR status = ANY($2::text[]))
        AND ($3::text IS NULL OR template = $3::text)
        AND ($4::timestamptz IS NULL OR created_at >= $4::timestamptz)
        AND ($5::timestamptz IS NULL OR created_at < $5::timestamptz)
        AND ($6::timestamptz IS NULL OR (created_at, id) < ($6::timestamptz, $7::uuid))
      ORDER BY created_at DESC, id DESC
      LIMIT $8`,
    [
      filter.leadId ?? null,
      filter.statuses ? [...filter.statuses] : null,
      filter.template ?? null,
      filter.from?.toISOString() ?? null,
      filter.to?.toISOString() ?? null,
      filter.after?.[0] ?? null,
      filter.after?.[1] ?? null,
      filter.limit + 1,
    ],
  );
  const { page, last } = keysetPage(rows, filter.limit);
  return { rows: page.map(view), next: last ? [last.cursor_ts, last.id] : null };
}

/** One sent email by id, or null. */
export async function getSentEmail(sql: Queryable, id: string): Promise<SentEmail | null> {
  const { rows } = await sql.query<Row>(`SELECT ${COLUMNS} FROM email_messages WHERE id = $1`, [
    id,
  ]);
  return rows[0] ? view(rows[0]) : null;
}
