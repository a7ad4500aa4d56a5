import assert from "node:assert/strict";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { parseConfig, readEnvironment } from "../shared/config/mod.ts";
import { createVerifier } from "../edge/auth/verify.ts";
import { createLogger } from "../shared/log.ts";
import { runTokenCli, UsageError } from "./token.ts";

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const now = () => NOW;
const SERVICES = {
  UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9",
  UPSTASH_REDIS_REST_TOKEN: "t",
  DATABASE_URL: "postgresql://u:p@127.0.0.1:9/db",
};

function verifierFor(env: Record<string, string>) {
  const auth = parseConfig({ ...SERVICES, ...env }).auth;
  return createVerifier(auth, { log: createLogger({ write: () => {} }), now });
}

Deno.test("a minted token verifies with the configured keyring, issuer and audience", async () => {
  const token = await runTokenCli(["--sub", "u-maya", "--roles", "admin,operator"], {}, {
    now,
  });
  assert.deepEqual(await verifierFor({}).verify(token), {
    kind: "user",
    sub: "u-maya",
    roles: ["admin", "operator"],
  });
  const service = await runTokenCli(["--sub", "sa:minerva"], {}, { now });
  assert.deepEqual(await verifierFor({}).verify(service), {
    kind: "service",
    sub: "sa:minerva",
    name: "minerva",
    roles: [],
  });
  assert.deepEqual(decodeProtectedHeader(token), { alg: "HS256", kid: "local", typ: "JWT" });
  const claims = decodeJwt(token);
  assert.equal(claims.iss, "pleasant-cove");
  assert.equal(claims.aud, "pleasant-cove-api");
  assert.equal(claims.exp! - claims.iat!, 3600);
});

Deno.test("--ttl and --kid pick the lifetime and the key; without the service variables set", async () => {
  const env = {
    JWT_HS256_KEYS:
      "old:old-secret-0123456789abcdef0123456789,new:new-secret-0123456789abcdef0123456789",
    JWT_ISSUER: "https://issuer.test",
  };
  const token = await runTokenCli(["--sub", "u1", "--ttl", "15m", "--kid", "new"], env, { now });
  assert.equal(decodeProtectedHeader(token).kid, "new");
  const claims = decodeJwt(token);
  assert.equal(claims.exp! - claims.iat!, 900);
  assert.equal(claims.roles, undefined);
  assert.deepEqual(await verifierFor(env).verify(token), { kind: "user", sub: "u1", roles: [] });
});

Deno.test("bad flags are one-line usage errors", async () => {
  const cases: [string[], RegExp][] = [
    [["--sub", "u1", "--bogus"], /Unknown option '--bogus'/],
    [[], /--sub is required/],
    [["--sub", "sa:"], /--sub is required/],
    [["--sub", "u1", "--roles", "admin,root"], /Unknown role "root"/],
    [["--sub", "sa:minerva", "--roles", "admin"], /--roles is for users/],
    [["--sub", "u1", "--ttl", "1w"], /--ttl must look like/],
    [["--sub", "u1", "--ttl", "31d"], /at most 30d/],
    [["--sub", "u1", "--kid", "nope"], /Unknown --kid "nope" \(configured: local\)/],
    [["--sub", "u1", "extra"], /positional/],
  ];
  for (const [args, pattern] of cases) {
    await assert.rejects(runTokenCli(args, {}, { now }), (err: unknown) => {
      assert.ok(err instanceof UsageError, String(err));
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes("\n"), `more than one line: ${err.message}`);
      return true;
    });
  }
  await assert.rejects(
    runTokenCli(["--sub", "u1"], {
      APP_ENV: "production",
      JWT_HS256_KEYS: "p:" + "x".repeat(40),
      UNSUBSCRIBE_SECRET: "y".repeat(32),
    }),
    /Refusing to mint a development token with APP_ENV=production/,
  );
});

async function runCli(args: string[]) {
  const inherited = readEnvironment();
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    if (inherited[name] !== undefined) env[name] = inherited[name];
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-env",
      "--allow-read",
      new URL("./token.ts", import.meta.url).pathname,
      ...args,
    ],
    clearEnv: true,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("the CLI prints only the token on stdout, and exits 2 with one stderr line on bad flags", async () => {
  const ok = await runCli(["--sub", "sa:api-gateway"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  assert.equal(ok.stderr, "");
  // The child minted with the real clock, so this verifier uses it too.
  const live = createVerifier(parseConfig(SERVICES).auth, {
    log: createLogger({ write: () => {} }),
  });
  assert.equal((await live.verify(ok.stdout.trim())).sub, "sa:api-gateway");

  const bad = await runCli(["--sub", "u1", "--roles", "superuser"]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, "");
  assert.equal(bad.stderr.trimEnd().split("\n").length, 1, bad.stderr);
  assert.match(bad.stderr, /Unknown role "superuser"/);
});
