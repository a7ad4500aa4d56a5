/**
 * Fixtures of the email suites: a sample message and a small reader for
 * the MIME that nodemailer writes (headers, parts, base64 bodies), enough to
 * assert on what a receiver would see without a MIME parser dependency.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { OutgoingEmail } from "../shared/email/message.ts";

/** A message with text, HTML, an invite attachment and unsubscribe headers. */
export function sampleEmail(overrides: Partial<OutgoingEmail> = {}): OutgoingEmail {
  return {
    messageId: "<email-7f3a@pleasantcove.example>",
    from: "Pleasant Cove <hello@pleasantcove.example>",
    to: "sam@harborbakery.example",
    subject: "Confirmed: your call with Pleasant Cove",
    text: "Hi Sam,\n\nYour call is confirmed.\n",
    html: "<p>Hi Sam,</p><p>Your call is confirmed.</p>",
    attachments: [{
      filename: "invite.ics",
      contentType: "text/calendar; charset=utf-8; method=REQUEST",
      content: "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n",
    }],
    headers: {
      "List-Unsubscribe": "<https://pleasantcove.example/unsubscribe?token=a.b>",
      "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    },
    date: new Date("2026-02-20T09:15:30Z"),
    ...overrides,
  };
}

/** One MIME entity: unfolded headers (lowercased names) and its raw body. */
export interface MimeEntity {
  headers: Map<string, string>;
  body: string;
}

/** Splits an entity at the first blank line and unfolds its headers. */
export function parseEntity(raw: string): MimeEntity {
  const split = raw.indexOf("\r\n\r\n");
  const head = split < 0 ? raw : raw.slice(0, split);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r\n[ \t]+/g, " ").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body: split < 0 ? "" : raw.slice(split + 4) };
}

/** Every leaf entity of a (possibly nested) multipart message. */
export function leafParts(entity: MimeEntity): MimeEntity[] {
  const type = entity.headers.get("content-type") ?? "text/plain";
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (!type.toLowerCase().startsWith("multipart/") || !boundary) return [entity];
  const sections = entity.body.split(`--${boundary}`).slice(1, -1);
  return sections.flatMap((s) => leafParts(parseEntity(s.replace(/^\r\n/, ""))));
}

/** The decoded body of a leaf part (base64, quoted-printable or 7bit). */
export function decodeBody(part: MimeEntity): string {
  const encoding = part.headers.get("content-transfer-encoding")?.toLowerCase();
  const body = part.body.replace(/\r\n$/, "");
  if (encoding === "base64") return Buffer.from(body.replace(/\s+/g, ""), "base64").toString();
  if (encoding === "quoted-printable") {
    const bytes = body.replace(/=\r\n/g, "").replace(
      /=([0-9A-F]{2})/gi,
      (_, hex: string) => String.fromCharCode(parseInt(hex, 16)),
    );
    return Buffer.from(bytes, "latin1").toString();
  }
  return body;
}

/** Decodes RFC 2047 encoded-words (B and Q) in a header value. */
export function decodeWords(value: string): string {
  return value.replace(/\?=\s+=\?/g, "?==?").replace(
    /=\?([^?]+)\?([BQ])\?([^?]*)\?=/gi,
    (_, _charset: string, kind: string, text: string) =>
      kind.toUpperCase() === "B" ? Buffer.from(text, "base64").toString() : Buffer.from(
        text.replace(/_/g, " ").replace(
          /=([0-9A-F]{2})/gi,
          (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)),
        ),
        "latin1",
      ).toString(),
  );
}
