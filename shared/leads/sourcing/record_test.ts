import assert from "node:assert/strict";
import { deriveExternalId, LeadRecordSchema, toLeadRecord, toLeadRecords } from "./record.ts";

const opts = { source: "csv:test", defaultRegion: "US" };

Deno.test("toLeadRecord() coerces spreadsheet strings into a valid record", async () => {
  const result = await toLeadRecord({
    name: "  Joe's   Pizza ",
    category: "Restaurant",
    city: "Duluth",
    rating: "4,5",
    reviews: "1,234",
    website: "joespizza.com",
    phone: "(218) 555-0142",
    email: " Joe@JoesPizza.COM ",
    external_id: "row-1",
  }, opts);
  assert.ok(result.ok, JSON.stringify(result));
  assert.deepEqual(result.record, {
    source: "csv:test",
    external_id: "row-1",
    name: "Joe's Pizza",
    category: "Restaurant",
    city: "Duluth",
    rating: 4.5,
    reviews: 1234,
    has_website: true,
    website: "https://joespizza.com/",
    phone: "+12185550142",
    phone_valid: true,
    email: "joe@joespizza.com",
  });
  assert.ok(LeadRecordSchema.safeParse(result.record).success);
});

Deno.test("toLeadRecord() turns blanks into nulls and defaults", async () => {
  const result = await toLeadRecord({ name: "Bare", rating: "", reviews: "", phone: " " }, opts);
  assert.ok(result.ok);
  assert.equal(result.record.rating, null);
  assert.equal(result.record.reviews, 0);
  assert.equal(result.record.has_website, false);
  assert.equal(result.record.website, null);
  assert.equal(result.record.phone, null);
  assert.equal(result.record.phone_valid, null, "no phone at all is unknown, not invalid");
  assert.equal(result.record.email, null);
  assert.match(result.record.external_id, /^sha256:[0-9a-f]{64}$/);
});

Deno.test("toLeadRecord() reads yes/no in a website column as has_website", async () => {
  const yes = await toLeadRecord({ name: "A", website: "yes" }, opts);
  const no = await toLeadRecord({ name: "B", has_website: "no" }, opts);
  assert.ok(yes.ok && no.ok);
  assert.equal(yes.record.has_website, true);
  assert.equal(yes.record.website, null);
  assert.equal(no.record.has_website, false);
});

Deno.test("toLeadRecord() keeps a lead whose phone cannot be parsed", async () => {
  const result = await toLeadRecord({ name: "A", phone: "call us!" }, opts);
  assert.ok(result.ok);
  assert.equal(result.record.phone, null);
  assert.equal(result.record.phone_valid, false);
});

Deno.test("toLeadRecord() lists every problem in human words", async () => {
  const result = await toLeadRecord({
    name: "",
    rating: "7",
    reviews: "-3",
    email: "not-an-email",
    has_website: "maybe",
  }, opts);
  assert.equal(result.ok, false);
  assert.ok(!result.ok);
  assert.deepEqual(result.reasons, [
    "name is required",
    'has_website must be true or false (got "maybe")',
    "rating must be between 0 and 5 (got 7)",
    'reviews must be a whole number of at least 0 (got "-3")',
    'email is not a valid address (got "not-an-email")',
  ]);
  const contradiction = await toLeadRecord(
    { name: "A", has_website: "false", website: "https://a.example" },
    opts,
  );
  assert.deepEqual(contradiction, {
    ok: false,
    reasons: ["has_website is false but a website is given"],
  });
  const noSource = await toLeadRecord({ name: "A" });
  assert.deepEqual(noSource, { ok: false, reasons: ["source is required"] });
});

Deno.test("deriveExternalId() ignores case, spacing and punctuation but not the phone", async () => {
  const a = await deriveExternalId("Joe's Pizza", "Duluth", "+12185550142");
  assert.equal(a, await deriveExternalId("  JOES   pizza", "duluth ", "+12185550142"));
  assert.notEqual(a, await deriveExternalId("Joe's Pizza", "Duluth", null));
  assert.notEqual(a, await deriveExternalId("Joe's Pizza", "Superior", "+12185550142"));
});

Deno.test("toLeadRecords() keeps good items and numbers rejections by position", async () => {
  const { records, rejected } = await toLeadRecords(
    [{ name: "Good" }, "nope", { name: "Bad", rating: "x" }, { name: "Also good" }],
    opts,
  );
  assert.deepEqual(records.map((r) => r.name), ["Good", "Also good"]);
  assert.deepEqual(rejected, [
    { line: 2, reason: "item must be an object" },
    { line: 3, reason: 'rating must be a number (got "x")' },
  ]);
});
