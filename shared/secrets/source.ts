/**
 * Where the processes' secrets come from at start and how rotations reach the
 * running process (docs/deploying.md, "Secrets"):
 *
 * - `SECRETS_SOURCE=env` (default): `NAME` or `NAME_FILE`. Mounted files
 *   (Kubernetes Secrets from the External Secrets Operator) are re-read every
 *   `SECRETS_RELOAD_MS`; a plain `NAME` value is fixed for the process' life.
 * - `SECRETS_SOURCE=aws`: the JSON secrets of shared/secrets/layout.ts are read
 *   from AWS Secrets Manager with the official SDK, cached (aws_cache.ts) and
 *   re-checked every `SECRETS_RELOAD_MS`.
 *
 * Either way a changed value is validated and applied to the live Config
 * (apply.ts), which the code reading secrets consults per use.
 *
 * @module
 */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { type Config, parseConfig, VARIABLES, type VariableSpec } from "../config/mod.ts";
import { ConfigError } from "../errors.ts";
import { createLogger, type Logger } from "../log.ts";
import { AWS_SECRET_LAYOUT } from "./layout.ts";
import { AwsSecretCache } from "./aws_cache.ts";
import { startSecretReloader } from "./reloader.ts";

/** Secret variables' current texts, wherever they come from. */
export interface SecretSource {
  /** Texts in force at start, by variable (only the reloadable ones). */
  initial: Readonly<Record<string, string>>;
  read(name: string): Promise<string | undefined>;
  /** Releases the AWS client, if any. */
  close(): void;
}

/** Options for {@linkcode loadConfigAndSecrets}. */
export interface LoadOptions {
  /** @default Deno.readTextFile */
  readTextFile?: (path: string) => Promise<string>;
  /** The Secrets Manager client; @default one built from SECRETS_AWS_REGION/_ENDPOINT */
  awsClient?: SecretsManagerClient;
  log: Logger;
}

const SECRET_NAMES = (VARIABLES as readonly VariableSpec[]).filter((s) => s.secret).map((s) =>
  s.name
);

/** The SECRETS_* settings alone: they decide how the rest is read. */
function secretsSettings(env: Record<string, string | undefined>): Config["secrets"] {
  const specs = (VARIABLES as readonly VariableSpec[]).filter((s) => s.name.startsWith("SECRETS_"));
  const problems: string[] = [];
  const v: Record<string, unknown> = {};
  for (const spec of specs) {
    const raw = env[spec.name] || spec.default;
    if (raw === undefined) continue;
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) v[spec.name] = parsed.data;
    else problems.push(`${spec.name}: ${parsed.error.issues[0]!.message}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    source: v.SECRETS_SOURCE as "env" | "aws",
    reloadMs: v.SECRETS_RELOAD_MS as number,
    aws: {
      region: (v.SECRETS_AWS_REGION as string | undefined) ?? null,
      endpoint: (v.SECRETS_AWS_ENDPOINT as string | undefined) ?? null,
      prefix: v.SECRETS_AWS_PREFIX as string,
      ttlMs: v.SECRETS_AWS_TTL_MS as number,
    },
  };
}

function propertyOf(json: string, secretId: string, property: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ConfigError([`AWS secret ${secretId}: not a JSON object`]);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError([`AWS secret ${secretId}: not a JSON object`]);
  }
  const value = (parsed as Record<string, unknown>)[property];
  return typeof value === "string" && value !== "" ? value : undefined;
}

async function awsSource(
  env: Record<string, string | undefined>,
  settings: Config["secrets"],
  options: LoadOptions,
): Promise<{ env: Record<string, string>; source: SecretSource }> {
  const client = options.awsClient ?? new SecretsManagerClient({
    ...(settings.aws.region ? { region: settings.aws.region } : {}),
    ...(settings.aws.endpoint ? { endpoint: settings.aws.endpoint } : {}),
  });
  const cache = new AwsSecretCache({ client, ttlMs: settings.aws.ttlMs, log: options.log });
  const where = new Map<string, { secretId: string; property: string }>();
  for (const secret of AWS_SECRET_LAYOUT) {
    for (const [variable, property] of Object.entries(secret.properties)) {
      where.set(variable, { secretId: `${settings.aws.prefix}${secret.name}`, property });
    }
  }
  const read = async (name: string) => {
    const at = where.get(name);
    return at ? propertyOf(await cache.get(at.secretId), at.secretId, at.property) : undefined;
  };
  const fromAws: Record<string, string> = {};
  const problems: string[] = [];
  for (const name of where.keys()) {
    if (env[name] !== undefined || env[`${name}_FILE`] !== undefined) {
      problems.push(`${name}: comes from AWS (SECRETS_SOURCE=aws); do not set it here too`);
      continue;
    }
    try {
      const value = await read(name);
      if (value !== undefined) fromAws[name] = value;
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else problems.push(`${name}: ${(err as Error).message} (${errorCause(err)})`);
    }
  }
  if (problems.length > 0) {
    client.destroy();
    throw new ConfigError([...new Set(problems)]);
  }
  return {
    env: fromAws,
    source: { initial: fromAws, read, close: () => client.destroy() },
  };
}

function errorCause(err: unknown): string {
  const cause = (err as Error).cause;
  return cause instanceof Error ? cause.name : "unknown";
}

/**
 * Reads the secrets (from AWS when SECRETS_SOURCE=aws), then the whole
 * configuration; throws one ConfigError listing every problem.
 */
export async function loadConfigAndSecrets(
  env: Record<string, string | undefined>,
  options: LoadOptions,
): Promise<{ config: Config; secrets: SecretSource }> {
  const settings = secretsSettings(env);
  if (settings.source === "aws") {
    const aws = await awsSource(env, settings, options);
    try {
      return { config: parseConfig({ ...env, ...aws.env }), secrets: aws.source };
    } catch (err) {
      aws.source.close();
      throw err;
    }
  }
  const config = parseConfig(env);
  const readTextFile = options.readTextFile ?? Deno.readTextFile;
  const initial: Record<string, string> = {};
  for (const name of SECRET_NAMES) {
    const path = env[`${name}_FILE`];
    if (path !== undefined) initial[name] = (await readTextFile(path)).replace(/\r?\n$/, "");
  }
  return {
    config,
    secrets: {
      initial,
      read: (name) => {
        const path = env[`${name}_FILE`];
        return path === undefined ? Promise.resolve(undefined) : readTextFile(path);
      },
      close: () => {},
    },
  };
}

/** Starts re-reading `secrets` every SECRETS_RELOAD_MS, applying changes with `apply`. */
export function watchSecrets(
  config: Config,
  secrets: SecretSource,
  apply: (name: string, value: unknown) => void,
  log: Logger,
) {
  return startSecretReloader({
    read: (name) => secrets.read(name),
    initial: secrets.initial,
    apply,
    intervalMs: config.secrets.reloadMs,
    appEnv: config.env,
    log,
  });
}

/**
 * {@linkcode loadConfigAndSecrets} for an entry point: configuration problems
 * (including an unreadable AWS secret) are printed as one list and exit 2.
 */
export async function loadConfigAndSecretsOrExit(
  env: Record<string, string | undefined>,
  service: string,
): Promise<{ config: Config; secrets: SecretSource }> {
  try {
    return await loadConfigAndSecrets(env, {
      log: createLogger({ level: "info", fields: { service } }),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      Deno.exit(2);
    }
    throw err;
  }
}
