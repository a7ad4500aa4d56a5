import assert from "node:assert/strict";
import { composeEml, messageIdFor, unsubscribeHeaders } from "./message.ts";
import {
  decodeBody,
  decodeWords,
  leafParts,
  parseEntity,
  sampleEmail,
} from "../../testing/email.ts";

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("messageIdFor() wraps the ledger id and domain in angle brackets", () => {
  assert.equal(
    messageIdFor("0193c0de-7a1b-7c2d-8e3f-123456789abc", "pleasantcove.example"),
    "<0193c0de-7a1b-7c2d-8e3f-123456789abc@pleasantcove.example>",
  );
  assert.equal(messageIdFor("42", "mail.pc.example"), "<42@mail.pc.example>");
});

Deno.test("messageIdFor() refuses ids and domains that would break the header", () => {
  assert.throws(() => messageIdFor("a b", "pc.example"), RangeError);
  assert.throws(() => messageIdFor("a>\r\nBcc: x@y", "pc.example"), RangeError);
  assert.throws(() => messageIdFor("", "pc.example"), RangeError);
  assert.throws(() => messageIdFor("ok", "pc.example>"), RangeError);
});

Deno.test("unsubscribeHeaders() gives the RFC 8058 one-click pair", () => {
  assert.deepEqual(unsubscribeHeaders("https://pc.example/unsubscribe?token=t"), {
    "List-Unsubscribe": "<https://pc.example/unsubscribe?token=t>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
  });
});

Deno.test("composeEml() writes a MIME message whose headers parse back", async () => {
  const msg = sampleEmail({ subject: "Café opening — your new site" });
  const eml = decode(await composeEml(msg));
  assert.ok(!/[^\r]\n/.test(eml), "every line ends with CRLF");
  const top = parseEntity(eml);
  assert.equal(top.headers.get("message-id"), msg.messageId);
  assert.equal(top.headers.get("from"), msg.from);
  assert.equal(top.headers.get("to"), msg.to);
  assert.equal(decodeWords(top.headers.get("subject")!), msg.subject);
  assert.equal(top.headers.get("date"), "Fri, 20 Feb 2026 09:15:30 +0000");
  assert.equal(top.headers.get("mime-version"), "1.0");
  assert.equal(top.headers.get("list-unsubscribe"), msg.headers!["List-Unsubscribe"]);
  assert.equal(top.headers.get("list-unsubscribe-post"), "List-Unsubscribe=One-Click");
  assert.match(top.headers.get("content-type")!, /^multipart\/mixed;/);
});

Deno.test("composeEml() carries text, HTML and the attachment intact", async () => {
  const bytes = new TextEncoder().encode("BEGIN:VCALENDAR\r\nSUMMARY:Café ☕\r\nEND:VCALENDAR\r\n");
  const msg = sampleEmail({
    attachments: [
      { filename: "invite.ics", contentType: "text/calendar; method=REQUEST", content: bytes },
    ],
  });
  const parts = leafParts(parseEntity(decode(await composeEml(msg))));
  const byType = (t: string) => parts.find((p) => p.headers.get("content-type")!.startsWith(t));
  assert.equal(parts.length, 3);
  assert.equal(decodeBody(byType("text/plain")!), msg.text.replace(/\n/g, "\r\n"));
  assert.equal(decodeBody(byType("text/html")!), msg.html);
  const invite = byType("text/calendar")!;
  assert.match(invite.headers.get("content-disposition")!, /^attachment; filename=invite\.ics/);
  assert.match(invite.headers.get("content-type")!, /method=REQUEST/);
  assert.equal(decodeBody(invite), decode(bytes));
});
