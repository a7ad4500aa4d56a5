/**
 * `send_email`: one templated email to a lead, sent at most once per
 * (recipient, template, lead, UTC day of the enqueue) — the seed's
 * once-per-day rule — even though the queue delivers at least once.
 *
 * The effect is made idempotent by the database, not by check-then-act
 * (shared/leads/email_ledger.ts):
 *
 * 1. CLAIM: one call inserts the ledger row (UNIQUE on the rule's four
 *    columns) as `sending` with a claim token and expiry, or takes over a row
 *    that is neither sent nor claimed by a live sender. A row already `sent`
 *    → `{"status":"already_sent","skipped":true}`; a row another task's live
 *    sender holds → deferred (retried when that claim expires, the attempt
 *    not counted); a redelivery of the same task takes its own claim over.
 *    The row exists BEFORE the provider is called; a failed provider call
 *    gives the claim back.
 * 2. SEND with the row's Message-ID (derived from the ledger key, so every
 *    attempt carries the same one; the Date header is the enqueue time, so
 *    retries compose the same message). The file provider (same file name)
 *    and HTTP APIs (`Idempotency-Key`) deduplicate a repeated send.
 * 3. RECORD: one call marks the row sent — only while the claim is held
 *    — moves the lead to `contacted`, stamps `last_contacted` and writes the
 *    lead events.
 *
 * No transaction or pooled connection is held during the provider call. The
 * one window that cannot be closed is SMTP's: the server accepted the message
 * and this process died before step 3. The task's redelivery takes the claim
 * over once it expires and sends a second copy with the same Message-ID
 * (receivers that dedupe by Message-ID drop it). The window is one call.
 *
 * The database steps of a worker's concurrent sends (the lead read, CLAIM,
 * RECORD and the rescore) go in batches: one statement or SQL function call
 * per batch (migration 016, shared/db/batcher.ts) with the same outcome per
 * send as a call of its own. A batch never holds two sends of one lead.
 *
 * Suppression is checked in the same statement that loads the lead; an
 * unsubscribe that commits between that check and the provider call (a few
 * milliseconds) is not honoured for this one message.
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
import {
  type ClaimOutcome,
  claimSends,
  type Delivery,
  recordDeliveries,
  releaseClaim,
  type SendClaim,
} from "../../shared/leads/email_ledger.ts";
import { createBatcher } from "../../shared/db/batcher.ts";
import { DeferredTaskError, isPermanent, PermanentTaskError } from "../../shared/queue/errors.ts";
import type { SendEmailPayload } from "../../shared/tasks/catalog.ts";
import { insertLeadEvents } from "../../shared/leads/events.ts";
import type { Queryable } from "../../shared/leads/transaction.ts";
import type { LeadScorer } from "../../shared/scoring/champion.ts";
import { scoreLeadsById } from "../../shared/scoring/scores.ts";
import type { TaskContext } from "../runner.ts";
import type { z } from "zod";

/** What send_email needs besides the task context. */
export interface SendEmailServices {
  provider: EmailProvider;
  /** The `email` breaker; provider calls go through it. */
  breaker?: Breaker;
  from: string;
  messageIdDomain: string;
  /** A function is read per task: a rotated secret (shared/secrets/) signs the next link. */
  unsubscribeSecret: string | (() => string);
  /** Public base URL of the edge (unsubscribe links point at `<base>/v1/unsubscribe`). */
  publicBaseUrl: string;
  /** How long a claim keeps concurrent senders off one ledger row. @default 30_000 */
  claimMs?: number;
  /** Rescores the lead once its delivery (a new `last_contacted`) is recorded. @default none */
  scorer?: LeadScorer;
}

/** The task result. */
export type SendEmailResult =
  | { status: "sent"; message_id: string; provider: string; response: string }
  | { status: "already_sent"; skipped: true; message_id: string }
  | { status: "suppressed"; to: string }
  | { status: "lead_not_interested"; skipped: true }
  /** A meeting email whose appointment was cancelled after it was queued. */
  | { status: "appointment_cancelled"; skipped: true; appointment_id: string };

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
  outreach_status: string;
  suppressed: boolean;
}

interface AppointmentRow {
  id: string;
  starts_at: Date;
  duration_min: number;
  attendee_email: string;
  status: "booked" | "cancelled";
  sequence: number;
  created_at: Date;
}

/** The leads of many sends in ONE statement; null for a lead that does not exist. */
async function loadLeads(
  sql: Queryable,
  wanted: readonly { leadId: string; to: string | null }[],
): Promise<(LeadRow | null)[]> {
  const { rows } = await sql.query<LeadRow & { n: string }>(
    `SELECT i.n, b.id, b.name, b.email, b.city, b.outreach_status,
            EXISTS (SELECT 1 FROM email_suppressions s
                     WHERE s.address = lower(btrim(coalesce(i.to_address, b.email, '')))) AS suppressed
       FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS i(id, to_address, n)
       JOIN businesses b ON b.id = i.id`,
    [wanted.map((w) => w.leadId), wanted.map((w) => w.to)],
  );
  const out = wanted.map((): LeadRow | null => null);
  for (const { n, ...lead } of rows) out[Number(n) - 1] = lead;
  return out;
}

