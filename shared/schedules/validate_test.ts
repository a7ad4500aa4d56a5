import assert from "node:assert/strict";
import { z } from "zod";
import { task } from "../tasks/catalog.ts";
import { InvalidScheduleError, resolveSchedules } from "./validate.ts";

const MINUTE = 60_000;

Deno.test("resolveSchedules() skips disabled schedules and explains the invalid ones", () => {
  const catalog = {
    ping: task(z.object({ n: z.number().int() }).strict()),
  };
  const base = { payload: { n: 1 }, everyMs: MINUTE, offsetMs: 0, enabled: true };
  const { runnable, invalid } = resolveSchedules([
    { ...base, name: "ok", taskType: "ping" },
    { ...base, name: "ghost", taskType: "refresh_lead_metrics" },
    { ...base, name: "off", taskType: "refresh_lead_metrics", enabled: false },
    { ...base, name: "bad", taskType: "ping", payload: { n: "one" } },
    { ...base, name: "proto", taskType: "toString" },
  ], catalog);
  assert.deepEqual(runnable.map((s) => [s.name, s.payloadJson, s.priority, s.maxAttempts]), [
    ["ok", '{"n":1}', "normal", 3],
  ]);
  assert.deepEqual(invalid.map((e) => e.schedule), ["ghost", "bad", "proto"]);
  assert.ok(invalid.every((e) => e instanceof InvalidScheduleError));
  assert.equal(
    invalid[0]!.message,
    'Schedule "ghost" cannot run: unknown task type "refresh_lead_metrics" (known: ping)',
  );
  assert.match(
    invalid[1]!.message,
    /^Schedule "bad" cannot run: invalid payload for task "ping": n:/,
  );
  assert.throws(
    () =>
      resolveSchedules([{ ...base, name: "x", taskType: "ping" }, {
        ...base,
        name: "x",
        taskType: "ping",
      }], catalog),
    TypeError,
  );
});

Deno.test("resolveSchedules() refuses a payload above the queue's limit", () => {
  const catalog = { blob: task(z.object({ text: z.string() })) };
  const { runnable, invalid } = resolveSchedules(
    [
      {
        name: "big",
        taskType: "blob",
        payload: { text: "x".repeat(200) },
        everyMs: MINUTE,
        offsetMs: 0,
        enabled: true,
      },
    ],
    catalog,
    { maxPayloadBytes: 100 },
  );
  assert.equal(runnable.length, 0);
  assert.match(
    invalid[0]!.message,
    /^Schedule "big" cannot run: payload is \d+ bytes; the limit is 100$/,
  );
});
