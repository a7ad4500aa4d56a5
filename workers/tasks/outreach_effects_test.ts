import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { useTestStack } from "../../testing/stack.ts";
import { createFileProvider } from "../../shared/email/providers/file.ts";
import { createLead } from "../../shared/leads/repository.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import type { TaskContext } from "../runner.ts";
import { bookAppointmentHandler } from "./book_appointment.ts";
import { ledgerIdFor, sendEmailHandler } from "./send_email.ts";
import { EmailTransientError } from "../../shared/email/provider.ts";
import { claimSend, recordDelivered } from "../../shared/leads/email_ledger.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { runTag } from "../../testing/namespace.ts";
import { taskContext, testEmailServices } from "../../testing/tasks.ts";

// The Neon Pool keeps WebSocket ops alive between queries (docs/reference/neon-local.md §5).
const opts = noSanitizers;

/** The text/calendar part of an .eml, its transfer encoding undone. */
function calendarPart(eml: string): string {
  const start = eml.search(/^Content-Type: text\/calendar/im);
  assert.ok(start >= 0, "a text/calendar part");
  const headerEnd = eml.indexOf("\r\n\r\n", start);
  const headers = eml.slice(start, headerEnd);
  const body = eml.slice(headerEnd + 4, eml.indexOf("\r\n--", headerEnd));
  const encoding = /Content-Transfer-Encoding: *([\w-]+)/i.exec(headers)?.[1]?.toLowerCase();
  if (encoding === "base64") return Buffer.from(body.replace(/\s+/g, ""), "base64").toString();
  if (encoding === "quoted-printable") {
    const bytes = body.replace(/=\r\n/g, "").replace(
      /=([0-9A-F]{2})/gi,
      (_, h: string) => String.fromCharCode(parseInt(h, 16)),
    );
    return new TextDecoder().decode(Uint8Array.from(bytes, (c) => c.charCodeAt(0)));
  }
  return body;
}

