import assert from "node:assert/strict";
import { templateExample, VARIABLE_EXAMPLES } from "./template_examples.ts";
import { renderTemplate, TEMPLATE_NAMES, TEMPLATES } from "./templates.ts";

const link = { unsubscribeUrl: "https://edge.example/v1/unsubscribe?token=preview" };

Deno.test("templateExample() gives every variable of every template a value", () => {
  for (const name of TEMPLATE_NAMES) {
    const spec = TEMPLATES[name];
    assert.deepEqual(
      Object.keys(templateExample(name)).sort(),
      [...Object.keys(spec.required), ...Object.keys(spec.optional)].sort(),
      name,
    );
  }
});

Deno.test("every template renders from the examples and reads as a person would write it", () => {
  for (const name of TEMPLATE_NAMES) {
    const { subject, text, html } = renderTemplate(name, templateExample(name), link);
    for (const part of [subject, text, html]) {
      // The company is named by the copy itself, never twice in a row.
      assert.doesNotMatch(part, /Pleasant Cove[\s,]+(from )?Pleasant Cove/, `${name}: ${part}`);
      assert.doesNotMatch(part, /undefined|null|NaN|\[object/, `${name}: ${part}`);
    }
    assert.match(text, /^Hi Sam,/, name);
    assert.match(text, /\nMaya\nFounder, Pleasant Cove\n/, name);
  }
  const intro = renderTemplate("intro", templateExample("intro"), link).text;
  assert.match(
    intro,
    /I'm Maya from Pleasant Cove\. We help local businesses like Harbor Bakery in Portland /,
  );
  const meeting =
    renderTemplate("meeting_confirmation", templateExample("meeting_confirmation"), link)
      .text;
  // 14:00 UTC on 3 March 2026 is 9:00 in New York (EST).
  assert.match(meeting, /When: Tuesday, March 3, 2026, 9:00 AM to 9:30 AM EST/);
  assert.match(meeting, /Join the call: https:\/\/meet\.example\/harbor-bakery/);
});

Deno.test("sender examples name a person, not the company the copy already names", () => {
  assert.doesNotMatch(String(VARIABLE_EXAMPLES.sender_name), /Pleasant Cove/i);
  assert.doesNotMatch(String(VARIABLE_EXAMPLES.sender_title), /Pleasant Cove/i);
});
