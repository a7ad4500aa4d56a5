import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

Deno.test({
  name: "lead actions: transitions and notes as sa:minerva, not_interested refusals, admin reopen",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    const admin = await h.token("u-admin", ["admin"]);
    const events = async (leadId: string, type: string) =>
      (await h.deps.sql.query<{ event_data: Record<string, unknown>; source: string }>(
        "SELECT event_data, source FROM lead_events WHERE lead_id = $1 AND event_type = $2 ORDER BY time",
        [leadId, type],
      )).rows;
    const tomorrow = iso(Math.ceil((Date.now() + DAY) / 60_000) * 60_000);

    try {
      const lead = await h.lead({ name: `Harbor Cafe ${h.run}`, email: "owner@harbor.example" });
      const transition = (to: string, auth?: string, reason?: string) =>
        h.call("POST", `/v1/leads/${lead.id}/transitions`, {
          json: reason === undefined ? { to } : { to, reason },
          auth,
        });

      await t.step("sa:minerva moves a lead through the state machine with a reason", async () => {
        const res = await transition("contacted", undefined, "Intro sent by hand");
        assert.equal(res.status, 200, await res.clone().text());
        const body = await res.json();
        assert.deepEqual([body.from, body.to, body.changed], ["new", "contacted", true]);
        assert.equal(body.lead.outreach_status, "contacted");
        const again = await (await transition("contacted")).json();
        assert.equal(again.changed, false);
        const [event] = await events(lead.id, "status_changed");
        assert.deepEqual(event!.event_data, {
          from: "new",
          to: "contacted",
          reason: "Intro sent by hand",
        });
        assert.equal(event!.source, "api:sa:minerva");
      });

      await t.step(
        "an illegal step is 409 illegal-transition listing what is allowed",
        async () => {
          const res = await transition("client");
          assert.equal(res.status, 409);
          const body = await res.json();
          assert.equal(body.code, "illegal-transition");
          assert.deepEqual(body.allowed, ["responded", "not_interested"]);
        },
      );

      await t.step(
        "a viewer may not transition (403 naming the permission); bad bodies are 400",
        async () => {
          const denied = await transition("responded", h.tokens.viewer);
          assert.equal(denied.status, 403);
          assert.equal((await denied.json()).permission, "POST /v1/leads/*");
          const bad = await h.call("POST", `/v1/leads/${lead.id}/transitions`, {
            json: { to: "won" },
          });
          assert.equal(bad.status, 400);
          await bad.body?.cancel();
          const unknown = await h.call(
            "POST",
            "/v1/leads/00000000-0000-4000-8000-000000000000/transitions",
            { json: { to: "contacted" } },
          );
          assert.equal(unknown.status, 404);
          assert.equal((await unknown.json()).code, "lead-not-found");
        },
      );

      await t.step("POST notes records a note_added event", async () => {
        const res = await h.call("POST", `/v1/leads/${lead.id}/notes`, {
          json: { text: "Owner prefers calls after 3 pm" },
        });
        assert.equal(res.status, 201, await res.clone().text());
        const note = await res.json();
        assert.equal(note.event_type, "note_added");
        assert.equal(note.lead_id, lead.id);
        assert.deepEqual(note.event_data, { text: "Owner prefers calls after 3 pm" });
        assert.match(note.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      });

      await t.step("a not_interested lead cannot be emailed or booked (409)", async () => {
        assert.equal((await transition("not_interested", undefined, "Said no")).status, 200);
        const email = await h.call("POST", "/v1/outreach/emails", {
          json: { lead_id: lead.id, template: "intro", variables: { sender_name: "Maya" } },
        });
        assert.equal(email.status, 409);
        assert.equal((await email.json()).code, "lead-not-interested");
        const booking = await h.call("POST", "/v1/appointments", {
          json: {
            lead_id: lead.id,
            starts_at: tomorrow,
            duration_min: 30,
            attendee_email: "owner@harbor.example",
          },
        });
        assert.equal(booking.status, 409);
        assert.equal((await booking.json()).code, "lead-not-interested");
      });

      await t.step("only an admin reopens it, back to where it was", async () => {
        const path = `/v1/admin/leads/${lead.id}/reopen`;
        const denied = await h.call("POST", path, {
          json: { reason: "Called back" },
          auth: h.tokens.operator,
        });
        assert.equal(denied.status, 403);
        await denied.body?.cancel();
        const res = await h.call("POST", path, { json: { reason: "Called back" }, auth: admin });
        assert.equal(res.status, 200, await res.clone().text());
        assert.equal((await res.json()).outreach_status, "contacted");
        const [event] = await events(lead.id, "lead_reopened");
        assert.deepEqual(event!.event_data, {
          from: "not_interested",
          to: "contacted",
          reason: "Called back",
        });
        const twice = await h.call("POST", path, { json: { reason: "again" }, auth: admin });
        assert.equal(twice.status, 409);
        assert.equal((await twice.json()).code, "lead-not-closed");
      });
    } finally {
      await h.cleanup();
    }
  },
});

Deno.test({
  name: "problems the edge knows are answered at once: suppressed recipient, same-day booking",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    const address = `gone-${h.run}@harbor.example`;
    try {
      const lead = await h.lead({ name: `Quay Books ${h.run}`, email: address });

      await t.step("a suppressed recipient is 422 and records email_suppressed", async () => {
        await h.deps.sql.query("INSERT INTO email_suppressions (address) VALUES ($1)", [address]);
        const before = await h.queue.stats();
        const res = await h.call("POST", "/v1/outreach/emails", {
          json: { lead_id: lead.id, template: "intro", variables: { sender_name: "Maya" } },
        });
        assert.equal(res.status, 422);
        assert.equal((await res.json()).code, "recipient-suppressed");
        assert.deepEqual(await h.queue.stats(), before, "nothing queued");
        const { rows } = await h.deps.sql.query(
          "SELECT event_data FROM lead_events WHERE lead_id = $1 AND event_type = 'email_suppressed'",
          [lead.id],
        );
        assert.deepEqual(rows.map((r) => r.event_data), [{ template: "intro", refused_by: "api" }]);
      });

      await t.step("a second booking on the same UTC day is 409 appointment-exists", async () => {
        const day = Math.ceil((Date.now() + 2 * DAY) / DAY) * DAY; // a UTC midnight
        const { rows } = await h.deps.sql.query<{ id: string }>(
          `INSERT INTO appointments (business_id, starts_at, duration_min, attendee_email, day)
           VALUES ($1, $2, 30, $3, $4::date) RETURNING id`,
          [lead.id, iso(day + 9 * 3_600_000), address, iso(day).slice(0, 10)],
        );
        const res = await h.call("POST", "/v1/appointments", {
          json: {
            lead_id: lead.id,
            starts_at: iso(day + 15 * 3_600_000),
            duration_min: 30,
            attendee_email: address,
          },
        });
        assert.equal(res.status, 409);
        const body = await res.json();
        assert.equal(body.code, "appointment-exists");
        assert.equal(body.appointment_id, rows[0]!.id);
        const nextDay = await h.call("POST", "/v1/appointments", {
          json: {
            lead_id: lead.id,
            starts_at: iso(day + DAY + 9 * 3_600_000),
            duration_min: 30,
            attendee_email: address,
          },
        });
        assert.equal(nextDay.status, 202, await nextDay.clone().text());
        await nextDay.body?.cancel();
      });
    } finally {
      await h.deps.sql.query("DELETE FROM email_suppressions WHERE address = $1", [address]);
      await h.cleanup();
    }
  },
});
