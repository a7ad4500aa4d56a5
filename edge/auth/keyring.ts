/**
 * The HMAC keyring: shared secrets by `kid`, several active at once so a new
 * key can be rolled out before the old one is retired. HS256 only.
 *
 * @module
 */
import type { CryptoKey as JoseCryptoKey, JWSHeaderParameters } from "jose";
import { InvalidTokenError } from "./errors.ts";

/** Resolves the verification key for a token header, or throws InvalidTokenError. */
export type KeyResolver = (
  header: JWSHeaderParameters,
) => Promise<JoseCryptoKey | CryptoKey | Uint8Array>;

/** The algorithms the keyring verifies. */
export const HMAC_ALGORITHMS = ["HS256"] as const;

/** One shared secret. */
type HmacKey = { kid: string; secret: string };

function byKidMap(keys: readonly HmacKey[]): Map<string, Uint8Array> {
  if (keys.length === 0) throw new TypeError("The HMAC keyring needs at least one key");
  // A Map, not an object literal: a kid of "__proto__" or "constructor" must
  // not find anything on the prototype chain.
  const byKid = new Map<string, Uint8Array>();
  for (const { kid, secret } of keys) {
    if (byKid.has(kid)) throw new TypeError(`The HMAC keyring has kid "${kid}" twice`);
    byKid.set(kid, new TextEncoder().encode(secret));
  }
  return byKid;
}

/**
 * Builds the resolver for `keys`. The `kid` is only ever a key into this map:
 * it never reaches a file path, a URL or a query (RFC 8725 §2.9), so
 * `kid: "../../etc/passwd"` is just an unknown kid.
 *
 * A function is called per token: when it returns a new array (a rotated
 * JWT_HS256_KEYS, shared/secrets/), the map is rebuilt, so a kid verifies
 * exactly while it is listed.
 */
export function createHmacKeyring(
  keys: readonly HmacKey[] | (() => readonly HmacKey[]),
): KeyResolver {
  const current = typeof keys === "function" ? keys : () => keys;
  let listed = current();
  let byKid = byKidMap(listed);
  return function resolveHmacKey(header) {
    if (current() !== listed) {
      listed = current();
      byKid = byKidMap(listed);
    }
    // With several active secrets, a token without kid would have to be tried
    // against each one; requiring kid keeps verification to one HMAC.
    const key = typeof header.kid === "string" ? byKid.get(header.kid) : undefined;
    if (!key) return Promise.reject(new InvalidTokenError("unknown-kid"));
    return Promise.resolve(key);
  };
}
