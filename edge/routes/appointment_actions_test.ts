import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import type { TaskContext } from "../../workers/runner.ts";
import { bookAppointmentHandler } from "../../workers/tasks/book_appointment.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

type Json = Record<string, unknown>;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

Deno.test({
  name: "appointments: read one, cancel and reschedule (idempotent, evented, one per day)",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    const sql = h.deps.sql;
    // Whole days ahead at 15:00 UTC: the same UTC day in every zone used here.
    const day0 = Math.ceil(Date.now() / DAY) * DAY + 3 * DAY + 15 * HOUR;
    const iso = (ms: number) => new Date(ms).toISOString();
    const lead = await h.lead({ name: `Pier Bistro ${h.run}`, email: "pier@bistro.example" });
    const insert = async (startsAt: number) => {
      const { rows } = await sql.query<{ id: string }>(
        `INSERT INTO appointments (business_id, starts_at, duration_min, attendee_email, day)
         VALUES ($1, $2::timestamptz, 30, 'pier@bistro.example',
                 ($2::timestamptz AT TIME ZONE 'UTC')::date)
         RETURNING id`,
        [lead.id, iso(startsAt)],
      );
      return rows[0]!.id;
    };
    const events = async (type: string) =>
      (await sql.query<{ event_data: Json; source: string }>(
        `SELECT event_data, source FROM lead_events WHERE lead_id = $1 AND event_type = $2
          ORDER BY time`,
        [lead.id, type],
      )).rows;
    const post = (path: string, json?: unknown, headers?: Record<string, string>) =>
      h.call("POST", path, {
        ...(json === undefined ? {} : { json }),
        ...(headers ? { headers } : {}),
      });

    try {
      const a = await insert(day0);
      const b = await insert(day0 + 2 * DAY);

      await t.step("GET one: every field; unknown id → 404; a viewer may read", async () => {
        const res = await h.call("GET", `/v1/appointments/${a}`, { auth: h.tokens.viewer });
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.id, a);
        assert.equal(body.lead_id, lead.id);
        assert.equal(body.lead_name, lead.name);
        assert.equal(body.starts_at, iso(day0));
        assert.equal(body.status, "booked");
        assert.equal(body.day, iso(day0).slice(0, 10));
        assert.equal(body.time_zone, "UTC");
        assert.equal(body.sequence, 0);
        assert.equal(body.cancelled_at, null);
        const missing = await h.call("GET", `/v1/appointments/${crypto.randomUUID()}`);
        assert.equal(missing.status, 404);
        assert.equal((await missing.json()).code, "appointment-not-found");
        const bad = await h.call("GET", "/v1/appointments/not-a-uuid");
        assert.equal(bad.status, 400);
        await bad.body?.cancel();
      });

      await t.step("reschedule: moves day and sequence, records the event, once", async () => {
        const to = day0 + DAY + HOUR;
        const res = await post(`/v1/appointments/${a}/reschedule`, { starts_at: iso(to) });
        assert.equal(res.status, 200, await res.clone().text());
        const out = await res.json();
        assert.equal(out.changed, true);
        assert.equal(out.appointment.starts_at, iso(to));
        assert.equal(out.appointment.day, iso(to).slice(0, 10));
        assert.equal(out.appointment.sequence, 1);
        const again = await post(`/v1/appointments/${a}/reschedule`, {
          starts_at: iso(to).replace("Z", "+00:00"),
        });
        assert.equal(again.status, 200);
        const same = await again.json();
        assert.equal(same.changed, false);
        assert.equal(same.appointment.sequence, 1);
        const moved = await events("appointment_rescheduled");
        assert.equal(moved.length, 1);
        assert.deepEqual(moved[0]!.event_data, {
          appointment_id: a,
          from: iso(day0),
          to: iso(to),
          sequence: 1,
        });
        assert.equal(moved[0]!.source, "api:sa:minerva");
      });

      await t.step(
        "reschedule: one per lead per day — another booked one that day is 409",
        async () => {
          const res = await post(`/v1/appointments/${a}/reschedule`, {
            starts_at: iso(day0 + 2 * DAY + 3 * HOUR),
          });
          assert.equal(res.status, 409);
          const problem = await res.json();
          assert.equal(problem.code, "appointment-exists");
          assert.equal(problem.appointment_id, b);
          // Within its own day, the appointment does not block itself.
          const sameDay = await post(`/v1/appointments/${b}/reschedule`, {
            starts_at: iso(day0 + 2 * DAY + 2 * HOUR),
          });
          assert.equal(sameDay.status, 200);
          assert.equal((await sameDay.json()).appointment.sequence, 1);
          const past = await post(`/v1/appointments/${a}/reschedule`, {
            starts_at: iso(Date.now() - HOUR),
          });
          assert.equal(past.status, 422);
          assert.equal((await past.json()).code, "time-in-past");
          const nobody = await post(`/v1/appointments/${crypto.randomUUID()}/reschedule`, {
            starts_at: iso(day0),
          });
          assert.equal(nobody.status, 404);
          await nobody.body?.cancel();
        },
      );

      await t.step("cancel without a body: cancelled, evented; again: unchanged", async () => {
        const key = crypto.randomUUID();
        const res = await h.call("POST", `/v1/appointments/${b}/cancel`, {
          headers: { "idempotency-key": key },
        });
        assert.equal(res.status, 200, await res.clone().text());
        const out = await res.json();
        assert.equal(out.changed, true);
        assert.equal(out.appointment.status, "cancelled");
        assert.ok(out.appointment.cancelled_at);
        assert.equal(out.appointment.cancel_reason, null);
        // The same key replays the first answer.
        const replay = await h.call("POST", `/v1/appointments/${b}/cancel`, {
          headers: { "idempotency-key": key },
        });
        assert.equal(replay.status, 200);
        assert.equal(replay.headers.get("idempotency-replayed"), "true");
        assert.deepEqual(await replay.json(), out);
        const again = await post(`/v1/appointments/${b}/cancel`, { reason: "Twice" });
        const second = await again.json();
        assert.equal(second.changed, false);
        assert.equal(second.appointment.cancel_reason, null);
        const cancelled = await events("appointment_cancelled");
        assert.equal(cancelled.length, 1);
        assert.deepEqual(cancelled[0]!.event_data, {
          appointment_id: b,
          starts_at: iso(day0 + 2 * DAY + 2 * HOUR),
        });
      });

      await t.step("a cancelled appointment cannot move, and no longer holds its day", async () => {
        const moving = await post(`/v1/appointments/${b}/reschedule`, { starts_at: iso(day0) });
        assert.equal(moving.status, 409);
        assert.equal((await moving.json()).code, "appointment-cancelled");
        // a may now move onto b's day, and the edge accepts a new booking there too.
        const onto = await post(`/v1/appointments/${a}/reschedule`, {
          starts_at: iso(day0 + 2 * DAY),
        });
        assert.equal(onto.status, 200);
        const withReason = await post(`/v1/appointments/${a}/cancel`, { reason: "Owner is ill" });
        const out = await withReason.json();
        assert.equal(out.appointment.cancel_reason, "Owner is ill");
        const booking = await post("/v1/appointments", {
          lead_id: lead.id,
          starts_at: iso(day0 + 2 * DAY + HOUR),
          duration_min: 30,
          attendee_email: "pier@bistro.example",
        });
        assert.equal(booking.status, 202, await booking.clone().text());
        await booking.body?.cancel();
      });

      await t.step("a viewer may not cancel or reschedule; bad bodies are 400", async () => {
        for (const action of ["cancel", "reschedule"]) {
          const res = await h.call("POST", `/v1/appointments/${a}/${action}`, {
            auth: h.tokens.viewer,
            json: {},
          });
          assert.equal(res.status, 403);
          await res.body?.cancel();
        }
        const noStart = await post(`/v1/appointments/${a}/reschedule`, {});
        assert.equal(noStart.status, 400);
        assert.equal((await noStart.json()).invalid_fields[0].field, "body.starts_at");
        const extra = await post(`/v1/appointments/${a}/cancel`, { reason: "x", notify: true });
        assert.equal(extra.status, 400);
        await extra.body?.cancel();
      });
    } finally {
      await h.cleanup();
    }
  },
});

