/**
 * Bearer JWT verification: `createVerifier(config.auth, options)` →
 * `verify(token)` → {@linkcode Principal}, or an {@linkcode InvalidTokenError}
 * whose `reason` says which check failed.
 *
 * The header decides the key source BEFORE any key is looked up, and each
 * source has its own pinned algorithms: HS256 only against the HMAC keyring,
 * RS256/ES256/EdDSA only against the JWKS. So an HS256 token can never be
 * checked against a public key (the RS256→HS256 confusion, RFC 8725 §2.1), and
 * `alg: none` or any other value is refused outright.
 *
 * Tokens carrying `jku`, `x5u`, `jwk` or `x5c` are REJECTED rather than having
 * those headers ignored: this gateway's issuers never send them, so their
 * presence means someone is trying to supply their own key (or make us fetch
 * a URL), and a rejection with a logged reason makes that visible. Nothing in
 * a token is ever fetched.
 *
 * Service identity comes from the key source, not from the `sub` alone: an
 * HS256 token is signed with the platform's own keyring, so its `sa:<name>`
 * subjects are services; a JWKS token (an identity provider that may let a
 * user influence `sub`) is a service only when `JWT_JWKS_SERVICE_CLIENTS`
 * names that service with the token's `azp`. Anything else claiming `sa:` is
 * rejected (`service-not-allowed`), never demoted to a user.
 *
 * @module
 */
import { decodeProtectedHeader, type JWSHeaderParameters, jwtVerify } from "jose";
import type { Config } from "../../shared/config/mod.ts";
import type { Logger } from "../../shared/log.ts";
import { InvalidTokenError, type TokenRejectReason } from "./errors.ts";
import { createHmacKeyring, HMAC_ALGORITHMS, type KeyResolver } from "./keyring.ts";
import { createJwksSource, JWKS_ALGORITHMS, type JwksSource } from "./jwks_source.ts";
import { type Principal, principalFromClaims } from "./principal.ts";

/** Verifies bearer tokens. */
export interface Verifier {
  /** The principal of a valid token; throws {@linkcode InvalidTokenError} otherwise. */
  verify(token: string): Promise<Principal>;
  /** JWKS key-set age and health; null when no JWKS URL is configured. */
  jwksStatus(): ReturnType<JwksSource["status"]> | null;
}

/** Options for {@linkcode createVerifier}. */
export interface VerifierOptions {
  /** Receives JWKS refetch failures (per-request failures are logged by the middleware). */
  log: Logger;
  /** Clock in epoch milliseconds, for `exp`/`nbf`/`iat` and the JWKS cache. @default Date.now */
  now?: () => number;
  /** Used for the JWKS URL only. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Refetch the JWKS when older than this. @default 600000 */
  jwksMaxAgeMs?: number;
  /** Timeout of one JWKS fetch. @default 5000 */
  jwksTimeoutMs?: number;
}

/** Headers that would make the token choose its own key; never followed. */
const REFUSED_HEADERS = ["jku", "x5u", "jwk", "x5c"] as const;
/** Far above any real token; bounds the work an oversized header can cause. */
const MAX_TOKEN_LENGTH = 8192;
/** RFC 8725 asks for a short skew allowance; config enforces the same bound. */
const MAX_CLOCK_TOLERANCE_S = 30;
const MAX_SUB_LENGTH = 255;

const JOSE_REASONS: Record<string, TokenRejectReason> = {
  ERR_JWT_EXPIRED: "expired",
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: "bad-signature",
  ERR_JOSE_ALG_NOT_ALLOWED: "alg-not-allowed",
  ERR_JOSE_NOT_SUPPORTED: "alg-not-allowed",
  ERR_JWKS_NO_MATCHING_KEY: "unknown-kid",
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: "ambiguous-key",
  // A key in the set the provider serves is unusable (e.g. a private key).
  ERR_JWKS_INVALID: "jwks-unavailable",
  ERR_JWK_INVALID: "jwks-unavailable",
};

/** Maps whatever verification threw to an InvalidTokenError (fail closed, keep the cause). */
function classify(err: unknown): InvalidTokenError {
  if (err instanceof InvalidTokenError) return err;
  const e = err as { code?: unknown; claim?: unknown; reason?: unknown } | null;
  const field = typeof e?.claim === "string" ? e.claim : undefined;
  if (e?.code === "ERR_JWT_CLAIM_VALIDATION_FAILED") {
    const reason = e.reason === "missing"
      ? "claim-missing"
      : field === "nbf"
      ? "not-yet-valid"
      : "claim-invalid";
    return new InvalidTokenError(reason, { cause: err, field });
  }
  const reason = typeof e?.code === "string" ? JOSE_REASONS[e.code] : undefined;
  // Anything else (ERR_JWS_INVALID, ERR_JWT_INVALID, or a non-jose error a
  // crafted token provoked) is treated as a malformed token, never let through.
  return new InvalidTokenError(reason ?? "malformed", { cause: err, field });
}

