/**
 * Authentication fixtures: the test keyring and claims, token signing and
 * crafting, a loopback JWKS server and a small app with the auth middleware.
 * The fake clock is testing/clock.ts, the in-memory logger testing/log.ts.
 *
 * @module
 */
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import {
  type CryptoKey as JoseCryptoKey,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
  SignJWT,
} from "jose";
import type { Config } from "../shared/config/mod.ts";
import type { Logger } from "../shared/log.ts";
import type { AppEnv } from "../edge/app_env.ts";
import { accessLog } from "../edge/middleware/access_log.ts";
import { authenticate } from "../edge/middleware/authenticate.ts";
import { authorize } from "../edge/middleware/authorize.ts";
import type { Policy } from "../edge/auth/policy.ts";
import type { Verifier } from "../edge/auth/verify.ts";

export const ISSUER = "https://issuer.test";
export const AUDIENCE = "pleasant-cove-api";
export const SECRET_1 = "first-secret-for-tests-0123456789abcdef";
export const SECRET_2 = "second-secret-for-tests-0123456789abcdef";

/** Auth settings with two active HMAC kids (k1, k2) and no JWKS unless overridden. */
export function testAuth(overrides: Partial<Config["auth"]> = {}): Config["auth"] {
  return {
    hs256Keys: [{ kid: "k1", secret: SECRET_1 }, { kid: "k2", secret: SECRET_2 }],
    jwksUrl: null,
    jwksServiceClients: {},
    jwksGraceMs: 3_600_000,
    jwksCooldownMs: 30_000,
    issuer: ISSUER,
    audience: AUDIENCE,
    clockToleranceS: 30,
    ...overrides,
  };
}

/** Valid claims at time `nowMs` (1 h lifetime), with `overrides` applied; `undefined` removes a claim. */
export function claims(nowMs: number, overrides: Record<string, unknown> = {}): JWTPayload {
  const iat = Math.floor(nowMs / 1000);
  const out: Record<string, unknown> = {
    sub: "user-1",
    iss: ISSUER,
    aud: AUDIENCE,
    iat,
    exp: iat + 3600,
    roles: ["operator"],
    ...overrides,
  };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

/** Signs `payload` as given (no claims added) with `key` under `header`. */
export function sign(
  payload: JWTPayload,
  options: { header: JWTHeaderParameters; key: JoseCryptoKey | Uint8Array },
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(options.header).sign(options.key);
}

/** HS256 with the test keyring: kid k1 (SECRET_1) unless told otherwise. */
export function signHs256(
  payload: JWTPayload,
  options: { kid?: string; secret?: string; header?: Record<string, unknown> } = {},
): Promise<string> {
  const header = { alg: "HS256", kid: options.kid ?? "k1", ...options.header };
  return sign(payload, { header, key: new TextEncoder().encode(options.secret ?? SECRET_1) });
}

/** base64url of a JSON value or of raw text. */
export function b64url(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)))
    .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A compact token assembled by hand (for `alg: none` and tampering). */
export function craft(header: unknown, payload: unknown, signature = ""): string {
  return `${b64url(header)}.${b64url(payload)}.${signature}`;
}

/** An asymmetric signing key with its public JWK (kid = alg lowercased unless given). */
export async function signingKey(
  alg: "RS256" | "ES256" | "EdDSA",
  kid = alg.toLowerCase(),
): Promise<
  { alg: string; kid: string; privateKey: JoseCryptoKey; publicKey: JoseCryptoKey; jwk: JWK }
> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { alg, kid, privateKey, publicKey, jwk };
}

/**
 * A JWKS server on 127.0.0.1:0 that counts requests; `setStatus(503)` makes
 * it fail. `close()` it at the end.
 */
export function startJwksServer(keys: JWK[]): {
  url: string;
  hits: () => number;
  setKeys: (k: JWK[]) => void;
  setStatus: (status: number) => void;
  close: () => Promise<void>;
} {
  let served = keys;
  let status = 200;
  let hits = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    hits++;
    if (status !== 200) return new Response("unavailable", { status });
    return Response.json({ keys: served });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/.well-known/jwks.json`,
    hits: () => hits,
    setKeys: (k) => void (served = k),
    setStatus: (s) => void (status = s),
    close: () => server.shutdown(),
  };
}

/**
 * The edge chain in miniature: request id → access log → authenticate →
 * (authorize) → a route answering 200 with the principal's sub.
 */
export function authApp(
  verifier: Verifier,
  log: Logger,
  options: { policy?: Policy } = {},
): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(requestId());
  app.use(accessLog({ log, now: Date.now }));
  app.use("/v1/*", authenticate({ verifier }));
  if (options.policy) app.use("/v1/*", authorize({ policy: options.policy }));
  app.all("/v1/*", (c) => c.json({ sub: c.get("principal").sub, roles: c.get("principal").roles }));
  return app;
}

/** `GET /v1/me` with `Authorization: Bearer <token>`. */
export function bearer(token: string): RequestInit {
  return { headers: { Authorization: `Bearer ${token}` } };
}
