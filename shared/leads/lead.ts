/**
 * The lead record (a row of `businesses`) as code sees it: field names are
 * the column names, so the API's JSON matches the schema one to one.
 *
 * @module
 */
import type { OutreachStatus } from "./status.ts";

/** A lead. `rating` is numeric(2,1) in SQL and a number here. */
export interface Lead {
  id: string;
  name: string;
  category: string | null;
  city: string | null;
  rating: number | null;
  reviews: number;
  has_website: boolean;
  phone: string | null;
  phone_valid: boolean | null;
  email: string | null;
  email_confidence_score: number | null;
  outreach_status: OutreachStatus;
  last_contacted: Date | null;
  response_time_hours: number | null;
  lead_score: number | null;
  /** Where the lead came from (`places`, `csv`, `api`, …); unique with `external_id`. */
  source: string;
  external_id: string | null;
  created_at: Date;
  updated_at: Date;
}

/** Fields a caller may set after creation (`outreach_status` goes through the state machine). */
export const EDITABLE_FIELDS = [
  "name",
  "category",
  "city",
  "rating",
  "reviews",
  "has_website",
  "phone",
  "phone_valid",
  "email",
  "email_confidence_score",
  "lead_score",
  "last_contacted",
  "response_time_hours",
  "outreach_status",
] as const satisfies readonly (keyof Lead)[];

/** A change to a lead: any editable field; `undefined` leaves it alone, `null` clears it. */
export type LeadPatch = Partial<Pick<Lead, (typeof EDITABLE_FIELDS)[number]>>;

/** A new lead: a name and a source are required, the rest defaults like the table does. */
export type NewLead =
  & Pick<Lead, "name" | "source">
  & Partial<
    Omit<
      Lead,
      "id" | "name" | "source" | "outreach_status" | "created_at" | "updated_at"
    >
  >;

/** The SELECT list that yields a {@linkcode Lead} (numeric rating as a float). */
export const LEAD_COLUMNS = `id, name, category, city, rating::float8 AS rating, reviews,
  has_website, phone, phone_valid, email, email_confidence_score, outreach_status,
  last_contacted, response_time_hours, lead_score, source, external_id, created_at, updated_at`;

/** Columns of INSERT in this order; values come from {@linkcode insertValues}. */
export const INSERT_COLUMNS = [
  "name",
  "category",
  "city",
  "rating",
  "reviews",
  "has_website",
  "phone",
  "phone_valid",
  "email",
  "email_confidence_score",
  "last_contacted",
  "response_time_hours",
  "lead_score",
  "source",
  "external_id",
] as const satisfies readonly (keyof NewLead)[];

/** The INSERT values of `input`, with the table's defaults for omitted fields. */
export function insertValues(input: NewLead): unknown[] {
  return INSERT_COLUMNS.map((column) => {
    const value = input[column];
    if (value !== undefined) return value;
    if (column === "reviews") return 0;
    if (column === "has_website") return false;
    return null;
  });
}
