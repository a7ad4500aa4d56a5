/**
 * The dev env file: `deno task dev` writes the local stack's connection
 * settings to it (mode 0600) and removes it when it stops, so that the
 * operator tools (`deno task migrate`, `deno task seed`, `deno task dlq`)
 * reach the running dev stack without copying variables around.
 *
 * Precedence: an explicit target always wins and is never mixed with the
 * dev stack's. The file is used only when neither `UPSTASH_REDIS_REST_URL`
 * nor `DATABASE_URL` is set in the environment; then its variables fill the
 * ones the environment leaves unset. A file whose writer is no longer running
 * (a dev task killed with SIGKILL) is stale and ignored, with a note.
 *
 * @module
 */
import { DEV_ENV_FILE_DEFAULT } from "./core.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Variables that name a target: set in the environment, the file is not used. */
export const TARGET_VARIABLES = ["UPSTASH_REDIS_REST_URL", "DATABASE_URL"] as const;

/** The file's path: `DEV_ENV_FILE`, relative paths from the repository root. */
export function devEnvFilePath(env: Record<string, string | undefined>): string {
  const name = env.DEV_ENV_FILE || DEV_ENV_FILE_DEFAULT;
  return name.startsWith("/") ? name : `${ROOT}${name}`;
}

/** What the file holds. */
export interface DevEnvFile {
  /** Process id of the dev task that wrote it; null when the header is missing. */
  pid: number | null;
  vars: Record<string, string>;
}

const HEADER = /^# written by deno task dev, pid (\d+)/;

/** The file's text: a header naming the writer, then `NAME=value` lines (shell-sourceable). */
export function formatDevEnvFile(vars: Record<string, string>, pid: number, now: Date): string {
  const lines = Object.entries(vars).map(([k, v]) => `${k}='${v.replaceAll("'", `'\\''`)}'`);
  return `# written by deno task dev, pid ${pid}, ${now.toISOString()}; removed when it stops\n` +
    `# (shared/config/dev_env_file.ts). Precedence: docs/operations.md#the-dev-env-file\n` +
    `${lines.join("\n")}\n`;
}

/** Parses {@linkcode formatDevEnvFile}'s text (also plain unquoted `NAME=value` lines). */
export function parseDevEnvFile(text: string): DevEnvFile {
  const pid = HEADER.exec(text)?.[1];
  const vars: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!m) continue;
    const raw = m[2]!;
    vars[m[1]!] = raw.startsWith("'") && raw.endsWith("'") && raw.length >= 2
      ? raw.slice(1, -1).replaceAll(`'\\''`, "'")
      : raw;
  }
  return { pid: pid === undefined ? null : Number(pid), vars };
}

/** True while process `pid` exists (Linux: /proc; elsewhere assumed alive). */
export function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return Deno.build.os !== "linux";
    return true;
  }
}

/** Writes the file atomically with mode 0600 (it holds the stack's credentials). */
export async function writeDevEnvFile(
  path: string,
  vars: Record<string, string>,
  options: { pid?: number; now?: Date } = {},
): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  await Deno.writeTextFile(
    tmp,
    formatDevEnvFile(vars, options.pid ?? Deno.pid, options.now ?? new Date()),
    { mode: 0o600 },
  );
  try {
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Removes the file if `pid` wrote it (another dev task may have replaced it); true if removed. */
export async function removeDevEnvFile(path: string, pid: number = Deno.pid): Promise<boolean> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return false;
  }
  if (parseDevEnvFile(text).pid !== pid) return false;
  await Deno.remove(path).catch(() => {});
  return true;
}

/** The environment a tool runs with, and what it should tell the user about the file. */
export interface ToolEnvironment {
  env: Record<string, string>;
  /** The file used, null when none was. */
  file: string | null;
  /** One line for stderr, null when there is nothing to say. */
  note: string | null;
}

/** Applies the dev env file to `env` per the precedence above. */
export function withDevEnvFile(
  env: Record<string, string>,
  options: { read?: (path: string) => string; alive?: (pid: number) => boolean } = {},
): ToolEnvironment {
  const path = devEnvFilePath(env);
  if (TARGET_VARIABLES.some((name) => env[name])) return { env, file: null, note: null };
  let text: string;
  try {
    text = (options.read ?? Deno.readTextFileSync)(path);
  } catch {
    return { env, file: null, note: null };
  }
  const file = parseDevEnvFile(text);
  if (file.pid === null || !(options.alive ?? processAlive)(file.pid)) {
    return {
      env,
      file: null,
      note: `Ignoring ${path}: the deno task dev that wrote it is no longer running`,
    };
  }
  return {
    env: { ...file.vars, ...env },
    file: path,
    note: `Using the dev stack of deno task dev (pid ${file.pid}) from ${path}`,
  };
}

/** The process environment with the dev env file applied (`deno task migrate|seed|dlq`). */
export function readToolEnvironment(): ToolEnvironment {
  const result = withDevEnvFile(Deno.env.toObject());
  if (result.note !== null) console.error(result.note);
  return result;
}
