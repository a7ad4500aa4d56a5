/**
 * The common message built as MIME text directly: the bytes nodemailer's
 * MailComposer writes for it, without its node tree and streams (≈ 0.4 ms of
 * CPU per message; docs/benchmarks.md, bench:outreach).
 *
 * The common case is what our templates send: no attachments; From and To a
 * plain address or `Name <address>`; Subject and extra header values
 * printable ASCII (folded as nodemailer folds them); bodies that nodemailer sends
 * 7bit or quoted-printable. Anything else returns `null` and goes through
 * nodemailer (message.ts). direct_mime_test.ts checks the output is
 * byte-identical to nodemailer's for the same base boundary.
 *
 * @module
 */
import { Buffer } from "node:buffer";
// @ts-types="@types/nodemailer/lib/qp/index.d.ts"
import qp from "nodemailer/lib/qp/index.js";
// @ts-types="@types/nodemailer/lib/mime-funcs/index.d.ts"
import mimeFuncs from "nodemailer/lib/mime-funcs/index.js";
import type { OutgoingEmail } from "./outgoing.ts";

/** What the direct builder reads: an `OutgoingEmail` with line ends already CRLF, headers and date set. */
export type DirectMessage =
  & Omit<OutgoingEmail, "headers" | "date">
  & Required<Pick<OutgoingEmail, "headers" | "date">>;

const LINE = 76;
const ADDRESS = /^[A-Za-z0-9][A-Za-z0-9._+-]*@[a-z0-9-]+(\.[a-z0-9-]+)+$/;
const NAME = /^[A-Za-z0-9]+( [A-Za-z0-9]+)*$/;
const MESSAGE_ID = /^<[!#$%&'*+/=?^_`{|}~A-Za-z0-9.-]+@[A-Za-z0-9.-]+>$/;
/** One word or `-`-joined capitalised words: what nodemailer's key normalisation leaves as it is. */
const HEADER_KEY = /^[A-Z][a-z0-9]*(-[A-Z][a-z0-9]*)*$/;
/** Printable ASCII without `"` (which nodemailer encodes), no leading or trailing space, no run of spaces. */
const PLAIN_VALUE = /^[!#-~]+( [!#-~]+)*$/;
/** Headers nodemailer sets or treats specially; an extra header with such a name takes the slow path. */
const RESERVED = new Set([
  "bcc",
  "cc",
  "content-disposition",
  "content-id",
  "content-transfer-encoding",
  "content-type",
  "date",
  "from",
  "in-reply-to",
  "message-id",
  "mime-version",
  "references",
  "reply-to",
  "sender",
  "subject",
  "to",
]);
/** Control characters and non-ASCII: nodemailer's `isPlainText` test. */
// deno-lint-ignore no-control-regex
const NOT_PLAIN = /[\x00-\x08\x0b\x0c\x0e-\x1f\u0080-\uFFFF]/;
const LONG_LINE = new RegExp(`^.{${LINE + 1},}`, "m");
// deno-lint-ignore no-control-regex
const NON_LATIN = /[\x00-\x08\x0b\x0c\x0e-\x1f\u0080-\uFFFF]/g;
const LATIN = /[A-Za-z]/g;

function plainAddress(value: string): boolean {
  if (ADDRESS.test(value)) return true;
  const open = value.lastIndexOf(" <");
  return open > 0 && value.endsWith(">") && NAME.test(value.slice(0, open)) &&
    ADDRESS.test(value.slice(open + 2, -1));
}

/** `Key: value` folded as nodemailer folds it, or null when nodemailer would encode the value. */
function headerLine(key: string, value: string): string | null {
  const line = `${key}: ${value}`;
  if (!PLAIN_VALUE.test(value)) return null;
  return line.length < LINE ? line : mimeFuncs.foldLines(line, LINE);
}

/** A text part's transfer encoding and body as nodemailer writes them, or null (base64: not handled here). */
function textPart(content: string): { encoding: string; body: string } | null {
  if (content.length === 0 || content.length > 128 * 1024) return null;
  if (!NOT_PLAIN.test(content) && !LONG_LINE.test(content)) {
    return { encoding: "7bit", body: content };
  }
  // nodemailer's choice between Q and B: more Latin letters than other bytes → quoted-printable.
  const nonLatin = content.match(NON_LATIN)?.length ?? 0;
  const latin = content.match(LATIN)?.length ?? 0;
  if (nonLatin >= latin) return null;
  return { encoding: "quoted-printable", body: qp.wrap(qp.encode(Buffer.from(content)), LINE) };
}

/**
 * The .eml text of `msg` with multipart boundary `--_NmP-<baseBoundary>-Part_1`,
 * or null when `msg` is not the common case.
 */
export function composeDirect(msg: DirectMessage, baseBoundary: string): string | null {
  if (msg.attachments?.length) return null;
  if (!plainAddress(msg.from) || !plainAddress(msg.to) || !MESSAGE_ID.test(msg.messageId)) {
    return null;
  }
  const lines: string[] = [];
  for (const [key, value] of Object.entries(msg.headers)) {
    if (!HEADER_KEY.test(key) || RESERVED.has(key.toLowerCase())) return null;
    const line = headerLine(key, value);
    if (line === null) return null;
    lines.push(line);
  }
  const subject = headerLine("Subject", msg.subject);
  const text = textPart(msg.text);
  const html = textPart(msg.html);
  if (subject === null || text === null || html === null) return null;
  const from = headerLine("From", msg.from);
  const to = headerLine("To", msg.to);
  const messageId = headerLine("Message-ID", msg.messageId);
  if (from === null || to === null || messageId === null) return null;
  const boundary = `--_NmP-${baseBoundary}-Part_1`;
  lines.push(
    from,
    to,
    subject,
    messageId,
    `Date: ${msg.date.toUTCString().replace(/GMT/, "+0000")}`,
    "MIME-Version: 1.0",
    `Content-Type: multipart/alternative;\r\n boundary="${boundary}"`,
  );
  const part = (type: string, p: { encoding: string; body: string }) =>
    `Content-Type: ${type}; charset=utf-8\r\nContent-Transfer-Encoding: ${p.encoding}\r\n\r\n${p.body}`;
  return `${lines.join("\r\n")}\r\n\r\n--${boundary}\r\n${
    part("text/plain", text)
  }\r\n--${boundary}\r\n${part("text/html", html)}\r\n--${boundary}--\r\n`;
}
