/**
 * Example values for every template variable, used wherever the API shows a
 * template without a real lead: the previews of `GET /v1/outreach/templates`
 * and the OpenAPI examples of the send and booking requests.
 *
 * The copy already says who the sender works for ("I'm Maya from Pleasant
 * Cove", "Maya\nFounder, Pleasant Cove"), so a sender example must be a
 * person's name and a title without the company: an example of
 * "Maya from Pleasant Cove" once made the intro read "Maya from Pleasant
 * Cove from Pleasant Cove" (issue #14). template_examples_test.ts renders
 * every template with these values and checks that it reads correctly.
 *
 * @module
 */
import { TEMPLATE_NAMES, type TemplateName, TEMPLATES } from "./templates.ts";

/** One example value per variable name of any template. */
export const VARIABLE_EXAMPLES: Readonly<Record<string, string | number>> = {
  business_name: "Harbor Bakery",
  sender_name: "Maya",
  recipient_name: "Sam",
  sender_title: "Founder",
  city: "Portland",
  website_url: "https://harborbakery.example",
  booking_url: "https://cal.example/maya",
  starts_at: "2026-03-03T14:00:00Z",
  duration_min: 30,
  time_zone: "America/New_York",
  meeting_url: "https://meet.example/harbor-bakery",
  location: "Harbor Bakery, 12 Wharf Street",
  agenda: "Your website and your Google listing",
};

/** The example variables of template `name`: every variable it takes, required and optional. */
export function templateExample(name: TemplateName): Record<string, string | number> {
  const spec = TEMPLATES[name];
  const out: Record<string, string | number> = {};
  for (const key of [...Object.keys(spec.required), ...Object.keys(spec.optional)]) {
    const value = VARIABLE_EXAMPLES[key];
    if (value === undefined) {
      throw new TypeError(`Template "${name}" variable "${key}" has no example value`);
    }
    out[key] = value;
  }
  return out;
}

/** Example variables of every template, keyed by template name. */
export function templateExamples(): Record<TemplateName, Record<string, string | number>> {
  return Object.fromEntries(TEMPLATE_NAMES.map((n) => [n, templateExample(n)])) as Record<
    TemplateName,
    Record<string, string | number>
  >;
}
