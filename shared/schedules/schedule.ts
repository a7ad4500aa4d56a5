/**
 * Recurring schedules: the model, the slot arithmetic and the `SCHEDULES`
 * configuration format.
 *
 * A schedule runs a catalog task every `everyMs`, shifted by `offsetMs`, in
 * slots aligned to the epoch: slot k covers `[offset + k·every, offset +
 * (k+1)·every)`. "Every minute" is `every_ms: 60000`; "daily at 03:00 UTC" is
 * `every_ms: 86400000, offset_ms: 10800000`.
 *
 * @module
 */
import { z } from "zod";

/** One recurring task. */
export interface Schedule {
  /** Stable name; part of the Redis key and of each slot's idempotency key. */
  name: string;
  taskType: string;
  payload: unknown;
  everyMs: number;
  /** Shift of the slot grid, `0 <= offsetMs < everyMs`. @default 0 */
  offsetMs: number;
  /** A disabled schedule enqueues nothing (it is still listed). @default true */
  enabled: boolean;
}

/** Shortest interval: the scheduler ticks about once a second. */
export const MIN_EVERY_MS = 1_000;

const NAME = /^[a-z][a-z0-9_-]{0,62}$/;

/** One schedule as written in `SCHEDULES` (snake_case like the other JSON settings). */
export const ScheduleSpecSchema = z.object({
  task_type: z.string().regex(/^[a-z][a-z0-9_.-]{0,99}$/, "expected a task type name"),
  payload: z.unknown().default({}),
  every_ms: z.number().int().min(MIN_EVERY_MS).max(366 * 86_400_000),
  offset_ms: z.number().int().min(0).default(0),
  enabled: z.boolean().default(true),
}).strict().refine((s) => s.offset_ms < s.every_ms, {
  message: "offset_ms must be smaller than every_ms",
  path: ["offset_ms"],
});

/** A schedule as written in configuration. */
export type ScheduleSpec = z.input<typeof ScheduleSpecSchema>;

/**
 * The schedules a worker runs unless `SCHEDULES` changes them. Their task
 * types come from the analytics work (issue #7); until the catalog has them
 * the scheduler skips them with an ERROR log, so they are safe to ship first.
 */
export const DEFAULT_SCHEDULES: Readonly<Record<string, ScheduleSpec>> = {
  refresh_lead_metrics: { task_type: "refresh_lead_metrics", payload: {}, every_ms: 60_000 },
  apply_retention: {
    task_type: "apply_retention",
    payload: {},
    every_ms: 86_400_000,
    offset_ms: 3 * 3_600_000,
  },
  // Weekly, Sundays at 04:00 UTC (the epoch fell on a Thursday: +3 days).
  retrain_lead_model: {
    task_type: "retrain_lead_model",
    payload: { trigger: "schedule" },
    every_ms: 7 * 86_400_000,
    offset_ms: 3 * 86_400_000 + 4 * 3_600_000,
  },
};

/**
 * Parses `SCHEDULES`: a JSON object of name → schedule, merged per name over
 * {@linkcode DEFAULT_SCHEDULES} (so `{"apply_retention":{"enabled":false}}`
 * turns one default off). Returns every problem, not just the first.
 */
export function parseSchedules(
  text: string,
): { schedules: Schedule[] } | { problems: string[] } {
  let raw: unknown;
  try {
    raw = text.trim() === "" ? {} : JSON.parse(text);
  } catch {
    return { problems: ["expected a JSON object of schedules"] };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { problems: ["expected a JSON object of schedules"] };
  }
  const merged: Record<string, unknown> = { ...DEFAULT_SCHEDULES };
  for (const [name, value] of Object.entries(raw)) {
    const base = Object.hasOwn(DEFAULT_SCHEDULES, name) ? DEFAULT_SCHEDULES[name] : {};
    merged[name] = typeof value === "object" && value !== null && !Array.isArray(value)
      ? { ...base, ...value }
      : value;
  }
  const schedules: Schedule[] = [];
  const problems: string[] = [];
  for (const [name, value] of Object.entries(merged)) {
    if (!NAME.test(name)) {
      problems.push(`${JSON.stringify(name)}: a name is lower case letters, digits, _ or -`);
      continue;
    }
    const parsed = ScheduleSpecSchema.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        problems.push(`${[name, ...issue.path.map(String)].join(".")}: ${issue.message}`);
      }
      continue;
    }
    const s = parsed.data;
    schedules.push({
      name,
      taskType: s.task_type,
      payload: s.payload,
      everyMs: s.every_ms,
      offsetMs: s.offset_ms,
      enabled: s.enabled,
    });
  }
  return problems.length > 0 ? { problems } : { schedules };
}

/** The slot that contains `t` (epoch ms). */
export function slotAt(schedule: Pick<Schedule, "everyMs" | "offsetMs">, t: number): number {
  return Math.floor((t - schedule.offsetMs) / schedule.everyMs);
}

/** When `slot` starts (epoch ms). */
export function slotStart(schedule: Pick<Schedule, "everyMs" | "offsetMs">, slot: number): number {
  return schedule.offsetMs + slot * schedule.everyMs;
}

/** The idempotency key of one slot's task: the same in every worker. */
export function slotIdempotencyKey(name: string, slot: number): string {
  return `schedule:${name}:${slot}`;
}
