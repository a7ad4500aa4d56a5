/**
 * The operator console (docs/console.md), outside the `/v1` chain like
 * `/health` and `/docs`:
 *
 * - `GET /console` — the HTML shell; public (it holds no data: every number
 *   on it comes from `/v1` calls made with the operator's token, authorized
 *   by the access policy like any other client's).
 * - `GET /console/assets/<name>.<hash>.<ext>` — the client modules, CSS and
 *   the npm packages they use; public, immutable.
 * - `POST /console/dev-sign-in` — mints a one-hour token for a chosen role.
 *   Mounted ONLY with APP_ENV=development|test (the published development
 *   keys are refused elsewhere anyway); with APP_ENV=production the route
 *   does not exist (404).
 *
 * Every response carries the console's Content-Security-Policy.
 *
 * @module
 */
import { Hono, type MiddlewareHandler } from "hono";
import type { Config } from "../../shared/config/mod.ts";
import type { AppEnv } from "../app_env.ts";
import { problem } from "../problem.ts";
import { ASSET_PREFIX, type AssetTable, buildAssetTable } from "./assets.ts";
import { devSignInHandler } from "./dev_sign_in.ts";
import { CONSOLE_CSP, renderShell } from "./page.ts";

/** Options for {@linkcode consoleRoutes}. */
export interface ConsoleOptions {
  /** Which environment this is; the dev sign-in exists only in development and test. */
  env: Config["env"];
  /** Signs dev sign-in tokens. */
  auth: Config["auth"];
  /** @default Date.now */
  now?: () => number;
  /** @default buildAssetTable() */
  assets?: AssetTable;
}

const IMMUTABLE = "public, max-age=31536000, immutable";

/** True where the one-click development sign-in may exist. */
export function devSignInAllowed(env: Config["env"]): boolean {
  return env === "development" || env === "test";
}

/** Routes of `/console`. */
export function consoleRoutes(options: ConsoleOptions): Hono<AppEnv> {
  if (!options?.env || !options.auth) {
    throw new TypeError("consoleRoutes() requires options env and auth");
  }
  const assets = options.assets ?? buildAssetTable();
  const devSignIn = devSignInAllowed(options.env) && options.auth.hs256Keys.length > 0;
  const shell = renderShell({ assets, devSignIn });
  const app = new Hono<AppEnv>();

  app.use("/console", csp);
  app.use("/console/*", csp);
  app.get("/console", (c) => {
    // The shell names the current asset hashes: never serve a stale one.
    c.header("Cache-Control", "no-cache");
    return c.html(shell);
  });
  app.get(`${ASSET_PREFIX}:file`, (c) => {
    const asset = assets.byFile.get(c.req.param("file"));
    if (!asset) {
      return problem(c, { code: "not-found", status: 404, title: "No such console asset" });
    }
    if (c.req.header("If-None-Match") === asset.etag) {
      return c.body(null, 304, { ETag: asset.etag, "Cache-Control": IMMUTABLE });
    }
    return c.body(asset.body, 200, {
      "Content-Type": asset.contentType,
      "Cache-Control": IMMUTABLE,
      ETag: asset.etag,
    });
  });
  if (devSignIn) {
    app.post(
      "/console/dev-sign-in",
      devSignInHandler({ auth: options.auth, now: options.now ?? Date.now }),
    );
  }
  return app;
}

const csp: MiddlewareHandler<AppEnv> = async function csp(c, next) {
  await next();
  c.res.headers.set("Content-Security-Policy", CONSOLE_CSP);
  c.res.headers.set("Referrer-Policy", "no-referrer");
};
