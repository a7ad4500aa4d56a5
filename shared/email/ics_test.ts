import assert from "node:assert/strict";
import {
  buildInvite,
  escapeText,
  foldLine,
  formatUtc,
  ICS_CONTENT_TYPE,
  inviteAttachment,
  type InviteEvent,
} from "./ics.ts";

const event: InviteEvent = {
  id: "booking-42",
  start: new Date("2026-03-03T14:00:00Z"),
  durationMin: 45,
  stamp: new Date("2026-02-20T09:15:30.250Z"),
  summary: "Pleasant Cove × Harbor Bakery",
  description: "Walk through the new site; review hours, menu, photos.\nBring logo files.",
  organizer: { email: "maya@pleasantcove.example", name: "Maya Lin" },
  attendee: { email: "sam@harborbakery.example", name: 'Sam "The Baker" Ortiz' },
};

const octets = (s: string) => new TextEncoder().encode(s).length;

/** A minimal RFC 5545 reader: unfolds, splits name/params/value, unescapes TEXT. */
function parse(ics: string): Map<string, { params: string; value: string }> {
  const props = new Map<string, { params: string; value: string }>();
  for (const line of ics.replace(/\r\n[ \t]/g, "").split("\r\n").filter(Boolean)) {
    // The value starts at the first colon outside a quoted parameter value.
    let quoted = false;
    let colon = -1;
    for (let i = 0; i < line.length && colon < 0; i++) {
      if (line[i] === '"') quoted = !quoted;
      else if (line[i] === ":" && !quoted) colon = i;
    }
    const head = line.slice(0, colon);
    const name = head.split(";")[0]!;
    const value = line.slice(colon + 1).replace(
      /\\([\\;,nN])/g,
      (_, c: string) => c === "n" || c === "N" ? "\n" : c,
    );
    props.set(name === "BEGIN" || name === "END" ? `${name}:${value}` : name, {
      params: head.slice(name.length),
      value,
    });
  }
  return props;
}

