/**
 * Who is calling, as the gateway sees it after authentication.
 *
 * @module
 */

/** Roles a user can hold. */
export const ROLES = ["admin", "operator", "viewer"] as const;
/** A user role. */
export type Role = (typeof ROLES)[number];

/** An authenticated caller: a user (`sub`, roles) or a service account (`sub` = `sa:<name>`). */
export type Principal =
  | { kind: "user"; sub: string; roles: Role[] }
  | { kind: "service"; sub: `sa:${string}`; name: string; roles: Role[] };

/** Builds the principal from verified claims; unknown roles are dropped. */
export function principalFromClaims(sub: string, roles: unknown): Principal {
  const list = Array.isArray(roles)
    ? roles.filter((r): r is Role =>
      typeof r === "string" && (ROLES as readonly string[]).includes(r)
    )
    : [];
  if (sub.startsWith("sa:") && sub.length > 3) {
    return { kind: "service", sub: sub as `sa:${string}`, name: sub.slice(3), roles: list };
  }
  return { kind: "user", sub, roles: list };
}
