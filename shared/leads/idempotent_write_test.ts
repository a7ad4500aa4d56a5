import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { poolFor } from "../db/pool.ts";
import { expireWriteKeys, writeKey, WriteKeyReusedError } from "./idempotent_write.ts";
import { createLead, updateLead } from "./repository.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { runTag } from "../../testing/namespace.ts";

// The Neon Pool keeps WebSocket ops alive between queries (neon-local.md §5): sanitizers off.
const opts = noSanitizers;

Deno.test({
  name: "writes fenced by a key in the database apply once",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const { sql } = stack.makeDeps();
    // A wider pool so that concurrent transactions really run on separate connections.
    const wide = poolFor(stack.settings.database, { max: 8, onError: () => {} });
    const run = runTag();
    const city = `Keytown-${run}`;
    const scope = `test-${run} POST /v1/leads`;
    try {
      await t.step("eight concurrent creates with one key: one lead, one answer", async () => {
        const input = { name: "Once", city, source: "test" };
        const key = await writeKey(scope, "k1", input);
        const leads = await Promise.all(
          Array.from({ length: 8 }, () => createLead(wide, input, "test", { writeKey: key })),
        );
        assert.equal(new Set(leads.map((l) => l.id)).size, 1);
        assert.ok(leads.every((l) => l.created_at instanceof Date));
        assert.equal(leads[7]!.created_at.getTime(), leads[0]!.created_at.getTime());
        const { rows } = await sql.query("SELECT id FROM businesses WHERE city = $1", [city]);
        assert.equal(rows.length, 1);
      });

      await t.step("the key with another write is refused; other keys write", async () => {
        const key = await writeKey(scope, "k1", { name: "Different" });
        await assert.rejects(
          createLead(sql, { name: "Different", city, source: "test" }, "test", { writeKey: key }),
          WriteKeyReusedError,
        );
        const other = await writeKey(scope, "k2", { name: "Once" });
        await createLead(sql, { name: "Once", city, source: "test" }, "test", { writeKey: other });
        const { rows } = await sql.query("SELECT id FROM businesses WHERE city = $1", [city]);
        assert.equal(rows.length, 2);
      });

      await t.step("an update replayed with its key records its events once", async () => {
        const lead = await createLead(sql, { name: "Upd", city, source: "test" }, "test");
        const key = await writeKey(`test-${run} PATCH`, "u1", { lead_score: 7 });
        const a = await updateLead(wide, lead.id, { lead_score: 7 }, "test", { writeKey: key });
        const b = await updateLead(wide, lead.id, { lead_score: 7 }, "test", { writeKey: key });
        assert.deepEqual(b, a);
        const { rows } = await sql.query(
          "SELECT 1 FROM lead_events WHERE lead_id = $1 AND event_type = 'lead_updated'",
          [lead.id],
        );
        assert.equal(rows.length, 1);
      });

      await t.step("expireWriteKeys removes keys recorded before the cutoff", async () => {
        await sql.query(
          "UPDATE idempotent_writes SET created_at = now() - interval '2 days' WHERE scope = $1 AND key = 'k1'",
          [scope],
        );
        const removed = await expireWriteKeys(sql, new Date(Date.now() - 86_400_000));
        assert.ok(removed >= 1);
        const { rows } = await sql.query(
          "SELECT key FROM idempotent_writes WHERE scope = $1 ORDER BY key",
          [scope],
        );
        assert.deepEqual(rows.map((r) => r.key), ["k2"]);
      });
    } finally {
      await sql.query("DELETE FROM idempotent_writes WHERE scope LIKE $1", [`test-${run} %`]);
      await sql.query(
        "DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM businesses WHERE city = $1)",
        [city],
      );
      await sql.query("DELETE FROM businesses WHERE city = $1", [city]);
      await wide.end();
    }
  },
});