Deno.test("buildInvite() writes a METHOD:REQUEST calendar with one confirmed VEVENT", () => {
  const ics = buildInvite(event);
  assert.ok(ics.startsWith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:"));
  assert.ok(ics.endsWith("END:VEVENT\r\nEND:VCALENDAR\r\n"));
  assert.ok(!/[^\r]\n/.test(ics), "every line ends with CRLF");
  const p = parse(ics);
  assert.equal(p.get("METHOD")?.value, "REQUEST");
  assert.equal(p.get("UID")?.value, "booking-42@pleasantcove.example");
  assert.equal(p.get("DTSTAMP")?.value, "20260220T091530Z");
  assert.equal(p.get("DTSTART")?.value, "20260303T140000Z");
  assert.equal(p.get("DTEND")?.value, "20260303T144500Z");
  assert.equal(p.get("SUMMARY")?.value, event.summary);
  assert.equal(p.get("DESCRIPTION")?.value, event.description);
  assert.equal(p.get("STATUS")?.value, "CONFIRMED");
  assert.equal(p.get("SEQUENCE")?.value, "0");
  assert.equal(p.get("ORGANIZER")?.params, ';CN="Maya Lin"');
  assert.equal(p.get("ORGANIZER")?.value, "mailto:maya@pleasantcove.example");
  // A DQUOTE cannot appear inside a quoted parameter value.
  assert.match(p.get("ATTENDEE")!.params, /^;CN="Sam 'The Baker' Ortiz";.*RSVP=TRUE/);
  assert.equal(p.get("ATTENDEE")?.value, "mailto:sam@harborbakery.example");
  assert.equal(ics.match(/BEGIN:VEVENT/g)?.length, 1);
});

Deno.test("buildInvite() is deterministic for the same event", () => {
  assert.equal(buildInvite(event), buildInvite({ ...event }));
  const other = parse(buildInvite({ ...event, id: "booking-43", uidDomain: "pc.example" }));
  assert.equal(other.get("UID")?.value, "booking-43@pc.example");
});

Deno.test("escapeText() escapes backslash, semicolon, comma and every newline form", () => {
  assert.equal(escapeText("a\\b;c,d\ne\r\nf\rg"), "a\\\\b\\;c\\,d\\ne\\nf\\ng");
  const tricky = "C:\\sites\\new; menu, hours\nand \\n literally";
  assert.equal(
    parse(buildInvite({ ...event, description: tricky })).get("DESCRIPTION")?.value,
    tricky,
  );
});

Deno.test("foldLine() leaves 75 octets alone and folds longer lines with a leading space", () => {
  const exact = "X".repeat(75);
  assert.equal(foldLine(exact), exact);
  const folded = foldLine("Y".repeat(160));
  const lines = folded.split("\r\n");
  assert.deepEqual(lines.map(octets), [75, 75, 12]); // 75 + 74 + 11 characters
  assert.ok(lines.slice(1).every((l) => l.startsWith(" ")));
  assert.equal(folded.replace(/\r\n /g, ""), "Y".repeat(160));
});

Deno.test("foldLine() never splits a multibyte UTF-8 character", () => {
  // 2-, 3- and 4-byte characters at every alignment against the 75-octet limit.
  for (let pad = 0; pad < 4; pad++) {
    const line = "DESCRIPTION:" + "a".repeat(pad) + "é漢🎉".repeat(40);
    const folded = foldLine(line);
    for (const physical of folded.split("\r\n")) {
      assert.ok(octets(physical) <= 75, `${octets(physical)} octets`);
      const bytes = new TextEncoder().encode(physical);
      // fatal: a split sequence would throw instead of decoding to U+FFFD.
      assert.equal(new TextDecoder("utf-8", { fatal: true }).decode(bytes), physical);
    }
    assert.equal(folded.replace(/\r\n /g, ""), line);
  }
});

Deno.test("buildInvite() folds long properties and they parse back whole", () => {
  const description = "Agenda: " +
    "review your Google Business Profile, café photos 📷; ".repeat(8);
  const ics = buildInvite({ ...event, description });
  const physical = ics.split("\r\n");
  assert.ok(physical.some((l) => l.startsWith(" ")), "something was folded");
  assert.ok(physical.every((l) => octets(l) <= 75));
  assert.equal(parse(ics).get("DESCRIPTION")?.value, description);
});

Deno.test("buildInvite() refuses addresses that could break the line and bad durations", () => {
  assert.throws(
    () => buildInvite({ ...event, attendee: { email: "sam@x.example\r\nATTENDEE:mailto:e@v" } }),
    RangeError,
  );
  assert.throws(() => buildInvite({ ...event, durationMin: 0 }), RangeError);
  assert.throws(() => formatUtc(new Date("nope")), RangeError);
});

Deno.test("inviteAttachment() labels the invite with the REQUEST method", () => {
  const a = inviteAttachment("BEGIN:VCALENDAR\r\n");
  assert.equal(a.filename, "invite.ics");
  assert.equal(a.contentType, ICS_CONTENT_TYPE);
  assert.match(a.contentType, /method=REQUEST/);
});

Deno.test("buildInvite() writes the meeting link as URL and LOCATION, and SEQUENCE", () => {
  const url = "https://meet.example/harbor-bakery?pwd=a,b;c";
  const props = parse(buildInvite({
    ...event,
    location: url,
    url,
    description: `Join the call: ${url}`,
    sequence: 2,
  }));
  // URL is a URI value: its commas and semicolons are not TEXT-escaped.
  assert.equal(props.get("URL")?.value, url);
  assert.equal(props.get("LOCATION")?.value, url);
  assert.equal(props.get("DESCRIPTION")?.value, `Join the call: ${url}`);
  assert.equal(props.get("SEQUENCE")?.value, "2");
  assert.match(
    buildInvite({ ...event, url }),
    /\r\nURL:https:\/\/meet\.example\/harbor-bakery\?pwd=a,b;c\r\n/,
  );
  assert.throws(() => buildInvite({ ...event, url: "javascript:alert(1)" }), RangeError);
  assert.throws(
    () => buildInvite({ ...event, url: "https://x.example/a\r\nATTENDEE:x" }),
    RangeError,
  );
  assert.doesNotMatch(buildInvite(event), /\r\nURL:/);
});
