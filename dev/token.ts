/**
 * `deno task token --sub <sub> [--roles admin,operator] [--ttl 1h] [--kid local]`
 *
 * Mints a development HS256 token with the configured HMAC keyring
 * (`JWT_HS256_KEYS`, by default the local development key), issuer and
 * audience, and prints ONLY the token on stdout, so `TOKEN=$(deno task token
 * --sub sa:minerva)` works. Usage errors are one line on stderr, exit 2.
 * Refuses to run with `APP_ENV=production`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Config, parseConfig, readEnvironment } from "../shared/config/mod.ts";
import { ConfigError } from "../shared/errors.ts";
import { type Role, ROLES } from "../edge/auth/principal.ts";
import { signDevToken } from "../edge/auth/dev_token.ts";

/** A usage error: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

const USAGE = "usage: deno task token --sub <sub|sa:name> [--roles admin,operator,viewer] " +
  "[--ttl 1h] [--kid <kid>]";
const MAX_TTL_S = 30 * 86_400;
const UNITS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };

/** Options for {@linkcode mintDevToken}. */
export interface MintOptions {
  sub: string;
  /** @default [] */
  roles?: readonly Role[];
  /** Lifetime in seconds. @default 3600 */
  ttlS?: number;
  /** Key id in the keyring. @default the first configured key */
  kid?: string;
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number;
}

/** Signs a token that `createVerifier(auth)` accepts. */
export async function mintDevToken(auth: Config["auth"], options: MintOptions): Promise<string> {
  const key = options.kid === undefined
    ? auth.hs256Keys[0]
    : auth.hs256Keys.find((k) => k.kid === options.kid);
  if (!key) {
    const known = auth.hs256Keys.map((k) => k.kid).join(", ") || "none";
    throw new UsageError(`Unknown --kid "${options.kid ?? ""}" (configured: ${known})`);
  }
  return await signDevToken(auth, key, options);
}

/** Parses `90`, `90s`, `15m`, `1h` or `7d` into seconds (at most 30 days). */
export function parseTtl(text: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text);
  const seconds = m ? Number(m[1]) * UNITS[m[2] || "s"]! : NaN;
  if (!(seconds > 0 && seconds <= MAX_TTL_S)) {
    throw new UsageError(`--ttl must look like 90s, 15m, 1h or 7d (at most 30d), got "${text}"`);
  }
  return seconds;
}

function parseRoles(text: string | undefined): Role[] {
  const names = (text ?? "").split(",").map((r) => r.trim()).filter(Boolean);
  for (const r of names) {
    if (!(ROLES as readonly string[]).includes(r)) {
      throw new UsageError(`Unknown role "${r}" (roles: ${ROLES.join(", ")})`);
    }
  }
  return [...new Set(names)] as Role[];
}

// parseConfig validates the whole environment, but a token needs only the auth
// settings: inert placeholders stand in for the service URLs so the task works
// in a plain shell. Real values (or their _FILE variants) win.
const UNUSED_SERVICES: Record<string, string> = {
  UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9",
  UPSTASH_REDIS_REST_TOKEN: "unused-by-dev-token",
  DATABASE_URL: "postgresql://unused@127.0.0.1:9/unused",
};

function authConfig(env: Record<string, string | undefined>): Config["auth"] {
  const filled = { ...env };
  for (const [name, value] of Object.entries(UNUSED_SERVICES)) {
    if (!filled[name] && !filled[`${name}_FILE`]) filled[name] = value;
  }
  const config = parseConfig(filled);
  if (config.env === "production") {
    throw new UsageError("Refusing to mint a development token with APP_ENV=production");
  }
  return config.auth;
}

/**
 * Runs the CLI: returns the token, or throws {@linkcode UsageError} (bad
 * flags) or ConfigError (bad environment).
 */
export async function runTokenCli(
  args: string[],
  env: Record<string, string | undefined>,
  options: { now?: () => number } = {},
): Promise<string> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        sub: { type: "string" },
        roles: { type: "string" },
        ttl: { type: "string" },
        kid: { type: "string" },
      },
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; ${USAGE}`, { cause: err });
  }
  if (!values.sub || !/^[\x21-\x7e]{1,255}$/.test(values.sub) || values.sub === "sa:") {
    throw new UsageError(`--sub is required (a user id or sa:<name>); ${USAGE}`);
  }
  const roles = parseRoles(values.roles);
  if (values.sub.startsWith("sa:") && roles.length > 0) {
    throw new UsageError(
      `--roles is for users: services are granted by name in the policy (edge/auth/policy.ts), and a service token with roles is refused`,
    );
  }
  const ttlS = values.ttl === undefined ? 3_600 : parseTtl(values.ttl);
  return await mintDevToken(authConfig(env), {
    sub: values.sub,
    roles,
    ttlS,
    kid: values.kid,
    now: options.now,
  });
}

if (import.meta.main) {
  try {
    console.log(await runTokenCli(Deno.args, readEnvironment()));
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      console.error(err.message);
      Deno.exit(2);
    }
    console.error(`token: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
}
