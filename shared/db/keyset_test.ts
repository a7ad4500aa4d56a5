import assert from "node:assert/strict";
import { keysetPage, MICROS_TIMESTAMP_PATTERN, microsTimestampSql } from "./keyset.ts";

Deno.test("keysetPage cuts LIMIT limit + 1 rows to the page and names the last row only when more follow", () => {
  assert.deepEqual(keysetPage([1, 2, 3], 2), { page: [1, 2], last: 2 });
  assert.deepEqual(keysetPage([1, 2], 2), { page: [1, 2], last: null });
  assert.deepEqual(keysetPage([], 2), { page: [], last: null });
});

Deno.test("microsTimestampSql renders UTC with microseconds, the cursor pattern", () => {
  assert.equal(
    microsTimestampSql("t.at"),
    `to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
  );
  assert.ok(MICROS_TIMESTAMP_PATTERN.test("2025-01-31T12:00:00.123456Z"));
  assert.ok(!MICROS_TIMESTAMP_PATTERN.test("2025-01-31T12:00:00.123Z"));
});
