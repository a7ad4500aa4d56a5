/**
 * The authentication area: the HS256 keyring, the JWKS source and the claims
 * every token must carry (edge/auth/).
 *
 * @module
 */
import { z } from "zod";
import { defineArea, httpUrl, positiveInt } from "./spec.ts";

/**
 * The HMAC key every local/dev setup shares (published in this repository, so
 * anyone can mint tokens with it); refused outside APP_ENV=development|test,
 * by its kid and by its secret.
 */
export const DEV_HS256_KEY = "local:pleasant-cove-local-development-key-not-for-production";
/** The kid of {@linkcode DEV_HS256_KEY}. */
export const DEV_HS256_KID = "local";
/** The secret of {@linkcode DEV_HS256_KEY}. */
export const DEV_HS256_SECRET = DEV_HS256_KEY.slice(DEV_HS256_KID.length + 1);

/** `sa:<name>=<azp>` pairs → service sub → the one `azp` allowed to assert it. */
const serviceClients = z.string().transform((text, ctx) => {
  const out: Record<string, string> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = /^(sa:[A-Za-z0-9._-]{1,64})=([\x21-\x7e]{1,255})$/.exec(part);
    if (!m || Object.hasOwn(out, m[1]!)) {
      ctx.addIssue({ code: "custom", message: "expected distinct sa:<name>=<azp> pairs" });
      return z.NEVER;
    }
    out[m[1]!] = m[2]!;
  }
  return out;
});

const hs256Keys = z.string().transform((text, ctx) => {
  const keys: { kid: string; secret: string }[] = [];
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const i = part.indexOf(":");
    const kid = part.slice(0, i);
    const secret = part.slice(i + 1);
    if (i <= 0 || !/^[A-Za-z0-9._-]{1,64}$/.test(kid)) {
      ctx.addIssue({ code: "custom", message: "expected kid:secret pairs separated by commas" });
      return z.NEVER;
    }
    if (new TextEncoder().encode(secret).length < 32) {
      ctx.addIssue({ code: "custom", message: `secret of kid "${kid}" is shorter than 32 bytes` });
      return z.NEVER;
    }
    if (keys.some((k) => k.kid === kid)) {
      ctx.addIssue({ code: "custom", message: `kid "${kid}" appears twice` });
      return z.NEVER;
    }
    keys.push({ kid, secret });
  }
  return keys;
});

/** Token verification (edge/auth/verify.ts). */
export const auth = defineArea(
  "Authentication",
  {
    JWT_HS256_KEYS: {
      description:
        "HMAC keys for HS256 tokens as `kid:secret` pairs, comma-separated (several for rotation); the default is a local development key",
      default: DEV_HS256_KEY,
      secret: true,
      schema: hs256Keys,
    },
    JWT_JWKS_URL: {
      description:
        "JWKS URL for RS256/ES256/EdDSA tokens (optional); `https:` outside development/test",
      optional: true,
      schema: httpUrl,
    },
    JWT_JWKS_SERVICE_CLIENTS: {
      description:
        "Services a JWKS-signed token may speak for, as `sa:<name>=<azp>` pairs, comma-separated: a JWKS token with `sub: sa:<name>` is accepted only when its `azp` is that client (HS256 keyring tokens are the platform's own and may name any service)",
      optional: true,
      schema: serviceClients,
    },
    JWT_JWKS_GRACE_MS: {
      description: "Keep verifying with the last good JWKS this long while the JWKS URL is down",
      default: "3600000",
      schema: positiveInt,
    },
    JWT_JWKS_COOLDOWN_MS: {
      description: "An unknown `kid` triggers at most one JWKS refetch per this interval",
      default: "30000",
      schema: positiveInt,
    },
    JWT_ISSUER: {
      description: "Required `iss` claim",
      default: "pleasant-cove",
      schema: z.string().min(1),
    },
    JWT_AUDIENCE: {
      description: "Required `aud` claim",
      default: "pleasant-cove-api",
      schema: z.string().min(1),
    },
    JWT_CLOCK_TOLERANCE_S: {
      description: "Clock skew allowed on `exp`/`nbf`/`iat` (at most 30)",
      default: "30",
      schema: z.coerce.number().int().min(0).max(30),
    },
  },
  [],
  (v) => ({
    auth: {
      hs256Keys: v.JWT_HS256_KEYS,
      jwksUrl: v.JWT_JWKS_URL ?? null,
      /** Service sub → the `azp` allowed to assert it in a JWKS token (edge/auth/verify.ts). */
      jwksServiceClients: v.JWT_JWKS_SERVICE_CLIENTS ?? {},
      jwksGraceMs: v.JWT_JWKS_GRACE_MS,
      jwksCooldownMs: v.JWT_JWKS_COOLDOWN_MS,
      issuer: v.JWT_ISSUER,
      audience: v.JWT_AUDIENCE,
      clockToleranceS: v.JWT_CLOCK_TOLERANCE_S,
    },
  }),
);
