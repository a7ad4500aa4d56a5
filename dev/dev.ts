/**
 * `deno task dev [--seed[=N]] [--data-dir <path>]`: local stack (or the
 * configured services; with `--data-dir`, its Redis and PostgreSQL data kept
 * in that directory across runs) → migrations → (with `--seed`, the demo data set of `deno task seed`, seed N,
 * default 1) → edge + worker, in one log stream. Prints the URLs and a curl
 * example. Ctrl-C (or SIGTERM) stops everything it started.
 *
 * The edge and the worker are supervised (dev/supervisor.ts): one that
 * exits or is killed is restarted with backoff and the restart is logged;
 * the stack and its data stay up meanwhile (docs/reliability.md).
 *
 * @module
 */
import { edgeBaseUrl, parseConfig, readEnvironment } from "../shared/config/mod.ts";
import { ConfigError } from "../shared/errors.ts";
import { denoRunArgs } from "./app_permissions.ts";
import { MissingBinaryError } from "./binaries.ts";
import { forEachLine } from "./lines.ts";
import { settingsToEnv, type Stack, startStack } from "./stack.ts";
import {
  devEnvFilePath,
  removeDevEnvFile,
  writeDevEnvFile,
} from "../shared/config/dev_env_file.ts";
import { migrateStack } from "./migrate_stack.ts";
import { mintDevToken } from "./token.ts";
import { poolFor } from "../shared/db/pool.ts";
import { seedDatabase } from "./seed.ts";
import { supervise, type Supervised } from "./supervisor.ts";

const ROOT = new URL("../", import.meta.url).pathname;

function say(message: string): void {
  console.error(`[dev] ${message}`);
}

/** Copies a child's output to ours line by line, watching for `onLine` matches. */
function pipeLines(
  stream: ReadableStream<Uint8Array>,
  out: { writeSync(p: Uint8Array): number },
  onLine: (line: string) => void,
): Promise<void> {
  const encoder = new TextEncoder();
  return forEachLine(stream, (line) => {
    out.writeSync(encoder.encode(line + "\n"));
    onLine(line);
  });
}

/** The command line of `deno task dev`. */
export interface DevArgs {
  /** `--seed` / `--seed=N`: the demo data seed; null without the flag. */
  seed: number | null;
  /** `--data-dir <path>` / `--data-dir=<path>`: where the local stack keeps its data; null: a temp directory. */
  dataDir: string | null;
}

const USAGE = "usage: deno task dev [--seed[=N]] [--data-dir <path>]";

/** Parses the flags; TypeError with the usage line on anything else. */
export function parseDevArgs(args: readonly string[]): DevArgs {
  const out: DevArgs = { seed: null, dataDir: null };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const seed = /^--seed(?:=(\d{1,10}))?$/.exec(a);
    if (seed) {
      out.seed = seed[1] === undefined ? 1 : Number(seed[1]);
      continue;
    }
    const dir = /^--data-dir(?:=(.*))?$/.exec(a);
    if (dir) {
      const path = dir[1] ?? args[++i];
      if (path === undefined || path === "" || path.startsWith("--")) {
        throw new TypeError(`--data-dir needs a path (${USAGE})`);
      }
      out.dataDir = path;
      continue;
    }
    throw new TypeError(`Unknown argument ${JSON.stringify(a)} (${USAGE})`);
  }
  return out;
}

