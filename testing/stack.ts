/**
 * The stack a test file talks to. Under `deno task test` the
 * runner has started one shared, migrated stack and exported its settings
 * (PCOVE_SHARED_STACK=1); a test file run on its own starts (and migrates)
 * a private one.
 *
 * @module
 */
import { parseConfig, readEnvironment } from "../shared/config/mod.ts";
import { createRedis, type Deps } from "../shared/deps.ts";
import { createMetrics } from "../shared/metrics/metrics.ts";
import { poolFor } from "../shared/db/pool.ts";
import { createLogger } from "../shared/log.ts";
import { migrateStack } from "../dev/migrate_stack.ts";
import { settingsToEnv, type StackSettings, startStack } from "../dev/stack.ts";

const TEST_RATE_LIMITS = JSON.stringify({
  default: { limit: 1_000_000, window_s: 60 },
  admin: { limit: 1_000_000, window_s: 60 },
  anonymous: { limit: 1_000_000, window_s: 60 },
});

/** A stack for tests plus a way to build app deps against it. */
export interface TestStack extends AsyncDisposable {
  readonly settings: StackSettings;
  /** Deps as production builds them (pool + Upstash client); logs are captured in `logs`. */
  makeDeps(overrides?: Record<string, string>): Deps & { logs: string[] };
  /** Environment variables for a child process (edge/worker) against this stack. */
  env(): Record<string, string>;
  stop(): Promise<void>;
}

/** Uses the runner's shared stack, or starts a private one. */
export async function useTestStack(): Promise<TestStack> {
  const env = readEnvironment();
  let settings: StackSettings;
  let stopStack: () => Promise<void> = () => Promise.resolve();
  if (env.PCOVE_SHARED_STACK === "1") {
    const config = parseConfig(env);
    settings = {
      redis: config.redis,
      database: config.database,
      local: true,
    };
  } else {
    const stack = await startStack();
    stopStack = () => stack.stop();
    try {
      await migrateStack(stack.settings);
    } catch (err) {
      await stack.stop();
      throw err;
    }
    settings = stack.settings;
  }
  const pools: { end(): Promise<void> }[] = [];
  const stop = async () => {
    await Promise.allSettled(pools.map((p) => p.end()));
    await stopStack();
  };
  return {
    settings,
    // Worker processes of the suites share one Postgres: their default
    // retention schedule would delete other suites' old events.
    env: () => ({
      ...settingsToEnv(settings),
      SCHEDULES: JSON.stringify({
        apply_retention: { enabled: false },
        // Training would write a champion into the shared database (every suite's leads).
        retrain_lead_model: { enabled: false },
      }),
    }),
    makeDeps(overrides = {}) {
      const config = parseConfig({
        ...settingsToEnv(settings),
        APP_ENV: "test",
        // Suites run in parallel against one Redis with the same dev
        // principals (sa:minerva, …): production-sized limits would let one
        // suite's traffic turn another's requests into 429s. Tests of rate
        // limiting set RATE_LIMITS themselves.
        RATE_LIMITS: TEST_RATE_LIMITS,
        ...overrides,
      });
      const logs: string[] = [];
      const log = createLogger({ level: "debug", write: (l) => logs.push(l) });
      const sql = poolFor(config.database, {
        max: 2,
        connectionTimeoutMillis: 2000,
        onError: () => {},
      });
      pools.push(sql);
      return {
        config,
        redis: createRedis(config.redis),
        sql,
        log,
        now: Date.now,
        metrics: createMetrics(),
        logs,
      };
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
