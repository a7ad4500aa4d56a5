import assert from "node:assert/strict";
import { normalizePhone } from "./phone.ts";

Deno.test("normalizePhone() reads national numbers in the default region", () => {
  assert.deepEqual(normalizePhone("(415) 555-2671", "US"), { e164: "+14155552671", valid: true });
  assert.deepEqual(normalizePhone("020 7946 0958", "GB"), { e164: "+442079460958", valid: true });
  // Region codes are case-insensitive; numbers may arrive as JSON numbers.
  assert.deepEqual(normalizePhone("(650) 253-0000", "us"), { e164: "+16502530000", valid: true });
  assert.deepEqual(normalizePhone(4155552671, "US"), { e164: "+14155552671", valid: true });
});

Deno.test("normalizePhone() needs no region for international numbers", () => {
  assert.deepEqual(normalizePhone("+44 20 7946 0958"), { e164: "+442079460958", valid: true });
  assert.deepEqual(normalizePhone("+1 650-253-0000", "GB"), {
    e164: "+16502530000",
    valid: true,
  });
  assert.deepEqual(normalizePhone("tel:+1-415-555-2671", null), {
    e164: "+14155552671",
    valid: true,
  });
});

Deno.test("normalizePhone() drops extensions from the E.164 form", () => {
  assert.deepEqual(normalizePhone("415-555-2671 ext. 3", "US"), {
    e164: "+14155552671",
    valid: true,
  });
});

Deno.test("normalizePhone() keeps a possible but invalid number, flagged invalid", () => {
  // NANP exchange codes never start with 1: the right length, not a real number.
  assert.deepEqual(normalizePhone("+1 415 123 4567"), { e164: "+14151234567", valid: false });
});

Deno.test("normalizePhone() is total: unusable input gives null and false", () => {
  const none = { e164: null, valid: false };
  assert.deepEqual(normalizePhone("415-555-2671"), none, "national number without a region");
  assert.deepEqual(normalizePhone("415-555-2671", "ZZ"), none, "unknown region is ignored");
  assert.deepEqual(normalizePhone("12", "US"), none, "too short");
  assert.deepEqual(normalizePhone("+999 123"), none, "no such country code");
  assert.deepEqual(normalizePhone("not a phone", "US"), none);
  assert.deepEqual(normalizePhone("1".repeat(500), "US"), none, "oversized input");
  for (const raw of ["", "   ", null, undefined, {}, [], true, NaN]) {
    assert.deepEqual(normalizePhone(raw, "US"), none, `input ${String(raw)}`);
  }
});
