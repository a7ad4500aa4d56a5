/**
 * Shared by the suites that walk every route against the access policy
 * (tests/capability_test.ts, tests/fuzz_test.ts).
 *
 * @module
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../edge/app_env.ts";

/**
 * Admin actions on state every suite shares (the champion model in the
 * shared database): checked for the principals the policy denies only, never
 * made.
 */
export const SHARED_STATE_ACTIONS: ReadonlySet<string> = new Set([
  "POST /v1/models/:version/activate",
  "POST /v1/models/rollback",
]);

/** Every `/v1` route of `app` as `[method, pattern]` (`/v1/tasks/:id`), once each. */
export function v1Routes(app: OpenAPIHono<AppEnv>): [string, string][] {
  const seen = new Set(
    app.routes.filter((r) => r.method !== "ALL" && r.path.startsWith("/v1/")).map((r) =>
      `${r.method} ${r.path}`
    ),
  );
  return [...seen].map((r) => r.split(" ") as [string, string]);
}
