/**
 * The scheduler: runs in every worker process and enqueues each slot of each
 * schedule once, however many workers run.
 *
 * - Once per slot: one script call (enqueue_slot.lua) checks that the slot
 *   starts after the schedule's recorded last slot, enqueues the task with
 *   the key `schedule:<name>:<slot>` and records the slot, atomically. The
 *   record has no expiry and only moves forward, so the guarantee holds
 *   beyond the queue's idempotency window (which is a second guard).
 * - Catch-up: a tick always asks for the CURRENT slot, so after downtime the
 *   missed slots are covered by one task (the latest slot), not one each;
 *   the script counts the skipped slots.
 * - Cheap: each process remembers the latest slot it knows to be done and
 *   calls Redis only when a schedule enters a new slot (one call per
 *   schedule, slot and process); a tick is otherwise arithmetic.
 * - Clock: slots come from the injected `now`. Workers with skewed clocks
 *   can enqueue a slot up to the skew early, never twice (the record is
 *   monotonic); the task's own times come from the Redis clock.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { scheduleKeys } from "../redis/keys.ts";
import type { TaskQueue } from "../queue/queue.ts";
import { type Schedule, slotAt, slotIdempotencyKey, slotStart } from "./schedule.ts";
import { type InvalidScheduleError, resolveSchedules, type RunnableSchedule } from "./validate.ts";
import { ENQUEUE_SLOT } from "../redis/script_codes.ts";

/** Options of {@linkcode Scheduler}. */
export interface SchedulerOptions {
  queue: TaskQueue;
  schedules: readonly Schedule[];
  log: Logger;
  /** Clock in epoch ms. @default Date.now */
  now?: () => number;
  /** Time between ticks of {@linkcode Scheduler.start}. @default 1_000 */
  tickMs?: number;
}

/** What one tick did for one schedule that entered a new slot. */
export interface SlotOutcome {
  schedule: string;
  slot: number;
  /** The slot's task (the existing one when another scheduler enqueued it). */
  taskId: string;
  /** True when THIS call enqueued the slot. */
  enqueued: boolean;
  /** Slots skipped since the previous one (downtime), caught up by this one task. */
  missed: number;
}

/** Enqueues schedule slots; see the module documentation. */
export class Scheduler {
  /** Enabled schedules that cannot run with this catalog (logged as errors at construction). */
  readonly invalid: readonly InvalidScheduleError[];
  readonly #queue: TaskQueue;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #tickMs: number;
  readonly #runnable: readonly RunnableSchedule[];
  readonly #keys: ReturnType<typeof scheduleKeys>;
  /** Per schedule, the latest slot known to be enqueued (by any process). */
  readonly #done = new Map<string, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ticking: Promise<unknown> | null = null;
  #started = false;
  #stopped = false;

  constructor(options: SchedulerOptions) {
    const tickMs = options.tickMs ?? 1_000;
    if (!Number.isInteger(tickMs) || tickMs < 1) {
      throw new RangeError(
        `Cannot build a scheduler: tickMs must be a positive integer, got ${tickMs}`,
      );
    }
    this.#queue = options.queue;
    this.#log = options.log.child({ component: "scheduler" });
    this.#now = options.now ?? Date.now;
    this.#tickMs = tickMs;
    this.#keys = scheduleKeys(options.queue.ctx.settings.namespace);
    const { runnable, invalid } = resolveSchedules(options.schedules, options.queue.ctx.catalog, {
      maxPayloadBytes: options.queue.ctx.settings.maxPayloadBytes,
    });
    this.#runnable = runnable;
    this.invalid = invalid;
    for (const err of invalid) {
      this.#log.error("schedule skipped: it cannot run with this task catalog", {
        schedule: err.schedule,
        task_type: err.taskType,
        err,
      });
    }
  }

  /** Names of the schedules this scheduler runs. */
  get schedules(): string[] {
    return this.#runnable.map((s) => s.name);
  }

  /**
   * Enqueues the current slot of every schedule that entered a new one.
   * Never throws: a failed call is logged and retried on the next tick.
   */
  async tick(): Promise<SlotOutcome[]> {
    const now = this.#now();
    const due = this.#runnable
      .map((schedule) => ({ schedule, slot: slotAt(schedule, now) }))
      .filter(({ schedule, slot }) => slot > (this.#done.get(schedule.name) ?? -Infinity));
    // Issued together, so the auto-pipelining client sends one request.
    const outcomes = await Promise.all(
      due.map(({ schedule, slot }) =>
        this.#enqueueSlot(schedule, slot).catch((err) => {
          this.#log.warn("schedule slot not enqueued; retrying next tick", {
            schedule: schedule.name,
            slot,
            err,
          });
          return null;
        })
      ),
    );
    return outcomes.filter((o): o is SlotOutcome => o !== null);
  }

  /** Ticks now and then every `tickMs` until {@linkcode Scheduler.stop}. */
  start(): void {
    if (this.#started) throw new Error("Cannot start a scheduler twice");
    this.#started = true;
    if (this.#runnable.length === 0) return;
    const loop = () => {
      this.#ticking = this.tick().catch((err) => {
        this.#log.error("scheduler tick failed", { err });
      }).finally(() => {
        this.#ticking = null;
        if (!this.#stopped) this.#timer = setTimeout(loop, this.#tickMs);
      });
    };
    loop();
    this.#log.info("scheduler started", { schedules: this.schedules, tick_ms: this.#tickMs });
  }

  /** Stops ticking and waits for a tick in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#ticking;
  }

  async #enqueueSlot(schedule: RunnableSchedule, slot: number): Promise<SlotOutcome> {
    const { ctx } = this.#queue;
    const k = ctx.keys;
    const slotAtMs = slotStart(schedule, slot);
    const task = {
      id: crypto.randomUUID(),
      type: schedule.taskType,
      payload: schedule.payloadJson,
      priority: schedule.priority,
      idem: slotIdempotencyKey(schedule.name, slot),
      delay_ms: 0,
      run_at: null,
      max_attempts: schedule.maxAttempts,
      timeout_ms: schedule.timeoutMs,
      traceparent: null,
    };
    const [status, taskId, , missed] = await ctx.scripts.enqueueSlot.run<
      [number, string, number, number]
    >(
      [
        k.ready("high"),
        k.ready("normal"),
        k.ready("low"),
        k.delayed,
        k.stats,
        this.#keys.state(schedule.name),
      ],
      [
        k.prefix,
        ctx.settings.idempotencyWindowMs,
        k.notifyChannel,
        JSON.stringify([task]),
        slot,
        slotAtMs,
        schedule.everyMs,
        schedule.offsetMs,
        schedule.taskType,
        ctx.feedSpec,
      ],
    );
    this.#done.set(schedule.name, Math.max(slot, this.#done.get(schedule.name) ?? slot));
    const outcome: SlotOutcome = {
      schedule: schedule.name,
      slot,
      taskId: String(taskId),
      enqueued: Number(status) === ENQUEUE_SLOT.enqueued,
      missed: Number(missed),
    };
    if (outcome.enqueued) {
      const fields = {
        schedule: schedule.name,
        task_type: schedule.taskType,
        slot,
        slot_at: new Date(slotAtMs).toISOString(),
        task_id: outcome.taskId,
      };
      if (outcome.missed > 0) {
        this.#log.warn("schedule caught up: missed slots enqueued once", {
          ...fields,
          missed_slots: outcome.missed,
        });
      } else this.#log.info("schedule slot enqueued", fields);
    }
    return outcome;
  }
}
