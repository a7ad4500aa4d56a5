/**
 * A stalled edge (paused past its Idempotency-Key lock) and the client's
 * retry on another edge must not both write: the key is fenced in the
 * database (shared/leads/idempotent_write.ts). The lapsed lock is reproduced
 * by deleting the Redis record between the two requests, which is what the
 * retry's edge sees when the first edge's lock expired before it completed.
 */
import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { idempotencyKeys } from "../idempotency/store.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

Deno.test({
  name: "Idempotency-Key writes apply once even when the Redis record is lost",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    await using edgeA = await routeHarness(stack);
    await using edgeB = await routeHarness(stack);
    const { sql, redis } = edgeA.deps;
    const city = `Fencetown-${edgeA.run}`;
    const keys = idempotencyKeys();
    const loseRecord = async (scope: string, key: string) =>
      void await redis.del(await keys.record(scope, key));
    const countLeads = async (name: string) =>
      Number(
        (await sql.query("SELECT count(*) AS n FROM businesses WHERE city = $1 AND name = $2", [
          city,
          name,
        ])).rows[0].n,
      );
    try {
      await t.step("POST /v1/leads: the retry on another edge returns the first lead", async () => {
        const key = `fence-${crypto.randomUUID()}`;
        const body = { name: "Fenced Deli", city };
        const first = await edgeA.call("POST", "/v1/leads", {
          json: body,
          headers: { "idempotency-key": key },
        });
        assert.equal(first.status, 201, await first.clone().text());
        const lead = await first.json();
        await loseRecord("sa:minerva POST /v1/leads", key);

        const retry = await edgeB.call("POST", "/v1/leads", {
          json: body,
          headers: { "idempotency-key": key },
        });
        assert.equal(retry.status, 201, await retry.clone().text());
        assert.equal(retry.headers.get("location"), `/v1/leads/${lead.id}`);
        const again = await retry.json();
        assert.equal(again.id, lead.id);
        assert.equal(again.created_at, lead.created_at);
        assert.equal(await countLeads("Fenced Deli"), 1);
      });

      await t.step("concurrent requests with one key on two edges create one lead", async () => {
        const key = `race-${crypto.randomUUID()}`;
        const body = { name: "Raced Deli", city };
        // Separate Redis namespaces are not needed: the record is deleted as each claims it,
        // so both run their transaction; the database lets one write.
        const send = (edge: typeof edgeA) =>
          edge.call("POST", "/v1/leads", { json: body, headers: { "idempotency-key": key } });
        const results = [];
        for (let i = 0; i < 4; i++) {
          await loseRecord("sa:minerva POST /v1/leads", key);
          results.push(await Promise.all([send(edgeA), send(edgeB)]));
        }
        const ids = new Set<string>();
        for (const res of results.flat()) {
          // 409: the other edge's request held the key (in Redis or in the database).
          assert.ok([201, 409].includes(res.status), `${res.status} ${await res.clone().text()}`);
          if (res.status === 201) ids.add((await res.json()).id);
          else await res.body?.cancel();
        }
        assert.equal(ids.size, 1);
        assert.equal(await countLeads("Raced Deli"), 1);
      });

      await t.step(
        "the same key with another body is 422, even without the Redis record",
        async () => {
          const key = `reuse-${crypto.randomUUID()}`;
          const first = await edgeA.call("POST", "/v1/leads", {
            json: { name: "Original", city },
            headers: { "idempotency-key": key },
          });
          assert.equal(first.status, 201);
          await first.body?.cancel();
          await loseRecord("sa:minerva POST /v1/leads", key);
          const other = await edgeB.call("POST", "/v1/leads", {
            json: { name: "Another", city },
            headers: { "idempotency-key": key },
          });
          assert.equal(other.status, 422);
          assert.equal((await other.json()).code, "idempotency-key-reused");
          assert.equal(await countLeads("Another"), 0);
        },
      );

      await t.step("PATCH: the retry applies nothing and returns the first result", async () => {
        const lead = await edgeA.lead({ name: "Patched Deli" });
        const key = `patch-${crypto.randomUUID()}`;
        const patch = { lead_score: 42, outreach_status: "contacted" };
        // sa:minerva may not PATCH; an operator may.
        const first = await edgeA.call("PATCH", `/v1/leads/${lead.id}`, {
          auth: edgeA.tokens.operator,
          json: patch,
          headers: { "idempotency-key": key },
        });
        assert.equal(first.status, 200, await first.clone().text());
        const updated = await first.json();
        await loseRecord("u-operator PATCH /v1/leads/:id", key);

        const retry = await edgeB.call("PATCH", `/v1/leads/${lead.id}`, {
          auth: edgeB.tokens.operator,
          json: patch,
          headers: { "idempotency-key": key },
        });
        assert.equal(retry.status, 200, await retry.clone().text());
        assert.deepEqual(await retry.json(), updated);
        const { rows } = await sql.query(
          "SELECT event_type FROM lead_events WHERE lead_id = $1 AND source LIKE 'api:%'",
          [lead.id],
        );
        assert.deepEqual(rows.map((r) => r.event_type).sort(), ["lead_updated", "status_changed"]);
      });
    } finally {
      await sql.query(
        "DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM businesses WHERE city = $1)",
        [city],
      );
      await sql.query("DELETE FROM businesses WHERE city = $1", [city]);
      await edgeA.cleanup();
    }
  },
});
