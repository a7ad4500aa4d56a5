/**
 * Recurring schedules (admin and operator, see edge/auth/policy.ts):
 * `GET /v1/schedules` lists every configured schedule with its last and next
 * run, read from the state the workers' schedulers record in Redis.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { DependencyUnavailableError } from "../../shared/errors.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import type { Schedule } from "../../shared/schedules/schedule.ts";
import { describeSchedules, type ScheduleStatus } from "../../shared/schedules/state.ts";
import { resolveSchedules } from "../../shared/schedules/validate.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import { problemResponses } from "./schemas.ts";

const time = z.string().nullable();

const ScheduleSchema = z.object({
  name: z.string(),
  task_type: z.string(),
  every_ms: z.number().int().openapi({ description: "Interval; slots are aligned to the epoch" }),
  offset_ms: z.number().int().openapi({ description: "Shift of the slot grid (03:00 = 10800000)" }),
  enabled: z.boolean(),
  status: z.enum(["active", "disabled", "invalid"]).openapi({
    description: "`invalid`: enabled but the workers skip it (see `problem`)",
  }),
  problem: z.string().nullable(),
  last_slot: z.number().int().nullable(),
  last_run_at: time.openapi({ description: "Start of the last enqueued slot" }),
  last_enqueued_at: time.openapi({ description: "When that slot was enqueued (Redis clock)" }),
  last_task_id: z.string().nullable(),
  next_run_at: time.openapi({
    description: "Start of the next slot; in the past when due or when no worker is running",
  }),
  runs: z.number().int().openapi({ description: "Slots enqueued" }),
  missed_slots: z.number().int().openapi({
    description: "Slots skipped after downtime (each gap was caught up by one task)",
  }),
}).openapi("Schedule");

const listRoute = createRoute({
  method: "get",
  path: "/v1/schedules",
  operationId: "listSchedules",
  tags: ["operations"],
  summary: "Recurring schedules with their last and next run (admin, operator)",
  security: [{ bearer: [] }],
  responses: {
    200: {
      description: "The schedules, in configuration order",
      content: {
        "application/json": { schema: z.object({ schedules: z.array(ScheduleSchema) }) },
      },
    },
    ...problemResponses(401, 403, 429, 503),
  },
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function view(s: ScheduleStatus) {
  return {
    name: s.schedule.name,
    task_type: s.schedule.taskType,
    every_ms: s.schedule.everyMs,
    offset_ms: s.schedule.offsetMs,
    enabled: s.schedule.enabled,
    status: s.status,
    problem: s.problem,
    last_slot: s.state.lastSlot,
    last_run_at: iso(s.state.lastSlotAt),
    last_enqueued_at: iso(s.state.lastEnqueuedAt),
    last_task_id: s.state.lastTaskId,
    next_run_at: iso(s.nextRunAt),
    runs: s.state.runs,
    missed_slots: s.state.missedSlots,
  };
}

/** Options of {@linkcode scheduleRoutes}. */
export interface ScheduleRoutesOptions {
  queue: TaskQueue;
  /** The configured schedules (`Config.schedules`). */
  schedules: readonly Schedule[];
  /** Clock in epoch ms. @default Date.now */
  now?: () => number;
}

/**
 * Routes of `/v1/schedules`. The schedules are checked against the queue's
 * catalog once, here, exactly as the workers' schedulers check them.
 */
export function scheduleRoutes(options: ScheduleRoutesOptions): OpenAPIHono<AppEnv> {
  const { queue, schedules } = options;
  const now = options.now ?? Date.now;
  const { invalid } = resolveSchedules(schedules, queue.catalog, {
    maxPayloadBytes: queue.settings.maxPayloadBytes,
  });
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(listRoute, async (c) => {
    let list: ScheduleStatus[];
    try {
      list = await describeSchedules(queue, { schedules, invalid, now: now() });
    } catch (err) {
      throw new DependencyUnavailableError("Cannot read the schedules' state from Redis", {
        cause: err,
      });
    }
    return c.json({ schedules: list.map(view) }, 200);
  });
  return app;
}
