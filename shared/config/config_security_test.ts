/**
 * Issue 13, High 2: the published development secrets never run outside
 * development/test, whatever way they arrive (default, variable, `_FILE`,
 * an empty value that used to fall back to the default).
 */
import assert from "node:assert/strict";
import {
  activeDevSecrets,
  DEV_HS256_KEY,
  DEV_UNSUBSCRIBE_SECRET,
  isLoopbackHost,
  parseConfig,
} from "./mod.ts";
import { ConfigError } from "../errors.ts";
import { warnAboutDevSecrets } from "../lifecycle.ts";
import { createLogger } from "../log.ts";

const VALID = {
  UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079",
  UPSTASH_REDIS_REST_TOKEN: "tok-secret-123",
  DATABASE_URL: "postgresql://app:pw-secret-456@127.0.0.1:5432/db",
};
const OWN_KEYS = {
  JWT_HS256_KEYS: `k1:${"p".repeat(40)}`,
  UNSUBSCRIBE_SECRET: "u".repeat(32),
};
const PRODUCTION = { ...VALID, ...OWN_KEYS, APP_ENV: "production" };
const DEV_SECRET = DEV_HS256_KEY.slice("local:".length);

function problemsOf(
  env: Record<string, string | undefined>,
  files: Record<string, string> = {},
): string[] {
  try {
    parseConfig(env, {
      readTextFile: (p) => {
        if (p in files) return files[p]!;
        throw new Deno.errors.NotFound(p);
      },
    });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err.problems;
  }
  assert.fail("parseConfig() did not throw");
}

Deno.test("an empty secret is a configuration error, never the default", () => {
  for (
    const env of [{ JWT_HS256_KEYS: "" }, { JWT_HS256_KEYS: "  " }, { UNSUBSCRIBE_SECRET: "" }]
  ) {
    const problems = problemsOf({ ...VALID, ...env });
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.match(problems[0]!, /: empty/);
  }
  // An empty mounted secret file (just a newline) is the same mistake.
  const problems = problemsOf({
    ...PRODUCTION,
    JWT_HS256_KEYS: undefined!,
    JWT_HS256_KEYS_FILE: "/s",
  }, {
    "/s": "\n",
  });
  assert.deepEqual(problems, [
    "JWT_HS256_KEYS_FILE: empty (a secret must have a value; unset it to use the default)",
  ]);
});

Deno.test("an empty optional secret without a default is unset (a provider a deployment does not use)", () => {
  const config = parseConfig(
    { ...PRODUCTION, EMAIL_API_KEY_FILE: "/e", PLACES_API_KEY: "  " },
    { readTextFile: () => "\n" },
  );
  assert.equal(config.email.apiKey, null);
  assert.equal(config.places.apiKey, null);
});

Deno.test("outside development/test the dev JWT key is refused by kid and by value, from anywhere", () => {
  const attempts: [Record<string, string>, Record<string, string>][] = [
    [{ JWT_HS256_KEYS: undefined! }, {}], // the default
    [{ JWT_HS256_KEYS: DEV_HS256_KEY }, {}],
    [{ JWT_HS256_KEYS: `k1:${"p".repeat(40)},${DEV_HS256_KEY}` }, {}],
    [{ JWT_HS256_KEYS: `renamed:${DEV_SECRET}` }, {}],
    [{ JWT_HS256_KEYS: `local:${"z".repeat(40)}` }, {}],
    [{ JWT_HS256_KEYS: undefined!, JWT_HS256_KEYS_FILE: "/k" }, { "/k": `${DEV_HS256_KEY}\n` }],
  ];
  for (const [env, files] of attempts) {
    const clean = Object.fromEntries(
      Object.entries({ ...PRODUCTION, ...env }).filter(([, v]) => v !== undefined),
    );
    const problems = problemsOf(clean, files);
    assert.equal(problems.length, 1, JSON.stringify({ env, problems }));
    assert.match(problems[0]!, /^JWT_HS256_KEYS: the development key .* refused/);
  }
});

