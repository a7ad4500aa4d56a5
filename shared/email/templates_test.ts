import assert from "node:assert/strict";
import {
  InvalidTemplateVariablesError,
  MissingTemplateVariablesError,
  renderTemplate,
  TEMPLATE_NAMES,
  TEMPLATES,
  UnknownTemplateError,
} from "./templates.ts";

const UNSUBSCRIBE = "https://pleasantcove.example/unsubscribe?token=abc.def";
const opts = { unsubscribeUrl: UNSUBSCRIBE };
const base = { business_name: "Harbor Bakery", sender_name: "Maya Lin" };
const meeting = { ...base, starts_at: "2026-03-03T14:00:00Z", duration_min: 30 };

function assertFooter(rendered: { text: string; html: string }) {
  assert.ok(rendered.text.includes(`Unsubscribe: ${UNSUBSCRIBE}`), "text footer");
  assert.ok(rendered.html.includes(`href="${UNSUBSCRIBE}"`), "html footer");
}

Deno.test("TEMPLATES lists every template name with its required variables", () => {
  assert.deepEqual(Object.keys(TEMPLATES).sort(), [...TEMPLATE_NAMES].sort());
  for (const name of TEMPLATE_NAMES) {
    assert.ok("business_name" in TEMPLATES[name].required);
    assert.ok("sender_name" in TEMPLATES[name].required);
  }
  assert.deepEqual(
    Object.keys(TEMPLATES.meeting_confirmation.required).sort(),
    ["business_name", "duration_min", "sender_name", "starts_at"],
  );
});

Deno.test("renderTemplate() renders intro with optional variables and the unsubscribe footer", () => {
  const r = renderTemplate("intro", {
    ...base,
    recipient_name: "Sam",
    city: "Portland",
    website_url: "https://harborbakery.example",
    booking_url: "https://pleasantcove.example/book",
  }, opts);
  assert.equal(r.subject, "A better web presence for Harbor Bakery");
  assert.match(r.text, /^Hi Sam,/);
  assert.ok(r.text.includes("Harbor Bakery in Portland"));
  assert.ok(r.text.includes("https://harborbakery.example"));
  assert.ok(r.text.includes("Pick a time that suits you: https://pleasantcove.example/book"));
  assert.ok(r.html.includes('<a href="https://pleasantcove.example/book"'));
  assertFooter(r);
});

Deno.test("renderTemplate() renders intro without optional variables", () => {
  const r = renderTemplate("intro", base, opts);
  assert.match(r.text, /^Hi there,/);
  assert.ok(!r.text.includes(" in undefined"));
  assert.ok(!r.html.includes("undefined"));
  assert.ok(r.text.includes("Maya Lin\nPleasant Cove"));
});

Deno.test("renderTemplate() renders follow_up", () => {
  const r = renderTemplate("follow_up", { ...base, sender_title: "Growth lead" }, opts);
  assert.equal(r.subject, "Following up: Harbor Bakery online");
  assert.ok(r.text.includes("Harbor Bakery's web presence"));
  assert.ok(r.text.includes("Maya Lin\nGrowth lead, Pleasant Cove"));
  assertFooter(r);
});

Deno.test("renderTemplate() renders meeting_confirmation in the given time zone", () => {
  const r = renderTemplate("meeting_confirmation", {
    ...meeting,
    time_zone: "America/New_York",
    meeting_url: "https://meet.example/abc",
  }, opts);
  assert.equal(r.subject, "Confirmed: your call with Pleasant Cove on Tuesday, March 3, 2026");
  // 14:00 UTC is 9:00 in New York in March (EST, before DST).
  assert.ok(r.text.includes("9:00 AM to 9:30 AM EST"), r.text);
  assert.ok(r.text.includes("Length: 30 minutes"));
  assert.ok(r.text.includes("Join the call: https://meet.example/abc"));
  assertFooter(r);
});

Deno.test("renderTemplate() defaults meeting times to UTC and says who calls without a link", () => {
  const r = renderTemplate("meeting_confirmation", meeting, opts);
  assert.ok(r.text.includes("2:00 PM to 2:30 PM UTC"), r.text);
  assert.ok(r.text.includes("Where: Maya Lin will call you"));
});

Deno.test("renderTemplate() escapes variables in HTML but not in text", () => {
  const r = renderTemplate("intro", {
    ...base,
    business_name: `<script>alert("x")</script> & Sons`,
    recipient_name: "O'Neil",
  }, opts);
  assert.ok(!r.html.includes("<script>"));
  assert.ok(r.html.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Sons"));
  assert.ok(r.html.includes("Hi O&#39;Neil,"));
  assert.ok(r.text.includes(`<script>alert("x")</script> & Sons`));
});

Deno.test("renderTemplate() keeps the subject on one line when a variable holds newlines", () => {
  const r = renderTemplate(
    "intro",
    { ...base, business_name: "Harbor\r\nBcc: x@evil.example" },
    opts,
  );
  assert.equal(r.subject, "A better web presence for Harbor Bcc: x@evil.example");
  assert.ok(!/[\r\n]/.test(r.subject));
});

Deno.test("renderTemplate() refuses an unknown template and lists the known ones", () => {
  assert.throws(() => renderTemplate("newsletter", base, opts), (err) => {
    assert.ok(err instanceof UnknownTemplateError);
    assert.equal(err.code, "unknown-template");
    assert.equal(err.status, 422);
    assert.deepEqual(err.details.known_templates, [...TEMPLATE_NAMES]);
    assert.match(err.message, /intro, follow_up, meeting_confirmation/);
    return true;
  });
});

Deno.test("renderTemplate() names every missing or blank required variable", () => {
  assert.throws(
    () => renderTemplate("meeting_confirmation", { business_name: "  ", sender_name: "M" }, opts),
    (err) => {
      assert.ok(err instanceof MissingTemplateVariablesError);
      assert.equal(err.code, "missing-template-variables");
      assert.equal(err.status, 422);
      assert.deepEqual(err.missing, ["business_name", "starts_at", "duration_min"]);
      assert.match(err.message, /business_name, starts_at, duration_min/);
      return true;
    },
  );
});

Deno.test("renderTemplate() refuses unusable dates, durations, zones and link schemes", () => {
  assert.throws(
    () =>
      renderTemplate("meeting_confirmation", {
        ...meeting,
        starts_at: "next tuesday",
        duration_min: "0",
        time_zone: "Mars/Olympus",
        meeting_url: "javascript:alert(1)",
      }, opts),
    (err) => {
      assert.ok(err instanceof InvalidTemplateVariablesError);
      assert.equal(err.code, "invalid-template-variables");
      const names = (err.details.fields as { name: string }[]).map((f) => f.name).sort();
      assert.deepEqual(names, ["duration_min", "meeting_url", "starts_at", "time_zone"]);
      return true;
    },
  );
});
