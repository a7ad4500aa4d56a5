/**
 * `POST /console/dev-sign-in` `{"role": "admin"|"operator"|"viewer"}` →
 * `{token, sub, roles, expires_at}`: a one-hour token signed with the first
 * key of the keyring, for the console's one-click sign-in. Only
 * edge/console/routes.ts mounts it, and only with APP_ENV=development|test.
 *
 * The body must be JSON: a cross-site form cannot send that without a CORS
 * preflight, so another site cannot make a browser mint tokens for it.
 *
 * @module
 */
import type { Context } from "hono";
import { z } from "zod";
import type { Config } from "../../shared/config/mod.ts";
import type { AppEnv } from "../app_env.ts";
import { signDevToken } from "../auth/dev_token.ts";
import { ROLES } from "../auth/principal.ts";
import { problem } from "../problem.ts";

/** Lifetime of a dev sign-in token. */
export const DEV_SIGN_IN_TTL_S = 3_600;

const Body = z.object({ role: z.enum(ROLES) }).strict();

/** Options for {@linkcode devSignInHandler}. */
export interface DevSignInOptions {
  auth: Config["auth"];
  now: () => number;
}

/** The handler; `options.auth` must hold at least one HS256 key. */
export function devSignInHandler(options: DevSignInOptions) {
  const key = options.auth.hs256Keys[0];
  if (!key) throw new TypeError("devSignInHandler() requires an HS256 key");
  return async function devSignIn(c: Context<AppEnv>): Promise<Response> {
    const type = c.req.header("Content-Type") ?? "";
    if (!/^application\/json\b/i.test(type)) {
      return problem(c, {
        code: "unsupported-media-type",
        status: 415,
        title: "Send the role as application/json",
      });
    }
    const parsed = Body.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success) {
      return problem(c, {
        code: "invalid-request",
        status: 400,
        title: `Body must be {"role": ${ROLES.map((r) => `"${r}"`).join(" | ")}}`,
      });
    }
    const { role } = parsed.data;
    const sub = `dev-${role}`;
    const token = await signDevToken(options.auth, key, {
      sub,
      roles: [role],
      ttlS: DEV_SIGN_IN_TTL_S,
      now: options.now,
    });
    c.get("log")?.warn("console dev sign-in", { sub, role });
    c.header("Cache-Control", "no-store");
    return c.json({
      token,
      sub,
      roles: [role],
      expires_at: new Date(options.now() + DEV_SIGN_IN_TTL_S * 1000).toISOString(),
    });
  };
}
