/**
 * The outgoing message every provider sends, and its MIME form (.eml).
 *
 * The Message-ID is chosen by us, not by the transport: it is derived from
 * the ledger row (`messageIdFor`), so a retried send carries the same id and
 * receivers, the file provider and HTTP APIs can all deduplicate on it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
// @ts-types="@types/nodemailer/lib/mail-composer/index.d.ts"
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import { composeDirect } from "./direct_mime.ts";
import type { OutgoingEmail } from "./outgoing.ts";

export type { EmailAttachment, OutgoingEmail } from "./outgoing.ts";

// RFC 5322 dot-atom-text (id-left) and a conservative hostname (id-right).
const ID_LEFT = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const DOMAIN =
  /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/**
 * The Message-ID of a ledger row: `<ledgerId@domain>`. Deterministic, so that
 * every attempt of one send carries the same id.
 *
 * @throws RangeError when the id or the domain cannot appear in a Message-ID
 */
export function messageIdFor(ledgerId: string, domain: string): string {
  if (!ID_LEFT.test(ledgerId)) {
    throw new RangeError(`Cannot build a Message-ID from ledger id ${JSON.stringify(ledgerId)}`);
  }
  if (!DOMAIN.test(domain)) {
    throw new RangeError(`Cannot build a Message-ID with domain ${JSON.stringify(domain)}`);
  }
  return `<${ledgerId}@${domain}>`;
}

/**
 * The RFC 2369 / RFC 8058 headers that give mail clients a one-click
 * unsubscribe button (Gmail and Yahoo require them for bulk senders).
 */
export function unsubscribeHeaders(url: string): Record<string, string> {
  return {
    "List-Unsubscribe": `<${url}>`,
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
  };
}

function crlf(value: string): string {
  return value.replace(/\r\n|\r|\n/g, "\r\n");
}

/** Options for nodemailer's MailComposer describing `msg`. */
function toNodemailerMail(msg: OutgoingEmail, baseBoundary?: string) {
  return {
    ...(baseBoundary ? { baseBoundary } : {}),
    messageId: msg.messageId,
    from: msg.from,
    to: msg.to,
    subject: msg.subject,
    // MailComposer writes 7bit bodies as given; an .eml needs CRLF line ends.
    text: crlf(msg.text),
    html: crlf(msg.html),
    headers: { ...msg.headers },
    ...(msg.date ? { date: msg.date } : {}),
    attachments: (msg.attachments ?? []).map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: typeof a.content === "string" ? a.content : Buffer.from(a.content),
    })),
    // Content is always inline; never let a field be read as a path or a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

/** The SMTP envelope of a message: bare addresses, as MAIL FROM / RCPT TO take them. */
export interface Envelope {
  from: string | false;
  to: string[];
}

/**
 * The message as .eml bytes plus its envelope (what an SMTP client needs),
 * composed by nodemailer; `baseBoundary` fixes the shared part of the
 * multipart boundaries (random by default).
 */
export function composeWithEnvelope(
  msg: OutgoingEmail,
  baseBoundary?: string,
): Promise<{ eml: Uint8Array; envelope: Envelope }> {
  const node = new MailComposer(toNodemailerMail(msg, baseBoundary)).compile();
  const envelope = node.getEnvelope();
  return new Promise((resolve, reject) => {
    node.build((err, eml) => err ? reject(err) : resolve({ eml, envelope }));
  });
}

/** A random shared part of the multipart boundaries, as nodemailer makes it (16 hex digits). */
function randomBaseBoundary(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const utf8 = new TextEncoder();

/**
 * The message as RFC 5322 / MIME bytes (an .eml file), with the given
 * Message-ID. The common case (direct_mime.ts) is built directly, as the
 * bytes nodemailer writes for it; everything else goes through nodemailer.
 */
export async function composeEml(msg: OutgoingEmail): Promise<Uint8Array> {
  const direct = composeDirect({
    ...msg,
    text: crlf(msg.text),
    html: crlf(msg.html),
    headers: msg.headers ?? {},
    date: msg.date ?? new Date(),
  }, randomBaseBoundary());
  if (direct !== null) return utf8.encode(direct);
  return (await composeWithEnvelope(msg)).eml;
}