/**
 * A worker's concurrent sends share their statements: the lead reads, the
 * claims, the records and the rescores of one moment each go as one batch
 * (shared/db/batcher.ts). Two sends to one lead never share a claim, record
 * or rescore batch, so they are decided one after the other.
 */
function ledgerBatchers(sql: Queryable, scorer: LeadScorer | undefined, now: () => number) {
  const byLead = { keyOf: (x: { leadId: string }) => x.leadId };
  return {
    loadLead: createBatcher((w: { leadId: string; to: string | null }[]) => loadLeads(sql, w)),
    claim: createBatcher((c: SendClaim[]) => claimSends(sql, c), byLead),
    record: createBatcher(
      (d: (Delivery & { leadId: string })[]) => recordDeliveries(sql, d),
      byLead,
    ),
    rescore: createBatcher(async (leads: { leadId: string }[]) => {
      if (scorer) {
        const at = now();
        await scoreLeadsById(sql, leads.map((l) => l.leadId), (lead) => scorer.score(lead, at));
      }
      return leads.map(() => undefined);
    }, byLead),
  };
}

async function loadAppointment(sql: Queryable, id: string): Promise<AppointmentRow> {
  const { rows } = await sql.query<AppointmentRow>(
    `SELECT id, starts_at, duration_min, attendee_email, status, sequence, created_at
       FROM appointments WHERE id = $1`,
    [id],
  );
  if (!rows[0]) throw new PermanentTaskError(`Appointment ${id} does not exist`);
  return rows[0];
}

/**
 * Records `email_suppressed` once per task: the event id is derived from the
 * task id, so a redelivery finds it (within a day of its time, the enqueue
 * time) and is skipped.
 */
async function recordSuppressed(
  sql: Queryable,
  p: z.output<typeof SendEmailPayload>,
  task: { taskId: string; at: number },
): Promise<void> {
  await insertLeadEvents(sql, [{
    id: ledgerIdFor("suppressed", p.template, p.lead_id, task.taskId),
    time: new Date(task.at),
    lead_id: p.lead_id,
    event_type: "email_suppressed",
    event_data: { template: p.template, refused_by: "worker" },
    source: `worker:send_email:${task.taskId}`,
  }], { skipDuplicatesWithinMs: 86_400_000 });
}

