/**
 * Calling task handlers directly in tests: a hand-built task context, the
 * send_email settings the tests share, and a pool that counts the statements
 * a handler sends.
 *
 * @module
 */
import type { Pool, PoolClient } from "@neondatabase/serverless";
import type { Deps } from "../shared/deps.ts";
import type { TaskContext } from "../workers/runner.ts";
import type { SendEmailServices } from "../workers/tasks/send_email.ts";

/** The context of a task's first attempt (no enqueue time: handlers use now). */
export function taskContext(deps: Deps, taskId: string): TaskContext {
  return {
    deps,
    taskId,
    attempt: 1,
    leaseToken: "t",
    signal: new AbortController().signal,
    log: deps.log,
  };
}

/** send_email's services for tests, sending through `provider`. */
export function testEmailServices(provider: SendEmailServices["provider"]): SendEmailServices {
  return {
    provider,
    from: "Pleasant Cove <hello@pleasantcove.test>",
    messageIdDomain: "pleasantcove.test",
    unsubscribeSecret: "test-unsubscribe-secret-0123456789",
    publicBaseUrl: "http://127.0.0.1:8787",
  };
}

/**
 * A view of `pool` that counts every statement sent through it: its own
 * queries and those of the clients it hands out (BEGIN and COMMIT included).
 */
export function countingPool(pool: Pool): { pool: Pool; statements: () => number } {
  let statements = 0;
  const counted = <T extends { query: unknown }>(target: T): T =>
    new Proxy(target, {
      get(t, key) {
        if (key !== "query") {
          const value = Reflect.get(t, key, t);
          return typeof value === "function" ? value.bind(t) : value;
        }
        return (...args: unknown[]) => {
          statements++;
          return (t.query as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    });
  const view = counted(pool);
  const connect = () => pool.connect().then((client: PoolClient) => counted(client));
  return {
    pool: new Proxy(view, {
      get: (t, key) => key === "connect" ? connect : Reflect.get(t, key),
    }),
    statements: () => statements,
  };
}
