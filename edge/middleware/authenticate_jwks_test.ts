import type { CryptoKey as JoseCryptoKey } from "jose";
import assert from "node:assert/strict";
import { exportSPKI, type JWK } from "jose";
import type { Config } from "../../shared/config/mod.ts";
import type { TokenRejectReason } from "../auth/errors.ts";
import {
  authApp,
  bearer,
  claims,
  sign,
  signHs256,
  signingKey,
  startJwksServer,
  testAuth,
} from "../../testing/auth.ts";
import { fakeClock } from "../../testing/clock.ts";
import { memoryLog } from "../../testing/log.ts";
import { createVerifier } from "../auth/verify.ts";

const MAX_AGE = 600_000;
const COOLDOWN = 30_000;
const GRACE = 3_600_000;

const rsa = await signingKey("RS256", "rsa-1");
const ec = await signingKey("ES256", "ec-1");
const ed = await signingKey("EdDSA", "ed-1");
const attacker = await signingKey("RS256", "attacker");

/**
 * A JWKS server serving `keys`, a verifier whose fetch counts attempts and can
 * be switched off (network down), and the app. `await using` closes the server.
 */
function setup(keys: JWK[], overrides: Partial<Config["auth"]> = {}) {
  const server = startJwksServer(keys);
  const clock = fakeClock();
  const { log, lines } = memoryLog();
  let attempts = 0;
  let down = false;
  const fetchImpl: typeof fetch = (input, init) => {
    attempts++;
    if (down) return Promise.reject(new TypeError("error sending request: connection refused"));
    return fetch(input, init);
  };
  const auth = testAuth({
    jwksUrl: server.url,
    jwksCooldownMs: COOLDOWN,
    jwksGraceMs: GRACE,
    ...overrides,
  });
  const verifier = createVerifier(auth, {
    log,
    now: clock.now,
    fetch: fetchImpl,
    jwksMaxAgeMs: MAX_AGE,
  });
  const app = authApp(verifier, log);
  return {
    server,
    clock,
    lines,
    verifier,
    attempts: () => attempts,
    setDown: (d: boolean) => void (down = d),
    async status(token: string, reason?: TokenRejectReason): Promise<number> {
      lines.length = 0;
      const res = await app.request("/v1/me", bearer(token));
      await res.body?.cancel();
      if (reason) {
        assert.equal(lines.find((l) => l.msg === "authentication failed")?.reason, reason);
      }
      return res.status;
    },
    [Symbol.asyncDispose]: () => server.close(),
  };
}

function token(
  key: { alg: string; kid: string; privateKey: JoseCryptoKey },
  nowMs: number,
  header: Record<string, unknown> = {},
): Promise<string> {
  return sign(claims(nowMs), {
    header: { alg: key.alg, kid: key.kid, ...header },
    key: key.privateKey,
  });
}

Deno.test("RS256, ES256 and EdDSA tokens verify against the loopback JWKS, fetched once", async () => {
  await using ctx = setup([rsa.jwk, ec.jwk, ed.jwk]);
  for (const key of [rsa, ec, ed]) {
    assert.equal(await ctx.status(await token(key, ctx.clock.now())), 200);
  }
  assert.equal(ctx.server.hits(), 1);
});

Deno.test("HS256 signed with the JWKS RSA public key (alg confusion) is rejected", async () => {
  await using ctx = setup([rsa.jwk]);
  const pem = new TextEncoder().encode(await exportSPKI(rsa.publicKey));
  const payload = claims(ctx.clock.now(), { roles: ["admin"] });
  for (const kid of ["rsa-1", "k1"]) {
    const forged = await sign(payload, { header: { alg: "HS256", kid }, key: pem });
    assert.equal(await ctx.status(forged, kid === "k1" ? "bad-signature" : "unknown-kid"), 401);
  }
  // The RSA key itself never takes part: HS256 is routed to the keyring only.
  assert.equal(ctx.server.hits(), 0);
});

Deno.test("jku, x5u, jwk and x5c headers are refused and never fetched", async () => {
  await using ctx = setup([rsa.jwk]);
  const evil = startJwksServer([attacker.jwk]);
  const evilUrl = evil.url;
  const now = ctx.clock.now();
  const forged = [
    await token(attacker, now, { jku: evilUrl }),
    await token(attacker, now, { x5u: evilUrl.replace("jwks.json", "cert.pem") }),
    await token(attacker, now, { jwk: attacker.jwk }),
    await token(attacker, now, { x5c: ["MIIB"] }),
    // Even with a kid the JWKS knows, a token that names its own key URL is refused.
    await token(rsa, now, { jku: evilUrl }),
  ];
  for (const t of forged) assert.equal(await ctx.status(t, "forbidden-header"), 401);
  assert.equal(evil.hits(), 0, "the URL in the token was fetched");
  assert.equal(ctx.server.hits(), 0);
  await evil.close();
});

