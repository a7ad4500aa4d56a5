/**
 * Signs development HS256 tokens with a key of the configured keyring. Used
 * by `deno task token` (dev/token.ts) and by the console's one-click dev
 * sign-in (edge/console/dev_sign_in.ts), which exists only with
 * APP_ENV=development|test. It lives under edge/ because the edge image does
 * not ship dev/.
 *
 * @module
 */
import { SignJWT } from "jose";
import type { Config } from "../../shared/config/mod.ts";
import type { Role } from "./principal.ts";

/** What a development token says. */
export interface DevTokenClaims {
  sub: string;
  /** @default [] */
  roles?: readonly Role[];
  /** Lifetime in seconds. @default 3600 */
  ttlS?: number;
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number;
}

/** One key of the HMAC keyring. */
export type Hs256Key = Config["auth"]["hs256Keys"][number];

/** Signs a token that `createVerifier(auth)` accepts with `key` (a member of `auth.hs256Keys`). */
export async function signDevToken(
  auth: Config["auth"],
  key: Hs256Key,
  claims: DevTokenClaims,
): Promise<string> {
  const iat = Math.floor((claims.now ?? Date.now)() / 1000);
  const roles = claims.roles ?? [];
  return await new SignJWT(roles.length > 0 ? { roles: [...roles] } : {})
    .setProtectedHeader({ alg: "HS256", kid: key.kid, typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuer(auth.issuer)
    .setAudience(auth.audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (claims.ttlS ?? 3_600))
    .sign(new TextEncoder().encode(key.secret));
}