Deno.test({
  name: "send_email and book_appointment: the effect happens once under duplicate delivery",
  ...opts,
}, async (t) => {
  await using stack = await useTestStack();
  const deps = stack.makeDeps();
  const run = runTag();
  const outbox = await Deno.makeTempDir({ prefix: "pco-outbox-" });
  const queue = createQueue(deps.redis, TASK_CATALOG, { namespace: `oe${run}` });
  const ctx = (taskId: string): TaskContext => taskContext(deps, taskId);
  const sendEmail = sendEmailHandler(testEmailServices(createFileProvider({ dir: outbox })));
  const book = bookAppointmentHandler({ queue });
  const lead = await createLead(deps.sql, {
    name: `Harbor Bakery ${run}`,
    city: `Testville-${run}`,
    email: `owner-${run}@harbor.test`,
    source: "test",
    external_id: `oe-${run}`,
  }, "test");
  const emails = () => [...Deno.readDirSync(outbox)].filter((e) => e.name.endsWith(".eml"));
  try {
    await t.step("send_email run twice at once: one .eml, one ledger row", async () => {
      const payload = { lead_id: lead.id, template: "intro", variables: { sender_name: "Ana" } };
      const results = await Promise.allSettled([
        // Two tasks for the same email (a redelivery of ONE task would take its own claim over).
        sendEmail(payload, ctx("task-a")),
        sendEmail(payload, ctx("task-a2")),
      ]);
      // The loser either finds the row sent, or finds it claimed by the live
      // sender and fails retryably (its retry then finds it sent).
      const outcomes = results.map((r) =>
        r.status === "fulfilled"
          ? r.value.status
          : /Another sender holds/.test(String(r.reason))
          ? "busy"
          : String(r.reason)
      ).sort();
      assert.ok(
        JSON.stringify(outcomes) === '["already_sent","sent"]' ||
          JSON.stringify(outcomes) === '["busy","sent"]',
        JSON.stringify(outcomes),
      );
      assert.equal(emails().length, 1);
      const eml = await Deno.readTextFile(`${outbox}/${emails()[0]!.name}`);
      assert.match(eml, /^Message-ID: <[0-9a-f-]+@pleasantcove\.test>/m);
      // Long headers are folded (CRLF + space).
      assert.match(
        eml,
        /^List-Unsubscribe:\s+<http:\/\/127\.0\.0\.1:8787\/v1\/unsubscribe\?token=/m,
      );
      const { rows } = await deps.sql.query(
        "SELECT status FROM email_messages WHERE business_id = $1",
        [lead.id],
      );
      assert.deepEqual(rows.map((r) => r.status), ["sent"]);
      // Later the same day (a replay from the DLQ, say): skipped.
      const again = await sendEmail(payload, ctx("task-b"));
      assert.deepEqual(
        { status: again.status, skipped: (again as { skipped?: boolean }).skipped },
        { status: "already_sent", skipped: true },
      );
      const events = await deps.sql.query(
        "SELECT event_type FROM lead_events WHERE lead_id = $1 AND event_type = 'email_sent'",
        [lead.id],
      );
      assert.equal(events.rowCount, 1);
      const status = await deps.sql.query(
        "SELECT outreach_status, last_contacted FROM businesses WHERE id = $1",
        [lead.id],
      );
      assert.equal(status.rows[0].outreach_status, "contacted");
      assert.ok(status.rows[0].last_contacted);
      // The lead history names the sending task (migration 010's trigger, told by recordDelivered).
      const history = await deps.sql.query(
        `SELECT source, changes ? 'last_contacted' AS contacted, changes->'outreach_status' AS status
           FROM lead_history WHERE lead_id = $1 AND action <> 'created'`,
        [lead.id],
      );
      assert.equal(history.rowCount, 1);
      assert.match(history.rows[0].source, /^worker:send_email/);
      assert.equal(history.rows[0].contacted, true);
      assert.deepEqual(history.rows[0].status, { old: "new", new: "contacted" });
    });

    await t.step(
      "a crashed sender's expired claim is taken over, its late record refused",
      async () => {
        const payload = {
          lead_id: lead.id,
          template: "follow_up",
          variables: { sender_name: "Ana" },
        };
        const day = new Date().toISOString().slice(0, 10);
        const to = `owner-${run}@harbor.test`;
        const ledgerId = ledgerIdFor(to, "follow_up", lead.id, day);
        // A sender that claimed the row and died: its claim expires at once.
        const stale = await claimSend(deps.sql, {
          ledgerId,
          leadId: lead.id,
          to,
          template: "follow_up",
          day,
          subject: "s",
          provider: "file",
          messageId: `<${ledgerId}@pleasantcove.test>`,
          taskId: "crashed",
          claimMs: 1,
        });
        assert.equal(stale.kind, "claimed");
        await new Promise((r) => setTimeout(r, 5));
        const res = await sendEmail(payload, ctx("task-redelivered"));
        assert.equal(res.status, "sent");
        assert.equal((res as { message_id: string }).message_id, `<${ledgerId}@pleasantcove.test>`);
        if (stale.kind !== "claimed") return;
        const late = await recordDelivered(deps.sql, {
          ledgerId,
          token: stale.token,
          response: "250 late",
          source: "test",
          event: {},
        });
        assert.equal(late, false, "the lost claim records nothing");
        assert.equal(emails().length, 2);
        const { rows } = await deps.sql.query(
          "SELECT status, attempts FROM email_messages WHERE id = $1",
          [ledgerId],
        );
        assert.deepEqual([rows[0].status, rows[0].attempts], ["sent", 2]);
      },
    );

    await t.step(
      "a failed provider call gives the claim back; the retry sends at once",
      async () => {
        let calls = 0;
        const flaky = sendEmailHandler(testEmailServices({
          name: "flaky",
          send: () => {
            calls++;
            return calls === 1
              ? Promise.reject(new EmailTransientError("451 try later", { provider: "flaky" }))
              : Promise.resolve({ response: "250 ok" });
          },
        }));
        const payload = {
          lead_id: lead.id,
          template: "intro",
          variables: { sender_name: "Ana" },
          to: `second-${run}@harbor.test`,
        };
        await assert.rejects(flaky(payload, ctx("task-flaky")), /451 try later/);
        // Another task (not a redelivery) must not find the row claimed.
        const res = await flaky(payload, ctx("task-flaky-2"));
        assert.equal(res.status, "sent");
        assert.equal(calls, 2);
      },
    );

    await t.step("a suppressed address is not emailed", async () => {
      await deps.sql.query("INSERT INTO email_suppressions (address) VALUES ($1)", [
        `blocked-${run}@harbor.test`,
      ]);
      const res = await sendEmail({
        lead_id: lead.id,
        template: "follow_up",
        variables: { sender_name: "Ana" },
        to: `Blocked-${run}@harbor.test`,
      }, ctx("task-c"));
      assert.equal(res.status, "suppressed");
      assert.equal(emails().length, 2);
      // A redelivery records the email_suppressed event once (its id comes from the task).
      const again = await sendEmail({
        lead_id: lead.id,
        template: "follow_up",
        variables: { sender_name: "Ana" },
        to: `Blocked-${run}@harbor.test`,
      }, ctx("task-c"));
      assert.equal(again.status, "suppressed");
      const { rows } = await deps.sql.query(
        "SELECT event_data FROM lead_events WHERE lead_id = $1 AND event_type = 'email_suppressed'",
        [lead.id],
      );
      assert.deepEqual(rows.map((r) => r.event_data), [
        { template: "follow_up", refused_by: "worker" },
      ]);
    });

    await t.step("an unknown template is permanent, nothing is written", async () => {
      await assert.rejects(
        sendEmail({ lead_id: lead.id, template: "nope", variables: {} }, ctx("task-d")),
        (err: Error) => err.name === "PermanentTaskError" && /nope/.test(err.message),
      );
    });

    const startsAt = new Date(Date.now() + 3 * 86_400_000);
    startsAt.setUTCHours(15, 0, 0, 0);
    const booking = {
      lead_id: lead.id,
      starts_at: startsAt.toISOString(),
      duration_min: 30,
      attendee_email: `owner-${run}@harbor.test`,
      confirmation: { sender_name: "Ana" },
    };
    await t.step(
      "book_appointment run twice at once: one appointment, one confirmation",
      async () => {
        const [a, b] = await Promise.all([
          book(booking, ctx("book-1")),
          book(booking, ctx("book-1")),
        ]);
        assert.equal(a.status, "booked");
        assert.equal(b.status, "booked");
        if (a.status !== "booked" || b.status !== "booked") return;
        assert.equal(a.appointment.id, b.appointment.id);
        assert.equal(a.confirmation_task_id, b.confirmation_task_id);
        const { rows } = await deps.sql.query(
          "SELECT id FROM appointments WHERE business_id = $1",
          [
            lead.id,
          ],
        );
        assert.equal(rows.length, 1);
        const confirmation = await queue.getTask(a.confirmation_task_id);
        assert.equal(confirmation?.type, "send_email");
        assert.equal(
          (confirmation?.payload as { template: string }).template,
          "meeting_confirmation",
        );
        const lead2 = await deps.sql.query("SELECT outreach_status FROM businesses WHERE id = $1", [
          lead.id,
        ]);
        // contacted → responded → meeting_scheduled, one event per step.
        assert.equal(lead2.rows[0].outreach_status, "meeting_scheduled");
      },
    );

    await t.step("another booking for the same lead and day is prevented", async () => {
      const later = new Date(startsAt.getTime() + 2 * 3_600_000).toISOString();
      const res = await book({ ...booking, starts_at: later }, ctx("book-2"));
      assert.equal(res.status, "duplicate_prevented");
      if (res.status !== "duplicate_prevented") return;
      assert.equal(res.existing_appointment.starts_at, startsAt.toISOString());
    });

    await t.step("the confirmation email carries an RFC 5545 invite", async () => {
      const { rows } = await deps.sql.query("SELECT id FROM appointments WHERE business_id = $1", [
        lead.id,
      ]);
      const res = await sendEmail({
        lead_id: lead.id,
        template: "meeting_confirmation",
        to: `owner-${run}@harbor.test`,
        appointment_id: rows[0].id,
        variables: {
          sender_name: "Ana",
          starts_at: startsAt.toISOString(),
          duration_min: 30,
          meeting_url: "https://meet.example/harbor",
          agenda: "Your new site",
        },
      }, ctx("confirm-1"));
      assert.equal(res.status, "sent");
      const files = emails();
      assert.equal(files.length, 3);
      const texts = await Promise.all(files.map((f) => Deno.readTextFile(`${outbox}/${f.name}`)));
      const invite = texts.find((x) => x.includes("text/calendar"));
      assert.ok(invite, "an email with a text/calendar part");
      // The calendar part, decoded (nodemailer may base64 or quoted-printable it).
      const ics = calendarPart(invite).replace(/\r\n /g, ""); // unfolded
      assert.match(ics, /\r\nURL:https:\/\/meet\.example\/harbor\r\n/);
      assert.match(ics, /\r\nLOCATION:https:\/\/meet\.example\/harbor\r\n/);
      assert.match(
        ics,
        /\r\nDESCRIPTION:What we'll cover: Your new site\\nJoin the call: https:\/\/meet\.example\/harbor\r\n/,
      );
    });
    await t.step("a meeting email describes the appointment as it is when sent", async () => {
      const { rows } = await deps.sql.query("SELECT id FROM appointments WHERE business_id = $1", [
        lead.id,
      ]);
      const id = rows[0].id;
      // Moved after the email was queued: the queued variables still name the old start.
      const moved = new Date(startsAt.getTime() + 90 * 60_000);
      await deps.sql.query(
        "UPDATE appointments SET starts_at = $2, sequence = sequence + 1 WHERE id = $1",
        [id, moved.toISOString()],
      );
      const stale = {
        lead_id: lead.id,
        template: "meeting_confirmation",
        appointment_id: id,
        variables: { sender_name: "Ana", starts_at: startsAt.toISOString(), duration_min: 30 },
      };
      const before = new Set(emails().map((f) => f.name));
      const res = await sendEmail({ ...stale, to: `moved-${run}@harbor.test` }, ctx("confirm-2"));
      assert.equal(res.status, "sent");
      const file = emails().find((f) => !before.has(f.name))!;
      const eml = await Deno.readTextFile(`${outbox}/${file.name}`);
      const ics = calendarPart(eml).replace(/\r\n /g, "");
      const utc = moved.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
      assert.match(ics, new RegExp(`\r\nDTSTART:${utc}\r\n`));
      assert.match(ics, /\r\nSEQUENCE:1\r\n/);
      // The body's time is the row's too (4:30 PM UTC, not 3:00 PM).
      assert.match(eml, /4:30 PM to 5:00 PM UTC/);
      assert.doesNotMatch(eml, /3:00 PM to 3:30 PM UTC/);
      // Cancelled before the email went out: nothing is sent.
      await deps.sql.query("UPDATE appointments SET status = 'cancelled' WHERE id = $1", [id]);
      const count = emails().length;
      const skipped = await sendEmail(
        { ...stale, to: `cancelled-${run}@harbor.test` },
        ctx("confirm-3"),
      );
      assert.deepEqual(skipped, {
        status: "appointment_cancelled",
        skipped: true,
        appointment_id: id,
      });
      assert.equal(emails().length, count);
    });
    await t.step("a cancelled appointment does not block rebooking that day", async () => {
      await deps.sql.query("UPDATE appointments SET status = 'cancelled' WHERE business_id = $1", [
        lead.id,
      ]);
      const res = await book(booking, ctx("book-3"));
      assert.equal(res.status, "booked");
      const { rows } = await deps.sql.query(
        "SELECT status FROM appointments WHERE business_id = $1 ORDER BY created_at",
        [lead.id],
      );
      assert.deepEqual(rows.map((r) => r.status), ["cancelled", "booked"]);
    });

    await t.step("a not_interested lead is neither emailed nor booked by the workers", async () => {
      await deps.sql.query(
        "UPDATE businesses SET outreach_status = 'not_interested' WHERE id = $1",
        [
          lead.id,
        ],
      );
      const sent = emails().length;
      const email = await sendEmail({
        lead_id: lead.id,
        template: "follow_up",
        variables: { sender_name: "Ana" },
      }, ctx("task-ni"));
      assert.deepEqual(email, { status: "lead_not_interested", skipped: true });
      assert.equal(emails().length, sent);
      const later = {
        ...booking,
        starts_at: new Date(Date.parse(booking.starts_at) + 86_400_000).toISOString(),
      };
      assert.deepEqual(await book(later, ctx("book-ni")), {
        status: "lead_not_interested",
        skipped: true,
      });
    });
  } finally {
    await deps.sql.query("DELETE FROM lead_events WHERE lead_id = $1", [lead.id]);
    await deps.sql.query("DELETE FROM email_messages WHERE business_id = $1", [lead.id]);
    await deps.sql.query("DELETE FROM appointments WHERE business_id = $1", [lead.id]);
    await deps.sql.query("DELETE FROM email_suppressions WHERE address = $1", [
      `blocked-${run}@harbor.test`,
    ]);
    await deps.sql.query("DELETE FROM businesses WHERE id = $1", [lead.id]);
    await Deno.remove(outbox, { recursive: true });
  }
});