Deno.test({
  name: "the one-per-day rule counts days in BOOKING_TIME_ZONE: edge, reschedule and worker",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack, { env: { BOOKING_TIME_ZONE: "America/New_York" } });
    const sql = h.deps.sql;
    const lead = await h.lead({ name: `Harbor Gym ${h.run}` });
    // A future June evening in New York (UTC-4): 19:30 and 22:00 local are
    // the same New York day but fall on two UTC days.
    const year = new Date().getUTCFullYear() + 1;
    const evening = `${year}-06-10T23:30:00.000Z`;
    const late = `${year}-06-11T02:00:00.000Z`;
    const nextMorning = `${year}-06-11T13:00:00.000Z`;
    const book = bookAppointmentHandler({ queue: h.queue });
    const ctx = (taskId: string): TaskContext => ({
      deps: h.deps,
      taskId,
      attempt: 1,
      leaseToken: "t",
      signal: new AbortController().signal,
      log: h.deps.log,
    });
    const booking = { lead_id: lead.id, duration_min: 30, attendee_email: "gym@harbor.example" };

    try {
      let first = "";
      await t.step("the worker books by the New York day and records the zone", async () => {
        const res = await book(
          { ...booking, starts_at: evening, confirmation: {} },
          ctx(`tz-${h.run}-1`),
        );
        assert.equal(res.status, "booked");
        if (res.status !== "booked") return;
        first = res.appointment.id;
        assert.equal(res.appointment.day, `${year}-06-10`);
        assert.equal(res.appointment.time_zone, "America/New_York");
        const dup = await book(
          { ...booking, starts_at: late, confirmation: {} },
          ctx(`tz-${h.run}-2`),
        );
        assert.equal(dup.status, "duplicate_prevented");
      });

      await t.step("the edge refuses a second booking on the same New York day", async () => {
        const res = await h.call("POST", "/v1/appointments", {
          json: { ...booking, starts_at: late },
        });
        assert.equal(res.status, 409);
        const problem = await res.json();
        assert.equal(problem.code, "appointment-exists");
        assert.equal(problem.appointment_id, first);
        assert.equal(problem.time_zone, "America/New_York");
        const nextDay = await h.call("POST", "/v1/appointments", {
          json: { ...booking, starts_at: nextMorning },
        });
        assert.equal(nextDay.status, 202);
        await nextDay.body?.cancel();
      });

      await t.step(
        "a reschedule within the New York day keeps it; the row says which zone",
        async () => {
          const res = await h.call("POST", `/v1/appointments/${first}/reschedule`, {
            json: { starts_at: late },
          });
          assert.equal(res.status, 200, await res.clone().text());
          const out = await res.json();
          assert.equal(out.appointment.day, `${year}-06-10`);
          assert.equal(out.appointment.time_zone, "America/New_York");
          const { rows } = await sql.query(
            "SELECT count(*)::int AS n FROM appointments WHERE business_id = $1",
            [
              lead.id,
            ],
          );
          assert.equal(rows[0].n, 1);
        },
      );

      await t.step(
        "a rerun of the booking task after a cancellation books nothing again",
        async () => {
          await h.call("POST", `/v1/appointments/${first}/cancel`, { json: {} }).then((r) =>
            r.body?.cancel()
          );
          const rerun = await book(
            { ...booking, starts_at: evening, confirmation: {} },
            ctx(`tz-${h.run}-1`),
          );
          assert.equal(rerun.status, "cancelled_since");
          const { rows } = await sql.query(
            "SELECT status FROM appointments WHERE business_id = $1",
            [lead.id],
          );
          assert.deepEqual(rows.map((r) => r.status), ["cancelled"]);
        },
      );
    } finally {
      await h.cleanup();
    }
  },
});
