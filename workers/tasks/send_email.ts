/**
 * `send_email`: one templated email to a lead, sent at most once per
 * (recipient, template, lead, UTC day) — the seed's once-per-day rule — even
 * though the queue delivers at least once.
 *
 * The effect is made idempotent by the database, not by check-then-act: in
 * ONE transaction the ledger row is inserted first (`email_messages`, UNIQUE
 * on the rule's four columns), then the provider is called, then the row is
 * marked sent, the lead moved to `contacted` and an `email_sent` event
 * written, then COMMIT. A second run of the same send — concurrent, after a
 * crash, or a DLQ replay — blocks on the first one's uncommitted row and then
 * finds it `sent` (→ `already_sent`), or, if the first rolled back, sends
 * again with the SAME Message-ID (the ledger id is derived from the rule's
 * key), which the file provider (same file name) and HTTP APIs
 * (`Idempotency-Key`) deduplicate.
 *
 * The one window that cannot be closed is SMTP's: the server accepted the
 * message, then this process died before COMMIT. The retry sends a second
 * copy with the same Message-ID (receivers that dedupe by Message-ID drop
 * it). The window is kept to one round trip: nothing but the UPDATE/COMMIT
 * runs between the provider's acceptance and the commit.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Breaker } from "../../shared/breakers/breaker.ts";
import { buildInvite, inviteAttachment } from "../../shared/email/ics.ts";
import {
  messageIdFor,
  type OutgoingEmail,
  unsubscribeHeaders,
} from "../../shared/email/message.ts";
import type { EmailProvider, SendResult } from "../../shared/email/provider.ts";
import { renderTemplate } from "../../shared/email/templates.ts";
import { signUnsubscribeToken, unsubscribeUrl } from "../../shared/email/unsubscribe.ts";
import { recordLeadEvent } from "../../shared/leads/events.ts";
import { transitionLead } from "../../shared/leads/repository.ts";
import { withTransaction } from "../../shared/leads/transaction.ts";
import { isPermanent, PermanentTaskError } from "../../shared/queue/errors.ts";
import type { SendEmailPayload } from "../../shared/tasks/catalog.ts";
import type { TaskContext } from "../runner.ts";
import type { z } from "zod";

/** What send_email needs besides the task context. */
export interface SendEmailServices {
  provider: EmailProvider;
  /** The `email` breaker; provider calls go through it. */
  breaker?: Breaker;
  from: string;
  messageIdDomain: string;
  unsubscribeSecret: string;
  /** Public base URL of the edge (unsubscribe links point at `<base>/v1/unsubscribe`). */
  publicBaseUrl: string;
}

/** The task result. */
export type SendEmailResult =
  | { status: "sent"; message_id: string; provider: string; response: string }
  | { status: "already_sent"; skipped: true; message_id: string }
  | { status: "suppressed"; to: string };

