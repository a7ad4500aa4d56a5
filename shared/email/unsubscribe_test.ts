import assert from "node:assert/strict";
import {
  InvalidUnsubscribeTokenError,
  signUnsubscribeToken,
  unsubscribeUrl,
  verifyUnsubscribeToken,
} from "./unsubscribe.ts";

const SECRET = "test-secret-0123456789abcdef";

function assertInvalid(token: string, secret = SECRET) {
  assert.throws(() => verifyUnsubscribeToken(token, secret), (err) => {
    assert.ok(err instanceof InvalidUnsubscribeTokenError);
    assert.equal(err.code, "invalid-unsubscribe-token");
    assert.equal(err.status, 400);
    return true;
  });
}

Deno.test("signUnsubscribeToken() round-trips the lowercased address", () => {
  const token = signUnsubscribeToken("  Sam.Ortiz@HarborBakery.example ", SECRET);
  assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  assert.equal(verifyUnsubscribeToken(token, SECRET), "sam.ortiz@harborbakery.example");
  // Deterministic: the same address always gets the same link.
  assert.equal(signUnsubscribeToken("sam.ortiz@harborbakery.example", SECRET), token);
});

Deno.test("verifyUnsubscribeToken() refuses a token signed with another secret", () => {
  assertInvalid(signUnsubscribeToken("sam@x.example", "another-secret-0123456789"));
});

Deno.test("verifyUnsubscribeToken() refuses a token whose address was swapped", () => {
  const [, mac] = signUnsubscribeToken("sam@x.example", SECRET).split(".");
  const forged = `${btoa("victim@x.example").replace(/=+$/, "")}.${mac}`;
  assertInvalid(forged);
});

Deno.test("verifyUnsubscribeToken() refuses a flipped signature character", () => {
  const token = signUnsubscribeToken("sam@x.example", SECRET);
  const last = token.at(-1) === "A" ? "B" : "A";
  assertInvalid(token.slice(0, -1) + last);
});

Deno.test("verifyUnsubscribeToken() refuses garbage", () => {
  for (const garbage of ["", ".", "abc", "a.b.c", "not base64!.x", "eyJ.", "%%%.%%%"]) {
    assertInvalid(garbage);
  }
});

Deno.test("signUnsubscribeToken() refuses short secrets and non-addresses", () => {
  assert.throws(() => signUnsubscribeToken("sam@x.example", "short"), RangeError);
  assert.throws(() => signUnsubscribeToken("not an address", SECRET), RangeError);
});

Deno.test("unsubscribeUrl() appends /unsubscribe and the token to the base URL", () => {
  assert.equal(
    unsubscribeUrl("https://pleasantcove.example", "abc.def"),
    "https://pleasantcove.example/unsubscribe?token=abc.def",
  );
  assert.equal(
    unsubscribeUrl("https://pleasantcove.example/api/?x=1#top", "abc.def"),
    "https://pleasantcove.example/api/unsubscribe?token=abc.def",
  );
});

Deno.test("verifyUnsubscribeToken() accepts any listed secret during a rotation", () => {
  const OLD = "old-unsubscribe-secret-0123456789";
  const NEW = "new-unsubscribe-secret-0123456789";
  const signedOld = signUnsubscribeToken("a@example.com", OLD);
  const signedNew = signUnsubscribeToken("a@example.com", NEW);
  assert.equal(verifyUnsubscribeToken(signedOld, [NEW, OLD]), "a@example.com");
  assert.equal(verifyUnsubscribeToken(signedNew, [NEW, OLD]), "a@example.com");
  assertInvalid(signedOld, NEW);
  assert.throws(() => verifyUnsubscribeToken(signedOld, [NEW]), InvalidUnsubscribeTokenError);
});
