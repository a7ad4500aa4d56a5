/**
 * Checks schedules against the task catalog once, when a scheduler (or the
 * schedules route) is built: the task type must exist and the payload must
 * pass its schema. The payload is serialised here, once, for every slot.
 *
 * @module
 */
import type { Priority } from "../redis/keys.ts";
import { canonicalJson } from "../queue/canonical_json.ts";
import type { TaskCatalog } from "../tasks/catalog.ts";
import type { Schedule } from "./schedule.ts";

/** A schedule that cannot run with this catalog; the scheduler logs it and skips it. */
export class InvalidScheduleError extends Error {
  override name = "InvalidScheduleError";
  /** The schedule at fault. */
  readonly schedule: string;
  /** The task type it names. */
  readonly taskType: string;
  constructor(schedule: Schedule, reason: string, options: { cause?: unknown } = {}) {
    super(`Schedule "${schedule.name}" cannot run: ${reason}`, options);
    this.schedule = schedule.name;
    this.taskType = schedule.taskType;
  }
}

/** An enabled, valid schedule with what each of its enqueues needs. */
export interface RunnableSchedule extends Schedule {
  /** Canonical JSON of the validated payload. */
  payloadJson: string;
  priority: Priority;
  maxAttempts: number;
  timeoutMs: number;
}

/** The outcome of {@linkcode resolveSchedules}. */
export interface ResolvedSchedules {
  /** Enabled schedules that can run, in configuration order. */
  runnable: RunnableSchedule[];
  /** Enabled schedules that cannot run, with the reason. */
  invalid: InvalidScheduleError[];
}

/** Options of {@linkcode resolveSchedules}. */
export interface ResolveOptions {
  /** The queue's payload limit. @default 262_144 */
  maxPayloadBytes?: number;
}

/**
 * Splits the enabled schedules into runnable and invalid ones (disabled
 * schedules are in neither: they do not run, whatever they name).
 */
export function resolveSchedules(
  schedules: readonly Schedule[],
  catalog: TaskCatalog,
  options: ResolveOptions = {},
): ResolvedSchedules {
  const maxPayloadBytes = options.maxPayloadBytes ?? 256 * 1024;
  const runnable: RunnableSchedule[] = [];
  const invalid: InvalidScheduleError[] = [];
  const names = new Set<string>();
  for (const schedule of schedules) {
    if (names.has(schedule.name)) {
      throw new TypeError(`Cannot resolve schedules: "${schedule.name}" appears twice`);
    }
    names.add(schedule.name);
    if (!schedule.enabled) continue;
    const def = Object.hasOwn(catalog, schedule.taskType) ? catalog[schedule.taskType] : undefined;
    if (!def) {
      invalid.push(
        new InvalidScheduleError(
          schedule,
          `unknown task type "${schedule.taskType}" (known: ${Object.keys(catalog).join(", ")})`,
        ),
      );
      continue;
    }
    const parsed = def.schema.safeParse(schedule.payload);
    if (!parsed.success) {
      const fields = parsed.error.issues.map((i) =>
        `${i.path.map(String).join(".") || "(root)"}: ${i.message}`
      );
      invalid.push(
        new InvalidScheduleError(
          schedule,
          `invalid payload for task "${schedule.taskType}": ${fields.join("; ")}`,
          { cause: parsed.error },
        ),
      );
      continue;
    }
    let payloadJson: string;
    try {
      payloadJson = canonicalJson(parsed.data);
    } catch (err) {
      invalid.push(
        new InvalidScheduleError(schedule, "payload is not serialisable", { cause: err }),
      );
      continue;
    }
    const bytes = new TextEncoder().encode(payloadJson).length;
    if (bytes > maxPayloadBytes) {
      invalid.push(
        new InvalidScheduleError(
          schedule,
          `payload is ${bytes} bytes; the limit is ${maxPayloadBytes}`,
        ),
      );
      continue;
    }
    runnable.push({
      ...schedule,
      payloadJson,
      priority: def.priority,
      maxAttempts: def.maxAttempts,
      timeoutMs: def.timeoutMs,
    });
  }
  return { runnable, invalid };
}