/**
 * Builds the verifier from the `auth` configuration. Validates the settings
 * now (not per request); does no I/O until a JWKS-signed token arrives.
 */
export function createVerifier(auth: Config["auth"], options: VerifierOptions): Verifier {
  if (!options?.log) throw new TypeError("createVerifier requires options.log");
  const { issuer, audience, clockToleranceS } = auth;
  if (!issuer || !audience) throw new TypeError("createVerifier requires an issuer and audience");
  if (
    !Number.isInteger(clockToleranceS) || clockToleranceS < 0 ||
    clockToleranceS > MAX_CLOCK_TOLERANCE_S
  ) {
    throw new TypeError(
      `Clock tolerance must be 0–${MAX_CLOCK_TOLERANCE_S} s, got ${clockToleranceS}`,
    );
  }
  const now = options.now ?? Date.now;
  const serviceClients = auth.jwksServiceClients ?? {};
  // Read per token: a rotated JWT_HS256_KEYS (shared/secrets/) replaces the array.
  const keyring = auth.hs256Keys.length > 0 ? createHmacKeyring(() => auth.hs256Keys) : null;
  const jwks = auth.jwksUrl
    ? createJwksSource(auth.jwksUrl, {
      graceMs: auth.jwksGraceMs,
      cooldownMs: auth.jwksCooldownMs,
      maxAgeMs: options.jwksMaxAgeMs,
      timeoutMs: options.jwksTimeoutMs,
      fetch: options.fetch,
      now,
      log: options.log,
    })
    : null;
  if (!keyring && !jwks) throw new TypeError("createVerifier needs HMAC keys or a JWKS URL");

  /** Picks the key source and its algorithm allow-list from the header alone. */
  function route(
    token: string,
  ): { resolve: KeyResolver; algorithms: string[]; source: "keyring" | "jwks" } {
    if (typeof token !== "string" || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw new InvalidTokenError("malformed");
    }
    let header: JWSHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch (err) {
      throw new InvalidTokenError("malformed", { cause: err });
    }
    for (const name of REFUSED_HEADERS) {
      if (Object.hasOwn(header, name)) {
        throw new InvalidTokenError("forbidden-header", { field: name });
      }
    }
    if (header.kid !== undefined && typeof header.kid !== "string") {
      throw new InvalidTokenError("malformed", { field: "kid" });
    }
    const alg = String(header.alg);
    if ((HMAC_ALGORITHMS as readonly string[]).includes(alg)) {
      if (!keyring) throw new InvalidTokenError("no-key-source", { field: "alg" });
      return { resolve: keyring, algorithms: [...HMAC_ALGORITHMS], source: "keyring" };
    }
    if ((JWKS_ALGORITHMS as readonly string[]).includes(alg)) {
      if (!jwks) throw new InvalidTokenError("no-key-source", { field: "alg" });
      return { resolve: jwks.resolve, algorithms: [...JWKS_ALGORITHMS], source: "jwks" };
    }
    throw new InvalidTokenError("alg-not-allowed", { field: "alg" });
  }

  async function verify(token: string): Promise<Principal> {
    const { resolve, algorithms, source } = route(token);
    const at = now();
    let payload;
    try {
      ({ payload } = await jwtVerify(token, resolve, {
        algorithms,
        issuer,
        audience,
        clockTolerance: clockToleranceS,
        // jose checks exp only when present; all three must be there.
        requiredClaims: ["exp", "iat", "sub"],
        currentDate: new Date(at),
      }));
    } catch (err) {
      throw classify(err);
    }
    // jose only rejects a future iat together with maxTokenAge, which would
    // also cap token age; a token "issued" in the future is refused here.
    if ((payload.iat as number) > Math.floor(at / 1000) + clockToleranceS) {
      throw new InvalidTokenError("claim-invalid", { field: "iat" });
    }
    const sub = payload.sub as unknown;
    if (typeof sub !== "string" || sub.length === 0 || sub.length > MAX_SUB_LENGTH) {
      throw new InvalidTokenError("claim-invalid", { field: "sub" });
    }
    if (sub.startsWith("sa:") && source === "jwks") {
      const client = Object.hasOwn(serviceClients, sub) ? serviceClients[sub] : undefined;
      if (client === undefined || payload.azp !== client) {
        throw new InvalidTokenError("service-not-allowed", { field: "sub" });
      }
    }
    // Services are granted by name in the policy, never by role: a service
    // token carrying roles is refused here rather than silently ignored.
    const roles = payload.roles;
    if (
      sub.startsWith("sa:") && roles !== undefined && !(Array.isArray(roles) && roles.length === 0)
    ) {
      throw new InvalidTokenError("claim-invalid", { field: "roles" });
    }
    return principalFromClaims(sub, payload.roles);
  }

  return { verify, jwksStatus: () => jwks?.status() ?? null };
}
