import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import { ConfigError } from "../errors.ts";
import {
  DEFAULT_SCHEDULES,
  parseSchedules,
  type Schedule,
  slotAt,
  slotIdempotencyKey,
  slotStart,
} from "./schedule.ts";

const MINUTE = 60_000;
const DAY = 86_400_000;

function schedules(text: string): Schedule[] {
  const parsed = parseSchedules(text);
  if ("problems" in parsed) throw new Error(parsed.problems.join("\n"));
  return parsed.schedules;
}

Deno.test("parseSchedules() returns the defaults for an empty object", () => {
  const list = schedules("{}");
  assert.deepEqual(list.map((s) => s.name), Object.keys(DEFAULT_SCHEDULES));
  assert.deepEqual(list.find((s) => s.name === "apply_retention"), {
    name: "apply_retention",
    taskType: "apply_retention",
    payload: {},
    everyMs: DAY,
    offsetMs: 3 * 3_600_000,
    enabled: true,
  });
  assert.deepEqual(schedules(""), list);
});

Deno.test("parseSchedules() merges per name over the defaults and adds new schedules", () => {
  const list = schedules(JSON.stringify({
    apply_retention: { enabled: false },
    refresh_lead_metrics: { every_ms: 30_000, payload: { full: true } },
    ping: { task_type: "noop", every_ms: 5 * MINUTE, offset_ms: 1_000 },
  }));
  assert.deepEqual(list.map((s) => [s.name, s.enabled, s.everyMs, s.offsetMs]), [
    ["refresh_lead_metrics", true, 30_000, 0],
    ["apply_retention", false, DAY, 3 * 3_600_000],
    ["retrain_lead_model", true, 7 * DAY, 3 * DAY + 4 * 3_600_000],
    ["ping", true, 5 * MINUTE, 1_000],
  ]);
  assert.deepEqual(list[0]!.payload, { full: true });
  assert.deepEqual(list[3]!.payload, {});
});

Deno.test("parseSchedules() reports every problem at once", () => {
  const parsed = parseSchedules(JSON.stringify({
    "Bad Name": { task_type: "noop", every_ms: MINUTE },
    fast: { task_type: "noop", every_ms: 10 },
    shifted: { task_type: "noop", every_ms: MINUTE, offset_ms: MINUTE },
    typo: { task_type: "noop", every_ms: MINUTE, enabeld: false },
    bare: { every_ms: MINUTE },
    apply_retention: "off",
  }));
  assert.ok("problems" in parsed);
  const text = parsed.problems.join("\n");
  for (
    const expected of [
      '"Bad Name": a name is lower case letters',
      "fast.every_ms:",
      "shifted.offset_ms: offset_ms must be smaller than every_ms",
      "typo:",
      "bare.task_type:",
      "apply_retention:",
    ]
  ) {
    assert.ok(text.includes(expected), `no "${expected}" in:\n${text}`);
  }
  assert.deepEqual(parseSchedules("[1]"), { problems: ["expected a JSON object of schedules"] });
  assert.deepEqual(parseSchedules("{"), { problems: ["expected a JSON object of schedules"] });
});

Deno.test("parseConfig() reads SCHEDULES and names it in a ConfigError", () => {
  const env = {
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1",
    UPSTASH_REDIS_REST_TOKEN: "t",
    DATABASE_URL: "postgres://u@127.0.0.1:1/db",
  };
  const config = parseConfig({
    ...env,
    SCHEDULES: '{"ping":{"task_type":"noop","every_ms":60000}}',
  });
  assert.deepEqual(config.schedules.map((s) => s.name), [
    "refresh_lead_metrics",
    "apply_retention",
    "retrain_lead_model",
    "ping",
  ]);
  assert.throws(
    () => parseConfig({ ...env, SCHEDULES: '{"ping":{"task_type":"noop","every_ms":5}}' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /SCHEDULES: ping\.every_ms:/);
      return true;
    },
  );
});

Deno.test("slots are aligned to the epoch, shifted by the offset", () => {
  const minutely = { everyMs: MINUTE, offsetMs: 0 };
  const t = Date.UTC(2030, 0, 1, 12, 0, 59, 999);
  assert.equal(slotStart(minutely, slotAt(minutely, t)), Date.UTC(2030, 0, 1, 12, 0));
  assert.equal(slotAt(minutely, t + 1), slotAt(minutely, t) + 1);

  const dailyAt3 = { everyMs: DAY, offsetMs: 3 * 3_600_000 };
  const before = Date.UTC(2030, 0, 2, 2, 59, 59, 999);
  const at = Date.UTC(2030, 0, 2, 3, 0);
  assert.equal(slotStart(dailyAt3, slotAt(dailyAt3, before)), Date.UTC(2030, 0, 1, 3, 0));
  assert.equal(slotStart(dailyAt3, slotAt(dailyAt3, at)), at);
  assert.equal(slotIdempotencyKey("apply_retention", 7), "schedule:apply_retention:7");
});
