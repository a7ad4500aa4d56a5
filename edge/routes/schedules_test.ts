import assert from "node:assert/strict";
import { mintDevToken } from "../../dev/token.ts";
import { useTestStack } from "../../testing/stack.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { Scheduler } from "../../shared/schedules/scheduler.ts";
import { TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import { createApp } from "../app.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { fakeClock } from "../../testing/clock.ts";

Deno.test({
  name: "GET /v1/schedules shows last and next runs to admins and operators, not viewers",
  // Deps hold a Neon Pool (async socket teardown).
  ...noSanitizers,
  async fn() {
    await using stack = await useTestStack();
    const made = stack.makeDeps({
      SCHEDULES: JSON.stringify({
        ping: { task_type: "noop", payload: { echo: "tick" }, every_ms: 60_000 },
        nightly: { task_type: "noop", every_ms: 86_400_000, offset_ms: 10_800_000 },
        paused: { task_type: "noop", every_ms: 60_000, enabled: false },
        typo: { task_type: "no_such_task", every_ms: 60_000 },
      }),
    });
    const clock = fakeClock(Date.UTC(2030, 0, 1, 12, 0, 30));
    const deps = { ...made, now: clock.now };
    // A private namespace: workers of other suites must not claim these tasks.
    const queue = createQueue(deps.redis, TASK_CATALOG, {
      ...deps.config.queue,
      namespace: testNamespace("s"),
    });
    const scheduler = new Scheduler({
      queue,
      schedules: deps.config.schedules,
      log: deps.log,
      now: deps.now,
    });
    const [ping] = (await scheduler.tick()).filter((o) => o.schedule === "ping");
    clock.advance(5_000);

    const app = createApp(deps, { queue });
    const token = async (roles: ("admin" | "operator" | "viewer")[]) =>
      `Bearer ${await mintDevToken(deps.config.auth, {
        sub: `u-${roles[0]}`,
        roles,
        now: deps.now,
      })}`;
    const get = async (roles: ("admin" | "operator" | "viewer")[]) =>
      await app.request("/v1/schedules", { headers: { authorization: await token(roles) } });

    const res = await get(["admin"]);
    assert.equal(res.status, 200);
    const { schedules } = await res.json();
    const byName = Object.fromEntries(
      schedules.map((s: { name: string }) => [s.name, s]),
    );
    assert.deepEqual(
      schedules.map((s: { name: string }) => s.name),
      [
        "refresh_lead_metrics",
        "apply_retention",
        "retrain_lead_model",
        "ping",
        "nightly",
        "paused",
        "typo",
      ],
    );
    assert.deepEqual(byName.ping, {
      name: "ping",
      task_type: "noop",
      every_ms: 60_000,
      offset_ms: 0,
      enabled: true,
      status: "active",
      problem: null,
      last_slot: ping!.slot,
      last_run_at: "2030-01-01T12:00:00.000Z",
      last_enqueued_at: byName.ping.last_enqueued_at,
      last_task_id: ping!.taskId,
      next_run_at: "2030-01-01T12:01:00.000Z",
      runs: 1,
      missed_slots: 0,
    });
    assert.match(byName.ping.last_enqueued_at, /^\d{4}-\d\d-\d\dT/);
    assert.equal(byName.nightly.last_run_at, "2030-01-01T03:00:00.000Z");
    assert.equal(byName.nightly.next_run_at, "2030-01-02T03:00:00.000Z");
    assert.deepEqual(
      [byName.paused.status, byName.paused.next_run_at, byName.paused.last_task_id],
      ["disabled", null, null],
    );
    assert.equal(byName.typo.status, "invalid");
    assert.match(
      byName.typo.problem,
      /^Schedule "typo" cannot run: unknown task type "no_such_task"/,
    );
    assert.equal(byName.typo.next_run_at, null);
    // The analytics defaults are active once their task types are in the catalog.
    assert.ok(["active", "invalid"].includes(byName.apply_retention.status));

    const operator = await get(["operator"]);
    assert.equal(operator.status, 200);
    await operator.body?.cancel();
    const viewer = await get(["viewer"]);
    assert.equal(viewer.status, 403);
    await viewer.body?.cancel();
    const anonymous = await app.request("/v1/schedules");
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();

    const spec = await (await app.request("/openapi.json")).json();
    assert.ok(spec.paths["/v1/schedules"]?.get);
  },
});
