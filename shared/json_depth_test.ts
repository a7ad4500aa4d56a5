import assert from "node:assert/strict";
import { jsonTextDepthExceeds } from "./json_depth.ts";
import { canonicalJson, NotSerializableError } from "./queue/canonical_json.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("jsonTextDepthExceeds() counts nesting, not brackets inside strings", () => {
  assert.equal(jsonTextDepthExceeds(bytes('{"a":[1,{"b":2}]}'), 3), false);
  assert.equal(jsonTextDepthExceeds(bytes('{"a":[1,{"b":2}]}'), 2), true);
  assert.equal(jsonTextDepthExceeds(bytes('{"a":"[[[[[[\\\\\\"{{{{"}'), 1), false);
  assert.equal(jsonTextDepthExceeds(bytes('"{{{{"'), 1), false);
  assert.equal(jsonTextDepthExceeds(bytes('{"é":"ü[[[","x":{}}'), 1), true);
  const deep = "[".repeat(200_000) + "]".repeat(200_000);
  assert.equal(jsonTextDepthExceeds(bytes(deep), 64), true);
});

Deno.test("canonicalJson() refuses a value nested deeper than the limit instead of overflowing", () => {
  let v: unknown = 1;
  for (let i = 0; i < 20_000; i++) v = [v];
  assert.throws(() => canonicalJson(v), NotSerializableError);
  let ok: unknown = 1;
  for (let i = 0; i < 60; i++) ok = [ok];
  assert.equal(canonicalJson(ok).length, 121);
});
