import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

Deno.test({
  name: "DELETE /v1/leads/{id}: an admin erases a lead's personal data from every table",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    const sql = h.deps.sql;
    const admin = await h.token("u-admin", ["admin"]);
    const name = `Erasable Bakery ${h.run}`;
    const email = `owner-${h.run}@erasable.example`;
    const attendee = `assistant-${h.run}@erasable.example`;
    const phone = `+1 555 01${h.run.slice(0, 2)}`;
    const externalId = `place-${h.run}`;
    const secrets = [name, email, attendee, phone, externalId];
    let leadId = "";
    try {
      const created = await h.call("POST", "/v1/leads", {
        auth: h.tokens.operator,
        headers: { "idempotency-key": crypto.randomUUID() },
        json: { name, email, phone, source: "places", external_id: externalId, city: "Erasetown" },
      });
      assert.equal(created.status, 201, await created.clone().text());
      leadId = (await created.json()).id;
      const id = leadId;
      // What outreach leaves behind, written as the workers write it.
      const note = await h.call("POST", `/v1/leads/${id}/notes`, {
        json: { text: `Spoke to the owner of ${name} on ${phone}` },
      });
      assert.equal(note.status, 201);
      await note.body?.cancel();
      const moved = await h.call("POST", `/v1/leads/${id}/transitions`, {
        json: { to: "contacted", reason: `Mailed ${email}` },
      });
      assert.equal(moved.status, 200);
      await moved.body?.cancel();
      await sql.query(
        `INSERT INTO email_messages (business_id, to_address, template, send_day, subject, provider,
                                     message_id, status)
         VALUES ($1, $2, 'intro', current_date, $3, 'file', $4, 'sent')`,
        [id, email, `Hello ${name}`, `<${crypto.randomUUID()}@pleasantcove.test>`],
      );
      await sql.query(
        `INSERT INTO appointments (business_id, starts_at, duration_min, attendee_email, day)
         VALUES ($1, now() + interval '2 days', 30, $2, current_date + 2)`,
        [id, attendee],
      );
      await sql.query(
        `INSERT INTO lead_events (lead_id, event_type, event_data, source)
         VALUES ($1, 'email_sent', $2, 'worker:send_email:t1'),
                ($1, 'email_replied', $3, 'api:sa:minerva')`,
        [
          id,
          JSON.stringify({ template: "intro", to: email, message_id: "m1" }),
          JSON.stringify({ from: email, snippet: `Thanks, ${name}` }),
        ],
      );
      await sql.query(
        `INSERT INTO scrape_runs (provider, status, rejections)
         VALUES ('csv', 'succeeded', $1)`,
        [JSON.stringify([
          { line: 2, reason: `phone is not valid: "${phone}"` },
          { line: 3, reason: "name is required" },
        ])],
      );

      await t.step("operators and services may not erase (403); admins may", async () => {
        for (const auth of [h.tokens.operator, h.tokens.minerva, h.tokens.viewer]) {
          const res = await h.call("DELETE", `/v1/leads/${id}`, { auth });
          assert.equal(res.status, 403);
          const body = await res.json();
          assert.equal(body.code, "forbidden");
          assert.equal(body.permission, "DELETE /v1/leads/*");
        }
        const res = await h.call("DELETE", `/v1/leads/${id}`, { auth: admin });
        assert.equal(res.status, 204, await res.clone().text());
        assert.equal(await res.text(), "");
      });

      await t.step("no table still holds the name, address, phone or external id", async () => {
        const { rows: tables } = await sql.query<{ schema: string; name: string }>(
          `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
            WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
              AND table_type = 'BASE TABLE'`,
        );
        assert.ok(tables.some((t) => t.name === "lead_events"));
        const found: string[] = [];
        for (const table of tables) {
          const ref = `"${table.schema}"."${table.name}"`;
          const { rows } = await sql.query<{ row: string }>(
            `SELECT t::text AS row FROM ${ref} t
              WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) s WHERE strpos(t::text, s) > 0)`,
            [secrets],
          );
          for (const r of rows) found.push(`${table.name}: ${r.row}`);
        }
        // Only the suppression list (and its audit) keeps the addresses, so that they are never
        // mailed again.
        const kept = found.filter((f) =>
          !f.startsWith("email_suppressions: ") && !f.startsWith("email_suppression_changes: ")
        );
        assert.deepEqual(kept, []);
        const { rows } = await sql.query(
          `SELECT address, reason, added_by FROM email_suppressions WHERE address = ANY($1)
            ORDER BY address`,
          [[email, attendee]],
        );
        assert.deepEqual(rows, [
          { address: attendee, reason: "erased", added_by: "api:u-admin" },
          { address: email, reason: "erased", added_by: "api:u-admin" },
        ]);
        const audit = await sql.query(
          "SELECT action, reason, actor FROM email_suppression_changes WHERE address = $1",
          [email],
        );
        assert.deepEqual(audit.rows, [
          { action: "added", reason: `erasure of lead ${id}`, actor: "api:u-admin" },
        ]);
      });

      await t.step("the events stay for the funnel, stripped; lead_erased says who", async () => {
        const { rows } = await sql.query<
          { event_type: string; event_data: unknown; source: string }
        >(
          "SELECT event_type, event_data, source FROM lead_events WHERE lead_id = $1 ORDER BY time",
          [id],
        );
        const byType = Object.fromEntries(rows.map((r) => [r.event_type, r.event_data]));
        assert.deepEqual(byType.status_changed, { from: "new", to: "contacted", erased: true });
        assert.deepEqual(byType.email_sent, { template: "intro", erased: true });
        assert.deepEqual(byType.note_added, { erased: true });
        const erased = rows.at(-1)!;
        assert.equal(erased.event_type, "lead_erased");
        assert.equal(erased.source, "api:u-admin");
        assert.deepEqual(erased.event_data, {
          email_messages: 1,
          appointments: 1,
          lead_events: rows.length - 1,
          lead_history: 3,
          idempotent_writes: 1,
          scrape_runs: 1,
          suppressed: 2,
        });
      });

      await t.step("the lead is gone: reads and a second DELETE are 404", async () => {
        for (
          const [method, path] of [
            ["GET", `/v1/leads/${id}`],
            ["GET", `/v1/leads/${id}/history`],
            ["DELETE", `/v1/leads/${id}`],
          ] as const
        ) {
          const res = await h.call(method, path, { auth: admin });
          assert.equal(res.status, 404, `${method} ${path}`);
          assert.equal((await res.json()).code, "lead-not-found");
        }
        const bad = await h.call("DELETE", "/v1/leads/not-a-uuid", { auth: admin });
        assert.equal(bad.status, 400);
        await bad.body?.cancel();
      });

      await t.step("an erased address is refused by outreach as suppressed", async () => {
        const again = await h.lead({ name: `Reimported ${h.run}`, email });
        const res = await h.call("POST", "/v1/outreach/emails", {
          auth: h.tokens.operator,
          json: { lead_id: again.id, template: "intro", variables: { sender_name: "Ana" } },
        });
        assert.equal(res.status, 422, await res.clone().text());
        assert.equal((await res.json()).code, "recipient-suppressed");
      });
    } finally {
      await sql.query("DELETE FROM email_suppression_changes WHERE address = ANY($1)", [[
        email,
        attendee,
      ]]);
      await sql.query("DELETE FROM email_suppressions WHERE address = ANY($1)", [[
        email,
        attendee,
      ]]);
      await sql.query("DELETE FROM scrape_runs WHERE rejections::text LIKE $1", [
        `%${h.run}%`,
      ]);
      await sql.query("DELETE FROM lead_events WHERE lead_id = $1", [leadId || null]);
      await h.cleanup();
    }
  },
});
