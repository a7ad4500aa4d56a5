/**
 * The words of each email template, as blocks that templates.ts renders to
 * both text and HTML. Kept apart from the rendering so copy edits do not
 * touch validation or escaping.
 *
 * Values arrive trimmed and validated (required ones present, URLs http(s),
 * `starts_at` an instant, `duration_min` a positive integer).
 *
 * @module
 */

/** A paragraph (newlines become line breaks) or a link on its own line. */
export type Block = string | { label: string; url: string };

/** A template's output before rendering. */
export interface Draft {
  subject: string;
  blocks: Block[];
}

/** Reads a validated variable; "" when an optional one is absent. */
export type Vars = (name: string) => string;

function greeting(v: Vars): string {
  return `Hi ${v("recipient_name") || "there"},`;
}

function signature(v: Vars, closing: string): string {
  const title = v("sender_title");
  return `${closing}\n${v("sender_name")}\n${title ? `${title}, ` : ""}Pleasant Cove`;
}

/** First contact with a business. */
export function introCopy(v: Vars): Draft {
  const business = v("business_name");
  const city = v("city");
  const site = v("website_url");
  const booking = v("booking_url");
  return {
    subject: `A better web presence for ${business}`,
    blocks: [
      greeting(v),
      `I'm ${v("sender_name")} from Pleasant Cove. We help local businesses like ${business}` +
      `${city ? ` in ${city}` : ""} look as good online as they are in person: a fast website ` +
      "that works on phones, accurate hours and contact details on Google and Maps, and an easy " +
      "way for customers to book or get in touch.",
      ...(site
        ? [
          `I had a look at ${site} and have a few ideas that could bring in more calls and visits.`,
        ]
        : []),
      "Would a 15-minute call be useful? I'll walk you through what we would change and what it " +
      "would cost, with no obligation.",
      ...(booking ? [{ label: "Pick a time that suits you", url: booking }] : []),
      signature(v, "Best regards,"),
    ],
  };
}

/** A gentle reminder after an unanswered intro. */
export function followUpCopy(v: Vars): Draft {
  const business = v("business_name");
  const booking = v("booking_url");
  return {
    subject: `Following up: ${business} online`,
    blocks: [
      greeting(v),
      `I wanted to follow up on my note about ${business}'s web presence. Most customers look a ` +
      "business up on their phone before they call or visit, and small fixes (clear opening " +
      "hours, working links, a site that loads quickly) make a real difference.",
      booking
        ? "If you'd like to talk it through, you can book a short call below."
        : "If you'd like to talk it through, just reply with a time that works for you.",
      ...(booking ? [{ label: "Book a 15-minute call", url: booking }] : []),
      "And if now isn't the right time, reply and let me know; I won't keep filling your inbox.",
      signature(v, "Thanks,"),
    ],
  };
}

/** Confirms a booked call; `when` is `starts_at` formatted for the reader. */
export function meetingConfirmationCopy(v: Vars, when: { date: string; time: string }): Draft {
  const business = v("business_name");
  const meeting = v("meeting_url");
  const location = v("location");
  const agenda = v("agenda");
  const where = meeting
    ? "Where: online, using the link below"
    : location
    ? `Where: ${location}`
    : `Where: ${v("sender_name")} will call you`;
  return {
    subject: `Confirmed: your call with Pleasant Cove on ${when.date}`,
    blocks: [
      greeting(v),
      `Thanks for making time to talk about ${business}. Your call is confirmed:`,
      `When: ${when.date}, ${when.time}\nLength: ${v("duration_min")} minutes\n${where}`,
      ...(meeting ? [{ label: "Join the call", url: meeting }] : []),
      ...(agenda ? [`What we'll cover: ${agenda}`] : []),
      "Need a different time? Just reply to this email and we'll find one.",
      signature(v, "See you then,"),
    ],
  };
}