Deno.test("an unknown kid causes exactly one refetch per cooldown, then a rotated key is found", async () => {
  await using ctx = setup([rsa.jwk]);
  assert.equal(await ctx.status(await token(rsa, ctx.clock.now())), 200);
  assert.equal(ctx.server.hits(), 1);

  const rotated = await signingKey("ES256", "rotated");
  const unknown = await token(rotated, ctx.clock.now());
  assert.equal(await ctx.status(unknown, "unknown-kid"), 401);
  assert.equal(ctx.server.hits(), 2, "the first unknown kid refetches once");
  for (let i = 0; i < 5; i++) assert.equal(await ctx.status(unknown, "unknown-kid"), 401);
  const traversal = await token(rotated, ctx.clock.now(), { kid: "../../etc/passwd" });
  assert.equal(await ctx.status(traversal, "unknown-kid"), 401);
  assert.equal(ctx.server.hits(), 2, "no more refetches within the cooldown");

  ctx.server.setKeys([rsa.jwk, rotated.jwk]);
  ctx.clock.advance(COOLDOWN - 1);
  assert.equal(await ctx.status(unknown, "unknown-kid"), 401);
  assert.equal(ctx.server.hits(), 2);
  ctx.clock.advance(1);
  assert.equal(await ctx.status(unknown), 200, "after the cooldown the rotated key is fetched");
  assert.equal(ctx.server.hits(), 3);
});

Deno.test("JWKS outage: the last good key set verifies within the grace period, not after", async () => {
  await using ctx = setup([rsa.jwk]);
  const valid = () => token(rsa, ctx.clock.now());
  assert.equal(await ctx.status(await valid()), 200);
  assert.equal(ctx.attempts(), 1);

  ctx.setDown(true);
  ctx.clock.advance(MAX_AGE); // stale: a refetch is due, and fails
  assert.equal(await ctx.status(await valid()), 200);
  assert.equal(ctx.attempts(), 2);
  const failed = ctx.lines.find((l) => l.msg === "jwks refresh failed");
  assert.equal(failed?.level, "warn");
  assert.equal(failed?.key_set_age_ms, MAX_AGE);

  // Within the cooldown no request waits for another doomed fetch.
  for (let i = 0; i < 3; i++) assert.equal(await ctx.status(await valid()), 200);
  assert.equal(ctx.attempts(), 2);

  ctx.clock.advance(GRACE - MAX_AGE); // exactly at the grace limit: still accepted
  assert.equal(await ctx.status(await valid()), 200);
  assert.equal(ctx.attempts(), 3);

  ctx.clock.advance(COOLDOWN);
  assert.equal(await ctx.status(await valid(), "jwks-unavailable"), 401);
  assert.equal(ctx.lines.find((l) => l.msg === "authentication failed")?.level, "warn");
  assert.equal(ctx.verifier.jwksStatus()?.failing, true);

  ctx.setDown(false);
  ctx.clock.advance(COOLDOWN);
  assert.equal(await ctx.status(await valid()), 200, "recovers once the JWKS answers again");
  assert.ok(ctx.lines.some((l) => l.msg === "jwks refresh recovered"));
  assert.deepEqual(ctx.verifier.jwksStatus(), { ageMs: 0, failing: false });
});

Deno.test("a JWKS that answers 503 counts as down, and its body is released", async () => {
  await using ctx = setup([rsa.jwk]);
  assert.equal(await ctx.status(await token(rsa, ctx.clock.now())), 200);
  ctx.server.setStatus(503);
  ctx.clock.advance(MAX_AGE);
  assert.equal(await ctx.status(await token(rsa, ctx.clock.now())), 200);
  assert.equal(ctx.server.hits(), 2);
  assert.ok(ctx.lines.some((l) => l.msg === "jwks refresh failed"));
});

Deno.test("with no key set ever fetched, asymmetric tokens are rejected as jwks-unavailable", async () => {
  await using ctx = setup([rsa.jwk]);
  ctx.setDown(true);
  assert.equal(await ctx.status(await token(rsa, ctx.clock.now()), "jwks-unavailable"), 401);
  // HS256 tokens do not depend on the JWKS at all.
  assert.equal(await ctx.status(await signHs256(claims(ctx.clock.now()))), 200);
});

Deno.test("several matching keys and no kid to choose: ambiguous-key", async () => {
  const second = await signingKey("RS256", "rsa-2");
  await using ctx = setup([rsa.jwk, second.jwk]);
  const noKid = await sign(claims(ctx.clock.now()), {
    header: { alg: "RS256" },
    key: rsa.privateKey,
  });
  assert.equal(await ctx.status(noKid, "ambiguous-key"), 401);
});

Deno.test("a JWKS token is a service only when JWT_JWKS_SERVICE_CLIENTS gives its azp that sa: subject", async () => {
  await using ctx = setup([rsa.jwk], { jwksServiceClients: { "sa:minerva": "minerva-client" } });
  const as = (extra: Record<string, unknown>) =>
    sign(claims(ctx.clock.now(), { roles: undefined, ...extra }), {
      header: { alg: rsa.alg, kid: rsa.kid },
      key: rsa.privateKey,
    });
  // A user who got the identity provider to issue `sub: sa:minerva` under another client.
  for (
    const extra of [
      { sub: "sa:minerva" },
      { sub: "sa:minerva", azp: "web-app" },
      { sub: "sa:api-gateway", azp: "minerva-client" },
      { sub: "sa:billing", azp: "minerva-client" },
    ]
  ) {
    assert.equal(
      await ctx.status(await as(extra), "service-not-allowed"),
      401,
      JSON.stringify(extra),
    );
  }
  assert.equal(await ctx.status(await as({ sub: "sa:minerva", azp: "minerva-client" })), 200);
  assert.equal(await ctx.status(await as({ sub: "user-7", azp: "web-app" })), 200);
  // HS256 tokens come from the platform's own keyring: their services need no azp.
  const principal = await ctx.verifier.verify(
    await signHs256(claims(ctx.clock.now(), { sub: "sa:api-gateway", roles: undefined }), {
      kid: "k1",
    }),
  );
  assert.equal(principal.kind, "service");
});
