import assert from "node:assert/strict";
import type { Hono } from "hono";
import type { Config } from "../../shared/config/mod.ts";
import type { AppEnv } from "../app_env.ts";
import type { TokenRejectReason } from "../auth/errors.ts";
import {
  authApp,
  bearer,
  claims,
  craft,
  SECRET_1,
  SECRET_2,
  sign,
  signHs256,
  signingKey,
  testAuth,
} from "../../testing/auth.ts";
import { fakeClock } from "../../testing/clock.ts";
import { memoryLog } from "../../testing/log.ts";
import { createVerifier } from "../auth/verify.ts";
import { authenticate } from "./authenticate.ts";

const INVALID = 'Bearer realm="pleasant-cove", error="invalid_token", ' +
  'error_description="The access token is invalid"';
const EXPIRED = 'Bearer realm="pleasant-cove", error="invalid_token", ' +
  'error_description="The access token expired"';

function setup(overrides: Partial<Config["auth"]> = {}) {
  const clock = fakeClock();
  const { log, lines } = memoryLog();
  const app = authApp(createVerifier(testAuth(overrides), { log, now: clock.now }), log);
  return { clock, lines, app };
}

async function accepted(app: Hono<AppEnv>, token: string): Promise<Record<string, unknown>> {
  const res = await app.request("/v1/me", bearer(token));
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body;
}

/** 401 invalid-token, with the reason in the log and nowhere in the response. */
async function rejected(
  ctx: { app: Hono<AppEnv>; lines: Record<string, unknown>[] },
  token: string,
  reason: TokenRejectReason,
  field?: string,
): Promise<void> {
  ctx.lines.length = 0;
  const res = await ctx.app.request("/v1/me", bearer(token));
  const text = await res.text();
  assert.equal(res.status, 401, text);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  assert.equal(res.headers.get("www-authenticate"), reason === "expired" ? EXPIRED : INVALID);
  const body = JSON.parse(text);
  assert.equal(body.code, "invalid-token");
  assert.equal(body.title, "Invalid token");
  assert.equal(body.detail, undefined);
  assert.ok(!text.includes(reason), `reason "${reason}" leaked into the response`);
  const failure = ctx.lines.find((l) => l.msg === "authentication failed");
  assert.equal(failure?.reason, reason);
  if (field !== undefined) assert.equal(failure?.field, field);
}

Deno.test("a valid HS256 token sets the principal and user.id reaches the access log", async () => {
  const { clock, lines, app } = setup();
  const body = await accepted(
    app,
    await signHs256(claims(clock.now(), { sub: "sa:minerva", roles: undefined })),
  );
  assert.deepEqual(body, { sub: "sa:minerva", roles: [] });
  const access = lines.find((l) => l.msg === "request");
  assert.equal(access?.["user.id"], "sa:minerva");
  assert.equal(access?.status, 200);
});

Deno.test("a service token carrying roles is refused, not silently stripped", async () => {
  const ctx = setup();
  const token = await signHs256(claims(ctx.clock.now(), { sub: "sa:minerva", roles: ["admin"] }));
  await rejected(ctx, token, "claim-invalid", "roles");
});

Deno.test("no bearer credentials: 401 missing-token with a challenge but no error code", async () => {
  const { app, lines } = setup();
  for (const init of [{}, { headers: { Authorization: "Basic dXNlcjpwYXNz" } }]) {
    const res = await app.request("/v1/me", init);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="pleasant-cove"');
    assert.equal((await res.json()).code, "missing-token");
  }
  assert.equal(lines.filter((l) => l.reason === "missing-token").length, 2);
});

Deno.test("the Bearer scheme is case-insensitive; a garbled credential is malformed", async () => {
  const ctx = setup();
  const token = await signHs256(claims(ctx.clock.now()));
  const res = await ctx.app.request("/v1/me", { headers: { Authorization: `bearer ${token}` } });
  assert.equal(res.status, 200);
  await res.body?.cancel();
  await rejected(ctx, "not a jwt", "malformed");
  await rejected(ctx, "abc.def", "malformed");
  await rejected(ctx, "a".repeat(9000), "malformed");
});

Deno.test("alg none is refused in any spelling, signed or not", async () => {
  const ctx = setup();
  const payload = claims(ctx.clock.now(), { roles: ["admin"] });
  for (const alg of ["none", "None", "NONE"]) {
    await rejected(ctx, craft({ alg, typ: "JWT" }, payload), "alg-not-allowed", "alg");
    await rejected(ctx, craft({ alg, kid: "k1" }, payload, "c2lnbmF0dXJl"), "alg-not-allowed");
  }
});

Deno.test("HMAC algorithms other than HS256 are refused even with a valid key", async () => {
  const ctx = setup();
  const key = new TextEncoder().encode(SECRET_1);
  for (const alg of ["HS384", "HS512"]) {
    const token = await sign(claims(ctx.clock.now()), { header: { alg, kid: "k1" }, key });
    await rejected(ctx, token, "alg-not-allowed");
  }
});

Deno.test("an asymmetric token without a configured JWKS has no key source", async () => {
  const ctx = setup();
  const rsa = await signingKey("RS256");
  const token = await sign(claims(ctx.clock.now()), {
    header: { alg: "RS256", kid: rsa.kid },
    key: rsa.privateKey,
  });
  await rejected(ctx, token, "no-key-source");
});

