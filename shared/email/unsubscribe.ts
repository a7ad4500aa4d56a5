/**
 * Unsubscribe tokens: the lowercased address plus an HMAC-SHA256 over it, so
 * the unsubscribe endpoint needs no database lookup and nobody can
 * unsubscribe an address they did not receive mail at. Tokens do not expire:
 * an unsubscribe link in an old email must keep working (CAN-SPAM, RFC 8058).
 *
 * Format: `<base64url(address)>.<base64url(mac)>`. Rotating the secret
 * invalidates every link already sent, so rotate only with a verify-both
 * period (verify against the old secret when the new one fails).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import { AppError } from "../errors.ts";

/** The token is malformed, or its signature does not match (tampered, or another secret). */
export class InvalidUnsubscribeTokenError extends AppError {
  override name = "InvalidUnsubscribeTokenError";
  constructor(reason: string) {
    // The title is fixed per code (RFC 9457); the reason goes to `detail`. The
    // token itself is not echoed.
    super("invalid-unsubscribe-token", 400, "Invalid unsubscribe link", {
      details: {
        detail:
          `This unsubscribe link is not valid (${reason}). Use the link from the email exactly as it arrived.`,
      },
    });
  }
}

// Domain separation: a MAC made with the same secret for another purpose is no token.
const CONTEXT = "pleasant-cove/unsubscribe/v1\n";
const MIN_SECRET_BYTES = 16;
const MAX_ADDRESS = 254; // RFC 5321 path limit

function mac(address: string, secret: string): Buffer {
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new RangeError(`Unsubscribe secret must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  return createHmac("sha256", secret).update(CONTEXT + address).digest();
}

function normalise(address: string): string {
  return address.trim().toLowerCase();
}

function plausible(address: string): boolean {
  // deno-lint-ignore no-control-regex
  return address.length <= MAX_ADDRESS && /^[^\s@\x00-\x1f]+@[^\s@\x00-\x1f]+$/.test(address);
}

/** A token for `address` (case-insensitive: the address is lowercased first). */
export function signUnsubscribeToken(address: string, secret: string): string {
  const normal = normalise(address);
  if (!plausible(normal)) throw new RangeError("Cannot sign an unsubscribe token for that address");
  return `${Buffer.from(normal).toString("base64url")}.${
    mac(normal, secret).toString("base64url")
  }`;
}

/**
 * The lowercased address a token was signed for. `secret` may list several
 * (a rotation: links signed with the old secret keep working while it is listed).
 *
 * @throws InvalidUnsubscribeTokenError for a malformed, tampered or foreign token
 */
export function verifyUnsubscribeToken(token: string, secret: string | readonly string[]): string {
  const parts = token.split(".");
  const b64url = /^[A-Za-z0-9_-]+$/;
  if (parts.length !== 2 || !parts.every((p) => b64url.test(p))) {
    throw new InvalidUnsubscribeTokenError("not <address>.<signature>");
  }
  const address = Buffer.from(parts[0]!, "base64url").toString("utf8");
  const given = Buffer.from(parts[1]!, "base64url");
  const matches = (typeof secret === "string" ? [secret] : secret).some((key) => {
    const expected = mac(address, key);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) {
    throw new InvalidUnsubscribeTokenError("signature does not match");
  }
  // Only reachable with the secret, i.e. a token we signed: still refuse odd content.
  if (address !== normalise(address) || !plausible(address)) {
    throw new InvalidUnsubscribeTokenError("address is not normalised");
  }
  return address;
}

/**
 * The unsubscribe link: `<baseUrl>/unsubscribe?token=<token>`. `baseUrl` is
 * the public origin, optionally with a path prefix. The same URL serves the
 * RFC 8058 one-click POST (`List-Unsubscribe=One-Click`).
 */
export function unsubscribeUrl(baseUrl: string, token: string): string {
  const url = new URL(baseUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/unsubscribe`;
  url.search = new URLSearchParams({ token }).toString();
  url.hash = "";
  return url.toString();
}