/** A deterministic UUID (v8 layout) from the once-per-day key. */
export function ledgerIdFor(to: string, template: string, leadId: string, day: string): string {
  const h = createHash("sha256").update(`${to}\n${template}\n${leadId}\n${day}`).digest("hex");
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${
    h.slice(20, 32)
  }`;
}

interface LeadRow {
  id: string;
  name: string;
  email: string | null;
  city: string | null;
}

interface AppointmentRow {
  id: string;
  starts_at: Date;
  duration_min: number;
  attendee_email: string;
  created_at: Date;
}

/** Builds the handler. */
export function sendEmailHandler(s: SendEmailServices) {
  return async function sendEmail(
    p: z.output<typeof SendEmailPayload>,
    ctx: TaskContext,
  ): Promise<SendEmailResult> {
    const sql = ctx.deps.sql;
    const { rows: leads } = await sql.query<LeadRow>(
      "SELECT id, name, email, city FROM businesses WHERE id = $1",
      [p.lead_id],
    );
    const lead = leads[0];
    if (!lead) throw new PermanentTaskError(`Lead ${p.lead_id} does not exist`);
    const to = (p.to ?? lead.email ?? "").trim().toLowerCase();
    if (!to) throw new PermanentTaskError(`Lead ${p.lead_id} has no email address`);

    const { rowCount: suppressed } = await sql.query(
      "SELECT 1 FROM email_suppressions WHERE address = $1",
      [to],
    );
    if (suppressed) return { status: "suppressed", to };

    const now = new Date(ctx.deps.now());
    const day = now.toISOString().slice(0, 10);
    const ledgerId = ledgerIdFor(to, p.template, lead.id, day);
    const messageId = messageIdFor(ledgerId, s.messageIdDomain);
    const link = unsubscribeUrl(
      `${s.publicBaseUrl}/v1`,
      signUnsubscribeToken(to, s.unsubscribeSecret),
    );
    let rendered;
    try {
      rendered = renderTemplate(p.template, {
        business_name: lead.name,
        ...(lead.city ? { city: lead.city } : {}),
        ...p.variables,
      }, { unsubscribeUrl: link });
    } catch (err) {
      // Unknown template or bad variables: retrying cannot fix it.
      throw new PermanentTaskError((err as Error).message, { cause: err });
    }
    const attachments = p.appointment_id ? [await invite(sql, p.appointment_id, s.from, to)] : [];
    const source = `worker:send_email:${ctx.taskId}`;

    return await withTransaction(sql, async (client) => {
      const inserted = await client.query(
        `INSERT INTO email_messages
           (id, business_id, to_address, template, send_day, subject, provider, message_id, task_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (to_address, template, business_id, send_day) DO NOTHING`,
        [
          ledgerId,
          lead.id,
          to,
          p.template,
          day,
          rendered.subject,
          s.provider.name,
          messageId,
          ctx.taskId,
        ],
      );
      if (inserted.rowCount === 0) {
        // Waited for (or found) the row of an earlier run; lock it for the decision.
        const { rows } = await client.query<{ status: string; message_id: string }>(
          `SELECT status, message_id FROM email_messages
            WHERE to_address = $1 AND template = $2 AND business_id = $3 AND send_day = $4
            FOR UPDATE`,
          [to, p.template, lead.id, day],
        );
        if (rows[0]?.status === "sent") {
          return { status: "already_sent", skipped: true, message_id: rows[0].message_id };
        }
      }
      const msg: OutgoingEmail = {
        messageId,
        from: s.from,
        to,
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        headers: unsubscribeHeaders(link),
        date: now,
        ...(attachments.length ? { attachments } : {}),
      };
      const result = await deliver(s, msg, ctx.signal);
      await client.query(
        `UPDATE email_messages
            SET status = 'sent', sent_at = now(), provider_response = $2, attempts = attempts + 1
          WHERE id = $1`,
        [ledgerId, result.response.slice(0, 2000)],
      );
      await transitionLead(client, lead.id, "contacted", source, {
        ifReached: "noop",
        data: { message_id: messageId },
      });
      await client.query(
        "UPDATE businesses SET last_contacted = now() WHERE id = $1",
        [lead.id],
      );
      await recordLeadEvent(client, {
        lead_id: lead.id,
        event_type: "email_sent",
        event_data: { template: p.template, message_id: messageId, to },
        source,
      });
      return {
        status: "sent",
        message_id: messageId,
        provider: s.provider.name,
        response: result.response,
      };
    });
  };
}

/**
 * Sends through the email breaker. A rejected message (permanent error) says
 * nothing about the provider's health, so it counts as a success for the
 * breaker and is rethrown afterwards.
 */
async function deliver(
  s: SendEmailServices,
  msg: OutgoingEmail,
  signal: AbortSignal,
): Promise<SendResult> {
  if (!s.breaker) return await s.provider.send(msg, { signal });
  const outcome = await s.breaker.call(async (sig) => {
    try {
      return { ok: await s.provider.send(msg, { signal: sig ?? signal }) };
    } catch (err) {
      if (isPermanent(err)) return { rejected: err };
      throw err;
    }
  }, { signal });
  if ("rejected" in outcome) throw outcome.rejected;
  return outcome.ok;
}

async function invite(
  sql: TaskContext["deps"]["sql"],
  appointmentId: string,
  from: string,
  to: string,
) {
  const { rows } = await sql.query<AppointmentRow>(
    `SELECT id, starts_at, duration_min, attendee_email, created_at
       FROM appointments WHERE id = $1`,
    [appointmentId],
  );
  const a = rows[0];
  if (!a) throw new PermanentTaskError(`Appointment ${appointmentId} does not exist`);
  const organizer = /<([^>]+)>/.exec(from)?.[1] ?? from;
  return inviteAttachment(buildInvite({
    id: a.id,
    start: new Date(a.starts_at),
    durationMin: a.duration_min,
    // The booking time, not now: every attempt attaches identical bytes.
    stamp: new Date(a.created_at),
    summary: "Pleasant Cove — website consultation",
    organizer: { email: organizer, name: "Pleasant Cove" },
    attendee: { email: to },
  }));
}
