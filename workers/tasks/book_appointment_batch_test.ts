import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createLead } from "../../shared/leads/repository.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import { bookAppointmentHandler } from "./book_appointment.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { runTag } from "../../testing/namespace.ts";
import { countingPool, taskContext } from "../../testing/tasks.ts";

Deno.test({
  name: "book_appointment books concurrent bookings in one call, each with its own outcome",
  ...noSanitizers,
}, async (t) => {
  await using stack = await useTestStack();
  const deps = stack.makeDeps();
  const run = runTag();
  const queue = createQueue(deps.redis, TASK_CATALOG, { namespace: `bb${run}` });
  const counted = countingPool(deps.sql);
  const ctx = (taskId: string) => taskContext({ ...deps, sql: counted.pool }, taskId);
  const book = bookAppointmentHandler({ queue });
  const day = 86_400_000;
  const startsAt = new Date(Math.ceil(Date.now() / day) * day + 3 * day + 14 * 3_600_000);
  const booking = (leadId: string, i: number | string) => ({
    lead_id: leadId,
    starts_at: startsAt.toISOString(),
    duration_min: 30,
    attendee_email: `Owner-${run}-${i}@Batch.test`,
    confirmation: { sender_name: "Ana" },
  });
  const newLead = async (i: number | string, status?: string) => {
    const lead = await createLead(deps.sql, {
      name: `Booked Bakery ${run} ${i}`,
      source: "test",
      external_id: `bb-${run}-${i}`,
    }, "test");
    if (status) {
      await deps.sql.query("UPDATE businesses SET outreach_status = $2 WHERE id = $1", [
        lead.id,
        status,
      ]);
    }
    return lead;
  };

  await t.step("ten bookings at once: ten appointments, one statement", async () => {
    // Every other lead was contacted already: it walks through responded.
    const leads = await Promise.all(
      Array.from({ length: 10 }, (_, i) => newLead(i, i % 2 ? "contacted" : undefined)),
    );
    const before = counted.statements();
    const results = await Promise.all(
      leads.map((lead, i) => book(booking(lead.id, i), ctx(`bb-${run}-${i}`))),
    );
    assert.deepEqual(results.map((r) => r.status), Array(10).fill("booked"));
    // Without a scorer the lock and the bookings are one autocommitted call
    // (migration 019): no BEGIN, lock or COMMIT of their own.
    const statements = counted.statements() - before;
    assert.equal(statements, 1, `${statements} statements for 10 bookings`);
    for (const [i, r] of results.entries()) {
      if (r.status !== "booked") continue;
      assert.equal(r.appointment.lead_id, leads[i]!.id);
      assert.equal(r.appointment.attendee_email, `owner-${run}-${i}@batch.test`);
      assert.equal(r.appointment.starts_at, startsAt.toISOString());
      assert.equal(r.appointment.task_id, `bb-${run}-${i}`);
    }
    // One confirmation each, enqueued by one script call for the batch.
    const confirmations = results.map((r) => r.status === "booked" ? r.confirmation_task_id : "");
    assert.equal(new Set(confirmations).size, 10);
    for (const [i, id] of confirmations.entries()) {
      const task = await queue.getTask(id);
      assert.equal((task?.payload as { lead_id: string }).lead_id, leads[i]!.id);
    }
    const ids = leads.map((l) => l.id);
    const { rows: events } = await deps.sql.query<
      { lead_id: string; types: string[]; steps: string[]; sources: string[] }
    >(
      `SELECT lead_id, array_agg(event_type ORDER BY time) AS types,
              array_agg(event_data->>'to' ORDER BY time) FILTER (WHERE event_type = 'status_changed')
                AS steps,
              array_agg(DISTINCT source) AS sources
         FROM lead_events WHERE lead_id = ANY($1::uuid[]) AND event_type <> 'lead_created'
        GROUP BY lead_id`,
      [ids],
    );
    assert.equal(events.length, 10);
    for (const e of events) {
      const i = ids.indexOf(e.lead_id);
      const steps = i % 2 ? ["responded", "meeting_scheduled"] : [
        "contacted",
        "responded",
        "meeting_scheduled",
      ];
      assert.deepEqual(e.steps, steps);
      assert.deepEqual(e.types, [...steps.map(() => "status_changed"), "appointment_booked"]);
      assert.deepEqual(e.sources, [`worker:book_appointment:bb-${run}-${i}`]);
    }
    // The last step names the appointment; the history row names the booking's task.
    const { rows: history } = await deps.sql.query<
      { lead_id: string; source: string; action: string; status: unknown }
    >(
      `SELECT lead_id, source, action, changes->'outreach_status' AS status FROM lead_history
        WHERE lead_id = ANY($1::uuid[]) AND source LIKE 'worker:book_appointment:%'`,
      [ids],
    );
    assert.equal(history.length, 10);
    for (const h of history) {
      const i = ids.indexOf(h.lead_id);
      assert.equal(h.source, `worker:book_appointment:bb-${run}-${i}`);
      assert.equal(h.action, "status_changed");
      assert.deepEqual(h.status, {
        old: i % 2 ? "contacted" : "new",
        new: "meeting_scheduled",
      });
    }
    const { rows: named } = await deps.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM lead_events e JOIN appointments a
           ON a.id = (e.event_data->>'appointment_id')::uuid AND a.business_id = e.lead_id
        WHERE e.lead_id = ANY($1::uuid[]) AND e.event_data->>'to' = 'meeting_scheduled'`,
      [ids],
    );
    assert.equal(named[0]!.n, 10);
  });

  await t.step("in one batch: a duplicate, a rerun, a missing and a closed lead", async () => {
    const [taken, rerun, closed] = await Promise.all([
      newLead("taken"),
      newLead("rerun"),
      newLead("closed", "not_interested"),
    ]);
    await book(booking(taken!.id, "first"), ctx(`bb-${run}-first`));
    const before = await book(booking(rerun!.id, "rerun"), ctx(`bb-${run}-rerun`));
    const results = await Promise.allSettled([
      book(booking(taken!.id, "second"), ctx(`bb-${run}-second`)),
      book(booking(rerun!.id, "rerun"), ctx(`bb-${run}-rerun`)),
      book(booking(crypto.randomUUID(), "missing"), ctx(`bb-${run}-missing`)),
      book(booking(closed!.id, "closed"), ctx(`bb-${run}-closed`)),
    ]);
    const [duplicate, again, missing, refused] = results;
    assert.equal(
      duplicate!.status === "fulfilled" && duplicate!.value.status,
      "duplicate_prevented",
    );
    assert.equal(again!.status === "fulfilled" && again!.value.status, "booked");
    if (again!.status === "fulfilled" && again!.value.status === "booked") {
      assert.equal(
        before.status === "booked" && before.appointment.id,
        again!.value.appointment.id,
      );
    }
    assert.equal(missing!.status, "rejected");
    assert.match(String((missing as PromiseRejectedResult).reason), /does not exist/);
    assert.equal(refused!.status === "fulfilled" && refused!.value.status, "lead_not_interested");
    const { rows } = await deps.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM appointments WHERE business_id = ANY($1::uuid[])`,
      [[taken!.id, rerun!.id, closed!.id]],
    );
    assert.equal(rows[0]!.n, 2);
  });

  await t.step("a batch of only missing and closed leads books nothing", async () => {
    const closed = await newLead("only-closed", "not_interested");
    const before = counted.statements();
    const results = await Promise.allSettled([
      book(booking(crypto.randomUUID(), "only-missing"), ctx(`bb-${run}-only-missing`)),
      book(booking(closed.id, "only-closed"), ctx(`bb-${run}-only-closed`)),
    ]);
    assert.equal(counted.statements() - before, 1);
    assert.equal(results[0]!.status, "rejected");
    assert.match(String((results[0] as PromiseRejectedResult).reason), /does not exist/);
    assert.equal(
      results[1]!.status === "fulfilled" && results[1]!.value.status,
      "lead_not_interested",
    );
    const { rows } = await deps.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM appointments WHERE business_id = $1`,
      [closed.id],
    );
    assert.equal(rows[0]!.n, 0);
  });

  await t.step(
    "the call waits for the lead's lock and decides on the status committed",
    async () => {
      // Another transaction holds the lead (a "not interested" answer being
      // saved): the booking waits for it and sees its commit, never the old status.
      const lead = await newLead("locked", "contacted");
      const other = await deps.sql.connect();
      try {
        await other.query("BEGIN");
        await other.query(
          "UPDATE businesses SET outreach_status = 'not_interested' WHERE id = $1",
          [lead.id],
        );
        let settled = false;
        const pending = book(booking(lead.id, "locked"), ctx(`bb-${run}-locked`)).finally(() => {
          settled = true;
        });
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(settled, false, "the booking did not wait for the lead's lock");
        await other.query("COMMIT");
        assert.equal((await pending).status, "lead_not_interested");
      } finally {
        other.release();
      }
      const { rows } = await deps.sql.query<{ n: number; status: string }>(
        `SELECT (SELECT count(*)::int FROM appointments WHERE business_id = $1) AS n,
              (SELECT outreach_status FROM businesses WHERE id = $1) AS status`,
        [lead.id],
      );
      assert.deepEqual(rows[0], { n: 0, status: "not_interested" });
    },
  );
});
