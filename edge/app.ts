/**
 * `createApp(deps)`: the Hono application. No I/O at import; everything it
 * needs arrives in `deps`.
 *
 * @module
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import type { Deps } from "../shared/deps.ts";
import { AppError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import { problem } from "./problem.ts";
import { healthRoutes } from "./routes/health.ts";
import { accessLog } from "./middleware/access_log.ts";
import type { Principal } from "./auth/principal.ts";

/** Per-request variables handlers can read with `c.get()`. */
export type AppEnv = {
  Variables: {
    requestId: string;
    /** Logger carrying this request's id. */
    log: Logger;
    /** Set by the authentication middleware on /v1 routes. */
    principal: Principal;
  };
};

/** Builds the edge application. */
export function createApp(deps: Deps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(requestId({ headerName: "X-Request-Id" }));
  app.use(accessLog(deps));

  app.route("/", healthRoutes(deps));

  app.notFound((c) =>
    problem(c, {
      code: "not-found",
      status: 404,
      title: "Not found",
      detail: `No route for ${c.req.method} ${c.req.path}`,
    })
  );

  app.onError((err, c) => {
    if (err instanceof AppError) {
      return problem(c, { code: err.code, status: err.status, title: err.message, ...err.details });
    }
    if (err instanceof HTTPException && err.status < 500) {
      return problem(c, {
        code: "bad-request",
        status: err.status,
        title: err.message || "Bad request",
      });
    }
    (c.get("log") ?? deps.log).error("unhandled error", { err });
    // Opaque on purpose: internals stay in the log, found by request id.
    return problem(c, { code: "internal", status: 500, title: "Internal server error" });
  });

  return app;
}
