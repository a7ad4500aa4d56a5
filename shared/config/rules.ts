/**
 * The rules that involve more than one variable, in one place: each area
 * validates its own variables by schema; what follows needs several (or the
 * deployment as a whole). Every message names the variable to fix.
 *
 * @module
 */
import type { Config, ConfigValues } from "./areas.ts";
import { DEV_HS256_KID, DEV_HS256_SECRET } from "./auth.ts";
import { checkUpstreams } from "./breakers.ts";
import { isLoopbackHost } from "./core.ts";
import { DEV_UNSUBSCRIBE_SECRET } from "./email.ts";

/** Parsed values so far: a variable that failed its schema is absent. */
export type PartialValues = Partial<ConfigValues>;

/** Environments that may run with the published development secrets. */
const DEV_ENVIRONMENTS: ReadonlySet<string> = new Set(["development", "test"]);

/**
 * What a deployment outside development/test must not run with (see
 * docs/security.md): the published development secrets (the JWT key by kid
 * and by value, the unsubscribe key), a JWKS fetched over plain HTTP (whoever
 * can answer it mints tokens). `APP_ENV` unset on a reachable `EDGE_HOST` is
 * refused rather than defaulted: defaulting to production would fail anyway
 * on the development keys, with a less useful message, and defaulting to
 * development is how a published key goes live.
 */
export function deploymentProblems(
  env: Record<string, string | undefined>,
  values: PartialValues,
): string[] {
  const problems: string[] = [];
  const appEnv = values.APP_ENV;
  const host = values.EDGE_HOST;
  if ((env.APP_ENV ?? "").trim() === "" && host !== undefined && !isLoopbackHost(host)) {
    problems.push(
      `APP_ENV: required when EDGE_HOST (${
        JSON.stringify(host)
      }) is not a loopback address; set production, or development/test on a trusted network`,
    );
  }
  if (appEnv === undefined || DEV_ENVIRONMENTS.has(appEnv)) return problems;
  const keys = values.JWT_HS256_KEYS;
  if (keys?.some((k) => k.kid === DEV_HS256_KID || k.secret === DEV_HS256_SECRET)) {
    problems.push(
      `JWT_HS256_KEYS: the development key (kid "${DEV_HS256_KID}" or its secret) is refused with APP_ENV=${appEnv}; set your own keys`,
    );
  }
  // Every line verifies, so the development key is refused on any of them.
  if (values.UNSUBSCRIBE_SECRET?.includes(DEV_UNSUBSCRIBE_SECRET)) {
    problems.push(
      `UNSUBSCRIBE_SECRET: the development key is refused with APP_ENV=${appEnv}; set your own`,
    );
  }
  const jwks = values.JWT_JWKS_URL;
  if (jwks !== undefined && !jwks.startsWith("https:")) {
    problems.push(`JWT_JWKS_URL: must be https: with APP_ENV=${appEnv}`);
  }
  // The URL is a secret (it may carry a token): the message never shows it.
  const alertUrl = values.ALERT_WEBHOOK_URL;
  if (alertUrl !== undefined && !alertUrl.startsWith("https:")) {
    problems.push(`ALERT_WEBHOOK_URL: must be https: with APP_ENV=${appEnv}`);
  }
  return problems;
}

/**
 * The analytics windows depend on each other: rollups must outlive the raw
 * events they summarise (shared/analytics/retention.ts refuses otherwise, at
 * 03:00, in a worker), and the tier-1 late-event window must lie inside the
 * raw retention (a refresh over dropped chunks would empty their buckets).
 */
function analyticsProblems(values: PartialValues): string[] {
  const raw = values.ANALYTICS_RETENTION_DAYS;
  const rollup = values.ANALYTICS_ROLLUP_RETENTION_DAYS;
  const late = values.ANALYTICS_REFRESH_LATE_WINDOW_DAYS;
  if (raw === undefined) return [];
  const problems: string[] = [];
  if (rollup !== undefined && rollup < raw) {
    problems.push(
      `ANALYTICS_ROLLUP_RETENTION_DAYS: must be at least ANALYTICS_RETENTION_DAYS (${raw}), got ${rollup}`,
    );
  }
  if (late !== undefined && late >= raw) {
    problems.push(
      `ANALYTICS_REFRESH_LATE_WINDOW_DAYS: must be less than ANALYTICS_RETENTION_DAYS (${raw}), got ${late}`,
    );
  }
  return problems;
}

/** Every cross-variable problem of `values` (parsed from `env`), in a stable order. */
export function crossAreaProblems(
  env: Record<string, string | undefined>,
  values: PartialValues,
): string[] {
  const problems = deploymentProblems(env, values);
  if (values.EMAIL_PROVIDER === "smtp" && values.SMTP_URL === undefined) {
    problems.push("SMTP_URL: required when EMAIL_PROVIDER=smtp");
  }
  if (
    values.EMAIL_PROVIDER === "http_api" &&
    (values.EMAIL_API_URL === undefined || values.EMAIL_API_KEY === undefined)
  ) {
    problems.push("EMAIL_API_URL/EMAIL_API_KEY: both required when EMAIL_PROVIDER=http_api");
  }
  problems.push(...analyticsProblems(values));
  const ttl = values.WS_CLIENT_TTL_MS;
  const refresh = values.WS_REGISTRY_REFRESH_MS;
  if (ttl !== undefined && refresh !== undefined && refresh >= ttl) {
    // Entries would expire between refreshes and clients vanish from the registry.
    problems.push(
      `WS_REGISTRY_REFRESH_MS: must be less than WS_CLIENT_TTL_MS (${ttl}), got ${refresh}`,
    );
  }
  if (values.UPSTREAMS !== undefined && values.BREAKER_POLICIES !== undefined) {
    const resolved = checkUpstreams(values.UPSTREAMS, values.BREAKER_POLICIES);
    if ("problems" in resolved) problems.push(...resolved.problems.map((p) => `UPSTREAMS${p}`));
  }
  return problems;
}

/**
 * The published development secrets `config` runs with (empty outside
 * development/test, where parseConfig refuses them): the processes log one
 * loud warning at startup while any is active.
 */
export function activeDevSecrets(config: Config): string[] {
  const active: string[] = [];
  if (
    config.auth.hs256Keys.some((k) => k.kid === DEV_HS256_KID || k.secret === DEV_HS256_SECRET)
  ) {
    active.push("JWT_HS256_KEYS");
  }
  if (config.email.unsubscribeVerifySecrets.includes(DEV_UNSUBSCRIBE_SECRET)) {
    active.push("UNSUBSCRIBE_SECRET");
  }
  return active;
}
