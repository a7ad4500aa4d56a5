import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { AppProcess, privateRedis } from "../testing/process.ts";

Deno.test("worker connects, logs readiness and exits 0 on SIGTERM", async () => {
  await using stack = await useTestStack();
  const worker = new AppProcess("workers/main.ts", {
    ...stack.env(),
    // The default schedules run, except retention and training: on the stack
    // that `deno task test` shares, retention would delete other suites' events
    // older than 90 days and training would write a champion over every suite's leads.
    SCHEDULES: JSON.stringify({
      apply_retention: { enabled: false },
      retrain_lead_model: { enabled: false },
    }),
  });
  try {
    const ready = await worker.waitForLog("worker ready");
    assert.equal(ready.service, "worker");
    // Every default schedule has its catalog type: none is skipped.
    const started = await worker.waitForLog("scheduler started");
    assert.deepEqual(started.schedules, ["refresh_lead_metrics"]);
    assert.ok(!worker.lines.some((l) => l.includes('"schedule skipped')), worker.lines.join("\n"));
    worker.child.kill("SIGTERM");
    const { code } = await worker.finished();
    assert.equal(code, 0);
    assert.ok(worker.lines.some((l) => l.includes('"worker stopped"')));
  } finally {
    await worker.kill();
  }
});

Deno.test("a worker whose REDIS_TCP_URL reaches another Redis than the REST URL refuses to start", async () => {
  await using stack = await useTestStack();
  const other = await privateRedis();
  const worker = new AppProcess("workers/main.ts", {
    ...stack.env(),
    REDIS_TCP_URL: other.env.REDIS_TCP_URL!,
  });
  try {
    const { code } = await worker.finished();
    assert.equal(code, 1);
    assert.ok(
      worker.lines.some((l) => l.includes("REDIS_TCP_URL does not reach the Redis behind")),
      worker.lines.join("\n"),
    );
    assert.ok(!worker.lines.some((l) => l.includes('"worker ready"')));
  } finally {
    await worker.kill();
    await other.close();
  }
});

Deno.test("migrate task applies nothing on an already migrated database and exits 0", async () => {
  await using stack = await useTestStack();
  const migrate = new AppProcess("workers/migrate.ts", stack.env());
  const { code, stderr } = await migrate.finished();
  assert.equal(code, 0, stderr);
  const done = JSON.parse(migrate.lines.find((l) => l.includes('"migrations current"'))!);
  assert.equal(done.applied, 0);
});
