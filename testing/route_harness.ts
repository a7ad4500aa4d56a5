/**
 * Test helpers for the route suites that go through the whole gateway: an
 * app on the test stack with a queue in a private namespace (no worker
 * claims its tasks), optionally a started breaker registry in the same
 * namespace, bearer tokens, a request helper, and leads that are cleaned up
 * afterwards.
 *
 * @module
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { mintDevToken } from "../dev/token.ts";
import type { TestStack } from "./stack.ts";
import { type BreakerRegistry, createBreakerRegistry } from "../shared/breakers/registry.ts";
import type { Deps } from "../shared/deps.ts";
import type { Lead } from "../shared/leads/lead.ts";
import { createLead } from "../shared/leads/repository.ts";
import { createQueue, type QueueSettings, type TaskQueue } from "../shared/queue/queue.ts";
import type { LeadScorer } from "../shared/scoring/champion.ts";
import { TASK_CATALOG } from "../shared/tasks/catalog.ts";
import { createApp } from "../edge/app.ts";
import type { AppEnv } from "../edge/app_env.ts";
import assert from "node:assert/strict";
import { runTag, testNamespace } from "./namespace.ts";

/** Options of one {@linkcode RouteHarness.call}. */
export interface CallOptions {
  /** `Authorization` value; `null` sends none. @default the sa:minerva token */
  auth?: string | null;
  /** Sent as JSON with `Content-Type: application/json`. */
  json?: unknown;
  /** A raw body (with `type` as its Content-Type). */
  body?: BodyInit;
  type?: string;
  headers?: Record<string, string>;
}

/** An app on the test stack plus what tests need around it. */
export interface RouteHarness extends AsyncDisposable {
  deps: Deps & { logs: string[] };
  queue: TaskQueue;
  /** The app's breaker registry, started; `null` unless `breakers: true` was asked for. */
  breakers: BreakerRegistry | null;
  app: OpenAPIHono<AppEnv>;
  tokens: { minerva: string; operator: string; viewer: string };
  /** Mints another `Bearer …` value for `sub` with `roles`. */
  token(sub: string, roles?: ("admin" | "operator" | "viewer")[]): Promise<string>;
  call(method: string, path: string, options?: CallOptions): Promise<Response>;
  /** A lead in a city unique to this harness; deleted by `cleanup()`. */
  lead(fields: { name: string; email?: string | null }): Promise<Lead>;
  /** A string unique to this harness, for names, cities and addresses. */
  run: string;
  /** Deletes the leads made by `lead()` with their events and appointments. */
  cleanup(): Promise<void>;
  /** Stops the breaker registry, if any (also what `await using` calls); idempotent. */
  stop(): Promise<void>;
}

/** Options of {@linkcode routeHarness}. */
export interface HarnessOptions {
  /** Environment overrides for `makeDeps` (rate limits are generous by default). */
  env?: Record<string, string>;
  /** Queue settings over the config's (the namespace is always private). */
  queue?: Partial<QueueSettings>;
  /** Clock of the app's deps. @default Date.now */
  now?: () => number;
  /**
   * Starts a breaker registry with the config's policies in the queue's
   * namespace (shared by no other suite) and hands it to the app.
   * @default false
   */
  breakers?: boolean;
  /** The app's lead scorer (e.g. `trainedChampions` from testing/scoring.ts). @default none */
  scorer?: LeadScorer;
}

/** A harness built with `breakers: true`. */
export type BreakerHarness = RouteHarness & { breakers: BreakerRegistry };

/** Builds the harness; `await using` it (or call `stop()`) when it has breakers. */
export function routeHarness(
  stack: TestStack,
  options: HarnessOptions & { breakers: true },
): Promise<BreakerHarness>;
export function routeHarness(
  stack: TestStack,
  options?: HarnessOptions,
): Promise<RouteHarness>;
export async function routeHarness(
  stack: TestStack,
  options: HarnessOptions = {},
): Promise<RouteHarness> {
  const made = stack.makeDeps(options.env);
  const deps = options.now ? { ...made, now: options.now } : made;
  const namespace = testNamespace("r");
  const queue = createQueue(deps.redis, TASK_CATALOG, {
    ...deps.config.queue,
    ...options.queue,
    namespace,
  });
  const token = async (sub: string, roles: ("admin" | "operator" | "viewer")[] = []) =>
    `Bearer ${await mintDevToken(deps.config.auth, { sub, roles })}`;
  const tokens = {
    minerva: await token("sa:minerva"),
    operator: await token("u-operator", ["operator"]),
    viewer: await token("u-viewer", ["viewer"]),
  };
  // Started last, so that nothing above can fail with its subscription open.
  const breakers = options.breakers
    ? createBreakerRegistry({
      redis: deps.redis,
      policies: deps.config.breakerPolicies,
      namespace,
      flushMs: 5,
    })
    : null;
  await breakers?.start();
  const app = createApp(deps, {
    queue,
    ...(breakers ? { breakers } : {}),
    ...(options.scorer ? { scorer: options.scorer } : {}),
  });
  const run = runTag();
  const ids: string[] = [];
  let stopped: Promise<void> | null = null;
  const stop = () => stopped ??= breakers?.stop() ?? Promise.resolve();

  return {
    deps,
    queue,
    breakers,
    app,
    tokens,
    token,
    run,
    call(method, path, o = {}) {
      const auth = o.auth === undefined ? tokens.minerva : o.auth;
      const headers: Record<string, string> = {
        ...(auth === null ? {} : { authorization: auth }),
        ...(o.json !== undefined ? { "content-type": "application/json" } : {}),
        ...(o.type !== undefined ? { "content-type": o.type } : {}),
        ...o.headers,
      };
      const body = o.json !== undefined ? JSON.stringify(o.json) : o.body;
      return Promise.resolve(app.request(path, { method, headers, body }));
    },
    async lead(fields) {
      const lead = await createLead(deps.sql, {
        name: fields.name,
        city: `Routetown-${run}`,
        email: fields.email ?? null,
        source: "api",
      }, "test");
      ids.push(lead.id);
      return lead;
    },
    async cleanup() {
      if (ids.length === 0) return;
      await deps.sql.query("DELETE FROM appointments WHERE business_id = ANY($1::uuid[])", [ids]);
      await deps.sql.query("DELETE FROM lead_events WHERE lead_id = ANY($1::uuid[])", [ids]);
      await deps.sql.query("DELETE FROM businesses WHERE id = ANY($1::uuid[])", [ids]);
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** RATE_LIMITS where an address gets 3 anonymous requests a minute (principals plenty). */
export const THREE_ANONYMOUS_RATE_LIMITS = JSON.stringify({
  default: { limit: 100_000, window_s: 60 },
  anonymous: { limit: 3, window_s: 60 },
});

/**
 * Asserts the shape of a client address running out of a limit of 3 within a
 * window: `allowed` answers, then only 429s, the first 429 by the 4th request
 * at the latest. Callers without a socket (app.request) share one "unknown"
 * address, which parallel suites on the shared stack may have charged too,
 * so the exact count of `allowed` answers is not asserted.
 */
export function assertThrottledAfterThree(statuses: number[], allowed: number): void {
  const first429 = statuses.indexOf(429);
  assert.ok(first429 >= 0 && first429 <= 3, `statuses ${statuses}`);
  assert.ok(statuses.slice(0, first429).every((s) => s === allowed), `statuses ${statuses}`);
  assert.ok(statuses.slice(first429).every((s) => s === 429), `statuses ${statuses}`);
}
