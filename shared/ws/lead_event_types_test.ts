import assert from "node:assert/strict";
import { INGEST_EVENT_TYPES } from "../analytics/ingest.ts";
import { LEAD_EVENT_TYPES } from "../leads/events.ts";
import { checkTypeFilter, FEED_LEAD_EVENT_TYPES, MAX_FILTER_TYPES } from "./lead_event_types.ts";

Deno.test("FEED_LEAD_EVENT_TYPES holds the platform's and the ingested types once each", () => {
  for (const t of [...LEAD_EVENT_TYPES, ...INGEST_EVENT_TYPES]) {
    assert.ok(FEED_LEAD_EVENT_TYPES.includes(t), t);
  }
  assert.equal(new Set(FEED_LEAD_EVENT_TYPES).size, FEED_LEAD_EVENT_TYPES.length);
});

Deno.test("checkTypeFilter() refuses unknown types, too many, and a filter without leads", () => {
  assert.equal(checkTypeFilter(["email_replied"], ["leads:l1", "tasks"]), null);
  const unknown = checkTypeFilter(["email_replied", "emailreplied"], ["leads"]);
  assert.equal(unknown?.code, "unknown-event-type");
  assert.match(unknown!.message, /^Unknown lead event type "emailreplied"; known: /);
  const many = Array.from({ length: MAX_FILTER_TYPES + 1 }, () => "note_added");
  assert.equal(checkTypeFilter(many, ["leads"])?.code, "bad-frame");
  assert.equal(checkTypeFilter(["note_added"], ["tasks", "leadsx"])?.code, "bad-frame");
});
