/**
 * The configuration: the only module (with its area modules beside it) that
 * reads the environment. `parseConfig(env)` validates every variable with
 * zod, reads secrets from `NAME` or `NAME_FILE` (mounted secret files), and
 * throws ONE `ConfigError` listing every problem. Secret values never appear
 * in messages.
 *
 * Each area module (core.ts, redis.ts, database.ts, queue.ts, …) declares its
 * variables once and maps them into its part of {@linkcode Config}, whose type
 * is inferred from those mappings; rules.ts holds the rules that span areas.
 * The declarations are also the source of the configuration reference in
 * docs/configuration.md (`deno task config:docs`), and a test checks the two
 * agree.
 *
 * @module
 */
import type { z } from "zod";
import { ConfigError } from "../errors.ts";
import { AREAS, type Config, type ConfigValues, VARIABLES } from "./areas.ts";
import { crossAreaProblems, deploymentProblems } from "./rules.ts";
import type { VariableSpec } from "./spec.ts";
import type { DatabaseTarget } from "./database.ts";

export { AREAS, type Config, type ConfigValues, VARIABLES } from "./areas.ts";
export { activeDevSecrets } from "./rules.ts";
export type { VariableSpec } from "./spec.ts";
export { edgeBaseUrl, isLoopbackHost } from "./core.ts";
export { DEV_HS256_KEY, DEV_HS256_KID } from "./auth.ts";
export { DEV_UNSUBSCRIBE_SECRET } from "./email.ts";
export type { DatabaseTarget } from "./database.ts";
export {
  DEFAULT_RATE_LIMIT_LEASE,
  DEFAULT_RATE_LIMIT_TIMEOUT_MS,
  leaseSettingsOf,
  type RateLimitLease,
  type RateLimitPolicy,
} from "./rate_limits.ts";

/** Options for {@linkcode parseConfig}. */
export interface ParseConfigOptions {
  /** Reads a `NAME_FILE` secret. @default Deno.readTextFileSync */
  readTextFile?: (path: string) => string;
}

function describeIssue(issue: z.core.$ZodIssue, raw: string, secret: boolean): string {
  const shown = secret
    ? ""
    : ` (got ${JSON.stringify(raw.length > 80 ? raw.slice(0, 80) + "…" : raw)})`;
  return `${issue.message}${shown}`;
}

/**
 * Validates `env` and returns the typed configuration; throws one
 * {@linkcode ConfigError} naming every invalid or missing variable.
 */
export function parseConfig(
  env: Record<string, string | undefined>,
  options: ParseConfigOptions = {},
): Config {
  const readTextFile = options.readTextFile ?? ((p: string) => Deno.readTextFileSync(p));
  const problems: string[] = [];
  const values: Record<string, unknown> = {};

  for (const spec of VARIABLES) {
    let raw = env[spec.name];
    if (spec.secret) {
      const file = env[`${spec.name}_FILE`];
      if (file !== undefined && raw !== undefined) {
        problems.push(`${spec.name}: set either ${spec.name} or ${spec.name}_FILE, not both`);
        continue;
      }
      if (file !== undefined) {
        try {
          // Mounted secrets usually end with a newline that is not part of the value.
          raw = readTextFile(file).replace(/\r?\n$/, "");
        } catch (err) {
          const reason = err instanceof Error ? err.name : "unreadable";
          problems.push(`${spec.name}_FILE: cannot read ${JSON.stringify(file)} (${reason})`);
          continue;
        }
      }
      // A secret set to nothing (an empty variable, an empty mounted file) is
      // a deployment mistake where there is a default to fall back to: that
      // would silently put a published development key in charge. An optional
      // secret without a default (a provider key a deployment does not use)
      // has nothing to fall back to: empty is unset, which is how a mounted
      // secret with every key says "not used" (docs/deploying.md).
      const nothingToFallBackTo = spec.optional === true && spec.default === undefined;
      if (raw !== undefined && raw.trim() === "" && nothingToFallBackTo) raw = "";
      else if (raw !== undefined && raw.trim() === "") {
        problems.push(
          `${spec.name}${
            file !== undefined ? "_FILE" : ""
          }: empty (a secret must have a value; unset it to use the default)`,
        );
        continue;
      }
    }
    if (raw === undefined || raw === "") {
      if (spec.default !== undefined) raw = spec.default;
      else if (spec.optional) {
        values[spec.name] = undefined;
        continue;
      } else {
        problems.push(
          `${spec.name}: missing (${spec.description}${
            spec.secret ? `; or set ${spec.name}_FILE` : ""
          })`,
        );
        continue;
      }
    }
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) values[spec.name] = parsed.data;
    else {
      problems.push(`${spec.name}: ${describeIssue(parsed.error.issues[0]!, raw, !!spec.secret)}`);
    }
  }
  problems.push(...crossAreaProblems(env, values as Partial<ConfigValues>));
  if (problems.length > 0) throw new ConfigError(problems);

  const all = values as ConfigValues & Record<string, unknown>;
  return Object.assign({}, ...AREAS.map((area) => area.build(all))) as Config;
}

