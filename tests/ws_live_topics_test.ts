/**
 * The platform's own signals on the live feed, end to end with real
 * processes: a task enqueued through the API and run by a worker process
 * shows up on `tasks:<id>` as pending → running → succeeded (published by
 * the queue's scripts, so in the order the changes happened).
 *
 * The worker always uses the "pc" queue namespace, so this suite gives the
 * edge and the worker a redis-server of their own (the shared stack's queue
 * belongs to other suites).
 *
 * @module
 */
import assert from "node:assert/strict";
import { useTestStack } from "../dev/test_stack.ts";
import { parseConfig } from "../shared/config.ts";
import { type Frame, TestClient, token, waitUntil } from "../edge/ws/test_support.ts";
import { AppProcess, privateRedis, startEdge } from "./process_support.ts";

Deno.test({
  name: "a task run by a worker process is followed live on tasks:<id>",
  // The WebSocket client's socket closes asynchronously after the processes exit.
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await useTestStack();
  const redis = await privateRedis();
  const env = { ...stack.env(), ...redis.env, APP_ENV: "test" };
  const auth = parseConfig(env).auth;
  const processes: AppProcess[] = [];
  let client: TestClient | undefined;
  try {
    const { edge, url } = await startEdge(env);
    processes.push(edge);
    const worker = new AppProcess("workers/main.ts", env);
    processes.push(worker);
    await worker.waitForLog("worker ready");
    const minerva = await token(auth, "sa:minerva");
    client = await TestClient.connect({ port: Number(new URL(url).port) }, minerva, {
      topics: ["tasks"],
    });
    await client.waitFor((f) => f.type === "subscribed");

    const res = await fetch(`${url}/v1/tasks`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${minerva}`,
        "Content-Type": "application/json",
        "Idempotency-Key": crypto.randomUUID(),
      },
      body: JSON.stringify({ type: "noop", payload: { echo: "live" } }),
    });
    assert.equal(res.status, 202);
    const { task_id: id } = await res.json();

    const mine = () => client!.messages("tasks").filter((m) => m.key === id);
    const status = (m: Frame) => (m.data as { status: string }).status;
    await waitUntil(() => mine().some((m) => status(m) === "succeeded"), {
      timeoutMs: 10_000,
      what: "the task's succeeded message",
      detail: () => JSON.stringify(mine()),
    });
    assert.deepEqual(mine().map(status), ["pending", "running", "succeeded"]);
    const [pending, running] = mine().map((m) => m.data as Record<string, unknown>);
    assert.equal(pending!.type, "noop");
    assert.equal(running!.attempt, 1);
    // The API's view agrees with the feed's last word.
    const task = await (await fetch(`${url}/v1/tasks/${id}`, {
      headers: { Authorization: `Bearer ${minerva}` },
    })).json();
    assert.equal(task.status, "succeeded");
  } finally {
    await client?.close();
    await Promise.all(processes.map((p) => p.stop("SIGTERM").catch(() => {})));
    await redis.close();
  }
});
