/**
 * Authorization against the declarative rule table in `auth/policy.ts`:
 * default deny, 403 problem+json naming the missing `permission`
 * (`METHOD /path-pattern`) and who holds it. Runs after `authenticate()`, so an
 * anonymous request is a 401 before it could ever be a 403.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../../shared/log.ts";
import type { AppEnv } from "../app_env.ts";
import { ACCESS_POLICY, compilePolicy, type Policy } from "../auth/policy.ts";
import { problem } from "../problem.ts";

/** Options for {@linkcode authorize}. */
export interface AuthorizeOptions {
  /** The rule table. @default ACCESS_POLICY */
  policy?: Policy;
  /** Used when no request logger is on the context (`c.var.log`). */
  log?: Logger;
}

/**
 * Allows the request only if the policy grants its method and path to
 * `c.var.principal`. The policy is validated here, once.
 *
 * @example
 * ```ts
 * app.use("/v1/*", authenticate({ verifier }));
 * app.use("/v1/*", authorize());
 * ```
 */
export function authorize(options: AuthorizeOptions = {}): MiddlewareHandler<AppEnv> {
  const decide = compilePolicy(options.policy ?? ACCESS_POLICY);
  return async function authorize(c, next) {
    const principal = c.get("principal");
    if (principal === undefined) {
      // A wiring mistake, not a client error: fail loudly (500), never open.
      throw new Error(
        `authorize() ran without a principal for ${c.req.method} ${c.req.path}; mount authenticate() first`,
      );
    }
    const { allowed, group, permission, grantedTo } = decide(
      principal,
      c.req.method,
      c.req.path,
    );
    if (!allowed) {
      (c.get("log") ?? options.log)?.info("authorization denied", {
        "user.id": principal.sub,
        method: c.req.method,
        path: c.req.path,
        group,
      });
      return problem(c, {
        code: "forbidden",
        status: 403,
        title: "Forbidden",
        detail:
          `${principal.sub} lacks the permission ${permission}, which is granted to ${grantedTo}`,
        permission,
      });
    }
    await next();
  };
}
