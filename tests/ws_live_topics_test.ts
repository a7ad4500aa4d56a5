/**
 * The platform's own signals on the live feed, end to end with real
 * processes: a task enqueued through the API and run by a worker process
 * shows up on `tasks:<id>` as pending → running → succeeded (published by
 * the queue's scripts, so in the order the changes happened), and a lead
 * created and changed through the API shows up on `leads:<id>` (published by
 * the edge's lead-events relay after each transaction committed).
 *
 * The worker always uses the "pc" queue namespace, so this suite gives the
 * edge and the worker a redis-server of their own (the shared stack's queue
 * belongs to other suites).
 *
 * @module
 */
import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { parseConfig } from "../shared/config/mod.ts";
import { type Frame, TestClient, token } from "../testing/live_feed.ts";
import { waitUntil } from "../testing/wait.ts";
import { AppProcess, privateRedis, startEdge } from "../testing/process.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { runTag } from "../testing/namespace.ts";

Deno.test({
  name: "a task run by a worker process is followed live on tasks:<id>; a lead on leads:<id>",
  // The WebSocket client's socket closes asynchronously after the processes exit.
  ...noSanitizers,
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
      topics: ["tasks", "leads"],
    });
    await client.waitFor(() => client!.frames.filter((f) => f.type === "subscribed").length === 2);

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
    assert.equal(running!.attempts, 1);
    // The API's view agrees with the feed's last word.
    const task = await (await fetch(`${url}/v1/tasks/${id}`, {
      headers: { Authorization: `Bearer ${minerva}` },
    })).json();
    assert.equal(task.status, "succeeded");

    // Minerva may create leads; changing one takes an operator.
    const operator = await token(auth, "olga", { roles: ["operator"] });
    const api = (method: string, path: string, body: unknown) =>
      fetch(`${url}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${method === "PATCH" ? operator : minerva}`,
          "Content-Type": "application/json",
        },
        body: JSON.stringify(body),
      });
    const created = await api("POST", "/v1/leads", {
      name: "Live Feed Bakery",
      city: `Feedtown-${runTag()}`,
    });
    assert.equal(created.status, 201, await created.clone().text());
    const lead = await created.json();
    const moved = await api("PATCH", `/v1/leads/${lead.id}`, { outreach_status: "contacted" });
    assert.equal(moved.status, 200, await moved.clone().text());
    await moved.body?.cancel();
    const leadEvents = () => client!.messages("leads").filter((m) => m.key === lead.id);
    await waitUntil(() => leadEvents().length >= 2, {
      timeoutMs: 10_000,
      what: "the lead's two events",
      detail: () => JSON.stringify(leadEvents()),
    });
    const events = leadEvents().map((m) => m.data as Record<string, unknown>);
    assert.deepEqual(events.map((e) => e.event_type), ["lead_created", "status_changed"]);
    assert.ok(events.every((e) => e.lead_id === lead.id && typeof e.id === "string"));
  } finally {
    await client?.close();
    await Promise.all(processes.map((p) => p.stop("SIGTERM").catch(() => {})));
    await redis.close();
  }
});
