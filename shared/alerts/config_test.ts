import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import { ConfigError } from "../errors.ts";

const VALID = {
  UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079",
  UPSTASH_REDIS_REST_TOKEN: "tok-secret-123",
  DATABASE_URL: "postgresql://app:pw-secret-456@127.0.0.1:5432/db",
};

function problemsOf(env: Record<string, string>, files: Record<string, string> = {}): string[] {
  try {
    parseConfig(env, { readTextFile: (p) => files[p]! });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err.problems;
  }
  assert.fail("parseConfig() did not throw");
}

Deno.test("the alert webhook is off by default, and so are dead-letter alerts", () => {
  const config = parseConfig(VALID);
  assert.deepEqual(config.alerts, {
    webhookUrl: null,
    format: "alertmanager",
    authorization: null,
    timeoutMs: 5000,
  });
  assert.equal(config.queue.deadLetterAlerts, false);
});

Deno.test("the alert webhook settings, the URL and authorization from _FILE secrets", () => {
  const config = parseConfig({
    ...VALID,
    ALERT_WEBHOOK_URL_FILE: "/run/secrets/url",
    ALERT_WEBHOOK_AUTHORIZATION_FILE: "/run/secrets/auth",
    ALERT_WEBHOOK_FORMAT: "generic",
    ALERT_WEBHOOK_TIMEOUT_MS: "2500",
  }, {
    readTextFile: (p) =>
      ({
        "/run/secrets/url": "https://hooks.example/x?token=abc\n",
        "/run/secrets/auth": "Bearer t",
      })[
        p
      ]!,
  });
  assert.deepEqual(config.alerts, {
    webhookUrl: "https://hooks.example/x?token=abc",
    format: "generic",
    authorization: "Bearer t",
    timeoutMs: 2500,
  });
  assert.equal(config.queue.deadLetterAlerts, true);
});

Deno.test("outside development/test the alert webhook must be https, and the URL is never echoed", () => {
  const url = "http://hooks.example/x?token=s3cr3t";
  const problems = problemsOf({
    ...VALID,
    APP_ENV: "production",
    JWT_HS256_KEYS: "prod:an-own-production-key-of-enough-length-123456",
    UNSUBSCRIBE_SECRET: "an-own-unsubscribe-secret-of-enough-length",
    ALERT_WEBHOOK_URL: url,
  });
  assert.ok(
    problems.includes("ALERT_WEBHOOK_URL: must be https: with APP_ENV=production"),
    JSON.stringify(problems),
  );
  assert.ok(problems.every((p) => !p.includes("s3cr3t")));
  // Allowed in development (a loopback receiver), refused with a bad format.
  assert.equal(parseConfig({ ...VALID, ALERT_WEBHOOK_URL: url }).alerts.webhookUrl, url);
  const bad = problemsOf({ ...VALID, ALERT_WEBHOOK_URL: "ftp://x/", ALERT_WEBHOOK_FORMAT: "xml" });
  assert.equal(bad.length, 2, JSON.stringify(bad));
  assert.ok(bad.every((p) => !p.includes("ftp://x/")));
});