/** Builds the handler. */
export function sendEmailHandler(s: SendEmailServices) {
  const batchers = new WeakMap<Queryable, ReturnType<typeof ledgerBatchers>>();
  const batchersFor = (deps: TaskContext["deps"]) => {
    let b = batchers.get(deps.sql);
    if (!b) batchers.set(deps.sql, b = ledgerBatchers(deps.sql, s.scorer, deps.now));
    return b;
  };
  return async function sendEmail(
    p: z.output<typeof SendEmailPayload>,
    ctx: TaskContext,
  ): Promise<SendEmailResult> {
    const sql = ctx.deps.sql;
    const ledger = batchersFor(ctx.deps);
    const lead = await ledger.loadLead({ leadId: p.lead_id, to: p.to ?? null });
    if (!lead) throw new PermanentTaskError(`Lead ${p.lead_id} does not exist`);
    const to = (p.to ?? lead.email ?? "").trim().toLowerCase();
    if (!to) throw new PermanentTaskError(`Lead ${p.lead_id} has no email address`);
    // The edge refuses both up front; they can change after the email was queued.
    if (lead.outreach_status === "not_interested" && p.appointment_id === undefined) {
      return { status: "lead_not_interested", skipped: true };
    }
    if (lead.suppressed) {
      await recordSuppressed(sql, p, { taskId: ctx.taskId, at: ctx.enqueuedAt ?? ctx.deps.now() });
      return { status: "suppressed", to };
    }

    const enqueued = new Date(ctx.enqueuedAt ?? ctx.deps.now());
    const day = enqueued.toISOString().slice(0, 10);
    const ledgerId = ledgerIdFor(to, p.template, lead.id, day);
    const link = unsubscribeUrl(
      `${s.publicBaseUrl}/v1`,
      signUnsubscribeToken(
        to,
        typeof s.unsubscribeSecret === "function" ? s.unsubscribeSecret() : s.unsubscribeSecret,
      ),
    );
    // A meeting email describes the appointment as it is now: it may have been
    // moved since this email was queued (the row wins over the queued start),
    // or cancelled (then nothing is sent).
    const appointment = p.appointment_id ? await loadAppointment(sql, p.appointment_id) : null;
    if (appointment?.status === "cancelled") {
      return { status: "appointment_cancelled", skipped: true, appointment_id: appointment.id };
    }
    let rendered;
    try {
      rendered = renderTemplate(p.template, {
        business_name: lead.name,
        ...(lead.city ? { city: lead.city } : {}),
        ...p.variables,
        ...(appointment
          ? {
            starts_at: new Date(appointment.starts_at).toISOString(),
            duration_min: appointment.duration_min,
          }
          : {}),
      }, { unsubscribeUrl: link });
    } catch (err) {
      // Unknown template or bad variables: retrying cannot fix it.
      throw new PermanentTaskError((err as Error).message, { cause: err });
    }
    const attachments = appointment
      ? [invite(appointment, { from: s.from, to, variables: p.variables })]
      : [];
    const source = `worker:send_email:${ctx.taskId}`;

    const claim: ClaimOutcome = await ledger.claim({
      ledgerId,
      leadId: lead.id,
      to,
      template: p.template,
      day,
      subject: rendered.subject,
      provider: s.provider.name,
      messageId: messageIdFor(ledgerId, s.messageIdDomain),
      taskId: ctx.taskId,
      claimMs: s.claimMs ?? 30_000,
    });
    if (claim.kind === "sent") {
      return { status: "already_sent", skipped: true, message_id: claim.messageId };
    }
    if (claim.kind === "busy") {
      // Another task's live sender holds the row: not this task's failure.
      // Look again when its claim expires (it will most likely be sent by then).
      throw new DeferredTaskError(
        `Another sender holds ${claim.messageId} until ${claim.claimedUntil.toISOString()}`,
        Math.max(200, claim.claimedUntil.getTime() - ctx.deps.now()),
      );
    }
    const msg: OutgoingEmail = {
      messageId: claim.messageId,
      from: s.from,
      to,
      subject: rendered.subject,
      text: rendered.text,
      html: rendered.html,
      headers: unsubscribeHeaders(link),
      date: enqueued,
      ...(attachments.length ? { attachments } : {}),
    };
    let result: SendResult;
    try {
      result = await deliver(s, msg, ctx.signal);
    } catch (err) {
      await releaseClaim(sql, ledgerId, claim.token).catch((e) =>
        ctx.log.warn("releasing the send claim failed; it expires instead", { err: e })
      );
      throw err;
    }
    const recorded = await ledger.record({
      leadId: lead.id,
      ledgerId,
      token: claim.token,
      response: result.response,
      source,
      event: { template: p.template, message_id: claim.messageId, to },
    });
    if (!recorded) {
      // Our claim expired mid-send and another sender took the row over; it records the send.
      ctx.log.warn("send claim lost before it was recorded", { message_id: claim.messageId });
    } else if (s.scorer) {
      // Right after the delivery's commit: the record is one call by design
      // (no transaction held around the provider call), and the new
      // last_contacted moves days_since_last_contact. A failure here leaves the
      // previous score until the next write or activation; the email is sent.
      await ledger.rescore({ leadId: lead.id }).catch((err) =>
        ctx.log.warn("rescoring the contacted lead failed", { lead_id: lead.id, err })
      );
    }
    return {
      status: "sent",
      message_id: claim.messageId,
      provider: s.provider.name,
      response: result.response,
    };
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

/** A confirmation variable as one trimmed line, or undefined when absent or blank. */
function variable(variables: Record<string, unknown>, name: string): string | undefined {
  const raw = variables[name];
  if (raw === undefined || raw === null) return undefined;
  const value = String(raw).replace(/\s+/g, " ").trim();
  return value === "" ? undefined : value;
}

/**
 * The .ics of an appointment. Where to meet comes from the confirmation's
 * variables (validated by the template render before this runs): the
 * meeting link is the URL and, without a `location`, the LOCATION too (the
 * field calendar apps show and make clickable); DESCRIPTION carries the
 * agenda and the link, for clients that show neither property.
 */
function invite(
  a: AppointmentRow,
  mail: { from: string; to: string; variables: Record<string, unknown> },
) {
  const organizer = /<([^>]+)>/.exec(mail.from)?.[1] ?? mail.from;
  const meetingUrl = variable(mail.variables, "meeting_url");
  const location = variable(mail.variables, "location") ?? meetingUrl;
  const agenda = variable(mail.variables, "agenda");
  const description = [
    ...(agenda ? [`What we'll cover: ${agenda}`] : []),
    ...(meetingUrl ? [`Join the call: ${meetingUrl}`] : []),
  ].join("\n");
  return inviteAttachment(buildInvite({
    id: a.id,
    start: new Date(a.starts_at),
    durationMin: a.duration_min,
    // The booking time, not now: every attempt attaches identical bytes.
    stamp: new Date(a.created_at),
    sequence: a.sequence,
    summary: "Pleasant Cove — website consultation",
    ...(description ? { description } : {}),
    ...(location ? { location } : {}),
    ...(meetingUrl ? { url: meetingUrl } : {}),
    organizer: { email: organizer, name: "Pleasant Cove" },
    attendee: { email: mail.to },
  }));
}
