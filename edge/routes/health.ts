/**
 * Liveness and readiness.
 *
 * `/health` does no I/O: it says the process is up, so an orchestrator does
 * not restart a healthy instance because a dependency is down. `/ready` checks
 * each dependency with a short timeout, so a load balancer can route around an
 * instance that cannot serve.
 *
 * @module
 */
import { Hono } from "hono";
import type { Deps } from "../../shared/deps.ts";
import type { AppEnv } from "../app_env.ts";
import { problem } from "../problem.ts";

/** Result of one dependency check. */
export interface CheckResult {
  ok: boolean;
  latency_ms: number;
  error?: string;
}

async function timed(
  check: () => Promise<unknown>,
  timeoutMs: number,
  now: () => number,
): Promise<CheckResult> {
  const started = now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, latency_ms: now() - started };
  } catch (err) {
    // Short reason only: the full error (which may include hosts) goes to the log.
    const reason = err instanceof Error && /no answer within/.test(err.message)
      ? err.message
      : "unreachable";
    return { ok: false, latency_ms: now() - started, error: reason };
  } finally {
    clearTimeout(timer);
  }
}

/** Checks Redis and Postgres concurrently. */
export async function checkDependencies(deps: Deps): Promise<Record<string, CheckResult>> {
  const timeout = deps.config.readyTimeoutMs;
  const [redis, postgres] = await Promise.all([
    timed(
      async () => {
        const pong = await deps.redis.ping();
        if (pong !== "PONG") throw new Error(`unexpected PING reply ${pong}`);
      },
      timeout,
      deps.now,
    ),
    timed(() => deps.sql.query("SELECT 1"), timeout, deps.now),
  ]);
  return { redis, postgres };
}

/** How old a readiness answer may be: a flood of `/ready` costs at most one check per second. */
export const READY_MAX_AGE_MS = 1000;

/**
 * `checkDependencies` shared by concurrent callers and reused while at most
 * `maxAgeMs` old (by `deps.now`, measured from when the check started).
 */
export function sharedReadiness(
  deps: Deps,
  maxAgeMs = READY_MAX_AGE_MS,
): () => Promise<Record<string, CheckResult>> {
  let last: { at: number; result: Promise<Record<string, CheckResult>> } | null = null;
  return () => {
    const now = deps.now();
    if (last === null || now - last.at >= maxAgeMs || now < last.at) {
      last = { at: now, result: checkDependencies(deps) };
    }
    return last.result;
  };
}

/** `GET /health` and `GET /ready`. */
export function healthRoutes(deps: Deps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const readiness = sharedReadiness(deps);
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/ready", async (c) => {
    const checks = await readiness();
    const failed = Object.entries(checks).filter(([, r]) => !r.ok).map(([name]) => name);
    if (failed.length === 0) return c.json({ status: "ready", checks });
    c.get("log").warn("not ready", { failed, checks });
    return problem(c, {
      code: "not-ready",
      status: 503,
      title: "Service not ready",
      detail: `Unavailable: ${failed.join(", ")}`,
      failed,
      checks,
    }, { "Retry-After": "5" });
  });
  return app;
}
