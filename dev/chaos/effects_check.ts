/**
 * The outreach half of a chaos run's verification, counted where the effect
 * lands rather than in the platform's own ledger:
 *
 * - emails: the `.eml` files in the file provider's outbox, by recipient
 *   (each `emails` operation mails a recipient of its own): an acknowledged
 *   email whose task succeeded is exactly one file; no recipient has two;
 * - bookings: `appointments` rows by attendee (one per acknowledged
 *   booking whose task succeeded) and the `meeting_confirmation` emails the
 *   booking sends, again counted as outbox files by recipient;
 * - events: `lead_events` rows by client id: each id of an acknowledged
 *   batch stored exactly once, no id of any batch stored twice.
 *
 * A task that ended dead (with a reason) is terminal, not lost; it is
 * counted in `dead_tasks` of the report.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import { Drain, type DrainBounds } from "./drain.ts";
import type { DoneLine } from "./load.ts";

const ACKED = new Set([200, 201, 202]);

/** What the check found. */
export interface EffectsVerdict {
  /** Per kind: operations acknowledged. */
  acknowledged: Record<"emails" | "bookings" | "events", number>;
  lost: string[];
  duplicated: string[];
  not_terminal: string[];
  dead_tasks: number;
  /** Events a final 200 rejected (a finding: the load only sends valid events). */
  rejected_events: number;
}

/** Recipients of the `.eml` files in `dir` (lower case), one entry per file. */
export async function outboxRecipients(dir: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".eml") || entry.name.startsWith(".")) continue;
    const text = await Deno.readTextFile(`${dir}/${entry.name}`).catch(() => "");
    const head = text.slice(0, Math.max(0, text.search(/\r?\n\r?\n/)));
    const to = /^To:\s*(.*)$/im.exec(head)?.[1] ?? "";
    const address = /[^\s<>,"]+@[^\s<>,"]+/.exec(to)?.[0]?.toLowerCase();
    if (address) counts.set(address, (counts.get(address) ?? 0) + 1);
  }
  return counts;
}

type TaskInfo = Awaited<ReturnType<TaskQueue["getTask"]>>;
const terminal = (t: TaskInfo | undefined) => t?.status === "succeeded" || t?.status === "dead";

/** Waits (within the drain's `bounds`, drain.ts) for every acknowledged effect to land, then judges. */
export async function verifyEffects(
  done: DoneLine[],
  ctx: { sql: Pool; queue: TaskQueue; outbox: string },
  bounds: DrainBounds,
): Promise<EffectsVerdict> {
  const of = (kind: DoneLine["kind"]) => done.filter((d) => d.kind === kind);
  const emails = of("emails");
  const bookings = of("bookings");
  const batches = of("events");
  const ackedEmails = emails.filter((d) => ACKED.has(d.status));
  const ackedBookings = bookings.filter((d) => ACKED.has(d.status));
  const ackedBatches = batches.filter((d) => d.status === 200);
  const eventIds = batches.flatMap((d) => d.events ?? []);
  const rejected = new Set(batches.flatMap((d) => d.rejected ?? []));
  const drain = new Drain(bounds, Date.now());
  const deadline = Date.now() + bounds.baseMs + bounds.extendMs;

  let files = new Map<string, number>();
  let appointments = new Map<string, number>();
  let stored = new Map<string, number>();
  let emailTasks: TaskInfo[] = [];
  let bookingTasks: TaskInfo[] = [];
  const judge = () => {
    const lost: string[] = [];
    const notTerminal: string[] = [];
    ackedEmails.forEach((d, i) => {
      const t = emailTasks[i];
      if (!terminal(t)) notTerminal.push(`email ${d.op} (${t?.status ?? "missing"})`);
      else if (t?.status === "succeeded" && (files.get(d.name) ?? 0) === 0) {
        lost.push(`email ${d.op} to ${d.name}`);
      }
    });
    ackedBookings.forEach((d, i) => {
      const t = bookingTasks[i];
      if (!terminal(t)) notTerminal.push(`booking ${d.op} (${t?.status ?? "missing"})`);
      else if (t?.status === "succeeded") {
        if ((appointments.get(d.name) ?? 0) === 0) lost.push(`booking ${d.op} (no appointment)`);
        if ((files.get(d.name) ?? 0) === 0) lost.push(`booking ${d.op} (no confirmation email)`);
      }
    });
    for (const d of ackedBatches) {
      for (const id of d.events ?? []) {
        if (!rejected.has(id) && (stored.get(id) ?? 0) === 0) lost.push(`event ${id} (${d.op})`);
      }
    }
    return { lost, notTerminal };
  };

  for (;;) {
    try {
      files = await outboxRecipients(ctx.outbox);
      const { rows: a } = await ctx.sql.query<{ email: string; n: string }>(
        `SELECT lower(attendee_email) AS email, count(*) AS n FROM appointments
          WHERE attendee_email LIKE '%@chaos.example.com' GROUP BY 1`,
      );
      appointments = new Map(a.map((r) => [r.email, Number(r.n)]));
      const { rows: e } = await ctx.sql.query<{ id: string; n: string }>(
        "SELECT id::text AS id, count(*) AS n FROM lead_events WHERE id = ANY($1::uuid[]) GROUP BY id",
        [eventIds],
      );
      stored = new Map(e.map((r) => [r.id, Number(r.n)]));
      emailTasks = await Promise.all(ackedEmails.map((d) => ctx.queue.getTask(d.ids[0] ?? "")));
      bookingTasks = await Promise.all(
        ackedBookings.map((d) => ctx.queue.getTask(d.ids[0] ?? "")),
      );
    } catch (err) {
      // A store still recovering: look again until the deadline.
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    const { lost, notTerminal } = judge();
    if (!drain.observe(lost.length + notTerminal.length, Date.now())) {
      const duplicated: string[] = [];
      for (const d of [...emails, ...bookings]) {
        if ((files.get(d.name) ?? 0) > 1) duplicated.push(`outbox ${d.name}: ${files.get(d.name)}`);
        if (d.ids.length > 1) duplicated.push(`${d.kind} ${d.op} (task ids ${d.ids})`);
      }
      for (const d of bookings) {
        const n = appointments.get(d.name) ?? 0;
        if (n > 1) duplicated.push(`appointments of ${d.name}: ${n}`);
      }
      for (const [id, n] of stored) if (n > 1) duplicated.push(`event ${id}: ${n} rows`);
      return {
        acknowledged: {
          emails: ackedEmails.length,
          bookings: ackedBookings.length,
          events: ackedBatches.length,
        },
        lost,
        duplicated,
        not_terminal: notTerminal,
        dead_tasks: [...emailTasks, ...bookingTasks].filter((t) => t?.status === "dead").length,
        rejected_events: rejected.size,
      };
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
