import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createFileProvider } from "../../shared/email/providers/file.ts";
import { createLead } from "../../shared/leads/repository.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { type FeatureSource, populationOf } from "../../shared/scoring/features.ts";
import { featureColumns } from "../../shared/scoring/scores.ts";
import { trainedChampions } from "../../testing/scoring.ts";
import { ApplyLeadWritePayload, TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import type { TaskContext } from "../runner.ts";
import { bookAppointmentHandler } from "./book_appointment.ts";
import { leadWriteHandler } from "./lead_write.ts";
import { scrapeLeadsHandler } from "./scrape_leads.ts";
import { sendEmailHandler } from "./send_email.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { runTag } from "../../testing/namespace.ts";
import { taskContext } from "../../testing/tasks.ts";

// The Neon Pool keeps WebSocket ops alive between queries (docs/reference/neon-local.md §5).
const opts = noSanitizers;

Deno.test({
  name:
    "queued updates, imports, deliveries and bookings rescore the lead with the champion (Postgres)",
  ...opts,
}, async (t) => {
  await using stack = await useTestStack();
  // A frozen clock: the expected score is computed at the write's `now`.
  const NOW = Date.now();
  const deps = { ...stack.makeDeps(), now: () => NOW };
  const run = runTag();
  const city = `Rescoreton-${run}`;
  // Real models with versions no registry row has: the shared database
  // must never get a champion (suites that activate use private ones).
  const version = 900_000 + Math.floor(Math.random() * 90_000);
  const { champions, scorer } = trainedChampions(version, NOW);
  const outbox = await Deno.makeTempDir({ prefix: "pco-rescore-outbox-" });
  const queue = createQueue(deps.redis, TASK_CATALOG, { namespace: `rs${run}` });
  const ctx = (taskId: string): TaskContext => taskContext(deps, taskId);
  type Stored = FeatureSource & {
    lead_score: number | null;
    lead_score_model: number | null;
    lead_score_source: string | null;
  };
  const stored = async (id: string) =>
    (await deps.sql.query<Stored>(
      `SELECT lead_score, lead_score_model, lead_score_source, ${featureColumns()}
         FROM businesses WHERE id = $1`,
      [id],
    )).rows[0]!;
  const assertScoredByModel = async (id: string) => {
    const row = await stored(id);
    assert.equal(row.lead_score_source, "model");
    // The champion of the lead's population as it is after the write.
    assert.equal(row.lead_score_model, champions[populationOf(row)].version);
    assert.equal(row.lead_score, scorer.score(row, NOW).lead_score);
    return row;
  };
  const lead = await createLead(deps.sql, {
    name: `Rescore Bakery ${run}`,
    city,
    email: `owner-${run}@rescore.test`,
    rating: 4.4,
    reviews: 30,
    source: "test",
    external_id: `rs-${run}`,
  }, "test");
  assert.equal((await stored(lead.id)).lead_score_source, null, "written without a scorer");
  const imported: string[] = [];
  try {
    await t.step("apply_lead_write: a queued update rescores in its transaction", async () => {
      const apply = leadWriteHandler({ scorer });
      const out = await apply(
        ApplyLeadWritePayload.parse({
          op: "update",
          lead_id: lead.id,
          patch: { response_time_hours: 5, last_contacted: null },
          source: "api:sa:minerva",
        }),
        ctx(`lw-${run}`),
      );
      assert.equal(out.status, "updated");
      const row = await assertScoredByModel(lead.id);
      assert.equal(row.response_time_hours, 5);
      assert.equal(row.lead_score_model, champions.replied.version, "a reply: the replied model");
    });

    await t.step("send_email: the delivery's new last_contacted rescores the lead", async () => {
      await deps.sql.query(
        "UPDATE businesses SET lead_score_model = NULL, lead_score_source = NULL WHERE id = $1",
        [lead.id],
      );
      const send = sendEmailHandler({
        provider: createFileProvider({ dir: outbox }),
        from: "Pleasant Cove <hello@pleasantcove.test>",
        messageIdDomain: "pleasantcove.test",
        unsubscribeSecret: "test-unsubscribe-secret-0123456789",
        publicBaseUrl: "http://127.0.0.1:8787",
        scorer,
      });
      const out = await send(
        { lead_id: lead.id, template: "intro", variables: { sender_name: "Ana" } },
        ctx(`se-${run}`),
      );
      assert.equal(out.status, "sent");
      const row = await assertScoredByModel(lead.id);
      assert.notEqual(row.last_contacted, null);
    });

    await t.step("book_appointment: the move to meeting_scheduled rescores", async () => {
      await deps.sql.query(
        "UPDATE businesses SET lead_score_model = NULL, lead_score_source = NULL WHERE id = $1",
        [lead.id],
      );
      const book = bookAppointmentHandler({ queue, scorer });
      const startsAt = new Date(NOW + 3 * 86_400_000);
      startsAt.setUTCHours(15, 0, 0, 0);
      const out = await book({
        lead_id: lead.id,
        starts_at: startsAt.toISOString(),
        duration_min: 30,
        attendee_email: `owner-${run}@rescore.test`,
        confirmation: { sender_name: "Ana" },
      }, ctx(`bk-${run}`));
      assert.equal(out.status, "booked");
      await assertScoredByModel(lead.id);
    });

    await t.step("scrape_leads: new leads and leads whose values changed are scored", async () => {
      const importer = scrapeLeadsHandler({
        places: { apiKey: null, baseUrl: "http://127.0.0.1:9", qps: 5 },
        defaultPhoneRegion: "US",
        scorer,
      });
      const csv = (reviews: number) =>
        [
          "name,city,category,rating,reviews,external_id",
          `Harbor Fish ${run},${city},seafood,4.5,${reviews},hf-${run}`,
        ].join("\r\n");
      const first = await importer(
        { provider: "file", format: "csv", content: csv(12) },
        ctx(`sc1-${run}`),
      );
      assert.equal(first.inserted, 1);
      const { rows } = await deps.sql.query<{ id: string }>(
        "SELECT id FROM businesses WHERE city = $1 AND external_id = $2",
        [city, `hf-${run}`],
      );
      const id = rows[0]!.id;
      imported.push(id);
      await assertScoredByModel(id);
      await deps.sql.query(
        "UPDATE businesses SET lead_score_model = NULL, lead_score_source = NULL WHERE id = $1",
        [id],
      );
      const again = await importer(
        { provider: "file", format: "csv", content: csv(400) },
        ctx(`sc2-${run}`),
      );
      assert.equal(again.updated, 1);
      const row = await assertScoredByModel(id);
      assert.equal(row.reviews, 400);
    });
  } finally {
    const ids = [lead.id, ...imported];
    await deps.sql.query("DELETE FROM lead_events WHERE lead_id = ANY($1::uuid[])", [ids]);
    await deps.sql.query("DELETE FROM email_messages WHERE business_id = ANY($1::uuid[])", [ids]);
    await deps.sql.query("DELETE FROM appointments WHERE business_id = ANY($1::uuid[])", [ids]);
    await deps.sql.query("DELETE FROM scrape_runs WHERE task_id LIKE $1", [`sc_-${run}`]);
    await deps.sql.query("DELETE FROM businesses WHERE id = ANY($1::uuid[])", [ids]);
    await Deno.remove(outbox, { recursive: true });
  }
});
