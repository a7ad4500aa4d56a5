import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createFileProvider } from "../../shared/email/providers/file.ts";
import type { TaskContext } from "../../workers/runner.ts";
import { bookAppointmentHandler } from "../../workers/tasks/book_appointment.ts";
import { scrapeLeadsHandler } from "../../workers/tasks/scrape_leads.ts";
import { sendEmailHandler } from "../../workers/tasks/send_email.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { trainedChampions } from "../../testing/scoring.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

type Json = Record<string, unknown>;
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

Deno.test({
  name:
    "Minerva's day through the public API as sa:minerva: import → score → email → reply → transition → book → analytics",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    // Real trained champions in memory, with versions no registry row has:
    // suites share the database and none may activate a champion in it.
    const version = 900_000 + Math.floor(Math.random() * 90_000);
    const { champions, scorer } = trainedChampions(version, Date.now());
    const h = await routeHarness(stack, { scorer });
    const outbox = await Deno.makeTempDir({ prefix: "pco-minerva-" });
    const config = h.deps.config;
    // The workers' handlers, run on the tasks the API queued (the harness's
    // queue is private: no other worker claims them).
    const handlers: Record<string, (p: never, ctx: TaskContext) => Promise<unknown>> = {
      scrape_leads: scrapeLeadsHandler({
        places: config.places,
        defaultPhoneRegion: config.defaultPhoneRegion,
        scorer,
      }) as never,
      send_email: sendEmailHandler({
        provider: createFileProvider({ dir: outbox }),
        from: config.email.from,
        messageIdDomain: config.email.messageIdDomain,
        unsubscribeSecret: config.email.unsubscribeSecret,
        publicBaseUrl: config.publicBaseUrl,
      }) as never,
      book_appointment: bookAppointmentHandler({ queue: h.queue }) as never,
    };
    const work = async (taskId: string) => {
      const task = await h.queue.getTask(taskId);
      assert.ok(task, taskId);
      const handler = handlers[task.type];
      assert.ok(handler, task.type);
      return await handler(task.payload as never, {
        deps: h.deps,
        taskId,
        attempt: 1,
        leaseToken: "minerva-day",
        enqueuedAt: task.createdAt,
        signal: new AbortController().signal,
        log: h.deps.log,
      }) as Json;
    };
    const json = async (res: Response, status: number) => {
      assert.equal(res.status, status, await res.clone().text());
      return await res.json();
    };
    const start = Date.now() - 60_000;
    const funnelNow = async () => {
      const range = `from=${encodeURIComponent(iso(start))}&to=${
        encodeURIComponent(iso(Date.now() + 60_000))
      }`;
      const body = await json(await h.call("GET", `/v1/analytics/funnel?${range}`), 200);
      return Object.fromEntries((body.stages as Json[]).map((s) => [s.stage, s.leads as number]));
    };
    const name = `Harbor Cafe ${h.run}`;
    const email = `owner-${h.run}@harbor.example`;
    let leadId = "";
    let importTask = "";

    try {
      const before = await funnelNow();

      await t.step("import: a CSV upload is queued and creates the lead", async () => {
        const csv = `name,city,email\n${name},Routetown-${h.run},${email}\n`;
        const queued = await json(
          await h.call("POST", "/v1/leads/import?filename=today.csv", {
            body: csv,
            type: "text/csv",
          }),
          202,
        );
        importTask = queued.task_id;
        const result = await work(queued.task_id);
        assert.equal(result.inserted, 1, JSON.stringify(result));
        const page = await json(
          await h.call("GET", `/v1/leads?city=${encodeURIComponent(`Routetown-${h.run}`)}`),
          200,
        );
        assert.equal(page.data.length, 1);
        leadId = page.data[0].id;
        assert.equal(page.data[0].outreach_status, "new");
      });

      await t.step("score: the champion scored the import; Minerva finds it by score", async () => {
        const lead = await json(await h.call("GET", `/v1/leads/${leadId}`), 200);
        const details = lead.score_details as Json;
        assert.equal(details.source, "model", JSON.stringify(details));
        // No reply yet: the pre-reply population's champion scored it.
        assert.equal(details.model_version, champions.pre_reply.version);
        assert.ok((details.top_factors as Json[]).length > 0, "the score says why");
        assert.equal(typeof lead.lead_score, "number");
        const page = await json(
          await h.call(
            "GET",
            `/v1/leads?city=${
              encodeURIComponent(`Routetown-${h.run}`)
            }&min_score=${lead.lead_score}&sort=lead_score&order=desc`,
          ),
          200,
        );
        assert.deepEqual(page.data.map((l: Json) => l.id), [leadId]);
      });

      await t.step("email: the intro is queued, sent, and the lead is contacted", async () => {
        const queued = await json(
          await h.call("POST", "/v1/outreach/emails", {
            json: { lead_id: leadId, template: "intro", variables: { sender_name: "Maya" } },
          }),
          202,
        );
        assert.equal((await work(queued.task_id)).status, "sent");
        const eml = [...Deno.readDirSync(outbox)].filter((e) => e.name.endsWith(".eml"));
        assert.equal(eml.length, 1);
        const text = await Deno.readTextFile(`${outbox}/${eml[0]!.name}`);
        assert.match(text, /I'm Maya from Pleasant Cove\./);
        const lead = await json(await h.call("GET", `/v1/leads/${leadId}`), 200);
        assert.equal(lead.outreach_status, "contacted");
      });

      await t.step("reply: Minerva reports the reply it read (an external event)", async () => {
        const id = crypto.randomUUID();
        const result = await json(
          await h.call("POST", "/v1/events", {
            json: {
              events: [{
                id,
                time: iso(Date.now() - 1_000),
                lead_id: leadId,
                event_type: "email_replied",
                event_data: { snippet: "How much for a website?" },
              }],
            },
          }),
          200,
        );
        assert.deepEqual(result.stored, [{ index: 0, id }]);
      });

      await t.step("transition: Minerva marks the lead responded and notes why", async () => {
        const moved = await json(
          await h.call("POST", `/v1/leads/${leadId}/transitions`, {
            json: { to: "responded", reason: "Asked for prices" },
          }),
          200,
        );
        assert.deepEqual([moved.from, moved.to, moved.changed], ["contacted", "responded", true]);
        const lead = await json(await h.call("GET", `/v1/leads/${leadId}`), 200);
        assert.equal((lead.score_details as Json).source, "model", "rescored with the transition");
        await json(
          await h.call("POST", `/v1/leads/${leadId}/notes`, {
            json: { text: "Wants a quote for a one-page site" },
          }),
          201,
        );
      });

      await t.step(
        "book: a meeting is queued, booked, and the lead is meeting_scheduled",
        async () => {
          const startsAt = iso(Math.ceil((Date.now() + 2 * DAY) / 3_600_000) * 3_600_000);
          const queued = await json(
            await h.call("POST", "/v1/appointments", {
              json: {
                lead_id: leadId,
                starts_at: startsAt,
                duration_min: 30,
                attendee_email: email,
                confirmation: { sender_name: "Maya", meeting_url: "https://meet.example/cove" },
              },
            }),
            202,
          );
          const booked = await work(queued.task_id);
          assert.equal(booked.status, "booked", JSON.stringify(booked));
          assert.equal((booked.appointment as Json).lead_id, leadId, "lead_id, never business_id");
          const again = await h.call("POST", "/v1/appointments", {
            json: { lead_id: leadId, starts_at: startsAt, duration_min: 30, attendee_email: email },
          });
          assert.equal((await json(again, 409)).code, "appointment-exists");
          const lead = await json(await h.call("GET", `/v1/leads/${leadId}`), 200);
          assert.equal(lead.outreach_status, "meeting_scheduled");
          const types = (lead.recent_events as Json[]).map((e) => e.event_type);
          for (
            const type of [
              "lead_created",
              "email_sent",
              "email_replied",
              "note_added",
              "appointment_booked",
            ]
          ) {
            assert.ok(types.includes(type), `${type} in ${types}`);
          }
        },
      );

      await t.step("analytics: the funnel counts the lead at every stage it reached", async () => {
        const after = await funnelNow();
        // The funnel is global and the suites share one database: another suite's
        // cleanup can remove its leads between the two reads (seen in CI as
        // "contacted: 1 → 1"), so the delta is not ours to assert. What is ours:
        // this lead is in the cohort at every stage it reached.
        for (const stage of ["contacted", "responded", "meeting_scheduled"]) {
          assert.ok(after[stage]! >= 1, `${stage}: ${before[stage]} → ${after[stage]}`);
        }
      });
    } finally {
      await h.cleanup();
      if (leadId) {
        await h.deps.sql.query("DELETE FROM email_messages WHERE business_id = $1", [leadId]);
        await h.deps.sql.query("DELETE FROM appointments WHERE business_id = $1", [leadId]);
        await h.deps.sql.query("DELETE FROM lead_events WHERE lead_id = $1", [leadId]);
        await h.deps.sql.query("DELETE FROM businesses WHERE id = $1", [leadId]);
      }
      await h.deps.sql.query("DELETE FROM scrape_runs WHERE task_id = $1", [importTask]);
      await Deno.remove(outbox, { recursive: true });
    }
  },
});
