import assert from "node:assert/strict";
import { useTestStack } from "../dev/test_stack.ts";
import { AppProcess } from "./process_support.ts";

Deno.test("worker connects, logs readiness and exits 0 on SIGTERM", async () => {
  await using stack = await useTestStack();
  const worker = new AppProcess("workers/main.ts", stack.env());
  try {
    const ready = await worker.waitForLog("worker ready");
    assert.equal(ready.service, "worker");
    worker.child.kill("SIGTERM");
    const { code } = await worker.finished();
    assert.equal(code, 0);
    assert.ok(worker.lines.some((l) => l.includes('"worker stopped"')));
  } finally {
    await worker.kill();
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