Deno.test("outside development/test the dev unsubscribe secret is refused, default or explicit", () => {
  const { UNSUBSCRIBE_SECRET: _, ...withoutSecret } = PRODUCTION;
  for (
    const env of [withoutSecret, { ...PRODUCTION, UNSUBSCRIBE_SECRET: DEV_UNSUBSCRIBE_SECRET }]
  ) {
    const problems = problemsOf(env);
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.match(problems[0]!, /^UNSUBSCRIBE_SECRET: the development key is refused/);
  }
  assert.equal(parseConfig(PRODUCTION).env, "production");
});

Deno.test("APP_ENV unset on a non-loopback EDGE_HOST is refused; loopback keeps development", () => {
  for (const host of ["0.0.0.0", "::", "10.0.0.5", "edge.internal"]) {
    assert.ok(!isLoopbackHost(host), host);
    const problems = problemsOf({ ...VALID, ...OWN_KEYS, EDGE_HOST: host });
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.match(problems[0]!, /^APP_ENV: required when EDGE_HOST/);
    assert.match(
      problemsOf({ ...VALID, ...OWN_KEYS, EDGE_HOST: host, APP_ENV: "" })[0]!,
      /^APP_ENV/,
    );
  }
  for (const host of ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"]) {
    assert.ok(isLoopbackHost(host), host);
    assert.equal(parseConfig({ ...VALID, EDGE_HOST: host }).env, "development");
  }
  assert.equal(parseConfig({ ...PRODUCTION, EDGE_HOST: "0.0.0.0" }).env, "production");
});

Deno.test("JWT_JWKS_URL must be https: outside development/test", () => {
  const problems = problemsOf({ ...PRODUCTION, JWT_JWKS_URL: "http://idp.example/jwks.json" });
  assert.deepEqual(problems, ["JWT_JWKS_URL: must be https: with APP_ENV=production"]);
  const ok = parseConfig({ ...PRODUCTION, JWT_JWKS_URL: "https://idp.example/jwks.json" });
  assert.equal(ok.auth.jwksUrl, "https://idp.example/jwks.json");
  assert.equal(
    parseConfig({ ...VALID, JWT_JWKS_URL: "http://127.0.0.1:9/jwks" }).auth.jwksUrl,
    "http://127.0.0.1:9/jwks",
  );
});

Deno.test("one loud warning while a development secret is active, none without", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "info", write: (line: string) => lines.push(line) });
  assert.deepEqual(activeDevSecrets(parseConfig(VALID)), ["JWT_HS256_KEYS", "UNSUBSCRIBE_SECRET"]);
  assert.equal(warnAboutDevSecrets(parseConfig(VALID), log), true);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /DEVELOPMENT SECRETS ACTIVE/);
  assert.equal(warnAboutDevSecrets(parseConfig({ ...VALID, ...OWN_KEYS }), log), false);
  assert.equal(lines.length, 1);
});

Deno.test("REDIS_TCP_URL: TLS, or plain text to loopback only; messages never show the URL", () => {
  const password = "tcp-secret-789";
  const ok = [
    `rediss://default:${password}@pleasant-cove.upstash.io:6379`,
    `redis://:${password}@127.0.0.1:6379`,
    `redis://localhost:6379/0`,
  ];
  for (const url of ok) {
    assert.equal(parseConfig({ ...PRODUCTION, REDIS_TCP_URL: url }).redis.tcpUrl, url);
  }
  assert.equal(parseConfig(VALID).redis.tcpUrl, null);
  const refused: [string, RegExp][] = [
    [`redis://default:${password}@redis.internal:6379`, /only accepted for a loopback host/],
    [`http://default:${password}@127.0.0.1:6379`, /redis:\/\/ or rediss:\/\//],
    [`not a url ${password}`, /redis:\/\/ or rediss:\/\//],
    [`rediss://default:${password}@host.example:6379/3`, /only database 0/],
  ];
  for (const [url, why] of refused) {
    const problems = problemsOf({ ...PRODUCTION, REDIS_TCP_URL: url });
    assert.equal(problems.length, 1, url);
    assert.match(problems[0]!, /^REDIS_TCP_URL/);
    assert.match(problems[0]!, why);
    assert.ok(!problems[0]!.includes(password), problems[0]!);
  }
});
