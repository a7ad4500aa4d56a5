import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { claim, fail } from "../../shared/queue/leases.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

/** Enqueues `n` noop tasks with one attempt and fails them in ONE call (one DLQ score). */
async function killTasks(queue: TaskQueue, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    ids.push(
      (await queue.enqueue("noop", { echo: crypto.randomUUID() }, { maxAttempts: 1 })).id,
    );
  }
  const { tasks } = await claim(queue.ctx, { max: n, leaseMs: 30_000, workerId: "w1" });
  assert.equal(tasks.length, n);
  const codes = await fail(
    queue.ctx,
    tasks.map((t) => ({
      id: t.id,
      leaseToken: t.leaseToken,
      error: "Error: boom",
      permanent: false,
      backoffMs: 0,
    })),
  );
  assert.deepEqual(codes, tasks.map(() => 2));
  return ids;
}

interface Page {
  data: { id: string; status: string; failed_at: string; dlq_reason: string }[];
  next_cursor: string | null;
  total: number;
}

Deno.test({
  name: "/v1/dlq lets an admin list, show, replay and purge dead tasks",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    // The harness's queue namespace is private: other suites run workers on the shared stack.
    await using h = await routeHarness(stack);
    const { queue, app } = h;
    const admin = await h.token("u-admin", ["admin"]);
    const operator = h.tokens.operator;
    const call = (method: string, path: string, headers: Record<string, string> = {}) =>
      app.request(path, {
        method,
        headers: { authorization: admin, "content-type": "application/json", ...headers },
      });
    const json = async (res: Response, status: number) => {
      assert.equal(res.status, status, await res.clone().text());
      return await res.json();
    };
    const list = async (query: string): Promise<Page> =>
      await json(await call("GET", `/v1/dlq${query}`), 200);

    await t.step("no token → 401; a non-admin → 403 on every route", async () => {
      const anonymous = await app.request("/v1/dlq");
      assert.equal((await json(anonymous, 401)).code, "missing-token");
      const id = crypto.randomUUID();
      for (
        const [method, path] of [
          ["GET", "/v1/dlq"],
          ["GET", `/v1/dlq/${id}`],
          ["POST", `/v1/dlq/${id}/replay`],
          ["POST", "/v1/dlq/replay?type=noop"],
          ["DELETE", `/v1/dlq/${id}`],
        ]
      ) {
        const denied = await call(method!, path!, { authorization: operator });
        assert.equal((await json(denied, 403)).code, "forbidden", `${method} ${path}`);
      }
    });

    const batch = await killTasks(queue, 5);
    const singles = [...await killTasks(queue, 1), ...await killTasks(queue, 1)];
    const all = [...batch, ...singles];

    await t.step("GET /v1/dlq pages newest first without repeating or skipping", async () => {
      const first = await list("?limit=2");
      assert.equal(first.total, 7);
      assert.equal(first.data.length, 2);
      assert.equal(first.data[0]!.id, singles[1]);
      for (const item of first.data) {
        assert.equal(item.status, "dead");
        assert.equal(item.dlq_reason, "Max retries (1) exceeded");
        assert.ok(Date.parse(item.failed_at) > 0);
      }
      // Between pages: a newer task dies and one already listed is replayed and
      // claimed again; neither may shift what the next pages return.
      const newer = await killTasks(queue, 1);
      const seenReplayed = first.data[1]!.id;
      assert.equal((await call("POST", `/v1/dlq/${seenReplayed}/replay`)).status, 202);
      await claim(queue.ctx, { max: 1, leaseMs: 30_000, workerId: "w1" });

      const seen = first.data.map((d) => d.id);
      let cursor = first.next_cursor;
      let pages = 1;
      while (cursor !== null) {
        const page = await list(`?limit=2&cursor=${encodeURIComponent(cursor)}`);
        seen.push(...page.data.map((d) => d.id));
        cursor = page.next_cursor;
        assert.ok(++pages < 10, "paging ends");
      }
      assert.equal(new Set(seen).size, seen.length, `no duplicates: ${seen}`);
      assert.deepEqual([...seen].sort(), [...all].sort());
      assert.ok(!seen.includes(newer[0]!));
      const failedAt = (await list("?limit=50")).data.map((d) => Date.parse(d.failed_at));
      assert.deepEqual(failedAt, [...failedAt].sort((a, b) => b - a));

      const byType = await list("?type=noop&limit=500");
      assert.equal(byType.total, 7);
      assert.equal(byType.next_cursor, null);
      assert.deepEqual(await list("?type=other_type"), { data: [], next_cursor: null, total: 0 });
      all.splice(all.indexOf(seenReplayed), 1, newer[0]!);
    });

    await t.step("GET /v1/dlq/{id} shows a dead task with its payload", async () => {
      const body = await json(await call("GET", `/v1/dlq/${batch[0]}`), 200);
      assert.equal(body.id, batch[0]);
      assert.equal(body.type, "noop");
      assert.equal(body.status, "dead");
      assert.equal(body.attempts, 1);
      assert.equal(body.last_error, "Error: boom");
      assert.equal(typeof body.payload.echo, "string");
      assert.equal(body.replays, 0);
    });

    await t.step("POST /v1/dlq/{id}/replay queues the task again for a worker", async () => {
      const id = batch[2]!;
      const res = await call("POST", `/v1/dlq/${id}/replay`, { "idempotency-key": "r1" });
      assert.deepEqual(await json(res, 202), {
        task_id: id,
        status: "pending",
        status_url: `/v1/tasks/${id}`,
      });
      const task = await json(await call("GET", `/v1/tasks/${id}`), 200);
      assert.equal(task.status, "pending");
      assert.equal(task.attempts, 0);
      const again = await call("POST", `/v1/dlq/${id}/replay`, { "idempotency-key": "r1" });
      assert.equal(again.headers.get("idempotency-replayed"), "true");
      assert.equal((await json(again, 202)).status, "pending");

      const { tasks } = await claim(queue.ctx, { max: 10, leaseMs: 30_000, workerId: "w2" });
      assert.deepEqual(tasks.map((x) => [x.id, x.attempt]), [[id, 1]]);
      const gone = await call("POST", `/v1/dlq/${id}/replay`);
      assert.equal((await json(gone, 404)).code, "dead-task-not-found");
      const notShown = await call("GET", `/v1/dlq/${id}`);
      assert.equal((await json(notShown, 404)).code, "dead-task-not-found");
      all.splice(all.indexOf(id), 1);
    });

    await t.step("DELETE /v1/dlq/{id} purges a dead task for good", async () => {
      const id = batch[3]!;
      const res = await call("DELETE", `/v1/dlq/${id}`);
      assert.equal(res.status, 204);
      assert.equal(await res.text(), "");
      assert.equal(
        (await json(await call("DELETE", `/v1/dlq/${id}`), 404)).code,
        "dead-task-not-found",
      );
      assert.equal((await json(await call("GET", `/v1/tasks/${id}`), 404)).code, "task-not-found");
      const missing = await call("DELETE", `/v1/dlq/${crypto.randomUUID()}`);
      assert.equal((await json(missing, 404)).code, "dead-task-not-found");
      all.splice(all.indexOf(id), 1);
    });

    await t.step("POST /v1/dlq/replay?type= replays every dead task of a type", async () => {
      assert.equal((await list("")).total, all.length);
      const res = await call("POST", "/v1/dlq/replay?type=noop");
      assert.deepEqual(await json(res, 200), {
        type: "noop",
        replayed: all.length,
        remaining: 0,
      });
      assert.deepEqual(await list(""), { data: [], next_cursor: null, total: 0 });
      const { tasks } = await claim(queue.ctx, { max: 20, leaseMs: 30_000, workerId: "w3" });
      assert.deepEqual(tasks.map((x) => x.id).sort(), [...all].sort());
      const none = await call("POST", "/v1/dlq/replay?type=noop");
      assert.deepEqual(await json(none, 200), { type: "noop", replayed: 0, remaining: 0 });
    });

    await t.step("bad ids and parameters → 400 invalid-request naming the field", async () => {
      const id = crypto.randomUUID();
      const cases: [string, string, string][] = [
        ["GET", "/v1/dlq/not-a-uuid", "path.id"],
        ["POST", "/v1/dlq/not-a-uuid/replay", "path.id"],
        ["DELETE", "/v1/dlq/42", "path.id"],
        ["GET", "/v1/dlq?limit=0", "query.limit"],
        ["GET", "/v1/dlq?limit=abc", "query.limit"],
        ["GET", "/v1/dlq?limit=501", "query.limit"],
        ["GET", "/v1/dlq?type=Not-A-Type", "query.type"],
        ["GET", "/v1/dlq?cursor=garbage", "query.cursor"],
        [
          "GET",
          `/v1/dlq?cursor=${encodeURIComponent(btoa(JSON.stringify([1, 0, id])))}`,
          "query.cursor",
        ],
        [
          "GET",
          `/v1/dlq?cursor=${encodeURIComponent(btoa(JSON.stringify([-1, 1, id])))}`,
          "query.cursor",
        ],
        ["POST", "/v1/dlq/replay", "query.type"],
        ["POST", "/v1/dlq/replay?type=not_in_catalog", "query.type"],
        ["POST", "/v1/dlq/replay?type=noop&max=0", "query.max"],
      ];
      for (const [method, path, field] of cases) {
        const body = await json(await call(method, path), 400);
        assert.equal(body.code, "invalid-request", `${method} ${path}`);
        assert.deepEqual(body.invalid_fields.map((f: { field: string }) => f.field), [field]);
      }
      // An action without input may be POSTed without a body or Content-Type:
      // it reaches the route (this id is not dead), not a 415.
      const bare = await app.request(`/v1/dlq/${id}/replay`, {
        method: "POST",
        headers: { authorization: admin },
      });
      assert.equal((await json(bare, 404)).code, "dead-task-not-found");
    });

    await t.step("the routes are in the OpenAPI document", async () => {
      const spec = await (await app.request("/openapi.json")).json();
      assert.ok(spec.paths["/v1/dlq"]?.get);
      assert.ok(spec.paths["/v1/dlq/{id}"]?.get);
      assert.ok(spec.paths["/v1/dlq/{id}"]?.delete);
      assert.ok(spec.paths["/v1/dlq/{id}/replay"]?.post);
      assert.ok(spec.paths["/v1/dlq/replay"]?.post);
    });
  },
});
