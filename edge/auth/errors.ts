/**
 * The one error token verification throws. Its `reason` is for logs and
 * metrics only: the 401 the client sees never says why, so an attacker cannot
 * probe which check failed.
 *
 * @module
 */
import { AppError } from "../../shared/errors.ts";

/** Why a bearer token was rejected (stable strings; logged as `reason`). */
export type TokenRejectReason =
  /** Not a compact JWS, or a header/claim of the wrong type. */
  | "malformed"
  /** `alg` outside the allow-list (`none`, `HS512`, `PS256`, …). */
  | "alg-not-allowed"
  /** `jku`, `x5u`, `jwk` or `x5c` present: key material or key URLs from the token are refused. */
  | "forbidden-header"
  /** An asymmetric token but no JWKS URL is configured. */
  | "no-key-source"
  /** `kid` missing (HS256) or not in the configured key set. */
  | "unknown-kid"
  /** Several JWKS keys match and the token has no `kid` to choose between them. */
  | "ambiguous-key"
  | "bad-signature"
  | "expired"
  /** `nbf` in the future (beyond the clock tolerance). */
  | "not-yet-valid"
  /** `exp`, `iat` or `sub` absent. */
  | "claim-missing"
  /** Wrong `iss`/`aud`, `iat` in the future, unusable `sub`. */
  | "claim-invalid"
  /** A JWKS token claims an `sa:` subject that JWT_JWKS_SERVICE_CLIENTS does not give its `azp`. */
  | "service-not-allowed"
  /** No JWKS fetched yet, or the last good set is older than the grace period. */
  | "jwks-unavailable";

/** A bearer token failed verification; answered as 401 `invalid-token`. */
export class InvalidTokenError extends AppError {
  override name = "InvalidTokenError";
  /** Which check failed (for logs). */
  readonly reason: TokenRejectReason;
  /** The claim or header at fault, where one is (`exp`, `aud`, `jku`, …). */
  readonly field: string | undefined;

  constructor(
    reason: TokenRejectReason,
    options: { cause?: unknown; field?: string } = {},
  ) {
    super(
      "invalid-token",
      401,
      `Token rejected: ${reason}${options.field ? ` (${options.field})` : ""}`,
      { cause: options.cause },
    );
    this.reason = reason;
    this.field = options.field;
  }
}
