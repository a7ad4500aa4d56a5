/**
 * Test helpers for the route suites that go through the whole gateway: an
 * app on the test stack with a queue in a private namespace (no worker
 * claims its tasks), bearer tokens, a request helper, and leads that are
 * cleaned up afterwards. Imported by `_test.ts` files only.
 *
 * @module
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { mintDevToken } from "../../dev/token.ts";
import type { TestStack } from "../../dev/test_stack.ts";
import type { Deps } from "../../shared/deps.ts";
import type { Lead } from "../../shared/leads/lead.ts";
import { createLead } from "../../shared/leads/repository.ts";
import { createQueue, type QueueSettings, type TaskQueue } from "../../shared/queue/queue.ts";
import { TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import { type AppEnv, createApp } from "../app.ts";

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
export interface RouteHarness {
  deps: Deps & { logs: string[] };
  queue: TaskQueue;
  app: OpenAPIHono<AppEnv>;
  tokens: { minerva: string; operator: string; viewer: string };
  call(method: string, path: string, options?: CallOptions): Promise<Response>;
  /** A lead in a city unique to this harness; deleted by `cleanup()`. */
  lead(fields: { name: string; email?: string | null }): Promise<Lead>;
  /** A string unique to this harness, for names, cities and addresses. */
  run: string;
  /** Deletes the leads made by `lead()` with their events and appointments. */
  cleanup(): Promise<void>;
}

/** Options of {@linkcode routeHarness}. */
export interface HarnessOptions {
  /** Environment overrides for `makeDeps` (rate limits are generous by default). */
  env?: Record<string, string>;
  /** Queue settings over the config's (the namespace is always private). */
  queue?: Partial<QueueSettings>;
  /** Clock of the app's deps. @default Date.now */
  now?: () => number;
}

/** Builds the harness. */
export async function routeHarness(
  stack: TestStack,
  options: HarnessOptions = {},
): Promise<RouteHarness> {
  const made = stack.makeDeps(options.env);
  const deps = options.now ? { ...made, now: options.now } : made;
  const queue = createQueue(deps.redis, TASK_CATALOG, {
    ...deps.config.queue,
    ...options.queue,
    namespace: `r${crypto.randomUUID().slice(0, 8)}`,
  });
  const app = createApp(deps, { queue });
  const token = async (sub: string, roles: ("operator" | "viewer")[] = []) =>
    `Bearer ${await mintDevToken(deps.config.auth, { sub, roles })}`;
  const tokens = {
    minerva: await token("sa:minerva"),
    operator: await token("u-operator", ["operator"]),
    viewer: await token("u-viewer", ["viewer"]),
  };
  const run = crypto.randomUUID().slice(0, 8);
  const ids: string[] = [];

  return {
    deps,
    queue,
    app,
    tokens,
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
  };
}
