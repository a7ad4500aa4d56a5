/**
 * Access rules for the configured upstreams, in the same rule table the
 * gateway enforces for its own routes (edge/auth/policy.ts): one route group
 * per upstream, granting its methods to its principals.
 *
 * @module
 */
import type { Allow, Method, Policy, RouteGroup } from "../auth/policy.ts";
import type { Role } from "../auth/principal.ts";
import type { Upstream } from "../../shared/upstreams/upstream.ts";

function allowOf(principals: readonly string[]): Allow {
  if (principals.includes("*")) return { anyPrincipal: true };
  const services = principals.filter((p) => p.startsWith("sa:")) as `sa:${string}`[];
  const roles = principals.filter((p) => p.startsWith("role:")).map((p) => p.slice(5) as Role);
  return {
    ...(services.length ? { services } : {}),
    ...(roles.length ? { roles } : {}),
  };
}

/** One route group per upstream (`upstream_<name>`); HEAD is granted with GET. */
export function upstreamPolicy(upstreams: readonly Upstream[]): Policy {
  return upstreams.map((u): RouteGroup => ({
    group: `upstream_${u.name}`,
    paths: [u.prefix, `${u.prefix}/*`],
    grants: [{
      methods: u.methods.filter((m): m is Method => m !== "HEAD"),
      allow: allowOf(u.principals),
    }].filter((g) => g.methods.length > 0),
  })).filter((g) => g.grants.length > 0);
}
