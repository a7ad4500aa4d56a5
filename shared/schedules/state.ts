/**
 * What Redis records about each schedule (written only by enqueue_slot.lua),
 * and the status view `GET /v1/schedules` shows.
 *
 * @module
 */
import { scheduleKeys } from "../redis/keys.ts";
import { hashGetAll, type TaskQueue } from "../queue/queue.ts";
import { type Schedule, slotAt, slotStart } from "./schedule.ts";
import type { InvalidScheduleError } from "./validate.ts";

/** The recorded state of one schedule; all null/0 before its first slot. */
export interface ScheduleState {
  lastSlot: number | null;
  /** Start of the last enqueued slot (epoch ms). */
  lastSlotAt: number | null;
  lastTaskId: string | null;
  /** When that slot was enqueued, by the Redis clock (epoch ms). */
  lastEnqueuedAt: number | null;
  /** Start of the slot after the last one, as recorded with it (epoch ms). */
  nextRunAt: number | null;
  /** Slots enqueued. */
  runs: number;
  /** Slots skipped by catch-up after downtime (each gap enqueued once). */
  missedSlots: number;
}

function num(v: string | undefined): number | null {
  if (v === undefined || v === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** Reads the state of the named schedules (one pipelined round trip). */
export async function readScheduleStates(
  queue: TaskQueue,
  names: readonly string[],
): Promise<Map<string, ScheduleState>> {
  const keys = scheduleKeys(queue.ctx.settings.namespace);
  const hashes = await Promise.all(names.map((n) => hashGetAll(queue.ctx.redis, keys.state(n))));
  return new Map(names.map((name, i) => {
    const h = hashes[i]!;
    return [name, {
      lastSlot: num(h.last_slot),
      lastSlotAt: num(h.last_slot_at),
      lastTaskId: h.last_task_id || null,
      lastEnqueuedAt: num(h.last_enqueued_at),
      nextRunAt: num(h.next_run_at),
      runs: num(h.runs) ?? 0,
      missedSlots: num(h.missed_slots) ?? 0,
    }];
  }));
}

/**
 * When the schedule enqueues next (epoch ms): the first slot that starts
 * after the last enqueued one, on the CURRENT grid (so a changed interval is
 * reflected at once); the current slot's start when it never ran. A value in
 * the past means the slot is due, or overdue when no worker is running.
 */
export function nextRunAt(schedule: Schedule, state: ScheduleState, now: number): number {
  if (state.lastSlotAt === null) return slotStart(schedule, slotAt(schedule, now));
  return slotStart(schedule, slotAt(schedule, state.lastSlotAt) + 1);
}

/** One schedule as the operations API shows it. */
export interface ScheduleStatus {
  schedule: Schedule;
  status: "active" | "disabled" | "invalid";
  /** Why an enabled schedule cannot run (unknown task type, invalid payload). */
  problem: string | null;
  state: ScheduleState;
  /** Null unless the schedule is active. */
  nextRunAt: number | null;
}

/** Options of {@linkcode describeSchedules}. */
export interface DescribeOptions {
  /** Every configured schedule, disabled ones included. */
  schedules: readonly Schedule[];
  /** The invalid ones, from `resolveSchedules` (validate.ts; run once, not per call). */
  invalid: readonly InvalidScheduleError[];
  /** Epoch ms. */
  now: number;
}

/** Every configured schedule with its recorded state, in configuration order. */
export async function describeSchedules(
  queue: TaskQueue,
  options: DescribeOptions,
): Promise<ScheduleStatus[]> {
  const problems = new Map(options.invalid.map((e) => [e.schedule, e.message]));
  const states = await readScheduleStates(queue, options.schedules.map((s) => s.name));
  return options.schedules.map((schedule) => {
    const state = states.get(schedule.name)!;
    const problem = problems.get(schedule.name) ?? null;
    const status = !schedule.enabled ? "disabled" : problem !== null ? "invalid" : "active";
    return {
      schedule,
      status,
      problem,
      state,
      nextRunAt: status === "active" ? nextRunAt(schedule, state, options.now) : null,
    };
  });
}
