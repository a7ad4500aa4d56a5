import assert from "node:assert/strict";
import { EVENTS_PER_BATCH, recipientOf, requestOf } from "./load.ts";

const NOW = Date.parse("2026-12-07T14:00:00Z");
const leads = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"];

Deno.test("requestOf() gives each email and booking operation its own recipient and lead", () => {
  const a = requestOf({ kind: "emails", leadIds: leads }, "E0-1-0", 0, NOW);
  const b = requestOf({ kind: "emails", leadIds: leads }, "E0-1-1", 1, NOW);
  assert.equal(a.path, "/v1/outreach/emails");
  assert.equal(a.name, recipientOf("E0-1-0"));
  assert.notEqual(a.name, b.name);
  assert.equal((a.body as { lead_id: string }).lead_id, leads[0]);
  assert.equal((b.body as { lead_id: string }).lead_id, leads[1]);
  const booking = requestOf({ kind: "bookings", leadIds: leads }, "B0-1-0", 0, NOW);
  const body = booking.body as { starts_at: string; attendee_email: string };
  assert.equal(booking.path, "/v1/appointments");
  assert.equal(body.attendee_email, booking.name);
  assert.ok(Date.parse(body.starts_at) > NOW, "the booking is in the future");
});

Deno.test("requestOf() sends events in batches with fresh client ids", () => {
  const r = requestOf({ kind: "events", leadIds: leads }, "V0-1-0", 0, NOW);
  assert.equal(r.path, "/v1/events");
  assert.equal(r.events?.length, EVENTS_PER_BATCH);
  assert.equal(new Set(r.events).size, EVENTS_PER_BATCH);
  const sent = (r.body as { events: { id: string }[] }).events.map((e) => e.id);
  assert.deepEqual(sent, r.events);
});

Deno.test("requestOf() refuses an email writer without fixture leads", () => {
  assert.throws(() => requestOf({ kind: "emails" }, "E0", 0, NOW), RangeError);
});
