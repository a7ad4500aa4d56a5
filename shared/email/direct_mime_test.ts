import assert from "node:assert/strict";
import fc from "fast-check";
import { composeDirect, type DirectMessage } from "./direct_mime.ts";
import {
  composeEml,
  composeWithEnvelope,
  type OutgoingEmail,
  unsubscribeHeaders,
} from "./message.ts";
import { renderTemplate, TEMPLATE_NAMES } from "./templates.ts";
import { templateExample } from "./template_examples.ts";
import { signUnsubscribeToken, unsubscribeUrl } from "./unsubscribe.ts";
import { sampleEmail } from "../../testing/email.ts";

const BASE = "0123456789abcdef";
const text = new TextDecoder();

async function byNodemailer(msg: OutgoingEmail): Promise<string> {
  return text.decode((await composeWithEnvelope(msg, BASE)).eml);
}

function direct(msg: OutgoingEmail): string | null {
  const crlf = (v: string) => v.replace(/\r\n|\r|\n/g, "\r\n");
  const input: DirectMessage = {
    ...msg,
    text: crlf(msg.text),
    html: crlf(msg.html),
    headers: msg.headers ?? {},
    date: msg.date ?? new Date(),
  };
  return composeDirect(input, BASE);
}

function templateEmail(name: (typeof TEMPLATE_NAMES)[number]): OutgoingEmail {
  // A signed link as send_email makes it: longer than a header line.
  const url = unsubscribeUrl(
    "https://pleasantcove.example/v1",
    signUnsubscribeToken("sam@harborbakery.example", "test-secret-0123456789abcdef"),
  );
  const r = renderTemplate(name, templateExample(name), { unsubscribeUrl: url });
  return {
    messageId: "<0193c0de-7a1b-7c3d-8e9f-0123456789ab@pleasantcove.example>",
    from: "Pleasant Cove <hello@pleasantcove.example>",
    to: "sam@harborbakery.example",
    subject: r.subject,
    text: r.text,
    html: r.html,
    headers: unsubscribeHeaders(url),
    date: new Date("2026-02-20T09:15:30Z"),
  };
}

Deno.test("composeDirect() writes nodemailer's bytes for every template", async () => {
  for (const name of TEMPLATE_NAMES) {
    const msg = templateEmail(name);
    const built = direct(msg);
    assert.notEqual(built, null, name);
    assert.equal(built, await byNodemailer(msg), name);
  }
});

Deno.test("composeDirect() leaves what it does not handle to nodemailer", () => {
  const base = templateEmail("intro");
  const others: Partial<OutgoingEmail>[] = [
    { attachments: sampleEmail().attachments },
    { subject: "Café Bleu" },
    { subject: `A "quoted" word` },
    { from: `"Pleasant, Cove" <hello@pleasantcove.example>` },
    { to: "Sam <sam@harborbakery.example> , b@c.example" },
    { headers: { "content-type": "text/plain" } },
    { headers: { "X-SMTPAPI": "{}" } },
    { text: "" },
    { text: "12345 6789" + "\u00e9".repeat(20) },
  ];
  for (const other of others) {
    assert.equal(direct({ ...base, ...other }), null, JSON.stringify(other));
  }
});

Deno.test("composeDirect() equals nodemailer whenever it answers (property)", async () => {
  const word = fc.stringMatching(/^[A-Za-z0-9]{1,8}$/);
  const host = fc.stringMatching(/^[a-z0-9]{1,8}$/);
  const sentence = (max: number) =>
    fc.array(word, { minLength: 1, maxLength: max }).map((w) => w.join(" "));
  const symbols = fc.string({
    unit: fc.constantFrom(..."!#$%&'()*+,-./:;<=>?@[]^_`{|}~=?\""),
    maxLength: 6,
  });
  const printable = fc.tuple(sentence(8), symbols, sentence(8)).map(([a, b, c]) => `${a}${b}${c}`);
  const odd = fc.string({
    unit: fc.constantFrom("a", " ", "=", "\u00e9", "\t", "\r\n", "\n", "€", "."),
    maxLength: 40,
  });
  const line = fc.oneof({ weight: 4, arbitrary: sentence(20) }, printable, odd);
  const body = fc.tuple(word, fc.array(line, { maxLength: 6 })).map(([w, lines]) =>
    [w, ...lines].join("\n")
  );
  const address = fc.tuple(word, host, host).map(([a, b, c]) => `${a}.x@${b}.${c}`);
  const mailbox = fc.oneof(address, fc.tuple(sentence(3), address).map(([n, a]) => `${n} <${a}>`));
  const message = fc.record({
    from: mailbox,
    to: mailbox,
    subject: fc.oneof(printable, sentence(14)),
    text: body,
    html: body,
    header: fc.oneof(
      printable,
      word,
      odd,
      fc.stringMatching(/^<https:\/\/[a-z.]{1,20}\/u\?token=[A-Za-z0-9._-]{40,120}>$/),
    ),
  });
  let answered = 0;
  await fc.assert(
    fc.asyncProperty(message, async (m) => {
      const msg: OutgoingEmail = {
        messageId: "<id-1@pc.example>",
        from: m.from,
        to: m.to,
        subject: m.subject,
        text: m.text,
        html: m.html,
        headers: { "List-Unsubscribe": m.header, "X-Entity-Ref": "r1" },
        date: new Date("2026-12-07T17:00:00Z"),
      };
      const built = direct(msg);
      if (built === null) return;
      answered++;
      assert.equal(built, await byNodemailer(msg));
    }),
    { numRuns: 400 },
  );
  assert.ok(answered > 40, `only ${answered} of 400 messages took the direct path`);
});

Deno.test("composeEml() builds the common case directly and the rest through nodemailer", async () => {
  const common = templateEmail("follow_up");
  const withBoundary = (eml: string) => eml.replace(/_NmP-[0-9a-f]{16}-/g, `_NmP-${BASE}-`);
  assert.equal(withBoundary(text.decode(await composeEml(common))), await byNodemailer(common));
  const invite = sampleEmail();
  const eml = text.decode(await composeEml(invite));
  assert.equal(withBoundary(eml), await byNodemailer(invite));
  assert.match(eml, /filename=invite\.ics/);
});
