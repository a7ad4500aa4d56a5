/**
 * `POST /v1/tasks` claims its Idempotency-Key, enqueues the task and stores
 * the 202 in ONE script (edge/idempotency/enqueue_keyed.lua); these steps
 * prove the key's semantics are those of every other route (docs/gateway.md,
 * "Idempotency-Key"): a replay, 422 for a reused key, scope per principal, a
 * refused request leaves the key free, concurrent duplicates make one task.
 */
import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { hashGetAll } from "../../shared/queue/queue.ts";
import { idempotencyKeys } from "../idempotency/store.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

Deno.test({
  name: "POST /v1/tasks: Idempotency-Key, enqueue and stored answer in one script",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    // The harness's queue namespace is private: no worker claims these tasks.
    await using h = await routeHarness(stack);
    const { deps, queue } = h;
    const admin = await h.token("u-admin", ["admin"]);
    const post = (key: string, json: unknown, auth?: string) =>
      h.call("POST", "/v1/tasks", { json, headers: { "idempotency-key": key }, auth });
    const recordKey = async (sub: string, key: string) =>
      queue.ctx.keys.httpIdempotencyRecord(
        await idempotencyKeys().digest(`${sub} POST /v1/tasks`, key),
      );
    const noop = (echo: string) => ({ type: "noop", payload: { echo } });

    await t.step("the first request's record is written done, next to its task", async () => {
      const key = `one-${crypto.randomUUID()}`;
      const res = await post(key, noop("a"));
      assert.equal(res.status, 202, await res.clone().text());
      assert.equal(res.headers.get("idempotency-replayed"), null);
      const body = await res.json();
      assert.deepEqual(body, {
        task_id: body.task_id,
        status: "queued",
        status_url: `/v1/tasks/${body.task_id}`,
        created: true,
      });
      assert.equal(res.headers.get("location"), `/v1/tasks/${body.task_id}`);
      const record = await hashGetAll(deps.redis, await recordKey("sa:minerva", key));
      assert.equal(record.state, "done");
      assert.equal(record.task_id, body.task_id);
      assert.equal(record.token, undefined);
      // In the queue's cluster slot, never in the other routes' place.
      assert.match(await recordKey("sa:minerva", key), /:\{q\}:http_idem:/);
      assert.equal(
        await deps.redis.exists(await idempotencyKeys().record("sa:minerva POST /v1/tasks", key)),
        0,
      );
      assert.equal((await queue.getTask(body.task_id))?.status, "pending");
    });

    await t.step("a retry replays; a reused key is 422 even with an invalid body", async () => {
      const key = `re-${crypto.randomUUID()}`;
      const first = await (await post(key, noop("b"))).json();
      const replay = await post(key, noop("b"));
      assert.equal(replay.status, 202);
      assert.equal(replay.headers.get("idempotency-replayed"), "true");
      assert.equal(replay.headers.get("location"), `/v1/tasks/${first.task_id}`);
      const replayed = await replay.json();
      assert.equal(replayed.task_id, first.task_id);
      assert.equal(replayed.status, "pending");

      const reused = await post(key, noop("other"));
      assert.equal(reused.status, 422);
      assert.equal((await reused.json()).code, "idempotency-key-reused");
      // Refused by validation, yet the key's record answers first, as the claim did.
      const invalid = await post(key, { type: "noop", payload: { echo: 5 } });
      assert.equal(invalid.status, 422);
      assert.equal((await invalid.json()).code, "idempotency-key-reused");
    });

    await t.step("keys are scoped by principal", async () => {
      const key = `scope-${crypto.randomUUID()}`;
      const mine = await (await post(key, noop("c"))).json();
      const theirs = await post(key, noop("c"), admin);
      assert.equal(theirs.status, 202);
      assert.equal(theirs.headers.get("idempotency-replayed"), null);
      const body = await theirs.json();
      assert.notEqual(body.task_id, mine.task_id);
      assert.equal(body.created, true);
    });

    await t.step("a refused request stores nothing: the key stays free", async () => {
      const key = `free-${crypto.randomUUID()}`;
      const refused = await post(key, { type: "noop", payload: { echo: 5 } });
      assert.equal(refused.status, 400);
      assert.equal((await refused.json()).code, "invalid-request");
      assert.equal(await deps.redis.exists(await recordKey("sa:minerva", key)), 0);
      const ok = await post(key, noop("d"));
      assert.equal(ok.status, 202);
      assert.equal((await ok.json()).created, true);
    });

    await t.step("concurrent requests with one key make one task, all answered 202", async () => {
      const key = `race-${crypto.randomUUID()}`;
      const answers = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const res = await post(key, noop("e"));
          return {
            status: res.status,
            replayed: res.headers.get("idempotency-replayed") === "true",
            id: (await res.json()).task_id,
          };
        }),
      );
      assert.deepEqual(answers.map((a) => a.status), Array(8).fill(202));
      assert.equal(new Set(answers.map((a) => a.id)).size, 1);
      assert.equal(answers.filter((a) => !a.replayed).length, 1);
    });

    await t.step(
      "a queue key that outlived its record: that task, created false, then stored",
      async () => {
        const key = `old-${crypto.randomUUID()}`;
        const first = await (await post(key, noop("f"))).json();
        await deps.redis.del(await recordKey("sa:minerva", key));
        const again = await post(key, noop("f"));
        assert.equal(again.status, 202);
        assert.equal(again.headers.get("idempotency-replayed"), null);
        assert.deepEqual(await again.json(), { ...first, created: false });
        const record = await hashGetAll(deps.redis, await recordKey("sa:minerva", key));
        assert.equal(record.state, "done");
        assert.equal(record.task_id, first.task_id);
        const replay = await post(key, noop("f"));
        assert.equal(replay.headers.get("idempotency-replayed"), "true");
        assert.equal((await replay.json()).task_id, first.task_id);
      },
    );
  },
});
