import assert from "node:assert/strict";
import { InvalidTokenError } from "./errors.ts";
import type { Principal } from "./principal.ts";
import { cacheVerifiedTokens } from "./verified_cache.ts";
import type { Verifier } from "./verify.ts";

function jwt(exp: number, sub = "u"): string {
  const b64 = (o: unknown) =>
    btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${b64({ alg: "HS256" })}.${b64({ sub, exp })}.sig`;
}

function countingVerifier(): Verifier & { calls: number } {
  const v = {
    calls: 0,
    jwksStatus: () => null,
    verify(token: string): Promise<Principal> {
      v.calls++;
      if (token.startsWith("bad")) return Promise.reject(new InvalidTokenError("bad-signature"));
      return Promise.resolve({ kind: "user", sub: token.slice(-5), roles: [] });
    },
  };
  return v;
}

Deno.test("cacheVerifiedTokens() reuses a verification until ttl or exp, whichever is sooner", async () => {
  let t = 1_000_000;
  const inner = countingVerifier();
  const cached = cacheVerifiedTokens(inner, { ttlMs: 1000, now: () => t });
  const long = jwt(t / 1000 + 3600);
  await cached.verify(long);
  await cached.verify(long);
  assert.equal(inner.calls, 1);
  t += 1001;
  await cached.verify(long);
  assert.equal(inner.calls, 2, "re-verified after ttl");

  const short = jwt(t / 1000 + 0.5);
  await cached.verify(short);
  t += 600;
  await cached.verify(short);
  assert.equal(inner.calls, 4, "never served past the token's exp");
});

Deno.test("cacheVerifiedTokens() never caches failures and stays bounded", async () => {
  const inner = countingVerifier();
  const cached = cacheVerifiedTokens(inner, { max: 2, now: () => 0 });
  await assert.rejects(cached.verify("bad-token"), InvalidTokenError);
  await assert.rejects(cached.verify("bad-token"), InvalidTokenError);
  assert.equal(inner.calls, 2);
  const [a, b, c] = [jwt(100, "a"), jwt(100, "b"), jwt(100, "c")];
  await cached.verify(a);
  await cached.verify(b);
  await cached.verify(c); // evicts a
  await cached.verify(b);
  await cached.verify(a);
  assert.equal(inner.calls, 2 + 4);
});

Deno.test("cacheVerifiedTokens() drops every entry when the keys in force change (rotation)", async () => {
  const t = 1_000_000;
  const inner = countingVerifier();
  let keys = [{ kid: "k1" }];
  const cached = cacheVerifiedTokens(inner, { ttlMs: 60_000, now: () => t, keys: () => keys });
  const token = jwt(t / 1000 + 3600);
  await cached.verify(token);
  await cached.verify(token);
  assert.equal(inner.calls, 1);
  keys = [{ kid: "k2" }];
  await cached.verify(token);
  assert.equal(inner.calls, 2, "re-verified against the rotated keys");
  await cached.verify(token);
  assert.equal(inner.calls, 2);
});
