/**
 * Which secret variable lives where in AWS Secrets Manager: three JSON
 * secrets (`<prefix>database`, `<prefix>jwt`, `<prefix>api-keys`), one
 * property per variable. The External Secrets Operator (deploy.yaml) and the
 * direct AWS source (SECRETS_SOURCE=aws) read the same layout.
 *
 * @module
 */

/** One AWS secret: its name after the prefix and property → variable. */
export interface AwsSecretLayout {
  name: "database" | "jwt" | "api-keys";
  /** Secret variable (shared/config/) → JSON property of the AWS secret. */
  properties: Readonly<Record<string, string>>;
}

/** The layout; docs/deploying.md shows the JSON each secret holds. */
export const AWS_SECRET_LAYOUT: readonly AwsSecretLayout[] = [
  { name: "database", properties: { DATABASE_URL: "url" } },
  {
    name: "jwt",
    properties: { JWT_HS256_KEYS: "hs256_keys", UNSUBSCRIBE_SECRET: "unsubscribe_secret" },
  },
  {
    name: "api-keys",
    properties: {
      UPSTASH_REDIS_REST_TOKEN: "upstash_redis_rest_token",
      REDIS_TCP_URL: "redis_tcp_url",
      EMAIL_API_KEY: "email_api_key",
      PLACES_API_KEY: "places_api_key",
      SMTP_URL: "smtp_url",
      MLFLOW_TRACKING_TOKEN: "mlflow_tracking_token",
      ALERT_WEBHOOK_URL: "alert_webhook_url",
      ALERT_WEBHOOK_AUTHORIZATION: "alert_webhook_authorization",
    },
  },
];