/**
 * Validates a new value of secret variable `name` (a rotation picked up at run
 * time) with the same schema as at start. The problem never includes the value.
 */
export function parseSecretValue(
  name: string,
  text: string,
  appEnv: Config["env"],
): { ok: true; value: unknown } | { ok: false; problem: string } {
  const spec = VARIABLES.find((s) => s.name === name && s.secret);
  if (!spec) return { ok: false, problem: `${name}: not a secret variable` };
  const parsed = spec.schema.safeParse(text.replace(/\r?\n$/, ""));
  if (!parsed.success) {
    return { ok: false, problem: `${name}: ${describeIssue(parsed.error.issues[0]!, "", true)}` };
  }
  // The same refusals as at start (e.g. a development key in production).
  const [problem] = deploymentProblems({ APP_ENV: appEnv }, {
    APP_ENV: appEnv,
    [name]: parsed.data,
  });
  return problem === undefined ? { ok: true, value: parsed.data } : { ok: false, problem };
}

/** Reads the process environment; the one place that calls `Deno.env`. */
export function loadConfig(): Config {
  return parseConfig(Deno.env.toObject());
}

/** A copy of the process environment, for tools that pass it to parseConfig or child processes. */
export function readEnvironment(): Record<string, string> {
  return Deno.env.toObject();
}

function referenceEntry(s: VariableSpec): string {
  const def = s.default === undefined
    ? (s.optional ? "Unset by default." : "**Required.**")
    : s.default === ""
    ? "Default: empty."
    : `Default: \`${s.default}\`.`;
  const secret = s.secret ? ` Secret: may come from the file named by \`${s.name}_FILE\`.` : "";
  return `- \`${s.name}\` — ${s.description}. ${def}${secret}`;
}

/**
 * The configuration reference of docs/configuration.md: one heading per area
 * module and one list entry per variable, rendered from the declarations.
 */
export function renderConfigReference(): string {
  return AREAS.map((area) => {
    const entries = VARIABLES.filter((s) => s.area === area.title).map(referenceEntry);
    return `### ${area.title}\n\n${entries.join("\n")}`;
  }).join("\n\n");
}

/** Externally configured services, as the dev stack needs to know them. */
export interface ConfiguredServices {
  redis: { url: string; token: string; tcpUrl: string | null };
  databaseUrl: string;
  /** How to reach it: the `NEON_*` settings (a local WebSocket proxy, or real Neon). */
  database: DatabaseTarget;
}

/**
 * The services named by `UPSTASH_REDIS_REST_URL`/`_TOKEN` and `DATABASE_URL`
 * (secrets may come from `_FILE`), or null when none is set — then the dev
 * stack starts its own. Some but not all set, or invalid values, throw a
 * ConfigError.
 */
export function configuredServices(
  env: Record<string, string | undefined>,
  options: ParseConfigOptions = {},
): ConfiguredServices | null {
  const has = (name: string) => !!env[name] || !!env[`${name}_FILE`];
  const names = ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "DATABASE_URL"];
  const missing = names.filter((n) => !has(n));
  if (missing.length === names.length) return null;
  if (missing.length > 0) {
    // Half-configured is almost always a mistake; starting a local Redis next
    // to a production database would be worse than failing.
    throw new ConfigError(
      missing.map((n) => `${n}: missing (set all of ${names.join(", ")} or none of them)`),
    );
  }
  const config = parseConfig(env, options);
  const { url, wsProxy, useSecureWebSocket, pipelineConnect } = config.database;
  return {
    redis: config.redis,
    databaseUrl: url,
    database: { url, wsProxy, useSecureWebSocket, pipelineConnect },
  };
}
