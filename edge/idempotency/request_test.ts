import assert from "node:assert/strict";
import {
  MAX_KEY_LENGTH,
  parseIdempotencyKey,
  readBodyCapped,
  requestFingerprint,
} from "./request.ts";

Deno.test("parseIdempotencyKey() accepts bare and structured-field keys of printable ASCII", () => {
  assert.equal(parseIdempotencyKey("order-42"), "order-42");
  assert.equal(parseIdempotencyKey('"order-42"'), "order-42");
  assert.equal(parseIdempotencyKey('"a \\"b\\" \\\\c"'), 'a "b" \\c');
  assert.equal(parseIdempotencyKey("x".repeat(MAX_KEY_LENGTH)), "x".repeat(MAX_KEY_LENGTH));
});

Deno.test("parseIdempotencyKey() refuses empty, too long, control and non-ASCII keys", () => {
  for (
    const bad of [
      "",
      '""',
      "x".repeat(MAX_KEY_LENGTH + 1),
      "a\x01b",
      "a\tb",
      "a\x7fb",
      "clé",
      '"a"b"',
      '"a\\b"',
      '"a\\"',
    ]
  ) {
    assert.equal(parseIdempotencyKey(bad), null, JSON.stringify(bad));
  }
});

Deno.test("requestFingerprint() canonicalises JSON but not other bodies", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const fp = (method: string, path: string, type: string | undefined, body: string) =>
    requestFingerprint(method, path, type, enc(body));
  const json = "application/json; charset=utf-8";
  const a = fp("POST", "/v1/x", json, '{"a":1,"b":[1,{"d":2,"c":3}]}');
  assert.equal(fp("POST", "/v1/x", json, '{ "b": [1, {"c":3, "d":2}], "a": 1 }'), a);
  assert.equal(
    fp("POST", "/v1/x", "application/merge-patch+json", '{"a":1}'),
    fp("POST", "/v1/x", json, '{ "a" : 1 }'),
  );
  assert.notEqual(fp("POST", "/v1/x", json, '{"a":2,"b":[1,{"d":2,"c":3}]}'), a);
  assert.notEqual(fp("PATCH", "/v1/x", json, '{"a":1,"b":[1,{"d":2,"c":3}]}'), a);
  assert.notEqual(fp("POST", "/v1/y", json, '{"a":1,"b":[1,{"d":2,"c":3}]}'), a);
  assert.notEqual(
    fp("POST", "/v1/x", "text/plain", "a b"),
    fp("POST", "/v1/x", "text/plain", "a  b"),
  );
  // Broken JSON is hashed as bytes rather than refused.
  assert.match(fp("POST", "/v1/x", json, "{nope"), /^[0-9a-f]{64}$/);
});

Deno.test("readBodyCapped() leaves the request readable and stops at the limit", async () => {
  const req = new Request("http://x/", { method: "POST", body: "hello" });
  assert.deepEqual(await readBodyCapped(req, 5), new TextEncoder().encode("hello"));
  assert.equal(await req.text(), "hello");
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new Uint8Array(4));
      c.enqueue(new Uint8Array(4));
      c.close();
    },
  });
  const big = new Request("http://x/", { method: "POST", body: stream });
  assert.equal(await readBodyCapped(big, 7), null);
  await big.body?.cancel();
});
