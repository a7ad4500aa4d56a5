import assert from "node:assert/strict";
import { isValidPhoneNumber } from "libphonenumber-js";
import {
  generateLeads,
  HISTORY_DAYS,
  LEGAL_TRANSITIONS,
  type OutreachStatus,
  type SeedLead,
} from "./seed_data.ts";

const NOW = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
const leads2000 = generateLeads(2000, { seed: 42, now: NOW });

function reached(lead: SeedLead, status: OutreachStatus): boolean {
  return lead.events.some((e) => e.event_type === "status_changed" && e.event_data.to === status);
}

Deno.test("generateLeads() gives the same rows for the same seed and other rows for another", () => {
  const a = generateLeads(300, { seed: 7, now: NOW });
  assert.deepEqual(generateLeads(300, { seed: 7, now: NOW }), a);
  const b = generateLeads(300, { seed: 8, now: NOW });
  const differ = a.filter((l, i) => l.business.name !== b[i]!.business.name).length;
  assert.ok(differ > 250, `only ${differ} of 300 names differ`);
  assert.equal(new Set([...a, ...b].map((l) => l.business.id)).size, 600);
});

Deno.test("lead i does not depend on the set size, and the source changes only ids", () => {
  const small = generateLeads(10, { seed: 3, now: NOW });
  assert.deepEqual(generateLeads(40, { seed: 3, now: NOW }).slice(0, 10), small);
  const other = generateLeads(10, { seed: 3, now: NOW, source: "seed_other" });
  for (const [i, lead] of other.entries()) {
    const base = small[i]!;
    assert.notEqual(lead.business.id, base.business.id);
    assert.equal(lead.business.source, "seed_other");
    assert.deepEqual(
      { ...lead.business, id: "", source: "" },
      { ...base.business, id: "", source: "" },
    );
    assert.deepEqual(lead.events.map((e) => e.event_type), base.events.map((e) => e.event_type));
  }
});

Deno.test("every lead follows a legal status path in strictly increasing time", () => {
  const oldest = NOW - (HISTORY_DAYS + 1) * DAY;
  for (const lead of leads2000) {
    const b = lead.business;
    assert.equal(lead.events[0]!.event_type, "lead_created");
    assert.equal(lead.events[0]!.time, b.created_at);
    let status: OutreachStatus = "new";
    let last = oldest;
    for (const e of lead.events) {
      assert.ok(e.time > last && e.time <= NOW, `${b.external_id}: ${e.event_type} out of order`);
      last = e.time;
      assert.equal(e.lead_id, b.id);
      assert.match(e.event_type, /^[a-z][a-z0-9_.]{0,62}$/);
      if (e.event_type !== "status_changed") continue;
      const { from, to } = e.event_data as { from: OutreachStatus; to: OutreachStatus };
      assert.equal(from, status);
      assert.ok(LEGAL_TRANSITIONS[from].includes(to), `${b.external_id}: ${from} → ${to}`);
      status = to;
    }
    assert.equal(status, b.outreach_status);
    assert.equal(b.updated_at, last);

    const sent = lead.events.filter((e) => e.event_type === "email_sent").map((e) => e.time);
    assert.deepEqual(lead.emails.map((m) => m.sent_at), sent);
    assert.equal(b.last_contacted, sent.at(-1) ?? null);
    assert.equal(b.outreach_status === "new", lead.emails.length === 0);
    assert.equal(b.response_time_hours !== null, reached(lead, "responded"));
    assert.equal(lead.appointment !== null, reached(lead, "meeting_scheduled"));
    if (lead.appointment?.status === "cancelled") assert.equal(b.outreach_status, "not_interested");
  }
});

Deno.test("rows satisfy the schema's constraints and unique keys", () => {
  const messageIds = new Set<string>();
  for (const { business: b, emails, appointment, suppression } of leads2000) {
    assert.ok(b.name.length >= 1 && b.name.length <= 500);
    assert.ok(b.rating === null || (b.rating >= 1 && b.rating <= 5 && b.rating * 10 % 1 === 0));
    assert.ok(Number.isInteger(b.reviews) && b.reviews >= 0);
    assert.ok(b.lead_score >= 0 && b.lead_score <= 100);
    if (b.email !== null) {
      assert.match(b.email, /^[a-z0-9.]+@[a-z0-9]+\.example$/);
      assert.ok(b.email_confidence_score! >= 0 && b.email_confidence_score! <= 1);
    } else assert.equal(b.email_confidence_score, null);
    if (b.phone !== null) {
      assert.match(b.phone, /^\+1\d{9,10}$/);
      assert.equal(isValidPhoneNumber(b.phone), b.phone_valid, b.phone);
    } else assert.equal(b.phone_valid, null);
    const onceADay = new Set(emails.map((m) => `${m.to_address}|${m.template}|${m.send_day}`));
    assert.equal(onceADay.size, emails.length);
    for (const m of emails) {
      assert.equal(m.to_address, b.email);
      assert.ok(!messageIds.has(m.message_id));
      messageIds.add(m.message_id);
    }
    if (appointment) {
      assert.ok(appointment.duration_min >= 5 && appointment.duration_min <= 480);
      assert.equal(appointment.day, new Date(appointment.starts_at).toISOString().slice(0, 10));
      // US local time is UTC−5 … UTC−8: five hours back stays on the local day.
      const eastern = new Date(appointment.starts_at - 5 * 3_600_000);
      assert.ok(![0, 6].includes(eastern.getUTCDay()), "a meeting on a weekend");
      assert.ok(eastern.getUTCHours() >= 9 && eastern.getUTCHours() <= 19, "a meeting at night");
    }
    if (suppression) assert.match(suppression.reason, /^seed:(bounced|unsubscribed)$/);
  }
});