async function main(): Promise<number> {
  let args: DevArgs;
  try {
    args = parseDevArgs(Deno.args);
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  const { seed, dataDir } = args;
  const env = readEnvironment();
  let stack: Stack;
  try {
    stack = await startStack({ env, onProgress: say, ...(dataDir === null ? {} : { dataDir }) });
  } catch (err) {
    if (err instanceof MissingBinaryError || err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  if (dataDir !== null && !stack.settings.local) {
    console.error(
      "--data-dir keeps the LOCAL stack's data; the configured services keep their own",
    );
    await stack.stop();
    return 2;
  }
  say(
    !stack.settings.local
      ? "using the configured services"
      : dataDir === null
      ? "local stack started (data in a temp directory, removed on exit)"
      : `local stack started (data kept in ${stack.dir})`,
  );

  const children: Supervised[] = [];
  let shuttingDown = false;
  // The stack's settings for `deno task migrate|seed|dlq` (only a local stack's: configured
  // services' credentials are the caller's and stay in its environment).
  const envFile = stack.settings.local ? devEnvFilePath(env) : null;
  const shutdown = async (code: number) => {
    if (shuttingDown) return code;
    shuttingDown = true;
    say("stopping…");
    // First: from here on, the settings it holds stop working.
    if (envFile !== null && await removeDevEnvFile(envFile)) say(`removed ${envFile}`);
    await Promise.allSettled(children.map((c) => c.stop()));
    await stack.stop();
    say("stopped");
    return code;
  };

  try {
    if (envFile !== null) {
      await writeDevEnvFile(envFile, settingsToEnv(stack.settings));
      say(`env     ${envFile} (the stack's settings for deno task migrate, seed and dlq)`);
    }
    const applied = await migrateStack(stack.settings);
    say(`migrations applied: ${applied.length === 0 ? "none pending" : applied.join(", ")}`);
    if (seed !== null) {
      const pool = poolFor(stack.settings.database, { max: 2 });
      try {
        const day = new Date();
        day.setUTCHours(0, 0, 0, 0);
        const summary = await seedDatabase(pool, { seed, leads: 5000, now: day.getTime() });
        say(`demo data seeded: ${JSON.stringify(summary.inserted)}`);
      } finally {
        await pool.end();
      }
    }
  } catch (err) {
    // The Neon driver rejects with a WebSocket ErrorEvent (not an Error) when
    // it cannot connect; its `message` is the readable part.
    const message = (err as { message?: unknown })?.message;
    console.error(typeof message === "string" && message !== "" ? message : String(err));
    return await shutdown(1);
  }

  // The dev stack runs with the published development keys: say so explicitly
  // (an APP_ENV given by the caller wins, and production refuses those keys).
  const childEnv: Record<string, string> = {
    ...env,
    APP_ENV: env.APP_ENV || "development",
    ...settingsToEnv(stack.settings),
  };
  const edgeUrl = Promise.withResolvers<string>();
  const metricsUrls: Record<"edge" | "worker", PromiseWithResolvers<string | null>> = {
    edge: Promise.withResolvers(),
    worker: Promise.withResolvers(),
  };
  const start = (entry: string, permissions: string[] = []) => () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: denoRunArgs(entry, permissions),
      cwd: ROOT,
      env: childEnv,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const watch = (line: string) => {
      const admin = line.includes('"edge admin listening"')
        ? metricsUrls.edge
        : line.includes('"worker admin listening"')
        ? metricsUrls.worker
        : null;
      if (!admin && !line.includes('"edge listening"')) return;
      try {
        const parsed = JSON.parse(line);
        if (admin) admin.resolve(parsed.metrics ?? null);
        else edgeUrl.resolve(parsed.url);
      } catch {
        // not a JSON line
      }
    };
    pipeLines(child.stdout, Deno.stdout, watch).catch(() => {});
    pipeLines(child.stderr, Deno.stderr, () => {}).catch(() => {});
    return child;
  };

  // The worker writes only where the file email provider puts its .eml files.
  const emailDir = parseConfig(childEnv).email.dir;
  const outbox = emailDir.startsWith("/") ? emailDir : `${ROOT}${emailDir}`;
  await Deno.mkdir(outbox, { recursive: true });
  say(`outbox  ${outbox} (EMAIL_PROVIDER=${parseConfig(childEnv).email.provider})`);
  children.push(supervise({ name: "edge", spawn: start("edge/main.ts"), log: say }));
  // Links in emails (unsubscribe) must reach this edge: unless PUBLIC_BASE_URL
  // is given, the worker starts once the edge reports the address it listens
  // on (EDGE_PORT may be 0 or taken by another dev stack's default).
  (env.PUBLIC_BASE_URL ? Promise.resolve(null) : edgeUrl.promise).then((url) => {
    if (shuttingDown) return;
    if (url !== null) {
      const { hostname, port } = new URL(url);
      childEnv.PUBLIC_BASE_URL = edgeBaseUrl(hostname.replace(/^\[|\]$/g, ""), Number(port));
      say(`links   ${childEnv.PUBLIC_BASE_URL} (PUBLIC_BASE_URL, from the edge's address)`);
    }
    children.push(supervise({
      name: "worker",
      spawn: start("workers/main.ts", [`--allow-write=${outbox}`]),
      log: say,
    }));
  });
  const done = Promise.withResolvers<number>();
  const onSignal = () => shutdown(0).then(done.resolve);
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  edgeUrl.promise.then(async (url) => {
    let token = "";
    try {
      token = await mintDevToken(parseConfig(childEnv).auth, {
        sub: "sa:minerva",
        ttlS: 12 * 3600,
      });
    } catch {
      // configured keys may not allow minting (e.g. JWKS only); the /ready example still works
    }
    say("ready:");
    say(`  edge   ${url}`);
    const env = parseConfig(childEnv).env;
    say(`  console ${url}/console${env === "production" ? "" : " (one-click dev sign-in)"}`);
    say(`  redis  ${stack.settings.redis.url} (Upstash REST)`);
    if (stack.settings.database.wsProxy) say(`  neon   ws://${stack.settings.database.wsProxy}`);
    say(`try:  curl -i ${url}/ready`);
    if (token) {
      say(`      curl -s ${url}/v1/me -H "Authorization: Bearer ${token}"`);
      say(
        `      curl -s -X POST ${url}/v1/tasks -H "Authorization: Bearer ${token}" ` +
          `-H "Content-Type: application/json" -H "Idempotency-Key: $(date +%s%N)" ` +
          `-d '{"type":"noop","payload":{"echo":"hello"}}'`,
      );
    }
    say(`docs: ${url}/docs`);
    if (envFile !== null) say(`tools: deno task migrate | seed | dlq list  (settings: ${envFile})`);
    // Both admin listeners log before the edge serves its API; never wait on a dead worker.
    for (const [name, found] of Object.entries(metricsUrls)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const metrics = await Promise.race([
        found.promise,
        new Promise<null>((r) => timer = setTimeout(() => r(null), 2_000)),
      ]);
      clearTimeout(timer);
      if (metrics) say(`metrics (${name}): ${metrics}`);
    }
    say("Ctrl-C stops everything.");
  });

  const code = await done.promise;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  return code;
}

if (import.meta.main) Deno.exit(await main());
