import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { withTransaction } from "../../shared/leads/transaction.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

type Entry = {
  id: string;
  lead_id: string;
  at: string;
  source: string;
  action: string;
  changes: Record<string, { old: unknown; new: unknown }>;
};

Deno.test({
  name: "lead history: every change with old/new values, who and when, in keyset pages",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    const ids: string[] = [];
    try {
      const created = await h.call("POST", "/v1/leads", {
        auth: h.tokens.operator,
        json: {
          name: `Harbor Cafe ${h.run}`,
          city: `Historytown-${h.run}`,
          email: "owner@harbor.example",
          last_contacted: "2026-01-02T03:04:05Z",
        },
      });
      assert.equal(created.status, 201, await created.clone().text());
      const lead = await created.json();
      ids.push(lead.id);
      const path = `/v1/leads/${lead.id}/history`;

      const patched = await h.call("PATCH", `/v1/leads/${lead.id}`, {
        auth: h.tokens.operator,
        json: { city: `Newtown-${h.run}`, phone: "+1 555 0100" },
      });
      assert.equal(patched.status, 200, await patched.clone().text());
      await patched.body?.cancel();
      const moved = await h.call("POST", `/v1/leads/${lead.id}/transitions`, {
        json: { to: "contacted", reason: "Called" },
      });
      assert.equal(moved.status, 200, await moved.clone().text());
      await moved.body?.cancel();
      const noted = await h.call("POST", `/v1/leads/${lead.id}/notes`, {
        json: { text: "Prefers calls after 3 pm" },
      });
      assert.equal(noted.status, 201, await noted.clone().text());
      await noted.body?.cancel();

      await t.step("newest first: note, transition, edit, creation, each with who", async () => {
        const res = await h.call("GET", path, { auth: h.tokens.viewer });
        assert.equal(res.status, 200, await res.clone().text());
        const body = await res.json() as { data: Entry[]; next_cursor: string | null };
        assert.equal(body.next_cursor, null);
        assert.deepEqual(body.data.map((e) => [e.action, e.source]), [
          ["note_added", "api:sa:minerva"],
          ["status_changed", "api:sa:minerva"],
          ["updated", "api:u-operator"],
          ["created", "api:u-operator"],
        ]);
        const [note, status, edit, creation] = body.data as [Entry, Entry, Entry, Entry];
        assert.deepEqual(note.changes, { note: { old: null, new: "Prefers calls after 3 pm" } });
        assert.deepEqual(status.changes, {
          outreach_status: { old: "new", new: "contacted" },
        });
        assert.deepEqual(edit.changes, {
          city: { old: `Historytown-${h.run}`, new: `Newtown-${h.run}` },
          phone: { old: null, new: "+1 555 0100" },
        });
        assert.equal(creation.changes.name?.new, `Harbor Cafe ${h.run}`);
        assert.equal(creation.changes.email?.new, "owner@harbor.example");
        assert.deepEqual(creation.changes.last_contacted, {
          old: null,
          new: "2026-01-02T03:04:05.000Z",
        });
        assert.equal(creation.changes.outreach_status?.new, "new");
        assert.ok(!("updated_at" in creation.changes), "updated_at is not history");
        for (const e of body.data) {
          assert.equal(e.lead_id, lead.id);
          assert.match(e.at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
        }
        assert.ok(body.data.every((e, i, all) => i === 0 || all[i - 1]!.at >= e.at));
      });

      await t.step("pages of 1 walk the same entries without gaps, in both orders", async () => {
        for (const order of ["desc", "asc"]) {
          const seen: string[] = [];
          let cursor: string | null = null;
          do {
            const q: string = `?order=${order}&limit=1${cursor ? `&cursor=${cursor}` : ""}`;
            const res = await h.call("GET", path + q);
            assert.equal(res.status, 200, await res.clone().text());
            const page = await res.json() as { data: Entry[]; next_cursor: string | null };
            assert.ok(page.data.length <= 1);
            seen.push(...page.data.map((e) => e.action));
            cursor = page.next_cursor;
          } while (cursor !== null);
          const expected = ["note_added", "status_changed", "updated", "created"];
          assert.deepEqual(seen, order === "desc" ? expected : expected.reverse());
        }
      });

      await t.step("a cursor of the other order, a bad cursor, an unknown lead", async () => {
        const first = await (await h.call("GET", `${path}?limit=1`)).json();
        const other = await h.call("GET", `${path}?order=asc&cursor=${first.next_cursor}`);
        assert.equal(other.status, 400);
        assert.equal((await other.json()).code, "invalid-request");
        const bad = await h.call("GET", `${path}?cursor=bm9wZQ`);
        assert.equal(bad.status, 400);
        await bad.body?.cancel();
        const unknown = await h.call("GET", `/v1/leads/${crypto.randomUUID()}/history`);
        assert.equal(unknown.status, 404);
        assert.equal((await unknown.json()).code, "lead-not-found");
        const extra = await h.call("GET", `${path}?since=yesterday`);
        assert.equal(extra.status, 400);
        await extra.body?.cancel();
      });

      await t.step(
        "a platform write that does not name itself is recorded as platform",
        async () => {
          await h.deps.sql.query("UPDATE businesses SET lead_score = 42 WHERE id = $1", [lead.id]);
          await withTransaction(h.deps.sql, async (client) => {
            await client.query(
              "SELECT set_config('pleasant_cove.change_source', 'worker:test', true)",
            );
            await client.query("UPDATE businesses SET reviews = 7 WHERE id = $1", [lead.id]);
          });
          // A write that changes nothing records nothing.
          await h.deps.sql.query("UPDATE businesses SET reviews = 7 WHERE id = $1", [lead.id]);
          const body = await (await h.call("GET", `${path}?limit=2`)).json();
          assert.deepEqual(body.data.map((e: Entry) => [e.action, e.source, e.changes]), [
            ["updated", "worker:test", { reviews: { old: 0, new: 7 } }],
            ["scored", "platform", { lead_score: { old: null, new: 42 } }],
          ]);
        },
      );
    } finally {
      if (ids.length > 0) {
        await h.deps.sql.query("DELETE FROM lead_events WHERE lead_id = ANY($1::uuid[])", [ids]);
        await h.deps.sql.query("DELETE FROM businesses WHERE id = ANY($1::uuid[])", [ids]);
      }
      await h.cleanup();
    }
  },
});