Deno.test("the set looks like leads: mostly without a website, across cities and categories", () => {
  const share = (f: (l: SeedLead) => boolean) => leads2000.filter(f).length / leads2000.length;
  assert.ok(share((l) => l.business.has_website) < 0.25);
  assert.ok(share((l) => l.business.phone_valid === false) > 0.05);
  assert.equal(new Set(leads2000.map((l) => l.business.city)).size, 15);
  assert.equal(new Set(leads2000.map((l) => l.business.category)).size, 20);
  for (const status of Object.keys(LEGAL_TRANSITIONS)) {
    assert.ok(share((l) => l.business.outreach_status === status) > 0.01, status);
  }
});

Deno.test("outcomes correlate with the features a scoring model can see", () => {
  const contacted = leads2000.filter((l) => l.business.outreach_status !== "new");
  const strong = contacted.filter(({ business: b }) =>
    (b.rating ?? 0) >= 4.3 && b.phone_valid === true && b.email_confidence_score! >= 0.7 &&
    !b.has_website
  );
  const weak = contacted.filter(({ business: b }) =>
    b.has_website || (b.rating ?? 0) < 3.9 || b.email_confidence_score! < 0.4
  );
  const rate = (xs: SeedLead[], f: (l: SeedLead) => boolean) => xs.filter(f).length / xs.length;
  const client = (l: SeedLead) => l.business.outreach_status === "client";
  const replied = (l: SeedLead) => reached(l, "responded");
  assert.ok(strong.length >= 100 && weak.length >= 100, `${strong.length} / ${weak.length}`);
  const [cs, cw] = [rate(strong, client), rate(weak, client)];
  assert.ok(cs > cw + 0.1 && cs > 3 * cw, `client rate strong ${cs} vs weak ${cw}`);
  const [rs, rw] = [rate(strong, replied), rate(weak, replied)];
  assert.ok(rs > rw + 0.15, `reply rate strong ${rs} vs weak ${rw}`);
  const mean = (xs: SeedLead[]) => xs.reduce((s, l) => s + l.business.lead_score, 0) / xs.length;
  assert.ok(mean(contacted.filter(client)) > mean(contacted.filter((l) => !client(l))) + 10);
});

Deno.test("outcomes follow the shapes the demo data encodes, beyond the heuristic's weighted sum", () => {
  // docs/lead-scoring.md §What the demo data encodes.
  const contacted = generateLeads(8000, { seed: 5, now: NOW })
    .filter((l) => l.business.outreach_status !== "new");
  const rate = (f: (b: SeedLead["business"]) => boolean) => {
    const xs = contacted.filter((l) => f(l.business));
    assert.ok(xs.length >= 50, `only ${xs.length} leads in a group`);
    return xs.filter((l) => l.business.outreach_status === "client").length / xs.length;
  };
  // Trade × website: trades without a site buy; food places without one rarely do.
  const trades = ["plumber", "electrician", "hvac", "roofer", "locksmith"];
  const food = ["restaurant", "cafe", "bakery"];
  const trade = rate((b) => trades.includes(b.category) && !b.has_website);
  const eatery = rate((b) => food.includes(b.category) && !b.has_website);
  assert.ok(trade > 2 * eatery, `trades ${trade} vs food ${eatery}`);
  // Practices buy redesigns: with a website they convert more than trades with one.
  const practice = rate((b) =>
    ["dentist", "chiropractor", "veterinarian"].includes(b.category) &&
    b.has_website
  );
  assert.ok(practice > rate((b) => trades.includes(b.category) && b.has_website));
  // A sweet spot in the review count: established beats tiny and saturated.
  const middle = rate((b) => b.reviews >= 30 && b.reviews <= 150);
  assert.ok(middle > rate((b) => b.reviews <= 8) + 0.05);
  assert.ok(middle > rate((b) => b.reviews >= 500) + 0.05);
  // The rating counts with enough reviews only.
  const rated = (lo: number, hi: number, few: boolean) =>
    rate((b) =>
      b.rating !== null && b.rating >= lo && b.rating < hi &&
      (few ? b.reviews < 12 : b.reviews >= 40)
    );
  assert.ok(rated(4.2, 4.7, false) > rated(1, 3.8, false) + 0.1);
  assert.ok(Math.abs(rated(4.2, 4.7, true) - rated(1, 3.8, true)) < 0.1);
  // Among leads that replied, a fast reply converts far more often than a slow one.
  const fast = rate((b) => b.response_time_hours !== null && b.response_time_hours <= 6);
  const slow = rate((b) => b.response_time_hours !== null && b.response_time_hours >= 24);
  assert.ok(fast > slow + 0.3, `fast ${fast} vs slow ${slow}`);
});

Deno.test("generateLeads() rejects a negative count and a seed beyond 32 bits", () => {
  assert.throws(() => generateLeads(-1, { seed: 1, now: NOW }), RangeError);
  assert.throws(() => generateLeads(1, { seed: 2 ** 32, now: NOW }), RangeError);
});
