import assert from "node:assert/strict";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { ConfigError } from "../errors.ts";
import { AwsSecretCache, SecretUnavailableError } from "./aws_cache.ts";
import { loadConfigAndSecrets, watchSecrets } from "./source.ts";
import { startFakeSecretsManager } from "./aws_test_server.ts";
import { memoryLog } from "../../testing/log.ts";
import { waitUntil } from "../../testing/wait.ts";

/** The official client, pointed at the stand-in (static test credentials, no retries). */
function client(url: string): SecretsManagerClient {
  return new SecretsManagerClient({
    region: "us-east-1",
    endpoint: url,
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret-key" },
    maxAttempts: 1,
  });
}

Deno.test("AwsSecretCache: served from memory within the TTL, refreshed in the background after it", async () => {
  const aws = startFakeSecretsManager();
  const sm = client(aws.url);
  let t = 0;
  const { log } = memoryLog();
  const cache = new AwsSecretCache({ client: sm, ttlMs: 1000, log, now: () => t });
  try {
    aws.secrets.set("app/jwt", '{"v":"one"}');
    assert.equal(await cache.get("app/jwt"), '{"v":"one"}');
    t = 999;
    assert.equal(await cache.get("app/jwt"), '{"v":"one"}');
    assert.deepEqual(aws.calls, ["app/jwt"], "one call within the TTL");

    aws.secrets.set("app/jwt", '{"v":"two"}');
    t = 1000;
    assert.equal(await cache.get("app/jwt"), '{"v":"one"}', "the stale value answers at once");
    await cache.settle();
    assert.equal(await cache.get("app/jwt"), '{"v":"two"}');
    assert.equal(aws.calls.length, 2);
    assert.deepEqual(aws.malformed, []);
  } finally {
    await cache.settle();
    sm.destroy();
    await aws.close();
  }
});

Deno.test("AwsSecretCache: the last good value is served while AWS is down; values never logged", async () => {
  const aws = startFakeSecretsManager();
  const sm = client(aws.url);
  let t = 0;
  const { log, text: lines } = memoryLog();
  const cache = new AwsSecretCache({ client: sm, ttlMs: 1000, log, now: () => t });
  try {
    aws.secrets.set("app/db", "postgresql://u:hunter2-password@db/x");
    await cache.get("app/db");
    aws.down = true;
    t = 5000;
    assert.equal(await cache.get("app/db"), "postgresql://u:hunter2-password@db/x");
    await cache.settle();
    assert.equal(await cache.get("app/db"), "postgresql://u:hunter2-password@db/x");
    assert.equal(aws.calls.length, 2, "no retry storm: the next attempt waits another TTL");
    assert.ok(lines.some((l) => l.includes("aws secret refresh failed")));
    assert.ok(!lines.some((l) => l.includes("hunter2")));

    aws.down = false;
    t = 6000;
    await cache.get("app/db");
    await cache.settle();
    assert.equal(aws.calls.length, 3, "refreshes again once AWS is back");

    // Never fetched and AWS unreachable: the one case a read fails.
    aws.down = true;
    await assert.rejects(cache.get("app/other"), SecretUnavailableError);
    aws.secrets.delete("app/missing");
    aws.down = false;
    await assert.rejects(
      cache.get("app/missing"),
      (err: Error) =>
        err instanceof SecretUnavailableError &&
        (err.cause as Error).name === "ResourceNotFoundException",
    );
  } finally {
    await cache.settle();
    sm.destroy();
    await aws.close();
  }
});

const BASE_ENV = {
  SECRETS_SOURCE: "aws",
  SECRETS_AWS_PREFIX: "pc-test/",
  UPSTASH_REDIS_REST_URL: "https://redis.example",
  APP_ENV: "production",
};

