/**
 * The public JSON of a lead and of its events: the column names of
 * `businesses` and `lead_events`, timestamps as ISO 8601 in UTC with
 * milliseconds (`Date.toISOString()`).
 *
 * @module
 */
import type { LeadEvent } from "../../shared/leads/events.ts";
import type { Lead } from "../../shared/leads/lead.ts";

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

/** The public JSON of a lead. */
export function leadView(lead: Lead) {
  return {
    ...lead,
    last_contacted: iso(lead.last_contacted),
    created_at: lead.created_at.toISOString(),
    updated_at: lead.updated_at.toISOString(),
  };
}

/** The public JSON of a lead event. */
export function eventView(e: LeadEvent) {
  return { ...e, time: e.time.toISOString() };
}
