import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createRedis } from "../deps.ts";
import { createLogger } from "../log.ts";
import { createQueue, type TaskQueue } from "../queue/queue.ts";
import { namespaceKeys, TEST_CATALOG, testQueue } from "../../testing/queue.ts";
import { type Schedule, slotAt, slotStart } from "./schedule.ts";
import { Scheduler, type SchedulerOptions } from "./scheduler.ts";
import { readScheduleStates } from "./state.ts";
import { fakeClock } from "../../testing/clock.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The test stack may be private to this file (child processes, async teardown).
const opts = noSanitizers;

const MINUTE = 60_000;
const T0 = Date.UTC(2030, 0, 1, 12, 0, 0, 250);

function minutely(overrides: Partial<Schedule> = {}): Schedule {
  return {
    name: "echo_every_minute",
    taskType: "echo",
    payload: { n: 1 },
    everyMs: MINUTE,
    offsetMs: 0,
    enabled: true,
    ...overrides,
  };
}

function scheduler(
  queue: TaskQueue,
  schedules: Schedule[],
  options: Partial<SchedulerOptions> & { logs?: string[] } = {},
): Scheduler {
  const logs = options.logs ?? [];
  return new Scheduler({
    queue,
    schedules,
    log: createLogger({ level: "debug", write: (l) => logs.push(l) }),
    ...options,
  });
}