Deno.test("SECRETS_SOURCE=aws: the configuration's secrets come from the three AWS secrets", async () => {
  const aws = startFakeSecretsManager();
  const { log } = memoryLog();
  aws.secrets.set("pc-test/database", JSON.stringify({ url: "postgresql://app:pw@db.example/pc" }));
  aws.secrets.set(
    "pc-test/jwt",
    JSON.stringify({
      hs256_keys: "k9:aws-provided-secret-0123456789abcdef",
      unsubscribe_secret: "aws-unsubscribe-secret-0123456789",
    }),
  );
  aws.secrets.set("pc-test/api-keys", JSON.stringify({ upstash_redis_rest_token: "tok" }));
  const { config, secrets } = await loadConfigAndSecrets(
    { ...BASE_ENV, SECRETS_AWS_ENDPOINT: aws.url },
    { log, awsClient: client(aws.url) },
  );
  try {
    assert.equal(config.database.url, "postgresql://app:pw@db.example/pc");
    assert.deepEqual(config.auth.hs256Keys.map((k) => k.kid), ["k9"]);
    assert.equal(config.redis.token, "tok");
    assert.equal(config.email.apiKey, null, "absent properties stay unset");
    assert.equal(await secrets.read("DATABASE_URL"), "postgresql://app:pw@db.example/pc");
    assert.deepEqual(
      [...new Set(aws.calls)].sort(),
      ["pc-test/api-keys", "pc-test/database", "pc-test/jwt"],
    );
  } finally {
    secrets.close();
    await aws.close();
  }
});

Deno.test("SECRETS_SOURCE=aws: a missing secret or a variable also set locally is one ConfigError", async () => {
  const aws = startFakeSecretsManager();
  const { log, text: lines } = memoryLog();
  aws.secrets.set("pc-test/jwt", "not json but secret-ish");
  try {
    await assert.rejects(
      loadConfigAndSecrets({ ...BASE_ENV, DATABASE_URL: "postgresql://x@y/z" }, {
        log,
        awsClient: client(aws.url),
      }),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        const text = err.problems.join("\n");
        assert.match(text, /DATABASE_URL: comes from AWS/);
        assert.match(text, /pc-test\/jwt: not a JSON object/);
        assert.match(text, /could not be read \(ResourceNotFoundException\)/);
        assert.doesNotMatch(text, /secret-ish/);
        return true;
      },
    );
    assert.ok(!lines.some((l) => l.includes("secret-ish")));
  } finally {
    await aws.close();
  }
});

Deno.test("SECRETS_SOURCE=aws: a value rotated in AWS reaches the live config after the TTL", async () => {
  const aws = startFakeSecretsManager();
  const { log, text: lines } = memoryLog();
  const jwt = (keys: string) =>
    JSON.stringify({ hs256_keys: keys, unsubscribe_secret: "aws-unsubscribe-secret-0123456789" });
  aws.secrets.set("pc-test/database", JSON.stringify({ url: "postgresql://app:pw@db.example/pc" }));
  aws.secrets.set("pc-test/jwt", jwt("k1:aws-first-secret-0123456789abcdef"));
  aws.secrets.set("pc-test/api-keys", JSON.stringify({ upstash_redis_rest_token: "tok" }));
  const { config, secrets } = await loadConfigAndSecrets(
    { ...BASE_ENV, SECRETS_AWS_TTL_MS: "1", SECRETS_RELOAD_MS: "3600000" },
    { log, awsClient: client(aws.url) },
  );
  const applied: string[] = [];
  const reloader = watchSecrets(config, secrets, (name, value) => {
    applied.push(name);
    if (name === "JWT_HS256_KEYS") config.auth.hs256Keys = value as typeof config.auth.hs256Keys;
  }, log);
  try {
    aws.secrets.set(
      "pc-test/jwt",
      jwt("k1:aws-first-secret-0123456789abcdef,k2:aws-second-secret-0123456789abcdef"),
    );
    // The first round serves the cached value and refreshes it; a later one sees the new version.
    await waitUntil(async () => {
      await reloader.check();
      return applied.includes("JWT_HS256_KEYS");
    }, { timeoutMs: 20_000, what: "the rotated keys to be applied" });
    assert.deepEqual(config.auth.hs256Keys.map((k) => k.kid), ["k1", "k2"]);
    assert.deepEqual(applied, ["JWT_HS256_KEYS"], "only the changed variable");
    assert.ok(!lines.some((l) => l.includes("aws-second-secret")));
  } finally {
    await reloader.stop();
    secrets.close();
    await aws.close();
  }
});
