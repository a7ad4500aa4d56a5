/**
 * Bearer authentication: `Authorization: Bearer <jwt>` → `c.var.principal`.
 * Failures are 401 problem+json with an RFC 6750 `WWW-Authenticate`; the
 * reason goes to the log only, so a client learns "invalid token", never
 * which check it failed.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Logger } from "../../shared/log.ts";
import type { AppEnv } from "../app_env.ts";
import { InvalidTokenError } from "../auth/errors.ts";
import type { Verifier } from "../auth/verify.ts";
import { problem } from "../problem.ts";

/** Options for {@linkcode authenticate}. */
export interface AuthenticateOptions {
  /** From `createVerifier(config.auth, …)`. */
  verifier: Pick<Verifier, "verify">;
  /** `realm` of the `WWW-Authenticate` challenge. @default "pleasant-cove" */
  realm?: string;
  /** Used when no request logger is on the context (`c.var.log`). */
  log?: Logger;
}

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const SCHEME = /^Bearer(?: |$)/i;

/**
 * Authenticates every request it runs for; mount it on the protected routes
 * (`app.use("/v1/*", authenticate({ verifier }))`) before `authorize`.
 *
 * @example
 * ```ts
 * const verifier = createVerifier(deps.config.auth, { log: deps.log, now: deps.now });
 * app.use("/v1/*", authenticate({ verifier }));
 * ```
 */
export function authenticate(options: AuthenticateOptions): MiddlewareHandler<AppEnv> {
  if (typeof options?.verifier?.verify !== "function") {
    throw new TypeError('authenticate() requires options "verifier" with a verify(token) method');
  }
  const realm = options.realm ?? "pleasant-cove";
  // The realm is written inside a quoted-string: no quotes, backslashes or controls.
  if (!/^[\x20\x21\x23-\x5b\x5d-\x7e]+$/.test(realm)) {
    throw new TypeError(`authenticate() realm must be printable ASCII without quotes: ${realm}`);
  }
  const { verifier } = options;
  const challenge = `Bearer realm="${realm}"`;

  function requestLog(c: Context<AppEnv>): Logger | undefined {
    return c.get("log") ?? options.log;
  }

  return async function authenticate(c, next) {
    const header = c.req.header("Authorization");
    // No bearer credentials at all: RFC 6750 §3.1 says no error code then.
    if (header === undefined || !SCHEME.test(header.trim())) {
      requestLog(c)?.info("authentication failed", { reason: "missing-token" });
      return problem(c, {
        code: "missing-token",
        status: 401,
        title: "Authentication required",
        detail: "Send a bearer token: Authorization: Bearer <jwt>",
      }, { "WWW-Authenticate": challenge });
    }

    const token = BEARER.exec(header.trim())?.[1];
    let failure: InvalidTokenError;
    try {
      if (token === undefined) throw new InvalidTokenError("malformed");
      const principal = await verifier.verify(token);
      c.set("principal", principal);
      const log = requestLog(c);
      if (log) c.set("log", log.child({ "user.id": principal.sub }));
      await next();
      return;
    } catch (err) {
      // Only verification failures become 401; anything from downstream or a
      // bug in the verifier keeps propagating to onError.
      if (!(err instanceof InvalidTokenError) || c.get("principal") !== undefined) throw err;
      failure = err;
    }

    // jwks-unavailable is our outage, not the caller's mistake: louder level.
    const level = failure.reason === "jwks-unavailable" ? "warn" : "info";
    requestLog(c)?.[level]("authentication failed", {
      reason: failure.reason,
      field: failure.field,
      err: failure.cause,
    });
    // RFC 6750 §3: error_description tells a client whether to refresh
    // (expired) or fix its token; an expired token passed every other check,
    // so saying so tells a prober nothing. The body stays silent on the reason.
    const description = failure.reason === "expired"
      ? "The access token expired"
      : "The access token is invalid";
    return problem(c, {
      code: "invalid-token",
      status: 401,
      title: "Invalid token",
    }, {
      "WWW-Authenticate": `${challenge}, error="invalid_token", error_description="${description}"`,
    });
  };
}