Deno.test("expired, not-yet-valid and missing-claim tokens are rejected", async () => {
  const ctx = setup();
  const now = Math.floor(ctx.clock.now() / 1000);
  const t = (o: Record<string, unknown>) => signHs256(claims(ctx.clock.now(), o));
  await rejected(ctx, await t({ iat: now - 7200, exp: now - 3600 }), "expired", "exp");
  await rejected(ctx, await t({ nbf: now + 120 }), "not-yet-valid", "nbf");
  await rejected(ctx, await t({ exp: undefined }), "claim-missing", "exp");
  await rejected(ctx, await t({ iat: undefined }), "claim-missing", "iat");
  await rejected(ctx, await t({ sub: undefined }), "claim-missing", "sub");
});

Deno.test("wrong issuer or audience, and an unusable sub, are rejected", async () => {
  const ctx = setup();
  const t = (o: Record<string, unknown>) => signHs256(claims(ctx.clock.now(), o));
  await rejected(ctx, await t({ iss: "https://evil.test" }), "claim-invalid", "iss");
  await rejected(ctx, await t({ aud: "another-api" }), "claim-invalid", "aud");
  await rejected(ctx, await t({ aud: undefined }), "claim-missing", "aud");
  await rejected(ctx, await t({ sub: "" }), "claim-invalid", "sub");
  await rejected(ctx, await t({ sub: 42 }), "claim-invalid", "sub");
  // An audience array containing ours is fine (RFC 7519 §4.1.3).
  await accepted(ctx.app, await t({ aud: ["other", "pleasant-cove-api"] }));
});

Deno.test("a tampered payload fails the signature check", async () => {
  const ctx = setup();
  const [h, , s] = (await signHs256(claims(ctx.clock.now(), { roles: ["viewer"] }))).split(".");
  const forged = craft({}, claims(ctx.clock.now(), { roles: ["admin"] })).split(".")[1];
  await rejected(ctx, `${h}.${forged}.${s}`, "bad-signature");
});

Deno.test("kid is only a map key: path traversal and prototype names are unknown kids", async () => {
  const ctx = setup();
  const payload = claims(ctx.clock.now());
  for (const kid of ["../../etc/passwd", "/dev/null", "__proto__", "constructor", "k1/../k2"]) {
    await rejected(ctx, await signHs256(payload, { kid }), "unknown-kid");
  }
  await rejected(ctx, await signHs256(payload, { header: { kid: undefined } }), "unknown-kid");
  await rejected(ctx, craft({ alg: "HS256", kid: 7 }, payload, "eA"), "malformed", "kid");
});

Deno.test("key rotation: both HMAC kids verify, each only with its own secret", async () => {
  const ctx = setup();
  const payload = claims(ctx.clock.now());
  await accepted(ctx.app, await signHs256(payload, { kid: "k1", secret: SECRET_1 }));
  await accepted(ctx.app, await signHs256(payload, { kid: "k2", secret: SECRET_2 }));
  await rejected(ctx, await signHs256(payload, { kid: "k1", secret: SECRET_2 }), "bad-signature");
  await rejected(ctx, await signHs256(payload, { kid: "k2", secret: SECRET_1 }), "bad-signature");
});

Deno.test("clock tolerance: 30 s of skew is absorbed on exp, nbf and iat, 31 s is not", async () => {
  const ctx = setup({ clockToleranceS: 30 });
  const now = Math.floor(ctx.clock.now() / 1000);
  const t = (o: Record<string, unknown>) => signHs256(claims(ctx.clock.now(), o));
  await accepted(ctx.app, await t({ iat: now - 600, exp: now - 29 }));
  await rejected(ctx, await t({ iat: now - 600, exp: now - 30 }), "expired");
  await accepted(ctx.app, await t({ nbf: now + 30 }));
  await rejected(ctx, await t({ nbf: now + 31 }), "not-yet-valid");
  await accepted(ctx.app, await t({ iat: now + 30 }));
  await rejected(ctx, await t({ iat: now + 31 }), "claim-invalid", "iat");

  const strict = setup({ clockToleranceS: 0 });
  await rejected(strict, await t({ iat: now - 600, exp: now }), "expired");
  await accepted(strict.app, await t({ iat: now - 600, exp: now + 1 }));
});

Deno.test("the same token expires as the injected clock moves past exp + tolerance", async () => {
  const ctx = setup();
  const token = await signHs256(claims(ctx.clock.now()));
  ctx.clock.advance(3600_000 + 29_000);
  await accepted(ctx.app, token);
  ctx.clock.advance(1_000);
  await rejected(ctx, token, "expired");
});

Deno.test("factories validate their options once, at construction", () => {
  const { log } = memoryLog();
  assert.throws(() => createVerifier(testAuth({ clockToleranceS: 31 }), { log }), /0–30 s/);
  assert.throws(() => createVerifier(testAuth({ hs256Keys: [] }), { log }), /HMAC keys or a JWKS/);
  assert.throws(() => createVerifier(testAuth({ audience: "" }), { log }), /audience/);
  assert.throws(
    () => createVerifier(testAuth({ jwksUrl: "ftp://x.test/jwks" }), { log }),
    /http\(s\)/,
  );
  // @ts-expect-error: the verifier is required
  assert.throws(() => authenticate({}), /requires options "verifier"/);
  const verifier = createVerifier(testAuth(), { log });
  assert.throws(() => authenticate({ verifier, realm: 'a"b' }), /realm/);
});
