import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { errorJson, replyJson, resultJson } from "./resp_json.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("replyJson() encodes every string at every depth in base64 mode", () => {
  assert.equal(replyJson(Buffer.from("OK"), "base64"), '"T0s="');
  assert.equal(replyJson(bytes("bar"), "base64"), '"YmFy"');
  assert.equal(replyJson(Uint8Array.of(255, 0, 128), "base64"), '"/wCA"');
  assert.equal(replyJson(bytes(""), "base64"), '""');
  assert.equal(
    replyJson([bytes("0"), [bytes("foo"), null, "7"], "-3", null], "base64"),
    '["MA==",["Zm9v",null,7],-3,null]',
  );
});

Deno.test("replyJson() writes text mode strings as JSON, invalid UTF-8 as U+FFFD", () => {
  assert.equal(replyJson(bytes('say "hi"\n'), "text"), '"say \\"hi\\"\\n"');
  assert.equal(replyJson(Uint8Array.of(0x68, 0xff, 0x69), "text"), '"h\ufffdi"');
  assert.equal(replyJson([bytes("héllo"), []], "text"), '["héllo",[]]');
});

Deno.test("replyJson() keeps integers exact and nested errors as plain messages", () => {
  assert.equal(replyJson("9007199254740993", "base64"), "9007199254740993");
  assert.equal(replyJson(42, "base64"), "42");
  assert.equal(replyJson([new Error('ERR boom "x"')], "base64"), '["ERR boom \\"x\\""]');
});

Deno.test("resultJson() and errorJson() build the envelope", () => {
  assert.deepEqual(JSON.parse(resultJson([bytes("a"), "1"], "base64")), { result: ["YQ==", 1] });
  assert.equal(resultJson(null, "text"), '{"result":null}');
  assert.equal(errorJson("WRONGTYPE x"), '{"error":"WRONGTYPE x"}');
});
