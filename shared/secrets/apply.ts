/**
 * How a rotated secret reaches the code that uses it: the live Config is
 * updated in place, and every user of a rotatable secret reads it from there
 * per use (the HMAC keyring per token, unsubscribe links per request, the
 * email API key per send, the Places key per task, the MLflow token per call, the alert webhook's
 * URL and authorization per delivery). A new DATABASE_URL applies
 * to the pool's new connections; open ones finish their work untouched.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import type { Config } from "../config/mod.ts";
import type { Logger } from "../log.ts";
import { setPoolDatabaseUrl } from "../db/pool.ts";

/** Secrets whose rotation applies in place (the rest are named in the warning below). */
export const RELOADED_SECRETS = [
  "JWT_HS256_KEYS",
  "UNSUBSCRIBE_SECRET",
  "EMAIL_API_KEY",
  "PLACES_API_KEY",
  "MLFLOW_TRACKING_TOKEN",
  "ALERT_WEBHOOK_URL",
  "ALERT_WEBHOOK_AUTHORIZATION",
  "DATABASE_URL",
] as const;

/** Secrets held by clients built at start: a rotation needs a restart. */
export const RESTART_SECRETS = ["UPSTASH_REDIS_REST_TOKEN", "REDIS_TCP_URL", "SMTP_URL"] as const;

/** Applies a validated secret value (parsed by its schema) to `config` and `sql`. */
export function secretApplier(config: Config, sql: Pool, log: Logger) {
  return function apply(name: string, value: unknown): void {
    switch (name) {
      case "JWT_HS256_KEYS": {
        const keys = value as Config["auth"]["hs256Keys"];
        if (keys.length === 0) {
          log.warn("rotated secret lists no key; keeping the keys in force", { variable: name });
          return;
        }
        // A new array: the keyring rebuilds its kid map on the next token.
        config.auth.hs256Keys = keys;
        return;
      }
      case "UNSUBSCRIBE_SECRET": {
        const secrets = value as string[];
        config.email.unsubscribeSecret = secrets[0]!;
        config.email.unsubscribeVerifySecrets = secrets;
        return;
      }
      case "EMAIL_API_KEY":
        config.email.apiKey = value as string;
        return;
      case "PLACES_API_KEY":
        config.places.apiKey = value as string;
        return;
      case "MLFLOW_TRACKING_TOKEN":
        // The MLflow client reads the token from this object per call.
        if (config.ml.mlflow) config.ml.mlflow.token = value as string;
        return;
      case "ALERT_WEBHOOK_URL":
        // deliver_alert reads the target per delivery. Whether alerts are produced
        // at all is decided at start (a URL set where none was needs a restart).
        config.alerts.webhookUrl = value as string;
        return;
      case "ALERT_WEBHOOK_AUTHORIZATION":
        config.alerts.authorization = value as string;
        return;
      case "DATABASE_URL":
        config.database.url = value as string;
        setPoolDatabaseUrl(sql, value as string);
        return;
      default:
        // UPSTASH_REDIS_REST_TOKEN, REDIS_TCP_URL and SMTP_URL live inside clients built at start.
        log.warn("this secret's rotation applies after a restart", { variable: name });
    }
  };
}
