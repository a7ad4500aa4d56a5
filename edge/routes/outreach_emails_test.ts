import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

type Json = Record<string, unknown>;

Deno.test({
  name: "sent emails: overall and per lead, filtered, newest first in keyset pages",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    const sql = h.deps.sql;
    const a = await h.lead({ name: `Cove Cafe ${h.run}`, email: "cafe@cove.example" });
    const b = await h.lead({ name: `Dock Deli ${h.run}`, email: "deli@cove.example" });
    const base = Date.parse("2031-05-01T09:00:00Z");
    // Five ledger rows: lead a gets intro (sent), follow_up (failed) and
    // meeting_confirmation (sent); lead b gets intro (sent) and follow_up (pending).
    const rows: [string, string, string, number][] = [
      [a.id, "intro", "sent", 0],
      [b.id, "intro", "sent", 1],
      [a.id, "follow_up", "failed", 2],
      [b.id, "follow_up", "pending", 3],
      [a.id, "meeting_confirmation", "sent", 4],
    ];
    const ids: string[] = [];
    for (const [lead, template, status, hour] of rows) {
      const at = new Date(base + hour * 3_600_000).toISOString();
      const { rows: out } = await sql.query<{ id: string }>(
        `INSERT INTO email_messages (business_id, to_address, template, send_day, subject,
                                     provider, message_id, status, task_id, attempts,
                                     created_at, sent_at)
         VALUES ($1, $2, $3, $4::timestamptz::date, $5, 'file', $6, $7, $8, 1, $4::timestamptz,
                 CASE WHEN $7 = 'sent' THEN $4::timestamptz END)
         RETURNING id`,
        [
          lead,
          lead === a.id ? "cafe@cove.example" : "deli@cove.example",
          template,
          at,
          `Subject ${template}`,
          `<${crypto.randomUUID()}@test>`,
          status,
          `t-${h.run}-${hour}`,
        ],
      );
      ids.push(out[0]!.id);
    }
    const inRange = `created_after=2031-05-01T00:00:00Z&created_before=2031-05-02T00:00:00Z`;
    const list = async (path: string, auth?: string) => {
      const res = await h.call("GET", path, auth === undefined ? {} : { auth });
      assert.equal(res.status, 200, await res.clone().text());
      return await res.json() as { data: Json[]; next_cursor: string | null };
    };

    try {
      await t.step("overall: newest first, in pages of `limit` that resume exactly", async () => {
        const first = await list(`/v1/outreach/emails?${inRange}&limit=2`);
        assert.deepEqual(first.data.map((e) => e.id), [ids[4], ids[3]]);
        assert.ok(first.next_cursor);
        const second = await list(
          `/v1/outreach/emails?${inRange}&limit=2&cursor=${first.next_cursor}`,
        );
        assert.deepEqual(second.data.map((e) => e.id), [ids[2], ids[1]]);
        const third = await list(
          `/v1/outreach/emails?${inRange}&limit=2&cursor=${second.next_cursor}`,
        );
        assert.deepEqual(third.data.map((e) => e.id), [ids[0]]);
        assert.equal(third.next_cursor, null);
        const row = third.data[0]!;
        assert.equal(row.lead_id, a.id);
        assert.equal(row.to, "cafe@cove.example");
        assert.equal(row.template, "intro");
        assert.equal(row.status, "sent");
        assert.equal(row.send_day, "2031-05-01");
        assert.equal(row.created_at, "2031-05-01T09:00:00.000Z");
        assert.equal(row.sent_at, "2031-05-01T09:00:00.000Z");
        assert.equal(row.attempts, 1);
        assert.equal("business_id" in row, false);
      });

      await t.step("filters: lead_id, status (comma-separated), template, range", async () => {
        const ofA = await list(`/v1/outreach/emails?${inRange}&lead_id=${a.id}`);
        assert.deepEqual(ofA.data.map((e) => e.id), [ids[4], ids[2], ids[0]]);
        const open = await list(`/v1/outreach/emails?${inRange}&status=pending,failed`);
        assert.deepEqual(open.data.map((e) => e.id), [ids[3], ids[2]]);
        const intros = await list(`/v1/outreach/emails?${inRange}&template=intro`);
        assert.deepEqual(intros.data.map((e) => e.id), [ids[1], ids[0]]);
        const narrow = await list(
          "/v1/outreach/emails?created_after=2031-05-01T10:00:00Z&created_before=2031-05-01T12:00:00Z",
        );
        assert.deepEqual(narrow.data.map((e) => e.id), [ids[2], ids[1]]);
      });

      await t.step("per lead: the lead's emails only; a viewer may read them", async () => {
        const ofB = await list(`/v1/leads/${b.id}/emails`, h.tokens.viewer);
        assert.deepEqual(ofB.data.map((e) => e.id), [ids[3], ids[1]]);
        const sentOfA = await list(`/v1/leads/${a.id}/emails?status=sent&limit=1`);
        assert.deepEqual(sentOfA.data.map((e) => e.id), [ids[4]]);
        const rest = await list(
          `/v1/leads/${a.id}/emails?status=sent&limit=1&cursor=${sentOfA.next_cursor}`,
        );
        assert.deepEqual(rest.data.map((e) => e.id), [ids[0]]);
        assert.equal(rest.next_cursor, null);
        const unknown = await h.call("GET", `/v1/leads/${crypto.randomUUID()}/emails`);
        assert.equal(unknown.status, 404);
        assert.equal((await unknown.json()).code, "lead-not-found");
      });

      await t.step("one email by id; unknown id → 404 email-not-found", async () => {
        const res = await h.call("GET", `/v1/outreach/emails/${ids[2]}`);
        assert.equal(res.status, 200);
        const email = await res.json();
        assert.equal(email.status, "failed");
        assert.equal(email.template, "follow_up");
        assert.equal(email.sent_at, null);
        const missing = await h.call("GET", `/v1/outreach/emails/${crypto.randomUUID()}`);
        assert.equal(missing.status, 404);
        assert.equal((await missing.json()).code, "email-not-found");
      });

      await t.step("bad input: 400 naming the parameter, never a 500", async () => {
        for (
          const [query, field] of <[string, string][]> [
            ["status=bounced", "query.status"],
            ["lead_id=nope", "query.lead_id"],
            ["created_after=yesterday", "query.created_after"],
            [
              "created_after=2031-05-02T00:00:00Z&created_before=2031-05-01T00:00:00Z",
              "query.created_before",
            ],
            ["cursor=abc", "query.cursor"],
            ["limit=0", "query.limit"],
            ["sort=template", "query.sort"],
          ]
        ) {
          const res = await h.call("GET", `/v1/outreach/emails?${query}`);
          assert.equal(res.status, 400, query);
          const body = await res.json();
          assert.ok(
            body.invalid_fields.some((f: Json) => f.field === field),
            `${query}: ${JSON.stringify(body.invalid_fields)}`,
          );
        }
        const anon = await h.call("GET", "/v1/outreach/emails", { auth: null });
        assert.equal(anon.status, 401);
        await anon.body?.cancel();
      });

      await t.step("the routes are in the OpenAPI document", async () => {
        const spec = await (await h.app.request("/openapi.json")).json();
        assert.ok(spec.paths["/v1/outreach/emails"]?.get?.description);
        assert.ok(spec.paths["/v1/outreach/emails/{id}"]?.get);
        assert.ok(spec.paths["/v1/leads/{id}/emails"]?.get?.responses["404"]);
        assert.ok(spec.components.schemas.SentEmailList);
      });
    } finally {
      await sql.query("DELETE FROM email_messages WHERE business_id = ANY($1::uuid[])", [
        [a.id, b.id],
      ]);
      await h.cleanup();
    }
  },
});