/** Idempotency key → how many tasks carry it, over the whole namespace. */
async function tasksByKey(queue: TaskQueue): Promise<Map<string, number>> {
  const ids = (await namespaceKeys(queue))
    .filter((k) => k.startsWith(queue.ctx.keys.task("")))
    .map((k) => k.slice(queue.ctx.keys.task("").length));
  const counts = new Map<string, number>();
  for (const id of ids) {
    const key = (await queue.getTask(id))!.idempotencyKey;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

Deno.test({
  name: "Scheduler",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const { config } = stack.makeDeps();

    await t.step(
      "three schedulers racing on one clock enqueue exactly one task per slot",
      async () => {
        // A 1 ms idempotency window: only the schedule's own record can keep
        // slots from being enqueued twice.
        const first = testQueue(createRedis(config.redis), { idempotencyWindowMs: 1 });
        const queues = [
          first,
          createQueue(createRedis(config.redis), TEST_CATALOG, first.ctx.settings),
          createQueue(createRedis(config.redis), TEST_CATALOG, first.ctx.settings),
        ];
        const clock = fakeClock(T0);
        const schedulers = queues.map((q) => scheduler(q, [minutely()], { now: clock.now }));
        const enqueuedBy: number[] = [0, 0, 0];
        const slots = new Set<number>();
        // 12 slots, each ticked 4 times by all three at once.
        for (let step = 0; step < 48; step++) {
          const outcomes = await Promise.all(schedulers.map((s) => s.tick()));
          outcomes.forEach((list, i) => {
            for (const o of list) {
              slots.add(o.slot);
              if (o.enqueued) enqueuedBy[i]! += 1;
            }
          });
          clock.advance(MINUTE / 4);
        }
        assert.equal(slots.size, 12);
        assert.equal(enqueuedBy.reduce((a, b) => a + b), 12, `per scheduler: ${enqueuedBy}`);
        const counts = await tasksByKey(first);
        assert.equal(counts.size, 12);
        for (const slot of slots) {
          assert.equal(counts.get(`schedule:echo_every_minute:${slot}`), 1, `slot ${slot}`);
        }
        assert.equal((await first.stats()).enqueued, 12);

        // A scheduler that starts afresh (nothing cached) in the last slot,
        // long after the idempotency keys expired, enqueues nothing.
        clock.advance(-MINUTE / 4);
        const late = scheduler(queues[1]!, [minutely()], { now: clock.now });
        const [again] = await late.tick();
        assert.equal(again?.enqueued, false);
        assert.equal((await first.stats()).enqueued, 12);
      },
    );

    await t.step("the task carries the payload, catalog policy and slot key", async () => {
      const queue = testQueue(createRedis(config.redis));
      const clock = fakeClock(T0);
      const [outcome] = await scheduler(queue, [minutely({ payload: { n: 7 } })], {
        now: clock.now,
      }).tick();
      const slot = slotAt(minutely(), T0);
      assert.deepEqual({ ...outcome, taskId: "" }, {
        schedule: "echo_every_minute",
        slot,
        taskId: "",
        enqueued: true,
        missed: 0,
      });
      const info = await queue.getTask(outcome!.taskId);
      assert.equal(info?.type, "echo");
      assert.deepEqual(info?.payload, { n: 7 });
      assert.equal(info?.status, "pending");
      assert.equal(info?.idempotencyKey, `schedule:echo_every_minute:${slot}`);
      assert.equal(info?.maxAttempts, TEST_CATALOG.echo.maxAttempts);
      assert.equal(info?.timeoutMs, TEST_CATALOG.echo.timeoutMs);
      const state = (await readScheduleStates(queue, ["echo_every_minute"])).get(
        "echo_every_minute",
      )!;
      assert.equal(state.lastSlot, slot);
      assert.equal(state.lastSlotAt, slotStart(minutely(), slot));
      assert.equal(state.lastTaskId, outcome!.taskId);
      assert.equal(state.nextRunAt, slotStart(minutely(), slot + 1));
      assert.equal(state.runs, 1);
      assert.ok(state.lastEnqueuedAt !== null && state.lastEnqueuedAt > 0);
    });

    await t.step("after a 10-slot gap the missed work is enqueued once", async () => {
      const queue = testQueue(createRedis(config.redis));
      const clock = fakeClock(T0);
      const logs: string[] = [];
      const s = scheduler(queue, [minutely()], { now: clock.now, logs });
      await s.tick();
      const before = slotAt(minutely(), clock.now());
      // Workers down for 10 minutes, then three of them come back together.
      clock.advance(10 * MINUTE);
      const comeback = [s, scheduler(queue, [minutely()], { now: clock.now })];
      const outcomes = (await Promise.all(comeback.map((x) => x.tick()))).flat();
      assert.deepEqual(outcomes.filter((o) => o.enqueued).map((o) => [o.slot, o.missed]), [
        [before + 10, 9],
      ]);
      for (let i = 0; i < 5; i++) {
        clock.advance(MINUTE / 10);
        await Promise.all(comeback.map((x) => x.tick()));
      }
      assert.equal((await queue.stats()).enqueued, 2);
      assert.deepEqual([...(await tasksByKey(queue)).keys()].sort(), [
        `schedule:echo_every_minute:${before}`,
        `schedule:echo_every_minute:${before + 10}`,
      ]);
      const state = (await readScheduleStates(queue, ["echo_every_minute"])).get(
        "echo_every_minute",
      )!;
      assert.equal(state.runs, 2);
      assert.equal(state.missedSlots, 9);
      assert.ok(
        logs.some((l) => l.includes("schedule caught up") && l.includes('"missed_slots":9')),
      );
    });

    await t.step("a disabled schedule enqueues nothing and writes nothing", async () => {
      const queue = testQueue(createRedis(config.redis));
      const clock = fakeClock(T0);
      const s = scheduler(queue, [minutely({ enabled: false })], { now: clock.now });
      assert.deepEqual(s.schedules, []);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await s.tick(), []);
        clock.advance(MINUTE);
      }
      assert.deepEqual(await namespaceKeys(queue), []);
    });

    await t.step(
      "an unknown task type is a clear error at startup and the other schedules still run",
      async () => {
        const queue = testQueue(createRedis(config.redis));
        const logs: string[] = [];
        const s = scheduler(queue, [
          minutely({ name: "metrics", taskType: "refresh_lead_metrics" }),
          minutely(),
        ], { now: fakeClock().now, logs });
        assert.deepEqual(s.schedules, ["echo_every_minute"]);
        assert.equal(s.invalid.length, 1);
        assert.equal(s.invalid[0]!.name, "InvalidScheduleError");
        assert.equal(
          s.invalid[0]!.message,
          'Schedule "metrics" cannot run: unknown task type "refresh_lead_metrics" (known: echo, loose, slow)',
        );
        const errors = logs.map((l) => JSON.parse(l)).filter((l) => l.level === "error");
        assert.equal(errors.length, 1, "logged once, when the scheduler was built");
        assert.equal(errors[0].schedule, "metrics");
        assert.equal(errors[0].err.message, s.invalid[0]!.message);
        assert.deepEqual((await s.tick()).map((o) => o.schedule), ["echo_every_minute"]);
      },
    );

    await t.step("a longer interval waits for its first slot after the last run", async () => {
      const queue = testQueue(createRedis(config.redis));
      const clock = fakeClock(Date.UTC(2030, 0, 1, 12, 0, 30));
      await scheduler(queue, [minutely()], { now: clock.now }).tick();
      // Reconfigured to daily at 03:00: today's 03:00 slot is older than the last run.
      const daily = minutely({ everyMs: 86_400_000, offsetMs: 3 * 3_600_000 });
      const s = scheduler(queue, [daily], { now: clock.now });
      assert.equal((await s.tick())[0]?.enqueued, false);
      clock.set(Date.UTC(2030, 0, 2, 3, 0, 1));
      const [next] = await s.tick();
      assert.equal(next?.enqueued, true);
      assert.equal(slotStart(daily, next!.slot), Date.UTC(2030, 0, 2, 3, 0));
      assert.equal((await queue.stats()).enqueued, 2);
    });

    await t.step("start() ticks at once and stop() waits for that tick", async () => {
      const queue = testQueue(createRedis(config.redis));
      const s = scheduler(queue, [minutely()], { now: fakeClock().now, tickMs: 60_000 });
      s.start();
      await s.stop();
      assert.equal((await queue.stats()).enqueued, 1);
      assert.throws(() => s.start(), /twice/);
    });

    await t.step("a failed call is logged and retried on the next tick", async () => {
      const queue = testQueue(createRedis({ url: "http://127.0.0.1:1", token: "x" }));
      const logs: string[] = [];
      const s = scheduler(queue, [minutely()], { now: fakeClock().now, logs });
      assert.deepEqual(await s.tick(), []);
      assert.ok(logs.some((l) => l.includes("retrying next tick")));
    });
  },
});
