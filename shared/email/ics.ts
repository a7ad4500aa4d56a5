/**
 * RFC 5545 meeting invites (iTIP METHOD:REQUEST, RFC 5546) with one VEVENT,
 * times in UTC so no VTIMEZONE is needed. The UID comes from the caller's id,
 * so a re-sent invite updates the same calendar entry instead of adding one.
 *
 * @module
 */
import type { EmailAttachment } from "./message.ts";

/** An organizer or attendee. */
export interface CalendarParty {
  email: string;
  /** Display name (CN). */
  name?: string;
}

/** The event of an invite. */
export interface InviteEvent {
  /** Stable id (the booking or ledger id); the UID is `<id>@<uidDomain>`. */
  id: string;
  /** @default the organizer's email domain */
  uidDomain?: string;
  start: Date;
  durationMin: number;
  /** DTSTAMP: when the invite was created (pass the ledger time so retries match byte for byte). */
  stamp: Date;
  summary: string;
  description?: string;
  location?: string;
  /** Where to join (URL property, RFC 5545 §3.8.4.6): an http(s) URL. */
  url?: string;
  organizer: CalendarParty;
  attendee: CalendarParty;
  /** Bump for each update of the same event. @default 0 */
  sequence?: number;
}

/** Content type of an invite attachment; `method` must match the METHOD inside. */
export const ICS_CONTENT_TYPE = "text/calendar; charset=utf-8; method=REQUEST";

const CRLF = "\r\n";
const MAX_OCTETS = 75;
const encoder = new TextEncoder();

/** Escapes a TEXT value: backslash, semicolon, comma and newlines (RFC 5545 §3.3.11). */
export function escapeText(value: string): string {
  return value
    .replace(/\\/g, "\\\\")
    .replace(/;/g, "\\;")
    .replace(/,/g, "\\,")
    .replace(/\r\n|\r|\n/g, "\\n");
}

/**
 * Folds one content line into lines of at most 75 octets (continuations
 * start with a space, which counts), never splitting a UTF-8 sequence.
 */
export function foldLine(line: string): string {
  const out: string[] = [];
  let current = "";
  let octets = 0;
  for (const char of line) {
    const size = encoder.encode(char).length;
    if (octets + size > MAX_OCTETS) {
      out.push(current);
      current = " ";
      octets = 1;
    }
    current += char;
    octets += size;
  }
  out.push(current);
  return out.join(CRLF);
}

/** `YYYYMMDDTHHMMSSZ` (UTC, whole seconds). */
export function formatUtc(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError("Cannot format an invalid date");
  return date.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
}

function mailto(party: CalendarParty, role: string): string {
  // deno-lint-ignore no-control-regex
  if (!/^[^\s@\x00-\x1f"<>]+@[^\s@\x00-\x1f"<>]+$/.test(party.email)) {
    throw new RangeError(`Invalid ${role} email address ${JSON.stringify(party.email)}`);
  }
  return `mailto:${party.email}`;
}

function cn(party: CalendarParty): string {
  if (!party.name) return "";
  // A quoted param-value may hold neither DQUOTE nor control characters.
  // deno-lint-ignore no-control-regex
  const clean = party.name.replace(/"/g, "'").replace(/[\x00-\x1f\x7f]+/g, " ").trim();
  return clean ? `;CN="${clean}"` : "";
}

/** True for an http(s) URL without control characters or spaces (it goes into a content line as is). */
function isHttpUrl(value: string): boolean {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x20\x7f]/.test(value)) return false;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/** The invite as an .ics document (CRLF line endings, folded at 75 octets). */
export function buildInvite(event: InviteEvent): string {
  if (!Number.isFinite(event.durationMin) || event.durationMin <= 0) {
    throw new RangeError(`Invalid event duration ${event.durationMin} min`);
  }
  const sequence = event.sequence ?? 0;
  if (!Number.isInteger(sequence) || sequence < 0) {
    throw new RangeError(`Invalid SEQUENCE ${sequence}`);
  }
  if (event.url !== undefined && !isHttpUrl(event.url)) {
    throw new RangeError(`Invalid event URL ${JSON.stringify(event.url)}`);
  }
  const organizer = mailto(event.organizer, "organizer");
  const attendee = mailto(event.attendee, "attendee");
  const uidDomain = event.uidDomain ?? event.organizer.email.split("@").pop()!;
  const end = new Date(event.start.getTime() + event.durationMin * 60_000);
  const lines = [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Pleasant Cove//Scheduling//EN",
    "CALSCALE:GREGORIAN",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    `UID:${escapeText(`${event.id}@${uidDomain}`)}`,
    `DTSTAMP:${formatUtc(event.stamp)}`,
    `DTSTART:${formatUtc(event.start)}`,
    `DTEND:${formatUtc(end)}`,
    `SUMMARY:${escapeText(event.summary)}`,
    ...(event.description ? [`DESCRIPTION:${escapeText(event.description)}`] : []),
    ...(event.location ? [`LOCATION:${escapeText(event.location)}`] : []),
    // A URI value, not TEXT: commas and semicolons stay as they are.
    ...(event.url ? [`URL:${event.url}`] : []),
    `ORGANIZER${cn(event.organizer)}:${organizer}`,
    `ATTENDEE${
      cn(event.attendee)
    };ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:${attendee}`,
    "STATUS:CONFIRMED",
    `SEQUENCE:${sequence}`,
    "END:VEVENT",
    "END:VCALENDAR",
  ];
  return lines.map(foldLine).join(CRLF) + CRLF;
}

/** The invite as a message attachment. */
export function inviteAttachment(ics: string, filename = "invite.ics"): EmailAttachment {
  return { filename, contentType: ICS_CONTENT_TYPE, content: ics };
}
