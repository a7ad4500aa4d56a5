import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createFileProvider } from "../../shared/email/providers/file.ts";
import { createLead } from "../../shared/leads/repository.ts";
import { claimSends, recordDeliveries } from "../../shared/leads/email_ledger.ts";
import { withTransaction } from "../../shared/leads/transaction.ts";
import { ledgerIdFor, sendEmailHandler } from "./send_email.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { runTag } from "../../testing/namespace.ts";
import { countingPool, taskContext, testEmailServices } from "../../testing/tasks.ts";

Deno.test({
  name: "send_email batches the database steps of concurrent sends, each with its own outcome",
  ...noSanitizers,
}, async (t) => {
  await using stack = await useTestStack();
  const deps = stack.makeDeps();
  const run = runTag();
  const outbox = await Deno.makeTempDir({ prefix: "pco-batch-outbox-" });
  // Every statement the handler sends, counted.
  const counted = countingPool(deps.sql);
  const ctx = (taskId: string) => taskContext({ ...deps, sql: counted.pool }, taskId);
  const sendEmail = sendEmailHandler(testEmailServices(createFileProvider({ dir: outbox })));
  const newLead = (i: number | string) =>
    createLead(deps.sql, {
      name: `Batch Bakery ${run} ${i}`,
      email: `owner-${run}-${i}@batch.test`,
      source: "test",
      external_id: `batch-${run}-${i}`,
    }, "test");
  try {
    await t.step("twelve sends at once: twelve emails, far fewer statements", async () => {
      const leads = await Promise.all(Array.from({ length: 12 }, (_, i) => newLead(i)));
      const before = counted.statements();
      const results = await Promise.all(leads.map((lead, i) =>
        sendEmail(
          { lead_id: lead.id, template: "intro", variables: { sender_name: "Ana" } },
          ctx(`batch-${run}-${i}`),
        )
      ));
      assert.deepEqual(results.map((r) => r.status), Array(12).fill("sent"));
      // One lead read, one claim and one record per batch instead of three statements per send.
      const statements = counted.statements() - before;
      assert.ok(statements <= 6, `${statements} statements for 12 sends`);
      const ids = leads.map((l) => l.id);
      // Each lead's history row and events name its own task, as a statement of its own did.
      const { rows: history } = await deps.sql.query<
        { lead_id: string; source: string; action: string; status: unknown }
      >(
        `SELECT lead_id, source, action, changes->'outreach_status' AS status FROM lead_history
          WHERE lead_id = ANY($1::uuid[]) AND action <> 'created'`,
        [ids],
      );
      assert.equal(history.length, 12);
      for (const h of history) {
        assert.equal(h.source, `worker:send_email:batch-${run}-${ids.indexOf(h.lead_id)}`);
        assert.equal(h.action, "updated");
        assert.deepEqual(h.status, { old: "new", new: "contacted" });
      }
      const { rows: events } = await deps.sql.query<
        { lead_id: string; types: string[]; sources: string[] }
      >(
        `SELECT lead_id, array_agg(event_type ORDER BY time) AS types,
                array_agg(DISTINCT source) AS sources
           FROM lead_events WHERE lead_id = ANY($1::uuid[]) AND event_type <> 'lead_created'
          GROUP BY lead_id`,
        [ids],
      );
      assert.equal(events.length, 12);
      for (const e of events) {
        assert.deepEqual(e.types, ["status_changed", "email_sent"]);
        assert.deepEqual(e.sources, [`worker:send_email:batch-${run}-${ids.indexOf(e.lead_id)}`]);
      }
    });

    await t.step("two sends to one lead at once are decided one after the other", async () => {
      const lead = await newLead("pair");
      const results = await Promise.all([
        sendEmail(
          { lead_id: lead.id, template: "intro", variables: { sender_name: "Ana" } },
          ctx(`pair-${run}-a`),
        ),
        sendEmail(
          {
            lead_id: lead.id,
            template: "intro",
            to: `partner-${run}@batch.test`,
            variables: { sender_name: "Ana" },
          },
          ctx(`pair-${run}-b`),
        ),
      ]);
      assert.deepEqual(results.map((r) => r.status), ["sent", "sent"]);
      const { rows } = await deps.sql.query<{ event_type: string; n: number }>(
        `SELECT event_type, count(*)::int AS n FROM lead_events
          WHERE lead_id = $1 AND event_type IN ('status_changed', 'email_sent')
          GROUP BY event_type ORDER BY event_type`,
        [lead.id],
      );
      assert.deepEqual(rows, [{ event_type: "email_sent", n: 2 }, {
        event_type: "status_changed",
        n: 1,
      }]);
    });

    await t.step(
      "one key twice in one claim call: the first claims, the second is busy",
      async () => {
        const lead = await newLead("twice");
        const to = `owner-${run}-twice@batch.test`;
        const day = new Date().toISOString().slice(0, 10);
        const ledgerId = ledgerIdFor(to, "intro", lead.id, day);
        const claim = (taskId: string) => ({
          ledgerId,
          leadId: lead.id,
          to,
          template: "intro",
          day,
          subject: "s",
          provider: "file",
          messageId: `<${ledgerId}@pleasantcove.test>`,
          taskId,
          claimMs: 30_000,
        });
        const [first, second] = await claimSends(deps.sql, [claim("one"), claim("two")]);
        assert.equal(first!.kind, "claimed");
        assert.equal(second!.kind, "busy");
        if (first!.kind !== "claimed") return;
        // Recording in a transaction: the lead's later writes in it keep their trigger history.
        await withTransaction(deps.sql, async (client) => {
          const recorded = await recordDeliveries(client, [{
            ledgerId,
            token: first!.token,
            response: "250",
            source: "test:one",
            event: { template: "intro" },
          }]);
          assert.deepEqual(recorded, [true]);
          await client.query("UPDATE businesses SET city = 'Camden' WHERE id = $1", [lead.id]);
        });
        const { rows } = await deps.sql.query<{ action: string; fields: string[] }>(
          `SELECT action, array(SELECT jsonb_object_keys(changes) ORDER BY 1) AS fields
           FROM lead_history WHERE lead_id = $1 AND action <> 'created' ORDER BY at, id`,
          [lead.id],
        );
        assert.deepEqual(rows, [
          { action: "updated", fields: ["last_contacted", "outreach_status"] },
          { action: "updated", fields: ["city"] },
        ]);
        const [again] = await claimSends(deps.sql, [claim("three")]);
        assert.equal(again!.kind, "sent");
      },
    );
  } finally {
    await Deno.remove(outbox, { recursive: true });
  }
});
